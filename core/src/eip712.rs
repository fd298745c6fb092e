//! EIP-712 typed data for the ledger's contracts, computed in the browser
//! (and the server's tests) exactly as the contracts compute it.
//!
//! Domain: `EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)`
//! (OpenZeppelin's EIP712), so a signature is bound to one chain and one
//! contract.

use ethers_core::abi::{Token, encode};
use ethers_core::types::{Address, Signature, U256};
use ethers_core::utils::keccak256;
use serde::{Deserialize, Serialize};

use crate::directory::sign_digest;
use crate::keys::AccountKeys;

mod access;
pub use access::{
    EmergencyAccess, EmergencyContact, EmergencyContactRemove, EmergencyRefusal, EmergencyRequest, FLAG_DIRECT,
    FLAG_LONG_TERM, FLAG_PASSCODE, Field, Link, LinkRevoke, LinkUpdate, MAX_WAIT_SECONDS,
};

const DOMAIN_TYPE: &str = "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)";

/// Where a signature is valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Domain {
    pub name: String,
    pub version: String,
    pub chain_id: u64,
    pub verifying_contract: Address,
}

impl Domain {
    /// The Directory contract's domain on `chain_id` at `contract`.
    pub fn directory(chain_id: u64, contract: Address) -> Self {
        Self { name: "Chartkey Directory".into(), version: "1".into(), chain_id, verifying_contract: contract }
    }

    /// The Records contract's domain (anchors, consents, accesses).
    pub fn records(chain_id: u64, contract: Address) -> Self {
        Self { name: "Chartkey Records".into(), version: "1".into(), chain_id, verifying_contract: contract }
    }

    /// The Access contract's domain (links, emergency contacts).
    pub fn access(chain_id: u64, contract: Address) -> Self {
        Self { name: "Chartkey Access".into(), version: "1".into(), chain_id, verifying_contract: contract }
    }

    pub fn separator(&self) -> [u8; 32] {
        keccak256(encode(&[
            Token::FixedBytes(keccak256(DOMAIN_TYPE).to_vec()),
            Token::FixedBytes(keccak256(&self.name).to_vec()),
            Token::FixedBytes(keccak256(&self.version).to_vec()),
            Token::Uint(U256::from(self.chain_id)),
            Token::Address(self.verifying_contract),
        ]))
    }

    /// keccak256(0x1901 ‖ domainSeparator ‖ structHash).
    pub fn digest(&self, message: &impl TypedMessage) -> [u8; 32] {
        let mut bytes = Vec::with_capacity(66);
        bytes.extend_from_slice(&[0x19, 0x01]);
        bytes.extend_from_slice(&self.separator());
        bytes.extend_from_slice(&message.struct_hash());
        keccak256(bytes)
    }

    /// Signs `message` with the account's secp256k1 key: 65 bytes r‖s‖v.
    pub fn sign(&self, keys: &AccountKeys, message: &impl TypedMessage) -> Vec<u8> {
        self.sign_typed(keys, message).0.to_vec()
    }

    /// [`Self::sign`], as the wire value.
    pub fn sign_typed(&self, keys: &AccountKeys, message: &impl TypedMessage) -> crate::value::Signature {
        let signature: Signature = sign_digest(keys.signing_key(), &self.digest(message));
        signature.into()
    }
}

/// A struct that can be signed under a [`Domain`].
pub trait TypedMessage {
    /// The EIP-712 type string, e.g. `Register(address account,…)`.
    const TYPE: &'static str;
    /// The encoded fields after the type hash.
    fn fields(&self) -> Vec<Token>;

    fn type_hash() -> [u8; 32] {
        keccak256(Self::TYPE)
    }

    fn struct_hash(&self) -> [u8; 32] {
        let mut tokens = vec![Token::FixedBytes(Self::type_hash().to_vec())];
        tokens.extend(self.fields());
        keccak256(encode(&tokens))
    }
}

/// An account registering (or rotating) its encryption key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Register {
    pub account: Address,
    pub role: u8,
    #[serde(with = "hex32")]
    pub encryption_key: [u8; 32],
    pub nonce: U256,
}

impl TypedMessage for Register {
    const TYPE: &'static str = "Register(address account,uint8 role,bytes32 encryptionKey,uint256 nonce)";
    fn fields(&self) -> Vec<Token> {
        vec![
            Token::Address(self.account),
            Token::Uint(U256::from(self.role)),
            Token::FixedBytes(self.encryption_key.to_vec()),
            Token::Uint(self.nonce),
        ]
    }
}

