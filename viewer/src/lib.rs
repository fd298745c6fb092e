//! The link viewer (`/view`): what a stranger opens on a phone in an
//! emergency room. A SMART Health Link, pasted, opened from the address
//! (`/view#shlink:/…`) or scanned with the camera; who is asking (and the
//! passcode, when the link has one); the files fetched from the link's
//! host, decrypted here with the key from the link and shown as the
//! chart's record views show records. Leptos-free and apart from the
//! portal's code, so that its first load stays small; it keeps nothing
//! (no storage, and the link leaves the address bar once read).
//!
//! The parts that decide (what the host's answers mean, reading a QR code;
//! what the files show is core's `bundle_view`) are plain Rust, tested
//! natively; the page and the camera are wasm only.

pub mod answer;
pub mod qr;

#[cfg(target_arch = "wasm32")]
mod decrypt;
#[cfg(target_arch = "wasm32")]
mod dom;
#[cfg(target_arch = "wasm32")]
mod page;
#[cfg(target_arch = "wasm32")]
mod scan;

#[cfg(target_arch = "wasm32")]
pub use page::start;
