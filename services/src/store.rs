//! The store layer's connection pool (docs/store-layer.md): sqlx's
//! `AnyPool` over the server's database. Each capability's store
//! (`notices/store.rs`, …) runs its queries through it with `$N`
//! placeholders and the portable forms (`ON CONFLICT`, `RETURNING`), so the
//! same SQL can serve PostgreSQL (issue 18). The schema is migrated first
//! (db.rs); the stores not yet moved here still use db.rs's connection.

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
