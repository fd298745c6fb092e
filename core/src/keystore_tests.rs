//! The key store's tests: known answers, the worker halves, malformed input.

use super::*;

/// `SECRET` sealed under `passphrase` with `params`.
fn sealed_with(passphrase: &str, params: Argon2Params) -> Result<SealedKeystore, KeystoreError> {
    SealedKeystore::seal_with_passphrase(&AccountSecret::from_bytes(SECRET), passphrase, params, &mut rand_core::OsRng)
}
use crate::test_rng::Counter;

const PRF: [u8; 32] = [0x11; 32];
const SECRET: [u8; 32] = [0x5a; 32];

#[test]
fn known_answer_prf_seal() {
    let sealed = SealedKeystore::seal_with_prf(&AccountSecret::from_bytes(SECRET), &PRF, &mut Counter(0)).unwrap();
    assert_eq!(sealed.to_json(), KAT_PRF_JSON);
    let back = SealedKeystore::from_json(KAT_PRF_JSON).unwrap();
    assert_eq!(back.unseal_with_prf(&PRF).unwrap().as_bytes(), &SECRET);
}

#[test]
fn prf_seal_matches_independent_construction() {
    // Recompute the PRF blob with the primitives directly: HKDF-SHA256
    // then XChaCha20-Poly1305 with the documented associated data.
    let mut key = [0u8; 32];
    Hkdf::<Sha256>::new(Some(b"chartkey/keystore/v1"), &PRF)
        .expand(b"chartkey/keystore/prf-wrapping-key/v1", &mut key)
        .unwrap();
    let nonce: Vec<u8> = (0u8..24).collect();
    let aad = [b"chartkey-keystore".as_slice(), &[1, 1]].concat();
    let ct = XChaCha20Poly1305::new((&key).into())
        .encrypt(XNonce::from_slice(&nonce), Payload { msg: &SECRET, aad: &aad })
        .unwrap();
    let sealed = SealedKeystore::from_json(KAT_PRF_JSON).unwrap();
    assert_eq!(sealed.nonce, nonce);
    assert_eq!(sealed.ciphertext, ct);
}

const KAT_PRF_JSON: &str = r#"{"v":1,"kdf":"prf-hkdf-sha256","nonce":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYX","ciphertext":"n2ZGIQYS8iTn4UZv7bzAib9JukCwIILypmxhC3M47__hP4o0IHMnDX4TpYO27QTF"}"#;

#[test]
fn known_answer_passphrase_seal() {
    // Minimum parameters keep the test quick; the code path is the same.
    let sealed = SealedKeystore::seal_with_passphrase(
        &AccountSecret::from_bytes(SECRET),
        "correct horse battery staple",
        Argon2Params::MINIMUM,
        &mut Counter(7),
    )
    .unwrap();
    assert_eq!(sealed.to_json(), KAT_PASSPHRASE_JSON);
    let back = SealedKeystore::from_json(KAT_PASSPHRASE_JSON).unwrap();
    assert_eq!(back.unseal_with_passphrase("correct horse battery staple").unwrap().as_bytes(), &SECRET);
}

const KAT_PASSPHRASE_JSON: &str = r#"{"v":1,"kdf":"argon2id","memory_kib":19456,"iterations":2,"parallelism":1,"salt":"BwgJCgsMDQ4PEBESExQVFg","nonce":"FxgZGhscHR4fICEiIyQlJicoKSorLC0u","ciphertext":"3yJPLNnNzjqT__9mXX3htFpw9Op11DLqiAlBBBS6gXKtQhp_pawUW8NzWV63xXLb"}"#;

