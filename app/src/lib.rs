//! Chartkey's browser app and the declarations of its server functions.
//!
//! - [`api`]: server functions (compiled for browser and server).
//! - `ui` (feature `csr`): the Leptos app: pages, WebAuthn and key custody.

pub mod api;
#[cfg(feature = "csr")]
pub mod ui;
