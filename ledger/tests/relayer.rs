//! The relayer on the embedded node: signed messages become paid
//! transactions; refusals come back in words before anything is sent; one
//! signer's requests keep their order; and the journal brings back, after a
//! crash, every accepted request without relaying any twice.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use alloy_primitives::{Address, Bytes, U256, keccak256};
use chartkey_core::AccountKeys;
use chartkey_core::eip712::{Domain, Grant, IssueCredential, Register, TypedMessage};
use chartkey_ledger::Node;
use chartkey_ledger::abi::ChartkeyDirectory;
use chartkey_ledger::artifacts::encode_call;
use chartkey_ledger::artifacts::{directory, records};
use chartkey_ledger::calls::{self, SignedCall, Target};
use chartkey_ledger::client::LedgerClient;
use chartkey_ledger::node::{BASE_FEE, CallRequest, Fees};
use chartkey_ledger::relayer::{JobStatus, JobStore, NewJob, RelayError, Relayer, Request};
use common::{ADMIN, CHAIN_ID, RELAYER, embedded_node, grant, issue_credential, keys, register, wallet};
use ethers_core::abi::Token;

struct World {
    node: Arc<Node>,
    relayer: Relayer,
}

impl World {
    async fn start(dir: &Path) -> Self {
        let node = embedded_node(dir);
        let relayer =
            Relayer::start(LedgerClient::Embedded(Arc::clone(&node)), wallet(RELAYER), &dir.join("relayer.sqlite3"))
                .await
                .unwrap();
        Self { node, relayer }
    }

    fn domain<M: SignedCall>(&self) -> Domain {
        M::TARGET.domain(CHAIN_ID, &self.node.contracts())
    }

    fn nonce_of<M: SignedCall>(&self, who: &AccountKeys) -> ethers_core::types::U256 {
        let artifact = M::artifact();
        let input = encode_call(&artifact.abi, "nonces", &[Token::Address(who.address())]).unwrap();
        let to = M::TARGET.address(&self.node.contracts());
        let (out, _) = self.node.call(&CallRequest { to: Some(to), data: input.into(), ..Default::default() }).unwrap();
        ethers_core::types::U256::from_big_endian(&out)
    }

    fn request<M: SignedCall + TypedMessage>(&self, signer: &AccountKeys, message: &M) -> Request {
        Request::signed(message, self.domain::<M>().sign(signer, message))
    }

    async fn register(&self, who: &AccountKeys, role: u8) {
        let message = register(who, role, self.nonce_of::<Register>(who));
        self.relayer.relay(self.request(who, &message)).await.expect("registered");
    }

    /// A clinician with a credential from an authority the admin named.
    async fn verified_clinician(&self, clinician: &AccountKeys, authority: &AccountKeys) {
        self.register(clinician, 2).await;
        self.register(authority, 4).await;
        let admin = wallet(ADMIN);
        let input =
            encode_call(&directory().abi, "setAuthority", &[Token::Address(authority.address()), Token::Bool(true)])
                .unwrap();
        let fees = Fees { gas_limit: 200_000, max_fee_per_gas: 2 * u128::from(BASE_FEE), max_priority_fee_per_gas: 0 };
        let raw = admin.sign_raw(
            CHAIN_ID,
            self.node.nonce(admin.address()),
            Some(self.node.contracts().directory),
            input.into(),
            fees,
        );
        self.node.send_raw_transaction(&raw).await.unwrap();
        let credential = issue_credential(authority, clinician, self.nonce_of::<IssueCredential>(authority));
        self.relayer.relay(self.request(authority, &credential)).await.expect("credential issued");
    }
}

fn granted_serials(world: &World, patient: &AccountKeys, clinician: &AccountKeys) -> u64 {
    let input = encode_call(
        &records().abi,
        "grantOf",
        &[Token::Address(patient.address()), Token::Address(clinician.address())],
    )
    .unwrap();
    let to = world.node.contracts().records;
    let (out, _) = world.node.call(&CallRequest { to: Some(to), data: input.into(), ..Default::default() }).unwrap();
    u64::from(out[31])
}

