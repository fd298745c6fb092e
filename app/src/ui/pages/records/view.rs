//! One record opened: its summary, attachments, references, ledger facts
//! and corrections.

use super::*;

#[component]
pub(super) fn RecordView() -> impl IntoView {
    let chart = expect_context::<Chart>();
    let raw = RwSignal::new(false);
    let correcting = RwSignal::new(false);
    Effect::new(move |_| {
        chart.selected.track();
        raw.set(false);
        correcting.set(false);
    });
    move || {
        let id = chart.selected.get()?;
        let loaded = chart.find(id)?;
        let close = move |_| chart.selected.set(None);
        let body = match &loaded.state {
            ReadState::Tampered(why) => view! {
                <div class="alert alert-error tamper" role="alert" data-testid="tamper-warning">
                    <p><strong>"Tampering detected."</strong></p>
                    <p>{why.clone()}</p>
                    <p>"Nothing of this record is shown. The copy on the server no longer matches what was anchored on the ledger."</p>
                </div>
            }.into_any(),
            ReadState::Unreadable(why) => view! { <p class="alert alert-warning">{why.clone()}</p> }.into_any(),
            ReadState::Pending => view! {
                <p class="alert alert-info">"This record's anchor is not on the ledger yet. It is shown once the ledger holds it: reload the page in a moment."</p>
            }.into_any(),
            ReadState::Open(o) => {
                let o = (**o).clone();
                view! { <OpenRecord loaded=loaded.clone() opened=o raw correcting /> }.into_any()
            }
        };
        Some(view! {
            <section class="panel record-view" id="record-view" aria-live="polite" data-testid="record-view">
                <div class="panel-head">
                    <h2>{loaded.opened().map(|o| o.summary.title.clone()).unwrap_or_else(|| "Record".into())}</h2>
                    <button type="button" class="button button-small button-quiet" on:click=close aria-label="Close the record">"Close"</button>
                </div>
                {body}
            </section>
        })
    }
}

#[component]
pub(super) fn OpenRecord(
    loaded: Loaded,
    opened: records::Opened,
    raw: RwSignal<bool>,
    correcting: RwSignal<bool>,
) -> impl IntoView {
    let chart = expect_context::<Chart>();
    let meta = loaded.meta.clone();
    let s = opened.summary.clone();
    let index = reference_index(chart);
    let links = s
        .links
        .iter()
        .map(|l| {
            let target = index.get(&l.reference).copied();
            let shown = l.display.clone().or_else(|| target.and_then(|t| chart.find(t)).and_then(|t| t.opened().map(|o| o.summary.title.clone())));
            let text = shown.unwrap_or_else(|| l.reference.clone());
            let label = l.label;
            match target {
                Some(t) => view! { <dt>{label}</dt><dd><button type="button" class="link" on:click=move |_| chart.selected.set(Some(t))>{text}</button></dd> }.into_any(),
                None => view! { <dt>{label}</dt><dd>{text}</dd> }.into_any(),
            }
        })
        .collect_view();
    let ledger_line = match meta.anchor_block {
        Some(block) => format!("Anchored in block {block} — verified"),
        None => "Anchored on the ledger — verified".into(),
    };
    let pretty = serde_json::to_string_pretty(&opened.value).unwrap_or_else(|_| opened.resource.json.clone());
    let attachment = chartkey_core::summary::attachment(&opened.value);
    let amends = meta.amends;
    let amended_by = meta.amended_by.clone();
    let author = if meta.author_name.is_empty() { meta.author.checksummed() } else { meta.author_name.clone() };
    view! {
        <p class="ledger-line ok" data-testid="ledger-line">
            <span aria-hidden="true">"✔ "</span>{ledger_line}
            " · " <span class="muted">{format!("added {} by {author}", format_date(meta.created_at))}</span>
        </p>
        {(!amended_by.is_empty()).then(|| view! {
            <div class="alert alert-warning" data-testid="corrected-notice">
                <p><strong>"This record was corrected."</strong></p>
                {amended_by.into_iter().map(|c| view! {
                    <button type="button" class="link" on:click=move |_| chart.selected.set(Some(c))>"See the correction"</button>
                }).collect_view()}
            </div>
        })}
        {amends.map(|a| view! {
            <p class="alert alert-info" data-testid="correction-notice">
                "This is a correction of "
                <button type="button" class="link" on:click=move |_| chart.selected.set(Some(a))>"an earlier record"</button>
                "."
            </p>
        })}
        <dl class="facts">
            <SummaryFacts summary=s.clone() />
            {links}
        </dl>
        {attachment.map(|file| view! { <Attachment file /> })}
        <div class="actions">
            <button type="button" class="button button-small" aria-pressed=move || raw.get().to_string() on:click=move |_| raw.update(|r| *r = !*r) data-testid="raw-toggle">
                {move || if raw.get() { "Hide raw JSON" } else { "Show raw JSON" }}
            </button>
            <button type="button" class="button button-small" on:click=move |_| correcting.set(true) data-testid="correct-button">"Add a correction"</button>
        </div>
        {move || raw.get().then(|| view! { <pre class="raw-json" data-testid="raw-json">{pretty.clone()}</pre> })}
        {
            let json = opened.resource.json.clone();
            let full_url = opened.resource.full_url.clone();
            move || correcting.get().then(|| view! { <Correction amends=meta.id json=json.clone() full_url=full_url.clone() category=meta.category done=correcting /> })
        }
    }
}

