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
        let request = PassphraseKeyRequest::for_sealing(passphrase, params, rng)?;
        let key = request.derive()?;
        Self::seal_with_passphrase_key(secret, &request, &key, rng)
    }

    /// The cheap half of [`Self::seal_with_passphrase`]: seals under the key
    /// `request.derive()` gave (in the browser, a worker's answer).
    pub fn seal_with_passphrase_key(
        secret: &AccountSecret,
        request: &PassphraseKeyRequest,
        key: &PassphraseKey,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Self, KeystoreError> {
        request.kdf.check_argon2id()?;
        Ok(seal(secret, request.kdf.clone(), &key.0, rng))
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
        let key = self.passphrase_key_request(passphrase)?.derive()?;
        self.unseal_with_passphrase_key(&key)
    }

    /// What deriving this blob's key from `passphrase` takes (the slow
    /// Argon2id half of [`Self::unseal_with_passphrase`]), checked first.
    pub fn passphrase_key_request(&self, passphrase: &str) -> Result<PassphraseKeyRequest, KeystoreError> {
        self.check_shape()?;
        if !self.needs_passphrase() {
            return Err(KeystoreError::NeedsPasskey);
        }
        Ok(PassphraseKeyRequest { kdf: self.kdf.clone(), passphrase: passphrase.to_owned() })
    }

    /// The cheap half: opens the blob with a key derived from its request.
    pub fn unseal_with_passphrase_key(&self, key: &PassphraseKey) -> Result<AccountSecret, KeystoreError> {
        self.check_shape()?;
        if !self.needs_passphrase() {
            return Err(KeystoreError::NeedsPasskey);
        }
        self.open(&key.0).ok_or(KeystoreError::WrongPassphrase)
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
        match self.kdf {
            KeystoreKdf::Argon2id { .. } => self.kdf.check_argon2id(),
            KeystoreKdf::PrfHkdfSha256 => Ok(()),
        }
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

impl KeystoreKdf {
    /// Acceptable Argon2id parameters and salt; any other KDF is refused.
    fn check_argon2id(&self) -> Result<(), KeystoreError> {
        let KeystoreKdf::Argon2id { params, salt } = self else {
            return Err(KeystoreError::NeedsPasskey);
        };
        params.check()?;
        if salt.len() < 16 || salt.len() > 64 {
            return Err(KeystoreError::Malformed("bad salt length"));
        }
        Ok(())
    }
}

/// What the browser's key worker posts once its module runs, so the page
/// knows it is listening (a message sent before would be lost).
pub const KEY_WORKER_READY: &str = "ready";

/// The slow, memory-hard half of a passphrase seal or unseal, as one value
/// so the browser can hand it to a Web Worker (as JSON) and keep the page
/// responsive. The passphrase is wiped when the request is dropped.
#[derive(Serialize, Deserialize)]
pub struct PassphraseKeyRequest {
    #[serde(flatten)]
    pub kdf: KeystoreKdf,
    pub passphrase: String,
}

impl PassphraseKeyRequest {
    /// A request for sealing: checks the passphrase's length and the
    /// parameters, and draws a fresh salt.
    pub fn for_sealing(
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
        Ok(Self { kdf: KeystoreKdf::Argon2id { params, salt }, passphrase: passphrase.to_owned() })
    }

    /// Runs Argon2id (the parameters are checked first, so a hostile blob
    /// cannot make this cheap, huge or endless).
    pub fn derive(&self) -> Result<PassphraseKey, KeystoreError> {
        self.kdf.check_argon2id()?;
        passphrase_wrapping_key(&self.passphrase, &self.kdf).map(PassphraseKey)
    }
}

impl Drop for PassphraseKeyRequest {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.passphrase);
    }
}

/// A key derived from a passphrase: wiped on drop, never printed.
pub struct PassphraseKey(Zeroizing<[u8; 32]>);

impl PassphraseKey {
    /// The worker's answer, back in the page.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, KeystoreError> {
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| KeystoreError::Malformed("bad derived key length"))?;
        Ok(Self(Zeroizing::new(bytes)))
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for PassphraseKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PassphraseKey(…)")
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
#[path = "keystore_tests.rs"]
mod tests;
