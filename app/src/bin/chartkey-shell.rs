//! The shell: the module a first visit loads (welcome, sign-in, unlock);
//! it loads the portal (src/main.rs) and hands the page to it.

#[cfg(feature = "csr")]
fn main() {
    console_error_panic_hook::set_once();
    chartkey_app::ui::shell::start();
}

#[cfg(not(feature = "csr"))]
fn main() {
    // The shell runs in the browser only; build it with `cargo xtask run`.
}
