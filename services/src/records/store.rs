//! The records' store: each record's row (its envelope's name, its place
//! in a batch, its anchor), the data keys wrapped for its readers, and who
//! uploaded which envelope.

use std::collections::HashSet;

use chartkey_api::NewRecord;
use chartkey_core::envelope::{RecordId, WrappedKey};
use chartkey_core::value::{Address, Hash32, Signature};
use sqlx::AnyConnection;

use crate::db::now;
use crate::store::{Pool, StoreError};

/// Ids bound in one `IN (…)` list: well under every engine's limit on
/// parameters, and few statements for a whole import.
const CHUNK: usize = 500;

/// `$first, $first+1, …` for `n` values.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// A record of a chart as its reader sees it.
#[derive(sqlx::FromRow)]
pub struct RecordRow {
    pub id: RecordId,
    pub blob: Hash32,
    #[sqlx(try_from = "i64")]
    pub size: u64,
    #[sqlx(try_from = "i64")]
    pub category: u8,
    pub author: Address,
    pub author_name: String,
    pub amends: Option<RecordId>,
    pub batch_root: Option<Hash32>,
    pub leaf_index: Option<i64>,
    pub batch_size: Option<i64>,
    pub signature: Signature,
    pub anchor_job: i64,
    pub anchor_tx: Option<Hash32>,
    pub anchor_block: Option<i64>,
    pub created_at: i64,
    pub wrapped_key: Option<WrappedKey>,
}

/// The records of `patient_id`'s chart with the data key wrapped for
/// `reader`, if any, newest first (a batch in leaf order). With `only`,
/// that record, its corrections and the rest of its batch.
pub async fn chart(
    pool: &Pool,
    patient_id: &str,
    reader: &Address,
    only: Option<RecordId>,
) -> Result<Vec<RecordRow>, StoreError> {
    let rows = sqlx::query_as(
        "SELECT r.id, r.blob, r.size, r.category, a.address AS author, a.display_name AS author_name, r.amends,
                r.batch_root, r.leaf_index, r.batch_size, r.signature, r.anchor_job,
                NULLIF(r.anchor_tx, '') AS anchor_tx, r.anchor_block, r.created_at, k.wrapped_key
         FROM records r JOIN accounts a ON a.id = r.author_id
         LEFT JOIN record_keys k ON k.record_id = r.id AND k.reader = $2
         WHERE r.patient_id = $1
           AND ($3 IS NULL OR r.id = $3 OR r.amends = $3
                OR r.batch_root = (SELECT batch_root FROM records WHERE id = $3))
         ORDER BY r.created_at DESC, r.batch_root, r.leaf_index",
    )
    .bind(patient_id)
    .bind(reader)
    .bind(only)
    .fetch_all(pool)
    .await?;
    Ok(rows)
}

/// Which of `keys` `select` finds: `select` ends in `IN`, and `$1` is
/// `account_id` when given; the keys are bound in chunks after it.
async fn among<T>(pool: &Pool, select: &str, account_id: Option<&str>, keys: &[T]) -> Result<HashSet<T>, StoreError>
where
    T: Copy + Eq + std::hash::Hash + Send + Unpin + 'static + sqlx::Type<sqlx::Any>,
    T: for<'q> sqlx::Encode<'q, sqlx::Any> + for<'r> sqlx::Decode<'r, sqlx::Any>,
{
    let mut found = HashSet::new();
    let first = 1 + usize::from(account_id.is_some());
    for chunk in keys.chunks(CHUNK) {
        let sql = format!("{select} ({})", placeholders(first, chunk.len()));
        let mut query = sqlx::query_scalar::<_, T>(sqlx::AssertSqlSafe(sql));
        if let Some(account_id) = account_id {
            query = query.bind(account_id);
        }
        for key in chunk {
            query = query.bind(*key);
        }
        found.extend(query.fetch_all(pool).await?);
    }
    Ok(found)
}

/// Which of `ids` are records already.
pub async fn existing(pool: &Pool, ids: &[RecordId]) -> Result<HashSet<RecordId>, StoreError> {
    among(pool, "SELECT id FROM records WHERE id IN", None, ids).await
}

