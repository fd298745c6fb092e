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

mod field;
pub use field::Field;
use field::typed_message;

mod messages;
pub use messages::*;

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

/// `$body` with `$m` bound to the message a [`LedgerMessage`] carries,
/// whatever its kind (the body is written once, generic over the message
/// type): `with_ledger_message!(&message, m => domain.digest(m))`.
#[macro_export]
macro_rules! with_ledger_message {
    ($message:expr, $m:ident => $body:expr) => {
        match $message {
            $crate::eip712::LedgerMessage::Register($m) => $body,
            $crate::eip712::LedgerMessage::IssueCredential($m) => $body,
            $crate::eip712::LedgerMessage::RevokeCredential($m) => $body,
            $crate::eip712::LedgerMessage::Anchor($m) => $body,
            $crate::eip712::LedgerMessage::AnchorBatch($m) => $body,
            $crate::eip712::LedgerMessage::Grant($m) => $body,
            $crate::eip712::LedgerMessage::Revoke($m) => $body,
            $crate::eip712::LedgerMessage::Access($m) => $body,
            $crate::eip712::LedgerMessage::Link($m) => $body,
            $crate::eip712::LedgerMessage::LinkUpdate($m) => $body,
            $crate::eip712::LedgerMessage::LinkRevoke($m) => $body,
            $crate::eip712::LedgerMessage::EmergencyContact($m) => $body,
            $crate::eip712::LedgerMessage::EmergencyContactRemove($m) => $body,
            $crate::eip712::LedgerMessage::EmergencyRefusal($m) => $body,
            $crate::eip712::LedgerMessage::EmergencyRequest($m) => $body,
            $crate::eip712::LedgerMessage::EmergencyAccess($m) => $body,
        }
    };
}

/// One of every message the contracts take, with plain values: tests of
/// each layer go through every kind with it. Neighbouring fields hold
/// different values, so a struct whose fields are in another order than
/// its type string's encodes differently.
#[cfg(any(test, feature = "examples"))]
pub fn examples() -> Vec<LedgerMessage> {
    let (a, b, n) = (Address::repeat_byte(1), Address::repeat_byte(2), U256::from(7));
    let (id, hash) = ([3; 32], [4; 32]);
    vec![
        LedgerMessage::Register(Register { account: a, role: 1, encryption_key: hash, nonce: n }),
        LedgerMessage::IssueCredential(IssueCredential {
            authority: a,
            clinician: b,
            license_id_hash: keccak256("MD-12345"),
            specialty: bytes32_text("psychiatry").expect("short"),
            expires_at: 1_900_000_000,
            nonce: n,
        }),
        LedgerMessage::RevokeCredential(RevokeCredential { authority: a, clinician: b, nonce: n }),
        LedgerMessage::Anchor(Anchor {
            author: a,
            patient: b,
            record_id: id,
            ciphertext_hash: hash,
            category: 3,
            amends: [5; 32],
        }),
        LedgerMessage::AnchorBatch(AnchorBatch { author: a, patient: b, root: hash, count: 1000 }),
        LedgerMessage::Grant(Grant {
            patient: a,
            grantee: b,
            scope: SCOPE_RECORDS,
            categories: 0b10,
            records: vec![[8; 32], [9; 32]],
            write: true,
            expires_at: 1_900_000_000,
            nonce: n,
        }),
        LedgerMessage::Revoke(Revoke { patient: a, grantee: b, nonce: n }),
        LedgerMessage::Access(Access { grantee: b, patient: a, record_id: id, nonce: n }),
        LedgerMessage::Link(Link {
            patient: a,
            link_id: id,
            content_hash: hash,
            expires_at: 99,
            flags: FLAG_LONG_TERM,
            host: b,
        }),
        LedgerMessage::LinkUpdate(LinkUpdate {
            patient: a,
            link_id: id,
            content_hash: [6; 32],
            expires_at: 99,
            nonce: n,
        }),
        LedgerMessage::LinkRevoke(LinkRevoke { patient: a, link_id: id, nonce: n }),
        LedgerMessage::EmergencyContact(EmergencyContact {
            patient: a,
            contact: b,
            wait_seconds: MAX_WAIT_SECONDS,
            nonce: n,
        }),
        LedgerMessage::EmergencyContactRemove(EmergencyContactRemove { patient: a, contact: b, nonce: n }),
        LedgerMessage::EmergencyRefusal(EmergencyRefusal { patient: a, contact: b, nonce: n }),
        LedgerMessage::EmergencyRequest(EmergencyRequest { contact: b, patient: a, nonce: n }),
        LedgerMessage::EmergencyAccess(EmergencyAccess { contact: b, patient: a, nonce: n }),
    ]
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
