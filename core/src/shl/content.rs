//! What a link carries and how it is handed over: the chosen records as
//! one FHIR Bundle (`collection`), and the link as a QR code.

use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};

use crate::fhir::ImportedResource;

/// The resources as a FHIR Bundle of type `collection`, each entry with its
/// `fullUrl` when it had one, the resource exactly as stored.
pub fn collection(resources: &[ImportedResource]) -> Result<String, serde_json::Error> {
    let entries = resources
        .iter()
        .map(|r| {
            let resource: serde_json::Value = serde_json::from_str(&r.json)?;
            let mut entry = serde_json::Map::new();
            if let Some(url) = &r.full_url {
                entry.insert("fullUrl".into(), url.clone().into());
            }
            entry.insert("resource".into(), resource);
            Ok(serde_json::Value::Object(entry))
        })
        .collect::<Result<Vec<_>, serde_json::Error>>()?;
    serde_json::to_string(&serde_json::json!({
        "resourceType": "Bundle",
        "type": "collection",
        "entry": entries,
    }))
}

/// `text` as a QR code in SVG (error correction M, the IG's choice for
/// links), sized by its viewBox so the page scales it; `None` if the text
/// is too long for a QR code.
pub fn qr_svg(text: &str, title: &str) -> Option<String> {
    let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M).ok()?;
    let image = code
        .render::<svg::Color>()
        .quiet_zone(true)
        .module_dimensions(4, 4)
        .dark_color(svg::Color("#000000"))
        .light_color(svg::Color("#ffffff"))
        .build();
    // The renderer writes a fixed size; the page sizes it instead, and
    // screen readers hear its title.
    let escaped: String = title
        .chars()
        .map(|c| match c {
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '&' => "&amp;".to_owned(),
            '"' => "&quot;".to_owned(),
            c => c.to_string(),
        })
        .collect();
    let open = image.find("<svg")?;
    let close = image[open..].find('>')? + open;
    // The XML prolog is left out: this goes inside an HTML page.
    Some(format!(
        "<svg{} role=\"img\" aria-label=\"{escaped}\" preserveAspectRatio=\"xMidYMid meet\"><title>{escaped}</title>{}",
        &image[open + 4..close].replace(" width=", " data-width=").replace(" height=", " data-height="),
        &image[close + 1..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chosen_records_travel_as_a_collection_bundle() {
        let resources = [
            ImportedResource {
                resource_type: "Condition".into(),
                id: Some("c1".into()),
                full_url: Some("urn:uuid:c1".into()),
                json: r#"{"resourceType":"Condition","id":"c1"}"#.into(),
            },
            ImportedResource {
                resource_type: "Observation".into(),
                id: None,
                full_url: None,
                json: r#"{"resourceType":"Observation"}"#.into(),
            },
        ];
        let bundle: serde_json::Value = serde_json::from_str(&collection(&resources).unwrap()).unwrap();
        assert_eq!(bundle["type"], "collection");
        assert_eq!(bundle["entry"][0]["fullUrl"], "urn:uuid:c1");
        assert_eq!(bundle["entry"][0]["resource"]["id"], "c1");
        assert!(bundle["entry"][1].get("fullUrl").is_none());
        let broken = [ImportedResource { json: "{".into(), ..resources[1].clone() }];
        assert!(collection(&broken).is_err());
    }

    #[test]
    fn a_link_becomes_a_titled_scalable_qr_code() {
        let svg = qr_svg(&format!("shlink:/{}", "A".repeat(300)), "Link <for> Dr Rao").unwrap();
        assert!(svg.contains("<title>Link &lt;for&gt; Dr Rao</title>"));
        assert!(svg.contains("viewBox="));
        let root = &svg[..svg.find('>').unwrap()];
        assert!(svg.starts_with("<svg") && !root.contains(" width=\""), "sized by the page: {root}");
        assert!(qr_svg(&"A".repeat(5_000), "too long").is_none());
    }
}
