//! The values that cross a boundary (browser ↔ server ↔ database ↔ ledger),
//! typed once: each has one text form on the wire and in storage, parsed in
//! one place, so no layer passes hashes, addresses or signatures around as
//! strings and no two layers disagree on how they are written.
//!
//! | type          | bytes | text form                                            |
//! |---------------|-------|------------------------------------------------------|
//! | [`Hash32`]    | 32    | `0x` + 64 lowercase hex digits                       |
//! | [`RecordId`]  | 32    | as [`Hash32`]                                        |
//! | [`Address`]   | 20    | `0x` + 40 lowercase hex ([`Address::checksummed`] to show) |
//! | [`Signature`] | 65    | `0x` + 130 lowercase hex (r ‖ s ‖ v)                 |
//! | [`PublicKey`] | 32    | `0x` + 64 lowercase hex (an X25519 public key)       |
//!
//! Parsing accepts upper- or lowercase digits (and an address in valid
//! EIP-55 mixed case), always with the `0x` prefix; it refuses anything
//! else with a [`ValueError`] that says what was wrong. A record's wrapped
//! data key ([`crate::envelope::WrappedKey`]) is base64url, and a Merkle
//! audit path is a list of [`Hash32`].

use std::fmt;
use std::str::FromStr;

/// Why a text is not the value it should be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("{what} must start with 0x")]
    NoPrefix { what: &'static str },
    #[error("{what} must be hexadecimal")]
    NotHex { what: &'static str },
    #[error("{what} must be {expected} bytes, not {found}")]
    WrongLength { what: &'static str, expected: usize, found: usize },
    #[error("{what} has mixed-case letters that are not its EIP-55 checksum (a mistyped address?)")]
    BadChecksum { what: &'static str },
}

/// `0x`-prefixed hex of exactly `N` bytes, either case.
fn parse_hex<const N: usize>(text: &str, what: &'static str) -> Result<[u8; N], ValueError> {
    let digits = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")).ok_or(ValueError::NoPrefix { what })?;
    if digits.len() != 2 * N {
        let found = digits.len() / 2;
        return Err(if digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            ValueError::WrongLength { what, expected: N, found }
        } else {
            ValueError::NotHex { what }
        });
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(digits, &mut out).map_err(|_| ValueError::NotHex { what })?;
    Ok(out)
}

/// Any bytes as `0x` + lowercase hex, for showing (a revert's argument, an
/// event's field): the one text form, for values with no type of their own.
pub fn hex_text(bytes: &[u8]) -> String {
    struct Hex<'a>(&'a [u8]);
    impl fmt::Display for Hex<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write_hex(f, self.0)
        }
    }
    Hex(bytes).to_string()
}

/// `0x` + lowercase hex.
fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    f.write_str("0x")?;
    for b in bytes {
        write!(f, "{b:02x}")?;
    }
    Ok(())
}

