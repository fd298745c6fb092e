//! The account secret and its derived keys.
//!
//! One random 32-byte secret per account. Two keys come from it with
//! HKDF-SHA256 under distinct labels, so neither reveals the other:
//! - a secp256k1 key: the account's ledger address; signs EIP-712 messages;
//! - an X25519 key: receives record keys wrapped with HPKE (RFC 9180).

use ethers_core::k256::ecdsa::SigningKey;
use ethers_core::types::Address;
use ethers_core::utils::secret_key_to_address;
use hkdf::Hkdf;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// HKDF salt shared by every derivation from the account secret.
const HKDF_SALT: &[u8] = b"chartkey/account/v1";
/// HKDF info labels: one per derived key, never reused.
const LABEL_SECP256K1: &[u8] = b"chartkey/secp256k1-signing/v1";
const LABEL_X25519: &[u8] = b"chartkey/x25519-encryption/v1";

/// A 32-byte secret type: drawn from a CSPRNG straight into place, wiped
/// on drop, its Debug `Name(***)`.
macro_rules! secret_bytes {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, zeroize::Zeroize, zeroize::ZeroizeOnDrop)]
        pub struct $name([u8; 32]);

        impl $name {
            pub fn generate(rng: &mut impl rand_core::CryptoRngCore) -> Self {
                let mut secret = Self([0; 32]);
                rng.fill_bytes(&mut secret.0);
                secret
            }

            pub fn from_bytes(bytes: [u8; 32]) -> Self {
                Self(bytes)
            }

            pub fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($name), "(***)"))
            }
        }
    };
}
pub(crate) use secret_bytes;

secret_bytes!(
    /// The 32-byte root secret of an account. Never serialised, never sent
    /// to the server.
    AccountSecret
);

impl AccountSecret {
    pub const LEN: usize = 32;

    /// Derives the account's keys. Deterministic: the same secret always
    /// gives the same address and encryption key.
    pub fn derive(&self) -> AccountKeys {
        let hk = Hkdf::<Sha256>::new(Some(HKDF_SALT), &self.0);

        // A secp256k1 scalar must be in [1, n). HKDF output falls outside with
        // probability ~2^-128; should it happen, the next counter is tried, so
        // derivation stays deterministic and total.
        let signing = (0u8..=u8::MAX)
            .find_map(|counter| {
                let mut okm = Zeroizing::new([0u8; 32]);
                let info = [LABEL_SECP256K1, &[counter]].concat();
                hk.expand(&info, okm.as_mut()).expect("32 bytes is a valid HKDF length");
                SigningKey::from_bytes(okm.as_ref().into()).ok()
            })
            .expect("a valid secp256k1 scalar within 256 tries");

        let mut x = Zeroizing::new([0u8; 32]);
        hk.expand(LABEL_X25519, x.as_mut()).expect("32 bytes is a valid HKDF length");
        let encryption = x25519_dalek::StaticSecret::from(*x);

        let address = secret_key_to_address(&signing);
        let encryption_public = x25519_dalek::PublicKey::from(&encryption).to_bytes();
        AccountKeys { signing, encryption, address, encryption_public }
    }
}

/// The keys derived from an [`AccountSecret`]. Private halves never leave
/// the browser; Debug shows only the public parts.
pub struct AccountKeys {
    signing: SigningKey,
    encryption: x25519_dalek::StaticSecret,
    address: Address,
    encryption_public: [u8; 32],
}

impl AccountKeys {
    /// The ledger address (Ethereum style: last 20 bytes of keccak of the
    /// public key).
    pub fn address(&self) -> Address {
        self.address
    }

    /// The X25519 public key that others wrap record keys to.
    pub fn encryption_public(&self) -> [u8; 32] {
        self.encryption_public
    }

    pub fn signing_key(&self) -> &SigningKey {
        &self.signing
    }

    pub fn encryption_secret(&self) -> &x25519_dalek::StaticSecret {
        &self.encryption
    }

    /// A short, human-comparable fingerprint of the encryption key.
    pub fn encryption_fingerprint(&self) -> String {
        key_fingerprint(&self.encryption_public)
    }
}

