//! Sharing. A patient shares chosen records, categories or everything with
//! a verified clinician for a chosen time, reviews it in plain words, and
//! the browser wraps each record's data key to the clinician's verified
//! encryption key and signs the grant; every share is listed with where it
//! stands on the ledger, and "Stop sharing" ends one at once; "Who viewed
//! my records" lists every access. A clinician sees what is shared with
//! them.

use std::collections::BTreeSet;
use std::sync::Arc;

use chartkey_core::eip712::{Domain, Grant, Revoke, SCOPE_CATEGORIES, SCOPE_EVERYTHING, SCOPE_RECORDS};
use chartkey_core::envelope::{self, RecordId};
use chartkey_core::fhir::Category;
use chartkey_core::role::Role;
use chartkey_core::value::{self, Hash32};
use ethers_core::types::{Address, U256};
use leptos::prelude::*;
use rand_core::OsRng;

use super::credentials::ClinicianItem;
use crate::api::{self, AccessView, ClinicianCard, ShareKey, ShareState, ShareView};
use crate::ui::components::{Busy, CredentialBadge, ErrorMessage, format_date, format_datetime, save_file};
use crate::ui::records::{self as chart_records, Loaded, ReadState};
use crate::ui::session::{Keyring, use_session};

/// Longest a share may run (the Records contract's limit is 366 days).
const MAX_SHARE_DAYS: i64 = 365;

#[component]
pub fn SharingOverview() -> impl IntoView {
    let session = use_session();
    match session.account.get_untracked().map(|a| a.role) {
        Some(Role::Patient) => view! { <PatientSharing /> }.into_any(),
        Some(Role::Clinician) => view! { <SharedWithMe /> }.into_any(),
        _ => view! {
            <h1>"Sharing"</h1>
            <p class="alert alert-info">"Patients share records with clinicians; there is nothing to share from this account."</p>
        }
        .into_any(),
    }
}

