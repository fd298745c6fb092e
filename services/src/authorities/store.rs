//! The authority changes' store: the operator's requests to name (or no
//! longer name) a credentialing authority, and what became of each.

use chartkey_core::role::Role;
use chartkey_core::value::Address;

use crate::db::now;
use crate::store::{Flag, Pool, StoreError};

/// The display name and role of the account at `address`, if any.
pub async fn account(pool: &Pool, address: &Address) -> Result<Option<(String, Option<Role>)>, StoreError> {
    let row: Option<(String, String)> = sqlx::query_as("SELECT display_name, role FROM accounts WHERE address = $1")
        .bind(address)
        .fetch_optional(pool)
        .await?;
    Ok(row.map(|(name, role)| (name, Role::parse(&role))))
}

/// Records a change; its id.
pub async fn request(pool: &Pool, address: &Address, enabled: bool) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(
        "INSERT INTO authority_changes (address, enabled, requested_at) VALUES ($1, $2, $3) RETURNING id",
    )
    .bind(address)
    .bind(i16::from(enabled))
    .bind(now())
    .fetch_one(pool)
    .await?)
}

/// Change `id`: when it was applied, its transaction and its error.
pub async fn change(pool: &Pool, id: i64) -> Result<Option<(Option<i64>, Option<String>, Option<String>)>, StoreError> {
    Ok(sqlx::query_as("SELECT applied_at, tx, error FROM authority_changes WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?)
}

/// The changes not applied yet, oldest first.
pub async fn waiting(pool: &Pool) -> Result<Vec<(i64, Address, bool)>, StoreError> {
    let rows: Vec<(i64, Address, Flag)> =
        sqlx::query_as("SELECT id, address, enabled FROM authority_changes WHERE applied_at IS NULL ORDER BY id")
            .fetch_all(pool)
            .await?;
    Ok(rows.into_iter().map(|(id, address, enabled)| (id, address, enabled.into())).collect())
}

/// Records what became of change `id`: its transaction, or the ledger's
/// refusal.
pub async fn applied(pool: &Pool, id: i64, tx: Option<&str>, error: Option<&str>) -> Result<(), StoreError> {
    sqlx::query("UPDATE authority_changes SET applied_at = $1, tx = $2, error = $3 WHERE id = $4")
        .bind(now())
        .bind(tx)
        .bind(error)
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}
