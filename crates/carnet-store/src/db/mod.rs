//! One database handle over SQLite or PostgreSQL, and the migration runner.
//!
//! sqlx's `Any` driver lacks the uuid type, so instead of one generic driver we keep one
//! *code path*: every query is written once, in SQL both engines accept (`$1` placeholders,
//! BIGINT times), as a [`query::Query`] that [`Db`] and [`Tx`] run with native types on
//! either engine. DDL differences are confined to two tokens in the migrations.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

use crate::error::StoreError;

mod audit;
mod migrations;
pub mod query;
pub mod reader;

pub use audit::*;
pub use migrations::*;

/// Which SQL engine a [`Db`] talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// A database: for SQLite a single-connection writer pool plus a reader pool over one WAL
/// file (one writer at a time is SQLite's model; a dedicated writer avoids SQLITE_BUSY);
/// for PostgreSQL one pool serving both.
#[derive(Clone, Debug)]
pub enum Db {
    Sqlite {
        read: SqlitePool,
        write: SqlitePool,
        /// Point reads on the calling thread (`reader`); `None` for a database without a file.
        fast: Option<std::sync::Arc<reader::SqliteReaders>>,
    },
    Postgres(PgPool),
}

/// sqlx 0.9.0 no longer sets `TCP_NODELAY` on its sockets (sqlx issue #4335; fixed upstream by
/// #4336, not released yet): a statement whose message spans two TCP segments (a multi-row insert,
/// a 500-parameter lookup) then waits ~40 ms for PostgreSQL's delayed ACK (Nagle's algorithm).
/// Until the fix ships, each new PostgreSQL connection sets it on the process's TCP sockets
/// (Linux: `/proc/self/fd`). Other TCP sockets of the process (HTTP, SMTP) write whole messages,
/// so the option costs them nothing. Measured: the 10,000-line reimbursement feed on PostgreSQL,
/// see BENCHMARKS.md.
pub(crate) fn tcp_nodelay_everywhere() {
    #[cfg(target_os = "linux")]
    {
        let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
            return;
        };
        for e in dir.flatten() {
            let Some(fd) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            let is_socket = std::fs::read_link(e.path())
                .map(|t| t.to_string_lossy().starts_with("socket:"))
                .unwrap_or(false);
            if !is_socket {
                continue;
            }
            // SAFETY: `fd` was open in this process when listed; it is only borrowed for one
            // setsockopt and never closed here. Were it closed and reused meanwhile, the option
            // would land on another socket of ours (harmless) or fail (ignored).
            let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
            let s = socket2::SockRef::from(&fd);
            let tcp = matches!(s.r#type(), Ok(socket2::Type::STREAM))
                && s.local_addr().ok().and_then(|a| a.as_socket()).is_some();
            if tcp {
                let _ = s.set_tcp_nodelay(true);
            }
        }
    }
}

/// An open write transaction. Dropped without [`Tx::commit`], it rolls back.
pub enum Tx {
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

impl Tx {
    pub fn engine(&self) -> Engine {
        match self {
            Tx::Sqlite(_) => Engine::Sqlite,
            Tx::Postgres(_) => Engine::Postgres,
        }
    }

