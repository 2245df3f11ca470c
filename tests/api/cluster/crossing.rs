//! What several instances over one Redis promise when nothing fails, and when an instance
//! is killed or Redis restarts: chat, ids, recovery and whispers cross instances.

use super::*;

#[tokio::test]
async fn chat_crosses_instances_and_presence_is_merged() {
    let cluster = Cluster::new();
    let (a, b) = (cluster.instance().await, cluster.instance().await);
    let (mut alice, alice_user) = a.join("alice").await;
    // Signed in on A, welcome on B: one key, and ids from Redis.
    let bob_cookie = a.sign_in("bob").await;
    let mut bob = b.connect(&bob_cookie).await;
    let joined = bob.expect("join").await;
    assert_eq!(joined["count"], 2);
    let list = bob.expect("list").await;
    assert_eq!(names(&list), ["alice", "bob"], "B lists the user on A");
    bob.expect("history").await;
    assert_ne!(list["data"][0]["id"], list["data"][1]["id"]);
    assert_eq!(alice.expect("join").await["user"]["name"], "bob");

    alice.say("hello from A").await;
    let on_a = alice.expect("chat").await;
    let on_b = bob.expect("chat").await;
    assert_eq!(on_b["data"], "hello from A");
    assert_eq!(on_a["id"], on_b["id"], "one id for the cluster");
    assert_eq!(on_b["user"], alice_user);

    // Bob opens a second tab on A: nobody hears a second join. Closing one of his two
    // tabs is not leaving; closing the last, on the other instance, is, once.
    let mut bob_tab = another_tab(&a, &bob_cookie).await;
    bob_tab.ws.close(None).await.unwrap();
    bob.say("still here").await;
    assert_eq!(alice.expect("chat").await["data"], "still here");
    drop(bob_tab);
    bob.ws.close(None).await.unwrap();
    let left = alice.expect("left").await;
    assert_eq!(left["user"]["name"], "bob");
    assert_eq!(left["count"], 1);
    assert!(
        alice
            .events_within(Duration::from_millis(300))
            .await
            .is_empty(),
        "one left however many tabs and instances"
    );
}

#[tokio::test]
async fn ids_keep_one_order_under_concurrent_senders_on_different_instances() {
    let cluster = Cluster::new();
    let (a, b) = (cluster.instance().await, cluster.instance().await);
    let (mut alice, _) = a.join("alice").await;
    let (bob, _) = b.join("bob").await;
    alice.expect("join").await;
    const EACH: usize = 30;
    let send = |mut client: Client, who: &'static str| async move {
        for i in 0..EACH {
            client.say(&format!("{who} {i}")).await;
        }
        client
    };
    let (alice, bob) = tokio::join!(send(alice, "alice"), send(bob, "bob"));
    let mut seen = Vec::new();
    for mut client in [alice, bob] {
        let mut events = Vec::new();
        while events.len() < 2 * EACH {
            let event = next_chat(&mut client).await;
            assert_eq!(event["type"], "chat", "{event}");
            events.push((event["id"].as_u64().unwrap(), event["data"].clone()));
        }
        assert!(
            events.windows(2).all(|w| w[0].0 < w[1].0),
            "ids strictly increase on every socket"
        );
        seen.push(events);
    }
    assert_eq!(seen[0], seen[1], "both instances deliver one order");
}

#[tokio::test]
async fn a_client_recovers_on_another_instance_what_it_missed() {
    let cluster = Cluster::new();
    let (a, b) = (cluster.instance().await, cluster.instance().await);
    let (mut alice, _) = a.join("alice").await;
    let bob_cookie = a.sign_in("bob").await;
    let mut bob = a.connect(&bob_cookie).await;
    bob.expect("join").await;
    bob.expect("list").await;
    bob.expect("history").await;
    alice.expect("join").await;
    alice.say("before").await;
    let seen = bob.expect("chat").await["id"].as_u64().unwrap();
    bob.ws.close(None).await.unwrap();
    alice.expect("chat").await;
    alice.expect("left").await;
    for text in ["one", "two", "three"] {
        alice.say(text).await;
        alice.expect("chat").await;
    }
    let mut bob = b.connect_since(&bob_cookie, seen).await;
    bob.expect("join").await;
    bob.expect("list").await;
    let history = bob.expect("history").await;
    assert!(history.get("truncated").is_none(), "{history}");
    assert_eq!(chat_texts(&history), ["one", "two", "three"]);
    let left = &history["data"][0];
    assert_eq!(left["type"], "left", "presence since then is recovered too");
}

