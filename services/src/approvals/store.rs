//! The approvals' store: each verified passkey approval, kept for audit.

use chartkey_core::value::Hash32;

use crate::store::{Pool, StoreError};

/// A verified approval: this assertion, under this passkey's key, approved
/// the message with this digest.
pub struct ApprovalRow<'a> {
    pub account_id: &'a str,
    pub digest: Hash32,
    pub nonce: Hash32,
    pub credential_id: &'a str,
    pub assertion: &'a str,
}

pub async fn insert(pool: &Pool, a: ApprovalRow<'_>) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO approvals (account_id, digest, nonce, credential_id, assertion, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(a.account_id)
    .bind(a.digest)
    .bind(a.nonce)
    .bind(a.credential_id)
    .bind(a.assertion)
    .bind(crate::db::now())
    .execute(pool)
    .await?;
    Ok(())
}
