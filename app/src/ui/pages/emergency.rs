//! Emergency contacts (ui/emergency.rs does the work): a patient invites
//! someone by a link, names them once they accepted, with a waiting
//! period, and can refuse a request during the wait or remove the contact;
//! whoever was named asks, and once the wait has passed opens the
//! patient's summary. An invitation link opens this page, which accepts it.

use chartkey_core::bundle_view::Shown;
use chartkey_core::role::Role;
use chartkey_core::value::Address;
use leptos::prelude::*;

use crate::api::{self, EmergencyOverview, EmergencyPairView, EmergencyState, EmergencyStep};
use crate::ui::components::{Busy, CopyButton, PageHead, SummaryFacts, format_datetime, reloader};
use crate::ui::emergency;
use crate::ui::records;
use crate::ui::session::use_session;

/// One step's work, run by the page's `step` with words while it runs.
type Work = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>>>>;

/// The waiting periods offered: (label, seconds).
const WAITS: [(&str, u32); 5] =
    [("No wait", 0), ("1 day", 86_400), ("2 days", 2 * 86_400), ("3 days", 3 * 86_400), ("7 days", 7 * 86_400)];

fn wait_words(seconds: u32) -> String {
    match seconds {
        0 => "no wait".into(),
        s if s % 86_400 == 0 => format!("{} day{}", s / 86_400, if s == 86_400 { "" } else { "s" }),
        s => format!("{} hours", s.div_ceil(3_600)),
    }
}

fn state_words(state: EmergencyState) -> String {
    match state {
        EmergencyState::Named => "Named".into(),
        EmergencyState::Waiting { opens_at } => format!("Asked; opens {} unless refused", format_datetime(opens_at)),
        EmergencyState::Open => "Open: can read the summary".into(),
        EmergencyState::Removed => "Removed".into(),
    }
}

#[component]
pub fn EmergencyOverviewPage() -> impl IntoView {
    let session = use_session();
    let overview = RwSignal::new(None::<EmergencyOverview>);
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(None::<String>);
    let reload = reloader(overview, error, api::emergency_page);
    // Runs one step with words while it runs, then reads the page again.
    let step = move |words: &str, work: Work| {
        error.set(None);
        busy.set(Some(words.to_owned()));
        leptos::task::spawn_local(async move {
            let result = work.await;
            busy.set(None);
            match result {
                Ok(()) => reload(),
                Err(e) => error.set(Some(e)),
            }
        });
    };
    let patient = session.role() == Some(Role::Patient);
    // A summary a contact opened: kept apart from the lists, which are read
    // again after each step.
    let opened = RwSignal::new(None::<(String, String)>);
    view! {
        <div class="stack">
            <PageHead title="Emergency contacts" error=error
                lead="People you trust to read your patient summary when you cannot share it yourself. You invite them \
                by a link; when one asks, you are told at once and can refuse during the waiting period you set. \
                Every step is recorded on the ledger." />
            <Busy message=busy />
            {emergency::token_in_address().map(|token| view! { <Accept token done=reload /> })}
            {patient.then(|| view! { <Invite /> })}
            {move || overview.get().map(|o| {
                let next_nonce = o.next_nonce;
                view! {
                    {patient.then(|| view! { <MyContacts overview=o.clone() step busy /> })}
                    <NamedMe pairs=o.named_me.clone() next_nonce step opened />
                }
            })}
            {move || opened.get().map(|(name, json)| view! { <Summary name json /> })}
        </div>
    }
}

