//! SMART Health Links (HL7 "SMART Health Cards and Links" IG, v1.0.0
//! STU1): the link a patient hands over, and the encrypted files behind it.
//!
//! A link is `shlink:/` and the base64url of a JSON payload: the manifest's
//! URL, a 32-byte key, and optionally an expiry, flags (`L` long-term, `P`
//! passcode, `U` direct file) and a label. The key travels only in the link
//! (in a URL's fragment when a viewer prefix is used, which browsers never
//! send), so the host that serves the files holds ciphertext only. Each
//! file is a JWE in compact serialisation with `alg: dir`, `enc: A256GCM`
//! and `cty` naming what is inside (RFC 7516); a receiver decrypts it with
//! any JOSE library.
//!
//! Everything read from outside (a pasted link, a manifest, a JWE) is
//! checked here before use: sizes are capped before decoding, and a
//! compressed file (`zip: DEF`) is inflated only up to [`MAX_FILE_BYTES`].

use aes_gcm::aead::{Aead, KeyInit, Payload as AeadPayload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};

mod content;
mod sealed;
pub use content::{collection, qr_svg};
pub use sealed::{LinkSecrets, MAX_SEALED_LINK_BYTES, SealedLink};

/// What a link starts with (after any viewer prefix and `#`).
pub const LINK_SCHEME: &str = "shlink:/";
/// The longest label a link may carry, in characters.
pub const MAX_LABEL_CHARS: usize = 80;
/// The longest manifest URL, in characters (the IG's limit, which keeps
/// the QR code readable).
pub const MAX_URL_CHARS: usize = 128;
/// The longest link text read (a payload is a few hundred characters).
pub const MAX_LINK_CHARS: usize = 2_048;
/// The most a file may hold once decrypted (and inflated).
pub const MAX_FILE_BYTES: usize = 16 * 1024 * 1024;
/// The longest JWE read: the largest file, base64url-encoded, and a header.
pub const MAX_JWE_CHARS: usize = MAX_FILE_BYTES / 3 * 4 + 4_096;

/// Where a portal serves its link viewer: links are shown as
/// `<origin>/view#shlink:/…`.
pub const VIEWER_PATH: &str = "/view";

/// FHIR content (a resource or a Bundle), as the IG names it.
pub const FHIR_JSON: &str = "application/fhir+json";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShlError {
    #[error("This is not a SMART Health Link (it should contain \"shlink:/\").")]
    NotALink,
    #[error("This SMART Health Link is damaged or incomplete ({0}). Ask for the link again.")]
    Malformed(&'static str),
    #[error("This SMART Health Link uses a version this viewer does not know.")]
    UnknownVersion,
    #[error(
        "A file of this SMART Health Link is damaged or was encrypted in a way this viewer does not support ({0})."
    )]
    BadFile(&'static str),
    #[error(
        "A file of this SMART Health Link could not be decrypted with the link's key: the link or the file was altered."
    )]
    WrongKey,
    #[error("A file of this SMART Health Link is larger than this viewer opens.")]
    TooLarge,
}

crate::keys::secret_bytes!(
    /// The link's 32-byte key (AES-256-GCM): made in the patient's browser,
    /// never sent to the server.
    LinkKey
);

impl LinkKey {
    /// The payload's form: 43 characters of base64url.
    fn to_text(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    fn from_text(text: &str) -> Result<Self, ShlError> {
        if text.len() != 43 {
            return Err(ShlError::Malformed("key"));
        }
        let bytes = zeroize::Zeroizing::new(URL_SAFE_NO_PAD.decode(text).map_err(|_| ShlError::Malformed("key"))?);
        let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| ShlError::Malformed("key"))?;
        Ok(Self(key))
    }
}

/// The link's flags.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flags {
    /// `L`: long-term; the manifest may be asked again and its files may
    /// change.
    pub long_term: bool,
    /// `P`: the manifest asks for a passcode.
    pub passcode: bool,
    /// `U`: the URL answers a GET with the one encrypted file itself.
    pub direct: bool,
}

