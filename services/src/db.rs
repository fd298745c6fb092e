//! SQLite storage: WAL mode, migrations at start, one connection behind a
//! mutex, used from blocking tasks. Holds public data only: display names,
//! public keys, signed directory entries, WebAuthn public credentials,
//! sealed (encrypted) key stores and hashed session tokens.

use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use rusqlite::{Connection, OptionalExtension, params};
use rusqlite_migration::{M, Migrations};

use chartkey_api::ApiError;
use chartkey_core::value::{Address, PublicKey, Signature};

const MIGRATIONS: &[M<'static>] = &[
    M::up(include_str!("../migrations/0001_accounts.sql")),
    M::up(include_str!("../migrations/0002_session_credential.sql")),
    M::up(include_str!("../migrations/0003_records.sql")),
    M::up(include_str!("../migrations/0004_sharing.sql")),
    M::up(include_str!("../migrations/0005_credentials.sql")),
    M::up(include_str!("../migrations/0006_notices.sql")),
    M::up(include_str!("../migrations/0007_pending.sql")),
    M::up(include_str!("../migrations/0008_approvals.sql")),
    M::up(include_str!("../migrations/0009_one_address_form.sql")),
    M::up(include_str!("../migrations/0010_ceremonies.sql")),
];

#[derive(Clone)]
pub struct Db {
    conn: Arc<Mutex<Connection>>,
}

