//! The ledger's server functions: where the contracts are, and relaying the
//! signed messages of the signed-in account.
//!
//! A relayed message is authorised twice: here (a session whose account is
//! the message's signer, and for registrations the role and key the server
//! holds for it) and by the contract, which checks the signature itself.

use chartkey_app::api::ssr::Caller;
use chartkey_app::api::{ApiError, LedgerContracts, RelayBody, RelayReceipt};
use chartkey_core::eip712::LedgerMessage;
use chartkey_core::wire::Role;
use chartkey_ledger::relayer::{JobStatus, RelayError, Request};
use ethers_core::types::Address;

use crate::db;
use crate::state::AppState;

pub async fn info(state: &AppState) -> Result<LedgerContracts, ApiError> {
    let contracts = state.ledger.client.contracts();
    Ok(LedgerContracts {
        chain_id: state.ledger.client.chain_id(),
        directory: contracts.directory.to_checksum(None),
        records: contracts.records.to_checksum(None),
        relayer: state.ledger.relayer.address().to_checksum(None),
    })
}

pub async fn relay(state: &AppState, c: &Caller, body: RelayBody) -> Result<RelayReceipt, ApiError> {
    let session = c.require_session()?;
    let id = session.account_id.clone();
    let account = state.db.call(move |conn| db::account_by_id(conn, &id)).await?.ok_or(ApiError::Unauthorized)?;
    let address: Address = account.address.parse().map_err(|_| {
        tracing::error!(account = %account.id, "stored address is invalid");
        ApiError::Internal
    })?;
    let signature = parse_signature(&body.signature)?;
    let request = request_of(&body.message, signature);
    if request.signer.0 != address.0 {
        return Err(ApiError::Forbidden("You can only relay messages signed for your own account.".into()));
    }
    let role = Role::parse(&account.role).ok_or(ApiError::Internal)?;
    match &body.message {
        LedgerMessage::Register(register) => {
            if register.role != role.code() {
                return Err(ApiError::bad_request("The registration names another role than your account's."));
            }
            if format!("0x{}", hex::encode(register.encryption_key)) != account.encryption_key.to_lowercase() {
                return Err(ApiError::bad_request(
                    "The registration names another encryption key than your account's.",
                ));
            }
        }
        LedgerMessage::IssueCredential(_) | LedgerMessage::RevokeCredential(_)
            if role != Role::CredentialingAuthority =>
        {
            return Err(ApiError::Forbidden("Only a credentialing authority issues or revokes credentials.".into()));
        }
        _ => {}
    }
    let function = request.function;
    let ticket = state.ledger.relayer.submit(request).await.map_err(|e| relay_error(e, function))?;
    tracing::info!(job = ticket.job, function, "relay accepted");
    let (job, tx_hash) = (ticket.job, format!("{:#x}", ticket.tx_hash));
    match tokio::time::timeout(state.config.relay_wait, ticket.done).await {
        Ok(Ok(Ok(relayed))) => Ok(RelayReceipt { job, tx_hash, mined: true, block_number: Some(relayed.block_number) }),
        Ok(Ok(Err(e))) => Err(relay_error(e, function)),
        // Accepted and journalled: it will be mined (after a restart if need be).
        Ok(Err(_)) | Err(_) => Ok(RelayReceipt { job, tx_hash, mined: false, block_number: None }),
    }
}

pub async fn job(state: &AppState, c: &Caller, job: i64) -> Result<RelayReceipt, ApiError> {
    let session = c.require_session()?;
    let id = session.account_id.clone();
    let account = state.db.call(move |conn| db::account_by_id(conn, &id)).await?.ok_or(ApiError::Unauthorized)?;
    let not_found = || ApiError::NotFound("No such relayed message of yours.".into());
    let found = state.ledger.relayer.job(job).await.map_err(|e| relay_error(e, "job"))?.ok_or_else(not_found)?;
    if !found.signer.to_checksum(None).eq_ignore_ascii_case(&account.address) {
        return Err(not_found());
    }
    let tx_hash = format!("{:#x}", found.tx_hash);
    match found.status {
        JobStatus::Sent => Ok(RelayReceipt { job, tx_hash, mined: false, block_number: None }),
        JobStatus::Mined { block_number } => {
            Ok(RelayReceipt { job, tx_hash, mined: true, block_number: Some(block_number) })
        }
        JobStatus::Reverted { error, .. } => {
            Err(ApiError::Refused { code: error, message: "The ledger refused this message when it was mined.".into() })
        }
        JobStatus::Failed { error } => {
            tracing::warn!(job, %error, "relayed message failed");
            Err(ApiError::Internal)
        }
    }
}

fn request_of(message: &LedgerMessage, signature: Vec<u8>) -> Request {
    match message {
        LedgerMessage::Register(m) => Request::signed(m, signature),
        LedgerMessage::IssueCredential(m) => Request::signed(m, signature),
        LedgerMessage::RevokeCredential(m) => Request::signed(m, signature),
        LedgerMessage::Anchor(m) => Request::signed(m, signature),
        LedgerMessage::AnchorBatch(m) => Request::signed(m, signature),
        LedgerMessage::Grant(m) => Request::signed(m, signature),
        LedgerMessage::Revoke(m) => Request::signed(m, signature),
        LedgerMessage::Access(m) => Request::signed(m, signature),
    }
}

fn parse_signature(text: &str) -> Result<Vec<u8>, ApiError> {
    let bad = || ApiError::bad_request("The signature must be 65 bytes of 0x-prefixed hex.");
    let bytes = hex::decode(text.strip_prefix("0x").ok_or_else(bad)?).map_err(|_| bad())?;
    if bytes.len() != 65 {
        return Err(bad());
    }
    Ok(bytes)
}

fn relay_error(e: RelayError, function: &str) -> ApiError {
    match e {
        RelayError::Refused(refusal) => {
            tracing::info!(function, code = %refusal.code, "the ledger refused a relayed message");
            ApiError::Refused { code: refusal.code, message: refusal.message }
        }
        RelayError::Failed(why) | RelayError::Unavailable(why) => {
            tracing::error!(function, error = %why, "relaying failed");
            ApiError::Internal
        }
    }
}
