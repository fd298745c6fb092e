//! The patient summary: an International Patient Summary (HL7 FHIR IPS)
//! document Bundle, built in the patient's browser from their records.
//!
//! The Bundle (`type: document`) opens with a Composition (LOINC 60591-5,
//! "Patient summary Document") whose sections list the entries: the three
//! the IPS requires (problems, medications, allergies), each with the IPS
//! "no information" entry when the patient has nothing recorded, and past
//! problems, immunizations, results, vital signs and procedures where
//! present. Results and vital signs keep the latest observation of each
//! test, not the whole history.
//!
//! Each clinical entry is the record as imported, except for references
//! the summary cannot resolve (encounters, claims, anything not in the
//! Bundle), which are left out; the Patient and the practitioners,
//! organisations and medications that entries refer to come along, so every
//! reference in the Bundle resolves inside it (by `fullUrl`).

use std::collections::{HashMap, HashSet};

use rand_core::CryptoRngCore;
use serde_json::{Map, Value, json};

use crate::fhir::ImportedResource;

const LOINC: &str = "http://loinc.org";
/// The IPS code system for "no information" entries.
pub const ABSENT_UNKNOWN: &str = "http://hl7.org/fhir/uv/ips/CodeSystem/absent-unknown-uv-ips";
/// The Composition's type: "Patient summary Document".
pub const SUMMARY_TYPE: &str = "60591-5";
/// Resource types an entry may refer to that come along with it.
const SUPPORTING: &[&str] = &[
    "Patient",
    "Practitioner",
    "PractitionerRole",
    "Organization",
    "Medication",
    "Location",
    "RelatedPerson",
    "Device",
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpsError {
    #[error("A patient summary needs the Patient record; none of these records is one.")]
    NoPatient,
    #[error("These records describe more than one patient; a summary is about one.")]
    SeveralPatients,
    #[error("A {0} record is not valid JSON, so the summary cannot be made.")]
    Malformed(String),
}

/// A section of the summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Section {
    pub title: &'static str,
    /// The section's LOINC code.
    pub code: &'static str,
    display: &'static str,
    /// The IPS "no information" entry when the section is required and
    /// empty: resource type, code and display.
    absent: Option<(&'static str, &'static str, &'static str)>,
}

pub const PROBLEMS: Section = Section {
    title: "Problems",
    code: "11450-4",
    display: "Problem list - Reported",
    absent: Some(("Condition", "no-problem-info", "No information about problems")),
};
pub const MEDICATIONS: Section = Section {
    title: "Medications",
    code: "10160-0",
    display: "History of Medication use Narrative",
    absent: Some(("MedicationStatement", "no-medication-info", "No information about medications")),
};
pub const ALLERGIES: Section = Section {
    title: "Allergies and intolerances",
    code: "48765-2",
    display: "Allergies and adverse reactions Document",
    absent: Some(("AllergyIntolerance", "no-allergy-info", "No information about allergies")),
};
pub const PAST_PROBLEMS: Section =
    Section { title: "Past problems", code: "11348-0", display: "History of Past illness Narrative", absent: None };
pub const IMMUNIZATIONS: Section =
    Section { title: "Immunizations", code: "11369-6", display: "History of Immunization Narrative", absent: None };
pub const RESULTS: Section = Section {
    title: "Results",
    code: "30954-2",
    display: "Relevant diagnostic tests/laboratory data Narrative",
    absent: None,
};
pub const VITAL_SIGNS: Section = Section { title: "Vital signs", code: "8716-3", display: "Vital signs", absent: None };
pub const PROCEDURES: Section =
    Section { title: "Procedures", code: "47519-4", display: "History of Procedures Document", absent: None };

/// The sections, in the order the summary shows them.
pub const SECTIONS: [Section; 8] =
    [PROBLEMS, MEDICATIONS, ALLERGIES, PAST_PROBLEMS, IMMUNIZATIONS, RESULTS, VITAL_SIGNS, PROCEDURES];

/// The summary made: the Bundle, and what each section lists (for a page
/// to show as text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientSummary {
    /// The document Bundle, as JSON.
    pub json: String,
    pub sections: Vec<SectionOutline>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectionOutline {
    pub title: &'static str,
    /// Each entry's name and date, as the narrative has them.
    pub entries: Vec<String>,
}

/// A record, parsed, with the `fullUrl` it goes into the Bundle under.
struct Entry {
    full_url: String,
    resource: Value,
}

/// Builds the summary of `records` (one patient's) as a FHIR document
/// Bundle in JSON, dated `now` (a FHIR instant, e.g. from the browser's
/// clock); `rng` makes the new resources' ids.
pub fn build(
    records: &[ImportedResource],
    now: &str,
    rng: &mut impl CryptoRngCore,
) -> Result<PatientSummary, IpsError> {
    let mut entries = Vec::with_capacity(records.len());
    for record in records {
        let resource: Value =
            serde_json::from_str(&record.json).map_err(|_| IpsError::Malformed(record.resource_type.clone()))?;
        let full_url = record.full_url.clone().unwrap_or_else(|| uuid_urn(rng));
        entries.push(Entry { full_url, resource });
    }
    let mut patients = entries.iter().enumerate().filter(|(_, e)| type_of(&e.resource) == "Patient");
    let (patient, _) = patients.next().ok_or(IpsError::NoPatient)?;
    if patients.next().is_some() {
        return Err(IpsError::SeveralPatients);
    }
    let patient_url = entries[patient].full_url.clone();

    // Which records go into which section.
    let mut sections: Vec<Vec<usize>> = vec![Vec::new(); SECTIONS.len()];
    for (i, entry) in entries.iter().enumerate() {
        if let Some(s) = section_of(&entry.resource) {
            sections[s].push(i);
        }
    }
    for s in [SECTIONS.iter().position(|x| *x == RESULTS), SECTIONS.iter().position(|x| *x == VITAL_SIGNS)] {
        let s = s.expect("both are sections");
        sections[s] = latest_of_each_test(&entries, &sections[s]);
    }

    // The records included, then what they refer to, until nothing new.
    let by_url: HashMap<&str, usize> = entries.iter().enumerate().map(|(i, e)| (e.full_url.as_str(), i)).collect();
    let mut included: Vec<usize> = std::iter::once(patient).chain(sections.iter().flatten().copied()).collect();
    let mut urls: HashSet<&str> = included.iter().map(|&i| entries[i].full_url.as_str()).collect();
    let mut i = 0;
    while i < included.len() {
        for target in references(&entries[included[i]].resource) {
            if let Some(&t) = by_url.get(target.as_str())
                && !urls.contains(target.as_str())
                && SUPPORTING.contains(&type_of(&entries[t].resource))
            {
                included.push(t);
                urls.insert(entries[t].full_url.as_str());
            }
        }
        i += 1;
    }

    let mut bundle_entries = Vec::new();
    let mut composition_sections = Vec::new();
    let mut outline = Vec::new();
    for (section, members) in SECTIONS.iter().zip(&sections) {
        let mut refs: Vec<String> = members.iter().map(|&i| entries[i].full_url.clone()).collect();
        let mut labels: Vec<String> = members.iter().map(|&i| label(&entries[i].resource)).collect();
        if members.is_empty() {
            let Some((resource_type, code, display)) = section.absent else { continue };
            let url = uuid_urn(rng);
            bundle_entries.push(
                json!({ "fullUrl": url, "resource": no_information(resource_type, code, display, &patient_url, &url) }),
            );
            refs.push(url);
            labels.push(display.to_owned());
        }
        composition_sections.push(json!({
            "title": section.title,
            "code": { "coding": [{ "system": LOINC, "code": section.code, "display": section.display }] },
            "text": { "status": "generated", "div": narrative(&labels) },
            "entry": refs.iter().map(|r| json!({ "reference": r })).collect::<Vec<_>>(),
        }));
        outline.push(SectionOutline { title: section.title, entries: labels });
    }
    // Records can refer to each other (and to contained resources), never
    // to the "no information" entries made here.
    let resolves = |reference: &str| reference.starts_with('#') || urls.contains(reference);
    let mut kept = Vec::with_capacity(included.len());
    for &i in &included {
        let mut resource = entries[i].resource.clone();
        strip_unresolved(&mut resource, &resolves);
        kept.push(json!({ "fullUrl": entries[i].full_url, "resource": resource }));
    }

    let composition_url = uuid_urn(rng);
    let composition = json!({
        "resourceType": "Composition",
        "id": id_of(&composition_url),
        "status": "final",
        "type": { "coding": [{ "system": LOINC, "code": SUMMARY_TYPE, "display": "Patient summary Document" }] },
        "subject": { "reference": patient_url },
        "date": now,
        "author": [{ "reference": patient_url }],
        "title": "Patient summary",
        "section": composition_sections,
    });
    let bundle_url = uuid_urn(rng);
    let mut all = vec![json!({ "fullUrl": composition_url, "resource": composition })];
    all.extend(kept);
    all.extend(bundle_entries);
    let bundle = json!({
        "resourceType": "Bundle",
        "id": id_of(&bundle_url),
        "identifier": { "system": "urn:ietf:rfc:3986", "value": bundle_url },
        "type": "document",
        "timestamp": now,
        "entry": all,
    });
    Ok(PatientSummary { json: bundle.to_string(), sections: outline })
}

fn type_of(resource: &Value) -> &str {
    resource["resourceType"].as_str().unwrap_or("")
}

/// The first code of a CodeableConcept field (`clinicalStatus`, …).
fn code_of<'a>(resource: &'a Value, field: &str) -> Option<&'a str> {
    resource[field]["coding"].as_array()?.iter().find_map(|c| c["code"].as_str())
}

