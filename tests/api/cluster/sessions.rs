//! Signing out through one instance closes the session's sockets on every instance, and
//! every instance refuses its cookie from then on.

use std::time::{Duration, Instant};

use super::Cluster;
use crate::sessions::{chatting, sign_out};

#[tokio::test]
async fn a_sign_out_on_a_closes_the_sessions_socket_on_b_and_b_refuses_the_cookie() {
    let cluster = Cluster::new();
    let (a, b) = (cluster.instance().await, cluster.instance().await);
    let cookie = a.sign_in("alice").await;
    let mut on_b = b.connect(&cookie).await;
    on_b.expect("join").await;
    let (mut bob, _) = b.join("bob").await;
    let (mut carol, _) = a.join("carol").await;

    let start = Instant::now();
    assert_eq!(sign_out(&a, &cookie).await.status(), 200);
    let closed = on_b.close_code().await.expect("a close frame");
    assert_eq!(closed, (4001, "signed out".to_owned()));
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "took {:?}",
        start.elapsed()
    );

    let mut again = b.connect(&cookie).await;
    assert_eq!(
        again.close_code().await.expect("a close frame"),
        (4001, "signed out".to_owned()),
        "B refuses the cookie A revoked"
    );
    chatting(&mut bob, &mut carol, "across instances, unaffected").await;
}

#[tokio::test]
async fn past_max_revoked_sessions_in_redis_a_sign_out_is_refused_on_every_instance() {
    let cluster = Cluster::new();
    let instance = || {
        let (url, secret) = (cluster.redis.url(), cluster.secret_file());
        crate::helpers::spawn_with(move |c| {
            c.redis = Some(url);
            c.secret_file = Some(secret);
            c.max_revoked_sessions = 1;
        })
    };
    let (a, b) = (instance().await, instance().await);
    let first = a.sign_in("first").await;
    assert_eq!(sign_out(&a, &first).await.status(), 200);
    let second = b.sign_in("second").await;
    let refused = sign_out(&b, &second).await;
    assert_eq!(refused.status(), 503, "the cap is the cluster's, not B's");
    // The one remembered is not dropped to make room.
    let mut client = b.connect(&first).await;
    assert_eq!(client.close_code().await.unwrap().0, 4001);
    let mut client = a.connect(&second).await;
    client.expect("join").await;
}
