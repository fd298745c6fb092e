//! The patient's records: add (FHIR import, files), timeline with filters
//! and search, the record view with its ledger line, corrections, and
//! "Download my records".
//!
//! Everything shown from a record is text, inserted as text nodes: FHIR
//! narrative and any other markup a record carries is never interpreted.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chartkey_core::envelope::RecordId;
use chartkey_core::fhir::{self, Category, ImportedResource};
use leptos::prelude::*;

use crate::api;
use crate::ui::components::{Busy, ErrorMessage, format_date, object_url, save_file};
use crate::ui::records::{self, Loaded, Progress, ReadState, ToAdd};
use crate::ui::session::{Keyring, use_session};

/// What the page holds: every record as read in this browser.
#[derive(Clone, Copy)]
struct Chart {
    records: RwSignal<Option<Arc<Vec<Loaded>>>>,
    selected: RwSignal<Option<RecordId>>,
    error: RwSignal<Option<String>>,
    loading: RwSignal<Option<String>>,
}

impl Chart {
    fn reload(self, keyring: Arc<Keyring>) {
        self.loading.set(Some("Fetching and decrypting your records…".into()));
        leptos::task::spawn_local(async move {
            let loading = self.loading;
            let result = records::load_all(&keyring, move |done, total| {
                loading.set(Some(format!("Verifying and decrypting your records: {done} of {total}")));
            })
            .await;
            match result {
                Ok(list) => {
                    self.error.set(None);
                    self.records.set(Some(Arc::new(list)));
                }
                Err(e) => self.error.set(Some(e)),
            }
            self.loading.set(None);
        });
    }

    fn find(&self, id: RecordId) -> Option<Loaded> {
        self.records.with(|r| r.as_ref().and_then(|list| list.iter().find(|l| l.meta.id == id).cloned()))
    }
}

#[component]
pub fn RecordsOverview() -> impl IntoView {
    let session = use_session();
    let chart = Chart {
        records: RwSignal::new(None),
        selected: RwSignal::new(None),
        error: RwSignal::new(None),
        loading: RwSignal::new(None),
    };
    provide_context(chart);
    if let Some(keyring) = session.keyring.get_untracked() {
        chart.reload(keyring);
    }
    let is_patient =
        move || session.account.with(|a| a.as_ref().is_some_and(|a| a.role == chartkey_core::role::Role::Patient));
    view! {
        <h1>"Records"</h1>
        <p class="lead">
            "Your records are encrypted in this browser before they are uploaded, and each one's fingerprint is "
            "anchored on the ledger. Every time a record is opened, it is checked against that fingerprint."
        </p>
        <Show when=is_patient fallback=|| view! { <p class="alert alert-info">"Only patients keep a chart of their own."</p> }>
            <AddRecords />
            <RecordView />
            <Timeline />
            <Trends />
        </Show>
    }
}

// ----- Adding -----

/// A file the patient chose, read and parsed.
#[derive(Clone)]
struct Chosen {
    resources: Vec<ImportedResource>,
    /// Resource types the patient unticked.
    skipped: Vec<String>,
    problems: Vec<String>,
}