/// The section a record belongs in, if any: current problems and past ones
/// by clinical status; active medications; given immunizations; laboratory
/// and vital-sign observations; done procedures. Records marked entered in
/// error or refuted are left out.
fn section_of(resource: &Value) -> Option<usize> {
    let status = resource["status"].as_str().unwrap_or("");
    if status == "entered-in-error"
        || matches!(code_of(resource, "verificationStatus"), Some("entered-in-error" | "refuted"))
    {
        return None;
    }
    let section = match type_of(resource) {
        "Condition" => match code_of(resource, "clinicalStatus") {
            Some("active" | "recurrence" | "relapse") | None => PROBLEMS,
            Some(_) => PAST_PROBLEMS,
        },
        "AllergyIntolerance" => ALLERGIES,
        "MedicationStatement" if matches!(status, "active" | "intended" | "on-hold") => MEDICATIONS,
        "MedicationRequest" if matches!(status, "active" | "on-hold") => MEDICATIONS,
        "Immunization" if status == "completed" => IMMUNIZATIONS,
        "Procedure" if status == "completed" => PROCEDURES,
        "Observation" if matches!(status, "final" | "amended" | "corrected" | "preliminary") => {
            let categories: Vec<&str> = resource["category"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|c| c["coding"].as_array().into_iter().flatten())
                .filter_map(|c| c["code"].as_str())
                .collect();
            if categories.contains(&"laboratory") {
                RESULTS
            } else if categories.contains(&"vital-signs") {
                VITAL_SIGNS
            } else {
                return None;
            }
        }
        _ => return None,
    };
    SECTIONS.iter().position(|s| *s == section)
}