/// Which of `blobs` a record already names.
pub async fn anchored_blobs(pool: &Pool, blobs: &[Hash32]) -> Result<HashSet<Hash32>, StoreError> {
    among(pool, "SELECT blob FROM records WHERE blob IN", None, blobs).await
}

/// Which of `blobs` `account_id` uploaded.
pub async fn uploaded_by(pool: &Pool, account_id: &str, blobs: &[Hash32]) -> Result<HashSet<Hash32>, StoreError> {
    among(pool, "SELECT blob FROM blob_uploads WHERE account_id = $1 AND blob IN", Some(account_id), blobs).await
}

/// Whether record `id` is in `patient_id`'s chart.
pub async fn in_chart(pool: &Pool, patient_id: &str, id: RecordId) -> Result<bool, StoreError> {
    let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM records WHERE id = $1 AND patient_id = $2")
        .bind(id)
        .bind(patient_id)
        .fetch_optional(pool)
        .await?;
    Ok(found.is_some())
}

/// New records of one anchoring message, as their rows are written.
pub struct NewRecords {
    pub patient_id: String,
    pub author_id: String,
    /// The ledger addresses the author's and the patient's keys are
    /// wrapped for.
    pub patient: Address,
    pub author: Address,
    /// The author's signature of the anchoring message.
    pub signature: Signature,
    /// The batch's Merkle root (two or more records).
    pub batch_root: Option<Hash32>,
    /// Each record as the author sent it, with its envelope's size.
    pub records: Vec<(NewRecord, u64)>,
}

/// Rows one multi-row `INSERT` writes. Each statement is a round trip to
/// the database's thread, and a long one costs SQLite more to prepare
/// (once per connection and length): 1,111 records' rows took 105 ms in
/// statements of 200, 33 ms in statements of 50 (with the values all
/// rows share bound once), 40–270 ms one by one.
const ROWS: usize = 50;

/// `($first, …), (…), …`: `rows` rows of `columns` placeholders.
fn value_rows(first: usize, columns: usize, rows: usize) -> String {
    (0..rows).map(|r| format!("({})", placeholders(first + r * columns, columns))).collect::<Vec<_>>().join(", ")
}

/// Writes `new`'s rows on `conn` (inside the caller's transaction), not yet
/// journalled: anchor job 0, no transaction.
pub(crate) async fn insert(conn: &mut AnyConnection, new: &NewRecords) -> Result<(), sqlx::Error> {
    let now = now();
    let count = new.records.len() as i64;
    let batch_size = new.batch_root.map(|_| count);
    for (c, chunk) in new.records.chunks(ROWS).enumerate() {
        // What all rows share is bound once ($1…$6); each row brings its
        // own six values (`VALUES` names its columns column1… on both
        // engines).
        let sql = format!(
            "INSERT INTO records (id, patient_id, author_id, blob, size, category, amends, batch_root, leaf_index,
                batch_size, signature, anchor_job, anchor_tx, created_at)
             SELECT v.column1, $1, $2, v.column2, v.column3, v.column4, v.column5, $3, v.column6, $4, $5, 0, '', $6
             FROM (VALUES {}) AS v",
            value_rows(7, 6, chunk.len())
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(new.patient_id.as_str())
            .bind(new.author_id.as_str())
            .bind(new.batch_root)
            .bind(batch_size)
            .bind(new.signature)
            .bind(now);
        for (j, (r, size)) in chunk.iter().enumerate() {
            let index = new.batch_root.map(|_| (c * ROWS + j) as i64);
            query =
                query.bind(r.id).bind(r.blob).bind(*size as i64).bind(i16::from(r.category)).bind(r.amends).bind(index);
        }
        query.execute(&mut *conn).await?;
    }
    let keys: Vec<(RecordId, &Address, &WrappedKey)> = new
        .records
        .iter()
        .flat_map(|(r, _)| {
            let own = std::iter::once((r.id, &new.author, &r.wrapped_key));
            let patient = r.patient_wrapped_key.as_ref().map(|k| (r.id, &new.patient, k));
            own.chain(patient).chain(r.also.iter().map(move |k| (r.id, &k.reader, &k.wrapped_key)))
        })
        .collect();
    insert_keys(conn, &keys, now).await
}

