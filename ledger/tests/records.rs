//! The Records contract against revm: anchors, batches, amendments,
//! consents and the access log, with every refusal the trust model names.

mod common;

use chartkey_core::AccountKeys;
use chartkey_core::eip712::{
    Access, Anchor, AnchorBatch, Domain, Grant, IssueCredential, Register, Revoke, RevokeCredential, SCOPE_CATEGORIES,
    SCOPE_EVERYTHING, SCOPE_RECORDS, TypedMessage,
};
use chartkey_core::envelope::RecordId;
use chartkey_core::merkle::Tree;
use chartkey_core::records::{AnchoredRecord, batch_tree};
use chartkey_ledger::artifacts::encode_call;
use chartkey_ledger::artifacts::{directory, records};
use chartkey_ledger::calls::{self, SignedCall};
use chartkey_ledger::{Artifact, Chain, Receipt, TxError};
use common::{CHAIN_ID, DAY, Deployed, START, keys, reason, register};
use ethers_core::abi::Token;
use ethers_core::types::{Address, U256};

const LABS: u8 = 3;
const NOTES: u8 = 7;

fn id(n: u8) -> [u8; 32] {
    [n; 32]
}

/// A chain with both contracts, a patient, a credentialed clinician and an
/// uncredentialed one.
struct Ledger {
    chain: Chain,
    directory: Address,
    records: Address,
    admin: Address,
    relayer: Address,
    patient: AccountKeys,
    clinician: AccountKeys,
    authority: AccountKeys,
    unverified: AccountKeys,
}

impl Ledger {
    fn new() -> Self {
        let mut d = Deployed::directory();
        let records_at = d.beside(records());
        let mut l = Self {
            chain: d.chain,
            directory: d.directory,
            records: records_at,
            admin: d.admin,
            relayer: d.relayer,
            patient: keys(1),
            clinician: keys(2),
            authority: keys(3),
            unverified: keys(4),
        };
        // 1 patient, 2 clinician, 3 authority, 4 unverified clinician, 5 another patient.
        for (who, role) in [(keys(1), 1u8), (keys(2), 2), (keys(3), 4), (keys(4), 2), (keys(5), 1)] {
            l.signed(&who, &register(&who, role, U256::zero())).unwrap();
        }
        let (admin, authority) = (l.admin, l.authority.address());
        l.chain
            .send(admin, l.directory, directory(), "setAuthority", &[Token::Address(authority), Token::Bool(true)])
            .unwrap();
        l.issue_credential(START + 365 * DAY);
        l
    }

    fn contract_of(&self, artifact: &Artifact) -> Address {
        if artifact.name == "ChartkeyDirectory" { self.directory } else { self.records }
    }

    fn domain(&self, artifact: &Artifact) -> Domain {
        if artifact.name == "ChartkeyDirectory" {
            Domain::directory(CHAIN_ID, self.directory)
        } else {
            Domain::records(CHAIN_ID, self.records)
        }
    }

    /// Signs `message` with `signer` and sends it from the relayer.
    fn signed<M: SignedCall>(&mut self, signer: &AccountKeys, message: &M) -> Result<Receipt, TxError> {
        let signature = self.domain(M::artifact()).sign(signer, message);
        self.send_signed(message, signature)
    }

    /// Sends `message` with `signature` as given (malformed ones included).
    fn send_signed<M: SignedCall>(&mut self, message: &M, signature: Vec<u8>) -> Result<Receipt, TxError> {
        let (relayer, to) = (self.relayer, self.contract_of(M::artifact()));
        self.chain.send(relayer, to, M::artifact(), M::FUNCTION, &calls::arguments(message, signature))
    }

    fn view(&mut self, artifact: &Artifact, function: &str, args: &[Token]) -> Vec<Token> {
        let to = self.contract_of(artifact);
        self.chain.call(to, artifact, function, args).unwrap()
    }

    fn nonce(&mut self, artifact: &Artifact, who: Address) -> U256 {
        self.view(artifact, "nonces", &[Token::Address(who)])[0].clone().into_uint().unwrap()
    }

    /// The nonce of the next grant or revocation between `patient` and `grantee`.
    fn consent_nonce(&mut self, patient: Address, grantee: Address) -> U256 {
        self.view(records(), "consentNonce", &[Token::Address(patient), Token::Address(grantee)])[0]
            .clone()
            .into_uint()
            .unwrap()
    }

    fn issue_credential(&mut self, expires_at: u64) {
        let (authority, clinician) = (self.authority.address(), self.clinician.address());
        let message = IssueCredential {
            authority,
            clinician,
            license_id_hash: [7; 32],
            specialty: [8; 32],
            expires_at,
            nonce: self.nonce(directory(), authority),
        };
        self.signed(&keys(3), &message).unwrap();
    }

    fn revoke_credential(&mut self) {
        let (authority, clinician) = (self.authority.address(), self.clinician.address());
        let message = RevokeCredential { authority, clinician, nonce: self.nonce(directory(), authority) };
        self.signed(&keys(3), &message).unwrap();
    }

    fn anchor_message(&mut self, author: Address, record: [u8; 32], category: u8, amends: [u8; 32]) -> Anchor {
        Anchor {
            author,
            patient: self.patient.address(),
            record_id: record,
            ciphertext_hash: [0xcc; 32],
            category,
            amends,
        }
    }

