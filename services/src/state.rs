//! Shared server state.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use webauthn_rs::{Webauthn, WebauthnBuilder};

use crate::blobs::BlobStore;
use crate::ceremonies::Ceremonies;
use crate::config::Config;
use crate::db::Db;
use crate::ledger::Ledger;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub db: Db,
    pub webauthn: Arc<Webauthn>,
    pub ceremonies: Arc<Ceremonies>,
    pub limits: Arc<RateLimits>,
    pub ledger: Arc<Ledger>,
    pub blobs: BlobStore,
    pub notifier: Arc<crate::notices::Notifier>,
    /// Becomes true when the server starts shutting down, so long-lived
    /// responses (notice streams) end and graceful shutdown can finish.
    pub stopping: Arc<tokio::sync::watch::Sender<bool>>,
    /// `/rpc`'s bearer token, with `--rpc-access token`.
    pub rpc_token: Option<Arc<str>>,
}

/// Per-IP limits on the unauthenticated entry points, and per-account
/// allowances.
pub struct RateLimits {
    pub registration: DefaultKeyedRateLimiter<IpAddr>,
    pub login: DefaultKeyedRateLimiter<IpAddr>,
    /// Ledger messages relayed for an account (its id), per hour.
    pub relays: DefaultKeyedRateLimiter<String>,
    /// Open notice streams per account id.
    pub streams: std::sync::Mutex<std::collections::HashMap<String, usize>>,
    /// Public chain-head requests per client address.
    pub heads: DefaultKeyedRateLimiter<IpAddr>,
}

fn per_minute(n: u32) -> Quota {
    let n = NonZeroU32::new(n.max(1)).expect("at least one");
    Quota::per_minute(n).allow_burst(n)
}

fn per_hour(n: u32) -> Quota {
    let n = NonZeroU32::new(n.max(1)).expect("at least one");
    Quota::per_hour(n).allow_burst(n)
}

impl AppState {
    pub async fn new(config: Config) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&config.data_dir)?;
        let db = Db::open(&config.database_path())?;
        let ledger = Ledger::open(&config).await?;
        let blobs = match &config.blob_store {
            Some(url) => BlobStore::from_url(url, config.max_record_bytes)?,
            None => BlobStore::local(config.data_dir.join("blobs"), config.max_record_bytes)?,
        };
        let rp_id = config.rp_id()?;
        let webauthn =
            WebauthnBuilder::new(&rp_id, &config.origin)?.rp_name("Chartkey").timeout(config.ceremony_ttl).build()?;
        let rpc_token = match config.rpc_access {
            crate::config::RpcAccess::Token => Some(crate::ledger::secret_file(&config.rpc_token_path())?.into()),
            _ => None,
        };
        let limits = RateLimits {
            registration: RateLimiter::keyed(per_minute(config.registration_per_minute)),
            login: RateLimiter::keyed(per_minute(config.login_per_minute)),
            relays: RateLimiter::keyed(per_hour(config.relays_per_hour)),
            streams: Default::default(),
            heads: RateLimiter::keyed(per_minute(config.heads_per_minute)),
        };
        Ok(Self {
            ceremonies: Arc::new(Ceremonies::new(config.ceremony_ttl)),
            config: Arc::new(config),
            db,
            webauthn: Arc::new(webauthn),
            limits: Arc::new(limits),
            ledger: Arc::new(ledger),
            blobs,
            notifier: Arc::new(crate::notices::Notifier::default()),
            stopping: Arc::new(tokio::sync::watch::Sender::new(false)),
            rpc_token,
        })
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
