use std::{
    collections::VecDeque,
    task::{Context, Waker},
};

use super::{
    test_support::{attached, chat, frames, sid, user},
    *,
};
use crate::{
    chat::{outbox::Signal, protocol::Frame},
    ws::frame,
};

fn event(id: u64, visible: Visibility) -> Event {
    Event {
        visible,
        ..chat(id)
    }
}

fn ids(outbox: &Outbox) -> Vec<u64> {
    frames(outbox)
        .iter()
        .map(|f| {
            let v: serde_json::Value = serde_json::from_slice(frame::payload(f)).unwrap();
            v["id"].as_u64().unwrap()
        })
        .collect()
}

fn settled(hub: &Hub, room: &RoomName, id: u64, floor: u64) -> (Membership, Outbox) {
    attached(hub, room, id, Some(floor))
}

#[test]
fn a_users_first_socket_arrives_and_their_last_departs() {
    let hub = Hub::default();
    let lobby = RoomName::lobby();
    let (a, first) = hub.attach(lobby.clone(), user(1), sid(1), Outbox::new(4));
    let (b, again) = hub.attach(lobby.clone(), user(1), sid(1), Outbox::new(4));
    assert_eq!((first, again), (Arrival::First, Arrival::Again));
    assert_eq!((hub.online(&lobby), hub.users_online()), (1, 1));
    assert_eq!(hub.detach(&a), Some(Departure::Stays));
    assert_eq!(hub.detach(&a), None, "a socket leaves once");
    assert_eq!(hub.detach(&b), Some(Departure::Last));
    assert_eq!((hub.online(&lobby), hub.users_online()), (0, 0));
    assert!(hub.user(1).is_none());
}

#[test]
fn a_lingering_user_stays_in_the_room_until_every_departure_ends() {
    let hub = Hub::default();
    let lobby = RoomName::lobby();
    let (a, _) = hub.attach(lobby.clone(), user(1), sid(1), Outbox::new(4));
    assert_eq!(hub.detach_lingering(&a), Some(Departure::Lingers));
    assert_eq!(hub.online(&lobby), 1, "still in the room");
    assert_eq!(
        hub.users_page(&lobby, 0, usize::MAX).0.len(),
        1,
        "and in its list"
    );
    // A reload: no arrival, then gone again before the first grace ended.
    let (b, again) = hub.attach(lobby.clone(), user(1), sid(1), Outbox::new(4));
    assert_eq!(again, Arrival::Again);
    assert_eq!(hub.detach_lingering(&b), Some(Departure::Lingers));
    assert_eq!(hub.presence()[0].2, 2, "Redis still counts both sockets");
    assert_eq!(
        hub.depart(&lobby, 1),
        Some(Departure::Stays),
        "the second holds"
    );
    assert_eq!(hub.depart(&lobby, 1), Some(Departure::Last));
    assert_eq!(hub.depart(&lobby, 1), None, "nothing lingers any more");
    assert_eq!(hub.online(&lobby), 0);
    assert!(hub.presence().is_empty(), "the room is gone");
}

#[test]
fn a_departure_that_ends_while_the_user_is_back_is_no_departure() {
    let hub = Hub::default();
    let lobby = RoomName::lobby();
    let (a, _) = hub.attach(lobby.clone(), user(1), sid(1), Outbox::new(4));
    hub.detach_lingering(&a);
    let (b, _) = hub.attach(lobby.clone(), user(1), sid(1), Outbox::new(4));
    assert_eq!(hub.depart(&lobby, 1), Some(Departure::Stays));
    assert_eq!(hub.online(&lobby), 1);
    // A plain detach of the last socket is the last, now nothing lingers.
    assert_eq!(hub.detach(&b), Some(Departure::Last));
}

#[test]
fn a_joining_socket_hears_what_came_after_its_floor_and_nothing_before() {
    let hub = Hub::default();
    let lobby = RoomName::lobby();
    let outbox = Outbox::new(64);
    let (member, _) = hub.attach(lobby.clone(), user(1), sid(1), outbox.clone());
    hub.deliver(
        &lobby,
        &[event(5, Visibility::Room), event(6, Visibility::Room)],
    );
    assert!(frames(&outbox).is_empty(), "nothing before its history");
    hub.settle(
        &member,
        Entry {
            frames: vec![
                event(4, Visibility::Room).frame,
                event(5, Visibility::Room).frame,
            ],
            floor: 5,
            joined: false,
            count: 0,
        },
    );
    hub.deliver(
        &lobby,
        &[event(6, Visibility::Room), event(7, Visibility::Room)],
    );
    assert_eq!(ids(&outbox), [4, 5, 6, 7], "6 once, though it came twice");
}

