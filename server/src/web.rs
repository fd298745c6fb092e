//! Serving the built app, and the security headers every response carries.

use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Response, StatusCode, header};
use axum::middleware::Next;
use axum::response::IntoResponse;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};
use tower_http::CompressionLevel;
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{DefaultPredicate, NotForContentType, Predicate};

/// The app's entry page and the link viewer's, read once at start, and
/// the CSP of each, which allows exactly its inline scripts.
#[derive(Clone)]
pub struct Site {
    pub dist: Option<PathBuf>,
    /// Strict-Transport-Security, when served over https.
    pub hsts: bool,
    pub index_html: Option<axum::body::Bytes>,
    pub csp: HeaderValue,
    /// The viewer (/view): its page, and a CSP that also lets it reach
    /// the link hosts the operator named.
    pub view_html: Option<axum::body::Bytes>,
    pub view_csp: HeaderValue,
    /// The app build this server serves (`<meta name="chartkey-build">`),
    /// sent as `x-chartkey-build` on every response: a page from an older
    /// build sees the difference and asks for a reload.
    pub build: Option<HeaderValue>,
}

impl Site {
    /// Reads the pages in `dist`; `viewer_hosts` are the other link hosts
    /// the viewer may reach.
    pub fn load(dist: Option<&Path>, https: bool, viewer_hosts: &[url::Url]) -> anyhow::Result<Self> {
        let read = |page: &str| -> anyhow::Result<Option<String>> {
            let Some(dir) = dist else { return Ok(None) };
            let path = dir.join(page);
            std::fs::read_to_string(&path).map(Some).map_err(|e| {
                anyhow::anyhow!("the web app is not built ({}: {e}); run `cargo xtask run`", path.display())
            })
        };
        let (index_html, view_html) = (read("index.html")?, read("view.html")?);
        let hashes = index_html.as_deref().map(inline_script_hashes).unwrap_or_default();
        let csp = HeaderValue::from_str(&content_security_policy(&hashes))?;
        let view_hashes = view_html.as_deref().map(inline_script_hashes).unwrap_or_default();
        let view_csp = HeaderValue::from_str(&viewer_security_policy(&view_hashes, viewer_hosts))?;
        let build = index_html.as_deref().and_then(build_of).and_then(|b| HeaderValue::from_str(&b).ok());
        Ok(Self {
            dist: dist.map(Path::to_owned),
            hsts: https,
            index_html: index_html.map(Into::into),
            csp,
            view_html: view_html.map(Into::into),
            view_csp,
            build,
        })
    }
}

/// CSP: scripts only from this origin, plus WebAssembly compilation and the
/// loader scripts Trunk inlines (by hash, never 'unsafe-inline').
pub fn content_security_policy(script_hashes: &[String]) -> String {
    policy(script_hashes, "'self'", "worker-src 'self' blob:; form-action 'self'")
}

/// The viewer's CSP: the portal's, except that it may also reach the link
/// hosts the operator named (by origin), starts no workers and submits no
/// forms anywhere.
pub fn viewer_security_policy(script_hashes: &[String], hosts: &[url::Url]) -> String {
    let origins: String = hosts.iter().map(|h| format!(" {}", h.origin().ascii_serialization())).collect();
    policy(script_hashes, &format!("'self'{origins}"), "worker-src 'none'; form-action 'none'")
}

