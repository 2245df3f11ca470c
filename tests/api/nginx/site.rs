//! The shipped site in front of passerby: the page, sign-in, sockets, static files, the
//! client's address, nginx's timeouts and its upload limit.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_nginx_the_page_sign_in_sockets_static_files_and_client_address_work() {
    let app = ServerProcess::start(&["--trusted-proxy", "127.0.0.1", "--ping-interval", "0.5"]);
    let nginx = Nginx::start(app.addr);
    let browser = nginx.browser();

    // The page, proxied and compressed.
    let page = browser
        .get(nginx.url("/"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["server"]
            .to_str()
            .unwrap()
            .starts_with("nginx")
    );
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert_eq!(page.headers()["content-encoding"], "gzip");
    assert!(
        page.headers().contains_key("content-security-policy"),
        "the page comes from passerby"
    );
    let page = browser.get(nginx.url("/ws")).send().await.unwrap();
    assert!(page.text().await.unwrap().contains(r#"id="signin""#));

    // Static files come from nginx: one exists only in nginx's root, and both carry nginx's
    // cache headers and none of passerby's.
    let only = browser
        .get(nginx.url("/static/only-in-nginx.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(only.status(), 200);
    assert_eq!(only.text().await.unwrap(), "served by nginx\n");
    let direct = reqwest::get(app.url("/static/only-in-nginx.txt"))
        .await
        .unwrap();
    assert_eq!(direct.status(), 404, "passerby does not have it");
    let script = browser
        .get(nginx.url("/static/js/chat.js"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), 200);
    let headers = script.headers();
    // Unversioned: revalidated every time, by the ETag nginx sends.
    assert_eq!(headers["cache-control"], "no-cache");
    assert!(headers.contains_key("etag"));
    assert_eq!(headers["content-encoding"], "gzip");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(
        !headers.contains_key("content-security-policy"),
        "not from passerby"
    );
    // As the page links it, with its content's hash: kept for good.
    let versioned = browser
        .get(nginx.url("/static/js/chat.js?v=0123456789abcdef"))
        .send()
        .await
        .unwrap();
    assert_eq!(versioned.status(), 200);
    assert_eq!(
        versioned.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    // The page's bundles come from passerby, which makes them.
    let bundle = browser
        .get(nginx.url("/static/bundle/chat.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(bundle.status(), 200);
    assert!(bundle.headers().contains_key("content-security-policy"));

    // Health through nginx; metrics only for this machine.
    let health = browser.get(nginx.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let hidden = browser.get(nginx.url("/metrics")).send().await.unwrap();
    assert_eq!(hidden.status(), 403, "visitors cannot read /metrics");

    // Sign-in with the page's Origin: passerby sees the port in Host, so it matches.
    let alice_cookie = nginx.sign_in("alice").await;
    let bob_cookie = nginx.sign_in("bob").await;
    assert!(alice_cookie.starts_with("name="));

    // Sockets on /ws and on /, and chat both ways. From here on the clients keep reading, or
    // they would miss passerby's pings (every 0.5 s) and be dropped.
    let mut alice = nginx.connect("/ws", &alice_cookie).await;
    alice.expect("join").await;
    alice.expect("list").await;
    alice.expect("history").await;
    let mut bob = nginx.connect("/", &bob_cookie).await;
    bob.expect("join").await;
    bob.expect("list").await;
    bob.expect("history").await;
    assert_eq!(alice.expect("join").await["data"], "bob joined.");
    alice.say("hello bob").await;
    assert_eq!(bob.expect("chat").await["data"], "hello bob");
    assert_eq!(alice.expect("chat").await["data"], "hello bob");
    bob.say("hello alice").await;
    assert_eq!(alice.expect("chat").await["data"], "hello alice");
    assert_eq!(bob.expect("chat").await["data"], "hello alice");
    bob.say(&"x".repeat(2001)).await;
    bob.expect("error").await;

    // Idle sockets outlive nginx's read timeout: passerby's pings keep them busy.
    let idle = Duration::from_secs(READ_TIMEOUT_SECS) + Duration::from_millis(1500);
    let start = Instant::now();
    let (to_alice, to_bob) = tokio::join!(alice.events_within(idle), bob.events_within(idle));
    assert!(to_alice.is_empty() && to_bob.is_empty());
    assert!(start.elapsed() >= idle, "a socket ended while idle");
    bob.say("still there?").await;
    assert_eq!(alice.expect("chat").await["data"], "still there?");
    assert_eq!(bob.expect("chat").await["data"], "still there?");

    // The metrics count what happened through nginx.
    let text = reqwest::get(app.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let value = |series: &str| metric(&text, series);
    assert_eq!(value("passerby_connections_total"), Some(2.0));
    assert_eq!(value("passerby_sign_ins_total"), Some(2.0));
    assert_eq!(
        value(r#"passerby_events_broadcast_total{kind="chat"}"#),
        Some(3.0)
    );
    assert_eq!(value(&rejected_messages("too_long")), Some(1.0));

    // passerby logged the browser's address, not nginx's.
    for event in ["signed in", "connected"] {
        let line = app.log_line(&[event, "client=127.0.0.2"]).await;
        assert!(!line.contains("client=127.0.0.1"), "{line}");
    }
    let rejected = app.log_line(&["rejected", "reasons=too_long=1"]).await;
    assert!(rejected.contains("client=127.0.0.2"), "{rejected}");
}

#[tokio::test]
async fn without_pings_nginx_closes_an_idle_socket_at_its_read_timeout() {
    // The control for the idle check above: it shows the short timeout is really in force.
    let app = ServerProcess::start(&["--trusted-proxy", "127.0.0.1", "--ping-interval", "30"]);
    let nginx = Nginx::start(app.addr);
    let cookie = nginx.sign_in("quiet").await;
    let mut quiet = nginx.connect("/ws", &cookie).await;
    quiet.expect("join").await;
    quiet.expect("list").await;
    quiet.expect("history").await;
    let start = Instant::now();
    assert_eq!(quiet.close_code().await, None, "nginx drops the connection");
    let lasted = start.elapsed();
    assert!(
        lasted >= Duration::from_millis(READ_TIMEOUT_SECS * 1000 - 200) && lasted < WAIT,
        "closed after {lasted:?}"
    );
}

#[test]
fn the_site_file_is_valid_where_the_readme_puts_it_in_debians_nginx_conf() {
    // Debian's nginx.conf includes conf.d/*.conf inside `http { }`; put the shipped file
    // there, and every path nginx would write into a temp dir.
    let nginx = find_nginx();
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().to_str().unwrap();
    let stock = std::fs::read_to_string("/etc/nginx/nginx.conf")
        .expect("Debian's nginx package ships /etc/nginx/nginx.conf");
    let site = concat!(env!("CARGO_MANIFEST_DIR"), "/nginx/passerby.conf");
    let include = "include /etc/nginx/conf.d/*.conf;";
    assert!(stock.contains(include), "{stock}");
    let conf: String = stock
        .replace(include, &format!("include {site};"))
        .lines()
        .map(|line| match line.split_whitespace().next() {
            Some("pid") => format!("pid {tmp}/nginx.pid;"),
            Some("error_log") => format!("error_log {tmp}/error.log;"),
            Some("access_log") => format!("access_log {tmp}/access.log;"),
            Some("include") if line.contains("sites-enabled") => String::new(),
            _ => line.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(dir.path().join("nginx.conf"), conf).unwrap();
    let output = Command::new(nginx)
        .arg("-t")
        .arg("-c")
        .arg(dir.path().join("nginx.conf"))
        .arg("-e")
        .arg(dir.path().join("error.log"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("test is successful"), "{stderr}");
}

/// `client_max_body_size` in the shipped site, in bytes.
fn nginx_body_limit() -> usize {
    let value = SITE
        .lines()
        .find_map(|line| line.trim().strip_prefix("client_max_body_size "))
        .expect("the site sets client_max_body_size")
        .trim_end_matches(';');
    let (number, unit) = value.split_at(value.len() - 1);
    let number: usize = number.parse().unwrap();
    match unit {
        "k" => number * 1024,
        "m" => number * 1024 * 1024,
        _ => panic!("client_max_body_size {value}: give it in k or m"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_and_passerby_agree_on_the_upload_limit_and_images_come_through() {
    let default = passerby::config::Config::with_data_dir("unused").max_upload_bytes;
    assert_eq!(
        nginx_body_limit(),
        passerby::upload::body_limit(default),
        "nginx's body limit is passerby's: --max-upload-bytes plus the multipart slack"
    );
    let app = ServerProcess::start(&["--trusted-proxy", "127.0.0.1"]);
    let nginx = Nginx::start(app.addr);
    let cookie = nginx.sign_in("uploader").await;
    let post = |bytes: Vec<u8>| {
        let form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(bytes)
                .file_name("big.png")
                .mime_str("image/png")
                .unwrap(),
        );
        nginx
            .browser()
            .post(nginx.url("/upload"))
            .header("origin", nginx.origin())
            .header("cookie", &cookie)
            .multipart(form)
            .send()
    };
    let mut image = crate::upload::PNG.to_vec();
    image.resize(default, 0);

    // Exactly the limit passes nginx and passerby, and is served back through nginx.
    let response = post(image.clone()).await.unwrap();
    assert_eq!(response.status(), 200);
    let url = response.json::<serde_json::Value>().await.unwrap()["data"]
        .as_str()
        .unwrap()
        .to_owned();
    let served = nginx.browser().get(nginx.url(&url)).send().await.unwrap();
    assert_eq!(served.status(), 200);
    assert_eq!(served.headers()["content-type"], "image/png");
    assert_eq!(served.headers()["x-content-type-options"], "nosniff");
    assert!(
        served.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    assert_eq!(served.bytes().await.unwrap().len(), default);

    // One byte over: nginx lets it through, passerby answers with its precise reason.
    image.push(0);
    let response = post(image.clone()).await.unwrap();
    assert_eq!(response.status(), 413);
    let reply: serde_json::Value = response.json().await.unwrap();
    assert!(
        reply["data"]
            .as_str()
            .unwrap()
            .contains("larger than 5242880 bytes"),
        "{reply}"
    );

    // Past the body limit: nginx refuses it, in the same JSON shape.
    image.resize(nginx_body_limit() + 1, 0);
    let response = post(image).await.unwrap();
    assert_eq!(response.status(), 413);
    let reply: serde_json::Value = response.json().await.unwrap();
    assert_eq!(reply["code"], 1);
    assert_eq!(
        reply["data"], "the upload is larger than the server accepts",
        "nginx's own answer"
    );

    // Traversal through nginx still ends in a 404 (the encoded one reaches passerby's check).
    for path in ["/uploads/..%2fsecret.key", "/uploads/../secret.key"] {
        let response = nginx.browser().get(nginx.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
    }
}
