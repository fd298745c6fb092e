//! The Leptos app (client-side rendered).

mod components;
mod enroll;
mod error;
mod http;
mod idle;
mod kdf;
mod nav;
mod notices;
mod pages;
mod records;
mod session;
mod sharing;
mod update;
mod webauthn;

use chartkey_core::role::Role;
use leptos::prelude::*;

use nav::{Link, Location};
use session::{Session, use_session};

#[component]
pub fn App() -> impl IntoView {
    let session = Session::new();
    provide_context(session);
    leptos::task::spawn_local(session.refresh());
    idle::watch(session);
    notices::Notices::install(session);
    let location = Location::install();
    update::watch();
    // The page (its first path segment): a Memo, so moving between a page's
    // own addresses (`/records/<id>`) keeps the page and what it loaded.
    let section = Memo::new(move |_| {
        let path = location.path();
        let first = path.trim_start_matches('/').split('/').next().unwrap_or("").to_owned();
        let deeper = path.trim_start_matches('/').contains('/');
        match first.as_str() {
            "records" | "sharing" | "ledger" => first,
            _ if deeper => "not-found".to_owned(),
            _ => first,
        }
    });
    let page = move || match section.get().as_str() {
        "" | "account" => view! { <pages::Home /> }.into_any(),
        "signup" => view! { <pages::SignUp /> }.into_any(),
        "signin" => view! { <pages::SignIn /> }.into_any(),
        "restore" => view! { <pages::Restore /> }.into_any(),
        "ledger" => view! { <pages::Ledger /> }.into_any(),
        "records" => view! { <pages::Records /> }.into_any(),
        "credentials" | "clinicians" => view! { <pages::Credentials /> }.into_any(),
        "sharing" => view! { <pages::Sharing /> }.into_any(),
        "inbox" => view! { <pages::Inbox /> }.into_any(),
        _ => view! { <pages::NotFound /> }.into_any(),
    };

    view! {
        <Header />
        <update::UpdateBanner />
        <notices::Toast />
        <main id="main" class="container">{page}</main>
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
        <a class="skip-link" href="#main">"Skip to content"</a>
        <header class="header">
            <div class="container header-row">
                <Link href="/" class="brand">
                    <span class="brand-mark" aria-hidden="true">"◆"</span>
                    " Chartkey"
                </Link>
                <Show when=signed_in>
                    <nav class="nav" aria-label="Account">
                        <span class="who">
                            {move || session.account.get().map(|a| format!("{} · {}", a.display_name, a.role.label()))}
                        </span>
                        <Show when=move || role() == Some(Role::Patient)>
                            <Link href="/records">"Records"</Link>
                            <Link href="/sharing">"Sharing"</Link>
                            <Link href="/clinicians">"Clinicians"</Link>
                        </Show>
                        <Show when=move || role() == Some(Role::Clinician)>
                            <Link href="/sharing">"Shared with me"</Link>
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
            </div>
        </header>
    }
}
