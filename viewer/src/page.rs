//! The page: view.html's steps shown in turn (the link, who is asking,
//! the records), and the records drawn as the chart's record view draws
//! them, as text nodes only: nothing a record contains is ever markup.

use std::cell::RefCell;

use chartkey_core::shl::{Link, ManifestRequest};
use chartkey_core::summary::Attachment;
use chartkey_core::when::local::{format_date, format_fhir_date};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{JsFuture, spawn_local};
use web_sys::{Element, HtmlElement, HtmlInputElement, HtmlTextAreaElement, RequestInit, Response};

use crate::answer::{self, Answer};
use crate::decrypt;
use crate::dom::{append, element, make, on, say, window};
use crate::scan;
use chartkey_core::bundle_view::{Record, Shown};

/// Files up to this many characters come embedded in the manifest, larger
/// ones by location.
const EMBEDDED_LENGTH_MAX: u64 = 4_000_000;

thread_local! {
    /// The link being opened; gone with the tab.
    static LINK: RefCell<Option<Link>> = const { RefCell::new(None) };
}

/// Starts the page: a link in the address (`/view#shlink:/…`) opens at
/// once, and leaves the address bar and the tab's history.
pub fn start() {
    let location = window().location();
    let fragment = location.hash().unwrap_or_default();
    if fragment.contains("shlink:/") {
        let bare = location.pathname().unwrap_or_else(|_| "/view".into());
        if let Ok(history) = window().history() {
            let _ = history.replace_state_with_url(&JsValue::NULL, "", Some(&bare));
        }
        choose(fragment.trim_start_matches('#'));
    }
    on("link-form", "submit", |event| {
        event.prevent_default();
        let text = element::<HtmlTextAreaElement>("link-input").value();
        choose(&text);
    });
    on("request-form", "submit", |event| {
        event.prevent_default();
        spawn_local(open());
    });
    on("another", "click", |_| restart());
    scan::offer(choose);
}

/// Takes a link as pasted, opened or scanned, and asks who is opening it.
pub fn choose(text: &str) {
    let link = match Link::parse(text) {
        Ok(link) => link,
        Err(e) => return say("link-error", &e.to_string()),
    };
    let now = (js_sys::Date::now() / 1000.0) as u64;
    if link.expired_at(now) {
        let when = link.expires.map(|e| format_date(e as i64)).unwrap_or_default();
        return say("link-error", &format!("This link expired on {when}. Ask the patient for a new one."));
    }
    say("link-error", "");
    let title = link.label.clone().unwrap_or_else(|| "Shared records".into());
    element::<HtmlElement>("link-title").set_text_content(Some(&title));
    element::<HtmlElement>("link-facts").set_text_content(Some(&facts(&link)));
    element::<HtmlElement>("passcode-field").set_hidden(!link.flags.passcode);
    element::<HtmlInputElement>("passcode").set_required(link.flags.passcode);
    element::<HtmlElement>("link-step").set_hidden(true);
    element::<HtmlElement>("request-step").set_hidden(false);
    LINK.with(|l| *l.borrow_mut() = Some(link));
    let _ = element::<HtmlInputElement>("recipient").focus();
}

/// Where the link's records are kept, and until when.
fn facts(link: &Link) -> String {
    let host = host_of(&link.url);
    let until = match link.expires {
        Some(e) => format!("until {}", format_date(e as i64)),
        None => "with no end date".into(),
    };
    let changes = if link.flags.long_term { " The patient may update what it carries." } else { "" };
    format!("Kept encrypted at {host}, shared {until}.{changes}")
}

/// The host (and port) of a link's URL, as the page names it.
fn host_of(url: &str) -> &str {
    url.split("://").nth(1).and_then(|r| r.split('/').next()).unwrap_or(url)
}

/// Back to the first step, forgetting the link and anything shown.
fn restart() {
    LINK.with(|l| l.borrow_mut().take());
    element::<HtmlTextAreaElement>("link-input").set_value("");
    element::<HtmlInputElement>("passcode").set_value("");
    say("request-error", "");
    say("progress", "");
    let records = element::<HtmlElement>("records");
    records.set_inner_html("");
    records.set_hidden(true);
    element::<HtmlElement>("request-step").set_hidden(true);
    element::<HtmlElement>("link-step").set_hidden(false);
    let _ = element::<HtmlTextAreaElement>("link-input").focus();
}

