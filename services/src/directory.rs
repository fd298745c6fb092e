//! Someone's signed directory entry, for a caller allowed to see it.

use chartkey_api::{ApiError, PublicKeysOf};
use chartkey_core::value::Address;

use crate::accounts::{self, directory_entry};
use crate::caller::Caller;
use crate::chain;
use crate::state::AppState;

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
    let row = accounts::store::visible_by_address(&state.pool, &address, &caller_id).await?.ok_or_else(unknown)?;
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
