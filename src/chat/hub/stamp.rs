//! `Unstamped`: a frame for one socket that is no event of its room (an `error`, a page of
//! history), serialized ahead with its `id` left out. The hub stamps it with the id that
//! socket was last sent under its lock, which then costs a few bytes, not the page.

use std::io::Write;

use serde::Serialize;

use super::super::protocol::Frame;
use crate::ws::frame::Unfinished;

/// `{"id":` and the longest u64.
const HEAD_ROOM: usize = 6 + 20;
/// How an event serialized with id 0 begins: what the stamp replaces.
const ID_ZERO: &[u8] = br#"{"id":0"#;

#[derive(Debug)]
pub struct Unstamped(Unfinished);

impl Unstamped {
    /// `event`, whose id must be 0 and its first field, as in every event this server sends.
    pub fn new(event: &impl Serialize) -> Unstamped {
        let mut frame = Unfinished::text(HEAD_ROOM, |buf| {
            serde_json::to_writer(buf, event).expect("events always serialize");
        });
        assert!(
            frame.written().starts_with(ID_ZERO),
            "an unstamped event has id 0, first"
        );
        frame.skip(ID_ZERO.len());
        Unstamped(frame)
    }

    /// The frame with `id` in place of the 0.
    pub fn stamp(self, id: u64) -> Frame {
        let mut head = [0u8; HEAD_ROOM];
        let mut rest = &mut head[..];
        // Cannot fail: the room fits the longest id.
        let _ = write!(rest, r#"{{"id":{id}"#);
        let len = HEAD_ROOM - rest.len();
        self.0.finish(&head[..len])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        auth::{User, UserName},
        chat::protocol::{EventData, EventKind, ServerEvent},
    };

    #[test]
    fn a_stamped_event_is_the_event_serialized_with_that_id() {
        let user = User::guest(7, UserName::parse("ann").unwrap());
        let long = "\u{1}".repeat(20_000);
        for text in ["no", &"x".repeat(100), &long] {
            for id in [0, 9, 10, 123_456, u64::MAX] {
                let event = |id| ServerEvent {
                    id,
                    kind: EventKind::Error,
                    user: &user,
                    data: EventData::Text(text),
                    time: 1,
                    count: None,
                };
                assert_eq!(Unstamped::new(&event(0)).stamp(id), event(id).to_frame());
            }
        }
    }
}
