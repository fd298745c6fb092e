//! Tests of the relayer.

use alloy_primitives::LogData;

use super::worker::{bundled_call_reverted, group};
use super::*;

fn request(target: Target, byte: u8) -> (Request, u64, Reply) {
    let request = Request { function: "f", signer: Address::repeat_byte(byte), target, input: vec![byte].into() };
    (request, 100_000, oneshot::channel().0)
}

#[test]
fn calls_to_one_contract_share_a_transaction() {
    let sends = vec![
        request(Target::Records, 1),
        request(Target::Directory, 2),
        request(Target::Records, 3),
        request(Target::Records, 4),
    ];
    let groups = group(sends);
    assert_eq!(groups.len(), 2);
    let (records, directory) = (&groups[0].0, &groups[1].0);
    assert!(records.bundled && !directory.bundled, "a lone call goes as itself");
    let inputs: Vec<u8> = records.jobs.iter().map(|job| job.input[0]).collect();
    assert_eq!(inputs, [1, 3, 4], "in arrival order");
    assert!(records.gas_limit > 300_000, "the calls' gas and the bundle's own");
    assert_eq!(directory.input(), Bytes::from(vec![2]));
    let bundle = artifacts::records().abi.function("bundle").unwrap();
    assert_eq!(records.input()[..4], bundle.short_signature());

    let many: Vec<_> = (0..(MAX_BUNDLE + 1) as u32).map(|i| request(Target::Records, i as u8)).collect();
    let groups = group(many);
    assert_eq!(groups.iter().map(|(tx, _)| tx.jobs.len()).collect::<Vec<_>>(), [MAX_BUNDLE, 1]);
    let heavy: Vec<_> =
        (0..3).map(|i| (request(Target::Records, i).0, MAX_BUNDLE_GAS / 2, oneshot::channel().0)).collect();
    assert_eq!(group(heavy).len(), 2, "a bundle stays under its gas cap");
}

fn log(topics: Vec<B256>, data: Vec<u8>) -> Log {
    Log { address: Address::ZERO, data: LogData::new(topics, data.into()).unwrap() }
}

#[test]
fn a_bundles_events_are_told_apart() {
    let event = |byte| log(vec![B256::repeat_byte(byte)], vec![]);
    let revert = artifacts::records()
        .abi
        .error("RecordExists")
        .unwrap()
        .encode(&[ethers_core::abi::Token::FixedBytes(vec![7; 32])])
        .unwrap();
    let failed = log(
        vec![bundled_call_reverted(), B256::from(U256::from(1u8))],
        ethers_core::abi::encode(&[ethers_core::abi::Token::Bytes(revert)]),
    );
    let outcome =
        |logs| Outcome { hash: B256::ZERO, block_number: 3, success: true, gas_used: 1, logs, contract_address: None };
    let results = attribute(&outcome(vec![event(1), failed.clone(), event(3)]), Target::Records, true, 3);
    assert_eq!(results[0], Ok(vec![event(1)]));
    assert_eq!(results[1].as_ref().unwrap_err().code, "RecordExists");
    assert_eq!(results[2], Ok(vec![event(3)]));
    // Events that cannot be told apart go to every call that succeeded.
    let all = vec![event(1), event(2), failed, event(3)];
    let results = attribute(&outcome(all.clone()), Target::Records, true, 3);
    assert_eq!((&results[0], &results[2]), (&Ok(all.clone()), &Ok(all)));
    assert!(results[1].is_err());
    // A transaction that failed as a whole fails every call.
    let whole = Outcome { success: false, ..outcome(vec![]) };
    assert!(attribute(&whole, Target::Records, true, 2).iter().all(|r| r.as_ref().unwrap_err().code == "Reverted"));
    assert_eq!(attribute(&outcome(vec![event(9)]), Target::Records, false, 1), vec![Ok(vec![event(9)])]);
}
