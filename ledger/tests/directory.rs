//! The Directory contract against revm: every function's success and every
//! revert path, with signatures made by the same core code the browser uses.

mod common;

use chartkey_core::AccountKeys;
use chartkey_core::eip712::{Domain, IssueCredential, Register, RevokeCredential, TypedMessage, bytes32_text};
use chartkey_ledger::artifacts::directory;
use chartkey_ledger::calls::{self, SignedCall};
use chartkey_ledger::{Chain, Receipt, TxError};
use common::{CHAIN_ID, DAY, Deployed, START, keys, reason};
use ethers_core::abi::Token;
use ethers_core::types::{Address, U256};
use ethers_core::utils::keccak256;

const PATIENT: u8 = 1;
const CLINICIAN: u8 = 2;
const AUTHORITY: u8 = 4;

struct World {
    chain: Chain,
    contract: Address,
    admin: Address,
    relayer: Address,
}

impl World {
    fn new() -> Self {
        let d = Deployed::directory();
        Self { chain: d.chain, contract: d.directory, admin: d.admin, relayer: d.relayer }
    }

    fn domain(&self) -> Domain {
        Domain::directory(CHAIN_ID, self.contract)
    }

    fn view(&mut self, function: &str, args: &[Token]) -> Vec<Token> {
        self.chain.call(self.contract, directory(), function, args).expect("view call")
    }

    fn nonce(&mut self, who: Address) -> U256 {
        self.view("nonces", &[Token::Address(who)])[0].clone().into_uint().unwrap()
    }

    fn send(&mut self, from: Address, function: &str, args: &[Token]) -> Result<Receipt, TxError> {
        self.chain.send(from, self.contract, directory(), function, args)
    }

    /// Sends `message` with `signature` as given (malformed ones included), from the relayer.
    fn send_signed<M: SignedCall>(&mut self, message: &M, signature: Vec<u8>) -> Result<Receipt, TxError> {
        let relayer = self.relayer;
        self.send(relayer, M::FUNCTION, &calls::arguments(message, signature))
    }

    fn register_message(&mut self, who: &AccountKeys, role: u8) -> Register {
        let nonce = self.nonce(who.address());
        Register { account: who.address(), role, encryption_key: who.encryption_public(), nonce }
    }

    fn register(&mut self, who: &AccountKeys, role: u8) -> Result<Receipt, TxError> {
        let message = self.register_message(who, role);
        let signature = self.domain().sign(who, &message);
        self.send_signed(&message, signature)
    }

    fn issue_message(&mut self, authority: &AccountKeys, clinician: Address, expires_at: u64) -> IssueCredential {
        IssueCredential {
            authority: authority.address(),
            clinician,
            license_id_hash: keccak256("MD-12345"),
            specialty: bytes32_text("psychiatry").unwrap(),
            expires_at,
            nonce: self.nonce(authority.address()),
        }
    }

    fn signed<M: SignedCall>(&mut self, signer: &AccountKeys, message: &M) -> Result<Receipt, TxError> {
        let signature = self.domain().sign(signer, message);
        self.send_signed(message, signature)
    }

    fn issue(&mut self, authority: &AccountKeys, clinician: Address, expires_at: u64) -> Result<Receipt, TxError> {
        let message = self.issue_message(authority, clinician, expires_at);
        self.signed(authority, &message)
    }

    fn revoke(&mut self, authority: &AccountKeys, clinician: Address) -> Result<Receipt, TxError> {
        let message =
            RevokeCredential { authority: authority.address(), clinician, nonce: self.nonce(authority.address()) };
        self.signed(authority, &message)
    }

    fn set_authority(&mut self, from: Address, authority: Address, enabled: bool) -> Result<Receipt, TxError> {
        self.send(from, "setAuthority", &[Token::Address(authority), Token::Bool(enabled)])
    }

    fn credential_valid(&mut self, clinician: Address) -> bool {
        self.view("credentialValid", &[Token::Address(clinician)])[0].clone().into_bool().unwrap()
    }

    /// A registered authority named by the admin, and a registered clinician.
    fn with_authority_and_clinician(&mut self) -> (AccountKeys, AccountKeys) {
        let (authority, clinician) = (keys(40), keys(20));
        self.register(&authority, AUTHORITY).unwrap();
        self.register(&clinician, CLINICIAN).unwrap();
        let admin = self.admin;
        self.set_authority(admin, authority.address(), true).unwrap();
        (authority, clinician)
    }
}

#[test]
fn the_contract_verifies_exactly_the_digest_core_signs() {
    let mut w = World::new();
    let k = keys(1);
    let message =
        Register { account: k.address(), role: PATIENT, encryption_key: k.encryption_public(), nonce: U256::zero() };
    let digest = w.view("hashTypedData", &[Token::FixedBytes(message.struct_hash().to_vec())]);
    assert_eq!(digest[0].clone().into_fixed_bytes().unwrap(), w.domain().digest(&message).to_vec());
    for (name, hash) in [
        ("REGISTER_TYPEHASH", Register::type_hash()),
        ("ISSUE_CREDENTIAL_TYPEHASH", IssueCredential::type_hash()),
        ("REVOKE_CREDENTIAL_TYPEHASH", RevokeCredential::type_hash()),
    ] {
        assert_eq!(w.view(name, &[])[0].clone().into_fixed_bytes().unwrap(), hash.to_vec(), "{name}");
    }
}

