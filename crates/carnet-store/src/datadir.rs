//! Opening a Carnet installation: data directory, master key, key vault, databases, blobs.
//!
//! Rules (issue 2, "nothing is silently recreated over existing data"):
//! * the data directory must exist; an **empty** one is initialised (first start);
//! * a non-empty directory without the `CARNET` marker is refused (not ours);
//! * once initialised, a missing key file or SQLite database file is an error, never
//!   replaced by a new empty one;
//! * a key file readable by group or others is refused;
//! * a master key that did not wrap the stored data keys is refused at start.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use carnet_domain::Clock;
use serde::{Deserialize, Serialize};

use crate::Store;
use crate::blob::{BlobStore, S3Config};
use crate::crypto::{MasterKey, MasterKeyRing};
use crate::db::{Db, DbOptions};
use crate::error::StoreError;
use crate::vault::KeyVault;

pub const MARKER: &str = "CARNET";
pub const KEY_FILE: &str = "master.key";
pub const MAIN_DB_FILE: &str = "carnet.db";
pub const VAULT_DB_FILE: &str = "keys.db";
/// Environment variable that may carry the master key(s) instead of the key file: one or
/// more `kid:base64` (or bare base64) keys separated by commas, active key first.
pub const MASTER_KEY_ENV: &str = "CARNET_MASTER_KEY";

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum BlobBackend {
    #[default]
    Local,
    S3,
}

/// Where everything lives. Defaults keep it all under `data_dir` on SQLite.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct StoreSettings {
    pub data_dir: PathBuf,
    /// Main database; default `sqlite://DATA_DIR/carnet.db`.
    pub database_url: Option<String>,
    /// Key vault database; default `sqlite://DATA_DIR/keys.db`. Keep it apart from the main
    /// database (another database or server) so that backups of the data hold no keys.
    pub keys_url: Option<String>,
    /// Master key file; default `DATA_DIR/master.key`. Ignored when `CARNET_MASTER_KEY` is set.
    pub master_key_file: Option<PathBuf>,
    #[serde(default)]
    pub blob_backend: BlobBackend,
    /// Local blob directory; default `DATA_DIR/blobs`.
    pub blob_dir: Option<PathBuf>,
    pub s3: Option<S3Config>,
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    /// SQLite only: read-only connections for point reads on the calling thread (`reader`);
    /// 0 sends every read through the connection pool.
    #[serde(default = "default_point_readers")]
    pub sqlite_point_readers: usize,
    /// SQLite only: each point reader's page cache, in KiB.
    #[serde(default = "default_reader_cache_kib")]
    pub sqlite_reader_cache_kib: u32,
    /// What listings keep per server of each record (`doccache`), in MiB: ~150 bytes a row,
    /// plus the opened metadata of at most 64 rows a record.
    #[serde(default = "default_document_cache_mib")]
    pub document_cache_mib: usize,
}

fn default_document_cache_mib() -> usize {
    crate::documents::cache::DOC_CACHE_BYTES >> 20
}

fn default_reader_cache_kib() -> u32 {
    crate::db::DbOptions::default().reader_cache_kib
}

fn default_point_readers() -> usize {
    crate::db::DbOptions::default().point_readers
}

fn default_max_connections() -> u32 {
    16
}

impl StoreSettings {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            database_url: None,
            keys_url: None,
            master_key_file: None,
            blob_backend: BlobBackend::Local,
            blob_dir: None,
            s3: None,
            max_connections: default_max_connections(),
            sqlite_point_readers: default_point_readers(),
            sqlite_reader_cache_kib: default_reader_cache_kib(),
            document_cache_mib: default_document_cache_mib(),
        }
    }

    fn sqlite_url(path: &Path) -> String {
        format!("sqlite://{}", path.display())
    }

    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| Self::sqlite_url(&self.data_dir.join(MAIN_DB_FILE)))
    }

    pub fn keys_url(&self) -> String {
        self.keys_url
            .clone()
            .unwrap_or_else(|| Self::sqlite_url(&self.data_dir.join(VAULT_DB_FILE)))
    }

    pub fn key_file(&self) -> PathBuf {
        self.master_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join(KEY_FILE))
    }

    pub fn blob_dir(&self) -> PathBuf {
        self.blob_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("blobs"))
    }
}

