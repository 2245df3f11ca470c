//! Tests that keep a core busy for seconds (megabytes through a debug build, hundreds of
//! sockets dropping at once). They are a binary of their own because cargo runs test
//! binaries one after another: beside them, the timing of the api tests would suffer.

// A failed unwrap is a failed test, with its location.
#![allow(clippy::unwrap_used)]

// Each binary uses its own part of the helpers.
#[allow(dead_code)]
#[path = "../api/helpers.rs"]
mod helpers;
mod slow_readers;
