//! The server's database: a SQLite file in the data directory (the
//! default), or PostgreSQL (`--database postgres://…`) that several
//! replicas share. Here: which one ([`Database`]), its schema (migrations
//! per engine in services/migrations/, applied at start) and the clock rows
//! are stamped with. Every query runs on the store layer's pool (store.rs),
//! one store per capability, with the same SQL on both engines. Holds
//! public data only: display names, public keys, signed directory entries,
//! WebAuthn public credentials, sealed (encrypted) key stores and hashed
//! session tokens.

use std::path::Path;

use anyhow::Context;
use rusqlite::Connection;
use rusqlite_migration::{M, Migrations};

use crate::store::Database;

/// The store layer's pool over `database`, its tables created or brought
/// to the latest schema first. SQLite is migrated on a connection of its
/// own before the pool opens it; PostgreSQL on the pool, where replicas
/// starting together take turns (sqlx's migrator holds an advisory lock).
pub async fn open_migrated(database: &Database) -> anyhow::Result<crate::store::Pool> {
    if let Database::Sqlite(path) = database {
        migrate(path)?;
    }
    let pool = crate::store::open(database).await?;
    if let Database::Postgres(_) = database {
        POSTGRES.run(&pool).await.context("applying database migrations")?;
    }
    Ok(pool)
}

/// PostgreSQL's migrations, numbered as SQLite's: 11 is SQLite's 1 to 11
/// in one (there were no PostgreSQL databases before it).
static POSTGRES: std::sync::LazyLock<sqlx::migrate::Migrator> = std::sync::LazyLock::new(|| {
    use sqlx::migrate::{Migration, MigrationType, Migrator};
    let migration = |version, description: &'static str, sql: &'static str| {
        Migration::new(version, description.into(), MigrationType::Simple, sqlx::SqlSafeStr::into_sql_str(sql), false)
    };
    Migrator::with_migrations(vec![
        migration(11, "schema", include_str!("../migrations/postgres/0011_schema.sql")),
        migration(12, "pending relayer", include_str!("../migrations/postgres/0012_pending_relayer.sql")),
        migration(13, "rate counts", include_str!("../migrations/postgres/0013_rate_counts.sql")),
    ])
});

const MIGRATIONS: &[M<'static>] = &[
    M::up(include_str!("../migrations/sqlite/0001_accounts.sql")),
    M::up(include_str!("../migrations/sqlite/0002_session_credential.sql")),
    M::up(include_str!("../migrations/sqlite/0003_records.sql")),
    M::up(include_str!("../migrations/sqlite/0004_sharing.sql")),
    M::up(include_str!("../migrations/sqlite/0005_credentials.sql")),
    M::up(include_str!("../migrations/sqlite/0006_notices.sql")),
    M::up(include_str!("../migrations/sqlite/0007_pending.sql")),
    M::up(include_str!("../migrations/sqlite/0008_approvals.sql")),
    M::up(include_str!("../migrations/sqlite/0009_one_address_form.sql")),
    M::up(include_str!("../migrations/sqlite/0010_ceremonies.sql")),
    M::up(include_str!("../migrations/sqlite/0011_links_and_emergency.sql")),
    M::up(include_str!("../migrations/sqlite/0012_pending_relayer.sql")),
    M::up(include_str!("../migrations/sqlite/0013_rate_counts.sql")),
];

/// Creates or migrates the SQLite database at `path` to the latest schema
/// (WAL, synchronous=FULL), before the store layer's pool opens it.
pub fn migrate(path: &Path) -> anyhow::Result<()> {
    open_connection(path).map(drop)
}

/// A connection to the database at `path` (WAL, foreign keys), migrated to
/// the latest schema. The server holds one; the operator's commands open
/// their own beside it.
pub fn open_connection(path: &Path) -> anyhow::Result<Connection> {
    let mut conn = Connection::open(path).with_context(|| format!("opening database {}", path.display()))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Migrations::from_slice(MIGRATIONS).to_latest(&mut conn).context("applying database migrations")?;
    Ok(conn)
}

pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use rusqlite::params;

    /// Rows written before migration 9 (EIP-55 addresses, bare-hex envelope
    /// hashes) come out in the one stored form, and are found by it.
    #[test]
    fn existing_rows_are_converted_to_one_form() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        let migrations = rusqlite_migration::Migrations::from_slice(super::MIGRATIONS);
        migrations.to_version(&mut conn, 8).unwrap();
        let checksummed = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";
        let (key, signature) = (format!("0x{}", "11".repeat(32)), format!("0x{}", "22".repeat(65)));
        conn.execute(
            "INSERT INTO accounts (id, display_name, role, address, encryption_key, directory_signature, created_at)
             VALUES ('a', 'Pat', 'patient', ?1, ?2, ?3, 0)",
            params![checksummed, key, signature],
        )
        .unwrap();
        let (blob, id) = ("ab".repeat(32), format!("0x{}", "01".repeat(32)));
        conn.execute(
            "INSERT INTO records (id, patient_id, author_id, blob, size, category, signature, anchor_job, anchor_tx,
                created_at) VALUES (?1, 'a', 'a', ?2, 1, 0, ?3, 1, '', 0)",
            params![id, blob, signature],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO record_keys (record_id, reader, wrapped_key, created_at) VALUES (?1, ?2, 'k', 0)",
            params![id, checksummed],
        )
        .unwrap();
        conn.execute("INSERT INTO blob_uploads (blob, account_id, size, created_at) VALUES (?1, 'a', 1, 0)", [&blob])
            .unwrap();
        migrations.to_latest(&mut conn).unwrap();

        let address: chartkey_core::value::Address = checksummed.parse().unwrap();
        let found: String =
            conn.query_row("SELECT id FROM accounts WHERE address = ?1", [address], |r| r.get(0)).unwrap();
        assert_eq!(found, "a", "found by its one form");
        let stored: String = conn.query_row("SELECT address FROM accounts", [], |r| r.get(0)).unwrap();
        assert_eq!(stored, checksummed.to_lowercase());
        let reader: String = conn.query_row("SELECT reader FROM record_keys", [], |r| r.get(0)).unwrap();
        assert_eq!(reader, checksummed.to_lowercase());
        for table in ["records", "blob_uploads"] {
            let hash: chartkey_core::value::Hash32 =
                conn.query_row(&format!("SELECT blob FROM {table}"), [], |r| r.get(0)).unwrap();
            assert_eq!(hash.to_string(), format!("0x{blob}"), "{table}");
        }
    }

    /// What the server records (accounts, grants, accesses, pending
    /// bookkeeping) is fsync'd before a request is answered.
    #[test]
    fn commits_are_durable() {
        let dir = tempfile::tempdir().unwrap();
        let conn = super::open_connection(&dir.path().join("chartkey.sqlite3")).unwrap();
        let synchronous: i64 = conn.query_row("PRAGMA synchronous", [], |r| r.get(0)).unwrap();
        let journal: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
        assert_eq!((synchronous, journal.as_str()), (2, "wal"), "synchronous=FULL, WAL");
    }
}