/// Stores each `(record, reader, key)`: the record's data key wrapped for
/// the reader, replacing one given before.
pub(crate) async fn insert_keys(
    conn: &mut AnyConnection,
    keys: &[(RecordId, &Address, &WrappedKey)],
    now: i64,
) -> Result<(), sqlx::Error> {
    for chunk in keys.chunks(ROWS) {
        let sql = format!(
            "INSERT INTO record_keys (record_id, reader, wrapped_key, created_at) VALUES {}
             ON CONFLICT (record_id, reader) DO UPDATE SET wrapped_key = excluded.wrapped_key,
                 created_at = excluded.created_at",
            value_rows(1, 4, chunk.len())
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (record, reader, key) in chunk {
            query = query.bind(*record).bind(**reader).bind((*key).clone()).bind(now);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Records that the anchor of records `ids` was journalled as `job`
/// (transaction `tx`), for those not told so yet.
pub async fn journalled(pool: &Pool, ids: &[RecordId], job: i64, tx: Hash32) -> Result<(), StoreError> {
    let mut t = pool.begin().await?;
    set_anchor(&mut t, ids, job, tx, None).await?;
    t.commit().await?;
    Ok(())
}

/// Gives records `ids` their anchor: the relayer's `job` and transaction
/// `tx`, for those not journalled yet (anchor job 0); with `block`, the
/// block it was mined in, for all of them. A chunk of ids per statement.
pub(crate) async fn set_anchor(
    conn: &mut AnyConnection,
    ids: &[RecordId],
    job: i64,
    tx: Hash32,
    block: Option<i64>,
) -> Result<(), sqlx::Error> {
    for chunk in ids.chunks(CHUNK) {
        let sql = match block {
            None => format!(
                "UPDATE records SET anchor_job = $1, anchor_tx = $2 WHERE anchor_job = 0 AND id IN ({})",
                placeholders(3, chunk.len())
            ),
            Some(_) => format!(
                "UPDATE records SET anchor_job = $1, anchor_tx = $2, anchor_block = $3 WHERE id IN ({})",
                placeholders(4, chunk.len())
            ),
        };
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(job).bind(tx);
        if let Some(block) = block {
            query = query.bind(block);
        }
        for id in chunk {
            query = query.bind(*id);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Records that records anchored by `job` were mined in `block`.
pub async fn mined(pool: &Pool, job: i64, block: u64) -> Result<(), StoreError> {
    sqlx::query("UPDATE records SET anchor_block = $1 WHERE anchor_job = $2")
        .bind(block as i64)
        .bind(job)
        .execute(pool)
        .await?;
    Ok(())
}

/// The records anchored by `job`.
pub async fn of_job(pool: &Pool, job: i64) -> Result<Vec<RecordId>, StoreError> {
    Ok(sqlx::query_scalar("SELECT id FROM records WHERE anchor_job = $1").bind(job).fetch_all(pool).await?)
}

/// Removes records `ids` and their keys (their anchor never reached the
/// ledger); how many records went.
pub async fn remove(pool: &Pool, ids: &[RecordId]) -> Result<u64, StoreError> {
    let mut t = pool.begin().await?;
    let mut removed = 0;
    for chunk in ids.chunks(CHUNK) {
        let list = placeholders(1, chunk.len());
        let mut keys = sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM record_keys WHERE record_id IN ({list})")));
        let mut rows = sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM records WHERE id IN ({list})")));
        for id in chunk {
            keys = keys.bind(*id);
            rows = rows.bind(*id);
        }
        keys.execute(&mut *t).await?;
        removed += rows.execute(&mut *t).await?.rows_affected();
    }
    t.commit().await?;
    Ok(removed)
}

/// Records `account_id` as an uploader of each `(blob, size)`.
pub async fn note_uploads(pool: &Pool, account_id: &str, blobs: &[(Hash32, u64)]) -> Result<(), StoreError> {
    let mut t = pool.begin().await?;
    let now = now();
    for chunk in blobs.chunks(ROWS) {
        let sql = format!(
            "INSERT INTO blob_uploads (blob, account_id, size, created_at) VALUES {}
             ON CONFLICT (blob, account_id) DO NOTHING",
            value_rows(1, 4, chunk.len())
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (blob, size) in chunk {
            query = query.bind(*blob).bind(account_id).bind(*size as i64).bind(now);
        }
        query.execute(&mut *t).await?;
    }
    t.commit().await?;
    Ok(())
}

/// The bytes `account_id` has uploaded, each envelope once.
pub async fn uploaded_bytes(pool: &Pool, account_id: &str) -> Result<u64, StoreError> {
    // A sum is NUMERIC on PostgreSQL, which `Any` does not decode.
    let used: i64 =
        sqlx::query_scalar("SELECT CAST(coalesce(sum(size), 0) AS BIGINT) FROM blob_uploads WHERE account_id = $1")
            .bind(account_id)
            .fetch_one(pool)
            .await?;
    Ok(used.max(0) as u64)
}

/// What releasing a record's envelope to an account depends on.
pub enum Release {
    /// The account is the record's patient.
    Own(Hash32),
    /// Someone else's record the account opened (the ledger recorded its
    /// access) since the time asked about: the envelope, and the patient's
    /// and the account's addresses for asking the ledger again.
    Opened { blob: Hash32, patient: Address, grantee: Address },
}

/// For each of `ids` that is `account_id`'s own record, or (unless
/// `own_only`) one whose access by `account_id` the ledger recorded at or
/// after `since`: what its release depends on, in the order asked.
pub async fn releasable(
    pool: &Pool,
    account_id: &str,
    ids: &[RecordId],
    since: i64,
    own_only: bool,
) -> Result<Vec<(RecordId, Release)>, StoreError> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(CHUNK) {
        let sql = format!(
            "SELECT id, blob, CASE WHEN patient_id = $1 THEN 1 ELSE 0 END FROM records WHERE id IN ({})",
            placeholders(2, chunk.len())
        );
        let mut query =
            sqlx::query_as::<_, (RecordId, Hash32, crate::store::Flag)>(sqlx::AssertSqlSafe(sql)).bind(account_id);
        for id in chunk {
            query = query.bind(*id);
        }
        let found: std::collections::HashMap<RecordId, (Hash32, bool)> =
            query.fetch_all(pool).await?.into_iter().map(|(id, blob, own)| (id, (blob, own.into()))).collect();
        let others: Vec<RecordId> =
            chunk.iter().filter(|id| found.get(id).is_some_and(|(_, own)| !own)).copied().collect();
        let mut opened = std::collections::HashMap::new();
        if !own_only && !others.is_empty() {
            let sql = format!(
                "SELECT x.record_id, p.address, g.address FROM accesses x
                 JOIN accounts p ON p.id = x.patient_id JOIN accounts g ON g.id = x.grantee_id
                 WHERE x.grantee_id = $1 AND x.at >= $2 AND x.record_id IN ({})",
                placeholders(3, others.len())
            );
            let mut query = sqlx::query_as::<_, (RecordId, Address, Address)>(sqlx::AssertSqlSafe(sql))
                .bind(account_id)
                .bind(since);
            for id in &others {
                query = query.bind(*id);
            }
            opened.extend(
                query.fetch_all(pool).await?.into_iter().map(|(id, patient, grantee)| (id, (patient, grantee))),
            );
        }
        for id in chunk {
            match (found.get(id), opened.get(id)) {
                (Some((blob, true)), _) => out.push((*id, Release::Own(*blob))),
                (Some((blob, false)), Some((patient, grantee))) => {
                    out.push((*id, Release::Opened { blob: *blob, patient: *patient, grantee: *grantee }))
                }
                _ => {}
            }
        }
    }
    Ok(out)
}
