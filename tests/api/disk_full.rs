//! A full disk under the history: what any client saw survives `kill -9`, and no id repeats.
//!
//! The test mounts a small tmpfs of its own for the data dir, so it needs root (as in CI);
//! without it, it says why and passes without checking anything.

use std::{
    collections::HashSet,
    io::Write,
    path::Path,
    process::{Command, Stdio},
    time::Duration,
};

use serde_json::Value;

use crate::{helpers::Client, server::OnDataDir};

/// A tmpfs of `size` bytes mounted on a temp dir, unmounted when dropped.
struct SmallDisk(tempfile::TempDir);

impl SmallDisk {
    fn mount(size: u64) -> Result<SmallDisk, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .stderr(Stdio::null())
            .status()
            .map_err(|e| e.to_string())?;
        if !status.success() {
            return Err(format!("mount -t tmpfs failed ({status})"));
        }
        Ok(SmallDisk(dir))
    }

    fn path(&self) -> &Path {
        self.0.path()
    }

    /// Takes every free byte but `spare` with one file, as another program filling the
    /// disk would; the chat fills the rest.
    fn fill(&self, spare: u64) -> std::path::PathBuf {
        let path = self.path().join("filler");
        let mut file = std::fs::File::create(&path).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        while matches!(file.write(&chunk), Ok(n) if n > 0) {}
        let len = file.metadata().unwrap().len();
        file.set_len(len.saturating_sub(spare)).unwrap();
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.0.path()).status();
    }
}

/// Everything a socket receives until it closes or the server dies.
fn record(mut client: Client) -> tokio::task::JoinHandle<Vec<Value>> {
    tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Ok(Some(Ok(message))) = tokio::time::timeout(
            Duration::from_secs(10),
            futures_util::StreamExt::next(&mut client.ws),
        )
        .await
        {
            if let tokio_tungstenite::tungstenite::Message::Text(text) = message {
                seen.push(serde_json::from_str(&text).unwrap());
            }
        }
        seen
    })
}

/// Says `text` and reads until it comes back (true) or an `error` says it did not (false).
async fn said(client: &mut Client, seen: &mut Vec<Value>, text: &str) -> bool {
    client.say(text).await;
    loop {
        let event = client.next_event().await;
        let kind = event["type"].as_str().unwrap_or_default().to_owned();
        let mine = event["data"] == text;
        seen.push(event);
        match kind.as_str() {
            "chat" if mine => return true,
            "error" => return false,
            _ => {}
        }
    }
}

fn id(event: &Value) -> u64 {
    event["id"].as_u64().unwrap_or(0)
}

#[tokio::test]
async fn on_a_full_disk_no_event_a_client_saw_is_lost_and_no_id_repeats_after_kill_9() {
    let disk = match SmallDisk::mount(8 << 20) {
        Ok(disk) => disk,
        Err(why) => {
            eprintln!("skipped: no small filesystem to fill: {why} (needs root)");
            return;
        }
    };
    let data = disk.path().join("data");
    let (mut node, app) = OnDataDir::start(&data);
    // Everyone signs in while there is room: the user id reservation is a file too.
    let check_cookie = app.sign_in("check").await;
    let late_cookie = app.sign_in("late").await;
    let (watcher, _) = app.join("watcher").await;
    let watching = record(watcher);
    let mut seen: Vec<Value> = Vec::new();
    let mut senders = Vec::new();
    for n in 0..3 {
        senders.push(app.join(&format!("sender{n}")).await.0);
    }
    for (n, sender) in senders.iter_mut().enumerate() {
        assert!(said(sender, &mut seen, &format!("room to spare {n}")).await);
    }

    let filler = disk.fill(512 * 1024);
    // Until a whole round is refused: the store is failing now, not just now and then.
    let mut full = false;
    for round in 0..2_000 {
        full = true;
        for (n, sender) in senders.iter_mut().enumerate() {
            full &= !said(sender, &mut seen, &format!("{n}:{round}")).await;
        }
        if full {
            break;
        }
    }
    assert!(full, "the disk never filled up");
    let reply = app.get("/healthz").await;
    assert_eq!(reply.status(), 503, "a full disk shows on /healthz");
    // Presence while full: a `left`, and a join that must be told to come back.
    drop(senders.pop());
    let mut late = app.connect(&late_cookie).await;
    assert_eq!(late.close_code().await.map(|(code, _)| code), Some(1013));
    for (n, sender) in senders.iter_mut().enumerate() {
        said(sender, &mut seen, &format!("{n}: still full")).await;
    }
    node.kill_9();
    drop(senders);
    seen.extend(watching.await.unwrap());

    // The operator makes room and starts the server again on the same data dir.
    std::fs::remove_file(filler).unwrap();
    let (_node, app) = OnDataDir::start(&data);
    let mut check = app.connect_since(&check_cookie, 0).await;
    let join = check.expect("join").await;
    check.expect("list").await;
    let history = check.expect("history").await;
    assert!(history.get("truncated").is_none(), "{history}");
    let stored: Vec<&Value> = history["data"].as_array().unwrap().iter().collect();
    let stored_text: HashSet<String> = stored.iter().map(|e| e.to_string()).collect();
    let kept_kinds = ["join", "chat", "left"];
    let missing: Vec<&Value> = seen
        .iter()
        .filter(|e| kept_kinds.contains(&e["type"].as_str().unwrap_or_default()))
        .filter(|e| !stored_text.contains(&e.to_string()))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} events clients saw are not stored, first {}",
        missing.len(),
        seen.len(),
        missing[0]
    );
    let stored_ids: HashSet<u64> = stored.iter().map(|e| id(e)).collect();
    assert_eq!(stored_ids.len(), stored.len(), "no stored id repeats");
    let newest_seen = seen.iter().map(id).max().unwrap();
    assert!(
        id(&join) > newest_seen,
        "ids go on above every id a client saw: {} after {newest_seen}",
        id(&join)
    );
    check.say("after the restart").await;
    assert!(id(&check.expect("chat").await) > newest_seen);
}
