//! The record envelope: known answers, round trips and every kind of
//! tampering (docs/envelope.md).

use chartkey_core::AccountSecret;
use chartkey_core::envelope::*;
use chartkey_core::merkle;
use proptest::prelude::*;
use rand_core::{CryptoRng, OsRng, RngCore};
use sha2::{Digest, Sha256};

/// A deterministic byte stream for known answers: SHA-256 in counter mode
/// over a label. Never used outside tests.
struct TestRng {
    label: &'static [u8],
    counter: u64,
    buf: Vec<u8>,
}

impl TestRng {
    fn new(label: &'static [u8]) -> Self {
        Self { label, counter: 0, buf: Vec::new() }
    }
}

impl RngCore for TestRng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for d in dest {
            if self.buf.is_empty() {
                self.buf =
                    Sha256::new().chain_update(self.label).chain_update(self.counter.to_be_bytes()).finalize().to_vec();
                self.counter += 1;
            }
            *d = self.buf.remove(0);
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}
impl CryptoRng for TestRng {}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

fn key() -> DataKey {
    DataKey::from_bytes([0x42; 32])
}

fn rid(b: u8) -> RecordId {
    RecordId([b; 32])
}

fn sealed(len: usize) -> Vec<u8> {
    seal(&key(), rid(7), &pattern(len), &mut OsRng)
}

// ----- known answers -----

/// Version 2, what `seal` writes now.
const VECTORS: &str = include_str!("vectors/envelope-v2.json");
/// Version 1 (no key commitment), frozen: records sealed before version 2
/// must still open.
const VECTORS_V1: &str = include_str!("vectors/envelope-v1.json");

fn vectors() -> serde_json::Value {
    serde_json::from_str(VECTORS).expect("vectors are JSON")
}

/// The envelope of a fixed key, record id and nonce prefix over
/// `pattern(len)`, for lengths around chunk boundaries.
fn envelope_vector(len: usize) -> Vec<u8> {
    let prefix: [u8; NONCE_PREFIX_LEN] = std::array::from_fn(|i| i as u8 + 1);
    let mut sealer = Sealer::with_nonce_prefix(&key(), rid(7), prefix);
    let mut out = Vec::new();
    sealer.update(&pattern(len), &mut out).expect("seals");
    sealer.finish(&mut out).expect("seals");
    out
}

fn wrap_vector() -> (AccountSecret, WrappedKey) {
    let reader = AccountSecret::from_bytes([0x11; 32]).derive();
    let wrapped = wrap_key(&key(), rid(7), reader.address(), &reader.encryption_public(), &mut TestRng::new(b"wrap"))
        .expect("wraps");
    (AccountSecret::from_bytes([0x11; 32]), wrapped)
}

fn computed_vectors() -> serde_json::Value {
    let envelopes: Vec<_> = [0usize, 1, 100, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE + 5]
        .into_iter()
        .map(|len| {
            let env = envelope_vector(len);
            let mut v = serde_json::json!({
                "plaintext_len": len,
                "envelope_len": env.len(),
                "envelope_sha256": hex::encode(Sha256::digest(&env)),
            });
            if env.len() <= 256 {
                v["envelope"] = hex::encode(&env).into();
            }
            v
        })
        .collect();
    let (reader_secret, wrapped) = wrap_vector();
    let reader = reader_secret.derive();
    let leaves: Vec<_> =
        (0u8..7).map(|i| merkle::leaf_hash(&merkle::record_leaf(rid(i + 1), &[i; 32], i, None))).collect();
    let tree = merkle::Tree::from_leaf_hashes(leaves).expect("leaves");
    serde_json::json!({
        "description": "Chartkey envelope v2 known answers (docs/envelope.md). plaintext = bytes i % 251.",
        "data_key": hex::encode(key().as_bytes()),
        "record_id": rid(7).to_hex(),
        "nonce_prefix": hex::encode(std::array::from_fn::<u8, NONCE_PREFIX_LEN, _>(|i| i as u8 + 1)),
        "envelopes": envelopes,
        "wrap": {
            "reader_account_secret": hex::encode(reader_secret.as_bytes()),
            "reader_address": format!("{:#x}", reader.address()),
            "reader_encryption_key": hex::encode(reader.encryption_public()),
            "hpke_ikm_rng": "SHA-256(\"wrap\" || u64 BE counter) stream",
            "wrapped_key": hex::encode(wrapped.0),
        },
        "merkle": {
            "leaves": "record_leaf(id = [i+1; 32], ciphertext_hash = [i; 32], category = i, amends = none), i = 0..7",
            "root": hex::encode(tree.root()),
            "proof_of_3": tree.proof(3).expect("in range").iter().map(hex::encode).collect::<Vec<_>>(),
        },
    })
}

