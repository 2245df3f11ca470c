//! passerby behind a real nginx, configured by the shipped `nginx/passerby.conf`.
//!
//! The browser side connects from 127.0.0.2, so the address nginx forwards differs from the
//! TCP peer passerby sees (nginx, on 127.0.0.1): the logs show which one the server believed.

mod site;

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use tokio::net::TcpSocket;
use tokio_tungstenite::{
    MaybeTlsStream,
    tungstenite::{client::IntoClientRequest, http::HeaderValue},
};

use crate::{
    helpers::{Client, WAIT, cookie_pair, free_port, metric, rejected_messages},
    server::ServerProcess,
};

const SITE: &str = include_str!("../../../nginx/passerby.conf");
/// Where the browser is: a loopback address other than nginx's own.
pub const BROWSER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
/// Short, so the test can outlast it; the shipped config says 60 s.
const READ_TIMEOUT_SECS: u64 = 2;

/// nginx in the foreground on a free port, killed on drop.
pub struct Nginx {
    port: u16,
    child: Child,
    dir: tempfile::TempDir,
}

impl Nginx {
    /// Starts nginx in front of `app`, serving `/static/` from its own copy of `static/`
    /// plus a file the app does not have.
    fn start(app: SocketAddr) -> Nginx {
        Nginx::start_upstream(&[app])
    }

    /// nginx in front of several instances: the shipped upstream, with one `server` each.
    pub fn start_upstream(apps: &[SocketAddr]) -> Nginx {
        Nginx::start_changed(apps, &[])
    }

    /// nginx in front of `apps`, with each `(line, replacement)` of the shipped site changed.
    pub fn start_changed(apps: &[SocketAddr], changes: &[(&str, &str)]) -> Nginx {
        let nginx = find_nginx();
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("install");
        copy_dir(
            Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/static")),
            &root.join("static"),
        );
        std::fs::write(root.join("static/only-in-nginx.txt"), "served by nginx\n").unwrap();
        let port = free_port();
        let site = site_config(apps, port, &root, changes);
        std::fs::write(
            dir.path().join("nginx.conf"),
            wrap_in_http(&site, dir.path()),
        )
        .unwrap();
        let child = Command::new(&nginx)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(dir.path().join("nginx.conf"))
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", nginx.display()));
        let mut nginx = Nginx { port, child, dir };
        nginx.wait_until_listening();
        nginx
    }

    fn wait_until_listening(&mut self) {
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("nginx exited with {status}:\n{}", self.error_log());
            }
            assert!(
                start.elapsed() < WAIT,
                "nginx is not listening:\n{}",
                self.error_log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    pub fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.origin())
    }

    /// An HTTP client that connects from the browser's address.
    fn browser(&self) -> reqwest::Client {
        self.client_at(BROWSER)
    }

    /// An HTTP client that connects from `address`.
    pub fn client_at(&self, address: IpAddr) -> reqwest::Client {
        reqwest::Client::builder()
            .local_address(address)
            .build()
            .unwrap()
    }

    /// Signs in through nginx as a browser on this page would, and returns the cookie.
    pub async fn sign_in(&self, name: &str) -> String {
        let response = self
            .browser()
            .post(self.url("/wsin"))
            .header("origin", self.origin())
            .form(&[("name", name)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
        cookie_pair(&response).expect("sign-in through nginx sets the cookie")
    }

    /// Opens a WebSocket through nginx from the browser's address, with the page's Origin.
    pub async fn connect(&self, path: &str, cookie: &str) -> Client {
        self.connect_from(BROWSER, path, cookie)
            .await
            .unwrap_or_else(|e| panic!("WebSocket on {path} through nginx: {e}"))
    }

    /// Opens a WebSocket through nginx from `address`, with the page's Origin.
    pub async fn connect_from(
        &self,
        address: IpAddr,
        path: &str,
        cookie: &str,
    ) -> Result<Client, tokio_tungstenite::tungstenite::Error> {
        let mut request = format!("ws://127.0.0.1:{}{path}", self.port)
            .into_client_request()
            .unwrap();
        let headers = request.headers_mut();
        headers.insert("origin", HeaderValue::from_str(&self.origin()).unwrap());
        headers.insert("cookie", HeaderValue::from_str(cookie).unwrap());
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::new(address, 0)).unwrap();
        let stream = socket
            .connect(SocketAddr::from(([127, 0, 0, 1], self.port)))
            .await
            .unwrap();
        let (ws, response) =
            tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(stream)).await?;
        assert_eq!(response.status(), 101);
        Ok(Client { ws })
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // With `master_process off` this is the only nginx process: nothing is left behind.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// nginx from PATH, or where Debian puts it (/usr/sbin is not on every user's PATH).
fn find_nginx() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join("nginx"))
        .find(|candidate| candidate.is_file())
        .expect("nginx is not installed: scripts/test installs it (apt-get install nginx)")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The shipped site with this test's port, upstream, install root and read timeout. Only
/// active lines change, and each change must find its line: if the shipped file drifts, the
/// test says so instead of testing something else.
fn site_config(apps: &[SocketAddr], port: u16, root: &Path, changes: &[(&str, &str)]) -> String {
    let root = root.to_str().unwrap();
    let servers: Vec<String> = apps.iter().map(|app| format!("server {app};")).collect();
    let mut replacements = vec![
        ("listen 80;", format!("listen 127.0.0.1:{port};")),
        ("server 127.0.0.1:3000;", servers.join(" ")),
        ("root /opt/passerby;", format!("root {root};")),
        (
            "proxy_read_timeout 60s;",
            format!("proxy_read_timeout {READ_TIMEOUT_SECS}s;"),
        ),
    ];
    // A test's own change of a line replaces this harness's change of it.
    replacements.retain(|(from, _)| !changes.iter().any(|(changed, _)| changed == from));
    replacements.extend(changes.iter().map(|(from, to)| (*from, (*to).to_owned())));
    let mut hits = vec![0; replacements.len()];
    let lines: Vec<String> = SITE
        .lines()
        .map(|line| {
            let code = line.trim();
            for (i, (from, to)) in replacements.iter().enumerate() {
                if code == *from {
                    hits[i] += 1;
                    return line.replace(from, to);
                }
            }
            line.to_owned()
        })
        .collect();
    for (i, (from, _)) in replacements.iter().enumerate() {
        assert_eq!(hits[i], 1, "nginx/passerby.conf should have `{from}` once");
    }
    lines.join("\n")
}

/// The smallest main configuration around the site, with every path nginx writes in `dir`.
/// `master_process off` keeps nginx to one process that runs as whoever started it, so it can
/// read the temp dir and dies with a kill.
fn wrap_in_http(site: &str, dir: &Path) -> String {
    let dir = dir.to_str().unwrap();
    format!(
        "master_process off;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{ worker_connections 256; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log {dir}/access.log;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;

{site}
}}
"
    )
}
