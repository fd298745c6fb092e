//! Anchoring records: the one rule, shared by the browser (which signs) and
//! the server (which checks what it relays), for turning a set of new
//! records into the ledger message that anchors them.
//!
//! One record is anchored by itself ([`Anchor`]); two or more as one RFC
//! 6962 Merkle batch ([`AnchorBatch`]), each record a leaf in the order
//! given.

use ethers_core::types::Address;

use crate::directory::recover_strict;
use crate::eip712::{Anchor, AnchorBatch, Domain, LedgerMessage};
use crate::envelope::RecordId;
use crate::merkle::{self, Hash, Tree};

/// Most records in one batch (one signature, one transaction).
pub const MAX_BATCH: usize = 5_000;

/// What the ledger learns of one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnchoredRecord {
    pub id: RecordId,
    pub ciphertext_hash: Hash,
    pub category: u8,
    pub amends: Option<RecordId>,
}

impl AnchoredRecord {
    pub fn leaf_hash(&self) -> Hash {
        merkle::leaf_hash(&merkle::record_leaf(self.id, &self.ciphertext_hash, self.category, self.amends))
    }
}

/// The Merkle tree over `records`, in order; `None` when empty.
pub fn batch_tree(records: &[AnchoredRecord]) -> Option<Tree> {
    Tree::from_leaf_hashes(records.iter().map(AnchoredRecord::leaf_hash).collect())
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnchorError {
    #[error("There are no records to add.")]
    Empty,
    #[error("At most {MAX_BATCH} records can be added at once.")]
    TooMany,
    #[error("A correction is added on its own, not in a batch.")]
    AmendmentInBatch,
    #[error("The same record appears twice.")]
    Duplicate,
}

/// The message that anchors `records`, written by `author` into `patient`'s
/// chart.
pub fn anchor_message(
    author: Address,
    patient: Address,
    records: &[AnchoredRecord],
) -> Result<LedgerMessage, AnchorError> {
    match records {
        [] => Err(AnchorError::Empty),
        [one] => Ok(LedgerMessage::Anchor(Anchor {
            author,
            patient,
            record_id: one.id.0,
            ciphertext_hash: one.ciphertext_hash,
            category: one.category,
            amends: one.amends.map(|a| a.0).unwrap_or([0; 32]),
        })),
        many => {
            if many.len() > MAX_BATCH {
                return Err(AnchorError::TooMany);
            }
            if many.iter().any(|r| r.amends.is_some()) {
                return Err(AnchorError::AmendmentInBatch);
            }
            let mut ids: Vec<_> = many.iter().map(|r| r.id).collect();
            ids.sort_unstable();
            if ids.windows(2).any(|w| w[0] == w[1]) {
                return Err(AnchorError::Duplicate);
            }
            let tree = batch_tree(many).ok_or(AnchorError::Empty)?;
            Ok(LedgerMessage::AnchorBatch(AnchorBatch { author, patient, root: tree.root(), count: many.len() as u32 }))
        }
    }
}

/// Appends one envelope to a pack: `sha256 (32) || length (u32 BE) ||
/// envelope`. Packs carry many envelopes in one request (an import's
/// upload, a timeline's download).
pub fn pack_frame(out: &mut Vec<u8>, name: &Hash, envelope: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(&(envelope.len() as u32).to_be_bytes());
    out.extend_from_slice(envelope);
}

/// Splits a pack into `(name, envelope)` frames; `None` if malformed.
/// Names are not checked here: the reader hashes each envelope.
pub fn parse_pack(mut body: &[u8]) -> Option<Vec<(Hash, &[u8])>> {
    let mut out = Vec::new();
    while !body.is_empty() {
        if body.len() < 36 {
            return None;
        }
        let name: Hash = body[..32].try_into().ok()?;
        let len = u32::from_be_bytes(body[32..36].try_into().ok()?) as usize;
        let rest = &body[36..];
        if rest.len() < len {
            return None;
        }
        out.push((name, &rest[..len]));
        body = &rest[len..];
    }
    Some(out)
}

/// What the ledger holds for a record, as the server read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OnLedger {
    Missing,
    Record { ciphertext_hash: Hash, category: u8 },
    Batch { count: u64 },
}

/// A record's place in its batch, as the server keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inclusion {
    pub root: Hash,
    pub index: u64,
    pub size: u64,
    pub path: Vec<Hash>,
}

