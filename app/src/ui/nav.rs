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

    /// Goes to `path` within the app, adding a history entry.
    pub fn navigate(&self, path: &str) {
        if let Some(window) = web_sys::window() {
            if let Ok(history) = window.history() {
                let _ = history.push_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(path));
            }
            window.scroll_to_with_x_and_y(0.0, 0.0);
        }
        self.path.set(path.to_owned());
    }
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
pub fn Link(href: &'static str, #[prop(optional)] class: &'static str, children: Children) -> impl IntoView {
    let location = expect_context::<Location>();
    let on_click = move |ev: leptos::ev::MouseEvent| {
        if ev.button() != 0 || ev.ctrl_key() || ev.meta_key() || ev.shift_key() || ev.alt_key() {
            return;
        }
        ev.prevent_default();
        location.navigate(href);
    };
    view! {
        <a
            href=href
            class=class
            aria-current=move || (location.path() == href).then_some("page")
            on:click=on_click
        >
            {children()}
        </a>
    }
}
