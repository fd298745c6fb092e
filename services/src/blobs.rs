//! Record envelopes (ciphertext only), named by their SHA-256, in an
//! object store: the local file system under the data directory by
//! default, or any backend `object_store` reaches from a URL.
//!
//! - An upload names its hash; the server hashes what arrives and stores
//!   it only if the two agree, so a name always matches its bytes.
//! - The size limit is checked against Content-Length before a byte is
//!   read, and again while streaming.
//! - Nothing half-written is ever visible: small blobs are written whole,
//!   large ones as a multipart upload completed only after the hash checks
//!   (the local backend stages it and renames it in place), and aborted on
//!   any failure or disconnect.
//! - Storing a blob that is already there succeeds without writing again,
//!   once the body sent has been hashed to its name like any other.
//! - On the local backend the file system is flushed (syncfs) before an
//!   upload is acknowledged.

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Bytes;
use futures_util::{Stream, StreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, WriteMultipart};
use sha2::{Digest, Sha256};

/// Bodies up to this size are written in one piece; larger ones as
/// multipart uploads in parts of this size (S3's smallest part: memory per
/// upload stays a few parts).
const PART_SIZE: usize = 5 * 1024 * 1024;

/// A pack's small frames are written together once this many bytes of them
/// are read.
const PACK_BATCH: usize = 4 * 1024 * 1024;

/// Most frames one pack may carry (an import of a whole history is a few
/// thousand records).
pub const MAX_PACK_FRAMES: usize = 20_000;

