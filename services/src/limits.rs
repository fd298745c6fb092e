//! Rate limits: per client address on the unauthenticated entry points,
//! and per-account allowances.

use std::net::IpAddr;
use std::num::NonZeroU32;

use chartkey_api::ApiError;
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::caller::Caller;

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
    /// Public manifest and link-file requests per client address.
    pub manifests: DefaultKeyedRateLimiter<IpAddr>,
    /// Manifest requests per link (its id), from all clients together.
    pub link_requests: DefaultKeyedRateLimiter<chartkey_core::value::Hash32>,
}

pub(crate) fn per_minute(n: u32) -> Quota {
    let n = NonZeroU32::new(n.max(1)).expect("at least one");
    Quota::per_minute(n).allow_burst(n)
}

pub(crate) fn per_hour(n: u32) -> Quota {
    let n = NonZeroU32::new(n.max(1)).expect("at least one");
    Quota::per_hour(n).allow_burst(n)
}

/// Per-client limit (IPv4 address or IPv6 /64). Idle clients are forgotten
/// once the table grows, so it cannot grow without bound.
pub(crate) fn rate_limit(
    limiter: &governor::DefaultKeyedRateLimiter<std::net::IpAddr>,
    c: &Caller,
) -> Result<(), ApiError> {
    let client = crate::caller::client_key(c.ip);
    if allowed(limiter, &client) {
        return Ok(());
    }
    tracing::warn!(%client, "rate limited");
    Err(ApiError::RateLimited)
}

/// Takes one from `key`'s allowance in `limiter`: false when it is used up.
/// Idle keys are forgotten once the table grows, so it cannot grow without
/// bound.
pub fn allowed<K: Clone + Eq + std::hash::Hash>(limiter: &governor::DefaultKeyedRateLimiter<K>, key: &K) -> bool {
    if limiter.len() > 10_000 {
        limiter.retain_recent();
    }
    limiter.check_key(key).is_ok()
}
