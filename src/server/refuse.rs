//! The answer to a connection refused at accept: a minimal HTTP/1.1 response in the API's
//! error shape, then the close. Written by hand because hyper never sees these connections.

use std::{
    sync::atomic::{AtomicUsize, Ordering},
    time::Duration,
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::metrics::Refused;

/// How long a refused client gets to read the answer before the socket closes. Closing while
/// its request is still unread would reset the connection and could lose the answer.
const LINGER: Duration = Duration::from_millis(250);
/// Refused sockets lingering at once; past this they close at once, so a flood of refused
/// connections cannot hold descriptors.
const MAX_LINGERING: usize = 64;
/// What a refused client may send while we linger, at most.
const DRAIN_BYTES: usize = 16 * 1024;

static LINGERING: AtomicUsize = AtomicUsize::new(0);

/// The raw response for `reason`.
pub fn response(reason: Refused) -> Vec<u8> {
    let (status, retry_after, message) = match reason {
        Refused::Total => (
            "503 Service Unavailable",
            5,
            "the server is at its connection limit",
        ),
        Refused::PerAddress | Refused::PerUser => (
            "429 Too Many Requests",
            1,
            "too many connections from your address",
        ),
    };
    let body = serde_json::json!({ "code": 1, "data": message }).to_string();
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         retry-after: {retry_after}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Answers `tcp` with the refusal and closes it.
pub async fn refuse(mut tcp: TcpStream, reason: Refused) {
    let answer = response(reason);
    let lingering = LINGERING.fetch_add(1, Ordering::Relaxed) < MAX_LINGERING;
    let _ = tokio::time::timeout(LINGER, async {
        // A fresh socket's send buffer is empty: this write does not wait on the client.
        tcp.write_all(&answer).await?;
        tcp.shutdown().await?;
        if lingering {
            let mut sink = [0u8; 1024];
            let mut drained = 0;
            while drained < DRAIN_BYTES {
                match tcp.read(&mut sink).await? {
                    0 => break,
                    n => drained += n,
                }
            }
        }
        std::io::Result::Ok(())
    })
    .await;
    LINGERING.fetch_sub(1, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_complete_responses_in_the_error_shape() {
        let text = String::from_utf8(response(Refused::PerAddress)).unwrap();
        assert!(
            text.starts_with("HTTP/1.1 429 Too Many Requests\r\n"),
            "{text}"
        );
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("content-length: {}", body.len())));
        assert!(head.contains("retry-after: 1") && head.contains("connection: close"));
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["code"], 1);
        let text = String::from_utf8(response(Refused::Total)).unwrap();
        assert!(
            text.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
            "{text}"
        );
    }
}
