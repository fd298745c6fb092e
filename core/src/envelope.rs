//! The record envelope: how one record is encrypted, and how its data key
//! reaches each reader. Specified in docs/envelope.md; this module is the
//! one implementation, used by the browser and by the server's tests.
//!
//! - Body: XChaCha20-Poly1305 in the STREAM construction (Hoang,
//!   Reyhanitabar, Rogaway, Vizár 2015; the `aead::stream` StreamBE32
//!   flavour): 64 KiB chunks, each sealed under `nonce_prefix(19) ||
//!   counter(u32 BE) || last(0|1)`, with the envelope header as associated
//!   data. A dropped, repeated, reordered or swapped chunk, a truncation and
//!   trailing bytes all fail authentication.
//! - Key commitment (version 2): the header carries SHA-256 of the data key
//!   under a domain label, checked before anything is decrypted, so an
//!   envelope opens under one key only (a Poly1305 tag alone can be made to
//!   verify under two keys, giving two readers two different records under
//!   one anchored hash). Version 1 envelopes, without it, still open.
//! - Key: a fresh random 256-bit data key per record, wrapped to each reader
//!   with HPKE (RFC 9180, base mode, DHKEM(X25519, HKDF-SHA256),
//!   HKDF-SHA256, ChaCha20-Poly1305), the wrap bound to the record id and
//!   the reader's ledger address through HPKE's `info`.

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use ethers_core::types::Address;
use hpke::{Deserializable, Serializable};
use rand_core::CryptoRngCore;
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

/// "CKEV": Chartkey envelope.
pub const MAGIC: [u8; 4] = *b"CKEV";
/// The version new envelopes are sealed in: 2, with a key commitment.
pub const VERSION: u8 = 2;
/// The first version, without a key commitment: still opened, never sealed.
pub const VERSION_1: u8 = 1;
/// Suite 1: XChaCha20-Poly1305 STREAM-BE32 body, HPKE X25519/HKDF-SHA256/ChaCha20-Poly1305 wraps.
pub const SUITE: u8 = 1;
/// Plaintext bytes per chunk, as a power of two (64 KiB).
pub const CHUNK_LOG2: u8 = 16;
pub const CHUNK_SIZE: usize = 1 << CHUNK_LOG2;
pub const TAG_LEN: usize = 16;
pub const NONCE_PREFIX_LEN: usize = 19;
/// Version 1: magic, version, suite, chunk size, reserved, record id, nonce prefix.
pub const HEADER_LEN_V1: usize = 4 + 1 + 1 + 1 + 1 + 32 + NONCE_PREFIX_LEN;
pub const KEY_COMMITMENT_LEN: usize = 32;
/// Version 2 (what [`seal`] writes): version 1's fields, then the key commitment.
pub const HEADER_LEN: usize = HEADER_LEN_V1 + KEY_COMMITMENT_LEN;
/// The key commitment's domain label; the key, record id and nonce prefix follow.
const KEY_COMMITMENT_LABEL: &[u8] = b"chartkey/key-commitment/v2";
/// The STREAM counter is 32 bits.
const MAX_CHUNKS: u64 = 1 << 32;

/// Version byte of a wrapped key.
pub const WRAP_VERSION: u8 = 1;
/// version, HPKE encapsulated key, sealed data key, tag.
pub const WRAPPED_KEY_LEN: usize = 1 + 32 + 32 + TAG_LEN;
/// HPKE `info` prefix; the record id and the reader's address follow.
const WRAP_INFO: &[u8] = b"chartkey/record-key/v1";

type Kem = hpke::kem::X25519HkdfSha256;
type Kdf = hpke::kdf::HkdfSha256;
type Aead = hpke::aead::ChaCha20Poly1305;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("this is not a Chartkey record")]
    NotAnEnvelope,
    #[error("this record was written by a newer Chartkey (format {0})")]
    UnsupportedVersion(u8),
    #[error("this record uses an unknown algorithm suite ({0})")]
    UnsupportedSuite(u8),
    #[error("this record declares an unsupported chunk size (2^{0})")]
    UnsupportedChunkSize(u8),
    #[error("this ciphertext belongs to another record")]
    WrongRecord,
    #[error("this record was not sealed with this key")]
    KeyMismatch,
    #[error("the record is cut short")]
    Truncated,
    #[error("the record has been altered (chunk {chunk} fails authentication)")]
    Altered { chunk: u64 },
    #[error("the record is too large for one envelope")]
    TooLarge,
    #[error("this key is not wrapped for you (or the wrap was altered)")]
    WrapRefused,
    #[error("the wrapped key is malformed")]
    MalformedWrap,
    #[error("the reader's encryption key is not usable")]
    BadReaderKey,
}

