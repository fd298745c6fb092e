//! The sessions' store: hashed session tokens, each tied to the passkey
//! that signed in.

use crate::db::now;
use crate::store::{Pool, StoreError};

/// A live session's account and passkey.
pub struct LiveSession {
    pub account_id: String,
    pub credential_id: String,
}

/// A new session for `account_id`, signed in with `credential_id`, in place
/// of `replaced` (the one the browser had, if any); expired sessions go too.
pub async fn start(
    pool: &Pool,
    token_hash: &str,
    replaced: Option<&str>,
    session: &LiveSession,
    expires_at: i64,
) -> Result<(), StoreError> {
    let mut tx = pool.begin().await?;
    if let Some(old) = replaced {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1").bind(old).execute(&mut *tx).await?;
    }
    let now = now();
    sqlx::query("DELETE FROM sessions WHERE expires_at <= $1").bind(now).execute(&mut *tx).await?;
    sqlx::query(
        "INSERT INTO sessions (token_hash, account_id, credential_id, created_at, expires_at, last_seen_at)
         VALUES ($1, $2, $3, $4, $5, $4)",
    )
    .bind(token_hash)
    .bind(session.account_id.clone())
    .bind(session.credential_id.clone())
    .bind(now)
    .bind(expires_at)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The session while it is live (not signed out, not expired, and for
/// clinicians on shared workstations used within `clinician_idle_secs`).
/// With `seen`, the look counts as the person's activity: the session is
/// marked seen (at most every 30 s, to spare the disk); without, it is a
/// check a page makes on its own (an open notice stream).
pub async fn live(
    pool: &Pool,
    token_hash: &str,
    clinician_idle_secs: i64,
    seen: bool,
) -> Result<Option<LiveSession>, StoreError> {
    let now = now();
    let found: Option<(String, String, i64)> = sqlx::query_as(
        "SELECT s.account_id, s.credential_id, s.last_seen_at FROM sessions s JOIN accounts a ON a.id = s.account_id
         WHERE s.token_hash = $1 AND s.expires_at > $2 AND (a.role != 'clinician' OR s.last_seen_at > $2 - $3)",
    )
    .bind(token_hash)
    .bind(now)
    .bind(clinician_idle_secs)
    .fetch_optional(pool)
    .await?;
    let Some((account_id, credential_id, last_seen_at)) = found else { return Ok(None) };
    // Written only when stale: a request that changes nothing takes no
    // write lock (an import's long transaction holds it).
    if seen && last_seen_at < now - SEEN_EVERY {
        sqlx::query("UPDATE sessions SET last_seen_at = $2 WHERE token_hash = $1 AND last_seen_at < $2 - $3")
            .bind(token_hash)
            .bind(now)
            .bind(SEEN_EVERY)
            .execute(pool)
            .await?;
    }
    Ok(Some(LiveSession { account_id, credential_id }))
}

/// How often, in seconds at most, a session's use is written down.
const SEEN_EVERY: i64 = 30;

pub async fn end(pool: &Pool, token_hash: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM sessions WHERE token_hash = $1").bind(token_hash).execute(pool).await?;
    Ok(())
}
