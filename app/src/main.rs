//! The browser entry point (built by Trunk with the `csr` feature).

#[cfg(feature = "csr")]
fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(chartkey_app::ui::App);
}

#[cfg(not(feature = "csr"))]
fn main() {
    // The app runs in the browser only; build it with `trunk build` (see README).
}
