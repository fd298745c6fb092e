//! Adding records: choosing files, previewing what they hold, encrypting,
//! uploading and anchoring them, with progress.

use super::*;

/// A file the patient chose, read and parsed.
#[derive(Clone)]
pub(super) struct Chosen {
    resources: Vec<ImportedResource>,
    /// Resource types the patient unticked.
    skipped: Vec<String>,
    problems: Vec<String>,
}

#[component]
pub(super) fn AddRecords() -> impl IntoView {
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
pub(super) fn ImportPreview(chosen: Chosen, on_change: Callback<Chosen>) -> impl IntoView {
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
pub(super) async fn read_file(file: &web_sys::File, limit: u64) -> Result<Vec<ImportedResource>, String> {
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

pub(super) fn js_date_now() -> String {
    String::from(js_sys::Date::new_0().to_iso_string())
}

// ----- Timeline -----