impl std::fmt::Debug for AccountKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountKeys")
            .field("address", &self.address)
            .field("encryption_public", &hex::encode(self.encryption_public))
            .field("private", &"***")
            .finish()
    }
}

/// Fingerprint of an X25519 public key: the first 16 bytes of its SHA-256,
/// as eight groups of four hex digits, so two people can read it aloud.
pub fn key_fingerprint(public_key: &[u8; 32]) -> String {
    let digest = Sha256::new_with_prefix(b"chartkey/key-fingerprint/v1").chain_update(public_key).finalize();
    digest[..16].chunks(2).map(hex::encode).collect::<Vec<_>>().join(" ")
}

/// `0x1234…abcd`: an address short enough for a screen, long enough to tell
/// two apart at a glance.
pub fn short_address(address: &Address) -> String {
    let full = ethers_core::utils::to_checksum(address, None);
    format!("{}…{}", &full[..6], &full[full.len() - 4..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(byte: u8) -> AccountSecret {
        AccountSecret::from_bytes([byte; 32])
    }

    // Known answers: computed once with this implementation and checked
    // independently (see `derivation_matches_independent_hkdf`). A change
    // here changes every account's address, so it must never happen by
    // accident.
    #[test]
    fn known_answer_derivation() {
        let keys = secret(0x01).derive();
        assert_eq!(ethers_core::utils::to_checksum(&keys.address(), None), KAT_ADDRESS_01);
        assert_eq!(hex::encode(keys.encryption_public()), KAT_X25519_PUB_01);
        assert_eq!(keys.encryption_fingerprint(), KAT_FINGERPRINT_01);
    }

    const KAT_ADDRESS_01: &str = "0x958A00c874220d6801D1EeaC084BED1F11189756";
    const KAT_X25519_PUB_01: &str = "7b62f7bca05f9f9f4f8ab45d0852550c01ddba5016d6b3187ca6b8fa49e0736c";
    const KAT_FINGERPRINT_01: &str = "d759 a01f de8f 400f 66b6 986f 7c3e c8da";

    #[test]
    fn derivation_matches_independent_hkdf() {
        // Recompute the secp256k1 scalar with plain HKDF, and the address with
        // k256 + keccak directly, without going through `derive`.
        let s = secret(0x42);
        let hk = Hkdf::<Sha256>::new(Some(b"chartkey/account/v1"), s.as_bytes());
        let mut okm = [0u8; 32];
        hk.expand(b"chartkey/secp256k1-signing/v1\x00", &mut okm).unwrap();
        let sk = SigningKey::from_bytes((&okm).into()).unwrap();
        let point = sk.verifying_key().to_encoded_point(false);
        let hash = ethers_core::utils::keccak256(&point.as_bytes()[1..]);
        assert_eq!(s.derive().address().as_bytes(), &hash[12..]);

        let mut x = [0u8; 32];
        hk.expand(b"chartkey/x25519-encryption/v1", &mut x).unwrap();
        let public = x25519_dalek::x25519(x, x25519_dalek::X25519_BASEPOINT_BYTES);
        assert_eq!(s.derive().encryption_public(), public);
    }

    #[test]
    fn distinct_secrets_give_distinct_keys_and_labels_separate_keys() {
        let a = secret(1).derive();
        let b = secret(2).derive();
        assert_ne!(a.address(), b.address());
        assert_ne!(a.encryption_public(), b.encryption_public());
        // The two derived private keys differ from each other.
        assert_ne!(a.signing_key().to_bytes().as_slice(), a.encryption_secret().as_bytes());
    }

    #[test]
    fn debug_never_prints_secrets() {
        let s = secret(0xab);
        assert_eq!(format!("{s:?}"), "AccountSecret(***)");
        let keys = s.derive();
        let shown = format!("{keys:?}");
        assert!(!shown.contains(&hex::encode(keys.signing_key().to_bytes())));
        assert!(!shown.contains(&hex::encode(keys.encryption_secret().as_bytes())));
    }

    #[test]
    fn short_address_shape() {
        let keys = secret(3).derive();
        let short = short_address(&keys.address());
        assert!(short.starts_with("0x"));
        assert_eq!(short.chars().count(), 11);
    }
}
