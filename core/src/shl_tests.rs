use super::*;
use crate::test_rng::Counter;
use rand_core::OsRng;

const PATIENT: &[u8] = br#"{"resourceType":"Patient","id":"p1","name":[{"text":"Ada Example"}]}"#;
/// The key bytes 0..32, as the vectors below use it.
const VECTOR_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
/// Made independently (Python's `cryptography` AESGCM, key 0..32, IV
/// a0..ab, compact JSON header): `PATIENT` as a JWE.
const VECTOR: &str = "eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIiwiY3R5IjoiYXBwbGljYXRpb24vZmhpcitqc29uIn0..oKGio6Slpqeoqaqr.nToOSDakd80BANOqdx_i5FL8OGT70iwYviIE7xuJTyOiR2XTjUwyUDq-PpNyWPecP29kckCRfh9hG3M_yQDp1ZbB2BI.aMrCkQUPhJEn64V4CctyUw";
/// The same, raw-DEFLATE compressed first (`zip: DEF`, zlib wbits -15).
const VECTOR_DEF: &str = "eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIiwiY3R5IjoiYXBwbGljYXRpb24vZmhpcitqc29uIiwiemlwIjoiREVGIn0..oKGio6Slpqeoqaqr.TU5WZ2gFLZIoK4p6KzKVbCKmETxb-49Hzdx3TDOqBwre9-tDa37zaSspVoFjP4qplypjGaNlOE_2fiwLDUYzprQ.LH6B8EgZbCZ26Z7mjHBymQ";

fn vector_key() -> LinkKey {
    LinkKey::from_text(VECTOR_KEY).unwrap()
}

fn link() -> Link {
    Link {
        url: "https://chartkey.example/api/shl/Y9xwkUdtmN9wwoJoN3ffJIhX2UGvCL1JnlPVNL3kDWM".into(),
        key: LinkKey::generate(&mut OsRng),
        expires: Some(1_767_225_600),
        flags: Flags { long_term: true, passcode: true, direct: false },
        label: Some("For Dr Rao — Mercy ER".into()),
    }
}

/// A payload's link, from its JSON as another implementation would write it.
fn link_of(json: &str) -> String {
    format!("shlink:/{}", URL_SAFE_NO_PAD.encode(json))
}

#[test]
fn a_link_round_trips_alone_and_behind_a_viewer() {
    let link = link();
    let text = link.to_link();
    assert!(text.starts_with("shlink:/"), "{text}");
    assert_eq!(Link::parse(&text).unwrap(), link);
    let viewed = link.with_viewer("https://chartkey.example/view");
    assert_eq!(viewed, format!("https://chartkey.example/view#{text}"));
    assert_eq!(Link::parse(&viewed).unwrap(), link);
    assert_eq!(Link::parse(&format!("  {viewed}\n")).unwrap(), link);

    let bare = Link { expires: None, flags: Flags::default(), label: None, ..link };
    let json = URL_SAFE_NO_PAD.decode(&bare.to_link()["shlink:/".len()..]).unwrap();
    let json: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(json.as_object().unwrap().keys().collect::<Vec<_>>(), ["key", "url"], "no empty fields");
}

#[test]
fn a_payload_as_the_ig_writes_it_is_read() {
    // The IG's example values: a decimal expiry, flags, a version.
    let text = link_of(
        r#"{"url":"https://ehr.example.org/qr/Y9xwkUdtmN9wwoJoN3ffJIhX2UGvCL1JnlPVNL3kDWM/m","key":"rxTgYlOaKJPFtcEd0qcceN8wEU4p94SqAwIWQe6uX7Q","exp":1606937291.5,"flag":"LP","label":"Back-to-school immunizations for Oliver Brown","v":1}"#,
    );
    let link = Link::parse(&text).unwrap();
    assert_eq!(link.url, "https://ehr.example.org/qr/Y9xwkUdtmN9wwoJoN3ffJIhX2UGvCL1JnlPVNL3kDWM/m");
    assert_eq!(link.key.to_text(), "rxTgYlOaKJPFtcEd0qcceN8wEU4p94SqAwIWQe6uX7Q");
    assert_eq!(link.expires, Some(1_606_937_291));
    assert_eq!(link.flags, Flags { long_term: true, passcode: true, direct: false });
    assert_eq!(link.label.as_deref(), Some("Back-to-school immunizations for Oliver Brown"));
    assert!(!link.expired_at(1_606_937_291) && link.expired_at(1_606_937_292));
}

