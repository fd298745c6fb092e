//! Blocks as read back from the store, and a mined transaction with its
//! receipt and place (what the JSON-RPC and the relayer ask for).

use super::*;

/// A block: as executed by the miner, or read back from the store.
#[derive(Debug, Clone)]
pub struct Block {
    pub hash: B256,
    pub header: Header,
    pub transactions: Vec<SignedTx>,
    pub receipts: Vec<ReceiptEnvelope>,
}

/// A mined transaction with its receipt and where it is.
#[derive(Debug, Clone)]
pub struct MinedTx {
    pub tx: SignedTx,
    pub receipt: ReceiptEnvelope,
    pub block_hash: B256,
    pub block_number: u64,
    pub block_timestamp: u64,
    pub index: u64,
    /// Gas this transaction used (not cumulative).
    pub gas_used: u64,
    /// Index in the block of this transaction's first log.
    pub first_log_index: u64,
    pub contract_address: Option<Address>,
}

impl Block {
    /// Transaction `index` with its receipt.
    pub fn mined(&self, index: usize) -> Option<MinedTx> {
        let first_log_index = self.receipts.get(..index)?.iter().map(|r| r.logs().len() as u64).sum();
        self.mined_at(index, first_log_index)
    }

    /// Every transaction with its receipt, in order.
    pub fn mined_all(&self) -> Vec<MinedTx> {
        let mut first_log_index = 0;
        (0..self.transactions.len())
            .filter_map(|index| {
                let mined = self.mined_at(index, first_log_index)?;
                first_log_index += mined.receipt.logs().len() as u64;
                Some(mined)
            })
            .collect()
    }

    fn mined_at(&self, index: usize, first_log_index: u64) -> Option<MinedTx> {
        let tx = self.transactions.get(index)?.clone();
        mined_tx(self.hash, &self.header, index, tx, self.receipts.get(..=index)?, first_log_index)
    }
}

/// Transaction `index` of a block, given the block's receipts up to and
/// including its own.
pub(super) fn mined_tx(
    block_hash: B256,
    header: &Header,
    index: usize,
    tx: SignedTx,
    receipts: &[ReceiptEnvelope],
    first_log_index: u64,
) -> Option<MinedTx> {
    let receipt = receipts.get(index)?.clone();
    let previous = if index == 0 { 0 } else { receipts[index - 1].cumulative_gas_used() };
    let contract_address = match tx.envelope.kind() {
        TxKind::Create if receipt.is_success() => Some(tx.sender.create(tx.envelope.nonce())),
        _ => None,
    };
    Some(MinedTx {
        gas_used: receipt.cumulative_gas_used() - previous,
        tx,
        receipt,
        block_hash,
        block_number: header.number,
        block_timestamp: header.timestamp,
        index: index as u64,
        first_log_index,
        contract_address,
    })
}
