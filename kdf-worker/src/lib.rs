//! The key worker: derives the key a passphrase seals or unseals the
//! account's key store with (Argon2id, 64 MiB and about a quarter of a
//! second or more), in a dedicated Web Worker so the page never freezes.
//!
//! Protocol (docs/security.md, "The key worker"): the worker posts
//! [`KEY_WORKER_READY`](chartkey_core::keystore::KEY_WORKER_READY) once its module is running; the page posts one
//! [`PassphraseKeyRequest`] as JSON; the worker answers with the 32-byte
//! key as a `Uint8Array`, or a sentence saying what was wrong. The page
//! then terminates the worker, which frees its memory.

use chartkey_core::keystore::{PassphraseKey, PassphraseKeyRequest};
use zeroize::Zeroize;

const NOT_A_REQUEST: &str = "The key worker was sent something that is not a key request.";

/// Answers one request. The request (with its passphrase) is wiped as it
/// is dropped; the caller wipes the JSON text.
pub fn answer(request_json: &str) -> Result<PassphraseKey, String> {
    let request: PassphraseKeyRequest = serde_json::from_str(request_json).map_err(|_| NOT_A_REQUEST.to_owned())?;
    request.derive().map_err(|e| e.to_string())
}

/// Answers a message: its text is wiped once read.
pub fn answer_and_wipe(mut request_json: String) -> Result<PassphraseKey, String> {
    let answer = answer(&request_json);
    request_json.zeroize();
    answer
}

#[cfg(target_arch = "wasm32")]
pub fn start() {
    use chartkey_core::keystore::KEY_WORKER_READY;
    use wasm_bindgen::JsCast;
    use wasm_bindgen::prelude::*;
    use web_sys::{DedicatedWorkerGlobalScope, MessageEvent};

    let scope: DedicatedWorkerGlobalScope = js_sys::global().unchecked_into();
    let replies = scope.clone();
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
        let reply: JsValue = match event.data().as_string().map(answer_and_wipe) {
            Some(Ok(key)) => js_sys::Uint8Array::from(&key.as_bytes()[..]).into(),
            Some(Err(sentence)) => sentence.into(),
            None => NOT_A_REQUEST.into(),
        };
        // The page is gone if this fails: nothing is waiting for the answer.
        let _ = replies.post_message(&reply);
    });
    scope.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    // The worker lives until the page terminates it.
    on_message.forget();
    let _ = scope.post_message(&KEY_WORKER_READY.into());
}

#[cfg(test)]
mod tests {
    use super::*;
    use chartkey_core::AccountSecret;
    use chartkey_core::keystore::{Argon2Params, SealedKeystore};

    #[test]
    fn answers_a_request_with_the_key_that_unseals() {
        let secret = AccountSecret::from_bytes([5; 32]);
        let passphrase = "a passphrase for the worker";
        let sealed =
            SealedKeystore::seal_with_passphrase(&secret, passphrase, Argon2Params::MINIMUM, &mut rand_core::OsRng)
                .unwrap();
        let request = serde_json::to_string(&sealed.passphrase_key_request(passphrase).unwrap()).unwrap();
        let key = answer_and_wipe(request).unwrap();
        assert_eq!(sealed.unseal_with_passphrase_key(&key).unwrap(), secret);
    }

    #[test]
    fn malformed_requests_get_a_sentence() {
        for bad in ["", "ready", "{}", "[1,2]", r#"{"kdf":"argon2id"}"#, "\u{0}"] {
            let err = answer(bad).unwrap_err();
            assert!(err.contains("not a key request"), "{bad:?}: {err}");
        }
        let weak = r#"{"kdf":"argon2id","memory_kib":8,"iterations":1,"parallelism":1,"salt":"AAAAAAAAAAAAAAAAAAAAAA","passphrase":"x"}"#;
        assert!(answer(weak).unwrap_err().contains("damaged"));
    }
}
