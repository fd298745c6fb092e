//! WebAuthn ceremonies in progress: server-side, single-use and expiring.
//! The browser only ever holds an opaque id; the challenge state stays on
//! the server, in the database (migration 0010), so an answer cannot be
//! replayed, a stale one is refused, and any replica sharing the database
//! can finish a ceremony another began.

use std::net::IpAddr;
use std::time::Duration;

use chartkey_api::ApiError;
use chartkey_core::role::Role;
use serde::{Deserialize, Serialize};
use webauthn_rs::prelude::{DiscoverableAuthentication, PasskeyRegistration};

use crate::store::{Pool, StoreError, begin_write};

/// Ceremonies kept at most at once; beyond this, new ones are refused
/// rather than letting the table grow without bound.
const MAX_PENDING: usize = 10_000;
/// Ceremonies one client address may have pending at once, so one client
/// cannot fill the table for everyone.
const MAX_PENDING_PER_CLIENT: usize = 20;
/// Ceremonies the clients of one network may have pending at once, for
/// wider and wider networks (IPv4 prefix, IPv6 prefix, cap): one site's
/// /48 holds 65,536 IPv6 /64s, so a per-client cap alone would let it fill
/// the table for everyone. Filling it now takes five IPv4 /16s or five
/// IPv6 /32s (each an ISP's allocation). The first is the `network`
/// column, the second `wide`.
const NETWORK_CAPS: [(u8, u8, usize); 2] = [(24, 48, 200), (16, 32, MAX_PENDING / 5)];

