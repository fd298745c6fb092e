//! The ledger's server functions: where the contracts are, and relaying the
//! signed messages of the signed-in account.
//!
//! A relayed message is authorised twice: here (a session whose account is
//! the message's signer, and for registrations the role and key the server
//! holds for it) and by the contract, which checks the signature itself.

use alloy_primitives::Address;
use chartkey_api::{
    ApiError, LedgerBlock, LedgerContracts, LedgerEvent, LedgerPage, LedgerTxView, LedgerVerification, RelayBody,
    RelayReceipt,
};
use chartkey_core::eip712::LedgerMessage;
use chartkey_core::role::Role;
use chartkey_core::value::{self, Hash32, Signature};
use chartkey_ledger::abi::{ChartkeyDirectory, ChartkeyRecords, SolCall, SolEvent};
use chartkey_ledger::calls::Target;
use chartkey_ledger::convert;
use chartkey_ledger::relayer::{JobStatus, RelayError, Relayed, Request};

use crate::caller::Caller;
use crate::db;
use crate::state::AppState;

pub async fn info(state: &AppState) -> Result<LedgerContracts, ApiError> {
    let contracts = state.ledger.client.contracts();
    Ok(LedgerContracts {
        chain_id: state.ledger.client.chain_id(),
        directory: convert::address(contracts.directory),
        records: convert::address(contracts.records),
        access: convert::address(contracts.access),
        relayer: convert::address(state.ledger.relayer.address()),
    })
}

/// The generic relay: only what no dedicated endpoint covers, today an
/// account's own registration (its role and key as the server holds them).
/// Grants, revocations, accesses, anchors and credentials each have an
/// endpoint that authorises the object, asks for the passkey where it must
/// and keeps the server's records whole; through here they are refused.
pub async fn relay(state: &AppState, c: &Caller, body: RelayBody) -> Result<RelayReceipt, ApiError> {
    let (account, address) = caller(state, c).await?;
    let signature = body.signature.0.to_vec();
    let LedgerMessage::Register(register) = &body.message else {
        return Err(ApiError::Forbidden(format!(
            "A {} is sent through its own page of the portal, not relayed as it is.",
            message_words(&body.message)
        )));
    };
    let request = request_of(&body.message, signature);
    if request.signer != address {
        return Err(ApiError::Forbidden("You can only relay messages signed for your own account.".into()));
    }
    let role = Role::parse(&account.role).ok_or(ApiError::Internal)?;
    if register.role != role.code() {
        return Err(ApiError::bad_request("The registration names another role than your account's."));
    }
    if register.encryption_key != account.encryption_key.0 {
        return Err(ApiError::bad_request("The registration names another encryption key than your account's."));
    }
    spend_relay(state, &account.id).await?;
    relay_and_wait(state, request).await
}

/// What a ledger message is, in words.
fn message_words(message: &LedgerMessage) -> &'static str {
    match message {
        LedgerMessage::Register(_) => "registration",
        LedgerMessage::IssueCredential(_) => "credential",
        LedgerMessage::RevokeCredential(_) => "credential revocation",
        LedgerMessage::Anchor(_) | LedgerMessage::AnchorBatch(_) => "record anchor",
        LedgerMessage::Grant(_) => "share",
        LedgerMessage::Revoke(_) => "stop-sharing message",
        LedgerMessage::Access(_) => "record access",
        LedgerMessage::Link(_) | LedgerMessage::LinkUpdate(_) | LedgerMessage::LinkRevoke(_) => "link",
        LedgerMessage::EmergencyContact(_)
        | LedgerMessage::EmergencyContactRemove(_)
        | LedgerMessage::EmergencyRefusal(_)
        | LedgerMessage::EmergencyRequest(_)
        | LedgerMessage::EmergencyAccess(_) => "emergency access message",
    }
}

