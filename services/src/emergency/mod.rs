//! Emergency contacts (docs/links.md, "Emergency contacts"): invitations
//! by link, naming an accepted contact on the ledger with the patient's
//! summary wrapped to them, the contact's request, the patient's refusal
//! during the wait, and the contact's access after it. The ledger (the
//! Access contract) decides each step; the server releases the summary's
//! envelope and wrapped key only after it recorded the access.

pub mod store;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chartkey_api::{
    AcceptBody, Accepted, ApiError, Approved, EmergencyOpenBody, EmergencyOpened, EmergencyOverview, EmergencyPairView,
    EmergencyRefuseBody, EmergencyRemoveBody, EmergencyRequestBody, EmergencyState, EmergencyStep, Invitation,
    InvitationView, InviteBody, NameContactBody, RelayReceipt, Signed,
};
use chartkey_core::eip712::MAX_WAIT_SECONDS;
use chartkey_core::role::Role;
use chartkey_core::value::{Address, Hash32};
use chartkey_ledger::abi::ChartkeyAccess;
use chartkey_ledger::calls::{SignedCall, Target};
use chartkey_ledger::convert;
use chartkey_ledger::relayer::Request;
use sha2::{Digest, Sha256};

use self::store::ContactRow;
use super::chain::{caller, caller_as, corrupt, next_nonce, own_message, settled, view};
use super::links::access_domain;
use super::pending::{Named, Work};
use crate::accounts::store::AccountRow;
use crate::caller::Caller;
use crate::db;
use crate::state::AppState;

/// How long an invitation can be accepted.
pub const INVITATION_SECONDS: i64 = 7 * 24 * 3600;
const LISTED: i64 = 200;
const EVENTS_SHOWN: i64 = 50;

fn token_hash(token: Hash32) -> Hash32 {
    Hash32(Sha256::digest(token.0).into())
}

fn check_wait(wait_seconds: u32) -> Result<(), ApiError> {
    if wait_seconds > MAX_WAIT_SECONDS {
        return Err(ApiError::bad_request("The waiting period is at most 7 days."));
    }
    Ok(())
}

pub async fn invite(state: &AppState, c: &Caller, body: InviteBody) -> Result<Invitation, ApiError> {
    let (account, _) = caller_as(state, c, Role::Patient, "Only a patient invites emergency contacts.").await?;
    check_wait(body.wait_seconds)?;
    let token = Hash32(rand::random());
    let now = db::now();
    let expires_at = now + INVITATION_SECONDS;
    store::invite(&state.pool, token_hash(token), &account.id, body.wait_seconds, now, expires_at).await?;
    Ok(Invitation { token, expires_at })
}

pub async fn accept(state: &AppState, c: &Caller, body: AcceptBody) -> Result<Accepted, ApiError> {
    let (account, _) = caller(state, c).await?;
    let patient_id = store::accept(&state.pool, token_hash(body.token), &account.id, db::now())
        .await?
        .ok_or_else(|| ApiError::NotFound("This invitation is unknown, was used already, or has expired.".into()))?;
    let patient = account_by_id(state, &patient_id).await?;
    tracing::info!("emergency invitation accepted");
    Ok(Accepted { patient: patient.address, patient_name: patient.display_name })
}

async fn account_by_id(state: &AppState, id: &str) -> Result<AccountRow, ApiError> {
    crate::accounts::store::by_id(&state.pool, id).await?.ok_or_else(|| corrupt("account"))
}

async fn account_by_address(state: &AppState, address: Address, missing: &str) -> Result<AccountRow, ApiError> {
    crate::accounts::store::by_address(&state.pool, &address).await?.ok_or_else(|| ApiError::NotFound(missing.into()))
}

/// Relays a step of `patient_id` and `contact_id` with its bookkeeping as
/// pending work: the receipt once mined (or on its way).
async fn relay_step(
    state: &AppState,
    request: Request,
    patient_id: &str,
    contact_id: &str,
    step: EmergencyStep,
    named: Option<Named>,
) -> Result<RelayReceipt, ApiError> {
    let work = Work::Emergency { patient_id: patient_id.into(), contact_id: contact_id.into(), step, named };
    let (job, tx, settle) = super::pending::relay(state, request, work, None).await?;
    settled(state, settle, job, tx).await
}

