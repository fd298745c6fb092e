//! The relayer's journal: every accepted request, with the exact transaction
//! signed for it, on disk (SQLite WAL, synchronous=FULL) before the request
//! is acknowledged. On restart, what was sent but not seen mined is sent
//! again, byte for byte, so nothing accepted is lost or relayed twice.

use std::path::Path;

use alloy_primitives::{Address, B256, keccak256};
use rusqlite::{Connection, OptionalExtension, params};
use rusqlite_migration::{M, Migrations};

use crate::node::StoreError;

fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(
            "CREATE TABLE jobs (
             id INTEGER PRIMARY KEY AUTOINCREMENT,
             function TEXT NOT NULL,
             signer BLOB NOT NULL,
             target BLOB NOT NULL,
             input BLOB NOT NULL,
             gas_limit INTEGER NOT NULL,
             relayer_nonce INTEGER NOT NULL,
             raw BLOB NOT NULL,
             tx_hash BLOB NOT NULL,
             status TEXT NOT NULL CHECK (status IN ('sent', 'mined', 'reverted', 'failed')),
             block_number INTEGER,
             error TEXT,
             created_at INTEGER NOT NULL,
             updated_at INTEGER NOT NULL
         ) STRICT;
         CREATE INDEX jobs_sent ON jobs (relayer_nonce) WHERE status = 'sent';",
        ),
        // Jobs relayed together in one `bundle` transaction share its bytes and
        // hash; this is each one's position in it (NULL: sent alone).
        M::up("ALTER TABLE jobs ADD COLUMN bundle_index INTEGER;"),
        // keccak256 of the call's input: how the server finds, after a
        // crash, whether a request it was about to relay was journalled.
        M::up(
            "ALTER TABLE jobs ADD COLUMN input_hash BLOB;
             CREATE INDEX jobs_input_hash ON jobs (input_hash) WHERE input_hash IS NOT NULL;",
        ),
    ])
}

/// What happened to a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobStatus {
    /// Signed and handed to the ledger (or about to be); not yet seen mined.
    Sent,
    Mined {
        block_number: u64,
    },
    /// Mined, but the contract refused it.
    Reverted {
        block_number: u64,
        error: String,
    },
    /// The ledger would not take the transaction.
    Failed {
        error: String,
    },
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub id: i64,
    pub sent: NewJob,
    pub status: JobStatus,
}

/// A job as sent: what is stored before its id is assigned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    pub function: String,
    pub signer: Address,
    pub target: Address,
    pub input: Vec<u8>,
    pub gas_limit: u64,
    pub relayer_nonce: u64,
    pub raw: Vec<u8>,
    pub tx_hash: B256,
    /// Position in the bundle transaction carrying it; `None` when sent alone.
    pub bundle_index: Option<u32>,
}

pub struct JobStore {
    conn: Connection,
}

const COLUMNS: &str = "id, function, signer, target, input, gas_limit, relayer_nonce, raw, tx_hash, status, \
                       block_number, error, bundle_index";