#[component]
fn AddRecords() -> impl IntoView {
    let session = use_session();
    let chart = expect_context::<Chart>();
    let chosen = RwSignal::new(None::<Chosen>);
    let progress = RwSignal::new(None::<Progress>);
    let error = RwSignal::new(None::<String>);
    let done = RwSignal::new(None::<String>);
    let dragging = RwSignal::new(false);
    let input_ref = NodeRef::<leptos::html::Input>::new();

    let take_files = move |list: web_sys::FileList| {
        error.set(None);
        done.set(None);
        // Taken now: the FileList is live, and emptied when the input is reset.
        let files: Vec<web_sys::File> = (0..list.length()).filter_map(|i| list.get(i)).collect();
        if files.is_empty() {
            return;
        }
        leptos::task::spawn_local(async move {
            let limit = match api::records_limits().await {
                Ok(l) => l.max_record_bytes,
                Err(e) => {
                    error.set(Some(e.to_string()));
                    return;
                }
            };
            let mut resources = Vec::new();
            let mut problems = Vec::new();
            for file in &files {
                match read_file(file, limit).await {
                    Ok(mut found) => resources.append(&mut found),
                    Err(e) => problems.push(format!("{}: {e}", file.name())),
                }
            }
            if resources.is_empty() {
                error.set(Some(format!("Nothing was added. {}", problems.join(" "))));
                chosen.set(None);
                return;
            }
            chosen.set(Some(Chosen { resources, skipped: Vec::new(), problems }));
        });
    };

    let on_change = move |_| {
        if let Some(files) = input_ref.get().and_then(|i| i.files()) {
            take_files(files);
        }
        if let Some(input) = input_ref.get() {
            input.set_value("");
        }
    };
    let on_drop = move |ev: leptos::ev::DragEvent| {
        ev.prevent_default();
        dragging.set(false);
        if let Some(files) = ev.data_transfer().and_then(|d| d.files()) {
            take_files(files);
        }
    };

    let import = move |_| {
        let Some(c) = chosen.get_untracked() else { return };
        let Some(keyring) = session.keyring.get_untracked() else {
            error.set(Some("Your keys are locked. Unlock and try again.".into()));
            return;
        };
        let items: Vec<ToAdd> =
            c.resources.iter().filter(|r| !c.skipped.contains(&r.resource_type)).map(ToAdd::from).collect();
        if items.is_empty() {
            error.set(Some("Every type is unticked: there is nothing to import.".into()));
            return;
        }
        let count = items.len();
        error.set(None);
        progress.set(Some(Progress::Encrypting { done: 0, total: count }));
        leptos::task::spawn_local(async move {
            let result = records::add(&keyring, items, move |p| progress.set(Some(p))).await;
            progress.set(None);
            match result {
                Ok(receipt) => {
                    chosen.set(None);
                    done.set(Some(match receipt.block_number {
                        Some(block) => format!(
                            "Added {count} record{} — anchored in block {block}.",
                            if count == 1 { "" } else { "s" }
                        ),
                        None => format!("Added {count} records; the ledger will anchor them shortly."),
                    }));
                    chart.reload(keyring);
                }
                Err(e) => error.set(Some(e)),
            }
        });
    };

    view! {
        <section class="panel" aria-labelledby="add-records">
            <h2 id="add-records">"Add records"</h2>
            <div
                class=move || if dragging.get() { "dropzone dropzone-active" } else { "dropzone" }
                on:dragover=move |ev: leptos::ev::DragEvent| {
                    ev.prevent_default();
                    dragging.set(true);
                }
                on:dragleave=move |_| dragging.set(false)
                on:drop=on_drop
                data-testid="dropzone"
            >
                <p>
                    "Drop files here: a FHIR export (JSON: one resource or a Bundle, from your hospital, "
                    "Apple Health or Synthea), a PDF, a photo or any other file."
                </p>
                <label class="button">
                    "Choose files…"
                    <input
                        type="file"
                        multiple
                        class="visually-hidden"
                        node_ref=input_ref
                        on:change=on_change
                        data-testid="file-input"
                    />
                </label>
            </div>
            <ErrorMessage error=error />
            {move || done.get().map(|m| view! { <p class="alert alert-success" role="status" data-testid="import-done">{m}</p> })}
            {move || chosen.get().map(|c| view! { <ImportPreview chosen=c on_change=Callback::new(move |c| chosen.set(Some(c))) /> })}
            {move || {
                chosen.get().map(|_| {
                    let busy = move || progress.with(Option::is_some);
                    view! {
                        <div class="actions">
                            <button type="button" class="button button-primary" on:click=import disabled=busy data-testid="import-button">
                                {move || {
                                    let n = chosen.with(|c| c.as_ref().map(|c| c.resources.iter().filter(|r| !c.skipped.contains(&r.resource_type)).count()).unwrap_or(0));
                                    format!("Encrypt and add {n} record{}", if n == 1 { "" } else { "s" })
                                }}
                            </button>
                            <button type="button" class="button button-quiet" on:click=move |_| chosen.set(None) disabled=busy>"Cancel"</button>
                        </div>
                    }
                })
            }}
            {move || progress.get().map(|p| view! {
                <div class="progress" role="status" aria-live="polite">
                    <progress max="1" value=p.fraction() data-testid="import-progress"></progress>
                    <span>{p.label()}</span>
                </div>
            })}
        </section>
    }
}

