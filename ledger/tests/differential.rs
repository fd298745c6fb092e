//! One scenario, relayed by the same relayer code, on the embedded node and
//! on anvil (an independent EVM node, started on 127.0.0.1): the contracts
//! must emit the same events and refuse the same requests for the same
//! reasons on both.

mod common;

use std::path::Path;
use std::sync::Arc;

use chartkey_core::AccountKeys;
use chartkey_core::eip712::{
    Access, Anchor, AnchorBatch, Domain, Grant, IssueCredential, Register, Revoke, SCOPE_CATEGORIES, TypedMessage,
    bytes32_text,
};
use chartkey_ledger::anvil::Anvil;
use chartkey_ledger::artifacts::directory;
use chartkey_ledger::artifacts::encode_call;
use chartkey_ledger::calls::{SignedCall, Target};
use chartkey_ledger::client::{LedgerClient, RemoteNode};
use chartkey_ledger::node::{CallRequest, Contracts, Fees};
use chartkey_ledger::relayer::{RelayError, Relayer, Request};
use common::{ADMIN, CHAIN_ID, RELAYER, embedded_node, keys, now, wallet, workspace};
use ethers_core::abi::Token;

const LABS: u8 = 3;
const NOTES: u8 = 7;

/// What a step did: the events it emitted (name and arguments), or the
/// contract's refusal code.
type Step = Result<Vec<(String, Vec<Token>)>, String>;

struct Side {
    relayer: Relayer,
    client: LedgerClient,
    contracts: Contracts,
}

impl Side {
    async fn embedded(dir: &Path) -> Self {
        let client = LedgerClient::Embedded(embedded_node(dir));
        Self::start(client, &dir.join("relayer.sqlite3")).await
    }

    async fn anvil(anvil: &Anvil, dir: &Path) -> Self {
        anvil.fund(&[wallet(RELAYER).address(), wallet(ADMIN).address()], 1_000).await.unwrap();
        let contracts = RemoteNode::deploy(&anvil.url, &wallet(RELAYER), wallet(ADMIN).address()).await.unwrap();
        let remote = RemoteNode::connect(&anvil.url, contracts).await.unwrap();
        remote.check_contracts().await.unwrap();
        Self::start(LedgerClient::Remote(Arc::new(remote)), &dir.join("relayer.sqlite3")).await
    }

    async fn start(client: LedgerClient, journal: &Path) -> Self {
        let contracts = client.contracts();
        let relayer = Relayer::start(client.clone(), wallet(RELAYER), journal).await.unwrap();
        Self { relayer, client, contracts }
    }

    fn domain(&self, target: Target) -> Domain {
        target.domain(CHAIN_ID, &self.contracts)
    }

    async fn nonce(&self, target: Target, who: &AccountKeys) -> ethers_core::types::U256 {
        let input = encode_call(&target.artifact().abi, "nonces", &[Token::Address(who.address())]).unwrap();
        let to = Some(target.address(&self.contracts));
        let out = self.client.call(CallRequest { to, data: input.into(), ..Default::default() }).await.unwrap();
        ethers_core::types::U256::from_big_endian(&out)
    }

    /// Relays `message` signed by `signer`; what it did.
    async fn relay<M: SignedCall + TypedMessage>(&self, signer: &AccountKeys, message: &M) -> Step {
        let request = Request::signed(message, self.domain(M::TARGET).sign(signer, message));
        match self.relayer.relay(request).await {
            Ok(relayed) => Ok(relayed.logs.iter().map(decode).collect()),
            Err(RelayError::Refused(refusal)) => Err(refusal.code),
            Err(e) => panic!("{}: {e}", M::FUNCTION),
        }
    }

    /// The administrator names `authority` (a transaction of its own key).
    async fn set_authority(&self, authority: &AccountKeys) -> Step {
        let admin = wallet(ADMIN);
        let input =
            encode_call(&directory().abi, "setAuthority", &[Token::Address(authority.address()), Token::Bool(true)])
                .unwrap();
        let (max_fee_per_gas, max_priority_fee_per_gas) = self.client.fees().await.unwrap();
        let fees = Fees { gas_limit: 200_000, max_fee_per_gas, max_priority_fee_per_gas };
        let nonce = self.client.pending_nonce(admin.address()).await.unwrap();
        let envelope = admin.sign(CHAIN_ID, nonce, Some(self.contracts.directory), input.into(), fees);
        let hash = *envelope.tx_hash();
        let submitted = self.client.submit_signed_by(envelope, admin.address()).await.unwrap();
        let outcome = self.client.confirm(hash, submitted).await.unwrap();
        assert!(outcome.success);
        Ok(outcome.logs.iter().map(decode).collect())
    }
}

/// A log as (event name, arguments).
fn decode(log: &alloy_primitives::Log) -> (String, Vec<Token>) {
    let (name, params) = chartkey_ledger::artifacts::decode_event(log).expect("an event of the contracts");
    (name, params.into_iter().map(|(_, value)| value).collect())
}

