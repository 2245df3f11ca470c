//! How a connection ends: why, and the last words on the socket (an answered close, a close
//! with our code and reason, or nothing when the connection is gone), counted and logged.

use std::{borrow::Cow, net::IpAddr};

use tokio::io::{AsyncRead, AsyncWrite};

use super::CLOSE_GRACE;
use crate::{
    metrics::Reject,
    state::AppState,
    ws::{WsSocket, close},
};

pub(super) const WRITE_TIMED_OUT: &str = "write timed out";
pub(super) const OVERFLOWED: &str = "too slow: outbound queue overflowed";
pub(super) const FELL_BEHIND: &str = "too slow: could not keep up";

/// How a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum End {
    /// The TCP connection ended or broke: nothing more can be sent.
    Gone,
    /// The client sent a close frame, which we answer.
    ClientClosed(Option<u16>),
    /// We close, with this code.
    Close(u16, Cow<'static, str>),
}

impl End {
    /// A slow reader's end: its outbox overflowed.
    pub(super) fn slow_reader() -> End {
        End::Close(close::POLICY, OVERFLOWED.into())
    }

    /// Says the last words on `socket` for this end, and counts and logs it.
    pub(super) async fn close<T: AsyncRead + AsyncWrite + Unpin + Send>(
        self,
        socket: &mut WsSocket<T>,
        state: &AppState,
        user: u64,
        client: IpAddr,
    ) {
        match self {
            End::Gone => tracing::info!(user, %client, "connection lost"),
            End::ClientClosed(code) => {
                tracing::info!(user, %client, code, "closed by client");
                socket.answer_close(code, CLOSE_GRACE).await;
            }
            End::Close(code, reason) => {
                if code == close::POLICY
                    && matches!(reason.as_ref(), OVERFLOWED | WRITE_TIMED_OUT | FELL_BEHIND)
                {
                    state.metrics.slow_readers.inc();
                }
                if let Some(reject) = Reject::for_close_code(code) {
                    state.metrics.reject(reject);
                }
                tracing::info!(user, %client, code, %reason, "closed by server");
                if code == close::POLICY {
                    // A slow reader: what it has not taken by now it will not get.
                    socket.discard_queued();
                }
                socket.close(code, &reason, CLOSE_GRACE).await;
            }
        }
    }
}
