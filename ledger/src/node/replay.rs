//! Reading the stored chain back: its genesis, its blocks decoded, and
//! re-executing it from genesis (start-up, `ledger verify`, checkpoints).

use super::*;

/// The genesis spec stored with the chain, if any.
pub(super) fn stored_genesis(store: &Store) -> Result<Option<Genesis>, LedgerError> {
    let Some(bytes) = store.meta("genesis")? else { return Ok(None) };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| LedgerError::BadBlock { number: 0, reason: format!("genesis unreadable: {e}") })
}

pub(super) fn genesis_header(genesis: &Genesis) -> Result<(Header, B256), LedgerError> {
    let (_, diff) = genesis.build().map_err(|e| LedgerError::BadBlock { number: 0, reason: e.to_string() })?;
    Ok(genesis_header_of(genesis, &diff))
}

pub(super) fn genesis_header_of(genesis: &Genesis, diff: &StateDiff) -> (Header, B256) {
    let header = block::header(None, 0, genesis.timestamp, block::state_commitment(B256::ZERO, diff), &[], &[]);
    let hash = header.hash_slow();
    (header, hash)
}

pub(super) fn decode_block(stored: &StoredBlock) -> Result<Block, LedgerError> {
    let bad = |reason: String| LedgerError::BadBlock { number: stored.number, reason };
    let header = Header::decode(&mut stored.header.as_slice()).map_err(|e| bad(format!("header unreadable: {e}")))?;
    let transactions = stored
        .transactions
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let envelope =
                TxEnvelope::decode_2718_exact(&t.raw).map_err(|e| bad(format!("transaction {i} unreadable: {e}")))?;
            SignedTx::recover(envelope).map_err(|e| bad(format!("transaction {i}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let receipts = stored
        .receipts
        .iter()
        .enumerate()
        .map(|(i, raw)| {
            ReceiptEnvelope::decode_2718_exact(raw).map_err(|e| bad(format!("receipt {i} unreadable: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Block { hash: B256::from(stored.hash), header, transactions, receipts })
}

/// Re-executes the chain in `store` from `genesis` and checks every block
/// against what execution produces; returns the resulting state. The first
/// block that does not match is named in the error.
pub(super) fn replay(
    store: &Store,
    genesis: &Genesis,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(Executed, VerifyReport), LedgerError> {
    let head = store.head_number()?.ok_or(LedgerError::BadBlock { number: 0, reason: "missing".into() })?;
    let (mut db, diff) = genesis.build().map_err(|e| LedgerError::BadBlock { number: 0, reason: e.to_string() })?;
    let (genesis_header, genesis_hash) = genesis_header_of(genesis, &diff);
    let stored = store.block(0)?.ok_or(LedgerError::BadBlock { number: 0, reason: "missing".into() })?;
    check_stored(&stored, &genesis_header, genesis_hash, &[], &[])?;
    let (mut header, mut hash) = (genesis_header, genesis_hash);
    let mut transactions = 0u64;
    for number in 1..=head {
        let stored = store.block(number)?.ok_or(LedgerError::BadBlock { number, reason: "missing".into() })?;
        let bad = |reason: String| LedgerError::BadBlock { number, reason };
        let decoded = decode_block(&stored)?;
        for (i, t) in stored.transactions.iter().enumerate() {
            if keccak256(&t.raw).0 != t.hash {
                return Err(bad(format!("transaction {i}: stored hash does not match its bytes")));
            }
        }
        if decoded.header.timestamp < header.timestamp {
            return Err(bad("timestamp before its parent's".into()));
        }
        let parent = Parent { hash, header: &header };
        if let Some(upgrade) = Upgrade::of_header(&decoded.header) {
            if !stored.transactions.is_empty() {
                return Err(bad(format!("upgrade {} carries transactions", upgrade.name)));
            }
            let (upgraded, upgraded_hash) = upgrade
                .execute(&mut db, genesis.chain_id, &parent, decoded.header.timestamp)
                .map_err(|e| bad(e.to_string()))?;
            check_stored(&stored, &upgraded, upgraded_hash, &[], &[])?;
            progress(number, head);
            (header, hash) = (upgraded, upgraded_hash);
            continue;
        }
        let (executed, refused) =
            block::execute(&mut db, genesis.chain_id, &parent, decoded.header.timestamp, decoded.transactions);
        if let Some((tx, reason)) = refused.first() {
            return Err(bad(format!("transaction {} cannot be included: {reason}", tx.hash())));
        }
        let raws: Vec<Vec<u8>> = executed.transactions.iter().map(|t| t.envelope.encoded_2718()).collect();
        let receipts: Vec<Vec<u8>> = executed.receipts.iter().map(|r| r.encoded_2718()).collect();
        check_stored(&stored, &executed.header, executed.hash, &raws, &receipts)?;
        transactions += executed.transactions.len() as u64;
        progress(number, head);
        (header, hash) = (executed.header, executed.hash);
    }
    let report = VerifyReport { blocks: head + 1, transactions, head_hash: hash };
    Ok((Executed { db, header, hash }, report))
}

/// Compares a stored block with the block re-execution produced.
pub(super) fn check_stored(
    stored: &StoredBlock,
    header: &Header,
    hash: B256,
    transactions: &[Vec<u8>],
    receipts: &[Vec<u8>],
) -> Result<(), LedgerError> {
    let bad = |reason: &str| Err(LedgerError::BadBlock { number: stored.number, reason: reason.into() });
    if stored.header != alloy_rlp::encode(header) {
        return bad("header does not match re-execution");
    }
    if stored.hash != hash.0 {
        return bad("stored hash does not match the header");
    }
    if stored.transactions.len() != transactions.len()
        || stored.transactions.iter().zip(transactions).any(|(s, raw)| &s.raw != raw)
    {
        return bad("transactions do not match re-execution");
    }
    if stored.receipts.as_slice() != receipts {
        return bad("receipts do not match re-execution");
    }
    Ok(())
}

/// Re-executes and checks the chain stored at `path` (read-only), calling
/// `progress(block, head)` as it goes.
pub fn verify(path: &Path, progress: &mut dyn FnMut(u64, u64)) -> Result<VerifyReport, LedgerError> {
    if !path.exists() {
        return Err(LedgerError::Missing { path: path.to_owned() });
    }
    let store = Store::open_read_only(path)?;
    let genesis = stored_genesis(&store)?.ok_or(LedgerError::BadBlock { number: 0, reason: "no genesis".into() })?;
    replay(&store, &genesis, progress).map(|(_, report)| report)
}

/// What a checkpoint is checked against, read from the chain stored at
/// `path` (after [`verify`]): its genesis (chain id, administrator) and the
/// hash of block `number`, if the chain reaches it.
pub fn checkpoint_view(path: &Path, number: u64) -> Result<(Genesis, Option<B256>), LedgerError> {
    if !path.exists() {
        return Err(LedgerError::Missing { path: path.to_owned() });
    }
    let store = Store::open_read_only(path)?;
    let genesis = stored_genesis(&store)?.ok_or(LedgerError::BadBlock { number: 0, reason: "no genesis".into() })?;
    let hash = store.block(number)?.map(|b| B256::from(b.hash));
    Ok((genesis, hash))
}