#[test]
fn known_answers_match() {
    let computed = computed_vectors();
    if std::env::var_os("CHARTKEY_WRITE_VECTORS").is_some() {
        let path =
            std::path::PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
                .join("tests/vectors/envelope-v2.json");
        std::fs::write(path, serde_json::to_string_pretty(&computed).expect("json") + "\n").expect("writes");
        return;
    }
    assert_eq!(computed, vectors(), "the v2 format changed: a new format needs a new version");
}

#[test]
fn known_answers_open() {
    for (text, version) in [(VECTORS, VERSION), (VECTORS_V1, VERSION_1)] {
        let v: serde_json::Value = serde_json::from_str(text).expect("vectors are JSON");
        let mut opened = 0;
        for e in v["envelopes"].as_array().expect("list") {
            let Some(hex_env) = e["envelope"].as_str() else { continue };
            let env = hex::decode(hex_env).expect("hex");
            assert_eq!(Header::parse(&env).expect("a header").version, version);
            let len = e["plaintext_len"].as_u64().expect("len") as usize;
            assert_eq!(*open(&key(), rid(7), &env).expect("opens"), pattern(len), "v{version}, {len} bytes");
            opened += 1;
        }
        assert!(opened >= 3, "v{version}: {opened} envelopes");
    }
}

#[test]
fn known_answers_unwrap() {
    let v = vectors();
    let (reader_secret, _) = wrap_vector();
    let reader = reader_secret.derive();
    let wrapped = WrappedKey::from_slice(&hex::decode(v["wrap"]["wrapped_key"].as_str().expect("hex")).expect("hex"))
        .expect("a wrap");
    let data_key = unwrap_key(&wrapped, rid(7), reader.address(), reader.encryption_secret()).expect("unwraps");
    assert_eq!(data_key, key());
}

/// The chunk construction is exactly `aead::stream`'s StreamBE32 over
/// XChaCha20-Poly1305 with the header as associated data.
#[test]
fn chunks_are_the_stream_be32_construction() {
    use chacha20poly1305::XChaCha20Poly1305;
    use chacha20poly1305::aead::stream::EncryptorBE32;
    use chacha20poly1305::aead::{KeyInit, Payload};
    let plaintext = pattern(2 * CHUNK_SIZE + 9);
    let env = envelope_vector(plaintext.len());
    let header = Header::parse(&env).expect("a header");
    let aad = &env[..HEADER_LEN];
    let cipher = XChaCha20Poly1305::new(key().as_bytes().into());
    let mut stream = EncryptorBE32::from_aead(cipher, header.nonce_prefix.as_ref().into());
    let mut expected = aad.to_vec();
    let chunks: Vec<_> = plaintext.chunks(CHUNK_SIZE).collect();
    for chunk in &chunks[..chunks.len() - 1] {
        expected.extend(stream.encrypt_next(Payload { msg: chunk, aad }).expect("seals"));
    }
    expected.extend(stream.encrypt_last(Payload { msg: chunks[chunks.len() - 1], aad }).expect("seals"));
    assert_eq!(env, expected);
}

