//! The links' store: each link as relayed (the ledger decides whether it
//! is live when it is used), its files, its uses, the passcode attempts
//! left (spent by one atomic update, so the cap holds across requests and
//! server replicas) and the short-lived file addresses.

use chartkey_api::LinkUseView;
use chartkey_core::value::Hash32;

use crate::db::now;
use crate::store::{Pool, StoreError, narrow};

/// A stored link.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LinkRow {
    pub id: Hash32,
    pub account_id: String,
    #[sqlx(try_from = "i64")]
    pub flags: u8,
    pub expires_at: Option<i64>,
    pub passcode_hash: Option<Hash32>,
    #[sqlx(try_from = "i64")]
    pub attempts_left: u32,
    /// JSON of the sealed secrets (label, URL secret, key).
    pub sealed: String,
    pub content_hash: Hash32,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

impl LinkRow {
    /// Usable now as far as the server knows (the ledger is asked too).
    pub fn live(&self, now: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|at| at > now) && self.attempts_left > 0
    }
}

/// One file of a link.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct FileRow {
    pub content_type: String,
    /// The JWE's SHA-256: its name in the blob store.
    pub blob: Hash32,
    pub size: i64,
}

/// Writes a new link and its files, both or neither; false when the id is
/// taken.
pub async fn insert(pool: &Pool, link: &LinkRow, files: &[FileRow]) -> Result<bool, StoreError> {
    let mut t = pool.begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO links (id, account_id, flags, expires_at, passcode_hash, attempts_left, sealed, content_hash,
                            created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO NOTHING",
    )
    .bind(link.id)
    .bind(link.account_id.as_str())
    .bind(i64::from(link.flags))
    .bind(link.expires_at)
    .bind(link.passcode_hash)
    .bind(i64::from(link.attempts_left))
    .bind(link.sealed.as_str())
    .bind(link.content_hash)
    .bind(link.created_at)
    .execute(&mut *t)
    .await?;
    if inserted.rows_affected() == 0 {
        return Ok(false);
    }
    insert_files(&mut t, link.id, files).await?;
    t.commit().await?;
    Ok(true)
}

async fn insert_files(
    t: &mut sqlx::Transaction<'static, sqlx::Any>,
    id: Hash32,
    files: &[FileRow],
) -> Result<(), StoreError> {
    for (position, file) in files.iter().enumerate() {
        sqlx::query("INSERT INTO link_files (link_id, position, content_type, blob, size) VALUES ($1, $2, $3, $4, $5)")
            .bind(id)
            .bind(position as i64)
            .bind(file.content_type.as_str())
            .bind(file.blob)
            .bind(file.size)
            .execute(&mut **t)
            .await?;
    }
    Ok(())
}

/// Removes a link whose creation the ledger refused.
pub async fn remove(pool: &Pool, id: Hash32) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM links WHERE id = $1").bind(id).execute(pool).await?;
    Ok(())
}

/// Records the transaction that created link `id` on the ledger.
pub async fn created(pool: &Pool, id: Hash32, tx: Hash32) -> Result<(), StoreError> {
    sqlx::query("UPDATE links SET create_tx = $1 WHERE id = $2").bind(tx).bind(id).execute(pool).await?;
    Ok(())
}

pub async fn by_id(pool: &Pool, id: Hash32) -> Result<Option<LinkRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id, account_id, flags, expires_at, passcode_hash, attempts_left, sealed, content_hash,
                created_at, revoked_at
         FROM links WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?)
}

/// The account's links, newest first.
pub async fn of_account(pool: &Pool, account_id: &str, limit: i64) -> Result<Vec<LinkRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id, account_id, flags, expires_at, passcode_hash, attempts_left, sealed, content_hash,
                created_at, revoked_at
         FROM links WHERE account_id = $1 ORDER BY created_at DESC, id LIMIT $2",
    )
    .bind(account_id)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// Link `id`'s files, in order.