/// Asks the link's host for the files, decrypts them and shows them.
async fn open() {
    let Some(link) = LINK.with(|l| l.borrow().clone()) else { return };
    let recipient = element::<HtmlInputElement>("recipient").value().trim().to_owned();
    if recipient.is_empty() {
        return say("request-error", "Say who you are: the patient sees it in the list of who opened the link.");
    }
    let passcode = link.flags.passcode.then(|| element::<HtmlInputElement>("passcode").value());
    let button = element::<web_sys::HtmlButtonElement>("request-button");
    button.set_disabled(true);
    say("request-error", "");
    say("progress", "Asking the link's host for the records…");
    mark("shl:start");
    let result = fetch_files(&link, recipient, passcode).await;
    mark("shl:fetched");
    button.set_disabled(false);
    match result {
        Ok(files) => {
            say("progress", "Decrypting…");
            let mut shown = Shown::default();
            for jwe in files {
                match decrypt::open(&link.key, &jwe).await {
                    Ok(file) => shown.add_file(file.content_type.as_deref(), &file.bytes),
                    Err(e) => shown.skipped.push(e.to_string()),
                }
            }
            mark("shl:decrypted");
            render(&link, &shown);
            mark("shl:drawn");
            say("progress", "");
        }
        Err(why) => {
            say("progress", "");
            say("request-error", &why);
        }
    }
}

/// A mark on the page's performance timeline (the benchmark reads them).
fn mark(name: &str) {
    if let Some(performance) = window().performance() {
        let _ = performance.mark(name);
    }
}

/// The link's encrypted files: by the manifest (with a `location` fetched
/// where the host gave one), or the one file a `U` link names.
async fn fetch_files(link: &Link, recipient: String, passcode: Option<String>) -> Result<Vec<String>, String> {
    if link.flags.direct {
        let url = format!("{}?recipient={}", link.url, String::from(js_sys::encode_uri_component(&recipient)));
        let (status, body) = request(&link.url, &url, None).await?;
        return if status == 200 { Ok(vec![body]) } else { Err(answer::refusal(status, &body)) };
    }
    let ask = ManifestRequest { recipient, passcode, embedded_length_max: Some(EMBEDDED_LENGTH_MAX) };
    let body = serde_json::to_string(&ask).map_err(|e| e.to_string())?;
    let (status, text) = request(&link.url, &link.url, Some(&body)).await?;
    mark("shl:manifest");
    let manifest = match answer::manifest(status, &text) {
        Answer::Manifest(m) => m,
        Answer::WrongPasscode { remaining: 0 } => {
            return Err("Wrong passcode. No attempts are left: the link no longer opens.".into());
        }
        Answer::WrongPasscode { remaining } => {
            let _ = element::<HtmlInputElement>("passcode").focus();
            return Err(format!("Wrong passcode. {remaining} attempts left."));
        }
        Answer::Refused(why) => return Err(why),
    };
    let mut files = Vec::with_capacity(manifest.files.len());
    for file in manifest.files {
        match (file.embedded, file.location) {
            (Some(jwe), _) => files.push(jwe),
            (None, Some(location)) => {
                let (status, body) = request(&link.url, &location, None).await?;
                if status != 200 {
                    return Err(answer::refusal(status, &body));
                }
                files.push(body);
            }
            (None, None) => return Err("The link's host listed a file without its content.".into()),
        }
    }
    Ok(files)
}

/// One request without cookies or referrer: its status and body. A host
/// this page may not reach (the portal's CSP) is named in the refusal.
async fn request(manifest_url: &str, url: &str, json: Option<&str>) -> Result<(u16, String), String> {
    let init = RequestInit::new();
    init.set_credentials(web_sys::RequestCredentials::Omit);
    init.set_mode(web_sys::RequestMode::Cors);
    if let Some(json) = json {
        init.set_method("POST");
        init.set_body(&JsValue::from_str(json));
        let headers = web_sys::Headers::new().map_err(|_| "The browser refused the request.".to_owned())?;
        let _ = headers.set("content-type", "application/json");
        init.set_headers(&headers);
    }
    let unreachable = || {
        let origin = window().location().origin().unwrap_or_default();
        if url.starts_with(&origin) {
            "The link's host could not be reached. Check the connection and try again.".to_owned()
        } else {
            let host = host_of(manifest_url);
            format!(
                "This link's records are kept at {host}, which this viewer is not allowed to contact (or which \
                 could not be reached). Open the link in that service's own viewer, or ask this portal's operator \
                 to allow {host}."
            )
        }
    };
    let response = JsFuture::from(window().fetch_with_str_and_init(url, &init)).await.map_err(|_| unreachable())?;
    let response: Response = response.unchecked_into();
    let text = response.text().map_err(|_| unreachable())?;
    let text = JsFuture::from(text).await.map_err(|_| unreachable())?;
    Ok((response.status(), text.as_string().unwrap_or_default()))
}

