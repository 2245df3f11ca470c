//! The flags for big rooms (`chat::hub::big`): how many users make a room big, how often its
//! joins and lefts go out together, and how many users one page of the online list holds.

use std::time::Duration;

use crate::chat::{
    BigRooms,
    hub::big::{DEFAULT_INTERVAL, DEFAULT_PAGE, DEFAULT_THRESHOLD},
};

#[derive(Debug, Clone, clap::Args)]
pub struct BigRoomFlags {
    /// Users in a room above which its joins and lefts go out as one `presence` event per
    /// --presence-interval-ms, and its `list` is a first page of --list-page users; 0: never.
    #[arg(long, env = "PASSERBY_BIG_ROOM", default_value_t = DEFAULT_THRESHOLD)]
    pub big_room: usize,

    /// Milliseconds between a big room's `presence` events (10 to 60000).
    #[arg(long, env = "PASSERBY_PRESENCE_INTERVAL_MS", default_value_t = DEFAULT_INTERVAL.as_millis() as u64, value_parser = clap::value_parser!(u64).range(10..=60_000))]
    pub presence_interval_ms: u64,

    /// Users in one page of a big room's online list (its `list`, each `users` answer), and
    /// at most in each of a `presence` event's `joined` and `left` (1 to 1000).
    #[arg(long, env = "PASSERBY_LIST_PAGE", default_value_t = DEFAULT_PAGE, value_parser = parse_page)]
    pub list_page: usize,
}

impl BigRoomFlags {
    pub fn big_rooms(&self) -> BigRooms {
        BigRooms {
            threshold: self.big_room,
            interval: Duration::from_millis(self.presence_interval_ms),
            page: self.list_page,
        }
    }
}

fn parse_page(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=1000).contains(&n) => Ok(n),
        _ => Err(format!("`{s}` is not a number of users from 1 to 1000")),
    }
}