/// What a pack upload stored: each frame written (or already there) and
/// checked against its name, with its size; and how many were new. Kept
/// when a later frame fails, so that what is on disk counts against the
/// uploader's allowance.
#[derive(Debug, Default)]
pub struct PackStored {
    pub stored: Vec<(BlobName, u64)>,
    pub new: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("a blob is named by the 64-hex-digit SHA-256 of its bytes")]
    BadName,
    #[error("the upload is {size} bytes, over the limit of {limit}")]
    TooLarge { size: u64, limit: u64 },
    #[error("the bytes received hash to {actual}, not to the name given")]
    HashMismatch { actual: String },
    #[error("the upload ended early: {0}")]
    Interrupted(String),
    #[error("no such blob")]
    NotFound,
    #[error("the upload is not a well-formed pack: {0}")]
    MalformedPack(&'static str),
    #[error("storage failed: {0}")]
    Storage(#[from] object_store::Error),
    #[error("storage failed: {0}")]
    Io(#[from] std::io::Error),
}

/// A blob's name: the lowercase hex SHA-256 of its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlobName(pub [u8; 32]);

impl BlobName {
    pub fn parse(s: &str) -> Result<Self, BlobError> {
        if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(BlobError::BadName);
        }
        let bytes = hex::decode(s).map_err(|_| BlobError::BadName)?;
        Ok(Self(bytes.try_into().map_err(|_| BlobError::BadName)?))
    }

    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The envelope's hash as the database and the wire hold it.
    pub fn hash(&self) -> chartkey_core::value::Hash32 {
        chartkey_core::value::Hash32(self.0)
    }

    /// `ab/abcdef…`: a fan-out directory per first byte keeps directories small.
    fn path(&self) -> Path {
        let hex = self.hex();
        Path::from(format!("{}/{hex}", &hex[..2]))
    }
}

impl From<chartkey_core::value::Hash32> for BlobName {
    fn from(hash: chartkey_core::value::Hash32) -> Self {
        Self(hash.0)
    }
}

#[derive(Clone)]
pub struct BlobStore {
    store: Arc<dyn ObjectStore>,
    /// The directory of the local backend (flushed before acknowledging).
    local_root: Option<PathBuf>,
    pub limit: u64,
}

impl BlobStore {
    /// The local file system under `dir`.
    pub fn local(dir: PathBuf, limit: u64) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        let store = object_store::local::LocalFileSystem::new_with_prefix(&dir)?.with_automatic_cleanup(true);
        Ok(Self { store: Arc::new(store), local_root: Some(dir), limit })
    }

    /// Any backend `object_store` can open from `url` (`file:///…` here;
    /// other schemes need the matching `object_store` feature).
    pub fn from_url(url: &url::Url, limit: u64) -> anyhow::Result<Self> {
        if url.scheme() == "file" {
            let dir = url.to_file_path().map_err(|_| anyhow::anyhow!("{url} is not a local directory"))?;
            return Self::local(dir, limit);
        }
        let (store, prefix) = object_store::parse_url(url)?;
        let store: Arc<dyn ObjectStore> = Arc::new(object_store::prefix::PrefixStore::new(store, prefix));
        Ok(Self { store, local_root: None, limit })
    }

    /// The size of a stored blob, or `None`.
    pub async fn size(&self, name: &BlobName) -> Result<Option<u64>, BlobError> {
        match self.store.head(&name.path()).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// A stored blob's size and its first `len` bytes (fewer if it is
    /// shorter), or `None`.
    pub async fn size_and_prefix(&self, name: &BlobName, len: u64) -> Result<Option<(u64, Bytes)>, BlobError> {
        let Some(size) = self.size(name).await? else { return Ok(None) };
        Ok(Some((size, self.store.get_range(&name.path(), 0..len.min(size)).await?)))
    }

    pub async fn get(&self, name: &BlobName) -> Result<Bytes, BlobError> {
        match self.store.get(&name.path()).await {
            Ok(result) => Ok(result.bytes().await?),
            Err(object_store::Error::NotFound { .. }) => Err(BlobError::NotFound),
            Err(e) => Err(e.into()),
        }
    }

    /// Stores a body that arrives as a stream. `declared` is the request's
    /// Content-Length, when it has one. Returns whether the blob was new.
    pub async fn put_stream<S, E>(&self, name: &BlobName, declared: Option<u64>, mut body: S) -> Result<bool, BlobError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        if let Some(size) = declared.filter(|s| *s > self.limit) {
            return Err(BlobError::TooLarge { size, limit: self.limit });
        }
        // A name already stored is claimed only by a body that hashes to
        // it: the names are public (on the ledger), the bytes are not.
        let exists = self.size(name).await?.is_some();
        let mut hasher = Sha256::new();
        let mut received = 0u64;
        let mut small = Vec::with_capacity(declared.unwrap_or(0).min(PART_SIZE as u64) as usize);
        let mut multipart: Option<WriteMultipart> = None;
        let outcome = async {
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| BlobError::Interrupted(e.to_string()))?;
                received += chunk.len() as u64;
                if received > self.limit {
                    return Err(BlobError::TooLarge { size: received, limit: self.limit });
                }
                hasher.update(&chunk);
                if exists {
                    continue;
                }
                match &mut multipart {
                    Some(upload) => upload.put(chunk),
                    None if small.len() + chunk.len() <= PART_SIZE => small.extend_from_slice(&chunk),
                    None => {
                        let upload = self.store.put_multipart(&name.path()).await?;
                        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
                        writer.write(&small);
                        writer.put(chunk);
                        small = Vec::new();
                        multipart = Some(writer);
                    }
                }
                if let Some(upload) = &mut multipart {
                    upload.wait_for_capacity(2).await?;
                }
            }
            if declared.is_some_and(|d| d != received) {
                return Err(BlobError::Interrupted(format!("{received} of {} bytes arrived", declared.unwrap_or(0))));
            }
            let actual: [u8; 32] = hasher.finalize().into();
            if actual != name.0 {
                return Err(BlobError::HashMismatch { actual: hex::encode(actual) });
            }
            Ok(())
        }
        .await;
        match (outcome, multipart) {
            (Ok(()), None) if exists => return Ok(false),
            (Ok(()), Some(upload)) => {
                upload.finish().await?;
            }
            (Ok(()), None) => {
                self.put_whole(name, small.into()).await?;
            }
            (Err(e), Some(upload)) => {
                let _ = upload.abort().await;
                return Err(e);
            }
            (Err(e), None) => return Err(e),
        }
        self.flush().await?;
        Ok(true)
    }

    /// Stores the frames of a pack (`name (32) || length (u32 BE) ||
    /// envelope`, `chartkey_core::records::pack_frame`) as they arrive, in
    /// bounded memory: frames up to a part's size are gathered and written
    /// together (up to a part's worth at a time), larger ones streamed into
    /// the store like a single upload. Each is hashed against its name.
    /// At most `limit` bytes in all and [`MAX_PACK_FRAMES`] frames. What was
    /// stored before a failure stays stored and is reported.
    pub async fn put_pack<S, E>(&self, body: S, limit: u64) -> (PackStored, Result<(), BlobError>)
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let mut reader = PackReader { body, buffer: bytes::BytesMut::new(), received: 0, limit };
        let mut done = PackStored::default();
        let result = self.read_pack(&mut reader, &mut done).await;
        (done, result)
    }

    async fn read_pack<S, E>(&self, reader: &mut PackReader<S>, done: &mut PackStored) -> Result<(), BlobError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let mut batch: Vec<(BlobName, Bytes)> = Vec::new();
        let mut batch_bytes = 0usize;
        let mut frames = 0usize;
        while reader.fill(36).await? {
            let header = reader.buffer.split_to(36);
            let name = BlobName(header[..32].try_into().expect("32 bytes"));
            let len = u32::from_be_bytes(header[32..36].try_into().expect("4 bytes")) as u64;
            frames += 1;
            if frames > MAX_PACK_FRAMES {
                return Err(BlobError::MalformedPack("too many frames"));
            }
            if len > self.limit {
                return Err(BlobError::TooLarge { size: len, limit: self.limit });
            }
            if len as usize <= PART_SIZE {
                if !reader.fill(len as usize).await? {
                    return Err(BlobError::MalformedPack("a frame ends early"));
                }
                let bytes = reader.buffer.split_to(len as usize).freeze();
                batch_bytes += bytes.len();
                batch.push((name, bytes));
                if batch_bytes >= PACK_BATCH {
                    self.store_batch(std::mem::take(&mut batch), done).await?;
                    batch_bytes = 0;
                }
                continue;
            }
            self.store_batch(std::mem::take(&mut batch), done).await?;
            batch_bytes = 0;
            let frame = Box::pin(reader.frame(len));
            if self.put_stream(&name, Some(len), frame).await? {
                done.new += 1;
            }
            done.stored.push((name, len));
        }
        if !reader.buffer.is_empty() {
            return Err(BlobError::MalformedPack("a frame header ends early"));
        }
        self.store_batch(batch, done).await
    }

    async fn store_batch(&self, batch: Vec<(BlobName, Bytes)>, done: &mut PackStored) -> Result<(), BlobError> {
        if batch.is_empty() {
            return Ok(());
        }
        let sizes: Vec<(BlobName, u64)> = batch.iter().map(|(n, b)| (*n, b.len() as u64)).collect();
        done.new += self.put_many(batch).await?;
        done.stored.extend(sizes);
        Ok(())
    }

    /// Stores blobs already in memory, each checked against its name; one
    /// flush for all. Returns how many were new.
    pub async fn put_many(&self, blobs: Vec<(BlobName, Bytes)>) -> Result<usize, BlobError> {
        for (name, bytes) in &blobs {
            let actual: [u8; 32] = Sha256::digest(bytes).into();
            if actual != name.0 {
                return Err(BlobError::HashMismatch { actual: hex::encode(actual) });
            }
        }
        let mut new = 0;
        let stores = blobs.into_iter().map(|(name, bytes)| async move {
            if self.size(&name).await?.is_some() {
                return Ok::<_, BlobError>(false);
            }
            self.put_whole(&name, bytes).await
        });
        let mut results = futures_util::stream::iter(stores).buffer_unordered(16);
        while let Some(result) = results.next().await {
            new += result? as usize;
        }
        self.flush().await?;
        Ok(new)
    }

    async fn put_whole(&self, name: &BlobName, bytes: Bytes) -> Result<bool, BlobError> {
        let options = PutOptions { mode: PutMode::Create, ..Default::default() };
        match self.store.put_opts(&name.path(), PutPayload::from_bytes(bytes), options).await {
            Ok(_) => Ok(true),
            // Same name, same bytes: someone stored it first.
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Makes what was written durable before it is acknowledged.
    async fn flush(&self) -> Result<(), BlobError> {
        let Some(root) = self.local_root.clone() else {
            return Ok(());
        };
        tokio::task::spawn_blocking(move || {
            let dir = std::fs::File::open(&root)?;
            nix::unistd::syncfs(&dir).map_err(std::io::Error::from)
        })
        .await
        .map_err(|e| BlobError::Io(std::io::Error::other(e)))??;
        Ok(())
    }
}

/// A pack body read frame by frame.
struct PackReader<S> {
    body: S,
    buffer: bytes::BytesMut,
    received: u64,
    limit: u64,
}

impl<S, E> PackReader<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    /// Reads until `n` bytes are buffered: `false` if the body ends first.
    async fn fill(&mut self, n: usize) -> Result<bool, BlobError> {
        while self.buffer.len() < n {
            if !self.next_chunk().await? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    async fn next_chunk(&mut self) -> Result<bool, BlobError> {
        match self.body.next().await {
            Some(Ok(chunk)) => {
                self.received += chunk.len() as u64;
                if self.received > self.limit {
                    return Err(BlobError::TooLarge { size: self.received, limit: self.limit });
                }
                self.buffer.extend_from_slice(&chunk);
                Ok(true)
            }
            Some(Err(e)) => Err(BlobError::Interrupted(e.to_string())),
            None => Ok(false),
        }
    }

    /// The next `len` bytes of the body, as they arrive.
    fn frame(&mut self, len: u64) -> impl Stream<Item = Result<Bytes, String>> + '_ {
        futures_util::stream::unfold((self, len), |(reader, left)| async move {
            if left == 0 {
                return None;
            }
            if reader.buffer.is_empty() {
                match reader.next_chunk().await {
                    Ok(true) => {}
                    Ok(false) => return Some((Err("the pack ends inside a frame".to_owned()), (reader, 0))),
                    Err(e) => return Some((Err(e.to_string()), (reader, 0))),
                }
            }
            let take = (left as usize).min(reader.buffer.len());
            let bytes = reader.buffer.split_to(take).freeze();
            Some((Ok(bytes), (reader, left - take as u64)))
        })
    }
}

#[cfg(test)]
mod tests {
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
        let failing =
            futures_util::stream::iter(vec![Ok(Bytes::from_static(b"ab")), Err("connection reset".to_owned())]);
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
        assert!(
            store.put_stream(&name, Some(body.len() as u64), futures_util::stream::iter(parts)).await.expect("stored")
        );
        assert_eq!(store.get(&name).await.expect("found").as_ref(), body.as_slice());

        // The same bytes under a wrong name: aborted, nothing left behind.
        let wrong = name_of(b"not these bytes");
        let parts: Vec<Result<Bytes, String>> = body.chunks(1 << 20).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
        let e = store.put_stream(&wrong, None, futures_util::stream::iter(parts)).await.unwrap_err();
        assert!(matches!(e, BlobError::HashMismatch { .. }));
        let files: Vec<_> = walk(dir.path());
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

    fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir).expect("readable").flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else {
                out.push(path);
            }
        }
        out
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
            (
                [good.clone(), name_of(b"abc").0.to_vec(), 3u32.to_be_bytes().to_vec(), b"ab".to_vec()].concat(),
                "frame cut",
            ),
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
}
