//! "Share by link": a SMART Health Link to the patient summary or to
//! records of chosen kinds, made in this browser (ui/links.rs): a label, an
//! expiry, an optional passcode, long-term or not; the link shown as text
//! and as a QR code, with what whoever holds it can read.

use chartkey_core::fhir::Category;
use leptos::prelude::*;

use super::Chart;
use crate::ui::components::CopyButton;
use crate::ui::links::{self, Content, LIFETIMES, Made, NewLink};
use crate::ui::session::use_session;

#[component]
pub(super) fn ShareByLink() -> impl IntoView {
    let chart = expect_context::<Chart>();
    let session = use_session();
    let summary = RwSignal::new(true);
    let kinds = RwSignal::new(0u32);
    let label = RwSignal::new("For my doctor".to_owned());
    let lifetime = RwSignal::new(1usize);
    let passcode = RwSignal::new(String::new());
    let long_term = RwSignal::new(false);
    let direct = RwSignal::new(false);
    let busy = RwSignal::new(None::<String>);
    let error = RwSignal::new(None::<String>);
    let made = RwSignal::new(None::<Made>);

    // The kinds the chart holds, with how many records of each.
    let present = move || {
        chart.records.with(|r| {
            let mut counts = [0usize; Category::ALL.len()];
            for loaded in r.iter().flat_map(|r| r.iter()) {
                if let Some(i) = Category::ALL.iter().position(|c| c.code() == loaded.meta.category) {
                    counts[i] += 1;
                }
            }
            Category::ALL.iter().zip(counts).filter(|(_, n)| *n > 0).map(|(c, n)| (*c, n)).collect::<Vec<_>>()
        })
    };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let (Some(keyring), Some(list)) = (session.keyring.get_untracked(), chart.records.get_untracked()) else {
            return;
        };
        let content = if summary.get_untracked() { Content::Summary } else { Content::Kinds(kinds.get_untracked()) };
        if content == Content::Kinds(0) {
            error.set(Some("Choose at least one kind of record.".into()));
            return;
        }
        let code = passcode.get_untracked();
        let new = NewLink {
            content,
            label: label.get_untracked(),
            lifetime: LIFETIMES[lifetime.get_untracked()].1,
            passcode: (!code.is_empty()).then_some(code),
            long_term: long_term.get_untracked(),
            direct: direct.get_untracked(),
        };
        error.set(None);
        made.set(None);
        busy.set(Some("Starting…".into()));
        leptos::task::spawn_local(async move {
            let result = links::create(&keyring, &list, new, move |p| busy.set(Some(p))).await;
            busy.set(None);
            match result {
                Ok(m) => made.set(Some(m)),
                Err(e) => error.set(Some(e)),
            }
        });
    };
    let no_records = move || chart.records.with(|r| r.as_ref().is_none_or(|r| r.is_empty()));
    view! {
        <section class="panel" aria-labelledby="share-by-link">
            <h2 id="share-by-link">"Share by link"</h2>
            <p class="muted">
                "A SMART Health Link for someone without a Chartkey account: a doctor, an emergency room. "
                "The content is encrypted here; the key is in the link itself, never on our server. "
                "Anyone who has the link (and the passcode, if you set one) can read what it carries until "
                "it expires or you stop it; every use is recorded on the ledger and you are told."
            </p>
            <form class="form" on:submit=submit data-testid="link-form">
                <fieldset>
                    <legend>"What the link carries"</legend>
                    <label class="check">
                        <input type="radio" name="link-content" prop:checked=summary
                            on:change=move |_| summary.set(true) />
                        "My patient summary (problems, medications, allergies, results…)"
                    </label>
                    <label class="check">
                        <input type="radio" name="link-content" prop:checked=move || !summary.get()
                            on:change=move |_| summary.set(false) />
                        "Records of these kinds:"
                    </label>
                    <div class="chips" role="group" aria-label="Kinds of records">
                        {move || present().into_iter().map(|(category, n)| {
                            let bit = 1u32 << category.code();
                            view! {
                                <label class="check">
                                    <input type="checkbox" data-kind=category.label()
                                        prop:checked=move || kinds.get() & bit != 0
                                        on:change=move |_| { summary.set(false); kinds.update(|k| *k ^= bit) } />
                                    {format!("{} ({n})", category.label())}
                                </label>
                            }
                        }).collect_view()}
                    </div>
                </fieldset>
                <label>
                    "Label (shown to whoever opens it)"
                    <input type="text" maxlength="80" required prop:value=label
                        on:input=move |ev| label.set(event_target_value(&ev)) data-testid="link-label" />
                </label>
                <label>
                    "Expires after"
                    <select on:change=move |ev| lifetime.set(event_target_value(&ev).parse().unwrap_or(1))
                        data-testid="link-expiry">
                        {LIFETIMES.iter().enumerate().map(|(i, (text, _))| view! {
                            <option value=i.to_string() selected=move || lifetime.get() == i>{*text}</option>
                        }).collect_view()}
                    </select>
                </label>
                <label>
                    "Passcode (optional; give it separately)"
                    <input type="text" autocomplete="off" maxlength="256" prop:value=passcode
                        on:input=move |ev| passcode.set(event_target_value(&ev)) data-testid="link-passcode" />
                </label>
                <label class="check">
                    <input type="checkbox" prop:checked=long_term on:change=move |_| long_term.update(|l| *l = !*l) />
                    "Long-term: I may update what it carries later"
                </label>
                <label class="check">
                    <input type="checkbox" prop:checked=direct on:change=move |_| direct.update(|d| *d = !*d)
                        data-testid="link-direct" />
                    "Direct file: simpler readers fetch it in one step (no passcode)"
                </label>
                <button type="submit" class="button" disabled=move || no_records() || busy.with(Option::is_some)
                    data-testid="link-make">"Make the link"</button>
            </form>
            {move || busy.get().map(|b| view! { <p class="muted" role="status">{b}</p> })}
            {move || error.get().map(|e| view! { <p class="alert alert-error" role="alert">{e}</p> })}
            {move || made.get().map(|m| {
                let text = m.link.clone();
                view! {
                    <div class="made-link" data-testid="link-made">
                        <p role="status">"Your link is ready. It works until it expires or you stop it on the Links page."</p>
                        <label>
                            "The link"
                            <textarea readonly rows="4" data-testid="link-text">{m.link.clone()}</textarea>
                        </label>
                        <CopyButton text=text label="Copy the link" />
                        {m.qr_svg.map(|svg| view! { <div class="qr" data-testid="link-qr" inner_html=svg></div> })}
                    </div>
                }
            })}
        </section>
    }
}
