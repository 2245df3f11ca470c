//! WebSocket (RFC 6455, server side): the upgrade handshake, framing, and the socket.
//!
//! Why our own and not axum's `ws`: tungstenite copies every outgoing frame into a per-socket
//! buffer that keeps its high-water capacity forever, and formats each frame once per
//! recipient. Here a broadcast is encoded once and every socket writes the same bytes with
//! `writev`, and an idle socket owns no buffers at all (see docs/BENCHMARKS.md).

pub mod close;
mod decode;
pub mod frame;
mod socket;

use std::future::Future;

use futures_util::{
    FutureExt,
    future::{self, Either},
};

use axum::{
    extract::FromRequestParts,
    http::{HeaderMap, HeaderValue, Method, StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
};
use base64::{Engine as _, engine::general_purpose::STANDARD};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use sha1::{Digest, Sha1};

pub use socket::{ReadError, WsSocket};

/// What a server socket reads and writes: the upgraded HTTP/1.1 connection.
pub type ServerIo = TokioIo<Upgraded>;

/// The socket type handlers get.
pub type ServerSocket = WsSocket<ServerIo>;

const ACCEPT_GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// A valid WebSocket upgrade request, ready to be answered with 101.
pub struct WsUpgrade {
    key: HeaderValue,
    on_upgrade: OnUpgrade,
    max_message_bytes: usize,
}

/// Why a request that asked to upgrade cannot.
#[derive(Debug, thiserror::Error)]
pub enum UpgradeRejection {
    #[error("WebSocket upgrades use GET")]
    NotGet,
    #[error("not a WebSocket upgrade: Connection must include upgrade and Upgrade be websocket")]
    NotUpgrade,
    #[error("unsupported WebSocket version; this server speaks 13")]
    Version,
    #[error("Sec-WebSocket-Key is missing")]
    NoKey,
    #[error("this connection cannot be upgraded")]
    NotUpgradable,
}

impl IntoResponse for UpgradeRejection {
    fn into_response(self) -> Response {
        let status = match self {
            UpgradeRejection::NotGet => StatusCode::METHOD_NOT_ALLOWED,
            UpgradeRejection::Version | UpgradeRejection::NotUpgradable => {
                StatusCode::UPGRADE_REQUIRED
            }
            UpgradeRejection::NotUpgrade | UpgradeRejection::NoKey => StatusCode::BAD_REQUEST,
        };
        let mut response = crate::error::ApiError::Status(status, self.to_string()).into_response();
        if matches!(self, UpgradeRejection::Version) {
            response.headers_mut().insert(
                header::SEC_WEBSOCKET_VERSION,
                HeaderValue::from_static("13"),
            );
        }
        response
    }
}

impl WsUpgrade {
    /// Does the request ask for an upgrade at all? Then it is a socket or an error, not a page.
    pub fn requested(headers: &HeaderMap) -> bool {
        headers.contains_key(header::UPGRADE)
    }

    /// The largest message the client may send (by default `frame::MAX_MESSAGE_BYTES`);
    /// larger is closed with 1009.
    pub fn max_message_bytes(mut self, limit: usize) -> Self {
        self.max_message_bytes = limit;
        self
    }

    /// Answers 101 and runs `serve` on the socket once hyper hands the connection over.
    pub fn on_upgrade<F, Fut>(self, serve: F) -> Response
    where
        F: FnOnce(ServerSocket) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let accept = accept_key(self.key.as_bytes());
        let (on_upgrade, limit) = (self.on_upgrade, self.max_message_bytes);
        // Chained, not an async block: a block would keep `on_upgrade` and `serve` beside the
        // future `serve` returns for the socket's whole life; `then` holds one or the other.
        tokio::spawn(on_upgrade.then(move |upgraded| match upgraded {
            Ok(upgraded) => Either::Left(serve(WsSocket::new(TokioIo::new(upgraded), limit))),
            Err(e) => {
                tracing::debug!(error = %e, "upgrade failed");
                Either::Right(future::ready(()))
            }
        }));
        let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
        response
    }
}

impl<S: Send + Sync> FromRequestParts<S> for WsUpgrade {
    type Rejection = UpgradeRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, UpgradeRejection> {
        if parts.method != Method::GET {
            return Err(UpgradeRejection::NotGet);
        }
        let has_token = |name, token: &str| {
            parts.headers.get_all(name).iter().any(|v| {
                v.to_str()
                    .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
            })
        };
        if !has_token(header::CONNECTION, "upgrade") || !has_token(header::UPGRADE, "websocket") {
            return Err(UpgradeRejection::NotUpgrade);
        }
        if parts
            .headers
            .get(header::SEC_WEBSOCKET_VERSION)
            .map(HeaderValue::as_bytes)
            != Some(b"13")
        {
            return Err(UpgradeRejection::Version);
        }
        let key = parts
            .headers
            .get(header::SEC_WEBSOCKET_KEY)
            .cloned()
            .ok_or(UpgradeRejection::NoKey)?;
        let on_upgrade = parts
            .extensions
            .remove::<OnUpgrade>()
            .ok_or(UpgradeRejection::NotUpgradable)?;
        Ok(WsUpgrade {
            key,
            on_upgrade,
            max_message_bytes: frame::MAX_MESSAGE_BYTES,
        })
    }
}

fn accept_key(key: &[u8]) -> HeaderValue {
    let mut sha1 = Sha1::new();
    sha1.update(key);
    sha1.update(ACCEPT_GUID);
    HeaderValue::from_str(&STANDARD.encode(sha1.finalize())).expect("base64 is a valid header")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_key_matches_the_rfc_example() {
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }
}
