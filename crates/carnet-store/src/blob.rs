//! Content-addressed blob store for sealed documents and attachments.
//!
//! A blob is named by the SHA-256 of its bytes. The bytes stored are always ciphertext (sealed
//! with the holder's key, see `crypto.rs`), so the name is a hash of the ciphertext: equal
//! documents of two holders are two unrelated blobs and cannot be linked. Every read verifies
//! the hash; a corrupt or truncated blob is an error, never served.
//!
//! Two back-ends: a local directory (the default) and any S3-compatible service through the
//! `object_store` crate. The local one is written for durability (S-30): temp file, fsync,
//! rename, fsync of the directory; only then does `put` return.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use crate::crypto::{random_bytes, sha256_hex};
use crate::error::StoreError;

/// SHA-256 of a blob, 64 lowercase hex digits. Constructed only from a valid digest string,
/// so it is always safe to use as a file or object name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BlobHash(String);

impl BlobHash {
    pub fn of(bytes: &[u8]) -> Self {
        Self(sha256_hex(bytes))
    }

    pub fn parse(s: &str) -> Option<Self> {
        (s.len() == 64
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
        .then(|| Self(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for BlobHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A listed blob and its age, for orphan collection.
#[derive(Clone, Debug)]
pub struct BlobInfo {
    pub hash: BlobHash,
    /// Last modification, microseconds since the Unix epoch.
    pub modified_micros: i64,
}

#[derive(Clone, Debug)]
pub enum BlobStore {
    Local(LocalBlobs),
    Object(Arc<dyn ObjectStore>),
}

/// Settings for an S3-compatible blob store.
#[derive(Clone, Debug, Default, serde::Deserialize, serde::Serialize)]
pub struct S3Config {
    pub bucket: String,
    /// e.g. `https://s3.fr-par.scw.cloud`, or `http://127.0.0.1:9000` for a local service.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    /// Allow plain HTTP (only for a service on the same host or a test).
    #[serde(default)]
    pub allow_http: bool,
    /// Key prefix inside the bucket, to share a bucket between installations.
    pub prefix: Option<String>,
}

impl BlobStore {
    pub fn local(root: impl Into<PathBuf>) -> Result<Self, StoreError> {
        Ok(Self::Local(LocalBlobs::open(root.into())?))
    }

    pub fn s3(cfg: &S3Config) -> Result<Self, StoreError> {
        let mut b = object_store::aws::AmazonS3Builder::from_env()
            .with_bucket_name(&cfg.bucket)
            .with_allow_http(cfg.allow_http);
        if let Some(e) = &cfg.endpoint {
            b = b.with_endpoint(e);
        }
        if let Some(r) = &cfg.region {
            b = b.with_region(r);
        }
        if let Some(k) = &cfg.access_key_id {
            b = b.with_access_key_id(k);
        }
        if let Some(s) = &cfg.secret_access_key {
            b = b.with_secret_access_key(s);
        }
        let store = b
            .build()
            .map_err(|e| StoreError::Config(format!("S3 blob store: {e}")))?;
        Ok(match cfg.prefix.as_deref().filter(|p| !p.is_empty()) {
            Some(prefix) => Self::Object(Arc::new(object_store::prefix::PrefixStore::new(store, prefix))),
            None => Self::Object(Arc::new(store)),
        })
    }

    /// An in-memory store (tests only).
    pub fn memory() -> Self {
        Self::Object(Arc::new(object_store::memory::InMemory::new()))
    }

    fn object_path(hash: &BlobHash) -> ObjectPath {
        ObjectPath::from(format!("blobs/{}/{}", &hash.0[..2], hash.0))
    }

    /// Stores `bytes` durably and returns their hash. Idempotent.
    pub async fn put(&self, bytes: Bytes) -> Result<BlobHash, StoreError> {
        let hash = BlobHash::of(&bytes);
        match self {
            BlobStore::Local(l) => {
                let l = l.clone();
                let h = hash.clone();
                tokio::task::spawn_blocking(move || l.put_sync(&h, &bytes))
                    .await
                    .map_err(|e| StoreError::Blob(format!("blob writer task failed: {e}")))??;
            }
            BlobStore::Object(s) => {
                s.put(&Self::object_path(&hash), PutPayload::from_bytes(bytes))
                    .await
                    .map_err(|e| StoreError::Blob(e.to_string()))?;
            }
        }
        Ok(hash)
    }

    /// Reads a blob and verifies its hash.
    pub async fn get(&self, hash: &BlobHash) -> Result<Bytes, StoreError> {
        let bytes = match self {
            BlobStore::Local(l) => {
                let l = l.clone();
                let h = hash.clone();
                tokio::task::spawn_blocking(move || l.get_sync(&h))
                    .await
                    .map_err(|e| StoreError::Blob(format!("blob reader task failed: {e}")))??
            }
            BlobStore::Object(s) => match s.get(&Self::object_path(hash)).await {
                Ok(r) => r.bytes().await.map_err(|e| StoreError::Blob(e.to_string()))?,
                Err(object_store::Error::NotFound { .. }) => {
                    return Err(StoreError::BlobMissing {
                        hash: hash.to_string(),
                    });
                }
                Err(e) => return Err(StoreError::Blob(e.to_string())),
            },
        };
        if BlobHash::of(&bytes) != *hash {
            return Err(StoreError::BlobCorrupt {
                hash: hash.to_string(),
            });
        }
        Ok(bytes)
    }

    /// Deletes a blob; deleting a missing blob is not an error.
    pub async fn delete(&self, hash: &BlobHash) -> Result<(), StoreError> {
        match self {
            BlobStore::Local(l) => {
                let l = l.clone();
                let h = hash.clone();
                tokio::task::spawn_blocking(move || l.delete_sync(&h))
                    .await
                    .map_err(|e| StoreError::Blob(format!("blob task failed: {e}")))?
            }
            BlobStore::Object(s) => match s.delete(&Self::object_path(hash)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(StoreError::Blob(e.to_string())),
            },
        }
    }

    /// Every blob in the store.
    pub async fn list(&self) -> Result<Vec<BlobInfo>, StoreError> {
        match self {
            BlobStore::Local(l) => {
                let l = l.clone();
                tokio::task::spawn_blocking(move || l.list_sync())
                    .await
                    .map_err(|e| StoreError::Blob(format!("blob task failed: {e}")))?
            }
            BlobStore::Object(s) => {
                let metas: Vec<_> = s
                    .list(Some(&ObjectPath::from("blobs")))
                    .try_collect()
                    .await
                    .map_err(|e| StoreError::Blob(e.to_string()))?;
                Ok(metas
                    .into_iter()
                    .filter_map(|m| {
                        Some(BlobInfo {
                            hash: BlobHash::parse(m.location.filename()?)?,
                            modified_micros: m.last_modified.timestamp_micros(),
                        })
                    })
                    .collect())
            }
        }
    }

    /// Proves the store is reachable and writable (readiness probe).
    pub async fn check(&self) -> Result<(), StoreError> {
        match self {
            BlobStore::Local(l) => {
                let l = l.clone();
                tokio::task::spawn_blocking(move || l.check_sync())
                    .await
                    .map_err(|e| StoreError::Blob(format!("blob task failed: {e}")))?
            }
            BlobStore::Object(s) => {
                let p = ObjectPath::from("readyz/probe");
                s.put(&p, PutPayload::from_static(b"ok"))
                    .await
                    .map_err(|e| StoreError::Blob(e.to_string()))?;
                Ok(())
            }
        }
    }
}

/// The local-directory back-end: `ROOT/objects/ab/abcdef…`, temp files in `ROOT/tmp`.
#[derive(Clone, Debug)]
pub struct LocalBlobs {
    root: PathBuf,
}

fn fsync_dir(dir: &Path) -> Result<(), StoreError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(StoreError::io(dir.display()))
}

impl LocalBlobs {
    /// Opens (creating if needed) the blob directory and removes temp files that a crash left.
    pub fn open(root: PathBuf) -> Result<Self, StoreError> {
        for d in [root.join("objects"), root.join("tmp")] {
            fs::create_dir_all(&d).map_err(StoreError::io(d.display()))?;
        }
        fsync_dir(&root)?;
        let tmp = root.join("tmp");
        if let Ok(entries) = fs::read_dir(&tmp) {
            for e in entries.flatten() {
                // A temp file is never referenced: it is either renamed or abandoned.
                let _ = fs::remove_file(e.path());
            }
        }
        Ok(Self { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob of `hash` lives (tests use it to corrupt blobs on purpose).
    pub fn path_of(&self, hash: &BlobHash) -> PathBuf {
        self.root.join("objects").join(&hash.0[..2]).join(&hash.0)
    }

    fn put_sync(&self, hash: &BlobHash, bytes: &[u8]) -> Result<(), StoreError> {
        let final_path = self.path_of(hash);
        if final_path.exists() {
            return Ok(()); // same bytes, already durable
        }
        let dir = final_path
            .parent()
            .ok_or_else(|| StoreError::Blob("blob path has no parent".into()))?;
        if !dir.exists() {
            fs::create_dir_all(dir).map_err(StoreError::io(dir.display()))?;
            fsync_dir(&self.root.join("objects"))?;
        }
        let suffix = hex::encode(random_bytes::<8>()?);
        let tmp = self.root.join("tmp").join(format!("{}.{suffix}", hash.0));
        let write = || -> std::io::Result<()> {
            let mut f = fs::OpenOptions::new().write(true).create_new(true).open(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()
        };
        if let Err(e) = write() {
            let _ = fs::remove_file(&tmp);
            return Err(StoreError::io(tmp.display())(e));
        }
        if let Err(e) = fs::rename(&tmp, &final_path) {
            let _ = fs::remove_file(&tmp);
            return Err(StoreError::io(final_path.display())(e));
        }
        fsync_dir(dir)
    }

    fn get_sync(&self, hash: &BlobHash) -> Result<Bytes, StoreError> {
        let p = self.path_of(hash);
        match fs::read(&p) {
            Ok(b) => Ok(Bytes::from(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(StoreError::BlobMissing {
                hash: hash.to_string(),
            }),
            Err(e) => Err(StoreError::io(p.display())(e)),
        }
    }

    fn delete_sync(&self, hash: &BlobHash) -> Result<(), StoreError> {
        let p = self.path_of(hash);
        match fs::remove_file(&p) {
            Ok(()) => p.parent().map_or(Ok(()), fsync_dir),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io(p.display())(e)),
        }
    }

    fn list_sync(&self) -> Result<Vec<BlobInfo>, StoreError> {
        let objects = self.root.join("objects");
        let mut out = Vec::new();
        for fan in fs::read_dir(&objects).map_err(StoreError::io(objects.display()))? {
            let fan = fan.map_err(StoreError::io(objects.display()))?;
            if !fan.path().is_dir() {
                continue;
            }
            for e in fs::read_dir(fan.path()).map_err(StoreError::io(fan.path().display()))? {
                let e = e.map_err(StoreError::io(fan.path().display()))?;
                let Some(hash) = e.file_name().to_str().and_then(BlobHash::parse) else {
                    continue;
                };
                let modified_micros = e
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_micros() as i64);
                out.push(BlobInfo {
                    hash,
                    modified_micros,
                });
            }
        }
        Ok(out)
    }

    fn check_sync(&self) -> Result<(), StoreError> {
        let p = self
            .root
            .join("tmp")
            .join(format!("probe.{}", hex::encode(random_bytes::<8>()?)));
        let r = fs::write(&p, b"ok").and_then(|()| fs::File::open(&p)?.sync_all());
        let _ = fs::remove_file(&p);
        r.map_err(StoreError::io(p.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_parsing_refuses_anything_but_a_digest() {
        assert!(BlobHash::parse(&"a".repeat(64)).is_some());
        assert!(BlobHash::parse("../../etc/passwd").is_none());
        assert!(BlobHash::parse(&"A".repeat(64)).is_none());
        assert!(BlobHash::parse(&"a".repeat(63)).is_none());
    }
}
