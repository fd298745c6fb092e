//! The public key directory entry: an account's ledger address, role and
//! X25519 encryption key, signed by the account's own secp256k1 key as
//! EIP-712 typed data.
//!
//! The server stores and serves entries but cannot forge one: every client
//! that fetches someone's keys calls [`DirectoryEntry::verify`], which
//! recovers the signer and checks it is the entry's address.
//!
//! Typed data:
//! ```text
//! EIP712Domain(string name,string version)
//!   name = "Chartkey Directory", version = "1"
//! DirectoryEntry(address account,uint8 role,bytes32 encryptionKey)
//! ```
//! (The ledger's Directory contract will add chainId and verifyingContract to
//! the domain.)

use ethers_core::abi::{Token, encode};
use ethers_core::k256::ecdsa::SigningKey;
use ethers_core::types::{Address, H256, RecoveryMessage, Signature, U256};
use ethers_core::utils::keccak256;
use serde::{Deserialize, Serialize};

use crate::keys::{AccountKeys, key_fingerprint};
use crate::role::Role;
use crate::value;

pub const DOMAIN_NAME: &str = "Chartkey Directory";
pub const DOMAIN_VERSION: &str = "1";
const DOMAIN_TYPE: &str = "EIP712Domain(string name,string version)";
const ENTRY_TYPE: &str = "DirectoryEntry(address account,uint8 role,bytes32 encryptionKey)";

/// A signed directory entry as it travels and is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryEntry {
    pub address: value::Address,
    pub role: Role,
    /// The account's X25519 public key.
    pub encryption_key: value::PublicKey,
    /// r‖s‖v over the EIP-712 digest.
    pub signature: value::Signature,
}

/// A directory entry whose signature has been checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedEntry {
    pub address: Address,
    pub role: Role,
    pub encryption_key: [u8; 32],
}

