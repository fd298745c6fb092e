//! The shares' store: grants as relayed (the ledger decides whether one
//! still stands), the accesses the ledger recorded, and which records were
//! wrapped for whom.

use std::collections::HashMap;

use chartkey_api::{AccessView, SharedRecord};
use chartkey_core::value::{Address, Hash32};
use sqlx::Row;

use crate::store::{Pool, StoreError, flag, int};

/// Whose grants or accesses a list shows: the patient's own, or those
/// given to a clinician.
#[derive(Clone, Copy)]
pub enum Side {
    Patient,
    Grantee,
}

/// A stored grant, with its patient and how many records were wrapped for
/// its grantee.
pub struct GrantRow {
    pub patient: Address,
    pub patient_name: String,
    pub grantee_id: String,
    pub serial: u32,
    pub scope: u8,
    pub categories: u32,
    pub records: String,
    pub write: bool,
    pub expires_at: i64,
    pub granted_at: i64,
    pub grant_tx: Hash32,
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
        "SELECT p.address, p.display_name, g.grantee_id, g.serial, g.scope, g.categories, g.records, g.write,
                g.expires_at, g.created_at, g.grant_tx,
                (SELECT count(*) FROM record_keys k JOIN records r ON r.id = k.record_id
                  WHERE k.reader = e.address AND r.patient_id = g.patient_id)
         FROM grants g JOIN accounts p ON p.id = g.patient_id JOIN accounts e ON e.id = g.grantee_id
         WHERE {column} = $1 AND ($3 IS NULL OR g.patient_id = $3) AND g.serial = (
             SELECT max(serial) FROM grants WHERE patient_id = g.patient_id AND grantee_id = g.grantee_id)
         ORDER BY g.created_at DESC LIMIT $2"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).bind(limit).bind(patient_id).fetch_all(pool).await?;
    let grant = |r: &sqlx::any::AnyRow| -> Result<GrantRow, sqlx::Error> {
        Ok(GrantRow {
            patient: r.try_get(0)?,
            patient_name: r.try_get(1)?,
            grantee_id: r.try_get(2)?,
            serial: int(r, 3)?,
            scope: int(r, 4)?,
            categories: int(r, 5)?,
            records: r.try_get(6)?,
            write: flag(r, 7)?,
            expires_at: r.try_get(8)?,
            granted_at: r.try_get(9)?,
            grant_tx: r.try_get(10)?,
            keys: int(r, 11)?,
        })
    };
    Ok(rows.iter().map(grant).collect::<Result<_, _>>()?)
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
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).bind(limit).fetch_all(pool).await?;
    let access = |r: &sqlx::any::AnyRow| -> Result<AccessView, sqlx::Error> {
        Ok(AccessView {
            grantee: r.try_get(0)?,
            grantee_name: r.try_get(1)?,
            patient: r.try_get(2)?,
            patient_name: r.try_get(3)?,
            record: r.try_get(4)?,
            category: int(r, 5)?,
            at: r.try_get(6)?,
            tx: r.try_get(7)?,
            block: int(r, 8)?,
        })
    };
    Ok(rows.iter().map(access).collect::<Result<_, _>>()?)
}

/// Patient `patient_id`'s records wrapped for `reader`, newest first.
pub async fn wrapped_for(pool: &Pool, patient_id: &str, reader: &Address) -> Result<Vec<SharedRecord>, StoreError> {
    let rows = sqlx::query(
        "SELECT r.id, r.category, r.created_at FROM records r
         JOIN record_keys k ON k.record_id = r.id AND k.reader = $2
         WHERE r.patient_id = $1
         ORDER BY r.created_at DESC, r.batch_root, r.leaf_index",
    )
    .bind(patient_id)
    .bind(reader)
    .fetch_all(pool)
    .await?;
    let record = |r: &sqlx::any::AnyRow| -> Result<SharedRecord, sqlx::Error> {
        Ok(SharedRecord { id: r.try_get(0)?, category: int(r, 1)?, created_at: r.try_get(2)? })
    };
    Ok(rows.iter().map(record).collect::<Result<_, _>>()?)
}

/// The scope (kind and categories) of each clinician's newest grant from
/// patient `patient_id`, by the clinician's address.
pub async fn scopes(pool: &Pool, patient_id: &str) -> Result<HashMap<Address, (u8, u32)>, StoreError> {
    let rows = sqlx::query(
        "SELECT e.address, g.scope, g.categories FROM grants g JOIN accounts e ON e.id = g.grantee_id
         WHERE g.patient_id = $1 AND g.serial = (
             SELECT max(serial) FROM grants WHERE patient_id = g.patient_id AND grantee_id = g.grantee_id)",
    )
    .bind(patient_id)
    .fetch_all(pool)
    .await?;
    let scope = |r: &sqlx::any::AnyRow| -> Result<(Address, (u8, u32)), sqlx::Error> {
        Ok((r.try_get(0)?, (int(r, 1)?, int(r, 2)?)))
    };
    Ok(rows.iter().map(scope).collect::<Result<_, _>>()?)
}