/// The file a `sqlite://` URL points at, if it is one.
fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next()?;
    (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
}

/// Writes `contents` to `path` durably (temp file, fsync, rename, fsync dir) with `mode`.
pub fn write_file_durably(path: &Path, contents: &[u8], mode: u32) -> Result<(), StoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file")
    ));
    let write = || -> std::io::Result<()> {
        let _ = fs::remove_file(&tmp);
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        fs::File::open(dir)?.sync_all()
    };
    write().map_err(StoreError::io(path.display()))
}

/// Whether `dir` is an initialised Carnet data directory, an empty one, or something else.
#[derive(Debug, PartialEq, Eq)]
pub enum DirState {
    Initialised,
    Empty,
}

pub fn inspect_data_dir(dir: &Path) -> Result<DirState, StoreError> {
    if !dir.exists() {
        return Err(StoreError::Config(format!(
            "data directory {} does not exist: create it (mkdir -p {0}) or run `carnet init --data-dir {0}`",
            dir.display()
        )));
    }
    if !dir.is_dir() {
        return Err(StoreError::Config(format!(
            "data directory {} is not a directory",
            dir.display()
        )));
    }
    if dir.join(MARKER).exists() {
        return Ok(DirState::Initialised);
    }
    let mut entries = fs::read_dir(dir).map_err(StoreError::io(dir.display()))?;
    if entries.next().is_none() {
        Ok(DirState::Empty)
    } else {
        Err(StoreError::Config(format!(
            "{} is not empty and is not a Carnet data directory (no {MARKER} file): refusing to use it",
            dir.display()
        )))
    }
}

/// Loads the master key ring from the environment or the key file; creates the key file
/// (mode 0600) only when `first_start`.
#[allow(clippy::disallowed_methods)] // CARNET_MASTER_KEY, the one variable the store reads (clippy.toml)
pub fn load_master_keys(settings: &StoreSettings, first_start: bool) -> Result<MasterKeyRing, StoreError> {
    if let Ok(v) = std::env::var(MASTER_KEY_ENV)
        && !v.trim().is_empty()
    {
        let keys = v
            .split([',', '\n'])
            .filter(|s| !s.trim().is_empty())
            .map(MasterKey::parse)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| StoreError::MasterKey(format!("{MASTER_KEY_ENV}: {e}")))?;
        return MasterKeyRing::new(keys);
    }
    let path = settings.key_file();
    if !path.exists() {
        if first_start {
            let ring = MasterKeyRing::new(vec![MasterKey::generate()?])?;
            write_file_durably(&path, ring.to_file_text().as_bytes(), 0o600)?;
            return Ok(ring);
        }
        return Err(StoreError::MasterKey(format!(
            "key file {} is missing, but this data directory is initialised: restore the key file \
             from your key backup (or set {MASTER_KEY_ENV}); a new key would not open the existing data",
            path.display()
        )));
    }
    let meta = fs::metadata(&path).map_err(StoreError::io(path.display()))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(StoreError::MasterKey(format!(
            "key file {} is readable by other users (mode {:o}): run `chmod 600 {0}`",
            path.display(),
            meta.permissions().mode() & 0o777
        )));
    }
    let text = zeroize::Zeroizing::new(fs::read_to_string(&path).map_err(StoreError::io(path.display()))?);
    MasterKeyRing::parse(&text).map_err(|e| StoreError::MasterKey(format!("{}: {e}", path.display())))
}