/// A credentialing authority issuing (or renewing) a clinician's credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssueCredential {
    pub authority: Address,
    pub clinician: Address,
    /// keccak256 of the licence number as issued (the number itself stays off-chain).
    #[serde(with = "hex32")]
    pub license_id_hash: [u8; 32],
    /// The specialty, UTF-8, right-padded with zeros to 32 bytes.
    #[serde(with = "hex32")]
    pub specialty: [u8; 32],
    /// Unix seconds.
    pub expires_at: u64,
    pub nonce: U256,
}

impl TypedMessage for IssueCredential {
    const TYPE: &'static str = "IssueCredential(address authority,address clinician,bytes32 licenseIdHash,bytes32 specialty,uint64 expiresAt,uint256 nonce)";
    fn fields(&self) -> Vec<Token> {
        vec![
            Token::Address(self.authority),
            Token::Address(self.clinician),
            Token::FixedBytes(self.license_id_hash.to_vec()),
            Token::FixedBytes(self.specialty.to_vec()),
            Token::Uint(U256::from(self.expires_at)),
            Token::Uint(self.nonce),
        ]
    }
}

/// The issuing authority revoking a clinician's credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeCredential {
    pub authority: Address,
    pub clinician: Address,
    pub nonce: U256,
}

impl TypedMessage for RevokeCredential {
    const TYPE: &'static str = "RevokeCredential(address authority,address clinician,uint256 nonce)";
    fn fields(&self) -> Vec<Token> {
        vec![Token::Address(self.authority), Token::Address(self.clinician), Token::Uint(self.nonce)]
    }
}

/// What a grant covers (`Grant.scope`).
pub const SCOPE_RECORDS: u8 = 0;
pub const SCOPE_CATEGORIES: u8 = 1;
pub const SCOPE_EVERYTHING: u8 = 2;

/// An author anchoring one record's ciphertext hash. No nonce: the record id
/// is claimed for good, so the message cannot be replayed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Anchor {
    pub author: Address,
    pub patient: Address,
    #[serde(with = "hex32")]
    pub record_id: [u8; 32],
    #[serde(with = "hex32")]
    pub ciphertext_hash: [u8; 32],
    pub category: u8,
    /// The record this one corrects, or zero.
    #[serde(with = "hex32")]
    pub amends: [u8; 32],
}

impl TypedMessage for Anchor {
    const TYPE: &'static str =
        "Anchor(address author,address patient,bytes32 recordId,bytes32 ciphertextHash,uint8 category,bytes32 amends)";
    fn fields(&self) -> Vec<Token> {
        vec![
            Token::Address(self.author),
            Token::Address(self.patient),
            Token::FixedBytes(self.record_id.to_vec()),
            Token::FixedBytes(self.ciphertext_hash.to_vec()),
            Token::Uint(U256::from(self.category)),
            Token::FixedBytes(self.amends.to_vec()),
        ]
    }
}

/// An author anchoring a batch of records as one Merkle root (unique, like a
/// record id: no nonce).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnchorBatch {
    pub author: Address,
    pub patient: Address,
    #[serde(with = "hex32")]
    pub root: [u8; 32],
    pub count: u32,
}

impl TypedMessage for AnchorBatch {
    const TYPE: &'static str = "AnchorBatch(address author,address patient,bytes32 root,uint32 count)";
    fn fields(&self) -> Vec<Token> {
        vec![
            Token::Address(self.author),
            Token::Address(self.patient),
            Token::FixedBytes(self.root.to_vec()),
            Token::Uint(U256::from(self.count)),
        ]
    }
}

/// A patient's consent: `grantee` may read (and with `write`, add to) the
/// records in scope until `expires_at`. `nonce` is the pair's consent nonce
/// (the contract's `consentNonce(patient, grantee)`), shared with [`Revoke`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    pub patient: Address,
    pub grantee: Address,
    pub scope: u8,
    /// Bit n set: category n is shared (scope `SCOPE_CATEGORIES`).
    pub categories: u32,
    /// The records shared (scope `SCOPE_RECORDS`).
    #[serde(with = "hex32_list")]
    pub records: Vec<[u8; 32]>,
    pub write: bool,
    pub expires_at: u64,
    pub nonce: U256,
}

