use carnet_domain::HolderId;

/// Everything that can go wrong below the service layer. Messages name the problem and never
/// include health data.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("configuration: {0}")]
    Config(String),
    #[error("cannot reach the database at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("database error during {op}: {source}")]
    Database {
        op: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("migration failed: {0}")]
    Migration(String),
    /// Not found, or not allowed: the two look the same to the caller (AC-8).
    #[error("not found")]
    NotFound,
    /// The request is invalid (a 4xx for the caller); the message is safe to show.
    #[error("{0}")]
    Invalid(String),
    /// A profile entry or measurement refused, typed so that each surface words it (PR-1..4);
    /// `at` names it within a batch (`measurements[2].`).
    #[error("{}{error}", at.as_deref().unwrap_or_default())]
    Profile {
        at: Option<String>,
        error: carnet_domain::profile::ProfileError,
    },
    #[error(
        "wrong master key: the key vault's data keys were wrapped by master key(s) {known}, \
         but the configured key(s) are {configured}"
    )]
    WrongMasterKey { known: String, configured: String },
    #[error("master key: {0}")]
    MasterKey(String),
    #[error("the data key of holder {0} has been destroyed: their data is erased")]
    Shredded(HolderId),
    #[error("integrity check failed: {0}")]
    Integrity(String),
    #[error("blob {hash} is corrupt: its content does not match its SHA-256")]
    BlobCorrupt { hash: String },
    #[error("blob {hash} is missing from the blob store")]
    BlobMissing { hash: String },
    #[error("blob store: {0}")]
    Blob(String),
    #[error("storage I/O on {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("no space left on the storage device")]
    DiskFull,
    #[error("{0}")]
    Transition(#[from] carnet_domain::TransitionError),
    #[error("the space was changed by another request; try again")]
    Conflict,
    /// Credentials, code or identity proof did not match. Deliberately says no more.
    #[error("the information given does not match")]
    Mismatch,
    #[error("this login is already taken")]
    LoginTaken,
    /// MI-1: a minor's space is run by their legal representatives until 18.
    #[error("a minor's space is reached by their legal representatives until 18")]
    Minor,
    /// A trace could not be made durable: the access must not happen (AC-6).
    #[error("the access trace could not be written: {0}")]
    TraceAppend(String),
    /// A combined write's transaction could not be committed (`combiner`): nothing of it
    /// was saved.
    #[error("the write could not be saved: {0}")]
    Commit(String),
}

/// A write that named a row that does not exist (a foreign key) is about something not
/// found, for the caller (AC-8).
pub(crate) fn not_found_if_foreign_key(e: StoreError) -> StoreError {
    if e.is_foreign_key_violation() {
        StoreError::NotFound
    } else {
        e
    }
}

/// The database's disk is full: SQLite's `SQLITE_FULL` (13), PostgreSQL's `disk_full` (53100),
/// or the operating system's ENOSPC under the driver. Reported as 507, apart from outages.
fn is_disk_full(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => matches!(d.code().as_deref(), Some("13" | "53100")),
        sqlx::Error::Io(io) => io.kind() == std::io::ErrorKind::StorageFull,
        _ => false,
    }
}

impl StoreError {
    /// A refused profile entry or measurement, at its place in a batch if any.
    pub fn profile(at: Option<String>, error: impl Into<carnet_domain::profile::ProfileError>) -> Self {
        StoreError::Profile {
            at,
            error: error.into(),
        }
    }

    /// Adapter for `map_err`: `.map_err(StoreError::db("insert holder"))`.
    pub fn db(op: &'static str) -> impl Fn(sqlx::Error) -> StoreError {
        move |source| {
            if is_disk_full(&source) {
                StoreError::DiskFull
            } else {
                StoreError::Database { op, source }
            }
        }
    }

    pub fn io(path: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> StoreError {
        let path = path.to_string();
        move |source| {
            if source.kind() == std::io::ErrorKind::StorageFull {
                StoreError::DiskFull
            } else {
                StoreError::Io { path, source }
            }
        }
    }

    /// Whether a statement broke a uniqueness constraint (another request, or another server,
    /// wrote the same key first).
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, StoreError::Database { source: sqlx::Error::Database(d), .. } if d.is_unique_violation())
    }

    /// Whether a statement referred to a row that does not exist (a foreign key).
    pub fn is_foreign_key_violation(&self) -> bool {
        matches!(self, StoreError::Database { source: sqlx::Error::Database(d), .. } if d.is_foreign_key_violation())
    }

    /// Whether the failure is of the infrastructure (retry later: 503) rather than of the data.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Unreachable { .. }
            | StoreError::Io { .. }
            | StoreError::DiskFull
            | StoreError::Blob(_)
            | StoreError::TraceAppend(_)
            | StoreError::Commit(_) => true,
            StoreError::Database { source, .. } => is_outage(source),
            _ => false,
        }
    }
}

/// A database failure that says the database is away or changing hands, not that the data
/// is wrong: a connection refused, reset or cut mid-handshake (a proxy in front of the
/// database accepting and closing), the pool closed or out of time, and PostgreSQL's own words
/// for a failover: a connection exception (class 08), an operator intervention — shutdown,
/// crash, "starting up" (57P01..57P03) —, too many connections (53300), and a write that
/// reached a server no longer primary (`read_only_sql_transaction`, 25006: a standby, or a
/// former primary demoted by a switchover).
fn is_outage(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::Io(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(d) => d.code().is_some_and(|c| {
            c.starts_with("08") || matches!(c.as_ref(), "57P01" | "57P02" | "57P03" | "53300" | "25006")
        }),
        _ => false,
    }
}
