//! Argon2id off the main thread: the key worker (crate `kdf-worker`),
//! started for one passphrase seal or unseal and terminated after it, so
//! its 64 MiB go back and the page keeps answering clicks and repainting.
//!
//! The build (`cargo xtask`) puts the worker's files in a directory named
//! by their hash and writes its address into index.html
//! (`<meta name="chartkey-kdf-worker">`): a page always starts the worker
//! from its own build, and a page older than a deploy finds its worker
//! gone rather than a different one.

use chartkey_core::keystore::{KEY_WORKER_READY, PassphraseKey, PassphraseKeyRequest};
use js_sys::{Promise, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{MessageEvent, Worker, WorkerOptions, WorkerType};
use zeroize::Zeroizing;

use super::components::page_meta;

const NOT_STARTED: &str = "Your keys could not be unlocked here: Chartkey's key worker did not start. Reload the page and try again \
     (Chartkey may have been updated since this page was opened).";

/// Runs `request` (Argon2id) in a fresh worker and returns the key.
pub async fn derive(request: &PassphraseKeyRequest) -> Result<PassphraseKey, String> {
    let url = page_meta("chartkey-kdf-worker").ok_or(NOT_STARTED)?;
    let options = WorkerOptions::new();
    options.set_type(WorkerType::Module);
    let worker = Worker::new_with_options(&url, &options).map_err(|_| NOT_STARTED)?;
    let answer = ask(&worker, request).await;
    worker.terminate();
    answer
}

async fn ask(worker: &Worker, request: &PassphraseKeyRequest) -> Result<PassphraseKey, String> {
    // The worker says when its module is running: a message sent before
    // that would be lost.
    let ready = next_message(worker).await.map_err(|_| NOT_STARTED)?;
    if ready.as_string().as_deref() != Some(KEY_WORKER_READY) {
        return Err(NOT_STARTED.into());
    }
    let json = Zeroizing::new(serde_json::to_string(request).map_err(|e| e.to_string())?);
    let answer = {
        let sent = worker.post_message(&JsValue::from_str(&json));
        let answer = next_message(worker);
        sent.map_err(|_| NOT_STARTED)?;
        answer.await.map_err(|_| NOT_STARTED)?
    };
    if let Some(bytes) = answer.dyn_ref::<Uint8Array>() {
        let bytes = Zeroizing::new(bytes.to_vec());
        return PassphraseKey::from_slice(&bytes).map_err(|e| e.to_string());
    }
    Err(answer.as_string().unwrap_or_else(|| NOT_STARTED.into()))
}

/// The worker's next message (its `data`), or the error that stopped it.
fn next_message(worker: &Worker) -> impl std::future::Future<Output = Result<JsValue, JsValue>> {
    let message = Promise::new(&mut |resolve, reject| {
        worker.set_onmessage(Some(&resolve));
        worker.set_onmessageerror(Some(&reject));
        worker.set_onerror(Some(&reject));
    });
    async move { JsFuture::from(message).await.map(|event| event.unchecked_into::<MessageEvent>().data()) }
}