#[test]
fn register_then_rotate_the_encryption_key() {
    let mut w = World::new();
    let k = keys(1);
    let receipt = w.register(&k, PATIENT).unwrap();
    assert_eq!(
        receipt.events(&directory().abi, "AccountRegistered"),
        vec![vec![
            Token::Address(k.address()),
            Token::Uint(PATIENT.into()),
            Token::FixedBytes(k.encryption_public().to_vec())
        ]]
    );
    let account = w.view("accountOf", &[Token::Address(k.address())]);
    assert_eq!(
        account,
        vec![Token::Uint(PATIENT.into()), Token::FixedBytes(k.encryption_public().to_vec()), Token::Uint(START.into())]
    );
    assert_eq!(w.nonce(k.address()), U256::one());

    let mut message = w.register_message(&k, PATIENT);
    message.encryption_key = keys(2).encryption_public();
    let signature = w.domain().sign(&k, &message);
    let receipt = w.send_signed(&message, signature).unwrap();
    assert_eq!(
        receipt.events(&directory().abi, "EncryptionKeyChanged"),
        vec![vec![Token::Address(k.address()), Token::FixedBytes(keys(2).encryption_public().to_vec())]]
    );
    assert_eq!(
        w.view("accountOf", &[Token::Address(k.address())])[1],
        Token::FixedBytes(keys(2).encryption_public().to_vec())
    );
}

#[test]
fn register_reverts() {
    let mut w = World::new();
    let k = keys(1);

    // Bad signature: malformed bytes.
    let message = w.register_message(&k, PATIENT);
    assert_eq!(reason(w.send_signed(&message, vec![0u8; 64])), "ECDSAInvalidSignatureLength(64)");
    let mut high_s = w.domain().sign(&k, &message);
    high_s[32] = 0xff;
    assert!(reason(w.send_signed(&message, high_s)).starts_with("ECDSAInvalidSignatureS("));

    // Wrong signer: a valid signature by someone else.
    let forged = w.domain().sign(&keys(2), &message);
    assert!(reason(w.send_signed(&message, forged)).starts_with(&format!("WrongSigner({:?}", k.address())));

    // Signed for another chain: recovers to a different address.
    let other_chain = Domain { chain_id: 1, ..w.domain() }.sign(&k, &message);
    assert!(reason(w.send_signed(&message, other_chain)).starts_with("WrongSigner("));

    // Invalid role.
    let bad_role = Register { role: 9, ..message.clone() };
    let signature = w.domain().sign(&k, &bad_role);
    assert_eq!(reason(w.send_signed(&bad_role, signature)), "InvalidRole(9)");

    // Replayed nonce.
    let signature = w.domain().sign(&k, &message);
    w.send_signed(&message, signature.clone()).unwrap();
    assert_eq!(reason(w.send_signed(&message, signature)), format!("InvalidAccountNonce({:?}, 1)", k.address()));

    // A role cannot change.
    let change = w.register_message(&k, CLINICIAN);
    let signature = w.domain().sign(&k, &change);
    assert_eq!(reason(w.send_signed(&change, signature)), "RoleChange(1, 2)");
}

#[test]
fn only_the_admin_names_registered_authorities() {
    let mut w = World::new();
    let authority = keys(40);
    let admin = w.admin;
    let stranger = Address::repeat_byte(0x99);
    assert_eq!(
        reason(w.set_authority(admin, authority.address(), true)),
        format!("NotRegistered({:?})", authority.address())
    );
    w.register(&authority, AUTHORITY).unwrap();
    assert_eq!(
        reason(w.set_authority(stranger, authority.address(), true)),
        format!("OwnableUnauthorizedAccount({stranger:?})")
    );
    let receipt = w.set_authority(admin, authority.address(), true).unwrap();
    assert_eq!(
        receipt.events(&directory().abi, "AuthoritySet"),
        vec![vec![Token::Address(authority.address()), Token::Bool(true)]]
    );
    assert_eq!(w.view("isAuthority", &[Token::Address(authority.address())]), vec![Token::Bool(true)]);
    // Removing needs no registration check, and works.
    w.set_authority(admin, authority.address(), false).unwrap();
    assert_eq!(w.view("isAuthority", &[Token::Address(authority.address())]), vec![Token::Bool(false)]);
}