// ----- round trips -----

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Any plaintext, fed and read back in any slicing, round-trips, and the
    /// envelope has the size `sealed_len` promises.
    #[test]
    fn round_trips_in_any_slicing(
        len in prop_oneof![0usize..300, CHUNK_SIZE - 2..CHUNK_SIZE + 2, 0usize..(3 * CHUNK_SIZE + 100)],
        seal_step in 1usize..(CHUNK_SIZE * 2),
        open_step in 1usize..(CHUNK_SIZE * 2),
        seed in any::<u8>(),
    ) {
        let plaintext: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect();
        let key = DataKey::generate(&mut OsRng);
        let id = RecordId::generate(&mut OsRng);
        let mut sealer = Sealer::new(&key, id, &mut OsRng);
        let mut env = Vec::new();
        for part in plaintext.chunks(seal_step) {
            sealer.update(part, &mut env).expect("seals");
        }
        sealer.finish(&mut env).expect("seals");
        prop_assert_eq!(env.len() as u64, sealed_len(len as u64));
        prop_assert_eq!(&*open(&key, id, &env).expect("opens"), &plaintext);

        let mut opener = Opener::new(&key, id);
        let mut out = Vec::new();
        for part in env.chunks(open_step) {
            opener.update(part, &mut out).expect("opens");
        }
        opener.finish(&mut out).expect("opens");
        prop_assert_eq!(out, plaintext);
    }

    /// Flipping any single bit anywhere is detected.
    #[test]
    fn any_bit_flip_is_detected(len in 0usize..(2 * CHUNK_SIZE + 50), at in any::<prop::sample::Index>(), bit in 0u8..8) {
        let mut env = sealed(len);
        let i = at.index(env.len());
        env[i] ^= 1 << bit;
        prop_assert!(open(&key(), rid(7), &env).is_err());
    }

    /// Wraps round-trip for any reader, and only for that reader and record.
    #[test]
    fn wraps_round_trip(reader_seed in any::<[u8; 32]>(), other_seed in any::<[u8; 32]>()) {
        prop_assume!(reader_seed != other_seed);
        let reader = AccountSecret::from_bytes(reader_seed).derive();
        let other = AccountSecret::from_bytes(other_seed).derive();
        let data_key = DataKey::generate(&mut OsRng);
        let id = RecordId::generate(&mut OsRng);
        let wrapped = wrap_key(&data_key, id, reader.address(), &reader.encryption_public(), &mut OsRng).expect("wraps");
        prop_assert_eq!(unwrap_key(&wrapped, id, reader.address(), reader.encryption_secret()).expect("unwraps"), data_key);
        prop_assert_eq!(
            unwrap_key(&wrapped, id, other.address(), other.encryption_secret()),
            Err(EnvelopeError::WrapRefused)
        );
    }
}

// ----- tampering, one kind at a time -----

fn chunk_range(env: &[u8], n: usize) -> std::ops::Range<usize> {
    let size = CHUNK_SIZE + TAG_LEN;
    let start = HEADER_LEN + n * size;
    start..(start + size).min(env.len())
}

#[test]
fn truncation_is_detected() {
    let env = sealed(3 * CHUNK_SIZE + 10);
    // At a chunk boundary: the new last chunk was not sealed as last.
    let at_boundary = &env[..chunk_range(&env, 2).end];
    assert_eq!(open(&key(), rid(7), at_boundary), Err(EnvelopeError::Altered { chunk: 2 }));
    // Mid-chunk, mid-tag, in the header, and nothing at all.
    assert!(matches!(open(&key(), rid(7), &env[..env.len() - 1]), Err(EnvelopeError::Altered { .. })));
    assert!(matches!(open(&key(), rid(7), &env[..HEADER_LEN + 10]), Err(EnvelopeError::Truncated)));
    assert_eq!(open(&key(), rid(7), &env[..HEADER_LEN]), Err(EnvelopeError::Truncated));
    assert_eq!(open(&key(), rid(7), &env[..HEADER_LEN - 1]), Err(EnvelopeError::Truncated));
    assert_eq!(open(&key(), rid(7), &env[..2]), Err(EnvelopeError::Truncated));
    assert_eq!(open(&key(), rid(7), &[]), Err(EnvelopeError::Truncated));
    // Even the one-chunk envelope of an empty record.
    let empty = sealed(0);
    assert_eq!(empty.len(), HEADER_LEN + TAG_LEN);
    assert!(open(&key(), rid(7), &empty[..HEADER_LEN + TAG_LEN - 1]).is_err());
}

