//! `cargo xtask bench ledger`: gas of each contract call, and grants per
//! second on the embedded node (durable) and on anvil (in memory), with
//! real signed messages (EIP-712, signed by chartkey-core as the browser
//! does) relayed by the same relayer (simulation, journal, relayer-signed
//! transactions) in the same run.
//!
//! Prints one `name: value` per line.

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::U256 as AU256;
use chartkey_core::eip712::{Access, Anchor, AnchorBatch, Revoke, TypedMessage};
use chartkey_core::{AccountKeys, AccountSecret};
use chartkey_ledger::anvil::Anvil;
use chartkey_ledger::artifacts::directory;
use chartkey_ledger::artifacts::encode_call;
use chartkey_ledger::calls::SignedCall;
use chartkey_ledger::client::{LedgerClient, RemoteNode};
use chartkey_ledger::node::{Fees, Genesis, Node, Wallet};
use chartkey_ledger::relayer::{Relayer, Request};
use common::{grant, issue_credential, now, register};
use ethers_core::abi::Token;
use ethers_core::types::U256;

const CHAIN_ID: u64 = 6_514_795;
/// Grants in the throughput run, from this many patients.
const GRANTS: usize = 4_000;
const PATIENTS: usize = 1_000;
/// Grants per transaction in anvil's raw run: the relayer's largest bundle.
const RAW_BUNDLE: usize = 100;

struct Bench {
    relayer: Relayer,
    client: LedgerClient,
}

fn keys(n: u32) -> AccountKeys {
    let mut secret = [7u8; 32];
    secret[..4].copy_from_slice(&n.to_be_bytes());
    AccountSecret::from_bytes(secret).derive()
}

impl Bench {
    /// `message` signed by `signer` (as the browser signs it), ready to relay.
    fn request<M: SignedCall + TypedMessage>(&self, signer: &AccountKeys, message: &M) -> Request {
        let domain = M::TARGET.domain(CHAIN_ID, &self.client.contracts());
        Request::signed(message, domain.sign(signer, message))
    }

