//! The account secret, sealed for storage on the server.
//!
//! A [`SealedKeystore`] is an opaque blob to the server: XChaCha20-Poly1305
//! over the 32-byte account secret, under a key derived from either
//! - the 32-byte output of a passkey's WebAuthn PRF extension (HKDF-SHA256), or
//! - a passphrase (Argon2id, parameters carried in the blob).
//!
//! The header (version, KDF and its parameters) is authenticated as
//! associated data, so a blob cannot be altered to weaken its parameters
//! without unsealing failing.

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::keys::AccountSecret;

/// The PRF salt the browser asks every passkey to evaluate. Fixed, so a
/// discoverable login (where the browser does not know the credential in
/// advance) gets the same output every time; the output still differs per
/// credential.
pub const PRF_SALT: [u8; 32] = *b"chartkey/webauthn-prf/keystore/1";

const VERSION: u8 = 1;
const HKDF_SALT: &[u8] = b"chartkey/keystore/v1";
const HKDF_INFO_PRF: &[u8] = b"chartkey/keystore/prf-wrapping-key/v1";
const AAD_PREFIX: &[u8] = b"chartkey-keystore";

/// Shortest passphrase accepted when a passkey has no PRF.
pub const MIN_PASSPHRASE_CHARS: usize = 12;

/// Argon2id cost. Default per RFC 9106 §4's second recommended option scaled
/// for a single-threaded browser: 64 MiB, 3 passes, 1 lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Argon2Params {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Argon2Params {
    pub const DEFAULT: Self = Self { memory_kib: 64 * 1024, iterations: 3, parallelism: 1 };
    /// Weakest parameters an unseal will accept: a blob claiming less is
    /// refused before any work, so a tampered blob cannot make a
    /// passphrase cheap to guess from what the browser sends next.
    pub const MINIMUM: Self = Self { memory_kib: 19 * 1024, iterations: 2, parallelism: 1 };

    fn check(&self) -> Result<(), KeystoreError> {
        let strong_enough = self.memory_kib >= Self::MINIMUM.memory_kib
            && self.iterations >= Self::MINIMUM.iterations
            && self.parallelism >= 1;
        // An upper bound too, so a hostile blob cannot make the browser
        // allocate gigabytes or spin for minutes.
        let sane = self.memory_kib <= 256 * 1024 && self.iterations <= 10 && self.parallelism <= 4;
        if strong_enough && sane { Ok(()) } else { Err(KeystoreError::Malformed("unacceptable Argon2id parameters")) }
    }
}

/// How the wrapping key is derived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kdf", rename_all = "kebab-case")]
pub enum KeystoreKdf {
    /// HKDF-SHA256 over the passkey's PRF output for [`PRF_SALT`].
    PrfHkdfSha256,
    /// Argon2id over a passphrase.
    Argon2id {
        #[serde(flatten)]
        params: Argon2Params,
        #[serde(with = "b64")]
        salt: Vec<u8>,
    },
}

/// What the server stores for one passkey: opaque to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedKeystore {
    pub v: u8,
    #[serde(flatten)]
    pub kdf: KeystoreKdf,
    #[serde(with = "b64")]
    pub nonce: Vec<u8>,
    #[serde(with = "b64")]
    pub ciphertext: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeystoreError {
    #[error(
        "This passkey could not unlock your keys. Use the passkey you signed up with, or restore with your recovery phrase."
    )]
    WrongPasskey,
    #[error("That passphrase is not right. Check it and try again.")]
    WrongPassphrase,
    #[error("This key store needs a passphrase, not a passkey.")]
    NeedsPassphrase,
    #[error("This key store is unlocked by a passkey, not a passphrase.")]
    NeedsPasskey,
    #[error("Choose a passphrase of at least {MIN_PASSPHRASE_CHARS} characters.")]
    PassphraseTooShort,
    #[error("The passkey gave an unexpected answer ({0} bytes instead of 32).")]
    BadPrfOutput(usize),
    #[error("The stored key blob is damaged ({0}).")]
    Malformed(&'static str),
}

