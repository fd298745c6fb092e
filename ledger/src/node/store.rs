//! The chain on disk: SQLite (WAL, synchronous=FULL), one SQL transaction per
//! block, so a block with its transactions and receipts is on disk (fsync'd)
//! or absent, never half there.

use std::path::Path;

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use rusqlite_migration::{M, Migrations};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("ledger store: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("ledger store schema: {0}")]
    Migration(#[from] rusqlite_migration::Error),
}

/// A block as stored: its hash, the RLP of its header, its transactions
/// (EIP-2718 bytes) and receipts (EIP-2718 bytes), in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBlock {
    pub number: u64,
    pub hash: [u8; 32],
    pub header: Vec<u8>,
    pub transactions: Vec<StoredTx>,
    pub receipts: Vec<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTx {
    pub hash: [u8; 32],
    pub raw: Vec<u8>,
}

pub struct Store {
    conn: Connection,
}

fn migrations() -> Migrations<'static> {
    Migrations::new(vec![M::up(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL) STRICT;
         CREATE TABLE blocks (
             number INTEGER PRIMARY KEY,
             hash BLOB NOT NULL UNIQUE,
             header BLOB NOT NULL
         ) STRICT;
         CREATE TABLE transactions (
             hash BLOB PRIMARY KEY,
             block_number INTEGER NOT NULL REFERENCES blocks(number),
             idx INTEGER NOT NULL,
             raw BLOB NOT NULL,
             UNIQUE (block_number, idx)
         ) STRICT;
         CREATE TABLE receipts (
             block_number INTEGER NOT NULL REFERENCES blocks(number),
             idx INTEGER NOT NULL,
             raw BLOB NOT NULL,
             PRIMARY KEY (block_number, idx)
         ) STRICT, WITHOUT ROWID;",
    )])
}

impl Store {
    /// Opens (creating if needed) the store at `path` for the node.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        // A block is only acknowledged once it is durable.
        let mut conn = crate::sqlite::open_durable(path)?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        migrations().to_latest(&mut conn)?;
        Ok(Self { conn })
    }

    /// Opens an existing store without writing to it (verification, queries).
    pub fn open_read_only(path: &Path) -> Result<Self, StoreError> {
        let conn =
            Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
        Ok(Self { conn })
    }

    pub fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0)).optional()?)
    }

    /// Starts a new chain: its genesis spec and block 0, in one durable commit.
    pub fn create(&mut self, genesis: &[u8], block: &StoredBlock) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        tx.execute("INSERT INTO meta (key, value) VALUES ('genesis', ?1)", [genesis])?;
        insert_block(&tx, block)?;
        tx.commit()?;
        Ok(())
    }

    /// Appends a block with its transactions and receipts in one durable commit.
    pub fn append(&mut self, block: &StoredBlock) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        insert_block(&tx, block)?;
        tx.commit()?;
        Ok(())
    }

    /// The highest stored block number.
    pub fn head_number(&self) -> Result<Option<u64>, StoreError> {
        let n: Option<i64> = self.conn.query_row("SELECT MAX(number) FROM blocks", [], |r| r.get(0))?;
        Ok(n.map(|n| n as u64))
    }

    /// Block `number` with its transactions and receipts, as stored.
    pub fn block(&self, number: u64) -> Result<Option<StoredBlock>, StoreError> {
        let n = number as i64;
        let Some((hash, header)) = self
            .conn
            .prepare_cached("SELECT hash, header FROM blocks WHERE number = ?1")?
            .query_row([n], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Vec<u8>>(1)?)))
            .optional()?
        else {
            return Ok(None);
        };
        let transactions = self
            .conn
            .prepare_cached("SELECT hash, raw FROM transactions WHERE block_number = ?1 ORDER BY idx")?
            .query_map([n], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Vec<u8>>(1)?)))?
            .map(|row| row.map(|(hash, raw)| StoredTx { hash: to_hash(&hash), raw }))
            .collect::<Result<Vec<_>, _>>()?;
        let receipts = self
            .conn
            .prepare_cached("SELECT raw FROM receipts WHERE block_number = ?1 ORDER BY idx")?
            .query_map([n], |r| r.get::<_, Vec<u8>>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(StoredBlock { number, hash: to_hash(&hash), header, transactions, receipts }))
    }

    pub fn block_number_of_hash(&self, hash: &[u8; 32]) -> Result<Option<u64>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT number FROM blocks WHERE hash = ?1")?
            .query_row([&hash[..]], |r| r.get::<_, i64>(0))
            .optional()?
            .map(|n| n as u64))
    }

    /// Where transaction `hash` is: (block number, index in the block).
    pub fn transaction_location(&self, hash: &[u8; 32]) -> Result<Option<(u64, u64)>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT block_number, idx FROM transactions WHERE hash = ?1")?
            .query_row([&hash[..]], |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)))
            .optional()?)
    }

    /// The raw connection, for tests that tamper with the store.
    #[doc(hidden)]
    pub fn connection(&self) -> &Connection {
        &self.conn
    }
}

