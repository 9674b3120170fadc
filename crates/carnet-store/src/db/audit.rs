//! The trace file (`carnet-audit.db` beside the main SQLite file, the `audit` schema on
//! PostgreSQL): attached to every connection, checkpointed by the trace appender on a
//! connection of its own, and the one-time move of the traces into it.

use std::time::Duration;

use sqlx::AssertSqlSafe;

use crate::error::StoreError;

use super::*;

/// The schema name under which SQLite connections see the trace database ([`DbOptions::audit`]).
/// Queries name its tables unqualified (`traces`), as on PostgreSQL: SQLite looks a name up in
/// `main` first, then in attached databases. A migration that creates an index on one of them
/// must name the schema on SQLite (`CREATE INDEX audit.x ON traces (...)`).
pub const AUDIT_SCHEMA: &str = "audit";

/// The tables that live in the trace database, parents before children.
pub const AUDIT_TABLES: [&str; 4] = [
    "traces",
    "trace_heads_moved",
    "trace_checkpoints",
    "trace_checkpoint_leaves",
];

/// Tables a migration replaced without dropping them, because on SQLite they may live in
/// the trace file while the migration writes the main one (SQLite does not commit two WAL
/// files atomically): `trace_heads_pending`, replaced by `trace_heads_moved` in version 21.
/// [`Db::drop_retired_tables`] drops them once the migrations have committed.
pub const RETIRED_TABLES: [&str; 1] = ["trace_heads_pending"];

/// The trace database of the SQLite database `main`: `carnet.db` → `carnet-audit.db`.
pub fn audit_file(main: &std::path::Path) -> std::path::PathBuf {
    let stem = main
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "carnet".into());
    let name = match main.extension() {
        Some(ext) => format!("{stem}-audit.{}", ext.to_string_lossy()),
        None => format!("{stem}-audit"),
    };
    main.with_file_name(name)
}

/// Attaches the trace database (if any) to a new SQLite connection of a pool; the writer also
/// sets its journal, durability and cache.
pub(super) fn attach_audit(
    c: &mut sqlx::SqliteConnection,
    audit: Option<String>,
    writer: bool,
) -> futures::future::BoxFuture<'_, Result<(), sqlx::Error>> {
    Box::pin(async move {
        let Some(a) = audit else {
            return Ok(());
        };
        sqlx::query("ATTACH DATABASE $1 AS audit")
            .bind(a)
            .execute(&mut *c)
            .await?;
        if writer {
            // S-30 as for the main file (FULL), and a cache of its own as the main file's.
            sqlx::raw_sql(
                "PRAGMA audit.journal_mode = WAL; PRAGMA audit.synchronous = FULL; \
                 PRAGMA audit.cache_size = -32768;",
            )
            .execute(&mut *c)
            .await?;
            let mut handle = c.lock_handle().await?;
            // SAFETY: the handle is open and locked for this thread; the hook is a plain
            // function with no state, replacing SQLite's default one for this connection.
            unsafe {
                rusqlite::ffi::sqlite3_wal_hook(
                    handle.as_raw_handle().as_ptr(),
                    Some(checkpoint_hook),
                    std::ptr::null_mut(),
                );
            }
        }
        Ok(())
    })
}

/// WAL frames after which a commit on the writer checkpoints the main file (SQLite's default).
pub(super) const MAIN_CHECKPOINT_FRAMES: std::ffi::c_int = 1000;

/// WAL frames after which the trace file is checkpointed by a thread of its own, on a
/// connection of its own ([`AuditCheckpointer`]) so that neither the trace appender nor
/// the writer, and every write to the main file, waits for the copy. Every access appends a trace, and a batch of traces
/// dirties about three pages (the table's last leaf and, for each holder, a leaf of the
/// `(holder, seq)` key), mostly the same pages again and again; a checkpoint copies each page
/// once, however often it was rewritten, so a longer WAL (~40 MiB) copies and syncs far fewer
/// pages per trace than SQLite's 1,000 frames (BENCHMARKS.md, the trace file).
pub(crate) const AUDIT_CHECKPOINT_FRAMES: std::ffi::c_int = if cfg!(test) { 64 } else { 10_000 };

/// Past this many frames the writer checkpoints the trace file itself, as SQLite would: a
/// bound on its WAL when no trace appender runs (commands, imports) or it falls behind.
/// (Out of reach in this crate's unit tests, which check that the appender's checkpoint
/// alone bounds the file.)
pub(super) const AUDIT_CHECKPOINT_FRAMES_INLINE: std::ffi::c_int =
    if cfg!(test) { std::ffi::c_int::MAX } else { 40_000 };

