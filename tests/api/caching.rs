//! What browsers may keep: pages never (Back must not bring up a stale sign-in form), a
//! second sign-in from a browser that is signed in keeps its identity.

use serde_json::Value;

use crate::helpers::{cookie_pair, spawn_app};

#[tokio::test]
async fn pages_are_never_stored() {
    let app = spawn_app().await;
    let cookie = app.sign_in("ada").await;
    for (path, cookie) in [
        ("/ws", ""),
        ("/ws", cookie.as_str()),
        ("/ws?room=kitchen", cookie.as_str()),
        ("/?room=not%20a%20room!", ""),
        ("/admin", ""),
    ] {
        let response = app
            .http
            .get(app.url(path))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        let content_type = response.headers()["content-type"].to_str().unwrap();
        assert!(
            content_type.starts_with("text/html"),
            "{path}: {content_type}"
        );
        assert_eq!(
            response.headers()["cache-control"],
            "no-store",
            "{path} with cookie {cookie:?}"
        );
    }
}

#[tokio::test]
async fn signing_in_again_with_a_valid_cookie_keeps_the_identity() {
    let app = spawn_app().await;
    let first = app.post_sign_in(&[("name", "ada")]).await;
    let cookie = cookie_pair(&first).unwrap();
    let first: Value = first.json().await.unwrap();
    assert!(first.get("kept").is_none(), "{first}");

    let again = app
        .http
        .post(app.url("/wsin"))
        .header("cookie", &cookie)
        .form(&[("name", "someone else")])
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["kept"], true);
    assert_eq!(again["user"], first["user"]);

    // Signed out, the same cookie no longer holds a session: a new identity is made.
    let out = app
        .http
        .get(app.url("/wsout"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 200);
    let after = app
        .http
        .post(app.url("/wsin"))
        .header("cookie", &cookie)
        .form(&[("name", "bea")])
        .send()
        .await
        .unwrap();
    let after: Value = after.json().await.unwrap();
    assert!(after.get("kept").is_none(), "{after}");
    assert_ne!(after["user"]["id"], first["user"]["id"]);
    assert_eq!(after["user"]["name"], "bea");
}
