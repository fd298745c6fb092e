//! FHIR R4 as records: which category a resource belongs to, and splitting
//! what a patient brings (one resource, or a Bundle) into one record per
//! resource, each kept byte for byte as it came.
//!
//! Everything here reads untrusted input: it never panics on it, and every
//! refusal says in plain words what is wrong.

use serde::Deserialize;
use serde_json::value::RawValue;

/// What a record is about. The code is what the ledger anchors (`category`,
/// under 32) and what a grant's category bits name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Conditions,
    Medications,
    Allergies,
    LabsAndVitals,
    Immunizations,
    Encounters,
    Procedures,
    Documents,
    Claims,
    CarePlans,
    Other,
}

impl Category {
    pub const ALL: [Category; 11] = [
        Category::Conditions,
        Category::Medications,
        Category::Allergies,
        Category::LabsAndVitals,
        Category::Immunizations,
        Category::Encounters,
        Category::Procedures,
        Category::Documents,
        Category::Claims,
        Category::CarePlans,
        Category::Other,
    ];

    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.get(code as usize).copied()
    }

    pub fn label(self) -> &'static str {
        match self {
            Category::Conditions => "Conditions",
            Category::Medications => "Medications",
            Category::Allergies => "Allergies",
            Category::LabsAndVitals => "Labs and vitals",
            Category::Immunizations => "Immunizations",
            Category::Encounters => "Encounters",
            Category::Procedures => "Procedures",
            Category::Documents => "Documents",
            Category::Claims => "Claims and billing",
            Category::CarePlans => "Care plans and goals",
            Category::Other => "Other",
        }
    }

    /// The category of a FHIR resource type. Types not listed (Patient,
    /// Organization, Provenance, and any type this version does not know)
    /// are kept as `Other`.
    pub fn of_resource_type(resource_type: &str) -> Self {
        match resource_type {
            "Condition" => Category::Conditions,
            "MedicationRequest"
            | "MedicationStatement"
            | "MedicationAdministration"
            | "MedicationDispense"
            | "Medication" => Category::Medications,
            "AllergyIntolerance" => Category::Allergies,
            "Observation" | "DiagnosticReport" | "Specimen" => Category::LabsAndVitals,
            "Immunization" | "ImmunizationRecommendation" => Category::Immunizations,
            "Encounter" => Category::Encounters,
            "Procedure" | "ImagingStudy" => Category::Procedures,
            "DocumentReference" | "Media" | "Binary" | "Composition" => Category::Documents,
            "Claim" | "ExplanationOfBenefit" | "Coverage" => Category::Claims,
            "CarePlan" | "CareTeam" | "Goal" => Category::CarePlans,
            _ => Category::Other,
        }
    }
}

/// One resource from an import, its JSON exactly as it was in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedResource {
    pub resource_type: String,
    /// `Resource.id`, when present.
    pub id: Option<String>,
    /// The Bundle entry's `fullUrl` (often `urn:uuid:…`), when present.
    pub full_url: Option<String>,
    pub json: String,
}

impl ImportedResource {
    pub fn category(&self) -> Category {
        Category::of_resource_type(&self.resource_type)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    #[error("This file is not valid JSON ({0}).")]
    InvalidJson(String),
    #[error("This JSON is not a FHIR resource: it has no \"resourceType\".")]
    NotFhir,
    #[error("\"{0}\" is not a FHIR resource type.")]
    BadResourceType(String),
    #[error("The Bundle has no entries with a resource.")]
    EmptyBundle,
    #[error("Entry {} of the Bundle: {reason}", index + 1)]
    BadEntry { index: usize, reason: String },
    #[error("This Bundle is malformed: {0}")]
    BadBundle(String),
}

#[derive(Deserialize)]
struct Head<'a> {
    #[serde(rename = "resourceType", borrow)]
    resource_type: Option<std::borrow::Cow<'a, str>>,
    id: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct BundleShape<'a> {
    #[serde(borrow, default)]
    entry: Option<Vec<EntryShape<'a>>>,
}

#[derive(Deserialize)]
struct EntryShape<'a> {
    #[serde(rename = "fullUrl")]
    full_url: Option<String>,
    #[serde(borrow)]
    resource: Option<&'a RawValue>,
}

/// Splits an import into resources: a Bundle gives one per entry with a
/// resource (entries without one, e.g. a transaction's DELETE, are
/// skipped); any other resource is one record.
pub fn split_import(text: &str) -> Result<Vec<ImportedResource>, ImportError> {
    let head = parse_head(text)?;
    if head.resource_type != "Bundle" {
        return Ok(vec![head]);
    }
    let bundle: BundleShape<'_> = serde_json::from_str(text).map_err(|e| ImportError::BadBundle(e.to_string()))?;
    let mut out = Vec::new();
    for (index, entry) in bundle.entry.unwrap_or_default().into_iter().enumerate() {
        let Some(raw) = entry.resource else { continue };
        let mut resource = parse_head(raw.get()).map_err(|e| ImportError::BadEntry { index, reason: e.to_string() })?;
        resource.full_url = entry.full_url;
        out.push(resource);
    }
    if out.is_empty() {
        return Err(ImportError::EmptyBundle);
    }
    Ok(out)
}