/// The largest WAL frame count of a trace file seen by a writer's commit since its
/// checkpointer last ran. One value for the process (a server has one database; tests
/// with several only checkpoint a little more often than needed).
pub(crate) static AUDIT_WAL_FRAMES: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

/// The checkpoint of the trace file, when a commit saw its WAL reach
/// [`AUDIT_CHECKPOINT_FRAMES`]: PASSIVE (never waits for readers or the writer); a failure is
/// logged and tried again after the next commit. Whether it ran.
pub(super) fn checkpoint_audit_if_due(c: &rusqlite::Connection) -> bool {
    use std::sync::atomic::Ordering;
    if AUDIT_WAL_FRAMES.load(Ordering::Relaxed) < AUDIT_CHECKPOINT_FRAMES {
        return false;
    }
    AUDIT_WAL_FRAMES.store(0, Ordering::Relaxed);
    match c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(error = %e, "checkpoint of the trace file failed; it will be tried again");
            false
        }
    }
}

/// The trace file's checkpointer, in two parts. The bulk of each checkpoint runs on a thread
/// of its own with its own connection, woken by the trace appender after a commit when the WAL
/// is due: WAL mode lets the appender go on committing while it copies, so accesses no longer
/// wait for a copy of thousands of pages and its `fsync` (tens of milliseconds at the tail of
/// FHIR reads when the appender checkpointed between two batches). What was committed during
/// that copy the appender then checkpoints itself, between two batches, on a second connection
/// ([`AuditCheckpointer::after_commit`]): a short copy, after which the WAL is fully
/// checkpointed when the next batch begins, so that batch starts the WAL again from its
/// beginning (SQLite restarts a WAL only then) and the file stays bounded under any load.
pub(crate) struct AuditCheckpointer {
    tail: rusqlite::Connection,
    wake: std::sync::mpsc::SyncSender<()>,
    bulk_done: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl AuditCheckpointer {
    /// Its two connections to the trace file, and its thread; `None` without a trace file of
    /// its own (PostgreSQL, or SQLite with the traces in the main file).
    pub(crate) async fn open(db: &Db) -> Result<Option<Self>, StoreError> {
        let (Some(bulk), Some(tail)) = (
            db.open_audit_checkpointer().await?,
            db.open_audit_checkpointer().await?,
        ) else {
            return Ok(None);
        };
        Ok(Self::start(bulk, tail))
    }

    /// Starts the thread (it ends when this is dropped). `None` if no thread could be
    /// started: the writer's own checkpoint ([`AUDIT_CHECKPOINT_FRAMES_INLINE`]) still bounds
    /// the WAL.
    fn start(bulk: rusqlite::Connection, tail: rusqlite::Connection) -> Option<Self> {
        use std::sync::atomic::{AtomicBool, Ordering};
        let (wake, rx) = std::sync::mpsc::sync_channel::<()>(1);
        let bulk_done = std::sync::Arc::new(AtomicBool::new(false));
        let done = bulk_done.clone();
        let started = std::thread::Builder::new()
            .name("carnet-checkpoint".into())
            .spawn(move || {
                while rx.recv().is_ok() {
                    if checkpoint_audit_if_due(&bulk) {
                        done.store(true, Ordering::Release);
                    }
                }
            });
        match started {
            Ok(_) => Some(Self {
                tail,
                wake,
                bulk_done,
            }),
            Err(e) => {
                tracing::warn!(error = %e, "no thread for the trace file's checkpoints; the writer makes them");
                None
            }
        }
    }

    /// After the appender's commit: the short tail of a bulk checkpoint just finished, or a
    /// wake-up of the thread if the WAL is due (one atomic load otherwise).
    pub(crate) fn after_commit(&self) {
        use std::sync::atomic::Ordering;
        if self.bulk_done.swap(false, Ordering::Acquire) {
            if let Err(e) = self
                .tail
                .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
            {
                tracing::warn!(error = %e, "checkpoint of the trace file failed; it will be tried again");
            }
        } else if AUDIT_WAL_FRAMES.load(Ordering::Relaxed) >= AUDIT_CHECKPOINT_FRAMES {
            let _ = self.wake.try_send(());
        }
    }
}

/// The writer's WAL hook (called after each commit with the database's name and its WAL's
/// frame count): SQLite's automatic checkpoint for the main file; for the trace file a note
/// for the trace appender, which checkpoints it on its own connection.
unsafe extern "C" fn checkpoint_hook(
    _: *mut std::ffi::c_void,
    db: *mut rusqlite::ffi::sqlite3,
    name: *const std::ffi::c_char,
    frames: std::ffi::c_int,
) -> std::ffi::c_int {
    // SAFETY: SQLite passes the schema's name as a NUL-terminated string valid for the call.
    let audit =
        !name.is_null() && unsafe { std::ffi::CStr::from_ptr(name) }.to_bytes() == AUDIT_SCHEMA.as_bytes();
    let at = if audit {
        AUDIT_WAL_FRAMES.fetch_max(frames, std::sync::atomic::Ordering::Relaxed);
        AUDIT_CHECKPOINT_FRAMES_INLINE
    } else {
        MAIN_CHECKPOINT_FRAMES
    };
    if frames >= at {
        // PASSIVE, as SQLite's own hook: never waits for readers; what it cannot copy now
        // the next one will. A failure here is not the commit's (it is durable in the WAL).
        // SAFETY: `db` and `name` are the ones SQLite called the hook with.
        unsafe {
            rusqlite::ffi::sqlite3_wal_checkpoint_v2(
                db,
                name,
                rusqlite::ffi::SQLITE_CHECKPOINT_PASSIVE,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            );
        }
    }
    rusqlite::ffi::SQLITE_OK
}

/// Makes sure the trace database of `main` exists before connections attach it. It is created
/// with a new database, or beside one whose traces have not moved there yet (an upgrade);
/// missing beside a database that already moved them, it is an error, as a missing main file
/// is: a new empty one would silently drop every trace.
pub(super) fn prepare_audit_file(
    main: &std::path::Path,
    audit: &std::path::Path,
    create_if_missing: bool,
) -> Result<(), StoreError> {
    if audit.is_file() {
        return Ok(());
    }
    let may_create = if main.is_file() {
        let c = rusqlite::Connection::open_with_flags(main, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| StoreError::Config(format!("cannot open {}: {e}", main.display())))?;
        let (tables, traces): (i64, i64) = c
            .query_row(
                "SELECT COUNT(*), COALESCE(SUM(name = 'traces'), 0) FROM sqlite_master WHERE type = 'table'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(|e| StoreError::Config(format!("cannot read {}: {e}", main.display())))?;
        tables == 0 || traces == 1
    } else {
        create_if_missing
    };
    if !may_create {
        return Err(StoreError::Config(format!(
            "trace database {} is missing beside {}: restore it from the same backup; refusing to \
             create a new empty one (every access trace would be lost)",
            audit.display(),
            main.display()
        )));
    }
    let c = rusqlite::Connection::open(audit)
        .map_err(|e| StoreError::Config(format!("cannot create {}: {e}", audit.display())))?;
    c.pragma_update(None, "journal_mode", "WAL")
        .map_err(|e| StoreError::Config(format!("cannot set up {}: {e}", audit.display())))?;
    Ok(())
}

impl Db {
    /// SQLite with the traces in a file of their own: a connection to that file alone, for
    /// the trace file's checkpoints ([`AuditCheckpointer`]); `None` otherwise.
    pub(crate) async fn open_audit_checkpointer(&self) -> Result<Option<rusqlite::Connection>, StoreError> {
        let Db::Sqlite { write, .. } = self else {
            return Ok(None);
        };
        let file: Option<String> =
            sqlx::query_scalar("SELECT file FROM pragma_database_list WHERE name = 'audit'")
                .fetch_optional(write)
                .await
                .map_err(StoreError::db("find the trace file"))?;
        let Some(file) = file.filter(|f| !f.is_empty()) else {
            return Ok(None);
        };
        let c = rusqlite::Connection::open_with_flags(
            &file,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .and_then(|c| c.busy_timeout(Duration::from_secs(1)).map(|()| c))
        .map_err(|e| StoreError::Config(format!("cannot open the trace file {file}: {e}")))?;
        Ok(Some(c))
    }

    /// SQLite with a trace database ([`DbOptions::audit`]): moves the trace tables into it from
    /// the main file, where the migrations create them (a new database) or where an earlier
    /// version kept them (an upgrade). Two transactions, each changing one file (SQLite commits
    /// attached WAL databases one after the other, not atomically together): the copy into the
    /// trace database (replacing any copy a crash interrupted), then the drop from the main file.
    /// A crash between them leaves both copies, and the next start copies again. Returns
    /// whether it moved anything.
    pub async fn move_traces_to_audit(&self) -> Result<bool, StoreError> {
        let Db::Sqlite { write, .. } = self else {
            return Ok(false);
        };
        let err = StoreError::db("move the traces to their own file");
        let attached: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM pragma_database_list WHERE name = 'audit'")
                .fetch_one(write)
                .await
                .map_err(err)?;
        if attached == 0 {
            return Ok(false);
        }
        let names = AUDIT_TABLES.map(|t| format!("'{t}'")).join(", ");
        let rows: Vec<(String, String, String)> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT type, tbl_name, sql FROM main.sqlite_master WHERE tbl_name IN ({names}) AND sql IS NOT NULL"
        )))
        .fetch_all(write)
        .await
        .map_err(StoreError::db("move the traces to their own file"))?;
        let mut tables: Vec<(&str, String)> = Vec::new();
        let mut indexes = Vec::new();
        for (kind, table, sql) in &rows {
            let Some(t) = AUDIT_TABLES.iter().find(|t| *t == table) else {
                continue;
            };
            let ddl = in_audit_schema(sql).ok_or_else(|| {
                StoreError::Migration(format!("cannot move {table} to the trace database: {sql}"))
            })?;
            match kind.as_str() {
                "table" => tables.push((t, ddl)),
                _ => indexes.push(ddl),
            }
        }
        if tables.is_empty() {
            return Ok(false);
        }
        tables.sort_by_key(|(t, _)| AUDIT_TABLES.iter().position(|x| x == t));
        let run = |sql: String| async move {
            sqlx::raw_sql(AssertSqlSafe(sql))
                .execute(write)
                .await
                .map(|_| ())
                .map_err(StoreError::db("move the traces to their own file"))
        };
        let mut copy = String::from("BEGIN IMMEDIATE;\n");
        for (t, _) in tables.iter().rev() {
            copy += &format!("DROP TABLE IF EXISTS audit.{t};\n");
        }
        for (t, ddl) in &tables {
            copy += &format!("{ddl};\nINSERT INTO audit.{t} SELECT * FROM main.{t};\n");
        }
        for ddl in &indexes {
            copy += &format!("{ddl};\n");
        }
        copy += "COMMIT;";
        let mut drop = String::from("BEGIN IMMEDIATE;\n");
        for (t, _) in tables.iter().rev() {
            drop += &format!("DROP TABLE main.{t};\n");
        }
        drop += "COMMIT;";
        // One connection for both scripts: the writer pool has exactly one.
        for script in [copy, drop] {
            if let Err(e) = run(script).await {
                let _ = sqlx::raw_sql("ROLLBACK").execute(write).await;
                return Err(e);
            }
        }
        tracing::info!(
            tables = tables.len(),
            "access traces moved to their own database file"
        );
        Ok(true)
    }

