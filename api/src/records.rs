//! Records: adding them to a chart, listing them with the facts the
//! browser checks before showing one, and the one read check.

use chartkey_core::envelope::{RecordId, WrappedKey};
use chartkey_core::value::{Address, Hash32, Signature};
use serde::{Deserialize, Serialize};

/// One new record: its envelope is already uploaded to the blob store
/// under `blob`; `wrapped_key` is its data key wrapped (HPKE) to the author.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewRecord {
    pub id: RecordId,
    /// SHA-256 of the envelope (its name in the blob store).
    pub blob: Hash32,
    pub category: u8,
    pub amends: Option<RecordId>,
    /// The data key wrapped for its author.
    pub wrapped_key: WrappedKey,
    /// The data key wrapped for the chart's patient, when someone else
    /// writes it (a clinician's write-back).
    #[serde(default)]
    pub patient_wrapped_key: Option<WrappedKey>,
    /// The data key wrapped for clinicians the patient shares this kind of
    /// record with (active category or everything shares), so records
    /// added later are shared too.
    #[serde(default)]
    pub also: Vec<ReaderKey>,
}

/// A data key wrapped for one reader (their ledger address).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReaderKey {
    pub reader: Address,
    pub wrapped_key: WrappedKey,
}

/// Records to add to a chart, with the author's signature of the ledger
/// message that anchors them (`chartkey_core::records::anchor_message`:
/// one record alone, several as one Merkle batch, in this order). The chart
/// is the signed-in patient's own, or with `patient`, that patient's: a
/// clinician writing back one record under a read+write share.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddRecordsBody {
    pub records: Vec<NewRecord>,
    pub signature: Signature,
    /// The patient's address, for a write-back.
    #[serde(default)]
    pub patient: Option<Address>,
}

/// A record's place in a Merkle batch, to check against the batch's root
/// on the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchProof {
    pub root: Hash32,
    pub index: u64,
    pub size: u64,
    /// Audit path, from the leaf's sibling up.
    pub path: Vec<Hash32>,
}

/// What the ledger's Records contract holds for a record, read when the
/// record is listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LedgerAnchor {
    /// Nothing: not (yet) anchored.
    Missing,
    /// A single anchor: the hash, category and author it names.
    Record { ciphertext_hash: Hash32, category: u8, author: Address },
    /// The record's batch root is anchored with this many leaves.
    Batch { count: u64 },
}

/// A record as the server lists it: ciphertext coordinates, the caller's
/// wrapped key, and the anchoring facts to verify before showing it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordMeta {
    pub id: RecordId,
    pub blob: Hash32,
    pub size: u64,
    pub category: u8,
    /// The author's ledger address and display name.
    pub author: Address,
    pub author_name: String,
    pub amends: Option<RecordId>,
    /// Records that correct this one, as the server says; the browser
    /// recomputes this from the verified records.
    pub amended_by: Vec<RecordId>,
    pub created_at: i64,
    /// The data key wrapped for the caller.
    pub wrapped_key: Option<WrappedKey>,
    /// The author's signature of the message that anchored the record (an
    /// `Anchor`, or the `AnchorBatch` of its batch): the browser checks it,
    /// so the server cannot change what it says of a record.
    pub signature: Signature,
    /// The anchoring transaction, once the relayer journalled it.
    pub anchor_tx: Option<Hash32>,
    pub anchor_block: Option<u64>,
    pub batch: Option<BatchProof>,
    pub ledger: LedgerAnchor,
}

/// Limits the browser checks before it starts encrypting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordLimits {
    /// Largest record (encrypted) the server accepts, in bytes.
    pub max_record_bytes: u64,
}

impl RecordMeta {
    /// The one read check, as the browser (and the tests, as it) makes it
    /// before showing a record: the envelope's hash, its audit path and
    /// its author's signature, against what the ledger holds
    /// ([`chartkey_core::records::check_read`]). A chart's records are
    /// written by its `patient`, or (a write-back) by a clinician the
    /// patient let write: then only as a single anchor, whose author the
    /// ledger names too (the contract took it from them only under a
    /// read+write grant).
    pub fn check(
        &self,
        domain: &chartkey_core::eip712::Domain,
        patient: ethers_core::types::Address,
        envelope: &[u8],
    ) -> Result<(), chartkey_core::records::Tampered> {
        use chartkey_core::records::{AnchoredRecord, Inclusion, OnLedger, Provenance, Tampered, check_read};
        let record =
            AnchoredRecord { id: self.id, ciphertext_hash: self.blob.0, category: self.category, amends: self.amends };
        let inclusion = self.batch.as_ref().map(|b| Inclusion {
            root: b.root.0,
            index: b.index,
            size: b.size,
            path: b.path.iter().map(|h| h.0).collect(),
        });
        let on_ledger = match &self.ledger {
            LedgerAnchor::Missing => OnLedger::Missing,
            LedgerAnchor::Record { ciphertext_hash, category, .. } => {
                OnLedger::Record { ciphertext_hash: ciphertext_hash.0, category: *category }
            }
            LedgerAnchor::Batch { count } => OnLedger::Batch { count: *count },
        };
        let named_by_ledger = matches!(&self.ledger, LedgerAnchor::Record { author, .. } if *author == self.author);
        if self.author != patient && !named_by_ledger {
            return Err(Tampered::BadSignature);
        }
        let provenance = Provenance { domain, patient, author: self.author.into(), signature: &self.signature.0 };
        check_read(&record, envelope, inclusion.as_ref(), &on_ledger, &provenance)
    }
}
