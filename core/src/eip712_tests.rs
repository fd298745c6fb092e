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

/// The digest ethers' own EIP-712 implementation computes for `message`,
/// from its type string and its wire JSON (field names in camelCase).
fn ethers_digest<M: TypedMessage + Serialize>(domain: &Domain, message: &M) -> [u8; 32] {
    let (primary, rest) = M::TYPE.split_once('(').unwrap();
    let fields: Vec<_> = rest
        .trim_end_matches(')')
        .split(',')
        .map(|f| {
            let (ty, name) = f.split_once(' ').unwrap();
            serde_json::json!({"name": name, "type": ty})
        })
        .collect();
    let serde_json::Value::Object(wire) = serde_json::to_value(message).unwrap() else { panic!("{primary}") };
    let values: serde_json::Map<_, _> = wire.into_iter().map(|(name, value)| (camel(&name), value)).collect();
    assert_eq!(values.len(), fields.len(), "{primary}: the struct and its type string list different fields");
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
        "message": values
    });
    serde_json::from_value::<TypedData>(json).unwrap().encode_eip712().unwrap()
}

/// Our digest of `message` is the one ethers computes.
fn agrees<M: TypedMessage + Serialize + std::fmt::Debug>(domain: &Domain, message: &M) {
    assert_eq!(domain.digest(message), ethers_digest(domain, message), "{message:?}");
}

fn camel(snake: &str) -> String {
    let mut words = snake.split('_');
    let first = words.next().unwrap_or_default().to_string();
    words.fold(first, |mut out, word| {
        let mut chars = word.chars();
        out.extend(chars.next().map(|c| c.to_ascii_uppercase()));
        out.push_str(chars.as_str());
        out
    })
}

/// Every message the contracts take: its type string, parsed the way ethers
/// reads EIP-712 types, gives the digest the struct computes (the contract
/// tests check the same digests against Solidity).
#[test]
fn every_message_matches_ethers_typed_data() {
    let all = examples();
    assert_eq!(all.len(), 16);
    for message in &all {
        crate::with_ledger_message!(message, m => agrees(&domain(), m));
    }
}

/// The wire form of an Access-contract message: tagged, snake_case fields,
/// hex bytes32, nothing unknown.
#[test]
fn access_messages_travel_as_tagged_json() {
    let message = LedgerMessage::LinkRevoke(LinkRevoke {
        patient: Address::repeat_byte(1),
        link_id: [7; 32],
        nonce: U256::zero(),
    });
    let json = serde_json::to_value(&message).unwrap();
    assert_eq!(json["kind"], "link_revoke");
    assert_eq!(json["message"]["link_id"], crate::value::hex_text(&[7; 32]));
    assert_eq!(serde_json::from_value::<LedgerMessage>(json.clone()).unwrap(), message);
    let mut bad = json;
    bad["message"]["flags"] = 1.into();
    assert!(serde_json::from_value::<LedgerMessage>(bad).is_err(), "unknown field");
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
