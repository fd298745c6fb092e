//! The patient's links (SMART Health Links): each with its label (unsealed
//! here), what protects it, when it ends, every use the ledger recorded
//! (who the recipient said they were, when, in which transaction), the
//! link and its QR code again, "Update what it carries" for a long-term
//! link, and "Stop sharing", which ends it at once.

use chartkey_core::eip712::{FLAG_DIRECT, FLAG_LONG_TERM, FLAG_PASSCODE};
use chartkey_core::shl::{Flags, LinkSecrets};
use leptos::prelude::*;

use crate::api::{self, LinkView};
use crate::ui::components::{
    Busy, CopyButton, ErrorMessage, StopSharing, TableHead, format_date, format_datetime, reloader,
};
use crate::ui::error::UiError;
use crate::ui::links;
use crate::ui::nav::Link;
use crate::ui::records;
use crate::ui::session::use_session;

#[component]
pub fn LinksOverview() -> impl IntoView {
    let session = use_session();
    let list = RwSignal::new(None::<Vec<LinkView>>);
    let error = RwSignal::new(None::<String>);
    let reload = reloader(list, error, api::links_list);
    let stopping = Action::new_local(move |link: &LinkView| {
        let (keyring, id, serial) = (session.keyring.get_untracked(), link.link_id, link.serial);
        async move {
            let keyring = keyring.ok_or_else(|| UiError::from("Unlock your keys to stop a link.".to_owned()))?;
            links::stop(&keyring, id, serial).await?;
            reload();
            Ok::<_, UiError>(())
        }
    });
    let secrets_of = move |link: &LinkView| -> Option<LinkSecrets> {
        session.keyring.with_untracked(|k| k.as_ref().and_then(|k| link.sealed.open(&k.keys, link.link_id.0)))
    };
    let label_of = move |link: &LinkView| secrets_of(link).map(|s| s.label).unwrap_or_else(|| "(unreadable)".into());
    // "Update what it carries": the records read again here, the content
    // made again and encrypted with the link's own key.
    let updating = Action::new_local(move |link: &LinkView| {
        let (keyring, link, secrets) = (session.keyring.get_untracked(), link.clone(), secrets_of(link));
        async move {
            let keyring = keyring.ok_or_else(|| UiError::from("Unlock your keys to update a link.".to_owned()))?;
            let secrets = secrets.ok_or_else(|| UiError::from("This link's key cannot be read here.".to_owned()))?;
            let list = records::load_all(&keyring, |_, _| {}).await?;
            links::update(&keyring, &list, &link, &secrets).await?;
            reload();
            Ok::<_, UiError>(())
        }
    });
    // "Change expiry": a new end from now, the content unchanged.
    let changing = Action::new_local(move |(link, lifetime): &(LinkView, Option<u64>)| {
        let (keyring, link, lifetime) = (session.keyring.get_untracked(), link.clone(), *lifetime);
        async move {
            let keyring = keyring.ok_or_else(|| UiError::from("Unlock your keys to change a link.".to_owned()))?;
            links::change_expiry(&keyring, &link, lifetime).await?;
            reload();
            Ok::<_, UiError>(())
        }
    });
    let showing = RwSignal::new(None::<api::LinkView>);
    let stop = move |link: LinkView| {
        let label = label_of(&link);
        let confirmed =
            crate::ui::components::confirm(&format!("Stop the link “{label}”? It will not open from now on."));
        if confirmed {
            stopping.dispatch(link);
        }
    };
    let busy = Signal::derive(move || {
        if updating.pending().get() {
            return Some("Reading your records, making the content again; approve with your passkey…".to_string());
        }
        if changing.pending().get() {
            return Some("Approve with your passkey to change when the link ends…".to_string());
        }
        stopping.pending().get().then(|| "Approve with your passkey to stop the link…".to_string())
    });
    let action_error = Signal::derive(move || {
        UiError::shown(stopping.value().get())
            .or_else(|| UiError::shown(updating.value().get()))
            .or_else(|| UiError::shown(changing.value().get()))
    });
    let shown = move || {
        showing.get().and_then(|link| {
            let secrets = secrets_of(&link)?;
            let flags = Flags::from_bits(link.flags)?;
            let made = links::shown(&secrets, link.expires_at, flags);
            Some(view! {
                <section class="panel made-link" aria-labelledby="shown-link" data-testid="link-shown">
                    <h2 id="shown-link">{format!("The link “{}”", secrets.label)}</h2>
                    <label>
                        "The link"
                        <textarea readonly rows="4" data-testid="link-text">{made.link.clone()}</textarea>
                    </label>
                    <CopyButton text=made.link.clone() label="Copy the link" />
                    {made.qr_svg.map(|svg| view! { <div class="qr" data-testid="link-qr" inner_html=svg></div> })}
                </section>
            })
        })
    };
    view! {
        <h1>"Links"</h1>
        <p class="lead">
            "Your SMART Health Links. Each use is recorded on the ledger before anything is sent, and you are "
            "told who opened it. Make a new link from the "<Link href="/records">"Records"</Link>" page, or "
            "an "<Link href="/emergency-card">"emergency card"</Link>" for your wallet."
        </p>
        <ErrorMessage error=error />
        <ErrorMessage error=action_error />
        <Busy message=busy />
        {shown}
        {move || match list.get() {
            None => view! { <Busy message=Signal::derive(|| Some("Loading your links…".to_string())) /> }.into_any(),
            Some(l) if l.is_empty() => view! { <p class="muted">"You have not made a link yet."</p> }.into_any(),
            Some(l) => view! {
                <div class="table-scroll">
                <table class="table" data-testid="links">
                    <TableHead columns=&["Link", "Protection", "Until", "Uses", "Status"] actions=true />
                    <tbody>
                        {l.into_iter().map(|link| {
                            let now = (js_sys::Date::now() / 1000.0) as u64;
                            let live = link.revoked_at.is_none()
                                && link.expires_at.is_none_or(|at| at > now)
                                && link.attempts_left != Some(0);
                            let status = if link.revoked_at.is_some() { "Stopped" }
                                else if !live { "Ended" } else { "Active" };
                            let protection = match (link.flags & FLAG_PASSCODE != 0, link.attempts_left) {
                                (true, Some(n)) => format!("Passcode ({n} attempts left)"),
                                _ if link.flags & FLAG_DIRECT != 0 => "Direct file".to_owned(),
                                _ => "Link only".to_owned(),
                            };
                            let target = link.clone();
                            let (to_show, to_update, to_change) = (link.clone(), link.clone(), link.clone());
                            let new_end = RwSignal::new(1usize);
                            let long_term = link.flags & FLAG_LONG_TERM != 0;
                            view! {
                                <tr data-testid="link">
                                    <td>
                                        <strong>{label_of(&link)}</strong><br />
                                        <small class="muted">{format!("Made {}", format_date(link.created_at))}
                                            {(link.flags & FLAG_LONG_TERM != 0).then_some(" · long-term")}</small>
                                    </td>
                                    <td>{protection}</td>
                                    <td>{link.expires_at.map(|at| format!("Until {}", format_date(at as i64))).unwrap_or_else(|| "No expiry".into())}</td>
                                    <td>
                                        {if link.uses.is_empty() { view! { <span class="muted">"Not used yet"</span> }.into_any() } else {
                                            view! { <ul class="plain">{link.uses.iter().map(|u| view! {
                                                <li data-testid="link-use">{format!("{} · {}", u.recipient, format_datetime(u.at))}
                                                    <br /><small class="muted mono">{format!("tx {}", u.tx)}</small></li>
                                            }).collect_view()}</ul> }.into_any()
                                        }}
                                    </td>
                                    <td><span class=if live { "chip chip-ok" } else { "chip" } data-status=status>{status}</span></td>
                                    <td><div class="row-actions">
                                        {live.then(|| view! {
                                            <button type="button" class="button button-small"
                                                on:click=move |_| showing.set(Some(to_show.clone()))>
                                                "Show the link"
                                            </button>
                                        })}
                                        {(live && long_term).then(|| view! {
                                            <button type="button" class="button button-small"
                                                on:click=move |_| { updating.dispatch(to_update.clone()); }
                                                disabled=move || updating.pending().get()>
                                                "Update what it carries"
                                            </button>
                                        })}
                                        {live.then(|| view! {
                                            <span class="inline-form">
                                                <select aria-label="New expiry, from now" data-testid="link-new-expiry"
                                                    on:change=move |ev| new_end.set(event_target_value(&ev).parse().unwrap_or(1))>
                                                    {links::LIFETIMES.iter().enumerate().map(|(i, (text, _))| view! {
                                                        <option value=i.to_string() selected=i == 1>{*text}</option>
                                                    }).collect_view()}
                                                </select>
                                                <button type="button" class="button button-small"
                                                    on:click=move |_| { changing.dispatch((to_change.clone(), links::LIFETIMES[new_end.get_untracked()].1)); }
                                                    disabled=move || changing.pending().get()>
                                                    "Change expiry"
                                                </button>
                                            </span>
                                        })}
                                        {live.then(|| view! {
                                            <StopSharing on_stop=move || stop(target.clone())
                                                pending=stopping.pending() />
                                        })}
                                    </div></td>
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
                </div>
            }.into_any(),
        }}
    }
    .into_any()
}
