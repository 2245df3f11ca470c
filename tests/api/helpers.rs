//! `spawn_app` starts the server in-process on an ephemeral port; `Client` is a WebSocket peer.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use futures_util::{SinkExt, StreamExt};
use passerby::{config::Config, startup::App};
use serde_json::Value;
use tokio::{net::TcpStream, sync::oneshot, task::JoinHandle};
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream,
    tungstenite::{self, Message, client::IntoClientRequest, http::HeaderValue},
};

/// Generous, because CI machines are shared; waits end as soon as the event arrives.
pub const WAIT: Duration = Duration::from_secs(5);

pub struct TestApp {
    pub addr: SocketAddr,
    pub http: reqwest::Client,
    _tmp: Option<tempfile::TempDir>,
    shutdown: Option<oneshot::Sender<()>>,
    server: JoinHandle<anyhow::Result<()>>,
}

pub async fn spawn_app() -> TestApp {
    spawn_with(|_| {}).await
}

pub async fn spawn_with(configure: impl FnOnce(&mut Config)) -> TestApp {
    let tmp = tempfile::tempdir().expect("temp dir");
    let mut app = spawn_in(tmp.path().to_owned(), configure).await;
    app._tmp = Some(tmp);
    app
}

/// Starts a server on an existing data dir, as a restart would.
pub async fn spawn_in(data_dir: PathBuf, configure: impl FnOnce(&mut Config)) -> TestApp {
    if std::env::var_os("TEST_LOG").is_some() {
        passerby::telemetry::init();
    }
    let mut config = Config::with_data_dir(&data_dir);
    config.bind = "127.0.0.1:0".parse().unwrap();
    config.static_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("static");
    // Most tests watch a `left` follow its socket's close; the grace has tests of its own.
    config.presence_grace_secs = Duration::ZERO;
    configure(&mut config);
    let app = App::build(config).await.expect("server builds");
    let addr = app.local_addr();
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run(async move {
        let _ = rx.await;
    }));
    TestApp {
        addr,
        http: reqwest::Client::new(),
        _tmp: None,
        shutdown: Some(tx),
        server,
    }
}

impl TestApp {
    /// A server this test did not start in-process (the binary as a child): the same helpers.
    pub fn external(addr: SocketAddr) -> TestApp {
        TestApp {
            addr,
            http: reqwest::Client::new(),
            _tmp: None,
            shutdown: None,
            server: tokio::spawn(async { Ok(()) }),
        }
    }

    /// Opens a socket that asks for every event after `since`.
    pub async fn connect_since(&self, cookie: &str, since: u64) -> Client {
        self.connect_to(&format!("/ws?since={since}"), &[("Cookie", cookie)])
            .await
            .expect("socket opens")
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .send()
            .await
            .expect("GET request")
    }

    /// The body of a GET, whatever its status.
    pub async fn text(&self, path: &str) -> String {
        self.get(path).await.text().await.expect("a text body")
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }

    pub async fn post_sign_in(&self, form: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(self.url("/wsin"))
            .form(form)
            .send()
            .await
            .expect("sign-in request")
    }

    /// Signs in and returns the `Cookie` header value, `name=…`.
    pub async fn sign_in(&self, name: &str) -> String {
        let response = self.post_sign_in(&[("name", name)]).await;
        assert_eq!(response.status(), 200);
        cookie_pair(&response).expect("sign-in sets the cookie")
    }

    /// The page `GET /ws` serves to the holder of `cookie`.
    pub async fn page(&self, cookie: &str) -> String {
        let response = self.http.get(self.url("/ws")).header("cookie", cookie);
        let response = response.send().await.expect("page request");
        response.text().await.expect("the page")
    }

    /// Signs in and opens a socket, which has received its `join`, `list` and `history`.
    pub async fn join(&self, name: &str) -> (Client, Value) {
        let cookie = self.sign_in(name).await;
        let mut client = self.connect(&cookie).await;
        let join = client.expect("join").await;
        let list = client.expect("list").await;
        assert_eq!(join["user"], list["user"]);
        client.expect("history").await;
        (client, list["user"].clone())
    }

    pub async fn connect(&self, cookie: &str) -> Client {
        self.connect_to("/ws", &[("Cookie", cookie)])
            .await
            .expect("socket opens")
    }

