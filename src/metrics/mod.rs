//! `Metrics`: what `GET /metrics` reports, in the Prometheus text format.
//!
//! Each `App` has its own registry, so servers sharing a process (the tests) keep their own
//! counts. Every per-label counter is resolved once here, so counting on a hot path is one
//! atomic add: no label lookup, no allocation.

use prometheus::{
    Encoder as _, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder, core::Collector,
};

mod labels;

pub use labels::{Refused, Reject, UploadReject};

/// The `Content-Type` of `render`'s output.
pub const CONTENT_TYPE: &str = prometheus::TEXT_FORMAT;

/// Events the engine broadcast to a room, by kind. The engine holds a clone and counts.
#[derive(Debug, Clone)]
pub struct EventCounters {
    pub join: IntCounter,
    pub chat: IntCounter,
    pub left: IntCounter,
    /// Whispers delivered, counted once however many sockets get them.
    pub private: IntCounter,
    pub image: IntCounter,
}

impl EventCounters {
    fn from_vec(vec: &IntCounterVec) -> Self {
        EventCounters {
            join: vec.with_label_values(&["join"]),
            chat: vec.with_label_values(&["chat"]),
            left: vec.with_label_values(&["left"]),
            private: vec.with_label_values(&["private"]),
            image: vec.with_label_values(&["image"]),
        }
    }
}

impl Default for EventCounters {
    /// Counters nobody reports: for an engine built without an `App` (unit tests).
    fn default() -> Self {
        EventCounters::from_vec(&events_vec())
    }
}