#[test]
fn an_authority_issues_a_credential_that_expires() {
    let mut w = World::new();
    let (authority, clinician) = w.with_authority_and_clinician();
    assert!(!w.credential_valid(clinician.address()));
    let receipt = w.issue(&authority, clinician.address(), START + 30 * DAY).unwrap();
    let issued = receipt.events(&directory().abi, "CredentialIssued");
    assert_eq!(issued.len(), 1);
    assert_eq!(issued[0][0], Token::Address(clinician.address()));
    assert_eq!(issued[0][1], Token::Address(authority.address()));
    assert!(w.credential_valid(clinician.address()));
    let stored = w.view("credentialOf", &[Token::Address(clinician.address())]);
    assert_eq!(stored[0], Token::Address(authority.address()));
    assert_eq!(stored[2], Token::FixedBytes(bytes32_text("psychiatry").unwrap().to_vec()));

    // Expiry: valid until the last second before expiresAt.
    w.chain.advance_time(30 * DAY - 1);
    assert!(w.credential_valid(clinician.address()));
    w.chain.advance_time(1);
    assert!(!w.credential_valid(clinician.address()));

    // Renewal, then the authority losing its standing ends validity too.
    w.issue(&authority, clinician.address(), START + 60 * DAY).unwrap();
    assert!(w.credential_valid(clinician.address()));
    let admin = w.admin;
    w.set_authority(admin, authority.address(), false).unwrap();
    assert!(!w.credential_valid(clinician.address()));
}

#[test]
fn issue_credential_reverts() {
    let mut w = World::new();
    let (authority, clinician) = w.with_authority_and_clinician();
    let patient = keys(10);
    w.register(&patient, PATIENT).unwrap();

    // Wrong signer.
    let message = w.issue_message(&authority, clinician.address(), START + DAY);
    assert!(reason(w.signed(&clinician, &message)).starts_with("WrongSigner("));
    // Replayed nonce.
    w.signed(&authority, &message).unwrap();
    assert!(reason(w.signed(&authority, &message)).starts_with("InvalidAccountNonce("));
    // Not an authority (registered, but never named by the admin).
    let pretender = keys(41);
    w.register(&pretender, AUTHORITY).unwrap();
    assert_eq!(
        reason(w.issue(&pretender, clinician.address(), START + DAY)),
        format!("NotAuthority({:?})", pretender.address())
    );
    // Not a clinician.
    assert_eq!(
        reason(w.issue(&authority, patient.address(), START + DAY)),
        format!("NotClinician({:?})", patient.address())
    );
    // Another current authority cannot overwrite (or un-revoke) this credential.
    let second = keys(43);
    w.register(&second, AUTHORITY).unwrap();
    let admin = w.admin;
    w.set_authority(admin, second.address(), true).unwrap();
    assert_eq!(
        reason(w.issue(&second, clinician.address(), START + DAY)),
        format!("NotIssuer({:?}, {:?})", clinician.address(), second.address())
    );
    // Once the first authority is no longer one, another may take over.
    w.set_authority(admin, authority.address(), false).unwrap();
    w.issue(&second, clinician.address(), START + DAY).unwrap();
    w.set_authority(admin, authority.address(), true).unwrap();
    // Expiry in the past.
    assert_eq!(reason(w.issue(&authority, clinician.address(), START)), format!("ExpiryInPast({START})"));
}

#[test]
fn the_issuing_authority_revokes() {
    let mut w = World::new();
    let (authority, clinician) = w.with_authority_and_clinician();
    w.issue(&authority, clinician.address(), START + DAY).unwrap();
    let receipt = w.revoke(&authority, clinician.address()).unwrap();
    assert_eq!(
        receipt.events(&directory().abi, "CredentialRevoked"),
        vec![vec![Token::Address(clinician.address()), Token::Address(authority.address())]]
    );
    assert!(!w.credential_valid(clinician.address()));
    assert_eq!(w.view("credentialOf", &[Token::Address(clinician.address())])[4], Token::Bool(true));
}

#[test]
fn revoke_credential_reverts() {
    let mut w = World::new();
    let (authority, clinician) = w.with_authority_and_clinician();
    // Nothing to revoke yet.
    assert_eq!(reason(w.revoke(&authority, clinician.address())), format!("NoCredential({:?})", clinician.address()));
    w.issue(&authority, clinician.address(), START + DAY).unwrap();
    // Another authority did not issue it.
    let other = keys(42);
    w.register(&other, AUTHORITY).unwrap();
    let admin = w.admin;
    w.set_authority(admin, other.address(), true).unwrap();
    assert_eq!(
        reason(w.revoke(&other, clinician.address())),
        format!("NotIssuer({:?}, {:?})", clinician.address(), other.address())
    );
    // Wrong signer.
    let message = RevokeCredential {
        authority: authority.address(),
        clinician: clinician.address(),
        nonce: w.nonce(authority.address()),
    };
    assert!(reason(w.signed(&other, &message)).starts_with("WrongSigner("));
    // Replayed nonce.
    w.signed(&authority, &message).unwrap();
    assert!(reason(w.signed(&authority, &message)).starts_with("InvalidAccountNonce("));
    assert!(!w.credential_valid(clinician.address()));
}

#[test]
fn gas_of_directory_operations_is_reported() {
    let mut w = World::new();
    let k = keys(1);
    let gas = w.register(&k, PATIENT).unwrap().gas_used;
    eprintln!("gas.register_first: {gas}");
    // A first registration writes two storage slots; keep it in a sane band.
    assert!((40_000..120_000).contains(&gas), "register used {gas} gas");
}
