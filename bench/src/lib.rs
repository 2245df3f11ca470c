//! passerby-bench: a load generator that measures passerby and the Node.js seed server with
//! the same clients, side by side.

pub mod abuse;
pub mod client;
pub mod report;
pub mod scenario;
pub mod server;