/// A record's identity: 32 random bytes chosen by the browser that creates
/// it. The ledger anchors it; the envelope and every wrap are bound to it.
pub use crate::value::RecordId;

crate::keys::secret_bytes!(
    /// A record's data key.
    DataKey
);

impl DataKey {
    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(self.as_bytes().into())
    }
}

/// The parsed envelope header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// [`VERSION`] or [`VERSION_1`].
    pub version: u8,
    pub record_id: RecordId,
    pub nonce_prefix: [u8; NONCE_PREFIX_LEN],
    /// Version 2: [`key_commitment`] of the data key; version 1: none.
    pub key_commitment: Option<[u8; KEY_COMMITMENT_LEN]>,
}

impl Header {
    /// A version 2 header for `key`.
    pub fn new(key: &DataKey, record_id: RecordId, nonce_prefix: [u8; NONCE_PREFIX_LEN]) -> Self {
        let key_commitment = Some(key_commitment(key, record_id, &nonce_prefix));
        Self { version: VERSION, record_id, nonce_prefix, key_commitment }
    }

    /// The header's length in bytes: [`HEADER_LEN`], or [`HEADER_LEN_V1`].
    pub fn encoded_len(&self) -> usize {
        header_len(self.version)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&[self.version, SUITE, CHUNK_LOG2, 0]);
        out.extend_from_slice(&self.record_id.0);
        out.extend_from_slice(&self.nonce_prefix);
        if let Some(commitment) = &self.key_commitment {
            out.extend_from_slice(commitment);
        }
        out
    }

    /// Parses the header at the start of an envelope (its length depends
    /// on its version).
    pub fn parse(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        if bytes.len() < 4 || bytes[..4] != MAGIC {
            return Err(if MAGIC.starts_with(bytes) { EnvelopeError::Truncated } else { EnvelopeError::NotAnEnvelope });
        }
        let Some(&version) = bytes.get(4) else { return Err(EnvelopeError::Truncated) };
        if version != VERSION && version != VERSION_1 {
            return Err(EnvelopeError::UnsupportedVersion(version));
        }
        if bytes.len() < header_len(version) {
            return Err(EnvelopeError::Truncated);
        }
        if bytes[5] != SUITE {
            return Err(EnvelopeError::UnsupportedSuite(bytes[5]));
        }
        if bytes[6] != CHUNK_LOG2 || bytes[7] != 0 {
            return Err(EnvelopeError::UnsupportedChunkSize(bytes[6]));
        }
        let mut record_id = [0u8; 32];
        record_id.copy_from_slice(&bytes[8..40]);
        let mut nonce_prefix = [0u8; NONCE_PREFIX_LEN];
        nonce_prefix.copy_from_slice(&bytes[40..HEADER_LEN_V1]);
        let key_commitment = (version == VERSION).then(|| {
            let mut commitment = [0u8; KEY_COMMITMENT_LEN];
            commitment.copy_from_slice(&bytes[HEADER_LEN_V1..HEADER_LEN]);
            commitment
        });
        Ok(Self { version, record_id: RecordId(record_id), nonce_prefix, key_commitment })
    }
}

fn header_len(version: u8) -> usize {
    if version == VERSION_1 { HEADER_LEN_V1 } else { HEADER_LEN }
}

/// The version 2 key commitment: `SHA-256(label || data key || record id ||
/// nonce prefix)`. Public (it is in the header), it reveals nothing of a
/// 256-bit random key, and binds the envelope to that one key.
pub fn key_commitment(
    key: &DataKey,
    record_id: RecordId,
    nonce_prefix: &[u8; NONCE_PREFIX_LEN],
) -> [u8; KEY_COMMITMENT_LEN] {
    Sha256::new()
        .chain_update(KEY_COMMITMENT_LABEL)
        .chain_update(key.as_bytes())
        .chain_update(record_id.0)
        .chain_update(nonce_prefix)
        .finalize()
        .into()
}

/// The size of the envelope of `plaintext_len` bytes.
pub fn sealed_len(plaintext_len: u64) -> u64 {
    let chunks = plaintext_len.div_ceil(CHUNK_SIZE as u64).max(1);
    HEADER_LEN as u64 + chunks * TAG_LEN as u64 + plaintext_len
}

/// The hash a blob is named by and anchored with: SHA-256 of the whole
/// envelope.
pub fn ciphertext_hash(envelope: &[u8]) -> [u8; 32] {
    Sha256::digest(envelope).into()
}

