//! Tests of `eip712`.

use super::*;
use crate::AccountSecret;
use ethers_core::types::transaction::eip712::{Eip712, TypedData};

fn domain() -> Domain {
    Domain::directory(31337, "0x5FbDB2315678afecb367f032d93F642f64180aa3".parse().unwrap())
}

#[test]
fn messages_travel_as_tagged_json_with_hex_bytes32() {
    let message = LedgerMessage::Grant(Grant {
        patient: Address::repeat_byte(1),
        grantee: Address::repeat_byte(2),
        scope: 0,
        categories: 0,
        records: vec![[0xab; 32]],
        write: false,
        expires_at: 9,
        nonce: U256::from(3),
    });
    let json = serde_json::to_value(&message).unwrap();
    assert_eq!(json["kind"], "grant");
    assert_eq!(json["message"]["records"][0], format!("0x{}", "ab".repeat(32)));
    assert_eq!(serde_json::from_value::<LedgerMessage>(json.clone()).unwrap(), message);
    let mut bad = json.clone();
    bad["message"]["records"][0] = "0xabcd".into();
    assert!(serde_json::from_value::<LedgerMessage>(bad).is_err(), "short bytes32");
    let mut bad = json.clone();
    bad["message"]["records"][0] = "ab".repeat(32).into();
    assert!(serde_json::from_value::<LedgerMessage>(bad).is_err(), "no 0x");
    let mut bad = json.clone();
    bad["message"]["extra"] = 1.into();
    assert!(serde_json::from_value::<LedgerMessage>(bad).is_err(), "unknown field");
    let mut bad = json;
    bad["kind"] = "mint".into();
    assert!(serde_json::from_value::<LedgerMessage>(bad).is_err(), "unknown kind");
}

#[test]
fn register_digest_matches_ethers_typed_data() {
    let keys = AccountSecret::from_bytes([3; 32]).derive();
    let message =
        Register { account: keys.address(), role: 2, encryption_key: keys.encryption_public(), nonce: U256::from(7) };
    let json = serde_json::json!({
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}
            ],
            "Register": [
                {"name": "account", "type": "address"}, {"name": "role", "type": "uint8"},
                {"name": "encryptionKey", "type": "bytes32"}, {"name": "nonce", "type": "uint256"}
            ]
        },
        "primaryType": "Register",
        "domain": {"name": "Chartkey Directory", "version": "1", "chainId": 31337,
                   "verifyingContract": "0x5FbDB2315678afecb367f032d93F642f64180aa3"},
        "message": {"account": format!("{:?}", keys.address()), "role": 2,
                    "encryptionKey": crate::value::hex_text(&keys.encryption_public()), "nonce": 7}
    });
    let typed: TypedData = serde_json::from_value(json).unwrap();
    assert_eq!(typed.encode_eip712().unwrap(), domain().digest(&message));
}

#[test]
fn issue_credential_digest_matches_ethers_typed_data() {
    let message = IssueCredential {
        authority: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8".parse().unwrap(),
        clinician: "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC".parse().unwrap(),
        license_id_hash: keccak256("MD-12345"),
        specialty: bytes32_text("psychiatry").unwrap(),
        expires_at: 1_900_000_000,
        nonce: U256::zero(),
    };
    let json = serde_json::json!({
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}
            ],
            "IssueCredential": [
                {"name": "authority", "type": "address"}, {"name": "clinician", "type": "address"},
                {"name": "licenseIdHash", "type": "bytes32"}, {"name": "specialty", "type": "bytes32"},
                {"name": "expiresAt", "type": "uint64"}, {"name": "nonce", "type": "uint256"}
            ]
        },
        "primaryType": "IssueCredential",
        "domain": {"name": "Chartkey Directory", "version": "1", "chainId": 31337,
                   "verifyingContract": "0x5FbDB2315678afecb367f032d93F642f64180aa3"},
        "message": {"authority": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
                    "clinician": "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
                    "licenseIdHash": crate::value::hex_text(&message.license_id_hash),
                    "specialty": crate::value::hex_text(&message.specialty),
                    "expiresAt": 1_900_000_000u64, "nonce": 0}
    });
    let typed: TypedData = serde_json::from_value(json).unwrap();
    assert_eq!(typed.encode_eip712().unwrap(), domain().digest(&message));
}

