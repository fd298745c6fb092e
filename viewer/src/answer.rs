//! The host's answers, in the words the viewer shows. A host's own error
//! text is shown as text, cut to one short paragraph.

use chartkey_core::shl::{Manifest, PasscodeRefused};

/// What a manifest request came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    Manifest(Manifest),
    WrongPasscode { remaining: u32 },
    Refused(String),
}

/// Reads the host's answer to a manifest request (HTTP status and body).
pub fn manifest(status: u16, body: &str) -> Answer {
    match status {
        200 => serde_json::from_str(body).map(Answer::Manifest).unwrap_or_else(|_| {
            Answer::Refused("The link's host answered with something that is not a manifest.".into())
        }),
        401 => match serde_json::from_str::<PasscodeRefused>(body) {
            Ok(p) => Answer::WrongPasscode { remaining: p.remaining_attempts },
            Err(_) => Answer::Refused("The link's host refused the passcode.".into()),
        },
        _ => Answer::Refused(refusal(status, body)),
    }
}

/// Why a request was refused: the IG's meaning of the status, and the
/// host's reason when it gave one (e.g. that the ledger could not record
/// the use, so nothing was released).
pub fn refusal(status: u16, body: &str) -> String {
    let reason = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("error")?.as_str().map(one_paragraph))
        .filter(|r| !r.is_empty());
    let meaning = match status {
        404 => "This link does not exist, was stopped by the patient, or has expired.".to_owned(),
        429 => "The link's host is busy with too many requests: wait a minute and try again.".to_owned(),
        _ => format!("The link's host could not answer (HTTP {status})."),
    };
    match reason {
        Some(reason) if status != 404 => format!("{meaning} It said: “{reason}”"),
        _ => meaning,
    }
}

/// At most 300 characters, without control characters.
fn one_paragraph(text: &str) -> String {
    let mut out: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).take(300).collect();
    if text.chars().count() > 300 {
        out.push('…');
    }
    out.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_and_a_wrong_passcode_are_read() {
        let body = r#"{"status":"finalized","files":[{"contentType":"application/fhir+json","embedded":"a.b.c.d.e"}]}"#;
        let Answer::Manifest(m) = manifest(200, body) else { panic!("a manifest") };
        assert_eq!(m.files[0].embedded.as_deref(), Some("a.b.c.d.e"));
        assert_eq!(manifest(401, r#"{"remainingAttempts":3}"#), Answer::WrongPasscode { remaining: 3 });
    }

    #[test]
    fn malformed_answers_are_refusals_not_panics() {
        for (status, body) in [(200, ""), (200, "[]"), (200, r#"{"files":"x"}"#), (401, "{}"), (401, "nope")] {
            assert!(matches!(manifest(status, body), Answer::Refused(_)), "{status} {body}");
        }
    }

    #[test]
    fn refusals_say_what_the_status_means_and_the_hosts_reason() {
        assert!(refusal(404, "").contains("stopped by the patient"));
        assert!(!refusal(404, r#"{"error":"anything"}"#).contains("anything"), "404 means one thing");
        let ledger = refusal(503, r#"{"error":"The ledger could not record this use,\nso nothing was released."}"#);
        assert!(ledger.contains("HTTP 503") && ledger.contains("could not record this use, so nothing"), "{ledger}");
        assert!(refusal(429, "{}").contains("wait a minute"));
        let long = refusal(500, &serde_json::json!({ "error": "x".repeat(5000) }).to_string());
        assert!(long.chars().count() < 400, "cut to one paragraph");
    }
}
