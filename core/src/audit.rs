//! Shares and accesses as FHIR R4: a grant as a `Consent`, an access the
//! ledger recorded as an `AuditEvent`, collected in a Bundle the patient
//! can download and hand to another system.
//!
//! People are named by their Chartkey ledger address (identifier system
//! [`ADDRESS_SYSTEM`]) and display name; records by their record id
//! ([`RECORD_SYSTEM`]); the ledger transaction that holds the grant or the
//! access by its hash ([`TX_SYSTEM`]), so a reader can check it there.

use crate::value::{Address, Hash32, RecordId};
use serde_json::{Value, json};

use crate::fhir::Category;

/// Identifier system of a Chartkey account's ledger address (0x, 20 bytes).
pub const ADDRESS_SYSTEM: &str = "urn:chartkey:ledger-address";
/// Identifier system of a Chartkey record id (0x, 32 bytes).
pub const RECORD_SYSTEM: &str = "urn:chartkey:record-id";
/// Identifier system of a ledger transaction hash (0x, 32 bytes).
pub const TX_SYSTEM: &str = "urn:chartkey:ledger-tx";
/// Code system of Chartkey's record categories.
pub const CATEGORY_SYSTEM: &str = "urn:chartkey:record-category";

/// Someone named in a Consent or AuditEvent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Party<'a> {
    pub address: Address,
    pub name: &'a str,
}

impl Party<'_> {
    fn reference(&self) -> Value {
        json!({ "identifier": { "system": ADDRESS_SYSTEM, "value": self.address }, "display": self.name })
    }
}

/// What a grant covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Covered<'a> {
    Records(&'a [RecordId]),
    Categories(Vec<Category>),
    Everything,
}

/// A grant, as a Consent needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantFacts<'a> {
    pub patient: Party<'a>,
    pub grantee: Party<'a>,
    pub covered: Covered<'a>,
    pub write: bool,
    /// Unix seconds.
    pub granted_at: i64,
    pub expires_at: i64,
    /// Still in force on the ledger (not expired, stopped or lapsed).
    pub active: bool,
    pub grant_tx: Hash32,
}

/// An access the ledger recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessFacts<'a> {
    pub patient: Party<'a>,
    pub grantee: Party<'a>,
    pub record_id: RecordId,
    pub category: Option<Category>,
    /// Unix seconds.
    pub at: i64,
    pub tx: Hash32,
}

/// RFC 3339 (UTC, seconds) of Unix seconds, as FHIR `instant` and
/// `dateTime` take it.
pub fn instant(unix_secs: i64) -> String {
    let days = unix_secs.div_euclid(86_400);
    let secs = unix_secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", secs / 3_600, secs % 3_600 / 60, secs % 60)
}

fn coding(system: &str, code: &str, display: &str) -> Value {
    json!({ "system": system, "code": code, "display": display })
}

