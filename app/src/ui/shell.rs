//! The shell: all a first visit downloads (welcome, sign-in, unlock), and
//! the hand-over to the portal, the second wasm module with every other
//! page (`chartkey-app`, built beside the shell; see ARCHITECTURE.md,
//! "Two modules").
//!
//! The portal starts loading when it will be needed: on the click on "Sign
//! in with a passkey" (so it downloads and compiles while the passkey
//! prompt is open), when a signed-in but locked session is found, and on
//! the pages only the portal has (sign-up, restore). Once the keys are
//! unlocked the shell checks that the server still serves this build,
//! unmounts itself, and calls the portal's `chartkey_start` with the
//! account and the 32-byte secret as a `Uint8Array`, which both sides wipe
//! as soon as the portal has copied it: the secret crosses JavaScript as a
//! function argument only, never through a global or storage
//! (docs/security.md, "Shell and portal").

use std::cell::RefCell;
use std::sync::Arc;

use js_sys::{Function, Promise, Reflect, Uint8Array};
use leptos::prelude::*;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use super::components::{Busy, Loading, page_meta};
use super::nav::{Location, Page, current_page};
use super::pages;
use super::session::{Keyring, Session};
use super::update::{self, UpdateBanner};
use super::{Footer, Masthead};

// The portal's glue is an ES module of this build (its address is in the
// page's `<meta name="chartkey-app">`, written by `cargo xtask`); loading
// it needs a dynamic `import()`, which only JavaScript can write. One load
// at a time; a failed one can be tried again (under another address: the
// browser remembers a module that failed to load for the page's lifetime).
#[wasm_bindgen(inline_js = r#"
let loading = null;
let failed = 0;
export function load_portal(js, wasm) {
  if (!loading) {
    const glue = failed ? `${js}?attempt=${failed}` : js;
    loading = Promise.all([import(glue), WebAssembly.compileStreaming(fetch(wasm))]).then(
      async ([portal, module]) => {
        await portal.default({ module_or_path: module });
        return portal;
      },
    );
    loading.catch(() => {
      loading = null;
      failed += 1;
    });
  }
  return loading;
}
"#)]
extern "C" {
    fn load_portal(js: &str, wasm: &str) -> Promise;
}

thread_local! {
    /// The shell's view while it is mounted: dropped to unmount it.
    static MOUNTED: RefCell<Option<Box<dyn std::any::Any>>> = const { RefCell::new(None) };
}

/// Mounts the shell on the page's body.
pub fn start() {
    let handle = leptos::mount::mount_to(document().body().expect("the page has a body"), Shell);
    MOUNTED.with(|m| *m.borrow_mut() = Some(Box::new(handle)));
}

/// Called when sign-in starts (the portal begins loading): provided by the
/// shell, absent in the portal.
#[derive(Clone, Copy)]
pub struct SignInStarted(pub Callback<()>);

/// Why the portal could not be started.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Problem {
    /// The server serves another build now (a deploy): reload.
    Updated,
    /// The portal's files did not load (network, or a build without them).
    NotLoaded,
}

/// The portal's glue and wasm, from this build.
fn addresses() -> Option<(String, String)> {
    let js = page_meta("chartkey-app")?;
    let wasm = format!("{}_bg.wasm", js.strip_suffix(".js")?);
    Some((js, wasm))
}

/// Starts loading the portal (once), without waiting for it.
fn prefetch() {
    if let Some((js, wasm)) = addresses() {
        // Failure is handled where the portal is needed.
        let _ = load_portal(&js, &wasm);
    }
}

/// Loads the portal, and hands the page to it with the unlocked keys (or
/// none, for sign-up and restore).
async fn hand_over(session: Session) -> Result<(), Problem> {
    let differs = update::served_differs();
    let (js, wasm) = addresses().ok_or(Problem::NotLoaded)?;
    let loaded = JsFuture::from(load_portal(&js, &wasm)).await;
    if differs.await {
        return Err(Problem::Updated);
    }
    let portal = loaded.map_err(|_| Problem::NotLoaded)?;
    let start: Function = Reflect::get(&portal, &"chartkey_start".into())
        .ok()
        .and_then(|f| f.dyn_into().ok())
        .ok_or(Problem::NotLoaded)?;
    let keyring: Option<Arc<Keyring>> = session.keyring.get_untracked();
    let account = session.account.get_untracked();
    let (secret, account) = match (&keyring, account) {
        (Some(keyring), Some(account)) => (
            JsValue::from(Uint8Array::from(&keyring.secret.as_bytes()[..])),
            serde_json::to_string(&account).map(JsValue::from).unwrap_or(JsValue::NULL),
        ),
        _ => (JsValue::NULL, JsValue::NULL),
    };
    // From here on the shell's signals are gone: touch none of them.
    let shell = MOUNTED.with(|m| m.borrow_mut().take());
    drop(shell);
    let started = start.call2(&JsValue::NULL, &secret, &account);
    if let Some(secret) = secret.dyn_ref::<Uint8Array>() {
        secret.fill(0, 0, secret.length());
    }
    drop(keyring);
    if let Err(e) = started {
        // Nothing is left on the page to say so: start again from a fresh load.
        web_sys::console::error_2(&"Chartkey's portal failed to start:".into(), &e);
        let _ = window().location().reload();
    }
    Ok(())
}