#[component]
fn ImportPreview(chosen: Chosen, on_change: Callback<Chosen>) -> impl IntoView {
    let mut by_type: BTreeMap<String, usize> = BTreeMap::new();
    for r in &chosen.resources {
        *by_type.entry(r.resource_type.clone()).or_default() += 1;
    }
    let problems = chosen.problems.clone();
    let rows = by_type
        .into_iter()
        .map(|(t, n)| {
            let checked = !chosen.skipped.contains(&t);
            let chosen = chosen.clone();
            let ty = t.clone();
            let toggle = move |_| {
                let mut next = chosen.clone();
                if next.skipped.contains(&ty) {
                    next.skipped.retain(|s| s != &ty);
                } else {
                    next.skipped.push(ty.clone());
                }
                on_change.run(next);
            };
            let category = Category::of_resource_type(&t).label();
            view! {
                <li>
                    <label class="choice-inline">
                        <input type="checkbox" checked=checked on:change=toggle data-type=t.clone() />
                        {format!("{} — {n}", chartkey_core::summary::split_camel(&t))}
                        <span class="muted">{format!(" ({category})")}</span>
                    </label>
                </li>
            }
        })
        .collect_view();
    view! {
        <div class="import-preview" data-testid="import-preview">
            <h3>"What will be added"</h3>
            <p class="muted">"Untick the kinds of records you do not want to keep (claims and billing, for instance)."</p>
            <ul class="checklist">{rows}</ul>
            {(!problems.is_empty()).then(|| view! {
                <div class="alert alert-warning">
                    <p>"Some files could not be read and will be left out:"</p>
                    <ul>{problems.into_iter().map(|p| view! { <li>{p}</li> }).collect_view()}</ul>
                </div>
            })}
        </div>
    }
}

/// Reads a chosen file: FHIR JSON becomes its resources; anything else
/// becomes one DocumentReference carrying the file.
async fn read_file(file: &web_sys::File, limit: u64) -> Result<Vec<ImportedResource>, String> {
    let size = file.size() as u64;
    if size > limit {
        return Err(format!("it is {} MB, over the limit of {} MB.", size.div_ceil(1_000_000), limit / 1_000_000));
    }
    let buffer = wasm_bindgen_futures::JsFuture::from(file.array_buffer())
        .await
        .map_err(|_| "the browser could not read it.".to_string())?;
    let bytes = js_sys::Uint8Array::new(&buffer).to_vec();
    let name = file.name();
    let content_type = file.type_();
    let looks_json = content_type.contains("json")
        || name.to_ascii_lowercase().ends_with(".json")
        || bytes.iter().find(|b| !b.is_ascii_whitespace()).is_some_and(|b| *b == b'{' || *b == b'[');
    if looks_json {
        let text = std::str::from_utf8(&bytes).map_err(|_| "it is not text (UTF-8).".to_string())?;
        return fhir::split_import(text).map_err(|e| e.to_string());
    }
    let json = fhir::document_reference(&name, &content_type, &bytes, &js_date_now());
    Ok(vec![ImportedResource { resource_type: "DocumentReference".into(), id: None, full_url: None, json }])
}

fn js_date_now() -> String {
    String::from(js_sys::Date::new_0().to_iso_string())
}

// ----- Timeline -----