pub async fn name(state: &AppState, c: &Caller, body: NameContactBody) -> Result<RelayReceipt, ApiError> {
    let (account, address) = caller_as(state, c, Role::Patient, "Only a patient names emergency contacts.").await?;
    let m = body.message;
    own_message(address, m.patient, "You can only name your own emergency contacts.")?;
    check_wait(m.wait_seconds)?;
    let contact = account_by_address(state, m.contact.into(), "No one with this address has an account here.").await?;
    let known = store::contact(&state.pool, &account.id, &contact.id).await?.is_some();
    if !known && !store::accepted(&state.pool, &account.id, &contact.id).await? {
        return Err(ApiError::Forbidden("Only someone who accepted your invitation can be named.".into()));
    }
    let blob = body.summary.blob;
    if crate::records::store::uploaded_by(&state.pool, &account.id, &[blob]).await?.is_empty() {
        return Err(ApiError::NotFound("Upload the summary for your contact first.".into()));
    }
    super::approvals::check(state, &account.id, &body.approval, access_domain(state).digest(&m)).await?;
    crate::chain::spend_relay(state, &account.id).await?;
    let named = Named { wait_seconds: m.wait_seconds, summary: body.summary };
    let request = Request::signed(&m, body.signature.0.to_vec());
    relay_step(state, request, &account.id, &contact.id, EmergencyStep::Named, Some(named)).await
}

/// The pair of patient `patient` (by address) and the signed-in contact,
/// while the contact is named.
async fn as_contact(state: &AppState, c: &Caller, patient: Address) -> Result<(AccountRow, ContactRow), ApiError> {
    let (account, _) = caller(state, c).await?;
    let not_named = || ApiError::NotFound("This patient has not named you as an emergency contact.".into());
    let patient = crate::accounts::store::by_address(&state.pool, &patient).await?.ok_or_else(not_named)?;
    let pair = store::contact(&state.pool, &patient.id, &account.id)
        .await?
        .filter(|p| p.removed_at.is_none())
        .ok_or_else(not_named)?;
    Ok((account, pair))
}

pub async fn request(state: &AppState, c: &Caller, body: EmergencyRequestBody) -> Result<RelayReceipt, ApiError> {
    let (patient, contact) = (body.message.patient, body.message.contact);
    contact_step(state, c, patient, contact, body, EmergencyStep::Requested).await.map(|(r, _)| r)
}

/// A step the named contact signed (`contact` must be the caller):
/// relayed, with its bookkeeping; the receipt and the pair.
async fn contact_step<M: SignedCall>(
    state: &AppState,
    c: &Caller,
    patient: ethers_core::types::Address,
    contact: ethers_core::types::Address,
    body: Signed<M>,
    step: EmergencyStep,
) -> Result<(RelayReceipt, ContactRow), ApiError> {
    let (account, pair) = as_contact(state, c, patient.into()).await?;
    if contact != account.address.into() {
        return Err(ApiError::Forbidden("You can only act as a contact with your own signature.".into()));
    }
    crate::chain::spend_relay(state, &account.id).await?;
    let request = Request::signed(&body.message, body.signature.0.to_vec());
    let receipt = relay_step(state, request, &pair.patient_id, &pair.contact_id, step, None).await?;
    Ok((receipt, pair))
}

pub async fn open(state: &AppState, c: &Caller, body: EmergencyOpenBody) -> Result<EmergencyOpened, ApiError> {
    let (patient, contact) = (body.message.patient, body.message.contact);
    let (receipt, pair) = contact_step(state, c, patient, contact, body, EmergencyStep::Accessed).await?;
    if !receipt.mined {
        return Err(ApiError::Conflict(
            "The ledger has not recorded this access yet, so nothing was released. Try again in a moment.".into(),
        ));
    }
    let envelope = state.blobs.get(&pair.summary.blob.into()).await.map_err(|e| {
        tracing::error!(error = %e, "reading an emergency summary failed");
        ApiError::Internal
    })?;
    tracing::info!(block = receipt.block_number, "emergency access recorded, summary released");
    Ok(EmergencyOpened {
        summary: pair.summary,
        envelope: URL_SAFE_NO_PAD.encode(&envelope),
        access_tx: receipt.tx_hash,
    })
}

