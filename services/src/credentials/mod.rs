//! Clinician credentials: a clinician's request to an authority, the
//! authority's desk (issue, decline, revoke), and finding clinicians with
//! what the ledger says of them.
//!
//! The ledger holds the credential; the server keeps only the requests
//! (the licence number is professional data, never health data) and reads
//! every badge from the Directory contract when it answers.

use chartkey_api::{
    ApiError, AuthorityDesk, AuthorityInfo, ClinicianCard, CredentialRequestBody, CredentialRequestView,
    CredentialStatus, IssueCredentialBody, License, MAX_CREDENTIAL_FIELD_CHARS, MyVerification, RelayReceipt,
    RequestState, RevokeCredentialBody, license_id_hash,
};
use chartkey_core::eip712::bytes32_text;
use chartkey_core::role::Role;
use chartkey_core::value::Address;
use chartkey_ledger::abi::ChartkeyDirectory;
use chartkey_ledger::calls::Target;
use chartkey_ledger::convert;
use chartkey_ledger::relayer::Request;
pub mod store;

use self::store::RequestRow;
use super::chain::{caller_as, next_nonce, own_message, relay_and_wait, settled, view};
use crate::accounts::store::{self as accounts, AccountRow};
use crate::caller::Caller;
use crate::db;
use crate::state::AppState;

/// Longest a credential may run from its issue, in seconds (five years).
pub const MAX_CREDENTIAL_SECONDS: u64 = 5 * 366 * 86_400;
/// Most clinicians one search answers.
const SEARCH_LIMIT: usize = 20;
/// Most decided requests an authority's desk lists.
const DECIDED_SHOWN: usize = 100;

pub async fn mine(state: &AppState, c: &Caller) -> Result<MyVerification, ApiError> {
    let (account, _) = caller_as(state, c, Role::Clinician, "Only a clinician asks to be verified.").await?;
    let me = card(state, &account).await?;
    let latest = store::latest(&state.pool, &account.id).await?;
    let request = match latest {
        Some(row) => Some(request_view(state, row).await?),
        None => None,
    };
    Ok(MyVerification { me, request, authorities: authorities(state).await? })
}

pub async fn request(state: &AppState, c: &Caller, body: CredentialRequestBody) -> Result<MyVerification, ApiError> {
    let (account, _) = caller_as(state, c, Role::Clinician, "Only a clinician asks to be verified.").await?;
    let given = &body.license;
    let license = License {
        license_number: field("licence number", &given.license_number)?,
        specialty: field("specialty", &given.specialty)?,
        jurisdiction: field("jurisdiction", &given.jurisdiction)?,
        organisation: field("organisation", &given.organisation)?,
    };
    if bytes32_text(&license.specialty).is_none() {
        return Err(ApiError::bad_request("The specialty must fit in 32 bytes: use a shorter name."));
    }
    let lookup = body.authority;
    let authority = accounts::by_address(&state.pool, &lookup)
        .await?
        .filter(|a| Role::parse(&a.role) == Some(Role::CredentialingAuthority))
        .ok_or_else(|| ApiError::NotFound("No credentialing authority has this address here.".into()))?;
    if !is_authority(state, authority.address).await? {
        return Err(ApiError::bad_request(
            "This authority has not been named by the server's operator yet, so it cannot verify anyone.",
        ));
    }
    let new = store::NewRequest { clinician_id: account.id.clone(), authority_id: authority.id.clone(), license };
    let inserted = store::insert(&state.pool, new).await?;
    if !inserted {
        return Err(ApiError::Conflict(
            "You already have a request waiting for an authority's decision. Wait for it, or ask the authority.".into(),
        ));
    }
    tracing::info!(account = %account.id, "credential requested");
    mine(state, c).await
}

