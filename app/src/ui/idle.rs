//! Automatic lock after inactivity, for roles that need it (clinicians on
//! shared workstations). Any key press, pointer or scroll counts as
//! activity.

use leptos::prelude::*;

use super::session::Session;

pub fn watch(session: Session) {
    let last_activity = StoredValue::new(js_sys::Date::now());
    let touch = move || last_activity.set_value(js_sys::Date::now());
    for event in ["pointerdown", "keydown", "scroll", "touchstart"] {
        let closure = wasm_bindgen::closure::Closure::<dyn Fn()>::new(touch);
        let options = web_sys::AddEventListenerOptions::new();
        options.set_passive(true);
        if let Some(window) = web_sys::window() {
            let _ = window.add_event_listener_with_callback_and_add_event_listener_options(
                event,
                wasm_bindgen::JsCast::unchecked_ref(closure.as_ref()),
                &options,
            );
        }
        // The listeners live as long as the page.
        closure.forget();
    }
    leptos::task::spawn_local(async move {
        loop {
            gloo_timers::future::TimeoutFuture::new(1_000).await;
            let limit = session.account.with_untracked(|a| a.as_ref().and_then(|a| a.idle_lock_secs));
            if let Some(limit) = limit {
                let idle_ms = js_sys::Date::now() - last_activity.get_value();
                if session.keyring.with_untracked(Option::is_some) && idle_ms >= limit as f64 * 1000.0 {
                    session.lock();
                }
            }
        }
    });
    // Unlocking counts as activity.
    Effect::new(move || {
        if session.keyring.with(Option::is_some) {
            touch();
        }
    });
}