impl Flags {
    /// The `flag` text: the letters set, in alphabetical order; none when
    /// no flag is set.
    fn to_text(self) -> Option<String> {
        let text: String = [(self.long_term, 'L'), (self.passcode, 'P'), (self.direct, 'U')]
            .iter()
            .filter_map(|&(set, letter)| set.then_some(letter))
            .collect();
        (!text.is_empty()).then_some(text)
    }

    /// Reads a `flag` text: known letters, each once, in alphabetical order;
    /// a direct file cannot need a passcode.
    fn from_text(text: &str) -> Result<Self, ShlError> {
        let mut flags = Self::default();
        let mut last = '\0';
        for letter in text.chars() {
            if letter <= last {
                return Err(ShlError::Malformed("flags out of order"));
            }
            last = letter;
            match letter {
                'L' => flags.long_term = true,
                'P' => flags.passcode = true,
                'U' => flags.direct = true,
                _ => return Err(ShlError::Malformed("unknown flag")),
            }
        }
        flags.check()?;
        Ok(flags)
    }

    fn check(self) -> Result<(), ShlError> {
        if self.direct && self.passcode {
            return Err(ShlError::Malformed("a direct file cannot need a passcode"));
        }
        Ok(())
    }

    /// The flags as the Access contract stores them (bit 0 `L`, 1 `P`, 2 `U`).
    pub fn bits(self) -> u8 {
        u8::from(self.long_term) | u8::from(self.passcode) << 1 | u8::from(self.direct) << 2
    }

    /// The contract's bits read back; `None` for bits it would refuse.
    pub fn from_bits(bits: u8) -> Option<Self> {
        let flags = Self { long_term: bits & 1 != 0, passcode: bits & 2 != 0, direct: bits & 4 != 0 };
        (bits < 8 && flags.check().is_ok()).then_some(flags)
    }
}

/// The secret in a manifest's URL (`…/shl/<43 characters>`): 32 random
/// bytes made in the patient's browser. The host and the ledger know the
/// link by [`Self::link_id`], its keccak256, so neither the chain nor a
/// copy of the host's database gives anyone a working manifest URL.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ManifestId([u8; 32]);

impl ManifestId {
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        let mut id = [0u8; 32];
        rng.fill_bytes(&mut id);
        Self(id)
    }

    /// The URL's last segment.
    pub fn to_text(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    pub fn parse(text: &str) -> Result<Self, ShlError> {
        if text.len() != 43 {
            return Err(ShlError::Malformed("manifest id"));
        }
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| ShlError::Malformed("manifest id"))?;
        Ok(Self(bytes.try_into().map_err(|_| ShlError::Malformed("manifest id"))?))
    }

    /// The link's id on the ledger and at the host.
    pub fn link_id(&self) -> [u8; 32] {
        ethers_core::utils::keccak256(self.0)
    }
}

impl std::fmt::Debug for ManifestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ManifestId(…)")
    }
}

/// The fingerprint of a link's files that the patient signs into the
/// ledger (`Link.contentHash`): SHA-256 over, for each file in order, the
/// SHA-256 of its content type and the SHA-256 of its JWE text.
pub fn content_hash<'a>(files: impl IntoIterator<Item = (&'a str, &'a str)>) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut all = Sha256::new();
    for (content_type, jwe) in files {
        all.update(Sha256::digest(content_type.as_bytes()));
        all.update(Sha256::digest(jwe.as_bytes()));
    }
    all.finalize().into()
}

/// A SMART Health Link, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The manifest's URL (or, with [`Flags::direct`], the file's).
    pub url: String,
    pub key: LinkKey,
    /// Unix seconds after which the link no longer opens.
    pub expires: Option<u64>,
    pub flags: Flags,
    pub label: Option<String>,
}

/// The payload as JSON (the IG's field names).
#[derive(Serialize, Deserialize)]
struct PayloadJson {
    url: String,
    key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    exp: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    flag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    v: Option<u32>,
}

