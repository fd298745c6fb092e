//! "Chartkey was updated — reload": a page keeps running the build it was
//! loaded with, while the server may have been updated since. The build
//! writes its name into the page (`<meta name="chartkey-build">`) and the
//! server sends the build it serves on every response (`x-chartkey-build`).
//! On moving to another page, and on coming back to the tab, the page asks
//! (a HEAD of `/`, at most every 30 seconds) and, when they differ, says so
//! with a button that reloads, rather than talking to a server it may no
//! longer understand.

use leptos::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use super::components::page_meta;
use super::nav::use_location;

/// Milliseconds between two checks.
const EVERY_MS: f64 = 30_000.0;

#[derive(Clone, Copy)]
pub struct Update {
    pub available: RwSignal<bool>,
}

impl Update {
    /// The banner's state, with no watching (the shell checks once, before
    /// it starts the portal).
    pub fn provide() -> Self {
        let update = Self { available: RwSignal::new(false) };
        provide_context(update);
        update
    }
}

/// Starts watching: on each move to another page and when the tab is shown
/// again. Provides the [`Update`] the banner reads.
pub fn watch() -> Update {
    let update = Update::provide();
    // A page without a build name (not built by xtask) has nothing to compare.
    if page_meta("chartkey-build").is_none() {
        return update;
    }
    let last = StoredValue::new_local(f64::NEG_INFINITY);
    let check = move || {
        let now = js_sys::Date::now();
        if update.available.get_untracked() || now - last.get_value() < EVERY_MS {
            return;
        }
        last.set_value(now);
        let differs = served_differs();
        leptos::task::spawn_local(async move {
            if differs.await {
                update.available.set(true);
            }
        });
    };
    let location = use_location();
    Effect::new(move |before: Option<()>| {
        location.path();
        // Not on the first run (the page's own load): it is as new as the server.
        if before.is_some() {
            check();
        }
    });
    let on_visible = window_event_listener_untyped("visibilitychange", move |_| {
        let visible = web_sys::window()
            .and_then(|w| w.document())
            .is_some_and(|d| d.visibility_state() == web_sys::VisibilityState::Visible);
        if visible {
            check();
        }
    });
    on_cleanup(move || on_visible.remove());
    update
}

/// Whether the server now serves another build than this page's (false
/// when it cannot be asked).
pub fn served_differs() -> impl std::future::Future<Output = bool> {
    let mine = page_meta("chartkey-build");
    let served = served_build();
    async move { matches!((mine, served.await), (Some(mine), Some(served)) if mine != served) }
}

/// The build the server serves now; none when it cannot be asked. The
/// request leaves at once (before the future is awaited).
fn served_build() -> impl std::future::Future<Output = Option<String>> {
    let init = web_sys::RequestInit::new();
    init.set_method("HEAD");
    init.set_cache(web_sys::RequestCache::NoStore);
    let asked = web_sys::window().map(|w| w.fetch_with_str_and_init("/", &init));
    async move {
        let response: web_sys::Response = JsFuture::from(asked?).await.ok()?.dyn_into().ok()?;
        response.headers().get("x-chartkey-build").ok()?
    }
}

/// The banner: role=alert, so a screen reader hears it at once.
#[component]
pub fn UpdateBanner() -> impl IntoView {
    let update = expect_context::<Update>();
    let reload = move |_| {
        if let Some(window) = web_sys::window() {
            let _ = window.location().reload();
        }
    };
    view! {
        <Show when=move || update.available.get()>
            <div class="update-banner" role="alert" data-testid="update-banner">
                <p>"Chartkey was updated. Reload to use the new version (your records stay as they are)."</p>
                <button type="button" class="button button-primary button-small" on:click=reload>"Reload"</button>
            </div>
        </Show>
    }
}
