//! Integration tests: the real server on 127.0.0.1:0, driven over real sockets.

mod helpers;
mod limits;
mod process;
mod session;
mod socket;
