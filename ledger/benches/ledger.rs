//! `cargo xtask bench ledger`: gas of each contract call and durable grants
//! per second on the embedded node, with real signed transactions (EIP-712
//! messages signed by chartkey-core, wrapped and signed by a relayer key).
//!
//! Prints one `name: value` per line.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use alloy_primitives::{Address, Bytes, U256 as AU256};
use chartkey_core::eip712::{
    Access, Anchor, AnchorBatch, Domain, Grant, IssueCredential, Register, Revoke, SCOPE_EVERYTHING, bytes32_text,
};
use chartkey_core::{AccountKeys, AccountSecret};
use chartkey_ledger::artifacts::directory;
use chartkey_ledger::calls::{self, SignedCall};
use chartkey_ledger::evm::encode_call;
use chartkey_ledger::node::{Acknowledgement, BASE_FEE, Contracts, Fees, Genesis, Node, Wallet};
use ethers_core::abi::Token;
use ethers_core::types::U256;

const CHAIN_ID: u64 = 6_514_795;
/// Grants in the throughput run, from this many patients.
const GRANTS: usize = 4_000;
const PATIENTS: usize = 1_000;

struct Bench {
    node: Node,
    relayer: Wallet,
    relayer_nonce: u64,
    contracts: Contracts,
    directory: Domain,
    records: Domain,
}

