//! What a socket is told when a message is refused or cannot be sent: the `error` replies,
//! the rate limit, and the refusal budget that closes a socket with 1008.

use std::time::Instant;

use serde_json::{Value, json};

use super::Connection;
use crate::{
    chat::{
        EngineError,
        outbox::Signal,
        protocol::{Cid, Reply, code},
        refusal::{TOO_MANY_REFUSED, Verdict},
        text::{ChatText, TextError},
    },
    metrics::Reject,
    moderation::{rooms::RoomRefusal, words::FilterMode},
    ws::close,
};

/// The `error` for a message the word filter refuses.
pub const FILTERED: &str = "not sent: the message contains a word the moderators filter out";

impl<T> Connection<T> {
    /// The messages `cids` were refused: one `error`, or one for each if any had a `cid`.
    pub(super) fn not_sent<'c>(
        &self,
        e: &EngineError,
        cids: impl IntoIterator<Item = Option<&'c Cid>>,
    ) {
        let user = self.member.user().id;
        tracing::warn!(user, error = %e, "message not sent");
        let cids: Vec<Option<&Cid>> = cids.into_iter().collect();
        if cids.iter().all(Option::is_none) {
            return self.state.engine.refuse(&self.member, e, None);
        }
        for cid in cids {
            self.state.engine.refuse(&self.member, e, cid);
        }
    }

    /// An `error` to this socket, after the messages it sent before the bad one.
    pub(super) fn reply_error(&mut self, code: &'static str, message: &str) {
        self.reply_coded(code, message, json!({}));
    }

    /// An `error` with its stable `code` (the refusal's metrics label, or the like) and the
    /// `params` a page words it with.
    pub(super) fn reply_coded(&mut self, code: &'static str, message: &str, params: Value) {
        self.send_chats();
        let reply = Reply::coded(code, message, None).with_params(params);
        self.state.engine.reply(&self.member, reply);
    }

    /// The message's text, or `None` if it was blank (ignored) or too long (answered).
    pub(super) fn text(&mut self, raw: &str) -> Option<ChatText> {
        match ChatText::parse(raw, self.state.chat.max_message_chars) {
            Ok(text) => Some(text),
            Err(TextError::Empty) => {
                // Nothing to answer, but not free to read either: it costs a token like a sent
                // message, so a flood of blanks meets the rate limit and the refusal budget.
                self.within_rate_limit();
                None
            }
            Err(e @ TextError::TooLong { len, max }) => {
                let params = json!({ "len": len, "max": max });
                self.refuse(Reject::TooLong, &e.to_string(), params, raw);
                None
            }
        }
    }

    /// The message as the word filter lets it out: as it was, or masked; `None` when the
    /// filter rejects it, and then it is a refused message (a token, the refusal budget).
    pub(super) fn filtered(&mut self, text: ChatText) -> Option<ChatText> {
        let filter = self.state.moderation.word_filter();
        if filter.is_empty() {
            return Some(text);
        }
        match filter.mode() {
            FilterMode::Reject if filter.matches(text.as_str()) => {
                self.refuse(Reject::Filtered, FILTERED, json!({}), text.as_str());
                None
            }
            FilterMode::Reject => Some(text),
            FilterMode::Mask => match filter.mask(text.as_str()) {
                None => Some(text),
                // A masked text has as many characters as the original, none turned blank,
                // so it parses again; were it not to, the message is refused, neither sent
                // unmasked nor dropped without a word.
                Some(masked) => match ChatText::parse(&masked, self.state.chat.max_message_chars) {
                    Ok(masked) => Some(masked),
                    Err(_) => {
                        self.refuse(Reject::Filtered, FILTERED, json!({}), text.as_str());
                        None
                    }
                },
            },
        }
    }

    /// Takes a token from the user's bucket, shared by chat, whispers and images. A flood
    /// gets one `error`, then silence until a message gets through again.
    pub(super) fn within_rate_limit(&mut self) -> bool {
        let user = self.member.user().id;
        if self.state.messages.try_acquire(user, Instant::now()) {
            self.rate_limited = false;
            return true;
        }
        // Its one `error` per flood is sent here.
        let verdict = self.rejected(Reject::RateLimited, None);
        if !self.rate_limited && verdict != Verdict::Close {
            self.rate_limited = true;
            let every_ms = self.state.messages.retry_after().as_millis();
            let message = format!(
                "too many messages: slow down (about one every {every_ms} ms); messages over the limit are dropped",
            );
            let params = json!({ "every_ms": every_ms });
            self.reply_coded(Reject::RateLimited.label(), &message, params);
        }
        false
    }

    /// True, and the user told why and until when, while a moderator has them muted. Asked
    /// after the rate limit, so a muted flood gets no more `error`s than messages it may send.
    pub(super) fn muted(&mut self) -> bool {
        let Some(mute) = self.state.moderation.muted(self.member.user().id) else {
            return false;
        };
        let params = json!({ "until": mute.until, "reason": mute.reason });
        self.reply_coded(code::MUTED, &mute.describe(), params);
        true
    }

    /// True, and the user told why, while the room's slow mode or read-only flag refuses what
    /// they send; a message let through counts toward the slow mode. A moderator's socket is
    /// never refused: a read-only room is where moderators announce.
    pub(super) fn room_refused(&mut self) -> bool {
        if self.moderator {
            return false;
        }
        let room = self.member.room().as_str();
        match self.state.moderation.admit(room, self.member.user().id) {
            Ok(()) => false,
            Err(refusal) => {
                let params = match refusal {
                    RoomRefusal::ReadOnly => json!({ "rule": "read_only" }),
                    RoomRefusal::SlowMode { every, wait } => {
                        json!({ "rule": "slow_mode", "every": every, "wait": wait })
                    }
                };
                self.reply_coded(code::ROOM_RULES, &refusal.to_string(), params);
                true
            }
        }
    }

    /// A message refused before it reached the rate limit. It still takes a token, as a sent
    /// one would, so refused messages cannot be sent faster than accepted ones; if the bucket
    /// is empty it is refused all the same. `input` is what was refused: the same input again
    /// within a moment is refused without another `error`.
    pub(super) fn refuse(&mut self, reason: Reject, message: &str, params: Value, input: &str) {
        let user = self.member.user().id;
        let _ = self.state.messages.try_acquire(user, Instant::now());
        if self.rejected(reason, Some(input)) == Verdict::Answer {
            self.reply_coded(reason.label(), message, params);
        }
    }

    /// Counts a refused message; past this socket's budget, closes it with 1008.
    /// `input` is what was refused, `None` if the client is told elsewhere.
    pub(super) fn rejected(&mut self, reason: Reject, input: Option<&str>) -> Verdict {
        let who = (self.member.user().id, self.client);
        let now = Instant::now();
        let state = &self.state;
        let log = &state.refused_messages;
        let verdict = self
            .refusals
            .count(&state.metrics, log, who, reason, input, now);
        if verdict == Verdict::Close {
            // The outbox is read before the next frame, so this is the socket's last message.
            self.outbox
                .signal(Signal::Close(close::POLICY, TOO_MANY_REFUSED.into()));
        }
        verdict
    }
}
