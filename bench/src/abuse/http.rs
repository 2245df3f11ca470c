//! The HTTP attacks: idle connections, slowloris, huge unfinished heads, and uploads that
//! stall or come all at once. Each returns how the server answered.

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context;
use futures_util::{StreamExt, stream};
use std::process::Stdio;
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::TcpStream,
    process::{Child, Command},
};

use super::{
    Ctx,
    probe::open_files,
    raw::{self, ATTACKER, BYSTANDER, Fate, Tally},
};

const CONNECT: Duration = Duration::from_secs(3);
const STALL: Duration = Duration::from_secs(5);

/// Opens up to `n` connections, 256 at a time, running `first` on each; stops early when
/// this process runs out of files. Returns the connections held and why others failed.
async fn open_many<F, Fut>(addr: SocketAddr, n: usize, first: F) -> (Vec<Held>, Tally)
where
    F: Fn(TcpStream) -> Fut,
    Fut: std::future::Future<Output = Result<Held, String>>,
{
    let mut failed = Tally::default();
    let mut held = Vec::with_capacity(n);
    let mut attempts = stream::iter(0..n)
        .map(|_| async {
            match raw::connect(addr, CONNECT).await {
                Ok(s) => first(s).await,
                Err(e) => Err(raw::short(e)),
            }
        })
        .buffer_unordered(256);
    while let Some(r) = attempts.next().await {
        match r {
            Ok(h) => held.push(h),
            Err(why) => {
                let ours = why.contains("bench");
                failed.add(why);
                if ours {
                    break;
                }
            }
        }
    }
    (held, failed)
}

/// A connection the attack holds and what the server sent on it so far.
pub struct Held {
    stream: TcpStream,
    seen: Vec<u8>,
}

impl Held {
    fn new(stream: TcpStream) -> Held {
        Held {
            stream,
            seen: Vec::new(),
        }
    }

    fn fate(&mut self) -> Fate {
        raw::fate(&self.stream, &mut self.seen, false)
    }
}

fn fates(held: &mut [Held]) -> Tally {
    let fates: Vec<Fate> = held.iter_mut().map(Held::fate).collect();
    Tally::of_fates(&fates)
}

/// How long `/healthz` and a sign-in take from `from`, or that they failed.
async fn health(addr: SocketAddr, from: std::net::IpAddr) -> String {
    let Ok(http) = reqwest::Client::builder().local_address(from).build() else {
        return "no client".into();
    };
    let health = timed("healthz", http.get(format!("http://{addr}/healthz"))).await;
    let sign_in = timed(
        "sign-in",
        http.post(format!("http://{addr}/wsin"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("name=bystander"),
    )
    .await;
    format!("{health}, {sign_in}")
}

async fn timed(what: &str, request: reqwest::RequestBuilder) -> String {
    let start = Instant::now();
    match tokio::time::timeout(Duration::from_secs(5), request.send()).await {
        Ok(Ok(r)) => format!("{what} {} in {:.0} ms", r.status().as_u16(), ms(start)),
        Ok(Err(_)) => format!("{what} failed after {:.0} ms", ms(start)),
        Err(_) => format!("{what} timed out (5 s)"),
    }
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}

/// Holds `n` idle connections to `addr` until stdin closes, after printing how many it holds
/// and how the rest failed: the part of the idle attack beyond the generator's own limit.
pub async fn hold(addr: SocketAddr, n: usize) -> anyhow::Result<()> {
    let (held, failed) = open_many(addr, n, |s| async { Ok(Held::new(s)) }).await;
    println!("{} {failed}", held.len());
    let mut line = String::new();
    BufReader::new(tokio::io::stdin())
        .read_line(&mut line)
        .await?;
    Ok(())
}

/// Connections this process may still open, keeping a reserve for everything else.
fn own_budget() -> usize {
    let limit = rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |l| l.0) as usize;
    let open = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count());
    limit.saturating_sub(open + 500)
}

