//! `OriginPolicy`: which web origins may open a socket or sign in.
//!
//! Browsers send `Origin` on WebSocket upgrades and cross-site POSTs, and a cookie rides along
//! either way. Refusing foreign origins stops cross-site WebSocket hijacking and login CSRF.

use axum::http::{HeaderMap, header};

#[derive(Debug, Clone, Default)]
pub struct OriginPolicy {
    /// Extra allowed origins, normalized.
    allowed: Vec<String>,
}

impl OriginPolicy {
    pub fn new(allowed: &[String]) -> Self {
        OriginPolicy {
            allowed: allowed
                .iter()
                .map(|o| normalize_origin(o))
                .filter(|o| !o.is_empty())
                .collect(),
        }
    }

    /// A request with no `Origin` (curl, native apps) is allowed; a browser's must match the
    /// `Host` it talks to or an allowed origin.
    pub fn allows(&self, headers: &HeaderMap) -> bool {
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
        let Some((scheme, authority)) = origin.split_once("://") else {
            return false;
        };
        let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
            return false;
        };
        strip_default_port(scheme, &host.to_ascii_lowercase()) == authority
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
        "http" | "ws" => ":80",
        "https" | "wss" => ":443",
        _ => return authority,
    };
    authority.strip_suffix(default).unwrap_or(authority)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, host.parse().unwrap());
        if let Some(o) = origin {
            h.insert(header::ORIGIN, o.parse().unwrap());
        }
        h
    }

    #[test]
    fn no_origin_is_allowed() {
        assert!(OriginPolicy::default().allows(&headers(None, "a:3000")));
    }

    #[test]
    fn same_host_is_allowed() {
        let p = OriginPolicy::default();
        assert!(p.allows(&headers(Some("http://127.0.0.1:3000"), "127.0.0.1:3000")));
        assert!(p.allows(&headers(Some("https://Chat.Example"), "chat.example")));
        assert!(p.allows(&headers(Some("http://chat.example"), "chat.example:80")));
    }

    #[test]
    fn other_hosts_ports_and_null_are_refused() {
        let p = OriginPolicy::default();
        assert!(!p.allows(&headers(Some("http://evil.example"), "chat.example")));
        assert!(!p.allows(&headers(Some("http://chat.example:8080"), "chat.example")));
        assert!(!p.allows(&headers(Some("null"), "chat.example")));
        assert!(!p.allows(&headers(Some("http://chat.example.evil"), "chat.example")));
    }

    #[test]
    fn configured_origins_are_allowed() {
        let p = OriginPolicy::new(&["https://app.example/".into()]);
        assert!(p.allows(&headers(Some("https://APP.example"), "chat.example")));
        assert!(!p.allows(&headers(Some("http://app.example"), "chat.example")));
    }
}