/// The scenario of the issue: register, credential, grant, anchor, batch
/// anchor, access, revoke, access refused; and refusals on the way.
async fn scenario(side: &Side, expires_at: u64) -> Vec<(&'static str, Step)> {
    let (patient, clinician, authority, unverified) = (keys(1), keys(2), keys(3), keys(4));
    let mut steps = Vec::new();
    for (who, role) in [(&patient, 1u8), (&clinician, 2), (&authority, 4), (&unverified, 2)] {
        let nonce = side.nonce(Target::Directory, who).await;
        let message = Register { account: who.address(), role, encryption_key: who.encryption_public(), nonce };
        steps.push(("register", side.relay(who, &message).await));
    }
    steps.push(("set authority", side.set_authority(&authority).await));
    let credential = IssueCredential {
        authority: authority.address(),
        clinician: clinician.address(),
        license_id_hash: [9; 32],
        specialty: bytes32_text("psychiatry").unwrap(),
        expires_at,
        nonce: side.nonce(Target::Directory, &authority).await,
    };
    steps.push(("issue credential", side.relay(&authority, &credential).await));
    let me = patient.address();
    let anchor = |record_id: [u8; 32], category: u8| Anchor {
        author: me,
        patient: me,
        record_id,
        ciphertext_hash: [0xcc; 32],
        category,
        amends: [0; 32],
    };
    steps.push(("anchor lab", side.relay(&patient, &anchor([1; 32], LABS)).await));
    steps.push(("anchor note", side.relay(&patient, &anchor([2; 32], NOTES)).await));
    let batch = AnchorBatch { author: me, patient: me, root: [0xb1; 32], count: 1000 };
    steps.push(("anchor batch", side.relay(&patient, &batch).await));
    steps.push(("anchor batch again", side.relay(&patient, &batch).await));
    let grant = |grantee: &AccountKeys, nonce: u64| Grant {
        patient: me,
        grantee: grantee.address(),
        scope: SCOPE_CATEGORIES,
        categories: 1 << LABS,
        records: vec![],
        write: false,
        expires_at,
        nonce: nonce.into(),
    };
    steps.push(("grant to the unverified", side.relay(&patient, &grant(&unverified, 0)).await));
    steps.push(("grant labs", side.relay(&patient, &grant(&clinician, 0)).await));
    steps.push(("replayed grant", side.relay(&patient, &grant(&clinician, 0)).await));
    let access = |record_id: [u8; 32], nonce| Access { grantee: clinician.address(), patient: me, record_id, nonce };
    let nonce = side.nonce(Target::Records, &clinician).await;
    steps.push(("access a lab", side.relay(&clinician, &access([1; 32], nonce)).await));
    let nonce = side.nonce(Target::Records, &clinician).await;
    steps.push(("access a note", side.relay(&clinician, &access([2; 32], nonce)).await));
    let revoke = Revoke { patient: me, grantee: clinician.address(), nonce: 1.into() };
    steps.push(("stop sharing", side.relay(&patient, &revoke).await));
    steps.push(("access after stop", side.relay(&clinician, &access([1; 32], nonce)).await));
    steps
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_node_and_anvil_agree() {
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let anvil = Anvil::start(&workspace(), CHAIN_ID).expect("anvil (npm @foundry-rs/anvil in contracts/)");
    let expires_at = now() + 30 * 86_400;
    let embedded = scenario(&Side::embedded(dirs.0.path()).await, expires_at).await;
    let external = scenario(&Side::anvil(&anvil, dirs.1.path()).await, expires_at).await;

    assert_eq!(embedded.len(), external.len());
    for ((name, ours), (_, theirs)) in embedded.iter().zip(&external) {
        assert_eq!(ours, theirs, "{name}: the embedded node and anvil differ");
    }
    // The scenario means something: what happened, in order.
    let summary: Vec<(&str, Result<Vec<&str>, &str>)> = embedded
        .iter()
        .map(|(name, step)| {
            let step = match step {
                Ok(events) => Ok(events.iter().map(|(event, _)| event.as_str()).collect()),
                Err(code) => Err(code.as_str()),
            };
            (*name, step)
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("register", Ok(vec!["AccountRegistered"])),
            ("register", Ok(vec!["AccountRegistered"])),
            ("register", Ok(vec!["AccountRegistered"])),
            ("register", Ok(vec!["AccountRegistered"])),
            ("set authority", Ok(vec!["AuthoritySet"])),
            ("issue credential", Ok(vec!["CredentialIssued"])),
            ("anchor lab", Ok(vec!["RecordAnchored"])),
            ("anchor note", Ok(vec!["RecordAnchored"])),
            ("anchor batch", Ok(vec!["BatchAnchored"])),
            ("anchor batch again", Err("BatchExists")),
            ("grant to the unverified", Err("UnverifiedGrantee")),
            ("grant labs", Ok(vec!["Granted"])),
            ("replayed grant", Err("InvalidAccountNonce")),
            ("access a lab", Ok(vec!["Accessed"])),
            ("access a note", Err("OutOfScope")),
            ("stop sharing", Ok(vec!["Revoked"])),
            ("access after stop", Err("GrantRevoked")),
        ]
    );
}