macro_rules! hex_value {
    ($(#[$doc:meta])* $name:ident, $len:expr, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub [u8; $len]);

        impl $name {
            pub const LEN: usize = $len;

            pub fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }

            /// The text form (`0x` + lowercase hex).
            pub fn to_hex(&self) -> String {
                self.to_string()
            }

            /// Parses the text form; `None` for anything else.
            pub fn from_hex(text: &str) -> Option<Self> {
                text.parse().ok()
            }
        }

        impl FromStr for $name {
            type Err = ValueError;
            fn from_str(text: &str) -> Result<Self, ValueError> {
                parse_hex::<$len>(text, $what).map(Self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write_hex(f, &self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self)
            }
        }

        impl From<[u8; $len]> for $name {
            fn from(bytes: [u8; $len]) -> Self {
                Self(bytes)
            }
        }

        impl From<$name> for [u8; $len] {
            fn from(value: $name) -> Self {
                value.0
            }
        }

        impl AsRef<[u8]> for $name {
            fn as_ref(&self) -> &[u8] {
                &self.0
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

hex_value!(
    /// A SHA-256 or Keccak-256 hash: an envelope's fingerprint, a Merkle
    /// root or node, a transaction or block hash.
    Hash32,
    32,
    "a hash"
);

hex_value!(
    /// A record's id: 32 random bytes, made by its author's browser.
    RecordId,
    32,
    "a record id"
);

hex_value!(
    /// A secp256k1 signature in Ethereum's r ‖ s ‖ v form (v = 27 or 28 for
    /// the ones Chartkey makes). Whether it is canonical and whose it is are
    /// checked where it is verified ([`crate::directory::recover_strict`]).
    Signature,
    65,
    "a signature"
);

hex_value!(
    /// An account's X25519 encryption public key (what data keys are
    /// wrapped to).
    PublicKey,
    32,
    "an encryption key"
);

impl Hash32 {
    pub const ZERO: Self = Self([0; 32]);
}

impl RecordId {
    pub fn generate(rng: &mut impl rand_core::CryptoRngCore) -> Self {
        let mut id = [0u8; 32];
        rng.fill_bytes(&mut id);
        Self(id)
    }
}

impl Signature {
    pub fn to_ethers(&self) -> Option<ethers_core::types::Signature> {
        ethers_core::types::Signature::try_from(&self.0[..]).ok()
    }
}

impl From<ethers_core::types::Signature> for Signature {
    fn from(signature: ethers_core::types::Signature) -> Self {
        Self(signature.into())
    }
}

/// A 20-byte Ethereum account or contract address. Stored and sent in one
/// form, lowercase; shown to people with its EIP-55 checksum.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Address(pub [u8; 20]);

impl Address {
    pub const ZERO: Self = Self([0; 20]);

    pub fn as_bytes(&self) -> &[u8; 20] {
        &self.0
    }

    /// EIP-55 mixed case, for people to read and compare.
    pub fn checksummed(&self) -> String {
        ethers_core::utils::to_checksum(&ethers_core::types::Address::from(self.0), None)
    }

    /// `0x1234…abcd`: enough for a person to tell addresses apart on screen.
    pub fn short(&self) -> String {
        let full = self.checksummed();
        format!("{}…{}", &full[..6], &full[full.len() - 4..])
    }

    /// Parses the text form; `None` for anything else.
    pub fn from_hex(text: &str) -> Option<Self> {
        text.parse().ok()
    }
}

impl FromStr for Address {
    type Err = ValueError;
    fn from_str(text: &str) -> Result<Self, ValueError> {
        const WHAT: &str = "an address";
        let bytes = parse_hex::<20>(text, WHAT)?;
        let address = Self(bytes);
        let digits = &text[2..];
        let mixed = digits.bytes().any(|b| b.is_ascii_lowercase()) && digits.bytes().any(|b| b.is_ascii_uppercase());
        if mixed && address.checksummed()[2..] != *digits {
            return Err(ValueError::BadChecksum { what: WHAT });
        }
        Ok(address)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Address({self})")
    }
}

impl From<ethers_core::types::Address> for Address {
    fn from(address: ethers_core::types::Address) -> Self {
        Self(address.0)
    }
}

impl From<Address> for ethers_core::types::Address {
    fn from(address: Address) -> Self {
        Self(address.0)
    }
}

impl PartialEq<ethers_core::types::Address> for Address {
    fn eq(&self, other: &ethers_core::types::Address) -> bool {
        self.0 == other.0
    }
}

impl serde::Serialize for Address {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Address {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A field of a contract event as it crosses the API (the Ledger page's
/// explorer): typed where a value type fits, a decimal string for numbers
/// (a `uint256` outgrows any JSON number). [`fmt::Display`] is how people
/// read it: addresses checksummed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum FieldValue {
    Address(Address),
    /// A `bytes32` (a record id, a hash, a root).
    Bytes32(Hash32),
    /// Any other bytes, as `0x` hex.
    Bytes(#[serde(with = "hex_bytes")] Vec<u8>),
    /// An integer, in decimal.
    Number(String),
    Bool(bool),
    Text(String),
    List(Vec<FieldValue>),
}

impl fmt::Display for FieldValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Address(a) => f.write_str(&a.checksummed()),
            Self::Bytes32(h) => write!(f, "{h}"),
            Self::Bytes(b) => f.write_str(&hex_text(b)),
            Self::Number(n) | Self::Text(n) => f.write_str(n),
            Self::Bool(b) => write!(f, "{b}"),
            Self::List(items) => {
                let shown: Vec<String> = items.iter().map(ToString::to_string).collect();
                write!(f, "[{}]", shown.join(", "))
            }
        }
    }
}

/// `0x` hex of any length, for [`FieldValue::Bytes`].
mod hex_bytes {
    pub fn serialize<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::hex_text(bytes))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
        let digits = text.strip_prefix("0x").ok_or_else(|| serde::de::Error::custom("bytes must start with 0x"))?;
        hex::decode(digits).map_err(|_| serde::de::Error::custom("bytes must be hexadecimal"))
    }
}

/// Each value is stored as its one text form: through sqlx (every engine
/// whose `String` binds and decodes: SQLite, PostgreSQL, Any; feature
/// `sqlx`) and through rusqlite (feature `rusqlite`). For any type with
/// that `Display`/`FromStr` pair (envelope's `WrappedKey` too).
macro_rules! text_columns {
    ($($name:ty),*) => {$(
        #[cfg(feature = "sqlx")]
        impl<DB: sqlx::Database> sqlx::Type<DB> for $name
        where
            String: sqlx::Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <String as sqlx::Type<DB>>::type_info()
            }
            fn compatible(ty: &DB::TypeInfo) -> bool {
                <String as sqlx::Type<DB>>::compatible(ty)
            }
        }

        #[cfg(feature = "sqlx")]
        impl<'q, DB: sqlx::Database> sqlx::Encode<'q, DB> for $name
        where
            String: sqlx::Encode<'q, DB>,
        {
            fn encode_by_ref(
                &self,
                buf: &mut DB::ArgumentBuffer,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                self.to_string().encode(buf)
            }
        }

        #[cfg(feature = "sqlx")]
        impl<'r, DB: sqlx::Database> sqlx::Decode<'r, DB> for $name
        where
            String: sqlx::Decode<'r, DB>,
        {
            fn decode(value: DB::ValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
                Ok(<String as sqlx::Decode<'r, DB>>::decode(value)?.parse()?)
            }
        }

        #[cfg(feature = "rusqlite")]
        impl rusqlite::types::ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
                Ok(rusqlite::types::ToSqlOutput::from(self.to_string()))
            }
        }

        #[cfg(feature = "rusqlite")]
        impl rusqlite::types::FromSql for $name {
            fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
                value.as_str()?.parse().map_err(|e| rusqlite::types::FromSqlError::Other(Box::new(e)))
            }
        }
    )*};
}
pub(crate) use text_columns;

