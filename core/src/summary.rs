//! A readable digest of a FHIR resource: a title, a date and labelled
//! fields, per resource type. The browser renders these as text (never as
//! markup), so nothing a record contains is ever executed.

use serde_json::Value;

use crate::fhir::Category;

/// One labelled value of a record, as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub label: &'static str,
    pub value: String,
}

/// A reference to another resource (`urn:uuid:…` or `Type/id`), with the
/// label it is shown under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub label: &'static str,
    pub reference: String,
    pub display: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub resource_type: String,
    pub category: Category,
    pub title: String,
    /// ISO 8601 date or date-time, as in the resource.
    pub date: Option<String>,
    pub fields: Vec<Field>,
    pub links: Vec<Link>,
    /// A numeric value to chart: (LOINC or other code, display, value, unit).
    pub measurements: Vec<Measurement>,
    /// The reference range of the first numeric value, low and high.
    pub range: Option<(Option<f64>, Option<f64>)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    pub code: String,
    pub name: String,
    pub value: f64,
    pub unit: String,
}

fn text_of_concept(c: &Value) -> Option<String> {
    if let Some(t) = c.get("text").and_then(Value::as_str) {
        return Some(t.to_owned());
    }
    c.get("coding")?
        .as_array()?
        .iter()
        .find_map(|coding| {
            coding.get("display").and_then(Value::as_str).or_else(|| coding.get("code").and_then(Value::as_str))
        })
        .map(str::to_owned)
}

fn concept(r: &Value, key: &str) -> Option<String> {
    let v = r.get(key)?;
    match v {
        Value::Array(items) => items.iter().find_map(text_of_concept),
        other => text_of_concept(other),
    }
}

fn first_code(c: &Value) -> Option<String> {
    let coding = c.get("coding")?.as_array()?.first()?;
    let code = coding.get("code")?.as_str()?;
    Some(match coding.get("system").and_then(Value::as_str) {
        Some("http://loinc.org") => code.to_owned(),
        Some(system) => format!("{system}|{code}"),
        None => code.to_owned(),
    })
}

