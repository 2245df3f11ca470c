//! `OriginPolicy`: which web origins may open a socket, sign in, upload or sign out.
//!
//! Browsers send `Origin` on WebSocket upgrades and cross-site POSTs, and a cookie rides along
//! either way. Refusing foreign origins stops cross-site WebSocket hijacking and login CSRF.
//! An origin is a scheme, a host and a port, and all three must be ours: `https://` when the
//! visitor reached us over TLS, `http://` when not.

use std::{
    convert::Infallible,
    net::{IpAddr, SocketAddr},
    time::Instant,
};

use axum::{
    extract::{ConnectInfo, FromRequestParts},
    http::{HeaderMap, header, request::Parts},
};

use super::client_addr::address_key;
use crate::{log_sample::Sample, state::AppState};

const X_FORWARDED_PROTO: &str = "x-forwarded-proto";
const SEC_FETCH_SITE: &str = "sec-fetch-site";

/// The scheme the visitor's browser used to reach us: the scheme of our page's origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct OriginPolicy {
    /// Extra allowed origins, normalized.
    allowed: Vec<String>,
    /// `--secure-cookies`: visitors reach us over TLS, whatever a proxy says.
    behind_tls: bool,
}

impl OriginPolicy {
    pub fn new(allowed: &[String], behind_tls: bool) -> Self {
        OriginPolicy {
            allowed: allowed
                .iter()
                .map(|o| normalize_origin(o))
                .filter(|o| !o.is_empty())
                .collect(),
            behind_tls,
        }
    }

    /// `https` behind TLS (`--secure-cookies`), or when a proxy we trust says
    /// `X-Forwarded-Proto: https`; otherwise `http`, which is what the server itself speaks.
    pub fn scheme(&self, from_trusted_proxy: bool, headers: &HeaderMap) -> Scheme {
        if self.behind_tls {
            return Scheme::Https;
        }
        // Each proxy may append its own; the first is the one the browser talked to.
        let forwarded = from_trusted_proxy
            .then(|| headers.get(X_FORWARDED_PROTO)?.to_str().ok())
            .flatten()
            .and_then(|v| v.split(',').next())
            .map(str::trim);
        match forwarded {
            Some(proto) if proto.eq_ignore_ascii_case("https") => Scheme::Https,
            _ => Scheme::Http,
        }
    }

    /// A request with no `Origin` (curl, native apps) is allowed; a browser's must be an
    /// `--allowed-origin`, or this server as the visitor reached it: the same scheme, host and
    /// port. `null` (sandboxed frames, `file:` pages) and other schemes are refused.
    pub fn allows(&self, headers: &HeaderMap, scheme: Scheme) -> bool {
        let Some(origin) = headers.get(header::ORIGIN) else {
            return true;
        };
        let Ok(origin) = origin.to_str() else {
            return false;
        };
        let origin = normalize_origin(origin);
        if self.allowed.contains(&origin) {
            return true;
        }
        let Some((origin_scheme, authority)) = origin.split_once("://") else {
            return false;
        };
        if origin_scheme != scheme.as_str() {
            return false;
        }
        let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
            return false;
        };
        strip_default_port(origin_scheme, &host.to_ascii_lowercase()) == authority
    }

    /// Whether a request that changes state without a body (`GET /wsout`) comes from another
    /// site's page. A foreign or `null` `Origin` does. Without `Origin` (a link, a same-origin
    /// fetch), the browser's `Sec-Fetch-Site` tells: `cross-site`, and `same-site` too, since a
    /// sibling subdomain is someone else's page; `same-origin`, `none` (typed in the address
    /// bar) and no header at all (curl, older browsers) are fine.
    pub fn is_cross_site(&self, headers: &HeaderMap, scheme: Scheme) -> bool {
        if headers.contains_key(header::ORIGIN) {
            return !self.allows(headers, scheme);
        }
        let site = headers.get(SEC_FETCH_SITE).and_then(|v| v.to_str().ok());
        matches!(site.map(str::trim), Some(s) if s.eq_ignore_ascii_case("cross-site") || s.eq_ignore_ascii_case("same-site"))
    }
}

/// Counts a request refused for anything a client can repeat at will (its origin, a limit, a
/// missing cookie, a bad room or upload), for a sampled log line per address: one line each
/// would let a client, or a page on another site through its visitors, flood the logs.
pub fn refused_request(state: &AppState, client: IpAddr, reason: &'static str) {
    let key = address_key(client);
    state.refused_requests.record(key, reason, Instant::now());
}

/// The sampled line for one address's refused requests: how many, and why.
pub fn log_refused_requests(client: &IpAddr, sample: &Sample) {
    tracing::warn!(
        %client,
        count = sample.count,
        reasons = %sample,
        "refused requests"
    );
}

/// The request's `Scheme`, for `OriginPolicy::allows`.
impl FromRequestParts<AppState> for Scheme {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Infallible> {
        let trusted = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .is_some_and(|ConnectInfo(peer)| state.proxies.trusts(peer.ip()));
        Ok(state.origins.scheme(trusted, &parts.headers))
    }
}