fn chunk_nonce(prefix: &[u8; NONCE_PREFIX_LEN], counter: u64, last: bool) -> XNonce {
    let mut nonce = XNonce::default();
    nonce[..NONCE_PREFIX_LEN].copy_from_slice(prefix);
    nonce[NONCE_PREFIX_LEN..NONCE_PREFIX_LEN + 4].copy_from_slice(&(counter as u32).to_be_bytes());
    nonce[NONCE_PREFIX_LEN + 4] = last as u8;
    nonce
}

/// Encrypts a record as a stream: feed plaintext in any slices with
/// [`update`](Self::update), then [`finish`](Self::finish). Output is
/// appended to the caller's buffer; the whole output is the envelope.
pub struct Sealer {
    cipher: XChaCha20Poly1305,
    header: Header,
    header_bytes: Vec<u8>,
    header_written: bool,
    counter: u64,
    /// Plaintext not yet sealed: at most one chunk, kept until it is known
    /// whether more follows (the last chunk is sealed differently).
    pending: Zeroizing<Vec<u8>>,
}

impl Sealer {
    pub fn new(key: &DataKey, record_id: RecordId, rng: &mut impl CryptoRngCore) -> Self {
        let mut nonce_prefix = [0u8; NONCE_PREFIX_LEN];
        rng.fill_bytes(&mut nonce_prefix);
        Self::with_nonce_prefix(key, record_id, nonce_prefix)
    }