fn job_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Job> {
    let address = |i: usize| -> rusqlite::Result<Address> {
        let bytes: Vec<u8> = row.get(i)?;
        Ok(Address::try_from(bytes.as_slice()).unwrap_or_default())
    };
    let hash: Vec<u8> = row.get(8)?;
    let status: String = row.get(9)?;
    let block_number: Option<i64> = row.get(10)?;
    let error: Option<String> = row.get(11)?;
    let block_number = block_number.unwrap_or_default() as u64;
    let status = match status.as_str() {
        "mined" => JobStatus::Mined { block_number },
        "reverted" => JobStatus::Reverted { block_number, error: error.unwrap_or_default() },
        "failed" => JobStatus::Failed { error: error.unwrap_or_default() },
        _ => JobStatus::Sent,
    };
    let sent = NewJob {
        function: row.get(1)?,
        signer: address(2)?,
        target: address(3)?,
        input: row.get(4)?,
        gas_limit: row.get::<_, i64>(5)? as u64,
        relayer_nonce: row.get::<_, i64>(6)? as u64,
        raw: row.get(7)?,
        tx_hash: B256::try_from(hash.as_slice()).unwrap_or_default(),
        bundle_index: row.get::<_, Option<i64>>(12)?.map(|i| i as u32),
    };
    Ok(Job { id: row.get(0)?, sent, status })
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

impl JobStore {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let mut conn = crate::sqlite::open_durable(path)?;
        migrations().to_latest(&mut conn)?;
        Ok(Self { conn })
    }

    /// Stores `jobs` in one durable commit; returns their ids, in order.
    pub fn insert(&mut self, jobs: &[NewJob]) -> Result<Vec<i64>, StoreError> {
        let tx = self.conn.transaction()?;
        let mut ids = Vec::with_capacity(jobs.len());
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO jobs (function, signer, target, input, gas_limit, relayer_nonce, raw, tx_hash, status,
                                   created_at, updated_at, bundle_index, input_hash)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'sent', ?9, ?9, ?10, ?11)",
            )?;
            let now = now();
            for job in jobs {
                insert.execute(params![
                    job.function,
                    job.signer.as_slice(),
                    job.target.as_slice(),
                    job.input,
                    job.gas_limit as i64,
                    job.relayer_nonce as i64,
                    job.raw,
                    job.tx_hash.as_slice(),
                    now,
                    job.bundle_index.map(i64::from),
                    keccak256(&job.input).as_slice()
                ])?;
                ids.push(tx.last_insert_rowid());
            }
        }
        tx.commit()?;
        Ok(ids)
    }

    /// Replaces a transaction (re-signed with another relayer nonce) in
    /// every job it carries.
    pub fn resign(&mut self, old: B256, relayer_nonce: u64, raw: &[u8], tx_hash: B256) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE jobs SET relayer_nonce = ?2, raw = ?3, tx_hash = ?4, updated_at = ?5 WHERE tx_hash = ?1",
            params![old.as_slice(), relayer_nonce as i64, raw, tx_hash.as_slice(), now()],
        )?;
        Ok(())
    }

    /// Records what became of jobs, in one commit.
    pub fn settle(&mut self, outcomes: &[(i64, JobStatus)]) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        {
            let mut update = tx.prepare_cached(
                "UPDATE jobs SET status = ?2, block_number = ?3, error = ?4, updated_at = ?5 WHERE id = ?1",
            )?;
            let now = now();
            for (id, status) in outcomes {
                let (name, block, error) = match status {
                    JobStatus::Sent => ("sent", None, None),
                    JobStatus::Mined { block_number } => ("mined", Some(*block_number as i64), None),
                    JobStatus::Reverted { block_number, error } => {
                        ("reverted", Some(*block_number as i64), Some(error.as_str()))
                    }
                    JobStatus::Failed { error } => ("failed", None, Some(error.as_str())),
                };
                update.execute(params![id, name, block, error, now])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Jobs sent but not seen mined, in relayer nonce order (a bundle's in
    /// call order).
    pub fn unsettled(&self) -> Result<Vec<Job>, StoreError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {COLUMNS} FROM jobs WHERE status = 'sent' ORDER BY relayer_nonce, tx_hash, bundle_index, id"
        ))?;
        let jobs = stmt.query_map([], job_from_row)?.collect::<Result<_, _>>()?;
        Ok(jobs)
    }

    /// The jobs a transaction carries, in call order.
    pub fn jobs_of(&self, tx_hash: B256) -> Result<Vec<Job>, StoreError> {
        let mut stmt =
            self.conn.prepare(&format!("SELECT {COLUMNS} FROM jobs WHERE tx_hash = ?1 ORDER BY bundle_index, id"))?;
        let jobs = stmt.query_map([tx_hash.as_slice()], job_from_row)?.collect::<Result<_, _>>()?;
        Ok(jobs)
    }

    /// The newest job whose call input hashes to `input_hash`.
    pub fn find(&self, input_hash: B256) -> Result<Option<i64>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT id FROM jobs WHERE input_hash = ?1 ORDER BY id DESC LIMIT 1",
                [input_hash.as_slice()],
                |r| r.get(0),
            )
            .optional()?)
    }

    pub fn job(&self, id: i64) -> Result<Option<Job>, StoreError> {
        Ok(self.conn.query_row(&format!("SELECT {COLUMNS} FROM jobs WHERE id = ?1"), [id], job_from_row).optional()?)
    }

    /// Highest relayer nonce any job was signed with.
    pub fn highest_nonce(&self) -> Result<Option<u64>, StoreError> {
        let n: Option<i64> = self.conn.query_row("SELECT max(relayer_nonce) FROM jobs", [], |r| r.get(0))?;
        Ok(n.map(|n| n as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(input: &[u8], nonce: u64) -> NewJob {
        NewJob {
            function: "grant".into(),
            signer: Address::repeat_byte(1),
            target: Address::repeat_byte(2),
            input: input.to_vec(),
            gas_limit: 100_000,
            relayer_nonce: nonce,
            raw: vec![nonce as u8],
            tx_hash: B256::repeat_byte(nonce as u8),
            bundle_index: None,
        }
    }

    /// A request is acknowledged only once its journal entry is fsync'd.
    #[test]
    fn commits_are_durable() {
        let dir = tempfile::tempdir().unwrap();
        let store = JobStore::open(&dir.path().join("relayer.sqlite3")).unwrap();
        crate::sqlite::assert_durable(&store.conn);
    }

    #[test]
    fn jobs_are_found_by_the_hash_of_their_input() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = JobStore::open(&dir.path().join("relayer.sqlite3")).unwrap();
        let ids = store.insert(&[job(b"first", 0), job(b"second", 1)]).unwrap();
        assert_eq!(store.find(keccak256(b"second")).unwrap(), Some(ids[1]));
        assert_eq!(store.find(keccak256(b"first")).unwrap(), Some(ids[0]));
        assert_eq!(store.find(keccak256(b"never sent")).unwrap(), None);
        // Sent again (a new job for the same call): the newest is found.
        let again = store.insert(&[job(b"first", 2)]).unwrap();
        assert_eq!(store.find(keccak256(b"first")).unwrap(), Some(again[0]));
    }
}