impl SealedKeystore {
    /// Seals `secret` under a passkey's PRF output.
    pub fn seal_with_prf(
        secret: &AccountSecret,
        prf_output: &[u8],
        rng: &mut impl CryptoRngCore,
    ) -> Result<Self, KeystoreError> {
        let key = prf_wrapping_key(prf_output)?;
        Ok(seal(secret, KeystoreKdf::PrfHkdfSha256, &key, rng))
    }

    /// Seals `secret` under a passphrase with Argon2id.
    pub fn seal_with_passphrase(
        secret: &AccountSecret,
        passphrase: &str,
        params: Argon2Params,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Self, KeystoreError> {
        if passphrase.chars().count() < MIN_PASSPHRASE_CHARS {
            return Err(KeystoreError::PassphraseTooShort);
        }
        params.check()?;
        let mut salt = vec![0u8; 16];
        rng.fill_bytes(&mut salt);
        let kdf = KeystoreKdf::Argon2id { params, salt };
        let key = passphrase_wrapping_key(passphrase, &kdf)?;
        Ok(seal(secret, kdf, &key, rng))
    }

    pub fn needs_passphrase(&self) -> bool {
        matches!(self.kdf, KeystoreKdf::Argon2id { .. })
    }

    pub fn unseal_with_prf(&self, prf_output: &[u8]) -> Result<AccountSecret, KeystoreError> {
        self.check_shape()?;
        if self.needs_passphrase() {
            return Err(KeystoreError::NeedsPassphrase);
        }
        let key = prf_wrapping_key(prf_output)?;
        self.open(&key).ok_or(KeystoreError::WrongPasskey)
    }

    pub fn unseal_with_passphrase(&self, passphrase: &str) -> Result<AccountSecret, KeystoreError> {
        self.check_shape()?;
        if !self.needs_passphrase() {
            return Err(KeystoreError::NeedsPasskey);
        }
        let key = passphrase_wrapping_key(passphrase, &self.kdf)?;
        self.open(&key).ok_or(KeystoreError::WrongPassphrase)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("keystore serialises")
    }

    pub fn from_json(json: &str) -> Result<Self, KeystoreError> {
        let sealed: Self =
            serde_json::from_str(json).map_err(|_| KeystoreError::Malformed("not a Chartkey key store"))?;
        sealed.check_shape()?;
        Ok(sealed)
    }

    /// Checks the shape (version, lengths, Argon2id parameters) without
    /// opening it: what a server can check of a key store it cannot read.
    pub fn check_shape(&self) -> Result<(), KeystoreError> {
        if self.v != VERSION {
            return Err(KeystoreError::Malformed("unknown version"));
        }
        if self.nonce.len() != 24 {
            return Err(KeystoreError::Malformed("bad nonce length"));
        }
        if self.ciphertext.len() != AccountSecret::LEN + 16 {
            return Err(KeystoreError::Malformed("bad ciphertext length"));
        }
        if let KeystoreKdf::Argon2id { params, salt } = &self.kdf {
            params.check()?;
            if salt.len() < 16 || salt.len() > 64 {
                return Err(KeystoreError::Malformed("bad salt length"));
            }
        }
        Ok(())
    }

    fn open(&self, key: &Zeroizing<[u8; 32]>) -> Option<AccountSecret> {
        let aad = associated_data(self.v, &self.kdf);
        let plain = Zeroizing::new(
            XChaCha20Poly1305::new(key.as_ref().into())
                .decrypt(XNonce::from_slice(&self.nonce), Payload { msg: &self.ciphertext, aad: &aad })
                .ok()?,
        );
        let bytes: [u8; 32] = plain.as_slice().try_into().ok()?;
        Some(AccountSecret::from_bytes(bytes))
    }
}

fn seal(
    secret: &AccountSecret,
    kdf: KeystoreKdf,
    key: &Zeroizing<[u8; 32]>,
    rng: &mut impl CryptoRngCore,
) -> SealedKeystore {
    let mut nonce = [0u8; 24];
    rng.fill_bytes(&mut nonce);
    let aad = associated_data(VERSION, &kdf);
    let ciphertext = XChaCha20Poly1305::new(key.as_ref().into())
        .encrypt(XNonce::from_slice(&nonce), Payload { msg: secret.as_bytes(), aad: &aad })
        .expect("XChaCha20-Poly1305 encryption of 32 bytes cannot fail");
    SealedKeystore { v: VERSION, kdf, nonce: nonce.to_vec(), ciphertext }
}

/// Binds version, KDF choice and parameters to the ciphertext.
fn associated_data(version: u8, kdf: &KeystoreKdf) -> Vec<u8> {
    let mut aad = AAD_PREFIX.to_vec();
    aad.push(version);
    match kdf {
        KeystoreKdf::PrfHkdfSha256 => aad.push(1),
        KeystoreKdf::Argon2id { params, salt } => {
            aad.push(2);
            for n in [params.memory_kib, params.iterations, params.parallelism] {
                aad.extend_from_slice(&n.to_be_bytes());
            }
            aad.extend_from_slice(salt);
        }
    }
    aad
}

fn prf_wrapping_key(prf_output: &[u8]) -> Result<Zeroizing<[u8; 32]>, KeystoreError> {
    if prf_output.len() != 32 {
        return Err(KeystoreError::BadPrfOutput(prf_output.len()));
    }
    let mut key = Zeroizing::new([0u8; 32]);
    Hkdf::<Sha256>::new(Some(HKDF_SALT), prf_output)
        .expand(HKDF_INFO_PRF, key.as_mut())
        .expect("32 bytes is a valid HKDF length");
    Ok(key)
}

fn passphrase_wrapping_key(passphrase: &str, kdf: &KeystoreKdf) -> Result<Zeroizing<[u8; 32]>, KeystoreError> {
    let KeystoreKdf::Argon2id { params, salt } = kdf else {
        return Err(KeystoreError::NeedsPasskey);
    };
    let argon = Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        Params::new(params.memory_kib, params.iterations, params.parallelism, Some(32))
            .map_err(|_| KeystoreError::Malformed("unacceptable Argon2id parameters"))?,
    );
    let mut key = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(passphrase.as_bytes(), salt, key.as_mut())
        .map_err(|_| KeystoreError::Malformed("Argon2id failed"))?;
    Ok(key)
}