    /// The patient anchors their own record.
    fn anchor(&mut self, record: [u8; 32], category: u8) -> Result<Receipt, TxError> {
        let patient = keys(1);
        let message = self.anchor_message(patient.address(), record, category, [0; 32]);
        self.signed(&patient, &message)
    }

    /// `owner` anchors a record in their own chart.
    fn anchor_own(&mut self, owner: &AccountKeys, record: [u8; 32]) -> Result<Receipt, TxError> {
        let message = Anchor {
            author: owner.address(),
            patient: owner.address(),
            record_id: record,
            ciphertext_hash: [0xee; 32],
            category: LABS,
            amends: [0; 32],
        };
        self.signed(owner, &message)
    }

    fn batch_message(&mut self, author: Address, root: [u8; 32], count: u32) -> AnchorBatch {
        AnchorBatch { author, patient: self.patient.address(), root, count }
    }

    fn grant_message(
        &mut self,
        grantee: Address,
        scope: u8,
        categories: u32,
        records_: Vec<[u8; 32]>,
        write: bool,
        expires_at: u64,
    ) -> Grant {
        let patient = self.patient.address();
        Grant {
            patient,
            grantee,
            scope,
            categories,
            records: records_,
            write,
            expires_at,
            nonce: self.consent_nonce(patient, grantee),
        }
    }

    /// The patient grants the clinician.
    fn grant(
        &mut self,
        scope: u8,
        categories: u32,
        records_: Vec<[u8; 32]>,
        write: bool,
        expires_at: u64,
    ) -> Result<Receipt, TxError> {
        let clinician = self.clinician.address();
        let message = self.grant_message(clinician, scope, categories, records_, write, expires_at);
        self.signed(&keys(1), &message)
    }

    fn revoke(&mut self) -> Result<Receipt, TxError> {
        let (patient, grantee) = (self.patient.address(), self.clinician.address());
        let message = Revoke { patient, grantee, nonce: self.consent_nonce(patient, grantee) };
        self.signed(&keys(1), &message)
    }

    fn access_message(&mut self, grantee: Address, record: [u8; 32]) -> Access {
        Access { grantee, patient: self.patient.address(), record_id: record, nonce: self.nonce(records(), grantee) }
    }

    /// The clinician opens a record.
    fn access(&mut self, record: [u8; 32]) -> Result<Receipt, TxError> {
        let clinician = self.clinician.address();
        let message = self.access_message(clinician, record);
        self.signed(&keys(2), &message)
    }

    fn can_access(&mut self, record: [u8; 32]) -> bool {
        let (c, p) = (self.clinician.address(), self.patient.address());
        self.view(records(), "canAccess", &[Token::Address(c), Token::Address(p), Token::FixedBytes(record.to_vec())])
            [0]
        .clone()
        .into_bool()
        .unwrap()
    }
}

#[test]
fn the_contract_verifies_exactly_the_digests_core_signs() {
    let mut l = Ledger::new();
    for (name, hash) in [
        ("ANCHOR_TYPEHASH", Anchor::type_hash()),
        ("ANCHOR_BATCH_TYPEHASH", AnchorBatch::type_hash()),
        ("GRANT_TYPEHASH", Grant::type_hash()),
        ("REVOKE_TYPEHASH", Revoke::type_hash()),
        ("ACCESS_TYPEHASH", Access::type_hash()),
    ] {
        assert_eq!(l.view(records(), name, &[])[0].clone().into_fixed_bytes().unwrap(), hash.to_vec(), "{name}");
    }
    let message = l.grant_message(Address::repeat_byte(9), SCOPE_RECORDS, 0, vec![id(1), id(2)], true, START + DAY);
    let digest = l.view(records(), "hashTypedData", &[Token::FixedBytes(message.struct_hash().to_vec())]);
    assert_eq!(digest[0].clone().into_fixed_bytes().unwrap(), l.domain(records()).digest(&message).to_vec());
}

#[test]
fn anchor_a_record_and_a_correction() {
    let mut l = Ledger::new();
    let receipt = l.anchor(id(1), LABS).unwrap();
    let events = receipt.events(&records().abi, "RecordAnchored");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0][0], Token::Address(l.patient.address()));
    assert_eq!(events[0][1], Token::FixedBytes(id(1).to_vec()));
    let patient_address = l.patient.address();
    let stored = l.view(records(), "recordOf", &[Token::Address(patient_address), Token::FixedBytes(id(1).to_vec())]);
    assert_eq!(stored[0], Token::Bool(true));
    assert_eq!(stored[1], Token::Uint(LABS.into()));
    assert_eq!(stored[4], Token::FixedBytes([0xcc; 32].to_vec()));

    // A correction names what it amends.
    let patient = keys(1);
    let message = l.anchor_message(patient.address(), id(2), LABS, id(1));
    let receipt = l.signed(&patient, &message).unwrap();
    assert_eq!(receipt.events(&records().abi, "RecordAnchored")[0][5], Token::FixedBytes(id(1).to_vec()));
}

