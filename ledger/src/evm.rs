//! An in-memory test chain on revm for the contract tests: unsigned calls
//! from any address, no gas fees, each transaction its own block, and a
//! controllable clock. The embedded node (`crate::node`) runs signed
//! transactions on the same execution code (`crate::exec`).

use ethers_core::abi::{Abi, RawLog, Token};
use ethers_core::types::{Address, H256};
use revm::DatabaseCommit;
use revm::context::TxEnv;
use revm::context_interface::result::{ExecutionResult, Output};
use revm::primitives::{Address as EvmAddress, Bytes, TxKind};

use crate::artifacts::{Artifact, encode_call};
use crate::exec::{self, BlockParams, State};
use crate::node::TX_GAS_CAP;

pub struct Chain {
    db: State,
    chain_id: u64,
    block_number: u64,
    timestamp: u64,
}

/// What a transaction left behind.
#[derive(Debug, Clone)]
pub struct Receipt {
    pub gas_used: u64,
    pub logs: Vec<RawLog>,
    pub contract_address: Option<Address>,
    pub output: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    /// The contract reverted; `reason` is decoded from the contract's ABI.
    #[error("reverted: {reason}")]
    Reverted { reason: String, data: Vec<u8> },
    #[error("halted: {0}")]
    Halted(String),
    #[error("invalid transaction: {0}")]
    Invalid(String),
    #[error("ABI: {0}")]
    Abi(String),
}

impl Chain {
    pub fn new(chain_id: u64, genesis_timestamp: u64) -> Self {
        Self { db: State::default(), chain_id, block_number: 0, timestamp: genesis_timestamp }
    }

    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }

    pub fn timestamp(&self) -> u64 {
        self.timestamp
    }

    /// Moves the clock forward (the next block's timestamp).
    pub fn advance_time(&mut self, seconds: u64) {
        self.timestamp += seconds;
    }

    /// Deploys `artifact` with constructor `args`; returns its address.
    pub fn deploy(&mut self, from: Address, artifact: &Artifact, args: &[Token]) -> Result<Address, TxError> {
        let mut code = artifact.bytecode.clone();
        code.extend(ethers_core::abi::encode(args));
        let receipt = self.execute(from, TxKind::Create, code, artifact, true)?;
        receipt.contract_address.ok_or_else(|| TxError::Halted("no contract address".into()))
    }

    /// Sends a transaction calling `function` on `to`.
    pub fn send(
        &mut self,
        from: Address,
        to: Address,
        artifact: &Artifact,
        function: &str,
        args: &[Token],
    ) -> Result<Receipt, TxError> {
        let data = encode_call(&artifact.abi, function, args).map_err(|e| TxError::Abi(e.to_string()))?;
        self.execute(from, TxKind::Call(to.0.into()), data, artifact, true)
    }

    /// Calls a view `function` without changing state; returns its outputs.
    pub fn call(
        &mut self,
        to: Address,
        artifact: &Artifact,
        function: &str,
        args: &[Token],
    ) -> Result<Vec<Token>, TxError> {
        let f = artifact.abi.function(function).map_err(|e| TxError::Abi(e.to_string()))?;
        let data = f.encode_input(args).map_err(|e| TxError::Abi(e.to_string()))?;
        let receipt = self.execute(Address::zero(), TxKind::Call(to.0.into()), data, artifact, false)?;
        f.decode_output(&receipt.output).map_err(|e| TxError::Abi(e.to_string()))
    }

    fn execute(
        &mut self,
        from: Address,
        kind: TxKind,
        data: Vec<u8>,
        artifact: &Artifact,
        commit: bool,
    ) -> Result<Receipt, TxError> {
        let caller = EvmAddress::from(from.0);
        let tx = TxEnv::builder()
            .caller(caller)
            .kind(kind)
            .data(Bytes::from(data))
            .nonce(exec::nonce_of(&self.db, caller))
            .gas_limit(TX_GAS_CAP)
            .gas_price(0)
            .chain_id(Some(self.chain_id))
            .build()
            .map_err(|e| TxError::Invalid(format!("{e:?}")))?;
        let block = BlockParams { number: self.block_number + 1, timestamp: self.timestamp, basefee: 0 };
        let outcome =
            exec::transact(&mut self.db, self.chain_id, &block, tx).map_err(|e| TxError::Invalid(e.to_string()))?;
        if commit {
            self.db.commit(outcome.state);
            self.block_number = block.number;
        }
        match outcome.result {
            ExecutionResult::Success { gas, logs, output, .. } => {
                let (output, contract_address) = match output {
                    Output::Call(bytes) => (bytes.to_vec(), None),
                    Output::Create(bytes, address) => {
                        (bytes.to_vec(), address.map(|a| Address::from_slice(a.as_slice())))
                    }
                };
                let logs = logs
                    .into_iter()
                    .map(|log| RawLog {
                        topics: log.data.topics().iter().map(|t| H256::from_slice(t.as_slice())).collect(),
                        data: log.data.data.to_vec(),
                    })
                    .collect();
                Ok(Receipt { gas_used: gas.tx_gas_used(), logs, contract_address, output })
            }
            ExecutionResult::Revert { output, .. } => {
                Err(TxError::Reverted { reason: artifact.describe_revert(&output), data: output.to_vec() })
            }
            ExecutionResult::Halt { reason, .. } => Err(TxError::Halted(format!("{reason:?}"))),
        }
    }
}

impl Receipt {
    /// The logs decoded as `event` of `abi`, in order.
    pub fn events(&self, abi: &Abi, event: &str) -> Vec<Vec<Token>> {
        let Ok(event) = abi.event(event) else { return Vec::new() };
        self.logs
            .iter()
            .filter(|log| log.topics.first() == Some(&event.signature()))
            .filter_map(|log| event.parse_log(log.clone()).ok())
            .map(|parsed| parsed.params.into_iter().map(|p| p.value).collect())
            .collect()
    }
}
