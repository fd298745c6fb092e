//! The blob store's tests (blobs.rs).

use super::*;

fn name_of(bytes: &[u8]) -> BlobName {
    BlobName(Sha256::digest(bytes).into())
}

fn stream(parts: Vec<&'static [u8]>) -> impl Stream<Item = Result<Bytes, String>> + Unpin {
    futures_util::stream::iter(parts.into_iter().map(|p| Ok(Bytes::from_static(p))))
}

#[test]
fn names_parse_strictly() {
    let hex = "ab".repeat(32);
    assert_eq!(BlobName::parse(&hex).expect("valid").hex(), hex);
    for bad in ["", "ab", &"AB".repeat(32), &"zz".repeat(32), &"ab".repeat(33), "../etc/passwd"] {
        assert!(matches!(BlobName::parse(bad), Err(BlobError::BadName)), "{bad}");
    }
}

#[tokio::test]
async fn stores_checks_and_is_idempotent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = BlobStore::local(dir.path().to_owned(), 1000).expect("store");
    let name = name_of(b"hello world");
    assert!(store.put_stream(&name, Some(11), stream(vec![b"hello ", b"world"])).await.expect("stored"));
    assert_eq!(store.get(&name).await.expect("found"), Bytes::from_static(b"hello world"));
    assert_eq!(store.size(&name).await.expect("head"), Some(11));
    assert!(!store.put_stream(&name, Some(11), stream(vec![b"hello world"])).await.expect("again"));
    // Knowing a stored name is not enough to claim it: the body must
    // hash to it, as for a new blob.
    for body in [vec![], vec![&b"hello"[..]], vec![&b"hello worle"[..]]] {
        let e = store.put_stream(&name, None, stream(body)).await.unwrap_err();
        assert!(matches!(e, BlobError::HashMismatch { .. }), "{e}");
    }
    assert_eq!(store.get(&name).await.expect("kept"), Bytes::from_static(b"hello world"));

    let wrong = name_of(b"something else");
    let e = store.put_stream(&wrong, None, stream(vec![b"hello world"])).await.unwrap_err();
    assert!(matches!(e, BlobError::HashMismatch { .. }), "{e}");
    assert_eq!(store.size(&wrong).await.expect("head"), None);

    let e = store.put_stream(&wrong, Some(1001), stream(vec![])).await.unwrap_err();
    assert!(matches!(e, BlobError::TooLarge { size: 1001, .. }), "{e}");
    let big: &'static [u8] = Box::leak(vec![7u8; 600].into_boxed_slice());
    let e = store.put_stream(&name_of(&[7u8; 1200]), None, stream(vec![big, big])).await.unwrap_err();
    assert!(matches!(e, BlobError::TooLarge { .. }), "{e}");

    // Interrupted: the stream fails, or ends short of Content-Length.
    let short = name_of(b"abc");
    let failing = futures_util::stream::iter(vec![Ok(Bytes::from_static(b"ab")), Err("connection reset".to_owned())]);
    assert!(matches!(store.put_stream(&short, Some(3), failing).await, Err(BlobError::Interrupted(_))));
    assert!(matches!(store.put_stream(&short, Some(3), stream(vec![b"ab"])).await, Err(BlobError::Interrupted(_))));
    assert_eq!(store.size(&short).await.expect("head"), None);
    assert!(matches!(store.get(&short).await, Err(BlobError::NotFound)));
}

#[tokio::test]
async fn large_uploads_go_multipart_and_leave_nothing_when_they_fail() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = BlobStore::local(dir.path().to_owned(), 64 * 1024 * 1024).expect("store");
    let body: Vec<u8> = (0..(PART_SIZE * 2 + 12345)).map(|i| (i % 253) as u8).collect();
    let name = name_of(&body);
    let parts: Vec<Result<Bytes, String>> = body.chunks(1 << 20).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    assert!(store.put_stream(&name, Some(body.len() as u64), futures_util::stream::iter(parts)).await.expect("stored"));
    assert_eq!(store.get(&name).await.expect("found").as_ref(), body.as_slice());

    // The same bytes under a wrong name: aborted, nothing left behind.
    let wrong = name_of(b"not these bytes");
    let parts: Vec<Result<Bytes, String>> = body.chunks(1 << 20).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    let e = store.put_stream(&wrong, None, futures_util::stream::iter(parts)).await.unwrap_err();
    assert!(matches!(e, BlobError::HashMismatch { .. }));
    let files: Vec<PathBuf> = walkdir::WalkDir::new(dir.path())
        .into_iter()
        .map(|e| e.expect("readable"))
        .filter(|e| e.file_type().is_file())
        .map(walkdir::DirEntry::into_path)
        .collect();
    assert_eq!(files.len(), 1, "only the stored blob remains: {files:?}");
}

