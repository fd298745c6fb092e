//! Enrolling a new passkey that seals the account secret: one flow for
//! sign-up, restore and "add a passkey". Create the passkey, seal the
//! secret under its PRF output, or, when it has none, ask for a passphrase
//! and seal under that; then hand the result to the page's `finish`.

use chartkey_core::keystore::SealedKeystore;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;

use chartkey_core::AccountSecret;
use leptos::prelude::*;

use super::components::{Busy, ErrorMessage, NewPassphrase};
use super::session::{self, PendingPasskey, Protection};
use crate::api::CreationStart;

type FinishFuture = Pin<Box<dyn Future<Output = Result<(), String>>>>;
type Finish = Rc<dyn Fn(PendingPasskey, SealedKeystore, bool) -> FinishFuture>;

#[derive(Clone, Copy)]
pub struct Enrollment {
    /// What is happening now ("Follow your browser's prompt…"), if anything.
    pub busy: RwSignal<Option<String>>,
    pub error: RwSignal<Option<String>>,
    /// The new passkey has no PRF: the page shows `NewPassphrase`.
    pub needs_passphrase: RwSignal<bool>,
    waiting: StoredValue<Option<(Arc<AccountSecret>, PendingPasskey)>, LocalStorage>,
    finish: StoredValue<Finish, LocalStorage>,
}

impl Enrollment {
    /// `finish(passkey, sealed_keystore, uses_passphrase)` sends the new
    /// passkey and its sealed key store to the server.
    pub fn new<F, Fut>(finish: F) -> Self
    where
        F: Fn(PendingPasskey, SealedKeystore, bool) -> Fut + 'static,
        Fut: Future<Output = Result<(), String>> + 'static,
    {
        let finish: Finish =
            Rc::new(move |pending, sealed, uses_passphrase| Box::pin(finish(pending, sealed, uses_passphrase)));
        Self {
            busy: RwSignal::new(None),
            error: RwSignal::new(None),
            needs_passphrase: RwSignal::new(false),
            waiting: StoredValue::new_local(None),
            finish: StoredValue::new_local(finish),
        }
    }

    pub fn is_busy(self) -> Signal<bool> {
        Signal::derive(move || self.busy.get().is_some())
    }

    /// Runs the flow; `start` asks the server for creation options.
    pub fn begin(self, secret: AccountSecret, start: impl Future<Output = Result<CreationStart, String>> + 'static) {
        let secret = Arc::new(secret);
        self.error.set(None);
        self.busy.set(Some("Contacting the server…".into()));
        self.run(async move {
            let (pending, protection) = session::create_passkey(&secret, start.await?, self.busy).await?;
            match protection {
                Protection::Sealed { sealed_keystore, uses_passphrase } => {
                    self.busy.set(Some("Saving…".into()));
                    (self.finish.get_value())(pending, sealed_keystore, uses_passphrase).await
                }
                Protection::NeedsPassphrase => {
                    self.waiting.set_value(Some((secret, pending)));
                    self.needs_passphrase.set(true);
                    Ok(())
                }
            }
        });
    }

    /// For `NewPassphrase`: seals under the chosen passphrase and finishes.
    pub fn passphrase_chosen(self) -> Callback<String> {
        Callback::new(move |passphrase: String| {
            let Some((secret, pending)) = self.waiting.get_value() else { return };
            self.error.set(None);
            self.busy.set(Some("Protecting your keys with your passphrase… this takes a few seconds.".into()));
            self.run(async move {
                let sealed = session::protect_with_passphrase(&secret, &passphrase).await?;
                (self.finish.get_value())(pending, sealed, true).await?;
                self.waiting.set_value(None);
                self.needs_passphrase.set(false);
                Ok(())
            });
        })
    }

    fn run(self, work: impl Future<Output = Result<(), String>> + 'static) {
        leptos::task::spawn_local(async move {
            let result = work.await;
            self.busy.set(None);
            if let Err(e) = result {
                self.error.set(Some(e));
            }
        });
    }
}

/// The page's form (`children`, then the `submit` button, off while the
/// enrollment is busy), replaced by the passphrase step when the new passkey
/// has no PRF; progress and errors underneath. `inline`: a one-line form.
#[component]
pub fn EnrollmentForm(
    enrollment: Enrollment,
    #[prop(into)] on_submit: Callback<leptos::ev::SubmitEvent>,
    submit: &'static str,
    #[prop(optional)] inline: bool,
    children: ChildrenFn,
) -> impl IntoView {
    let is_busy = enrollment.is_busy();
    let (form_class, button_class) =
        if inline { ("inline-form", "button") } else { ("stack", "button button-primary button-wide") };
    let form = move || {
        view! {
            <form class=form_class on:submit=move |ev| on_submit.run(ev)>
                {children()}
                <button type="submit" class=button_class disabled=move || is_busy.get()>{submit}</button>
            </form>
        }
    };
    view! {
        <Show when=move || enrollment.needs_passphrase.get() fallback=form>
            <NewPassphrase on_done=enrollment.passphrase_chosen() busy=enrollment.is_busy() />
        </Show>
        <Busy message=enrollment.busy />
        <ErrorMessage error=enrollment.error />
    }
}