mod b64 {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&URL_SAFE_NO_PAD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = <&str>::deserialize(d)?;
        URL_SAFE_NO_PAD.decode(text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `SECRET` sealed under `passphrase` with `params`.
    fn sealed_with(passphrase: &str, params: Argon2Params) -> Result<SealedKeystore, KeystoreError> {
        SealedKeystore::seal_with_passphrase(
            &AccountSecret::from_bytes(SECRET),
            passphrase,
            params,
            &mut rand_core::OsRng,
        )
    }
    use rand_core::{CryptoRng, RngCore};

    /// Deterministic "RNG" for known-answer tests only.
    struct Counter(u8);
    impl RngCore for Counter {
        fn next_u32(&mut self) -> u32 {
            rand_core::impls::next_u32_via_fill(self)
        }
        fn next_u64(&mut self) -> u64 {
            rand_core::impls::next_u64_via_fill(self)
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            for b in dest {
                *b = self.0;
                self.0 = self.0.wrapping_add(1);
            }
        }
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
            self.fill_bytes(dest);
            Ok(())
        }
    }
    impl CryptoRng for Counter {}

    const PRF: [u8; 32] = [0x11; 32];
    const SECRET: [u8; 32] = [0x5a; 32];

    #[test]
    fn known_answer_prf_seal() {
        let sealed = SealedKeystore::seal_with_prf(&AccountSecret::from_bytes(SECRET), &PRF, &mut Counter(0)).unwrap();
        assert_eq!(sealed.to_json(), KAT_PRF_JSON);
        let back = SealedKeystore::from_json(KAT_PRF_JSON).unwrap();
        assert_eq!(back.unseal_with_prf(&PRF).unwrap().as_bytes(), &SECRET);
    }

