//! Who is on the other end of a request, for rate limits and lockouts: the socket's peer, or,
//! when that peer is one of the configured `trusted_proxies` (the load balancer in front of
//! every production deployment), the client address it forwarded (RFC 7239 `Forwarded`, else
//! `X-Forwarded-For`). The forwarded list is read from the right, skipping trusted hops: a
//! client can prepend whatever it likes, but only what our own proxy appended is believed.
//! A peer that is not trusted is never asked: its headers are ignored.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;

use crate::{ApiError, AppState};

/// The client's address (port 0 when it was forwarded by a trusted proxy).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Client(pub SocketAddr);

impl FromRequestParts<AppState> for Client {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, ApiError> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0)
            .ok_or_else(ApiError::internal)?;
        Ok(Client(client_addr(
            peer,
            &parts.headers,
            &s.settings.trusted_proxies,
        )))
    }
}

/// The client behind `peer` (see the module's doc).
pub fn client_addr(peer: SocketAddr, headers: &HeaderMap, trusted: &[ipnet::IpNet]) -> SocketAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer.ip()) {
        return peer;
    }
    let hops = forwarded_for(headers);
    // Right to left: the first hop our proxies did not add is the client.
    match hops.iter().rev().find(|ip| !is_trusted(ip)) {
        Some(ip) => SocketAddr::new(*ip, 0),
        // Every hop is ours (or none was given): the request came from inside.
        None => hops.first().map_or(peer, |ip| SocketAddr::new(*ip, 0)),
    }
}

/// The `for=` addresses of `Forwarded` (RFC 7239) in order, or else of `X-Forwarded-For`;
/// an entry that is not an address (`unknown`, an obfuscated name) ends the list there, so
/// nothing to its left is believed.
fn forwarded_for(headers: &HeaderMap) -> Vec<IpAddr> {
    let values = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|e| e.trim().to_string())
            .collect()
    };
    let forwarded = values("forwarded");
    let entries: Vec<Option<IpAddr>> = if !forwarded.is_empty() {
        forwarded
            .iter()
            .map(|element| {
                element
                    .split(';')
                    .filter_map(|pair| pair.trim().split_once('='))
                    .find(|(k, _)| k.trim().eq_ignore_ascii_case("for"))
                    .and_then(|(_, v)| parse_node(v))
            })
            .collect()
    } else {
        values("x-forwarded-for").iter().map(|v| parse_node(v)).collect()
    };
    // Keep only the addresses to the right of the last unreadable entry.
    let start = entries.iter().rposition(Option::is_none).map_or(0, |i| i + 1);
    entries[start..].iter().flatten().copied().collect()
}

/// `192.0.2.60`, `"192.0.2.60:47011"`, `"[2001:db8:cafe::17]:4711"`, `2001:db8::1`.
fn parse_node(v: &str) -> Option<IpAddr> {
    let v = v.trim().trim_matches('"');
    if let Ok(ip) = v.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(sa) = v.parse::<SocketAddr>() {
        return Some(sa.ip());
    }
    v.strip_prefix('[')
        .and_then(|r| r.split(']').next())
        .and_then(|ip| ip.parse().ok())
}

/// Parses `trusted_proxies` entries: networks (`10.0.0.0/8`) or single addresses.
pub fn parse_trusted(entries: &[String]) -> Result<Vec<ipnet::IpNet>, String> {
    entries
        .iter()
        .map(|e| {
            let e = e.trim();
            e.parse::<ipnet::IpNet>()
                .or_else(|_| e.parse::<IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| format!("trusted_proxies: '{e}' is neither an address nor a network"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        m
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_addresses_are_believed_only_from_trusted_proxies() {
        let proxy: SocketAddr = "10.0.0.5:40000".parse().unwrap();
        let stranger: SocketAddr = "198.51.100.7:5000".parse().unwrap();
        let trusted = parse_trusted(&["10.0.0.0/8".into(), "192.0.2.1".into()]).unwrap();
        let xff = h(&[("x-forwarded-for", "203.0.113.9")]);
        // Behind our proxy: the client it forwarded.
        assert_eq!(client_addr(proxy, &xff, &trusted).ip(), ip("203.0.113.9"));
        // Anybody else's headers are ignored.
        assert_eq!(client_addr(stranger, &xff, &trusted), stranger);
        // Without trusted proxies, never.
        assert_eq!(client_addr(proxy, &xff, &[]), proxy);
        // A client that prepends a fake address does not choose its bucket.
        let spoofed = h(&[("x-forwarded-for", "1.2.3.4, 203.0.113.9")]);
        assert_eq!(client_addr(proxy, &spoofed, &trusted).ip(), ip("203.0.113.9"));
        // Two trusted hops: the address left of them.
        let chain = h(&[("x-forwarded-for", "1.2.3.4, 203.0.113.9, 10.1.1.1")]);
        assert_eq!(client_addr(proxy, &chain, &trusted).ip(), ip("203.0.113.9"));
        // RFC 7239 first, with quoted IPv6 and ports.
        let fwd = h(&[
            (
                "forwarded",
                "for=1.2.3.4, for=\"[2001:db8:cafe::17]:4711\";proto=https",
            ),
            ("x-forwarded-for", "9.9.9.9"),
        ]);
        assert_eq!(client_addr(proxy, &fwd, &trusted).ip(), ip("2001:db8:cafe::17"));
        // An unreadable hop: nothing to its left is believed.
        let unknown = h(&[("forwarded", "for=1.2.3.4, for=unknown")]);
        assert_eq!(client_addr(proxy, &unknown, &trusted), proxy);
        assert!(parse_trusted(&["not-an-ip".into()]).is_err());
    }
}
