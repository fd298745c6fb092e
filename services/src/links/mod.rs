//! SMART Health Links, the patient's side: making a link (its files
//! encrypted in the browser with a key the server never sees), listing
//! links with their uses, changing a link's expiry or a long-term link's
//! files, and stopping one. Each change is the patient's signed message,
//! approved with a passkey and recorded on the ledger (the Access contract);
//! the receiver's side, the manifest protocol, is in [`manifest`].

pub mod manifest;
pub mod store;

use std::collections::HashSet;

use axum::body::Bytes;
use chartkey_api::{ApiError, LinkCreateBody, LinkFileUpload, LinkRevokeBody, LinkUpdateBody, LinkView, RelayReceipt};
use chartkey_core::eip712::Domain;
use chartkey_core::role::Role;
use chartkey_core::shl::{self, Flags};
use chartkey_core::value::Hash32;
use chartkey_ledger::abi::ChartkeyAccess;
use chartkey_ledger::calls::Target;
use chartkey_ledger::convert::to_alloy;
use chartkey_ledger::relayer::Request;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use self::store::{FileRow, LinkRow};
use super::chain::{caller, caller_as, corrupt, own_message, relay_and_wait};
use crate::blobs::BlobName;
use crate::caller::Caller;
use crate::db;
use crate::state::AppState;

/// Most files one link carries.
pub const MAX_FILES: usize = 20;
/// Most a link's files may hold together (JWE text).
pub const MAX_LINK_BYTES: usize = 48 * 1024 * 1024;
/// The longest passcode accepted.
pub const MAX_PASSCODE_CHARS: usize = 256;
/// Links one list answers, and uses shown per link.
const LISTED: i64 = 500;
const USES_SHOWN: i64 = 100;

/// What a link's files may hold (the IG's content types).
const CONTENT_TYPES: [&str; 3] = [shl::FHIR_JSON, "application/smart-health-card", "application/smart-api-access"];

pub async fn create(state: &AppState, c: &Caller, body: LinkCreateBody) -> Result<LinkView, ApiError> {
    let (account, address) = caller_as(state, c, Role::Patient, "Only a patient makes links to their records.").await?;
    let link = body.link;
    own_message(address, link.patient, "You can only make links to your own records.")?;
    if to_alloy(link.host) != state.ledger.relayer.address() {
        return Err(ApiError::bad_request("The link names another host than this server's relayer."));
    }
    let flags = Flags::from_bits(link.flags)
        .ok_or_else(|| ApiError::bad_request("A link cannot both ask for a passcode and be a direct file."))?;
    match (&body.passcode, flags.passcode) {
        (Some(p), true) if !p.is_empty() && p.chars().count() <= MAX_PASSCODE_CHARS => {}
        (Some(_), true) => {
            return Err(ApiError::bad_request(format!("A passcode is 1 to {MAX_PASSCODE_CHARS} characters.")));
        }
        (None, true) => return Err(ApiError::bad_request("This link asks for a passcode: give one.")),
        (Some(_), false) => return Err(ApiError::bad_request("A passcode was given for a link that asks for none.")),
        (None, false) => {}
    }
    if flags.direct && body.files.len() != 1 {
        return Err(ApiError::bad_request("A direct-file link carries exactly one file."));
    }
    let files = check_files(&body.files, link.content_hash)?;
    let now = db::now();
    if link.expires_at != 0 && link.expires_at as i64 <= now {
        return Err(ApiError::bad_request("The link's expiry has passed already."));
    }
    let id = Hash32(link.link_id);
    if store::by_id(&state.pool, id).await?.is_some() {
        return Err(ApiError::Conflict("A link with this id exists already.".into()));
    }
    super::approvals::check(state, &account.id, &body.approval, access_domain(state).digest(&link)).await?;
    crate::chain::spend_relay(state, &account.id).await?;

    store_files(state, &account.id, &body.files, &files).await?;
    let row = LinkRow {
        id,
        account_id: account.id.clone(),
        flags: link.flags,
        expires_at: (link.expires_at != 0).then_some(link.expires_at as i64),
        passcode_hash: body.passcode.as_deref().map(|p| passcode_hash(state, id, p)),
        attempts_left: state.config.link_passcode_attempts,
        sealed: serde_json::to_string(&body.sealed).map_err(|_| ApiError::Internal)?,
        content_hash: Hash32(link.content_hash),
        created_at: now,
        revoked_at: None,
    };
    if !store::insert(&state.pool, &row, &files).await? {
        return Err(ApiError::Conflict("A link with this id exists already.".into()));
    }
    // The row goes before the ledger: a use is logged on the ledger first,
    // so a link the ledger never recorded answers nothing.
    let signature = body.signature.0.to_vec();
    match relay_and_wait(state, Request::signed(&link, signature)).await {
        Ok(receipt) => {
            if receipt.mined {
                store::created(&state.pool, id, receipt.tx_hash).await?;
            }
            tracing::info!(files = files.len(), mined = receipt.mined, "link created");
            view(state, address, row).await
        }
        Err(e) => {
            // Refused by the ledger: the link will never exist there. Any
            // other failure may still be mined later: the row stays (a use
            // is logged on the ledger first, so it answers nothing until).
            if matches!(e, ApiError::Refused { .. }) {
                store::remove(&state.pool, id).await?;
            }
            Err(e)
        }
    }
}