#[test]
fn reordered_dropped_repeated_and_extended_chunks_are_detected() {
    let env = sealed(3 * CHUNK_SIZE + 10);
    let (c0, c1, c2, c3) = (chunk_range(&env, 0), chunk_range(&env, 1), chunk_range(&env, 2), chunk_range(&env, 3));
    let header = &env[..HEADER_LEN];
    let build = |parts: &[&std::ops::Range<usize>]| {
        let mut v = header.to_vec();
        for p in parts {
            v.extend_from_slice(&env[(*p).clone()]);
        }
        v
    };
    assert!(open(&key(), rid(7), &build(&[&c0, &c1, &c2, &c3])).is_ok(), "the original opens");
    assert_eq!(open(&key(), rid(7), &build(&[&c1, &c0, &c2, &c3])), Err(EnvelopeError::Altered { chunk: 0 }));
    assert_eq!(open(&key(), rid(7), &build(&[&c0, &c2, &c3])), Err(EnvelopeError::Altered { chunk: 1 }));
    assert_eq!(open(&key(), rid(7), &build(&[&c0, &c0, &c1, &c2, &c3])), Err(EnvelopeError::Altered { chunk: 1 }));
    // The last chunk moved earlier, or a full chunk posing as the last.
    assert!(open(&key(), rid(7), &build(&[&c0, &c1, &c3, &c2])).is_err());
    let mut extended = env.clone();
    extended.push(0);
    assert!(open(&key(), rid(7), &extended).is_err(), "a trailing byte");
    let mut doubled = env.clone();
    doubled.extend_from_slice(&env[c3]);
    assert!(open(&key(), rid(7), &doubled).is_err(), "a repeated last chunk");
}

#[test]
fn chunks_swapped_between_records_are_detected() {
    // Same key (never the case in practice), two records: chunk 1 of one
    // does not open in the other, whose header and nonce prefix differ.
    let a = seal(&key(), rid(7), &pattern(2 * CHUNK_SIZE + 1), &mut OsRng);
    let b = seal(&key(), rid(7), &pattern(2 * CHUNK_SIZE + 1), &mut OsRng);
    let mut mixed = a.clone();
    let r = chunk_range(&a, 1);
    mixed[r.clone()].copy_from_slice(&b[r]);
    assert_eq!(open(&key(), rid(7), &mixed), Err(EnvelopeError::Altered { chunk: 1 }));
}

#[test]
fn header_tampering_is_detected() {
    let env = sealed(1000);
    let mut wrong_magic = env.clone();
    wrong_magic[0] = b'X';
    assert_eq!(open(&key(), rid(7), &wrong_magic), Err(EnvelopeError::NotAnEnvelope));
    let mut version = env.clone();
    version[4] = 3;
    assert_eq!(open(&key(), rid(7), &version), Err(EnvelopeError::UnsupportedVersion(3)));
    // Posing as version 1 (no commitment): the header is authenticated.
    let mut downgraded = env.clone();
    downgraded[4] = VERSION_1;
    assert_eq!(open(&key(), rid(7), &downgraded), Err(EnvelopeError::Altered { chunk: 0 }));
    let mut stripped = env[..HEADER_LEN_V1].to_vec();
    stripped[4] = VERSION_1;
    stripped.extend_from_slice(&env[HEADER_LEN..]);
    assert_eq!(open(&key(), rid(7), &stripped), Err(EnvelopeError::Altered { chunk: 0 }));
    let mut suite = env.clone();
    suite[5] = 9;
    assert_eq!(open(&key(), rid(7), &suite), Err(EnvelopeError::UnsupportedSuite(9)));
    let mut chunk = env.clone();
    chunk[6] = 20;
    assert_eq!(open(&key(), rid(7), &chunk), Err(EnvelopeError::UnsupportedChunkSize(20)));
    let mut reserved = env.clone();
    reserved[7] = 1;
    assert!(open(&key(), rid(7), &reserved).is_err());
    // Another record's id in the header: refused before decrypting.
    let mut relabelled = env.clone();
    relabelled[8] ^= 1;
    assert_eq!(open(&key(), rid(7), &relabelled), Err(EnvelopeError::WrongRecord));
    // The record id and nonce prefix are covered by the key commitment (and
    // authenticated): relabel and ask for the new id; change the prefix.
    let mut other_id = env.clone();
    other_id[8..40].copy_from_slice(&rid(8).0);
    assert_eq!(open(&key(), rid(8), &other_id), Err(EnvelopeError::KeyMismatch));
    let mut prefix = env.clone();
    prefix[45] ^= 1;
    assert_eq!(open(&key(), rid(7), &prefix), Err(EnvelopeError::KeyMismatch));
    let mut commitment = env.clone();
    commitment[HEADER_LEN - 1] ^= 1;
    assert_eq!(open(&key(), rid(7), &commitment), Err(EnvelopeError::KeyMismatch));
    assert_eq!(open(&key(), rid(7), b"%PDF-1.7 not an envelope"), Err(EnvelopeError::NotAnEnvelope));
}

