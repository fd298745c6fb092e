//! "Patient summary": an International Patient Summary (FHIR IPS) made in
//! this browser from the records read here (core::ips), shown as text and
//! offered as a FHIR document to download.

use leptos::prelude::*;

use super::Chart;
use crate::ui::components::save_file;
use crate::ui::records;

#[component]
pub(super) fn PatientSummary() -> impl IntoView {
    let chart = expect_context::<Chart>();
    let made = RwSignal::new(None::<Result<chartkey_core::ips::PatientSummary, String>>);
    let make = move |_| {
        let Some(list) = chart.records.get_untracked() else { return };
        made.set(Some(records::patient_summary(&list)));
    };
    let download = move |_| {
        made.with_untracked(|m| {
            if let Some(Ok(summary)) = m {
                save_file("patient-summary.json", "application/fhir+json", summary.json.as_bytes());
            }
        });
    };
    let no_records = move || chart.records.with(|r| r.as_ref().is_none_or(|r| r.is_empty()));
    view! {
        <section class="panel" aria-labelledby="patient-summary">
            <div class="panel-head">
                <h2 id="patient-summary">"Patient summary"</h2>
                <button type="button" class="button button-small" on:click=make disabled=no_records
                    data-testid="summary-button">
                    {move || if made.with(Option::is_some) { "Make it again" } else { "Make my patient summary" }}
                </button>
            </div>
            <p class="muted">
                "The summary other health systems read (an International Patient Summary): your problems, "
                "medications and allergies, immunizations, latest results and vital signs, and procedures. "
                "It is made here, from your records, and leaves this browser only if you download it."
            </p>
            {move || made.get().map(|result| match result {
                Err(e) => view! { <p class="alert alert-error" role="alert">{e}</p> }.into_any(),
                Ok(summary) => view! {
                    <div class="summary" data-testid="summary">
                        {summary.sections.into_iter().map(|section| view! {
                            <h3>{section.title}</h3>
                            <ul>{section.entries.into_iter().map(|e| view! { <li>{e}</li> }).collect_view()}</ul>
                        }).collect_view()}
                    </div>
                    <button type="button" class="button" on:click=download data-testid="summary-download">
                        "Download the summary (FHIR JSON)"
                    </button>
                }.into_any(),
            })}
        </section>
    }
}
