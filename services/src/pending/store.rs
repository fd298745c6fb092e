//! The pending store: work written before a request reaches the relayer,
//! done (and its row deleted) in one transaction once the ledger answers.

use chartkey_api::NoticeView;
use chartkey_core::value::{Address, Hash32};

use super::Work;
use crate::db::now;
use crate::notices::store::NewNotice;
use crate::records::store::{self as records, NewRecords};
use crate::store::{Pool, StoreError};

/// Writes `work` for the request whose call input hashes to `input_hash`,
/// to be relayed by `relayer` (whose journal will hold it), and `rows` (a
/// new record's rows) in the same transaction: both or neither. The
/// pending row's id.
pub async fn insert(
    pool: &Pool,
    relayer: Address,
    input_hash: &[u8],
    work: &str,
    rows: Option<&NewRecords>,
) -> Result<i64, StoreError> {
    let mut t = pool.begin().await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO pending_relays (input_hash, work, created_at, relayer) VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(input_hash.to_vec())
    .bind(work)
    .bind(now())
    .bind(relayer)
    .fetch_one(&mut *t)
    .await?;
    if let Some(rows) = rows {
        records::insert(&mut t, rows).await?;
    }
    t.commit().await?;
    Ok(id)
}

/// Deletes pending row `id` (its request was not accepted, or refused).
pub async fn forget(pool: &Pool, id: i64) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM pending_relays WHERE id = $1").bind(id).execute(pool).await?;
    Ok(())
}

/// How a request was mined.
pub struct Mined {
    pub job: i64,
    pub tx: Hash32,
    pub block: i64,
    /// A grant's serial, from its `Granted` event.
    pub serial: Option<u32>,
}

