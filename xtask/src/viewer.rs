//! The link viewer's page (`dist/view.html`), written after Trunk: Trunk
//! builds one page, and the viewer must not load the portal's. The page is
//! viewer/view.html with the stylesheet and icon tags Trunk wrote into
//! index.html (the same hashed files) and the address of the viewer's
//! versioned module (modules.rs) filled in. The server serves it at /view
//! with a CSP of its own (server/src/web.rs).

use std::path::Path;

use crate::Result;

/// The viewer's Trunk build (`data-bin`), one of modules.rs's runtime
/// modules.
pub const MODULE: &str = "chartkey-viewer";

/// Writes `dist/view.html` from `template`, for the viewer at `address`
/// (`/chartkey-viewer-<hash>/chartkey-viewer.js`).
pub fn write_page(dist: &Path, template: &Path, address: &str) -> Result {
    let read = |path: &Path| std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()));
    let page = page(&read(template)?, &read(&dist.join("index.html"))?, address)?;
    std::fs::write(dist.join("view.html"), page).map_err(|e| format!("writing view.html: {e}"))
}

/// The template with `{{head}}` (index.html's stylesheet and icon tags,
/// and preloads of the viewer's files) and `{{viewer}}` filled in.
fn page(template: &str, index: &str, address: &str) -> Result<String> {
    let safe = |c: char| c.is_ascii_alphanumeric() || "/-_.".contains(c);
    if !address.starts_with('/') || !address.ends_with(".js") || !address.chars().all(safe) {
        return Err(format!("unexpected viewer address {address:?}"));
    }
    let mut head: Vec<String> = tags(index, "<link ")
        .filter(|tag| tag.contains(r#"rel="stylesheet""#) || tag.contains(r#"rel="icon""#))
        .map(str::to_owned)
        .collect();
    if !head.iter().any(|t| t.contains("stylesheet")) {
        return Err("index.html has no stylesheet for the viewer".into());
    }
    let wasm = format!("{}_bg.wasm", address.trim_end_matches(".js"));
    head.push(format!(r#"<link rel="modulepreload" href="{address}">"#));
    head.push(format!(r#"<link rel="preload" href="{wasm}" as="fetch" type="application/wasm" crossorigin>"#));
    let filled = template.replace("{{head}}", &head.join("\n    ")).replace("{{viewer}}", address);
    if filled.contains("{{") {
        return Err("viewer/view.html has a placeholder this build does not fill".into());
    }
    Ok(filled)
}

/// Each tag in `html` opening with `start`, up to its `>`.
fn tags<'a>(html: &'a str, start: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    html.match_indices(start).filter_map(move |(at, _)| html[at..].find('>').map(|end| &html[at..=at + end]))
}

#[cfg(test)]
mod tests {
    use super::*;

    const INDEX: &str = r#"<head><link rel="stylesheet" href="/main-1.css" integrity="sha384-x"/>
        <link rel="icon" href="/favicon-2.svg"/><link rel="modulepreload" href="/chartkey-shell-3.js"></head>"#;
    const TEMPLATE: &str =
        r#"<head>{{head}}<script type="module">import init from "{{viewer}}"; init();</script></head>"#;

    #[test]
    fn the_page_gets_the_portals_style_and_its_own_module_only() {
        let page = page(TEMPLATE, INDEX, "/chartkey-viewer-00ff/chartkey-viewer.js").unwrap();
        assert!(page.contains(r#"<link rel="stylesheet" href="/main-1.css" integrity="sha384-x"/>"#), "{page}");
        assert!(page.contains(r#"<link rel="icon" href="/favicon-2.svg"/>"#));
        assert!(page.contains(r#"import init from "/chartkey-viewer-00ff/chartkey-viewer.js""#));
        assert!(page.contains(r#"href="/chartkey-viewer-00ff/chartkey-viewer_bg.wasm" as="fetch""#));
        assert!(!page.contains("chartkey-shell"), "not the portal's code");
        assert!(!page.contains("{{"));
    }

    #[test]
    fn odd_inputs_are_refused() {
        let address = "/chartkey-viewer-00ff/chartkey-viewer.js";
        assert!(page(TEMPLATE, "<head></head>", address).is_err(), "no stylesheet");
        assert!(page(&format!("{TEMPLATE}{{{{other}}}}"), INDEX, address).is_err(), "an unknown placeholder");
        for bad in ["chartkey-viewer.js", "/x.wasm", r#"/a".js"#, "/a b.js"] {
            assert!(page(TEMPLATE, INDEX, bad).is_err(), "{bad}");
        }
    }
}