#[tokio::test]
async fn put_many_checks_every_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = BlobStore::local(dir.path().to_owned(), 1000).expect("store");
    let a = (name_of(b"a"), Bytes::from_static(b"a"));
    let b = (name_of(b"b"), Bytes::from_static(b"b"));
    assert_eq!(store.put_many(vec![a.clone(), b.clone()]).await.expect("stored"), 2);
    assert_eq!(store.put_many(vec![a.clone()]).await.expect("again"), 0);
    let c = (name_of(b"c"), Bytes::from_static(b"not c"));
    assert!(matches!(store.put_many(vec![c.clone()]).await, Err(BlobError::HashMismatch { .. })));
    assert_eq!(store.size(&c.0).await.expect("head"), None);
}

fn pack_of(envelopes: &[&[u8]]) -> Vec<u8> {
    let mut pack = Vec::new();
    for e in envelopes {
        chartkey_core::records::pack_frame(&mut pack, &name_of(e).0, e);
    }
    pack
}

/// The body cut into `size`-byte chunks, as a network delivers it.
fn chunked(body: Vec<u8>, size: usize) -> impl Stream<Item = Result<Bytes, String>> + Unpin {
    let chunks: Vec<Result<Bytes, String>> =
        body.chunks(size).map(|c| Ok(Bytes::copy_from_slice(c))).collect::<Vec<_>>();
    futures_util::stream::iter(chunks)
}

#[tokio::test]
async fn packs_are_stored_frame_by_frame_whatever_the_chunking() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = BlobStore::local(dir.path().to_owned(), 20_000_000).expect("store");
    // Small frames gathered, one larger than a part streamed on its own.
    let large: Vec<u8> = (0..PART_SIZE + 1_000).map(|i| (i % 251) as u8).collect();
    let envelopes: Vec<&[u8]> = vec![b"first", b"", &large, b"last"];
    for chunk in [1, 7, 36, 64 * 1024, usize::MAX] {
        let pack = pack_of(&envelopes);
        let chunk = chunk.min(pack.len());
        let (done, result) = store.put_pack(chunked(pack, chunk), 100_000_000).await;
        result.expect("stored");
        assert_eq!(done.stored.len(), 4);
        for e in &envelopes {
            assert_eq!(store.get(&name_of(e)).await.expect("found"), Bytes::copy_from_slice(e));
        }
    }
    let (done, _) = store.put_pack(chunked(pack_of(&[b"fresh"]), 3), 1_000).await;
    assert_eq!((done.stored.len(), done.new), (1, 1));
}

#[tokio::test]
async fn malformed_packs_are_refused_and_report_what_was_stored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = BlobStore::local(dir.path().to_owned(), 1_000).expect("store");
    let good = pack_of(&[b"kept"]);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (vec![1, 2, 3], "header cut"),
        ([good.clone(), vec![0; 35]].concat(), "second header cut"),
        ([good.clone(), name_of(b"abc").0.to_vec(), 3u32.to_be_bytes().to_vec(), b"ab".to_vec()].concat(), "frame cut"),
        ([good.clone(), name_of(b"abc").0.to_vec(), 3u32.to_be_bytes().to_vec(), b"abd".to_vec()].concat(), "hash"),
        ([good.clone(), name_of(b"x").0.to_vec(), 1_001u32.to_be_bytes().to_vec()].concat(), "frame too large"),
        ([good.clone(), name_of(b"x").0.to_vec(), u32::MAX.to_be_bytes().to_vec()].concat(), "length u32::MAX"),
    ];
    for (body, why) in cases {
        let (done, result) = store.put_pack(chunked(body, 5), 100_000).await;
        let e = result.expect_err(why);
        match why {
            "hash" => assert!(matches!(e, BlobError::HashMismatch { .. }), "{why}: {e}"),
            "frame too large" | "length u32::MAX" => assert!(matches!(e, BlobError::TooLarge { .. }), "{why}: {e}"),
            _ => assert!(matches!(e, BlobError::MalformedPack(_)), "{why}: {e}"),
        }
        // Frames gathered in memory are written together, after the
        // whole batch is read: nothing of a bad pack of small frames.
        assert!(done.stored.len() <= 1, "{why}");
        assert_eq!(store.size(&name_of(b"abd")).await.expect("head"), None);
    }
    // The whole body is bounded too, and so is the number of frames.
    let (_, result) = store.put_pack(chunked(pack_of(&[&[5u8; 600], &[6u8; 600]]), 100), 1_000).await;
    assert!(matches!(result, Err(BlobError::TooLarge { .. })), "{result:?}");
    let empties = pack_of(&vec![&b""[..]; MAX_PACK_FRAMES + 1]);
    let (_, result) = store.put_pack(chunked(empties, 4096), 10_000_000).await;
    assert!(matches!(result, Err(BlobError::MalformedPack("too many frames"))), "{result:?}");
    let (done, result) = store.put_pack(chunked(Vec::new(), 1), 1_000).await;
    assert!(result.is_ok() && done.stored.is_empty(), "an empty pack stores nothing");
}
