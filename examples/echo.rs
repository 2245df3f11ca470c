//! An echo server over passerby's own WebSocket (`passerby::ws`), for conformance suites.
//!
//! It answers like the chat socket does: text comes back as text, a ping gets its pong, a
//! close gets its close; binary is refused with 1003 (the chat speaks JSON text only) and a
//! message over the 64 KiB limit with 1009. `scripts/autobahn` runs the Autobahn|Testsuite
//! against it; the results are in docs/AUTOBAHN.md.
//!
//! Run with
//! ```not_rust
//! cargo run --example echo -- 9001    # or ECHO_PORT=9001; port 0 picks a free one
//! ```
//! It prints the address it listens on, then serves `ws://127.0.0.1:PORT/` until stopped.

use std::time::Duration;

use axum::{Router, response::Response, routing::get};
use passerby::{
    startup::shutdown_signal,
    ws::{
        ReadError, ServerSocket, WsUpgrade, close,
        frame::{self, Incoming},
    },
};

/// How long a closing socket waits for the client's close frame.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let port = match std::env::args()
        .nth(1)
        .or_else(|| std::env::var("ECHO_PORT").ok())
    {
        Some(port) => port.parse::<u16>()?,
        None => 9001,
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    // Scripts read this line to learn the port when they asked for port 0.
    println!("listening on ws://{}", listener.local_addr()?);
    axum::serve(listener, app())
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    Ok(())
}

/// The router, apart from `main` so tests can serve it.
fn app() -> Router {
    Router::new().route("/", get(upgrade))
}

async fn upgrade(upgrade: WsUpgrade) -> Response {
    // The chat's default limit (--max-ws-message-bytes), so the suite measures what we ship.
    upgrade
        .max_message_bytes(frame::MAX_MESSAGE_BYTES)
        .on_upgrade(echo)
}

async fn echo(mut socket: ServerSocket) {
    loop {
        let message = match socket.next().await {
            Some(Ok(message)) => message,
            Some(Err(ReadError::Frame(e))) => {
                return socket.close(e.close_code(), e.reason(), CLOSE_GRACE).await;
            }
            Some(Err(ReadError::Io(_))) | None => return,
        };
        match message {
            Incoming::Text(text) => {
                socket.queue(frame::text(|b| b.extend_from_slice(text.as_bytes())));
            }
            Incoming::Binary => {
                let reason = "binary frames are not supported";
                return socket.close(close::UNSUPPORTED, reason, CLOSE_GRACE).await;
            }
            Incoming::Ping(payload) => socket.pong(&payload),
            Incoming::Pong => continue,
            Incoming::Close(code) => return socket.answer_close(code, CLOSE_GRACE).await,
        }
        if socket.flush().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::{Message, protocol::frame::coding::CloseCode};

    const WAIT: Duration = Duration::from_secs(10);

    #[tokio::test]
    async fn echoes_text_answers_pings_and_refuses_binary_with_1003() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app()).await });
        let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/"))
            .await
            .unwrap();
        ws.send(Message::text("你好")).await.unwrap();
        ws.send(Message::Ping(b"p".to_vec().into())).await.unwrap();
        ws.send(Message::binary(vec![1, 2])).await.unwrap();
        let mut next = async || tokio::time::timeout(WAIT, ws.next()).await.unwrap();
        assert_eq!(next().await.unwrap().unwrap(), Message::text("你好"));
        assert_eq!(
            next().await.unwrap().unwrap(),
            Message::Pong(b"p".to_vec().into())
        );
        match next().await.unwrap().unwrap() {
            Message::Close(Some(close)) => assert_eq!(close.code, CloseCode::Unsupported),
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}