    pub async fn connect_to(
        &self,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<Client, tungstenite::Error> {
        let mut request = self.ws_url(path).into_client_request()?;
        for (name, value) in headers {
            request.headers_mut().insert(
                tungstenite::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        let (ws, _) = tokio_tungstenite::connect_async(request).await?;
        Ok(Client { ws })
    }

    /// Stops the server as SIGTERM would and waits for it to finish.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        (&mut self.server).await.expect("server task")
    }

    /// The `/metrics` text.
    pub async fn metrics(&self) -> String {
        let response = self.http.get(self.url("/metrics")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        response.text().await.unwrap()
    }

    /// Waits until `series` in `/metrics` reads `expected`; its last value if it never does.
    pub async fn metric_becomes(&self, series: &str, expected: f64) -> Option<f64> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let value = metric(&self.metrics().await, series);
            if value == Some(expected) || tokio::time::Instant::now() > deadline {
                return value;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until `reason`'s count of refused chat messages reads `expected`.
    pub async fn rejected_becomes(&self, reason: &str, expected: f64) -> Option<f64> {
        self.metric_becomes(&rejected_messages(reason), expected)
            .await
    }

    pub fn trigger_shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    pub async fn finished(&mut self) -> anyhow::Result<()> {
        (&mut self.server).await.expect("server task")
    }
}

/// The value of one series, e.g. `passerby_messages_rejected_total{reason="too_long"}`.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// The series counting chat messages refused for `reason`.
pub fn rejected_messages(reason: &str) -> String {
    format!(r#"passerby_messages_rejected_total{{reason="{reason}"}}"#)
}

/// The series counting uploads refused for `reason`.
pub fn rejected_uploads(reason: &str) -> String {
    format!(r#"passerby_uploads_rejected_total{{reason="{reason}"}}"#)
}

pub fn cookie_pair(response: &reqwest::Response) -> Option<String> {
    let set = response.headers().get("set-cookie")?.to_str().ok()?;
    Some(set.split(';').next()?.to_owned())
}

pub struct Client {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Client {
    /// The next event, skipping pings. Panics on close or after `WAIT`.
    pub async fn next_event(&mut self) -> Value {
        loop {
            let message = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("an event within the wait")
                .expect("socket still open")
                .expect("a readable frame");
            match message {
                Message::Text(text) => return serde_json::from_str(&text).expect("JSON event"),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("expected an event, got {other:?}"),
            }
        }
    }

    /// The next event, which must be of `kind`.
    pub async fn expect(&mut self, kind: &str) -> Value {
        let event = self.next_event().await;
        assert_eq!(event["type"], kind, "unexpected event {event}");
        event
    }

    /// Events that arrive within `window`; for checking that nothing (else) was sent.
    pub async fn events_within(&mut self, window: Duration) -> Vec<Value> {
        let mut events = Vec::new();
        let deadline = tokio::time::Instant::now() + window;
        while let Ok(Some(Ok(message))) = tokio::time::timeout_at(deadline, self.ws.next()).await {
            if let Message::Text(text) = message {
                events.push(serde_json::from_str(&text).expect("JSON event"));
            }
        }
        events
    }

    /// Reads until an event is `wanted`; it, and the events read before it.
    pub async fn until(&mut self, wanted: impl Fn(&Value) -> bool) -> (Value, Vec<Value>) {
        let mut before = Vec::new();
        loop {
            let event = self.next_event().await;
            if wanted(&event) {
                return (event, before);
            }
            before.push(event);
        }
    }

    /// The events read before the chat `text`, which it waits for.
    pub async fn before_chat(&mut self, text: &str) -> Vec<Value> {
        self.until(|e| e["type"] == "chat" && e["data"] == text)
            .await
            .1
    }

    pub async fn say(&mut self, text: &str) {
        self.ws.send(Message::text(text)).await.expect("frame sent");
    }

    /// Reads until the server closes; the close code, or `None` if the TCP connection just ended.
    pub async fn close_code(&mut self) -> Option<(u16, String)> {
        loop {
            match tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("the socket closes within the wait")
            {
                Some(Ok(Message::Close(Some(frame)))) => {
                    return Some((frame.code.into(), frame.reason.to_string()));
                }
                Some(Ok(Message::Close(None))) | None | Some(Err(_)) => return None,
                Some(Ok(_)) => continue,
            }
        }
    }
}

/// Reads the server's first stdout line, `listening on http://ADDR`, and returns ADDR.
pub fn announced_address(stdout: impl std::io::Read) -> SocketAddr {
    use std::io::BufRead;
    let mut line = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .expect("the server's stdout");
    line.trim()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("the server announces its address, not {line:?}"))
        .parse()
        .expect("a socket address")
}

/// Alice and Bob in the lobby, each having received their own join, list and history.
pub async fn two_chatting(app: &TestApp) -> (Client, Client) {
    let (mut alice, _) = app.join("alice").await;
    let (bob, _) = app.join("bob").await;
    assert_eq!(alice.expect("join").await["data"], "bob joined.");
    (alice, bob)
}

/// Alice says something and both see it.
pub async fn still_chatting(alice: &mut Client, bob: &mut Client, text: &str) {
    alice.say(text).await;
    assert_eq!(bob.expect("chat").await["data"], text);
    assert_eq!(alice.expect("chat").await["data"], text);
}

/// Reads the rest of a fresh connection's greeting (`join` if it is the user's first socket,
/// then `list`) and returns the `history` event after it.
pub async fn greeting(client: &mut Client) -> Value {
    loop {
        let event = client.next_event().await;
        match event["type"].as_str() {
            Some("join" | "list") => continue,
            Some("history") => return event,
            _ => panic!("unexpected event before history: {event}"),
        }
    }
}

/// A port nobody listens on now, for a program a test starts.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Sends `which` (`-STOP`, `-CONT`) to a program a test started; `name` says which in a failure.
pub fn signal(child: &std::process::Child, which: &str, name: &str) {
    let status = std::process::Command::new("kill")
        .args([which, &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill {which} {name}");
}
