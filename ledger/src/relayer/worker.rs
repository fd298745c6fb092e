//! The relayer's background work: resending the journal after a start,
//! grouping requests into bundles, sending them, and attributing each
//! mined transaction's outcome to the requests it carried.

use super::*;

/// Resends the journal from the last mined nonce; the nonce new work starts at.
pub(super) async fn resynchronise(
    inner: &Arc<Inner>,
    commands: &mpsc::UnboundedSender<Command>,
) -> Result<u64, RelayError> {
    let address = inner.wallet.address();
    let mut next = inner.client.nonce(address).await.map_err(from_client)?;
    recover(inner, commands, &mut next).await?;
    Ok(next.max(inner.client.pending_nonce(address).await.map_err(from_client)?))
}

/// Resends what the journal holds as sent but the ledger has not mined.
async fn recover(
    inner: &Arc<Inner>,
    commands: &mpsc::UnboundedSender<Command>,
    next: &mut u64,
) -> Result<(), RelayError> {
    let unsettled = inner.store().unsettled().map_err(unavailable)?;
    if unsettled.is_empty() {
        return Ok(());
    }
    // The transactions, in nonce order, each with its jobs in call order.
    let mut transactions: Vec<Vec<Job>> = Vec::new();
    for job in unsettled {
        match transactions.last_mut() {
            Some(jobs) if jobs[0].sent.tx_hash == job.sent.tx_hash => jobs.push(job),
            _ => transactions.push(vec![job]),
        }
    }
    let (mut resent, mut settled) = (0usize, 0usize);
    for jobs in transactions {
        let first = &jobs[0].sent;
        let target = target_of(&inner.client, first.target);
        let bundled = first.bundle_index.is_some();
        if let Some(outcome) = inner.client.outcome(first.tx_hash).await.map_err(from_client)? {
            let statuses = attribute(&outcome, target, bundled, jobs.len())
                .into_iter()
                .zip(&jobs)
                .map(|(result, job)| (job.id, status_of(&outcome, &result)))
                .collect::<Vec<_>>();
            inner.store().settle(&statuses).map_err(unavailable)?;
            settled += jobs.len();
            continue;
        }
        let tx = Outgoing {
            target,
            bundled,
            gas_limit: if bundled { jobs.iter().map(|j| j.sent.gas_limit).sum() } else { first.gas_limit },
            nonce: first.relayer_nonce,
            raw: first.raw.clone(),
            hash: first.tx_hash,
            signed: None,
            jobs: jobs
                .iter()
                .map(|j| OutJob {
                    id: j.id,
                    input: Bytes::from(j.sent.input.clone()),
                    done: None,
                    turn: inner.signer_lock(j.sent.signer).try_lock_owned().ok().map(|turn| (j.sent.signer, turn)),
                })
                .collect(),
        };
        resent += 1;
        if inner.dispatch(tx, next, commands).await {
            return Err(RelayError::Unavailable("the ledger is unreachable".into()));
        }
    }
    tracing::info!(resent, settled, "relayer recovered its journal");
    Ok(())
}

pub(super) fn target_of(client: &LedgerClient, address: Address) -> Target {
    let contracts = client.contracts();
    if address == contracts.directory {
        Target::Directory
    } else if address == contracts.access {
        Target::Access
    } else {
        Target::Records
    }
}

pub(super) fn status_of(outcome: &Outcome, result: &Result<Vec<Log>, Refusal>) -> JobStatus {
    match result {
        Ok(_) => JobStatus::Mined { block_number: outcome.block_number },
        Err(refusal) => JobStatus::Reverted { block_number: outcome.block_number, error: refusal.code.clone() },
    }
}

/// What each of a transaction's `calls` did: its events, or the
/// contract's refusal. A bundle reports a call that reverted in a
/// `BundledCallReverted(index, reason)` event; every other call emits its
/// own events, in call order (one each, for Chartkey's contracts: when the
/// count does not allow telling them apart, each gets all of them).
pub(super) fn attribute(
    outcome: &Outcome,
    target: Target,
    bundled: bool,
    calls: usize,
) -> Vec<Result<Vec<Log>, Refusal>> {
    let reverted = || Refusal { code: "Reverted".into(), message: "The ledger refused this.".into() };
    if !outcome.success {
        return vec![Err(reverted()); calls];
    }
    if !bundled {
        return vec![Ok(outcome.logs.clone())];
    }
    let event = bundled_call_reverted();
    let mut failures = BTreeMap::new();
    let mut others = Vec::new();
    for log in &outcome.logs {
        let topics = log.data.topics();
        if topics.first() == Some(&event) && topics.len() == 2 {
            let index = U256::from_be_bytes(topics[1].0);
            let reason = ethers_core::abi::decode(&[ethers_core::abi::ParamType::Bytes], &log.data.data)
                .ok()
                .and_then(|tokens| tokens.into_iter().next())
                .and_then(|token| token.into_bytes())
                .unwrap_or_default();
            if let Ok(index) = usize::try_from(index) {
                failures.insert(index, Refusal::decode(target.artifact(), &reason));
            }
        } else {
            others.push(log.clone());
        }
    }
    let one_each = others.len() + failures.len() == calls;
    let mut others = others.into_iter();
    (0..calls)
        .map(|index| match failures.remove(&index) {
            Some(refusal) => Err(refusal),
            None if one_each => Ok(others.next().into_iter().collect()),
            None => Ok(outcome.logs.clone()),
        })
        .collect()
}

