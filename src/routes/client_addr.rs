//! `ClientAddr`: who is on the other end, as seen through the proxies we trust.
//!
//! Behind nginx every TCP peer is nginx itself. nginx says who it talks to in `X-Real-IP` and
//! appends it to `X-Forwarded-For`, but anyone can send those headers, so they count only when
//! the peer is a proxy named with `--trusted-proxy`.

use std::net::{IpAddr, SocketAddr};

use axum::{
    extract::{ConnectInfo, FromRequestParts},
    http::{HeaderMap, request::Parts},
};
use ipnet::IpNet;

use crate::{error::ApiError, state::AppState};

const X_FORWARDED_FOR: &str = "x-forwarded-for";
const X_REAL_IP: &str = "x-real-ip";

/// The proxies whose forwarding headers we believe.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn new(nets: &[IpNet]) -> Self {
        TrustedProxies(nets.to_vec())
    }

    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client's address. A trusted peer's `X-Forwarded-For` is read from the right, the
    /// side our own proxies wrote, and the first hop that is not a trusted proxy is the client;
    /// everything left of it could be made up. Without that header, a trusted peer's
    /// `X-Real-IP` is used. An untrusted peer is the client, whatever it claims.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.trusts(peer) {
            return peer;
        }
        let mut hops = headers
            .get_all(X_FORWARDED_FOR)
            .iter()
            .rev()
            .flat_map(|value| value.to_str().unwrap_or("").rsplit(','))
            .map(str::trim)
            .peekable();
        if hops.peek().is_none() {
            return headers
                .get(X_REAL_IP)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_hop)
                .unwrap_or(peer);
        }
        let mut nearest = peer;
        for hop in hops {
            // A hop we cannot read was not written by a proxy we trust: stop at the last one
            // we could.
            let Some(ip) = parse_hop(hop) else {
                return nearest;
            };
            if !self.trusts(ip) {
                return ip;
            }
            nearest = ip;
        }
        // Every hop is one of ours: the leftmost is as close to the client as we can see.
        nearest
    }
}

/// An address as proxies write it: `203.0.113.9`, `2001:db8::1`, or with a port.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    hop.parse::<IpAddr>()
        .or_else(|_| hop.parse::<SocketAddr>().map(|s| s.ip()))
        .ok()
        .map(|ip| ip.to_canonical())
}

/// A `--trusted-proxy` value that names no address; clap shows the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is neither an IP address nor a CIDR range")]
pub struct BadProxy(String);

/// Parses a `--trusted-proxy` value: an address (`127.0.0.1`, `::1`) or a range (`10.0.0.0/8`).
pub fn parse_proxy(s: &str) -> Result<IpNet, BadProxy> {
    let s = s.trim();
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| BadProxy(s.to_owned()))
}

/// The key that per-address limits count under. An IPv6 client usually holds a whole /64 and
/// can pick any address in it, so every address of one /64 counts as one client.
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(prefix.into())
        }
        v4 => v4,
    }
}

