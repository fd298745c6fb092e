//! Small pieces shared by pages.

use chartkey_core::keystore::MIN_PASSPHRASE_CHARS;
use leptos::prelude::*;

/// An error, announced to screen readers. Renders nothing when empty.
#[component]
pub fn ErrorMessage(#[prop(into)] error: Signal<Option<String>>) -> impl IntoView {
    move || {
        error.get().map(|message| {
            view! { <p class="alert alert-error" role="alert">{message}</p> }
        })
    }
}

/// A page's heading, the sentence under it that says what the page is
/// for, and with `error` the page's error line.
#[component]
pub fn PageHead(
    title: &'static str,
    lead: &'static str,
    #[prop(optional)] error: Option<RwSignal<Option<String>>>,
) -> impl IntoView {
    view! {
        <h1>{title}</h1>
        <p class="lead">{lead}</p>
        {error.map(|error| view! { <ErrorMessage error /> })}
    }
}

/// A panel titled `title` holding a list (its children), or `empty` in
/// muted words when there is nothing to list.
#[component]
pub fn ListPanel(title: &'static str, is_empty: bool, empty: &'static str, children: Children) -> impl IntoView {
    view! {
        <section class="panel">
            <h2>{title}</h2>
            {if is_empty { view! { <p class="muted">{empty}</p> }.into_any() } else { children().into_any() }}
        </section>
    }
}

/// A table's header row: a column header per name, and with `actions` a
/// last one that only screen readers hear ("Actions": the row's buttons).
#[component]
pub fn TableHead(columns: &'static [&'static str], #[prop(optional)] actions: bool) -> impl IntoView {
    view! {
        <thead>
            <tr>
                {columns.iter().map(|name| view! { <th scope="col">{*name}</th> }).collect_view()}
                {actions.then(|| view! { <th scope="col"><span class="visually-hidden">"Actions"</span></th> })}
            </tr>
        </thead>
    }
}

/// A page another role uses, as this account sees it: its title and why
/// there is nothing here.
#[component]
pub fn NotForThisAccount(title: &'static str, why: &'static str) -> impl IntoView {
    view! {
        <h1>{title}</h1>
        <p class="alert alert-info">{why}</p>
    }
}

/// A required one-line text field and its label.
#[component]
pub fn TextField(
    label: &'static str,
    value: RwSignal<String>,
    #[prop(optional)] maxlength: Option<usize>,
    #[prop(optional)] placeholder: Option<&'static str>,
    #[prop(optional)] autocomplete: Option<&'static str>,
) -> impl IntoView {
    view! {
        <label class="field">
            <span>{label}</span>
            <input type="text" required maxlength=maxlength placeholder=placeholder autocomplete=autocomplete bind:value=value />
        </label>
    }
}

/// A progress line for work in flight ("Waiting for your passkey…").
#[component]
pub fn Busy(#[prop(into)] message: Signal<Option<String>>) -> impl IntoView {
    move || {
        message.get().map(|m| {
            view! {
                <p class="busy" role="status" aria-live="polite">
                    <span class="spinner" aria-hidden="true"></span>
                    {m}
                </p>
            }
        })
    }
}

/// "Loading…", while a page's first answer is on its way.
#[component]
pub fn Loading() -> impl IntoView {
    view! { <Busy message=Signal::derive(|| Some("Loading…".to_owned())) /> }
}

/// What `state` holds once loaded, drawn by `body`; "Loading…" until then
/// (nothing if loading failed: `error` says why).
#[component]
pub fn WhenLoaded<T, V>(
    state: RwSignal<Option<T>>,
    error: RwSignal<Option<String>>,
    body: impl Fn(T) -> V + Send + Sync + 'static,
) -> impl IntoView
where
    T: Clone + Send + Sync + 'static,
    V: IntoView + 'static,
{
    move || match state.get() {
        None if error.with(Option::is_none) => view! { <Loading /> }.into_any(),
        None => ().into_any(),
        Some(value) => body(value).into_any(),
    }
}

/// A loaded list as a table (`columns`, then a screen-reader-only actions
/// column) with a row per item, or `empty` when there is none; nothing
/// while it loads.
#[component]
pub fn Listing<T, V>(
    items: RwSignal<Option<Vec<T>>>,
    empty: &'static str,
    testid: &'static str,
    columns: &'static [&'static str],
    row: impl Fn(T) -> V + Send + Sync + 'static,
) -> impl IntoView
where
    T: Clone + Send + Sync + 'static,
    V: IntoView + 'static,
{
    let row = std::sync::Arc::new(row);
    move || match items.get() {
        None => ().into_any(),
        Some(list) if list.is_empty() => view! { <p class="muted">{empty}</p> }.into_any(),
        Some(list) => {
            let row = row.clone();
            view! {
                <table class="table" data-testid=testid>
                    <TableHead columns=columns actions=true />
                    <tbody>{list.into_iter().map(move |item| row(item)).collect_view()}</tbody>
                </table>
            }
            .into_any()
        }
    }
}