#[component]
fn Timeline() -> impl IntoView {
    let chart = expect_context::<Chart>();
    let filter = RwSignal::new(None::<Category>);
    let query = RwSignal::new(String::new());

    let counts = Memo::new(move |_| {
        let mut counts: BTreeMap<Category, usize> = BTreeMap::new();
        chart.records.with(|r| {
            for l in r.iter().flat_map(|r| r.iter()) {
                if let Some(c) = Category::from_code(l.meta.category) {
                    *counts.entry(c).or_default() += 1;
                }
            }
        });
        counts
    });

    let groups = Signal::derive(move || {
        let q = query.get().to_lowercase();
        let only = filter.get();
        let mut groups: BTreeMap<String, Vec<Loaded>> = BTreeMap::new();
        chart.records.with(|r| {
            for l in r.iter().flat_map(|r| r.iter()) {
                if only.is_some_and(|c| c.code() != l.meta.category) {
                    continue;
                }
                let day = match &l.state {
                    ReadState::Open(o) => {
                        if !q.is_empty() && !matches(o, &q) {
                            continue;
                        }
                        o.summary
                            .date
                            .as_deref()
                            .map(|d| d.chars().take(10).collect())
                            .unwrap_or_else(|| "Undated".into())
                    }
                    _ if !q.is_empty() => continue,
                    _ => "Needs attention".into(),
                };
                groups.entry(day).or_default().push(l.clone());
            }
        });
        let mut list: Vec<(String, Vec<Loaded>)> = groups.into_iter().collect();
        // Newest first; problems on top, undated at the end.
        list.sort_by(|a, b| rank(&b.0).cmp(&rank(&a.0)).then(b.0.cmp(&a.0)));
        list
    });

    let download = move |_| {
        let Some(list) = chart.records.get_untracked() else { return };
        let bundle = records::export_bundle(&list);
        save_file("chartkey-records.json", "application/fhir+json", bundle.as_bytes());
    };

    view! {
        <section class="panel" aria-labelledby="timeline">
            <div class="panel-head">
                <h2 id="timeline">"Timeline"</h2>
                <button type="button" class="button button-small" on:click=download data-testid="export-button"
                    disabled=move || chart.records.with(|r| r.as_ref().is_none_or(|r| r.is_empty()))>
                    "Download my records"
                </button>
            </div>
            <ErrorMessage error=chart.error />
            <Busy message=chart.loading />
            <div class="filters" role="group" aria-label="Show">
                <button type="button" class="chip" aria-pressed=move || filter.get().is_none().to_string() on:click=move |_| filter.set(None)>
                    {move || format!("All ({})", chart.records.with(|r| r.as_ref().map(|r| r.len()).unwrap_or(0)))}
                </button>
                {move || counts.get().into_iter().map(|(c, n)| view! {
                    <button type="button" class="chip" aria-pressed=move || (filter.get() == Some(c)).to_string()
                        on:click=move |_| filter.set(if filter.get_untracked() == Some(c) { None } else { Some(c) })
                        data-category=c.code()>
                        {format!("{} ({n})", c.label())}
                    </button>
                }).collect_view()}
            </div>
            <label class="field">
                <span>"Search"</span>
                <input type="search" placeholder="Search your decrypted records" prop:value=query
                    on:input=move |ev| query.set(event_target_value(&ev)) data-testid="search" />
            </label>
            <div data-testid="timeline">
                {move || {
                    let groups = groups.get();
                    if groups.is_empty() {
                        return view! { <p class="muted">{if chart.records.with(|r| r.as_ref().is_some_and(|r| r.is_empty())) { "No records yet. Add some above." } else { "Nothing matches." }}</p> }.into_any();
                    }
                    groups.into_iter().map(|(day, items)| view! {
                        <h3 class="timeline-day">{day_label(&day)}</h3>
                        <ul class="timeline">
                            {items.into_iter().map(|l| view! { <TimelineItem loaded=l /> }).collect_view()}
                        </ul>
                    }).collect_view().into_any()
                }}
            </div>
        </section>
    }
}

fn rank(day: &str) -> u8 {
    match day {
        "Needs attention" => 2,
        "Undated" => 0,
        _ => 1,
    }
}

fn day_label(day: &str) -> String {
    day.to_string()
}

fn matches(o: &records::Opened, q: &str) -> bool {
    o.summary.title.to_lowercase().contains(q)
        || o.summary.resource_type.to_lowercase().contains(q)
        || o.summary.fields.iter().any(|f| f.value.to_lowercase().contains(q))
}

#[component]
fn TimelineItem(loaded: Loaded) -> impl IntoView {
    let chart = expect_context::<Chart>();
    let id = loaded.meta.id;
    let open = move |_| {
        chart.selected.set(Some(id));
        if let Some(el) = web_sys::window().and_then(|w| w.document()).and_then(|d| d.get_element_by_id("record-view"))
        {
            el.scroll_into_view();
        }
    };
    let corrected = !loaded.meta.amended_by.is_empty();
    let (title, detail, class) = match &loaded.state {
        ReadState::Open(o) => {
            let detail = o.summary.fields.first().map(|f| format!("{}: {}", f.label, f.value));
            (o.summary.title.clone(), detail, "timeline-item")
        }
        ReadState::Tampered(_) => {
            ("Tampering detected — this record is not shown".to_string(), None, "timeline-item timeline-bad")
        }
        ReadState::Unreadable(why) => {
            ("This record cannot be shown here".to_string(), Some(why.clone()), "timeline-item")
        }
        ReadState::Pending => (
            "Waiting for the ledger".to_string(),
            Some("shown once its anchor is mined".to_string()),
            "timeline-item timeline-pending",
        ),
    };
    let category = Category::from_code(loaded.meta.category).map(|c| c.label()).unwrap_or("Other");
    // A record someone else wrote into this chart (a clinician's write-back).
    let mine = use_session().keyring.with_untracked(|k| k.as_ref().map(|k| k.keys.address()));
    let added_by = (mine.is_none_or(|mine| loaded.meta.author != mine)).then(|| loaded.meta.author_name.clone());
    view! {
        <li class=class>
            <button type="button" class="timeline-button" on:click=open data-record=id.to_hex()>
                <span class="timeline-title">{title}</span>
                {corrected.then(|| view! { <span class="badge">"corrected"</span> })}
                {added_by.map(|name| view! { <span class="badge badge-author" data-testid="added-by">{format!("added by {name}")}</span> })}
                <span class="timeline-meta">{category}{detail.map(|d| format!(" · {d}"))}</span>
            </button>
        </li>
    }
}

