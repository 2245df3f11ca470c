//! Big rooms in the hub: joins and lefts held back and summed up, and the pages of users.

use std::time::Duration;

use serde_json::Value;

use super::{
    BigRooms, Hub,
    test_support::{attached, chat, event_by, events, user},
};
use crate::{
    auth::SessionId,
    chat::{
        log::{Entry, Event},
        outbox::Outbox,
        protocol::EventKind,
        room::RoomName,
    },
};

fn big(threshold: usize, page: usize) -> Hub {
    let hub = Hub::default();
    hub.set_big_rooms(BigRooms {
        threshold,
        interval: Duration::from_secs(1),
        page,
    });
    hub
}

fn presence(id: u64, kind: EventKind, who: u64, count: usize) -> Event {
    event_by(id, kind, who, Some(count))
}

fn settled(hub: &Hub, room: &RoomName, id: u64) -> Outbox {
    attached(hub, room, id, Some(0)).1
}

fn ids(users: &Value) -> Vec<u64> {
    users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_u64().unwrap())
        .collect()
}

#[test]
fn a_small_room_gets_join_and_left_as_they_are() {
    let hub = big(3, 10);
    let lobby = RoomName::lobby();
    let outbox = settled(&hub, &lobby, 1);
    hub.deliver(&lobby, &[presence(1, EventKind::Join, 2, 3)]);
    hub.flush_presence();
    let got = events(&outbox);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["type"], "join");
}

#[test]
fn a_big_room_sums_up_its_moves_by_what_each_did_last() {
    let hub = big(2, 10);
    let lobby = RoomName::lobby();
    let outbox = settled(&hub, &lobby, 1);
    hub.deliver(
        &lobby,
        &[
            presence(1, EventKind::Join, 2, 3),
            chat(2),
            presence(3, EventKind::Join, 3, 4),
            presence(4, EventKind::Left, 2, 3),
            presence(5, EventKind::Join, 4, 4),
        ],
    );
    let live = events(&outbox);
    assert_eq!(live.len(), 1, "only the chat goes at once: {live:?}");
    assert_eq!(live[0]["id"], 2);
    hub.flush_presence();
    let got = events(&outbox);
    assert_eq!(got.len(), 1, "{got:?}");
    let p = &got[0];
    assert_eq!(p["type"], "presence");
    assert!(p.get("id").is_none(), "no event of the room: no id");
    assert_eq!(ids(&p["data"]["joined"]), [3, 4]);
    assert_eq!(ids(&p["data"]["left"]), [2], "joined then left: left");
    assert_eq!(p["data"]["count"], 4);
    assert!(p["data"].get("more").is_none());
    hub.flush_presence();
    assert!(events(&outbox).is_empty(), "nothing new, nothing sent");
}

#[test]
fn a_room_that_shrinks_gets_join_and_left_again_after_its_last_presence() {
    let hub = big(2, 10);
    let lobby = RoomName::lobby();
    let outbox = settled(&hub, &lobby, 1);
    hub.deliver(&lobby, &[presence(1, EventKind::Join, 2, 3)]);
    // Still batching: this one waits too, whatever its count says.
    hub.deliver(&lobby, &[presence(2, EventKind::Left, 2, 2)]);
    assert!(events(&outbox).is_empty());
    hub.flush_presence();
    assert_eq!(events(&outbox)[0]["type"], "presence");
    hub.deliver(&lobby, &[presence(3, EventKind::Left, 3, 1)]);
    assert_eq!(events(&outbox)[0]["type"], "left");
}

#[test]
fn a_presence_carries_a_page_of_each_and_says_more() {
    let hub = big(1, 2);
    let lobby = RoomName::lobby();
    let outbox = settled(&hub, &lobby, 1);
    let joins: Vec<Event> = (0..5)
        .map(|n| presence(n + 1, EventKind::Join, 10 + n, 2 + n as usize))
        .collect();
    hub.deliver(&lobby, &joins);
    hub.flush_presence();
    let p = &events(&outbox)[0];
    assert_eq!(ids(&p["data"]["joined"]), [13, 14], "the newest");
    assert_eq!(p["data"]["more"], true);
    assert_eq!(p["data"]["count"], 6);
}

#[test]
fn a_joining_socket_gets_the_presence_once_settled_and_not_its_own_join() {
    let hub = big(1, 10);
    let lobby = RoomName::lobby();
    let _first = settled(&hub, &lobby, 1);
    let outbox = Outbox::new(64);
    let session = SessionId::from_bytes([2; 16]);
    let (member, _) = hub.attach(lobby.clone(), user(2), session, outbox.clone());
    let own_join = presence(5, EventKind::Join, 2, 2);
    hub.deliver(
        &lobby,
        &[own_join.clone(), presence(6, EventKind::Join, 3, 3)],
    );
    hub.flush_presence();
    assert!(events(&outbox).is_empty(), "nothing before its entry");
    hub.settle(
        &member,
        Entry {
            frames: vec![own_join.frame, chat(7).frame],
            floor: 7,
            joined: true,
            count: 2,
        },
    );
    let got = events(&outbox);
    let kinds: Vec<&str> = got.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["chat", "presence"], "{got:?}");
}

#[test]
fn pages_of_users_go_by_arrival_and_end() {
    let hub = big(1, 2);
    let lobby = RoomName::lobby();
    for id in 1..=5 {
        settled(&hub, &lobby, id);
    }
    let (first, count, next) = hub.first_page(&lobby);
    let first: Vec<u64> = first.iter().map(|u| u.id).collect();
    assert_eq!((first, count), (vec![1, 2], 5));
    let mut after = next.expect("more follow");
    let mut rest = Vec::new();
    loop {
        let (page, _, next) = hub.users_page(&lobby, after, 2);
        rest.extend(page.iter().map(|u| u.id));
        match next {
            Some(n) => after = n,
            None => break,
        }
    }
    assert_eq!(rest, [3, 4, 5]);
    let (all, _, none) = hub.users_page(&lobby, 0, 10);
    assert_eq!((all.len(), none), (5, None));
}

#[test]
fn off_every_list_is_whole() {
    let hub = Hub::default();
    let lobby = RoomName::lobby();
    for id in 1..=5 {
        settled(&hub, &lobby, id);
    }
    let (all, count, next) = hub.first_page(&lobby);
    assert_eq!((all.len(), count, next), (5, 5, None));
}
