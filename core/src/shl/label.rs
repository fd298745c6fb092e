//! A link's label as the host keeps it: sealed in the patient's browser to
//! the patient's own encryption key (a record envelope whose data key is
//! wrapped to them), so the Links page can show "For Dr Rao" on any of the
//! patient's devices while the host holds only ciphertext.

use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};

use crate::envelope::{self, DataKey, RecordId, WrappedKey};
use crate::keys::AccountKeys;

/// The most a sealed label's envelope may hold (a label is at most 80
/// characters, 320 bytes of UTF-8, plus the envelope's framing).
pub const MAX_SEALED_LABEL_BYTES: usize = 1_024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealedLabel {
    /// The label in a record envelope (bound to the link's id).
    #[serde(with = "hex_bytes")]
    pub envelope: Vec<u8>,
    /// Its data key, wrapped to the patient.
    pub key: WrappedKey,
}

impl SealedLabel {
    /// Seals `label` of link `link_id` for `keys`' own account.
    pub fn seal(keys: &AccountKeys, link_id: [u8; 32], label: &str, rng: &mut impl CryptoRngCore) -> Self {
        let data_key = DataKey::generate(rng);
        let id = RecordId(link_id);
        let envelope = envelope::seal(&data_key, id, label.as_bytes(), rng);
        let key = envelope::wrap_key(&data_key, id, keys.address(), &keys.encryption_public(), rng)
            .expect("an account's own encryption key is a valid X25519 key");
        Self { envelope, key }
    }

    /// The label, for the account that sealed it; `None` if it is not
    /// theirs, not this link's, or damaged.
    pub fn open(&self, keys: &AccountKeys, link_id: [u8; 32]) -> Option<String> {
        let id = RecordId(link_id);
        let data_key = envelope::unwrap_key(&self.key, id, keys.address(), keys.encryption_secret()).ok()?;
        let plain = envelope::open(&data_key, id, &self.envelope).ok()?;
        String::from_utf8(plain.to_vec()).ok()
    }
}

mod hex_bytes {
    pub fn serialize<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::value::hex_text(bytes))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
        let digits = text.strip_prefix("0x").ok_or_else(|| serde::de::Error::custom("bytes must start with 0x"))?;
        if digits.len() > 2 * super::MAX_SEALED_LABEL_BYTES {
            return Err(serde::de::Error::custom("a sealed label is at most 1 KiB"));
        }
        hex::decode(digits).map_err(|_| serde::de::Error::custom("bytes must be hexadecimal"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AccountSecret;

    #[test]
    fn only_the_patient_opens_the_label_and_only_for_its_link() {
        let (patient, other) =
            (AccountSecret::from_bytes([1; 32]).derive(), AccountSecret::from_bytes([2; 32]).derive());
        let sealed = SealedLabel::seal(&patient, [7; 32], "For Dr Rao", &mut rand_core::OsRng);
        assert_eq!(sealed.open(&patient, [7; 32]).as_deref(), Some("For Dr Rao"));
        assert_eq!(sealed.open(&other, [7; 32]), None, "another account");
        assert_eq!(sealed.open(&patient, [8; 32]), None, "another link");
        let json = serde_json::to_value(&sealed).unwrap();
        assert_eq!(serde_json::from_value::<SealedLabel>(json.clone()).unwrap(), sealed);
        assert!(!json.to_string().contains("Rao"));
        let mut big = json.clone();
        big["envelope"] = format!("0x{}", "00".repeat(MAX_SEALED_LABEL_BYTES + 1)).into();
        assert!(serde_json::from_value::<SealedLabel>(big).is_err());
        let mut bad = json;
        bad["envelope"] = "00ff".into();
        assert!(serde_json::from_value::<SealedLabel>(bad).is_err());
    }
}