/// The signed-in patient's pair with the contact at `contact`.
async fn as_patient(
    state: &AppState,
    c: &Caller,
    patient: Address,
    contact: Address,
) -> Result<(AccountRow, ContactRow), ApiError> {
    let (account, address) = caller_as(state, c, Role::Patient, "Only a patient answers emergency requests.").await?;
    own_message(address, patient.into(), "You can only answer for your own emergency contacts.")?;
    let not_named = || ApiError::NotFound("You have not named this emergency contact.".into());
    let contact = crate::accounts::store::by_address(&state.pool, &contact).await?.ok_or_else(not_named)?;
    let pair = store::contact(&state.pool, &account.id, &contact.id).await?.ok_or_else(not_named)?;
    Ok((account, pair))
}

pub async fn refuse(state: &AppState, c: &Caller, body: EmergencyRefuseBody) -> Result<RelayReceipt, ApiError> {
    let pair = (body.message.patient, body.message.contact);
    patient_step(state, c, pair, body, EmergencyStep::Refused).await
}

pub async fn remove(state: &AppState, c: &Caller, body: EmergencyRemoveBody) -> Result<RelayReceipt, ApiError> {
    let pair = (body.message.patient, body.message.contact);
    patient_step(state, c, pair, body, EmergencyStep::Removed).await
}

/// A step the patient signed and approved with a passkey (`body`) about the
/// contact they named: relayed, with its bookkeeping.
async fn patient_step<M: SignedCall>(
    state: &AppState,
    c: &Caller,
    (patient, contact): (ethers_core::types::Address, ethers_core::types::Address),
    body: Approved<M>,
    step: EmergencyStep,
) -> Result<RelayReceipt, ApiError> {
    let digest = access_domain(state).digest(&body.message);
    let (account, pair) = as_patient(state, c, patient.into(), contact.into()).await?;
    super::approvals::check(state, &account.id, &body.approval, digest).await?;
    crate::chain::spend_relay(state, &account.id).await?;
    let request = Request::signed(&body.message, body.signature.0.to_vec());
    relay_step(state, request, &pair.patient_id, &pair.contact_id, step, None).await
}

pub async fn overview(state: &AppState, c: &Caller) -> Result<EmergencyOverview, ApiError> {
    let (account, address) = caller(state, c).await?;
    let is_patient = Role::parse(&account.role) == Some(Role::Patient);
    let mut invitations = Vec::new();
    let mut contacts = Vec::new();
    if is_patient {
        for row in store::invitations(&state.pool, &account.id, LISTED).await? {
            let (contact, contact_name) = row.contact.map(|(a, n)| (Some(a), Some(n))).unwrap_or_default();
            invitations.push(InvitationView {
                wait_seconds: row.wait_seconds,
                created_at: row.created_at,
                expires_at: row.expires_at,
                contact,
                contact_name,
                accepted_at: row.accepted_at,
            });
        }
        for pair in store::pairs(&state.pool, &account.id, true, LISTED).await? {
            contacts.push(pair_view(state, pair).await?);
        }
    }
    let mut named_me = Vec::new();
    for pair in store::pairs(&state.pool, &account.id, false, LISTED).await? {
        named_me.push(pair_view(state, pair).await?);
    }
    let nonce = next_nonce(state, Target::Access, ChartkeyAccess::noncesCall { owner: address }).await?;
    let next_nonce = u64::try_from(nonce).map_err(|_| corrupt("nonces"))?;
    Ok(EmergencyOverview { invitations, contacts, named_me, next_nonce })
}

/// A pair as the ledger says it stands now.
async fn pair_view(state: &AppState, pair: ContactRow) -> Result<EmergencyPairView, ApiError> {
    let on_ledger = view(
        state,
        Target::Access,
        ChartkeyAccess::contactOfCall { patient: convert::alloy(pair.patient), contact: convert::alloy(pair.contact) },
    )
    .await?;
    let state_now = if !on_ledger.active {
        EmergencyState::Removed
    } else if on_ledger.requestedAt == 0 {
        EmergencyState::Named
    } else if (on_ledger.availableAt as i64) > db::now() {
        EmergencyState::Waiting { opens_at: on_ledger.availableAt as i64 }
    } else {
        EmergencyState::Open
    };
    Ok(EmergencyPairView {
        events: store::events(&state.pool, &pair.patient_id, &pair.contact_id, EVENTS_SHOWN).await?,
        patient: pair.patient,
        patient_name: pair.patient_name,
        contact: pair.contact,
        contact_name: pair.contact_name,
        wait_seconds: pair.wait_seconds,
        state: state_now,
        serial: on_ledger.serial,
    })
}
