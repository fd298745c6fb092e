//! A clinician's side: charts shared with them, opening a record (an
//! access the ledger records first), and writing a record back.

use super::shares::{ShareTerms, state_words, time_left};
use super::*;

/// A clinician's "Shared with me".
#[component]
pub(super) fn SharedWithMe() -> impl IntoView {
    let shares = RwSignal::new(None::<Vec<ShareView>>);
    // The chart open is in the address: /sharing/<patient's address>.
    let open_patient = RwSignal::new(None::<value::Address>);
    crate::ui::nav::bind_selection("/sharing", open_patient);
    let error = RwSignal::new(None::<String>);
    load(shares, error, api::shares_list);
    view! {
        <PageHead title="Shared with me" error=error
            lead="Patients who shared records with you, what, and for how long. Every record you open is recorded \
            on the ledger and the patient is told." />
        <Listing items=shares empty="No one has shared records with you yet." testid="shared-with-me"
            columns=&["Patient", "What", "Access", "Time left", "Status"]
            row=move |s: ShareView| {
                let (words, class) = state_words(s.state);
                let patient = s.patient;
                view! {
                    <tr data-testid="held-share">
                        <td>{s.patient_name.clone()}</td>
                        <ShareTerms share=s.clone() />
                        <td>{if s.state == ShareState::Active { time_left(s.expires_at) } else { "—".into() }}</td>
                        <td><span class=class>{words}</span></td>
                        <td>
                            <button type="button" class="button button-small"
                                on:click=move |_| open_patient.set(Some(patient))>
                                {format!("Open {}'s chart", s.patient_name)}
                            </button>
                        </td>
                    </tr>
                }
            } />
        {move || open_patient.get().map(|p| view! { <SharedChartView patient=p /> })}
    }
}

