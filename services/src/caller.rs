//! Who is calling: resolved from the request (its client address and
//! session cookie) before any server function runs.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use chartkey_api::ApiError;

#[derive(Debug, Clone)]
pub struct Caller {
    pub ip: IpAddr,
    /// The account of a valid, unexpired session, if any.
    pub session: Option<SessionRef>,
    /// `Set-Cookie` values for the response, added by the route that ran
    /// the call once it has answered.
    cookies: Arc<Mutex<Vec<String>>>,
}

#[derive(Debug, Clone)]
pub struct SessionRef {
    pub account_id: String,
    /// SHA-256 of the session token (the token itself is never stored).
    pub token_hash: String,
    /// The passkey this session signed in with.
    pub credential_id: String,
}

impl Caller {
    pub fn new(ip: IpAddr, session: Option<SessionRef>) -> Self {
        Self { ip, session, cookies: Default::default() }
    }

    /// The session, or 401.
    pub fn require_session(&self) -> Result<&SessionRef, ApiError> {
        self.session.as_ref().ok_or(ApiError::Unauthorized)
    }

    /// Asks for a `Set-Cookie` header on the response.
    pub fn set_cookie(&self, cookie: String) {
        self.cookies.lock().unwrap_or_else(|e| e.into_inner()).push(cookie);
    }

    /// The cookies asked for so far (the route that answers takes them).
    pub fn take_cookies(&self) -> Vec<String> {
        std::mem::take(&mut *self.cookies.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// The client of a request: the peer, or, when the peer is a trusted
/// reverse proxy, the address its `X-Forwarded-For` names: the list read
/// from the right, skipping trusted proxies (each appends the address it
/// received from), up to the first address that is not one. A malformed
/// entry ends the walk: what stands left of it cannot be trusted.
pub fn client_ip(peer: IpAddr, forwarded_for: &[&str], trusted: &[ipnet::IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    let mut client = peer;
    if !is_trusted(&client) {
        return client;
    }
    let hops = forwarded_for.iter().flat_map(|header| header.split(',')).collect::<Vec<_>>();
    for hop in hops.into_iter().rev() {
        let Ok(ip) = hop.trim().parse::<IpAddr>() else { break };
        client = ip;
        if !is_trusted(&client) {
            break;
        }
    }
    client
}

/// The key a client is counted under: its IPv4 address, or its IPv6 /64
/// (one subscriber usually holds a whole /64).
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            let mut segments = v6.segments();
            segments[4..].fill(0);
            IpAddr::V6(segments.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<ipnet::IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn forwarded_for_counts_only_from_trusted_proxies() {
        let proxy = nets(&["127.0.0.1/32", "10.0.0.0/8"]);
        // Not a trusted peer: the header is the client's to forge.
        assert_eq!(client_ip(ip("203.0.113.9"), &["198.51.100.1"], &proxy), ip("203.0.113.9"));
        // A trusted proxy: the address it appended, not what the client sent before it.
        assert_eq!(client_ip(ip("127.0.0.1"), &["1.2.3.4, 198.51.100.7"], &proxy), ip("198.51.100.7"));
        // Two trusted hops, in one header or two.
        assert_eq!(client_ip(ip("127.0.0.1"), &["198.51.100.7, 10.1.2.3"], &proxy), ip("198.51.100.7"));
        assert_eq!(client_ip(ip("127.0.0.1"), &["198.51.100.7", "10.1.2.3"], &proxy), ip("198.51.100.7"));
        assert_eq!(client_ip(ip("127.0.0.1"), &["2001:db8::1"], &proxy), ip("2001:db8::1"));
        // No header, an empty one, or garbage: the proxy itself (or the last good hop).
        assert_eq!(client_ip(ip("127.0.0.1"), &[], &proxy), ip("127.0.0.1"));
        assert_eq!(client_ip(ip("127.0.0.1"), &[""], &proxy), ip("127.0.0.1"));
        assert_eq!(client_ip(ip("127.0.0.1"), &["unknown"], &proxy), ip("127.0.0.1"));
        assert_eq!(client_ip(ip("127.0.0.1"), &["198.51.100.7, not-an-ip"], &proxy), ip("127.0.0.1"));
        assert_eq!(client_ip(ip("127.0.0.1"), &["not-an-ip, 198.51.100.7"], &proxy), ip("198.51.100.7"));
        assert_eq!(client_ip(ip("127.0.0.1"), &["198.51.100.7:443"], &proxy), ip("127.0.0.1"));
        // Nothing trusted at all: the peer, always.
        assert_eq!(client_ip(ip("127.0.0.1"), &["198.51.100.7"], &[]), ip("127.0.0.1"));
    }
}
