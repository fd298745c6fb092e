use super::*;
use crate::fhir::split_import;
use rand_core::OsRng;

const NOW: &str = "2026-12-05T14:02:00Z";

fn samples() -> Vec<(String, Vec<ImportedResource>)> {
    let dir = crate::fhir::tests::sample_bundles();
    let mut found: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    found.sort();
    assert_eq!(found.len(), 3, "the three sample patients in {}", dir.display());
    found
        .into_iter()
        .map(|p| {
            let records = split_import(&std::fs::read_to_string(&p).unwrap()).unwrap();
            (p.file_name().unwrap().to_string_lossy().into_owned(), records)
        })
        .collect()
}

fn summary(records: &[ImportedResource]) -> Value {
    serde_json::from_str(&build(records, NOW, &mut OsRng).unwrap().json).unwrap()
}

fn entries(bundle: &Value) -> &Vec<Value> {
    bundle["entry"].as_array().unwrap()
}

fn section<'a>(bundle: &'a Value, code: &str) -> Option<&'a Value> {
    entries(bundle)[0]["resource"]["section"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["code"]["coding"][0]["code"] == code)
}

/// The resources a section lists.
fn section_resources<'a>(bundle: &'a Value, code: &str) -> Vec<&'a Value> {
    let Some(section) = section(bundle, code) else { return Vec::new() };
    section["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let url = r["reference"].as_str().unwrap();
            &entries(bundle).iter().find(|e| e["fullUrl"] == url).expect("a section's entry is in the Bundle")["resource"]
        })
        .collect()
}

fn is_no_information(resource: &Value, code: &str) -> bool {
    let concept = if resource["resourceType"] == "MedicationStatement" {
        &resource["medicationCodeableConcept"]
    } else {
        &resource["code"]
    };
    concept["coding"][0]["system"] == ABSENT_UNKNOWN && concept["coding"][0]["code"] == code
}