/// One patient's shared chart, for the clinician. Every open signs an
/// access, which the ledger records before anything is released; when the
/// share has ended, the reason is shown and everything decrypted is dropped.
#[component]
fn SharedChartView(patient: value::Address) -> impl IntoView {
    let session = use_session();
    let chart = RwSignal::new(None::<api::SharedChart>);
    let opened = RwSignal::new(Vec::<sharing::OpenedShared>::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(None::<String>);
    let nonce = StoredValue::new(0u64);
    let patient_key = StoredValue::new(patient);
    let load = move || {
        leptos::task::spawn_local(async move {
            match api::shares_chart(patient_key.get_value()).await {
                Ok(c) => {
                    nonce.set_value(c.next_nonce);
                    if c.share.state != ShareState::Active {
                        opened.set(Vec::new());
                    }
                    chart.set(Some(c));
                }
                Err(e) => error.set(Some(e.to_string())),
            }
        })
    };
    load();
    // The write-back form stays (with its messages) while the chart reloads.
    let writable = Memo::new(move |_| {
        chart.with(|c| {
            c.as_ref()
                .filter(|c| c.share.write && c.share.state == ShareState::Active)
                .map(|c| (c.share.patient, c.share.patient_name.clone()))
        })
    });
    let open = move |meta: api::SharedRecord| {
        let Some(keyring) = session.keyring.get_untracked() else { return };
        error.set(None);
        busy.set(Some("Asking the ledger to record this access…".into()));
        leptos::task::spawn_local(async move {
            let result =
                sharing::open(&keyring, patient_key.get_value(), meta, nonce.get_value(), move |m| busy.set(Some(m)))
                    .await;
            busy.set(None);
            match result {
                Ok(o) => {
                    nonce.update_value(|n| *n += 1);
                    opened.update(|list| {
                        list.retain(|x| x.id != o.id);
                        list.insert(0, o);
                    });
                }
                Err(e) => {
                    // Refused: whatever this chart showed is dropped, and
                    // the share's state is read again to say why.
                    opened.set(Vec::new());
                    error.set(Some(e));
                    load();
                }
            }
        });
    };
    view! {
        <section class="panel" data-testid="shared-chart" aria-labelledby="shared-chart-heading">
            {move || chart.get().map(|c| {
                let (words, _) = state_words(c.share.state);
                view! {
                    <h2 id="shared-chart-heading">{format!("{}'s shared records", c.share.patient_name)}</h2>
                    {(c.share.state != ShareState::Active).then(|| view! {
                        <p class="alert alert-warning" role="alert" data-testid="share-ended">
                            {match c.share.state {
                                ShareState::Stopped => "The patient stopped sharing with you, so these records are closed. Nothing decrypted from them is kept here.",
                                ShareState::Expired => "The time the patient shared these for has ended. Nothing decrypted from them is kept here.",
                                ShareState::CredentialLapsed => "Your credential has expired or was revoked, so shared records are closed to you.",
                                ShareState::Active => "",
                            }}
                            " (" {words} ")"
                        </p>
                    })}
                    <ul class="list" aria-label="Shared records">
                        {c.records.into_iter().map(|m| {
                            let label = Category::from_code(m.category).map_or("Record", Category::label);
                            let meta = m.clone();
                            view! {
                                <li class="shared-record" data-testid="shared-record">
                                    {format!("{label} · added {}", format_date(m.created_at))}
                                    " "
                                    <button type="button" class="button button-small"
                                        on:click=move |_| open(meta.clone())
                                        disabled=move || busy.with(Option::is_some)>
                                        "Open"
                                    </button>
                                </li>
                            }
                        }).collect_view()}
                    </ul>
                }
            })}
            <ErrorMessage error=error />
            <Busy message=busy />
            {move || writable.get().map(|(patient, name)| view! {
                <WriteBack patient=patient patient_name=name on_added=Callback::new(move |()| load()) />
            })}
            {move || opened.get().into_iter().map(|o| {
                let summary = o.opened.summary.clone();
                view! {
                    <article class="record-view" data-testid="opened-record" data-access-tx=o.access_tx.to_string()>
                        <h3>{summary.title.clone()}</h3>
                        {summary.date.as_deref().map(|d| view! { <p class="muted"><time datetime=d.to_owned()>{format_fhir_date(d)}</time></p> })}
                        <dl class="facts">
                            {summary.fields.iter().map(|f| view! { <dt>{f.label}</dt><dd>{f.value.clone()}</dd> }).collect_view()}
                        </dl>
                        <p class="ledger-line muted">{format!("Access recorded on the ledger in block {}.", o.access_block)}</p>
                    </article>
                }
            }).collect_view()}
        </section>
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Entry {
    Note,
    Observation,
    Medication,
}

/// A clinician adds a note, an observation or a medication request to the
/// patient's chart under a read+write share: written as FHIR, encrypted in
/// this browser for the patient and the clinician, anchored with the
/// clinician as author.
#[component]
fn WriteBack(patient: value::Address, patient_name: String, on_added: Callback<()>) -> impl IntoView {
    let session = use_session();
    let kind = RwSignal::new("note".to_string());
    let text = RwSignal::new(String::new());
    let value = RwSignal::new(String::new());
    let unit = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(None::<String>);
    let done = RwSignal::new(None::<String>);
    let patient = StoredValue::new(patient);
    let entry = move || match kind.get().as_str() {
        "observation" => Entry::Observation,
        "medication" => Entry::Medication,
        _ => Entry::Note,
    };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some(keyring) = session.keyring.get_untracked() else { return };
        let author = session.account.with_untracked(|a| a.as_ref().map(|a| a.display_name.clone())).unwrap_or_default();
        let date = String::from(js_sys::Date::new_0().to_iso_string());
        let resource = match build_entry(
            entry(),
            &text.get_untracked(),
            &value.get_untracked(),
            &unit.get_untracked(),
            &author,
            &date,
        ) {
            Ok(r) => r,
            Err(e) => {
                error.set(Some(e));
                return;
            }
        };
        error.set(None);
        done.set(None);
        busy.set(Some("Encrypting for the patient and you, and anchoring it…".into()));
        leptos::task::spawn_local(async move {
            let result = sharing::write_back(&keyring, patient.get_value(), &resource).await;
            busy.set(None);
            match result {
                Ok(block) => {
                    text.set(String::new());
                    value.set(String::new());
                    done.set(Some(match block {
                        Some(block) => format!("Added to the chart, anchored in block {block}."),
                        None => "Added; the ledger will anchor it shortly.".to_string(),
                    }));
                    on_added.run(());
                }
                Err(e) => error.set(Some(e)),
            }
        });
    };
    view! {
        <form class="stack write-back" on:submit=submit data-testid="write-back">
            <h3>{format!("Add to {patient_name}'s chart")}</h3>
            <label class="field">
                <span>"What"</span>
                <select bind:value=kind>
                    <option value="note">"Clinical note"</option>
                    <option value="observation">"Observation"</option>
                    <option value="medication">"Medication request"</option>
                </select>
            </label>
            <label class="field">
                <span>{move || match entry() { Entry::Note => "Note", Entry::Observation => "Observed (e.g. Body weight)", Entry::Medication => "Medication and dose" }}</span>
                <textarea required rows="3" maxlength="20000" bind:value=text></textarea>
            </label>
            <Show when=move || entry() == Entry::Observation>
                <div class="inline-form">
                    <label class="field"><span>"Value"</span><input type="text" inputmode="decimal" bind:value=value /></label>
                    <label class="field"><span>"Unit"</span><input type="text" maxlength="32" bind:value=unit /></label>
                </div>
            </Show>
            <p class="muted">"The patient sees it as added by you, and is told."</p>
            <ErrorMessage error=error />
            <Busy message=busy />
            {move || done.get().map(|d| view! { <p class="alert alert-success" role="status">{d}</p> })}
            <button type="submit" class="button button-primary" disabled=move || busy.with(Option::is_some)>"Add to chart"</button>
        </form>
    }
}

/// The FHIR resource (JSON) for a write-back entry.
fn build_entry(entry: Entry, text: &str, value: &str, unit: &str, author: &str, date: &str) -> Result<String, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("Write something first.".into());
    }
    let by = serde_json::json!([{ "display": author }]);
    Ok(match entry {
        Entry::Note => {
            let mut doc: serde_json::Value = serde_json::from_str(&chartkey_core::fhir::document_reference(
                "Clinical note",
                "text/plain",
                text.as_bytes(),
                date,
            ))
            .map_err(|e| e.to_string())?;
            doc["author"] = by;
            doc["type"] = serde_json::json!({ "text": "Clinical note" });
            doc.to_string()
        }
        Entry::Observation => {
            let number: f64 =
                value.trim().replace(',', ".").parse().map_err(|_| "Enter the value as a number.".to_string())?;
            serde_json::json!({
                "resourceType": "Observation",
                "status": "final",
                "code": { "text": text },
                "effectiveDateTime": date,
                "issued": date,
                "performer": by,
                "valueQuantity": { "value": number, "unit": unit.trim() },
            })
            .to_string()
        }
        Entry::Medication => serde_json::json!({
            "resourceType": "MedicationRequest",
            "status": "active",
            "intent": "order",
            "medicationCodeableConcept": { "text": text },
            "authoredOn": date,
            "requester": { "display": author },
            "dosageInstruction": [{ "text": text }],
        })
        .to_string(),
    })
}