/// Opens (or, for an empty data directory, initialises) the whole store.
pub async fn open_store(settings: &StoreSettings, clock: Arc<dyn Clock>) -> Result<Store, StoreError> {
    let state = inspect_data_dir(&settings.data_dir)?;
    let first_start = state == DirState::Empty;
    for url in [settings.database_url(), settings.keys_url()] {
        if let Some(file) = sqlite_file(&url)
            && !first_start
            && !file.exists()
        {
            return Err(StoreError::Config(format!(
                "database file {} is missing from an initialised data directory: restore it from a \
                 backup; refusing to create a new empty database over existing data",
                file.display()
            )));
        }
    }
    if first_start {
        // Only the service account reads the data directory.
        fs::set_permissions(&settings.data_dir, fs::Permissions::from_mode(0o700))
            .map_err(StoreError::io(settings.data_dir.display()))?;
    }
    let ring = load_master_keys(settings, first_start)?;
    let opts = DbOptions {
        create_if_missing: first_start,
        max_connections: settings.max_connections,
        point_readers: settings.sqlite_point_readers,
        reader_cache_kib: settings.sqlite_reader_cache_kib,
        ..DbOptions::default()
    };
    let vault_db = Db::connect(
        &settings.keys_url(),
        &DbOptions {
            secure_delete: true,
            ..opts.clone()
        },
    )
    .await?;
    let vault = KeyVault::open(vault_db, ring, clock.now()).await?;
    let db = Db::connect(&settings.database_url(), &DbOptions { audit: true, ..opts }).await?;
    let blobs = match settings.blob_backend {
        BlobBackend::Local => BlobStore::local(settings.blob_dir())?,
        BlobBackend::S3 => BlobStore::s3(
            settings
                .s3
                .as_ref()
                .ok_or_else(|| StoreError::Config("blob_backend = \"s3\" needs an [s3] section".into()))?,
        )?,
    };
    let store = Store::new(db, vault, blobs, clock).await?;
    store.set_document_cache_bytes(settings.document_cache_mib << 20);
    if first_start {
        let marker = "Carnet data directory, format 1.\nDo not edit or delete files here by hand; see docs/operations.md.\n";
        write_file_durably(&settings.data_dir.join(MARKER), marker.as_bytes(), 0o644)?;
    }
    Ok(store)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_map_to_files() {
        assert_eq!(
            sqlite_file("sqlite:///tmp/a.db"),
            Some(PathBuf::from("/tmp/a.db"))
        );
        assert_eq!(
            sqlite_file("sqlite://data/a.db?mode=rwc"),
            Some(PathBuf::from("data/a.db"))
        );
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("postgres://x@y/z"), None);
    }
}

/// What a master-key rotation did.
#[derive(Debug)]
pub struct RotationReport {
    pub old_kids: Vec<String>,
    pub new_kid: String,
    pub rewrapped: u64,
}

/// Rotates the master key of a key-file installation: a new key is put first in the key
/// file (old keys kept), every data key is re-wrapped by it, then the old keys are removed
/// from the file. Data is not touched. Crash-safe: until the last step the file holds every
/// key any data key may be wrapped with; re-running the command finishes the job.
#[allow(clippy::disallowed_methods)] // CARNET_MASTER_KEY (clippy.toml)
pub async fn rotate_master_key(
    settings: &StoreSettings,
    clock: Arc<dyn Clock>,
) -> Result<RotationReport, StoreError> {
    if std::env::var(MASTER_KEY_ENV).is_ok_and(|v| !v.trim().is_empty()) {
        return Err(StoreError::MasterKey(format!(
            "the master key comes from {MASTER_KEY_ENV}: rotate by setting it to \"NEW,OLD\", running \
             `carnet admin rewrap-keys`, then setting it to \"NEW\""
        )));
    }
    if inspect_data_dir(&settings.data_dir)? != DirState::Initialised {
        return Err(StoreError::Config("the data directory is not initialised".into()));
    }
    let old = load_master_keys(settings, false)?;
    let new = MasterKey::generate()?;
    let mut keys = vec![new.clone()];
    keys.extend(old.keys().iter().cloned());
    let path = settings.key_file();
    write_file_durably(
        &path,
        MasterKeyRing::new(keys.clone())?.to_file_text().as_bytes(),
        0o600,
    )?;
    let vault_db = Db::connect(
        &settings.keys_url(),
        &DbOptions {
            secure_delete: true,
            ..DbOptions::default()
        },
    )
    .await?;
    let vault = KeyVault::open(vault_db, MasterKeyRing::new(keys)?, clock.now()).await?;
    let rewrapped = vault.rewrap_all().await?;
    let only_new = MasterKeyRing::new(vec![new.clone()])?;
    write_file_durably(&path, only_new.to_file_text().as_bytes(), 0o600)?;
    let vault = KeyVault::open(vault.db().clone(), only_new, clock.now()).await?;
    vault.retire_old_master_keys().await?;
    vault.db().close().await;
    Ok(RotationReport {
        old_kids: old.kids(),
        new_kid: new.kid,
        rewrapped,
    })
}