    /// Drops the tables a migration replaced but left in place (see [`RETIRED_TABLES`]); runs
    /// after the migrations (and, on SQLite, after the traces moved to their file), each drop a
    /// transaction of one file.
    pub async fn drop_retired_tables(&self) -> Result<(), StoreError> {
        for t in RETIRED_TABLES {
            match self {
                Db::Sqlite { write, .. } => {
                    let schemas: Vec<String> = sqlx::query_scalar("SELECT name FROM pragma_database_list")
                        .fetch_all(write)
                        .await
                        .map_err(StoreError::db("list attached databases"))?;
                    for schema in schemas.iter().filter(|s| *s == "main" || *s == AUDIT_SCHEMA) {
                        sqlx::raw_sql(AssertSqlSafe(format!("DROP TABLE IF EXISTS {schema}.{t}")))
                            .execute(write)
                            .await
                            .map_err(StoreError::db("drop a retired table"))?;
                    }
                }
                Db::Postgres(pool) => {
                    sqlx::raw_sql(AssertSqlSafe(format!("DROP TABLE IF EXISTS {t}")))
                        .execute(pool)
                        .await
                        .map_err(StoreError::db("drop a retired table"))?;
                }
            }
        }
        Ok(())
    }
}

/// The DDL of a table or index of `main` (as `sqlite_master` keeps it) for the trace database:
/// the object's name qualified with [`AUDIT_SCHEMA`] (an index's table stays unqualified: it
/// is looked up in the index's own schema).
pub(super) fn in_audit_schema(sql: &str) -> Option<String> {
    let upper = sql.to_ascii_uppercase();
    ["CREATE TABLE ", "CREATE INDEX ", "CREATE UNIQUE INDEX "]
        .iter()
        .find(|p| upper.starts_with(*p))
        .map(|p| format!("{p}{AUDIT_SCHEMA}.{}", &sql[p.len()..]))
}
