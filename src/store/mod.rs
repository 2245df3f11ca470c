//! What the server keeps on disk in the data dir: user ids and the chat history.

pub mod history;
pub mod reservations;
mod shared_ids;
mod user_ids;

pub use history::HistoryStore;
pub use reservations::Reservations;
pub use shared_ids::IdSource;
pub use user_ids::{IdsExhausted, UserIds};
