//! The shares' store: grants as relayed (the ledger decides whether one
//! still stands), the accesses the ledger recorded, and which records were
//! wrapped for whom.

use std::collections::HashMap;

use crate::store::{Flag, Pool, StoreError, narrow};
use chartkey_api::{AccessView, SharedRecord};
use chartkey_core::envelope::RecordId;
use chartkey_core::value::{Address, Hash32};

/// Whose grants or accesses a list shows: the patient's own, or those
/// given to a clinician.
#[derive(Clone, Copy)]
pub enum Side {
    Patient,
    Grantee,
}

/// A stored grant, with its patient and how many records were wrapped for
/// its grantee.
#[derive(sqlx::FromRow)]
pub struct GrantRow {
    pub patient: Address,
    pub patient_name: String,
    pub grantee_id: String,
    #[sqlx(try_from = "i64")]
    pub serial: u32,
    #[sqlx(try_from = "i64")]
    pub scope: u8,
    #[sqlx(try_from = "i64")]
    pub categories: u32,
    pub records: String,
    #[sqlx(try_from = "Flag")]
    pub write: bool,
    pub expires_at: i64,
    pub granted_at: i64,
    pub grant_tx: Hash32,
    #[sqlx(try_from = "i64")]
    pub keys: u32,
}

/// The newest grant of each pair on `side` of account `id` (and of patient
/// `patient_id`, if given): the one the ledger holds.
pub async fn grants(
    pool: &Pool,
    side: Side,
    id: &str,
    patient_id: Option<&str>,
    limit: i64,
) -> Result<Vec<GrantRow>, StoreError> {
    let column = match side {
        Side::Patient => "g.patient_id",
        Side::Grantee => "g.grantee_id",
    };
    let sql = format!(
        "SELECT p.address AS patient, p.display_name AS patient_name, g.grantee_id, g.serial, g.scope,
                g.categories, g.records, g.write, g.expires_at, g.created_at AS granted_at, g.grant_tx,
                (SELECT count(*) FROM record_keys k JOIN records r ON r.id = k.record_id
                  WHERE k.reader = e.address AND r.patient_id = g.patient_id) AS keys
         FROM grants g JOIN accounts p ON p.id = g.patient_id JOIN accounts e ON e.id = g.grantee_id
         WHERE {column} = $1 AND ($3 IS NULL OR g.patient_id = $3) AND g.serial = (
             SELECT max(serial) FROM grants WHERE patient_id = g.patient_id AND grantee_id = g.grantee_id)
         ORDER BY g.created_at DESC LIMIT $2"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).bind(limit).bind(patient_id).fetch_all(pool).await?)
}

/// Whether patient `patient_id` ever shared with the clinician at `grantee`.
pub async fn ever_shared(pool: &Pool, patient_id: &str, grantee: &Address) -> Result<bool, StoreError> {
    let found: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM grants g JOIN accounts e ON e.id = g.grantee_id WHERE g.patient_id = $1 AND e.address = $2
         LIMIT 1",
    )
    .bind(patient_id)
    .bind(grantee)
    .fetch_optional(pool)
    .await?;
    Ok(found.is_some())
}

/// An access as listed: the grantee's address and name, the patient's,
/// the record and its category, time, transaction, block.
type AccessRow = (Address, String, Address, String, RecordId, i64, i64, Hash32, i64);

/// The newest accesses on `side` of account `id`.
pub async fn accesses(pool: &Pool, side: Side, id: &str, limit: i64) -> Result<Vec<AccessView>, StoreError> {
    let column = match side {
        Side::Patient => "a.patient_id",
        Side::Grantee => "a.grantee_id",
    };
    let sql = format!(
        "SELECT e.address, e.display_name, p.address, p.display_name, a.record_id, r.category, a.at, a.tx, a.block
         FROM accesses a JOIN accounts e ON e.id = a.grantee_id JOIN accounts p ON p.id = a.patient_id
         JOIN records r ON r.id = a.record_id
         WHERE {column} = $1 ORDER BY a.id DESC LIMIT $2"
    );
    let rows: Vec<AccessRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).bind(limit).fetch_all(pool).await?;
    let access = |(grantee, grantee_name, patient, patient_name, record, category, at, tx, block)| {
        Ok(AccessView {
            grantee,
            grantee_name,
            patient,
            patient_name,
            record,
            category: narrow(category)?,
            at,
            tx,
            block: narrow(block)?,
        })
    };
    rows.into_iter().map(access).collect()
}

/// Patient `patient_id`'s records wrapped for `reader`, newest first.
pub async fn wrapped_for(pool: &Pool, patient_id: &str, reader: &Address) -> Result<Vec<SharedRecord>, StoreError> {
    let rows: Vec<(RecordId, i64, i64)> = sqlx::query_as(
        "SELECT r.id, r.category, r.created_at FROM records r
         JOIN record_keys k ON k.record_id = r.id AND k.reader = $2
         WHERE r.patient_id = $1
         ORDER BY r.created_at DESC, r.batch_root, r.leaf_index",
    )
    .bind(patient_id)
    .bind(reader)
    .fetch_all(pool)
    .await?;
    let record = |(id, category, created_at)| Ok(SharedRecord { id, category: narrow(category)?, created_at });
    rows.into_iter().map(record).collect()
}

/// The scope (kind and categories) of each clinician's newest grant from
/// patient `patient_id`, by the clinician's address.
pub async fn scopes(pool: &Pool, patient_id: &str) -> Result<HashMap<Address, (u8, u32)>, StoreError> {
    let rows: Vec<(Address, i64, i64)> = sqlx::query_as(
        "SELECT e.address, g.scope, g.categories FROM grants g JOIN accounts e ON e.id = g.grantee_id
         WHERE g.patient_id = $1 AND g.serial = (
             SELECT max(serial) FROM grants WHERE patient_id = g.patient_id AND grantee_id = g.grantee_id)",
    )
    .bind(patient_id)
    .fetch_all(pool)
    .await?;
    let scope = |(reader, scope, categories)| Ok((reader, (narrow(scope)?, narrow(categories)?)));
    rows.into_iter().map(scope).collect()
}
