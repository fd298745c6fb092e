//! The store layer's connection pool (docs/store-layer.md): sqlx's
//! `AnyPool` over the server's database. Each capability's store
//! (`notices/store.rs`, …) runs its queries through it with `$N`
//! placeholders and the portable forms (`ON CONFLICT`, `RETURNING`), so the
//! same SQL can serve PostgreSQL (issue 18). The schema is migrated first
//! (db.rs).

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use sqlx::Executor;
use sqlx::any::AnyPoolOptions;

pub type Pool = sqlx::AnyPool;

/// Connections the pool holds at most: SQLite writes one at a time, and
/// reads are short.
const CONNECTIONS: u32 = 4;

/// A pool over the (already migrated) SQLite database at `path`. Commits
/// are fsync'd (synchronous=FULL) before a request is answered, as on the
/// other connection; sqlx's SQLite driver waits up to 5 s on a lock and
/// enforces foreign keys.
pub async fn open(path: &Path) -> anyhow::Result<Pool> {
    sqlx::any::install_default_drivers();
    let url = format!("sqlite://{}?mode=rw", path.display());
    AnyPoolOptions::new()
        .max_connections(CONNECTIONS)
        .acquire_timeout(Duration::from_secs(10))
        .after_connect(|conn, _| {
            Box::pin(async move {
                conn.execute("PRAGMA synchronous = FULL").await?;
                Ok(())
            })
        })
        .connect(&url)
        .await
        .with_context(|| format!("opening the store pool on {}", path.display()))
}

/// Whether the database answers (the health check).
pub async fn ping(pool: &Pool) -> Result<(), StoreError> {
    sqlx::query_scalar::<_, i64>("SELECT 1").fetch_one(pool).await?;
    Ok(())
}

/// A store's failure that no caller can act on: the database failed, or a
/// stored row does not hold what its columns promise. Logged once, at the
/// edge, and answered as [`ApiError::Internal`](chartkey_api::ApiError).
/// Stores whose queries have outcomes a caller acts on (an address already
/// taken, the last passkey) have their own error type wrapping this one.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error("a stored {0} is inconsistent")]
    Row(&'static str),
}

impl From<StoreError> for chartkey_api::ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "store failed");
        chartkey_api::ApiError::Internal
    }
}

/// A transaction that reads and then writes. SQLite must take its write
/// lock at `BEGIN` (`IMMEDIATE`): a deferred transaction that reads first
/// fails at once with `SQLITE_BUSY` when another connection writes between
/// its read and its write, whatever the busy timeout. PostgreSQL refuses
/// the word; there a unique constraint (or `FOR UPDATE`) guards the read.
pub async fn begin_write(pool: &Pool) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
    if pool.connect_options().database_url.scheme() == "sqlite" {
        pool.begin_with("BEGIN IMMEDIATE").await
    } else {
        pool.begin().await
    }
}

/// A flag column as stored on both engines: an integer, 0 or 1 (sqlx's
/// `Any` decodes no `bool` from a SQLite integer, and `x IS NULL` is a
/// boolean on PostgreSQL but an integer on SQLite). Row types read it as
/// this and keep a `bool`: `#[sqlx(try_from = "Flag")]`.
pub struct Flag(i64);

impl From<Flag> for bool {
    fn from(flag: Flag) -> bool {
        flag.0 != 0
    }
}

impl sqlx::Type<sqlx::Any> for Flag {
    fn type_info() -> sqlx::any::AnyTypeInfo {
        <i64 as sqlx::Type<sqlx::Any>>::type_info()
    }
    fn compatible(ty: &sqlx::any::AnyTypeInfo) -> bool {
        <i64 as sqlx::Type<sqlx::Any>>::compatible(ty)
    }
}

impl<'r> sqlx::Decode<'r, sqlx::Any> for Flag {
    fn decode(value: sqlx::any::AnyValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        Ok(Flag(<i64 as sqlx::Decode<'r, sqlx::Any>>::decode(value)?))
    }
}

/// A stored integer as the narrower type it stands for (sqlx's `Any`
/// decodes integers as `i16`, `i32` or `i64` only); out of range is a
/// corrupt row.
pub fn narrow<T: TryFrom<i64>>(wide: i64) -> Result<T, StoreError> {
    T::try_from(wide).map_err(|_| StoreError::Row("integer out of range"))
}
