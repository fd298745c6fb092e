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

    /// The store at `url`: `file:///dir`, or `s3://bucket[/prefix]` with
    /// the endpoint, region and credentials from the usual `AWS_*`
    /// environment variables (`AWS_ENDPOINT_URL` for S3-compatible stores,
    /// `AWS_ALLOW_HTTP=true` for one without TLS).
    pub fn from_url(url: &url::Url, limit: u64) -> anyhow::Result<Self> {
        if url.scheme() == "file" {
            let dir = url.to_file_path().map_err(|_| anyhow::anyhow!("{url} is not a local directory"))?;
            return Self::local(dir, limit);
        }
        let (store, prefix): (Box<dyn ObjectStore>, Path) = if url.scheme() == "s3" {
            // TLS for the store's HTTP client (rustls on ring; see
            // Cargo.toml). Already installed is fine.
            let _ = rustls::crypto::ring::default_provider().install_default();
            let s3 = object_store::aws::AmazonS3Builder::from_env().with_url(url.as_str()).build()?;
            (Box::new(s3), Path::from_url_path(url.path())?)
        } else {
            object_store::parse_url(url)?
        };
        let store: Arc<dyn ObjectStore> = Arc::new(object_store::prefix::PrefixStore::new(store, prefix));
        Ok(Self { store, local_root: None, limit })
    }

    /// The names of every stored object (`chartkey migrate` copies them;
    /// tests compare them).
    pub async fn list(&self) -> Result<Vec<String>, BlobError> {
        use futures_util::TryStreamExt;
        let objects: Vec<_> = self.store.list(None).try_collect().await?;
        Ok(objects.into_iter().map(|o| o.location.to_string()).collect())
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
#[path = "blobs_tests.rs"]
mod tests;
