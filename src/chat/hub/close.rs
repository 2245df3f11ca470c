//! Closing sockets by who they are: every socket of a user here (a kick or a ban), or of one
//! sign-in (a sign-out), found through the hub's per-user and per-session indexes.

use super::{Hub, State, places::Places};
use crate::{
    auth::SessionId,
    chat::{outbox::Signal, protocol::close},
};

impl Hub {
    /// Asks every socket of `user` here to close with `code` and `reason` (cut to what a close
    /// frame holds); returns how many. Found through the per-user index, so it costs that
    /// user's sockets only.
    pub fn close_user(&self, user: u64, code: u16, reason: &str) -> usize {
        let reason = close::fit_reason(reason);
        let state = self.lock();
        state.close(state.users.get(&user), code, reason)
    }

    /// Tells every socket of one sign-in here to close with `code` and `reason` (its task
    /// closes it and leaves); returns how many were told.
    pub fn close_session(&self, session: &SessionId, code: u16, reason: &'static str) -> usize {
        let state = self.lock();
        state.close(state.sessions.get(session), code, reason)
    }

    /// The sign-ins with a socket here (a catch-up after a lost subscription checks them).
    pub fn sessions(&self) -> Vec<SessionId> {
        self.lock().sessions.keys().copied().collect()
    }
}

impl State {
    /// Signals each of `sockets` (an index's entry: socket id → room) to close.
    fn close(&self, sockets: Option<&Places>, code: u16, reason: &str) -> usize {
        let sockets = sockets.into_iter().flat_map(Places::iter);
        sockets
            .filter_map(|(socket, room)| self.rooms.get(room)?.sockets.get(&socket))
            .map(|socket| {
                let reason = reason.to_owned().into();
                socket.outbox.signal(Signal::Close(code, reason));
            })
            .count()
    }
}
