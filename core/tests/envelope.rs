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

const VECTORS: &str = include_str!("vectors/envelope-v1.json");

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
        "description": "Chartkey envelope v1 known answers (docs/envelope.md). plaintext = bytes i % 251.",
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
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/envelope-v1.json");
        std::fs::write(path, serde_json::to_string_pretty(&computed).expect("json") + "\n").expect("writes");
        return;
    }
    assert_eq!(computed, vectors(), "the v1 format changed: a new format needs a new version");
}

#[test]
fn known_answers_open() {
    let v = vectors();
    let (reader_secret, _) = wrap_vector();
    let reader = reader_secret.derive();
    let wrapped = WrappedKey::from_slice(&hex::decode(v["wrap"]["wrapped_key"].as_str().expect("hex")).expect("hex"))
        .expect("a wrap");
    let data_key = unwrap_key(&wrapped, rid(7), reader.address(), reader.encryption_secret()).expect("unwraps");
    assert_eq!(data_key, key());
    for e in v["envelopes"].as_array().expect("list") {
        let Some(hex_env) = e["envelope"].as_str() else { continue };
        let env = hex::decode(hex_env).expect("hex");
        let len = e["plaintext_len"].as_u64().expect("len") as usize;
        assert_eq!(*open(&data_key, rid(7), &env).expect("opens"), pattern(len));
    }
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
    version[4] = 2;
    assert_eq!(open(&key(), rid(7), &version), Err(EnvelopeError::UnsupportedVersion(2)));
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
    // The record id is also authenticated: relabel and ask for the new id.
    let mut other_id = env.clone();
    other_id[8..40].copy_from_slice(&rid(8).0);
    assert_eq!(open(&key(), rid(8), &other_id), Err(EnvelopeError::Altered { chunk: 0 }));
    let mut prefix = env.clone();
    prefix[45] ^= 1;
    assert_eq!(open(&key(), rid(7), &prefix), Err(EnvelopeError::Altered { chunk: 0 }));
    assert_eq!(open(&key(), rid(7), b"%PDF-1.7 not an envelope"), Err(EnvelopeError::NotAnEnvelope));
}

#[test]
fn wrong_key_is_refused() {
    let env = sealed(10);
    assert_eq!(open(&DataKey::from_bytes([0x43; 32]), rid(7), &env), Err(EnvelopeError::Altered { chunk: 0 }));
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