#[test]
fn anchor_reverts() {
    let mut l = Ledger::new();
    let patient = keys(1);
    l.anchor(id(1), LABS).unwrap();
    // Record id reused (nothing is rewritten).
    assert_eq!(reason(l.anchor(id(1), LABS)), format!("RecordExists(0x{})", hex::encode(id(1))));
    // The patient may correct a record the contract does not hold by itself (a
    // batch's leaf, which the reader checks against the batch root).
    let message = l.anchor_message(patient.address(), id(4), LABS, id(9));
    l.signed(&patient, &message).unwrap();
    // Bad signature and wrong signer.
    let message = l.anchor_message(patient.address(), id(2), LABS, [0; 32]);
    assert!(reason(l.signed(&keys(9), &message)).starts_with("WrongSigner("));
    // Replayed: the record id is taken for good.
    l.signed(&patient, &message).unwrap();
    assert!(reason(l.signed(&patient, &message)).starts_with("RecordExists("));
    // Unauthorised author: a clinician without a write grant.
    let clinician = keys(2);
    let message = l.anchor_message(clinician.address(), id(3), NOTES, [0; 32]);
    assert_eq!(reason(l.signed(&clinician, &message)), format!("NotAuthorisedAuthor({:?})", clinician.address()));
}

#[test]
fn clinicians_write_back_only_with_a_live_write_grant_in_scope() {
    let mut l = Ledger::new();
    let clinician = keys(2);
    // Read-only grant: writing is refused.
    l.grant(SCOPE_CATEGORIES, 1 << NOTES, vec![], false, START + 7 * DAY).unwrap();
    let message = l.anchor_message(clinician.address(), id(5), NOTES, [0; 32]);
    assert!(reason(l.signed(&clinician, &message)).starts_with("NotAuthorisedAuthor("));
    // Read+write on notes: a note may be written, a lab may not.
    l.grant(SCOPE_CATEGORIES, 1 << NOTES, vec![], true, START + 7 * DAY).unwrap();
    let message = l.anchor_message(clinician.address(), id(5), NOTES, [0; 32]);
    let receipt = l.signed(&clinician, &message).unwrap();
    assert_eq!(receipt.events(&records().abi, "RecordAnchored")[0][2], Token::Address(clinician.address()));
    // A grantee corrects only records anchored by themselves here, never an unknown id.
    let message = l.anchor_message(clinician.address(), id(8), NOTES, id(9));
    assert_eq!(reason(l.signed(&clinician, &message)), format!("UnknownRecord(0x{})", hex::encode(id(9))));
    let message = l.anchor_message(clinician.address(), id(6), LABS, [0; 32]);
    assert!(reason(l.signed(&clinician, &message)).starts_with("NotAuthorisedAuthor("));
    // After the credential lapses, no more writing.
    l.revoke_credential();
    let message = l.anchor_message(clinician.address(), id(7), NOTES, [0; 32]);
    assert!(reason(l.signed(&clinician, &message)).starts_with("NotAuthorisedAuthor("));
}

#[test]
fn batches_anchor_one_root() {
    let mut l = Ledger::new();
    let patient = keys(1);
    let m = l.batch_message(patient.address(), id(0xb1), 1000);
    let receipt = l.signed(&patient, &m).unwrap();
    eprintln!("gas.anchor_batch_1000: {}", receipt.gas_used);
    assert_eq!(receipt.events(&records().abi, "BatchAnchored")[0][3], Token::Uint(1000.into()));
    let patient_address = l.patient.address();
    assert_eq!(
        l.view(records(), "batchOf", &[Token::Address(patient_address), Token::FixedBytes(id(0xb1).to_vec())])[0],
        Token::Uint(1000.into())
    );
    // The same root twice, an empty batch, a stranger, a replay.
    let m = l.batch_message(patient.address(), id(0xb1), 5);
    assert!(reason(l.signed(&patient, &m)).starts_with("BatchExists("));
    let m = l.batch_message(patient.address(), id(0xb2), 0);
    assert_eq!(reason(l.signed(&patient, &m)), "EmptyBatch()");
    let clinician = keys(2);
    let m = l.batch_message(clinician.address(), id(0xb3), 5);
    assert!(reason(l.signed(&clinician, &m)).starts_with("NotAuthorisedAuthor("));
    let m = l.batch_message(patient.address(), id(0xb4), 5);
    assert!(reason(l.signed(&keys(9), &m)).starts_with("WrongSigner("));
    l.signed(&patient, &m).unwrap();
    assert!(reason(l.signed(&patient, &m)).starts_with("BatchExists("));
}

#[test]
fn grant_access_and_revoke() {
    let mut l = Ledger::new();
    for (n, category) in [(1, LABS), (2, LABS), (3, NOTES), (4, NOTES)] {
        l.anchor(id(n), category).unwrap();
    }
    // Three chosen records, seven days.
    let receipt = l.grant(SCOPE_RECORDS, 0, vec![id(1), id(2), id(3)], false, START + 7 * DAY).unwrap();
    eprintln!("gas.grant_3_records: {}", receipt.gas_used);
    let granted = receipt.events(&records().abi, "Granted");
    assert_eq!(granted[0][0], Token::Address(l.patient.address()));
    assert_eq!(granted[0][1], Token::Address(l.clinician.address()));
    assert!(l.can_access(id(1)) && l.can_access(id(3)));
    assert!(!l.can_access(id(4)), "a record outside the list");

    let receipt = l.access(id(1)).unwrap();
    eprintln!("gas.access_log: {}", receipt.gas_used);
    let accessed = receipt.events(&records().abi, "Accessed");
    assert_eq!(accessed[0][2], Token::FixedBytes(id(1).to_vec()));

    // Out of scope.
    assert_eq!(reason(l.access(id(4))), format!("OutOfScope(0x{})", hex::encode(id(4))));

    // Stop sharing: at once.
    let receipt = l.revoke().unwrap();
    assert_eq!(receipt.events(&records().abi, "Revoked").len(), 1);
    assert!(!l.can_access(id(1)));
    assert!(reason(l.access(id(1))).starts_with("GrantRevoked("));
    // Stopping again is harmless: it spends the nonce and says nothing was live.
    let again = l.revoke().unwrap();
    assert_eq!(again.events(&records().abi, "Revoked")[0][2], Token::Uint(0.into()));
}

