use super::*;

const KEEP_ALL: Retention = Retention {
    max_events: 1000,
    max_age: None,
};

fn event(room: &str, id: u64, time: u64, body: &'static str) -> NewEvent<'static> {
    NewEvent {
        room: if room == "a" { "a" } else { "b" },
        id,
        time,
        visible: Visibility::Room,
        body,
        presence: false,
    }
}

#[test]
fn events_and_reservations_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut store = HistoryStore::open(dir.path(), KEEP_ALL).unwrap();
        store
            .append(
                &[event("a", 1, 1, "{\"n\":1}"), event("a", 2, 1, "{\"n\":2}")],
                &[("a", 64)],
            )
            .unwrap();
        store.append(&[], &[("a", 10)]).unwrap();
    }
    let store = HistoryStore::open(dir.path(), KEEP_ALL).unwrap();
    assert_eq!(
        store.rooms().unwrap(),
        [("a".to_owned(), 64)],
        "never goes back"
    );
    assert_eq!(
        store.read("a", 0, 64, 9, 50).unwrap(),
        ["{\"n\":1}", "{\"n\":2}"]
    );
    let mode: String = store
        .conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn an_id_sqlite_cannot_hold_is_refused_not_wrapped() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = HistoryStore::open(dir.path(), KEEP_ALL).unwrap();
    let top = i64::MAX as u64;
    store
        .append(&[event("a", top, 1, "last")], &[("a", top)])
        .unwrap();
    assert!(store.append(&[event("a", top + 1, 1, "x")], &[]).is_err());
    assert!(store.append(&[], &[("a", u64::MAX)]).is_err());
    assert_eq!(store.rooms().unwrap(), [("a".to_owned(), top)]);
    assert_eq!(store.read("a", 0, top, 1, 5).unwrap(), ["last"]);
}

#[test]
fn synchronous_is_normal_by_default_and_full_when_power_safe() {
    let dir = tempfile::tempdir().unwrap();
    let store = HistoryStore::open(dir.path(), KEEP_ALL).unwrap();
    let level = |store: &HistoryStore| -> i64 {
        store
            .conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(level(&store), 1, "NORMAL");
    store.power_safe().unwrap();
    assert_eq!(level(&store), 2, "FULL");
}

#[test]
fn read_takes_the_newest_in_the_range_oldest_first_per_room() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = HistoryStore::open(dir.path(), KEEP_ALL).unwrap();
    store
        .append(
            &[
                event("a", 1, 1, "1"),
                event("b", 2, 1, "b2"),
                event("a", 3, 1, "3"),
                event("a", 4, 1, "4"),
                event("a", 5, 1, "5"),
            ],
            &[],
        )
        .unwrap();
    assert_eq!(store.read("a", 0, 4, 1, 2).unwrap(), ["3", "4"]);
    assert_eq!(store.read("a", 3, 100, 1, 50).unwrap(), ["4", "5"]);
    assert_eq!(store.read("b", 0, 100, 1, 50).unwrap(), ["b2"]);
}

#[test]
fn a_pair_event_is_read_only_by_its_two_users() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = HistoryStore::open(dir.path(), KEEP_ALL).unwrap();
    let private = NewEvent {
        visible: Visibility::Pair(7, 8),
        ..event("a", 1, 1, "secret")
    };
    store
        .append(&[private, event("a", 2, 1, "open")], &[])
        .unwrap();
    assert_eq!(store.read("a", 0, 9, 7, 50).unwrap(), ["secret", "open"]);
    assert_eq!(store.read("a", 0, 9, 8, 50).unwrap(), ["secret", "open"]);
    assert_eq!(store.read("a", 0, 9, 9, 50).unwrap(), ["open"]);
}

#[test]
fn pruning_by_count_keeps_the_newest_and_remembers_what_went() {
    let dir = tempfile::tempdir().unwrap();
    let retention = Retention {
        max_events: 2,
        max_age: None,
    };
    let mut store = HistoryStore::open(dir.path(), retention).unwrap();
    let events: Vec<_> = (1..=5).map(|id| event("a", id, 1, "x")).collect();
    store.append(&events, &[("a", 5)]).unwrap();
    assert_eq!(store.prune_room("a").unwrap(), 3);
    assert_eq!(store.pruned_through("a").unwrap(), 3);
    assert_eq!(store.read("a", 0, 9, 1, 50).unwrap().len(), 2);
    assert_eq!(store.prune_room("a").unwrap(), 0, "nothing more to prune");
    assert_eq!(store.rooms().unwrap(), [("a".to_owned(), 5)]);
}