#[test]
fn wrong_key_is_refused() {
    let env = sealed(10);
    assert_eq!(open(&DataKey::from_bytes([0x43; 32]), rid(7), &env), Err(EnvelopeError::KeyMismatch));
    // Version 1 has no commitment: the first chunk's tag refuses it.
    let v1: serde_json::Value = serde_json::from_str(VECTORS_V1).expect("json");
    let old = hex::decode(v1["envelopes"][1]["envelope"].as_str().expect("hex")).expect("hex");
    assert_eq!(open(&DataKey::from_bytes([0x43; 32]), rid(7), &old), Err(EnvelopeError::Altered { chunk: 0 }));
}

// ----- key commitment: one envelope, one key -----

/// Poly1305 (RFC 8439) over the field 2^130 - 5, to build what an attacker
/// would: one ciphertext whose tag verifies under two data keys.
mod two_keys {
    use chacha20::cipher::{KeyIvInit, StreamCipher};
    use chartkey_core::envelope::DataKey;
    use num_bigint::BigUint;

    fn p() -> BigUint {
        (BigUint::from(1u8) << 130u32) - 5u8
    }

    fn le(bytes: &[u8]) -> BigUint {
        BigUint::from_bytes_le(bytes)
    }

    /// XChaCha20's keystream for `key` and `nonce`: block 0 is the Poly1305
    /// key, the message is enciphered from block 1 on.
    fn keystream(key: &DataKey, nonce: &[u8; 24], len: usize) -> Vec<u8> {
        let mut buf = vec![0u8; 64 + len];
        chacha20::XChaCha20::new(key.as_bytes().into(), nonce.into()).apply_keystream(&mut buf);
        buf
    }

    /// The AEAD's Poly1305 input blocks (each full 16 bytes, as values with
    /// the 2^128 bit): padded AAD, padded ciphertext, the two lengths.
    fn blocks(aad: &[u8], ciphertext: &[u8]) -> Vec<BigUint> {
        let pad = |b: &[u8]| {
            let mut v = b.to_vec();
            v.resize(b.len().div_ceil(16) * 16, 0);
            v
        };
        let mut all = pad(aad);
        all.extend(pad(ciphertext));
        all.extend((aad.len() as u64).to_le_bytes());
        all.extend((ciphertext.len() as u64).to_le_bytes());
        all.chunks(16).map(|b| le(b) + (BigUint::from(1u8) << 128u32)).collect()
    }