/// What the shell shows.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Screen {
    NotStarted(Problem),
    /// Unlocked: the portal is being started.
    Opening,
    Loading,
    SignIn,
    NotFound,
    Welcome,
    Unlock,
}

#[component]
fn Shell() -> impl IntoView {
    let session = Session::new();
    provide_context(session);
    leptos::task::spawn_local(session.refresh());
    Location::install();
    let update = update::Update::provide();
    provide_context(SignInStarted(Callback::new(|()| prefetch())));
    let page = current_page();
    let problem = RwSignal::new(None::<Problem>);
    let opening = RwSignal::new(false);
    let portal_page = move || matches!(page.get(), Page::SignUp | Page::Restore);

    // A locked session will most likely be unlocked next.
    Effect::new(move || {
        if session.account.with(Option::is_some) && !session.is_unlocked() {
            prefetch();
        }
    });
    Effect::new(move || {
        let wanted = session.is_unlocked() || portal_page();
        if wanted && problem.with(Option::is_none) && !opening.get_untracked() {
            opening.set(true);
            leptos::task::spawn_local(async move {
                if let Err(found) = hand_over(session).await {
                    opening.set(false);
                    if found == Problem::Updated {
                        update.available.set(true);
                    }
                    problem.set(Some(found));
                }
            });
        }
    });

    // What the page shows, as a memo: a signal set again to the same value
    // (a sign-in sets `checked` once more) keeps the form and its state.
    let screen = Memo::new(move |_| {
        if let Some(found) = problem.get() {
            return Screen::NotStarted(found);
        }
        if session.is_unlocked() {
            return Screen::Opening;
        }
        if !session.checked.get() || portal_page() {
            return Screen::Loading;
        }
        match page.get() {
            Page::SignIn => Screen::SignIn,
            Page::NotFound => Screen::NotFound,
            _ if session.account.with(Option::is_none) => Screen::Welcome,
            _ => Screen::Unlock,
        }
    });
    let content = move || match screen.get() {
        Screen::NotStarted(found) => view! { <NotStarted problem=found retry=move || problem.set(None) /> }.into_any(),
        Screen::Opening => {
            view! { <Busy message=Signal::derive(|| Some("Opening your account…".to_owned())) /> }.into_any()
        }
        Screen::Loading => view! { <Loading /> }.into_any(),
        Screen::SignIn => view! { <pages::SignIn /> }.into_any(),
        Screen::NotFound => view! { <pages::NotFound /> }.into_any(),
        Screen::Welcome => view! { <pages::Welcome /> }.into_any(),
        Screen::Unlock => view! { <pages::SignInForm unlock=true /> }.into_any(),
    };
    view! {
        <Masthead />
        <UpdateBanner />
        <main id="main" class="container">{content}</main>
        <Footer />
    }
}

/// The portal did not start: a deploy (the banner offers the reload), or
/// its files did not arrive (try again).
#[component]
fn NotStarted(problem: Problem, retry: impl Fn() + Send + Sync + 'static) -> impl IntoView {
    match problem {
        Problem::Updated => view! {
            <section class="panel narrow">
                <h1>"Chartkey was updated"</h1>
                <p>"This page is from the version before. Reload it to go on with the new one."</p>
            </section>
        }
        .into_any(),
        Problem::NotLoaded => view! {
            <section class="panel narrow">
                <h1>"Chartkey could not finish loading"</h1>
                <p class="alert alert-error" role="alert">
                    "The rest of Chartkey did not arrive. Check your connection and try again."
                </p>
                <button type="button" class="button button-primary" on:click=move |_| retry()>
                    "Try again"
                </button>
            </section>
        }
        .into_any(),
    }
}
