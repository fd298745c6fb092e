//! The one way the ledger's own SQLite files are opened: the node's chain
//! and the relayer's journal both acknowledge a write only once it is on
//! disk.

use std::path::Path;

use rusqlite::Connection;

/// Opens (creating if needed) the database at `path` in WAL mode with
/// synchronous=FULL: every commit is fsync'd before it returns.
pub(crate) fn open_durable(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    Ok(conn)
}

/// Asserts that `conn` commits durably (synchronous=FULL, WAL journal).
#[cfg(test)]
pub(crate) fn assert_durable(conn: &Connection) {
    let synchronous: i64 = conn.query_row("PRAGMA synchronous", [], |r| r.get(0)).unwrap();
    let journal: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!((synchronous, journal.as_str()), (2, "wal"), "synchronous=FULL, WAL");
}