impl Link {
    /// Checks what the IG requires of a payload: an https URL of at most
    /// 128 characters (http only to this machine, for tests and a local
    /// install), a label of at most 80 characters without control
    /// characters, and consistent flags.
    pub fn check(&self) -> Result<(), ShlError> {
        check_url(&self.url)?;
        if let Some(label) = &self.label
            && (label.chars().count() > MAX_LABEL_CHARS || label.chars().any(char::is_control))
        {
            return Err(ShlError::Malformed("label"));
        }
        self.flags.check()
    }

    /// `shlink:/…`, the link itself.
    pub fn to_link(&self) -> String {
        let payload = PayloadJson {
            url: self.url.clone(),
            key: self.key.to_text(),
            // Whole seconds: exact as a JSON number.
            exp: self.expires.map(|e| e as f64),
            flag: self.flags.to_text(),
            label: self.label.clone(),
            v: None,
        };
        let json = serde_json::to_vec(&payload).expect("a payload always serialises");
        format!("{LINK_SCHEME}{}", URL_SAFE_NO_PAD.encode(json))
    }

    /// The link behind a viewer's address (`https://viewer/#shlink:/…`):
    /// the part after `#` never reaches the viewer's server.
    pub fn with_viewer(&self, viewer: &str) -> String {
        format!("{viewer}#{}", self.to_link())
    }

    /// Reads a link as pasted, scanned or opened: `shlink:/…` on its own or
    /// after a viewer's address and `#`.
    pub fn parse(text: &str) -> Result<Self, ShlError> {
        let text = text.trim();
        if text.len() > MAX_LINK_CHARS {
            return Err(ShlError::Malformed("too long"));
        }
        let start = text.find(LINK_SCHEME).ok_or(ShlError::NotALink)?;
        if start > 0 && !text[..start].ends_with('#') {
            return Err(ShlError::NotALink);
        }
        let encoded = &text[start + LINK_SCHEME.len()..];
        let json = URL_SAFE_NO_PAD.decode(encoded).map_err(|_| ShlError::Malformed("not base64url"))?;
        let payload: PayloadJson = serde_json::from_slice(&json).map_err(|_| ShlError::Malformed("payload"))?;
        if payload.v.is_some_and(|v| v != 1) {
            return Err(ShlError::UnknownVersion);
        }
        let expires = match payload.exp {
            None => None,
            Some(exp) if (0.0..1e15).contains(&exp) => Some(exp.floor() as u64),
            Some(_) => return Err(ShlError::Malformed("expiry")),
        };
        let flags = Flags::from_text(payload.flag.as_deref().unwrap_or(""))?;
        let link =
            Self { url: payload.url, key: LinkKey::from_text(&payload.key)?, expires, flags, label: payload.label };
        link.check()?;
        Ok(link)
    }

    /// Whether the link has expired at `now` (Unix seconds).
    pub fn expired_at(&self, now: u64) -> bool {
        self.expires.is_some_and(|e| now > e)
    }
}

fn check_url(url: &str) -> Result<(), ShlError> {
    let bad = ShlError::Malformed("url");
    if url.chars().count() > MAX_URL_CHARS || !url.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad);
    }
    let (scheme, rest) = url.split_once("://").ok_or(bad.clone())?;
    let host_and_port = rest.split(['/', '?', '#']).next().unwrap_or("");
    // `[v6]:port`, or `host:port`; the port, if any, is digits.
    let split = match host_and_port.strip_prefix('[').and_then(|r| r.find(']')) {
        Some(end) => end + 2,
        None => host_and_port.find(':').unwrap_or(host_and_port.len()),
    };
    let (host, port) = host_and_port.split_at(split);
    let port_ok =
        port.is_empty() || port.len() > 1 && port.starts_with(':') && port[1..].bytes().all(|b| b.is_ascii_digit());
    if !port_ok || host.is_empty() || host.contains('@') {
        return Err(bad);
    }
    let loopback = matches!(host, "localhost" | "127.0.0.1" | "[::1]");
    let ok = match scheme {
        "https" => true,
        "http" => loopback,
        _ => false,
    };
    if ok { Ok(()) } else { Err(bad) }
}