/// Relays `request` and waits up to `relay_wait` for it to be mined: the
/// receipt, the ledger's refusal, or (still on its way, journalled, to be
/// mined after a restart if need be) a receipt that says not mined yet.
pub(super) async fn relay_and_wait(state: &AppState, request: Request) -> Result<RelayReceipt, ApiError> {
    let function = request.function;
    let ticket = state.ledger.relayer.submit(request).await.map_err(|e| relay_error(e, function))?;
    tracing::info!(job = ticket.job, function, "relay accepted");
    let (job, tx_hash) = (ticket.job, convert::hash(ticket.tx_hash));
    // A dropped ticket means the relayer is stopping: the message is
    // journalled, so it is on its way, not failed.
    let outcome =
        async move { ticket.done.await.ok().map(|r| r.map(|r| r.block_number).map_err(|e| relay_error(e, function))) };
    receipt(state, job, tx_hash, outcome).await
}

/// The receipt of a relayed message whose bookkeeping `settle` does once
/// it is mined (even after this answer).
pub(super) async fn settled(
    state: &AppState,
    settle: tokio::task::JoinHandle<Result<u64, ApiError>>,
    job: i64,
    tx_hash: Hash32,
) -> Result<RelayReceipt, ApiError> {
    let outcome = async move { Some(settle.await.unwrap_or(Err(ApiError::Internal))) };
    receipt(state, job, tx_hash, outcome).await
}

/// Waits up to `relay_wait` for the `outcome` of relayed message `job`
/// (its block, or why it failed; `None` when the outcome will not come to
/// this request): mined, refused, or accepted and still on its way. Every
/// relay in the server answers through here.
pub(super) async fn receipt(
    state: &AppState,
    job: i64,
    tx_hash: Hash32,
    outcome: impl Future<Output = Option<Result<u64, ApiError>>>,
) -> Result<RelayReceipt, ApiError> {
    match tokio::time::timeout(state.config.relay_wait, outcome).await {
        Ok(Some(Ok(block))) => Ok(RelayReceipt { job, tx_hash, mined: true, block_number: Some(block) }),
        Ok(Some(Err(e))) => Err(e),
        Ok(None) | Err(_) => Ok(RelayReceipt { job, tx_hash, mined: false, block_number: None }),
    }
}