/// The patient's page: share, the list of shares, who viewed.
#[component]
fn PatientSharing() -> impl IntoView {
    let session = use_session();
    let chart = RwSignal::new(None::<Arc<Vec<Loaded>>>);
    let shares = RwSignal::new(None::<Vec<ShareView>>);
    let accesses = RwSignal::new(None::<Vec<AccessView>>);
    let error = RwSignal::new(None::<String>);
    let loading = RwSignal::new(Some("Fetching and decrypting your records…".to_string()));
    let reload_lists = move || {
        leptos::task::spawn_local(async move {
            match api::shares_list().await {
                Ok(list) => shares.set(Some(list)),
                Err(e) => error.set(Some(e.to_string())),
            }
            match api::accesses_list().await {
                Ok(list) => accesses.set(Some(list)),
                Err(e) => error.set(Some(e.to_string())),
            }
        })
    };
    reload_lists();
    if let Some(keyring) = session.keyring.get_untracked() {
        leptos::task::spawn_local(async move {
            let result = chart_records::load_all(&keyring, move |done, total| {
                loading.set(Some(format!("Verifying and decrypting your records: {done} of {total}")));
            })
            .await;
            match result {
                Ok(list) => chart.set(Some(Arc::new(list))),
                Err(e) => error.set(Some(e)),
            }
            loading.set(None);
        });
    }
    let reload = Callback::new(move |()| reload_lists());
    view! {
        <h1>"Sharing"</h1>
        <p class="lead">
            "Choose what a verified clinician may see and for how long. Your browser hands them the keys to those "
            "records only; every time they open one, the ledger records it before anything is sent, and you see it here."
        </p>
        <ErrorMessage error=error />
        <Busy message=loading />
        {move || chart.get().map(|c| view! { <ShareForm chart=c on_shared=reload /> })}
        <SharesList shares=shares reload=reload />
        <WhoViewed accesses=accesses chart=chart />
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Step {
    Choose,
    Review,
    Done,
}

/// The record ids a share of `scope` covers, among the records this browser
/// could verify and holds a key for.
fn covered(chart: &[Loaded], scope: u8, chosen: &BTreeSet<RecordId>, categories: u32) -> Vec<RecordId> {
    chart
        .iter()
        .filter(|l| matches!(l.state, ReadState::Open(_)) && l.meta.wrapped_key.is_some())
        .filter(|l| match scope {
            SCOPE_RECORDS => chosen.contains(&l.meta.id),
            SCOPE_CATEGORIES => categories >> l.meta.category & 1 == 1,
            _ => true,
        })
        .map(|l| l.meta.id)
        .collect()
}

fn title_of(l: &Loaded) -> String {
    match l.opened() {
        Some(o) => match &o.summary.date {
            Some(date) => format!("{} ({date})", o.summary.title),
            None => o.summary.title.clone(),
        },
        None => format!("Record {}", &l.meta.id.to_hex()[..10]),
    }
}

fn duration_words(days: i64) -> String {
    match days {
        1 => "1 day".into(),
        n => format!("{n} days"),
    }
}

#[component]
fn ShareForm(chart: Arc<Vec<Loaded>>, on_shared: Callback<()>) -> impl IntoView {
    let session = use_session();
    let step = RwSignal::new(Step::Choose);
    let clinician = RwSignal::new(None::<ClinicianCard>);
    let scope = RwSignal::new(SCOPE_RECORDS);
    let chosen = RwSignal::new(BTreeSet::<RecordId>::new());
    let categories = RwSignal::new(0u32);
    let days = RwSignal::new("7".to_string());
    let custom_date = RwSignal::new(String::new());
    let write = RwSignal::new(false);
    let filter = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(None::<String>);
    let chart = StoredValue::new(chart);

    // Days from now the share runs, from the choice.
    let share_days = move || -> Result<i64, String> {
        match days.get().as_str() {
            "custom" => {
                let end = super::credentials::end_of_day(&custom_date.get())
                    .ok_or_else(|| "Choose the last day of the share.".to_string())?;
                let now = (js_sys::Date::now() / 1000.0) as i64;
                let d = (end as i64 - now) / 86_400 + 1;
                if end as i64 <= now {
                    Err("Choose a day in the future.".into())
                } else if d > MAX_SHARE_DAYS {
                    Err("A share can run for at most a year.".into())
                } else {
                    Ok(d)
                }
            }
            other => other.parse::<i64>().map_err(|_| "Choose how long to share for.".to_string()),
        }
    };
    let expires_at = move || -> Result<u64, String> {
        let now = (js_sys::Date::now() / 1000.0) as u64;
        match days.get().as_str() {
            "custom" => {
                share_days()?;
                super::credentials::end_of_day(&custom_date.get()).ok_or_else(|| "Choose a day.".to_string())
            }
            _ => Ok(now + share_days()? as u64 * 86_400),
        }
    };
    let count = move || chart.with_value(|c| covered(c, scope.get(), &chosen.get(), categories.get()).len());

    let review = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        error.set(None);
        let problem = if clinician.with(Option::is_none) {
            Some("Choose a verified clinician.".to_string())
        } else if scope.get_untracked() == SCOPE_RECORDS && chosen.with_untracked(BTreeSet::is_empty) {
            Some("Choose at least one record.".into())
        } else if scope.get_untracked() == SCOPE_CATEGORIES && categories.get_untracked() == 0 {
            Some("Choose at least one kind of record.".into())
        } else {
            expires_at().err()
        };
        match problem {
            Some(p) => error.set(Some(p)),
            None => step.set(Step::Review),
        }
    };

    let share = move |_| {
        let Some(keyring) = session.keyring.get_untracked() else { return };
        let Some(card) = clinician.get_untracked() else { return };
        let (scope_now, chosen_now, categories_now) =
            (scope.get_untracked(), chosen.get_untracked(), categories.get_untracked());
        let write_now = write.get_untracked() && scope_now != SCOPE_RECORDS;
        let Ok(expires) = expires_at() else { return };
        let ids = chart.with_value(|c| covered(c, scope_now, &chosen_now, categories_now));
        let metas: Vec<_> =
            chart.with_value(|c| c.iter().filter(|l| ids.contains(&l.meta.id)).map(|l| l.meta.clone()).collect());
        error.set(None);
        busy.set(Some("Checking the clinician's keys…".into()));
        leptos::task::spawn_local(async move {
            let result = async {
                let grantee: Address = card.address.into();
                let published = api::directory_lookup(card.address).await.map_err(|e| e.to_string())?;
                let entry = published.entry.verify_for(&grantee).map_err(|e| {
                    format!("The clinician's published keys do not check out ({e}). Nothing was shared.")
                })?;
                if entry.role != Role::Clinician {
                    return Err("This account is not a clinician's. Nothing was shared.".into());
                }
                busy.set(Some(format!("Handing over the keys to {} records…", metas.len())));
                let keys = wrap_for(&keyring, &metas, grantee, &entry.encryption_key)?;
                let nonce = api::shares_nonce(card.address).await.map_err(|e| e.to_string())?;
                let grant = Grant {
                    patient: keyring.keys.address(),
                    grantee,
                    scope: scope_now,
                    categories: if scope_now == SCOPE_CATEGORIES { categories_now } else { 0 },
                    records: if scope_now == SCOPE_RECORDS { chosen_now.iter().map(|r| r.0).collect() } else { vec![] },
                    write: write_now,
                    expires_at: expires,
                    nonce: U256::from(nonce),
                };
                let domain = records_domain().await?;
                busy.set(Some("Approve with your passkey (face, fingerprint or device PIN)…".into()));
                let approval = approve(domain.digest(&grant)).await?;
                busy.set(Some("Signing the share and writing it on the ledger…".into()));
                let signature = domain.sign_typed(&keyring.keys, &grant);
                let body = api::ShareBody { grant, signature, keys, approval };
                api::shares_grant(body).await.map_err(|e| e.to_string())
            }
            .await;
            busy.set(None);
            match result {
                Ok(_) => {
                    step.set(Step::Done);
                    on_shared.run(());
                }
                Err(e) => error.set(Some(e)),
            }
        });
    };

    let restart = move |_| {
        clinician.set(None);
        chosen.set(BTreeSet::new());
        categories.set(0);
        write.set(false);
        step.set(Step::Choose);
    };

    let summary = move || {
        let who = clinician.get().map(|c| c.display_name).unwrap_or_default();
        let what = match scope.get() {
            SCOPE_RECORDS => {
                let n = chosen.with(BTreeSet::len);
                if n == 1 { "1 record you chose".to_string() } else { format!("{n} records you chose") }
            }
            SCOPE_CATEGORIES => {
                let names: Vec<&str> = Category::ALL
                    .into_iter()
                    .filter(|c| categories.get() >> c.code() & 1 == 1)
                    .map(Category::label)
                    .collect();
                format!("your {} — now {} records, and any you add later", names.join(", "), count())
            }
            _ => format!("all your records — now {}, and any you add later", count()),
        };
        let how = if write.get() && scope.get() != SCOPE_RECORDS {
            "see them and add notes, observations or prescriptions to your chart"
        } else {
            "see them"
        };
        let until = expires_at().map(|t| format_date(t as i64)).unwrap_or_default();
        format!(
            "{who} will be able to {how}: {what}, until {until}. Each time they open a record, the ledger records it and you are told. You can stop sharing at any time."
        )
    };

    view! {
        <section class="panel" aria-labelledby="share-heading">
            <h2 id="share-heading">"Share records"</h2>
            {move || match step.get() {
                Step::Choose => view! {
                    <form class="stack" on:submit=review>
                        <ChooseClinician chosen=clinician />
                        <fieldset class="field">
                            <legend>"What to share"</legend>
                            <label class="choice-inline"><input type="radio" name="scope" checked=move || scope.get() == SCOPE_RECORDS on:change=move |_| scope.set(SCOPE_RECORDS) /> " Records I choose"</label>
                            <label class="choice-inline"><input type="radio" name="scope" checked=move || scope.get() == SCOPE_CATEGORIES on:change=move |_| scope.set(SCOPE_CATEGORIES) /> " Kinds of records"</label>
                            <label class="choice-inline"><input type="radio" name="scope" checked=move || scope.get() == SCOPE_EVERYTHING on:change=move |_| scope.set(SCOPE_EVERYTHING) /> " Everything"</label>
                        </fieldset>
                        <Show when=move || scope.get() == SCOPE_RECORDS>
                            <label class="field">
                                <span>"Find records"</span>
                                <input type="search" placeholder="Title or date" bind:value=filter />
                            </label>
                            <ul class="checklist share-records" aria-label="Records to share">
                                {move || {
                                    let needle = filter.get().to_lowercase();
                                    chart.with_value(|c| {
                                        c.iter()
                                            .filter(|l| matches!(l.state, ReadState::Open(_)))
                                            .map(|l| (l.meta.id, title_of(l)))
                                            .filter(|(_, t)| needle.is_empty() || t.to_lowercase().contains(&needle))
                                            .take(200)
                                            .map(|(id, title)| view! {
                                                <li>
                                                    <label>
                                                        <input type="checkbox"
                                                            checked=move || chosen.with(|s| s.contains(&id))
                                                            on:change=move |ev| {
                                                                let on = event_target_checked(&ev);
                                                                chosen.update(|s| { if on { s.insert(id); } else { s.remove(&id); } });
                                                            } />
                                                        " " {title}
                                                    </label>
                                                </li>
                                            })
                                            .collect_view()
                                    })
                                }}
                            </ul>
                            <p class="muted">{move || format!("{} chosen", chosen.with(BTreeSet::len))}</p>
                        </Show>
                        <Show when=move || scope.get() == SCOPE_CATEGORIES>
                            <fieldset class="field">
                                <legend>"Kinds of records (records you add later in these kinds are shared too)"</legend>
                                {Category::ALL.into_iter().map(|c| {
                                    let bit = 1u32 << c.code();
                                    view! {
                                        <label class="choice-inline">
                                            <input type="checkbox"
                                                checked=move || categories.get() & bit != 0
                                                on:change=move |ev| {
                                                    let on = event_target_checked(&ev);
                                                    categories.update(|m| if on { *m |= bit } else { *m &= !bit });
                                                } />
                                            " " {c.label()}
                                        </label>
                                    }
                                }).collect_view()}
                            </fieldset>
                        </Show>
                        <fieldset class="field">
                            <legend>"For how long"</legend>
                            <select bind:value=days aria-label="For how long">
                                <option value="1">"1 day"</option>
                                <option value="7">"7 days"</option>
                                <option value="30">"30 days"</option>
                                <option value="custom">"Until a date I choose (up to a year)"</option>
                            </select>
                            <Show when=move || days.get() == "custom">
                                <label class="field">
                                    <span>"Last day"</span>
                                    <input type="date" bind:value=custom_date />
                                </label>
                            </Show>
                        </fieldset>
                        <label class="choice-inline">
                            <input type="checkbox" bind:checked=write disabled=move || scope.get() == SCOPE_RECORDS />
                            " They may also add to my chart (notes, observations, prescriptions)"
                        </label>
                        <Show when=move || scope.get() == SCOPE_RECORDS>
                            <p class="muted">"Adding to your chart needs a share of kinds of records or everything."</p>
                        </Show>
                        <ErrorMessage error=error />
                        <button type="submit" class="button button-primary">"Review"</button>
                    </form>
                }.into_any(),
                Step::Review => view! {
                    <div class="stack" data-testid="share-review">
                        <p class="review">{summary}</p>
                        {move || clinician.get().map(|c| view! { <p><CredentialBadge status=c.credential /></p> })}
                        <p class="muted">{move || share_days().map(|d| format!("That is {}.", duration_words(d))).unwrap_or_default()}</p>
                        <ErrorMessage error=error />
                        <Busy message=busy />
                        <div class="actions">
                            <button type="button" class="button button-primary" on:click=share disabled=move || busy.with(Option::is_some)>
                                "Approve with passkey and share"
                            </button>
                            <button type="button" class="button" on:click=move |_| step.set(Step::Choose) disabled=move || busy.with(Option::is_some)>
                                "Change"
                            </button>
                        </div>
                    </div>
                }.into_any(),
                Step::Done => view! {
                    <div class="stack">
                        <p class="alert alert-success" role="status">
                            {move || format!("Shared with {}.", clinician.get().map(|c| c.display_name).unwrap_or_default())}
                        </p>
                        <button type="button" class="button" on:click=restart>"Share something else"</button>
                    </div>
                }.into_any(),
            }}
        </section>
    }
}

/// Wraps the data key of each record to the grantee's encryption key.
fn wrap_for(
    keyring: &Keyring,
    metas: &[api::RecordMeta],
    grantee: Address,
    grantee_key: &[u8; 32],
) -> Result<Vec<ShareKey>, String> {
    let keys = &keyring.keys;
    metas
        .iter()
        .map(|m| {
            let wrapped = m.wrapped_key.as_ref().ok_or("A record's key is missing.")?;
            let key = envelope::unwrap_key(wrapped, m.id, keys.address(), keys.encryption_secret())
                .map_err(|e| e.to_string())?;
            let theirs = envelope::wrap_key(&key, m.id, grantee, grantee_key, &mut OsRng).map_err(|e| e.to_string())?;
            Ok(ShareKey { record: m.id, wrapped_key: theirs })
        })
        .collect()
}

/// Asks for the passkey (with user verification) to approve the message
/// whose EIP-712 digest is `digest`.
async fn approve(digest: [u8; 32]) -> Result<api::Approval, String> {
    let start = api::approvals_start(Hash32(digest)).await.map_err(|e| e.to_string())?;
    // The passkey signs the challenge: it must be this message's, so that
    // the assertion proves what was approved (and a server could not ask
    // for an approval of something else under this screen).
    let expected = chartkey_core::proof::approval_challenge(&digest, &start.nonce.0);
    let options: serde_json::Value =
        serde_json::from_str(start.options.get()).map_err(|_| "The server's approval request is malformed.")?;
    let challenge = options["publicKey"]["challenge"].as_str().unwrap_or_default();
    if base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, challenge).ok().as_deref()
        != Some(&expected[..])
    {
        return Err("The server asked to approve something other than this message. Nothing was approved.".into());
    }
    let asserted = crate::ui::webauthn::assert(&start.options).await?;
    Ok(api::Approval { ceremony_id: start.ceremony_id, credential: asserted.credential })
}

