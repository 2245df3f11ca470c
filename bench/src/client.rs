//! Bench clients: sign in over HTTP, open a socket, read events without parsing all of them.

use std::net::SocketAddr;

use anyhow::Context;
use tokio::net::TcpStream;
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream,
    tungstenite::{client::IntoClientRequest, http::HeaderValue, protocol::WebSocketConfig},
};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Where the server under test listens, and whether it knows rooms (the seed does not).
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    /// More instances of the same chat (over Redis): clients are spread over all of them.
    pub others: Vec<SocketAddr>,
    pub rooms: bool,
}

impl Target {
    /// The instance client `i` talks to.
    pub fn instance(&self, i: usize) -> Target {
        let all = 1 + self.others.len();
        let addr = match i % all {
            0 => self.addr,
            n => self.others[n - 1],
        };
        Target {
            addr,
            others: Vec::new(),
            rooms: self.rooms,
        }
    }

    pub async fn sign_in(&self, http: &reqwest::Client, name: &str) -> anyhow::Result<String> {
        sign_in(http, self.addr, name).await
    }

    pub async fn connect(&self, cookie: &str, room: Option<&str>) -> anyhow::Result<Ws> {
        let path = match (room, self.rooms) {
            (Some(room), true) => format!("/ws?room={room}"),
            _ => "/ws".to_owned(),
        };
        let mut request = format!("ws://{}{path}", self.addr).into_client_request()?;
        request
            .headers_mut()
            .insert("cookie", HeaderValue::from_str(cookie)?);
        let config = WebSocketConfig::default()
            .read_buffer_size(16 * 1024)
            .write_buffer_size(0);
        let stream = TcpStream::connect(self.addr).await?;
        stream.set_nodelay(true)?;
        let (ws, _) = tokio_tungstenite::client_async_with_config(
            request,
            MaybeTlsStream::Plain(stream),
            Some(config),
        )
        .await?;
        Ok(ws)
    }
}

/// The start of every event, `{"id":N,"type":"KIND"`, read without a JSON parser so the
/// generator spends its core on receiving, not parsing.
pub fn head(text: &str) -> Option<(u64, &str)> {
    let rest = text.strip_prefix("{\"id\":")?;
    let end = rest.find(',')?;
    let id = rest[..end].parse().ok()?;
    let rest = rest[end..].strip_prefix(",\"type\":\"")?;
    let kind = &rest[..rest.find('"')?];
    Some((id, kind))
}

/// The send time a latency probe message carries: `data` is `"t:<ns>"`.
pub fn probe_time(text: &str) -> Option<u64> {
    let at = text.rfind("\"data\":\"t:")?;
    let rest = &text[at + 10..];
    rest[..rest.find('"')?].parse().ok()
}

/// Signs `name` in at `addr`; the cookie to send back, `name=value`.
pub async fn sign_in(
    http: &reqwest::Client,
    addr: SocketAddr,
    name: &str,
) -> anyhow::Result<String> {
    Ok(sign_in_as(http, addr, name).await?.0)
}

/// Signs in as `name`: the cookie, and the user id the server gave.
pub async fn sign_in_as(
    http: &reqwest::Client,
    addr: SocketAddr,
    name: &str,
) -> anyhow::Result<(String, u64)> {
    let response = http
        .post(format!("http://{addr}/wsin"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("name={name}"))
        .send()
        .await?;
    let status = response.status();
    anyhow::ensure!(status.is_success(), "sign-in: {status}");
    let cookie = response
        .headers()
        .get("set-cookie")
        .context("no cookie")?
        .to_str()?
        .split(';')
        .next()
        .unwrap_or_default()
        .to_owned();
    let body: serde_json::Value = serde_json::from_slice(&response.bytes().await?)?;
    let id = body
        .pointer("/user/id")
        .and_then(serde_json::Value::as_u64)
        .context("no user id")?;
    Ok((cookie, id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_head_of_both_servers_events() {
        let event = r#"{"id":12,"type":"chat","user":{"type":"游客","id":1,"name":"a","image":1},"data":"t:99","time":1}"#;
        assert_eq!(head(event), Some((12, "chat")));
        assert_eq!(probe_time(event), Some(99));
        assert_eq!(head("nope"), None);
    }
}
