//! Who is signed in, and the keys, held in memory only.
//!
//! Keys live in a signal for as long as the tab is open and unlocked; they
//! are never written to localStorage, IndexedDB or cookies. Locking drops
//! them (the secret types zeroize on drop). A reload starts locked: the
//! server session says who you are, the passkey unlocks the keys again.

use std::sync::Arc;

use crate::api::{AccountInfo, LoginResult};
use chartkey_core::directory::DirectoryEntry;
use chartkey_core::keystore::{Argon2Params, PassphraseKeyRequest, SealedKeystore};
use chartkey_core::{AccountKeys, AccountSecret};
use leptos::prelude::*;

use super::kdf;
use super::webauthn::{self, Created, Prf, PrfOutput};
use crate::api;

/// The unlocked keys of the signed-in account.
pub struct Keyring {
    pub secret: AccountSecret,
    pub keys: AccountKeys,
}

#[derive(Clone, Copy)]
pub struct Session {
    /// False until the first `me` call has answered.
    pub checked: RwSignal<bool>,
    pub account: RwSignal<Option<AccountInfo>>,
    pub keyring: RwSignal<Option<Arc<Keyring>>>,
}

impl Session {
    pub fn new() -> Self {
        Self { checked: RwSignal::new(false), account: RwSignal::new(None), keyring: RwSignal::new(None) }
    }

    /// The signed-in account's role, read untracked: pages choose their body
    /// by it, and re-render through the session gate, which tracks the
    /// account.
    pub fn role(&self) -> Option<chartkey_core::role::Role> {
        self.account.with_untracked(|a| a.as_ref().map(|a| a.role))
    }

    pub fn is_unlocked(&self) -> bool {
        self.keyring.with(Option::is_some)
    }

    /// Asks the server who we are (after a load or reload).
    pub async fn refresh(self) {
        let account = api::me().await.ok();
        if account.as_ref().map(|a| &a.account_id) != self.account.get_untracked().as_ref().map(|a| &a.account_id) {
            self.keyring.set(None);
        }
        self.account.set(account);
        self.checked.set(true);
    }

    /// Forgets the keys; the server session stays, so unlocking needs only
    /// the passkey.
    pub fn lock(self) {
        self.keyring.set(None);
    }

    /// Ends the server session, then reloads the app at the start page: the
    /// reload wipes everything this tab held in memory, keys included.
    pub async fn sign_out(self) {
        let _ = api::logout().await;
        if let Some(window) = web_sys::window() {
            let _ = window.location().replace("/");
        }
    }

    /// Installs keys after checking they are this account's: the derived
    /// address and encryption key must match the signed directory entry.
    pub fn unlock(self, account: AccountInfo, secret: AccountSecret) -> Result<(), String> {
        let keys = secret.derive();
        check_keys_match(&keys, &account.directory)?;
        self.account.set(Some(account));
        self.keyring.set(Some(Arc::new(Keyring { secret, keys })));
        Ok(())
    }
}

/// The keys unlocked by a passkey belong to the account the server
/// claims: checked against the entry the account itself signed.
pub fn check_keys_match(keys: &AccountKeys, entry: &DirectoryEntry) -> Result<(), String> {
    let verified = entry.verify().map_err(|e| e.to_string())?;
    if verified.address != keys.address() || verified.encryption_key != keys.encryption_public() {
        return Err("These keys do not belong to this account. Sign in with your own passkey.".into());
    }
    Ok(())
}

/// What a sign-in produced: either the keys, or a request for the
/// passphrase that protects this passkey's key store.
pub enum SignInOutcome {
    Unlocked,
    NeedsPassphrase { account: Box<AccountInfo>, sealed: SealedKeystore },
}

