//! The ledger page: the chain's latest blocks, what the ledger records about
//! you, a transaction's decoded events, and a check of the whole chain.

use leptos::prelude::*;

use std::cell::Cell;

use chartkey_core::heads::{self, Head};

use crate::api::{self, ChainHeads, LedgerEvent, LedgerPage, LedgerTxView, LedgerVerification};
use crate::ui::components::{Busy, ErrorMessage, ListPanel, PageHead, TableHead, errors_shown, format_date, save_file};
use crate::ui::error::UiError;
use chartkey_core::value::Hash32;

thread_local! {
    /// The newest block this page verified in this session (number, hash):
    /// each later head must extend it.
    static SEEN: Cell<Option<(u64, [u8; 32])>> = const { Cell::new(None) };
}

/// Checks that the chain `page` shows extends the newest block seen before
/// in this session, through the public chain heads (parent by parent);
/// remembers its head. `Err` says how the history changed. When the heads
/// cannot be read now (offline, rate-limited), nothing is concluded: the
/// next look checks again from the same block.
async fn follow(page: &LedgerPage) -> Result<(), String> {
    let Some(shown) = page.blocks.iter().find(|b| b.number == page.head).map(|b| b.hash.0) else {
        return Ok(());
    };
    let Some(mut verified) = SEEN.get() else {
        SEEN.set(Some((page.head, shown)));
        return Ok(());
    };
    if page.head < verified.0 {
        return Err(heads::Break::WentBack { last: verified.0, now: page.head }.to_string());
    }
    loop {
        let url = format!("/api/chain/heads?from={}", verified.0);
        let Ok(bytes) = crate::ui::http::send("GET", &url, "application/json", &[], None).await else {
            return Ok(());
        };
        let Ok(answer) = serde_json::from_slice::<ChainHeads>(&bytes) else { return Ok(()) };
        let list: Vec<Head> =
            answer.heads.iter().map(|h| Head { number: h.number, hash: h.hash.0, parent: h.parent_hash.0 }).collect();
        verified = heads::extend(verified, answer.head, &list).map_err(|e| e.to_string())?;
        SEEN.set(Some(verified));
        if verified.0 >= page.head.min(answer.head) {
            break;
        }
    }
    if verified.0 == page.head && verified.1 != shown {
        return Err(format!("block {} is not the block the chain's heads lead to", page.head));
    }
    Ok(())
}

#[component]
pub fn LedgerOverview() -> impl IntoView {
    let rewritten = RwSignal::new(None::<String>);
    let overview = LocalResource::new(move || async move {
        let loaded = api::ledger_overview().await?;
        if let Err(why) = follow(&loaded).await {
            rewritten.set(Some(why));
        }
        Ok::<_, UiError>(loaded)
    });
    let reload = Callback::new(move |()| overview.refetch());
    // The transaction shown is in the address: /ledger/<hash>.
    let selected = RwSignal::new(None::<String>);
    crate::ui::nav::bind_selection("/ledger", selected);
    view! {
        <PageHead title="Ledger"
            lead="Every record's fingerprint, every consent you sign and every access to your records is written \
            to this ledger, one block after another, each block sealing the ones before it." />
        {move || rewritten.get().map(|why| view! {
            <p class="alert alert-error" role="alert" data-testid="ledger-rewritten">
                {format!(
                    "The ledger's history is not the one this page saw earlier: {why}. Records and consents shown \
                     may not match what was recorded. Keep your checkpoints and tell the portal's operator."
                )}
            </p>
        })}
        // A refresh keeps the blocks shown until the new ones arrive.
        <Transition fallback=|| view! { <Busy message=Signal::derive(|| Some("Reading the ledger…".to_string())) /> }>
            <ErrorBoundary fallback=errors_shown>
                {move || Suspend::new(async move {
                    overview.await.map(|page| view! {
                        <Chain page=page.clone() reload /> <Activity events=page.activity selected />
                    })
                })}
            </ErrorBoundary>
        </Transition>
        <Transaction selected />
    }
}