/// Does the work of pending row `id`, mined as `mined`, records `notice`
/// and deletes the row, in one transaction: a restart never finds the
/// work done and its notice missing. The notice as its reader sees it, if
/// one was recorded (none when another task did the work already).
pub async fn apply(
    pool: &Pool,
    id: i64,
    work: &Work,
    mined: &Mined,
    notice: Option<NewNotice<'_>>,
) -> Result<Option<NoticeView>, StoreError> {
    let mut t = pool.begin().await?;
    if sqlx::query("DELETE FROM pending_relays WHERE id = $1").bind(id).execute(&mut *t).await?.rows_affected() == 0 {
        return Ok(None);
    }
    let now = now();
    match work {
        Work::Grant {
            patient_id,
            grantee_id,
            grantee_address,
            scope,
            categories,
            records,
            write,
            expires_at,
            keys,
        } => {
            let serial = mined.serial.ok_or(StoreError::Row("grant serial"))?;
            sqlx::query(
                "INSERT INTO grants (patient_id, grantee_id, serial, scope, categories, records, write, expires_at,
                    grant_tx, grant_block, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                 ON CONFLICT (patient_id, grantee_id, serial) DO UPDATE SET scope = excluded.scope,
                    categories = excluded.categories, records = excluded.records, write = excluded.write,
                    expires_at = excluded.expires_at, grant_tx = excluded.grant_tx,
                    grant_block = excluded.grant_block, created_at = excluded.created_at",
            )
            .bind(patient_id.as_str())
            .bind(grantee_id.as_str())
            .bind(i64::from(serial))
            .bind(i16::from(*scope))
            .bind(i64::from(*categories))
            .bind(records.as_str())
            .bind(i16::from(*write))
            .bind(*expires_at)
            .bind(mined.tx)
            .bind(mined.block)
            .bind(now)
            .execute(&mut *t)
            .await?;
            let keys: Vec<_> = keys.iter().map(|(record, key)| (*record, grantee_address, key)).collect();
            records::insert_keys(&mut t, &keys, now).await?;
        }
        Work::Access { patient_id, grantee_id, record, .. } => {
            sqlx::query(
                "INSERT INTO accesses (patient_id, grantee_id, record_id, tx, block, at) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(patient_id.as_str())
            .bind(grantee_id.as_str())
            .bind(*record)
            .bind(mined.tx)
            .bind(mined.block)
            .bind(now)
            .execute(&mut *t)
            .await?;
        }
        Work::Anchor { ids, .. } => records::set_anchor(&mut t, ids, mined.job, mined.tx, Some(mined.block)).await?,
        Work::LinkUse { link_id, use_id, recipient, salt, .. } => {
            sqlx::query(
                "INSERT INTO link_uses (use_id, link_id, recipient, salt, tx, block, at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(*use_id)
            .bind(*link_id)
            .bind(recipient.as_str())
            .bind(*salt)
            .bind(mined.tx)
            .bind(mined.block)
            .bind(now)
            .execute(&mut *t)
            .await?;
        }
        Work::Emergency { patient_id, contact_id, step, named } => {
            if let Some(named) = named {
                sqlx::query(
                    "INSERT INTO emergency_contacts (patient_id, contact_id, wait_seconds, summary_id, summary_blob,
                        wrapped_key, named_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)
                     ON CONFLICT (patient_id, contact_id) DO UPDATE SET wait_seconds = excluded.wait_seconds,
                        summary_id = excluded.summary_id, summary_blob = excluded.summary_blob,
                        wrapped_key = excluded.wrapped_key, named_at = excluded.named_at, removed_at = NULL",
                )
                .bind(patient_id.as_str())
                .bind(contact_id.as_str())
                .bind(i64::from(named.wait_seconds))
                .bind(named.summary.id)
                .bind(named.summary.blob)
                .bind(named.summary.wrapped_key.clone())
                .bind(now)
                .execute(&mut *t)
                .await?;
            }
            if *step == chartkey_api::EmergencyStep::Removed {
                sqlx::query("UPDATE emergency_contacts SET removed_at = $1 WHERE patient_id = $2 AND contact_id = $3")
                    .bind(now)
                    .bind(patient_id.as_str())
                    .bind(contact_id.as_str())
                    .execute(&mut *t)
                    .await?;
            }
            sqlx::query(
                "INSERT INTO emergency_events (patient_id, contact_id, step, tx, block, at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(patient_id.as_str())
            .bind(contact_id.as_str())
            .bind(crate::emergency::store::step_text(*step))
            .bind(mined.tx)
            .bind(mined.block)
            .bind(now)
            .execute(&mut *t)
            .await?;
        }
        Work::Credential { request_id } => {
            sqlx::query(
                "UPDATE credential_requests SET decision = 'issued', decided_at = $1, decision_tx = $2
                 WHERE id = $3 AND decision IS NULL",
            )
            .bind(now)
            .bind(mined.tx)
            .bind(*request_id)
            .execute(&mut *t)
            .await?;
        }
    }
    let notice = match notice {
        Some(notice) => {
            // What happened is on the ledger and in the chart; a notice that
            // cannot be recorded does not hold that back.
            let mut savepoint = sqlx::Acquire::begin(&mut t).await?;
            match crate::notices::store::insert(&mut savepoint, notice).await {
                Ok(view) => {
                    savepoint.commit().await?;
                    Some(view)
                }
                Err(e) => {
                    savepoint.rollback().await?;
                    tracing::error!(error = %e, "recording a notice failed");
                    None
                }
            }
        }
        None => None,
    };
    t.commit().await?;
    Ok(notice)
}

/// The rows a crash of `relayer`'s server left (another replica's are its
/// own to pick up): id, input hash and work, oldest first.
pub async fn leftovers(pool: &Pool, relayer: Address) -> Result<Vec<(i64, Vec<u8>, String)>, StoreError> {
    Ok(sqlx::query_as("SELECT id, input_hash, work FROM pending_relays WHERE relayer = $1 OR relayer = '' ORDER BY id")
        .bind(relayer)
        .fetch_all(pool)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Replicas share the database: each picks up only what its own
    /// relayer journalled (and rows from before relayers were named).
    #[tokio::test]
    async fn a_replica_picks_up_only_its_own_rows() {
        let (_dir, pool) = crate::accounts::store::tests::pool().await;
        let (mine, theirs) = (Address([0xa1; 20]), Address([0xb2; 20]));
        let own = insert(&pool, mine, &[1; 32], "{}", None).await.unwrap();
        insert(&pool, theirs, &[2; 32], "{}", None).await.unwrap();
        sqlx::query("INSERT INTO pending_relays (input_hash, work, created_at) VALUES ($1, '{}', 0)")
            .bind(vec![3u8; 32])
            .execute(&pool)
            .await
            .unwrap();
        let left: Vec<Vec<u8>> = leftovers(&pool, mine).await.unwrap().into_iter().map(|(_, hash, _)| hash).collect();
        assert_eq!(left, vec![vec![1u8; 32], vec![3u8; 32]]);
        forget(&pool, own).await.unwrap();
        assert_eq!(leftovers(&pool, theirs).await.unwrap().len(), 2, "theirs and the unnamed one");
    }
}