impl Db {
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        Ok(Self { conn: Arc::new(Mutex::new(open_connection(path)?)) })
    }

    /// Runs `f` on the connection in a blocking task. Database failures are
    /// logged here and become [`ApiError::Internal`].
    pub async fn call<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            f(&mut guard)
        })
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "database task failed");
            ApiError::Internal
        })?
        .map_err(|e| {
            tracing::error!(error = %e, "database error");
            ApiError::Internal
        })
    }

    /// Runs one statement with owned parameters (a tuple); the number of
    /// rows it changed.
    pub async fn execute<P>(&self, sql: &'static str, params: P) -> Result<usize, ApiError>
    where
        P: rusqlite::Params + Send + 'static,
    {
        self.call(move |conn| conn.execute(sql, params)).await
    }
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

#[derive(Debug, Clone)]
pub struct AccountRow {
    pub id: String,
    pub display_name: String,
    pub role: String,
    pub address: Address,
    pub encryption_key: PublicKey,
    pub directory_signature: Signature,
    pub recovery_confirmed: bool,
}

const ACCOUNT_COLUMNS: &str =
    "id, display_name, role, address, encryption_key, directory_signature, recovery_confirmed_at IS NOT NULL";

/// [`ACCOUNT_COLUMNS`] of `accounts a`, for queries that join other tables.
pub const ACCOUNT_COLUMNS_OF_A: &str = "a.id, a.display_name, a.role, a.address, a.encryption_key, \
    a.directory_signature, a.recovery_confirmed_at IS NOT NULL";

pub fn account_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<AccountRow> {
    Ok(AccountRow {
        id: row.get(0)?,
        display_name: row.get(1)?,
        role: row.get(2)?,
        address: row.get(3)?,
        encryption_key: row.get(4)?,
        directory_signature: row.get(5)?,
        recovery_confirmed: row.get(6)?,
    })
}

pub fn account_by_id(conn: &Connection, id: &str) -> rusqlite::Result<Option<AccountRow>> {
    conn.query_row(&format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = ?1"), [id], account_from_row).optional()
}

pub fn account_by_address(conn: &Connection, address: &Address) -> rusqlite::Result<Option<AccountRow>> {
    conn.query_row(&format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE address = ?1"), [address], account_from_row)
        .optional()
}

pub fn insert_account(conn: &Connection, a: &AccountRow) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO accounts (id, display_name, role, address, encryption_key, directory_signature, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![a.id, a.display_name, a.role, a.address, a.encryption_key, a.directory_signature, now()],
    )?;
    Ok(())
}

#[derive(Debug, Clone)]
pub struct PasskeyRow {
    pub credential_id: String,
    pub account_id: String,
    pub label: String,
    pub passkey_json: String,
    pub sealed_keystore: String,
    pub uses_passphrase: bool,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

const PASSKEY_COLUMNS: &str =
    "credential_id, account_id, label, passkey_json, sealed_keystore, uses_passphrase, created_at, last_used_at";

fn passkey_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<PasskeyRow> {
    Ok(PasskeyRow {
        credential_id: row.get(0)?,
        account_id: row.get(1)?,
        label: row.get(2)?,
        passkey_json: row.get(3)?,
        sealed_keystore: row.get(4)?,
        uses_passphrase: row.get(5)?,
        created_at: row.get(6)?,
        last_used_at: row.get(7)?,
    })
}

/// Stores a passkey; `false` (and nothing written) when its credential id is
/// already registered.
pub fn insert_passkey(conn: &Connection, p: &PasskeyRow) -> rusqlite::Result<bool> {
    let inserted = conn.execute(
        &format!(
            "INSERT INTO passkeys ({PASSKEY_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
             ON CONFLICT (credential_id) DO NOTHING"
        ),
        params![
            p.credential_id,
            p.account_id,
            p.label,
            p.passkey_json,
            p.sealed_keystore,
            p.uses_passphrase,
            p.created_at,
            p.last_used_at
        ],
    )?;
    Ok(inserted == 1)
}

pub fn passkey_by_credential(conn: &Connection, credential_id: &str) -> rusqlite::Result<Option<PasskeyRow>> {
    conn.query_row(
        &format!("SELECT {PASSKEY_COLUMNS} FROM passkeys WHERE credential_id = ?1"),
        [credential_id],
        passkey_from_row,
    )
    .optional()
}

pub fn passkeys_of(conn: &Connection, account_id: &str) -> rusqlite::Result<Vec<PasskeyRow>> {
    let mut stmt = conn
        .prepare(&format!("SELECT {PASSKEY_COLUMNS} FROM passkeys WHERE account_id = ?1 ORDER BY created_at, rowid"))?;
    let rows = stmt.query_map([account_id], passkey_from_row)?;
    rows.collect()
}

pub fn insert_session(
    conn: &Connection,
    token_hash: &str,
    account_id: &str,
    credential_id: &str,
    expires_at: i64,
) -> rusqlite::Result<()> {
    let now = now();
    conn.execute(
        "INSERT INTO sessions (token_hash, account_id, credential_id, created_at, expires_at, last_seen_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?4)",
        params![token_hash, account_id, credential_id, now, expires_at],
    )?;
    Ok(())
}

/// The account and passkey of a live session: unexpired, and for
/// clinicians (shared workstations) used within `clinician_idle_secs`.
/// Marks the session as seen (at most every 30 s, to spare the disk).
pub fn live_session(
    conn: &Connection,
    token_hash: &str,
    clinician_idle_secs: i64,
) -> rusqlite::Result<Option<(String, String)>> {
    let now = now();
    let found = session_if_live(conn, token_hash, clinician_idle_secs)?;
    if found.is_some() {
        conn.execute(
            "UPDATE sessions SET last_seen_at = ?2 WHERE token_hash = ?1 AND last_seen_at < ?2 - 30",
            params![token_hash, now],
        )?;
    }
    Ok(found)
}

/// The session's account and passkey while it is live (not signed out, not
/// expired, not idle-locked), without counting this look as activity: for
/// checks a page makes on its own (an open notice stream), not the person.
pub fn session_if_live(
    conn: &Connection,
    token_hash: &str,
    clinician_idle_secs: i64,
) -> rusqlite::Result<Option<(String, String)>> {
    conn.query_row(
        "SELECT s.account_id, s.credential_id FROM sessions s JOIN accounts a ON a.id = s.account_id
         WHERE s.token_hash = ?1 AND s.expires_at > ?2 AND (a.role != 'clinician' OR s.last_seen_at > ?2 - ?3)",
        params![token_hash, now(), clinician_idle_secs],
        |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
    )
    .optional()
}

pub fn delete_session(conn: &Connection, token_hash: &str) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM sessions WHERE token_hash = ?1", [token_hash])?;
    Ok(())
}

pub fn delete_expired_sessions(conn: &Connection) -> rusqlite::Result<usize> {
    conn.execute("DELETE FROM sessions WHERE expires_at <= ?1", [now()])
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
        let account = super::account_by_address(&conn, &address).unwrap().expect("found by its one form");
        assert_eq!(account.address, address);
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
