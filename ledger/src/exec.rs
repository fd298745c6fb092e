//! Running one transaction on revm against an in-memory state, in a given
//! block. Shared by the test chain ([`crate::Chain`]) and the embedded node.

use revm::context::TxEnv;
use revm::context_interface::result::{EVMError, ExecResultAndState, ExecutionResult, InvalidTransaction};
use revm::database::{CacheDB, EmptyDB};
use revm::primitives::{Address, B256, U256};
use revm::{Context, Database, ExecuteEvm, MainBuilder, MainContext};

/// Gas limit of every block.
pub const BLOCK_GAS_LIMIT: u64 = 30_000_000;

/// The whole state: accounts, code and storage, all in memory.
pub type State = CacheDB<EmptyDB>;

pub type Outcome = ExecResultAndState<ExecutionResult>;

/// The block a transaction runs in. The rest of the block environment is
/// constant on Chartkey's chains: gas limit [`BLOCK_GAS_LIMIT`], no
/// beneficiary, zero prevrandao (as the block header says).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockParams {
    pub number: u64,
    pub timestamp: u64,
    pub basefee: u64,
}

/// Executes `tx` in `block` without committing; the caller commits
/// `outcome.state` (revm::DatabaseCommit) when it keeps the result.
/// `state` is the [`State`] itself (`&mut`), or a throwaway overlay over a
/// shared one (`CacheDB<&State>`) for a call that only reads.
pub fn transact<DB: Database<Error = std::convert::Infallible>>(
    state: DB,
    chain_id: u64,
    block: &BlockParams,
    tx: TxEnv,
) -> Result<Outcome, EVMError<std::convert::Infallible, InvalidTransaction>> {
    let mut evm = Context::mainnet()
        .with_db(state)
        .modify_block_chained(|b| {
            b.number = U256::from(block.number);
            b.timestamp = U256::from(block.timestamp);
            b.basefee = block.basefee;
            b.gas_limit = BLOCK_GAS_LIMIT;
            b.beneficiary = Address::ZERO;
            b.prevrandao = Some(B256::ZERO);
        })
        .modify_cfg_chained(|c| c.chain_id = chain_id)
        .build_mainnet();
    evm.transact(tx)
}

/// The account's next nonce in `state`.
pub fn nonce_of(state: &State, address: Address) -> u64 {
    state.cache.accounts.get(&address).map(|a| a.info.nonce).unwrap_or(0)
}

/// The account's balance in `state`.
pub fn balance_of(state: &State, address: Address) -> U256 {
    state.cache.accounts.get(&address).map(|a| a.info.balance).unwrap_or_default()
}