fn string(r: &Value, key: &str) -> Option<String> {
    r.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn period_start(r: &Value, key: &str) -> Option<String> {
    r.get(key)?.get("start")?.as_str().map(str::to_owned)
}

fn quantity(q: &Value) -> Option<(f64, String)> {
    let value = q.get("value")?.as_f64()?;
    let unit = q.get("unit").or_else(|| q.get("code")).and_then(Value::as_str).unwrap_or("").to_owned();
    Some((value, unit))
}

/// Rounds for display: at most 2 decimals, no trailing zeros.
pub fn format_number(v: f64) -> String {
    let s = format!("{:.2}", v);
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".to_owned() } else { s.to_owned() }
}

fn show_quantity(q: &Value) -> Option<String> {
    let (v, unit) = quantity(q)?;
    let comparator = q.get("comparator").and_then(Value::as_str).unwrap_or("");
    Some(format!("{comparator}{} {unit}", format_number(v)).trim_end().to_owned())
}

fn value_x(r: &Value) -> Option<String> {
    if let Some(q) = r.get("valueQuantity") {
        return show_quantity(q);
    }
    if let Some(c) = r.get("valueCodeableConcept") {
        return text_of_concept(c);
    }
    for key in ["valueString", "valueDateTime", "valueTime"] {
        if let Some(s) = string(r, key) {
            return Some(s);
        }
    }
    if let Some(b) = r.get("valueBoolean").and_then(Value::as_bool) {
        return Some(if b { "yes" } else { "no" }.to_owned());
    }
    if let Some(i) = r.get("valueInteger").and_then(Value::as_i64) {
        return Some(i.to_string());
    }
    None
}

fn push(fields: &mut Vec<Field>, label: &'static str, value: Option<String>) {
    if let Some(value) = value.filter(|v| !v.is_empty()) {
        fields.push(Field { label, value });
    }
}

fn reference(v: &Value) -> Option<(String, Option<String>)> {
    let reference = v.get("reference")?.as_str()?.to_owned();
    Some((reference, v.get("display").and_then(Value::as_str).map(str::to_owned)))
}

fn link(links: &mut Vec<Link>, label: &'static str, v: Option<&Value>) {
    match v {
        Some(Value::Array(items)) => {
            for item in items {
                link(links, label, Some(item));
            }
        }
        Some(v) => {
            if let Some((reference, display)) = reference(v) {
                links.push(Link { label, reference, display });
            }
        }
        None => {}
    }
}

pub(crate) fn human_name(r: &Value) -> Option<String> {
    let name = r.get("name")?.as_array()?.first()?;
    if let Some(t) = name.get("text").and_then(Value::as_str) {
        return Some(t.to_owned());
    }
    let mut parts: Vec<&str> = Vec::new();
    for key in ["prefix", "given"] {
        if let Some(items) = name.get(key).and_then(Value::as_array) {
            parts.extend(items.iter().filter_map(Value::as_str));
        }
    }
    if let Some(f) = name.get("family").and_then(Value::as_str) {
        parts.push(f);
    }
    (!parts.is_empty()).then(|| parts.join(" "))
}

fn dosage(r: &Value) -> Option<String> {
    let d = r.get("dosageInstruction")?.as_array()?.first()?;
    if let Some(t) = d.get("text").and_then(Value::as_str) {
        return Some(t.to_owned());
    }
    let mut out = Vec::new();
    if let Some(q) = d
        .get("doseAndRate")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .and_then(|dose| dose.get("doseQuantity"))
        .and_then(show_quantity)
    {
        out.push(q);
    }
    if let Some(repeat) = d.get("timing").and_then(|t| t.get("repeat")) {
        let freq = repeat.get("frequency").and_then(Value::as_f64);
        let period = repeat.get("period").and_then(Value::as_f64);
        let unit = repeat.get("periodUnit").and_then(Value::as_str);
        if let (Some(f), Some(p), Some(u)) = (freq, period, unit) {
            let unit = match u {
                "h" => "hour",
                "d" => "day",
                "wk" => "week",
                "mo" => "month",
                "a" => "year",
                other => other,
            };
            let per = if p == 1.0 { unit.to_owned() } else { format!("{} {unit}s", format_number(p)) };
            out.push(format!("{} time{} per {per}", format_number(f), if f == 1.0 { "" } else { "s" }));
        }
    }
    if d.get("asNeededBoolean").and_then(Value::as_bool) == Some(true) {
        out.push("as needed".to_owned());
    }
    (!out.is_empty()).then(|| out.join(", "))
}

fn range(r: &Value) -> Option<(Option<f64>, Option<f64>)> {
    let rr = r.get("referenceRange")?.as_array()?.first()?;
    let low = rr.get("low").and_then(|q| q.get("value")).and_then(Value::as_f64);
    let high = rr.get("high").and_then(|q| q.get("value")).and_then(Value::as_f64);
    (low.is_some() || high.is_some()).then_some((low, high))
}

fn show_range(r: &Value) -> Option<String> {
    let rr = r.get("referenceRange")?.as_array()?.first()?;
    if let Some(t) = rr.get("text").and_then(Value::as_str) {
        return Some(t.to_owned());
    }
    let low = rr.get("low").and_then(show_quantity);
    let high = rr.get("high").and_then(show_quantity);
    match (low, high) {
        (Some(l), Some(h)) => Some(format!("{l} – {h}")),
        (Some(l), None) => Some(format!("≥ {l}")),
        (None, Some(h)) => Some(format!("≤ {h}")),
        (None, None) => None,
    }
}

fn measurements(r: &Value) -> Vec<Measurement> {
    let mut out = Vec::new();
    let mut one = |part: &Value| {
        let (Some(code), Some(name), Some((value, unit))) = (
            part.get("code").and_then(first_code),
            part.get("code").and_then(text_of_concept),
            part.get("valueQuantity").and_then(quantity),
        ) else {
            return;
        };
        out.push(Measurement { code, name, value, unit });
    };
    one(r);
    if let Some(components) = r.get("component").and_then(Value::as_array) {
        for c in components {
            one(c);
        }
    }
    out
}

/// The digest of one resource. Never fails: what is missing is left out.
/// A DocumentReference's inline file (`content[0].attachment.data`), as
/// the record views offer it: shown when an image, else downloaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub content_type: String,
    pub bytes: Vec<u8>,
    pub title: String,
}

impl Attachment {
    /// The types a page may show inline, as an image (never as a document
    /// or a script); anything else is only offered as a download.
    pub fn is_image(&self) -> bool {
        matches!(self.content_type.as_str(), "image/png" | "image/jpeg" | "image/gif" | "image/webp")
    }
}