fn parse_head(text: &str) -> Result<ImportedResource, ImportError> {
    let value: &RawValue = serde_json::from_str(text).map_err(|e| ImportError::InvalidJson(e.to_string()))?;
    if !value.get().starts_with('{') {
        return Err(ImportError::NotFhir);
    }
    let head: Head<'_> = serde_json::from_str(value.get()).map_err(|_| ImportError::NotFhir)?;
    let resource_type = head.resource_type.ok_or(ImportError::NotFhir)?;
    if !is_resource_type(&resource_type) {
        return Err(ImportError::BadResourceType(resource_type.chars().take(64).collect()));
    }
    let id = match head.id {
        Some(serde_json::Value::String(id)) => Some(id),
        _ => None,
    };
    Ok(ImportedResource { resource_type: resource_type.into_owned(), id, full_url: None, json: value.get().to_owned() })
}

/// FHIR resource type names: an upper-case letter, then letters and digits.
fn is_resource_type(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_uppercase()) && s.len() <= 64 && chars.all(|c| c.is_ascii_alphanumeric())
}

/// A DocumentReference carrying a file the patient added (a PDF, a photo,
/// any file), the file inline as FHIR Attachment data (base64).
pub fn document_reference(name: &str, content_type: &str, bytes: &[u8], date: &str) -> String {
    use base64::Engine;
    let content_type = if content_type.is_empty() { "application/octet-stream" } else { content_type };
    serde_json::json!({
        "resourceType": "DocumentReference",
        "status": "current",
        "date": date,
        "description": name,
        "content": [{
            "attachment": {
                "contentType": content_type,
                "title": name,
                "size": bytes.len(),
                "creation": date,
                "data": base64::engine::general_purpose::STANDARD.encode(bytes),
            }
        }]
    })
    .to_string()
}

/// A record's plaintext: one Bundle entry, `{"fullUrl":…,"resource":…}`,
/// the resource inserted byte for byte (so export reproduces it exactly
/// and `urn:uuid:` references keep resolving).
pub fn entry_json(full_url: Option<&str>, resource_json: &str) -> String {
    let mut out = String::with_capacity(resource_json.len() + 96);
    out.push('{');
    if let Some(url) = full_url {
        out.push_str("\"fullUrl\":");
        out.push_str(&serde_json::to_string(url).expect("a string serialises"));
        out.push(',');
    }
    out.push_str("\"resource\":");
    out.push_str(resource_json);
    out.push('}');
    out
}

/// Reads a record's plaintext (see [`entry_json`]).
pub fn parse_entry(text: &str) -> Result<ImportedResource, ImportError> {
    let entry: EntryShape<'_> = serde_json::from_str(text).map_err(|e| ImportError::InvalidJson(e.to_string()))?;
    let raw = entry.resource.ok_or(ImportError::NotFhir)?;
    let mut resource = parse_head(raw.get())?;
    resource.full_url = entry.full_url;
    Ok(resource)
}