#[test]
fn each_sample_patient_gets_a_document_with_the_required_sections() {
    for (name, records) in samples() {
        let bundle = summary(&records);
        assert_eq!(bundle["resourceType"], "Bundle", "{name}");
        assert_eq!(bundle["type"], "document");
        assert_eq!(bundle["timestamp"], NOW);
        let composition = &entries(&bundle)[0]["resource"];
        assert_eq!(composition["resourceType"], "Composition", "{name}: the Composition comes first");
        assert_eq!(composition["type"]["coding"][0]["code"], SUMMARY_TYPE);
        assert_eq!(composition["status"], "final");
        let patient = records.iter().find(|r| r.resource_type == "Patient").unwrap();
        assert_eq!(composition["subject"]["reference"], patient.full_url.as_deref().unwrap());
        for required in [PROBLEMS, MEDICATIONS, ALLERGIES] {
            let listed = section_resources(&bundle, required.code);
            assert!(!listed.is_empty(), "{name}: {} has entries", required.title);
            let text = section(&bundle, required.code).unwrap()["text"]["div"].as_str().unwrap();
            assert!(text.starts_with(r#"<div xmlns="http://www.w3.org/1999/xhtml">"#), "{name}: {text}");
        }
        // No sample records an allergy: the IPS "no information" entry.
        let allergies = section_resources(&bundle, ALLERGIES.code);
        assert_eq!(allergies.len(), 1);
        assert!(is_no_information(allergies[0], "no-allergy-info"), "{name}: {}", allergies[0]);
        assert_eq!(allergies[0]["patient"]["reference"], patient.full_url.as_deref().unwrap());
        assert!(section_resources(&bundle, IMMUNIZATIONS.code).iter().all(|r| r["resourceType"] == "Immunization"));
    }
}

#[test]
fn medications_are_the_active_ones_or_the_no_information_entry() {
    for (name, records) in samples() {
        let bundle = summary(&records);
        let listed = section_resources(&bundle, MEDICATIONS.code);
        let active = records
            .iter()
            .filter(|r| r.resource_type == "MedicationRequest" && r.json.contains(r#""status": "active""#))
            .count();
        if active == 0 {
            assert_eq!(listed.len(), 1, "{name}");
            assert!(is_no_information(listed[0], "no-medication-info"), "{name}");
        } else {
            assert_eq!(listed.len(), active, "{name}");
            assert!(listed.iter().all(|m| m["status"] == "active"), "{name}");
        }
    }
}

#[test]
fn every_reference_resolves_inside_the_bundle() {
    for (name, records) in samples() {
        let bundle = summary(&records);
        let urls: Vec<&str> = entries(&bundle).iter().map(|e| e["fullUrl"].as_str().unwrap()).collect();
        let mut unique = urls.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), urls.len(), "{name}: each entry once");
        let mut checked = 0;
        for entry in entries(&bundle) {
            for reference in references(&entry["resource"]) {
                assert!(urls.contains(&reference.as_str()), "{name}: {reference} in {}", entry["fullUrl"]);
                checked += 1;
            }
        }
        assert!(checked > 10, "{name}: {checked} references");
        // What entries refer to came along: the practitioners who prescribed.
        for request in
            section_resources(&bundle, MEDICATIONS.code).iter().filter(|m| m["resourceType"] == "MedicationRequest")
        {
            assert!(request["requester"]["reference"].is_string(), "{name}: the prescriber is kept");
        }
    }
}

#[test]
fn each_clinical_entry_is_its_record_without_the_references_it_cannot_keep() {
    for (name, records) in samples() {
        let bundle = summary(&records);
        let mut compared = 0;
        for entry in entries(&bundle).iter().skip(1) {
            let Some(record) = records.iter().find(|r| r.full_url.as_deref() == entry["fullUrl"].as_str()) else {
                continue;
            };
            let original: Value = serde_json::from_str(&record.json).unwrap();
            assert_same_but_references(&original, &entry["resource"], &format!("{name} {}", entry["fullUrl"]));
            compared += 1;
        }
        assert!(compared > 5, "{name}: {compared}");
    }
}

/// `summarised` is `original` with nothing changed or added, and nothing
/// taken away but elements that are References (or lists of them).
fn assert_same_but_references(original: &Value, summarised: &Value, at: &str) {
    match (original, summarised) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, value) in a {
                match b.get(key) {
                    Some(kept) => assert_same_but_references(value, kept, &format!("{at}.{key}")),
                    None => assert!(is_reference_only(value), "{at}.{key} was removed but is not a reference: {value}"),
                }
            }
            assert!(b.keys().all(|k| a.contains_key(k)), "{at}: nothing added");
        }
        (Value::Array(a), Value::Array(b)) => {
            let kept: Vec<&Value> = a.iter().filter(|v| !is_reference_only(v) || b.contains(v)).collect();
            assert_eq!(kept.len(), b.len(), "{at}");
            for (x, y) in kept.into_iter().zip(b) {
                assert_same_but_references(x, y, at);
            }
        }
        _ => assert_eq!(original, summarised, "{at}"),
    }
}

fn is_reference_only(value: &Value) -> bool {
    match value {
        Value::Object(map) => map.contains_key("reference") || (!map.is_empty() && map.values().all(is_reference_only)),
        Value::Array(items) => items.iter().all(is_reference_only),
        _ => false,
    }
}

