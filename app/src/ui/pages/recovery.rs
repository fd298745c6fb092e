//! The recovery phrase: shown until the user confirms they wrote it down,
//! by typing back three words chosen at random.

use chartkey_core::recovery::{check_word, words_for};
use leptos::prelude::*;
use rand_core::RngCore;

use crate::api;
use crate::ui::components::{Busy, ErrorMessage};
use crate::ui::session::use_session;

/// Three distinct positions (1-based) to ask for.
fn pick_positions() -> [usize; 3] {
    let mut picked = Vec::with_capacity(3);
    while picked.len() < 3 {
        let p = (rand_core::OsRng.next_u32() % 24) as usize + 1;
        if !picked.contains(&p) {
            picked.push(p);
        }
    }
    picked.sort_unstable();
    [picked[0], picked[1], picked[2]]
}

#[component]
pub fn RecoveryPhrase() -> impl IntoView {
    let session = use_session();
    let words = session.keyring.get_untracked().map(|k| words_for(&k.secret)).unwrap_or_default();
    let confirming = RwSignal::new(false);
    let written = RwSignal::new(false);
    let positions = pick_positions();
    let answers = [RwSignal::new(String::new()), RwSignal::new(String::new()), RwSignal::new(String::new())];
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(None::<String>);

    let confirm = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some(keyring) = session.keyring.get_untracked() else { return };
        let wrong: Vec<String> = positions
            .iter()
            .zip(answers)
            .filter(|(p, a)| !check_word(&keyring.secret, **p, &a.get_untracked()))
            .map(|(p, _)| p.to_string())
            .collect();
        if !wrong.is_empty() {
            error.set(Some(format!("Word {} does not match. Check what you wrote down.", wrong.join(" and word "))));
            return;
        }
        error.set(None);
        busy.set(Some("Saving…".into()));
        leptos::task::spawn_local(async move {
            match api::confirm_recovery().await {
                Ok(account) => session.account.set(Some(account)),
                Err(e) => error.set(Some(e.to_string())),
            }
            busy.set(None);
        });
    };

    view! {
        <section class="panel">
            <h1>"Your recovery phrase"</h1>
            <Show
                when=move || confirming.get()
                fallback=move || {
                    let words = words.clone();
                    view! {
                        <p>
                            "These 24 words are the only way back into your account if you lose every passkey. "
                            "Write them down, in order, on paper, and keep it somewhere safe."
                        </p>
                        <p class="alert alert-warning">
                            "Anyone who has these words can open your records. Chartkey cannot show them again or reset them."
                        </p>
                        <ol class="phrase" aria-label="Recovery phrase">
                            {words.into_iter().map(|w| view! { <li><span class="word">{w}</span></li> }).collect_view()}
                        </ol>
                        <label class="choice">
                            <input type="checkbox" prop:checked=move || written.get() on:change=move |_| written.update(|w| *w = !*w) />
                            <span>"I have written down all 24 words, in order."</span>
                        </label>
                        <button
                            type="button"
                            class="button button-primary"
                            disabled=move || !written.get()
                            on:click=move |_| confirming.set(true)
                        >
                            "Continue"
                        </button>
                    }
                }
            >
                <form class="stack" on:submit=confirm>
                    <p>"To check, type these words from your recovery phrase."</p>
                    {positions
                        .iter()
                        .zip(answers)
                        .map(|(p, answer)| {
                            view! {
                                <label class="field">
                                    <span>"Word " {*p}</span>
                                    <input type="text" autocomplete="off" autocapitalize="none" spellcheck="false" required bind:value=answer />
                                </label>
                            }
                        })
                        .collect_view()}
                    <ErrorMessage error=error />
                    <Busy message=busy />
                    <div class="actions">
                        <button type="submit" class="button button-primary">"Confirm"</button>
                        <button type="button" class="button" on:click=move |_| confirming.set(false)>"Show the words again"</button>
                    </div>
                </form>
            </Show>
        </section>
    }
}
