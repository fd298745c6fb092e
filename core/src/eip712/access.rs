//! Messages of the Access contract (SMART Health Links and emergency
//! contacts), deployed after genesis (ledger/src/node/upgrade.rs).
//!
//! Each message is a plain struct whose EIP-712 fields are its fields in
//! order; [`access_message!`] writes the struct and its [`TypedMessage`]
//! from one list, so the type string and the encoding cannot drift apart
//! (a test checks every type string against ethers' own EIP-712 code).

use ethers_core::abi::Token;
use ethers_core::types::{Address, U256};
use serde::{Deserialize, Serialize};

use super::{TypedMessage, hex32};

/// A value as its EIP-712 encoding (static types only).
pub trait Field {
    fn token(&self) -> Token;
}

impl Field for Address {
    fn token(&self) -> Token {
        Token::Address(*self)
    }
}

impl Field for U256 {
    fn token(&self) -> Token {
        Token::Uint(*self)
    }
}

impl Field for [u8; 32] {
    fn token(&self) -> Token {
        Token::FixedBytes(self.to_vec())
    }
}

macro_rules! uint_field {
    ($($ty:ty),*) => {$(
        impl Field for $ty {
            fn token(&self) -> Token {
                Token::Uint(U256::from(*self))
            }
        }
    )*};
}
uint_field!(u8, u32, u64);

macro_rules! access_message {
    ($(#[$doc:meta])* $name:ident = $type:literal { $($(#[$attr:meta])* $field:ident: $ty:ty),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            $($(#[$attr])* pub $field: $ty),*
        }

        impl TypedMessage for $name {
            const TYPE: &'static str = $type;
            fn fields(&self) -> Vec<Token> {
                vec![$(Field::token(&self.$field)),*]
            }
        }
    };
}

/// SMART Health Link flags as the contract stores them (bits).
pub const FLAG_LONG_TERM: u8 = 1;
pub const FLAG_PASSCODE: u8 = 2;
pub const FLAG_DIRECT: u8 = 4;

/// The longest wait a patient can set before an emergency request opens.
pub const MAX_WAIT_SECONDS: u32 = 7 * 24 * 3600;

access_message!(
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

access_message!(
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

access_message!(
    /// The patient stopping a link; `nonce` is the link's serial.
    LinkRevoke = "LinkRevoke(address patient,bytes32 linkId,uint256 nonce)" {
        patient: Address,
        #[serde(with = "hex32")]
        link_id: [u8; 32],
        nonce: U256,
    }
);

access_message!(
    /// The patient naming an emergency contact, or changing the wait; `nonce`
    /// is the pair's serial.
    EmergencyContact = "EmergencyContact(address patient,address contact,uint32 waitSeconds,uint256 nonce)" {
        patient: Address,
        contact: Address,
        wait_seconds: u32,
        nonce: U256,
    }
);

access_message!(
    /// The patient removing an emergency contact; `nonce` is the pair's serial.
    EmergencyContactRemove = "EmergencyContactRemove(address patient,address contact,uint256 nonce)" {
        patient: Address,
        contact: Address,
        nonce: U256,
    }
);

access_message!(
    /// The patient refusing a contact's open request; `nonce` is the pair's serial.
    EmergencyRefusal = "EmergencyRefusal(address patient,address contact,uint256 nonce)" {
        patient: Address,
        contact: Address,
        nonce: U256,
    }
);

access_message!(
    /// A contact asking for emergency access; `nonce` is the contact's.
    EmergencyRequest = "EmergencyRequest(address contact,address patient,uint256 nonce)" {
        contact: Address,
        patient: Address,
        nonce: U256,
    }
);

access_message!(
    /// A contact opening the patient's summary after the wait; logged before
    /// anything is released. `nonce` is the contact's.
    EmergencyAccess = "EmergencyAccess(address contact,address patient,uint256 nonce)" {
        contact: Address,
        patient: Address,
        nonce: U256,
    }
);