/// The JWE protected header (only what this module reads or writes).
#[derive(Serialize, Deserialize)]
struct JweHeader {
    alg: String,
    enc: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cty: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    zip: Option<String>,
    /// Extensions the reader must understand: none are supported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    crit: Option<serde_json::Value>,
}

/// A file of a link, decrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    /// The JWE's `cty` (e.g. `application/fhir+json`), if it names one.
    pub content_type: Option<String>,
    pub bytes: Vec<u8>,
}

/// Encrypts a file as a compact JWE (`alg: dir`, `enc: A256GCM`, `cty`:
/// `content_type`) under the link's key, with a fresh 96-bit IV.
pub fn encrypt_file(key: &LinkKey, content_type: &str, plaintext: &[u8], rng: &mut impl CryptoRngCore) -> String {
    let header = JweHeader {
        alg: "dir".into(),
        enc: "A256GCM".into(),
        cty: Some(content_type.to_owned()),
        zip: None,
        crit: None,
    };
    let header = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).expect("a header always serialises"));
    let mut iv = [0u8; 12];
    rng.fill_bytes(&mut iv);
    let cipher = Aes256Gcm::new(key.as_bytes().into());
    let sealed = cipher
        .encrypt(Nonce::from_slice(&iv), AeadPayload { msg: plaintext, aad: header.as_bytes() })
        .expect("AES-GCM encrypts any input below 64 GiB");
    let (ciphertext, tag) = sealed.split_at(sealed.len() - 16);
    format!(
        "{header}..{}.{}.{}",
        URL_SAFE_NO_PAD.encode(iv),
        URL_SAFE_NO_PAD.encode(ciphertext),
        URL_SAFE_NO_PAD.encode(tag)
    )
}

/// Decrypts a compact JWE made with the link's key: `alg: dir`, `enc:
/// A256GCM`, optionally `zip: DEF` (inflated up to [`MAX_FILE_BYTES`]); no
/// `crit` extensions. Anything else is refused before any decryption.
pub fn decrypt_file(key: &LinkKey, jwe: &str) -> Result<File, ShlError> {
    let sealed = SealedFile::of(jwe)?;
    let cipher = Aes256Gcm::new(key.as_bytes().into());
    let plaintext = cipher
        .decrypt(Nonce::from_slice(&sealed.iv), AeadPayload { msg: &sealed.ciphertext, aad: sealed.aad.as_bytes() })
        .map_err(|_| ShlError::WrongKey)?;
    sealed.finish(plaintext)
}

/// A file's JWE taken apart for an AES-256-GCM decryption done elsewhere
/// (the browser's own, in the viewer): what [`decrypt_file`] decrypts,
/// checked the same way first, and finished the same way after.
#[derive(Debug)]
pub struct SealedFile {
    /// The additional authenticated data: the protected header as sent.
    pub aad: String,
    /// The 96-bit IV.
    pub iv: Vec<u8>,
    /// The ciphertext with its 128-bit tag after it (as WebCrypto takes it).
    pub ciphertext: Vec<u8>,
    content_type: Option<String>,
    inflate: bool,
}

impl SealedFile {
    /// Checks and decodes `jwe`; anything [`decrypt_file`] refuses is
    /// refused here, before any decryption.
    pub fn of(jwe: &str) -> Result<Self, ShlError> {
        let Parsed { header_text, header, iv, ciphertext, tag } = Parsed::of(jwe)?;
        let mut sealed = URL_SAFE_NO_PAD.decode(ciphertext).map_err(|_| ShlError::BadFile("ciphertext"))?;
        sealed.extend_from_slice(&tag);
        Ok(Self {
            aad: header_text.to_owned(),
            iv,
            ciphertext: sealed,
            inflate: header.zip.is_some(),
            content_type: header.cty,
        })
    }