#[test]
fn a_new_grant_replaces_the_old_one_and_its_list() {
    let mut l = Ledger::new();
    for (n, category) in [(1, LABS), (2, NOTES)] {
        l.anchor(id(n), category).unwrap();
    }
    l.grant(SCOPE_RECORDS, 0, vec![id(1)], false, START + DAY).unwrap();
    assert!(l.can_access(id(1)));
    l.grant(SCOPE_RECORDS, 0, vec![id(2)], false, START + DAY).unwrap();
    assert!(!l.can_access(id(1)), "the earlier list no longer counts");
    assert!(l.can_access(id(2)));
    // Categories and everything.
    let receipt = l.grant(SCOPE_CATEGORIES, 1 << LABS, vec![], false, START + DAY).unwrap();
    eprintln!("gas.grant_categories: {}", receipt.gas_used);
    assert!(l.can_access(id(1)) && !l.can_access(id(2)));
    let receipt = l.grant(SCOPE_EVERYTHING, 0, vec![], false, START + DAY).unwrap();
    eprintln!("gas.grant_everything: {}", receipt.gas_used);
    assert!(l.can_access(id(1)) && l.can_access(id(2)));
}

#[test]
fn grants_expire_and_follow_the_credential() {
    let mut l = Ledger::new();
    l.anchor(id(1), LABS).unwrap();
    l.grant(SCOPE_EVERYTHING, 0, vec![], false, START + 7 * DAY).unwrap();
    l.chain.advance_time(7 * DAY - 1);
    assert!(l.can_access(id(1)));
    l.chain.advance_time(1);
    assert!(!l.can_access(id(1)));
    assert!(reason(l.access(id(1))).starts_with("GrantExpired("));

    // A fresh grant, then the credential is revoked: access ends.
    l.grant(SCOPE_EVERYTHING, 0, vec![], false, START + 30 * DAY).unwrap();
    assert!(l.can_access(id(1)));
    l.revoke_credential();
    assert!(!l.can_access(id(1)));
    assert!(reason(l.access(id(1))).starts_with("CredentialInvalid("));
}

#[test]
fn an_expired_credential_ends_access() {
    let mut l = Ledger::new();
    l.anchor(id(1), LABS).unwrap();
    l.issue_credential(START + 2 * DAY);
    l.grant(SCOPE_EVERYTHING, 0, vec![], false, START + 30 * DAY).unwrap();
    l.access(id(1)).unwrap();
    l.chain.advance_time(2 * DAY);
    assert!(reason(l.access(id(1))).starts_with("CredentialInvalid("));
}

#[test]
fn grant_reverts() {
    let mut l = Ledger::new();
    l.anchor(id(1), LABS).unwrap();
    let clinician = l.clinician.address();
    let unverified = l.unverified.address();
    let patient = keys(1);

    let m = l.grant_message(unverified, SCOPE_EVERYTHING, 0, vec![], false, START + DAY);
    assert_eq!(reason(l.signed(&patient, &m)), format!("UnverifiedGrantee({unverified:?})"));
    let m = l.grant_message(clinician, SCOPE_EVERYTHING, 0, vec![], false, START + DAY);
    assert!(reason(l.signed(&keys(2), &m)).starts_with("WrongSigner("), "signed by someone other than the patient");
    let mut bad_sig = l.domain(records()).sign(&patient, &m);
    bad_sig.truncate(64);
    assert_eq!(reason(l.send_signed(&m, bad_sig)), "ECDSAInvalidSignatureLength(64)");
    let m = l.grant_message(clinician, SCOPE_EVERYTHING, 0, vec![], false, START);
    assert_eq!(reason(l.signed(&patient, &m)), format!("ExpiryInPast({START})"));
    let m = l.grant_message(clinician, SCOPE_EVERYTHING, 0, vec![], false, START + 400 * DAY);
    assert!(reason(l.signed(&patient, &m)).starts_with("ExpiryTooFar("));
    let m = l.grant_message(clinician, 3, 0, vec![], false, START + DAY);
    assert_eq!(reason(l.signed(&patient, &m)), "InvalidScope(3)");
    let m = l.grant_message(clinician, SCOPE_RECORDS, 0, vec![], false, START + DAY);
    assert_eq!(reason(l.signed(&patient, &m)), "EmptyScope()");
    let m = l.grant_message(clinician, SCOPE_CATEGORIES, 0, vec![], false, START + DAY);
    assert_eq!(reason(l.signed(&patient, &m)), "EmptyScope()");
    let m = l.grant_message(clinician, SCOPE_RECORDS, 0, vec![id(9)], false, START + DAY);
    assert!(reason(l.signed(&patient, &m)).starts_with("UnknownRecord("));
    // Only patients grant.
    let c = keys(2);
    let m =
        Grant { patient: c.address(), ..l.grant_message(clinician, SCOPE_EVERYTHING, 0, vec![], false, START + DAY) };
    let m = Grant { nonce: l.consent_nonce(c.address(), clinician), ..m };
    assert_eq!(reason(l.signed(&c, &m)), format!("NotPatient({:?})", c.address()));
    // Replayed nonce.
    let m = l.grant_message(clinician, SCOPE_EVERYTHING, 0, vec![], false, START + DAY);
    let receipt = l.signed(&patient, &m).unwrap();
    eprintln!("gas.grant: {}", receipt.gas_used);
    assert!(reason(l.signed(&patient, &m)).starts_with("InvalidAccountNonce("));
}