    /// Relays `message` signed by `signer` and waits; returns the gas its
    /// share of the transaction used.
    async fn send<M: SignedCall + TypedMessage>(&self, signer: &AccountKeys, message: &M) -> u64 {
        let relayed = self.relayer.relay(self.request(signer, message)).await;
        let relayed = relayed.unwrap_or_else(|e| panic!("{}: {e}", M::FUNCTION));
        relayed.tx_gas_used / u64::from(relayed.calls_in_tx)
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(run());
}

/// The embedded node, its genesis funding the relayer and the administrator.
async fn embedded(dir: &Path) -> (Arc<Node>, LedgerClient) {
    let ether = AU256::from(10u64).pow(AU256::from(18));
    let genesis = Genesis {
        chain_id: CHAIN_ID,
        timestamp: now(),
        admin: admin().address(),
        alloc: [(relayer_wallet().address(), ether * AU256::from(1_000_000u64)), (admin().address(), ether)].into(),
    };
    let node = Arc::new(Node::open(&dir.join("ledger.sqlite3"), genesis).unwrap());
    (Arc::clone(&node), LedgerClient::Embedded(node))
}

/// Anvil with the relayer and administrator funded and the contracts deployed.
async fn anvil(anvil: &Anvil) -> LedgerClient {
    anvil.fund(&[relayer_wallet().address(), admin().address()], 1_000_000).await.unwrap();
    let contracts = RemoteNode::deploy(&anvil.url, &relayer_wallet(), admin().address()).await.unwrap();
    LedgerClient::Remote(Arc::new(RemoteNode::connect(&anvil.url, contracts).await.unwrap()))
}

fn relayer_wallet() -> Wallet {
    Wallet::from_secret(&[0x5e; 32]).unwrap()
}

fn admin() -> Wallet {
    Wallet::from_secret(&[0xad; 32]).unwrap()
}

async fn start(client: LedgerClient, journal: &Path) -> Arc<Bench> {
    let relayer = Relayer::start(client.clone(), relayer_wallet(), journal).await.unwrap();
    Arc::new(Bench { relayer, client })
}

/// A clinician with a credential, and the patients, registered.
async fn setup(bench: &Arc<Bench>, clinician: &AccountKeys) {
    let authority = keys(1_000_002);
    bench.send(&authority, &register(&authority, 4, U256::zero())).await;
    let input =
        encode_call(&directory().abi, "setAuthority", &[Token::Address(authority.address()), Token::Bool(true)])
            .unwrap();
    let client = &bench.client;
    let (max_fee_per_gas, max_priority_fee_per_gas) = client.fees().await.unwrap();
    let fees = Fees { gas_limit: 200_000, max_fee_per_gas, max_priority_fee_per_gas };
    let nonce = client.pending_nonce(admin().address()).await.unwrap();
    let envelope = admin().sign(CHAIN_ID, nonce, Some(client.contracts().directory), input.into(), fees);
    let hash = *envelope.tx_hash();
    let submitted = client.submit_signed_by(envelope, admin().address()).await.unwrap();
    assert!(client.confirm(hash, submitted).await.unwrap().success);
    credential(bench, &authority, clinician, U256::one()).await;
    let mut registrations = tokio::task::JoinSet::new();
    for p in 0..=PATIENTS as u32 {
        let bench = Arc::clone(bench);
        registrations.spawn(async move {
            let patient = keys(p);
            bench.send(&patient, &register(&patient, 1, U256::zero())).await
        });
    }
    while registrations.join_next().await.is_some() {}
}

/// Registers `clinician` and has `authority` issue it a credential (with the
/// authority's Directory `nonce`).
async fn credential(bench: &Bench, authority: &AccountKeys, clinician: &AccountKeys, nonce: U256) {
    bench.send(clinician, &register(clinician, 2, U256::zero())).await;
    bench.send(authority, &issue_credential(authority, clinician, nonce)).await;
}

/// Patient-signed grants (signed beforehand, as browsers do), each
/// simulated, journalled, wrapped and signed by the relayer; counted when
/// every one is mined (on the embedded node: its block on disk). Each
/// patient's grants go one after another (consecutive nonces); the patients
/// at once. Grants per second.
async fn throughput(bench: &Arc<Bench>, clinician: &AccountKeys) -> f64 {
    let per_patient = GRANTS / PATIENTS;
    let chains: Vec<Vec<Request>> = (1..=PATIENTS as u32)
        .map(|p| {
            let patient = keys(p);
            (0..per_patient as u64).map(|nonce| bench.request(&patient, &grant(&patient, clinician, nonce))).collect()
        })
        .collect();
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for chain in chains {
        let bench = Arc::clone(bench);
        tasks.spawn(async move {
            for request in chain {
                bench.relayer.relay(request).await.expect("grant relayed");
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    GRANTS as f64 / started.elapsed().as_secs_f64()
}

/// Anvil's own capacity for the same grants, with no relayer in the way:
/// patients' grants with their next nonces (`first_nonce`…), in bundles of
/// [`RAW_BUNDLE`] as the relayer builds them, signed beforehand by a funded
/// key with consecutive nonces, handed over in JSON-RPC batches; timed
/// until the last is mined. Grants per second (each bundle checked: mined
/// with success, one event per grant).
async fn anvil_raw(anvil: &Anvil, bench: &Bench, clinician: &AccountKeys, first_nonce: u64) -> f64 {
    let LedgerClient::Remote(node) = &bench.client else { unreachable!("anvil is reached over JSON-RPC") };
    let sender = Wallet::from_secret(&[0x7a; 32]).unwrap();
    anvil.fund(&[sender.address()], 1_000_000).await.unwrap();
    let per_patient = (GRANTS / PATIENTS) as u64;
    // Round r carries every patient's grant with nonce first_nonce + r, so
    // each patient's grants run in nonce order.
    let grants: Vec<Request> = (0..per_patient)
        .flat_map(|r| (1..=PATIENTS as u32).map(move |p| (p, first_nonce + r)))
        .map(|(p, nonce)| bench.request(&keys(p), &grant(&keys(p), clinician, nonce)))
        .collect();
    let target = grants[0].target;
    let (max_fee_per_gas, max_priority_fee_per_gas) = bench.client.fees().await.unwrap();
    let mut nonce = bench.client.pending_nonce(sender.address()).await.unwrap();
    let mut raw = Vec::new();
    for bundle in grants.chunks(RAW_BUNDLE) {
        let input = target.bundle(bundle.iter().map(|g| g.input.as_ref()));
        let fees = Fees { gas_limit: 55_000 * bundle.len() as u64 + 30_000, max_fee_per_gas, max_priority_fee_per_gas };
        let to = Some(target.address(&bench.client.contracts()));
        let envelope = sender.sign(CHAIN_ID, nonce, to, input.into(), fees);
        raw.push((*envelope.tx_hash(), alloy_primitives::Bytes::from(envelope.encoded_2718())));
        nonce += 1;
    }
    let calls: Vec<(&str, serde_json::Value)> =
        raw.iter().map(|(_, bytes)| ("eth_sendRawTransaction", serde_json::json!([bytes]))).collect();
    let started = Instant::now();
    // Anvil refuses request bodies over 2 MB: a few bundles per batch.
    for calls in calls.chunks(8) {
        for sent in node.batch::<serde_json::Value>(calls).await.unwrap() {
            sent.expect("anvil takes the transaction");
        }
    }
    let last = raw.last().unwrap().0;
    while bench.client.outcome(last).await.unwrap().is_none() {
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    for ((hash, _), bundle) in raw.iter().zip(grants.chunks(RAW_BUNDLE)) {
        let outcome = bench.client.outcome(*hash).await.unwrap().expect("mined before the last");
        assert!(outcome.success && outcome.logs.len() == bundle.len(), "every grant in {hash} went through");
    }
    GRANTS as f64 / elapsed
}

#[allow(clippy::print_stdout)]
async fn run() {
    // On the target directory's disk: /tmp is tmpfs on many machines, and
    // the embedded node's throughput is only meaningful with real fsyncs.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let (node, client) = embedded(dir.path()).await;
    let bench = start(client, &dir.path().join("relayer.sqlite3")).await;
    let clinician = keys(1_000_001);
    setup(&bench, &clinician).await;

    // Gas, each call on its own in a transaction (patient 0, who shares
    // with the clinician for the first time).
    let patient = keys(0);
    let (me, record_id) = (patient.address(), [1u8; 32]);
    let anchor = Anchor { author: me, patient: me, record_id, ciphertext_hash: [2; 32], category: 3, amends: [0; 32] };
    let gas_anchor = bench.send(&patient, &anchor).await;
    let batch = AnchorBatch { author: me, patient: me, root: [3; 32], count: 1000 };
    let gas_batch = bench.send(&patient, &batch).await;
    let gas_grant_alone = bench.send(&patient, &grant(&patient, &clinician, 0)).await;
    let gas_regrant = bench.send(&patient, &grant(&patient, &clinician, 1)).await;
    let access = Access { grantee: clinician.address(), patient: me, record_id, nonce: U256::zero() };
    let gas_first_access = bench.send(&clinician, &access).await;
    let access = Access { nonce: U256::one(), ..access };
    let gas_access = bench.send(&clinician, &access).await;
    let gas_revoke = bench.send(&patient, &Revoke { patient: me, grantee: clinician.address(), nonce: 2.into() }).await;

    // First grants as the relayer sends them when patients share at once:
    // fifty patients, a new clinician; the relayer bundles what arrives
    // together. Gas per grant: all their transactions' gas over fifty.
    let second = keys(1_000_003);
    credential(&bench, &keys(1_000_002), &second, 2.into()).await;
    let mut sharing = tokio::task::JoinSet::new();
    for p in 1..=50u32 {
        let (bench, second) = (Arc::clone(&bench), keys(1_000_003));
        sharing.spawn(async move {
            let patient = keys(p);
            bench.relayer.relay(bench.request(&patient, &grant(&patient, &second, 0))).await.expect("grant relayed")
        });
    }
    let mut transactions = std::collections::HashMap::new();
    while let Some(relayed) = sharing.join_next().await {
        let relayed = relayed.unwrap();
        transactions.insert(relayed.tx_hash, relayed.tx_gas_used);
    }
    let gas_grant = transactions.values().sum::<u64>() / 50;
    let grants_per_tx = 50.0 / transactions.len() as f64;

    let head_before = node.head().0;
    let embedded_rate = throughput(&bench, &clinician).await;
    let blocks = node.head().0 - head_before;

    // The same workload on anvil, relayed by the same code.
    let anvil_dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let workspace = &common::workspace();
    // Interval mining every 100 ms: anvil's best of the settings tried here
    // (automine, a block per transaction: ~24 grants/s; 1 s blocks: ~190/s;
    // 100 ms: ~470/s). ANVIL_OPTIONS replaces it.
    let options = std::env::var("ANVIL_OPTIONS").unwrap_or_else(|_| "--block-time 0.1".into());
    let options: Vec<String> = options.split_whitespace().map(String::from).collect();
    let options: Vec<&str> = options.iter().map(String::as_str).collect();
    let anvil_node =
        Anvil::start_with(workspace, CHAIN_ID, &options).expect("anvil (npm @foundry-rs/anvil in contracts/)");
    let anvil_bench = start(anvil(&anvil_node).await, &anvil_dir.path().join("relayer.sqlite3")).await;
    setup(&anvil_bench, &clinician).await;
    let anvil_rate = throughput(&anvil_bench, &clinician).await;
    let anvil_raw_rate = anvil_raw(&anvil_node, &anvil_bench, &clinician, (GRANTS / PATIENTS) as u64).await;

    println!("gas.grant: {gas_grant}");
    println!("gas.grant_bundle_size: {grants_per_tx:.1}");
    println!("gas.grant_alone: {gas_grant_alone}");
    println!("gas.grant_renewal: {gas_regrant}");
    println!("gas.revoke: {gas_revoke}");
    println!("gas.anchor: {gas_anchor}");
    println!("gas.anchor_batch_1000: {gas_batch}");
    println!("gas.access_log: {gas_access}");
    println!("gas.access_log_first: {gas_first_access}");
    println!("ledger.grants_per_s.embedded: {embedded_rate:.0}");
    println!("ledger.grants_blocks.embedded: {blocks}");
    println!("ledger.grants_per_s.anvil: {anvil_rate:.0}");
    println!("ledger.grants_per_s.anvil_raw: {anvil_raw_rate:.0}");
    println!("ledger.grants_ratio: {:.2}", embedded_rate / anvil_rate);
    println!("ledger.anvil_options: {}", options.join(" "));
}
