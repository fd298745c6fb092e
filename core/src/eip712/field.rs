//! How a message's field values encode for EIP-712, and [`typed_message!`],
//! which writes a message struct and its [`TypedMessage`](super::TypedMessage)
//! from one field list, so the type string, the struct and the encoding
//! cannot drift apart (a test checks every type string against ethers' own
//! EIP-712 code).

use ethers_core::abi::Token;
use ethers_core::types::{Address, U256};
use ethers_core::utils::keccak256;

/// A value as its EIP-712 encoding.
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

impl Field for bool {
    fn token(&self) -> Token {
        Token::Bool(*self)
    }
}

impl Field for [u8; 32] {
    fn token(&self) -> Token {
        Token::FixedBytes(self.to_vec())
    }
}

/// `bytes32[]`: keccak256 of the concatenated elements, as EIP-712 encodes
/// arrays.
impl Field for Vec<[u8; 32]> {
    fn token(&self) -> Token {
        let bytes: Vec<u8> = self.iter().flatten().copied().collect();
        Token::FixedBytes(keccak256(bytes).to_vec())
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

/// `Name = "Name(type field,…)" { field: Type, … }`: the struct (serde,
/// unknown fields refused) and its `TypedMessage`, whose fields encode in
/// the order listed.
macro_rules! typed_message {
    ($(#[$doc:meta])* $name:ident = $type:literal { $($(#[$attr:meta])* $field:ident: $ty:ty),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            $($(#[$attr])* pub $field: $ty),*
        }

        impl $crate::eip712::TypedMessage for $name {
            const TYPE: &'static str = $type;
            fn fields(&self) -> Vec<ethers_core::abi::Token> {
                vec![$($crate::eip712::Field::token(&self.$field)),*]
            }
        }
    };
}
pub(crate) use typed_message;
