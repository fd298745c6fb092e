//! Rate limits: per client address on the unauthenticated entry points,
//! and per-account allowances. One process (SQLite) counts in memory;
//! replicas sharing PostgreSQL count there, so that a client's allowance
//! is the same whichever replica the proxy sends it to.

use std::fmt::Display;
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicI64, Ordering};

use chartkey_api::ApiError;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::caller::Caller;
use crate::store::Pool;

/// Per-IP limits on the unauthenticated entry points, and per-account
/// allowances.
pub struct RateLimits {
    pub registration: Limiter<IpAddr>,
    pub login: Limiter<IpAddr>,
    /// Ledger messages relayed for an account (its id), per hour.
    pub relays: Limiter<String>,
    /// Open notice streams per account id (per replica).
    pub streams: std::sync::Mutex<std::collections::HashMap<String, usize>>,
    /// Public chain-head requests per client address.
    pub heads: Limiter<IpAddr>,
    /// Public manifest and link-file requests per client address.
    pub manifests: Limiter<IpAddr>,
    /// Manifest requests per link (its id), from all clients together.
    pub link_requests: Limiter<chartkey_core::value::Hash32>,
}

/// `n` a minute, or `n` an hour.
#[derive(Debug, Clone, Copy)]
pub struct Rate {
    n: u32,
    window_secs: i64,
}

pub fn per_minute(n: u32) -> Rate {
    Rate { n: n.max(1), window_secs: 60 }
}

pub fn per_hour(n: u32) -> Rate {
    Rate { n: n.max(1), window_secs: 3_600 }
}

impl Rate {
    fn quota(self) -> Quota {
        let n = NonZeroU32::new(self.n).expect("at least one");
        let quota = if self.window_secs == 60 { Quota::per_minute(n) } else { Quota::per_hour(n) };
        quota.allow_burst(n)
    }
}

/// One limit, keyed by client or account.
pub struct Limiter<K: Hash + Eq + Clone> {
    /// This process's count: all there is on SQLite, and the fallback
    /// when the shared count cannot be read.
    local: DefaultKeyedRateLimiter<K>,
    shared: Option<Shared>,
}

/// A count in the shared database: GCRA, as governor counts in memory,
/// on the database's clock (one clock for every replica).
struct Shared {
    pool: Pool,
    scope: &'static str,
    rate: Rate,
    /// The minute this limit's spent rows were last cleared.
    swept: AtomicI64,
}

impl<K: Hash + Eq + Clone + Display> Limiter<K> {
    /// `rate` for `scope` (its name in the shared count), counted in the
    /// database when `shared` is its pool.
    pub fn new(scope: &'static str, rate: Rate, shared: Option<&Pool>) -> Self {
        Self {
            local: RateLimiter::keyed(rate.quota()),
            shared: shared.map(|pool| Shared { pool: pool.clone(), scope, rate, swept: AtomicI64::new(0) }),
        }
    }

    /// Takes one from `key`'s allowance: false when it is used up.
    pub async fn allow(&self, key: &K) -> bool {
        let Some(shared) = &self.shared else { return allowed(&self.local, key) };
        match shared.take(&key.to_string()).await {
            Ok(allowed) => allowed,
            Err(e) => {
                // The database is unreachable: this replica's own count
                // still holds the client back.
                tracing::warn!(error = %e, scope = shared.scope, "shared rate count unavailable; counting here");
                allowed(&self.local, key)
            }
        }
    }
}

impl Shared {
    /// One request from `client`: its next theoretical arrival moves one
    /// interval on (from now, if that is later), unless that would put it
    /// more than the whole period ahead, which is a refusal.
    async fn take(&self, client: &str) -> Result<bool, sqlx::Error> {
        let period_ms = self.rate.window_secs * 1_000;
        let interval_ms = (period_ms / i64::from(self.rate.n)).max(1);
        let minute = crate::db::now() / 60;
        if self.swept.swap(minute, Ordering::Relaxed) != minute {
            // Rows whose arrival time has passed count as nothing.
            sqlx::query(
                "DELETE FROM rate_counts
                 WHERE scope = $1 AND tat_ms < (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT",
            )
            .bind(self.scope)
            .execute(&self.pool)
            .await?;
        }
        // EXCLUDED.tat_ms is now + interval; now is EXCLUDED.tat_ms - interval.
        let taken: Option<i64> = sqlx::query_scalar(
            "INSERT INTO rate_counts (scope, client, tat_ms)
             VALUES ($1, $2, (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT + $3)
             ON CONFLICT (scope, client) DO UPDATE
                SET tat_ms = GREATEST(rate_counts.tat_ms + $3, EXCLUDED.tat_ms)
              WHERE GREATEST(rate_counts.tat_ms + $3, EXCLUDED.tat_ms) - (EXCLUDED.tat_ms - $3) <= $4
             RETURNING tat_ms",
        )
        .bind(self.scope)
        .bind(client)
        .bind(interval_ms)
        .bind(period_ms)
        .fetch_optional(&self.pool)
        .await?;
        Ok(taken.is_some())
    }
}

/// Per-client limit (IPv4 address or IPv6 /64).
pub(crate) async fn rate_limit(limiter: &Limiter<IpAddr>, c: &Caller) -> Result<(), ApiError> {
    let client = crate::caller::client_key(c.ip);
    if limiter.allow(&client).await {
        return Ok(());
    }
    tracing::warn!(%client, "rate limited");
    Err(ApiError::RateLimited)
}

/// Takes one from `key`'s allowance in `limiter`: false when it is used up.
/// Idle keys are forgotten once the table grows, so it cannot grow without
/// bound.
fn allowed<K: Clone + Eq + Hash>(limiter: &DefaultKeyedRateLimiter<K>, key: &K) -> bool {
    if limiter.len() > 10_000 {
        limiter.retain_recent();
    }
    limiter.check_key(key).is_ok()
}
