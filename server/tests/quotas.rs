//! Per-account allowances (security review finding 7): what one account
//! may store, have relayed (the relayer pays for each ledger message) and
//! hold open, each refused with a clear 413 or 429 that changes nothing.

mod common;

use std::time::Duration;

use chartkey_core::role::Role;
use common::records::*;
use common::*;
use serde_json::json;

#[tokio::test]
async fn storage_beyond_the_quota_is_refused_and_nothing_is_kept() {
    let server = TestServer::start_with(|c| c.storage_quota_bytes = 40_000).await;
    let patient = sign_up(&server, "Quota Patient", Role::Patient).await;
    let small = seal_all(&patient.keys, &floyd(2), None);
    assert!(small.pack.len() < 20_000, "{}", small.pack.len());
    assert_eq!(upload_pack(&patient.client, small.pack.clone()).await.0, 200);

    let (files, uploads) = (server.stored_blobs().await, server.query_one("SELECT count(*) FROM blob_uploads").await);
    let big = seal_all(&patient.keys, &floyd(40), None);
    assert!(big.pack.len() > 40_000, "{}", big.pack.len());
    let (status, body) = upload_pack(&patient.client, big.pack.clone()).await;
    assert_eq!(status, 413, "{body:?}");
    assert!(body.to_string().contains("Your storage is full"), "{body:?}");
    let one = &big.envelopes[5];
    let name = hex::encode(chartkey_core::envelope::ciphertext_hash(one));
    let mut over = one.clone();
    over.resize(30_000, 0);
    let (status, body) = put_blob(&patient.client, &name, over).await;
    assert_eq!(status, 413, "{body:?}");
    assert_eq!(
        (server.stored_blobs().await, server.query_one("SELECT count(*) FROM blob_uploads").await),
        (files, uploads)
    );

    // An upload that does not say its size cannot be counted: refused.
    let chunks = futures_util::stream::iter(vec![Ok::<_, std::io::Error>(bytes::Bytes::from(one.clone()))]);
    let unsized_put = patient
        .client
        .http
        .put(format!("{}/api/blobs/{name}", server.base))
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(unsized_put.status(), 411);

    // Another account's allowance is its own.
    let other = sign_up(&server, "Other Quota", Role::Patient).await;
    assert_eq!(upload_pack(&other.client, small.pack.clone()).await.0, 200);
    server.stop().await;
}

#[tokio::test]
async fn relays_beyond_the_hourly_allowance_are_refused_before_the_ledger() {
    let server = TestServer::start_with(|c| c.relays_per_hour = 2).await;
    let patient = sign_up(&server, "Busy Patient", Role::Patient).await;
    let domain = ledger_domain(&patient.client).await;
    for _ in 0..2 {
        let sealed = seal_all(&patient.keys, &floyd(1), None);
        add(&patient, &domain, &sealed).await.unwrap();
    }
    let chain = common::chain::Chain::of(&server, &patient.client).await;
    // What the relayer has sent: nothing more may reach the ledger (its
    // head may move on an external chain other tests also write to).
    let relayer = common::wallet(&server.data_dir, "relayer.key").address();
    let sent = || chain.rpc.result("eth_getTransactionCount", json!([relayer, "latest"]));
    let before = sent().await;
    let third = seal_all(&patient.keys, &floyd(1), None);
    let refused = add(&patient, &domain, &third).await;
    match &refused {
        Err(ApiError::OverQuota(message)) => {
            assert!(message.contains("2 ledger messages for this hour"), "{refused:?}")
        }
        other => panic!("expected OverQuota: {other:?}"),
    }
    assert_eq!(sent().await, before, "nothing reached the ledger");
    assert_eq!(server.query_one("SELECT count(*) FROM records").await, "2");
    // A request refused for another reason does not spend the allowance:
    // another patient's malformed add, then two good ones.
    let other = sign_up(&server, "Careful Patient", Role::Patient).await;
    // Raw: a signature of one byte is no `Signature`.
    let bad = other.client.call("records/add", json!({ "body": { "records": [], "signature": "0x12" } })).await;
    assert_eq!(bad.status, 400);
    for _ in 0..2 {
        let sealed = seal_all(&other.keys, &floyd(1), None);
        add(&other, &domain, &sealed).await.unwrap();
    }
    server.stop().await;
}