text_columns!(Hash32, RecordId, Signature, PublicKey, Address);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_round_trip_in_one_form() {
        let h = Hash32([0xab; 32]);
        let text = h.to_string();
        assert_eq!(text, format!("0x{}", "ab".repeat(32)));
        assert_eq!(text.parse::<Hash32>().unwrap(), h);
        assert_eq!(text.to_uppercase().replacen("0X", "0x", 1).parse::<Hash32>().unwrap(), h, "either case");
        assert_eq!(serde_json::to_string(&h).unwrap(), format!("\"{text}\""));
        assert_eq!(serde_json::from_str::<Hash32>(&format!("\"{text}\"")).unwrap(), h);
    }

    #[test]
    fn event_fields_travel_typed_and_read_as_people_read_them() {
        let address: Address = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed".parse().unwrap();
        let fields = vec![
            FieldValue::Address(address),
            FieldValue::Bytes32(Hash32([1; 32])),
            FieldValue::Bytes(vec![0xab, 0xcd]),
            FieldValue::Number("340282366920938463463374607431768211456".into()),
            FieldValue::Bool(true),
            FieldValue::List(vec![FieldValue::Number("1".into()), FieldValue::Number("2".into())]),
        ];
        let json = serde_json::to_value(&fields).unwrap();
        assert_eq!(json[0], serde_json::json!({ "type": "address", "value": address.to_string() }));
        assert_eq!(json[2], serde_json::json!({ "type": "bytes", "value": "0xabcd" }));
        assert_eq!(serde_json::from_value::<Vec<FieldValue>>(json).unwrap(), fields);
        assert_eq!(fields[0].to_string(), "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed");
        assert_eq!(fields[5].to_string(), "[1, 2]");
        assert!(serde_json::from_value::<FieldValue>(serde_json::json!({ "type": "bytes", "value": "abcd" })).is_err());
        assert!(
            serde_json::from_value::<FieldValue>(serde_json::json!({ "type": "address", "value": "0x12" })).is_err()
        );
    }

    #[test]
    fn any_bytes_show_as_0x_hex() {
        assert_eq!(hex_text(&[]), "0x");
        assert_eq!(hex_text(&[0, 0xab, 0x10]), "0x00ab10");
    }

    #[test]
    fn malformed_values_are_refused_with_a_reason() {
        let what = "a hash";
        assert_eq!("ab".repeat(32).parse::<Hash32>(), Err(ValueError::NoPrefix { what }));
        assert_eq!(
            format!("0x{}", "ab".repeat(31)).parse::<Hash32>(),
            Err(ValueError::WrongLength { what, expected: 32, found: 31 })
        );
        assert_eq!(
            format!("0x{}", "ab".repeat(33)).parse::<Hash32>(),
            Err(ValueError::WrongLength { what, expected: 32, found: 33 })
        );
        assert_eq!(format!("0x{}zz", "ab".repeat(31)).parse::<Hash32>(), Err(ValueError::NotHex { what }));
        assert_eq!(format!("0x{}é", "a".repeat(62)).parse::<Hash32>(), Err(ValueError::NotHex { what }));
        assert!("".parse::<Hash32>().is_err());
        assert!("0x".parse::<Signature>().is_err());
        assert!(format!("0x{}", "00".repeat(64)).parse::<Signature>().is_err(), "64 bytes is not a signature");
        assert!(serde_json::from_str::<Hash32>("42").is_err());
        assert!(serde_json::from_str::<Address>("\"0x1234\"").is_err());
        assert!(serde_json::from_str::<RecordId>("null").is_err());
    }

    #[test]
    fn addresses_have_one_stored_form_and_a_checksummed_one_to_show() {
        // EIP-55's own example.
        let shown = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";
        let a: Address = shown.parse().unwrap();
        assert_eq!(a.to_string(), shown.to_lowercase());
        assert_eq!(a.checksummed(), shown);
        assert_eq!(a.short(), "0x5aAe…eAed");
        assert_eq!(shown.to_lowercase().parse::<Address>().unwrap(), a);
        assert_eq!(format!("0x{}", shown[2..].to_uppercase()).parse::<Address>().unwrap(), a);
        assert_eq!(
            "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD".parse::<Address>(),
            Err(ValueError::BadChecksum { what: "an address" }),
            "one letter's case off"
        );
        assert_eq!(serde_json::to_value(a).unwrap(), serde_json::json!(shown.to_lowercase()));
        let ethers: ethers_core::types::Address = a.into();
        assert_eq!(Address::from(ethers), a);
        assert_eq!(a, ethers);
    }

    #[test]
    fn signatures_convert_to_and_from_ethers() {
        let keys = crate::AccountSecret::from_bytes([7; 32]).derive();
        let signed = crate::directory::sign_digest(keys.signing_key(), &[1; 32]);
        let ours = Signature::from(signed);
        assert_eq!(ours.0[64], signed.v as u8);
        assert_eq!(ours.to_ethers(), Some(signed));
        assert_eq!(ours.to_string().len(), 2 + 130);
    }
}
