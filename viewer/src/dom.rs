//! The few DOM helpers the viewer's page and camera share: view.html's
//! elements by id, new elements holding text (never markup), listeners.

use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{Element, HtmlElement};

/// Sets a message element's text, hidden when empty.
pub(crate) fn say(id: &str, text: &str) {
    let el = element::<HtmlElement>(id);
    el.set_text_content(Some(text));
    if id != "progress" {
        el.set_hidden(text.is_empty());
    }
}

pub(crate) fn window() -> web_sys::Window {
    web_sys::window().expect("a page has a window")
}

/// An element of view.html by id (the page and this code are one build).
pub(crate) fn element<T: JsCast>(id: &str) -> T {
    window()
        .document()
        .and_then(|d| d.get_element_by_id(id))
        .and_then(|e| e.dyn_into().ok())
        .unwrap_or_else(|| panic!("view.html has #{id}"))
}

/// A new element with a class and text (as a text node).
pub(crate) fn make(tag: &str, class: Option<&str>, text: &str) -> Element {
    let el = window().document().and_then(|d| d.create_element(tag).ok()).expect("a document makes elements");
    if let Some(class) = class {
        el.set_class_name(class);
    }
    if !text.is_empty() {
        el.set_text_content(Some(text));
    }
    el
}

pub(crate) fn append(parent: &Element, child: &Element) {
    let _ = parent.append_child(child);
}

/// Runs `handler` on each `event` at the element `id`, for the page's life.
pub(crate) fn on(id: &str, event: &str, handler: impl FnMut(web_sys::Event) + 'static) {
    let closure = Closure::<dyn FnMut(web_sys::Event)>::new(handler);
    let _ =
        element::<web_sys::EventTarget>(id).add_event_listener_with_callback(event, closure.as_ref().unchecked_ref());
    closure.forget();
}
