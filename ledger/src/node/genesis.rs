//! Block 0: funded accounts and Chartkey's contracts at fixed addresses.

use std::collections::BTreeMap;

use alloy_primitives::{Address, U256, address};
use revm::DatabaseCommit;
use revm::context::TxEnv;
use revm::context_interface::result::ExecutionResult;
use revm::primitives::TxKind;
use revm::state::AccountInfo;
use serde::{Deserialize, Serialize};

use super::block::{BlockError, StateDiff};
use crate::artifacts;
use crate::exec::{self, BlockParams, State};

/// The account that deploys the contracts in the genesis block (no one holds
/// its key; its nonces 0 and 1 fix the contracts' addresses).
pub const GENESIS_DEPLOYER: Address = address!("0x000000000000000000000000000000000000c4a7");

/// What the genesis block contains; stored beside the chain and part of its
/// first block's hash (through the state commitment).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Genesis {
    pub chain_id: u64,
    pub timestamp: u64,
    /// Owner of the Directory contract (names credentialing authorities).
    pub admin: Address,
    /// Balances at genesis (the relayer's gas money).
    pub alloc: BTreeMap<Address, U256>,
}

/// Where Chartkey's contracts are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contracts {
    pub directory: Address,
    pub records: Address,
    /// Links and emergency contacts (added after genesis: `super::upgrade`).
    pub access: Address,
}

impl Contracts {
    /// No contracts (zero addresses): before deploying them.
    pub fn none() -> Self {
        Self { directory: Address::ZERO, records: Address::ZERO, access: Address::ZERO }
    }

    /// Where the embedded chain puts them: the genesis deployer's first
    /// creations, in order (block 0 deploys the first two, upgrade blocks the
    /// rest).
    pub fn of_genesis() -> Self {
        Self {
            directory: GENESIS_DEPLOYER.create(0),
            records: GENESIS_DEPLOYER.create(1),
            access: GENESIS_DEPLOYER.create(2),
        }
    }
}

impl Genesis {
    /// The genesis state and what it changed (everything).
    pub(crate) fn build(&self) -> Result<(State, StateDiff), BlockError> {
        let mut state = State::default();
        let mut diff = StateDiff::default();
        for (&address, &balance) in &self.alloc {
            let info = AccountInfo { balance, ..Default::default() };
            diff.record_account(address, &info);
            state.insert_account_info(address, info);
        }
        let block = BlockParams { number: 0, timestamp: self.timestamp, basefee: 0 };
        let contracts = Contracts::of_genesis();
        // Each constructor takes one address (ABI: a left-padded word).
        deploy(&mut state, &mut diff, self.chain_id, &block, 0, artifacts::directory(), &self.admin.into_word().0)?;
        deploy(
            &mut state,
            &mut diff,
            self.chain_id,
            &block,
            1,
            artifacts::records(),
            &contracts.directory.into_word().0,
        )?;
        Ok((state, diff))
    }
}

/// Deploys `artifact` (constructor arguments `args`, ABI-encoded) from
/// [`GENESIS_DEPLOYER`] with `nonce`, free of gas, and commits it to `state`
/// and `diff`: genesis and the upgrade blocks.
pub(crate) fn deploy(
    state: &mut State,
    diff: &mut StateDiff,
    chain_id: u64,
    block: &BlockParams,
    nonce: u64,
    artifact: &artifacts::Artifact,
    args: &[u8],
) -> Result<(), BlockError> {
    let mut input = artifact.bytecode.clone();
    input.extend_from_slice(args);
    let tx = TxEnv::builder()
        .caller(GENESIS_DEPLOYER)
        .kind(TxKind::Create)
        .data(input.into())
        .nonce(nonce)
        .gas_limit(super::TX_GAS_CAP)
        .gas_price(0)
        .chain_id(Some(chain_id))
        .build()
        .map_err(|e| BlockError::Genesis(format!("{e:?}")))?;
    let outcome = exec::transact(&mut *state, chain_id, block, tx).map_err(|e| BlockError::Genesis(e.to_string()))?;
    if !matches!(outcome.result, ExecutionResult::Success { .. }) {
        return Err(BlockError::Genesis(format!("deploying {} failed: {:?}", artifact.name, outcome.result)));
    }
    diff.record(&outcome.state);
    state.commit(outcome.state);
    Ok(())
}