/// Accepting an invitation opened from its link.
#[component]
fn Accept(token: chartkey_core::value::Hash32, done: impl Fn() + Copy + Send + Sync + 'static) -> impl IntoView {
    let accepted = RwSignal::new(None::<Result<api::Accepted, String>>);
    let accept = move |_| {
        leptos::task::spawn_local(async move {
            let answer = api::emergency_accept(api::AcceptBody { token }).await.map_err(|e| e.to_string());
            if answer.is_ok() {
                // The secret is spent: out of the address bar and history.
                if let Some(history) = web_sys::window().and_then(|w| w.history().ok()) {
                    let _ =
                        history.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(emergency::ACCEPT_PATH));
                }
                done();
            }
            accepted.set(Some(answer));
        })
    };
    view! {
        <section class="panel stack" aria-labelledby="accept-title" data-testid="accept-invitation">
            <h2 id="accept-title">"An invitation to be an emergency contact"</h2>
            {move || match accepted.get() {
                None => view! {
                    <p>"Someone asks you to be their emergency contact. If you accept, they can name you; you could then "
                       "ask to read their patient summary, and read it after their waiting period unless they refuse."</p>
                    <button type="button" class="button button-primary" on:click=accept>"Accept the invitation"</button>
                }.into_any(),
                Some(Ok(a)) => view! {
                    <p class="alert alert-success" role="status">
                        {format!("You accepted {}'s invitation. They are told, and can now name you.", a.patient_name)}
                    </p>
                }.into_any(),
                Some(Err(e)) => view! { <p class="alert alert-error" role="alert">{e}</p> }.into_any(),
            }}
        </section>
    }
}

/// A new invitation: the waiting period, and the link to give.
#[component]
fn Invite() -> impl IntoView {
    let wait = RwSignal::new(2usize);
    let link = RwSignal::new(None::<Result<String, String>>);
    let invite = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let wait_seconds = WAITS[wait.get_untracked()].1;
        leptos::task::spawn_local(async move {
            let answer = api::emergency_invite(api::InviteBody { wait_seconds }).await;
            link.set(Some(answer.map(|i| emergency::invitation_link(i.token)).map_err(|e| e.to_string())));
        })
    };
    view! {
        <section class="panel stack" aria-labelledby="invite-title">
            <h2 id="invite-title">"Invite a contact"</h2>
            <form class="stack" on:submit=invite>
                <label class="field">
                    <span>"How long they wait after asking, during which you can refuse"</span>
                    <select on:change=move |ev| wait.set(event_target_value(&ev).parse().unwrap_or(2)) data-testid="invite-wait">
                        {WAITS.iter().enumerate().map(|(i, (label, _))| view! {
                            <option value=i.to_string() selected=move || wait.get() == i>{*label}</option>
                        }).collect_view()}
                    </select>
                </label>
                <div class="actions"><button type="submit" class="button">"Make an invitation link"</button></div>
            </form>
            {move || link.get().map(|l| match l {
                Ok(l) => view! {
                    <p>"Give this link to your contact (it works once, for 7 days). They sign in to Chartkey and accept; "
                       "then name them below."</p>
                    <label class="field"><span>"Invitation link"</span>
                        <textarea readonly rows="2" data-testid="invitation-link">{l.clone()}</textarea></label>
                    <CopyButton text=l label="Copy the link" />
                }.into_any(),
                Err(e) => view! { <p class="alert alert-error" role="alert">{e}</p> }.into_any(),
            })}
        </section>
    }
}