#[test]
fn revoke_and_access_reverts() {
    let mut l = Ledger::new();
    l.anchor(id(1), LABS).unwrap();
    assert!(reason(l.access(id(1))).starts_with("NoGrant("));
    l.grant(SCOPE_EVERYTHING, 0, vec![], false, START + DAY).unwrap();
    // A revoke signed by the clinician, not the patient.
    let (patient, grantee) = (l.patient.address(), l.clinician.address());
    let m = Revoke { patient, grantee, nonce: l.consent_nonce(patient, grantee) };
    assert!(reason(l.signed(&keys(2), &m)).starts_with("WrongSigner("));
    // A forged access request (signed by another key), and a replayed one.
    let m = l.access_message(grantee, id(1));
    assert!(reason(l.signed(&keys(9), &m)).starts_with("WrongSigner("));
    l.signed(&keys(2), &m).unwrap();
    assert!(reason(l.signed(&keys(2), &m)).starts_with("InvalidAccountNonce("));
    // A record that does not exist, or is another patient's.
    assert!(reason(l.access(id(9))).starts_with("UnknownRecord("));
    l.anchor_own(&keys(5), id(8)).unwrap();
    assert!(reason(l.access(id(8))).starts_with("UnknownRecord("), "another patient's record");
    // A replayed revoke.
    let m = Revoke { patient, grantee, nonce: l.consent_nonce(patient, grantee) };
    l.signed(&keys(1), &m).unwrap();
    assert!(reason(l.signed(&keys(1), &m)).starts_with("InvalidAccountNonce("));
}

/// A 64-byte signature: OpenZeppelin's ECDSA refuses its length.
fn short(mut signature: Vec<u8>) -> Vec<u8> {
    signature.truncate(64);
    signature
}

#[test]
fn malformed_signatures_are_refused_everywhere() {
    let mut l = Ledger::new();
    l.anchor(id(1), LABS).unwrap();
    let patient = keys(1);
    let (p, c) = (l.patient.address(), l.clinician.address());
    let expected = "ECDSAInvalidSignatureLength(64)";

    let m = l.anchor_message(p, id(2), LABS, [0; 32]);
    let sig = short(l.domain(records()).sign(&patient, &m));
    assert_eq!(reason(l.send_signed(&m, sig)), expected);

    let m = AnchorBatch { author: p, patient: p, root: id(0xb1), count: 3 };
    let sig = short(l.domain(records()).sign(&patient, &m));
    assert_eq!(reason(l.send_signed(&m, sig)), expected);

    let m = Revoke { patient: p, grantee: c, nonce: l.consent_nonce(p, c) };
    let sig = short(l.domain(records()).sign(&patient, &m));
    assert_eq!(reason(l.send_signed(&m, sig)), expected);

    l.grant(SCOPE_EVERYTHING, 0, vec![], false, START + DAY).unwrap();
    let m = l.access_message(c, id(1));
    let sig = short(l.domain(records()).sign(&keys(2), &m));
    assert_eq!(reason(l.send_signed(&m, sig)), expected);
}

#[test]
fn a_grant_held_back_by_the_relayer_is_void_after_stop_sharing() {
    let mut l = Ledger::new();
    l.anchor(id(1), LABS).unwrap();
    let clinician = l.clinician.address();
    // The patient signs a grant; the relayer does not submit it (yet).
    let held = l.grant_message(clinician, SCOPE_EVERYTHING, 0, vec![], false, START + 7 * DAY);
    // The patient presses "Stop sharing", signing with the same current nonce.
    l.revoke().unwrap();
    assert!(reason(l.signed(&keys(1), &held)).starts_with("InvalidAccountNonce("));
    assert!(!l.can_access(id(1)));
}

#[test]
fn ids_are_per_patient_so_no_one_can_squat_them() {
    let mut l = Ledger::new();
    // Another account anchors the id first, in its own chart.
    let other = keys(5);
    l.anchor_own(&other, id(1)).unwrap();
    // The patient's own record with that id is unaffected.
    l.anchor(id(1), LABS).unwrap();
    let p = l.patient.address();
    let stored = l.view(records(), "recordOf", &[Token::Address(p), Token::FixedBytes(id(1).to_vec())]);
    assert_eq!(stored[4], Token::FixedBytes([0xcc; 32].to_vec()));
    // Listing another patient's record in a grant is refused.
    let patient = keys(1);
    l.anchor_own(&other, id(3)).unwrap();
    let clinician = l.clinician.address();
    let g = l.grant_message(clinician, SCOPE_RECORDS, 0, vec![id(3)], false, START + DAY);
    assert!(reason(l.signed(&patient, &g)).starts_with("UnknownRecord("));
}

