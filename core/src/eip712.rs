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
mod tests {
    use super::*;
    use crate::AccountSecret;
    use ethers_core::types::transaction::eip712::{Eip712, TypedData};

    fn domain() -> Domain {
        Domain::directory(31337, "0x5FbDB2315678afecb367f032d93F642f64180aa3".parse().unwrap())
    }

    #[test]
    fn messages_travel_as_tagged_json_with_hex_bytes32() {
        let message = LedgerMessage::Grant(Grant {
            patient: Address::repeat_byte(1),
            grantee: Address::repeat_byte(2),
            scope: 0,
            categories: 0,
            records: vec![[0xab; 32]],
            write: false,
            expires_at: 9,
            nonce: U256::from(3),
        });
        let json = serde_json::to_value(&message).unwrap();
        assert_eq!(json["kind"], "grant");
        assert_eq!(json["message"]["records"][0], format!("0x{}", "ab".repeat(32)));
        assert_eq!(serde_json::from_value::<LedgerMessage>(json.clone()).unwrap(), message);
        let mut bad = json.clone();
        bad["message"]["records"][0] = "0xabcd".into();
        assert!(serde_json::from_value::<LedgerMessage>(bad).is_err(), "short bytes32");
        let mut bad = json.clone();
        bad["message"]["records"][0] = "ab".repeat(32).into();
        assert!(serde_json::from_value::<LedgerMessage>(bad).is_err(), "no 0x");
        let mut bad = json.clone();
        bad["message"]["extra"] = 1.into();
        assert!(serde_json::from_value::<LedgerMessage>(bad).is_err(), "unknown field");
        let mut bad = json;
        bad["kind"] = "mint".into();
        assert!(serde_json::from_value::<LedgerMessage>(bad).is_err(), "unknown kind");
    }