/// `urn:uuid:…` (fullUrl) and `Type/id` → record id.
pub(super) fn reference_index(chart: Chart) -> HashMap<String, RecordId> {
    let mut index = HashMap::new();
    chart.records.with(|r| {
        // Oldest first, so a correction (which keeps the original's
        // fullUrl) is what a reference leads to.
        for l in r.iter().flat_map(|r| r.iter()).rev() {
            if let Some(o) = l.opened() {
                if let Some(url) = &o.resource.full_url {
                    index.insert(url.clone(), l.meta.id);
                }
                if let Some(id) = &o.resource.id {
                    index.insert(format!("{}/{id}", o.resource.resource_type), l.meta.id);
                }
            }
        }
    });
    index
}

#[component]
pub(super) fn Attachment(file: chartkey_core::summary::Attachment) -> impl IntoView {
    let inline_image = file.is_image();
    let url = object_url(&file.bytes, if inline_image { &file.content_type } else { "application/octet-stream" });
    let title = file.title;
    let url_for_cleanup = url.clone();
    on_cleanup(move || {
        if let Some(u) = &url_for_cleanup {
            let _ = web_sys::Url::revoke_object_url(u);
        }
    });
    let url = url.unwrap_or_default();
    view! {
        <figure class="attachment">
            {inline_image.then(|| view! { <img src=url.clone() alt=title.clone() data-testid="attachment-image" /> })}
            <figcaption>
                <a class="button button-small" href=url download=title.clone()>{format!("Download {title}")}</a>
            </figcaption>
        </figure>
    }
}

/// Adds a correction: a new version of the resource, anchored on its own
/// and pointing at the record it corrects. The original is kept.
#[component]
pub(super) fn Correction(
    amends: RecordId,
    json: String,
    full_url: Option<String>,
    category: u8,
    done: RwSignal<bool>,
) -> impl IntoView {
    let session = use_session();
    let chart = expect_context::<Chart>();
    let pretty = serde_json::from_str::<serde_json::Value>(&json)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or(json);
    let text = RwSignal::new(pretty);
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let parsed = match fhir::split_import(&text.get_untracked()) {
            Ok(mut r) if r.len() == 1 && r[0].resource_type != "Bundle" => r.remove(0),
            Ok(_) => {
                error.set(Some("A correction is one resource, not a Bundle.".into()));
                return;
            }
            Err(e) => {
                error.set(Some(e.to_string()));
                return;
            }
        };
        let Some(keyring) = session.keyring.get_untracked() else {
            error.set(Some("Your keys are locked. Unlock and try again.".into()));
            return;
        };
        let item = ToAdd {
            full_url: full_url.clone(),
            json: parsed.json,
            category: Category::from_code(category).unwrap_or(parsed_category(&parsed.resource_type)),
            amends: Some(amends),
        };
        busy.set(true);
        error.set(None);
        leptos::task::spawn_local(async move {
            match records::add(&keyring, vec![item], |_| {}).await {
                Ok(_) => {
                    done.set(false);
                    chart.reload(keyring);
                }
                Err(e) => error.set(Some(e)),
            }
            busy.set(false);
        });
    };
    view! {
        <form class="stack correction" on:submit=save>
            <h3>"Correct this record"</h3>
            <p class="muted">
                "Edit the record below. The original stays in your chart, marked as corrected, and both are anchored on the ledger."
            </p>
            <label class="field">
                <span>"Corrected record (FHIR JSON)"</span>
                <textarea rows="14" class="mono" prop:value=text on:input=move |ev| text.set(event_target_value(&ev)) data-testid="correction-text"></textarea>
            </label>
            <ErrorMessage error=error />
            <div class="actions">
                <button type="submit" class="button button-primary" disabled=move || busy.get() data-testid="correction-save">"Save the correction"</button>
                <button type="button" class="button button-quiet" on:click=move |_| done.set(false)>"Cancel"</button>
            </div>
            <Busy message=Signal::derive(move || busy.get().then(|| "Encrypting and anchoring the correction…".to_string())) />
        </form>
    }
}

pub(super) fn parsed_category(resource_type: &str) -> Category {
    Category::of_resource_type(resource_type)
}

// ----- Trends -----