#[test]
fn input_the_contract_cannot_use_is_refused() {
    let mut l = Ledger::new();
    let patient = keys(1);
    let (p, c) = (l.patient.address(), l.clinician.address());
    l.anchor(id(1), LABS).unwrap();
    let m = l.anchor_message(p, id(2), 32, [0; 32]);
    assert_eq!(reason(l.signed(&patient, &m)), "InvalidCategory(32)");
    let m = l.anchor_message(p, [0; 32], LABS, [0; 32]);
    assert_eq!(reason(l.signed(&patient, &m)), "ZeroId()");
    for (scope, categories, list, write, expected) in [
        (SCOPE_RECORDS, 1u32 << LABS, vec![id(1)], false, "ScopeMismatch()"),
        (SCOPE_RECORDS, 0, vec![id(1)], true, "WriteNeedsCategories()"),
        (SCOPE_CATEGORIES, 1 << LABS, vec![id(1)], false, "ScopeMismatch()"),
        (SCOPE_EVERYTHING, 1 << LABS, vec![], false, "ScopeMismatch()"),
        (SCOPE_EVERYTHING, 0, vec![id(1)], false, "ScopeMismatch()"),
    ] {
        let g = l.grant_message(c, scope, categories, list, write, START + DAY);
        assert_eq!(reason(l.signed(&patient, &g)), expected, "scope {scope}");
    }
}

#[test]
fn write_back_ends_with_the_grant_and_stays_in_scope() {
    let mut l = Ledger::new();
    let clinician = keys(2);
    l.anchor(id(1), LABS).unwrap();
    l.grant(SCOPE_CATEGORIES, 1 << NOTES, vec![], true, START + DAY).unwrap();
    // Correcting a lab it may not write is refused, even though notes are writable.
    let m = l.anchor_message(clinician.address(), id(2), NOTES, id(1));
    assert!(reason(l.signed(&clinician, &m)).starts_with("NotAuthorisedAuthor("));
    // Expired grant: no more writing.
    l.chain.advance_time(DAY);
    let m = l.anchor_message(clinician.address(), id(3), NOTES, [0; 32]);
    assert!(reason(l.signed(&clinician, &m)).starts_with("NotAuthorisedAuthor("));
    // Revoked grant: no more writing.
    l.grant(SCOPE_CATEGORIES, 1 << NOTES, vec![], true, START + 3 * DAY).unwrap();
    let m = l.anchor_message(clinician.address(), id(4), NOTES, [0; 32]);
    l.signed(&clinician, &m).unwrap();
    l.revoke().unwrap();
    let m = l.anchor_message(clinician.address(), id(5), NOTES, [0; 32]);
    assert!(reason(l.signed(&clinician, &m)).starts_with("NotAuthorisedAuthor("));
}

#[test]
fn batch_anchors_by_a_grantee_need_write_everything() {
    let mut l = Ledger::new();
    let clinician = keys(2);
    let c = clinician.address();
    l.grant(SCOPE_CATEGORIES, 1 << NOTES, vec![], true, START + DAY).unwrap();
    let m = l.batch_message(c, id(0xb1), 2);
    assert!(reason(l.signed(&clinician, &m)).starts_with("NotAuthorisedAuthor("));
    l.grant(SCOPE_EVERYTHING, 0, vec![], true, START + DAY).unwrap();
    let m = l.batch_message(c, id(0xb1), 2);
    l.signed(&clinician, &m).unwrap();
}

#[test]
fn a_clinician_with_an_expired_credential_cannot_be_granted() {
    let mut l = Ledger::new();
    l.issue_credential(START + DAY);
    l.chain.advance_time(DAY);
    let c = l.clinician.address();
    let g = l.grant_message(c, SCOPE_EVERYTHING, 0, vec![], false, START + 3 * DAY);
    assert_eq!(reason(l.signed(&keys(1), &g)), format!("UnverifiedGrantee({c:?})"));
}

#[test]
fn consent_nonces_are_per_pair_and_spent_by_grants_and_revocations() {
    let mut l = Ledger::new();
    l.anchor(id(1), LABS).unwrap();
    let (p, c, other) = (l.patient.address(), l.clinician.address(), l.unverified.address());
    let account_nonce = l.nonce(records(), p);
    // Consents to one grantee leave another's nonce alone.
    let held = l.grant_message(other, SCOPE_EVERYTHING, 0, vec![], false, START + DAY);
    l.grant(SCOPE_EVERYTHING, 0, vec![], false, START + DAY).unwrap();
    assert_eq!(l.consent_nonce(p, c), U256::one());
    l.revoke().unwrap();
    assert_eq!(l.consent_nonce(p, c), U256::from(2));
    let receipt = l.grant(SCOPE_CATEGORIES, 1 << LABS, vec![], false, START + DAY).unwrap();
    assert_eq!(receipt.events(&records().abi, "Granted")[0][2], Token::Uint(3.into()), "the grant's serial");
    assert_eq!(l.consent_nonce(p, other), U256::zero());
    assert_eq!(held.nonce, U256::zero());
    assert_eq!(l.nonce(records(), p), account_nonce, "consents leave the account nonce alone");
    // Stopping a pair that never shared spends its nonce and says nothing was stopped.
    let m = Revoke { patient: p, grantee: other, nonce: U256::zero() };
    let receipt = l.signed(&keys(1), &m).unwrap();
    assert_eq!(receipt.events(&records().abi, "Revoked")[0][2], Token::Uint(0.into()));
    assert!(reason(l.signed(&keys(1), &held)).starts_with("InvalidAccountNonce("));
}