pub(super) fn bundled_call_reverted() -> B256 {
    let event = artifacts::records().abi.event("BundledCallReverted").expect("the contracts report bundle failures");
    B256::from(event.signature().0)
}

/// Waits for a sent transaction's block, records the outcome of each job it
/// carries and tells whoever waits. A call sent alone that reverted is
/// simulated again for its reason (receipts carry none); a bundle's events
/// carry each failed call's reason.
pub(super) async fn finish(
    inner: &Inner,
    commands: &mpsc::UnboundedSender<Command>,
    mut tx: Outgoing,
    submitted: Submitted,
) {
    let outcome = match inner.client.confirm(tx.hash, submitted).await {
        Ok(outcome) => outcome,
        // Still journalled as sent: a restart settles it.
        Err(e) => {
            tx.release(inner);
            return tx.fail(&from_client(e));
        }
    };
    let mut results = attribute(&outcome, tx.target, tx.bundled, tx.jobs.len());
    if !tx.bundled && !outcome.success {
        let call = CallRequest {
            from: Some(inner.wallet.address()),
            to: Some(tx.target.address(&inner.client.contracts())),
            data: tx.jobs[0].input.clone(),
            ..Default::default()
        };
        if let Err(ClientError::Reverted(data)) = inner.client.call(call).await {
            results = vec![Err(Refusal::decode(tx.target.artifact(), &data))];
        }
    }
    let statuses = tx.jobs.iter().zip(&results).map(|(job, result)| (job.id, status_of(&outcome, result))).collect();
    let _ = commands.send(Command::Settle(statuses));
    tx.release(inner);
    let calls_in_tx = tx.jobs.len() as u32;
    for (job, result) in tx.jobs.iter_mut().zip(results) {
        let Some(done) = job.done.take() else { continue };
        let _ = done.send(match result {
            Ok(logs) => Ok(Relayed {
                job: job.id,
                tx_hash: tx.hash,
                block_number: outcome.block_number,
                tx_gas_used: outcome.gas_used,
                calls_in_tx,
                logs,
            }),
            Err(refusal) => Err(RelayError::Refused(refusal)),
        });
    }
}

/// Groups requests into transactions: each contract's calls in bundles of at
/// most [`MAX_BUNDLE`] calls and [`MAX_BUNDLE_GAS`]; a lone call as itself.
pub(super) fn group(sends: Vec<(Request, u64, Reply)>) -> Vec<(Outgoing, Vec<Waiting>)> {
    let mut groups: Vec<(Outgoing, Vec<Waiting>)> = Vec::new();
    for (request, gas_limit, reply) in sends {
        let open = groups.iter().position(|(tx, _)| {
            tx.target == request.target && tx.jobs.len() < MAX_BUNDLE && tx.gas_limit + gas_limit <= MAX_BUNDLE_GAS
        });
        let index = match open {
            Some(index) => index,
            None => {
                groups.push((
                    Outgoing {
                        target: request.target,
                        jobs: Vec::new(),
                        bundled: false,
                        gas_limit: 0,
                        nonce: 0,
                        raw: Vec::new(),
                        hash: B256::ZERO,
                        signed: None,
                    },
                    Vec::new(),
                ));
                groups.len() - 1
            }
        };
        let (tx, requests) = &mut groups[index];
        let (done, waiting) = oneshot::channel();
        tx.gas_limit += gas_limit;
        tx.jobs.push(OutJob { id: 0, input: request.input.clone(), done: Some(done), turn: None });
        requests.push((request, reply, waiting));
    }
    for (tx, _) in &mut groups {
        tx.bundled = tx.jobs.len() > 1;
        if tx.bundled {
            // The bundle's own loop and copies, on top of its calls.
            tx.gas_limit = (tx.gas_limit + 5_000 + 3_000 * tx.jobs.len() as u64).min(TX_GAS_CAP);
        }
    }
    groups
}

