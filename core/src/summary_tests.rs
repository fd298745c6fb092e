//! Tests of `summary`.

use super::*;
use serde_json::json;

#[test]
fn observation_with_value_range_and_interpretation() {
    let s = summarize(&json!({
        "resourceType": "Observation",
        "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4", "display": "Hemoglobin A1c"}]},
        "effectiveDateTime": "2019-03-01T10:00:00Z",
        "valueQuantity": {"value": 6.1234, "unit": "%"},
        "referenceRange": [{"low": {"value": 4, "unit": "%"}, "high": {"value": 5.6, "unit": "%"}}],
        "interpretation": [{"coding": [{"code": "H", "display": "High"}]}]
    }));
    assert_eq!(s.title, "Hemoglobin A1c");
    assert_eq!(s.category, Category::LabsAndVitals);
    assert_eq!(s.date.as_deref(), Some("2019-03-01T10:00:00Z"));
    let f = |l: &str| s.fields.iter().find(|f| f.label == l).map(|f| f.value.clone());
    assert_eq!(f("Value").as_deref(), Some("6.12 %"));
    assert_eq!(f("Reference range").as_deref(), Some("4 % – 5.6 %"));
    assert_eq!(f("Interpretation").as_deref(), Some("High"));
    assert_eq!(
        s.measurements,
        vec![Measurement { code: "4548-4".into(), name: "Hemoglobin A1c".into(), value: 6.1234, unit: "%".into() }]
    );
    assert_eq!(s.range, Some((Some(4.0), Some(5.6))));
}

#[test]
fn blood_pressure_components_are_measurements() {
    let s = summarize(&json!({
        "resourceType": "Observation",
        "code": {"text": "Blood Pressure"},
        "component": [
            {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4", "display": "Diastolic"}]}, "valueQuantity": {"value": 80, "unit": "mm[Hg]"}},
            {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6", "display": "Systolic"}]}, "valueQuantity": {"value": 120, "unit": "mm[Hg]"}}
        ]
    }));
    assert_eq!(s.measurements.len(), 2);
    assert!(s.fields.iter().any(|f| f.value == "Diastolic: 80 mm[Hg]; Systolic: 120 mm[Hg]"));
}

#[test]
fn medication_dosage_and_references() {
    let s = summarize(&json!({
        "resourceType": "MedicationRequest",
        "medicationCodeableConcept": {"text": "Metformin 500 MG"},
        "authoredOn": "2020-01-01",
        "dosageInstruction": [{"timing": {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}}, "doseAndRate": [{"doseQuantity": {"value": 1, "unit": "tablet"}}]}],
        "encounter": {"reference": "urn:uuid:e1"}
    }));
    assert_eq!(s.title, "Metformin 500 MG");
    assert!(s.fields.iter().any(|f| f.label == "Dosage" && f.value == "1 tablet, 2 times per day"));
    assert_eq!(s.links, vec![Link { label: "Encounter", reference: "urn:uuid:e1".into(), display: None }]);
}

#[test]
fn anything_odd_still_summarises() {
    for v in [
        json!({}),
        json!({"resourceType": 5}),
        json!({"resourceType": "Observation", "code": 7, "valueQuantity": "x"}),
        json!({"resourceType": "Claim", "total": [1]}),
        json!({"resourceType": "Patient", "name": "x"}),
        json!([1, 2]),
    ] {
        let s = summarize(&v);
        assert!(!s.title.is_empty());
    }
    assert_eq!(summarize(&json!({"resourceType": "SupplyDelivery"})).title, "Supply delivery");
}

#[test]
fn summarises_every_sample_resource() {
    let dir = crate::fhir::tests::sample_bundles();
    let text =
        std::fs::read_to_string(dir.join("Floyd_Connelly_66843218-a9f9-4f16-8347-bdc2a0d14265.json")).expect("fixture");
    let bundle: Value = serde_json::from_str(&text).expect("json");
    let mut dated = 0;
    let mut measured = 0;
    for e in bundle["entry"].as_array().expect("entries") {
        let s = summarize(&e["resource"]);
        assert!(!s.title.is_empty());
        dated += s.date.is_some() as usize;
        measured += !s.measurements.is_empty() as usize;
    }
    assert!(dated > 130, "{dated}");
    assert!(measured > 80, "{measured}");
}

#[test]
fn dates_count_days_from_the_epoch() {
    assert_eq!(days_since_epoch("1970-01-01"), Some(0.0));
    assert_eq!(days_since_epoch("2000-03-01"), Some(11017.0));
    assert_eq!(days_since_epoch("1969-12-31"), Some(-1.0));
    assert_eq!(days_since_epoch("2012-01-04T12:00:00+00:00"), Some(15343.5));
    assert_eq!(days_since_epoch("2012"), Some(15340.0));
    for bad in ["", "x", "2012-13-01", "2012-00-10", "20x2-01-01", "é"] {
        assert_eq!(days_since_epoch(bad), None, "{bad}");
    }
}

#[test]
fn trends_group_by_code_and_unit_oldest_first() {
    let obs = |date: &str, v: f64, unit: &str| {
        summarize(&json!({
            "resourceType": "Observation", "effectiveDateTime": date,
            "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7", "display": "Body Weight"}]},
            "valueQuantity": {"value": v, "unit": unit},
            "referenceRange": [{"low": {"value": 50}, "high": {"value": 90}}]
        }))
    };
    let all = [obs("2020-01-01", 80.0, "kg"), obs("2019-01-01", 82.0, "kg"), obs("2021-01-01", 170.0, "lb")];
    let t = trends(all.iter());
    assert_eq!(t.len(), 2);
    assert_eq!(t[0].unit, "kg");
    assert_eq!(t[0].points.iter().map(|p| p.2).collect::<Vec<_>>(), vec![82.0, 80.0]);
    assert_eq!(t[0].range, Some((Some(50.0), Some(90.0))));
}

