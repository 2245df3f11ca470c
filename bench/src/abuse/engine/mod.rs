//! The engine attacks of issue 13: whispers amplified by many rooms, catch-up as a weapon, join
//! churn, a crowd leaving at once, and a flood of new rooms. Each counts what the server
//! answered (statuses, close codes, `error` events) and keeps going past refusals.

pub mod catchup;
pub mod churn;
pub mod leave;
pub mod whisper;

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    time::Duration,
};

use anyhow::Context;
use futures_util::{StreamExt, stream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, http::HeaderValue};

use super::{Ctx, raw};
use crate::client::Ws;

pub const HANDSHAKE: Duration = Duration::from_secs(10);

/// What an attack set up before the figures start: a room filled with messages, a crowd in
/// a room. Its cost is the setting, not the attack.
pub enum Prepared {
    Nothing,
    Room(catchup::Room),
    Crowd(leave::Crowd),
}

pub async fn prepare(ctx: &Ctx, which: &str) -> anyhow::Result<Prepared> {
    Ok(match which {
        "catchup" => Prepared::Room(catchup::fill(ctx).await?),
        "leave" => Prepared::Crowd(leave::gather(ctx).await?),
        _ => Prepared::Nothing,
    })
}

/// Loopback address `127.0.<group>.<1 + n>`: visitors that are not the one attacker, each
/// address under the per-address caps (sign-ins, connections).
pub fn address(group: u8, n: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, group, 1 + (n % 250) as u8))
}

/// Signs in `count` users from `from`, named `<prefix><i>`: each one's cookie and id.
pub async fn users(
    addr: SocketAddr,
    from: IpAddr,
    prefix: &str,
    count: usize,
) -> anyhow::Result<Vec<(String, u64)>> {
    let http = reqwest::Client::builder()
        .local_address(from)
        .timeout(Duration::from_secs(10))
        .build()?;
    let signed: Vec<anyhow::Result<(String, u64)>> = stream::iter(0..count)
        .map(|i| {
            let http = &http;
            async move { crate::client::sign_in_as(http, addr, &format!("{prefix}{i}")).await }
        })
        .buffered(8)
        .collect()
        .await;
    signed.into_iter().collect()
}

/// A reading client's socket from `from`; `query` follows `/ws?room=`.
pub async fn open(addr: SocketAddr, from: IpAddr, cookie: &str, query: &str) -> anyhow::Result<Ws> {
    let mut request = format!("ws://{addr}/ws?room={query}").into_client_request()?;
    request
        .headers_mut()
        .insert("cookie", HeaderValue::from_str(cookie)?);
    let stream = raw::tcp_from(from, addr).await?;
    let (ws, _) = tokio::time::timeout(
        HANDSHAKE,
        tokio_tungstenite::client_async(request, tokio_tungstenite::MaybeTlsStream::Plain(stream)),
    )
    .await
    .context("handshake timed out")??;
    Ok(ws)
}

/// An event's `type`, and the whole event.
pub fn event(text: &str) -> Option<(String, serde_json::Value)> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    Some((v.get("type")?.as_str()?.to_owned(), v))
}

/// The joins and lefts an event tells of: one for a `join` or `left`, and in a big room a
/// `presence`'s lists (each cut to `--list-page`, so a flood past it counts short).
pub fn moves(kind: &str, v: &serde_json::Value) -> (u64, u64) {
    let len = |list: &str| {
        v.pointer(&format!("/data/{list}"))
            .and_then(|l| l.as_array())
            .map_or(0, |l| l.len() as u64)
    };
    match kind {
        "join" => (1, 0),
        "left" => (0, 1),
        "presence" => (len("joined"), len("left")),
        _ => (0, 0),
    }
}

/// An `error` event's text, cut short enough to count alike ones together.
pub fn error_key(v: &serde_json::Value) -> String {
    let text = v.get("data").and_then(|d| d.as_str()).unwrap_or("?");
    let short: String = text.chars().take(48).collect();
    format!("error \"{short}\"")
}

/// Opens a socket to `room`, waits for the server's first frame, and closes it at once: how
/// it went, `joined`, `close 4005` or `HTTP 429`. The connection is reset rather than left
/// in TIME_WAIT, so thousands a second do not use up this machine's ports.
pub async fn touch(from: IpAddr, addr: SocketAddr, cookie: &str, room: &str) -> String {
    let mut up = match raw::upgrade_from(from, addr, cookie, room, HANDSHAKE).await {
        Ok(up) => up,
        Err(why) => return why,
    };
    let first = async {
        loop {
            let (frames, _) = raw::server_frames(&up.seen);
            if let Some((op, payload)) = frames.first() {
                return match op {
                    8 => format!(
                        "close {}",
                        payload
                            .get(..2)
                            .map_or(1005, |c| u16::from_be_bytes([c[0], c[1]]))
                    ),
                    _ => "joined".to_owned(),
                };
            }
            let mut buf = [0u8; 4096];
            match up.stream.read(&mut buf).await {
                Ok(0) | Err(_) => return "closed".to_owned(),
                Ok(n) => up.seen.extend_from_slice(&buf[..n]),
            }
        }
    };
    let how = tokio::time::timeout(HANDSHAKE, first)
        .await
        .unwrap_or_else(|_| "no first frame".to_owned());
    let _ = up
        .stream
        .write_all(&raw::frame(CLOSE, true, &1000u16.to_be_bytes()))
        .await;
    let _ = up.stream.set_zero_linger();
    how
}

pub const CLOSE: u8 = 8;