#[test]
fn grant_digest_with_a_record_list_matches_ethers_typed_data() {
    let message = Grant {
        patient: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8".parse().unwrap(),
        grantee: "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC".parse().unwrap(),
        scope: SCOPE_RECORDS,
        categories: 0,
        records: vec![[1; 32], [2; 32], [3; 32]],
        write: false,
        expires_at: 1_900_000_000,
        nonce: U256::from(4),
    };
    let domain = Domain::records(31337, "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512".parse().unwrap());
    let json = serde_json::json!({
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}
            ],
            "Grant": [
                {"name": "patient", "type": "address"}, {"name": "grantee", "type": "address"},
                {"name": "scope", "type": "uint8"}, {"name": "categories", "type": "uint32"},
                {"name": "records", "type": "bytes32[]"}, {"name": "write", "type": "bool"},
                {"name": "expiresAt", "type": "uint64"}, {"name": "nonce", "type": "uint256"}
            ]
        },
        "primaryType": "Grant",
        "domain": {"name": "Chartkey Records", "version": "1", "chainId": 31337,
                   "verifyingContract": "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"},
        "message": {"patient": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
                    "grantee": "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
                    "scope": 0, "categories": 0,
                    "records": [format!("0x{}", "01".repeat(32)), format!("0x{}", "02".repeat(32)), format!("0x{}", "03".repeat(32))],
                    "write": false, "expiresAt": 1_900_000_000u64, "nonce": 4}
    });
    let typed: TypedData = serde_json::from_value(json).unwrap();
    assert_eq!(typed.encode_eip712().unwrap(), domain.digest(&message));
}

/// The digest ethers' own EIP-712 implementation computes for `message`.
fn ethers_digest(domain: &Domain, primary: &str, fields: &[(&str, &str)], message: serde_json::Value) -> [u8; 32] {
    let fields: Vec<_> = fields.iter().map(|(n, t)| serde_json::json!({"name": n, "type": t})).collect();
    let json = serde_json::json!({
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}
            ],
            primary: fields
        },
        "primaryType": primary,
        "domain": {"name": domain.name, "version": domain.version, "chainId": domain.chain_id,
                   "verifyingContract": format!("{:?}", domain.verifying_contract)},
        "message": message
    });
    serde_json::from_value::<TypedData>(json).unwrap().encode_eip712().unwrap()
}

fn hex32(b: &[u8; 32]) -> String {
    crate::value::hex_text(b)
}

#[test]
fn record_messages_match_ethers_typed_data() {
    let domain = Domain::records(31337, Address::repeat_byte(0x42));
    let (a, b) = (Address::repeat_byte(1), Address::repeat_byte(2));
    let anchor =
        Anchor { author: a, patient: b, record_id: [3; 32], ciphertext_hash: [4; 32], category: 7, amends: [5; 32] };
    let expected = ethers_digest(
        &domain,
        "Anchor",
        &[
            ("author", "address"),
            ("patient", "address"),
            ("recordId", "bytes32"),
            ("ciphertextHash", "bytes32"),
            ("category", "uint8"),
            ("amends", "bytes32"),
        ],
        serde_json::json!({"author": format!("{a:?}"), "patient": format!("{b:?}"), "recordId": hex32(&[3; 32]),
            "ciphertextHash": hex32(&[4; 32]), "category": 7, "amends": hex32(&[5; 32])}),
    );
    assert_eq!(domain.digest(&anchor), expected);

    let batch = AnchorBatch { author: a, patient: b, root: [8; 32], count: 1000 };
    let expected = ethers_digest(
        &domain,
        "AnchorBatch",
        &[("author", "address"), ("patient", "address"), ("root", "bytes32"), ("count", "uint32")],
        serde_json::json!({"author": format!("{a:?}"), "patient": format!("{b:?}"), "root": hex32(&[8; 32]),
            "count": 1000}),
    );
    assert_eq!(domain.digest(&batch), expected);

    let revoke = Revoke { patient: b, grantee: a, nonce: U256::from(10) };
    let expected = ethers_digest(
        &domain,
        "Revoke",
        &[("patient", "address"), ("grantee", "address"), ("nonce", "uint256")],
        serde_json::json!({"patient": format!("{b:?}"), "grantee": format!("{a:?}"), "nonce": 10}),
    );
    assert_eq!(domain.digest(&revoke), expected);

    let access = Access { grantee: a, patient: b, record_id: [11; 32], nonce: U256::from(12) };
    let expected = ethers_digest(
        &domain,
        "Access",
        &[("grantee", "address"), ("patient", "address"), ("recordId", "bytes32"), ("nonce", "uint256")],
        serde_json::json!({"grantee": format!("{a:?}"), "patient": format!("{b:?}"), "recordId": hex32(&[11; 32]),
            "nonce": 12}),
    );
    assert_eq!(domain.digest(&access), expected);

    let directory = Domain::directory(31337, Address::repeat_byte(0x43));
    let revoke = RevokeCredential { authority: a, clinician: b, nonce: U256::from(13) };
    let expected = ethers_digest(
        &directory,
        "RevokeCredential",
        &[("authority", "address"), ("clinician", "address"), ("nonce", "uint256")],
        serde_json::json!({"authority": format!("{a:?}"), "clinician": format!("{b:?}"), "nonce": 13}),
    );
    assert_eq!(directory.digest(&revoke), expected);
}

