//! Integration tests: the real server on 127.0.0.1:0, driven over real sockets.

// A failed unwrap is a failed test, with its location.
#![allow(clippy::unwrap_used)]

mod cluster;
mod helpers;
mod history;
mod limits;
mod nginx;
mod ops;
mod process;
mod rooms;
mod server;
mod session;
mod socket;
mod upload;
mod ws_bounds;