impl VerifiedEntry {
    pub fn fingerprint(&self) -> String {
        key_fingerprint(&self.encryption_key)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectoryError {
    #[error("The directory entry is malformed ({0}).")]
    Malformed(&'static str),
    #[error("The directory entry's signature does not match its address: these keys cannot be trusted.")]
    BadSignature,
    #[error("The server answered with the keys of a different account: these keys cannot be trusted.")]
    WrongAccount,
}

/// EIP-712 digest of an entry: keccak256(0x1901 ‖ domainSeparator ‖ hashStruct).
pub fn entry_digest(address: Address, role: Role, encryption_key: &[u8; 32]) -> [u8; 32] {
    let domain_separator = keccak256(encode(&[
        Token::FixedBytes(keccak256(DOMAIN_TYPE).to_vec()),
        Token::FixedBytes(keccak256(DOMAIN_NAME).to_vec()),
        Token::FixedBytes(keccak256(DOMAIN_VERSION).to_vec()),
    ]));
    let struct_hash = keccak256(encode(&[
        Token::FixedBytes(keccak256(ENTRY_TYPE).to_vec()),
        Token::Address(address),
        Token::Uint(U256::from(role.code())),
        Token::FixedBytes(encryption_key.to_vec()),
    ]));
    let mut message = Vec::with_capacity(66);
    message.extend_from_slice(&[0x19, 0x01]);
    message.extend_from_slice(&domain_separator);
    message.extend_from_slice(&struct_hash);
    keccak256(message)
}

/// secp256k1 group order n, halved: canonical (EIP-2) signatures have s ≤ n/2.
const HALF_ORDER: [u8; 32] = [
    0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x5d, 0x57, 0x6e,
    0x73, 0x57, 0xa4, 0x50, 0x1d, 0xdf, 0xe9, 0x2f, 0x46, 0x68, 0x1b, 0x20, 0xa0,
];

/// Parses a 65-byte r‖s‖v signature, accepting only the one canonical
/// encoding that OpenZeppelin's ECDSA (and so the contracts) accept:
/// v ∈ {27, 28} and low s. Anything else is `None`.
pub fn parse_strict_signature(bytes: &[u8]) -> Option<Signature> {
    if bytes.len() != 65 || !matches!(bytes[64], 27 | 28) || bytes[32..64] > HALF_ORDER[..] {
        return None;
    }
    Signature::try_from(bytes).ok()
}

/// The one signature check every consumer uses (directory entries, record
/// anchors, account proofs): the address that signed `digest`, for a
/// signature in the canonical encoding only ([`parse_strict_signature`]).
pub fn recover_strict(digest: &[u8; 32], signature: &[u8]) -> Option<Address> {
    parse_strict_signature(signature)?.recover(RecoveryMessage::Hash(H256::from(*digest))).ok()
}

/// Signs a 32-byte digest with a secp256k1 key (RFC 6979, low-s), returning
/// an Ethereum signature with v in {27, 28}.
pub fn sign_digest(key: &SigningKey, digest: &[u8; 32]) -> Signature {
    let (sig, recovery_id) = key.sign_prehash_recoverable(digest).expect("signing a 32-byte prehash cannot fail");
    let bytes = sig.to_bytes();
    Signature {
        r: U256::from_big_endian(&bytes[..32]),
        s: U256::from_big_endian(&bytes[32..]),
        v: 27 + u64::from(recovery_id.to_byte()),
    }
}

impl DirectoryEntry {
    /// The entry for `keys` with `role`, signed.
    pub fn sign(keys: &AccountKeys, role: Role) -> Self {
        let encryption_key = keys.encryption_public();
        let digest = entry_digest(keys.address(), role, &encryption_key);
        let signature = sign_digest(keys.signing_key(), &digest);
        Self {
            address: keys.address().into(),
            role,
            encryption_key: encryption_key.into(),
            signature: signature.into(),
        }
    }

    /// Parses and checks the signature, for an entry about `expected`: a
    /// validly signed entry for some other address is refused. Every
    /// consumer of someone else's keys must go through this.
    pub fn verify_for(&self, expected: &Address) -> Result<VerifiedEntry, DirectoryError> {
        let verified = self.verify()?;
        if &verified.address != expected {
            return Err(DirectoryError::WrongAccount);
        }
        Ok(verified)
    }

    /// Parses and checks the signature (see [`Self::verify_for`]).
    pub fn verify(&self) -> Result<VerifiedEntry, DirectoryError> {
        let address: Address = self.address.into();
        let encryption_key = self.encryption_key.0;
        if parse_strict_signature(&self.signature.0).is_none() {
            return Err(DirectoryError::Malformed("signature"));
        }
        let digest = entry_digest(address, self.role, &encryption_key);
        let signer = recover_strict(&digest, &self.signature.0).ok_or(DirectoryError::BadSignature)?;
        if signer != address {
            return Err(DirectoryError::BadSignature);
        }
        Ok(VerifiedEntry { address, role: self.role, encryption_key })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AccountSecret;
    use ethers_core::types::transaction::eip712::{Eip712, TypedData};

    fn keys(byte: u8) -> AccountKeys {
        AccountSecret::from_bytes([byte; 32]).derive()
    }

    #[test]
    fn digest_matches_ethers_typed_data() {
        // Independent EIP-712 implementation: ethers-core's JSON TypedData,
        // the same encoding MetaMask's eth_signTypedData_v4 uses.
        let k = keys(5);
        let key_hex = crate::value::hex_text(&k.encryption_public());
        let json = serde_json::json!({
            "types": {
                "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "version", "type": "string"}],
                "DirectoryEntry": [
                    {"name": "account", "type": "address"},
                    {"name": "role", "type": "uint8"},
                    {"name": "encryptionKey", "type": "bytes32"}
                ]
            },
            "primaryType": "DirectoryEntry",
            "domain": {"name": "Chartkey Directory", "version": "1"},
            "message": {"account": format!("{:?}", k.address()), "role": 2, "encryptionKey": key_hex}
        });
        let typed: TypedData = serde_json::from_value(json).unwrap();
        assert_eq!(typed.encode_eip712().unwrap(), entry_digest(k.address(), Role::Clinician, &k.encryption_public()));
    }

    #[test]
    fn known_answer_entry() {
        let entry = DirectoryEntry::sign(&keys(1), Role::Patient);
        assert_eq!(serde_json::to_string(&entry).unwrap(), KAT_ENTRY_JSON);
    }

    const KAT_ENTRY_JSON: &str = r#"{"address":"0x958a00c874220d6801d1eeac084bed1f11189756","role":"patient","encryption_key":"0x7b62f7bca05f9f9f4f8ab45d0852550c01ddba5016d6b3187ca6b8fa49e0736c","signature":"0x1db44a292dfed3770494502873608530a32d31216a625373c08e38a133b907a32098734d26d7033b9ef9cfeaff1d754e3ead74cc371deda704a0a8b7c1b383441c"}"#;

    #[test]
    fn sign_then_verify() {
        let k = keys(7);
        let entry = DirectoryEntry::sign(&k, Role::Clinician);
        let verified = entry.verify().unwrap();
        assert_eq!(verified.address, k.address());
        assert_eq!(verified.encryption_key, k.encryption_public());
        assert_eq!(verified.role, Role::Clinician);
        assert_eq!(verified.fingerprint(), k.encryption_fingerprint());
    }

    #[test]
    fn substituted_fields_are_detected() {
        let mut entry = DirectoryEntry::sign(&keys(7), Role::Patient);
        // A server swapping in its own encryption key:
        entry.encryption_key = keys(8).encryption_public().into();
        assert_eq!(entry.verify().unwrap_err(), DirectoryError::BadSignature);

        let mut entry = DirectoryEntry::sign(&keys(7), Role::Patient);
        entry.role = Role::CredentialingAuthority;
        assert_eq!(entry.verify().unwrap_err(), DirectoryError::BadSignature);

        // An entry signed by someone else for this address:
        let mut entry = DirectoryEntry::sign(&keys(8), Role::Patient);
        entry.address = DirectoryEntry::sign(&keys(7), Role::Patient).address;
        assert_eq!(entry.verify().unwrap_err(), DirectoryError::BadSignature);
    }

    #[test]
    fn an_entry_for_another_address_is_refused() {
        let entry = DirectoryEntry::sign(&keys(7), Role::Clinician);
        assert!(entry.verify_for(&keys(7).address()).is_ok());
        assert_eq!(entry.verify_for(&keys(8).address()).unwrap_err(), DirectoryError::WrongAccount);
    }

    #[test]
    fn only_the_canonical_signature_encoding_is_accepted() {
        let good = DirectoryEntry::sign(&keys(7), Role::Patient);
        let bytes = good.signature.0.to_vec();
        assert!(parse_strict_signature(&bytes).is_some());
        // v as 0/1 instead of 27/28.
        let mut v01 = bytes.clone();
        v01[64] -= 27;
        // The same signature with s replaced by n - s (high s), v flipped.
        let n = U256::from_big_endian(
            &hex::decode("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141").unwrap(),
        );
        let high_s = n - U256::from_big_endian(&bytes[32..64]);
        let mut malleated = bytes.clone();
        high_s.to_big_endian(&mut malleated[32..64]);
        malleated[64] = if bytes[64] == 27 { 28 } else { 27 };
        // ethers itself would recover the same signer from the malleated form:
        let lax = Signature::try_from(malleated.as_slice()).unwrap();
        let digest = entry_digest(keys(7).address(), Role::Patient, &keys(7).encryption_public());
        assert_eq!(lax.recover(RecoveryMessage::Hash(H256::from(digest))).unwrap(), keys(7).address());
        for bad in [v01, malleated] {
            assert!(parse_strict_signature(&bad).is_none());
            let mut entry = good.clone();
            entry.signature = value::Signature(bad.try_into().unwrap());
            assert_eq!(entry.verify().unwrap_err(), DirectoryError::Malformed("signature"));
        }
    }

    #[test]
    fn malformed_entries_are_refused() {
        let good = serde_json::to_value(DirectoryEntry::sign(&keys(7), Role::Patient)).unwrap();
        let text = |v: &serde_json::Value| v.as_str().unwrap().to_owned();
        let cases: [(&str, serde_json::Value); 7] = [
            ("address", "0x1234".into()),
            ("address", text(&good["address"])[2..].into()),
            ("encryption_key", "0xzz".into()),
            ("encryption_key", "00".repeat(32).into()),
            ("signature", "0x00".into()),
            ("signature", text(&good["signature"])[..10].into()),
            ("role", "doctor".into()),
        ];
        for (field, bad) in cases {
            let mut e = good.clone();
            e[field] = bad;
            assert!(serde_json::from_value::<DirectoryEntry>(e).is_err(), "{field}");
        }
        let mut e: DirectoryEntry = serde_json::from_value(good).unwrap();
        e.signature = value::Signature([0; 65]);
        assert!(e.verify().is_err());
    }
}