#[tokio::test]
async fn an_account_holds_a_bounded_number_of_notice_streams() {
    let server = TestServer::start_with(|c| c.streams_per_account = 2).await;
    let patient = sign_up(&server, "Many Tabs", Role::Patient).await;
    let open = || patient.client.http.get(format!("{}/api/notices/stream", patient.client.base)).send();
    let first = open().await.unwrap();
    let second = open().await.unwrap();
    assert_eq!((first.status().as_u16(), second.status().as_u16()), (200, 200));
    let third = open().await.unwrap();
    assert_eq!(third.status(), 429);
    assert!(third.text().await.unwrap().contains("already has 2 pages"));
    // Closing a page gives its place back.
    drop(first);
    let mut reopened = None;
    for _ in 0..50 {
        let answer = open().await.unwrap();
        if answer.status() == 200 {
            reopened = Some(answer);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(reopened.is_some(), "a closed stream's place comes back");
    // Another account is not affected.
    let other = sign_up(&server, "One Tab", Role::Patient).await;
    let theirs = other.client.http.get(format!("{}/api/notices/stream", other.client.base)).send().await.unwrap();
    assert_eq!(theirs.status(), 200);
    drop((second, reopened, theirs));
    server.stop().await;
}

/// A field of /proc/PID/status in bytes (VmRSS, VmHWM).
fn memory(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap_or_else(|| panic!("{field} in {status}"));
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// A pack of just under 256 MiB, the most one upload may carry: 127
/// frames of 1 MiB (gathered and written together) and 8 of 16 MiB
/// (streamed one by one), each distinct.
fn large_pack(seed: u8) -> Vec<u8> {
    const MIB: usize = 1024 * 1024;
    let mut pack = Vec::with_capacity(256 * MIB);
    let sizes = std::iter::repeat_n(MIB, 127).chain(std::iter::repeat_n(16 * MIB, 8));
    for (i, size) in sizes.enumerate() {
        let mut frame = vec![seed; size];
        frame[..8].copy_from_slice(&(i as u64).to_be_bytes());
        chartkey_core::records::pack_frame(&mut pack, &chartkey_core::envelope::ciphertext_hash(&frame), &frame);
    }
    assert!(pack.len() <= 256 * MIB);
    pack
}

/// Finding 7: a pack was read whole into memory before it was parsed (up
/// to 256 MiB per request). Two such packs at once now raise the server's
/// resident memory by at most 64 MiB (its peak, VmHWM, reset before).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_largest_packs_at_once_stay_within_64_mib() {
    let tmp = tempfile::tempdir().unwrap();
    let server = ServerProcess::spawn(&tmp.path().join("data"), &[]).await;
    let first = sign_up(&server, "Pack One", Role::Patient).await;
    let second = sign_up(&server, "Pack Two", Role::Patient).await;
    let (one, two) = (large_pack(1), large_pack(2));
    let pid = server.pid();
    let before = memory(pid, "VmRSS:");
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").expect("reset the peak resident size");
    let started = std::time::Instant::now();
    let ((a, body_a), (b, body_b)) = tokio::join!(upload_pack(&first.client, one), upload_pack(&second.client, two));
    let took = started.elapsed();
    assert_eq!((a, b), (200, 200), "{body_a:?} {body_b:?}");
    assert_eq!((body_a["count"].as_u64(), body_b["new"].as_u64()), (Some(135), Some(135)));
    let peak = memory(pid, "VmHWM:");
    let rise = peak.saturating_sub(before);
    eprintln!(
        "two 256 MiB packs in {took:.1?}: resident {:.1} MiB before, peak {:.1} MiB (+{:.1} MiB)",
        before as f64 / 1048576.0,
        peak as f64 / 1048576.0,
        rise as f64 / 1048576.0
    );
    assert!(rise <= 64 * 1024 * 1024, "the server's resident memory rose by {rise} bytes");
}
