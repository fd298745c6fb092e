//! The portal (every page of the app), built by Trunk as a second module
//! beside the shell (src/bin/chartkey-shell.rs). It does nothing when its
//! module loads: the shell calls `chartkey_start` once it has unmounted.

#[cfg(feature = "csr")]
use wasm_bindgen::prelude::wasm_bindgen;

/// Starts the portal: with the unlocked secret (32 bytes, wiped here once
/// copied) and the account (JSON) when the shell unlocked them, or with
/// neither (sign-up, restore), when it starts locked.
#[cfg(feature = "csr")]
#[wasm_bindgen]
pub fn chartkey_start(secret: Option<js_sys::Uint8Array>, account: Option<String>) {
    console_error_panic_hook::set_once();
    chartkey_app::ui::start_portal(chartkey_app::ui::Handover::from_js(secret, account));
}

/// `cargo xtask bench records`: sealing speed (see `ui::bench_seal`).
#[cfg(feature = "csr")]
#[wasm_bindgen]
pub fn chartkey_bench_seal(total: u32, slice: u32) -> f64 {
    chartkey_app::ui::bench_seal(total, slice)
}

fn main() {
    // The module loads without starting anything; see `chartkey_start`.
}
