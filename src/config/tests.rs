use super::*;

#[test]
fn defaults_match_the_documented_contract() {
    let c = Config::parse_from(["passerby"]);
    assert_eq!(c.bind, "127.0.0.1:3000".parse().unwrap());
    assert_eq!(c.data_dir, PathBuf::from("data"));
    assert_eq!(c.secret_path(), PathBuf::from("data/secret.key"));
    assert_eq!(c.ping_interval, Duration::from_secs(25));
    assert_eq!(c.max_message_chars, 2000);
    assert_eq!(c.max_upload_bytes, 5 * 1024 * 1024);
    assert!(!c.secure_cookies);
    assert!(
        c.trusted_proxies.is_empty(),
        "no proxy is trusted unless named"
    );
    let retention = c.history_retention().expect("history is on by default");
    assert_eq!(retention.max_events, 10_000);
    assert_eq!(retention.max_age, Some(Duration::from_secs(30 * 86_400)));
    assert_eq!(c.history_on_join, 50);
    assert_eq!(c.cookie_days, 30);
    assert_eq!(c.max_revoked_sessions, 1_000_000);
    assert!(Config::try_parse_from(["passerby", "--cookie-days", "0"]).is_err());
    assert_eq!(c.history_page, 300);
    assert_eq!(c.history_reads, 64);
    assert_eq!(c.history_queue, 4096);
    assert_eq!(c.outbound_queue_bytes, 1024 * 1024);
    assert_eq!(c.write_timeout, Duration::from_secs(30));
    assert_eq!(c.redis, None, "the embedded engine unless Redis is named");
    assert_eq!(c.redis_target(), None);
    let nodes = "redis://127.0.0.1:7000,redis://127.0.0.1:7001";
    let cluster =
        Config::try_parse_from(["passerby", "--redis", nodes, "--redis-cluster"]).unwrap();
    let target = cluster.redis_target().unwrap();
    assert!(target.cluster && !c.redis_cluster);
    assert_eq!(target.url, nodes);
    assert_eq!(c.redis_engine.presence_ttl, Duration::from_secs(30));
    assert_eq!(c.redis_engine.position_check, Duration::from_secs(5));
    assert_eq!(c.redis_engine.subscriber_timeout, Duration::from_secs(15));
    assert_eq!((c.redis_engine.lanes, c.redis_engine.batch), (4, 64));
    assert_eq!(c.cid_window_secs, Duration::from_secs(600));
    assert!(Config::try_parse_from(["passerby", "--redis-lanes", "0"]).is_err());
    assert_eq!(c.room_idle_secs, Duration::from_secs(300));
    assert_eq!(c.presence_grace_secs, Duration::from_secs(5));
    assert_eq!(c.history_max_presence, 200);
    assert_eq!(c.big_rooms.big_room, 200);
    assert_eq!(c.big_rooms.presence_interval_ms, 1000);
    assert_eq!(c.big_rooms.list_page, 100);
    assert_eq!(c.max_rooms, 10_000);
    assert_eq!(c.room_rate, 30.0);
    assert_eq!(c.moderators.moderator_session_hours, 12);
    assert_eq!(c.moderators.moderator_auth_failures, 10.0);
    assert_eq!(
        (c.moderators.max_bans, c.moderators.max_mutes),
        (10_000, 10_000)
    );
    assert_eq!(c.moderators.audit_max_entries, 100_000);
    assert_eq!(
        (
            c.moderators.max_filter_words,
            c.moderators.max_filter_word_chars
        ),
        (2000, 50)
    );
    assert_eq!((c.socket_rate, c.socket_burst), (2.0, 30.0));
    assert_eq!(
        (c.socket_address_rate, c.socket_address_burst),
        (20.0, 256.0)
    );
}

#[test]
fn without_a_command_the_flags_run_the_server_and_data_dir_works_after_a_command() {
    let cli = Cli::parse_from(["passerby", "--bind", "127.0.0.1:4000"]);
    assert!(cli.command.is_none());
    assert_eq!(cli.config.bind, "127.0.0.1:4000".parse().unwrap());
    let cli = Cli::parse_from(["passerby", "moderator", "list", "--data-dir", "/x"]);
    assert!(cli.command.is_some());
    assert_eq!(cli.config.data_dir, PathBuf::from("/x"));
}

#[test]
fn zero_events_turns_history_off_and_zero_days_lifts_the_age_limit() {
    let c = Config::parse_from(["passerby", "--history-max-events", "0"]);
    assert!(c.history_retention().is_none());
    let c = Config::parse_from(["passerby", "--history-max-age-days", "0"]);
    assert_eq!(c.history_retention().unwrap().max_age, None);
    assert!(Config::try_parse_from(["passerby", "--history-max-age-days", "-1"]).is_err());
}

#[test]
fn trusted_proxies_repeat_split_on_commas_and_take_ranges() {
    let c = Config::parse_from([
        "passerby",
        "--trusted-proxy",
        "127.0.0.1,::1",
        "--trusted-proxy",
        "10.0.0.0/8",
    ]);
    let nets: Vec<String> = c.trusted_proxies.iter().map(ToString::to_string).collect();
    assert_eq!(nets, ["127.0.0.1/32", "::1/128", "10.0.0.0/8"]);
    let refused = Config::try_parse_from(["passerby", "--trusted-proxy", "nginx"]);
    let error = refused.unwrap_err().to_string();
    assert!(
        error.contains("`nginx` is neither an IP address nor a CIDR range"),
        "{error}"
    );
}

#[test]
fn allowed_origins_repeat_and_split_on_commas() {
    let c = Config::parse_from([
        "passerby",
        "--allowed-origin",
        "https://a.example,https://b.example",
        "--allowed-origin",
        "https://c.example",
    ]);
    assert_eq!(c.allowed_origins.len(), 3);
}

#[test]
fn ping_interval_takes_fractions_and_refuses_zero() {
    let c = Config::parse_from(["passerby", "--ping-interval", "0.5"]);
    assert_eq!(c.ping_interval, Duration::from_millis(500));
    assert!(Config::try_parse_from(["passerby", "--ping-interval", "0"]).is_err());
}