pub async fn job(state: &AppState, c: &Caller, job: i64) -> Result<RelayReceipt, ApiError> {
    let (_, address) = caller(state, c).await?;
    let not_found = || ApiError::NotFound("No such relayed message of yours.".into());
    let found = state.ledger.relayer.job(job).await.map_err(|e| relay_error(e, "job"))?.ok_or_else(not_found)?;
    if found.sent.signer != address {
        return Err(not_found());
    }
    let tx_hash = convert::hash(found.sent.tx_hash);
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

/// Relays a new account's first registration in the Directory (signed in the
/// browser at sign-up), and waits for it up to `relay_wait`: after that it is
/// journalled and will be mined. A refusal ends the sign-up with its reason.
pub async fn register_account(
    state: &AppState,
    entry: &chartkey_core::directory::VerifiedEntry,
    signature: Option<Signature>,
) -> Result<(), ApiError> {
    let signature = signature.ok_or_else(|| {
        ApiError::bad_request("The account's ledger registration is missing: reload the page and sign up again.")
    })?;
    let message = chartkey_core::eip712::Register {
        account: entry.address,
        role: entry.role.code(),
        encryption_key: entry.encryption_key,
        nonce: ethers_core::types::U256::zero(),
    };
    relay_and_wait(state, Request::signed(&message, signature.0.to_vec())).await?;
    Ok(())
}

/// What the Directory contract says of `address`: role and encryption key,
/// or `None` when it is not registered.
pub async fn account_on_chain(state: &AppState, address: value::Address) -> Result<Option<(u8, [u8; 32])>, ApiError> {
    let account = convert::alloy(address);
    let on_chain = view(state, Target::Directory, ChartkeyDirectory::accountOfCall { account }).await?;
    Ok((on_chain.role != 0).then_some((on_chain.role, on_chain.encryptionKey.0)))
}

pub(super) fn request_of(message: &LedgerMessage, signature: Vec<u8>) -> Request {
    chartkey_core::with_ledger_message!(message, m => Request::signed(m, signature))
}

pub(super) fn relay_error(e: RelayError, function: &str) -> ApiError {
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

/// Blocks shown on the ledger page, and events of the caller.
const BLOCKS_SHOWN: u64 = 10;
const EVENTS_SHOWN: usize = 20;

/// The signed-in account and its ledger address.
pub(super) async fn caller(
    state: &AppState,
    c: &Caller,
) -> Result<(crate::accounts::store::AccountRow, Address), ApiError> {
    let session = c.require_session()?;
    let id = session.account_id.clone();
    let account = crate::accounts::store::by_id(&state.pool, &id).await?.ok_or(ApiError::Unauthorized)?;
    let address = convert::alloy(account.address);
    Ok((account, address))
}

/// The signed-in account and its ledger address, when the account has
/// `role`; otherwise 403 with `refusal`.
pub(super) async fn caller_as(
    state: &AppState,
    c: &Caller,
    role: chartkey_core::role::Role,
    refusal: &str,
) -> Result<(crate::accounts::store::AccountRow, Address), ApiError> {
    let (account, address) = caller(state, c).await?;
    if chartkey_core::role::Role::parse(&account.role) != Some(role) {
        return Err(ApiError::Forbidden(refusal.into()));
    }
    Ok((account, address))
}

/// 403 with `not_yours` unless `signer`, the address a message names as its
/// signer, is the caller's own `address`.
pub(super) fn own_message(
    address: Address,
    signer: ethers_core::types::Address,
    not_yours: &str,
) -> Result<(), ApiError> {
    if convert::to_alloy(signer) != address {
        return Err(ApiError::Forbidden(not_yours.into()));
    }
    Ok(())
}

/// Reads view `call` of `target` on the latest state.
pub(crate) async fn view<C: SolCall>(state: &AppState, target: Target, call: C) -> Result<C::Return, ApiError> {
    state.ledger.client.view(target, call).await.map_err(ledger_down)
}

/// A nonce view (`nonces`, `consentNonce`): the number the signer's next
/// message must carry, counting transactions the ledger holds unmined.
pub(crate) async fn next_nonce<C: SolCall>(state: &AppState, target: Target, call: C) -> Result<C::Return, ApiError> {
    state.ledger.client.next_nonce(target, call).await.map_err(ledger_down)
}

pub(super) fn ledger_down(e: chartkey_ledger::client::ClientError) -> ApiError {
    tracing::error!(error = %e, "reading the ledger failed");
    ApiError::Internal
}

/// Whether an event names `who` in one of its indexed topics.
fn names(log: &alloy_primitives::Log, who: Address) -> bool {
    log.data.topics().iter().skip(1).any(|topic| *topic == who.into_word())
}

fn event_of(log: &alloy_primitives::Log, block_number: u64, tx_hash: alloy_primitives::B256) -> Option<LedgerEvent> {
    let (name, fields) = chartkey_ledger::artifacts::describe_event(log)?;
    Some(LedgerEvent { block_number, tx_hash: convert::hash(tx_hash), name, fields })
}

pub async fn overview(state: &AppState, c: &Caller) -> Result<LedgerPage, ApiError> {
    let (_, who) = caller(state, c).await?;
    let client = &state.ledger.client;
    let head = client.head().await.map_err(ledger_down)?;
    let mut blocks = Vec::new();
    for number in (head.saturating_sub(BLOCKS_SHOWN - 1)..=head).rev() {
        if let Some(b) = client.block_summary(number).await.map_err(ledger_down)? {
            blocks.push(LedgerBlock {
                number: b.number,
                hash: convert::hash(b.hash),
                timestamp: b.timestamp,
                transactions: b.transactions as u32,
                gas_used: b.gas_used,
            });
        }
    }
    // Events naming the caller in any indexed position, in the latest
    // blocks a log query may cover: read once, then only the blocks since
    // the last look (a chain that went back is read afresh).
    let cached = lock_activity(state).get(&who).cloned().filter(|a| a.scanned <= head);
    let window = head.saturating_sub(chartkey_ledger::rpc::MAX_LOG_RANGE - 1);
    let (from, mut activity) = match cached {
        Some(a) => ((a.scanned + 1).max(window), a.events),
        None => (window, Vec::new()),
    };
    if from <= head {
        let contracts = client.contracts();
        let mut found = Vec::new();
        for position in 1..=3 {
            let mut filter = alloy_rpc_types_eth::Filter::new()
                .address(vec![contracts.directory, contracts.records, contracts.access])
                .from_block(from)
                .to_block(head);
            filter.topics[position] = who.into_word().into();
            found.extend(client.logs(filter).await.map_err(ledger_down)?);
        }
        found.sort_by_key(|log| std::cmp::Reverse((log.block_number, log.log_index)));
        found.dedup_by_key(|log| (log.block_number, log.log_index));
        let newer = found.iter().filter_map(|log| {
            event_of(&log.inner, log.block_number.unwrap_or_default(), log.transaction_hash.unwrap_or_default())
        });
        activity = newer.chain(activity.into_iter().filter(|e| e.block_number >= window)).take(EVENTS_SHOWN).collect();
        let mut cache = lock_activity(state);
        if cache.len() >= crate::ledger::ACTIVITY_CACHED {
            cache.clear();
        }
        cache.insert(who, crate::ledger::Activity { scanned: head, events: activity.clone() });
    }
    Ok(LedgerPage { chain_id: client.chain_id(), external: state.ledger.node.is_none(), head, blocks, activity })
}

fn lock_activity(
    state: &AppState,
) -> std::sync::MutexGuard<'_, std::collections::HashMap<alloy_primitives::Address, crate::ledger::Activity>> {
    state.ledger.activity.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub async fn transaction(state: &AppState, c: &Caller, hash: Hash32) -> Result<LedgerTxView, ApiError> {
    let (_, who) = caller(state, c).await?;
    let parsed = alloy_primitives::B256::from(hash.0);
    let outcome = state
        .ledger
        .client
        .outcome(parsed)
        .await
        .map_err(ledger_down)?
        .ok_or_else(|| ApiError::NotFound("No transaction with that hash is on the ledger.".into()))?;
    let (mine, others): (Vec<_>, Vec<_>) = outcome.logs.iter().partition(|log| names(log, who));
    Ok(LedgerTxView {
        hash,
        block_number: outcome.block_number,
        success: outcome.success,
        events: mine.into_iter().filter_map(|log| event_of(log, outcome.block_number, parsed)).collect(),
        others: others.len() as u32,
    })
}

/// The embedded chain's head, signed with the administrator key.
pub async fn checkpoint(state: &AppState, c: &Caller) -> Result<chartkey_api::SignedCheckpoint, ApiError> {
    c.require_session()?;
    let Some(node) = &state.ledger.node else {
        return Err(ApiError::bad_request(
            "This portal uses an external Ethereum network as its ledger; keep a block hash from that network's explorer instead.",
        ));
    };
    let (number, hash) = node.head();
    let (chain_id, hash) = (node.chain_id(), convert::hash(hash));
    let message = chartkey_core::proof::checkpoint_message(chain_id, number, &hash);
    let signature = chartkey_core::proof::sign_message_with_secret(&state.ledger.admin.secret(), &message)
        .ok_or(ApiError::Internal)?;
    Ok(chartkey_api::SignedCheckpoint {
        chain_id,
        number,
        hash,
        signer: convert::address(state.ledger.admin.address()),
        message,
        signature,
    })
}

/// Most heads one `GET /api/chain/heads` answers.
pub const HEADS_PER_ANSWER: u64 = 256;

/// Consecutive heads from block `from` (default: the last 16), at most
/// [`HEADS_PER_ANSWER`]. Public: outside witnesses follow the chain with it.
pub async fn heads(state: &AppState, from: Option<u64>) -> Result<chartkey_api::ChainHeads, ApiError> {
    let client = &state.ledger.client;
    let head = client.head().await.map_err(ledger_down)?;
    let from = from.unwrap_or(head.saturating_sub(15));
    let mut heads = Vec::new();
    if from <= head {
        for number in from..=head.min(from + HEADS_PER_ANSWER - 1) {
            let Some(b) = client.block_summary(number).await.map_err(ledger_down)? else { break };
            heads.push(chartkey_api::ChainHead {
                number,
                hash: convert::hash(b.hash),
                parent_hash: convert::hash(b.parent_hash),
            });
        }
    }
    Ok(chartkey_api::ChainHeads { chain_id: client.chain_id(), head, heads })
}

pub async fn verify(state: &AppState, c: &Caller) -> Result<LedgerVerification, ApiError> {
    c.require_session()?;
    if state.ledger.node.is_none() {
        return Err(ApiError::bad_request(
            "This portal uses an external Ethereum network as its ledger; that network's own nodes verify it.",
        ));
    }
    let Ok(mut last) = state.ledger.verifying.try_lock() else {
        return Err(ApiError::Conflict("The chain is being verified already. Try again in a moment.".into()));
    };
    // It re-executes the whole chain: a recent result (it says how many
    // blocks it covered) is given instead of running again.
    if let Some((when, result)) = last.as_ref()
        && when.elapsed() < crate::ledger::VERIFY_INTERVAL
    {
        return Ok(result.clone());
    }
    let path = crate::ledger::ledger_path(&state.config.data_dir);
    let started = std::time::Instant::now();
    let result = tokio::task::spawn_blocking(move || chartkey_ledger::node::verify(&path, &mut |_, _| {}))
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "ledger verification task failed");
            ApiError::Internal
        })?;
    let millis = started.elapsed().as_millis() as u64;
    let result = match result {
        Ok(report) => LedgerVerification {
            ok: true,
            blocks: report.blocks,
            transactions: report.transactions,
            head_hash: Some(convert::hash(report.head_hash)),
            problem: None,
            millis,
        },
        Err(e) => {
            tracing::error!(error = %e, "ledger verification FAILED");
            LedgerVerification {
                ok: false,
                blocks: 0,
                transactions: 0,
                head_hash: None,
                problem: Some(e.to_string()),
                millis,
            }
        }
    };
    *last = Some((std::time::Instant::now(), result.clone()));
    Ok(result)
}

