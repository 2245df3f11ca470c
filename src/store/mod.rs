//! What the server keeps on disk in the data dir: user ids, the chat history, and with
//! `--redis` the floor a Redis that lost its data is raised to.

mod floor;
pub mod history;
pub mod reservations;
mod shared_ids;
mod user_ids;

pub use floor::{Floor, Values as FloorValues};
pub use history::HistoryStore;
pub use reservations::Reservations;
pub use shared_ids::IdSource;
pub use user_ids::{IdsExhausted, UserIds};
