//! Naming credentialing authorities. `chartkey authority add|remove` writes
//! the change to the server's database (it cannot touch the ledger while
//! the server holds it); the running server sends each waiting change to
//! the Directory contract with the administrator key, at start and then
//! within a second, and writes back the transaction or why it failed.

use std::time::Duration;

use anyhow::Context;
use chartkey_core::role::Role;
use chartkey_core::value::Address;
use chartkey_ledger::abi::{ChartkeyDirectory, SolCall};
use chartkey_ledger::client::ClientError;
use chartkey_ledger::node::{CallRequest, Fees};

pub mod store;

use crate::state::AppState;
use crate::store::Pool;

/// How often the server looks for waiting changes.
pub const POLL: Duration = Duration::from_secs(1);

/// What became of a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    Waiting,
    Sent { tx: String },
    Failed { error: String },
}

/// Records that `address` is to be named (or no longer named) a
/// credentialing authority. Naming needs an account of that role here.
pub async fn request(pool: &Pool, address: &str, enabled: bool) -> anyhow::Result<i64> {
    let address: Address =
        address.trim().parse().map_err(|e| anyhow::anyhow!("{address:?} is not an account address: {e}"))?;
    if enabled {
        let (name, role) = store::account(pool, &address)
            .await?
            .with_context(|| format!("no account with address {address} has signed up on this server"))?;
        if role != Some(Role::CredentialingAuthority) {
            anyhow::bail!(
                "{address} ({name}) signed up as a {}, not as a credentialing authority",
                role.map_or("?", |r| r.label())
            );
        }
    }
    Ok(store::request(pool, &address, enabled).await?)
}

/// The state of change `id`.
pub async fn applied(pool: &Pool, id: i64) -> anyhow::Result<Applied> {
    Ok(match store::change(pool, id).await?.context("no such change")? {
        (None, _, _) => Applied::Waiting,
        (Some(_), Some(tx), None) => Applied::Sent { tx },
        (Some(_), _, error) => Applied::Failed { error: error.unwrap_or_default() },
    })
}

/// Applies waiting changes now and then every [`POLL`], until the server
/// stops.
pub fn watch(state: AppState) {
    let mut stopping = state.stopping.subscribe();
    tokio::spawn(async move {
        loop {
            if let Err(e) = apply_waiting(&state).await {
                tracing::error!(error = %e, "naming credentialing authorities failed; retrying");
            }
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                _ = stopping.wait_for(|s| *s) => return,
            }
        }
    });
}

async fn apply_waiting(state: &AppState) -> anyhow::Result<()> {
    let waiting = store::waiting(&state.pool).await?;
    if waiting.is_empty() || !holds_the_administrator_key(state).await? {
        // Replicas share the waiting rows: only the one holding the
        // Directory's administrator key applies them (another's key would
        // be refused, and the change recorded as failed).
        return Ok(());
    }
    for (id, address, enabled) in waiting {
        let outcome = set_authority(state, address, enabled).await;
        let (tx, error) = match &outcome {
            Ok(tx) => {
                tracing::info!(%address, enabled, %tx, "credentialing authority changed");
                (Some(tx.clone()), None)
            }
            Err(SetError::Refused(why)) => {
                tracing::warn!(%address, enabled, %why, "the ledger refused an authority change");
                (None, Some(why.clone()))
            }
            // Not the change's fault: left waiting for the next round.
            Err(SetError::Unavailable(why)) => anyhow::bail!("{why}"),
        };
        store::applied(&state.pool, id, tx.as_deref(), error.as_deref()).await?;
    }
    Ok(())
}

/// Whether this server's administrator key owns the Directory contract.
async fn holds_the_administrator_key(state: &AppState) -> anyhow::Result<bool> {
    let client = &state.ledger.client;
    let call = CallRequest {
        to: Some(client.contracts().directory),
        data: ChartkeyDirectory::ownerCall {}.abi_encode().into(),
        ..Default::default()
    };
    let answer = client.call(call).await.context("reading the Directory's administrator")?;
    let owner = ChartkeyDirectory::ownerCall::abi_decode_returns(&answer).context("the Directory's administrator")?;
    Ok(owner == state.ledger.admin.address())
}

enum SetError {
    Refused(String),
    Unavailable(String),
}

/// Sends `setAuthority(address, enabled)` as the administrator and waits
/// for it to be mined.
async fn set_authority(state: &AppState, address: Address, enabled: bool) -> Result<String, SetError> {
    let directory = chartkey_ledger::artifacts::directory();
    let authority = chartkey_ledger::convert::alloy(address);
    let input = ChartkeyDirectory::setAuthorityCall { authority, enabled }.abi_encode();
    let client = &state.ledger.client;
    let admin = &state.ledger.admin;
    let to = client.contracts().directory;
    let down = |e: ClientError| SetError::Unavailable(e.to_string());
    let call =
        CallRequest { from: Some(admin.address()), to: Some(to), data: input.clone().into(), ..Default::default() };
    let gas = match client.simulate(call).await {
        Ok(gas) => gas,
        Err(ClientError::Reverted(data)) => return Err(SetError::Refused(directory.describe_revert(&data))),
        Err(ClientError::Rejected(why)) => return Err(SetError::Refused(why)),
        Err(e) => return Err(down(e)),
    };
    let (max_fee_per_gas, max_priority_fee_per_gas) = client.fees().await.map_err(down)?;
    let nonce = client.pending_nonce(admin.address()).await.map_err(down)?;
    let fees = Fees { gas_limit: gas + gas / 4 + 21_000, max_fee_per_gas, max_priority_fee_per_gas };
    let envelope = admin.sign(client.chain_id(), nonce, Some(to), input.into(), fees);
    let hash = *envelope.tx_hash();
    let submitted = client.submit_signed_by(envelope, admin.address()).await.map_err(down)?;
    let outcome = client.confirm(hash, submitted).await.map_err(down)?;
    if !outcome.success {
        return Err(SetError::Refused("the transaction reverted when it was mined".into()));
    }
    Ok(format!("{hash:#x}"))
}