pub(crate) fn corrupt(what: &str) -> ApiError {
    tracing::error!(what, "a stored record row is inconsistent");
    ApiError::Internal
}

/// The serial of the grant a mined `grant` call made (its `Granted` event).
/// When an emergency request opens, from its `EmergencyRequested` event.
pub(crate) fn emergency_opens_at(relayed: &Relayed) -> Option<i64> {
    use chartkey_ledger::abi::ChartkeyAccess;
    relayed
        .logs
        .iter()
        .find_map(|log| ChartkeyAccess::EmergencyRequested::decode_log(log).ok().map(|e| e.availableAt as i64))
}

pub(crate) fn granted_serial(relayed: &Relayed) -> Option<u32> {
    relayed.logs.iter().find_map(|log| ChartkeyRecords::Granted::decode_log(log).ok().map(|granted| granted.serial))
}

/// The grant in force from `patient` to `grantee` on the ledger.
pub(crate) struct GrantOnLedger {
    pub serial: u32,
    pub expires_at: u64,
    pub revoked: bool,
}

impl GrantOnLedger {
    /// Neither stopped nor run out (the contract also checks the
    /// grantee's credential on every access).
    pub fn live(&self) -> bool {
        self.serial != 0 && !self.revoked && self.expires_at > db::now() as u64
    }
}

pub(crate) async fn grant_on_ledger(
    state: &AppState,
    patient: Address,
    grantee: Address,
) -> Result<GrantOnLedger, ApiError> {
    let grant = view(state, Target::Records, ChartkeyRecords::grantOfCall { patient, grantee }).await?;
    Ok(GrantOnLedger { serial: grant.serial, expires_at: grant.expiresAt, revoked: grant.revoked })
}

/// Spends one of the account's ledger messages for this hour (the relayer
/// pays for each): called once a request has passed every check and is
/// about to be relayed, so a refused one costs nothing.
pub(crate) async fn spend_relay(state: &AppState, account_id: &str) -> Result<(), ApiError> {
    if state.limits.relays.allow(&account_id.to_owned()).await {
        return Ok(());
    }
    tracing::warn!(account = %account_id, "relay allowance used up");
    Err(ApiError::OverQuota(format!(
        "This account has sent its {} ledger messages for this hour. Nothing was sent; try again later.",
        state.config.relays_per_hour
    )))
}