#[test]
fn the_worker_halves_give_what_the_whole_gives() {
    // Sealing: request (salt) in the page, key in the worker, seal back in the page.
    let mut rng = Counter(7);
    let request =
        PassphraseKeyRequest::for_sealing("correct horse battery staple", Argon2Params::MINIMUM, &mut rng).unwrap();
    let wire = serde_json::to_string(&request).unwrap();
    let key = serde_json::from_str::<PassphraseKeyRequest>(&wire).unwrap().derive().unwrap();
    let key = PassphraseKey::from_slice(key.as_bytes()).unwrap();
    let sealed =
        SealedKeystore::seal_with_passphrase_key(&AccountSecret::from_bytes(SECRET), &request, &key, &mut rng).unwrap();
    assert_eq!(sealed.to_json(), KAT_PASSPHRASE_JSON);
    // Unsealing.
    let request = sealed.passphrase_key_request("correct horse battery staple").unwrap();
    let wire = serde_json::to_string(&request).unwrap();
    let key = serde_json::from_str::<PassphraseKeyRequest>(&wire).unwrap().derive().unwrap();
    assert_eq!(sealed.unseal_with_passphrase_key(&key).unwrap().as_bytes(), &SECRET);
    let wrong = sealed.passphrase_key_request("not the passphrase at all").unwrap().derive().unwrap();
    assert_eq!(sealed.unseal_with_passphrase_key(&wrong).unwrap_err(), KeystoreError::WrongPassphrase);
    assert_eq!(format!("{key:?}"), "PassphraseKey(…)");
}

