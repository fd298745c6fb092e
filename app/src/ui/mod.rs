//! The Leptos app (client-side rendered).

mod components;
mod idle;
mod pages;
mod session;
mod webauthn;

use leptos::prelude::*;
use leptos_router::components::{A, Route, Router, Routes};
use leptos_router::path;

use session::{Session, use_session};

#[component]
pub fn App() -> impl IntoView {
    let session = Session::new();
    provide_context(session);
    leptos::task::spawn_local(session.refresh());
    idle::watch(session);

    view! {
        <Router>
            <Header />
            <main id="main" class="container">
                <Routes fallback=|| view! { <pages::NotFound /> }>
                    <Route path=path!("/") view=pages::Home />
                    <Route path=path!("/signup") view=pages::SignUp />
                    <Route path=path!("/signin") view=pages::SignIn />
                    <Route path=path!("/restore") view=pages::Restore />
                    <Route path=path!("/account") view=pages::AccountPage />
                </Routes>
            </main>
            <footer class="footer container">
                <p>"Chartkey — your records are encrypted in this browser before they leave it."</p>
            </footer>
        </Router>
    }
}

#[component]
fn Header() -> impl IntoView {
    let session = use_session();
    let signed_in = move || session.account.with(Option::is_some);
    let lock = move |_| session.lock();
    let sign_out = move |_| {
        leptos::task::spawn_local(async move {
            session.sign_out().await;
            if let Some(w) = web_sys::window() {
                let _ = w.location().set_href("/");
            }
        })
    };
    view! {
        <a class="skip-link" href="#main">"Skip to content"</a>
        <header class="header">
            <div class="container header-row">
                <A href="/" attr:class="brand">
                    <span class="brand-mark" aria-hidden="true">"◆"</span>
                    " Chartkey"
                </A>
                <Show when=signed_in>
                    <nav class="nav" aria-label="Account">
                        <span class="who">
                            {move || session.account.get().map(|a| format!("{} · {}", a.display_name, a.role.label()))}
                        </span>
                        <A href="/account">"Account"</A>
                        <Show when=move || session.is_unlocked()>
                            <button type="button" class="button button-small" on:click=lock>"Lock"</button>
                        </Show>
                        <button type="button" class="button button-small button-quiet" on:click=sign_out.clone()>
                            "Sign out"
                        </button>
                    </nav>
                </Show>
            </div>
        </header>
    }
}
