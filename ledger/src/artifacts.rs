//! The compiled contracts (contracts/artifacts/*.json, produced by
//! `cargo xtask contracts`; the test command checks they match the sources).

use std::sync::OnceLock;

use chartkey_core::value::{FieldValue, Hash32, hex_text};
use ethers_core::abi::{Abi, Token};

pub struct Artifact {
    pub name: String,
    pub abi: Abi,
    /// Creation bytecode (constructor arguments are appended).
    pub bytecode: Vec<u8>,
}

impl Artifact {
    fn parse(json: &str) -> Self {
        let value: serde_json::Value = serde_json::from_str(json).expect("committed artifact is JSON");
        let hex_code = value["bytecode"].as_str().expect("artifact has bytecode");
        Self {
            name: value["contractName"].as_str().expect("artifact has a name").to_owned(),
            abi: serde_json::from_value(value["abi"].clone()).expect("artifact ABI parses"),
            bytecode: hex::decode(hex_code.trim_start_matches("0x")).expect("bytecode is hex"),
        }
    }

    /// A revert's return data in words: `ErrorName(arg, …)` for the
    /// contract's custom errors, the message of `Error(string)`, or the code
    /// of `Panic(uint256)`.
    pub fn describe_revert(&self, data: &[u8]) -> String {
        if data.len() < 4 {
            return "reverted without a reason".into();
        }
        let selector = &data[..4];
        if let Some(message) = revert_message(data) {
            return format!("Error({message})");
        }
        if selector == [0x4e, 0x48, 0x7b, 0x71] {
            return format!("Panic({})", hex_text(&data[4..]));
        }
        for error in self.abi.errors() {
            if &error.signature().as_bytes()[..4] == selector {
                let args = error.decode(&data[4..]).unwrap_or_default();
                return format!("{}({})", error.name, args.iter().map(revert_arg).collect::<Vec<_>>().join(", "));
            }
        }
        format!("unknown error {}", hex_text(selector))
    }
}

/// The message of a revert with `Error(string)` (Solidity's `require` and `revert("…")`).
pub fn revert_message(data: &[u8]) -> Option<String> {
    if data.len() < 4 || data[..4] != [0x08, 0xc3, 0x79, 0xa0] {
        return None;
    }
    let tokens = ethers_core::abi::decode(&[ethers_core::abi::ParamType::String], &data[4..]).ok()?;
    tokens.into_iter().next()?.into_string()
}

/// A revert argument as `describe_revert` writes it: as [`token_text`],
/// but addresses in lowercase (as the contract's tests expect them).
pub(crate) fn revert_arg(token: &Token) -> String {
    match token {
        Token::Address(a) => format!("{a:?}"),
        other => token_text(other),
    }
}

/// ABI-encodes a call to `function` of `abi` (the first overload of that
/// name): for the signed messages' calls, whose arguments come from core's
/// EIP-712 fields, and for tests.
pub fn encode_call(abi: &Abi, function: &str, args: &[Token]) -> Result<Vec<u8>, ethers_core::abi::Error> {
    abi.function(function)?.encode_input(args)
}

/// A log of Chartkey's contracts as (event name, [(parameter, value)]),
/// from whichever contract's ABI knows its first topic.
pub fn decode_event(log: &alloy_primitives::Log) -> Option<(String, Vec<(String, Token)>)> {
    let raw = ethers_core::abi::RawLog {
        topics: log.data.topics().iter().map(|t| ethers_core::types::H256::from(t.0)).collect(),
        data: log.data.data.to_vec(),
    };
    let first = *raw.topics.first()?;
    for artifact in [directory(), records(), access()] {
        if let Some(event) = artifact.abi.events().find(|e| e.signature() == first) {
            let parsed = event.parse_log(raw).ok()?;
            return Some((event.name.clone(), parsed.params.into_iter().map(|p| (p.name, p.value)).collect()));
        }
    }
    None
}

/// A log of Chartkey's contracts as its event name and each field as a
/// typed value (the ledger page's explorer).
pub fn describe_event(log: &alloy_primitives::Log) -> Option<(String, Vec<(String, FieldValue)>)> {
    let (name, params) = decode_event(log)?;
    Some((name, params.iter().map(|(field, value)| (field.clone(), token_value(value))).collect()))
}