#[tokio::test]
async fn private_messages_reach_the_recipient_on_another_instance_only() {
    let cluster = Cluster::new();
    let (a, b) = (cluster.instance().await, cluster.instance().await);
    let (mut alice, _) = a.join("alice").await;
    let (mut bob, bob_user) = b.join("bob").await;
    let (mut carol, _) = b.join("carol").await;
    alice.expect("join").await;
    alice.expect("join").await;
    bob.expect("join").await;
    let to = bob_user["id"].as_u64().unwrap();
    alice
        .say(&serde_json::json!({"type": "private", "to": to, "data": "psst"}).to_string())
        .await;
    let got = bob.expect("private").await;
    assert_eq!(
        (got["data"].as_str(), got["to"]["id"].as_u64()),
        (Some("psst"), Some(to))
    );
    assert_eq!(alice.expect("private").await["id"], got["id"]);
    alice.say("public").await;
    assert_eq!(
        carol.expect("chat").await["data"],
        "public",
        "carol never saw the whisper"
    );
    alice
        .say(&serde_json::json!({"type": "private", "to": 999_999, "data": "x"}).to_string())
        .await;
    alice.expect("chat").await;
    let error = alice.expect("error").await;
    assert!(
        error["data"].as_str().unwrap().contains("not online"),
        "{error}"
    );
}

#[tokio::test]
async fn a_killed_instance_leaves_no_ghosts() {
    let cluster = Cluster::new();
    let a = cluster.instance().await;
    let url = cluster.redis.url();
    let secret = cluster.secret_file();
    let mut process = ServerProcess::start(&[
        "--redis",
        &url,
        "--redis-presence-ttl",
        "1",
        "--secret-file",
        secret.to_str().unwrap(),
    ]);
    let p = TestApp::external(process.addr);
    let (mut alice, _) = a.join("alice").await;
    let (mut bob, _) = p.join("bob").await;
    assert_eq!(alice.expect("join").await["user"]["name"], "bob");
    bob.say("on the doomed instance").await;
    alice.expect("chat").await;
    let killed = Instant::now();
    process.kill();
    let left = alice.expect("left").await;
    assert_eq!(left["user"]["name"], "bob");
    assert!(
        killed.elapsed() < Duration::from_secs(3),
        "within the TTL and a beat"
    );
    // And the list of someone new no longer shows him.
    let (_carol, _) = a.join("carol").await;
    let mut dave = a.connect(&a.sign_in("dave").await).await;
    dave.expect("join").await;
    assert_eq!(
        names(&dave.expect("list").await),
        ["alice", "carol", "dave"]
    );
}