impl Ledger {
    /// `calls` (message inputs) in one `bundle` transaction from the relayer.
    fn bundle(&mut self, artifact: &Artifact, calls: Vec<Vec<u8>>) -> Result<Receipt, TxError> {
        let (relayer, to) = (self.relayer, self.contract_of(artifact));
        let calls = Token::Array(calls.into_iter().map(Token::Bytes).collect());
        self.chain.send(relayer, to, artifact, "bundle", &[calls])
    }

    fn input<M: SignedCall>(&self, signer: &AccountKeys, message: &M) -> Vec<u8> {
        calls::input(message, self.domain(M::artifact()).sign(signer, message))
    }
}

#[test]
fn a_bundle_runs_each_call_as_if_alone() {
    let mut l = Ledger::new();
    let patient = keys(1);
    let clinician = l.clinician.address();
    let anchor = l.anchor_message(patient.address(), id(1), LABS, [0; 32]);
    let grant = l.grant_message(clinician, SCOPE_EVERYTHING, 0, vec![], false, START + DAY);
    let forged = l.grant_message(l.unverified.address(), SCOPE_EVERYTHING, 0, vec![], false, START + DAY);
    let calls = vec![
        l.input(&patient, &anchor),
        l.input(&patient, &anchor),
        l.input(&keys(9), &forged),
        l.input(&patient, &grant),
    ];
    let receipt = l.bundle(records(), calls).unwrap();
    assert_eq!(receipt.events(&records().abi, "RecordAnchored").len(), 1);
    assert_eq!(receipt.events(&records().abi, "Granted").len(), 1);
    let reverted = receipt.events(&records().abi, "BundledCallReverted");
    assert_eq!(reverted.len(), 2, "the replayed anchor and the forged grant");
    assert_eq!(reverted[0][0], Token::Uint(1.into()));
    let reason = reverted[0][1].clone().into_bytes().unwrap();
    assert_eq!(records().describe_revert(&reason), format!("RecordExists(0x{})", hex::encode(id(1))));
    assert_eq!(reverted[1][0], Token::Uint(2.into()));
    let reason = reverted[1][1].clone().into_bytes().unwrap();
    assert!(records().describe_revert(&reason).starts_with("WrongSigner("));
    // One event per call, in call order: how the relayer tells calls apart.
    assert_eq!(receipt.logs.len(), 4);
    assert!(l.can_access(id(1)));

    // The caller stays the relayer: an administrator's call in a bundle is refused.
    let set_authority =
        encode_call(&directory().abi, "setAuthority", &[Token::Address(keys(9).address()), Token::Bool(true)]);
    let receipt = l.bundle(directory(), vec![set_authority.unwrap()]).unwrap();
    let reverted = receipt.events(&directory().abi, "BundledCallReverted");
    let reason = reverted[0][1].clone().into_bytes().unwrap();
    assert!(directory().describe_revert(&reason).starts_with("OwnableUnauthorizedAccount("));
}

#[test]
fn bundled_grants_share_the_transaction_cost() {
    let mut l = Ledger::new();
    let clinician = l.clinician.address();
    let patients: Vec<AccountKeys> = (40..60).map(keys).collect();
    for p in &patients {
        let message =
            Register { account: p.address(), role: 1, encryption_key: p.encryption_public(), nonce: U256::zero() };
        l.signed(p, &message).unwrap();
    }
    let single = {
        let p = &patients[0];
        let message = Grant {
            patient: p.address(),
            ..l.grant_message(clinician, SCOPE_EVERYTHING, 0, vec![], false, START + DAY)
        };
        l.signed(p, &message).unwrap().gas_used
    };
    let calls: Vec<Vec<u8>> = patients[1..]
        .iter()
        .map(|p| {
            let message = Grant {
                patient: p.address(),
                ..l.grant_message(clinician, SCOPE_EVERYTHING, 0, vec![], false, START + DAY)
            };
            l.input(p, &message)
        })
        .collect();
    let count = calls.len() as u64;
    let receipt = l.bundle(records(), calls).unwrap();
    assert_eq!(receipt.events(&records().abi, "Granted").len() as u64, count);
    let per_grant = receipt.gas_used / count;
    eprintln!("grant alone: {single}; in a bundle of {count}: {per_grant} each");
    assert!(per_grant < single - 15_000, "bundling saves most of the 21,000 per transaction");
}

/// Seven records of one batch (an uneven tree) with their audit paths.
fn proven_batch(l: &mut Ledger) -> ([u8; 32], Vec<AnchoredRecord>, Tree) {
    let batch: Vec<AnchoredRecord> = (0..7u8)
        .map(|i| AnchoredRecord {
            id: RecordId([0x40 + i; 32]),
            ciphertext_hash: [0x80 + i; 32],
            category: if i % 2 == 0 { LABS } else { NOTES },
            amends: None,
        })
        .collect();
    let tree = batch_tree(&batch).unwrap();
    let patient = keys(1);
    let m = l.batch_message(patient.address(), tree.root(), batch.len() as u32);
    l.signed(&patient, &m).unwrap();
    (tree.root(), batch, tree)
}