/// Why a record must not be shown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Tampered {
    #[error("The stored copy of this record has been altered: it no longer matches its fingerprint.")]
    BlobMismatch,
    #[error("The ledger holds no anchor for this record.")]
    NotAnchored,
    #[error("The ledger anchored a different version of this record.")]
    LedgerMismatch,
    #[error("This record's proof does not lead to the batch anchored on the ledger.")]
    BadProof,
    #[error("This record does not carry its author's signature: it was not added by them.")]
    BadSignature,
}

/// Who anchored a record, as the reader can prove it: the signed anchoring
/// message travels with the record, so a server that changed a record's
/// fingerprint, category, correction link or batch position, or made up a
/// record, cannot produce it.
#[derive(Debug, Clone, Copy)]
pub struct Provenance<'a> {
    pub domain: &'a Domain,
    /// The chart the record belongs to.
    pub patient: Address,
    /// Who is said to have written it.
    pub author: Address,
    /// The author's EIP-712 signature over the `Anchor` (or, for a batch
    /// member, the `AnchorBatch`) that anchored it.
    pub signature: &'a [u8],
}

impl Provenance<'_> {
    /// The message the author must have signed for `record`.
    pub fn message(&self, record: &AnchoredRecord, inclusion: Option<&Inclusion>) -> LedgerMessage {
        match inclusion {
            None => LedgerMessage::Anchor(Anchor {
                author: self.author,
                patient: self.patient,
                record_id: record.id.0,
                ciphertext_hash: record.ciphertext_hash,
                category: record.category,
                amends: record.amends.map(|a| a.0).unwrap_or([0; 32]),
            }),
            Some(i) => LedgerMessage::AnchorBatch(AnchorBatch {
                author: self.author,
                patient: self.patient,
                root: i.root,
                count: u32::try_from(i.size).unwrap_or(u32::MAX),
            }),
        }
    }

    /// Checks the signature recovers to the author.
    pub fn verify(&self, record: &AnchoredRecord, inclusion: Option<&Inclusion>) -> Result<(), Tampered> {
        let digest = match self.message(record, inclusion) {
            LedgerMessage::Anchor(m) => self.domain.digest(&m),
            LedgerMessage::AnchorBatch(m) => self.domain.digest(&m),
            _ => return Err(Tampered::BadSignature),
        };
        match recover_strict(&digest, self.signature) {
            Some(signer) if signer == self.author => Ok(()),
            _ => Err(Tampered::BadSignature),
        }
    }
}