/// The inline file of a resource that has one; `None` without one or when
/// its data is not base64.
pub fn attachment(value: &Value) -> Option<Attachment> {
    use base64::Engine;
    let a = value.get("content")?.as_array()?.first()?.get("attachment")?;
    let data = a.get("data")?.as_str()?;
    let bytes = base64::engine::general_purpose::STANDARD.decode(data).ok()?;
    let text = |key: &str, default: &str| a.get(key).and_then(Value::as_str).unwrap_or(default).to_owned();
    Some(Attachment {
        content_type: text("contentType", "application/octet-stream"),
        bytes,
        title: text("title", "file"),
    })
}

pub fn summarize(r: &Value) -> Summary {
    let resource_type = string(r, "resourceType").unwrap_or_else(|| "Resource".to_owned());
    let category = Category::of_resource_type(&resource_type);
    let mut fields = Vec::new();
    let mut links = Vec::new();
    let title: Option<String>;
    let mut date = None;
    match resource_type.as_str() {
        "Observation" => {
            title = concept(r, "code");
            date = string(r, "effectiveDateTime")
                .or_else(|| period_start(r, "effectivePeriod"))
                .or_else(|| string(r, "issued"));
            push(&mut fields, "Value", value_x(r));
            if let Some(components) = r.get("component").and_then(Value::as_array) {
                let parts: Vec<String> = components
                    .iter()
                    .filter_map(|c| Some(format!("{}: {}", c.get("code").and_then(text_of_concept)?, value_x(c)?)))
                    .collect();
                push(&mut fields, "Values", (!parts.is_empty()).then(|| parts.join("; ")));
            }
            push(&mut fields, "Reference range", show_range(r));
            push(&mut fields, "Interpretation", concept(r, "interpretation"));
            push(&mut fields, "Category", concept(r, "category"));
            push(&mut fields, "Status", string(r, "status"));
        }
        "Condition" => {
            title = concept(r, "code");
            date = string(r, "onsetDateTime").or_else(|| string(r, "recordedDate"));
            push(&mut fields, "Clinical status", concept(r, "clinicalStatus"));
            push(&mut fields, "Verification", concept(r, "verificationStatus"));
            push(&mut fields, "Onset", string(r, "onsetDateTime"));
            push(&mut fields, "Resolved", string(r, "abatementDateTime"));
            push(&mut fields, "Severity", concept(r, "severity"));
        }
        "MedicationRequest" | "MedicationStatement" => {
            title = concept(r, "medicationCodeableConcept").or_else(|| {
                r.get("medicationReference").and_then(|m| m.get("display")).and_then(Value::as_str).map(str::to_owned)
            });
            date = string(r, "authoredOn").or_else(|| string(r, "effectiveDateTime"));
            push(&mut fields, "Dosage", dosage(r));
            push(&mut fields, "Status", string(r, "status"));
            push(&mut fields, "Intent", string(r, "intent"));
            push(&mut fields, "Reason", concept(r, "reasonCode"));
            link(&mut links, "Prescriber", r.get("requester"));
        }
        "AllergyIntolerance" => {
            title = concept(r, "code");
            date = string(r, "recordedDate").or_else(|| string(r, "onsetDateTime"));
            push(&mut fields, "Clinical status", concept(r, "clinicalStatus"));
            push(&mut fields, "Criticality", string(r, "criticality"));
            push(&mut fields, "Type", string(r, "type"));
            if let Some(reactions) = r.get("reaction").and_then(Value::as_array) {
                let shown: Vec<String> = reactions.iter().filter_map(|x| concept(x, "manifestation")).collect();
                push(&mut fields, "Reaction", (!shown.is_empty()).then(|| shown.join(", ")));
            }
        }
        "Immunization" => {
            title = concept(r, "vaccineCode");
            date = string(r, "occurrenceDateTime");
            push(&mut fields, "Status", string(r, "status"));
            push(&mut fields, "Lot", string(r, "lotNumber"));
        }
        "Encounter" => {
            title = concept(r, "type")
                .or_else(|| r.get("class").and_then(|c| c.get("code")).and_then(Value::as_str).map(str::to_owned));
            date = period_start(r, "period");
            push(&mut fields, "Reason", concept(r, "reasonCode"));
            push(&mut fields, "Status", string(r, "status"));
            push(
                &mut fields,
                "Ended",
                r.get("period").and_then(|p| p.get("end")).and_then(Value::as_str).map(str::to_owned),
            );
            link(&mut links, "Where", r.get("serviceProvider"));
            if let Some(parts) = r.get("participant").and_then(Value::as_array) {
                for p in parts {
                    link(&mut links, "Seen by", p.get("individual"));
                }
            }
        }
        "DiagnosticReport" => {
            title = concept(r, "code");
            date = string(r, "effectiveDateTime").or_else(|| string(r, "issued"));
            push(&mut fields, "Category", concept(r, "category"));
            push(&mut fields, "Conclusion", string(r, "conclusion"));
            push(&mut fields, "Status", string(r, "status"));
            link(&mut links, "Result", r.get("result"));
        }
        "Procedure" => {
            title = concept(r, "code");
            date = string(r, "performedDateTime").or_else(|| period_start(r, "performedPeriod"));
            push(&mut fields, "Status", string(r, "status"));
            push(&mut fields, "Reason", concept(r, "reasonCode"));
        }
        "CarePlan" => {
            title = concept(r, "category").map(|c| format!("Care plan: {c}"));
            date = period_start(r, "period");
            push(&mut fields, "Status", string(r, "status"));
            if let Some(acts) = r.get("activity").and_then(Value::as_array) {
                let shown: Vec<String> =
                    acts.iter().filter_map(|a| a.get("detail").and_then(|d| concept(d, "code"))).collect();
                push(&mut fields, "Activities", (!shown.is_empty()).then(|| shown.join(", ")));
            }
            link(&mut links, "Addresses", r.get("addresses"));
        }
        "Goal" => {
            title = r.get("description").and_then(text_of_concept).map(|d| format!("Goal: {d}"));
            date = string(r, "startDate");
            push(&mut fields, "Status", string(r, "lifecycleStatus"));
            push(&mut fields, "Achievement", concept(r, "achievementStatus"));
        }
        "Claim" | "ExplanationOfBenefit" => {
            let kind = if resource_type == "Claim" { "Claim" } else { "Explanation of benefit" };
            title = Some(match concept(r, "type") {
                Some(t) => format!("{kind} ({t})"),
                None => kind.to_owned(),
            });
            date = period_start(r, "billablePeriod").or_else(|| string(r, "created"));
            let total = r.get("total").and_then(|t| match t {
                Value::Array(items) => items.first().and_then(|i| i.get("amount")).cloned(),
                other => Some(other.clone()),
            });
            push(
                &mut fields,
                "Total",
                total.and_then(|t| {
                    Some(format!(
                        "{} {}",
                        format_number(t.get("value")?.as_f64()?),
                        t.get("currency").and_then(Value::as_str).unwrap_or("")
                    ))
                }),
            );
            push(&mut fields, "Status", string(r, "status"));
            link(&mut links, "Provider", r.get("provider"));
        }
        "Patient" => {
            title = human_name(r);
            push(&mut fields, "Born", string(r, "birthDate"));
            push(&mut fields, "Gender", string(r, "gender"));
        }
        "Practitioner" => {
            title = human_name(r);
        }
        "Organization" => {
            title = string(r, "name");
            push(&mut fields, "Type", concept(r, "type"));
        }
        "ImagingStudy" => {
            title = r
                .get("procedureCode")
                .and_then(|c| match c {
                    Value::Array(a) => a.iter().find_map(text_of_concept),
                    other => text_of_concept(other),
                })
                .or_else(|| Some("Imaging study".to_owned()));
            date = string(r, "started");
            push(&mut fields, "Status", string(r, "status"));
            push(&mut fields, "Series", r.get("numberOfSeries").and_then(Value::as_u64).map(|n| n.to_string()));
        }
        "DocumentReference" => {
            title = string(r, "description").or_else(|| concept(r, "type"));
            date = string(r, "date");
            if let Some(a) =
                r.get("content").and_then(Value::as_array).and_then(|c| c.first()).and_then(|c| c.get("attachment"))
            {
                push(&mut fields, "File", string(a, "title"));
                push(&mut fields, "Type", string(a, "contentType"));
                push(&mut fields, "Size", a.get("size").and_then(Value::as_u64).map(|s| format!("{s} bytes")));
            }
            push(&mut fields, "Status", string(r, "status"));
        }
        _ => {
            title = concept(r, "code");
            date = r.get("meta").and_then(|m| m.get("lastUpdated")).and_then(Value::as_str).map(str::to_owned);
        }
    }
    link(&mut links, "Encounter", r.get("encounter").or_else(|| r.get("context").and_then(|c| c.get("encounter"))));
    let title = title.unwrap_or_else(|| split_camel(&resource_type));
    let measurements = if resource_type == "Observation" { measurements(r) } else { Vec::new() };
    let range = if resource_type == "Observation" { range(r) } else { None };
    Summary { resource_type, category, title, date, fields, links, measurements, range }
}