/// Starts a helper holding `n` more connections; its count, its failures, and the process
/// (dropping it closes its connections).
async fn helper(
    program: &std::path::Path,
    addr: SocketAddr,
    n: usize,
) -> anyhow::Result<(usize, String, Child)> {
    let mut child = Command::new(program)
        .args([
            "--hold-idle",
            &addr.to_string(),
            "--hold-count",
            &n.to_string(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child.stdout.take().context("helper stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).await?;
    let (count, failed) = line.trim().split_once(' ').unwrap_or((line.trim(), ""));
    Ok((
        count.parse().context("helper count")?,
        failed.to_owned(),
        child,
    ))
}

/// As many idle TCP connections as allowed, up to 20 000; meanwhile, can others get in?
pub async fn idle(ctx: &Ctx) -> anyhow::Result<String> {
    let n = ctx.n(20_000);
    let files_before = ctx.pid.and_then(open_files);
    let own = n.min(own_budget());
    let start = Instant::now();
    let (mut held, mut failed) = open_many(ctx.addr, own, |s| async { Ok(Held::new(s)) }).await;
    let mut helped = None;
    if n > own {
        match &ctx.helper {
            Some(program) => {
                let (count, why, child) = helper(program, ctx.addr, n - own).await?;
                if !why.is_empty() {
                    failed.add(format!("helper: {why}"));
                }
                helped = Some((count, child));
            }
            None => failed.add(format!("{} not tried (bench's own limit)", n - own)),
        }
    }
    let took = start.elapsed().as_secs_f64();
    tokio::time::sleep(ctx.secs(1.0)).await;
    let accepted = ctx
        .pid
        .and_then(open_files)
        .zip(files_before)
        .map(|(a, b)| a.saturating_sub(b));
    let others = health(ctx.addr, BYSTANDER).await;
    let same = health(ctx.addr, ATTACKER).await;
    let tally = fates(&mut held);
    let connected = held.len() + helped.as_ref().map_or(0, |h| h.0);
    let mut out = format!("{connected} of {n} connected in {took:.1} s");
    if !failed.0.is_empty() {
        out.push_str(&format!(" ({failed})"));
    }
    if let Some(a) = accepted {
        out.push_str(&format!("; server holds {a} more files"));
    }
    out.push_str(&format!(
        "; then {tally}; another address: {others}; the attacker's: {same}"
    ));
    Ok(out)
}

/// 2 000 connections dribbling a header byte every 2 s and 1 000 upgrades missing their last
/// line; how many are still open as the server's header timeout (10 s) passes.
pub async fn slowloris(ctx: &Ctx) -> anyhow::Result<String> {
    let start = Instant::now();
    let addr = ctx.addr;
    let begin = |head: String| {
        move |mut s: TcpStream| {
            let head = head.clone();
            async move {
                s.write_all(head.as_bytes()).await.map_err(raw::short)?;
                Ok(Held::new(s))
            }
        }
    };
    let slow = format!("GET / HTTP/1.1\r\nHost: {addr}\r\nX-Slow: ");
    let (mut slow, slow_failed) = open_many(addr, ctx.n(2_000), begin(slow)).await;
    let upgrade = raw::upgrade_head(addr, "", "lobby", false);
    let (mut half, half_failed) = open_many(addr, ctx.n(1_000), begin(upgrade)).await;
    let tick = ctx.secs(2.0);
    let until = ctx.secs(15.0);
    let mut checkpoints = Vec::new();
    while start.elapsed() < until {
        tokio::time::sleep(tick.min(until.saturating_sub(start.elapsed()))).await;
        for h in slow.iter_mut() {
            if matches!(h.fate(), Fate::Open) {
                let _ = h.stream.try_write(b"a");
            }
        }
        let open = |held: &mut [Held]| {
            held.iter_mut()
                .map(Held::fate)
                .filter(|f| matches!(f, Fate::Open))
                .count()
        };
        checkpoints.push(format!(
            "{:.0} s: {}+{}",
            start.elapsed().as_secs_f64(),
            open(&mut slow),
            open(&mut half)
        ));
    }
    let (slow_n, half_n) = (slow.len(), half.len());
    let mut out = format!(
        "after {:.0} s: {} of {slow_n} slow heads ({}) and {} of {half_n} half upgrades ({}) open",
        start.elapsed().as_secs_f64(),
        fates(&mut slow).count("open"),
        fates(&mut slow),
        fates(&mut half).count("open"),
        fates(&mut half),
    );
    for failed in [slow_failed, half_failed] {
        if !failed.0.is_empty() {
            out.push_str(&format!("; not connected: {failed}"));
        }
    }
    out.push_str(&format!(" [open over time: {}]", checkpoints.join(", ")));
    Ok(out)
}

/// 2 500 connections each sending 390 KiB of a request head that never ends.
pub async fn heads(ctx: &Ctx) -> anyhow::Result<String> {
    let addr = ctx.addr;
    let line = format!("X-Pad: {}\r\n", "a".repeat(8 * 1024 - 10));
    let mut head = format!("GET / HTTP/1.1\r\nHost: {addr}\r\n");
    while head.len() < 390 * 1024 {
        head.push_str(&line);
    }
    let head = Arc::new(head.into_bytes());
    let (mut held, failed) = open_many(addr, ctx.n(2_500), |mut s| {
        let head = head.clone();
        async move {
            match tokio::time::timeout(STALL, s.write_all(&head)).await {
                Ok(Ok(())) => Ok(Held::new(s)),
                // Refused mid-head: keep it, to read the answer.
                Ok(Err(_)) | Err(_) => Ok(Held::new(s)),
            }
        }
    })
    .await;
    tokio::time::sleep(ctx.secs(1.0)).await;
    let mut out = format!("{} connected; then {}", held.len(), fates(&mut held));
    if !failed.0.is_empty() {
        out.push_str(&format!("; not connected: {failed}"));
    }
    Ok(out)
}

/// A multipart `POST /upload` of a PNG-looking file of `size` bytes: the head and the body.
fn upload(addr: SocketAddr, cookie: &str, size: usize) -> (String, Vec<u8>) {
    let mut body =
        b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n\
        Content-Type: image/png\r\n\r\n\x89PNG\r\n\x1a\n"
            .to_vec();
    body.resize(body.len() + size - 8, 0);
    body.extend_from_slice(b"\r\n--XyZ--\r\n");
    let head = format!(
        "POST /upload HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\n\
         Content-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    (head, body)
}

const FILE: usize = 5 * 1024 * 1024 - 1024;

/// 300 uploads by one user that stop 4 KiB before their end.
pub async fn stalled_uploads(ctx: &Ctx) -> anyhow::Result<String> {
    let cookie = raw::sign_in(ctx.addr, ATTACKER, "uploader").await?;
    let (head, body) = upload(ctx.addr, &cookie, FILE);
    let body = Arc::new(body);
    let start = Instant::now();
    let (mut held, failed) = open_many(ctx.addr, ctx.n(300), |mut s| {
        let (head, body) = (head.clone(), body.clone());
        async move {
            let send = async {
                s.write_all(head.as_bytes()).await?;
                s.write_all(&body[..body.len() - 4096]).await
            };
            // Refused before the end: keep it, to read the answer.
            let _ = tokio::time::timeout(STALL, send).await;
            Ok(Held::new(s))
        }
    })
    .await;
    let sent = start.elapsed().as_secs_f64();
    tokio::time::sleep(ctx.secs(5.0)).await;
    let mut out = format!(
        "{} stalled in {sent:.1} s; {:.0} s later: {} (body timeout 30 s)",
        held.len(),
        start.elapsed().as_secs_f64() - sent,
        fates(&mut held)
    );
    if !failed.0.is_empty() {
        out.push_str(&format!("; not connected: {failed}"));
    }
    Ok(out)
}

/// 100 concurrent 5 MiB uploads by one user; what each got back.
pub async fn big_uploads(ctx: &Ctx) -> anyhow::Result<String> {
    let cookie = raw::sign_in(ctx.addr, ATTACKER, "uploader").await?;
    let http = reqwest::Client::builder()
        .local_address(ATTACKER)
        .timeout(Duration::from_secs(60))
        .build()?;
    let (_, body) = upload(ctx.addr, &cookie, FILE);
    let body = bytes::Bytes::from(body);
    let statuses: Vec<String> = stream::iter(0..ctx.n(100))
        .map(|_| {
            let request = http
                .post(format!("http://{}/upload", ctx.addr))
                .header("cookie", cookie.as_str())
                .header("content-type", "multipart/form-data; boundary=XyZ")
                .body(body.clone())
                .send();
            async move {
                match request.await {
                    Ok(r) => format!("HTTP {}", r.status().as_u16()),
                    Err(e) if e.is_timeout() => "timed out".into(),
                    Err(_) => "failed".into(),
                }
            }
        })
        .buffer_unordered(100)
        .collect()
        .await;
    let mut tally = Tally::default();
    for s in statuses {
        tally.add(s);
    }
    Ok(format!("{tally}"))
}
