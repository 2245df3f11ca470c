//! What the server keeps on disk in the data dir.

mod user_ids;

pub use user_ids::UserIds;