/// Runs a discoverable passkey sign-in and unseals the keys with the PRF.
pub async fn sign_in_with_passkey(session: Session) -> Result<SignInOutcome, String> {
    let start = api::login_start().await.map_err(|e| e.to_string())?;
    let asserted = webauthn::assert(&start.options).await?;
    let LoginResult { account, sealed_keystore, .. } =
        api::login_finish(api::LoginFinishBody { ceremony_id: start.ceremony_id, credential: asserted.credential })
            .await
            .map_err(|e| e.to_string())?;
    let sealed = sealed_keystore;
    session.account.set(Some(account.clone()));
    session.checked.set(true);
    if sealed.needs_passphrase() {
        return Ok(SignInOutcome::NeedsPassphrase { account: Box::new(account), sealed });
    }
    let prf = asserted.prf.ok_or(
        "Your passkey did not provide the key that protects your account this time. Try again with the same passkey.",
    )?;
    let secret = sealed.unseal_with_prf(prf.as_ref()).map_err(|e| e.to_string())?;
    session.unlock(account, secret)?;
    Ok(SignInOutcome::Unlocked)
}

/// Unseals with a passphrase (Argon2id, in the key worker).
pub async fn unlock_with_passphrase(
    session: Session,
    account: AccountInfo,
    sealed: &SealedKeystore,
    passphrase: &str,
) -> Result<(), String> {
    let request = sealed.passphrase_key_request(passphrase).map_err(|e| e.to_string())?;
    let key = kdf::derive(&request).await?;
    let secret = sealed.unseal_with_passphrase_key(&key).map_err(|e| e.to_string())?;
    session.unlock(account, secret)
}

/// How a new passkey will protect the secret.
pub enum Protection {
    Sealed {
        sealed_keystore: SealedKeystore,
        uses_passphrase: bool,
    },
    /// The passkey has no PRF: ask the user for a passphrase.
    NeedsPassphrase,
}

/// A passkey just created in the browser, waiting for the server.
#[derive(Clone)]
pub struct PendingPasskey {
    pub ceremony_id: String,
    pub credential: api::WebauthnJson,
    /// base64url, as the server names it.
    pub credential_id: String,
}

/// Creates a passkey from the server's options and seals `secret` under it
/// when it can; `Protection::NeedsPassphrase` means ask for a passphrase.
pub async fn create_passkey(
    secret: &AccountSecret,
    start: api::CreationStart,
    busy: RwSignal<Option<String>>,
) -> Result<(PendingPasskey, Protection), String> {
    busy.set(Some("Follow your browser's prompt to create a passkey…".into()));
    let created = webauthn::create(&start.options).await?;
    busy.set(Some("Protecting your keys with your passkey…".into()));
    let protection = protect_with_passkey(secret, &created).await?;
    let credential_id =
        base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, &created.credential_id);
    Ok((PendingPasskey { ceremony_id: start.ceremony_id, credential: created.credential, credential_id }, protection))
}

/// Seals `secret` under a new passkey's PRF (with a second prompt if the
/// authenticator only evaluates PRF on assertions).
async fn protect_with_passkey(secret: &AccountSecret, created: &Created) -> Result<Protection, String> {
    let output: PrfOutput = match &created.prf {
        Prf::Output(output) => output.clone(),
        Prf::Enabled => match webauthn::prf_of(&created.credential_id, &created.rp_id).await? {
            Some(output) => output,
            None => return Ok(Protection::NeedsPassphrase),
        },
        Prf::Unsupported => return Ok(Protection::NeedsPassphrase),
    };
    let sealed =
        SealedKeystore::seal_with_prf(secret, output.as_ref(), &mut rand_core::OsRng).map_err(|e| e.to_string())?;
    Ok(Protection::Sealed { sealed_keystore: sealed, uses_passphrase: false })
}

/// Seals `secret` under a passphrase (Argon2id, in the key worker).
pub async fn protect_with_passphrase(secret: &AccountSecret, passphrase: &str) -> Result<SealedKeystore, String> {
    let rng = &mut rand_core::OsRng;
    let request =
        PassphraseKeyRequest::for_sealing(passphrase, Argon2Params::DEFAULT, rng).map_err(|e| e.to_string())?;
    let key = kdf::derive(&request).await?;
    SealedKeystore::seal_with_passphrase_key(secret, &request, &key, rng).map_err(|e| e.to_string())
}

pub fn use_session() -> Session {
    expect_context::<Session>()
}