/// An ABI value as core's wire value.
pub fn token_value(token: &Token) -> FieldValue {
    match token {
        Token::Address(a) => FieldValue::Address((*a).into()),
        Token::FixedBytes(b) if b.len() == 32 => {
            FieldValue::Bytes32(Hash32(b.as_slice().try_into().expect("32 bytes")))
        }
        Token::FixedBytes(b) | Token::Bytes(b) => FieldValue::Bytes(b.clone()),
        Token::Uint(n) | Token::Int(n) => FieldValue::Number(n.to_string()),
        Token::Bool(b) => FieldValue::Bool(*b),
        Token::Array(items) | Token::FixedArray(items) | Token::Tuple(items) => {
            FieldValue::List(items.iter().map(token_value).collect())
        }
        Token::String(s) => FieldValue::Text(s.clone()),
    }
}

/// A value as people read it: checksummed addresses, 0x hex bytes, decimal numbers.
pub fn token_text(token: &Token) -> String {
    token_value(token).to_string()
}

pub fn directory() -> &'static Artifact {
    static ARTIFACT: OnceLock<Artifact> = OnceLock::new();
    ARTIFACT.get_or_init(|| Artifact::parse(include_str!("../../contracts/artifacts/ChartkeyDirectory.json")))
}

pub fn records() -> &'static Artifact {
    static ARTIFACT: OnceLock<Artifact> = OnceLock::new();
    ARTIFACT.get_or_init(|| Artifact::parse(include_str!("../../contracts/artifacts/ChartkeyRecords.json")))
}

/// Links and emergency contacts (deployed after genesis: node::upgrade).
pub fn access() -> &'static Artifact {
    static ARTIFACT: OnceLock<Artifact> = OnceLock::new();
    ARTIFACT.get_or_init(|| Artifact::parse(include_str!("../../contracts/artifacts/ChartkeyAccess.json")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_artifact_loads() {
        let a = directory();
        assert_eq!(a.name, "ChartkeyDirectory");
        assert!(a.abi.function("register").is_ok());
        assert!(!a.bytecode.is_empty());
        assert_eq!(records().name, "ChartkeyRecords");
        assert!(records().abi.function("logAccess").is_ok());
    }

    /// Block 0 of every existing chain deployed these exact bytes, and the
    /// upgrade block `access-v1` the Access contract's: changing a source (or
    /// the compiler settings) would make every chain made before fail its
    /// check at that block. Add a contract as a new upgrade instead
    /// (node/upgrade.rs).
    #[test]
    fn the_genesis_contracts_are_frozen() {
        let pinned = [
            (directory(), "0x1516fd002cf4e4e5cb7b8e482ffb4c07310c07fa38b8bccc1a3622eda2d712a7"),
            (records(), "0xab6c800f28e930a100c4153de3d1ff6ea12197dfe960e811db645b2a1970d52b"),
            (access(), "0xa480414b63a7a01099e4738bd9a23baa5f7a94385ca4d91f90f8e2d3da1a62b7"),
        ];
        for (artifact, hash) in pinned {
            let actual = hex_text(&alloy_primitives::keccak256(&artifact.bytecode).0);
            assert_eq!(actual, hash, "{} is deployed on existing chains: its bytecode must not change", artifact.name);
        }
    }

    #[test]
    fn reverts_are_described() {
        let a = directory();
        let error = a.abi.error("InvalidRole").unwrap();
        let data = error.encode(&[Token::Uint(9.into())]).unwrap();
        assert_eq!(a.describe_revert(&data), "InvalidRole(9)");
        let mut message = vec![0x08, 0xc3, 0x79, 0xa0];
        message.extend(ethers_core::abi::encode(&[Token::String("nope".into())]));
        assert_eq!(a.describe_revert(&message), "Error(nope)");
        assert_eq!(a.describe_revert(&[]), "reverted without a reason");
        assert_eq!(a.describe_revert(&[1, 2, 3, 4]), "unknown error 0x01020304");
    }
}