/// The network of `prefix` bits (IPv4) or `prefix6` bits (IPv6) `ip` is in.
fn network(ip: IpAddr, prefix: u8, prefix6: u8) -> IpAddr {
    let bits = if ip.is_ipv4() { prefix } else { prefix6 };
    ipnet::IpNet::new(ip, bits).map(|net| net.network()).unwrap_or(ip)
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Ceremony {
    Signup {
        registration: PasskeyRegistration,
        account_id: String,
        display_name: String,
        role: Role,
    },
    Login {
        authentication: DiscoverableAuthentication,
    },
    /// Restore, step 1: a challenge for the account key to sign. Nothing
    /// about the account is revealed before the signature checks out.
    RestoreProof {
        address: chartkey_core::value::Address,
        challenge: String,
    },
    /// Restore, step 2: the proof passed; a passkey may be registered.
    Restore {
        registration: PasskeyRegistration,
        account_id: String,
    },
    AddPasskey {
        registration: PasskeyRegistration,
        account_id: String,
        challenge: String,
    },
    /// Removing a passkey: the challenge the account key signs with it.
    RemovePasskey {
        account_id: String,
        credential_id: String,
        challenge: String,
    },
    /// A passkey approval of one signed ledger message (its EIP-712 digest).
    Approval {
        authentication: webauthn_rs::prelude::PasskeyAuthentication,
        account_id: String,
        digest: [u8; 32],
        /// The nonce in the challenge (`proof::approval_challenge`).
        nonce: [u8; 32],
    },
}

pub struct Ceremonies {
    pool: Pool,
    ttl: Duration,
}

impl Ceremonies {
    pub fn new(pool: Pool, ttl: Duration) -> Self {
        Self { pool, ttl }
    }

    /// Stores a ceremony started by `client` and returns its id. Expired
    /// ones are dropped first; a client, network or table with too many
    /// pending is refused ([`ApiError::RateLimited`]).
    pub async fn begin(&self, client: IpAddr, ceremony: Ceremony) -> Result<String, ApiError> {
        let id = crate::token::random_token();
        let id_hash = crate::token::token_hash(&id);
        let client = crate::caller::client_key(client);
        let [narrow, wide] = NETWORK_CAPS.map(|(v4, v6, _)| network(client, v4, v6).to_string());
        let client = client.to_string();
        let state = serde_json::to_string(&ceremony).map_err(state_failed)?;
        let oldest = now_ms() - self.ttl.as_millis() as i64;
        if !self.store(&id_hash, [&client, &narrow, &wide], &state, oldest).await? {
            tracing::warn!(%client, "too many pending WebAuthn ceremonies");
            return Err(ApiError::RateLimited);
        }
        Ok(id)
    }

    /// Stores a ceremony's state unless its client, its networks or the
    /// table are full (`false`); drops expired ones first. The counts and
    /// the insert are one write transaction, so racing requests cannot
    /// both take the last place.
    async fn store(&self, id_hash: &str, keys: [&str; 3], state: &str, oldest: i64) -> Result<bool, StoreError> {
        let mut t = begin_write(&self.pool).await?;
        sqlx::query("DELETE FROM ceremonies WHERE started_ms <= $1").bind(oldest).execute(&mut *t).await?;
        let total: i64 = sqlx::query_scalar("SELECT count(*) FROM ceremonies").fetch_one(&mut *t).await?;
        let mut full = total as usize >= MAX_PENDING;
        let caps = [MAX_PENDING_PER_CLIENT, NETWORK_CAPS[0].2, NETWORK_CAPS[1].2];
        for (column, (key, cap)) in ["client", "network", "wide"].into_iter().zip(keys.into_iter().zip(caps)) {
            let sql = format!("SELECT count(*) FROM ceremonies WHERE {column} = $1");
            let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(key).fetch_one(&mut *t).await?;
            full |= n as usize >= cap;
        }
        if !full {
            sqlx::query(
                "INSERT INTO ceremonies (id_hash, client, network, wide, state, started_ms)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(id_hash)
            .bind(keys[0])
            .bind(keys[1])
            .bind(keys[2])
            .bind(state)
            .bind(now_ms())
            .execute(&mut *t)
            .await?;
        }
        t.commit().await?;
        Ok(!full)
    }

    /// Takes a ceremony out (single use, even with replicas racing: one
    /// DELETE takes it): unknown, already used and expired ids are refused.
    pub async fn take(&self, id: &str) -> Result<Ceremony, ApiError> {
        let id_hash = crate::token::token_hash(id);
        let taken: Option<(String, i64)> =
            sqlx::query_as("DELETE FROM ceremonies WHERE id_hash = $1 RETURNING state, started_ms")
                .bind(id_hash)
                .fetch_optional(&self.pool)
                .await
                .map_err(StoreError::from)?;
        match taken {
            Some((state, started)) if now_ms() - started < self.ttl.as_millis() as i64 => {
                serde_json::from_str(&state).map_err(state_failed)
            }
            Some(_) => Err(ApiError::bad_request("This passkey request expired. Start again.")),
            None => Err(ApiError::bad_request("This passkey request is not known or was already used. Start again.")),
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// A ceremony's state that does not round-trip through JSON (a
/// webauthn-rs upgrade that changed its shape, say): logged, refused.
fn state_failed(e: serde_json::Error) -> ApiError {
    tracing::error!(error = %e, "a ceremony's state could not be stored or read back");
    ApiError::Internal
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn ceremonies(ttl: Duration) -> (Ceremonies, tempfile::TempDir) {
        let (dir, pool) = crate::accounts::store::tests::pool().await;
        (Ceremonies::new(pool, ttl), dir)
    }

    /// A second replica (its own connection to the same database) finishes
    /// what the first began, and the ceremony is still single use there.
    #[tokio::test]
    async fn another_replica_finishes_a_ceremony() {
        let (first, dir) = ceremonies(Duration::from_secs(60)).await;
        let pool =
            crate::store::open(&crate::store::Database::Sqlite(dir.path().join("chartkey.sqlite3"))).await.unwrap();
        let second = Ceremonies::new(pool, Duration::from_secs(60));
        let id = first.begin("10.0.0.1".parse().unwrap(), login()).await.unwrap();
        assert!(matches!(second.take(&id).await, Ok(Ceremony::RestoreProof { .. })));
        assert!(first.take(&id).await.is_err(), "taken once, on either");
    }

    fn login() -> Ceremony {
        Ceremony::RestoreProof { address: chartkey_core::value::Address::ZERO, challenge: String::new() }
    }

    #[tokio::test]
    async fn single_use_and_expiring() {
        let (c, _dir) = ceremonies(Duration::from_millis(50)).await;
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let id = c.begin(ip, login()).await.unwrap();
        assert!(c.take(&id).await.is_ok());
        assert!(c.take(&id).await.is_err());
        let id = c.begin(ip, login()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert!(c.take(&id).await.is_err());
        assert!(c.take("unknown").await.is_err());
    }

    #[tokio::test]
    async fn one_client_cannot_fill_the_table() {
        let (c, _dir) = ceremonies(Duration::from_secs(60)).await;
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        for _ in 0..MAX_PENDING_PER_CLIENT {
            c.begin(ip, login()).await.unwrap();
        }
        assert_eq!(c.begin(ip, login()).await.unwrap_err(), ApiError::RateLimited);
        // Another address in the same IPv6 /64 counts as the same client…
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        for _ in 0..MAX_PENDING_PER_CLIENT {
            c.begin(v6, login()).await.unwrap();
        }
        assert!(c.begin("2001:db8::ffff".parse().unwrap(), login()).await.is_err());
        // …but other clients still get in.
        assert!(c.begin("10.0.0.2".parse().unwrap(), login()).await.is_ok());
    }

    /// Finding 7: one network's many client addresses (a /48 holds 65,536
    /// IPv6 /64s) no longer fill the table for everyone.
    #[tokio::test]
    async fn one_network_cannot_fill_the_table() {
        let ip = |text: String| -> IpAddr { text.parse().unwrap() };
        // A /48: 200 of its /64s, then no more; another /48 still gets in.
        let (c, _dir) = ceremonies(Duration::from_secs(60)).await;
        for n in 0..200u32 {
            c.begin(ip(format!("2001:db8:1:{n:x}::1")), login()).await.unwrap();
        }
        assert_eq!(c.begin(ip("2001:db8:1:ffff::1".into()), login()).await.unwrap_err(), ApiError::RateLimited);
        assert!(c.begin(ip("2001:db8:2::1".into()), login()).await.is_ok());

        // A /32: ten full /48s, then no more; another /32 still gets in.
        let (c, _dir) = ceremonies(Duration::from_secs(60)).await;
        for site in 0..10u32 {
            for n in 0..200u32 {
                c.begin(ip(format!("2001:db8:{site:x}:{n:x}::1")), login()).await.unwrap();
            }
        }
        assert_eq!(c.begin(ip("2001:db8:ff::1".into()), login()).await.unwrap_err(), ApiError::RateLimited);
        assert!(c.begin(ip("2001:db9::1".into()), login()).await.is_ok());

        // IPv4: 200 addresses of one /24, then no more.
        let (c, _dir) = ceremonies(Duration::from_secs(60)).await;
        for n in 0..200u8 {
            c.begin(IpAddr::from([10, 1, 0, n]), login()).await.unwrap();
        }
        assert_eq!(c.begin(IpAddr::from([10, 1, 0, 250]), login()).await.unwrap_err(), ApiError::RateLimited);
        assert!(c.begin(IpAddr::from([10, 1, 1, 1]), login()).await.is_ok());
    }
}
