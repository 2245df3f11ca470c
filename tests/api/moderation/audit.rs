//! `GET /admin/api/audit`: every moderator action, newest first, paged and bounded.

use reqwest::Method;
use serde_json::Value;

use super::spawn_moderated;

fn ids(page: &Value) -> Vec<i64> {
    page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn the_audit_log_lists_who_did_what_newest_first_a_page_at_a_time() {
    let m = spawn_moderated(|_| {}).await;
    for _ in 0..3 {
        m.session_cookie().await;
    }
    let (status, page) = m.api(Method::GET, "/admin/api/audit", None).await;
    assert_eq!(status, 200);
    let all = ids(&page);
    assert_eq!(all.len(), 3);
    assert!(all.windows(2).all(|w| w[0] > w[1]), "newest first: {all:?}");
    let entry = &page["entries"][0];
    assert_eq!(entry["moderator"], "alice");
    assert_eq!(entry["action"], "session");
    assert_eq!(entry["target"], "moderator:alice");
    assert!(entry["time"].as_i64().unwrap() > 1_700_000_000_000);
    assert!(page.get("next").is_none(), "one page holds them all");

    let (_, first) = m.api(Method::GET, "/admin/api/audit?limit=2", None).await;
    assert_eq!(ids(&first), all[..2]);
    let next = first["next"].as_i64().unwrap();
    let (_, second) = m
        .api(
            Method::GET,
            &format!("/admin/api/audit?limit=2&before={next}"),
            None,
        )
        .await;
    assert_eq!(ids(&second), all[2..]);

    let (status, _) = m
        .api(Method::GET, "/admin/api/audit?limit=many", None)
        .await;
    assert_eq!(status, 400);
    let response = m
        .call(
            Method::GET,
            "/admin/api/audit",
            Some("pbm_wrong"),
            None,
            &[],
        )
        .await;
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn the_audit_log_keeps_only_the_newest_entries_and_survives_a_restart() {
    let m = spawn_moderated(|c| c.moderators.audit_max_entries = 2).await;
    for _ in 0..4 {
        m.session_cookie().await;
    }
    let (_, page) = m.api(Method::GET, "/admin/api/audit", None).await;
    let kept = ids(&page);
    assert_eq!(kept.len(), 2, "{page}");
    let m = m.restart(|c| c.moderators.audit_max_entries = 2).await;
    let (_, page) = m.api(Method::GET, "/admin/api/audit", None).await;
    assert_eq!(ids(&page), kept);
}