    pub async fn commit(self) -> Result<(), StoreError> {
        match self {
            Tx::Sqlite(t) => t.commit().await,
            Tx::Postgres(t) => t.commit().await,
        }
        .map_err(StoreError::db("commit"))
    }
}

/// How to open a database.
#[derive(Clone, Debug)]
pub struct DbOptions {
    /// Create the SQLite file if it does not exist. Servers pass `false` once a data
    /// directory is initialised, so a lost database file is an error, not a silent new one.
    pub create_if_missing: bool,
    pub max_connections: u32,
    pub connect_timeout: Duration,
    /// SQLite: read-only connections for point reads on the calling thread (`reader`): one
    /// per async worker (default: one per CPU, 2 to 8), each held for microseconds; a thread
    /// that finds them all taken waits for one. 0: none (every read goes through the pool).
    pub point_readers: usize,
    /// SQLite: the page cache of each point reader, in KiB. The main file changes only when
    /// something other than a trace is written, so a reader's cache lives across many
    /// requests; each reader caches the same hot pages (sessions, spaces, policies, documents),
    /// so a few readers with a large cache each hit far more often than many small ones
    /// (BENCHMARKS.md, the SQLite readers).
    pub reader_cache_kib: u32,
    /// SQLite, main database: keep the access traces in a file of their own beside it
    /// ([`audit_file`]), attached to every connection as [`AUDIT_SCHEMA`]. A trace commit then
    /// changes only that file, so readers of the rest keep their page caches (in WAL mode a
    /// reader drops its whole cache whenever its file changed). Ignored on PostgreSQL and for
    /// a database without a file.
    pub audit: bool,
    /// SQLite: overwrite deleted content with zeros (`secure_delete`), for the key vault: a
    /// destroyed data key must not linger in the file's free pages (LC-7).
    pub secure_delete: bool,
}

impl Default for DbOptions {
    fn default() -> Self {
        Self {
            create_if_missing: false,
            max_connections: 16,
            connect_timeout: Duration::from_secs(5),
            // One per async worker (the runtime runs one per CPU): a reader is held for the
            // microseconds of a statement, and each one more is one more copy of the cache.
            point_readers: std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 8)),
            reader_cache_kib: 32 * 1024,
            audit: false,
            secure_delete: false,
        }
    }
}

/// A database URL with any password replaced, for messages and logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            let masked = if userinfo.contains(':') {
                format!("{user}:***")
            } else {
                user.to_string()
            };
            format!("{}{}{}", &url[..scheme_end + 3], masked, &url[at..])
        }
        _ => url.to_string(),
    }
}