fn policy(script_hashes: &[String], connect: &str, rest: &str) -> String {
    let hashes: String = script_hashes.iter().map(|h| format!(" 'sha256-{h}'")).collect();
    format!(
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'{hashes}; style-src 'self'; img-src 'self' data: blob:; \
         font-src 'self'; connect-src {connect}; {rest}; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    )
}

/// The build named in the page (`<meta name="chartkey-build" content="…">`,
/// as `cargo xtask` writes it): hex digits only, else none.
pub fn build_of(html: &str) -> Option<String> {
    let tag = r#"<meta name="chartkey-build" content=""#;
    let start = html.find(tag)? + tag.len();
    let value = &html[start..start + html[start..].find('"')?];
    (!value.is_empty() && value.len() <= 64 && value.bytes().all(|b| b.is_ascii_hexdigit())).then(|| value.to_owned())
}

/// Base64 SHA-256 of the body of every inline `<script>` (one without a
/// `src` attribute) in `html`. Unterminated or odd markup yields no hash
/// for that part, so the browser refuses it rather than us allowing more.
pub fn inline_script_hashes(html: &str) -> Vec<String> {
    let mut hashes = Vec::new();
    let mut rest = html;
    while let Some(start) = find_ascii_ci(rest, "<script") {
        let after_tag_name = &rest[start + 7..];
        if !after_tag_name.starts_with(|c: char| c == '>' || c.is_ascii_whitespace()) {
            rest = after_tag_name;
            continue;
        }
        let Some(open_end) = after_tag_name.find('>') else {
            break;
        };
        let attrs = &after_tag_name[..open_end];
        let body_start = &after_tag_name[open_end + 1..];
        let Some(close) = find_ascii_ci(body_start, "</script") else {
            break;
        };
        if !has_attribute(attrs, "src") {
            hashes.push(STANDARD.encode(Sha256::digest(&body_start.as_bytes()[..close])));
        }
        rest = &body_start[close + 8..];
    }
    hashes
}

fn find_ascii_ci(haystack: &str, needle: &str) -> Option<usize> {
    haystack.as_bytes().windows(needle.len()).position(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

fn has_attribute(attrs: &str, name: &str) -> bool {
    attrs
        .split(|c: char| c.is_ascii_whitespace())
        .any(|a| a.split('=').next().is_some_and(|n| n.eq_ignore_ascii_case(name)))
}

/// Adds the security headers to every response. The viewer's page gets
/// its own CSP, and the camera (to scan a link's QR code).
pub async fn security_headers(State(site): State<Site>, request: Request, next: Next) -> Response<Body> {
    let viewer = request.uri().path() == VIEWER_PATH;
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, if viewer { site.view_csp.clone() } else { site.csp.clone() });
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if site.hsts {
        h.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000; includeSubDomains"));
    }
    if let Some(build) = &site.build {
        h.insert("x-chartkey-build", build.clone());
    }
    h.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    h.insert("cross-origin-resource-policy", HeaderValue::from_static("same-origin"));
    let camera = if viewer { "camera=(self)" } else { "camera=()" };
    let permissions = format!(
        "{camera}, microphone=(), geolocation=(), payment=(), usb=(), serial=(), bluetooth=(), \
         interest-cohort=(), publickey-credentials-create=(self), publickey-credentials-get=(self)"
    );
    h.insert("permissions-policy", HeaderValue::from_str(&permissions).expect("the policy is ASCII"));
    response
}

/// Where the link viewer is served (links carry `<origin>/view#shlink:/…`).
pub use chartkey_core::shl::VIEWER_PATH;

/// The link viewer's page (viewer/view.html as the build wrote it).
pub async fn viewer_page(State(site): State<Site>) -> Response<Body> {
    match &site.view_html {
        Some(html) => {
            ([(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")], html.clone())
                .into_response()
        }
        None => (StatusCode::NOT_FOUND, "Not found").into_response(),
    }
}

/// Compresses what the server makes as it answers (JSON, the entry page,
/// assets without a precompressed form) for browsers that accept brotli
/// or gzip. Not ciphertext (incompressible, and its Content-Length drives
/// the browser's progress), not event streams (each notice must leave at
/// once), not what is already compressed. Brotli at quality 4: its default
/// (11) costs about a hundred times the CPU for a few per cent.
pub fn compression() -> CompressionLayer<impl Predicate> {
    let predicate = DefaultPredicate::new().and(NotForContentType::const_new("application/octet-stream"));
    CompressionLayer::new().no_deflate().no_zstd().quality(CompressionLevel::Precise(4)).compress_when(predicate)
}

/// Long caching for Trunk's content-hashed files, revalidation for the
/// rest; and, as a file may go in a compressed form, a cache keeps one
/// copy per Accept-Encoding.
pub async fn cache_headers(request: Request, next: Next) -> Response<Body> {
    let immutable = is_hashed_asset(request.uri().path());
    let mut response = next.run(request).await;
    if response.status().is_success() {
        let value = if immutable { "public, max-age=31536000, immutable" } else { "no-cache" };
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(value));
        let varies =
            headers.get_all(header::VARY).iter().any(|v| v.as_bytes().eq_ignore_ascii_case(b"accept-encoding"));
        if !varies {
            headers.append(header::VARY, HeaderValue::from_static("accept-encoding"));
        }
    }
    response
}

/// `name-0123456789abcdef.js`, `name-0123456789abcdef_bg.wasm`: Trunk's
/// hashed output names (a 64-bit hash in hex, so leading zeros drop: 8 to
/// 16 digits); and any file in a `name-0123456789abcdef/` directory (the
/// app's workers, versioned by `cargo xtask`: xtask/src/modules.rs).
pub fn is_hashed_asset(path: &str) -> bool {
    let mut segments = path.rsplit('/');
    let file = segments.next().unwrap_or("");
    let Some((stem, _ext)) = file.rsplit_once('.') else {
        return false;
    };
    let in_hashed_dir = segments.next().is_some_and(is_hashed_name);
    in_hashed_dir || is_hashed_name(stem.strip_suffix("_bg").unwrap_or(stem))
}

fn is_hashed_name(name: &str) -> bool {
    name.rsplit_once('-')
        .is_some_and(|(_, hash)| (8..=16).contains(&hash.len()) && hash.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Paths that are not files get the app's entry page (client-side routes);
/// missing files are a plain 404.
pub async fn spa_fallback(State(site): State<Site>, request: Request) -> Response<Body> {
    let path = request.uri().path();
    let last = path.rsplit('/').next().unwrap_or("");
    let looks_like_file = last.contains('.');
    match (&site.index_html, looks_like_file || path.starts_with("/api/")) {
        (Some(html), false) => {
            ([(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")], html.clone())
                .into_response()
        }
        _ => (StatusCode::NOT_FOUND, "Not found").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_inline_scripts_only() {
        let html = r#"<html><head><script src="/a.js"></script><SCRIPT type="module">init()</SCRIPT>
            <scripty>no</scripty><script>x</script></head></html>"#;
        let hashes = inline_script_hashes(html);
        assert_eq!(hashes, vec![STANDARD.encode(Sha256::digest(b"init()")), STANDARD.encode(Sha256::digest(b"x"))]);
    }

    #[test]
    fn malformed_html_yields_no_extra_hashes() {
        assert!(inline_script_hashes("").is_empty());
        assert!(inline_script_hashes("<script").is_empty());
        assert!(inline_script_hashes("<script>unterminated").is_empty());
        assert!(inline_script_hashes("<script type='module'").is_empty());
        assert_eq!(inline_script_hashes("<script>a</script><script>b").len(), 1);
        // Not confused by multi-byte text around tags.
        assert_eq!(inline_script_hashes("é<script>ü</script>é").len(), 1);
    }

    #[test]
    fn the_build_is_read_from_the_page_and_nothing_else() {
        let page = |content: &str| format!(r#"<head><meta name="chartkey-build" content="{content}"></head>"#);
        assert_eq!(build_of(&page("00ff12ab34cd56ef")), Some("00ff12ab34cd56ef".into()));
        for bad in ["", "xyz", "12 34", "zz\"><script>", &"a".repeat(65)] {
            assert_eq!(build_of(&page(bad)), None, "{bad:?}");
        }
        assert_eq!(build_of("<head></head>"), None);
        assert_eq!(build_of(r#"<meta name="chartkey-build" content="abc"#), None);
    }

    #[test]
    fn the_viewers_csp_reaches_only_the_hosts_named_and_starts_nothing_else() {
        let hosts = ["https://links.example.org/some/path".parse().unwrap(), "http://127.0.0.1:9000".parse().unwrap()];
        let csp = viewer_security_policy(&["abc".into()], &hosts);
        assert!(csp.contains("connect-src 'self' https://links.example.org http://127.0.0.1:9000;"), "{csp}");
        assert!(csp.contains("'sha256-abc'") && !csp.contains("unsafe-inline"));
        assert!(csp.contains("worker-src 'none'") && csp.contains("form-action 'none'"));
        assert!(viewer_security_policy(&[], &[]).contains("connect-src 'self';"));
        assert!(content_security_policy(&[]).contains("connect-src 'self';"));
    }

    #[test]
    fn csp_has_no_unsafe_inline() {
        let csp = content_security_policy(&["abc".into()]);
        assert!(!csp.contains("unsafe-inline"));
        assert!(csp.contains("'wasm-unsafe-eval'"));
        assert!(csp.contains("'sha256-abc'"));
        assert!(csp.contains("frame-ancestors 'none'"));
    }

    #[test]
    fn hashed_asset_names() {
        assert!(is_hashed_asset("/chartkey-app-0123456789abcdef.js"));
        assert!(is_hashed_asset("/chartkey-app-0123456789abcdef_bg.wasm"));
        assert!(is_hashed_asset("/style-fedcba9876543210.css"));
        assert!(is_hashed_asset("/favicon-a07ed912244191f.svg"));
        assert!(!is_hashed_asset("/index.html"));
        assert!(!is_hashed_asset("/favicon.svg"));
        assert!(!is_hashed_asset("/x-0123456789abcdeg.js"));
        assert!(!is_hashed_asset("/x-01234567890abcdef.js"));
        assert!(!is_hashed_asset("/my-file.js"));
        assert!(!is_hashed_asset("/"));
        assert!(is_hashed_asset("/chartkey-kdf-worker-0123456789abcdef/chartkey-kdf-worker_loader.js"));
        assert!(is_hashed_asset("/chartkey-kdf-worker-0123456789abcdef/chartkey-kdf-worker_bg.wasm"));
        assert!(!is_hashed_asset("/chartkey-kdf-worker-0123456789abcdef/"));
        assert!(!is_hashed_asset("/chartkey-kdf-worker/chartkey-kdf-worker.js"));
        assert!(!is_hashed_asset("/x-0123456789abcdef/y/z.js"));
    }
}
