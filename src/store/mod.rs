//! What the server keeps on disk in the data dir: user ids and the chat history.

pub mod history;
mod user_ids;

pub use history::HistoryStore;
pub use user_ids::UserIds;
