//! What only the patient may know of a link, as the host keeps it: its
//! label, the secret of its URL and its key, sealed in the patient's
//! browser to the patient's own encryption key (a record envelope whose
//! data key is wrapped to them). So the Links page can show "For Dr Rao",
//! show the link again and update a long-term link's files on any of the
//! patient's devices, while the host holds only ciphertext.

use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};

use super::{LinkKey, ManifestId};
use crate::envelope::{self, DataKey, RecordId, WrappedKey};
use crate::keys::AccountKeys;

/// The most a sealed link's envelope may hold (a label of at most 80
/// characters, the URL's secret and the key, as JSON, plus the envelope's
/// framing).
pub const MAX_SEALED_LINK_BYTES: usize = 1_024;

/// A link's secrets, as the patient's browser holds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkSecrets {
    pub label: String,
    pub manifest: ManifestId,
    pub key: LinkKey,
    /// What it carries, to make it again for an update: the patient
    /// summary (`None`) or the records of these kinds (bit n: category n).
    pub kinds: Option<u32>,
}

/// Their sealed form (JSON `{"label", "manifest", "key"}` inside).
#[derive(Serialize, Deserialize)]
struct SecretsJson {
    label: String,
    manifest: String,
    key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kinds: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealedLink {
    /// The secrets in a record envelope (bound to the link's id).
    #[serde(with = "hex_bytes")]
    pub envelope: Vec<u8>,
    /// Its data key, wrapped to the patient.
    pub key: WrappedKey,
}

impl SealedLink {
    /// Seals `secrets` of link `link_id` for `keys`' own account.
    pub fn seal(keys: &AccountKeys, link_id: [u8; 32], secrets: &LinkSecrets, rng: &mut impl CryptoRngCore) -> Self {
        let json = zeroize::Zeroizing::new(
            serde_json::to_vec(&SecretsJson {
                label: secrets.label.clone(),
                manifest: secrets.manifest.to_text(),
                key: secrets.key.to_text(),
                kinds: secrets.kinds,
            })
            .expect("secrets serialise"),
        );
        let data_key = DataKey::generate(rng);
        let id = RecordId(link_id);
        let envelope = envelope::seal(&data_key, id, &json, rng);
        let key = envelope::wrap_key(&data_key, id, keys.address(), &keys.encryption_public(), rng)
            .expect("an account's own encryption key is a valid X25519 key");
        Self { envelope, key }
    }

    /// The secrets, for the account that sealed them; `None` if they are
    /// not theirs, not this link's (its id must be the manifest's hash), or
    /// damaged.
    pub fn open(&self, keys: &AccountKeys, link_id: [u8; 32]) -> Option<LinkSecrets> {
        let id = RecordId(link_id);
        let data_key = envelope::unwrap_key(&self.key, id, keys.address(), keys.encryption_secret()).ok()?;
        let plain = envelope::open(&data_key, id, &self.envelope).ok()?;
        let json: SecretsJson = serde_json::from_slice(&plain).ok()?;
        let manifest = ManifestId::parse(&json.manifest).ok()?;
        if manifest.link_id() != link_id {
            return None;
        }
        Some(LinkSecrets { label: json.label, manifest, key: LinkKey::from_text(&json.key).ok()?, kinds: json.kinds })
    }
}

mod hex_bytes {
    pub fn serialize<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::value::hex_text(bytes))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
        let digits = text.strip_prefix("0x").ok_or_else(|| serde::de::Error::custom("bytes must start with 0x"))?;
        if digits.len() > 2 * super::MAX_SEALED_LINK_BYTES {
            return Err(serde::de::Error::custom("a sealed link is at most 1 KiB"));
        }
        hex::decode(digits).map_err(|_| serde::de::Error::custom("bytes must be hexadecimal"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AccountSecret;

    #[test]
    fn only_the_patient_opens_the_secrets_and_only_for_their_link() {
        let (patient, other) =
            (AccountSecret::from_bytes([1; 32]).derive(), AccountSecret::from_bytes([2; 32]).derive());
        let manifest = ManifestId::generate(&mut rand_core::OsRng);
        let secrets = LinkSecrets {
            label: "For Dr Rao".into(),
            manifest,
            key: LinkKey::generate(&mut rand_core::OsRng),
            kinds: Some(0b1001),
        };
        let id = manifest.link_id();
        let sealed = SealedLink::seal(&patient, id, &secrets, &mut rand_core::OsRng);
        assert_eq!(sealed.open(&patient, id), Some(secrets.clone()));
        assert_eq!(sealed.open(&other, id), None, "another account");
        assert_eq!(sealed.open(&patient, [8; 32]), None, "another link");
        // Sealed under another link's id: refused, even by its owner.
        let elsewhere = SealedLink::seal(&patient, [9; 32], &secrets, &mut rand_core::OsRng);
        assert_eq!(elsewhere.open(&patient, [9; 32]), None, "the manifest must hash to the link id");
        let json = serde_json::to_value(&sealed).unwrap();
        assert_eq!(serde_json::from_value::<SealedLink>(json.clone()).unwrap(), sealed);
        assert!(!json.to_string().contains("Rao"));
        let mut big = json.clone();
        big["envelope"] = format!("0x{}", "00".repeat(MAX_SEALED_LINK_BYTES + 1)).into();
        assert!(serde_json::from_value::<SealedLink>(big).is_err());
        let mut bad = json;
        bad["envelope"] = "00ff".into();
        assert!(serde_json::from_value::<SealedLink>(bad).is_err());
    }
}