fn keys(n: u32) -> AccountKeys {
    let mut secret = [7u8; 32];
    secret[..4].copy_from_slice(&n.to_be_bytes());
    AccountSecret::from_bytes(secret).derive()
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

impl Bench {
    /// Wraps `input` for `to` into a relayer transaction and queues it.
    fn relay(&mut self, to: Address, input: Vec<u8>) -> Acknowledgement {
        let fees = Fees { gas_limit: 300_000, max_fee_per_gas: 2 * u128::from(BASE_FEE), max_priority_fee_per_gas: 0 };
        let raw = self.relayer.sign_raw(CHAIN_ID, self.relayer_nonce, Some(to), Bytes::from(input), fees);
        self.relayer_nonce += 1;
        self.node.submit(&raw).expect("admitted")
    }

    /// `message` signed by `signer`, as the contract call that carries it.
    fn signed<M: SignedCall>(&self, signer: &AccountKeys, message: &M) -> (Address, Vec<u8>) {
        let (domain, to) = if M::artifact().name == directory().name {
            (&self.directory, self.contracts.directory)
        } else {
            (&self.records, self.contracts.records)
        };
        (to, calls::input(message, domain.sign(signer, message)))
    }

    /// Relays `message` signed by `signer` and waits; returns the gas used.
    fn send<M: SignedCall>(&mut self, signer: &AccountKeys, message: &M) -> u64 {
        let (to, input) = self.signed(signer, message);
        let inclusion = self.relay(to, input).blocking_recv().unwrap().expect("mined");
        let mined = self.node.transaction(inclusion.hash).unwrap().unwrap();
        assert!(mined.receipt.is_success(), "{} reverted", M::FUNCTION);
        mined.gas_used
    }
}

fn register(who: &AccountKeys, role: u8) -> Register {
    Register { account: who.address(), role, encryption_key: who.encryption_public(), nonce: U256::zero() }
}

/// `patient` shares everything with `grantee` for a week.
fn grant(patient: &AccountKeys, grantee: &AccountKeys, nonce: u64) -> Grant {
    Grant {
        patient: patient.address(),
        grantee: grantee.address(),
        scope: SCOPE_EVERYTHING,
        categories: 0,
        records: Vec::new(),
        write: false,
        expires_at: now() + 7 * 86_400,
        nonce: nonce.into(),
    }
}

#[allow(clippy::print_stdout)]
fn main() {
    let dir = tempfile::tempdir().unwrap();
    let relayer = Wallet::from_secret(&[0x5e; 32]).unwrap();
    let admin = Wallet::from_secret(&[0xad; 32]).unwrap();
    let ether = AU256::from(10u64).pow(AU256::from(18));
    let genesis = Genesis {
        chain_id: CHAIN_ID,
        timestamp: now(),
        admin: admin.address(),
        alloc: [(relayer.address(), ether * AU256::from(1_000_000u64)), (admin.address(), ether)].into(),
    };
    let node = Node::open(&dir.path().join("ledger.sqlite3"), genesis).unwrap();
    let contracts = node.contracts();
    let mut bench = Bench {
        node,
        relayer,
        relayer_nonce: 0,
        contracts,
        directory: Domain::directory(CHAIN_ID, contracts.directory.0.0.into()),
        records: Domain::records(CHAIN_ID, contracts.records.0.0.into()),
    };

    // Setup: a clinician with a credential, patients.
    let (clinician, authority) = (keys(1_000_001), keys(1_000_002));
    bench.send(&clinician, &register(&clinician, 2));
    bench.send(&authority, &register(&authority, 4));
    let input =
        encode_call(&directory().abi, "setAuthority", &[Token::Address(authority.address()), Token::Bool(true)])
            .unwrap();
    let raw = admin.sign_raw(
        CHAIN_ID,
        0,
        Some(contracts.directory),
        Bytes::from(input),
        Fees { gas_limit: 200_000, max_fee_per_gas: 2 * u128::from(BASE_FEE), max_priority_fee_per_gas: 0 },
    );
    bench.node.send_raw_transaction_blocking(&raw).unwrap();
    let credential = IssueCredential {
        authority: authority.address(),
        clinician: clinician.address(),
        license_id_hash: [9; 32],
        specialty: bytes32_text("psychiatry").unwrap(),
        expires_at: now() + 365 * 86_400,
        nonce: U256::one(),
    };
    bench.send(&authority, &credential);
    let patients: Vec<AccountKeys> = (0..=PATIENTS as u32).map(keys).collect();
    let acks: Vec<Acknowledgement> = patients
        .iter()
        .map(|p| {
            let (to, input) = bench.signed(p, &register(p, 1));
            bench.relay(to, input)
        })
        .collect();
    for ack in acks {
        ack.blocking_recv().unwrap().unwrap();
    }

    // Gas, each call on its own (patient 0).
    let patient = &patients[0];
    let (me, record_id) = (patient.address(), [1u8; 32]);
    let anchor = Anchor {
        author: me,
        patient: me,
        record_id,
        ciphertext_hash: [2; 32],
        category: 3,
        amends: [0; 32],
        nonce: U256::zero(),
    };
    let gas_anchor = bench.send(patient, &anchor);
    let batch = AnchorBatch { author: me, patient: me, root: [3; 32], count: 1000, nonce: U256::one() };
    let gas_batch = bench.send(patient, &batch);
    let gas_grant = bench.send(patient, &grant(patient, &clinician, 2));
    let access = Access { grantee: clinician.address(), patient: me, record_id, nonce: U256::zero() };
    let gas_access = bench.send(&clinician, &access);
    let gas_revoke = bench.send(patient, &Revoke { patient: me, grantee: clinician.address(), nonce: 3.into() });

    // Throughput: patient-signed grants (signed beforehand, as browsers do),
    // each wrapped, signed and submitted by the relayer, until every block
    // holding them is on disk.
    let per_patient = GRANTS / PATIENTS;
    let signed: Vec<(Grant, Vec<u8>)> = (0..per_patient)
        .flat_map(|round| (1..=PATIENTS).map(move |p| (p, round as u64)))
        .map(|(p, nonce)| {
            let message = grant(&patients[p], &clinician, nonce);
            let signature = bench.records.sign(&patients[p], &message);
            (message, signature)
        })
        .collect();
    let head_before = bench.node.head().0;
    let started = Instant::now();
    let acks: Vec<Acknowledgement> = signed
        .into_iter()
        .map(|(message, signature)| bench.relay(contracts.records, calls::input(&message, signature)))
        .collect();
    for ack in acks {
        ack.blocking_recv().unwrap().expect("mined");
    }
    let elapsed = started.elapsed().as_secs_f64();
    let blocks = bench.node.head().0 - head_before;

    println!("gas.grant: {gas_grant}");
    println!("gas.revoke: {gas_revoke}");
    println!("gas.anchor: {gas_anchor}");
    println!("gas.anchor_batch_1000: {gas_batch}");
    println!("gas.access_log: {gas_access}");
    println!("ledger.grants_per_s.embedded: {:.0}", GRANTS as f64 / elapsed);
    println!("ledger.grants_blocks.embedded: {blocks}");
}
