use super::*;

fn user() -> User {
    User {
        kind: "游客".into(),
        id: 3,
        name: "a".into(),
        image: 3,
    }
}

#[test]
fn events_have_the_seed_shape() {
    let u = user();
    let frame = ServerEvent {
        id: 9,
        kind: EventKind::Chat,
        user: &u,
        data: EventData::Text("hi"),
        time: 1,
        count: None,
    }
    .to_frame();
    assert_eq!(
        std::str::from_utf8(frame::payload(&frame)).unwrap(),
        r#"{"id":9,"type":"chat","user":{"type":"游客","id":3,"name":"a","image":3},"data":"hi","time":1}"#
    );
}

#[test]
fn list_data_is_an_array_of_users_with_a_count() {
    let u = user();
    let frame = ServerEvent {
        id: 1,
        kind: EventKind::List,
        user: &u,
        data: EventData::Users(&[&u]),
        time: 1,
        count: Some(1),
    }
    .to_frame();
    let v: serde_json::Value = serde_json::from_slice(frame::payload(&frame)).unwrap();
    assert_eq!(v["data"][0]["name"], "a");
    assert_eq!(v["count"], 1);
}

#[test]
fn a_delete_names_one_id_in_id_and_always_lists_them_in_ids() {
    let u = user();
    let one = DeleteEvent {
        id: 9,
        kind: EventKind::Delete,
        user: &u,
        data: DeleteData::new(&[4]),
        time: 1,
    }
    .to_frame();
    let v: serde_json::Value = serde_json::from_slice(frame::payload(&one)).unwrap();
    assert_eq!(v["type"], "delete");
    assert_eq!(v["data"], serde_json::json!({"id": 4, "ids": [4]}));
    let many = DeleteEvent {
        data: DeleteData::new(&[4, 6]),
        id: 10,
        kind: EventKind::Delete,
        user: &u,
        time: 1,
    }
    .to_frame();
    assert!(
        std::str::from_utf8(frame::payload(&many))
            .unwrap()
            .contains(r#""data":{"ids":[4,6]}"#)
    );
    let head = StoredHead::read(std::str::from_utf8(frame::payload(&one)).unwrap()).unwrap();
    assert_eq!(
        (head.kind, head.user.id, head.time),
        (EventKind::Delete, 3, 1)
    );
    assert!(!head.kind.is_message());
}

#[test]
fn plain_text_is_chat() {
    assert_eq!(
        parse_client_text("hello"),
        Ok(ClientCommand::Chat {
            data: "hello".into(),
            cid: None
        })
    );
}

#[test]
fn json_without_a_string_type_is_chat_too() {
    for text in [r#"{"a":1}"#, r#"{"type":3}"#, "[1,2]", "{not json"] {
        assert_eq!(
            parse_client_text(text),
            Ok(ClientCommand::Chat {
                data: text.into(),
                cid: None
            })
        );
    }
}

#[test]
fn chat_command_carries_its_data() {
    assert_eq!(
        parse_client_text(r#"{"type":"chat","data":"hi"}"#),
        Ok(ClientCommand::Chat {
            data: "hi".into(),
            cid: None
        })
    );
}

#[test]
fn private_and_image_commands_carry_their_fields() {
    assert_eq!(
        parse_client_text(r#"{"type":"private","to":7,"data":"psst"}"#),
        Ok(ClientCommand::Private {
            to: 7,
            data: "psst".into(),
            cid: None
        })
    );
    assert_eq!(
        parse_client_text(r#"{"type":"image","data":"/uploads/x.png"}"#),
        Ok(ClientCommand::Image {
            data: "/uploads/x.png".into(),
            cid: None
        })
    );
    for bad in [
        r#"{"type":"private","data":"no one"}"#,
        r#"{"type":"private","to":"7","data":"a string id"}"#,
        r#"{"type":"private","to":-1,"data":"x"}"#,
        r#"{"type":"private","to":7}"#,
        r#"{"type":"image"}"#,
    ] {
        assert!(parse_client_text(bad).is_err(), "{bad}");
    }
}

#[test]
fn a_private_event_names_sender_and_recipient() {
    let (from, mut to) = (user(), user());
    to.id = 4;
    let frame = PrivateEvent {
        id: 2,
        kind: EventKind::Private,
        user: &from,
        to: &to,
        data: "psst",
        time: 1,
    }
    .to_frame();
    let v: serde_json::Value = serde_json::from_slice(frame::payload(&frame)).unwrap();
    assert_eq!(v["type"], "private");
    assert_eq!(
        (v["user"]["id"].as_u64(), v["to"]["id"].as_u64()),
        (Some(3), Some(4))
    );
}

#[test]
fn a_whisper_elsewhere_keeps_the_sockets_id_and_names_its_origin() {
    let (from, mut to) = (user(), user());
    to.id = 4;
    let stored = PrivateEvent {
        id: 12,
        kind: EventKind::Private,
        user: &from,
        to: &to,
        data: "psst \"id\":1}",
        time: 1,
    }
    .to_frame();
    let tea = RoomName::parse("tea").unwrap();
    let frame = elsewhere(&stored, 5, &tea).unwrap();
    let v: serde_json::Value = serde_json::from_slice(frame::payload(&frame)).unwrap();
    assert_eq!(v["id"], 5);
    assert_eq!(v["origin"], serde_json::json!({"room": "tea", "id": 12}));
    assert_eq!(
        (v["type"].as_str(), v["data"].as_str()),
        (Some("private"), Some("psst \"id\":1}"))
    );
    assert_eq!(v["to"]["id"], 4);
    assert!(elsewhere(&frame::text(|b| b.extend_from_slice(b"[1]")), 5, &tea).is_none());
}

#[test]
fn unknown_or_malformed_commands_are_errors() {
    assert!(
        parse_client_text(r#"{"type":"fly"}"#)
            .unwrap_err()
            .to_string()
            .starts_with("bad command: unknown variant `fly`")
    );
    assert!(
        parse_client_text(r#"{"type":"chat"}"#)
            .unwrap_err()
            .to_string()
            .contains("data")
    );
    assert!(parse_client_text(r#"{"type":"chat","data":5}"#).is_err());
}

#[test]
fn a_history_command_names_an_id_above_zero() {
    assert_eq!(
        parse_client_text(r#"{"type":"history","before":42}"#),
        Ok(ClientCommand::History { before: 42 })
    );
    for bad in [
        r#"{"type":"history"}"#,
        r#"{"type":"history","before":0}"#,
        r#"{"type":"history","before":-3}"#,
        r#"{"type":"history","before":"7"}"#,
        r#"{"type":"history","before":1.5}"#,
    ] {
        assert!(parse_client_text(bad).is_err(), "{bad}");
    }
}

#[test]
fn chat_private_and_image_may_carry_a_cid_and_a_bad_one_is_a_bad_command() {
    let cid = |s: &str| Some(Cid::parse(s).unwrap());
    assert_eq!(
        parse_client_text(r#"{"type":"chat","data":"hi","cid":"m-1"}"#),
        Ok(ClientCommand::Chat {
            data: "hi".into(),
            cid: cid("m-1")
        })
    );
    assert_eq!(
        parse_client_text(r#"{"type":"private","to":7,"data":"x","cid":"a.b"}"#),
        Ok(ClientCommand::Private {
            to: 7,
            data: "x".into(),
            cid: cid("a.b")
        })
    );
    assert_eq!(
        parse_client_text(r#"{"type":"image","data":"/uploads/x.png","cid":"9"}"#),
        Ok(ClientCommand::Image {
            data: "/uploads/x.png".into(),
            cid: cid("9")
        })
    );
    for bad in [
        r#"{"type":"chat","data":"hi","cid":""}"#,
        r#"{"type":"chat","data":"hi","cid":"a b"}"#,
        r#"{"type":"chat","data":"hi","cid":7}"#,
    ] {
        let refused = parse_client_text(bad).unwrap_err().to_string();
        assert!(refused.starts_with("bad command"), "{bad}: {refused}");
    }
    let long = format!(
        r#"{{"type":"chat","data":"hi","cid":"{}"}}"#,
        "x".repeat(Cid::MAX + 1)
    );
    assert!(parse_client_text(&long).is_err());
}