    /// A 32-byte ciphertext and its tag that verify, with `aad` and
    /// `nonce`, under both `k1` and `k2`: two free blocks, solved so that
    /// both Poly1305 sums land on the same tag.
    pub fn forge(k1: &DataKey, k2: &DataKey, aad: &[u8], nonce: &[u8; 24]) -> (Vec<u8>, [u8; 16]) {
        let p = p();
        let two128 = BigUint::from(1u8) << 128u32;
        let clamp = BigUint::from(0x0ffffffc0ffffffc0ffffffc0fffffffu128);
        let poly = |k: &DataKey| {
            let ks = keystream(k, nonce, 0);
            (le(&ks[..16]) & &clamp, le(&ks[16..32]))
        };
        let ((r1, s1), (r2, s2)) = (poly(k1), poly(k2));
        // Blocks: the AAD's, then c1, c2 (unknown), then the lengths.
        let template = blocks(aad, &[0u8; 32]);
        let n = template.len();
        let (i1, i2) = (n - 3, n - 2);
        let sum_without = |r: &BigUint| {
            let mut h = BigUint::from(0u8);
            for (j, b) in template.iter().enumerate() {
                if j != i1 && j != i2 {
                    h = (h + b * r.modpow(&BigUint::from((n - j) as u64), &p)) % &p;
                }
            }
            h
        };
        let (a1, a2) = (sum_without(&r1), sum_without(&r2));
        let (e1, f1) = (r1.modpow(&BigUint::from(3u8), &p), r1.modpow(&BigUint::from(2u8), &p));
        let (e2, f2) = (r2.modpow(&BigUint::from(3u8), &p), r2.modpow(&BigUint::from(2u8), &p));
        let sub = |a: &BigUint, b: &BigUint| (a + &p - (b % &p)) % &p;
        let det = sub(&(&e1 * &f2 % &p), &(&e2 * &f1 % &p));
        let inverse = det.modpow(&(&p - 2u8), &p);
        for attempt in 0u64.. {
            // Tag T: both sums must equal T - s_i (mod 2^128), taken below 2^128.
            let t = BigUint::from(attempt.wrapping_mul(0x9e37_79b9_7f4a_7c15)) << 60u32;
            let v1 = (&t + &two128 - &s1) % &two128;
            let v2 = (&t + &two128 - &s2) % &two128;
            let (d1, d2) = (sub(&v1, &a1), sub(&v2, &a2));
            let x = sub(&(&d1 * &f2 % &p), &(&d2 * &f1 % &p)) * &inverse % &p;
            let y = sub(&(&e1 * &d2 % &p), &(&e2 * &d1 % &p)) * &inverse % &p;
            // Each must be a full block: 2^128 plus 16 bytes.
            if x < two128 || y < two128 || x >= &two128 << 1u32 || y >= &two128 << 1u32 {
                continue;
            }
            let mut ciphertext = (x - &two128).to_bytes_le();
            ciphertext.resize(16, 0);
            let mut second = (y - &two128).to_bytes_le();
            second.resize(16, 0);
            ciphertext.extend(second);
            let mut tag = t.to_bytes_le();
            tag.resize(16, 0);
            return (ciphertext, tag.try_into().expect("16 bytes"));
        }
        unreachable!("the loop returns")
    }
}

/// One envelope of a single (last) chunk, crafted to verify under two keys.
fn two_key_envelope(header: &Header, k1: &DataKey, k2: &DataKey) -> Vec<u8> {
    let aad = header.to_bytes();
    let mut nonce = [0u8; 24];
    nonce[..NONCE_PREFIX_LEN].copy_from_slice(&header.nonce_prefix);
    nonce[23] = 1;
    let (ciphertext, tag) = two_keys::forge(k1, k2, &aad, &nonce);
    [aad, ciphertext, tag.to_vec()].concat()
}

/// Finding 10 of the security review: without a key commitment, an author
/// can anchor one ciphertext that the patient (under one wrapped key) and
/// a clinician (under another) read as two different records. Version 1
/// falls for it; version 2 opens it under the committed key only.
#[test]
fn a_ciphertext_crafted_for_two_keys_opens_under_one() {
    let (k1, k2) = (DataKey::from_bytes([0x51; 32]), DataKey::from_bytes([0x52; 32]));
    let prefix = [0x33; NONCE_PREFIX_LEN];

    let v1 = Header { version: VERSION_1, record_id: rid(9), nonce_prefix: prefix, key_commitment: None };
    let forged = two_key_envelope(&v1, &k1, &k2);
    let (one, two) = (open(&k1, rid(9), &forged), open(&k2, rid(9), &forged));
    assert!(one.is_ok() && two.is_ok(), "the forgery works on version 1: {one:?} {two:?}");
    assert_ne!(one.expect("opens"), two.expect("opens"), "two keys, two different records");

    let v2 = Header::new(&k1, rid(9), prefix);
    let forged = two_key_envelope(&v2, &k1, &k2);
    open(&k1, rid(9), &forged).expect("the committed key opens it");
    assert_eq!(open(&k2, rid(9), &forged), Err(EnvelopeError::KeyMismatch));
    // The Poly1305 tag does verify under the second key: it is the
    // commitment that refuses it.
    use chacha20poly1305::XChaCha20Poly1305;
    use chacha20poly1305::aead::{AeadInPlace, KeyInit};
    let (aad, rest) = forged.split_at(HEADER_LEN);
    let (body, tag) = rest.split_at(rest.len() - TAG_LEN);
    let mut nonce = [0u8; 24];
    nonce[..NONCE_PREFIX_LEN].copy_from_slice(&prefix);
    nonce[23] = 1;
    let mut buffer = body.to_vec();
    XChaCha20Poly1305::new(k2.as_bytes().into())
        .decrypt_in_place_detached(&nonce.into(), aad, &mut buffer, tag.into())
        .expect("the tag alone verifies under the second key");
}