/// Checks uploaded files (count, size, content type, JWE shape) against
/// the content hash the patient signed; their rows, in order.
fn check_files(files: &[LinkFileUpload], signed: [u8; 32]) -> Result<Vec<FileRow>, ApiError> {
    if files.is_empty() || files.len() > MAX_FILES {
        return Err(ApiError::bad_request(format!("A link carries 1 to {MAX_FILES} files.")));
    }
    if files.iter().map(|f| f.jwe.len()).sum::<usize>() > MAX_LINK_BYTES {
        return Err(ApiError::bad_request("A link's files may hold at most 48 MB together."));
    }
    let mut rows = Vec::with_capacity(files.len());
    for f in files {
        if !CONTENT_TYPES.contains(&f.content_type.as_str()) {
            return Err(ApiError::bad_request("A link's file must hold FHIR, a health card or an API access."));
        }
        let cty = shl::check_jwe(&f.jwe).map_err(|e| ApiError::bad_request(e.to_string()))?;
        if cty.as_deref() != Some(f.content_type.as_str()) {
            return Err(ApiError::bad_request("A file's encrypted header names another content type."));
        }
        let blob: [u8; 32] = Sha256::digest(f.jwe.as_bytes()).into();
        rows.push(FileRow { content_type: f.content_type.clone(), blob: Hash32(blob), size: f.jwe.len() as i64 });
    }
    if shl::content_hash(files.iter().map(|f| (f.content_type.as_str(), f.jwe.as_str()))) != signed {
        return Err(ApiError::bad_request("The files are not the ones the signed link names."));
    }
    Ok(rows)
}

/// Puts the files' JWEs in the blob store under the SHA-256 `check_files`
/// computed (`rows`, in the same order), within the account's storage
/// quota, and counts them against it as any upload.
async fn store_files(
    state: &AppState,
    account_id: &str,
    files: &[LinkFileUpload],
    rows: &[FileRow],
) -> Result<(), ApiError> {
    let mut seen = HashSet::new();
    let blobs: Vec<(BlobName, Bytes)> = files
        .iter()
        .zip(rows)
        .map(|(f, row)| (BlobName::from(row.blob), Bytes::from(f.jwe.clone())))
        .filter(|(name, _)| seen.insert(*name))
        .collect();
    let adding: u64 = blobs.iter().map(|(_, b)| b.len() as u64).sum();
    let used = crate::records::store::uploaded_bytes(&state.pool, account_id).await?;
    let quota = state.config.storage_quota_bytes;
    if used.saturating_add(adding) > quota {
        let mb = |b: u64| b.div_ceil(1_000_000);
        return Err(ApiError::OverQuota(format!(
            "Your storage is full: {} MB of your {} MB are used and this link needs {} MB more. Nothing was made.",
            mb(used),
            mb(quota),
            mb(adding)
        )));
    }
    let sizes: Vec<(Hash32, u64)> = blobs.iter().map(|(n, b)| (n.hash(), b.len() as u64)).collect();
    state.blobs.put_many(blobs).await.map_err(|e| {
        tracing::error!(error = %e, "storing a link's files failed");
        ApiError::Internal
    })?;
    crate::records::store::note_uploads(&state.pool, account_id, &sizes).await?;
    Ok(())
}

/// HMAC-SHA256 of the link's id and passcode under the server's link key
/// (keys/link-passcode.key): cheap to check, useless without that key.
pub(crate) fn passcode_hash(state: &AppState, id: Hash32, passcode: &str) -> Hash32 {
    Hash32(passcode_mac(state, id, passcode).finalize().into_bytes().into())
}

fn passcode_mac(state: &AppState, id: Hash32, passcode: &str) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(state.link_key.as_bytes()).expect("HMAC takes any key length");
    mac.update(&id.0);
    mac.update(passcode.as_bytes());
    mac
}

/// Whether `passcode` is link `id`'s (compared in constant time).
pub(crate) fn passcode_matches(state: &AppState, id: Hash32, stored: Hash32, passcode: &str) -> bool {
    passcode_mac(state, id, passcode).verify_slice(&stored.0).is_ok()
}

pub async fn list(state: &AppState, c: &Caller) -> Result<Vec<LinkView>, ApiError> {
    let (account, address) = caller(state, c).await?;
    let mut links = Vec::new();
    for row in store::of_account(&state.pool, &account.id, LISTED).await? {
        links.push(view(state, address, row).await?);
    }
    Ok(links)
}