impl TypedMessage for Grant {
    const TYPE: &'static str = "Grant(address patient,address grantee,uint8 scope,uint32 categories,bytes32[] records,bool write,uint64 expiresAt,uint256 nonce)";
    fn fields(&self) -> Vec<Token> {
        // EIP-712 arrays: keccak256 of the concatenated encoded elements.
        let records: Vec<u8> = self.records.iter().flatten().copied().collect();
        vec![
            Token::Address(self.patient),
            Token::Address(self.grantee),
            Token::Uint(U256::from(self.scope)),
            Token::Uint(U256::from(self.categories)),
            Token::FixedBytes(keccak256(records).to_vec()),
            Token::Bool(self.write),
            Token::Uint(U256::from(self.expires_at)),
            Token::Uint(self.nonce),
        ]
    }
}

/// The patient stopping a grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Revoke {
    pub patient: Address,
    pub grantee: Address,
    pub nonce: U256,
}

impl TypedMessage for Revoke {
    const TYPE: &'static str = "Revoke(address patient,address grantee,uint256 nonce)";
    fn fields(&self) -> Vec<Token> {
        vec![Token::Address(self.patient), Token::Address(self.grantee), Token::Uint(self.nonce)]
    }
}

/// A grantee's request to open one record; logged before anything is released.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Access {
    pub grantee: Address,
    pub patient: Address,
    #[serde(with = "hex32")]
    pub record_id: [u8; 32],
    pub nonce: U256,
}

impl TypedMessage for Access {
    const TYPE: &'static str = "Access(address grantee,address patient,bytes32 recordId,uint256 nonce)";
    fn fields(&self) -> Vec<Token> {
        vec![
            Token::Address(self.grantee),
            Token::Address(self.patient),
            Token::FixedBytes(self.record_id.to_vec()),
            Token::Uint(self.nonce),
        ]
    }
}

/// Any signed message the ledger's contracts take, tagged by kind for the
/// wire (the browser signs, the server relays).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "message", rename_all = "snake_case")]
pub enum LedgerMessage {
    Register(Register),
    IssueCredential(IssueCredential),
    RevokeCredential(RevokeCredential),
    Anchor(Anchor),
    AnchorBatch(AnchorBatch),
    Grant(Grant),
    Revoke(Revoke),
    Access(Access),
    Link(Link),
    LinkUpdate(LinkUpdate),
    LinkRevoke(LinkRevoke),
    EmergencyContact(EmergencyContact),
    EmergencyContactRemove(EmergencyContactRemove),
    EmergencyRefusal(EmergencyRefusal),
    EmergencyRequest(EmergencyRequest),
    EmergencyAccess(EmergencyAccess),
}

/// `bytes32` values as 0x-prefixed hex on the wire.
mod hex32 {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::value::Hash32;

    pub fn serialize<S: Serializer>(bytes: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&Hash32(*bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        Hash32::deserialize(d).map(|h| h.0)
    }
}

mod hex32_list {
    use serde::ser::SerializeSeq;
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::value::Hash32;

    pub fn serialize<S: Serializer>(list: &[[u8; 32]], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(list.len()))?;
        for bytes in list {
            seq.serialize_element(&Hash32(*bytes))?;
        }
        seq.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<[u8; 32]>, D::Error> {
        Ok(Vec::<Hash32>::deserialize(d)?.into_iter().map(|h| h.0).collect())
    }
}

/// A new account's first registration in the Directory (nonce 0), as the
/// browser signs it at sign-up: the message and its signature.
pub fn first_registration(
    keys: &AccountKeys,
    role: u8,
    chain_id: u64,
    directory: Address,
) -> (Register, crate::value::Signature) {
    let message =
        Register { account: keys.address(), role, encryption_key: keys.encryption_public(), nonce: U256::zero() };
    let signature = Domain::directory(chain_id, directory).sign_typed(keys, &message);
    (message, signature)
}

/// `text` as a right-zero-padded bytes32 (at most 32 bytes of UTF-8).
pub fn bytes32_text(text: &str) -> Option<[u8; 32]> {
    let bytes = text.as_bytes();
    (bytes.len() <= 32).then(|| {
        let mut out = [0u8; 32];
        out[..bytes.len()].copy_from_slice(bytes);
        out
    })
}

#[cfg(test)]
#[path = "eip712_tests.rs"]
mod tests;