    /// Deterministic sealing, for known-answer tests only: a nonce prefix
    /// must never be reused with the same key.
    #[doc(hidden)]
    pub fn with_nonce_prefix(key: &DataKey, record_id: RecordId, nonce_prefix: [u8; NONCE_PREFIX_LEN]) -> Self {
        let header = Header::new(key, record_id, nonce_prefix);
        Self {
            cipher: key.cipher(),
            header,
            header_bytes: header.to_bytes(),
            header_written: false,
            counter: 0,
            pending: Zeroizing::new(Vec::with_capacity(CHUNK_SIZE)),
        }
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    pub fn update(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<(), EnvelopeError> {
        self.write_header(out);
        while !input.is_empty() {
            if self.pending.len() == CHUNK_SIZE {
                // More plaintext follows a full chunk: that chunk is not the last.
                let mut chunk = std::mem::take(&mut *self.pending);
                self.seal_chunk(&chunk, false, out)?;
                chunk.zeroize();
                *self.pending = chunk;
            }
            if self.pending.is_empty() && input.len() > CHUNK_SIZE {
                // Whole chunks straight from the input, keeping one back.
                let (chunk, rest) = input.split_at(CHUNK_SIZE);
                self.seal_chunk(chunk, false, out)?;
                input = rest;
                continue;
            }
            let take = (CHUNK_SIZE - self.pending.len()).min(input.len());
            self.pending.extend_from_slice(&input[..take]);
            input = &input[take..];
        }
        Ok(())
    }

    pub fn finish(mut self, out: &mut Vec<u8>) -> Result<(), EnvelopeError> {
        self.write_header(out);
        let chunk = std::mem::take(&mut *self.pending);
        let result = self.seal_chunk(&chunk, true, out);
        drop(Zeroizing::new(chunk));
        result
    }

    fn write_header(&mut self, out: &mut Vec<u8>) {
        if !self.header_written {
            out.extend_from_slice(&self.header_bytes);
            self.header_written = true;
        }
    }

    fn seal_chunk(&mut self, plaintext: &[u8], last: bool, out: &mut Vec<u8>) -> Result<(), EnvelopeError> {
        if self.counter >= MAX_CHUNKS {
            return Err(EnvelopeError::TooLarge);
        }
        let nonce = chunk_nonce(&self.header.nonce_prefix, self.counter, last);
        let start = out.len();
        out.extend_from_slice(plaintext);
        let tag = self
            .cipher
            .encrypt_in_place_detached(&nonce, &self.header_bytes, &mut out[start..])
            .map_err(|_| EnvelopeError::TooLarge)?;
        out.extend_from_slice(&tag);
        self.counter += 1;
        Ok(())
    }
}

/// Seals a whole record at once.
pub fn seal(key: &DataKey, record_id: RecordId, plaintext: &[u8], rng: &mut impl CryptoRngCore) -> Vec<u8> {
    let mut out = Vec::with_capacity(sealed_len(plaintext.len() as u64) as usize);
    let mut sealer = Sealer::new(key, record_id, rng);
    // Only a record of more than 2^32 chunks (256 TiB) fails, far over any upload limit.
    sealer.update(plaintext, &mut out).expect("a record under 256 TiB");
    sealer.finish(&mut out).expect("a record under 256 TiB");
    out
}

/// Decrypts an envelope as a stream: feed it in any slices with
/// [`update`](Self::update), then call [`finish`](Self::finish). Plaintext
/// is released chunk by chunk, each only after its tag is verified; the
/// caller must still treat everything as unconfirmed until `finish`
/// succeeds (only then is truncation ruled out).
pub struct Opener {
    cipher: XChaCha20Poly1305,
    key: DataKey,
    record_id: RecordId,
    header: Option<(Vec<u8>, Header)>,
    counter: u64,
    pending: Vec<u8>,
}

const SEALED_CHUNK: usize = CHUNK_SIZE + TAG_LEN;

impl Opener {
    /// `record_id` is the record the caller expects: an envelope of
    /// another record is refused even under the right key.
    pub fn new(key: &DataKey, record_id: RecordId) -> Self {
        Self { cipher: key.cipher(), key: key.clone(), record_id, header: None, counter: 0, pending: Vec::new() }
    }

    pub fn update(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), EnvelopeError> {
        self.pending.extend_from_slice(input);
        if self.header.is_none() {
            let header = match Header::parse(&self.pending) {
                // Wait for the rest of the header (a wrong magic or version
                // is refused as soon as it arrives).
                Err(EnvelopeError::Truncated) => return Ok(()),
                other => other?,
            };
            if header.record_id != self.record_id {
                return Err(EnvelopeError::WrongRecord);
            }
            if let Some(commitment) = header.key_commitment
                && commitment != key_commitment(&self.key, header.record_id, &header.nonce_prefix)
            {
                return Err(EnvelopeError::KeyMismatch);
            }
            let bytes: Vec<u8> = self.pending.drain(..header.encoded_len()).collect();
            self.header = Some((bytes, header));
        }
        // Keep at least one sealed chunk back: it may be the last.
        let mut offset = 0;
        while self.pending.len() - offset > SEALED_CHUNK {
            self.open_chunk(offset, false, out)?;
            offset += SEALED_CHUNK;
        }
        self.pending.drain(..offset);
        Ok(())
    }

    pub fn finish(mut self, out: &mut Vec<u8>) -> Result<(), EnvelopeError> {
        if self.header.is_none() || self.pending.len() < TAG_LEN {
            return Err(EnvelopeError::Truncated);
        }
        self.open_chunk(0, true, out)
    }

    fn open_chunk(&mut self, offset: usize, last: bool, out: &mut Vec<u8>) -> Result<(), EnvelopeError> {
        let (header_bytes, header) = self.header.as_ref().expect("header parsed before chunks");
        let end = if last { self.pending.len() } else { offset + SEALED_CHUNK };
        let sealed = &self.pending[offset..end];
        if self.counter >= MAX_CHUNKS {
            return Err(EnvelopeError::TooLarge);
        }
        let altered = EnvelopeError::Altered { chunk: self.counter };
        let (body, tag) = sealed.split_at(sealed.len() - TAG_LEN);
        let nonce = chunk_nonce(&header.nonce_prefix, self.counter, last);
        let start = out.len();
        out.extend_from_slice(body);
        if self.cipher.decrypt_in_place_detached(&nonce, header_bytes, &mut out[start..], tag.into()).is_err() {
            out.truncate(start);
            return Err(altered);
        }
        self.counter += 1;
        Ok(())
    }
}

/// Opens a whole envelope at once. Nothing is returned unless every chunk
/// authenticates.
pub fn open(key: &DataKey, record_id: RecordId, envelope: &[u8]) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
    let mut out = Zeroizing::new(Vec::with_capacity(envelope.len()));
    let mut opener = Opener::new(key, record_id);
    opener.update(envelope, &mut out)?;
    opener.finish(&mut out)?;
    Ok(out)
}

/// A data key wrapped for one reader: `version || enc || sealed key || tag`.
#[derive(Clone, PartialEq, Eq)]
pub struct WrappedKey(pub [u8; WRAPPED_KEY_LEN]);

impl WrappedKey {
    pub fn from_slice(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        let bytes: [u8; WRAPPED_KEY_LEN] = bytes.try_into().map_err(|_| EnvelopeError::MalformedWrap)?;
        if bytes[0] != WRAP_VERSION {
            return Err(EnvelopeError::MalformedWrap);
        }
        Ok(Self(bytes))
    }

    pub fn to_base64(&self) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.0)
    }

    pub fn from_base64(s: &str) -> Result<Self, EnvelopeError> {
        use base64::Engine;
        let bytes =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s).map_err(|_| EnvelopeError::MalformedWrap)?;
        Self::from_slice(&bytes)
    }
}