/// Of `members` (observations), the latest of each test (first coding's
/// system and code), in their original order.
fn latest_of_each_test(entries: &[Entry], members: &[usize]) -> Vec<usize> {
    let when = |i: usize| {
        let r = &entries[i].resource;
        r["effectiveDateTime"]
            .as_str()
            .or(r["effectivePeriod"]["start"].as_str())
            .or(r["issued"].as_str())
            .unwrap_or("")
    };
    let test = |i: usize| {
        let coding = &entries[i].resource["code"]["coding"][0];
        (coding["system"].as_str().unwrap_or("").to_owned(), coding["code"].as_str().unwrap_or("").to_owned())
    };
    let mut latest: Vec<usize> = Vec::new();
    for &i in members {
        match latest.iter().position(|&j| test(j) == test(i)) {
            // ISO dates of one form compare as text.
            Some(k) if when(i) > when(latest[k]) => latest[k] = i,
            Some(_) => {}
            None => latest.push(i),
        }
    }
    latest.sort_unstable();
    latest
}

/// Every `reference` in a resource.
pub fn references(value: &Value) -> Vec<String> {
    let mut found = Vec::new();
    collect_references(value, &mut found);
    found
}

fn collect_references(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("reference") {
                found.push(r.clone());
            }
            map.values().for_each(|v| collect_references(v, found));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_references(v, found)),
        _ => {}
    }
}