#[test]
fn flags_are_written_in_order_and_read_strictly() {
    let all = |l, p, u| Flags { long_term: l, passcode: p, direct: u };
    assert_eq!(all(false, false, false).to_text(), None);
    assert_eq!(all(true, true, false).to_text().as_deref(), Some("LP"));
    assert_eq!(all(true, false, true).to_text().as_deref(), Some("LU"));
    assert_eq!(Flags::from_text("LU").unwrap(), all(true, false, true));
    assert_eq!(Flags::from_text("").unwrap(), all(false, false, false));
    for bad in ["PL", "LL", "X", "l", "PU", "LPU", "L P"] {
        assert!(Flags::from_text(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn malformed_links_are_refused_with_a_reason() {
    let key = "rxTgYlOaKJPFtcEd0qcceN8wEU4p94SqAwIWQe6uX7Q";
    let url = "https://ehr.example.org/qr/abc";
    let with = |fields: &str| link_of(&format!(r#"{{"url":"{url}","key":"{key}"{fields}}}"#));
    let not_links = ["", "hello", "https://viewer.example/shlink:/abc", "shlink:", "shc:/123"];
    for text in not_links {
        assert_eq!(Link::parse(text), Err(ShlError::NotALink), "{text:?}");
    }
    let cases = [
        "shlink:/!!!".to_owned(),
        "shlink:/".to_owned(),
        link_of("[]"),
        link_of(r#"{"url":"https://a.example/x"}"#),
        link_of(&format!(r#"{{"url":"{url}","key":"{}"}}"#, &key[..42])),
        link_of(&format!(r#"{{"url":"{url}","key":"{key}A"}}"#)),
        link_of(&format!(r#"{{"url":"{url}","key":"{}+"}}"#, &key[..42])),
        link_of(&format!(r#"{{"url":"http://ehr.example.org/qr","key":"{key}"}}"#)),
        link_of(&format!(r#"{{"url":"ftp://ehr.example.org/qr","key":"{key}"}}"#)),
        link_of(&format!(r#"{{"url":"https://ehr.example.org/{}","key":"{key}"}}"#, "a".repeat(120))),
        link_of(&format!(r#"{{"url":"https://ehr.example.org/a b","key":"{key}"}}"#)),
        link_of(&format!(r#"{{"url":"https://user@ehr.example.org/a","key":"{key}"}}"#)),
        link_of(&format!(r#"{{"url":"https://ehr.example.org:x/a","key":"{key}"}}"#)),
        link_of(&format!(r#"{{"url":"https:///a","key":"{key}"}}"#)),
        link_of(&format!(r#"{{"url":"http://[::1]x9/a","key":"{key}"}}"#)),
        with(&format!(r#","label":"{}""#, "x".repeat(81))),
        with(r#","label":"line\nbreak""#),
        with(r#","flag":"PU""#),
        with(r#","flag":"PL""#),
        with(r#","exp":-1"#),
        with(r#","exp":1e20"#),
        with(r#","exp":"soon""#),
        format!("shlink:/{}", "A".repeat(MAX_LINK_CHARS)),
    ];
    for text in &cases {
        let err = Link::parse(text).unwrap_err();
        assert!(matches!(err, ShlError::Malformed(_)), "{text:?}: {err:?}");
        assert!(err.to_string().contains("damaged or incomplete"));
    }
    assert_eq!(Link::parse(&with(r#","v":2"#)), Err(ShlError::UnknownVersion));
    // An 80-character label, and http to this machine, are fine.
    assert!(Link::parse(&with(&format!(r#","label":"{}""#, "é".repeat(80)))).is_ok());
    for local in ["http://127.0.0.1:8080/api/shl/x", "http://localhost/x", "http://[::1]:1/x"] {
        assert!(Link::parse(&link_of(&format!(r#"{{"url":"{local}","key":"{key}"}}"#))).is_ok(), "{local}");
    }
}

#[test]
fn the_key_is_never_shown() {
    let link = link();
    let shown = format!("{link:?}");
    assert!(!shown.contains(&link.key.to_text()), "{shown}");
    assert!(shown.contains("LinkKey(***)"));
}

#[test]
fn files_decrypt_vectors_made_by_another_implementation() {
    let key = vector_key();
    for jwe in [VECTOR, VECTOR_DEF] {
        let file = decrypt_file(&key, jwe).unwrap();
        assert_eq!(file.bytes, PATIENT);
        assert_eq!(file.content_type.as_deref(), Some(FHIR_JSON));
    }
    // And this implementation writes exactly the same JWE for the same IV.
    assert_eq!(encrypt_file(&key, FHIR_JSON, PATIENT, &mut Counter(0xa0)), VECTOR);
}

#[test]
fn files_round_trip_with_a_fresh_iv_each_time() {
    let key = LinkKey::generate(&mut OsRng);
    let big = vec![b'x'; 1 << 20];
    for plaintext in [&b""[..], PATIENT, &big] {
        let a = encrypt_file(&key, FHIR_JSON, plaintext, &mut OsRng);
        let b = encrypt_file(&key, FHIR_JSON, plaintext, &mut OsRng);
        assert_ne!(a, b, "a fresh IV");
        assert_eq!(decrypt_file(&key, &a).unwrap().bytes, plaintext);
    }
}

/// `jwe` with its part `i` (0 header … 4 tag) replaced by `value`.
fn replace_part(jwe: &str, i: usize, value: &str) -> String {
    let mut parts: Vec<&str> = jwe.split('.').collect();
    parts[i] = value;
    parts.join(".")
}

fn header(json: &str) -> String {
    URL_SAFE_NO_PAD.encode(json)
}

#[test]
fn altered_or_foreign_files_are_refused() {
    let key = vector_key();
    let parts: Vec<&str> = VECTOR.split('.').collect();
    let with_part = |i: usize, value: &str| replace_part(VECTOR, i, value);
    // Any change to what is authenticated: the key is wrong for it.
    let flipped = |part: &str| {
        let mut bytes = URL_SAFE_NO_PAD.decode(part).unwrap();
        bytes[0] ^= 1;
        URL_SAFE_NO_PAD.encode(bytes)
    };
    for altered in
        [with_part(2, &flipped(parts[2])), with_part(3, &flipped(parts[3])), with_part(4, &flipped(parts[4]))]
    {
        assert_eq!(decrypt_file(&key, &altered), Err(ShlError::WrongKey));
    }
    let reordered = with_part(0, &header(r#"{"enc":"A256GCM","alg":"dir","cty":"application/fhir+json"}"#));
    assert_eq!(decrypt_file(&key, &reordered), Err(ShlError::WrongKey), "the header is authenticated as sent");
    assert_eq!(decrypt_file(&LinkKey::from_bytes([7; 32]), VECTOR), Err(ShlError::WrongKey));

    let refused = [
        "".to_owned(),
        "a.b.c.d".to_owned(),
        format!("{VECTOR}.x"),
        with_part(1, "AAAA"),
        with_part(0, "!!"),
        with_part(0, &header("[]")),
        with_part(0, &header(r#"{"alg":"A256KW","enc":"A256GCM"}"#)),
        with_part(0, &header(r#"{"alg":"dir","enc":"A128GCM"}"#)),
        with_part(0, &header(r#"{"alg":"dir","enc":"A256GCM","crit":["exp"],"exp":1}"#)),
        with_part(0, &header(r#"{"alg":"dir","enc":"A256GCM","zip":"GZIP"}"#)),
        with_part(2, "oKGio6Slpqeo"),
        with_part(4, "aMrCkQUPhJEn64V4"),
        with_part(3, "***"),
    ];
    for jwe in &refused {
        let err = decrypt_file(&key, jwe).unwrap_err();
        assert!(matches!(err, ShlError::BadFile(_)), "{jwe:?}: {err:?}");
    }
    assert_eq!(decrypt_file(&key, &"A".repeat(MAX_JWE_CHARS + 1)), Err(ShlError::TooLarge));
}

#[test]
fn a_compressed_file_is_inflated_only_up_to_the_limit() {
    // Zeros deflate a thousandfold: one byte past the limit is refused.
    let key = LinkKey::generate(&mut OsRng);
    let bomb = miniz_oxide::deflate::compress_to_vec(&vec![0u8; MAX_FILE_BYTES + 1024], 6);
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"dir","enc":"A256GCM","zip":"DEF"}"#);
    let sealed = Aes256Gcm::new(key.as_bytes().into())
        .encrypt(Nonce::from_slice(&[1; 12]), AeadPayload { msg: &bomb, aad: header.as_bytes() })
        .unwrap();
    let (ct, tag) = sealed.split_at(sealed.len() - 16);
    let jwe = format!(
        "{header}..{}.{}.{}",
        URL_SAFE_NO_PAD.encode([1; 12]),
        URL_SAFE_NO_PAD.encode(ct),
        URL_SAFE_NO_PAD.encode(tag)
    );
    assert_eq!(decrypt_file(&key, &jwe), Err(ShlError::TooLarge));
}

#[test]
fn manifests_read_as_the_ig_writes_them() {
    let manifest: Manifest = serde_json::from_str(
        r#"{"status":"finalized","files":[
            {"contentType":"application/smart-health-card","location":"https://bucket.example/file1?sas=MFXK"},
            {"contentType":"application/fhir+json;fhirVersion=4.0.1","embedded":"eyJ..x.y.z","lastUpdated":"2025-03-09T15:29:46Z"}
        ]}"#,
    )
    .unwrap();
    assert_eq!(manifest.status, Some(ManifestStatus::Finalized));
    assert_eq!(manifest.files[0].location.as_deref(), Some("https://bucket.example/file1?sas=MFXK"));
    assert_eq!(manifest.files[1].last_updated.as_deref(), Some("2025-03-09T15:29:46Z"));
    let request = ManifestRequest { recipient: "Dr Rao".into(), passcode: None, embedded_length_max: Some(10_000) };
    assert_eq!(serde_json::to_string(&request).unwrap(), r#"{"recipient":"Dr Rao","embeddedLengthMax":10000}"#);
    let refused: PasscodeRefused = serde_json::from_str(r#"{"remainingAttempts":3}"#).unwrap();
    assert_eq!(refused.remaining_attempts, 3);
    assert_eq!(serde_json::to_string(&ManifestStatus::CanChange).unwrap(), r#""can-change""#);
    for bad in [r#"{"files":{}}"#, r#"{"status":"gone","files":[]}"#, r#"{"files":[{"embedded":"x"}]}"#] {
        assert!(serde_json::from_str::<Manifest>(bad).is_err(), "{bad}");
    }
}

#[test]
fn a_host_checks_a_file_without_its_key() {
    let key = LinkKey::generate(&mut OsRng);
    let jwe = encrypt_file(&key, FHIR_JSON, b"{}", &mut OsRng);
    assert_eq!(check_jwe(&jwe), Ok(Some(FHIR_JSON.to_owned())));
    let with = |i: usize, text: &str| replace_part(&jwe, i, text);
    for (bad, why) in [
        ("".to_owned(), "empty"),
        ("a.b.c".to_owned(), "three parts"),
        (with(1, "AAAA"), "an encrypted key"),
        (with(0, &header(r#"{"alg":"RSA-OAEP","enc":"A256GCM"}"#)), "another alg"),
        (with(0, &header(r#"{"alg":"dir","enc":"A128GCM"}"#)), "another enc"),
        (with(0, &header(r#"{"alg":"dir","enc":"A256GCM","zip":"GZ"}"#)), "unknown compression"),
        (with(0, &header(r#"{"alg":"dir","enc":"A256GCM","crit":["x"]}"#)), "crit"),
        (with(0, "not base64!"), "header not base64url"),
        (with(2, "AAAA"), "short iv"),
        (with(3, "a+b/"), "ciphertext not base64url"),
        (with(4, "AAAA"), "short tag"),
    ] {
        assert!(check_jwe(&bad).is_err(), "{why}");
    }
    assert_eq!(check_jwe(&"a".repeat(MAX_JWE_CHARS + 1)), Err(ShlError::TooLarge));
}

#[test]
fn the_manifest_id_is_secret_and_the_link_id_is_its_hash() {
    let id = ManifestId::generate(&mut Counter(1));
    let text = id.to_text();
    assert_eq!(text.len(), 43);
    assert_eq!(ManifestId::parse(&text).unwrap(), id);
    assert_eq!(id.link_id(), ethers_core::utils::keccak256(URL_SAFE_NO_PAD.decode(&text).unwrap()));
    assert_eq!(format!("{id:?}"), "ManifestId(…)");
    for bad in ["", "short", &format!("{text}A"), &text.replace(&text[..1], "*")] {
        assert!(ManifestId::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn flags_travel_as_the_contracts_bits() {
    for bits in 0..16u8 {
        match Flags::from_bits(bits) {
            Some(flags) => assert_eq!(flags.bits(), bits),
            None => assert!(bits >= 8 || bits & 6 == 6, "{bits}"),
        }
    }
    assert_eq!(Flags { long_term: true, passcode: true, direct: false }.bits(), 3);
}

#[test]
fn the_content_hash_covers_each_file_its_type_and_order() {
    let a = content_hash([(FHIR_JSON, "x.y"), (FHIR_JSON, "z")]);
    assert_ne!(a, content_hash([(FHIR_JSON, "z"), (FHIR_JSON, "x.y")]), "order");
    assert_ne!(a, content_hash([("application/smart-health-card", "x.y"), (FHIR_JSON, "z")]), "type");
    assert_ne!(a, content_hash([(FHIR_JSON, "x.y")]), "a file left out");
    assert_eq!(a, content_hash([(FHIR_JSON, "x.y"), (FHIR_JSON, "z")]));
}