#[test]
fn results_keep_the_latest_of_each_test() {
    let (name, records) = samples().into_iter().max_by_key(|(_, r)| r.len()).unwrap();
    let bundle = summary(&records);
    let results = section_resources(&bundle, RESULTS.code);
    assert!(results.len() > 5, "{name}");
    let lab_observations = records.iter().filter(|r| r.json.contains(r#""code": "laboratory""#)).count();
    assert!(results.len() < lab_observations, "{name}: a summary, not the history");
    let mut codes: Vec<&str> = results.iter().map(|r| r["code"]["coding"][0]["code"].as_str().unwrap()).collect();
    let total = codes.len();
    codes.sort_unstable();
    codes.dedup();
    assert_eq!(codes.len(), total, "{name}: one per test");
    for kept in &results {
        let code = &kept["code"]["coding"][0]["code"];
        let newest = records
            .iter()
            .filter_map(|r| serde_json::from_str::<Value>(&r.json).ok())
            .filter(|r| r["resourceType"] == "Observation" && r["code"]["coding"][0]["code"] == *code)
            .filter_map(|r| r["effectiveDateTime"].as_str().map(str::to_owned))
            .max()
            .unwrap();
        assert_eq!(kept["effectiveDateTime"].as_str().unwrap(), newest, "{name}: {code}");
    }
}

fn record(resource_type: &str, full_url: &str, json: &str) -> ImportedResource {
    ImportedResource {
        resource_type: resource_type.into(),
        id: None,
        full_url: Some(full_url.into()),
        json: json.into(),
    }
}

#[test]
fn a_summary_needs_exactly_one_patient_and_valid_records() {
    let patient = record("Patient", "urn:uuid:p", r#"{"resourceType":"Patient"}"#);
    let condition =
        record("Condition", "urn:uuid:c", r#"{"resourceType":"Condition","subject":{"reference":"urn:uuid:p"}}"#);
    assert_eq!(build(std::slice::from_ref(&condition), NOW, &mut OsRng).unwrap_err(), IpsError::NoPatient);
    assert_eq!(build(&[], NOW, &mut OsRng).unwrap_err(), IpsError::NoPatient);
    let other = record("Patient", "urn:uuid:q", r#"{"resourceType":"Patient"}"#);
    assert_eq!(build(&[patient.clone(), other], NOW, &mut OsRng).unwrap_err(), IpsError::SeveralPatients);
    let broken = record("Observation", "urn:uuid:o", r#"{"resourceType":"Observation","#);
    assert_eq!(
        build(&[patient.clone(), broken], NOW, &mut OsRng).unwrap_err(),
        IpsError::Malformed("Observation".into())
    );
    // Only the patient: every required section says "no information".
    let made = build(&[patient], NOW, &mut OsRng).unwrap();
    let titles: Vec<&str> = made.sections.iter().map(|s| s.title).collect();
    assert_eq!(titles, ["Problems", "Medications", "Allergies and intolerances"]);
    assert_eq!(made.sections[2].entries, ["No information about allergies"]);
    let bundle: Value = serde_json::from_str(&made.json).unwrap();
    assert!(is_no_information(section_resources(&bundle, PROBLEMS.code)[0], "no-problem-info"));
    assert!(is_no_information(section_resources(&bundle, MEDICATIONS.code)[0], "no-medication-info"));
    assert!(section(&bundle, RESULTS.code).is_none(), "optional sections only when there is something");
}

#[test]
fn records_text_is_escaped_in_the_narrative_and_unresolvable_references_go() {
    let patient = record("Patient", "urn:uuid:p", r#"{"resourceType":"Patient"}"#);
    let hostile = record(
        "Condition",
        "urn:uuid:c",
        r#"{"resourceType":"Condition","code":{"text":"<script>alert(1)</script> & \"more\""},
            "subject":{"reference":"urn:uuid:p"},"encounter":{"reference":"urn:uuid:gone","display":"visit"},
            "evidence":[{"detail":[{"reference":"Observation/1"}]}],"note":[{"text":"kept"}]}"#,
    );
    let made = build(&[patient, hostile], NOW, &mut OsRng).unwrap();
    assert_eq!(made.sections[0].entries, [r#"<script>alert(1)</script> & "more""#], "the outline is text, as written");
    let bundle: Value = serde_json::from_str(&made.json).unwrap();
    let div = section(&bundle, PROBLEMS.code).unwrap()["text"]["div"].as_str().unwrap();
    assert!(div.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;more&quot;"), "{div}");
    assert!(!div.contains("<script>"));
    let condition = section_resources(&bundle, PROBLEMS.code)[0];
    assert_eq!(condition["subject"]["reference"], "urn:uuid:p");
    assert!(condition.get("encounter").is_none(), "{condition}");
    assert!(condition.get("evidence").is_none(), "emptied by the references that went: {condition}");
    assert_eq!(condition["note"][0]["text"], "kept");
}