impl Db {
    /// Opens `url` (`sqlite://PATH` or `postgres://...`).
    pub async fn connect(url: &str, opts: &DbOptions) -> Result<Db, StoreError> {
        let shown = redact_url(url);
        let unreachable = |e: sqlx::Error| StoreError::Unreachable {
            url: shown.clone(),
            reason: e.to_string(),
        };
        if url.starts_with("sqlite:") {
            let base = SqliteConnectOptions::from_str(url)
                .map_err(|e| StoreError::Config(format!("bad database URL {shown}: {e}")))?
                .journal_mode(SqliteJournalMode::Wal)
                // S-30: FULL, not NORMAL: NORMAL in WAL mode may lose the last commits on
                // power loss, and an acknowledged write must survive.
                .synchronous(SqliteSynchronous::Full)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10))
                .pragma("temp_store", "memory")
                .pragma("secure_delete", if opts.secure_delete { "on" } else { "off" });
            let file = base.get_filename().to_path_buf();
            let audit = (opts.audit && file.to_str().is_some_and(|f| !f.is_empty() && f != ":memory:"))
                .then(|| audit_file(&file));
            if let Some(a) = &audit {
                prepare_audit_file(&file, a, opts.create_if_missing)?;
            }
            let audit_name = audit.as_ref().map(|a| a.to_string_lossy().into_owned());
            let (for_writer, for_readers) = (audit_name.clone(), audit_name);
            let write = SqlitePoolOptions::new()
                .max_connections(1)
                .acquire_timeout(Duration::from_secs(30))
                .after_connect(move |c, _| attach_audit(c, for_writer.clone(), true))
                // The writer's cache outlives its commits (it alone changes the file): 32 MiB
                // keeps the pages the trace appender and the combiner touch (chain heads,
                // index leaves) instead of SQLite's default 2 MiB that made them `pread` again.
                .connect_with(
                    base.clone()
                        .create_if_missing(opts.create_if_missing)
                        .pragma("cache_size", "-32768"),
                )
                .await
                .map_err(unreachable)?;
            let read = SqlitePoolOptions::new()
                .max_connections(opts.max_connections.max(1))
                .acquire_timeout(opts.connect_timeout)
                .after_connect(move |c, _| attach_audit(c, for_readers.clone(), false))
                .connect_with(base.clone().read_only(true))
                .await
                .map_err(unreachable)?;
            // Opened after the writer, which created the file and put it in WAL mode.
            // An in-memory database has no file to open again: it takes sqlx's path.
            let fast = match base.get_filename() {
                _ if opts.point_readers == 0 => None,
                f if !f.is_file() => None,
                f => Some(
                    reader::SqliteReaders::open(
                        f,
                        opts.point_readers,
                        opts.reader_cache_kib,
                        audit.as_deref(),
                    )
                    .map_err(|e| unreachable(sqlx::Error::Protocol(e.to_string())))?,
                ),
            };
            Ok(Db::Sqlite { read, write, fast })
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let o = PgConnectOptions::from_str(url)
                .map_err(|e| StoreError::Config(format!("bad database URL {shown}: {e}")))?;
            let pool = PgPoolOptions::new()
                .max_connections(opts.max_connections.max(1))
                .acquire_timeout(opts.connect_timeout)
                .after_connect(|_, _| {
                    Box::pin(async {
                        tcp_nodelay_everywhere();
                        Ok(())
                    })
                })
                .connect_with(o)
                .await
                .map_err(unreachable)?;
            Ok(Db::Postgres(pool))
        } else {
            Err(StoreError::Config(format!(
                "unsupported database URL {shown}: use sqlite://PATH or postgres://USER@HOST/DB"
            )))
        }
    }

    pub fn engine(&self) -> Engine {
        match self {
            Db::Sqlite { .. } => Engine::Sqlite,
            Db::Postgres(_) => Engine::Postgres,
        }
    }

    /// Starts a write transaction.
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        match self {
            // IMMEDIATE: take the write lock at once, so that another process holding it makes us wait
            // (busy timeout) instead of failing on a lock upgrade ("database is locked").
            Db::Sqlite { write, .. } => {
                // A COMMIT that SQLite refused (disk full) can leave sqlx believing the writer
                // connection is still in a transaction, so every later BEGIN on it fails. Drop
                // such a connection (the pool opens a fresh one) and begin again: the server
                // recovers by itself once space is back.
                let mut attempt = 0;
                loop {
                    match write.begin_with("BEGIN IMMEDIATE").await {
                        Err(sqlx::Error::InvalidSavePointStatement) if attempt < 3 => {
                            attempt += 1;
                            if let Ok(conn) = write.acquire().await {
                                drop(conn.detach());
                            }
                        }
                        r => break r.map(Tx::Sqlite),
                    }
                }
            }
            Db::Postgres(p) => p.begin().await.map(Tx::Postgres),
        }
        .map_err(StoreError::db("begin"))
    }

    /// A round trip to the database (readiness probe).
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.execute(query::Query::new("SELECT 1"), "ping")
            .await
            .map(|_| ())
    }

    pub async fn close(&self) {
        match self {
            Db::Sqlite { read, write, .. } => {
                read.close().await;
                write.close().await;
            }
            Db::Postgres(p) => p.close().await,
        }
    }

    /// The pool that sees the latest commits (for SQLite, the writer connection).
    /// The connections the pools hold, open and idle (what operators watch, issue 34).
    pub fn pool_counts(&self) -> (u32, usize) {
        match self {
            Db::Sqlite { read, write, .. } => {
                (read.size() + write.size(), read.num_idle() + write.num_idle())
            }
            Db::Postgres(p) => (p.size(), p.num_idle()),
        }
    }

    pub fn writer(&self) -> Db {
        match self {
            Db::Sqlite { write, .. } => Db::Sqlite {
                read: write.clone(),
                write: write.clone(),
                fast: None,
            },
            Db::Postgres(p) => Db::Postgres(p.clone()),
        }
    }
}

