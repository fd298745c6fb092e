//! The emergency store: invitations (by the SHA-256 of their secret), the
//! contacts the ledger recorded as named with the summary kept for each,
//! and every step the ledger recorded.

use chartkey_api::{EmergencyEventView, EmergencyStep, SummaryForContact};
use chartkey_core::envelope::{RecordId, WrappedKey};
use chartkey_core::value::{Address, Hash32};

use crate::store::{Pool, StoreError, narrow};

pub fn step_text(step: EmergencyStep) -> &'static str {
    match step {
        EmergencyStep::Named => "named",
        EmergencyStep::Requested => "requested",
        EmergencyStep::Refused => "refused",
        EmergencyStep::Accessed => "accessed",
        EmergencyStep::Removed => "removed",
    }
}

fn step_of(text: &str) -> Result<EmergencyStep, StoreError> {
    [
        EmergencyStep::Named,
        EmergencyStep::Requested,
        EmergencyStep::Refused,
        EmergencyStep::Accessed,
        EmergencyStep::Removed,
    ]
    .into_iter()
    .find(|s| step_text(*s) == text)
    .ok_or(StoreError::Row("emergency step"))
}

pub async fn invite(
    pool: &Pool,
    token_hash: Hash32,
    patient_id: &str,
    wait_seconds: u32,
    now: i64,
    expires_at: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO emergency_invitations (token_hash, patient_id, wait_seconds, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(token_hash)
    .bind(patient_id)
    .bind(i64::from(wait_seconds))
    .bind(now)
    .bind(expires_at)
    .execute(pool)
    .await?;
    Ok(())
}

/// Accepts the unexpired, unanswered invitation `token_hash` for
/// `contact_id` (one atomic update: an invitation is accepted once); the
/// inviting patient's id.
pub async fn accept(pool: &Pool, token_hash: Hash32, contact_id: &str, now: i64) -> Result<Option<String>, StoreError> {
    Ok(sqlx::query_scalar(
        "UPDATE emergency_invitations SET contact_id = $1, accepted_at = $2
         WHERE token_hash = $3 AND contact_id IS NULL AND expires_at > $2 AND patient_id <> $1
         RETURNING patient_id",
    )
    .bind(contact_id)
    .bind(now)
    .bind(token_hash)
    .fetch_optional(pool)
    .await?)
}

/// Whether `contact_id` accepted an invitation of `patient_id`.
pub async fn accepted(pool: &Pool, patient_id: &str, contact_id: &str) -> Result<bool, StoreError> {
    let n: i64 =
        sqlx::query_scalar("SELECT count(*) FROM emergency_invitations WHERE patient_id = $1 AND contact_id = $2")
            .bind(patient_id)
            .bind(contact_id)
            .fetch_one(pool)
            .await?;
    Ok(n > 0)
}

/// A patient's invitation as listed.
pub struct InvitationRow {
    pub wait_seconds: u32,
    pub created_at: i64,
    pub expires_at: i64,
    pub contact: Option<(Address, String)>,
    pub accepted_at: Option<i64>,
}

pub async fn invitations(pool: &Pool, patient_id: &str, limit: i64) -> Result<Vec<InvitationRow>, StoreError> {
    type Row = (i64, i64, i64, Option<Address>, Option<String>, Option<i64>);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT i.wait_seconds, i.created_at, i.expires_at, a.address, a.display_name, i.accepted_at
         FROM emergency_invitations i LEFT JOIN accounts a ON a.id = i.contact_id
         WHERE i.patient_id = $1 ORDER BY i.created_at DESC LIMIT $2",
    )
    .bind(patient_id)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|(wait, created_at, expires_at, address, name, accepted_at)| {
            Ok(InvitationRow {
                wait_seconds: narrow(wait)?,
                created_at,
                expires_at,
                contact: address.zip(name),
                accepted_at,
            })
        })
        .collect()
}

/// A named contact with the summary kept for them.
pub struct ContactRow {
    pub patient_id: String,
    pub contact_id: String,
    pub patient: Address,
    pub patient_name: String,
    pub contact: Address,
    pub contact_name: String,
    pub wait_seconds: u32,
    pub summary: SummaryForContact,
    pub removed_at: Option<i64>,
}

type ContactTuple = (String, String, Address, String, Address, String, i64, RecordId, Hash32, WrappedKey, Option<i64>);

const CONTACT_SELECT: &str = "SELECT c.patient_id, c.contact_id, p.address, p.display_name, k.address, k.display_name,
        c.wait_seconds, c.summary_id, c.summary_blob, c.wrapped_key, c.removed_at
 FROM emergency_contacts c JOIN accounts p ON p.id = c.patient_id JOIN accounts k ON k.id = c.contact_id";

fn contact_of(row: ContactTuple) -> Result<ContactRow, StoreError> {
    let (patient_id, contact_id, patient, patient_name, contact, contact_name, wait, id, blob, key, removed_at) = row;
    Ok(ContactRow {
        patient_id,
        contact_id,
        patient,
        patient_name,
        contact,
        contact_name,
        wait_seconds: narrow(wait)?,
        summary: SummaryForContact { id, blob, wrapped_key: key },
        removed_at,
    })
}

pub async fn contact(pool: &Pool, patient_id: &str, contact_id: &str) -> Result<Option<ContactRow>, StoreError> {
    let sql = format!("{CONTACT_SELECT} WHERE c.patient_id = $1 AND c.contact_id = $2");
    let row: Option<ContactTuple> =
        sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(patient_id).bind(contact_id).fetch_optional(pool).await?;
    row.map(contact_of).transpose()
}

/// The pairs where `account_id` is the patient (`as_patient`) or the contact.
pub async fn pairs(pool: &Pool, account_id: &str, as_patient: bool, limit: i64) -> Result<Vec<ContactRow>, StoreError> {
    let column = if as_patient { "c.patient_id" } else { "c.contact_id" };
    let sql = format!("{CONTACT_SELECT} WHERE {column} = $1 ORDER BY c.named_at DESC LIMIT $2");
    let rows: Vec<ContactTuple> =
        sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(account_id).bind(limit).fetch_all(pool).await?;
    rows.into_iter().map(contact_of).collect()
}

/// The pair's steps, newest first.
pub async fn events(
    pool: &Pool,
    patient_id: &str,
    contact_id: &str,
    limit: i64,
) -> Result<Vec<EmergencyEventView>, StoreError> {
    let rows: Vec<(String, i64, Hash32)> = sqlx::query_as(
        "SELECT step, at, tx FROM emergency_events WHERE patient_id = $1 AND contact_id = $2
         ORDER BY id DESC LIMIT $3",
    )
    .bind(patient_id)
    .bind(contact_id)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(|(step, at, tx)| Ok(EmergencyEventView { step: step_of(&step)?, at, tx })).collect()
}
