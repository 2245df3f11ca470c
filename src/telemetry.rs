//! Logging to stderr (stdout carries only the `listening on` line): `RUST_LOG` picks the
//! level, `info` by default.
//!
//! One line per event, its fields as `key=value` (`user=3 client=203.0.113.9 code=1008`), so
//! journald and grep can both read them. Colours only when a person is watching a terminal.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}
