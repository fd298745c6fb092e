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
use rusqlite::{Connection, OptionalExtension, params};

use crate::db;
use crate::state::AppState;

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
pub fn request(conn: &Connection, address: &str, enabled: bool) -> anyhow::Result<i64> {
    let address: Address =
        address.trim().parse().map_err(|e| anyhow::anyhow!("{address:?} is not an account address: {e}"))?;
    if enabled {
        let (name, role) = conn
            .query_row("SELECT display_name, role FROM accounts WHERE address = ?1", [address], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .optional()?
            .with_context(|| format!("no account with address {address} has signed up on this server"))?;
        if Role::parse(&role) != Some(Role::CredentialingAuthority) {
            anyhow::bail!(
                "{address} ({name}) signed up as a {}, not as a credentialing authority",
                Role::parse(&role).map_or("?", |r| r.label())
            );
        }
    }
    conn.execute(
        "INSERT INTO authority_changes (address, enabled, requested_at) VALUES (?1, ?2, ?3)",
        params![address, enabled, db::now()],
    )?;
    Ok(conn.last_insert_rowid())
}

/// The state of change `id`.
pub fn applied(conn: &Connection, id: i64) -> anyhow::Result<Applied> {
    let row = conn
        .query_row("SELECT applied_at, tx, error FROM authority_changes WHERE id = ?1", [id], |r| {
            Ok((r.get::<_, Option<i64>>(0)?, r.get::<_, Option<String>>(1)?, r.get::<_, Option<String>>(2)?))
        })
        .optional()?
        .context("no such change")?;
    Ok(match row {
        (None, _, _) => Applied::Waiting,
        (Some(_), Some(tx), None) => Applied::Sent { tx },
        (Some(_), _, error) => Applied::Failed { error: error.unwrap_or_default() },
    })
}

/// Applies waiting changes now and then every [`POLL`], for as long as the
/// server runs.
pub fn watch(state: AppState) {
    tokio::spawn(async move {
        loop {
            if let Err(e) = apply_waiting(&state).await {
                tracing::error!(error = %e, "naming credentialing authorities failed; retrying");
            }
            tokio::time::sleep(POLL).await;
        }
    });
}

async fn apply_waiting(state: &AppState) -> anyhow::Result<()> {
    let waiting = state
        .db
        .call(|conn| {
            let mut statement = conn
                .prepare("SELECT id, address, enabled FROM authority_changes WHERE applied_at IS NULL ORDER BY id")?;
            let rows = statement.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Address>(1)?, r.get(2)?)))?;
            rows.collect::<rusqlite::Result<Vec<(i64, Address, bool)>>>()
        })
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
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
        let sql = "UPDATE authority_changes SET applied_at = ?1, tx = ?2, error = ?3 WHERE id = ?4";
        state.db.execute(sql, (db::now(), tx, error, id)).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    Ok(())
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
