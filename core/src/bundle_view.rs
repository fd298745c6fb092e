//! FHIR content shown to someone who is not its patient (the link viewer,
//! an emergency contact): each resource as the chart's record view shows it
//! (its summary: text only, never markup), grouped by the patient summary's
//! sections when the content is an IPS document, else by kind of record.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use crate::fhir::Category;
use crate::shl::FHIR_JSON;
use crate::summary::{Attachment, Summary, attachment, summarize};

/// Everything some files showed.
#[derive(Debug, Default)]
pub struct Shown {
    /// The title of a document (an IPS Composition's), if a file was one.
    pub title: Option<String>,
    pub groups: Vec<Group>,
    /// Files not shown, each with why.
    pub skipped: Vec<String>,
}

/// A heading and its records.
#[derive(Debug)]
pub struct Group {
    pub title: String,
    pub records: Vec<Record>,
}

/// One resource, as the chart's record view shows it.
#[derive(Debug)]
pub struct Record {
    pub summary: Summary,
    pub attachment: Option<Attachment>,
}

impl Record {
    fn of(resource: &Value) -> Self {
        Self { summary: summarize(resource), attachment: attachment(resource) }
    }
}

impl Shown {
    /// Adds one decrypted file: its content type (`cty`) and bytes.
    pub fn add_file(&mut self, content_type: Option<&str>, bytes: &[u8]) {
        let kind = content_type.unwrap_or("no content type");
        if kind != FHIR_JSON {
            self.skipped.push(format!("A file of type {kind}, which this viewer does not show."));
            return;
        }
        match serde_json::from_slice::<Value>(bytes) {
            Ok(value) if value.get("resourceType").and_then(Value::as_str).is_some() => self.add_resource(&value),
            _ => self.skipped.push("A file that is not a FHIR resource.".into()),
        }
    }

    /// The number of records shown.
    pub fn count(&self) -> usize {
        self.groups.iter().map(|g| g.records.len()).sum()
    }