pub async fn files(pool: &Pool, id: Hash32) -> Result<Vec<FileRow>, StoreError> {
    Ok(sqlx::query_as("SELECT content_type, blob, size FROM link_files WHERE link_id = $1 ORDER BY position")
        .bind(id)
        .fetch_all(pool)
        .await?)
}

/// Spends one passcode attempt of link `id` in one atomic update: the
/// attempts left after it, or `None` when none were left (so parallel
/// requests can never spend more than the cap).
pub async fn spend_attempt(pool: &Pool, id: Hash32) -> Result<Option<u32>, StoreError> {
    let left: Option<i64> = sqlx::query_scalar(
        "UPDATE links SET attempts_left = attempts_left - 1 WHERE id = $1 AND attempts_left > 0
         RETURNING attempts_left",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?;
    left.map(narrow).transpose()
}

/// Gives back the attempt a right passcode spent.
pub async fn refund_attempt(pool: &Pool, id: Hash32) -> Result<(), StoreError> {
    sqlx::query("UPDATE links SET attempts_left = attempts_left + 1 WHERE id = $1").bind(id).execute(pool).await?;
    Ok(())
}

/// Stops link `id` now; false if it was already stopped.
pub async fn revoke(pool: &Pool, id: Hash32) -> Result<bool, StoreError> {
    let done = sqlx::query("UPDATE links SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
        .bind(now())
        .bind(id)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// A mined update of link `id`: its expiry, and for new content its hash
/// and files (replacing the old ones), in one transaction.
pub async fn update(
    pool: &Pool,
    id: Hash32,
    expires_at: Option<i64>,
    content: Option<(Hash32, &[FileRow])>,
) -> Result<(), StoreError> {
    let mut t = pool.begin().await?;
    sqlx::query("UPDATE links SET expires_at = $1 WHERE id = $2").bind(expires_at).bind(id).execute(&mut *t).await?;
    if let Some((hash, files)) = content {
        sqlx::query("UPDATE links SET content_hash = $1 WHERE id = $2").bind(hash).bind(id).execute(&mut *t).await?;
        sqlx::query("DELETE FROM link_locations WHERE link_id = $1").bind(id).execute(&mut *t).await?;
        sqlx::query("DELETE FROM link_files WHERE link_id = $1").bind(id).execute(&mut *t).await?;
        insert_files(&mut t, id, files).await?;
    }
    t.commit().await?;
    Ok(())
}

/// The uses recorded for links `ids`, newest first, by link.
pub async fn uses(pool: &Pool, id: Hash32, limit: i64) -> Result<Vec<LinkUseView>, StoreError> {
    let rows: Vec<(String, i64, Hash32)> =
        sqlx::query_as("SELECT recipient, at, tx FROM link_uses WHERE link_id = $1 ORDER BY at DESC, use_id LIMIT $2")
            .bind(id)
            .bind(limit)
            .fetch_all(pool)
            .await?;
    Ok(rows.into_iter().map(|(recipient, at, tx)| LinkUseView { recipient, at, tx }).collect())
}

/// A short-lived address of file `position` of link `id`, by the SHA-256
/// of its token; expired addresses are swept on the way.
pub async fn add_location(
    pool: &Pool,
    token_hash: Hash32,
    id: Hash32,
    position: u32,
    expires_at: i64,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM link_locations WHERE expires_at <= $1").bind(now()).execute(pool).await?;
    sqlx::query("INSERT INTO link_locations (token_hash, link_id, position, expires_at) VALUES ($1, $2, $3, $4)")
        .bind(token_hash)
        .bind(id)
        .bind(i64::from(position))
        .bind(expires_at)
        .execute(pool)
        .await?;
    Ok(())
}

/// The link, file position and expiry a location's token names.
pub async fn location(pool: &Pool, token_hash: Hash32) -> Result<Option<(Hash32, i64, i64)>, StoreError> {
    Ok(sqlx::query_as("SELECT link_id, position, expires_at FROM link_locations WHERE token_hash = $1")
        .bind(token_hash)
        .fetch_optional(pool)
        .await?)
}