/// The client's address, for logs and limits.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub IpAddr);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let ConnectInfo(peer) = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .copied()
            .ok_or_else(|| {
                ApiError::Internal(anyhow::anyhow!(
                    "the server was started without ConnectInfo"
                ))
            })?;
        Ok(ClientAddr(
            state.proxies.client_ip(peer.ip(), &parts.headers),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn proxies(list: &[&str]) -> TrustedProxies {
        let nets: Vec<IpNet> = list.iter().map(|s| parse_proxy(s).unwrap()).collect();
        TrustedProxies::new(&nets)
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(*name, value.parse().unwrap());
        }
        h
    }

    #[test]
    fn ipv6_addresses_of_one_slash_64_share_a_key_and_ipv4_keeps_its_own() {
        assert_eq!(
            address_key(ip("2001:db8:1:2:aaaa::1")),
            address_key(ip("2001:db8:1:2:bbbb::9"))
        );
        assert_eq!(
            address_key(ip("2001:db8:1:2:aaaa::1")),
            ip("2001:db8:1:2::")
        );
        assert_ne!(
            address_key(ip("2001:db8:1:2::1")),
            address_key(ip("2001:db8:1:3::1"))
        );
        assert_eq!(address_key(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
        assert_ne!(address_key(ip("192.0.2.1")), address_key(ip("192.0.2.2")));
    }

    #[test]
    fn proxies_parse_as_addresses_or_ranges() {
        assert_eq!(
            parse_proxy("127.0.0.1").unwrap().to_string(),
            "127.0.0.1/32"
        );
        assert_eq!(parse_proxy(" ::1 ").unwrap().to_string(), "::1/128");
        assert_eq!(parse_proxy("10.0.0.0/8").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(
            parse_proxy("localhost").unwrap_err().to_string(),
            "`localhost` is neither an IP address nor a CIDR range"
        );
        assert!(parse_proxy("10.0.0.0/33").is_err());
        assert!(parse_proxy("").is_err());
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let p = proxies(&["10.0.0.1"]);
        let claims = headers(&[("x-forwarded-for", "1.2.3.4"), ("x-real-ip", "5.6.7.8")]);
        assert_eq!(p.client_ip(ip("192.0.2.7"), &claims), ip("192.0.2.7"));
        assert_eq!(
            TrustedProxies::default().client_ip(ip("127.0.0.1"), &claims),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn a_trusted_peer_names_the_client_in_x_forwarded_for() {
        let p = proxies(&["127.0.0.1"]);
        let h = headers(&[("x-forwarded-for", "203.0.113.9")]);
        assert_eq!(p.client_ip(ip("127.0.0.1"), &h), ip("203.0.113.9"));
    }

    #[test]
    fn the_rightmost_untrusted_hop_wins_over_what_the_client_prepended() {
        let p = proxies(&["127.0.0.1", "10.0.0.0/8"]);
        // The client sent "6.6.6.6"; the edge proxy 10.1.2.3 appended the client's real address.
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 203.0.113.9, 10.1.2.3")]);
        assert_eq!(p.client_ip(ip("127.0.0.1"), &h), ip("203.0.113.9"));
    }

    #[test]
    fn repeated_x_forwarded_for_headers_read_as_one_list() {
        let p = proxies(&["127.0.0.1", "10.0.0.0/8"]);
        let h = headers(&[
            ("x-forwarded-for", "6.6.6.6, 203.0.113.9"),
            ("x-forwarded-for", "10.1.2.3"),
        ]);
        assert_eq!(p.client_ip(ip("127.0.0.1"), &h), ip("203.0.113.9"));
    }

    #[test]
    fn x_real_ip_is_used_when_there_is_no_x_forwarded_for() {
        let p = proxies(&["127.0.0.1"]);
        let h = headers(&[("x-real-ip", "2001:db8::9")]);
        assert_eq!(p.client_ip(ip("127.0.0.1"), &h), ip("2001:db8::9"));
        let bad = headers(&[("x-real-ip", "nonsense")]);
        assert_eq!(p.client_ip(ip("127.0.0.1"), &bad), ip("127.0.0.1"));
        assert_eq!(
            p.client_ip(ip("127.0.0.1"), &HeaderMap::new()),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn an_unreadable_hop_stops_the_walk_at_the_last_trusted_address() {
        let p = proxies(&["127.0.0.1", "10.0.0.0/8"]);
        let h = headers(&[("x-forwarded-for", "203.0.113.9, garbage, 10.1.2.3")]);
        assert_eq!(p.client_ip(ip("127.0.0.1"), &h), ip("10.1.2.3"));
    }

    #[test]
    fn when_every_hop_is_trusted_the_leftmost_is_the_client() {
        let p = proxies(&["10.0.0.0/8"]);
        let h = headers(&[("x-forwarded-for", "10.9.9.9, 10.1.2.3")]);
        assert_eq!(p.client_ip(ip("10.0.0.1"), &h), ip("10.9.9.9"));
    }

    #[test]
    fn hops_with_ports_and_mapped_addresses_are_understood() {
        let p = proxies(&["127.0.0.1"]);
        let h = headers(&[("x-forwarded-for", "[2001:db8::1]:443, 198.51.100.2:5000")]);
        assert_eq!(p.client_ip(ip("::ffff:127.0.0.1"), &h), ip("198.51.100.2"));
    }
}