/// Draws what the files held.
fn render(link: &Link, shown: &Shown) {
    let section = element::<HtmlElement>("records");
    section.set_inner_html("");
    let heading = make("h2", None, shown.title.as_deref().unwrap_or("The shared records"));
    heading.set_id("records-title");
    let _ = heading.set_attribute("tabindex", "-1");
    append(&section, &heading);
    let count = shown.count();
    let label = link.label.as_deref().map(|l| format!(" (“{l}”)")).unwrap_or_default();
    let summary = format!("{count} record{} from the link{label}.", if count == 1 { "" } else { "s" });
    append(&section, &make("p", Some("muted"), &summary));
    for why in &shown.skipped {
        append(&section, &make("p", Some("alert alert-warning"), why));
    }
    for group in &shown.groups {
        let panel = make("section", Some("panel stack"), "");
        let _ = panel.set_attribute("data-testid", "viewer-group");
        append(&panel, &make("h3", None, &group.title));
        for record in &group.records {
            append(&panel, &record_view(record));
        }
        append(&section, &panel);
    }
    let _ = section.set_attribute("data-testid", "viewer-records");
    // How many times records were drawn (for tests and the benchmark).
    let renders = section.get_attribute("data-renders").and_then(|n| n.parse::<u32>().ok()).unwrap_or(0);
    let _ = section.set_attribute("data-renders", &(renders + 1).to_string());
    section.set_hidden(false);
    let _ = heading.dyn_ref::<HtmlElement>().map(HtmlElement::focus);
}

/// One record: the chart's record view (type, kind, date, fields and
/// references), and an inline file as the chart offers it.
fn record_view(record: &Record) -> Element {
    let s = &record.summary;
    let article = make("article", Some("record-view"), "");
    let _ = article.set_attribute("data-testid", "viewer-record");
    append(&article, &make("h4", None, &s.title));
    let facts = make("dl", Some("facts"), "");
    let fact = |label: &str, value: &str| {
        append(&facts, &make("dt", None, label));
        append(&facts, &make("dd", None, value));
    };
    fact("Type", &chartkey_core::summary::split_camel(&s.resource_type));
    fact("Category", s.category.label());
    if let Some(date) = &s.date {
        fact("Date", &format_fhir_date(date));
    }
    for f in &s.fields {
        fact(f.label, &f.value);
    }
    for l in &s.links {
        fact(l.label, l.display.as_deref().unwrap_or(&l.reference));
    }
    append(&article, &facts);
    if let Some(file) = &record.attachment {
        append(&article, &attachment_view(file));
    }
    article
}

/// An image shown as an image; any other file offered as a download
/// (never opened as a document here).
fn attachment_view(file: &Attachment) -> Element {
    let figure = make("figure", Some("attachment"), "");
    let content_type = if file.is_image() { file.content_type.as_str() } else { "application/octet-stream" };
    let array = js_sys::Array::of1(&js_sys::Uint8Array::from(file.bytes.as_slice()));
    let options = web_sys::BlobPropertyBag::new();
    options.set_type(content_type);
    let url = web_sys::Blob::new_with_u8_array_sequence_and_options(&array, &options)
        .and_then(|b| web_sys::Url::create_object_url_with_blob(&b))
        .unwrap_or_default();
    if file.is_image() {
        let image = make("img", None, "");
        let _ = image.set_attribute("src", &url);
        let _ = image.set_attribute("alt", &file.title);
        append(&figure, &image);
    }
    let download = make("a", Some("button button-small"), &format!("Download {}", file.title));
    let _ = download.set_attribute("href", &url);
    let _ = download.set_attribute("download", &file.title);
    let caption = make("figcaption", None, "");
    append(&caption, &download);
    append(&figure, &caption);
    figure
}
