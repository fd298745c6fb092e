//! Client-side navigation: the current path as a signal, links that push
//! history entries, and the back/forward buttons. (A full router is more
//! than five fixed pages need, and costs first-load bytes.)

use leptos::prelude::*;
use wasm_bindgen::JsCast;

#[derive(Clone, Copy)]
pub struct Location {
    path: RwSignal<String>,
}

impl Location {
    /// Reads the current path and follows the browser's back/forward.
    pub fn install() -> Self {
        let location = Self { path: RwSignal::new(current_path()) };
        let on_pop = wasm_bindgen::closure::Closure::<dyn Fn()>::new(move || location.path.set(current_path()));
        if let Some(window) = web_sys::window() {
            let _ = window.add_event_listener_with_callback("popstate", on_pop.as_ref().unchecked_ref());
        }
        // Lives as long as the page.
        on_pop.forget();
        provide_context(location);
        location
    }

    pub fn path(&self) -> String {
        self.path.get()
    }

    /// The path now, without subscribing to changes.
    pub fn path_untracked(&self) -> String {
        self.path.get_untracked()
    }

    /// Goes to `path` (which may carry a `?query`) within the app, adding a
    /// history entry.
    pub fn navigate(&self, path: &str) {
        if let Some(window) = web_sys::window() {
            if let Ok(history) = window.history() {
                let _ = history.push_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(path));
            }
            window.scroll_to_with_x_and_y(0.0, 0.0);
        }
        self.path.set(path.split(['?', '#']).next().unwrap_or("/").to_owned());
    }
}

/// Where to go after signing in: the page a signed-out visitor asked for
/// (`/signin?next=/records`), if it is a path of this app; else the start.
pub fn after_sign_in() -> String {
    let search = web_sys::window().and_then(|w| w.location().search().ok()).unwrap_or_default();
    chartkey_core::route::next_after_sign_in(&search).unwrap_or("/").to_owned()
}

pub fn use_location() -> Location {
    expect_context::<Location>()
}

fn current_path() -> String {
    web_sys::window().and_then(|w| w.location().pathname().ok()).unwrap_or_else(|| "/".into())
}

/// An in-app link: a real `<a href>` (so it can be opened in a new tab or
/// copied), handled in place on a plain click.
#[component]
pub fn Link(#[prop(into)] href: String, #[prop(optional)] class: &'static str, children: Children) -> impl IntoView {
    let location = expect_context::<Location>();
    let target = StoredValue::new(href.clone());
    let on_click = move |ev: leptos::ev::MouseEvent| {
        if ev.button() != 0 || ev.ctrl_key() || ev.meta_key() || ev.shift_key() || ev.alt_key() {
            return;
        }
        ev.prevent_default();
        target.with_value(|href| location.navigate(href));
    };
    view! {
        <a
            href=href
            class=class
            aria-current=move || target.with_value(|href| location.path() == *href).then_some("page")
            on:click=on_click
        >
            {children()}
        </a>
    }
}