/// Starts a store's write pipeline (the trace appender, the write combiner): a loop that takes
/// the requests queued meanwhile and commits them together.
///
/// On SQLite it runs on a thread of its own (with a one-thread Tokio runtime for sqlx's calls):
/// each step of a commit (begin, statements, commit) wakes it at once, instead of queueing it
/// behind every HTTP task on the async workers while the requests waiting for that commit leave
/// the CPU idle (measured: BENCHMARKS.md, "Kept changes"). On PostgreSQL, whose connections
/// belong to the server's runtime, it is a task of the current runtime.
pub(crate) fn spawn_pipeline<F>(db: &Db, name: &str, pipeline: F)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let pipeline = if matches!(db, Db::Sqlite { .. }) {
        let slot = std::sync::Arc::new(std::sync::Mutex::new(Some(pipeline)));
        let mine = slot.clone();
        let started = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
            .and_then(|rt| {
                std::thread::Builder::new()
                    .name(name.to_string())
                    .spawn(move || {
                        let f = mine.lock().ok().and_then(|mut f| f.take());
                        if let Some(f) = f {
                            rt.block_on(f);
                        }
                    })
                    .map_err(|e| e.to_string())
            });
        match started {
            Ok(_) => return,
            Err(e) => {
                tracing::warn!(error = %e, name, "no thread for the write pipeline; it runs as a task");
                match slot.lock().ok().and_then(|mut f| f.take()) {
                    Some(f) => f,
                    None => return,
                }
            }
        }
    } else {
        pipeline
    };
    tokio::spawn(pipeline);
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::AssertSqlSafe;

    #[test]
    fn urls_are_redacted() {
        assert_eq!(
            redact_url("postgres://carnet:s3cret@db.example:5432/carnet"),
            "postgres://carnet:***@db.example:5432/carnet"
        );
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1/test"),
            "postgres://postgres@127.0.0.1/test"
        );
        assert_eq!(redact_url("sqlite:///tmp/x.db"), "sqlite:///tmp/x.db");
    }

    /// The main migrations up to `version` (a database of an earlier release).
    fn main_migrations_through(version: usize) -> MigrationSet {
        MigrationSet {
            table: MAIN_MIGRATIONS.table,
            migrations: &MAIN_MIGRATIONS.migrations[..version],
        }
    }

    /// Migrations 19 and 20 rebuild tables on SQLite (documents and attachments clustered on
    /// their keys, traces clustered and back): every row of a database made by the earlier
    /// versions is still there, byte for byte, with its indexes; on PostgreSQL they are no-ops.
    #[tokio::test]
    async fn clustering_keeps_every_row_and_index() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("m.db").display());
        let opts = DbOptions {
            create_if_missing: true,
            ..DbOptions::default()
        };
        let db = Db::connect(&url, &opts).await.unwrap();
        db.migrate(&main_migrations_through(18)).await.unwrap();
        let Db::Sqlite { write, .. } = &db else {
            unreachable!()
        };
        let h = uuid::Uuid::now_v7();
        let statements = [
            "INSERT INTO holders (id, lifecycle, created_at, updated_at, admin_sealed) \
             VALUES ($1, 'open', 1, 1, x'00')",
            "INSERT INTO traces VALUES ($1, 1, 10, 1, 0, x'0102', 'genesis', 'h1')",
            "INSERT INTO traces VALUES ($1, 2, 11, 0, 1, x'0304', 'h1', 'h2')",
            "INSERT INTO attachments VALUES ($1, $1, 5, 'blob', 42, x'05')",
            "INSERT INTO documents VALUES ($1, $1, $1, 'current', 5, 5, 9, $1, x'06', 1)",
        ];
        for q in statements {
            sqlx::query(AssertSqlSafe(q))
                .bind(h)
                .execute(write)
                .await
                .unwrap();
        }
        assert_eq!(
            db.migrate(&main_migrations_through(20)).await.unwrap(),
            vec![19, 20]
        );
        let tables: Vec<(String, String)> = sqlx::query_as(
            "SELECT name, sql FROM sqlite_master WHERE name IN ('traces', 'documents', 'attachments')",
        )
        .fetch_all(write)
        .await
        .unwrap();
        assert_eq!(tables.len(), 3);
        for (name, sql) in &tables {
            // Version 20 put the traces back in rowid order (appends to many chains).
            let clustered = name != "traces";
            assert_eq!(sql.contains("WITHOUT ROWID"), clustered, "{name}");
        }
        type TraceRow = (i64, i64, i64, i64, Vec<u8>, String, String);
        let traces: Vec<TraceRow> = sqlx::query_as(
            "SELECT seq, at, allowed, emergency, entry_sealed, prev_hash, hash FROM traces \
             WHERE holder_id = $1 ORDER BY seq",
        )
        .bind(h)
        .fetch_all(write)
        .await
        .unwrap();
        assert_eq!(
            traces,
            vec![
                (1, 10, 1, 0, vec![1, 2], "genesis".into(), "h1".into()),
                (2, 11, 0, 1, vec![3, 4], "h1".into(), "h2".into())
            ]
        );
        let doc: (String, i64, Option<i64>, Vec<u8>, i64) = sqlx::query_as(
            "SELECT status, visible_from, notice_due_at, meta_sealed, version FROM documents \
             WHERE holder_id = $1 AND id = $1",
        )
        .bind(h)
        .fetch_one(write)
        .await
        .unwrap();
        assert_eq!(doc, ("current".into(), 5, Some(9), vec![6], 1));
        let att: (String, i64) =
            sqlx::query_as("SELECT blob_hash, sealed_size FROM attachments WHERE blob_hash = 'blob'")
                .fetch_one(write)
                .await
                .unwrap();
        assert_eq!(att, ("blob".into(), 42));
        let indexes: Vec<(String,)> = sqlx::query_as(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL ORDER BY name",
        )
        .fetch_all(write)
        .await
        .unwrap();
        for want in ["attachments_by_blob", "documents_by_set", "documents_notice_due"] {
            assert!(indexes.iter().any(|(n,)| n == want), "index {want} kept");
        }
        let clustered = &MAIN_MIGRATIONS.migrations[18];
        assert_eq!(clustered.version, 19);
        assert!(!clustered.render(Engine::Postgres).contains("WITHOUT ROWID"));
        assert!(clustered.render(Engine::Sqlite).contains("WITHOUT ROWID"));
    }

    /// A database as an earlier version left it (everything in one file, no trace file),
    /// with `rows` inserted (`$1`: `holder`), cleanly closed.
    async fn earlier_version(url: &str, holder: uuid::Uuid, rows: &[&'static str]) {
        let opts = DbOptions {
            create_if_missing: true,
            ..DbOptions::default()
        };
        let db = Db::connect(url, &opts).await.unwrap();
        // Version 20: before the trace file and before `trace_heads_moved` (21).
        db.migrate(&main_migrations_through(20)).await.unwrap();
        assert!(!db.move_traces_to_audit().await.unwrap(), "nothing attached");
        let Db::Sqlite { write, .. } = &db else {
            unreachable!()
        };
        for q in rows {
            sqlx::query(AssertSqlSafe(*q))
                .bind(holder)
                .execute(write)
                .await
                .unwrap();
        }
        db.close().await;
    }

    /// The traces move to their own file (`DbOptions::audit`) from a database of an earlier
    /// version, replacing a copy that a crash between the copy and the drop left behind; the
    /// main file keeps no trace table; a trace file missing afterwards is refused.
    #[tokio::test]
    async fn traces_move_to_their_own_file_and_stay_there() {
        let dir = tempfile::tempdir().unwrap();
        let main = dir.path().join("m.db");
        let url = format!("sqlite://{}", main.display());
        let h = uuid::Uuid::now_v7();
        earlier_version(
            &url,
            h,
            &[
                "INSERT INTO traces VALUES ($1, 1, 10, 1, 0, x'0102', 'genesis', 'h1')",
                "INSERT INTO traces VALUES ($1, 2, 11, 0, 1, x'0304', 'h1', 'h2')",
                "INSERT INTO trace_heads_pending VALUES ($1, 2)",
            ],
        )
        .await;
        let audit = audit_file(&main);
        assert_eq!(audit, dir.path().join("m-audit.db"));
        {
            // What an interrupted move leaves: a partial copy in the trace file.
            let c = rusqlite::Connection::open(&audit).unwrap();
            c.execute_batch(
                "PRAGMA journal_mode = WAL; CREATE TABLE traces (holder_id BLOB, seq BIGINT); \
                 INSERT INTO traces VALUES (x'00', 99);",
            )
            .unwrap();
        }
        let with_audit = DbOptions {
            audit: true,
            ..DbOptions::default()
        };
        let db = Db::connect(&url, &with_audit).await.unwrap();
        db.migrate(&MAIN_MIGRATIONS).await.unwrap();
        assert!(db.move_traces_to_audit().await.unwrap());
        assert!(!db.move_traces_to_audit().await.unwrap(), "once");
        db.drop_retired_tables().await.unwrap();
        let Db::Sqlite { write: p, .. } = db.clone() else {
            unreachable!()
        };
        let in_main: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM main.sqlite_master WHERE name LIKE 'trace%'")
                .fetch_one(&p)
                .await
                .unwrap();
        assert_eq!(in_main, 0, "no trace table left in the main file");
        let moved: Vec<(i64, String)> =
            sqlx::query_as("SELECT seq, hash FROM audit.traces WHERE holder_id = $1 ORDER BY seq")
                .bind(h)
                .fetch_all(&p)
                .await
                .unwrap();
        assert_eq!(moved, vec![(1, "h1".into()), (2, "h2".into())]);
        let stale: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM traces WHERE seq = 99")
            .fetch_one(&p)
            .await
            .unwrap();
        assert_eq!(stale, 0, "the partial copy was replaced");
        // Unqualified names find them, on the writer and on the readers alike.
        let rows = db
            .fetch_all(
                query::Query::new("SELECT seq FROM traces WHERE holder_id = $1 ORDER BY seq").bind(h),
                "read traces",
            )
            .await
            .unwrap();
        assert_eq!(rows.len(), 2);
        // Version 21: the heads waiting for a checkpoint were copied to `trace_heads_moved`
        // (in the trace file now), and the retired table is gone from both files.
        let pending: Vec<(uuid::Uuid, i64)> =
            sqlx::query_as("SELECT holder_id, seq FROM audit.trace_heads_moved")
                .fetch_all(&p)
                .await
                .unwrap();
        assert_eq!(pending, vec![(h, 2)]);
        let retired: i64 = sqlx::query_scalar(
            "SELECT (SELECT COUNT(*) FROM main.sqlite_master WHERE name = 'trace_heads_pending') \
             + (SELECT COUNT(*) FROM audit.sqlite_master WHERE name = 'trace_heads_pending')",
        )
        .fetch_one(&p)
        .await
        .unwrap();
        assert_eq!(retired, 0);
        db.close().await;
        // The main file alone does not open: its traces would be silently gone.
        std::fs::rename(&audit, dir.path().join("elsewhere.db")).unwrap();
        let err = Db::connect(&url, &with_audit).await.unwrap_err();
        assert!(
            err.to_string().contains("refusing to create a new empty one"),
            "{err}"
        );
        assert!(!audit.exists());
    }

    /// The plain upgrade: a data directory of an earlier version (no trace file, cleanly
    /// closed) gets its trace file at the next start, with its traces in it.
    #[tokio::test]
    async fn an_earlier_database_gets_its_trace_file() {
        let dir = tempfile::tempdir().unwrap();
        let main = dir.path().join("carnet.db");
        let url = format!("sqlite://{}", main.display());
        let h = uuid::Uuid::now_v7();
        earlier_version(
            &url,
            h,
            &["INSERT INTO traces VALUES ($1, 1, 10, 1, 0, x'01', 'genesis', 'h1')"],
        )
        .await;
        let audit = audit_file(&main);
        assert!(!audit.exists());
        let opts = DbOptions {
            audit: true,
            ..DbOptions::default()
        };
        let db = Db::connect(&url, &opts).await.unwrap();
        db.migrate(&MAIN_MIGRATIONS).await.unwrap();
        assert!(db.move_traces_to_audit().await.unwrap());
        assert!(audit.is_file());
        let Db::Sqlite { write, .. } = &db else {
            unreachable!()
        };
        let hash: String = sqlx::query_scalar("SELECT hash FROM audit.traces WHERE holder_id = $1")
            .bind(h)
            .fetch_one(write)
            .await
            .unwrap();
        assert_eq!(hash, "h1");
        let mode: String = sqlx::query_scalar("PRAGMA audit.journal_mode")
            .fetch_one(write)
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        db.close().await;
    }

    #[test]
    fn every_migration_file_is_embedded() {
        for (dir, set) in [("main", &MAIN_MIGRATIONS), ("vault", &VAULT_MIGRATIONS)] {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("migrations")
                .join(dir);
            let files = std::fs::read_dir(path).unwrap().count();
            assert_eq!(
                files,
                set.migrations.len(),
                "a file in migrations/{dir} is not listed in db.rs"
            );
        }
    }

    #[test]
    fn migrations_are_ordered_and_render_per_engine() {
        for set in [&MAIN_MIGRATIONS, &VAULT_MIGRATIONS] {
            let versions: Vec<i64> = set.migrations.iter().map(|m| m.version).collect();
            let mut sorted = versions.clone();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(versions, sorted, "versions strictly increasing");
            for m in set.migrations {
                for e in [Engine::Sqlite, Engine::Postgres] {
                    assert!(!m.render(e).contains("{{"), "unreplaced token in {}", m.name);
                }
            }
        }
    }
}