#[test]
fn a_broadcast_shares_one_chunk_and_a_whisper_reaches_only_its_pair() {
    let hub = Hub::default();
    let lobby = RoomName::lobby();
    let (_, a) = settled(&hub, &lobby, 1, 0);
    let (_, b) = settled(&hub, &lobby, 2, 0);
    let (_, c) = settled(&hub, &lobby, 3, 0);
    hub.deliver(&lobby, &[event(1, Visibility::Room)]);
    let (fa, fb) = (frames(&a), frames(&b));
    assert_eq!(fa[0].as_ptr(), fb[0].as_ptr());
    frames(&c);
    hub.deliver(
        &lobby,
        &[event(2, Visibility::Pair(1, 2)), event(3, Visibility::Room)],
    );
    assert_eq!(
        (ids(&a), ids(&b), ids(&c)),
        (vec![2, 3], vec![2, 3], vec![3])
    );
}

#[test]
fn an_error_carries_the_last_id_its_socket_had() {
    let hub = Hub::default();
    let lobby = RoomName::lobby();
    let (member, outbox) = settled(&hub, &lobby, 1, 9);
    hub.reply_error(&member, "busy", "no");
    hub.deliver(&lobby, &[event(10, Visibility::Room)]);
    hub.reply_error(&member, "busy", "no");
    assert_eq!(ids(&outbox), [9, 10, 10]);
}

#[test]
fn a_page_built_before_an_event_arrived_is_stamped_with_that_event_s_id_when_sent() {
    let hub = Hub::default();
    let lobby = RoomName::lobby();
    let (member, outbox) = settled(&hub, &lobby, 1, 9);
    // Built outside the lock, while the room goes on: its id is the socket's when it is sent.
    let page = crate::chat::recovery::bound(Vec::new(), 10, 1024).unstamped(&member.user, Some(5));
    hub.deliver(
        &lobby,
        &[event(10, Visibility::Room), event(11, Visibility::Room)],
    );
    assert!(hub.reply_with(&member, page));
    let sent = frames(&outbox);
    let last: serde_json::Value = serde_json::from_slice(frame::payload(&sent[2])).unwrap();
    assert_eq!(
        (last["type"].as_str(), last["id"].as_u64()),
        (Some("history"), Some(11))
    );
    assert_eq!(last["before"], 5);
    let gone = hub.attach(lobby, user(2), sid(2), Outbox::new(4)).0;
    hub.detach(&gone);
    let page = crate::chat::recovery::bound(Vec::new(), 10, 1024).unstamped(&gone.user, None);
    assert!(
        !hub.reply_with(&gone, page),
        "a socket that left gets nothing"
    );
}

#[test]
fn users_are_found_by_id_and_their_rooms_listed() {
    let hub = Hub::default();
    let other = RoomName::parse("other").unwrap();
    settled(&hub, &RoomName::lobby(), 1, 0);
    settled(&hub, &other, 1, 0);
    settled(&hub, &other, 2, 0);
    assert_eq!(hub.user(2).unwrap().id, 2);
    assert!(hub.user(3).is_none());
    let names: Vec<u64> = hub
        .users_page(&other, 0, usize::MAX)
        .0
        .iter()
        .map(|u| u.id)
        .collect();
    assert_eq!(names, [1, 2], "in the order they came");
    assert_eq!(hub.users_online(), 2);
}

fn json(frame: &Frame) -> serde_json::Value {
    serde_json::from_slice(frame::payload(frame)).unwrap()
}