#[test]
fn signatures_recover_to_the_signer_and_depend_on_the_domain() {
    let keys = AccountSecret::from_bytes([9; 32]).derive();
    let message =
        RevokeCredential { authority: keys.address(), clinician: Address::repeat_byte(7), nonce: U256::one() };
    let sig = Signature::try_from(domain().sign(&keys, &message).as_slice()).unwrap();
    let digest = ethers_core::types::H256(domain().digest(&message));
    assert_eq!(sig.recover(digest).unwrap(), keys.address());
    let other_chain = Domain { chain_id: 1, ..domain() };
    assert_ne!(other_chain.digest(&message), domain().digest(&message));
    let other_contract = Domain { verifying_contract: Address::repeat_byte(1), ..domain() };
    assert_ne!(other_contract.digest(&message), domain().digest(&message));
}

#[test]
fn bytes32_text_pads_and_refuses_long_text() {
    assert_eq!(&bytes32_text("ab").unwrap()[..3], b"ab\0");
    assert!(bytes32_text(&"x".repeat(32)).is_some());
    assert!(bytes32_text(&"x".repeat(33)).is_none());
}

/// The Access contract's messages: each type string, parsed the way ethers
/// reads EIP-712 types, gives the digest the struct computes (the contract
/// tests check the same digests against Solidity).
#[test]
fn access_messages_match_ethers_typed_data() {
    let domain = Domain::access(31337, Address::repeat_byte(0x44));
    let (p, c) = (Address::repeat_byte(1), Address::repeat_byte(2));
    let check = |message: &dyn Fn() -> ([u8; 32], &'static str, serde_json::Value)| {
        let (digest, type_string, values) = message();
        let (primary, rest) = type_string.split_once('(').unwrap();
        let fields: Vec<(&str, &str)> = rest
            .trim_end_matches(')')
            .split(',')
            .map(|f| {
                let (ty, name) = f.split_once(' ').unwrap();
                (name, ty)
            })
            .collect();
        assert_eq!(ethers_digest(&domain, primary, &fields, values), digest, "{primary}");
    };
    check(&|| {
        let m = Link {
            patient: p,
            link_id: [3; 32],
            content_hash: [4; 32],
            expires_at: 99,
            flags: FLAG_LONG_TERM,
            host: c,
        };
        (
            domain.digest(&m),
            Link::TYPE,
            serde_json::json!({"patient": format!("{p:?}"), "linkId": hex32(&[3; 32]),
            "contentHash": hex32(&[4; 32]), "expiresAt": 99, "flags": 1, "host": format!("{c:?}")}),
        )
    });
    check(&|| {
        let m = LinkUpdate { patient: p, link_id: [3; 32], content_hash: [0; 32], expires_at: 0, nonce: U256::from(2) };
        (
            domain.digest(&m),
            LinkUpdate::TYPE,
            serde_json::json!({"patient": format!("{p:?}"),
            "linkId": hex32(&[3; 32]), "contentHash": hex32(&[0; 32]), "expiresAt": 0, "nonce": 2}),
        )
    });
    check(&|| {
        let m = EmergencyContact { patient: p, contact: c, wait_seconds: MAX_WAIT_SECONDS, nonce: U256::one() };
        (
            domain.digest(&m),
            EmergencyContact::TYPE,
            serde_json::json!({"patient": format!("{p:?}"),
            "contact": format!("{c:?}"), "waitSeconds": MAX_WAIT_SECONDS, "nonce": 1}),
        )
    });
    check(&|| {
        let m = EmergencyAccess { contact: c, patient: p, nonce: U256::from(5) };
        (
            domain.digest(&m),
            EmergencyAccess::TYPE,
            serde_json::json!({"contact": format!("{c:?}"),
            "patient": format!("{p:?}"), "nonce": 5}),
        )
    });
    // The wire form: tagged, snake_case fields, hex bytes32, nothing unknown.
    let message = LedgerMessage::LinkRevoke(LinkRevoke { patient: p, link_id: [7; 32], nonce: U256::zero() });
    let json = serde_json::to_value(&message).unwrap();
    assert_eq!(json["kind"], "link_revoke");
    assert_eq!(json["message"]["link_id"], hex32(&[7; 32]));
    assert_eq!(serde_json::from_value::<LedgerMessage>(json.clone()).unwrap(), message);
    let mut bad = json;
    bad["message"]["flags"] = 1.into();
    assert!(serde_json::from_value::<LedgerMessage>(bad).is_err(), "unknown field");
}
