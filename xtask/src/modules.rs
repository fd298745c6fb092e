//! Modules the app starts at run time (Trunk's `data-type="worker"`
//! builds). Trunk gives them no hashed name, so a browser could cache one
//! build's page with another build's worker. After Trunk, each goes into a
//! directory named by a hash of its files (`/chartkey-kdf-worker-<hash>/`),
//! and index.html names that address in `<meta name="<module>">`: a page
//! only ever starts the worker of its own build, the server may cache
//! those files for good, and a page older than a deploy finds its worker
//! gone (a clear "reload") rather than a newer one speaking another
//! protocol.

use std::hash::{Hash, Hasher};
use std::path::Path;

use crate::Result;

/// Trunk's worker builds (`data-bin`), in index.html: the portal (loaded
/// by the shell with a dynamic `import()`), the key worker (with Trunk's
/// loader shim) and the link viewer (started by view.html: viewer.rs).
pub const RUNTIME_MODULES: &[&str] = &["chartkey-app", "chartkey-kdf-worker", crate::viewer::MODULE];

/// Versions every runtime module in `dist`; returns the addresses.
pub fn version_all(dist: &Path) -> Result<Vec<String>> {
    RUNTIME_MODULES.iter().map(|name| version(dist, name)).collect()
}

/// Names the build in index.html (`<meta name="chartkey-build">`): the
/// server sends it on every response, and a page of another build sees
/// the difference and offers a reload (app/src/ui/update.rs).
pub fn name_build(dist: &Path, build: &str) -> Result {
    add_meta(dist, "chartkey-build", build)
}

/// Moves `name.js`, `name_bg.wasm` and, when Trunk wrote one,
/// `name_loader.js` into `name-<hash>/`, and adds the address of the
/// loader (or else of the glue) to index.html.
pub fn version(dist: &Path, name: &str) -> Result<String> {
    let mut files = vec![format!("{name}.js"), format!("{name}_bg.wasm")];
    let loader = format!("{name}_loader.js");
    let has_loader = dist.join(&loader).is_file();
    if has_loader {
        files.push(loader);
    }
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for file in &files {
        let path = dist.join(file);
        let bytes = std::fs::read(&path)
            .map_err(|e| format!("{}: {e} (is `{name}` a data-type=\"worker\" build?)", path.display()))?;
        file.hash(&mut hasher);
        bytes.hash(&mut hasher);
    }
    let dir = format!("{name}-{:016x}", hasher.finish());
    std::fs::create_dir_all(dist.join(&dir)).map_err(|e| format!("creating {dir}: {e}"))?;
    for file in &files {
        std::fs::rename(dist.join(file), dist.join(&dir).join(file)).map_err(|e| format!("moving {file}: {e}"))?;
    }
    let entry = if has_loader { &files[2] } else { &files[0] };
    let address = format!("/{dir}/{entry}");
    add_meta(dist, name, &address)?;
    Ok(address)
}

/// Adds `<meta name="{name}" content="{content}">` to `dist/index.html`.
fn add_meta(dist: &Path, name: &str, content: &str) -> Result {
    let index = dist.join("index.html");
    let html = std::fs::read_to_string(&index).map_err(|e| format!("reading {}: {e}", index.display()))?;
    std::fs::write(&index, with_meta(&html, name, content)?).map_err(|e| format!("writing {}: {e}", index.display()))
}

/// `html` with `<meta name="{name}" content="{address}">` at the end of its
/// head; refuses a page that already names the module.
fn with_meta(html: &str, name: &str, address: &str) -> Result<String> {
    if html.contains(&format!(r#"<meta name="{name}""#)) {
        return Err(format!("index.html already names {name}: build again from a clean dist"));
    }
    let head_end = html.find("</head>").ok_or("index.html has no </head>")?;
    let meta = format!(r#"<meta name="{name}" content="{address}">"#);
    Ok(format!("{}{meta}{}", &html[..head_end], &html[head_end..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moves_the_files_under_their_hash_and_names_them_in_the_page() {
        let dist = std::env::temp_dir().join(format!("chartkey-modules-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dist);
        std::fs::create_dir_all(&dist).unwrap();
        let write = |file: &str, body: &str| std::fs::write(dist.join(file), body).unwrap();
        write("index.html", "<html><head><title>x</title></head><body></body></html>");
        write("w.js", "export default function init() {}");
        write("w_bg.wasm", "\0asm");
        write("w_loader.js", "import init from './w.js';await init();");

        let address = version(&dist, "w").unwrap();
        let dir = address.strip_prefix('/').unwrap().strip_suffix("/w_loader.js").unwrap();
        assert!(dir.starts_with("w-") && dir.len() == 18, "{address}");
        for file in ["w.js", "w_bg.wasm", "w_loader.js"] {
            assert!(dist.join(dir).join(file).is_file(), "{file} moved");
            assert!(!dist.join(file).exists(), "{file} gone from the top");
        }
        let html = std::fs::read_to_string(dist.join("index.html")).unwrap();
        assert!(html.contains(&format!(r#"<meta name="w" content="{address}"></head>"#)), "{html}");
        // A second run finds no files to move and does not add a second tag.
        assert!(version(&dist, "w").is_err());
        // Another build of the module gets another directory.
        write("w.js", "export default function init() { /* changed */ }");
        write("w_bg.wasm", "\0asm");
        write("w_loader.js", "import init from './w.js';await init();");
        write("index.html", "<html><head></head></html>");
        assert_ne!(version(&dist, "w").unwrap(), address);
        std::fs::remove_dir_all(&dist).unwrap();
    }

    #[test]
    fn a_module_without_a_loader_is_named_by_its_glue() {
        let dist = std::env::temp_dir().join(format!("chartkey-portal-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dist);
        std::fs::create_dir_all(&dist).unwrap();
        std::fs::write(dist.join("index.html"), "<html><head></head></html>").unwrap();
        std::fs::write(dist.join("p.js"), "export default async function init() {}").unwrap();
        std::fs::write(dist.join("p_bg.wasm"), "\0asm").unwrap();
        let address = version(&dist, "p").unwrap();
        assert!(address.starts_with("/p-") && address.ends_with("/p.js"), "{address}");
        let dir = dist.join(address.trim_start_matches('/').trim_end_matches("/p.js"));
        assert!(dir.join("p_bg.wasm").is_file() && !dir.join("p_loader.js").exists());
        // Without its wasm there is nothing to version.
        std::fs::write(dist.join("p.js"), "").unwrap();
        assert!(version(&dist, "p").unwrap_err().contains("p_bg.wasm"));
        std::fs::remove_dir_all(&dist).unwrap();
    }

    #[test]
    fn the_build_is_named_once() {
        let dist = std::env::temp_dir().join(format!("chartkey-build-{}", std::process::id()));
        std::fs::create_dir_all(&dist).unwrap();
        std::fs::write(dist.join("index.html"), "<html><head></head></html>").unwrap();
        name_build(&dist, "00ff").unwrap();
        let html = std::fs::read_to_string(dist.join("index.html")).unwrap();
        assert!(html.contains(r#"<meta name="chartkey-build" content="00ff"></head>"#), "{html}");
        assert!(name_build(&dist, "11ee").is_err());
        std::fs::remove_dir_all(&dist).unwrap();
    }

    #[test]
    fn a_page_without_a_head_is_refused() {
        assert!(with_meta("<html><body></body></html>", "w", "/w/w.js").is_err());
        assert!(with_meta(r#"<head><meta name="w" content="/old"></head>"#, "w", "/w/w.js").is_err());
    }
}
