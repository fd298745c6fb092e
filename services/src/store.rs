//! The store layer's connection pool (docs/store-layer.md): sqlx's
//! `AnyPool` over the server's database, SQLite or PostgreSQL. Each
//! capability's store (`notices/store.rs`, …) runs its queries through it
//! with `$N` placeholders and the portable forms (`ON CONFLICT`,
//! `RETURNING`), so the same SQL serves both. The schema is migrated first
//! (db.rs).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use sqlx::Executor;
use sqlx::any::AnyPoolOptions;
use url::Url;

pub type Pool = sqlx::AnyPool;

/// Where the server's database is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// A SQLite file (WAL, synchronous=FULL), for one process.
    Sqlite(PathBuf),
    /// A PostgreSQL database (`postgres://user:password@host/name`).
    Postgres(Url),
}

impl Database {
    /// `postgres://…` (or `postgresql://…`), or `sqlite:///path/to/file`.
    pub fn parse(url: &Url) -> anyhow::Result<Self> {
        match url.scheme() {
            "postgres" | "postgresql" => Ok(Self::Postgres(url.clone())),
            "sqlite" => {
                let path = url.to_file_path().map_err(|()| anyhow::anyhow!("{url} names no file"))?;
                Ok(Self::Sqlite(path))
            }
            other => anyhow::bail!("unsupported database {other}://… (use postgres://… or sqlite:///path)"),
        }
    }

    /// For logs: the file, or the PostgreSQL host and database without
    /// credentials.
    pub fn describe(&self) -> String {
        match self {
            Self::Sqlite(path) => path.display().to_string(),
            Self::Postgres(url) => {
                format!("postgres://{}:{}{}", url.host_str().unwrap_or(""), url.port().unwrap_or(5432), url.path())
            }
        }
    }
}

/// Connections the pool holds at most on SQLite: it writes one at a time,
/// and reads are short.
const SQLITE_CONNECTIONS: u32 = 4;

/// Connections the pool holds at most on PostgreSQL, per replica (its
/// default `max_connections` of 100 serves several replicas).
const POSTGRES_CONNECTIONS: u32 = 16;

/// A pool over the database. A SQLite file must be migrated first
/// (`db::open_migrated` does both); commits are fsync'd (synchronous=FULL) before a request is
/// answered, as on the migrating connection, and sqlx's SQLite driver
/// waits up to 5 s on a lock and enforces foreign keys. PostgreSQL commits
/// are durable with its defaults (`synchronous_commit = on`, `fsync = on`).
pub async fn open(database: &Database) -> anyhow::Result<Pool> {
    sqlx::any::install_default_drivers();
    let options = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(10));
    let pool = match database {
        Database::Sqlite(path) => {
            let url = format!("sqlite://{}?mode=rw", path.display());
            options
                .max_connections(SQLITE_CONNECTIONS)
                .after_connect(|conn, _| {
                    Box::pin(async move {
                        conn.execute("PRAGMA synchronous = FULL").await?;
                        Ok(())
                    })
                })
                .connect(&url)
                .await
        }
        Database::Postgres(url) => options.max_connections(POSTGRES_CONNECTIONS).connect(url.as_str()).await,
    };
    pool.with_context(|| format!("opening the store pool on {}", database.describe()))
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
    if is_sqlite(pool) { pool.begin_with("BEGIN IMMEDIATE").await } else { pool.begin().await }
}

fn is_sqlite(pool: &Pool) -> bool {
    pool.connect_options().database_url.scheme() == "sqlite"
}

/// The pattern match that ignores case: SQLite's `LIKE` does so for ASCII
/// letters, PostgreSQL's for none (its `ILIKE` does).
pub fn like_ignoring_case(pool: &Pool) -> &'static str {
    if is_sqlite(pool) { "LIKE" } else { "ILIKE" }
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

#[cfg(test)]
mod tests {
    use super::Database;

    fn parse(url: &str) -> anyhow::Result<Database> {
        Database::parse(&url.parse().unwrap())
    }

    #[test]
    fn database_urls_parse_strictly_and_describe_without_secrets() {
        let postgres = parse("postgres://chartkey:s3cret@db.internal:6543/records").unwrap();
        assert!(matches!(&postgres, Database::Postgres(_)));
        assert_eq!(postgres.describe(), "postgres://db.internal:6543/records", "no user or password in logs");
        assert!(matches!(parse("postgresql://db/x").unwrap(), Database::Postgres(_)));
        assert_eq!(
            parse("sqlite:///srv/chartkey/db.sqlite3").unwrap(),
            Database::Sqlite("/srv/chartkey/db.sqlite3".into())
        );
        for refused in ["mysql://db/x", "file:///srv/db", "sqlite://elsewhere/db.sqlite3", "s3://bucket/db"] {
            assert!(parse(refused).is_err(), "{refused}");
        }
    }
}