/// A FHIR Bundle of type `collection` holding these records' entries.
pub fn collection_bundle<'a>(resources: impl IntoIterator<Item = (Option<&'a str>, &'a str)>) -> String {
    let mut out = String::from("{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"entry\":[");
    for (i, (full_url, json)) in resources.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&entry_json(full_url, json));
    }
    out.push_str("]}");
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// fixtures/fhir, read when the test runs (a test binary cargo reuses
    /// from another checkout keeps that checkout's compile-time path).
    pub(crate) fn sample_bundles() -> std::path::PathBuf {
        let manifest =
            std::path::PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
        manifest.join("../fixtures/fhir")
    }

    #[test]
    fn splits_a_bundle_byte_for_byte() {
        let bundle = r#"{"resourceType":"Bundle","type":"transaction","entry":[
            {"fullUrl":"urn:uuid:1","resource":{"resourceType":"Patient","id":"1","name":[{"family":"Q"}]}},
            {"request":{"method":"DELETE","url":"Patient/9"}},
            {"fullUrl":"urn:uuid:2","resource": {"resourceType" : "Observation", "value": 5.80 }}]}"#;
        let r = split_import(bundle).expect("a bundle");
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].resource_type, "Patient");
        assert_eq!(r[0].id.as_deref(), Some("1"));
        assert_eq!(r[0].full_url.as_deref(), Some("urn:uuid:1"));
        assert_eq!(r[0].category(), Category::Other);
        // Kept exactly, spacing and number formatting included.
        assert_eq!(r[1].json, r#"{"resourceType" : "Observation", "value": 5.80 }"#);
        assert_eq!(r[1].category(), Category::LabsAndVitals);

        let again = collection_bundle(r.iter().map(|x| (x.full_url.as_deref(), x.json.as_str())));
        let back = split_import(&again).expect("a bundle");
        assert_eq!(back, r);
        for x in &r {
            assert_eq!(parse_entry(&entry_json(x.full_url.as_deref(), &x.json)).expect("an entry"), *x);
        }
        assert!(parse_entry("{}").is_err());
        assert!(parse_entry("{\"resource\":[]}").is_err());
        assert!(parse_entry("nope").is_err());
    }

    #[test]
    fn a_single_resource_is_one_record() {
        let r = split_import(r#"{"resourceType":"Condition","id":"c"}"#).expect("a resource");
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].category(), Category::Conditions);
        // An unknown type is kept, as Other.
        let r = split_import(r#"{"resourceType":"FancyNewThing"}"#).expect("kept");
        assert_eq!(r[0].category(), Category::Other);
    }

    #[test]
    fn refuses_malformed_input_in_plain_words() {
        assert!(matches!(split_import(""), Err(ImportError::InvalidJson(_))));
        assert!(matches!(split_import("{\"resourceType\":"), Err(ImportError::InvalidJson(_))));
        assert!(matches!(split_import("%PDF-1.7"), Err(ImportError::InvalidJson(_))));
        assert_eq!(split_import("[1,2]"), Err(ImportError::NotFhir));
        assert_eq!(split_import("\"Patient\""), Err(ImportError::NotFhir));
        assert_eq!(split_import(r#"{"name":"x"}"#), Err(ImportError::NotFhir));
        assert_eq!(split_import(r#"{"resourceType":7}"#), Err(ImportError::NotFhir));
        assert!(matches!(split_import(r#"{"resourceType":"patient"}"#), Err(ImportError::BadResourceType(_))));
        assert!(matches!(split_import(r#"{"resourceType":"<script>"}"#), Err(ImportError::BadResourceType(_))));
        assert_eq!(split_import(r#"{"resourceType":"Bundle"}"#), Err(ImportError::EmptyBundle));
        assert_eq!(split_import(r#"{"resourceType":"Bundle","entry":[]}"#), Err(ImportError::EmptyBundle));
        assert!(matches!(
            split_import(r#"{"resourceType":"Bundle","entry":[{"resource":{"id":"x"}}]}"#),
            Err(ImportError::BadEntry { index: 0, .. })
        ));
        assert!(matches!(
            split_import(r#"{"resourceType":"Bundle","entry":{"resource":{}}}"#),
            Err(ImportError::BadBundle(_))
        ));
        let msg = split_import("{oops").unwrap_err().to_string();
        assert!(msg.starts_with("This file is not valid JSON"), "{msg}");
    }

    #[test]
    fn files_become_document_references() {
        let json = document_reference("scan <1>.pdf", "application/pdf", b"%PDF-1.7", "2026-01-01T00:00:00Z");
        let r = split_import(&json).expect("a resource");
        assert_eq!(r[0].resource_type, "DocumentReference");
        assert_eq!(r[0].category(), Category::Documents);
        let v: serde_json::Value = serde_json::from_str(&json).expect("json");
        assert_eq!(v["content"][0]["attachment"]["data"], "JVBERi0xLjc=");
        assert_eq!(v["content"][0]["attachment"]["title"], "scan <1>.pdf");
        let untyped: serde_json::Value = serde_json::from_str(&document_reference("x", "", b"", "d")).expect("json");
        assert_eq!(untyped["content"][0]["attachment"]["contentType"], "application/octet-stream");
    }

    #[test]
    fn category_codes_round_trip_and_fit_the_ledger() {
        for c in Category::ALL {
            assert_eq!(Category::from_code(c.code()), Some(c));
            assert!(c.code() < 32);
        }
        assert_eq!(Category::from_code(11), None);
    }

    #[test]
    fn splits_the_sample_bundles() {
        let dir = sample_bundles();
        let Ok(entries) = std::fs::read_dir(&dir) else {
            panic!("the sample bundles are at {}", dir.display());
        };
        let mut seen = 0;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("readable");
            let value: serde_json::Value = serde_json::from_str(&text).expect("json");
            let expected = value["entry"].as_array().expect("entries").len();
            let resources = split_import(&text).expect("splits");
            assert_eq!(resources.len(), expected, "{}", path.display());
            for (r, e) in resources.iter().zip(value["entry"].as_array().expect("entries")) {
                let original: serde_json::Value = serde_json::from_str(&r.json).expect("json");
                assert_eq!(original, e["resource"]);
            }
            seen += 1;
        }
        assert_eq!(seen, 3);
    }
}