async fn records_domain() -> Result<Domain, String> {
    let info = api::ledger_info().await.map_err(|e| e.to_string())?;
    Ok(Domain::records(info.chain_id, info.records.into()))
}

/// Search, then choose one verified clinician.
#[component]
fn ChooseClinician(chosen: RwSignal<Option<ClinicianCard>>) -> impl IntoView {
    let query = RwSignal::new(String::new());
    let found = RwSignal::new(None::<Vec<ClinicianCard>>);
    let error = RwSignal::new(None::<String>);
    let search = move || {
        error.set(None);
        leptos::task::spawn_local(async move {
            match api::clinicians_search(query.get_untracked()).await {
                Ok(list) => found.set(Some(list)),
                Err(e) => error.set(Some(e.to_string())),
            }
        });
    };
    view! {
        <fieldset class="field">
            <legend>"Clinician"</legend>
            {move || match chosen.get() {
                Some(card) => view! {
                    <div data-testid="chosen-clinician">
                        <ul class="list"><ClinicianItem card=card /></ul>
                        <button type="button" class="button button-small" on:click=move |_| chosen.set(None)>"Choose someone else"</button>
                    </div>
                }.into_any(),
                None => view! {
                    <div class="inline-form">
                        <label class="field">
                            <span>"Find a clinician by name, specialty or organisation"</span>
                            <input type="search" bind:value=query
                                on:keydown=move |ev| if ev.key() == "Enter" { ev.prevent_default(); search(); } />
                        </label>
                        <button type="button" class="button" on:click=move |_| search()>"Search"</button>
                    </div>
                    <ErrorMessage error=error />
                    {move || found.get().map(|list| {
                        if list.is_empty() {
                            view! { <p class="muted">"No clinician matches."</p> }.into_any()
                        } else {
                            view! {
                                <ul class="list" aria-label="Clinicians found">
                                    {list.into_iter().map(|c| {
                                        let verified = c.credential.is_verified();
                                        let pick = c.clone();
                                        view! {
                                            <li class="clinician-choice">
                                                <ul class="list"><ClinicianItem card=c.clone() /></ul>
                                                {if verified {
                                                    view! { <button type="button" class="button button-small" on:click=move |_| chosen.set(Some(pick.clone()))>{format!("Choose {}", c.display_name)}</button> }.into_any()
                                                } else {
                                                    view! { <small class="muted">"Records can only be shared with a verified clinician."</small> }.into_any()
                                                }}
                                            </li>
                                        }
                                    }).collect_view()}
                                </ul>
                            }.into_any()
                        }
                    })}
                }.into_any(),
            }}
        </fieldset>
    }
}

