//! The credential requests' store: a clinician's requests to an authority
//! and the authority's decisions (the credential itself is on the ledger).

use crate::db::now;
use crate::store::{Pool, StoreError};
use chartkey_api::License;
use chartkey_core::value::{Address, Hash32};

/// A request row with the clinician's address.
#[derive(sqlx::FromRow)]
pub struct RequestRow {
    pub id: i64,
    pub clinician_id: String,
    pub clinician_address: Address,
    pub authority_id: String,
    #[sqlx(flatten)]
    pub license: License,
    pub requested_at: i64,
    pub decision: Option<String>,
    pub decided_at: Option<i64>,
    pub decision_tx: Option<Hash32>,
}

/// A clinician's request as they fill it in.
pub struct NewRequest {
    pub clinician_id: String,
    pub authority_id: String,
    pub license: License,
}

const REQUEST_SELECT: &str = "SELECT r.id, r.clinician_id, c.address AS clinician_address, r.authority_id,
        r.license_number, r.specialty,
        r.jurisdiction, r.organisation, r.requested_at, r.decision, r.decided_at, r.decision_tx
    FROM credential_requests r JOIN accounts c ON c.id = r.clinician_id";

/// The requests `condition` selects (with `$1`, `$2` bound to `first` and
/// `second`).
async fn requests(pool: &Pool, condition: &str, first: &str, second: i64) -> Result<Vec<RequestRow>, StoreError> {
    let sql = format!("{REQUEST_SELECT} {condition}");
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(first).bind(second).fetch_all(pool).await?)
}

/// The clinician's latest request.
pub async fn latest(pool: &Pool, clinician_id: &str) -> Result<Option<RequestRow>, StoreError> {
    let found = requests(pool, "WHERE r.clinician_id = $1 ORDER BY r.id DESC LIMIT $2", clinician_id, 1).await?;
    Ok(found.into_iter().next())
}

/// Requests to `authority_id`, waiting ones first, then newest first.
pub async fn to_authority(pool: &Pool, authority_id: &str, limit: i64) -> Result<Vec<RequestRow>, StoreError> {
    let condition =
        "WHERE r.authority_id = $1 ORDER BY CASE WHEN r.decision IS NULL THEN 0 ELSE 1 END, r.id DESC LIMIT $2";
    requests(pool, condition, authority_id, limit).await
}

/// Request `id`, if it waits for `authority_id`'s decision.
pub async fn pending(pool: &Pool, authority_id: &str, id: i64) -> Result<Option<RequestRow>, StoreError> {
    let condition = "WHERE r.authority_id = $1 AND r.id = $2 AND r.decision IS NULL";
    Ok(requests(pool, condition, authority_id, id).await?.into_iter().next())
}

/// Stores a request; `false` when the clinician already has one waiting.
pub async fn insert(pool: &Pool, r: NewRequest) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "INSERT INTO credential_requests
            (clinician_id, authority_id, license_number, specialty, jurisdiction, organisation, requested_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
    )
    .bind(r.clinician_id)
    .bind(r.authority_id)
    .bind(r.license.license_number)
    .bind(r.license.specialty)
    .bind(r.license.jurisdiction)
    .bind(r.license.organisation)
    .bind(now())
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn decline(pool: &Pool, id: i64) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE credential_requests SET decision = 'declined', decided_at = $1 WHERE id = $2 AND decision IS NULL",
    )
    .bind(now())
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}

/// What a clinician said of themselves (specialty, organisation,
/// jurisdiction) in the request an authority issued, else the latest.
pub async fn profile(pool: &Pool, clinician_id: &str) -> Result<Option<(String, String, String)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT specialty, organisation, jurisdiction FROM credential_requests
         WHERE clinician_id = $1 ORDER BY CASE WHEN decision = 'issued' THEN 0 ELSE 1 END, id DESC LIMIT 1",
    )
    .bind(clinician_id)
    .fetch_optional(pool)
    .await?)
}