fn prove(
    l: &mut Ledger,
    patient: Address,
    root: [u8; 32],
    index: u32,
    r: &AnchoredRecord,
    path: &[[u8; 32]],
) -> Result<Receipt, TxError> {
    let proof = calls::BatchRecordProof { patient, root, index, record: *r, path: path.to_vec() };
    // Anyone may submit a proof: here, an account that is no one in particular.
    let (from, to) = (Address::repeat_byte(0x77), l.records);
    l.chain.send(from, to, records(), calls::BatchRecordProof::FUNCTION, &proof.arguments())
}

#[test]
fn a_batch_record_proven_by_its_audit_path_can_be_shared_and_opened() {
    let mut l = Ledger::new();
    let (root, batch, tree) = proven_batch(&mut l);
    let patient = l.patient.address();
    // Before it is proven, the record is not in the chart by itself.
    assert!(!l.can_access(batch[2].id.0));
    let week = START + 7 * DAY;
    assert!(reason(l.grant(SCOPE_RECORDS, 0, vec![batch[2].id.0], false, week)).starts_with("UnknownRecord("));

    for (i, r) in batch.iter().enumerate() {
        let path = tree.proof(i).unwrap();
        let receipt = prove(&mut l, patient, root, i as u32, r, &path).unwrap();
        eprintln!("gas.prove_batch_record_{i}_of_7: {}", receipt.gas_used);
        assert_eq!(receipt.events(&records().abi, "BatchRecordProven").len(), 1);
        let on = l.view(records(), "recordOf", &[Token::Address(patient), Token::FixedBytes(r.id.0.to_vec())]);
        assert_eq!(on[0], Token::Bool(true));
        assert_eq!(on[1], Token::Uint(r.category.into()));
        assert_eq!(on[3], Token::Address(patient), "the batch's author is the record's");
        assert_eq!(on[4], Token::FixedBytes(r.ciphertext_hash.to_vec()));
    }
    // Proving again changes nothing, and says so by emitting nothing.
    let again = prove(&mut l, patient, root, 2, &batch[2], &tree.proof(2).unwrap()).unwrap();
    assert!(again.events(&records().abi, "BatchRecordProven").is_empty());

    l.grant(SCOPE_RECORDS, 0, vec![batch[2].id.0], false, week).unwrap();
    assert!(l.can_access(batch[2].id.0));
    assert!(!l.can_access(batch[3].id.0), "proven but not shared");
    l.access(batch[2].id.0).unwrap();
    assert!(reason(l.access(batch[3].id.0)).starts_with("OutOfScope("));
}

#[test]
fn a_wrong_audit_path_proves_nothing() {
    let mut l = Ledger::new();
    let (root, batch, tree) = proven_batch(&mut l);
    let patient = l.patient.address();
    let path = tree.proof(3).unwrap();
    let r = batch[3];
    let bad = |res: Result<Receipt, TxError>| reason(res);
    // Another index, a changed hash or category, a flipped path step, a short or long path.
    assert!(bad(prove(&mut l, patient, root, 2, &r, &path)).starts_with("BadInclusionProof("));
    assert!(bad(prove(&mut l, patient, root, 7, &r, &path)).starts_with("BadInclusionProof("));
    assert!(bad(prove(&mut l, patient, root, u32::MAX, &r, &path)).starts_with("BadInclusionProof("));
    let mut changed = r;
    changed.ciphertext_hash[0] ^= 1;
    assert!(bad(prove(&mut l, patient, root, 3, &changed, &path)).starts_with("BadInclusionProof("));
    let mut changed = r;
    changed.category = LABS + 1;
    assert!(bad(prove(&mut l, patient, root, 3, &changed, &path)).starts_with("BadInclusionProof("));
    let mut flipped = path.clone();
    flipped[0][5] ^= 0x10;
    assert!(bad(prove(&mut l, patient, root, 3, &r, &flipped)).starts_with("BadInclusionProof("));
    assert!(bad(prove(&mut l, patient, root, 3, &r, &path[1..])).starts_with("BadInclusionProof("));
    let mut long = path.clone();
    long.push([0; 32]);
    assert!(bad(prove(&mut l, patient, root, 3, &r, &long)).starts_with("BadInclusionProof("));
    // A root the patient never anchored, or the patient's root under someone else's chart.
    assert!(bad(prove(&mut l, patient, [9; 32], 3, &r, &path)).starts_with("UnknownBatch("));
    let other = keys(5).address();
    assert!(bad(prove(&mut l, other, root, 3, &r, &path)).starts_with("UnknownBatch("));
    // A record anchored alone with another fingerprint cannot be overwritten through a batch.
    let mut l = Ledger::new();
    l.anchor(batch[0].id.0, LABS).unwrap();
    let (root, batch, tree) = proven_batch(&mut l);
    let patient = l.patient.address();
    assert!(bad(prove(&mut l, patient, root, 0, &batch[0], &tree.proof(0).unwrap())).starts_with("RecordExists("));
    // Nothing was written by any of the refusals.
    let on = l.view(records(), "recordOf", &[Token::Address(patient), Token::FixedBytes(batch[0].id.0.to_vec())]);
    assert_eq!(on[4], Token::FixedBytes(vec![0xcc; 32]));
}