fn refusal(result: Result<impl std::fmt::Debug, RelayError>) -> (String, String) {
    match result {
        Err(RelayError::Refused(r)) => (r.code, r.message),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relays_signed_messages_and_refuses_in_words() {
    let dir = tempfile::tempdir().unwrap();
    let world = World::start(dir.path()).await;
    let (clinician, authority) = (keys(200), keys(201));
    world.verified_clinician(&clinician, &authority).await;

    // Twenty patients register and grant at once.
    let world = Arc::new(world);
    let patients: Vec<AccountKeys> = (1..=20).map(keys).collect();
    let mut tasks = tokio::task::JoinSet::new();
    for n in 1..=20 {
        let world = Arc::clone(&world);
        tasks.spawn(async move {
            let (patient, clinician) = (keys(n), keys(200));
            world.register(&patient, 1).await;
            let message = grant(&patient, &clinician, 0);
            world.relayer.relay(world.request(&patient, &message)).await
        });
    }
    while let Some(done) = tasks.join_next().await {
        let relayed = done.unwrap().expect("grant relayed");
        let granted = relayed.logs.iter().any(|log| log.address == world.node.contracts().records);
        assert!(granted, "the receipt carries the Granted event");
    }
    for patient in &patients {
        assert_eq!(granted_serials(&world, patient, &clinician), 1);
    }

    // Refusals come back in words, before anything is sent.
    let relayer_nonce = world.node.nonce(world.relayer.address());
    let stranger = keys(202);
    world.register(&stranger, 2).await;
    let relayer_nonce = relayer_nonce + 1;
    let (code, message) =
        refusal(world.relayer.relay(world.request(&patients[0], &grant(&patients[0], &stranger, 0))).await);
    assert_eq!(code, "UnverifiedGrantee");
    assert!(message.contains("not verified"), "{message}");
    let (code, _) =
        refusal(world.relayer.relay(world.request(&patients[0], &grant(&patients[0], &clinician, 0))).await);
    assert_eq!(code, "InvalidAccountNonce", "a replayed grant");
    let forged = Request::signed(
        &grant(&patients[0], &clinician, 1),
        world.domain::<Grant>().sign(&patients[1], &grant(&patients[0], &clinician, 1)),
    );
    let (code, message) = refusal(world.relayer.relay(forged).await);
    assert_eq!(code, "WrongSigner");
    assert!(message.contains("signature"), "{message}");
    assert_eq!(world.node.nonce(world.relayer.address()), relayer_nonce, "refused requests cost nothing");

    // One signer's requests keep their order: each waits for the one before.
    let first = world.relayer.submit(world.request(&patients[0], &grant(&patients[0], &clinician, 1))).await.unwrap();
    let second = world.relayer.submit(world.request(&patients[0], &grant(&patients[0], &clinician, 2))).await.unwrap();
    let (first, second) = (first.done.await.unwrap().unwrap(), second.done.await.unwrap().unwrap());
    assert!(first.block_number < second.block_number);
    assert_eq!(granted_serials(&world, &patients[0], &clinician), 3);

    // Every accepted request is in the journal, settled.
    let job = world.relayer.job(second.job).await.unwrap().unwrap();
    assert_eq!(job.sent.tx_hash, second.tx_hash);
    assert_eq!(job.sent.function, "grant");
    assert_eq!(job.status, JobStatus::Mined { block_number: second.block_number });
    assert!(world.relayer.job(second.job + 1000).await.unwrap().is_none());
}

/// Signs `message` into a journal entry with relayer nonce `nonce`, as the
/// relayer does just before it sends.
fn journal_entry<M: SignedCall + TypedMessage>(node: &Node, who: &AccountKeys, message: &M, nonce: u64) -> NewJob {
    let domain = Domain::directory(CHAIN_ID, node.contracts().directory.0.0.into());
    let input = Bytes::from(calls::input(message, domain.sign(who, message)));
    let fees = Fees { gas_limit: 300_000, max_fee_per_gas: 2 * u128::from(BASE_FEE), max_priority_fee_per_gas: 0 };
    let target = node.contracts().directory;
    let raw = wallet(RELAYER).sign_raw(CHAIN_ID, nonce, Some(target), input.clone(), fees);
    NewJob {
        function: M::FUNCTION.into(),
        signer: Address::from(message.signer().0),
        target,
        input: input.to_vec(),
        gas_limit: fees.gas_limit,
        relayer_nonce: nonce,
        tx_hash: keccak256(&raw),
        raw,
        bundle_index: None,
    }
}

async fn settled(relayer: &Relayer, job: i64) -> JobStatus {
    for _ in 0..500 {
        let status = relayer.job(job).await.unwrap().unwrap().status;
        if status != JobStatus::Sent {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("job {job} was not settled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_resends_what_was_accepted_and_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("relayer.sqlite3");
    let node = embedded_node(dir.path());
    let n = node.pending_nonce(wallet(RELAYER).address());
    let (a, b, c) = (keys(31), keys(32), keys(33));
    let zero = ethers_core::types::U256::zero();

    // The state a crash can leave: A journalled and mined; B and C
    // journalled, never sent; and B's relayer nonce since taken by another
    // transaction of the relayer's key.
    let job_a = journal_entry(&node, &a, &register(&a, 1, zero), n);
    let job_b = journal_entry(&node, &b, &register(&b, 1, zero), n + 1);
    let job_c = journal_entry(&node, &c, &register(&c, 2, zero), n + 2);
    let ids = JobStore::open(&journal).unwrap().insert(&[job_a.clone(), job_b.clone(), job_c.clone()]).unwrap();
    node.send_raw_transaction(&job_a.raw).await.unwrap();
    let other = journal_entry(&node, &keys(34), &register(&keys(34), 1, zero), n + 1);
    node.send_raw_transaction(&other.raw).await.unwrap();

    let relayer = Relayer::start(LedgerClient::Embedded(Arc::clone(&node)), wallet(RELAYER), &journal).await.unwrap();
    let mined = |status: JobStatus| match status {
        JobStatus::Mined { block_number } => block_number,
        other => panic!("expected mined, got {other:?}"),
    };
    let block_a = mined(settled(&relayer, ids[0]).await);
    let block_b = mined(settled(&relayer, ids[1]).await);
    let block_c = mined(settled(&relayer, ids[2]).await);
    assert!(block_a < block_b && block_b <= block_c);
    let job = relayer.job(ids[0]).await.unwrap().unwrap();
    assert_eq!(job.sent.tx_hash, job_a.tx_hash, "A was mined before the crash: not resent");
    let job = relayer.job(ids[1]).await.unwrap().unwrap();
    assert_ne!(job.sent.tx_hash, job_b.tx_hash, "B was re-signed: its nonce was taken");
    assert_eq!(job.sent.relayer_nonce, n + 2);
    assert_eq!(relayer.job(ids[2]).await.unwrap().unwrap().sent.relayer_nonce, n + 3);
    assert_eq!(node.nonce(relayer.address()), n + 4, "four transactions, none twice");
    let roles: Vec<u8> = [&a, &b, &c]
        .iter()
        .map(|who| {
            let input = encode_call(&directory().abi, "accountOf", &[Token::Address(who.address())]).unwrap();
            let request =
                CallRequest { to: Some(node.contracts().directory), data: input.into(), ..Default::default() };
            node.call(&request).unwrap().0[31]
        })
        .collect();
    assert_eq!(roles, [1, 1, 2]);
    drop(relayer);

    // Nothing left to resend: a second start sends nothing.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let relayer = Relayer::start(LedgerClient::Embedded(Arc::clone(&node)), wallet(RELAYER), &journal).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(node.nonce(relayer.address()), n + 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journalled_bundle_is_resent_and_each_call_settled() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("relayer.sqlite3");
    let node = embedded_node(dir.path());
    let n = node.pending_nonce(wallet(RELAYER).address());
    let zero = ethers_core::types::U256::zero();
    let (a, b) = (keys(41), keys(42));
    // A bundle of three registrations, the second a replay of the first.
    let calls: Vec<NewJob> = [(&a, 1u8), (&a, 1), (&b, 2)]
        .iter()
        .map(|(who, role)| journal_entry(&node, who, &register(who, *role, zero), n))
        .collect();
    let inputs = Token::Array(calls.iter().map(|c| Token::Bytes(c.input.clone())).collect());
    let bundle = encode_call(&directory().abi, "bundle", &[inputs]).unwrap();
    let fees = Fees { gas_limit: 900_000, max_fee_per_gas: 2 * u128::from(BASE_FEE), max_priority_fee_per_gas: 0 };
    let raw = wallet(RELAYER).sign_raw(CHAIN_ID, n, Some(node.contracts().directory), bundle.into(), fees);
    let rows: Vec<NewJob> = calls
        .into_iter()
        .enumerate()
        .map(|(i, call)| NewJob {
            gas_limit: 300_000,
            raw: raw.clone(),
            tx_hash: keccak256(&raw),
            bundle_index: Some(i as u32),
            ..call
        })
        .collect();
    let ids = JobStore::open(&journal).unwrap().insert(&rows).unwrap();

    let relayer = Relayer::start(LedgerClient::Embedded(Arc::clone(&node)), wallet(RELAYER), &journal).await.unwrap();
    assert!(matches!(settled(&relayer, ids[0]).await, JobStatus::Mined { .. }));
    match settled(&relayer, ids[1]).await {
        JobStatus::Reverted { error, .. } => assert_eq!(error, "InvalidAccountNonce"),
        other => panic!("the replay is refused, not {other:?}"),
    }
    assert!(matches!(settled(&relayer, ids[2]).await, JobStatus::Mined { .. }));
    let job = relayer.job(ids[2]).await.unwrap().unwrap();
    assert_eq!(
        (job.sent.tx_hash, job.sent.bundle_index),
        (keccak256(&raw), Some(2)),
        "sent as journalled, byte for byte"
    );
    assert_eq!(node.nonce(relayer.address()), n + 1, "one transaction for the three");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_that_arrive_together_share_a_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let world = Arc::new(World::start(dir.path()).await);
    let mut tasks = tokio::task::JoinSet::new();
    for n in 50..90 {
        let world = Arc::clone(&world);
        tasks.spawn(async move {
            let who = keys(n);
            let message = register(&who, 1, ethers_core::types::U256::zero());
            world.relayer.relay(world.request(&who, &message)).await.unwrap()
        });
    }
    let mut transactions = std::collections::HashMap::new();
    while let Some(relayed) = tasks.join_next().await {
        let relayed = relayed.unwrap();
        assert_eq!(relayed.logs.len(), 1, "each request gets its own event");
        transactions.insert(relayed.tx_hash, relayed.calls_in_tx);
    }
    assert_eq!(transactions.values().map(|&c| c as usize).sum::<usize>(), 40, "every request in one transaction");
    assert!(transactions.len() < 40, "forty requests at once are bundled");
    eprintln!("40 registrations in {} transactions", transactions.len());
}

/// A crash while a journalled transaction waits in an external node's pool:
/// the restart sends the same bytes again and waits, instead of re-signing
/// (which would run the calls twice, the copy failing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_waiting_in_an_external_pool_is_not_signed_again() {
    use chartkey_ledger::anvil::Anvil;
    use chartkey_ledger::client::RemoteNode;
    use chartkey_ledger::node::Contracts;

    let dir = tempfile::tempdir().unwrap();
    let workspace = &common::workspace();
    let anvil = Anvil::start_with(workspace, CHAIN_ID, &["--no-mining"]).expect("anvil");
    let placeholder = Contracts::none();
    let node = RemoteNode::connect(&anvil.url, placeholder).await.unwrap();
    let relayer_address = wallet(RELAYER).address();
    anvil.fund(&[relayer_address], 1_000).await.unwrap();
    let deploying = tokio::spawn({
        let url = anvil.url.clone();
        async move { RemoteNode::deploy(&url, &wallet(RELAYER), wallet(ADMIN).address()).await }
    });
    // Interval-less anvil: mine by hand while deploying.
    let contracts = loop {
        let _: serde_json::Value = node.request("evm_mine", serde_json::json!([])).await.unwrap();
        if deploying.is_finished() {
            break deploying.await.unwrap().unwrap();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let remote = Arc::new(RemoteNode::connect(&anvil.url, contracts).await.unwrap());

    // Journalled and sent, then the crash: it waits in the pool, unmined.
    let who = keys(61);
    let message = register(&who, 1, ethers_core::types::U256::zero());
    let domain = Domain::directory(CHAIN_ID, contracts.directory.0.0.into());
    let input = Bytes::from(calls::input(&message, domain.sign(&who, &message)));
    let n = remote.pending_nonce(relayer_address).await.unwrap();
    let fees = Fees { gas_limit: 300_000, max_fee_per_gas: 100_000_000_000, max_priority_fee_per_gas: 1 };
    let raw = wallet(RELAYER).sign_raw(CHAIN_ID, n, Some(contracts.directory), input.clone(), fees);
    let job = NewJob {
        function: "register".into(),
        signer: Address::from(who.address().0),
        target: contracts.directory,
        input: input.to_vec(),
        gas_limit: 300_000,
        relayer_nonce: n,
        tx_hash: keccak256(&raw),
        raw: raw.clone(),
        bundle_index: None,
    };
    let ids = JobStore::open(&dir.path().join("relayer.sqlite3")).unwrap().insert(&[job]).unwrap();
    remote.send_raw_transaction(&raw).await.unwrap();

    // Meanwhile the signer's next message must carry the nonce after the
    // one in the pool: the nonce a portal hands out counts it.
    let client = LedgerClient::Remote(Arc::clone(&remote));
    let owner = Address::from(who.address().0);
    let latest = client.view(Target::Directory, ChartkeyDirectory::noncesCall { owner }).await.unwrap();
    let next = client.next_nonce(Target::Directory, ChartkeyDirectory::noncesCall { owner }).await.unwrap();
    assert_eq!((latest, next), (U256::ZERO, U256::from(1)), "mined: none; next: after the pending one");

    let relayer =
        Relayer::start(LedgerClient::Remote(Arc::clone(&remote)), wallet(RELAYER), &dir.path().join("relayer.sqlite3"))
            .await
            .unwrap();
    let _: serde_json::Value = node.request("evm_mine", serde_json::json!([])).await.unwrap();
    let status = settled(&relayer, ids[0]).await;
    assert!(matches!(status, JobStatus::Mined { .. }), "{status:?}");
    let job = relayer.job(ids[0]).await.unwrap().unwrap();
    assert_eq!(job.sent.tx_hash, keccak256(&raw), "the same transaction, not a re-signed copy");
    assert_eq!(remote.pending_nonce(relayer_address).await.unwrap(), n + 1, "one transaction");
}
