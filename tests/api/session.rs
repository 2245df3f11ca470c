//! The HTTP routes: page, sign-in, sign-out, static files, errors.

use serde_json::{Value, json};

use crate::helpers::{cookie_pair, spawn_app, spawn_in, spawn_with};

#[tokio::test]
async fn the_page_offers_guest_names_in_the_seeds_order() {
    let app = spawn_app().await;
    let page = app.get("/ws").await;
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(page.text().await.unwrap().contains("路人甲"));
    app.sign_in("someone").await;
    let page = app.text("/ws").await;
    assert!(
        page.contains("路人乙"),
        "the second visitor is offered 路人乙"
    );
}

#[tokio::test]
async fn root_serves_the_same_page() {
    let app = spawn_app().await;
    let root = app.get("/").await;
    assert_eq!(root.status(), 200);
    assert!(root.text().await.unwrap().contains(r#"id="signin""#));
}

#[tokio::test]
async fn the_page_keeps_the_seeds_control_ids_and_sends_security_headers() {
    let app = spawn_app().await;
    let page = app.get("/ws").await;
    let headers = page.headers().clone();
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"));
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(headers.contains_key("referrer-policy"));
    let html = page.text().await.unwrap();
    for id in ["signin", "signout", "mes", "go"] {
        assert!(html.contains(&format!(r#"id="{id}""#)), "#{id} missing");
    }
    assert!(!html.contains("<script>"), "no inline script");
}

#[tokio::test]
async fn sign_in_with_a_form_answers_like_the_seed_and_sets_a_locked_down_cookie() {
    let app = spawn_app().await;
    let response = app.post_sign_in(&[("name", "小明")]).await;
    assert_eq!(response.status(), 200);
    let set = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    for attr in ["name=", "HttpOnly", "SameSite=Lax", "Path=/", "Max-Age="] {
        assert!(set.contains(attr), "{attr} missing in {set}");
    }
    assert!(!set.contains("Secure"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], 0);
    assert_eq!(body["data"], "登录成功");
    assert_eq!(body["user"]["name"], "小明");
    assert_eq!(body["user"]["type"], "游客");
}

#[tokio::test]
async fn secure_cookies_are_marked_secure() {
    let app = spawn_with(|c| c.secure_cookies = true).await;
    let response = app.post_sign_in(&[("name", "a")]).await;
    assert!(
        response.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Secure")
    );
}

#[tokio::test]
async fn sign_in_accepts_json_and_trims_the_name() {
    let app = spawn_app().await;
    let response = app
        .http
        .post(app.url("/wsin"))
        .json(&json!({ "name": "  Alice  " }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["user"]["name"], "Alice");
}

#[tokio::test]
async fn sign_in_without_a_name_takes_the_offered_guest_name() {
    let app = spawn_app().await;
    let empty_body = app.http.post(app.url("/wsin")).send().await.unwrap();
    let body: Value = empty_body.json().await.unwrap();
    assert_eq!(body["user"]["name"], "路人甲");
    let empty_field: Value = app
        .post_sign_in(&[("name", "")])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(empty_field["user"]["name"], "路人乙");
    let no_field: Value = app
        .http
        .post(app.url("/wsin"))
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(no_field["user"]["name"], "路人丙");
}

#[tokio::test]
async fn bad_names_get_400_with_a_reason() {
    let app = spawn_app().await;
    let long = "名".repeat(25);
    for (name, reason) in [
        ("   ", "empty"),
        (long.as_str(), "24"),
        ("a\u{7}b", "control"),
        ("a\u{202E}b", "invisible"),
    ] {
        let response = app.post_sign_in(&[("name", name)]).await;
        assert_eq!(response.status(), 400, "{name:?}");
        assert!(response.headers().get("set-cookie").is_none());
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["code"], 1);
        assert!(body["data"].as_str().unwrap().contains(reason), "{body}");
    }
}

#[tokio::test]
async fn malformed_bodies_get_clear_errors() {
    let app = spawn_app().await;
    let bad_json = app
        .http
        .post(app.url("/wsin"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(bad_json.status(), 400);
    assert_eq!(bad_json.json::<Value>().await.unwrap()["code"], 1);
    let wrong_type = app
        .http
        .post(app.url("/wsin"))
        .json(&json!({ "name": 5 }))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_type.status(), 400);
    let text = app
        .http
        .post(app.url("/wsin"))
        .header("content-type", "text/plain")
        .body("name=x")
        .send()
        .await
        .unwrap();
    assert_eq!(text.status(), 415);
    let huge = app
        .http
        .post(app.url("/wsin"))
        .form(&[("name", "x".repeat(10_000))])
        .send()
        .await
        .unwrap();
    assert_eq!(huge.status(), 413);
}

#[tokio::test]
async fn cross_site_sign_in_is_refused() {
    let app = spawn_app().await;
    let response = app
        .http
        .post(app.url("/wsin"))
        .header("origin", "http://evil.example")
        .form(&[("name", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert!(response.headers().get("set-cookie").is_none());
    let same_site = app
        .http
        .post(app.url("/wsin"))
        .header("origin", app.url(""))
        .form(&[("name", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(same_site.status(), 200);
}

#[tokio::test]
async fn sign_out_expires_the_cookie_and_answers_like_the_seed() {
    let app = spawn_app().await;
    for cookie in [Some(app.sign_in("a").await), None] {
        let mut request = app.http.get(app.url("/wsout"));
        if let Some(cookie) = &cookie {
            request = request.header("cookie", cookie);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        let set = response.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            set.starts_with("name=") && set.contains("Max-Age=0"),
            "{set}"
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(body, json!({ "code": 0, "data": "退出成功" }));
    }
}

#[tokio::test]
async fn user_ids_increase_and_survive_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let first = spawn_in(tmp.path().to_owned(), |_| {}).await;
    let id = |body: Value| body["user"]["id"].as_u64().unwrap();
    let a = id(first
        .post_sign_in(&[("name", "a")])
        .await
        .json()
        .await
        .unwrap());
    let before = first.post_sign_in(&[("name", "b")]).await;
    let old_cookie = cookie_pair(&before).unwrap();
    let b = id(before.json().await.unwrap());
    assert!(b > a);
    first.stop().await.unwrap();
    let second = spawn_in(tmp.path().to_owned(), |_| {}).await;
    let c = id(second
        .post_sign_in(&[("name", "c")])
        .await
        .json()
        .await
        .unwrap());
    assert!(c > b, "id {c} after restart must not reuse {b} or below");
    // The key survived too: a cookie from before the restart is still valid.
    let mut client = second.connect(&old_cookie).await;
    assert_eq!(client.expect("join").await["user"]["id"], b);
}

#[tokio::test]
async fn unknown_paths_are_404_and_wrong_methods_405() {
    let app = spawn_app().await;
    let missing = app.get("/nope").await;
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.json::<Value>().await.unwrap()["code"], 1);
    assert_eq!(
        app.http
            .get(app.url("/static/nope.js"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        app.http.post(app.url("/ws")).send().await.unwrap().status(),
        405
    );
    assert_eq!(
        app.http
            .get(app.url("/wsin"))
            .send()
            .await
            .unwrap()
            .status(),
        405
    );
    assert_eq!(
        app.http
            .delete(app.url("/wsout"))
            .send()
            .await
            .unwrap()
            .status(),
        405
    );
}

#[tokio::test]
async fn static_files_are_served_from_static() {
    let app = spawn_app().await;
    let jquery = app.get("/static/vendor/jquery/jquery.min.js").await;
    assert_eq!(jquery.status(), 200);
    assert!(
        jquery.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("javascript")
    );
    let traversal = app.get("/static/../Cargo.toml").await;
    assert_ne!(traversal.status(), 200);
}

#[tokio::test]
async fn the_page_is_chinese_by_default_and_english_when_the_browser_prefers_it() {
    let app = spawn_app().await;
    let page = |accept: Option<&'static str>| {
        let mut request = app.http.get(app.url("/ws"));
        if let Some(accept) = accept {
            request = request.header("accept-language", accept);
        }
        async move { request.send().await.unwrap() }
    };

    let chinese = page(None).await;
    assert_eq!(chinese.headers()["vary"], "accept-language");
    let html = chinese.text().await.unwrap();
    assert!(html.contains(r#"<html lang="zh-CN">"#));
    for text in ["登入", "退出", "发送消息"] {
        assert!(html.contains(text), "{text} missing");
    }

    let html = page(Some("en-GB,en;q=0.9,zh;q=0.5"))
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains(r#"<html lang="en">"#));
    assert!(html.contains(">Sign in<") && html.contains(">Send<"));
    assert!(!html.contains("发送消息"));

    let html = page(Some("zh-CN,zh;q=0.9,en;q=0.8"))
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains(r#"<html lang="zh-CN">"#));
}

#[tokio::test]
async fn a_signed_in_visitor_gets_the_room_view_at_once() {
    let app = spawn_app().await;
    let cookie = app.sign_in("<b>Eve</b>").await;
    let html = app.page(&cookie).await;
    assert!(
        html.contains(r#"data-signed-in="&#60;b&#62;Eve&#60;/b&#62;""#),
        "escaped"
    );
    assert!(html.contains(r#"<section id="signed-out" class="welcome" hidden>"#));
    assert!(html.contains(r#"<section id="signed-in" class="room">"#));
    assert!(!html.contains("<b>Eve"), "a name is never markup");
}

#[tokio::test]
async fn the_favicon_and_the_ten_avatars_are_served() {
    let app = spawn_app().await;
    let icon = app.get("/favicon.ico").await;
    assert_eq!(icon.status(), 200);
    assert_eq!(icon.headers()["content-type"], "image/svg+xml");
    assert_eq!(icon.headers()["x-content-type-options"], "nosniff");
    for image in 0..10 {
        let avatar = app.get(&format!("/static/img/avatars/{image}.svg")).await;
        assert_eq!(avatar.status(), 200, "avatar {image}");
        assert_eq!(avatar.headers()["content-type"], "image/svg+xml");
    }
}

#[tokio::test]
async fn sign_ins_from_one_address_are_limited_with_429() {
    let app = spawn_with(|c| {
        c.sign_in_rate = 0.01;
        c.sign_in_burst = 3.0;
    })
    .await;
    for n in 0..3 {
        let ok = app.post_sign_in(&[("name", &format!("u{n}"))]).await;
        assert_eq!(ok.status(), 200);
    }
    let refused = app.post_sign_in(&[("name", "one too many")]).await;
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["retry-after"], "1");
    assert!(refused.headers().get("set-cookie").is_none());
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["code"], 1);
    assert!(body["data"].as_str().unwrap().contains("too many sign-ins"));
}
