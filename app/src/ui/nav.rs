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
    /// The listener goes with the app that installed it (the shell's, when
    /// it hands the page to the portal).
    pub fn install() -> Self {
        let location = Self { path: RwSignal::new(current_path()) };
        let on_pop = window_event_listener_untyped("popstate", move |_| {
            location.path.set(current_path());
            announce_page();
        });
        on_cleanup(move || on_pop.remove());
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
        self.go(path, true);
    }

    /// Pushes `path`; a new page starts at the top, a new selection within
    /// a page (`to_top` false) stays where the reader is.
    fn go(&self, path: &str, to_top: bool) {
        if let Some(window) = web_sys::window() {
            if let Ok(history) = window.history() {
                let _ = history.push_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(path));
            }
            if to_top {
                window.scroll_to_with_x_and_y(0.0, 0.0);
            }
        }
        self.path.set(path.split(['?', '#']).next().unwrap_or("/").to_owned());
        if to_top {
            announce_page();
        }
    }
}

pub use chartkey_core::route::Page;

/// The page at the current address, as a memo: moving between a page's
/// own addresses keeps the page and what it loaded.
pub fn current_page() -> Memo<Page> {
    let location = use_location();
    Memo::new(move |_| Page::of(&location.path()))
}

/// Keeps a page's selection (a record, a transaction, a patient's chart)
/// in its address: `base/<value>` selects `value`, `base` nothing. Setting
/// `selected` pushes a history entry, so each selection can be bookmarked
/// or reloaded, and back and forward move between selections.
pub fn bind_selection<T>(base: &'static str, selected: RwSignal<Option<T>>)
where
    T: std::str::FromStr + std::fmt::Display + PartialEq + Send + Sync + 'static,
{
    let location = use_location();
    let under_base = move |path: &str| path == base || path.strip_prefix(base).is_some_and(|r| r.starts_with('/'));
    Effect::new(move |_| {
        let path = location.path();
        if !under_base(&path) {
            return;
        }
        let from_address = path.strip_prefix(base).and_then(|r| r.strip_prefix('/')).and_then(|v| v.parse::<T>().ok());
        if selected.with_untracked(|s| *s != from_address) {
            selected.set(from_address);
        }
    });
    Effect::new(move |_| {
        let wanted = selected.with(|s| s.as_ref().map_or_else(|| base.to_owned(), |v| format!("{base}/{v}")));
        let path = location.path_untracked();
        if under_base(&path) && path != wanted {
            location.go(&wanted, false);
        }
    });
}

/// Where to go after signing in: the page a signed-out visitor asked for
/// (`/signin?next=/records`), if it is a path of this app; else the start.
pub fn after_sign_in() -> String {
    let search = web_sys::window().and_then(|w| w.location().search().ok()).unwrap_or_default();
    chartkey_core::route::next_after_sign_in(&search).unwrap_or("/").to_owned()
}

/// After a move to another page, once it is drawn: focus goes to its main
/// heading (so a screen reader reads where the reader is, and Tab starts
/// from the new page, not from the link left behind) and the tab's title
/// names the page.
pub(crate) fn announce_page() {
    let Some(window) = web_sys::window() else { return };
    let after_drawing = wasm_bindgen::closure::Closure::once_into_js(|| {
        let Some(document) = web_sys::window().and_then(|w| w.document()) else { return };
        let Ok(Some(heading)) = document.query_selector("main h1") else { return };
        let _ = heading.set_attribute("tabindex", "-1");
        if let Some(heading) = heading.dyn_ref::<web_sys::HtmlElement>() {
            let _ = heading.focus();
        }
        let name = heading.text_content().unwrap_or_default();
        document.set_title(&format!("{} · Chartkey", name.trim()));
    });
    let _ = window.request_animation_frame(after_drawing.unchecked_ref());
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
