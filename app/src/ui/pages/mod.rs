//! Pages. Each page reads the session and shows what fits: a signed-out
//! visitor gets the welcome, a locked session gets "Unlock", an unlocked one
//! whose recovery phrase is unconfirmed gets the phrase first.

mod account;
mod card;
mod clinicians;
mod credentials;
mod emergency;
mod ledger;
mod links;
mod records;
mod recovery;
mod restore;
mod sharing;
mod signin;
mod signup;

use account::AccountOverview;
pub use restore::Restore;
pub use signin::{SignIn, SignInForm};
pub use signup::SignUp;

use leptos::prelude::*;

use chartkey_core::role::Role;

use super::components::{Loading, NotForThisAccount};
use super::nav::{Link, Page, use_location};
use super::session::use_session;

/// What to show instead of a signed-in page, if anything.
fn gate() -> impl Fn() -> Option<AnyView> + Copy {
    let session = use_session();
    move || {
        if !session.checked.get() {
            return Some(view! { <Loading /> }.into_any());
        }
        match session.account.get() {
            None => Some(view! { <Welcome /> }.into_any()),
            Some(_) if !session.is_unlocked() => Some(view! { <SignInForm unlock=true /> }.into_any()),
            Some(account) if !account.recovery_confirmed => Some(view! { <recovery::RecoveryPhrase /> }.into_any()),
            Some(_) => None,
        }
    }
}

/// What `page` shows: the public pages as they are, the others behind the
/// session's [`gate`].
pub fn show(page: Page) -> AnyView {
    let signed_in: fn() -> AnyView = match page {
        Page::SignUp => return view! { <SignUp /> }.into_any(),
        Page::SignIn => return view! { <SignIn /> }.into_any(),
        Page::Restore => return view! { <Restore /> }.into_any(),
        Page::NotFound => return view! { <NotFound /> }.into_any(),
        Page::Home => || view! { <AccountOverview /> }.into_any(),
        Page::Ledger => || view! { <ledger::LedgerOverview /> }.into_any(),
        Page::Records => || view! { <records::RecordsOverview /> }.into_any(),
        Page::Credentials => || view! { <credentials::CredentialsOverview /> }.into_any(),
        Page::Sharing => || view! { <sharing::SharingOverview /> }.into_any(),
        Page::Links => || view! { <links::LinksOverview /> }.into_any(),
        Page::Emergency => || view! { <emergency::EmergencyOverviewPage /> }.into_any(),
        Page::EmergencyCard => || view! { <card::CardOverview /> }.into_any(),
        Page::Inbox => || view! { <crate::ui::notices::InboxPage /> }.into_any(),
    };
    let gate = gate();
    let session = use_session();
    let body = move || match patients_only(page) {
        Some((title, why)) if session.role() != Some(Role::Patient) => {
            view! { <NotForThisAccount title why /> }.into_any()
        }
        _ => signed_in(),
    };
    (move || gate().unwrap_or_else(body)).into_any()
}

/// The pages only a patient's account has: their title, and why another
/// account finds nothing there.
fn patients_only(page: Page) -> Option<(&'static str, &'static str)> {
    match page {
        Page::Links => Some(("Links", "Patients share their records by link; this account has none.")),
        Page::EmergencyCard => {
            Some(("Emergency card", "Patients make emergency cards; this account is not a patient's."))
        }
        _ => None,
    }
}

#[component]
pub fn Welcome() -> impl IntoView {
    // Signing in from a page's address comes back to that page.
    let here = use_location().path_untracked();
    let sign_in = if here == "/" || here == "/account" { "/signin".to_owned() } else { format!("/signin?next={here}") };
    view! {
        <section class="hero">
            <h1>"Your health records, with your keys."</h1>
            <p class="lead">
                "Chartkey keeps your records encrypted with keys that only your devices hold. "
                "You choose who sees what, for how long, and you can see every time someone looks."
            </p>
            <div class="actions">
                <Link href="/signup" class="button button-primary">"Create an account"</Link>
                <Link href=sign_in class="button">"Sign in with a passkey"</Link>
            </div>
            <p class="muted">
                "Lost your device? " <Link href="/restore">"Restore with your recovery phrase"</Link> "."
            </p>
        </section>
        <section class="cards">
            <article class="card">
                <h2>"Passkeys, not passwords"</h2>
                <p>"Sign in with your face, fingerprint or device PIN. Nothing to remember, nothing to phish."</p>
            </article>
            <article class="card">
                <h2>"Keys that stay with you"</h2>
                <p>"Your keys are made in this browser and unlocked by your passkey. Chartkey's server only ever stores them sealed."</p>
            </article>
            <article class="card">
                <h2>"A phrase for emergencies"</h2>
                <p>"24 words you write down once let you get back in on a new device."</p>
            </article>
        </section>
    }
}

#[component]
pub fn NotFound() -> impl IntoView {
    view! {
        <section class="panel">
            <h1>"Page not found"</h1>
            <p>"There is nothing at this address. " <Link href="/">"Go to the start page"</Link> "."</p>
        </section>
    }
}