fn insert_block(tx: &rusqlite::Transaction<'_>, block: &StoredBlock) -> Result<(), StoreError> {
    let number = i64::try_from(block.number).expect("block numbers fit in i64");
    tx.prepare_cached("INSERT INTO blocks (number, hash, header) VALUES (?1, ?2, ?3)")?.execute(params![
        number,
        &block.hash[..],
        &block.header
    ])?;
    let mut insert_tx =
        tx.prepare_cached("INSERT INTO transactions (hash, block_number, idx, raw) VALUES (?1, ?2, ?3, ?4)")?;
    for (idx, t) in block.transactions.iter().enumerate() {
        insert_tx.execute(params![&t.hash[..], number, idx as i64, &t.raw])?;
    }
    let mut insert_receipt = tx.prepare_cached("INSERT INTO receipts (block_number, idx, raw) VALUES (?1, ?2, ?3)")?;
    for (idx, raw) in block.receipts.iter().enumerate() {
        insert_receipt.execute(params![number, idx as i64, raw])?;
    }
    Ok(())
}

fn to_hash(bytes: &[u8]) -> [u8; 32] {
    let mut hash = [0u8; 32];
    // A stored hash of the wrong length reads as zeros; verification reports
    // the block as not matching.
    if bytes.len() == 32 {
        hash.copy_from_slice(bytes);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(number: u64, txs: usize) -> StoredBlock {
        StoredBlock {
            number,
            hash: [number as u8; 32],
            header: vec![0xc0 + number as u8],
            transactions: (0..txs)
                .map(|i| StoredTx { hash: [(number * 16 + i as u64) as u8; 32], raw: vec![i as u8] })
                .collect(),
            receipts: (0..txs).map(|i| vec![i as u8, 1]).collect(),
        }
    }

    #[test]
    fn blocks_round_trip_and_are_found_by_hash() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("ledger.sqlite3")).unwrap();
        assert_eq!(store.head_number().unwrap(), None);
        store.append(&block(0, 0)).unwrap();
        store.append(&block(1, 3)).unwrap();
        assert_eq!(store.head_number().unwrap(), Some(1));
        assert_eq!(store.block(1).unwrap().unwrap(), block(1, 3));
        assert_eq!(store.block(2).unwrap(), None);
        assert_eq!(store.block_number_of_hash(&[1; 32]).unwrap(), Some(1));
        assert_eq!(store.transaction_location(&[18; 32]).unwrap(), Some((1, 2)));
        drop(store);
        let reopened = Store::open_read_only(&dir.path().join("ledger.sqlite3")).unwrap();
        assert_eq!(reopened.block(1).unwrap().unwrap(), block(1, 3));
    }

    #[test]
    fn a_failed_append_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("ledger.sqlite3")).unwrap();
        store.append(&block(0, 2)).unwrap();
        // Same transaction hashes again: the insert fails half-way.
        let mut again = block(1, 2);
        again.transactions = block(0, 2).transactions;
        assert!(store.append(&again).is_err());
        assert_eq!(store.head_number().unwrap(), Some(0));
        assert_eq!(store.block(1).unwrap(), None);
    }

    /// Every commit is fsync'd before it returns (a block is acknowledged
    /// only once durable), in the WAL journal.
    #[test]
    fn commits_are_durable() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("ledger.sqlite3")).unwrap();
        crate::sqlite::assert_durable(&store.conn);
    }
}