#[test]
fn malformed_key_requests_are_refused() {
    let salt = "AAAAAAAAAAAAAAAAAAAAAA";
    for bad in [
        "",
        "{}",
        r#"{"kdf":"argon2id","memory_kib":19456,"iterations":2,"parallelism":1,"salt":"AAAAAAAAAAAAAAAAAAAAAA"}"#,
        r#"{"kdf":"rot13","passphrase":"x"}"#,
        r#"{"kdf":"argon2id","memory_kib":"lots","iterations":2,"parallelism":1,"salt":"AA","passphrase":"x"}"#,
    ] {
        assert!(serde_json::from_str::<PassphraseKeyRequest>(bad).is_err(), "parsed {bad:?}");
    }
    for (bad, want) in [
        (r#"{"kdf":"prf-hkdf-sha256","passphrase":"x"}"#.to_owned(), KeystoreError::NeedsPasskey),
        (
            format!(
                r#"{{"kdf":"argon2id","memory_kib":8,"iterations":2,"parallelism":1,"salt":"{salt}","passphrase":"x"}}"#
            ),
            KeystoreError::Malformed("unacceptable Argon2id parameters"),
        ),
        (
            format!(
                r#"{{"kdf":"argon2id","memory_kib":19456,"iterations":2,"parallelism":1,"salt":"{}","passphrase":"x"}}"#,
                &salt[..4]
            ),
            KeystoreError::Malformed("bad salt length"),
        ),
    ] {
        let request: PassphraseKeyRequest = serde_json::from_str(&bad).unwrap();
        assert_eq!(request.derive().unwrap_err(), want, "{bad}");
    }
    assert!(PassphraseKey::from_slice(&[0; 31]).is_err());
    assert!(PassphraseKey::from_slice(&[0; 33]).is_err());
    // A PRF blob has no passphrase half.
    let sealed =
        SealedKeystore::seal_with_prf(&AccountSecret::from_bytes(SECRET), &PRF, &mut rand_core::OsRng).unwrap();
    assert_eq!(sealed.passphrase_key_request("x").err(), Some(KeystoreError::NeedsPasskey));
    let key = PassphraseKey::from_slice(&[0; 32]).unwrap();
    assert_eq!(sealed.unseal_with_passphrase_key(&key).unwrap_err(), KeystoreError::NeedsPasskey);
}

#[test]
fn default_argon2_parameters_round_trip() {
    let secret = AccountSecret::from_bytes([9; 32]);
    let sealed = SealedKeystore::seal_with_passphrase(
        &secret,
        "a long enough passphrase",
        Argon2Params::DEFAULT,
        &mut rand_core::OsRng,
    )
    .unwrap();
    assert_eq!(sealed.unseal_with_passphrase("a long enough passphrase").unwrap(), secret);
}

#[test]
fn wrong_prf_output_fails_clearly() {
    let sealed =
        SealedKeystore::seal_with_prf(&AccountSecret::from_bytes(SECRET), &PRF, &mut rand_core::OsRng).unwrap();
    let err = sealed.unseal_with_prf(&[0x12; 32]).unwrap_err();
    assert_eq!(err, KeystoreError::WrongPasskey);
    assert!(err.to_string().contains("could not unlock your keys"));
    assert_eq!(sealed.unseal_with_prf(&[0x11; 16]).unwrap_err(), KeystoreError::BadPrfOutput(16));
}

#[test]
fn wrong_passphrase_fails_clearly() {
    let sealed = sealed_with("correct horse battery staple", Argon2Params::MINIMUM).unwrap();
    let err = sealed.unseal_with_passphrase("correct horse battery stapler").unwrap_err();
    assert_eq!(err, KeystoreError::WrongPassphrase);
    assert_eq!(err.to_string(), "That passphrase is not right. Check it and try again.");
    assert_eq!(sealed.unseal_with_prf(&PRF).unwrap_err(), KeystoreError::NeedsPassphrase);
}

#[test]
fn short_passphrase_refused() {
    let err = sealed_with("short", Argon2Params::MINIMUM).unwrap_err();
    assert_eq!(err, KeystoreError::PassphraseTooShort);
}

#[test]
fn tampering_is_detected() {
    let sealed =
        SealedKeystore::seal_with_prf(&AccountSecret::from_bytes(SECRET), &PRF, &mut rand_core::OsRng).unwrap();
    for i in 0..sealed.ciphertext.len() {
        let mut bad = sealed.clone();
        bad.ciphertext[i] ^= 1;
        assert_eq!(bad.unseal_with_prf(&PRF).unwrap_err(), KeystoreError::WrongPasskey);
    }
    let mut bad = sealed.clone();
    bad.nonce[0] ^= 1;
    assert_eq!(bad.unseal_with_prf(&PRF).unwrap_err(), KeystoreError::WrongPasskey);
}

#[test]
fn weakened_parameters_are_refused() {
    let mut sealed = sealed_with("correct horse battery staple", Argon2Params::MINIMUM).unwrap();
    if let KeystoreKdf::Argon2id { params, .. } = &mut sealed.kdf {
        params.memory_kib = 8;
    }
    assert!(matches!(sealed.unseal_with_passphrase("correct horse battery staple"), Err(KeystoreError::Malformed(_))));
}

#[test]
fn header_is_authenticated_as_associated_data() {
    // Opened with the right key, a blob whose header was altered (to other
    // acceptable parameters) still fails: the header is bound as AAD.
    let sealed = sealed_with("correct horse battery staple", Argon2Params::MINIMUM).unwrap();
    let key = passphrase_wrapping_key("correct horse battery staple", &sealed.kdf).unwrap();
    assert!(sealed.open(&key).is_some());
    let mut altered = sealed.clone();
    if let KeystoreKdf::Argon2id { params, .. } = &mut altered.kdf {
        params.iterations += 1;
    }
    assert!(altered.open(&key).is_none());
    let mut altered = sealed.clone();
    if let KeystoreKdf::Argon2id { salt, .. } = &mut altered.kdf {
        salt[0] ^= 1;
    }
    assert!(altered.open(&key).is_none());
}

#[test]
fn sealing_refuses_unacceptable_parameters() {
    let weak = Argon2Params { memory_kib: 1024, iterations: 1, parallelism: 1 };
    let err = sealed_with("a long enough passphrase", weak);
    assert!(matches!(err, Err(KeystoreError::Malformed(_))));
}

#[test]
fn malformed_blobs_are_refused() {
    for bad in [
        "",
        "null",
        "{}",
        r#"{"v":1,"kdf":"prf-hkdf-sha256","nonce":"AA","ciphertext":"AA"}"#,
        r#"{"v":2,"kdf":"prf-hkdf-sha256","nonce":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","ciphertext":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}"#,
        r#"{"v":1,"kdf":"rot13","nonce":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","ciphertext":"AA"}"#,
        r#"{"v":1,"kdf":"prf-hkdf-sha256","nonce":"!!","ciphertext":"AA"}"#,
    ] {
        assert!(matches!(SealedKeystore::from_json(bad), Err(KeystoreError::Malformed(_))), "accepted {bad:?}");
    }
}