/// A link as the patient sees it. Its serial (the next change's nonce) is
/// the ledger's (0 while the ledger does not hold it yet): a change mined
/// after its request stopped waiting moved it on there, and stopping the
/// link must still be possible.
async fn view(state: &AppState, patient: alloy_primitives::Address, row: LinkRow) -> Result<LinkView, ApiError> {
    let call = ChartkeyAccess::linkOfCall { patient, linkId: row.id.0.into() };
    let on_ledger = super::chain::view(state, Target::Access, call).await?;
    let files = store::files(&state.pool, row.id).await?;
    Ok(LinkView {
        link_id: row.id,
        sealed: serde_json::from_str(&row.sealed).map_err(|_| corrupt("sealed link"))?,
        flags: row.flags,
        expires_at: row.expires_at.map(|at| at as u64),
        serial: on_ledger.serial,
        files: files.len() as u32,
        bytes: files.iter().map(|f| f.size as u64).sum(),
        created_at: row.created_at,
        revoked_at: row.revoked_at,
        attempts_left: row.passcode_hash.is_some().then_some(row.attempts_left),
        uses: store::uses(&state.pool, row.id, USES_SHOWN).await?,
    })
}

/// The caller's own link `id`, or 404.
async fn own_link(state: &AppState, account_id: &str, id: Hash32) -> Result<LinkRow, ApiError> {
    store::by_id(&state.pool, id)
        .await?
        .filter(|row| row.account_id == account_id)
        .ok_or_else(|| ApiError::NotFound("You have no such link.".into()))
}

pub async fn update(state: &AppState, c: &Caller, body: LinkUpdateBody) -> Result<LinkView, ApiError> {
    let (account, address) = caller_as(state, c, Role::Patient, "Only a patient changes their links.").await?;
    let m = body.message;
    own_message(address, m.patient, "You can only change your own links.")?;
    let id = Hash32(m.link_id);
    let row = own_link(state, &account.id, id).await?;
    if row.revoked_at.is_some() {
        return Err(ApiError::Conflict("This link was stopped; make a new one.".into()));
    }
    let new_files = match (body.files.is_empty(), m.content_hash == [0; 32]) {
        (true, true) => None,
        (false, false) => {
            if row.flags & chartkey_core::eip712::FLAG_LONG_TERM == 0 {
                return Err(ApiError::bad_request("Only a long-term link's content can change."));
            }
            if row.flags & chartkey_core::eip712::FLAG_DIRECT != 0 && body.files.len() != 1 {
                return Err(ApiError::bad_request("A direct-file link carries exactly one file."));
            }
            Some(check_files(&body.files, m.content_hash)?)
        }
        _ => return Err(ApiError::bad_request("New files and the signed content hash go together.")),
    };
    super::approvals::check(state, &account.id, &body.approval, access_domain(state).digest(&m)).await?;
    crate::chain::spend_relay(state, &account.id).await?;
    if let Some(rows) = &new_files {
        store_files(state, &account.id, &body.files, rows).await?;
    }
    let expires_at = (m.expires_at != 0).then_some(m.expires_at as i64);
    let signature = body.signature.0.to_vec();
    let receipt = relay_and_wait(state, Request::signed(&m, signature)).await?;
    if !receipt.mined {
        return Err(ApiError::Conflict(
            "The ledger has not recorded this change yet; the link stays as it was until it does.".into(),
        ));
    }
    // Mined: the link now serves this.
    let content = new_files.as_deref().map(|files| (Hash32(m.content_hash), files));
    store::update(&state.pool, id, expires_at, content).await?;
    let row = store::by_id(&state.pool, id).await?.ok_or_else(|| corrupt("updated link"))?;
    view(state, address, row).await
}

pub async fn revoke(state: &AppState, c: &Caller, body: LinkRevokeBody) -> Result<RelayReceipt, ApiError> {
    let (account, address) = caller_as(state, c, Role::Patient, "Only a patient stops their links.").await?;
    let m = body.message;
    own_message(address, m.patient, "You can only stop your own links.")?;
    let id = Hash32(m.link_id);
    own_link(state, &account.id, id).await?;
    super::approvals::check(state, &account.id, &body.approval, access_domain(state).digest(&m)).await?;
    crate::chain::spend_relay(state, &account.id).await?;
    // Stopped here at once: no manifest request is answered from now on,
    // whenever the ledger records it.
    store::revoke(&state.pool, id).await?;
    let signature = body.signature.0.to_vec();
    relay_and_wait(state, Request::signed(&m, signature)).await
}

/// The Access contract's EIP-712 domain on this ledger.
pub(crate) fn access_domain(state: &AppState) -> Domain {
    let client = &state.ledger.client;
    Target::Access.domain(client.chain_id(), &client.contracts())
}