// ----- One record -----

#[component]
fn RecordView() -> impl IntoView {
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
fn OpenRecord(
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
    let attachment = attachment_of(&opened.value);
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
            <dt>"Type"</dt><dd>{chartkey_core::summary::split_camel(&s.resource_type)}</dd>
            <dt>"Category"</dt><dd>{s.category.label()}</dd>
            {s.date.clone().map(|d| view! { <dt>"Date"</dt><dd>{d}</dd> })}
            {s.fields.iter().map(|f| view! { <dt>{f.label}</dt><dd>{f.value.clone()}</dd> }).collect_view()}
            {links}
        </dl>
        {attachment.map(|(content_type, bytes, title)| view! { <Attachment content_type bytes title /> })}
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
fn reference_index(chart: Chart) -> HashMap<String, RecordId> {
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

/// A DocumentReference's inline file: (content type, bytes, title).
fn attachment_of(value: &serde_json::Value) -> Option<(String, Vec<u8>, String)> {
    use base64::Engine;
    let a = value.get("content")?.as_array()?.first()?.get("attachment")?;
    let data = a.get("data")?.as_str()?;
    let bytes = base64::engine::general_purpose::STANDARD.decode(data).ok()?;
    let content_type = a.get("contentType").and_then(|c| c.as_str()).unwrap_or("application/octet-stream").to_owned();
    let title = a.get("title").and_then(|c| c.as_str()).unwrap_or("file").to_owned();
    Some((content_type, bytes, title))
}

#[component]
fn Attachment(content_type: String, bytes: Vec<u8>, title: String) -> impl IntoView {
    // Only images are shown inline (as images: never as documents or
    // scripts); anything else is offered as a download.
    let inline_image = matches!(content_type.as_str(), "image/png" | "image/jpeg" | "image/gif" | "image/webp");
    let url = object_url(&bytes, if inline_image { &content_type } else { "application/octet-stream" });
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
fn Correction(
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

fn parsed_category(resource_type: &str) -> Category {
    Category::of_resource_type(resource_type)
}

// ----- Trends -----

#[component]
fn Trends() -> impl IntoView {
    let chart = expect_context::<Chart>();
    let series = Memo::new(move |_| {
        chart.records.with(|r| {
            // A corrected record's values are replaced by its correction's.
            let summaries = r
                .iter()
                .flat_map(|r| r.iter())
                .filter(|l| l.meta.amended_by.is_empty())
                .filter_map(|l| l.opened().map(|o| &o.summary));
            chartkey_core::summary::trends(summaries).into_iter().filter(|s| s.points.len() >= 2).collect::<Vec<_>>()
        })
    });
    let chosen = RwSignal::new(0usize);
    view! {
        <Show when=move || series.with(|s| !s.is_empty())>
            <section class="panel" aria-labelledby="trends">
                <h2 id="trends">"Trends"</h2>
                <label class="field">
                    <span>"Measurement"</span>
                    <select on:change=move |ev| chosen.set(event_target_value(&ev).parse().unwrap_or(0)) data-testid="trend-select">
                        {move || series.get().into_iter().enumerate().map(|(i, s)| view! {
                            <option value=i.to_string() selected=move || chosen.get() == i>
                                {format!("{} ({}, {} measurements)", s.name, s.unit, s.points.len())}
                            </option>
                        }).collect_view()}
                    </select>
                </label>
                {move || series.with(|all| all.get(chosen.get()).cloned()).map(|s| view! { <TrendChart series=s /> })}
            </section>
        </Show>
    }
}

#[component]
fn TrendChart(series: chartkey_core::summary::Series) -> impl IntoView {
    use chartkey_core::summary::format_number;
    const W: f64 = 640.0;
    const H: f64 = 240.0;
    const LEFT: f64 = 56.0;
    const RIGHT: f64 = 16.0;
    const TOP: f64 = 16.0;
    const BOTTOM: f64 = 32.0;
    let (x0, x1) = (series.points[0].1, series.points[series.points.len() - 1].1);
    let mut lo = series.points.iter().map(|p| p.2).fold(f64::INFINITY, f64::min);
    let mut hi = series.points.iter().map(|p| p.2).fold(f64::NEG_INFINITY, f64::max);
    if let Some((l, h)) = series.range {
        lo = lo.min(l.unwrap_or(lo));
        hi = hi.max(h.unwrap_or(hi));
    }
    let pad = ((hi - lo) * 0.1).max(hi.abs() * 0.02).max(0.5);
    let (lo, hi) = (lo - pad, hi + pad);
    let x =
        move |d: f64| LEFT + if x1 > x0 { (d - x0) / (x1 - x0) * (W - LEFT - RIGHT) } else { (W - LEFT - RIGHT) / 2.0 };
    let y = move |v: f64| TOP + (hi - v) / (hi - lo) * (H - TOP - BOTTOM);
    let line: String =
        series.points.iter().map(|p| format!("{:.1},{:.1}", x(p.1), y(p.2))).collect::<Vec<_>>().join(" ");
    let band = series.range.map(|(l, h)| {
        let (top, bottom) = (y(h.unwrap_or(hi)), y(l.unwrap_or(lo)));
        view! { <rect class="trend-range" x=LEFT y=top width=W - LEFT - RIGHT height=(bottom - top).max(0.0)><title>"Reference range"</title></rect> }
    });
    let first = series.points[0].0.chars().take(10).collect::<String>();
    let last = series.points[series.points.len() - 1].0.chars().take(10).collect::<String>();
    let label = format!(
        "{} in {}, {} measurements from {first} to {last}{}",
        series.name,
        series.unit,
        series.points.len(),
        match series.range {
            Some((l, h)) => format!(
                "; reference range {} to {}",
                l.map(format_number).unwrap_or_default(),
                h.map(format_number).unwrap_or_default()
            ),
            None => String::new(),
        }
    );
    let dots = series
        .points
        .iter()
        .map(|p| {
            let tip = format!("{}: {} {}", p.0.chars().take(10).collect::<String>(), format_number(p.2), series.unit);
            view! { <circle class="trend-dot" cx=x(p.1) cy=y(p.2) r="3.5"><title>{tip}</title></circle> }
        })
        .collect_view();
    let rows = series
        .points
        .iter()
        .rev()
        .map(|p| view! { <tr><td>{p.0.chars().take(10).collect::<String>()}</td><td>{format!("{} {}", format_number(p.2), series.unit)}</td></tr> })
        .collect_view();
    view! {
        <svg class="trend" viewBox=format!("0 0 {W} {H}") role="img" aria-label=label.clone() data-testid="trend-chart">
            {band}
            <line class="trend-axis" x1=LEFT y1=H - BOTTOM x2=W - RIGHT y2=H - BOTTOM />
            <line class="trend-axis" x1=LEFT y1=TOP x2=LEFT y2=H - BOTTOM />
            <text class="trend-label" x=LEFT - 6.0 y=TOP + 4.0 text-anchor="end">{format_number(hi)}</text>
            <text class="trend-label" x=LEFT - 6.0 y=H - BOTTOM text-anchor="end">{format_number(lo)}</text>
            <text class="trend-label" x=LEFT y=H - 10.0>{first.clone()}</text>
            <text class="trend-label" x=W - RIGHT y=H - 10.0 text-anchor="end">{last.clone()}</text>
            <polyline class="trend-line" points=line />
            {dots}
        </svg>
        <p class="muted">{label}</p>
        <details>
            <summary>"Show as a table"</summary>
            <table class="table" data-testid="trend-table">
                <thead><tr><th scope="col">"Date"</th><th scope="col">{format!("{} ({})", series.name, series.unit)}</th></tr></thead>
                <tbody>{rows}</tbody>
            </table>
        </details>
    }
}
