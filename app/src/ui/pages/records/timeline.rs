//! The chart as a timeline, newest first, searchable and filtered by kind.

use super::*;

#[component]
pub(super) fn Timeline() -> impl IntoView {
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

pub(super) fn rank(day: &str) -> u8 {
    match day {
        "Needs attention" => 2,
        "Undated" => 0,
        _ => 1,
    }
}

/// A day heading: the day as the reader writes dates ("Undated" and
/// "Needs attention" as they are).
pub(super) fn day_label(day: &str) -> String {
    crate::ui::components::format_fhir_date(day)
}

pub(super) fn matches(o: &records::Opened, q: &str) -> bool {
    o.summary.title.to_lowercase().contains(q)
        || o.summary.resource_type.to_lowercase().contains(q)
        || o.summary.fields.iter().any(|f| f.value.to_lowercase().contains(q))
}

#[component]
pub(super) fn TimelineItem(loaded: Loaded) -> impl IntoView {
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