/// One measured quantity over time (one code, one unit).
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub code: String,
    pub name: String,
    pub unit: String,
    /// (ISO date as in the record, days since 1970-01-01, value), oldest first.
    pub points: Vec<(String, f64, f64)>,
    /// A reference range seen on these observations (the latest one).
    pub range: Option<(Option<f64>, Option<f64>)>,
    /// A second line drawn with this one: diastolic beside systolic blood
    /// pressure (one chart, as a reader knows it).
    pub second: Option<Box<Series>>,
}

/// LOINC codes the Trends chart opens on, in this order: blood pressure
/// (systolic, paired with diastolic), HbA1c, glucose (serum, blood,
/// fasting), weight. Every other series follows, most measured first.
pub const FIRST_TRENDS: &[&str] = &["8480-6", "4548-4", "2339-0", "2345-7", "1558-6", "29463-7"];
const SYSTOLIC: &str = "8480-6";
const DIASTOLIC: &str = "8462-4";

/// Numeric observations grouped by code and unit, each series oldest
/// first; the series with the most points first.
pub fn trends<'a>(summaries: impl IntoIterator<Item = &'a Summary>) -> Vec<Series> {
    let mut by_key: std::collections::BTreeMap<(String, String), Series> = std::collections::BTreeMap::new();
    for s in summaries {
        let Some(date) = &s.date else { continue };
        let Some(days) = days_since_epoch(date) else { continue };
        let single = s.measurements.len() == 1;
        for m in &s.measurements {
            let series = by_key.entry((m.code.clone(), m.unit.clone())).or_insert_with(|| Series {
                code: m.code.clone(),
                name: m.name.clone(),
                unit: m.unit.clone(),
                points: Vec::new(),
                range: None,
                second: None,
            });
            series.points.push((date.clone(), days, m.value));
            if single && s.range.is_some() {
                series.range = s.range;
            }
        }
    }
    let mut out: Vec<Series> = by_key.into_values().collect();
    for s in &mut out {
        s.points.sort_by(|a, b| a.1.total_cmp(&b.1));
    }
    pair_blood_pressure(&mut out);
    let rank = |s: &Series| FIRST_TRENDS.iter().position(|c| *c == s.code).unwrap_or(FIRST_TRENDS.len());
    out.sort_by(|a, b| rank(a).cmp(&rank(b)).then(b.points.len().cmp(&a.points.len())).then(a.name.cmp(&b.name)));
    out
}