/// The check every read makes before a record is decrypted: the envelope
/// received hashes to the name it was asked for; that hash (with the
/// record's id, category and amendment) is what its author signed, alone
/// or as a leaf of a signed batch; and it is what the ledger anchored.
pub fn check_read(
    record: &AnchoredRecord,
    envelope: &[u8],
    inclusion: Option<&Inclusion>,
    ledger: &OnLedger,
    provenance: &Provenance<'_>,
) -> Result<(), Tampered> {
    if crate::envelope::ciphertext_hash(envelope) != record.ciphertext_hash {
        return Err(Tampered::BlobMismatch);
    }
    if let Some(i) = inclusion
        && !merkle::verify_inclusion(i.index, i.size, &record.leaf_hash(), &i.path, &i.root)
    {
        return Err(Tampered::BadProof);
    }
    provenance.verify(record, inclusion)?;
    match (inclusion, ledger) {
        (_, OnLedger::Missing) => Err(Tampered::NotAnchored),
        (None, OnLedger::Record { ciphertext_hash, category }) => {
            if *ciphertext_hash == record.ciphertext_hash && *category == record.category {
                Ok(())
            } else {
                Err(Tampered::LedgerMismatch)
            }
        }
        // The path to the root was checked above.
        (Some(i), OnLedger::Batch { count }) if *count == i.size => Ok(()),
        _ => Err(Tampered::LedgerMismatch),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(i: u8) -> AnchoredRecord {
        AnchoredRecord { id: RecordId([i; 32]), ciphertext_hash: [i ^ 0xff; 32], category: i % 11, amends: None }
    }

    #[test]
    fn one_record_is_a_single_anchor_many_a_batch() {
        let a = Address::repeat_byte(1);
        let Ok(LedgerMessage::Anchor(single)) = anchor_message(a, a, &[record(1)]) else { panic!("single") };
        assert_eq!(single.record_id, [1; 32]);
        assert_eq!(single.amends, [0; 32]);
        let records: Vec<_> = (1..=5).map(record).collect();
        let Ok(LedgerMessage::AnchorBatch(batch)) = anchor_message(a, a, &records) else { panic!("batch") };
        assert_eq!(batch.count, 5);
        let tree = batch_tree(&records).expect("non-empty");
        assert_eq!(batch.root, tree.root());
        for (i, r) in records.iter().enumerate() {
            let proof = tree.proof(i).expect("in range");
            assert!(merkle::verify_inclusion(i as u64, 5, &r.leaf_hash(), &proof, &batch.root));
        }
    }

    fn signed(domain: &Domain, keys: &crate::AccountKeys, message: &LedgerMessage) -> Vec<u8> {
        match message {
            LedgerMessage::Anchor(m) => domain.sign(keys, m),
            LedgerMessage::AnchorBatch(m) => domain.sign(keys, m),
            _ => unreachable!("anchors only"),
        }
    }

    #[test]
    fn reads_are_checked_against_the_signature_and_the_ledger() {
        let keys = crate::AccountSecret::from_bytes([7; 32]).derive();
        let patient = keys.address();
        let domain = Domain::records(31337, Address::repeat_byte(0xcc));
        let envelope = b"an envelope".to_vec();
        let hash = crate::envelope::ciphertext_hash(&envelope);
        let mine = AnchoredRecord { id: RecordId([1; 32]), ciphertext_hash: hash, category: 3, amends: None };
        let sig = signed(&domain, &keys, &anchor_message(patient, patient, &[mine]).expect("one"));
        let by = Provenance { domain: &domain, patient, author: patient, signature: &sig };
        let single = OnLedger::Record { ciphertext_hash: hash, category: 3 };
        assert_eq!(check_read(&mine, &envelope, None, &single, &by), Ok(()));
        let mut flipped = envelope.clone();
        flipped[0] ^= 1;
        assert_eq!(check_read(&mine, &flipped, None, &single, &by), Err(Tampered::BlobMismatch));
        assert_eq!(check_read(&mine, &envelope, None, &OnLedger::Missing, &by), Err(Tampered::NotAnchored));
        let other = OnLedger::Record { ciphertext_hash: [9; 32], category: 3 };
        assert_eq!(check_read(&mine, &envelope, None, &other, &by), Err(Tampered::LedgerMismatch));
        let recategorised = OnLedger::Record { ciphertext_hash: hash, category: 4 };
        assert_eq!(check_read(&mine, &envelope, None, &recategorised, &by), Err(Tampered::LedgerMismatch));

        // A server that relabels the record, marks it as a correction, says
        // someone else wrote it, or sends another signature, is caught even
        // when it also lies about the ledger.
        let mut relabelled = mine;
        relabelled.category = 4;
        let lying = OnLedger::Record { ciphertext_hash: hash, category: 4 };
        assert_eq!(check_read(&relabelled, &envelope, None, &lying, &by), Err(Tampered::BadSignature));
        let mut amended = mine;
        amended.amends = Some(RecordId([2; 32]));
        assert_eq!(check_read(&amended, &envelope, None, &single, &by), Err(Tampered::BadSignature));
        let someone = Address::repeat_byte(9);
        let other_author = Provenance { author: someone, ..by };
        assert_eq!(check_read(&mine, &envelope, None, &single, &other_author), Err(Tampered::BadSignature));
        let other_chart = Provenance { patient: someone, ..by };
        assert_eq!(check_read(&mine, &envelope, None, &single, &other_chart), Err(Tampered::BadSignature));
        let stranger = crate::AccountSecret::from_bytes([8; 32]).derive();
        let forged = signed(&domain, &stranger, &anchor_message(patient, patient, &[mine]).expect("one"));
        let forged_by = Provenance { signature: &forged, ..by };
        assert_eq!(check_read(&mine, &envelope, None, &single, &forged_by), Err(Tampered::BadSignature));
        let other_domain = Domain::records(1, Address::repeat_byte(0xcc));
        let elsewhere = Provenance { domain: &other_domain, ..by };
        assert_eq!(check_read(&mine, &envelope, None, &single, &elsewhere), Err(Tampered::BadSignature));
        let garbage = Provenance { signature: &[1, 2, 3], ..by };
        assert_eq!(check_read(&mine, &envelope, None, &single, &garbage), Err(Tampered::BadSignature));

        let mut batch: Vec<_> = (2..6).map(record).collect();
        batch.insert(2, mine);
        let tree = batch_tree(&batch).expect("non-empty");
        let batch_sig = signed(&domain, &keys, &anchor_message(patient, patient, &batch).expect("batch"));
        let by = Provenance { signature: &batch_sig, ..by };
        let inclusion = Inclusion { root: tree.root(), index: 2, size: 5, path: tree.proof(2).expect("in range") };
        let anchored = OnLedger::Batch { count: 5 };
        assert_eq!(check_read(&mine, &envelope, Some(&inclusion), &anchored, &by), Ok(()));
        assert_eq!(
            check_read(&mine, &envelope, Some(&inclusion), &OnLedger::Batch { count: 6 }, &by),
            Err(Tampered::LedgerMismatch)
        );
        let moved = Inclusion { index: 1, ..inclusion.clone() };
        assert_eq!(check_read(&mine, &envelope, Some(&moved), &anchored, &by), Err(Tampered::BadProof));
        assert_eq!(check_read(&relabelled, &envelope, Some(&inclusion), &anchored, &by), Err(Tampered::BadProof));
        // A made-up batch with a valid proof to its own root: unsigned.
        let fake = batch_tree(&[mine, record(9)]).expect("non-empty");
        let fake_inclusion = Inclusion { root: fake.root(), index: 0, size: 2, path: fake.proof(0).expect("in range") };
        assert_eq!(
            check_read(&mine, &envelope, Some(&fake_inclusion), &OnLedger::Batch { count: 2 }, &by),
            Err(Tampered::BadSignature)
        );
        // A batch record presented as a single anchor, or the reverse.
        assert_eq!(check_read(&mine, &envelope, None, &anchored, &by), Err(Tampered::BadSignature));
        let single_by = Provenance { signature: &sig, ..by };
        assert_eq!(check_read(&mine, &envelope, Some(&inclusion), &single, &single_by), Err(Tampered::BadSignature));
        assert_eq!(check_read(&mine, &envelope, None, &anchored, &single_by), Err(Tampered::LedgerMismatch));
    }

    #[test]
    fn packs_round_trip_and_malformed_ones_are_refused() {
        let mut pack = Vec::new();
        pack_frame(&mut pack, &[1; 32], b"first");
        pack_frame(&mut pack, &[2; 32], b"");
        let frames = parse_pack(&pack).expect("well formed");
        assert_eq!(frames, vec![([1; 32], b"first".as_slice()), ([2; 32], b"".as_slice())]);
        assert_eq!(parse_pack(&[]), Some(vec![]));
        assert_eq!(parse_pack(&pack[..pack.len() - 1]), None, "the last frame cut short");
        assert_eq!(parse_pack(&pack[..40]), None, "a body cut short");
        assert_eq!(parse_pack(&pack[..20]), None, "a header cut short");
        let mut huge = pack.clone();
        huge[32..36].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(parse_pack(&huge), None, "a length past the end");
    }

    #[test]
    fn refuses_what_cannot_be_anchored() {
        let a = Address::zero();
        assert_eq!(anchor_message(a, a, &[]), Err(AnchorError::Empty));
        let mut amended = vec![record(1), record(2)];
        amended[1].amends = Some(RecordId([1; 32]));
        assert_eq!(anchor_message(a, a, &amended), Err(AnchorError::AmendmentInBatch));
        assert_eq!(anchor_message(a, a, &[record(1), record(1)]), Err(AnchorError::Duplicate));
        let too_many: Vec<_> = (0..=MAX_BATCH)
            .map(|i| {
                let mut id = [0; 32];
                id[..8].copy_from_slice(&(i as u64).to_be_bytes());
                AnchoredRecord { id: RecordId(id), ciphertext_hash: [0; 32], category: 0, amends: None }
            })
            .collect();
        assert_eq!(anchor_message(a, a, &too_many), Err(AnchorError::TooMany));
        // A single correction is fine.
        assert!(matches!(anchor_message(a, a, &amended[1..]), Ok(LedgerMessage::Anchor(_))));
    }
}
