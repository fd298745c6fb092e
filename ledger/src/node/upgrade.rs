//! Contracts added after genesis.
//!
//! A deployed contract never changes, and block 0 of a chain that already
//! exists was built from the Directory and Records contracts as they were
//! then; re-executing it with other bytecode would make it a bad block. So
//! those two sources are frozen (a test pins their bytecode), and a contract
//! added later is deployed by an upgrade block: a block with no
//! transactions whose header's extra data names the upgrade, and whose
//! execution is that deployment, from [`GENESIS_DEPLOYER`] at its next
//! nonce, free of gas. Its state changes go into the header's state
//! commitment like any block's, so `ledger verify` and every restart
//! re-execute and check it.
//!
//! Opening a chain mines the upgrade blocks it lacks, in order, before
//! anything else: a new chain gets them as blocks 1, 2, …; a chain made by
//! an earlier build gets them at its next block. Each contract lands at the
//! same address on every chain ([`Contracts::of_genesis`]).

use super::*;
use crate::artifacts::{self, Artifact};
use genesis::deploy;

/// One contract deployed after genesis.
pub struct Upgrade {
    /// Written in the header's extra data as `chartkey:<name>` (≤ 32 bytes).
    pub name: &'static str,
    /// The genesis deployer's nonce that deploys it (fixes its address).
    pub nonce: u64,
    artifact: fn() -> &'static Artifact,
    /// The ABI-encoded constructor arguments.
    args: fn(&Contracts) -> Vec<u8>,
}

/// Every upgrade, in the order chains receive them. Append only.
pub const UPGRADES: &[Upgrade] = &[Upgrade {
    name: "access-v1",
    nonce: 2,
    artifact: artifacts::access,
    args: |contracts| contracts.directory.into_word().to_vec(),
}];

impl Upgrade {
    pub fn address(&self) -> Address {
        GENESIS_DEPLOYER.create(self.nonce)
    }

    /// The header's extra data that marks this upgrade's block.
    pub fn marker(&self) -> Bytes {
        Bytes::from(format!("chartkey:{}", self.name).into_bytes())
    }

    /// The upgrade a block header marks, if any.
    pub fn of_header(header: &Header) -> Option<&'static Upgrade> {
        UPGRADES.iter().find(|u| u.marker() == header.extra_data)
    }

    /// The upgrades `state` has not received yet, in order.
    pub(super) fn missing(state: &State) -> impl Iterator<Item = &'static Upgrade> + '_ {
        UPGRADES.iter().filter(move |u| {
            state.cache.accounts.get(&u.address()).and_then(|a| a.info.code.as_ref()).is_none_or(|c| c.is_empty())
        })
    }

    /// Executes this upgrade as the block after `parent`, on `state`.
    pub(super) fn execute(
        &self,
        state: &mut State,
        chain_id: u64,
        parent: &Parent<'_>,
        timestamp: u64,
    ) -> Result<(Header, B256), BlockError> {
        let number = parent.header.number + 1;
        if exec::nonce_of(state, GENESIS_DEPLOYER) != self.nonce {
            return Err(BlockError::Upgrade(format!("{} is out of order", self.name)));
        }
        let mut diff = StateDiff::default();
        let params = BlockParams { number, timestamp, basefee: 0 };
        let args = (self.args)(&Contracts::of_genesis());
        deploy(state, &mut diff, chain_id, &params, self.nonce, (self.artifact)(), &args)?;
        let root = block::state_commitment(parent.header.state_root, &diff);
        let mut header = block::header(Some(parent), number, timestamp, root, &[], &[]);
        header.extra_data = self.marker();
        let hash = header.hash_slow();
        Ok((header, hash))
    }
}

/// Mines the upgrade blocks `executed` lacks onto the chain in `writer`
/// (each durable before the next); returns how many.
pub(super) fn apply_missing(
    writer: &mut Store,
    executed: &mut Executed,
    chain_id: u64,
    now: u64,
) -> Result<usize, LedgerError> {
    let missing: Vec<&Upgrade> = Upgrade::missing(&executed.db).collect();
    for upgrade in &missing {
        let parent_header = executed.header.clone();
        let parent = Parent { hash: executed.hash, header: &parent_header };
        let timestamp = now.max(parent_header.timestamp);
        let (header, hash) = upgrade
            .execute(&mut executed.db, chain_id, &parent, timestamp)
            .map_err(|e| LedgerError::BadBlock { number: parent_header.number + 1, reason: e.to_string() })?;
        let stored = StoredBlock {
            number: header.number,
            hash: hash.0,
            header: alloy_rlp::encode(&header),
            transactions: Vec::new(),
            receipts: Vec::new(),
        };
        writer.append(&stored)?;
        tracing::info!(upgrade = upgrade.name, block = header.number, contract = %upgrade.address(), "ledger upgraded");
        executed.header = header;
        executed.hash = hash;
    }
    Ok(missing.len())
}
