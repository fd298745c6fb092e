//! Someone's signed directory entry, for a caller allowed to see it.

use chartkey_api::{ApiError, PublicKeysOf};
use chartkey_core::role::Role;
use chartkey_core::value::Address;

use crate::accounts::directory_entry;
use crate::caller::Caller;
use crate::state::AppState;
use crate::{chain, db};

/// The Directory contract is the source of truth: an account must be
/// registered there, with the role and key of the entry the server
/// serves (which the browser verifies against the account's own
/// signature). A disagreement is refused and logged.
///
/// Clinicians, authorities and verifiers are public; a patient's name
/// and keys go only to the patient and to clinicians the patient has
/// shared with (to anyone else the address is unknown here, whatever
/// the ledger says of it).
pub async fn lookup(state: &AppState, c: &Caller, address: Address) -> Result<PublicKeysOf, ApiError> {
    let caller_id = c.require_session()?.account_id.clone();
    let unknown = || ApiError::NotFound("No account has that address.".into());
    let row = state
        .db
        .call(move |conn| {
            let Some(row) = db::account_by_address(conn, &address)? else { return Ok(None) };
            if Role::parse(&row.role) != Some(Role::Patient) || row.id == caller_id {
                return Ok(Some(row));
            }
            let shared = conn
                .prepare_cached("SELECT 1 FROM grants WHERE patient_id = ?1 AND grantee_id = ?2 LIMIT 1")?
                .exists([&row.id, &caller_id])?;
            Ok(shared.then_some(row))
        })
        .await?
        .ok_or_else(unknown)?;
    let entry = directory_entry(&row)?;
    let on_chain = chain::account_on_chain(state, address).await?;
    match on_chain {
        None => Err(ApiError::NotFound("That account is not registered on the ledger.".into())),
        Some((role, key)) if role != entry.role.code() || key != row.encryption_key.0 => {
            tracing::error!(account = %row.id, "the ledger's Directory and the server's entry disagree");
            Err(ApiError::Conflict(
                "The ledger and this server disagree about this account's keys, so they are not shown.".into(),
            ))
        }
        Some(_) => Ok(PublicKeysOf { display_name: row.display_name.clone(), entry }),
    }
}