/// Removes every Reference that does not resolve (the whole element, or
/// the list item); a list or element left empty goes too. True when
/// `value` itself should go.
fn strip_unresolved(value: &mut Value, resolves: &dyn Fn(&str) -> bool) -> bool {
    match value {
        Value::Object(map) => {
            if map.get("reference").and_then(Value::as_str).is_some_and(|r| !resolves(r)) {
                return true;
            }
            let before = map.len();
            map.retain(|_, v| !strip_unresolved(v, resolves));
            // An element left with nothing in it goes too (FHIR has no empty elements).
            before > 0 && map.is_empty()
        }
        Value::Array(items) => {
            let before = items.len();
            items.retain_mut(|v| !strip_unresolved(v, resolves));
            before > 0 && items.is_empty()
        }
        _ => false,
    }
}

/// What a record is called in the section's narrative: its code's text
/// or display, and its date when it has one.
fn label(resource: &Value) -> String {
    let concept =
        ["code", "vaccineCode", "medicationCodeableConcept"].iter().map(|f| &resource[*f]).find(|c| c.is_object());
    let name = concept
        .and_then(|c| c["text"].as_str().or(c["coding"][0]["display"].as_str()).or(c["coding"][0]["code"].as_str()))
        .unwrap_or(type_of(resource));
    let date = ["effectiveDateTime", "onsetDateTime", "occurrenceDateTime", "performedDateTime", "authoredOn"]
        .iter()
        .find_map(|f| resource[*f].as_str())
        .or(resource["performedPeriod"]["start"].as_str());
    match date {
        Some(date) => format!("{name} ({})", date.get(..10).unwrap_or(date)),
        None => name.to_owned(),
    }
}

/// The section's narrative: a list of its entries, escaped.
fn narrative(labels: &[String]) -> String {
    let items: String = labels.iter().map(|l| format!("<li>{}</li>", escape(l))).collect();
    format!(r#"<div xmlns="http://www.w3.org/1999/xhtml"><ul>{items}</ul></div>"#)
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// The IPS "no information" entry for an empty required section.
fn no_information(resource_type: &str, code: &str, display: &str, patient: &str, url: &str) -> Value {
    let concept = json!({ "coding": [{ "system": ABSENT_UNKNOWN, "code": code, "display": display }] });
    let mut resource = Map::new();
    resource.insert("resourceType".into(), resource_type.into());
    resource.insert("id".into(), id_of(url).into());
    let subject = json!({ "reference": patient });
    let active = |system: &str| json!({ "coding": [{ "system": system, "code": "active" }] });
    match resource_type {
        "AllergyIntolerance" => {
            // FHIR's ait-1: a clinical status unless entered in error.
            resource.insert(
                "clinicalStatus".into(),
                active("http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"),
            );
            resource.insert("code".into(), concept);
            resource.insert("patient".into(), subject);
        }
        "MedicationStatement" => {
            resource.insert("status".into(), "unknown".into());
            resource.insert("medicationCodeableConcept".into(), concept);
            resource.insert("subject".into(), subject);
            resource.insert(
                "_effectiveDateTime".into(),
                json!({ "extension": [{ "url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "unknown" }] }),
            );
        }
        _ => {
            resource
                .insert("clinicalStatus".into(), active("http://terminology.hl7.org/CodeSystem/condition-clinical"));
            resource.insert("code".into(), concept);
            resource.insert("subject".into(), subject);
        }
    }
    Value::Object(resource)
}

/// A new `urn:uuid:` (version 4).
fn uuid_urn(rng: &mut impl CryptoRngCore) -> String {
    let mut b = [0u8; 16];
    rng.fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!("urn:uuid:{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

fn id_of(urn: &str) -> &str {
    urn.strip_prefix("urn:uuid:").unwrap_or(urn)
}

#[cfg(test)]
#[path = "ips_tests.rs"]
mod tests;
