//! Moderation: moderators and their tokens, the admin API's authentication, the audit log,
//! kicks, bans and mutes.

mod audit;
mod auth;
mod bans;
mod cli;
mod kick;
mod mute;
mod page;
mod rooms;
mod word_filter;

use std::{path::Path, process::Command};

use passerby::config::Config;
use reqwest::Method;
use serde_json::Value;

use crate::helpers::{Client, TestApp, spawn_in};

/// Runs `passerby --data-dir DIR moderator ARGS…`: (success, stdout, stderr).
pub fn moderator(data_dir: &Path, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_passerby"))
        .arg("--data-dir")
        .arg(data_dir)
        .arg("moderator")
        .args(args)
        .env_remove("PASSERBY_DATA_DIR")
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("the binary runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Adds a moderator with the real command and returns their token.
pub fn add_moderator(data_dir: &Path, name: &str) -> String {
    let (ok, stdout, stderr) = moderator(data_dir, &["add", name]);
    assert!(ok, "moderator add {name} failed: {stderr}");
    stdout.trim().to_owned()
}

/// A server on its own data dir with moderator `alice`.
pub struct Moderated {
    pub app: TestApp,
    pub dir: tempfile::TempDir,
    pub token: String,
}

pub async fn spawn_moderated(configure: impl FnOnce(&mut Config)) -> Moderated {
    let dir = tempfile::tempdir().unwrap();
    let token = add_moderator(dir.path(), "alice");
    let app = spawn_in(dir.path().to_owned(), configure).await;
    Moderated { app, dir, token }
}

impl Moderated {
    /// A request to the API with `token` as the bearer (none if `None`).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut request = self.app.http.request(method, self.app.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.expect("API request")
    }

    /// `POST /admin/session` with `token`, as the moderators' page signs in.
    pub async fn open_session(&self, token: &str) -> reqwest::Response {
        let body = serde_json::json!({ "token": token });
        self.call(Method::POST, "/admin/session", None, Some(body), &[])
            .await
    }

    /// Alice's moderator cookie, from `POST /admin/session`.
    pub async fn session_cookie(&self) -> String {
        let signed_in = self.open_session(&self.token).await;
        assert_eq!(signed_in.status(), 200);
        crate::helpers::cookie_pair(&signed_in).expect("a moderator cookie")
    }

    /// A call as alice: the status and the JSON body.
    pub async fn api(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let response = self.call(method, path, Some(&self.token), body, &[]).await;
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Stops the server and starts another on the same data dir, as a restart would.
    pub async fn restart(self, configure: impl FnOnce(&mut Config)) -> Moderated {
        let Moderated { app, dir, token } = self;
        app.stop().await.unwrap();
        let app = spawn_in(dir.path().to_owned(), configure).await;
        Moderated { app, dir, token }
    }
}

/// Alice says `text` and both see it, whoever came and went meanwhile.
pub async fn chat_through(alice: &mut Client, bob: &mut Client, text: &str) {
    alice.say(text).await;
    for client in [bob, alice] {
        loop {
            let event = client.next_event().await;
            if event["type"] == "chat" && event["data"] == text {
                break;
            }
            assert!(
                matches!(event["type"].as_str(), Some("join" | "left")),
                "unexpected {event}"
            );
        }
    }
}
