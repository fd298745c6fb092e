//! The Leptos app (client-side rendered), in two modules: the shell
//! ([`shell::start`]: welcome, sign-in, unlock) and the portal
//! ([`start_portal`]: every page), which the shell loads and hands the
//! unlocked session to.

mod components;
mod emergency;
mod enroll;
mod error;
mod http;
mod idle;
mod kdf;
mod links;
mod nav;
mod notices;
mod pages;
mod records;
mod session;
mod sharing;
pub mod shell;
mod update;
mod webauthn;

use chartkey_core::AccountSecret;
use chartkey_core::role::Role;
use js_sys::Uint8Array;
use leptos::prelude::*;
use zeroize::Zeroizing;

use crate::api::AccountInfo;

use nav::{Link, Location};
use session::{Session, use_session};

pub use records::bench_seal;

/// What the shell hands the portal: the account and its unlocked secret.
pub struct Handover {
    account: AccountInfo,
    secret: AccountSecret,
}

impl Handover {
    /// From the shell's arguments (the secret's 32 bytes, the account as
    /// JSON); the secret's array is wiped here, whatever it held. Anything
    /// else is no hand-over: the portal starts locked.
    pub fn from_js(secret: Option<Uint8Array>, account: Option<String>) -> Option<Self> {
        let secret = secret?;
        let mut bytes = Zeroizing::new([0u8; 32]);
        let whole = secret.length() == 32;
        if whole {
            secret.copy_to(&mut bytes[..]);
        }
        secret.fill(0, 0, secret.length());
        let account = serde_json::from_str(&account?).ok()?;
        whole.then(|| Self { account, secret: AccountSecret::from_bytes(*bytes) })
    }
}

/// Mounts the portal on the page's body (the shell has left it), then
/// moves focus and the tab's title to the page shown, as a move between
/// pages does.
pub fn start_portal(handover: Option<Handover>) {
    leptos::mount::mount_to_body(move || view! { <App handover /> });
    nav::announce_page();
}

#[component]
fn App(handover: Option<Handover>) -> impl IntoView {
    let session = Session::new();
    provide_context(session);
    if let Some(Handover { account, secret }) = handover {
        // The shell checked these keys; checked again, as any unlock is.
        match session.unlock(account, secret) {
            Ok(()) => session.checked.set(true),
            Err(e) => leptos::logging::error!("the keys handed over did not unlock: {e}"),
        }
    }
    leptos::task::spawn_local(session.refresh());
    idle::watch(session);
    notices::Notices::install(session);
    Location::install();
    update::watch();
    let section = nav::current_page();
    let page = move || pages::show(section.get());

    view! {
        <Header />
        <update::UpdateBanner />
        <notices::Toast />
        <main id="main" class="container">{page}</main>
        <Footer />
    }
}

/// The skip link and the bar at the top: the brand, and what `children`
/// add (the portal's navigation).
#[component]
fn Masthead(#[prop(optional)] children: Option<Children>) -> impl IntoView {
    view! {
        <a class="skip-link" href="#main">"Skip to content"</a>
        <header class="header">
            <div class="container header-row">
                <Link href="/" class="brand">
                    <span class="brand-mark" aria-hidden="true">"◆"</span>
                    " Chartkey"
                </Link>
                {children.map(|c| c())}
            </div>
        </header>
    }
}

#[component]
fn Footer() -> impl IntoView {
    view! {
        <footer class="footer container">
            <p>"Chartkey — your records are encrypted in this browser before they leave it."</p>
        </footer>
    }
}

#[component]
fn Header() -> impl IntoView {
    let session = use_session();
    let signed_in = move || session.account.with(Option::is_some);
    let role = move || session.account.with(|a| a.as_ref().map(|a| a.role));
    let notices = notices::use_notices();
    let lock = move |_| session.lock();
    let sign_out = move |_| leptos::task::spawn_local(session.sign_out());
    view! {
        <Masthead>
            <Show when=signed_in>
                <nav class="nav" aria-label="Account">
                    <span class="who">
                        {move || session.account.get().map(|a| format!("{} · {}", a.display_name, a.role.label()))}
                    </span>
                    <Show when=move || role() == Some(Role::Patient)>
                        <Link href="/records">"Records"</Link>
                        <Link href="/sharing">"Sharing"</Link>
                        <Link href="/links">"Links"</Link>
                        <Link href="/emergency">"Emergency"</Link>
                        <Link href="/clinicians">"Clinicians"</Link>
                    </Show>
                    <Show when=move || role() == Some(Role::Clinician)>
                        <Link href="/sharing">"Shared with me"</Link>
                        <Link href="/emergency">"Emergency"</Link>
                        <Link href="/credentials">"Verification"</Link>
                    </Show>
                    <Show when=move || role() == Some(Role::CredentialingAuthority)>
                        <Link href="/credentials">"Credentials"</Link>
                    </Show>
                    <Link href="/inbox">
                        "Inbox"
                        {move || {
                            let n = notices.unread();
                            (n > 0).then(|| view! { " " <span class="count" data-testid="unread">{n}</span><span class="visually-hidden">" unread"</span> })
                        }}
                    </Link>
                    <Link href="/account">"Account"</Link>
                    <Link href="/ledger">"Ledger"</Link>
                    <Show when=move || session.is_unlocked()>
                        <button type="button" class="button button-small" on:click=lock>"Lock"</button>
                    </Show>
                    <button type="button" class="button button-small button-quiet" on:click=sign_out>
                        "Sign out"
                    </button>
                </nav>
            </Show>
        </Masthead>
    }
}