/// base64url without padding, as it travels and is stored.
impl serde::Serialize for WrappedKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_base64())
    }
}

impl<'de> serde::Deserialize<'de> for WrappedKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::from_base64(&text).map_err(|_| {
            serde::de::Error::custom(format!(
                "a wrapped key is {WRAPPED_KEY_LEN} bytes of base64url, version {WRAP_VERSION}"
            ))
        })
    }
}

/// The text form, as on the wire and in the server's database.
impl std::fmt::Display for WrappedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_base64())
    }
}

impl std::str::FromStr for WrappedKey {
    type Err = EnvelopeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_base64(s)
    }
}

crate::value::text_columns!(WrappedKey);

impl std::fmt::Debug for WrappedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WrappedKey({})", self.to_base64())
    }
}

fn wrap_info(record_id: RecordId, reader: Address) -> Vec<u8> {
    [WRAP_INFO, &record_id.0, reader.as_bytes()].concat()
}

/// Wraps `key` to a reader: their X25519 encryption key (from the verified
/// key directory) and their ledger address. Only that reader can unwrap it,
/// and only as the key of `record_id`.
pub fn wrap_key(
    key: &DataKey,
    record_id: RecordId,
    reader: Address,
    reader_encryption_key: &[u8; 32],
    rng: &mut impl CryptoRngCore,
) -> Result<WrappedKey, EnvelopeError> {
    let public =
        <Kem as hpke::Kem>::PublicKey::from_bytes(reader_encryption_key).map_err(|_| EnvelopeError::BadReaderKey)?;
    let mut sealed = Zeroizing::new(*key.as_bytes());
    let (enc, tag) = hpke::single_shot_seal_in_place_detached::<Aead, Kdf, Kem, _>(
        &hpke::OpModeS::Base,
        &public,
        &wrap_info(record_id, reader),
        sealed.as_mut(),
        &[],
        &mut RngAdapter(rng),
    )
    // Only a low-order public key (an all-zero shared secret) fails.
    .map_err(|_| EnvelopeError::BadReaderKey)?;
    let mut out = [0u8; WRAPPED_KEY_LEN];
    out[0] = WRAP_VERSION;
    out[1..33].copy_from_slice(&enc.to_bytes());
    out[33..65].copy_from_slice(sealed.as_ref());
    out[65..].copy_from_slice(&tag.to_bytes());
    Ok(WrappedKey(out))
}

/// Unwraps a data key with the reader's own X25519 secret.
pub fn unwrap_key(
    wrapped: &WrappedKey,
    record_id: RecordId,
    reader: Address,
    reader_secret: &x25519_dalek::StaticSecret,
) -> Result<DataKey, EnvelopeError> {
    let secret = Zeroizing::new(reader_secret.to_bytes());
    let private =
        <Kem as hpke::Kem>::PrivateKey::from_bytes(secret.as_ref()).map_err(|_| EnvelopeError::BadReaderKey)?;
    let bytes = &wrapped.0;
    if bytes[0] != WRAP_VERSION {
        return Err(EnvelopeError::MalformedWrap);
    }
    let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(&bytes[1..33]).map_err(|_| EnvelopeError::MalformedWrap)?;
    let tag = hpke::aead::AeadTag::<Aead>::from_bytes(&bytes[65..]).map_err(|_| EnvelopeError::MalformedWrap)?;
    // Opened in place: the key is never outside a DataKey (wiped on drop).
    let mut key = DataKey([0; 32]);
    key.0.copy_from_slice(&bytes[33..65]);
    hpke::single_shot_open_in_place_detached::<Aead, Kdf, Kem>(
        &hpke::OpModeR::Base,
        &private,
        &enc,
        &wrap_info(record_id, reader),
        &mut key.0,
        &[],
        &tag,
    )
    .map_err(|_| EnvelopeError::WrapRefused)?;
    Ok(key)
}

/// hpke asks for `rand_core` 0.6's `RngCore + CryptoRng`; callers hold a
/// `CryptoRngCore` trait object or generic.
struct RngAdapter<'a, R: CryptoRngCore>(&'a mut R);

impl<R: CryptoRngCore> rand_core::RngCore for RngAdapter<'_, R> {
    fn next_u32(&mut self) -> u32 {
        self.0.next_u32()
    }
    fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0.fill_bytes(dest)
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.0.try_fill_bytes(dest)
    }
}

impl<R: CryptoRngCore> rand_core::CryptoRng for RngAdapter<'_, R> {}