/// The one task that signs, journals and sends: consecutive relayer nonces,
/// one commit for everything that queued up meanwhile.
pub(super) async fn work(
    inner: Arc<Inner>,
    mut receiver: mpsc::UnboundedReceiver<Command>,
    commands: mpsc::UnboundedSender<Command>,
    mut next: u64,
) {
    let mut resync = false;
    while let Some(first) = receiver.recv().await {
        let mut sends = Vec::new();
        let mut settles = Vec::new();
        let mut next_command = Some(first);
        while let Some(command) = next_command {
            match command {
                Command::Send { request, gas_limit, reply } => sends.push((request, gas_limit, reply)),
                Command::Settle(statuses) => settles.extend(statuses),
            }
            next_command = if sends.len() < MAX_BATCH { receiver.try_recv().ok() } else { None };
        }
        if !settles.is_empty() {
            let inner = Arc::clone(&inner);
            let result = tokio::task::spawn_blocking(move || inner.store().settle(&settles)).await;
            if let Ok(Err(e)) = result {
                tracing::error!(error = %e, "relayer journal: recording outcomes failed");
            }
        }
        if sends.is_empty() {
            continue;
        }
        if resync {
            // The ledger did not answer earlier: resend the journal (in nonce
            // order, from the last mined nonce) before anything new.
            match resynchronise(&inner, &commands).await {
                Ok(nonce) => {
                    next = nonce;
                    resync = false;
                }
                Err(e) => {
                    for (_, _, reply) in sends {
                        let _ = reply.send(Err(e.clone()));
                    }
                    continue;
                }
            }
        }
        let fees = match inner.client.fees().await {
            Ok(fees) => fees,
            Err(e) => {
                let e = from_client(e);
                for (_, _, reply) in sends {
                    let _ = reply.send(Err(e.clone()));
                }
                continue;
            }
        };
        let mut groups = group(sends);
        for (i, (tx, _)) in groups.iter_mut().enumerate() {
            inner.sign(fees, next + i as u64, tx);
        }
        let contracts = inner.client.contracts();
        let new_jobs: Vec<NewJob> = groups
            .iter()
            .flat_map(|(tx, requests)| {
                requests.iter().zip(&tx.jobs).enumerate().map(move |(index, ((request, _, _), job))| NewJob {
                    function: request.function.to_owned(),
                    signer: request.signer,
                    target: tx.target.address(&contracts),
                    input: job.input.to_vec(),
                    gas_limit: tx.gas_limit.min(request_gas(tx, index)),
                    relayer_nonce: tx.nonce,
                    raw: tx.raw.clone(),
                    tx_hash: tx.hash,
                    bundle_index: tx.bundled.then_some(index as u32),
                })
            })
            .collect();
        let journal = Arc::clone(&inner);
        let ids = match tokio::task::spawn_blocking(move || journal.store().insert(&new_jobs)).await {
            Ok(Ok(ids)) => ids,
            failure => {
                let e = match failure {
                    Ok(Err(e)) => unavailable(e),
                    Err(e) => RelayError::Unavailable(e.to_string()),
                    Ok(Ok(_)) => unreachable!(),
                };
                tracing::error!(error = %e, "relayer journal: storing requests failed");
                for (_, requests) in groups {
                    for (_, reply, _) in requests {
                        let _ = reply.send(Err(e.clone()));
                    }
                }
                continue;
            }
        };
        let mut ids = ids.into_iter();
        for (mut tx, requests) in groups {
            for job in &mut tx.jobs {
                job.id = ids.next().unwrap_or_default();
            }
            // Acknowledged: journalled. The ledger's answer comes through `done`.
            for ((_, reply, done), job) in requests.into_iter().zip(&tx.jobs) {
                let _ = reply.send(Ok(Sent { job: job.id, tx_hash: tx.hash, done }));
            }
            if resync {
                // Journalled; sent by the resynchronisation, in nonce order.
                tx.fail(&RelayError::Unavailable("the ledger is unreachable; the request is kept".into()));
                continue;
            }
            resync = inner.dispatch(tx, &mut next, &commands).await;
        }
    }
}

/// The gas limit journalled for call `index` of `tx` (its share, so a
/// bundle rebuilt from the journal asks for the same total).
fn request_gas(tx: &Outgoing, index: usize) -> u64 {
    let calls = tx.jobs.len() as u64;
    let share = tx.gas_limit / calls;
    if index == 0 { tx.gas_limit - share * (calls - 1) } else { share }
}
