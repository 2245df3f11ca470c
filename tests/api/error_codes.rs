//! Every `error` event and every refused request carries a stable `code` and its `params`,
//! beside the English text old clients show, so a page can say it in its own language.

use serde_json::{Value, json};

use crate::helpers::{Client, spawn_app, spawn_with};

/// The next `error` this client is sent.
async fn error(client: &mut Client) -> Value {
    client.until(|e| e["type"] == "error").await.0
}

fn assert_coded(event: &Value, code: &str) {
    assert_eq!(event["code"], code, "{event}");
    assert!(event["params"].is_object(), "{event}");
    assert!(
        event["data"].as_str().is_some_and(|t| !t.is_empty()),
        "the English text stays: {event}"
    );
}

#[tokio::test]
async fn refused_messages_name_their_code_and_params() {
    let app = spawn_with(|c| c.max_message_chars = 10).await;
    let (mut ada, me) = app.join("ada").await;

    ada.say("this is longer than ten").await;
    let e = error(&mut ada).await;
    assert_coded(&e, "too_long");
    assert_eq!(e["params"], json!({"len": 23, "max": 10}));

    ada.say(r#"{"type":"shout","data":"x"}"#).await;
    assert_coded(&error(&mut ada).await, "bad_command");

    let to_me = json!({"type": "private", "to": me["id"], "data": "me"});
    ada.say(&to_me.to_string()).await;
    let e = error(&mut ada).await;
    assert_coded(&e, "bad_recipient");
    assert_eq!(e["params"]["to"], me["id"]);

    ada.say(r#"{"type":"image","data":"/uploads/nothing.png"}"#)
        .await;
    assert_coded(&error(&mut ada).await, "bad_image");
}

#[tokio::test]
async fn a_whisper_to_someone_who_left_names_them() {
    let app = spawn_app().await;
    let (mut ada, _) = app.join("ada").await;
    let (bea, bea_user) = app.join("bea").await;
    drop(bea);
    ada.until(|e| e["type"] == "left" && e["user"]["id"] == bea_user["id"])
        .await;

    let whisper = json!({"type": "private", "to": bea_user["id"], "data": "still there?"});
    ada.say(&whisper.to_string()).await;
    let e = error(&mut ada).await;
    assert_coded(&e, "not_online");
    assert_eq!(e["params"], json!({"id": bea_user["id"], "name": "bea"}));
    assert!(e["data"].as_str().unwrap().contains("bea"), "{e}");

    // Someone never seen here: the id alone.
    ada.say(r#"{"type":"private","to":999999,"data":"hello?"}"#)
        .await;
    let e = error(&mut ada).await;
    assert_eq!(e["params"], json!({"id": 999_999, "name": null}));
    assert_eq!(e["data"], "user 999999 is not online");
}

#[tokio::test]
async fn the_rate_limit_says_how_often_one_may_send() {
    let app = spawn_with(|c| {
        c.rate_burst = 2.0;
        c.rate_limit = 0.5;
    })
    .await;
    let (mut ada, _) = app.join("ada").await;
    for n in 0..3 {
        ada.say(&format!("quick {n}")).await;
    }
    let e = error(&mut ada).await;
    assert_coded(&e, "rate_limited");
    assert_eq!(e["params"], json!({"every_ms": 2000}));
}

async fn refused_body(response: reqwest::Response) -> Value {
    assert!(!response.status().is_success(), "{response:?}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], 1, "the seed's shape stays: {body}");
    assert!(body["data"].is_string(), "{body}");
    assert!(body["params"].is_object(), "{body}");
    body
}

#[tokio::test]
async fn refused_sign_ins_uploads_and_sign_outs_name_their_code() {
    let app = spawn_with(|c| c.sign_in_burst = 2.0).await;

    let bad = refused_body(app.post_sign_in(&[("name", "a\u{200b}b")]).await).await;
    assert_eq!(bad["error"], "bad_name", "{bad}");
    assert_eq!(bad["params"]["rule"], "format", "{bad}");
    assert_eq!(bad["params"]["char"], "U+200B", "{bad}");

    let long = refused_body(app.post_sign_in(&[("name", &"x".repeat(30))]).await).await;
    assert_eq!(long["params"]["rule"], "too_long", "{long}");
    assert_eq!(long["params"]["max"], 24, "{long}");

    let foreign = app
        .http
        .post(app.url("/wsin"))
        .header("origin", "http://elsewhere.example")
        .form(&[("name", "ada")])
        .send()
        .await
        .unwrap();
    assert_eq!(refused_body(foreign).await["error"], "cross_origin");

    // The bad names took the burst: the next sign-in is over the limit.
    let limited = refused_body(app.post_sign_in(&[("name", "ada")]).await).await;
    assert_eq!(limited["error"], "sign_in_rate_limited", "{limited}");

    let upload = app.http.post(app.url("/upload")).send().await.unwrap();
    let upload = refused_body(upload).await;
    assert_eq!(upload["error"], "upload_not_signed_in", "{upload}");

    let sign_out = app
        .http
        .get(app.url("/wsout"))
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(refused_body(sign_out).await["error"], "cross_site");
}

#[tokio::test]
async fn a_refused_upload_says_what_was_wrong_with_it() {
    let app = spawn_app().await;
    let cookie = app.sign_in("ada").await;
    let svg = reqwest::multipart::Part::bytes(&b"<svg onload='alert(1)'/>"[..]).file_name("x.png");
    let response = app
        .http
        .post(app.url("/upload"))
        .header("cookie", &cookie)
        .multipart(reqwest::multipart::Form::new().part("file", svg))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
    let body = refused_body(response).await;
    assert_eq!(body["error"], "upload_unsupported_type", "{body}");
    assert_eq!(body["params"], json!({"svg": true}), "{body}");
}