/// A grant as a FHIR R4 Consent (scope patient-privacy, an opt-in policy
/// rule, one permit provision with the period, the grantee as recipient,
/// access or access and correct, and the records or categories covered).
pub fn consent(g: &GrantFacts<'_>) -> Value {
    let mut actions =
        vec![json!({ "coding": [coding("http://terminology.hl7.org/CodeSystem/consentaction", "access", "Access")] })];
    if g.write {
        actions.push(json!({ "coding": [coding("http://terminology.hl7.org/CodeSystem/consentaction", "correct", "Access and Correct")] }));
    }
    let mut provision = json!({
        "type": "permit",
        "period": { "start": instant(g.granted_at), "end": instant(g.expires_at) },
        "actor": [{
            "role": { "coding": [coding("http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "IRCP", "information recipient")] },
            "reference": g.grantee.reference(),
        }],
        "action": actions,
    });
    match &g.covered {
        Covered::Records(ids) => {
            provision["data"] = ids
                .iter()
                .map(|id| json!({ "meaning": "instance", "reference": { "identifier": { "system": RECORD_SYSTEM, "value": id } } }))
                .collect();
        }
        Covered::Categories(categories) => {
            provision["code"] = categories
                .iter()
                .map(|c| json!({ "coding": [coding(CATEGORY_SYSTEM, category_code(*c), c.label())] }))
                .collect();
        }
        Covered::Everything => {}
    }
    json!({
        "resourceType": "Consent",
        "identifier": [{ "system": TX_SYSTEM, "value": g.grant_tx }],
        "status": if g.active { "active" } else { "inactive" },
        "scope": { "coding": [coding("http://terminology.hl7.org/CodeSystem/consentscope", "patient-privacy", "Privacy Consent")] },
        "category": [{ "coding": [coding("http://loinc.org", "59284-0", "Patient Consent")] }],
        "patient": g.patient.reference(),
        "dateTime": instant(g.granted_at),
        "performer": [g.patient.reference()],
        "policyRule": { "coding": [coding("http://terminology.hl7.org/CodeSystem/v3-ActCode", "OPTIN", "opt-in")] },
        "provision": provision,
    })
}

/// An access as a FHIR R4 AuditEvent (a read, successful: the ledger only
/// records accesses it allowed), with the grantee as requesting agent, the
/// ledger as source, and the record, the patient and the transaction as
/// entities.
pub fn audit_event(a: &AccessFacts<'_>) -> Value {
    let mut record = json!({
        "what": { "identifier": { "system": RECORD_SYSTEM, "value": a.record_id } },
        "type": coding("http://terminology.hl7.org/CodeSystem/audit-entity-type", "2", "System Object"),
        "role": coding("http://terminology.hl7.org/CodeSystem/object-role", "4", "Domain Resource"),
    });
    if let Some(c) = a.category {
        record["description"] = json!(c.label());
    }
    json!({
        "resourceType": "AuditEvent",
        "type": coding("http://terminology.hl7.org/CodeSystem/audit-event-type", "rest", "RESTful Operation"),
        "subtype": [coding("http://hl7.org/fhir/restful-interaction", "read", "read")],
        "action": "R",
        "recorded": instant(a.at),
        "outcome": "0",
        "agent": [{
            "type": { "coding": [coding("http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "IRCP", "information recipient")] },
            "who": a.grantee.reference(),
            "requestor": true,
        }],
        "source": {
            "observer": { "display": "Chartkey ledger" },
            "type": [coding("http://terminology.hl7.org/CodeSystem/security-source-type", "4", "Application Server")],
        },
        "entity": [
            record,
            {
                "what": a.patient.reference(),
                "type": coding("http://terminology.hl7.org/CodeSystem/audit-entity-type", "1", "Person"),
                "role": coding("http://terminology.hl7.org/CodeSystem/object-role", "1", "Patient"),
            },
            {
                "what": { "identifier": { "system": TX_SYSTEM, "value": a.tx } },
                "type": coding("http://terminology.hl7.org/CodeSystem/audit-entity-type", "2", "System Object"),
                "description": "The ledger transaction that recorded this access",
            },
        ],
    })
}

/// A FHIR `collection` Bundle of `resources`, pretty-printed.
pub fn bundle(resources: Vec<Value>, timestamp: i64) -> String {
    let entries: Vec<Value> = resources.into_iter().map(|r| json!({ "resource": r })).collect();
    let bundle =
        json!({ "resourceType": "Bundle", "type": "collection", "timestamp": instant(timestamp), "entry": entries });
    serde_json::to_string_pretty(&bundle).unwrap_or_default()
}

fn category_code(c: Category) -> &'static str {
    match c {
        Category::Conditions => "conditions",
        Category::Medications => "medications",
        Category::Allergies => "allergies",
        Category::LabsAndVitals => "labs-and-vitals",
        Category::Immunizations => "immunizations",
        Category::Encounters => "encounters",
        Category::Procedures => "procedures",
        Category::Documents => "documents",
        Category::Claims => "claims",
        Category::CarePlans => "care-plans",
        Category::Other => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATIENT: Party<'static> = Party { address: Address([0xaa; 20]), name: "Pat" };
    const DOCTOR: Party<'static> = Party { address: Address([0xbb; 20]), name: "Dr B" };

    #[test]
    fn instants_are_rfc3339_utc() {
        assert_eq!(instant(0), "1970-01-01T00:00:00Z");
        assert_eq!(instant(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(instant(1_796_000_000), "2026-11-30T00:53:20Z");
        assert_eq!(instant(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn a_grant_of_listed_records_is_a_permit_consent_with_its_period_and_data() {
        let ids = vec![RecordId([1; 32]), RecordId([2; 32])];
        let c = consent(&GrantFacts {
            patient: PATIENT,
            grantee: DOCTOR,
            covered: Covered::Records(&ids),
            write: false,
            granted_at: 0,
            expires_at: 7 * 86_400,
            active: true,
            grant_tx: Hash32([0xab; 32]),
        });
        assert_eq!(c["resourceType"], "Consent");
        assert_eq!(c["status"], "active");
        assert_eq!(c["patient"]["identifier"]["value"], format!("0x{}", "aa".repeat(20)));
        assert_eq!(c["provision"]["type"], "permit");
        assert_eq!(c["provision"]["period"]["end"], "1970-01-08T00:00:00Z");
        assert_eq!(c["provision"]["actor"][0]["reference"]["display"], "Dr B");
        assert_eq!(c["provision"]["action"].as_array().unwrap().len(), 1);
        assert_eq!(c["provision"]["data"][1]["reference"]["identifier"]["value"], RecordId([2; 32]).to_string());
        assert_eq!(c["identifier"][0]["value"], Hash32([0xab; 32]).to_string());
        // R4 invariant ppc-1: a policy or a policy rule.
        assert!(c["policyRule"].is_object());
    }

    #[test]
    fn a_category_grant_with_write_lists_codes_and_correct() {
        let c = consent(&GrantFacts {
            patient: PATIENT,
            grantee: DOCTOR,
            covered: Covered::Categories(vec![Category::Medications, Category::LabsAndVitals]),
            write: true,
            granted_at: 0,
            expires_at: 1,
            active: false,
            grant_tx: Hash32([0xab; 32]),
        });
        assert_eq!(c["status"], "inactive");
        assert_eq!(c["provision"]["action"][1]["coding"][0]["code"], "correct");
        assert_eq!(c["provision"]["code"][1]["coding"][0]["code"], "labs-and-vitals");
        assert!(c["provision"].get("data").is_none());
    }

    #[test]
    fn an_access_is_a_successful_read_audit_event_naming_the_transaction() {
        let e = audit_event(&AccessFacts {
            patient: PATIENT,
            grantee: DOCTOR,
            record_id: RecordId([1; 32]),
            category: Some(Category::Conditions),
            at: 60,
            tx: Hash32([0xde; 32]),
        });
        assert_eq!((&e["resourceType"], &e["action"], &e["outcome"]), (&json!("AuditEvent"), &json!("R"), &json!("0")));
        assert_eq!(e["recorded"], "1970-01-01T00:01:00Z");
        assert_eq!(e["agent"][0]["who"]["identifier"]["value"], DOCTOR.address.to_string());
        assert_eq!(e["entity"][0]["what"]["identifier"]["value"], RecordId([1; 32]).to_string());
        assert_eq!(e["entity"][0]["description"], "Conditions");
        assert_eq!(e["entity"][2]["what"]["identifier"]["value"], Hash32([0xde; 32]).to_string());
        let b: Value = serde_json::from_str(&bundle(vec![e], 0)).unwrap();
        assert_eq!((&b["type"], b["entry"].as_array().unwrap().len()), (&json!("collection"), 1));
    }
}