#[test]
fn pruning_by_age_drops_old_events_in_every_room() {
    let dir = tempfile::tempdir().unwrap();
    let retention = Retention {
        max_events: 100,
        max_age: Some(Duration::from_secs(1)),
    };
    let mut store = HistoryStore::open(dir.path(), retention).unwrap();
    store
        .append(
            &[
                event("a", 1, 1_000, "old"),
                event("b", 2, 1_000, "old"),
                event("a", 3, 9_000, "new"),
            ],
            &[],
        )
        .unwrap();
    assert_eq!(store.prune_by_age(9_500).unwrap(), 2);
    assert_eq!(store.pruned_through("a").unwrap(), 1);
    assert_eq!(store.pruned_through("b").unwrap(), 2);
    assert_eq!(store.read("a", 0, 9, 1, 50).unwrap(), ["new"]);
}

#[test]
fn a_reader_sees_what_the_writer_committed() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = HistoryStore::open(dir.path(), KEEP_ALL).unwrap();
    let reader = store.reader().unwrap();
    store
        .append(&[event("a", 1, 1, "one")], &[("a", 1)])
        .unwrap();
    assert_eq!(reader.read("a", 0, 9, 1, 50).unwrap(), ["one"]);
    let mut other = reader;
    assert!(
        other.append(&[event("a", 2, 1, "x")], &[]).is_err(),
        "read only"
    );
}

#[test]
fn a_snapshot_reads_one_moment_whatever_commits_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = HistoryStore::open(dir.path(), KEEP_ALL).unwrap();
    let reader = store.reader().unwrap();
    store.append(&[event("a", 1, 1, "one")], &[]).unwrap();
    let (before, during) = reader
        .snapshot(|r| {
            let before = r.read("a", 0, 9, 1, 50)?;
            store.append(&[event("a", 2, 1, "two")], &[]).unwrap();
            Ok((before, r.read("a", 0, 9, 1, 50)?))
        })
        .unwrap();
    assert_eq!(before, during, "the commit in between is not seen");
    assert_eq!(reader.read("a", 0, 9, 1, 50).unwrap(), ["one", "two"]);
}

#[test]
fn presence_has_its_own_bound_and_never_pushes_messages_out() {
    let dir = tempfile::tempdir().unwrap();
    let retention = Retention {
        max_events: 3,
        max_age: None,
    };
    let mut store = HistoryStore::open(dir.path(), retention).unwrap();
    store.keep_presence(2);
    let presence = |id| NewEvent {
        presence: true,
        ..event("a", id, 1, "p")
    };
    let mut events = vec![event("a", 1, 1, "m1"), event("a", 2, 1, "m2")];
    events.extend((3..=40).map(presence));
    events.push(event("a", 41, 1, "m3"));
    store.append(&events, &[("a", 41)]).unwrap();
    store.prune_room("a").unwrap();
    assert_eq!(
        store.read_messages("a", 0, 100, 1, 50).unwrap(),
        ["m1", "m2", "m3"],
        "every message is still there, and no presence"
    );
    assert_eq!(
        store.read("a", 0, 100, 1, 50).unwrap(),
        ["m1", "m2", "p", "p", "m3"],
        "the newest two presence events are kept"
    );
    assert_eq!(
        store.pruned_through("a").unwrap(),
        0,
        "no message was pruned"
    );
}

#[test]
fn a_file_from_before_presence_was_kept_apart_is_migrated() {
    let dir = tempfile::tempdir().unwrap();
    {
        let conn = Connection::open(dir.path().join(FILE_NAME)).unwrap();
        conn.execute_batch(
            r#"CREATE TABLE events (
                   room TEXT NOT NULL, id INTEGER NOT NULL, time INTEGER NOT NULL,
                   visible_a INTEGER, visible_b INTEGER, body TEXT NOT NULL,
                   PRIMARY KEY (room, id)) WITHOUT ROWID;
               INSERT INTO events VALUES
                   ('a', 1, 1, NULL, NULL, '{"id":1,"type":"join","user":{},"data":"x joined."}'),
                   ('a', 2, 1, NULL, NULL, '{"id":2,"type":"chat","user":{},"data":"\"type\":\"join\","}'),
                   ('a', 3, 1, NULL, NULL, '{"id":3,"type":"left","user":{},"data":"x is left."}');
               PRAGMA user_version = 1;"#,
        )
        .unwrap();
    }
    let store = HistoryStore::open(dir.path(), KEEP_ALL).unwrap();
    let messages = store.read_messages("a", 0, 9, 1, 50).unwrap();
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(messages[0].contains(r#""type":"chat""#));
    assert_eq!(store.read("a", 0, 9, 1, 50).unwrap().len(), 3);
}