    #[test]
    fn register_digest_matches_ethers_typed_data() {
        let keys = AccountSecret::from_bytes([3; 32]).derive();
        let message = Register {
            account: keys.address(),
            role: 2,
            encryption_key: keys.encryption_public(),
            nonce: U256::from(7),
        };
        let json = serde_json::json!({
            "types": {
                "EIP712Domain": [
                    {"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                    {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}
                ],
                "Register": [
                    {"name": "account", "type": "address"}, {"name": "role", "type": "uint8"},
                    {"name": "encryptionKey", "type": "bytes32"}, {"name": "nonce", "type": "uint256"}
                ]
            },
            "primaryType": "Register",
            "domain": {"name": "Chartkey Directory", "version": "1", "chainId": 31337,
                       "verifyingContract": "0x5FbDB2315678afecb367f032d93F642f64180aa3"},
            "message": {"account": format!("{:?}", keys.address()), "role": 2,
                        "encryptionKey": crate::value::hex_text(&keys.encryption_public()), "nonce": 7}
        });
        let typed: TypedData = serde_json::from_value(json).unwrap();
        assert_eq!(typed.encode_eip712().unwrap(), domain().digest(&message));
    }

    #[test]
    fn issue_credential_digest_matches_ethers_typed_data() {
        let message = IssueCredential {
            authority: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8".parse().unwrap(),
            clinician: "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC".parse().unwrap(),
            license_id_hash: keccak256("MD-12345"),
            specialty: bytes32_text("psychiatry").unwrap(),
            expires_at: 1_900_000_000,
            nonce: U256::zero(),
        };
        let json = serde_json::json!({
            "types": {
                "EIP712Domain": [
                    {"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                    {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}
                ],
                "IssueCredential": [
                    {"name": "authority", "type": "address"}, {"name": "clinician", "type": "address"},
                    {"name": "licenseIdHash", "type": "bytes32"}, {"name": "specialty", "type": "bytes32"},
                    {"name": "expiresAt", "type": "uint64"}, {"name": "nonce", "type": "uint256"}
                ]
            },
            "primaryType": "IssueCredential",
            "domain": {"name": "Chartkey Directory", "version": "1", "chainId": 31337,
                       "verifyingContract": "0x5FbDB2315678afecb367f032d93F642f64180aa3"},
            "message": {"authority": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
                        "clinician": "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
                        "licenseIdHash": crate::value::hex_text(&message.license_id_hash),
                        "specialty": crate::value::hex_text(&message.specialty),
                        "expiresAt": 1_900_000_000u64, "nonce": 0}
        });
        let typed: TypedData = serde_json::from_value(json).unwrap();
        assert_eq!(typed.encode_eip712().unwrap(), domain().digest(&message));
    }

    #[test]
    fn grant_digest_with_a_record_list_matches_ethers_typed_data() {
        let message = Grant {
            patient: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8".parse().unwrap(),
            grantee: "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC".parse().unwrap(),
            scope: SCOPE_RECORDS,
            categories: 0,
            records: vec![[1; 32], [2; 32], [3; 32]],
            write: false,
            expires_at: 1_900_000_000,
            nonce: U256::from(4),
        };
        let domain = Domain::records(31337, "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512".parse().unwrap());
        let json = serde_json::json!({
            "types": {
                "EIP712Domain": [
                    {"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                    {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}
                ],
                "Grant": [
                    {"name": "patient", "type": "address"}, {"name": "grantee", "type": "address"},
                    {"name": "scope", "type": "uint8"}, {"name": "categories", "type": "uint32"},
                    {"name": "records", "type": "bytes32[]"}, {"name": "write", "type": "bool"},
                    {"name": "expiresAt", "type": "uint64"}, {"name": "nonce", "type": "uint256"}
                ]
            },
            "primaryType": "Grant",
            "domain": {"name": "Chartkey Records", "version": "1", "chainId": 31337,
                       "verifyingContract": "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"},
            "message": {"patient": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
                        "grantee": "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
                        "scope": 0, "categories": 0,
                        "records": [format!("0x{}", "01".repeat(32)), format!("0x{}", "02".repeat(32)), format!("0x{}", "03".repeat(32))],
                        "write": false, "expiresAt": 1_900_000_000u64, "nonce": 4}
        });
        let typed: TypedData = serde_json::from_value(json).unwrap();
        assert_eq!(typed.encode_eip712().unwrap(), domain.digest(&message));
    }

    /// The digest ethers' own EIP-712 implementation computes for `message`.
    fn ethers_digest(domain: &Domain, primary: &str, fields: &[(&str, &str)], message: serde_json::Value) -> [u8; 32] {
        let fields: Vec<_> = fields.iter().map(|(n, t)| serde_json::json!({"name": n, "type": t})).collect();
        let json = serde_json::json!({
            "types": {
                "EIP712Domain": [
                    {"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                    {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}
                ],
                primary: fields
            },
            "primaryType": primary,
            "domain": {"name": domain.name, "version": domain.version, "chainId": domain.chain_id,
                       "verifyingContract": format!("{:?}", domain.verifying_contract)},
            "message": message
        });
        serde_json::from_value::<TypedData>(json).unwrap().encode_eip712().unwrap()
    }

    fn hex32(b: &[u8; 32]) -> String {
        crate::value::hex_text(b)
    }

    #[test]
    fn record_messages_match_ethers_typed_data() {
        let domain = Domain::records(31337, Address::repeat_byte(0x42));
        let (a, b) = (Address::repeat_byte(1), Address::repeat_byte(2));
        let anchor = Anchor {
            author: a,
            patient: b,
            record_id: [3; 32],
            ciphertext_hash: [4; 32],
            category: 7,
            amends: [5; 32],
        };
        let expected = ethers_digest(
            &domain,
            "Anchor",
            &[
                ("author", "address"),
                ("patient", "address"),
                ("recordId", "bytes32"),
                ("ciphertextHash", "bytes32"),
                ("category", "uint8"),
                ("amends", "bytes32"),
            ],
            serde_json::json!({"author": format!("{a:?}"), "patient": format!("{b:?}"), "recordId": hex32(&[3; 32]),
                "ciphertextHash": hex32(&[4; 32]), "category": 7, "amends": hex32(&[5; 32])}),
        );
        assert_eq!(domain.digest(&anchor), expected);

        let batch = AnchorBatch { author: a, patient: b, root: [8; 32], count: 1000 };
        let expected = ethers_digest(
            &domain,
            "AnchorBatch",
            &[("author", "address"), ("patient", "address"), ("root", "bytes32"), ("count", "uint32")],
            serde_json::json!({"author": format!("{a:?}"), "patient": format!("{b:?}"), "root": hex32(&[8; 32]),
                "count": 1000}),
        );
        assert_eq!(domain.digest(&batch), expected);

        let revoke = Revoke { patient: b, grantee: a, nonce: U256::from(10) };
        let expected = ethers_digest(
            &domain,
            "Revoke",
            &[("patient", "address"), ("grantee", "address"), ("nonce", "uint256")],
            serde_json::json!({"patient": format!("{b:?}"), "grantee": format!("{a:?}"), "nonce": 10}),
        );
        assert_eq!(domain.digest(&revoke), expected);

        let access = Access { grantee: a, patient: b, record_id: [11; 32], nonce: U256::from(12) };
        let expected = ethers_digest(
            &domain,
            "Access",
            &[("grantee", "address"), ("patient", "address"), ("recordId", "bytes32"), ("nonce", "uint256")],
            serde_json::json!({"grantee": format!("{a:?}"), "patient": format!("{b:?}"), "recordId": hex32(&[11; 32]),
                "nonce": 12}),
        );
        assert_eq!(domain.digest(&access), expected);

        let directory = Domain::directory(31337, Address::repeat_byte(0x43));
        let revoke = RevokeCredential { authority: a, clinician: b, nonce: U256::from(13) };
        let expected = ethers_digest(
            &directory,
            "RevokeCredential",
            &[("authority", "address"), ("clinician", "address"), ("nonce", "uint256")],
            serde_json::json!({"authority": format!("{a:?}"), "clinician": format!("{b:?}"), "nonce": 13}),
        );
        assert_eq!(directory.digest(&revoke), expected);
    }

    #[test]
    fn signatures_recover_to_the_signer_and_depend_on_the_domain() {
        let keys = AccountSecret::from_bytes([9; 32]).derive();
        let message =
            RevokeCredential { authority: keys.address(), clinician: Address::repeat_byte(7), nonce: U256::one() };
        let sig = Signature::try_from(domain().sign(&keys, &message).as_slice()).unwrap();
        let digest = ethers_core::types::H256(domain().digest(&message));
        assert_eq!(sig.recover(digest).unwrap(), keys.address());
        let other_chain = Domain { chain_id: 1, ..domain() };
        assert_ne!(other_chain.digest(&message), domain().digest(&message));
        let other_contract = Domain { verifying_contract: Address::repeat_byte(1), ..domain() };
        assert_ne!(other_contract.digest(&message), domain().digest(&message));
    }

    #[test]
    fn bytes32_text_pads_and_refuses_long_text() {
        assert_eq!(&bytes32_text("ab").unwrap()[..3], b"ab\0");
        assert!(bytes32_text(&"x".repeat(32)).is_some());
        assert!(bytes32_text(&"x".repeat(33)).is_none());
    }
}
