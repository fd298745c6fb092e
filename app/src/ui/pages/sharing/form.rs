//! The share form: what to share, with which verified clinician, for how
//! long, reviewed in plain words, approved with the passkey.

use super::*;

#[component]
pub(super) fn ShareForm(chart: Arc<Vec<Loaded>>, on_shared: Callback<()>) -> impl IntoView {
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
    // The choice's problem, found before the review step.
    let error = RwSignal::new(None::<String>);
    let chart = StoredValue::new(chart);
    // Sharing: each step in words while it runs, its failure after.
    let progress = RwSignal::new(None::<String>);
    let sharing_now = Action::new_local(move |request: &sharing::NewShare| {
        let (request, keyring) = (request.clone(), session.keyring.get_untracked());
        async move {
            let keyring = keyring.ok_or_else(|| UiError::from("Unlock your keys to share.".to_owned()))?;
            progress.set(Some("Checking the clinician's keys…".into()));
            sharing::share(&keyring, request, move |m| progress.set(Some(m))).await?;
            step.set(Step::Done);
            on_shared.run(());
            Ok::<_, UiError>(())
        }
    });
    let busy = Signal::derive(move || sharing_now.pending().get().then(|| progress.get()).flatten());
    let shown_error = Signal::derive(move || error.get().or_else(|| UiError::shown(sharing_now.value().get())));

    // Days from now the share runs, from the choice.
    let share_days = move || -> Result<i64, String> {
        match days.get().as_str() {
            "custom" => {
                let end = crate::ui::pages::credentials::end_of_day(&custom_date.get())
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
                crate::ui::pages::credentials::end_of_day(&custom_date.get()).ok_or_else(|| "Choose a day.".to_string())
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
            None => {
                // A new review starts without the last attempt's failure.
                sharing_now.value().set(None);
                step.set(Step::Review);
            }
        }
    };

    let share = move |_| {
        let Some(card) = clinician.get_untracked() else { return };
        let (scope_now, chosen_now, categories_now) =
            (scope.get_untracked(), chosen.get_untracked(), categories.get_untracked());
        let Ok(expires) = expires_at() else { return };
        let ids = chart.with_value(|c| covered(c, scope_now, &chosen_now, categories_now));
        let metas: Vec<_> =
            chart.with_value(|c| c.iter().filter(|l| ids.contains(&l.meta.id)).map(|l| l.meta.clone()).collect());
        sharing_now.dispatch(sharing::NewShare {
            grantee: card.address,
            metas,
            scope: scope_now,
            categories: if scope_now == SCOPE_CATEGORIES { categories_now } else { 0 },
            records: if scope_now == SCOPE_RECORDS { chosen_now.iter().copied().collect() } else { vec![] },
            write: write.get_untracked() && scope_now != SCOPE_RECORDS,
            expires_at: expires,
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
                        <ErrorMessage error=shown_error />
                        <Busy message=busy />
                        <div class="actions">
                            <button type="button" class="button button-primary" on:click=share disabled=move || sharing_now.pending().get()>
                                "Approve with passkey and share"
                            </button>
                            <button type="button" class="button" on:click=move |_| step.set(Step::Choose) disabled=move || sharing_now.pending().get()>
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

/// Search, then choose one verified clinician.
#[component]
fn ChooseClinician(chosen: RwSignal<Option<ClinicianCard>>) -> impl IntoView {
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
                    <ClinicianSearch label="Find a clinician by name, specialty or organisation" choose=chosen />
                }.into_any(),
            }}
        </fieldset>
    }
}
