//! Every message the ledger's contracts take, each written once with
//! [`typed_message!`](super::typed_message): its struct, its serde form and
//! its EIP-712 type and encoding.

use ethers_core::types::{Address, U256};

use super::{hex32, hex32_list, typed_message};

// ----- Directory: accounts and clinician credentials -----

typed_message!(
    /// An account registering (or rotating) its encryption key.
    Register = "Register(address account,uint8 role,bytes32 encryptionKey,uint256 nonce)" {
        account: Address,
        role: u8,
        #[serde(with = "hex32")]
        encryption_key: [u8; 32],
        nonce: U256,
    }
);

typed_message!(
    /// A credentialing authority issuing (or renewing) a clinician's credential.
    IssueCredential = "IssueCredential(address authority,address clinician,bytes32 licenseIdHash,bytes32 specialty,uint64 expiresAt,uint256 nonce)" {
        authority: Address,
        clinician: Address,
        /// keccak256 of the licence number as issued (the number itself stays off-chain).
        #[serde(with = "hex32")]
        license_id_hash: [u8; 32],
        /// The specialty, UTF-8, right-padded with zeros to 32 bytes.
        #[serde(with = "hex32")]
        specialty: [u8; 32],
        /// Unix seconds.
        expires_at: u64,
        nonce: U256,
    }
);

typed_message!(
    /// The issuing authority revoking a clinician's credential.
    RevokeCredential = "RevokeCredential(address authority,address clinician,uint256 nonce)" {
        authority: Address,
        clinician: Address,
        nonce: U256,
    }
);

// ----- Records: anchors, consents and accesses -----

/// What a grant covers (`Grant.scope`).
pub const SCOPE_RECORDS: u8 = 0;
pub const SCOPE_CATEGORIES: u8 = 1;
pub const SCOPE_EVERYTHING: u8 = 2;

typed_message!(
    /// An author anchoring one record's ciphertext hash. No nonce: the record
    /// id is claimed for good, so the message cannot be replayed.
    Anchor = "Anchor(address author,address patient,bytes32 recordId,bytes32 ciphertextHash,uint8 category,bytes32 amends)" {
        author: Address,
        patient: Address,
        #[serde(with = "hex32")]
        record_id: [u8; 32],
        #[serde(with = "hex32")]
        ciphertext_hash: [u8; 32],
        category: u8,
        /// The record this one corrects, or zero.
        #[serde(with = "hex32")]
        amends: [u8; 32],
    }
);

typed_message!(
    /// An author anchoring a batch of records as one Merkle root (unique,
    /// like a record id: no nonce).
    AnchorBatch = "AnchorBatch(address author,address patient,bytes32 root,uint32 count)" {
        author: Address,
        patient: Address,
        #[serde(with = "hex32")]
        root: [u8; 32],
        count: u32,
    }
);

typed_message!(
    /// A patient's consent: `grantee` may read (and with `write`, add to) the
    /// records in scope until `expires_at`. `nonce` is the pair's consent
    /// nonce (the contract's `consentNonce(patient, grantee)`), shared with
    /// [`Revoke`].
    Grant = "Grant(address patient,address grantee,uint8 scope,uint32 categories,bytes32[] records,bool write,uint64 expiresAt,uint256 nonce)" {
        patient: Address,
        grantee: Address,
        scope: u8,
        /// Bit n set: category n is shared (scope `SCOPE_CATEGORIES`).
        categories: u32,
        /// The records shared (scope `SCOPE_RECORDS`).
        #[serde(with = "hex32_list")]
        records: Vec<[u8; 32]>,
        write: bool,
        expires_at: u64,
        nonce: U256,
    }
);

typed_message!(
    /// The patient stopping a grant.
    Revoke = "Revoke(address patient,address grantee,uint256 nonce)" {
        patient: Address,
        grantee: Address,
        nonce: U256,
    }
);

typed_message!(
    /// A grantee's request to open one record; logged before anything is
    /// released.
    Access = "Access(address grantee,address patient,bytes32 recordId,uint256 nonce)" {
        grantee: Address,
        patient: Address,
        #[serde(with = "hex32")]
        record_id: [u8; 32],
        nonce: U256,
    }
);

// ----- Access (deployed after genesis, ledger/src/node/upgrade.rs): SMART
// Health Links and emergency contacts -----

/// SMART Health Link flags as the contract stores them (bits).
pub const FLAG_LONG_TERM: u8 = 1;
pub const FLAG_PASSCODE: u8 = 2;
pub const FLAG_DIRECT: u8 = 4;

/// The longest wait a patient can set before an emergency request opens.
pub const MAX_WAIT_SECONDS: u32 = 7 * 24 * 3600;

typed_message!(
    /// The patient creating a link (once: the id is claimed for good, so no
    /// nonce), served by `host`, the one address that may log its uses.
    Link = "Link(address patient,bytes32 linkId,bytes32 contentHash,uint64 expiresAt,uint8 flags,address host)" {
        patient: Address,
        #[serde(with = "hex32")]
        link_id: [u8; 32],
        /// A fingerprint of the link's encrypted files.
        #[serde(with = "hex32")]
        content_hash: [u8; 32],
        /// Unix seconds; 0: no expiry.
        expires_at: u64,
        flags: u8,
        /// The host's relayer address (`ledger/info`'s `relayer`).
        host: Address,
    }
);

typed_message!(
    /// The patient changing a link's expiry and (a long-term link's) content;
    /// `nonce` is the link's serial.
    LinkUpdate = "LinkUpdate(address patient,bytes32 linkId,bytes32 contentHash,uint64 expiresAt,uint256 nonce)" {
        patient: Address,
        #[serde(with = "hex32")]
        link_id: [u8; 32],
        /// Zero: the content is unchanged.
        #[serde(with = "hex32")]
        content_hash: [u8; 32],
        expires_at: u64,
        nonce: U256,
    }
);

typed_message!(
    /// The patient stopping a link; `nonce` is the link's serial.
    LinkRevoke = "LinkRevoke(address patient,bytes32 linkId,uint256 nonce)" {
        patient: Address,
        #[serde(with = "hex32")]
        link_id: [u8; 32],
        nonce: U256,
    }
);

typed_message!(
    /// The patient naming an emergency contact, or changing the wait; `nonce`
    /// is the pair's serial.
    EmergencyContact = "EmergencyContact(address patient,address contact,uint32 waitSeconds,uint256 nonce)" {
        patient: Address,
        contact: Address,
        wait_seconds: u32,
        nonce: U256,
    }
);

typed_message!(
    /// The patient removing an emergency contact; `nonce` is the pair's serial.
    EmergencyContactRemove = "EmergencyContactRemove(address patient,address contact,uint256 nonce)" {
        patient: Address,
        contact: Address,
        nonce: U256,
    }
);

typed_message!(
    /// The patient refusing a contact's open request; `nonce` is the pair's serial.
    EmergencyRefusal = "EmergencyRefusal(address patient,address contact,uint256 nonce)" {
        patient: Address,
        contact: Address,
        nonce: U256,
    }
);

typed_message!(
    /// A contact asking for emergency access; `nonce` is the contact's.
    EmergencyRequest = "EmergencyRequest(address contact,address patient,uint256 nonce)" {
        contact: Address,
        patient: Address,
        nonce: U256,
    }
);

typed_message!(
    /// A contact opening the patient's summary after the wait; logged before
    /// anything is released. `nonce` is the contact's.
    EmergencyAccess = "EmergencyAccess(address contact,address patient,uint256 nonce)" {
        contact: Address,
        patient: Address,
        nonce: U256,
    }
);