#[component]
fn Chain(page: LedgerPage, reload: Callback<()>) -> impl IntoView {
    let external = page.external;
    view! {
        <section class="panel">
            <h2>"The chain"</h2>
            <dl class="facts">
                <dt>"Where"</dt>
                <dd>{if external { "An Ethereum network shared with other organisations" } else { "Kept by this server (embedded)" }}</dd>
                <dt>"Chain id"</dt>
                <dd><code>{page.chain_id}</code></dd>
                <dt>"Latest block"</dt>
                <dd data-testid="ledger-head">{page.head}</dd>
            </dl>
            <div class="actions">
                <button type="button" class="button button-small" on:click=move |_| reload.run(())>"Refresh"</button>
            </div>
            <p data-testid="ledger-trust">
                {if external {
                    concat!(
                        "This server writes to an Ethereum network it does not control alone. How hard the past is to ",
                        "rewrite depends on who runs that network: on a public network, no single party can."
                    )
                } else {
                    concat!(
                        "This ledger is kept by this server. A change to its past shows to anyone who kept the ",
                        "fingerprint of a later block, but whoever runs this server could rebuild a different history ",
                        "for anyone who did not."
                    )
                }}
            </p>
            {(!external).then(|| view! { <Verify /> <Checkpoint /> })}
            <h3>"Latest blocks"</h3>
            <table class="table" data-testid="ledger-blocks">
                <TableHead columns=&["Block", "Date", "Transactions", "Hash"] />
                <tbody>
                    {page
                        .blocks
                        .into_iter()
                        .map(|block| {
                            view! {
                                <tr>
                                    <td>{block.number}</td>
                                    <td>{format_date(block.timestamp as i64)}</td>
                                    <td>{block.transactions}</td>
                                    <td><code title=block.hash.to_string()>{short(&block.hash.to_string())}</code></td>
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
        </section>
    }
}

/// Downloads the head, signed by the ledger's administrator key: kept, it
/// lets anyone check later that the chain still holds that block.
#[component]
fn Checkpoint() -> impl IntoView {
    let download = Action::new_local(|_: &()| async move {
        let checkpoint = api::ledger_checkpoint().await?;
        let json = serde_json::to_vec_pretty(&checkpoint).unwrap_or_default();
        save_file(&format!("chartkey-checkpoint-{}.json", checkpoint.number), "application/json", &json);
        Ok::<_, UiError>(checkpoint.number)
    });
    view! {
        <p>
            "A checkpoint is the latest block's fingerprint, signed by this ledger's administrator key. Keep it: "
            <code>"chartkey ledger verify --checkpoint FILE"</code>
            " later shows whether the chain still holds that block, so a rewritten history cannot go unnoticed."
        </p>
        <button type="button" class="button button-small" on:click=move |_| { download.dispatch(()); }
            disabled=move || download.pending().get() data-testid="ledger-checkpoint">
            "Download a checkpoint"
        </button>
        <ErrorMessage error=Signal::derive(move || UiError::shown(download.value().get())) />
        {move || download.value().get().and_then(Result::ok).map(|n| view! {
            <p class="alert alert-success" role="status">{format!("Checkpoint of block {n} saved.")}</p>
        })}
    }
}

#[component]
fn Verify() -> impl IntoView {
    let verify = Action::new_local(|_: &()| async move { Ok::<_, UiError>(api::ledger_verify().await?) });
    let result = move || verify.value().get().and_then(Result::ok);
    let busy = verify.pending();
    view! {
        <p>
            "Verifying re-executes every transaction from the first block and checks every block, transaction and "
            "receipt against what is stored."
        </p>
        <button type="button" class="button" on:click=move |_| { verify.dispatch(()); } disabled=move || busy.get()
            data-testid="ledger-verify">
            "Verify the chain"
        </button>
        <Busy message=Signal::derive(move || busy.get().then(|| "Re-executing the chain…".to_string())) />
        <ErrorMessage error=Signal::derive(move || UiError::shown(verify.value().get())) />
        {move || {
            result().map(|r: LedgerVerification| {
                if r.ok {
                    view! {
                        <p class="alert alert-success" role="status" data-testid="ledger-verified">
                            {format!(
                                "✓ The chain is intact: {} blocks and {} transactions re-executed and checked in {}.{} s.",
                                r.blocks,
                                r.transactions,
                                r.millis / 1000,
                                r.millis % 1000 / 100,
                            )}
                        </p>
                    }
                    .into_any()
                } else {
                    view! {
                        <p class="alert alert-error" role="alert" data-testid="ledger-verified">
                            {format!("The chain does not verify: {}", r.problem.unwrap_or_default())}
                        </p>
                    }
                    .into_any()
                }
            })
        }}
    }
}

#[component]
fn Activity(events: Vec<LedgerEvent>, selected: RwSignal<Option<String>>) -> impl IntoView {
    view! {
        <ListPanel title="What the ledger records about you" is_empty=events.is_empty() empty="Nothing yet.">
            <ul class="list" data-testid="ledger-activity">
                {events
                    .into_iter()
                    .map(|event| {
                        let hash = event.tx_hash.to_string();
                        view! {
                            <li>
                                <strong>{describe(&event.name)}</strong>
                                " · block " {event.block_number} " · "
                                <button type="button" class="button button-small button-quiet"
                                    on:click=move |_| selected.set(Some(hash.clone()))>
                                    "Show transaction"
                                </button>
                            </li>
                        }
                    })
                    .collect_view()}
            </ul>
        </ListPanel>
    }
}

#[component]
fn Transaction(selected: RwSignal<Option<String>>) -> impl IntoView {
    let input = RwSignal::new(String::new());
    let shown = RwSignal::new(None::<LedgerTxView>);
    let error = RwSignal::new(None::<String>);
    let show = move |text: String| {
        input.set(text.clone());
        error.set(None);
        let hash = match text.trim().parse::<Hash32>() {
            Ok(hash) => hash,
            Err(e) => {
                shown.set(None);
                error.set(Some(format!("That is not a transaction hash: {e}.")));
                return;
            }
        };
        leptos::task::spawn_local(async move {
            match api::ledger_transaction(hash).await {
                Ok(tx) => shown.set(Some(tx)),
                Err(e) => {
                    shown.set(None);
                    error.set(Some(e.to_string()));
                }
            }
        });
    };
    Effect::new(move |_| {
        if let Some(hash) = selected.get() {
            show(hash);
        }
    });
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let text = input.get_untracked().trim().to_owned();
        // A hash goes into the address (and so into history); anything else
        // only gets its error.
        if text.parse::<Hash32>().is_ok() { selected.set(Some(text)) } else { show(text) }
    };
    view! {
        <section class="panel" id="transaction">
            <h2>"A transaction"</h2>
            <form on:submit=submit class="inline-form">
                <label for="tx-hash">"Transaction hash"</label>
                <input id="tx-hash" type="text" spellcheck="false" autocomplete="off" placeholder="0x…"
                    prop:value=move || input.get() on:input=move |ev| input.set(event_target_value(&ev)) />
                <button type="submit" class="button">"Show"</button>
            </form>
            <ErrorMessage error=error />
            {move || shown.get().map(|tx| view! {
                <p data-testid="ledger-transaction">
                    <code class="break">{tx.hash.to_string()}</code>
                    {format!(" · block {} · {}", tx.block_number, if tx.success { "succeeded" } else { "reverted" })}
                </p>
                {tx.events.into_iter().map(|event| view! {
                    <h3>{describe(&event.name)}</h3>
                    <ul class="list">
                        {event.fields.into_iter().map(|(field, value)| view! { <li>{field} ": " <code class="break">{value.to_string()}</code></li> }).collect_view()}
                    </ul>
                }).collect_view()}
                {(tx.others > 0).then(|| view! {
                    <p class="muted">{tx.others} " more event(s) in this transaction concern other accounts and are not shown."</p>
                })}
            })}
        </section>
    }
}

/// An event's name in words.
fn describe(name: &str) -> &'static str {
    match name {
        "AccountRegistered" => "Account registered",
        "EncryptionKeyChanged" => "Encryption key changed",
        "AuthoritySet" => "Credentialing authority named",
        "CredentialIssued" => "Credential issued",
        "CredentialRevoked" => "Credential revoked",
        "RecordAnchored" => "Record fingerprinted",
        "BatchAnchored" => "Records fingerprinted (batch)",
        "Granted" => "Sharing started",
        "Revoked" => "Sharing stopped",
        "Accessed" => "Record opened",
        _ => "Ledger event",
    }
}

/// `0x1234…abcd`.
fn short(hash: &str) -> String {
    if hash.len() > 14 { format!("{}…{}", &hash[..8], &hash[hash.len() - 4..]) } else { hash.to_owned() }
}