#[tokio::test]
async fn a_redis_restart_is_survived() {
    let mut cluster = Cluster::new();
    let a = cluster.instance().await;
    let (mut alice, alice_user) = a.join("alice").await;
    alice.say("before").await;
    let before = alice.expect("chat").await;
    cluster.redis.kill();
    // Refused for certain (`not_sent`) if Redis was gone before it was sent; if the
    // connection dropped under it, it is held and sent again once Redis is back: one answer
    // either way, never both.
    let said =
        |text: &str, cid: &str| json!({"type": "chat", "data": text, "cid": cid}).to_string();
    alice.say(&said("into the void", "void")).await;
    cluster.redis.restart();
    // The first message after Redis is back goes through: no retry, no `not_sent`.
    alice.say(&said("are we back", "back")).await;
    let (mut void, mut back, mut back_acked) = (Vec::new(), false, false);
    while !(back && back_acked) {
        let event = alice.next_event().await;
        match (event["type"].as_str(), event["data"].as_str()) {
            (Some("chat"), Some("into the void")) => {}
            (Some("error"), _) => {
                assert_eq!(event["code"], "not_sent", "{event}");
                assert_eq!(
                    event["cid"], "void",
                    "only the message sent into the void: {event}"
                );
                void.push("refused");
            }
            (Some("ack"), _) if event["data"]["cid"] == "void" => void.push("stored"),
            (Some("ack"), _) => back_acked = true,
            (Some("chat"), Some("are we back")) => {
                assert!(
                    event["id"].as_u64() > before["id"].as_u64(),
                    "ids go on from where they were, though Redis forgot them"
                );
                back = true;
            }
            // The instance telling the empty Redis who is here again.
            (Some("join"), _) => assert_eq!(event["user"]["name"], "alice"),
            _ => panic!("unexpected {event}"),
        }
    }
    // In order on one lane: the message into the void was answered first, once.
    assert_eq!(
        void.len(),
        1,
        "one answer for the message sent into the void: {void:?}"
    );
    // Presence came back too: a newcomer sees alice, on another instance as well.
    let b = cluster.instance().await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut bob = b.connect(&b.sign_in("bob").await).await;
        bob.expect("join").await;
        let list = bob.expect("list").await;
        assert_ne!(
            list["user"]["id"], alice_user["id"],
            "no user id is handed out twice"
        );
        if names(&list) == ["alice", "bob"] {
            break;
        }
        assert!(Instant::now() < deadline, "alice is missing: {list}");
        bob.ws.close(None).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn redis_unreachable_at_start_is_a_clear_error() {
    let mut redis = Redis::start();
    let url = redis.url();
    redis.kill();
    let mut config = passerby::config::Config::with_data_dir(tempfile::tempdir().unwrap().path());
    config.bind = "127.0.0.1:0".parse().unwrap();
    config.redis = Some(url.clone());
    let err = passerby::startup::App::build(config).await.err().unwrap();
    let message = format!("{err:#}");
    assert!(
        message.contains("cannot reach Redis") && message.contains(&url),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_an_nginx_upstream_of_two_instances_everyone_is_in_one_chat() {
    let cluster = Cluster::new();
    let (a, b) = (cluster.instance().await, cluster.instance().await);
    let nginx = Nginx::start_upstream(&[a.addr, b.addr]);
    let alice_cookie = nginx.sign_in("alice").await;
    let bob_cookie = nginx.sign_in("bob").await;
    // Round robin: two sockets in a row land on different instances.
    let mut alice = nginx.connect("/ws", &alice_cookie).await;
    alice.expect("join").await;
    alice.expect("list").await;
    alice.expect("history").await;
    let mut bob = nginx.connect("/ws", &bob_cookie).await;
    bob.expect("join").await;
    assert_eq!(names(&bob.expect("list").await), ["alice", "bob"]);
    bob.expect("history").await;
    alice.expect("join").await;
    let online = |app: &TestApp| {
        let app = app.url("/metrics");
        async move {
            let text = reqwest::get(app).await.unwrap().text().await.unwrap();
            metric(&text, "passerby_users_online")
        }
    };
    assert_eq!(
        (online(&a).await, online(&b).await),
        (Some(1.0), Some(1.0)),
        "one socket on each instance"
    );
    alice.say("across the upstream").await;
    assert_eq!(bob.expect("chat").await["data"], "across the upstream");
}

#[tokio::test]
async fn history_pages_back_from_the_stream_on_another_instance_with_whispers_for_their_pair() {
    use crate::paging::{data, page, page_to_the_beginning, texts};
    let cluster = Cluster::new();
    let paged = |cluster: &Cluster| {
        let (url, secret) = (cluster.redis.url(), cluster.secret_file());
        spawn_with(move |c| {
            c.redis = Some(url);
            c.secret_file = Some(secret);
            c.rate_limit = 1000.0;
            c.rate_burst = 1000.0;
            c.history_on_join = 2;
            c.history_page = 3;
        })
    };
    let (a, b) = (paged(&cluster).await, paged(&cluster).await);
    let (mut alice, _) = a.join("alice").await;
    let (mut bob, bob_user) = a.join("bob").await;
    alice.expect("join").await;
    let to = bob_user["id"].as_u64().unwrap();
    alice
        .say(&serde_json::json!({"type": "private", "to": to, "data": "psst"}).to_string())
        .await;
    alice.expect("private").await;
    bob.expect("private").await;
    let sent: Vec<String> = (0..10).map(|i| format!("m{i}")).collect();
    for text in &sent {
        alice.say(text).await;
        alice.expect("chat").await;
    }
    // Carol, on the other instance, sees no whisper however far back she pages.
    let (mut carol, _) = b.join("carol").await;
    alice.say("now").await;
    let now = next_chat(&mut carol).await["id"].as_u64().unwrap();
    let first = page(&mut carol, now).await;
    assert_eq!(data(&first).len(), 3, "a page holds --history-page events");
    let all = page_to_the_beginning(&mut carol, &first).await;
    assert!(all.iter().all(|e| e["type"] != "private"), "{all:?}");
    assert_eq!(texts(&all), sent);
    // Bob finds his whisper.
    while bob.next_event().await["data"] != "now" {}
    let first = page(&mut bob, now).await;
    let all = page_to_the_beginning(&mut bob, &first).await;
    let whispers: Vec<&Value> = all.iter().filter(|e| e["type"] == "private").collect();
    assert_eq!(whispers.len(), 1, "{all:?}");
    assert_eq!(texts(&all), sent);
}