/// The patient's invitations and contacts.
#[component]
fn MyContacts(
    overview: EmergencyOverview,
    step: impl Fn(&str, Work) + Copy + Send + Sync + 'static,
    busy: RwSignal<Option<String>>,
) -> impl IntoView {
    let session = use_session();
    let named: Vec<_> =
        overview.contacts.iter().filter(|c| c.state != EmergencyState::Removed).map(|c| c.contact).collect();
    // A contact removed before and invited again is named with the pair's serial.
    let serials: Vec<(Address, u32)> = overview.contacts.iter().map(|c| (c.contact, c.serial)).collect();
    // Accepted invitations to name from: the newest per contact, and for a
    // contact removed before, only one accepted since.
    let removed_at = |contact: Address| {
        overview
            .contacts
            .iter()
            .find(|c| c.contact == contact)
            .and_then(|c| c.events.iter().find(|e| e.step == EmergencyStep::Removed).map(|e| e.at))
    };
    let mut waiting: Vec<api::InvitationView> = Vec::new();
    for i in &overview.invitations {
        let Some(contact) = i.contact.filter(|c| !named.contains(c)) else { continue };
        let since_removal = removed_at(contact).is_none_or(|at| i.accepted_at.is_some_and(|a| a >= at));
        let newer = waiting.iter().all(|w| w.contact != Some(contact) || w.created_at < i.created_at);
        if since_removal && newer {
            waiting.retain(|w| w.contact != Some(contact));
            waiting.push(i.clone());
        }
    }
    let open: Vec<_> = overview.invitations.iter().filter(|i| i.contact.is_none()).cloned().collect();
    let name = move |contact: Address, wait_seconds: u32, serial: u32| {
        let Some(keyring) = session.keyring.get_untracked() else { return };
        step(
            "Reading your records…",
            Box::pin(async move {
                let list = records::load_all(&keyring, |_, _| {}).await?;
                emergency::name(&keyring, &list, contact, wait_seconds, serial, move |p| busy.set(Some(p))).await
            }),
        );
    };
    let act = move |words: &'static str, pair: EmergencyPairView, remove: bool| {
        let Some(keyring) = session.keyring.get_untracked() else { return };
        let (contact, serial) = (pair.contact, pair.serial);
        step(
            words,
            Box::pin(async move {
                if remove {
                    emergency::remove(&keyring, contact, serial).await
                } else {
                    emergency::refuse(&keyring, contact, serial).await
                }
            }),
        );
    };
    view! {
        <section class="panel stack" aria-labelledby="contacts-title" data-testid="my-contacts">
            <h2 id="contacts-title">"Your contacts"</h2>
            {(!open.is_empty()).then(|| view! {
                <p class="muted">{format!("{} invitation{} not accepted yet.", open.len(), if open.len() == 1 { "" } else { "s" })}</p>
            })}
            {waiting.into_iter().map(|i| {
                let who = i.contact_name.clone().unwrap_or_default();
                let (contact, wait_seconds) = (i.contact.expect("accepted"), i.wait_seconds);
                let serial = serials.iter().find(|(c, _)| *c == contact).map_or(0, |(_, s)| *s);
                view! {
                    <div class="alert alert-info" data-testid="accepted-invitation">
                        <p>{format!("{who} accepted your invitation (wait: {}).", wait_words(wait_seconds))}</p>
                        <button type="button" class="button button-primary" on:click=move |_| name(contact, wait_seconds, serial)>
                            {format!("Name {who} (approve with your passkey)")}
                        </button>
                    </div>
                }
            }).collect_view()}
            {if overview.contacts.is_empty() {
                view! { <p class="muted">"You have not named anyone yet."</p> }.into_any()
            } else {
                view! { <ul class="list">{overview.contacts.into_iter().map(|c| {
                    let (refuse_pair, remove_pair) = (c.clone(), c.clone());
                    let can_refuse = matches!(c.state, EmergencyState::Waiting { .. } | EmergencyState::Open);
                    let live = c.state != EmergencyState::Removed;
                    view! {
                        <li data-testid="contact">
                            <strong>{c.contact_name.clone()}</strong>
                            {format!(" · wait {} · ", wait_words(c.wait_seconds))}
                            <span data-state>{state_words(c.state)}</span>
                            <History events=c.events.clone() />
                            <div class="row-actions">
                                {can_refuse.then(|| view! {
                                    <button type="button" class="button button-small" on:click=move |_| act("Approve with your passkey to refuse…", refuse_pair.clone(), false)>
                                        "Refuse access"</button>
                                })}
                                {live.then(|| view! {
                                    <button type="button" class="button button-small button-danger" on:click=move |_| act("Approve with your passkey to remove them…", remove_pair.clone(), true)>
                                        "Remove"</button>
                                })}
                            </div>
                        </li>
                    }
                }).collect_view()}</ul> }.into_any()
            }}
        </section>
    }
}