#[test]
fn a_whisper_goes_aside_to_the_pairs_sockets_in_other_rooms_without_their_ids() {
    let hub = Hub::default();
    let (lobby, tea) = (RoomName::lobby(), RoomName::parse("tea").unwrap());
    let (_, alice_lobby) = settled(&hub, &lobby, 1, 20);
    let (_, alice_tea) = settled(&hub, &tea, 1, 7);
    let (_, bob_tea) = settled(&hub, &tea, 2, 7);
    let (_, carol_tea) = settled(&hub, &tea, 3, 7);
    // Joining: gets it once its floor is known, with that floor.
    let late = Outbox::new(64);
    let (late_member, _) = hub.attach(tea.clone(), user(2), sid(2), late.clone());
    hub.deliver(&lobby, &[event(21, Visibility::Pair(1, 2))]);
    hub.settle(
        &late_member,
        Entry {
            frames: Vec::new(),
            floor: 9,
            joined: false,
            count: 0,
        },
    );
    hub.deliver(&tea, &[event(8, Visibility::Room)]);
    assert_eq!(
        ids(&alice_lobby),
        [21],
        "in its own room it has the room's id"
    );
    for (outbox, first) in [(&alice_tea, 7), (&bob_tea, 7), (&late, 9)] {
        let got = frames(outbox);
        let aside = json(&got[0]);
        assert_eq!(aside["id"], first);
        assert_eq!(
            aside["origin"],
            serde_json::json!({"room": "lobby", "id": 21})
        );
        let later: Vec<u64> = got[1..]
            .iter()
            .map(|f| json(f)["id"].as_u64().unwrap())
            .collect();
        let expected: &[u64] = if first == 7 { &[8] } else { &[] };
        assert_eq!(later, expected, "the room's own ids go on as before");
    }
    assert!(frames(&carol_tea).iter().all(|f| json(f)["id"] == 8));
}

fn signal(outbox: &Outbox) -> Option<Signal> {
    let mut batch = VecDeque::new();
    outbox
        .poll_news(&Context::from_waker(Waker::noop()), &mut batch, true)
        .signal
}

#[test]
fn closing_a_session_closes_its_sockets_in_every_room_and_no_others() {
    let hub = Hub::default();
    let (lobby, tea) = (RoomName::lobby(), RoomName::parse("tea").unwrap());
    let (mine, other) = (
        SessionId::from_bytes([1; 16]),
        SessionId::from_bytes([2; 16]),
    );
    let tab = |room: &RoomName, session| {
        let outbox = Outbox::new(4);
        let (member, _) = hub.attach(room.clone(), user(1), session, outbox.clone());
        (member, outbox)
    };
    let (_, a) = tab(&lobby, mine);
    let (b_member, b) = tab(&tea, mine);
    let (_, same_user_other_browser) = tab(&lobby, other);
    hub.detach(&b_member);
    let (_, c) = tab(&tea, mine);
    assert_eq!(hub.close_session(&mine, 4001, "signed out"), 2);
    for outbox in [&a, &c] {
        assert_eq!(
            signal(outbox),
            Some(Signal::Close(4001, "signed out".into()))
        );
    }
    assert_eq!(signal(&b), None, "a detached socket is no longer the hub's");
    assert_eq!(signal(&same_user_other_browser), None);
    assert_eq!(hub.sessions().len(), 2);
    assert_eq!(
        hub.close_session(&SessionId::from_bytes([3; 16]), 4001, "x"),
        0
    );
}

#[test]
fn close_user_signals_every_socket_of_that_user_only_with_the_reason_cut_to_fit() {
    let hub = Hub::default();
    let lobby = RoomName::lobby();
    let other = RoomName::parse("other").unwrap();
    let (_, a1) = settled(&hub, &lobby, 1, 0);
    let (_, a2) = settled(&hub, &other, 1, 0);
    let (_, b) = settled(&hub, &lobby, 2, 0);
    let long = "é".repeat(100);
    assert_eq!(hub.close_user(1, 4003, &long), 2);
    let news = |outbox: &Outbox| {
        outbox
            .poll_news(
                &Context::from_waker(Waker::noop()),
                &mut VecDeque::new(),
                true,
            )
            .signal
    };
    for outbox in [&a1, &a2] {
        let Some(Signal::Close(4003, reason)) = news(outbox) else {
            panic!("not closed with 4003");
        };
        assert_eq!(reason.len(), 122, "61 two-byte characters fit in 123 bytes");
        assert!(long.starts_with(reason.as_ref()));
    }
    assert_eq!(news(&b), None);
    assert_eq!(hub.close_user(3, 4003, "nobody"), 0);
}