fn scope_words(s: &ShareView) -> String {
    match s.scope {
        SCOPE_RECORDS => match s.records.len() {
            1 => "1 record".into(),
            n => format!("{n} records"),
        },
        SCOPE_CATEGORIES => Category::ALL
            .into_iter()
            .filter(|c| s.categories >> c.code() & 1 == 1)
            .map(Category::label)
            .collect::<Vec<_>>()
            .join(", "),
        _ => "Everything".into(),
    }
}

fn state_words(state: ShareState) -> (&'static str, &'static str) {
    match state {
        ShareState::Active => ("Active", "chip chip-ok"),
        ShareState::Expired => ("Expired", "chip"),
        ShareState::Stopped => ("Stopped", "chip"),
        ShareState::CredentialLapsed => ("Credential lapsed", "chip chip-warn"),
    }
}

fn time_left(expires_at: u64) -> String {
    let now = (js_sys::Date::now() / 1000.0) as u64;
    let left = expires_at.saturating_sub(now);
    match left {
        0 => "ended".into(),
        s if s < 3_600 => format!("{} min left", s / 60 + 1),
        s if s < 2 * 86_400 => format!("{} h left", s / 3_600),
        s => format!("{} days left", s / 86_400),
    }
}

#[component]
fn SharesList(shares: RwSignal<Option<Vec<ShareView>>>, reload: Callback<()>) -> impl IntoView {
    let session = use_session();
    let error = RwSignal::new(None::<String>);
    let stopping = RwSignal::new(None::<String>);
    let stop = move |share: ShareView| {
        let Some(keyring) = session.keyring.get_untracked() else { return };
        let confirmed = web_sys::window()
            .and_then(|w| {
                w.confirm_with_message(&format!(
                    "Stop sharing with {}? They will not be able to open your records from now on.",
                    share.grantee.display_name
                ))
                .ok()
            })
            .unwrap_or(false);
        if !confirmed {
            return;
        }
        error.set(None);
        stopping.set(Some(format!("Approve with your passkey to stop sharing with {}…", share.grantee.display_name)));
        leptos::task::spawn_local(async move {
            let result = async {
                let grantee: Address = share.grantee.address.into();
                let nonce = api::shares_nonce(share.grantee.address).await.map_err(|e| e.to_string())?;
                let message = Revoke { patient: keyring.keys.address(), grantee, nonce: U256::from(nonce) };
                let domain = records_domain().await?;
                let approval = approve(domain.digest(&message)).await?;
                let signature = domain.sign_typed(&keyring.keys, &message);
                api::shares_stop(api::StopBody { message, signature, approval }).await.map_err(|e| e.to_string())
            }
            .await;
            stopping.set(None);
            match result {
                Ok(_) => reload.run(()),
                Err(e) => error.set(Some(e)),
            }
        });
    };
    view! {
        <section class="panel" aria-labelledby="shares-heading">
            <div class="panel-head">
                <h2 id="shares-heading">"Your shares"</h2>
                {move || shares.with(|s| s.as_ref().is_some_and(|l| !l.is_empty())).then(|| view! {
                    <button type="button" class="button button-small" data-testid="export-consents"
                        on:click=move |_| shares.with_untracked(|s| if let Some(list) = s { export_consents(list) })>
                        "Export as FHIR Consent"
                    </button>
                })}
            </div>
            <ErrorMessage error=error />
            <Busy message=stopping />
            {move || match shares.get() {
                None => ().into_any(),
                Some(list) if list.is_empty() => view! { <p class="muted">"You have not shared anything yet."</p> }.into_any(),
                Some(list) => view! {
                    <table class="table" data-testid="shares">
                        <thead>
                            <tr>
                                <th scope="col">"Clinician"</th>
                                <th scope="col">"What"</th>
                                <th scope="col">"Access"</th>
                                <th scope="col">"Until"</th>
                                <th scope="col">"Status"</th>
                                <th scope="col"><span class="visually-hidden">"Actions"</span></th>
                            </tr>
                        </thead>
                        <tbody>
                            {list.into_iter().map(|s| {
                                let (words, class) = state_words(s.state);
                                let live = matches!(s.state, ShareState::Active | ShareState::CredentialLapsed);
                                let target = s.clone();
                                view! {
                                    <tr data-testid="share">
                                        <td>{s.grantee.display_name.clone()}<br /><CredentialBadge status=s.grantee.credential.clone() /></td>
                                        <td>{scope_words(&s)}</td>
                                        <td>{if s.write { "Read and add" } else { "Read" }}</td>
                                        <td>{format_date(s.expires_at as i64)}<br /><small class="muted">{if s.state == ShareState::Active { time_left(s.expires_at) } else { String::new() }}</small></td>
                                        <td><span class=class data-state=format!("{:?}", s.state)>{words}</span></td>
                                        <td>
                                            {live.then(|| view! {
                                                <button type="button" class="button button-small button-danger"
                                                    on:click=move |_| stop(target.clone())
                                                    disabled=move || stopping.with(Option::is_some)>
                                                    "Stop sharing"
                                                </button>
                                            })}
                                        </td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any(),
            }}
        </section>
    }
}

#[component]
fn WhoViewed(accesses: RwSignal<Option<Vec<AccessView>>>, chart: RwSignal<Option<Arc<Vec<Loaded>>>>) -> impl IntoView {
    let by_clinician = RwSignal::new(String::new());
    let by_record = RwSignal::new(String::new());
    let record_title = move |id: RecordId| {
        chart.with(|c| {
            c.as_ref()
                .and_then(|list| list.iter().find(|l| l.meta.id == id).map(title_of))
                .unwrap_or_else(|| format!("Record {}", &id.to_hex()[..10]))
        })
    };
    view! {
        <section class="panel" aria-labelledby="viewed-heading">
            <div class="panel-head">
                <h2 id="viewed-heading">"Who viewed my records"</h2>
                {move || accesses.with(|a| a.as_ref().is_some_and(|l| !l.is_empty())).then(|| view! {
                    <button type="button" class="button button-small" data-testid="export-audit"
                        on:click=move |_| accesses.with_untracked(|a| if let Some(list) = a { export_audit(list) })>
                        "Export as FHIR AuditEvent"
                    </button>
                })}
            </div>
            <p class="muted">"Every open of a shared record, as the ledger recorded it before anything was sent."</p>
            {move || match accesses.get() {
                None => ().into_any(),
                Some(list) if list.is_empty() => view! { <p class="muted">"No one has opened a shared record yet."</p> }.into_any(),
                Some(list) => {
                    let clinicians: BTreeSet<(String, String)> =
                        list.iter().map(|a| (a.grantee_name.clone(), a.grantee.to_string())).collect();
                    let records: BTreeSet<RecordId> = list.iter().map(|a| a.record).collect();
                    view! {
                        <div class="filters">
                            <label class="field">
                                <span>"Clinician"</span>
                                <select bind:value=by_clinician>
                                    <option value="">"Everyone"</option>
                                    {clinicians.into_iter().map(|(name, address)| view! { <option value=address>{name}</option> }).collect_view()}
                                </select>
                            </label>
                            <label class="field">
                                <span>"Record"</span>
                                <select bind:value=by_record>
                                    <option value="">"Every record"</option>
                                    {records.into_iter().map(|id| view! { <option value=id.to_hex()>{record_title(id)}</option> }).collect_view()}
                                </select>
                            </label>
                        </div>
                        <table class="table" data-testid="accesses">
                            <thead>
                                <tr>
                                    <th scope="col">"When"</th>
                                    <th scope="col">"Who"</th>
                                    <th scope="col">"Record"</th>
                                    <th scope="col">"Ledger"</th>
                                </tr>
                            </thead>
                            <tbody>
                                {move || {
                                    let (who, what) = (by_clinician.get(), by_record.get());
                                    list.iter()
                                        .filter(|a| who.is_empty() || a.grantee.to_string() == who)
                                        .filter(|a| what.is_empty() || a.record.to_hex() == what)
                                        .map(|a| view! {
                                            <tr data-testid="access">
                                                <td>{format_datetime(a.at)}</td>
                                                <td>{a.grantee_name.clone()}</td>
                                                <td>{record_title(a.record)}</td>
                                                <td><code title=a.tx.to_string()>{format!("block {}", a.block)}</code></td>
                                            </tr>
                                        })
                                        .collect_view()
                                }}
                            </tbody>
                        </table>
                    }.into_any()
                }
            }}
        </section>
    }
}

fn now_secs() -> i64 {
    (js_sys::Date::now() / 1000.0) as i64
}

/// Downloads every share as a FHIR Bundle of Consent resources.
fn export_consents(list: &[ShareView]) {
    use chartkey_core::audit::{Covered, GrantFacts, Party};
    let resources = list
        .iter()
        .map(|s| {
            let categories =
                Category::ALL.into_iter().filter(|c| s.categories >> c.code() & 1 == 1).collect::<Vec<_>>();
            chartkey_core::audit::consent(&GrantFacts {
                patient: Party { address: s.patient, name: &s.patient_name },
                grantee: Party { address: s.grantee.address, name: &s.grantee.display_name },
                covered: match s.scope {
                    SCOPE_RECORDS => Covered::Records(&s.records),
                    SCOPE_CATEGORIES => Covered::Categories(categories),
                    _ => Covered::Everything,
                },
                write: s.write,
                granted_at: s.granted_at,
                expires_at: s.expires_at as i64,
                active: s.state == ShareState::Active,
                grant_tx: s.grant_tx,
            })
        })
        .collect();
    let bundle = chartkey_core::audit::bundle(resources, now_secs());
    save_file("chartkey-consents.json", "application/fhir+json", bundle.as_bytes());
}

/// Downloads every access as a FHIR Bundle of AuditEvent resources.
fn export_audit(list: &[AccessView]) {
    use chartkey_core::audit::{AccessFacts, Party};
    let resources = list
        .iter()
        .map(|a| {
            chartkey_core::audit::audit_event(&AccessFacts {
                patient: Party { address: a.patient, name: &a.patient_name },
                grantee: Party { address: a.grantee, name: &a.grantee_name },
                record_id: a.record,
                category: Category::from_code(a.category),
                at: a.at,
                tx: a.tx,
            })
        })
        .collect();
    let bundle = chartkey_core::audit::bundle(resources, now_secs());
    save_file("chartkey-accesses.json", "application/fhir+json", bundle.as_bytes());
}

/// A clinician's "Shared with me".
#[component]
fn SharedWithMe() -> impl IntoView {
    let shares = RwSignal::new(None::<Vec<ShareView>>);
    let open_patient = RwSignal::new(None::<value::Address>);
    let error = RwSignal::new(None::<String>);
    leptos::task::spawn_local(async move {
        match api::shares_list().await {
            Ok(list) => shares.set(Some(list)),
            Err(e) => error.set(Some(e.to_string())),
        }
    });
    view! {
        <h1>"Shared with me"</h1>
        <p class="lead">"Patients who shared records with you, what, and for how long. Every record you open is recorded on the ledger and the patient is told."</p>
        <ErrorMessage error=error />
        {move || match shares.get() {
            None => ().into_any(),
            Some(list) if list.is_empty() => view! { <p class="muted">"No one has shared records with you yet."</p> }.into_any(),
            Some(list) => view! {
                <table class="table" data-testid="shared-with-me">
                    <thead>
                        <tr>
                            <th scope="col">"Patient"</th>
                            <th scope="col">"What"</th>
                            <th scope="col">"Access"</th>
                            <th scope="col">"Time left"</th>
                            <th scope="col">"Status"</th>
                            <th scope="col"><span class="visually-hidden">"Actions"</span></th>
                        </tr>
                    </thead>
                    <tbody>
                        {list.into_iter().map(|s| {
                            let (words, class) = state_words(s.state);
                            let patient = s.patient;
                            view! {
                                <tr data-testid="held-share">
                                    <td>{s.patient_name.clone()}</td>
                                    <td>{scope_words(&s)}</td>
                                    <td>{if s.write { "Read and add" } else { "Read" }}</td>
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
                        }).collect_view()}
                    </tbody>
                </table>
            }.into_any(),
        }}
        {move || open_patient.get().map(|p| view! { <SharedChartView patient=p /> })}
    }
}

/// A record opened from a shared chart (decrypted in memory only).
#[derive(Clone)]
struct OpenedShared {
    id: RecordId,
    opened: Arc<chart_records::Opened>,
    access_block: u64,
    access_tx: Hash32,
}

/// One patient's shared chart, for the clinician. Every open signs an
/// access, which the ledger records before anything is released; when the
/// share has ended, the reason is shown and everything decrypted is dropped.
#[component]
fn SharedChartView(patient: value::Address) -> impl IntoView {
    let session = use_session();
    let chart = RwSignal::new(None::<api::SharedChart>);
    let opened = RwSignal::new(Vec::<OpenedShared>::new());
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
            let result = open_shared(&keyring, patient_key.get_value(), meta, nonce.get_value(), busy).await;
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
                        {summary.date.clone().map(|d| view! { <p class="muted">{d}</p> })}
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
            let result = write_back(&keyring, patient.get_value(), &resource).await;
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

/// Encrypts `resource` for this clinician and the patient (whose signed
/// directory entry is checked first), uploads it, signs its anchor with the
/// clinician as author and adds it to the patient's chart.
async fn write_back(keyring: &Keyring, patient: value::Address, resource: &str) -> Result<Option<u64>, String> {
    use chartkey_core::envelope::DataKey;
    use chartkey_core::records::{self as core_records, AnchoredRecord};
    let patient_address: Address = patient.into();
    let published = api::directory_lookup(patient).await.map_err(|e| e.to_string())?;
    let entry = published
        .entry
        .verify_for(&patient_address)
        .map_err(|e| format!("The patient's published keys do not check out ({e}). Nothing was added."))?;
    let item = chartkey_core::fhir::split_import(resource).map_err(|e| e.to_string())?.remove(0);
    let plaintext = chartkey_core::fhir::entry_json(item.full_url.as_deref(), &item.json);
    let (id, key) = (RecordId::generate(&mut OsRng), DataKey::generate(&mut OsRng));
    let sealed = envelope::seal(&key, id, plaintext.as_bytes(), &mut OsRng);
    let hash = envelope::ciphertext_hash(&sealed);
    let keys = &keyring.keys;
    let mine = envelope::wrap_key(&key, id, keys.address(), &keys.encryption_public(), &mut OsRng)
        .map_err(|e| e.to_string())?;
    let theirs =
        envelope::wrap_key(&key, id, patient_address, &entry.encryption_key, &mut OsRng).map_err(|e| e.to_string())?;
    let mut pack = Vec::new();
    core_records::pack_frame(&mut pack, &hash, &sealed);
    crate::ui::http::send("POST", "/api/blobs/pack", "application/octet-stream", &pack, None).await?;
    let category = item.category().code();
    let anchored = [AnchoredRecord { id, ciphertext_hash: hash, category, amends: None }];
    let message =
        core_records::anchor_message(keys.address(), patient_address, &anchored).map_err(|e| e.to_string())?;
    let signature = match &message {
        chartkey_core::eip712::LedgerMessage::Anchor(m) => records_domain().await?.sign_typed(keys, m),
        _ => return Err("One record is anchored alone.".into()),
    };
    let body = api::AddRecordsBody {
        records: vec![api::NewRecord {
            id,
            blob: Hash32(hash),
            category,
            amends: None,
            wrapped_key: mine,
            patient_wrapped_key: Some(theirs),
            also: Vec::new(),
        }],
        signature,
        patient: Some(patient),
    };
    let receipt = api::records_add(body).await.map_err(|e| e.to_string())?;
    Ok(receipt.block_number)
}

/// Signs the access, has the server record it on the ledger, fetches the
/// envelope, verifies it against the patient's anchor and the ledger, and
/// decrypts it with the key wrapped for this clinician.
async fn open_shared(
    keyring: &Keyring,
    patient: value::Address,
    meta: api::SharedRecord,
    nonce: u64,
    busy: RwSignal<Option<String>>,
) -> Result<OpenedShared, String> {
    let patient: Address = patient.into();
    let checker = chart_records::Checker::for_chart(patient).await?;
    let access = chartkey_core::eip712::Access {
        grantee: keyring.keys.address(),
        patient,
        record_id: meta.id.0,
        nonce: U256::from(nonce),
    };
    let signature = checker.domain().sign_typed(&keyring.keys, &access);
    let answer = api::records_open(api::OpenBody { access, signature }).await.map_err(|e| e.to_string())?;
    if answer.record.id != meta.id {
        return Err("The server answered with another record than the one opened; nothing is shown.".into());
    }
    busy.set(Some("Fetching, verifying and decrypting…".into()));
    let bytes =
        crate::ui::http::send("GET", &format!("/api/envelopes/{}", meta.id), "application/octet-stream", &[], None)
            .await?;
    match chart_records::read(keyring, &checker, &answer.record, &bytes) {
        ReadState::Open(o) => Ok(OpenedShared {
            id: meta.id,
            opened: Arc::from(o),
            access_block: answer.access_block,
            access_tx: answer.access_tx,
        }),
        ReadState::Tampered(why) => Err(format!("This record failed its checks and is not shown: {why}")),
        ReadState::Unreadable(why) => Err(why),
        ReadState::Pending => Err("This record is not on the ledger yet.".into()),
    }
}