/// A pair's steps on the ledger, newest first.
#[component]
fn History(events: Vec<api::EmergencyEventView>) -> impl IntoView {
    let word = |step: EmergencyStep| match step {
        EmergencyStep::Named => "named",
        EmergencyStep::Requested => "asked",
        EmergencyStep::Refused => "refused",
        EmergencyStep::Accessed => "read the summary",
        EmergencyStep::Removed => "removed",
    };
    (!events.is_empty()).then(|| {
        let text = events.iter().map(|e| format!("{} {}", word(e.step), format_datetime(e.at))).collect::<Vec<_>>();
        view! { <br /><small class="muted">{text.join(" · ")}</small> }
    })
}

/// The patients who named the signed-in account.
#[component]
fn NamedMe(
    pairs: Vec<EmergencyPairView>,
    next_nonce: u64,
    step: impl Fn(&str, Work) + Copy + Send + Sync + 'static,
    opened: RwSignal<Option<(String, String)>>,
) -> impl IntoView {
    let session = use_session();
    let ask = move |patient: Address| {
        let Some(keyring) = session.keyring.get_untracked() else { return };
        step(
            "Recording your request on the ledger…",
            Box::pin(async move { emergency::request(&keyring, patient, next_nonce).await }),
        );
    };
    let open = move |patient: Address, name: String| {
        let Some(keyring) = session.keyring.get_untracked() else { return };
        step(
            "Recording your access on the ledger, then decrypting…",
            Box::pin(async move {
                let json = emergency::open(&keyring, patient, next_nonce).await?;
                opened.set(Some((name, json)));
                Ok(())
            }),
        );
    };
    let pairs: Vec<_> = pairs.into_iter().filter(|p| p.state != EmergencyState::Removed).collect();
    (!pairs.is_empty()).then(|| view! {
        <section class="panel stack" aria-labelledby="named-me-title" data-testid="named-me">
            <h2 id="named-me-title">"People who named you"</h2>
            <ul class="list">{pairs.into_iter().map(|p| {
                let (patient, name) = (p.patient, p.patient_name.clone());
                view! {
                    <li data-testid="named-me-pair">
                        <strong>{p.patient_name.clone()}</strong>
                        {format!(" · wait {} · ", wait_words(p.wait_seconds))}
                        <span data-state>{state_words(p.state)}</span>
                        <div class="row-actions">
                            {(p.state == EmergencyState::Named).then(|| view! {
                                <button type="button" class="button button-small" on:click=move |_| ask(patient)>
                                    "Ask for access"</button>
                            })}
                            {(p.state == EmergencyState::Open).then(|| view! {
                                <button type="button" class="button button-small button-primary" on:click=move |_| open(patient, name.clone())>
                                    "Read the summary"</button>
                            })}
                        </div>
                    </li>
                }
            }).collect_view()}</ul>
        </section>
    })
}

/// The summary a contact opened: section by section, each record as the
/// chart's record view shows it (as text).
#[component]
fn Summary(name: String, json: String) -> impl IntoView {
    let mut shown = Shown::default();
    shown.add_file(Some(chartkey_core::shl::FHIR_JSON), json.as_bytes());
    view! {
        <article class="panel stack" data-testid="contact-summary">
            <h2>{format!("{name}'s patient summary")}</h2>
            {shown.skipped.into_iter().map(|why| view! { <p class="alert alert-warning">{why}</p> }).collect_view()}
            {shown.groups.into_iter().map(|group| view! {
                <section class="stack">
                    <h3>{group.title}</h3>
                    {group.records.into_iter().map(|record| {
                        let s = record.summary;
                        view! {
                            <article class="record-view">
                                <h4>{s.title.clone()}</h4>
                                <dl class="facts">
                                    <SummaryFacts summary=s.clone() />
                                    {s.links.iter().map(|l| view! {
                                        <dt>{l.label}</dt><dd>{l.display.clone().unwrap_or_else(|| l.reference.clone())}</dd>
                                    }).collect_view()}
                                </dl>
                            </article>
                        }
                    }).collect_view()}
                </section>
            }).collect_view()}
        </article>
    }
}