/// Fetches with `fetch` into `into`; a failure is shown in `error` (what
/// was shown stays).
pub fn load<T, Fut>(into: RwSignal<Option<T>>, error: RwSignal<Option<String>>, fetch: impl FnOnce() -> Fut + 'static)
where
    T: Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<T, crate::api::ApiError>> + 'static,
{
    leptos::task::spawn_local(async move {
        match fetch().await {
            Ok(value) => into.set(Some(value)),
            Err(e) => error.set(Some(e.to_string())),
        }
    })
}

/// [`load`] now, and again each time the returned reload is called.
pub fn reloader<T, Fut>(
    into: RwSignal<Option<T>>,
    error: RwSignal<Option<String>>,
    fetch: impl Fn() -> Fut + Copy + 'static,
) -> impl Fn() + Copy + 'static
where
    T: Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<T, crate::api::ApiError>> + 'static,
{
    let reload = move || load(into, error, fetch);
    reload();
    reload
}

/// The red button that stops a live share or link.
#[component]
pub fn StopSharing(#[prop(into)] on_stop: Callback<()>, #[prop(into)] pending: Signal<bool>) -> impl IntoView {
    view! {
        <button type="button" class="button button-small button-danger"
            on:click=move |_| on_stop.run(()) disabled=move || pending.get()>
            "Stop sharing"
        </button>
    }
}

/// A panel's heading, with an export button once there is something to
/// export.
#[component]
pub fn ExportHead(
    id: &'static str,
    title: &'static str,
    /// The button's words and test id.
    export: (&'static str, &'static str),
    #[prop(into)] shown: Signal<bool>,
    #[prop(into)] on_export: Callback<()>,
) -> impl IntoView {
    let (label, testid) = export;
    view! {
        <div class="panel-head">
            <h2 id=id>{title}</h2>
            {move || shown.get().then(|| view! {
                <button type="button" class="button button-small" data-testid=testid on:click=move |_| on_export.run(())>
                    {label}
                </button>
            })}
        </div>
    }
}

/// The `content` of the page's `<meta name="{name}">`: what the build wrote
/// into index.html (the key worker's address, the build's name).
pub fn page_meta(name: &str) -> Option<String> {
    web_sys::window()?.document()?.query_selector(&format!(r#"meta[name="{name}"]"#)).ok()??.get_attribute("content")
}

/// What an `ErrorBoundary` shows: each error's sentence, announced.
pub fn errors_shown(errors: ArcRwSignal<Errors>) -> impl IntoView {
    move || {
        errors
            .get()
            .into_iter()
            .map(|(_, e)| view! { <p class="alert alert-error" role="alert">{e.to_string()}</p> })
            .collect_view()
    }
}

/// Asks the browser's own confirmation dialog; false when it is declined
/// (or cannot be shown).
pub fn confirm(message: &str) -> bool {
    web_sys::window().and_then(|w| w.confirm_with_message(message).ok()).unwrap_or(false)
}

/// Copies `text` to the clipboard and says so.
#[component]
pub fn CopyButton(#[prop(into)] text: String, #[prop(into)] label: String) -> impl IntoView {
    let copied = RwSignal::new(false);
    let on_click = move |_| {
        let text = text.clone();
        leptos::task::spawn_local(async move {
            if let Some(window) = web_sys::window() {
                let promise = window.navigator().clipboard().write_text(&text);
                if wasm_bindgen_futures::JsFuture::from(promise).await.is_ok() {
                    copied.set(true);
                    gloo_timers::future::TimeoutFuture::new(2000).await;
                    copied.set(false);
                }
            }
        });
    };
    view! {
        <button type="button" class="button button-small" on:click=on_click aria-label=label.clone()>
            {move || if copied.get() { "Copied" } else { "Copy" }}
        </button>
    }
}

/// Asks for a new passphrase (twice) when a passkey cannot protect the keys
/// by itself, and says so plainly.
#[component]
pub fn NewPassphrase(#[prop(into)] on_done: Callback<String>, #[prop(into)] busy: Signal<bool>) -> impl IntoView {
    let first = RwSignal::new(String::new());
    let second = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let (a, b) = (first.get_untracked(), second.get_untracked());
        if a.chars().count() < MIN_PASSPHRASE_CHARS {
            error.set(Some(format!("Use at least {MIN_PASSPHRASE_CHARS} characters.")));
        } else if a != b {
            error.set(Some("The two passphrases are different.".into()));
        } else {
            error.set(None);
            on_done.run(a);
        }
    };
    view! {
        <form class="stack" on:submit=submit>
            <div class="alert alert-info">
                <p><strong>"This passkey can't lock your keys by itself."</strong></p>
                <p>
                    "Your device or browser does not support the passkey feature Chartkey uses to protect your keys (WebAuthn PRF). "
                    "Choose a passphrase instead: you will type it, after your passkey, each time you sign in on this passkey. "
                    "Chartkey never sees it, so it cannot reset it for you."
                </p>
            </div>
            <label class="field">
                <span>"Passphrase (at least " {MIN_PASSPHRASE_CHARS} " characters)"</span>
                <input type="password" autocomplete="new-password" required minlength=MIN_PASSPHRASE_CHARS bind:value=first />
            </label>
            <label class="field">
                <span>"Type it again"</span>
                <input type="password" autocomplete="new-password" required bind:value=second />
            </label>
            <ErrorMessage error=error />
            <button type="submit" class="button button-primary" disabled=move || busy.get()>"Protect my keys"</button>
        </form>
    }
}

/// Asks for the passphrase of an existing key store.
#[component]
pub fn EnterPassphrase(#[prop(into)] on_done: Callback<String>, #[prop(into)] busy: Signal<bool>) -> impl IntoView {
    let value = RwSignal::new(String::new());
    let input = NodeRef::<leptos::html::Input>::new();
    Effect::new(move || {
        if let Some(el) = input.get() {
            let _ = el.focus();
        }
    });
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        on_done.run(value.get_untracked());
    };
    view! {
        <form class="stack" on:submit=submit>
            <p>"This passkey is protected by a passphrase. Enter it to unlock your keys."</p>
            <label class="field">
                <span>"Passphrase"</span>
                <input node_ref=input type="password" autocomplete="current-password" required bind:value=value />
            </label>
            <button type="submit" class="button button-primary" disabled=move || busy.get()>"Unlock"</button>
        </form>
    }
}

// Dates as the reader writes them: shared with the link viewer.
pub use chartkey_core::when::local::{format_date, format_datetime, format_fhir_date};

/// A record's summary as the record views list it, inside a `<dl
/// class="facts">`: type, kind, date and fields, all as text (references
/// are the caller's: the chart makes them links).
#[component]
pub fn SummaryFacts(summary: chartkey_core::summary::Summary) -> impl IntoView {
    let s = summary;
    view! {
        <dt>"Type"</dt><dd>{chartkey_core::summary::split_camel(&s.resource_type)}</dd>
        <dt>"Category"</dt><dd>{s.category.label()}</dd>
        {s.date.as_deref().map(|d| view! { <dt>"Date"</dt><dd><time datetime=d.to_owned()>{format_fhir_date(d)}</time></dd> })}
        {s.fields.into_iter().map(|f| view! { <dt>{f.label}</dt><dd>{f.value}</dd> }).collect_view()}
    }
}

/// A clinician's badge: what the ledger says of their credential.
#[component]
pub fn CredentialBadge(status: crate::api::CredentialStatus) -> impl IntoView {
    use crate::api::CredentialStatus as S;
    let (class, words) = match &status {
        S::NotVerified => ("credential credential-none", "Not verified".to_string()),
        S::Verified { authority_name, expires_at, .. } => (
            "credential credential-ok",
            format!("✓ Verified by {authority_name} until {}", format_date(*expires_at as i64)),
        ),
        S::Expired { authority_name, expires_at, .. } => (
            "credential credential-lapsed",
            format!("Credential from {authority_name} expired on {}", format_date(*expires_at as i64)),
        ),
        S::Revoked { authority_name, .. } => {
            ("credential credential-lapsed", format!("Credential revoked by {authority_name}"))
        }
        S::AuthorityRemoved { authority_name, .. } => (
            "credential credential-lapsed",
            format!("Not verified: {authority_name} is no longer a credentialing authority here"),
        ),
    };
    let kind = match status {
        S::NotVerified => "not_verified",
        S::Verified { .. } => "verified",
        S::Expired { .. } => "expired",
        S::Revoked { .. } => "revoked",
        S::AuthorityRemoved { .. } => "authority_removed",
    };
    view! { <span class=class data-credential=kind>{words}</span> }
}

/// An object URL for `bytes` (revoke it when done).
pub fn object_url(bytes: &[u8], content_type: &str) -> Option<String> {
    let array = js_sys::Array::new();
    array.push(&js_sys::Uint8Array::from(bytes));
    let options = web_sys::BlobPropertyBag::new();
    options.set_type(content_type);
    let blob = web_sys::Blob::new_with_u8_array_sequence_and_options(&array, &options).ok()?;
    web_sys::Url::create_object_url_with_blob(&blob).ok()
}

/// Offers `bytes` as a download named `name`.
pub fn save_file(name: &str, content_type: &str, bytes: &[u8]) {
    use wasm_bindgen::JsCast;
    let Some(url) = object_url(bytes, content_type) else { return };
    let Some(document) = web_sys::window().and_then(|w| w.document()) else { return };
    if let Ok(a) = document.create_element("a").map(|e| e.unchecked_into::<web_sys::HtmlAnchorElement>()) {
        a.set_href(&url);
        a.set_download(name);
        a.click();
    }
    let _ = web_sys::Url::revoke_object_url(&url);
}