/// Diastolic goes into the systolic series of the same unit as its second
/// line, named "Blood pressure".
fn pair_blood_pressure(out: &mut Vec<Series>) {
    let Some(d) = out.iter().position(|s| s.code == DIASTOLIC) else { return };
    let unit = out[d].unit.clone();
    let Some(sys) = out.iter().position(|s| s.code == SYSTOLIC && s.unit == unit) else { return };
    let diastolic = out.remove(d);
    let systolic = &mut out[if d < sys { sys - 1 } else { sys }];
    systolic.name = "Blood pressure".into();
    systolic.second = Some(Box::new(diastolic));
}

/// Days since 1970-01-01 (fractional with a time of day) of an ISO 8601
/// date or date-time; `None` if it does not start with `YYYY-MM-DD` (or
/// `YYYY-MM`, `YYYY`).
pub fn days_since_epoch(iso: &str) -> Option<f64> {
    let num = |s: Option<&str>| s.and_then(|s| s.parse::<i64>().ok());
    let mut parts = iso.get(..10.min(iso.len()))?.split('-');
    let y = num(parts.next())?;
    let m = num(parts.next()).unwrap_or(1);
    let d = num(parts.next()).unwrap_or(1);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let mut days = crate::when::days_from_civil(y, m, d) as f64;
    if let Some(time) = iso.get(11..16) {
        let h = num(time.get(..2)).unwrap_or(0);
        let min = num(time.get(3..5)).unwrap_or(0);
        days += (h * 60 + min) as f64 / 1440.0;
    }
    Some(days)
}

/// `DiagnosticReport` → `Diagnostic report`.
pub fn split_camel(s: &str) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push(' ');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
#[path = "summary_tests.rs"]
mod tests;
