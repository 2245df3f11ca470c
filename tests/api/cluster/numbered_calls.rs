//! `emit.lua` called directly on a real `redis-server`: a numbered call runs once, and a copy
//! of an older call that Redis runs late does nothing.

use super::Cluster;

/// The script's side of "a retry is never a duplicate", against the real redis-server: a
/// call sent again with its number stores nothing and answers as the first time; an older
/// call that Redis runs late (a copy it read from a connection the engine gave up on) does
/// nothing; a `cid` seen before answers with its first id.
#[tokio::test]
async fn a_numbered_call_runs_once_and_a_late_older_copy_does_nothing() {
    let cluster = Cluster::new();
    let script = redis::Script::new(&format!(
        "{}\n{}",
        include_str!("../../../src/chat/log/redis/scripts/prelude.lua"),
        include_str!("../../../src/chat/log/redis/scripts/emit.lua")
    ));
    let client = redis::Client::open(cluster.redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let call = |number: u64, cid: &'static str, text: &'static str| {
        let mut invocation = script.prepare_invoke();
        // Every key through KEYS, under the room's hash tag, as `send.rs` builds them.
        invocation
            .key("passerby:{lobby}:seq")
            .key("passerby:{lobby}:applied:test-instance");
        if !cid.is_empty() {
            invocation.key(format!("passerby:{{lobby}}:cid:1:{cid}"));
        }
        invocation
            .arg("lobby")
            .arg(100)
            .arg(0)
            .arg("test-instance")
            .arg(number)
            .arg(60)
            .arg(1)
            .arg(1)
            .arg(cid)
            .arg(0)
            .arg("\"chat\"")
            .arg("{\"id\":1}")
            .arg(format!("\"{text}\""))
            .arg("")
            // No floor, no age, a day's room TTL (the prelude's three).
            .arg(0)
            .arg(0)
            .arg(86_400_000);
        invocation
    };
    let ids = |conn: &mut redis::aio::MultiplexedConnection| {
        let mut conn = conn.clone();
        async move {
            let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
                .arg("passerby:{lobby}:stream")
                .arg("-")
                .arg("+")
                .query_async(&mut conn)
                .await
                .unwrap();
            entries.len()
        }
    };
    let first: Vec<u64> = call(1, "", "one").invoke_async(&mut conn).await.unwrap();
    let again: Vec<u64> = call(1, "", "one").invoke_async(&mut conn).await.unwrap();
    assert_eq!(first, again, "a retry answers as the first time");
    assert_eq!(ids(&mut conn).await, 1, "and stores nothing");
    let second: Vec<u64> = call(2, "c", "two").invoke_async(&mut conn).await.unwrap();
    assert_eq!(second, [first[0] + 1]);
    let late: Vec<u64> = call(1, "", "one").invoke_async(&mut conn).await.unwrap();
    assert!(
        late.is_empty(),
        "an older call run late does nothing: {late:?}"
    );
    let retold: Vec<u64> = call(3, "c", "two").invoke_async(&mut conn).await.unwrap();
    assert_eq!(retold, second, "a cid stored before answers with its id");
    assert_eq!(ids(&mut conn).await, 2);
}
