//! Integration tests: the real server on 127.0.0.1:0, driven over real sockets.

// A failed unwrap is a failed test, with its location.
#![allow(clippy::unwrap_used)]

mod big_rooms;
mod caching;
mod caps;
mod cid;
mod cluster;
mod deletion;
mod disk_full;
mod edge;
mod error_codes;
mod helpers;
mod history;
mod join_bytes;
mod limits;
mod moderation;
mod nginx;
mod nginx_limits;
mod ops;
mod paging;
mod presence;
mod process;
mod raw;
mod refused;
mod room_bounds;
mod room_list;
mod rooms;
mod server;
mod session;
mod sessions;
mod sign_in;
mod socket;
mod store_faults;
mod upload;
mod upload_limits;
mod whispers;
mod ws_bounds;
