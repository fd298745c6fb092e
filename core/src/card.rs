//! The emergency card's printed facts, read from the patient's own records
//! in their browser: name, date of birth, blood group and allergies. The
//! page prints only those the patient chooses; the rest of the summary is
//! behind the card's QR code.

use serde_json::Value;

use crate::summary::{human_name, summarize};

/// LOINC codes of a blood group: ABO and Rh group, ABO group, Rh type.
const BLOOD_GROUP_CODES: [&str; 3] = ["882-1", "883-9", "10331-7"];

/// What the card can print.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CardFacts {
    pub name: Option<String>,
    /// As the Patient record writes it (a FHIR date).
    pub birth_date: Option<String>,
    /// The latest blood group result's value.
    pub blood_group: Option<String>,
    /// Each active allergy or intolerance once, by name, in record order.
    pub allergies: Vec<String>,
}

/// The facts of `resources` (the patient's current records: corrected
/// ones left out by the caller).
pub fn facts<'a>(resources: impl IntoIterator<Item = &'a Value>) -> CardFacts {
    let mut card = CardFacts::default();
    let mut blood: Option<(String, String)> = None;
    for r in resources {
        match r.get("resourceType").and_then(Value::as_str) {
            Some("Patient") if card.name.is_none() => {
                card.name = human_name(r);
                card.birth_date = r.get("birthDate").and_then(Value::as_str).map(str::to_owned);
            }
            Some("AllergyIntolerance") if is_current_allergy(r) => {
                let name = summarize(r).title;
                if !name.is_empty() && !card.allergies.contains(&name) {
                    card.allergies.push(name);
                }
            }
            Some("Observation") if is_blood_group(r) => {
                let when = r.get("effectiveDateTime").and_then(Value::as_str).unwrap_or("").to_owned();
                if let Some(value) = blood_group_value(r)
                    && blood.as_ref().is_none_or(|(latest, _)| when >= *latest)
                {
                    blood = Some((when, value));
                }
            }
            _ => {}
        }
    }
    card.blood_group = blood.map(|(_, value)| value);
    card
}

/// Not entered in error, refuted, inactive or resolved.
fn is_current_allergy(r: &Value) -> bool {
    let code = |key: &str| {
        r.get(key)
            .and_then(|c| c.get("coding"))
            .and_then(Value::as_array)
            .and_then(|c| c.first())
            .and_then(|c| c.get("code"))
            .and_then(Value::as_str)
    };
    !matches!(code("verificationStatus"), Some("entered-in-error" | "refuted"))
        && !matches!(code("clinicalStatus"), Some("inactive" | "resolved"))
}

fn is_blood_group(r: &Value) -> bool {
    let final_or_amended =
        matches!(r.get("status").and_then(Value::as_str), None | Some("final" | "amended" | "corrected"));
    let codes = r.get("code").and_then(|c| c.get("coding")).and_then(Value::as_array);
    final_or_amended
        && codes.into_iter().flatten().any(|c| {
            c.get("system").and_then(Value::as_str) == Some("http://loinc.org")
                && c.get("code").and_then(Value::as_str).is_some_and(|code| BLOOD_GROUP_CODES.contains(&code))
        })
}

fn blood_group_value(r: &Value) -> Option<String> {
    if let Some(text) = r.get("valueString").and_then(Value::as_str) {
        return Some(text.to_owned());
    }
    let concept = r.get("valueCodeableConcept")?;
    concept
        .get("text")
        .and_then(Value::as_str)
        .or_else(|| concept.get("coding")?.as_array()?.iter().find_map(|c| c.get("display")?.as_str()))
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn blood(value: &str, when: &str) -> Value {
        json!({"resourceType": "Observation", "status": "final", "effectiveDateTime": when,
            "code": {"coding": [{"system": "http://loinc.org", "code": "882-1"}]},
            "valueCodeableConcept": {"coding": [{"display": value}]}})
    }

    #[test]
    fn the_card_reads_name_birth_date_latest_blood_group_and_current_allergies() {
        let records = [
            json!({"resourceType": "Patient", "name": [{"given": ["Floyd"], "family": "Connelly"}], "birthDate": "1954-03-02"}),
            blood("A Rh(D) negative", "2001-01-01"),
            blood("A Rh(D) positive", "2020-05-01"),
            blood("O positive", "2010-01-01"),
            json!({"resourceType": "AllergyIntolerance", "code": {"text": "Penicillin"}}),
            json!({"resourceType": "AllergyIntolerance", "code": {"text": "Penicillin"}}),
            json!({"resourceType": "AllergyIntolerance", "code": {"text": "Peanuts"},
                "clinicalStatus": {"coding": [{"code": "resolved"}]}}),
            json!({"resourceType": "AllergyIntolerance", "code": {"text": "Latex"},
                "verificationStatus": {"coding": [{"code": "entered-in-error"}]}}),
            json!({"resourceType": "AllergyIntolerance", "code": {"text": "Bee venom"},
                "clinicalStatus": {"coding": [{"code": "active"}]}}),
        ];
        let card = facts(&records);
        assert!(card.name.as_deref().is_some_and(|n| n.contains("Floyd") && n.contains("Connelly")), "{card:?}");
        assert_eq!(card.birth_date.as_deref(), Some("1954-03-02"));
        assert_eq!(card.blood_group.as_deref(), Some("A Rh(D) positive"), "the latest result");
        assert_eq!(card.allergies, ["Penicillin", "Bee venom"]);
    }

    #[test]
    fn records_without_these_facts_give_an_empty_card() {
        assert_eq!(facts(&[]), CardFacts::default());
        let others = [
            json!({"resourceType": "Condition", "code": {"text": "Asthma"}}),
            // Another test's code, a cancelled blood group, one without a value.
            json!({"resourceType": "Observation", "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}]},
                "valueString": "5.9"}),
            json!({"resourceType": "Observation", "status": "cancelled",
                "code": {"coding": [{"system": "http://loinc.org", "code": "882-1"}]}, "valueString": "B"}),
            json!({"resourceType": "Observation", "code": {"coding": [{"system": "http://loinc.org", "code": "883-9"}]}}),
            json!({"resourceType": "Patient"}),
        ];
        assert_eq!(facts(&others), CardFacts::default());
    }
}