#[test]
fn streaming_opener_releases_only_authenticated_chunks() {
    let env = sealed(2 * CHUNK_SIZE + 10);
    let mut bad = env.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    let mut opener = Opener::new(&key(), rid(7));
    let mut out = Vec::new();
    opener.update(&bad, &mut out).expect("the first chunks are intact");
    assert_eq!(out.len(), 2 * CHUNK_SIZE, "the held-back last chunk is not released");
    assert_eq!(opener.finish(&mut out), Err(EnvelopeError::Altered { chunk: 2 }));
    assert_eq!(out.len(), 2 * CHUNK_SIZE);
}

#[test]
fn wraps_are_bound_to_record_and_reader() {
    let reader = AccountSecret::from_bytes([0x11; 32]).derive();
    let other = AccountSecret::from_bytes([0x12; 32]).derive();
    let data_key = DataKey::generate(&mut OsRng);
    let wrapped =
        wrap_key(&data_key, rid(1), reader.address(), &reader.encryption_public(), &mut OsRng).expect("wraps");
    assert_eq!(unwrap_key(&wrapped, rid(1), reader.address(), reader.encryption_secret()), Ok(data_key.clone()));
    // Presented as another record's key, or under another address.
    assert_eq!(
        unwrap_key(&wrapped, rid(2), reader.address(), reader.encryption_secret()),
        Err(EnvelopeError::WrapRefused)
    );
    assert_eq!(
        unwrap_key(&wrapped, rid(1), other.address(), reader.encryption_secret()),
        Err(EnvelopeError::WrapRefused)
    );
    // Any altered byte.
    for i in 1..WRAPPED_KEY_LEN {
        let mut bad = wrapped.clone();
        bad.0[i] ^= 0x80;
        assert!(unwrap_key(&bad, rid(1), reader.address(), reader.encryption_secret()).is_err(), "byte {i}");
    }
    // Malformed wraps.
    assert_eq!(WrappedKey::from_slice(&wrapped.0[..80]), Err(EnvelopeError::MalformedWrap));
    let mut version = wrapped.0;
    version[0] = 2;
    assert_eq!(WrappedKey::from_slice(&version), Err(EnvelopeError::MalformedWrap));
    assert_eq!(WrappedKey::from_base64("not base64!"), Err(EnvelopeError::MalformedWrap));
    assert_eq!(WrappedKey::from_base64(&wrapped.to_base64()), Ok(wrapped.clone()));
    // A low-order reader key is refused (an all-zero shared secret).
    assert_eq!(wrap_key(&data_key, rid(1), reader.address(), &[0; 32], &mut OsRng), Err(EnvelopeError::BadReaderKey));
}

#[test]
fn record_ids_parse_strictly() {
    let id = RecordId::generate(&mut OsRng);
    assert_eq!(RecordId::from_hex(&id.to_hex()), Some(id));
    assert_eq!(serde_json::from_str::<RecordId>(&serde_json::to_string(&id).expect("json")).expect("parses"), id);
    assert_eq!(RecordId::from_hex("0x12"), None);
    assert_eq!(RecordId::from_hex(&"zz".repeat(32)), None);
    assert!(serde_json::from_str::<RecordId>("\"0x1234\"").is_err());
}