#[test]
fn numbers_format_plainly() {
    assert_eq!(format_number(169.61503337814418), "169.62");
    assert_eq!(format_number(80.0), "80");
    assert_eq!(format_number(-0.001), "0");
    assert_eq!(format_number(0.5), "0.5");
}

#[test]
fn trends_open_on_blood_pressure_hba1c_glucose_and_weight() {
    let obs = |date: &str, code: &str, name: &str, v: f64, unit: &str| {
        summarize(&json!({
            "resourceType": "Observation", "effectiveDateTime": date,
            "code": {"coding": [{"system": "http://loinc.org", "code": code, "display": name}]},
            "valueQuantity": {"value": v, "unit": unit, "code": unit}
        }))
    };
    let mut all = Vec::new();
    for (i, date) in ["2019-01-01", "2020-01-01", "2021-01-01"].iter().enumerate() {
        let i = i as f64;
        all.push(obs(date, "72514-3", "Pain", i, "{score}"));
        all.push(obs(date, "2093-3", "Total Cholesterol", 180.0 + i, "mg/dL"));
        all.push(obs(date, "29463-7", "Body Weight", 80.0 + i, "kg"));
        all.push(obs(date, "2339-0", "Glucose", 90.0 + i, "mg/dL"));
        all.push(obs(date, "8462-4", "Diastolic Blood Pressure", 80.0 + i, "mm[Hg]"));
        all.push(obs(date, "8480-6", "Systolic Blood Pressure", 120.0 + i, "mm[Hg]"));
    }
    all.push(obs("2020-06-01", "4548-4", "Hemoglobin A1c", 5.9, "%"));
    all.push(obs("2021-06-01", "4548-4", "Hemoglobin A1c", 6.1, "%"));
    let t = trends(all.iter());
    let names: Vec<&str> = t.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["Blood pressure", "Hemoglobin A1c", "Glucose", "Body Weight", "Pain", "Total Cholesterol"]);
    let bp = &t[0];
    assert_eq!(bp.points.iter().map(|p| p.2).collect::<Vec<_>>(), [120.0, 121.0, 122.0]);
    let diastolic = bp.second.as_ref().expect("diastolic beside systolic");
    assert_eq!(diastolic.name, "Diastolic Blood Pressure");
    assert_eq!(diastolic.points.iter().map(|p| p.2).collect::<Vec<_>>(), [80.0, 81.0, 82.0]);
    // Diastolic alone (or in another unit) stays a series of its own.
    let lone: Vec<Summary> = all.iter().filter(|s| !s.title.contains("Systolic")).cloned().collect();
    let t = trends(lone.iter());
    assert!(t.iter().any(|s| s.name == "Diastolic Blood Pressure" && s.second.is_none()));
}

#[test]
fn an_inline_file_is_read_and_only_images_show_inline() {
    let doc = |content_type: Option<&str>, data: &str| {
        let mut attachment = json!({"data": data, "title": "scan"});
        if let Some(t) = content_type {
            attachment["contentType"] = t.into();
        }
        json!({"resourceType": "DocumentReference", "content": [{"attachment": attachment}]})
    };
    let png = attachment(&doc(Some("image/png"), "iVBORw0K")).expect("an inline file");
    assert_eq!((png.content_type.as_str(), png.title.as_str(), png.bytes.len()), ("image/png", "scan", 6));
    assert!(png.is_image());
    let html = attachment(&doc(Some("text/html"), "PGI+")).unwrap();
    assert!(!html.is_image(), "markup is never shown inline");
    assert_eq!(attachment(&doc(None, "AA==")).unwrap().content_type, "application/octet-stream");
    assert_eq!(attachment(&doc(Some("image/png"), "not base64!")), None);
    assert_eq!(attachment(&json!({"resourceType": "DocumentReference", "content": []})), None);
    assert_eq!(attachment(&json!({"resourceType": "Observation"})), None);
}