pub async fn desk(state: &AppState, c: &Caller) -> Result<AuthorityDesk, ApiError> {
    let (account, address) =
        caller_as(state, c, Role::CredentialingAuthority, "Only a credentialing authority has a desk.").await?;
    let named = is_authority(state, account.address).await?;
    let next_nonce = next_nonce(state, Target::Directory, ChartkeyDirectory::noncesCall { owner: address }).await?;
    let next_nonce = u64::try_from(next_nonce).map_err(|_| super::chain::corrupt("nonces"))?;
    let rows = store::to_authority(&state.pool, &account.id, (DECIDED_SHOWN + 500) as i64).await?;
    let (mut pending, mut decided) = (Vec::new(), Vec::new());
    for row in rows {
        let view = request_view(state, row).await?;
        match view.state {
            RequestState::Pending => pending.push(view),
            _ if decided.len() < DECIDED_SHOWN => decided.push(view),
            _ => {}
        }
    }
    Ok(AuthorityDesk {
        named,
        operator_command: format!("chartkey authority add {}", account.address),
        next_nonce,
        pending,
        decided,
    })
}

pub async fn issue(state: &AppState, c: &Caller, body: IssueCredentialBody) -> Result<RelayReceipt, ApiError> {
    let (account, address) =
        caller_as(state, c, Role::CredentialingAuthority, "Only a credentialing authority issues credentials.").await?;
    let signature = body.signature.0.to_vec();
    let m = &body.message;
    own_message(address, m.authority, "You can only issue credentials signed for your own account.")?;
    let row = pending_request(state, &account, body.request).await?;
    if row.clinician_address != m.clinician {
        return Err(ApiError::bad_request("The credential names another clinician than the request."));
    }
    if m.license_id_hash != license_id_hash(&row.license.license_number) {
        return Err(ApiError::bad_request("The credential's licence does not match the request's licence number."));
    }
    if Some(m.specialty) != bytes32_text(&row.license.specialty) {
        return Err(ApiError::bad_request("The credential's specialty does not match the request's."));
    }
    let now = db::now() as u64;
    if m.expires_at <= now {
        return Err(ApiError::bad_request("Choose an expiry date in the future."));
    }
    if m.expires_at > now + MAX_CREDENTIAL_SECONDS {
        return Err(ApiError::bad_request("A credential can run for at most five years."));
    }

    crate::chain::spend_relay(state, &account.id).await?;
    let request = Request::signed(m, signature);
    let function = request.function;
    // The request is marked issued once the credential is mined, even if
    // that is after this answer or after a restart; a refusal leaves it
    // pending.
    let work = super::pending::Work::Credential { request_id: row.id };
    let (job, tx_hash, settle) = super::pending::relay(state, request, work, None).await?;
    tracing::info!(job, request = row.id, function, "credential issue accepted");
    settled(state, settle, job, tx_hash).await
}

pub async fn decline(state: &AppState, c: &Caller, request: i64) -> Result<(), ApiError> {
    let (account, _) =
        caller_as(state, c, Role::CredentialingAuthority, "Only a credentialing authority decides requests.").await?;
    let row = pending_request(state, &account, request).await?;
    store::decline(&state.pool, row.id).await?;
    tracing::info!(request, "credential request declined");
    Ok(())
}

pub async fn revoke(state: &AppState, c: &Caller, body: RevokeCredentialBody) -> Result<RelayReceipt, ApiError> {
    let (account, address) =
        caller_as(state, c, Role::CredentialingAuthority, "Only a credentialing authority revokes credentials.")
            .await?;
    own_message(address, body.message.authority, "You can only revoke credentials with your own signature.")?;
    let signature = body.signature.0.to_vec();
    crate::chain::spend_relay(state, &account.id).await?;
    relay_and_wait(state, Request::signed(&body.message, signature)).await
}

pub async fn search(state: &AppState, c: &Caller, query: String) -> Result<Vec<ClinicianCard>, ApiError> {
    c.require_session()?;
    let query = query.trim().to_owned();
    if query.chars().count() > MAX_CREDENTIAL_FIELD_CHARS {
        return Err(ApiError::bad_request("Search for at most 80 characters."));
    }
    let found = accounts::search(&state.pool, "clinician", &query, SEARCH_LIMIT as i64).await?;
    let mut cards = Vec::with_capacity(found.len());
    for account in &found {
        cards.push(card(state, account).await?);
    }
    Ok(cards)
}