    /// The file, from the decrypted bytes: inflated if it was compressed,
    /// and refused if larger than [`MAX_FILE_BYTES`].
    pub fn finish(self, plaintext: Vec<u8>) -> Result<File, ShlError> {
        let bytes = if self.inflate {
            miniz_oxide::inflate::decompress_to_vec_with_limit(&plaintext, MAX_FILE_BYTES).map_err(|e| {
                match e.status {
                    miniz_oxide::inflate::TINFLStatus::HasMoreOutput => ShlError::TooLarge,
                    _ => ShlError::BadFile("compressed content"),
                }
            })?
        } else if plaintext.len() > MAX_FILE_BYTES {
            return Err(ShlError::TooLarge);
        } else {
            plaintext
        };
        Ok(File { content_type: self.content_type, bytes })
    }
}

/// A compact JWE taken apart and checked as far as can be without its key.
struct Parsed<'a> {
    header_text: &'a str,
    header: JweHeader,
    iv: Vec<u8>,
    ciphertext: &'a str,
    tag: Vec<u8>,
}

impl<'a> Parsed<'a> {
    /// `alg: dir`, `enc: A256GCM`, no `crit`, `zip` absent or `DEF`, a
    /// 96-bit IV and a 128-bit tag; anything else is refused.
    fn of(jwe: &'a str) -> Result<Self, ShlError> {
        if jwe.len() > MAX_JWE_CHARS {
            return Err(ShlError::TooLarge);
        }
        let parts: Vec<&str> = jwe.trim().split('.').collect();
        let [header_text, encrypted_key, iv, ciphertext, tag] = parts[..] else {
            return Err(ShlError::BadFile("not a compact JWE"));
        };
        if !encrypted_key.is_empty() {
            return Err(ShlError::BadFile("a direct-key JWE has no encrypted key"));
        }
        let decode = |part: &str, what: &'static str| URL_SAFE_NO_PAD.decode(part).map_err(|_| ShlError::BadFile(what));
        let header: JweHeader =
            serde_json::from_slice(&decode(header_text, "header")?).map_err(|_| ShlError::BadFile("header"))?;
        if header.alg != "dir" || header.enc != "A256GCM" {
            return Err(ShlError::BadFile("only alg dir with enc A256GCM"));
        }
        if header.crit.is_some() {
            return Err(ShlError::BadFile("critical header extensions"));
        }
        if !matches!(header.zip.as_deref(), None | Some("DEF")) {
            return Err(ShlError::BadFile("compression"));
        }
        let iv = decode(iv, "iv")?;
        if iv.len() != 12 {
            return Err(ShlError::BadFile("iv"));
        }
        let tag = decode(tag, "tag")?;
        if tag.len() != 16 {
            return Err(ShlError::BadFile("tag"));
        }
        if ciphertext.bytes().any(|b| !(b.is_ascii_alphanumeric() || b == b'-' || b == b'_')) {
            return Err(ShlError::BadFile("ciphertext"));
        }
        Ok(Self { header_text, header, iv, ciphertext, tag })
    }
}

/// Checks an encrypted file as a host can, without its key (the shape
/// [`decrypt_file`] accepts); returns its `cty`.
pub fn check_jwe(jwe: &str) -> Result<Option<String>, ShlError> {
    Parsed::of(jwe).map(|p| p.header.cty)
}

/// What a receiver posts to the manifest URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestRequest {
    /// Who is asking, as they describe themselves ("Dr Rao, Mercy ER").
    pub recipient: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passcode: Option<String>,
    /// Files up to this many characters come embedded, larger ones by
    /// location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedded_length_max: Option<u64>,
}

/// Whether a manifest's files may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ManifestStatus {
    Finalized,
    CanChange,
    NoLongerValid,
}

/// The manifest's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ManifestStatus>,
    pub files: Vec<ManifestFile>,
}

/// One file of a manifest: its JWE inline, or a short-lived URL to GET it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestFile {
    pub content_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedded: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated: Option<String>,
}

/// A wrong passcode's answer (HTTP 401).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PasscodeRefused {
    pub remaining_attempts: u32,
}

#[cfg(test)]
#[path = "shl_tests.rs"]
mod tests;
