//! A patient's shares as the ledger says they stand (with "Stop
//! sharing"), who viewed which record, and their FHIR exports.

use super::*;

/// A share's "What" and "Access" cells.
#[component]
pub(super) fn ShareTerms(share: ShareView) -> impl IntoView {
    view! {
        <td>{scope_words(&share)}</td>
        <td>{if share.write { "Read and add" } else { "Read" }}</td>
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

pub(super) fn state_words(state: ShareState) -> (&'static str, &'static str) {
    match state {
        ShareState::Active => ("Active", "chip chip-ok"),
        ShareState::Expired => ("Expired", "chip"),
        ShareState::Stopped => ("Stopped", "chip"),
        ShareState::CredentialLapsed => ("Credential lapsed", "chip chip-warn"),
    }
}

pub(super) fn time_left(expires_at: u64) -> String {
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
pub(super) fn SharesList(shares: RwSignal<Option<Vec<ShareView>>>, reload: Callback<()>) -> impl IntoView {
    let session = use_session();
    // Stopping: approved with the passkey, signed, written on the ledger;
    // the list reloads after.
    let stopping = Action::new_local(move |share: &ShareView| {
        let (keyring, grantee) = (session.keyring.get_untracked(), share.grantee.address);
        async move {
            let keyring = keyring.ok_or_else(|| UiError::from("Unlock your keys to stop sharing.".to_owned()))?;
            sharing::stop(&keyring, grantee).await?;
            reload.run(());
            Ok::<_, UiError>(())
        }
    });
    let stopping_whom = RwSignal::new(String::new());
    let stop = move |share: ShareView| {
        let confirmed = crate::ui::components::confirm(&format!(
            "Stop sharing with {}? They will not be able to open your records from now on.",
            share.grantee.display_name
        ));
        if confirmed {
            stopping_whom.set(share.grantee.display_name.clone());
            stopping.dispatch(share);
        }
    };
    let busy = Signal::derive(move || {
        stopping
            .pending()
            .get()
            .then(|| format!("Approve with your passkey to stop sharing with {}…", stopping_whom.get()))
    });
    let error = Signal::derive(move || UiError::shown(stopping.value().get()));
    view! {
        <section class="panel" aria-labelledby="shares-heading">
            <ExportHead id="shares-heading" title="Your shares" export=("Export as FHIR Consent", "export-consents")
                shown=Signal::derive(move || shares.with(|s| s.as_ref().is_some_and(|l| !l.is_empty())))
                on_export=move || shares.with_untracked(|s| if let Some(list) = s { export_consents(list) }) />
            <ErrorMessage error=error />
            <Busy message=busy />
            <Listing items=shares empty="You have not shared anything yet." testid="shares"
                columns=&["Clinician", "What", "Access", "Until", "Status"]
                row=move |s: ShareView| {
                    let (words, class) = state_words(s.state);
                    let live = matches!(s.state, ShareState::Active | ShareState::CredentialLapsed);
                    let target = s.clone();
                    view! {
                        <tr data-testid="share">
                            <td>{s.grantee.display_name.clone()}<br /><CredentialBadge status=s.grantee.credential.clone() /></td>
                            <ShareTerms share=s.clone() />
                            <td>{format_date(s.expires_at as i64)}<br /><small class="muted">{if s.state == ShareState::Active { time_left(s.expires_at) } else { String::new() }}</small></td>
                            <td><span class=class data-state=format!("{:?}", s.state)>{words}</span></td>
                            <td>
                                {live.then(|| view! {
                                    <StopSharing on_stop=move || stop(target.clone())
                                        pending=stopping.pending() />
                                })}
                            </td>
                        </tr>
                    }
                } />
        </section>
    }
}

#[component]
pub(super) fn WhoViewed(
    accesses: RwSignal<Option<Vec<AccessView>>>,
    chart: RwSignal<Option<Arc<Vec<Loaded>>>>,
) -> impl IntoView {
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
            <ExportHead id="viewed-heading" title="Who viewed my records"
                export=("Export as FHIR AuditEvent", "export-audit")
                shown=Signal::derive(move || accesses.with(|a| a.as_ref().is_some_and(|l| !l.is_empty())))
                on_export=move || accesses.with_untracked(|a| if let Some(list) = a { export_audit(list) }) />
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
                            <TableHead columns=&["When", "Who", "Record", "Ledger"] />
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

pub(super) fn now_secs() -> i64 {
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