    #[test]
    fn prf_seal_matches_independent_construction() {
        // Recompute the PRF blob with the primitives directly: HKDF-SHA256
        // then XChaCha20-Poly1305 with the documented associated data.
        let mut key = [0u8; 32];
        Hkdf::<Sha256>::new(Some(b"chartkey/keystore/v1"), &PRF)
            .expand(b"chartkey/keystore/prf-wrapping-key/v1", &mut key)
            .unwrap();
        let nonce: Vec<u8> = (0u8..24).collect();
        let aad = [b"chartkey-keystore".as_slice(), &[1, 1]].concat();
        let ct = XChaCha20Poly1305::new((&key).into())
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: &SECRET, aad: &aad })
            .unwrap();
        let sealed = SealedKeystore::from_json(KAT_PRF_JSON).unwrap();
        assert_eq!(sealed.nonce, nonce);
        assert_eq!(sealed.ciphertext, ct);
    }

    const KAT_PRF_JSON: &str = r#"{"v":1,"kdf":"prf-hkdf-sha256","nonce":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYX","ciphertext":"n2ZGIQYS8iTn4UZv7bzAib9JukCwIILypmxhC3M47__hP4o0IHMnDX4TpYO27QTF"}"#;

    #[test]
    fn known_answer_passphrase_seal() {
        // Minimum parameters keep the test quick; the code path is the same.
        let sealed = SealedKeystore::seal_with_passphrase(
            &AccountSecret::from_bytes(SECRET),
            "correct horse battery staple",
            Argon2Params::MINIMUM,
            &mut Counter(7),
        )
        .unwrap();
        assert_eq!(sealed.to_json(), KAT_PASSPHRASE_JSON);
        let back = SealedKeystore::from_json(KAT_PASSPHRASE_JSON).unwrap();
        assert_eq!(back.unseal_with_passphrase("correct horse battery staple").unwrap().as_bytes(), &SECRET);
    }

    const KAT_PASSPHRASE_JSON: &str = r#"{"v":1,"kdf":"argon2id","memory_kib":19456,"iterations":2,"parallelism":1,"salt":"BwgJCgsMDQ4PEBESExQVFg","nonce":"FxgZGhscHR4fICEiIyQlJicoKSorLC0u","ciphertext":"3yJPLNnNzjqT__9mXX3htFpw9Op11DLqiAlBBBS6gXKtQhp_pawUW8NzWV63xXLb"}"#;

    #[test]
    fn default_argon2_parameters_round_trip() {
        let secret = AccountSecret::from_bytes([9; 32]);
        let sealed = SealedKeystore::seal_with_passphrase(
            &secret,
            "a long enough passphrase",
            Argon2Params::DEFAULT,
            &mut rand_core::OsRng,
        )
        .unwrap();
        assert_eq!(sealed.unseal_with_passphrase("a long enough passphrase").unwrap(), secret);
    }

    #[test]
    fn wrong_prf_output_fails_clearly() {
        let sealed =
            SealedKeystore::seal_with_prf(&AccountSecret::from_bytes(SECRET), &PRF, &mut rand_core::OsRng).unwrap();
        let err = sealed.unseal_with_prf(&[0x12; 32]).unwrap_err();
        assert_eq!(err, KeystoreError::WrongPasskey);
        assert!(err.to_string().contains("could not unlock your keys"));
        assert_eq!(sealed.unseal_with_prf(&[0x11; 16]).unwrap_err(), KeystoreError::BadPrfOutput(16));
    }

    #[test]
    fn wrong_passphrase_fails_clearly() {
        let sealed = sealed_with("correct horse battery staple", Argon2Params::MINIMUM).unwrap();
        let err = sealed.unseal_with_passphrase("correct horse battery stapler").unwrap_err();
        assert_eq!(err, KeystoreError::WrongPassphrase);
        assert_eq!(err.to_string(), "That passphrase is not right. Check it and try again.");
        assert_eq!(sealed.unseal_with_prf(&PRF).unwrap_err(), KeystoreError::NeedsPassphrase);
    }

    #[test]
    fn short_passphrase_refused() {
        let err = sealed_with("short", Argon2Params::MINIMUM).unwrap_err();
        assert_eq!(err, KeystoreError::PassphraseTooShort);
    }

    #[test]
    fn tampering_is_detected() {
        let sealed =
            SealedKeystore::seal_with_prf(&AccountSecret::from_bytes(SECRET), &PRF, &mut rand_core::OsRng).unwrap();
        for i in 0..sealed.ciphertext.len() {
            let mut bad = sealed.clone();
            bad.ciphertext[i] ^= 1;
            assert_eq!(bad.unseal_with_prf(&PRF).unwrap_err(), KeystoreError::WrongPasskey);
        }
        let mut bad = sealed.clone();
        bad.nonce[0] ^= 1;
        assert_eq!(bad.unseal_with_prf(&PRF).unwrap_err(), KeystoreError::WrongPasskey);
    }

    #[test]
    fn weakened_parameters_are_refused() {
        let mut sealed = sealed_with("correct horse battery staple", Argon2Params::MINIMUM).unwrap();
        if let KeystoreKdf::Argon2id { params, .. } = &mut sealed.kdf {
            params.memory_kib = 8;
        }
        assert!(matches!(
            sealed.unseal_with_passphrase("correct horse battery staple"),
            Err(KeystoreError::Malformed(_))
        ));
    }

    #[test]
    fn header_is_authenticated_as_associated_data() {
        // Opened with the right key, a blob whose header was altered (to other
        // acceptable parameters) still fails: the header is bound as AAD.
        let sealed = sealed_with("correct horse battery staple", Argon2Params::MINIMUM).unwrap();
        let key = passphrase_wrapping_key("correct horse battery staple", &sealed.kdf).unwrap();
        assert!(sealed.open(&key).is_some());
        let mut altered = sealed.clone();
        if let KeystoreKdf::Argon2id { params, .. } = &mut altered.kdf {
            params.iterations += 1;
        }
        assert!(altered.open(&key).is_none());
        let mut altered = sealed.clone();
        if let KeystoreKdf::Argon2id { salt, .. } = &mut altered.kdf {
            salt[0] ^= 1;
        }
        assert!(altered.open(&key).is_none());
    }

    #[test]
    fn sealing_refuses_unacceptable_parameters() {
        let weak = Argon2Params { memory_kib: 1024, iterations: 1, parallelism: 1 };
        let err = sealed_with("a long enough passphrase", weak);
        assert!(matches!(err, Err(KeystoreError::Malformed(_))));
    }

    #[test]
    fn malformed_blobs_are_refused() {
        for bad in [
            "",
            "null",
            "{}",
            r#"{"v":1,"kdf":"prf-hkdf-sha256","nonce":"AA","ciphertext":"AA"}"#,
            r#"{"v":2,"kdf":"prf-hkdf-sha256","nonce":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","ciphertext":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}"#,
            r#"{"v":1,"kdf":"rot13","nonce":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","ciphertext":"AA"}"#,
            r#"{"v":1,"kdf":"prf-hkdf-sha256","nonce":"!!","ciphertext":"AA"}"#,
        ] {
            assert!(matches!(SealedKeystore::from_json(bad), Err(KeystoreError::Malformed(_))), "accepted {bad:?}");
        }
    }
}
