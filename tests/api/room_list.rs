//! `GET /rooms`: the rooms with people in them, busiest first, at most `--rooms-list`.

use serde_json::{Value, json};

use crate::helpers::{Client, TestApp, spawn_with};

async fn in_room(app: &TestApp, name: &str, room: &str) -> Client {
    let cookie = app.sign_in(name).await;
    let mut client = app
        .connect_to(&format!("/ws?room={room}"), &[("Cookie", &cookie)])
        .await
        .unwrap();
    client.expect("join").await;
    client.expect("list").await;
    client
}

#[tokio::test]
async fn lists_the_busiest_rooms_first_up_to_the_flag_and_never_from_a_cache() {
    let app = spawn_with(|c| c.rooms_list = 2).await;
    let empty: Value = app.get("/rooms").await.json().await.unwrap();
    assert_eq!(empty, json!([]), "no sockets, no rooms");

    let mut sockets = Vec::new();
    for (name, room) in [
        ("alice", "lobby"),
        ("bob", "lobby"),
        ("carol", "side"),
        ("dave", "side"),
        ("erin", "side"),
        ("fay", "quiet"),
    ] {
        sockets.push(in_room(&app, name, room).await);
    }
    let response = app.get("/rooms").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let rooms: Value = response.json().await.unwrap();
    assert_eq!(
        rooms,
        json!([{"name": "side", "online": 3}, {"name": "lobby", "online": 2}]),
        "the two busiest (--rooms-list 2); quiet is left out"
    );
}
