//! Shared by the ledger's tests (and its bench).

#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use alloy_primitives::U256;
use chartkey_core::eip712::{Grant, IssueCredential, Register, SCOPE_EVERYTHING, bytes32_text};
use chartkey_core::{AccountKeys, AccountSecret};
use chartkey_ledger::node::{Genesis, Node, Wallet};
use chartkey_ledger::{Receipt, TxError};

pub const CHAIN_ID: u64 = 31337;
pub const START: u64 = 1_800_000_000;
pub const DAY: u64 = 86_400;

/// Deterministic accounts: `keys(1)`, `keys(2)`…
pub fn keys(n: u8) -> AccountKeys {
    AccountSecret::from_bytes([n; 32]).derive()
}

/// The decoded revert reason, or a panic if the call did not revert.
pub fn reason(result: Result<Receipt, TxError>) -> String {
    match result {
        Err(TxError::Reverted { reason, .. }) => reason,
        other => panic!("expected a revert, got {other:?}"),
    }
}

/// The relayer's and the administrator's keys on the test nodes.
pub const RELAYER: [u8; 32] = [0x5e; 32];
pub const ADMIN: [u8; 32] = [0xad; 32];

/// The in-memory test chain with the Directory deployed by the
/// administrator: what every contract test starts from.
pub struct Deployed {
    pub chain: chartkey_ledger::Chain,
    pub admin: ethers_core::types::Address,
    /// Who sends the signed calls (any funded account may relay).
    pub relayer: ethers_core::types::Address,
    pub directory: ethers_core::types::Address,
}

impl Deployed {
    pub fn directory() -> Self {
        use ethers_core::abi::Token;
        use ethers_core::types::Address;
        let mut chain = chartkey_ledger::Chain::new(CHAIN_ID, START);
        let admin = Address::repeat_byte(0xad);
        let directory = chain.deploy(admin, chartkey_ledger::artifacts::directory(), &[Token::Address(admin)]).unwrap();
        Self { chain, admin, relayer: Address::repeat_byte(0x5e), directory }
    }

    /// Deploys `artifact`, a contract built on the Directory; its address.
    pub fn beside(&mut self, artifact: &chartkey_ledger::Artifact) -> ethers_core::types::Address {
        let args = [ethers_core::abi::Token::Address(self.directory)];
        self.chain.deploy(self.admin, artifact, &args).unwrap()
    }
}

pub fn wallet(secret: [u8; 32]) -> Wallet {
    Wallet::from_secret(&secret).unwrap()
}

/// The workspace, read when the test runs: a test binary cargo reuses
/// from a build in another checkout keeps that checkout's compile-time
/// path (`env!`), which may be gone.
pub fn workspace() -> std::path::PathBuf {
    let manifest =
        std::path::PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    manifest.parent().expect("the crate is in the workspace").to_owned()
}

pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// An embedded node in `dir` whose genesis funds the relayer (1,000 ether)
/// and the administrator (1 ether).
pub fn embedded_node(dir: &Path) -> Arc<Node> {
    let ether = U256::from(10u64).pow(U256::from(18));
    let genesis = Genesis {
        chain_id: CHAIN_ID,
        timestamp: now() - 60,
        admin: wallet(ADMIN).address(),
        alloc: [(wallet(RELAYER).address(), ether * U256::from(1_000u64)), (wallet(ADMIN).address(), ether)].into(),
    };
    Arc::new(Node::open(&dir.join("ledger.sqlite3"), genesis).unwrap())
}

/// `who`'s registration as `role` (unsigned).
pub fn register(who: &AccountKeys, role: u8, nonce: ethers_core::types::U256) -> Register {
    Register { account: who.address(), role, encryption_key: who.encryption_public(), nonce }
}

/// `patient` shares everything with `grantee` for a week, read only
/// (unsigned).
pub fn grant(patient: &AccountKeys, grantee: &AccountKeys, nonce: u64) -> Grant {
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

/// `authority` verifies `clinician` as a psychiatrist for a year
/// (unsigned; `nonce` is the authority's Directory nonce).
pub fn issue_credential(
    authority: &AccountKeys,
    clinician: &AccountKeys,
    nonce: ethers_core::types::U256,
) -> IssueCredential {
    IssueCredential {
        authority: authority.address(),
        clinician: clinician.address(),
        license_id_hash: [9; 32],
        specialty: bytes32_text("psychiatry").unwrap(),
        expires_at: now() + 365 * 86_400,
        nonce,
    }
}