fn events_vec() -> IntCounterVec {
    IntCounterVec::new(
        Opts::new(
            "events_broadcast_total",
            "Events broadcast to a room, by kind.",
        ),
        &["kind"],
    )
    .expect("a fixed, valid metric definition")
}

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Signed-in sockets open now.
    pub connections_open: IntGauge,
    /// Signed-in sockets opened since start.
    pub connections: IntCounter,
    /// Distinct users with a socket open; set when scraped.
    users_online: IntGauge,
    pub events: EventCounters,
    rejected: [IntCounter; Reject::ALL.len()],
    /// Sockets closed because their client did not read fast enough.
    pub slow_readers: IntCounter,
    pub sign_ins: IntCounter,
    /// Images stored by `POST /upload`.
    pub uploads: IntCounter,
    uploads_rejected: [IntCounter; UploadReject::ALL.len()],
    /// TCP connections open now, upgraded sockets included.
    pub http_connections_open: IntGauge,
    refused: [IntCounter; Refused::ALL.len()],
    /// `accept` failures, such as running out of file descriptors.
    pub accept_errors: IntCounter,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let registry =
            Registry::new_custom(Some("passerby".into()), None).expect("a fixed, valid prefix");
        let connections_open =
            IntGauge::new("connections_open", "Signed-in WebSockets open now.").expect("valid");
        let connections = IntCounter::new(
            "connections_total",
            "Signed-in WebSockets opened since start.",
        )
        .expect("valid");
        let users_online =
            IntGauge::new("users_online", "Distinct users with a WebSocket open.").expect("valid");
        let events = events_vec();
        let rejected_vec = IntCounterVec::new(
            Opts::new(
                "messages_rejected_total",
                "Client messages refused, by reason.",
            ),
            &["reason"],
        )
        .expect("valid");
        let slow_readers = IntCounter::new(
            "slow_reader_disconnects_total",
            "WebSockets closed with 1008 because the client did not read fast enough.",
        )
        .expect("valid");
        let sign_ins =
            IntCounter::new("sign_ins_total", "Successful sign-ins (POST /wsin).").expect("valid");
        let uploads =
            IntCounter::new("uploads_total", "Images stored (POST /upload).").expect("valid");
        let uploads_rejected = IntCounterVec::new(
            Opts::new("uploads_rejected_total", "Uploads refused, by reason."),
            &["reason"],
        )
        .expect("valid");
        let http_connections_open = IntGauge::new(
            "http_connections_open",
            "TCP connections open now, upgraded WebSockets included.",
        )
        .expect("valid");
        let refused = IntCounterVec::new(
            Opts::new(
                "connections_refused_total",
                "Connections and WebSockets refused at a cap, by which cap.",
            ),
            &["reason"],
        )
        .expect("valid");
        let accept_errors = IntCounter::new(
            "accept_errors_total",
            "Failures to accept a connection, such as running out of file descriptors.",
        )
        .expect("valid");
        let collectors: [Box<dyn Collector>; 12] = [
            Box::new(connections_open.clone()),
            Box::new(connections.clone()),
            Box::new(users_online.clone()),
            Box::new(events.clone()),
            Box::new(rejected_vec.clone()),
            Box::new(slow_readers.clone()),
            Box::new(sign_ins.clone()),
            Box::new(uploads.clone()),
            Box::new(uploads_rejected.clone()),
            Box::new(http_connections_open.clone()),
            Box::new(refused.clone()),
            Box::new(accept_errors.clone()),
        ];
        for collector in collectors {
            registry
                .register(collector)
                .expect("metric names are fixed and unique");
        }
        Metrics {
            registry,
            connections_open,
            connections,
            users_online,
            events: EventCounters::from_vec(&events),
            // Resolving every label now makes each one appear at 0 before it first happens.
            rejected: Reject::ALL.map(|r| rejected_vec.with_label_values(&[r.label()])),
            slow_readers,
            sign_ins,
            uploads,
            uploads_rejected: UploadReject::ALL
                .map(|r| uploads_rejected.with_label_values(&[r.label()])),
            http_connections_open,
            refused: Refused::ALL.map(|r| refused.with_label_values(&[r.label()])),
            accept_errors,
        }
    }

    pub fn reject(&self, reason: Reject) {
        self.rejected[reason as usize].inc();
    }

    pub fn reject_upload(&self, reason: UploadReject) {
        self.uploads_rejected[reason as usize].inc();
    }

    pub fn refuse(&self, reason: Refused) {
        self.refused[reason as usize].inc();
    }

    /// The text exposition of every metric. `users_online` is counted by the caller at scrape
    /// time, which is cheaper than tracking it on every join and leave.
    pub fn render(&self, users_online: usize) -> String {
        self.users_online
            .set(i64::try_from(users_online).unwrap_or(i64::MAX));
        let mut buffer = Vec::new();
        // Encoding our own well-formed families into memory cannot fail.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buffer);
        String::from_utf8_lossy(&buffer).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    #[test]
    fn every_series_is_reported_from_the_start() {
        let text = Metrics::new().render(0);
        for series in [
            "passerby_connections_open",
            "passerby_connections_total",
            "passerby_users_online",
            "passerby_slow_reader_disconnects_total",
            "passerby_sign_ins_total",
            "passerby_messages_rejected_total{reason=\"too_long\"}",
            "passerby_messages_rejected_total{reason=\"invalid_utf8\"}",
            "passerby_events_broadcast_total{kind=\"chat\"}",
            "passerby_events_broadcast_total{kind=\"private\"}",
            "passerby_messages_rejected_total{reason=\"bad_image\"}",
            "passerby_uploads_total",
            "passerby_uploads_rejected_total{reason=\"too_large\"}",
            "passerby_uploads_rejected_total{reason=\"not_signed_in\"}",
            "passerby_uploads_rejected_total{reason=\"server_busy\"}",
            "passerby_uploads_rejected_total{reason=\"timeout\"}",
            "passerby_http_connections_open",
            "passerby_connections_refused_total{reason=\"per_address\"}",
            "passerby_connections_refused_total{reason=\"total\"}",
            "passerby_connections_refused_total{reason=\"per_user\"}",
            "passerby_accept_errors_total",
        ] {
            assert_eq!(value(&text, series), Some(0.0), "{series} in\n{text}");
        }
        assert!(text.contains("# TYPE passerby_connections_open gauge"));
        assert!(text.contains("# TYPE passerby_sign_ins_total counter"));
    }

    #[test]
    fn counts_land_on_their_own_series() {
        let m = Metrics::new();
        m.reject(Reject::RateLimited);
        m.reject(Reject::RateLimited);
        m.reject(Reject::Protocol);
        m.events.chat.inc();
        m.connections_open.inc();
        let text = m.render(3);
        let rejected = |r: &str| {
            value(
                &text,
                &format!("passerby_messages_rejected_total{{reason=\"{r}\"}}"),
            )
        };
        assert_eq!(rejected("rate_limited"), Some(2.0));
        assert_eq!(rejected("protocol"), Some(1.0));
        assert_eq!(rejected("too_long"), Some(0.0));
        assert_eq!(
            value(&text, "passerby_events_broadcast_total{kind=\"chat\"}"),
            Some(1.0)
        );
        assert_eq!(value(&text, "passerby_users_online"), Some(3.0));
        assert_eq!(value(&text, "passerby_connections_open"), Some(1.0));
    }

    #[test]
    fn two_apps_do_not_share_counts() {
        let (a, b) = (Metrics::new(), Metrics::new());
        a.sign_ins.inc();
        assert_eq!(value(&b.render(0), "passerby_sign_ins_total"), Some(0.0));
    }

    #[test]
    fn close_codes_map_to_their_rejections() {
        assert_eq!(Reject::for_close_code(1003), Some(Reject::Binary));
        assert_eq!(Reject::for_close_code(1009), Some(Reject::TooBig));
        assert_eq!(Reject::for_close_code(1007), Some(Reject::InvalidUtf8));
        assert_eq!(Reject::for_close_code(1002), Some(Reject::Protocol));
        assert_eq!(Reject::for_close_code(1001), None);
        assert_eq!(Reject::for_close_code(1008), None);
    }
}