/// A clinician as others see them: profile from their latest request, badge
/// from the ledger.
pub(super) async fn card(state: &AppState, account: &AccountRow) -> Result<ClinicianCard, ApiError> {
    let profile = store::profile(&state.pool, &account.id).await?;
    let (specialty, organisation, jurisdiction) = match profile {
        Some((s, o, j)) => (Some(s), Some(o), Some(j)),
        None => (None, None, None),
    };
    Ok(ClinicianCard {
        address: account.address,
        display_name: account.display_name.clone(),
        specialty,
        organisation,
        jurisdiction,
        credential: credential_status(state, account.address).await?,
    })
}

/// What the Directory contract says of `clinician`'s credential now.
pub(super) async fn credential_status(state: &AppState, clinician: Address) -> Result<CredentialStatus, ApiError> {
    let clinician = convert::alloy(clinician);
    let ChartkeyDirectory::credentialOfReturn { authority, specialty, expiresAt: expires_at, revoked, .. } =
        view(state, Target::Directory, ChartkeyDirectory::credentialOfCall { clinician }).await?;
    if authority.is_zero() {
        return Ok(CredentialStatus::NotVerified);
    }
    let authority = convert::address(authority);
    let authority_name = accounts::by_address(&state.pool, &authority)
        .await?
        .map_or_else(|| format!("authority {}", authority.short()), |a| a.display_name);
    let specialty = String::from_utf8_lossy(specialty.as_slice()).trim_end_matches('\0').to_owned();
    Ok(if revoked {
        CredentialStatus::Revoked { authority, authority_name, specialty, expires_at }
    } else if expires_at <= db::now() as u64 {
        CredentialStatus::Expired { authority, authority_name, specialty, expires_at }
    } else if !is_authority(state, authority).await? {
        CredentialStatus::AuthorityRemoved { authority, authority_name, specialty, expires_at }
    } else {
        CredentialStatus::Verified { authority, authority_name, specialty, expires_at }
    })
}

/// The authorities named on the ledger, among this server's accounts.
async fn authorities(state: &AppState) -> Result<Vec<AuthorityInfo>, ApiError> {
    let all = accounts::search(&state.pool, "credentialing_authority", "", i64::MAX).await?;
    let mut named = Vec::new();
    for a in all {
        if is_authority(state, a.address).await? {
            named.push(AuthorityInfo { address: a.address, display_name: a.display_name });
        }
    }
    Ok(named)
}

async fn is_authority(state: &AppState, address: Address) -> Result<bool, ApiError> {
    let authority = convert::alloy(address);
    view(state, Target::Directory, ChartkeyDirectory::isAuthorityCall { authority }).await
}

/// A request's field, trimmed: present, not too long, no control characters.
fn field(name: &str, value: &str) -> Result<String, ApiError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(ApiError::bad_request(format!("Enter your {name}.")));
    }
    if value.chars().count() > MAX_CREDENTIAL_FIELD_CHARS {
        return Err(ApiError::bad_request(format!(
            "The {name} can be at most {MAX_CREDENTIAL_FIELD_CHARS} characters."
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(ApiError::bad_request(format!("The {name} contains characters that cannot be shown.")));
    }
    Ok(value.to_owned())
}

async fn request_view(state: &AppState, row: RequestRow) -> Result<CredentialRequestView, ApiError> {
    let clinician = accounts::by_id(&state.pool, &row.clinician_id).await?;
    let authority = accounts::by_id(&state.pool, &row.authority_id).await?;
    let (Some(clinician), Some(authority)) = (clinician, authority) else {
        return Err(super::chain::corrupt("credential request parties"));
    };
    Ok(CredentialRequestView {
        id: row.id,
        clinician: card(state, &clinician).await?,
        authority: AuthorityInfo { address: authority.address, display_name: authority.display_name },
        license: row.license,
        requested_at: row.requested_at,
        state: match row.decision.as_deref() {
            None => RequestState::Pending,
            Some("issued") => RequestState::Issued,
            Some(_) => RequestState::Declined,
        },
        decided_at: row.decided_at,
        decision_tx: row.decision_tx,
    })
}

/// `id`, if it is a pending request addressed to `authority`.
async fn pending_request(state: &AppState, authority: &AccountRow, id: i64) -> Result<RequestRow, ApiError> {
    store::pending(&state.pool, &authority.id, id)
        .await?
        .ok_or_else(|| ApiError::NotFound("No pending request of yours has this number.".into()))
}