/// Lowercase, no trailing slash, no default port: how browsers would serialize it.
fn normalize_origin(origin: &str) -> String {
    let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
    match origin.split_once("://") {
        Some((scheme, authority)) => {
            format!("{scheme}://{}", strip_default_port(scheme, authority))
        }
        None => origin,
    }
}

fn strip_default_port<'a>(scheme: &str, authority: &'a str) -> &'a str {
    let default = match scheme {
        "http" => ":80",
        "https" => ":443",
        _ => return authority,
    };
    authority.strip_suffix(default).unwrap_or(authority)
}

#[cfg(test)]
mod tests {
    use super::*;

    use Scheme::{Http, Https};

    fn headers(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, host.parse().unwrap());
        if let Some(o) = origin {
            h.insert(header::ORIGIN, o.parse().unwrap());
        }
        h
    }

    fn with(mut h: HeaderMap, name: &'static str, value: &str) -> HeaderMap {
        h.insert(name, value.parse().unwrap());
        h
    }

    #[test]
    fn no_origin_is_allowed() {
        assert!(OriginPolicy::default().allows(&headers(None, "a:3000"), Http));
    }

    #[test]
    fn same_scheme_host_and_port_is_allowed() {
        let p = OriginPolicy::default();
        assert!(p.allows(
            &headers(Some("http://127.0.0.1:3000"), "127.0.0.1:3000"),
            Http
        ));
        assert!(p.allows(
            &headers(Some("https://Chat.Example"), "chat.example"),
            Https
        ));
        assert!(p.allows(
            &headers(Some("http://chat.example"), "chat.example:80"),
            Http
        ));
        assert!(p.allows(
            &headers(Some("https://chat.example"), "chat.example:443"),
            Https
        ));
    }

    #[test]
    fn other_hosts_ports_and_null_are_refused() {
        let p = OriginPolicy::default();
        let refused = |origin, host| !p.allows(&headers(Some(origin), host), Http);
        assert!(refused("http://evil.example", "chat.example"));
        assert!(refused("http://chat.example:8080", "chat.example"));
        assert!(refused("null", "chat.example"));
        assert!(refused("http://chat.example.evil", "chat.example"));
    }

    #[test]
    fn the_scheme_must_be_the_one_the_visitor_used() {
        let p = OriginPolicy::default();
        let host = "127.0.0.1:3000";
        for foreign in [
            "foo://127.0.0.1:3000",
            "ws://127.0.0.1:3000",
            "file://127.0.0.1:3000",
            "https://127.0.0.1:3000",
        ] {
            assert!(!p.allows(&headers(Some(foreign), host), Http), "{foreign}");
        }
        assert!(!p.allows(&headers(Some("http://chat.example"), "chat.example"), Https));
        assert!(!p.allows(&headers(Some("foo://chat.example"), "chat.example"), Https));
    }

    #[test]
    fn configured_origins_are_allowed_exactly() {
        let p = OriginPolicy::new(&["https://app.example/".into()], false);
        assert!(p.allows(&headers(Some("https://APP.example"), "chat.example"), Http));
        assert!(!p.allows(&headers(Some("http://app.example"), "chat.example"), Http));
    }

    #[test]
    fn the_scheme_is_https_behind_tls_or_when_a_trusted_proxy_says_so() {
        let plain = OriginPolicy::default();
        let none = HeaderMap::new();
        let https = with(HeaderMap::new(), X_FORWARDED_PROTO, "HTTPS");
        assert_eq!(plain.scheme(false, &none), Http);
        assert_eq!(plain.scheme(true, &none), Http);
        assert_eq!(
            plain.scheme(false, &https),
            Http,
            "anyone can send the header"
        );
        assert_eq!(plain.scheme(true, &https), Https);
        let chain = with(HeaderMap::new(), X_FORWARDED_PROTO, "https, http");
        assert_eq!(plain.scheme(true, &chain), Https);
        let http = with(HeaderMap::new(), X_FORWARDED_PROTO, "http");
        assert_eq!(plain.scheme(true, &http), Http);
        assert_eq!(OriginPolicy::new(&[], true).scheme(false, &none), Https);
    }

    #[test]
    fn cross_site_is_told_by_origin_then_by_sec_fetch_site() {
        let p = OriginPolicy::new(&["https://app.example".into()], false);
        let host = "chat.example";
        let cross = |h: HeaderMap| p.is_cross_site(&h, Http);
        assert!(!cross(headers(None, host)), "curl and old browsers");
        for site in ["same-origin", "none"] {
            assert!(
                !cross(with(headers(None, host), SEC_FETCH_SITE, site)),
                "{site}"
            );
        }
        for site in ["cross-site", "same-site"] {
            assert!(
                cross(with(headers(None, host), SEC_FETCH_SITE, site)),
                "{site}"
            );
        }
        assert!(cross(headers(Some("null"), host)));
        assert!(cross(headers(Some("http://evil.example"), host)));
        assert!(!cross(headers(Some("http://chat.example"), host)));
        let allowed = with(
            headers(Some("https://app.example"), host),
            SEC_FETCH_SITE,
            "cross-site",
        );
        assert!(!cross(allowed), "an --allowed-origin's page may sign out");
    }
}
