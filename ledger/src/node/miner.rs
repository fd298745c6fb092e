//! The miner: queued transactions into blocks, each block durable before
//! its transactions are acknowledged.

use super::*;

/// The miner: takes queued transactions into blocks until the node stops.
pub(super) fn mine(inner: &Inner, mut writer: Store) {
    loop {
        #[cfg(feature = "test-controls")]
        match inner.block_delay_ms.load(Ordering::SeqCst) {
            0 => {}
            ms => std::thread::sleep(std::time::Duration::from_millis(ms)),
        }
        let batch = {
            let mut pool = lock(&inner.pool);
            while (pool.queue.is_empty() || inner.paused()) && !inner.stopping.load(Ordering::SeqCst) {
                pool = inner.work.wait(pool).unwrap_or_else(|p| p.into_inner());
            }
            if pool.queue.is_empty() {
                return;
            }
            let mut gas = 0u64;
            let take = pool
                .queue
                .iter()
                .take_while(|p| {
                    gas += p.tx.envelope.gas_limit();
                    gas <= BLOCK_GAS_LIMIT
                })
                .count()
                .max(1);
            pool.queue.drain(..take).collect::<Vec<_>>()
        };
        let (transactions, mut waiters): (Vec<SignedTx>, HashMap<B256, _>) =
            batch.into_iter().map(|p| (p.tx.hash(), p)).map(|(hash, p)| (p.tx, (hash, p.done))).unzip();
        let senders: Vec<Address> = transactions.iter().map(|t| t.sender).collect();
        let hashes: Vec<B256> = transactions.iter().map(SignedTx::hash).collect();

        let mut state = write(&inner.state);
        let timestamp = inner.now().max(state.header.timestamp);
        let parent_header = state.header.clone();
        let parent = Parent { hash: state.hash, header: &parent_header };
        let (executed, refused) =
            block::execute(&mut state.db, inner.genesis.chain_id, &parent, timestamp, transactions);
        {
            let mut pool = lock(&inner.pool);
            for (sender, hash) in senders.iter().zip(&hashes) {
                pool.known.remove(hash);
                if let Some(entry) = pool.senders.get_mut(sender) {
                    entry.1 -= 1;
                    if entry.1 == 0 {
                        pool.senders.remove(sender);
                    }
                }
            }
        }
        for (tx, reason) in refused {
            if let Some(done) = waiters.remove(&tx.hash()) {
                let _ = done.send(Err(SubmitError::Rejected(reason.to_string())));
            }
        }
        if executed.transactions.is_empty() {
            continue;
        }
        state.header = executed.header.clone();
        state.hash = executed.hash;
        drop(state);

        let stored = StoredBlock {
            number: executed.header.number,
            hash: executed.hash.0,
            header: alloy_rlp::encode(&executed.header),
            transactions: executed
                .transactions
                .iter()
                .map(|t| StoredTx { hash: t.hash().0, raw: t.envelope.encoded_2718() })
                .collect(),
            receipts: executed.receipts.iter().map(|r| r.encoded_2718()).collect(),
        };
        if let Err(e) = writer.append(&stored) {
            // The in-memory state is now ahead of the disk: stop, so nothing
            // more is acknowledged; a restart rebuilds from what is durable.
            let reason = format!("writing block {}: {e}", stored.number);
            inner.fail(reason.clone());
            for (_, done) in waiters {
                let _ = done.send(Err(SubmitError::Unavailable(reason.clone())));
            }
            let mut pool = lock(&inner.pool);
            for pending in pool.queue.drain(..) {
                let _ = pending.done.send(Err(SubmitError::Unavailable(reason.clone())));
            }
            return;
        }
        *lock(&inner.head) = (executed.header.number, executed.hash, executed.header.timestamp);
        let mut previous_gas = 0;
        for (index, (tx, receipt)) in executed.transactions.iter().zip(&executed.receipts).enumerate() {
            let cumulative = receipt.cumulative_gas_used();
            if let Some(done) = waiters.remove(&tx.hash()) {
                let _ = done.send(Ok(Inclusion {
                    hash: tx.hash(),
                    block_number: executed.header.number,
                    block_hash: executed.hash,
                    index: index as u64,
                    success: receipt.is_success(),
                    gas_used: cumulative - previous_gas,
                    logs: receipt.logs().to_vec(),
                }));
            }
            previous_gas = cumulative;
        }
    }
}