    fn add_resource(&mut self, value: &Value) {
        if value.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
            self.group("Records").records.push(Record::of(value));
            return;
        }
        let entries: Vec<(&str, &Value)> = value
            .get("entry")
            .and_then(Value::as_array)
            .map(|e| {
                e.iter()
                    .filter_map(|e| Some((e.get("fullUrl").and_then(Value::as_str).unwrap_or(""), e.get("resource")?)))
                    .collect()
            })
            .unwrap_or_default();
        let mut placed: HashSet<usize> = HashSet::new();
        // A document: its Composition's sections, in order, each with the
        // entries it references.
        let composition =
            entries.iter().position(|(_, r)| r.get("resourceType").and_then(Value::as_str) == Some("Composition"));
        if let Some(at) = composition {
            placed.insert(at);
            let c = entries[at].1;
            if self.title.is_none() {
                self.title = c.get("title").and_then(Value::as_str).map(str::to_owned);
            }
            let by_url: HashMap<&str, usize> =
                entries.iter().enumerate().filter(|(_, (u, _))| !u.is_empty()).map(|(i, (u, _))| (*u, i)).collect();
            for section in c.get("section").and_then(Value::as_array).into_iter().flatten() {
                let title = section.get("title").and_then(Value::as_str).unwrap_or("Section").to_owned();
                let records: Vec<Record> = section
                    .get("entry")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|r| by_url.get(r.get("reference")?.as_str()?).copied())
                    .filter(|i| placed.insert(*i))
                    .map(|i| Record::of(entries[i].1))
                    .collect();
                if !records.is_empty() {
                    self.group(&title).records.extend(records);
                }
            }
        }
        // The patient first, then everything else by kind, in the chart's
        // order of kinds.
        let rest: Vec<&Value> =
            entries.iter().enumerate().filter(|(i, _)| !placed.contains(i)).map(|(_, (_, r))| *r).collect();
        let (patients, others): (Vec<&Value>, Vec<&Value>) =
            rest.into_iter().partition(|r| r.get("resourceType").and_then(Value::as_str) == Some("Patient"));
        for patient in patients {
            self.group("Patient").records.push(Record::of(patient));
        }
        let mut others: Vec<Record> = others.into_iter().map(Record::of).collect();
        for category in Category::ALL {
            let these: Vec<Record>;
            (these, others) = others.into_iter().partition(|r| r.summary.category == category);
            if !these.is_empty() {
                let label = category.label();
                let title = if composition.is_some() { format!("Also included: {label}") } else { label.to_owned() };
                self.group(&title).records.extend(these);
            }
        }
    }

    fn group(&mut self, title: &str) -> &mut Group {
        let at = match self.groups.iter().position(|g| g.title == title) {
            Some(at) => at,
            None => {
                self.groups.push(Group { title: title.to_owned(), records: Vec::new() });
                self.groups.len() - 1
            }
        };
        &mut self.groups[at]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn file(value: &Value) -> Vec<u8> {
        serde_json::to_vec(value).unwrap()
    }

    #[test]
    fn a_collection_shows_the_patient_first_then_each_kind_in_the_charts_order() {
        let bundle = json!({"resourceType": "Bundle", "type": "collection", "entry": [
            {"resource": {"resourceType": "Immunization", "vaccineCode": {"text": "Influenza"}, "occurrenceDateTime": "2026-11-20"}},
            {"resource": {"resourceType": "Condition", "code": {"text": "Asthma"}}},
            {"resource": {"resourceType": "Patient", "name": [{"given": ["Floyd"], "family": "Bins"}]}},
        ]});
        let mut shown = Shown::default();
        shown.add_file(Some(FHIR_JSON), &file(&bundle));
        let titles: Vec<&str> = shown.groups.iter().map(|g| g.title.as_str()).collect();
        assert_eq!(titles, ["Patient", "Conditions", "Immunizations"]);
        assert_eq!(shown.groups[1].records[0].summary.title, "Asthma");
        assert_eq!(shown.count(), 3);
        assert!(shown.title.is_none() && shown.skipped.is_empty());
    }

    #[test]
    fn a_document_follows_its_sections_and_keeps_what_they_do_not_list() {
        let bundle = json!({"resourceType": "Bundle", "type": "document", "entry": [
            {"fullUrl": "urn:uuid:c", "resource": {"resourceType": "Composition", "title": "Patient summary", "section": [
                {"title": "Allergies and intolerances", "entry": [{"reference": "urn:uuid:a"}]},
                {"title": "Problems", "entry": [{"reference": "urn:uuid:p"}, {"reference": "urn:uuid:missing"}]},
                {"title": "Empty", "entry": []},
            ]}},
            {"fullUrl": "urn:uuid:pt", "resource": {"resourceType": "Patient", "name": [{"text": "Floyd Bins"}]}},
            {"fullUrl": "urn:uuid:p", "resource": {"resourceType": "Condition", "code": {"text": "Asthma"}}},
            {"fullUrl": "urn:uuid:a", "resource": {"resourceType": "AllergyIntolerance", "code": {"text": "No information about allergies"}}},
            {"fullUrl": "urn:uuid:m", "resource": {"resourceType": "Medication", "code": {"text": "Salbutamol"}}},
        ]});
        let mut shown = Shown::default();
        shown.add_file(Some(FHIR_JSON), &file(&bundle));
        assert_eq!(shown.title.as_deref(), Some("Patient summary"));
        let titles: Vec<&str> = shown.groups.iter().map(|g| g.title.as_str()).collect();
        assert_eq!(titles, ["Allergies and intolerances", "Problems", "Patient", "Also included: Medications"]);
        assert_eq!(shown.groups[0].records[0].summary.title, "No information about allergies");
        assert_eq!(shown.count(), 4, "the Composition itself is not a record");
    }

    #[test]
    fn files_it_cannot_show_are_named_not_dropped_silently() {
        let mut shown = Shown::default();
        shown.add_file(Some("application/smart-health-card"), b"{}");
        shown.add_file(None, b"{}");
        shown.add_file(Some(FHIR_JSON), b"not json");
        shown.add_file(Some(FHIR_JSON), b"{\"no\": \"type\"}");
        shown.add_file(Some(FHIR_JSON), b"[1, 2]");
        assert_eq!(shown.skipped.len(), 5);
        assert!(shown.skipped[0].contains("application/smart-health-card"));
        assert_eq!(shown.count(), 0);
        // A lone resource is one record; a Bundle without entries, none.
        shown.add_file(Some(FHIR_JSON), &file(&json!({"resourceType": "Observation", "code": {"text": "Pulse"}})));
        shown.add_file(Some(FHIR_JSON), &file(&json!({"resourceType": "Bundle", "entry": "not a list"})));
        assert_eq!(shown.count(), 1);
        assert_eq!(shown.groups[0].title, "Records");
    }
}
