//! Statements on the hot paths without sqlx's per-connection worker thread on SQLite.
//!
//! sqlx's SQLite driver runs every connection on its own thread and hands each statement and
//! each row across a channel: two thread wake-ups per statement, which a profile of the FHIR
//! read path showed as the largest cost (BENCHMARKS.md, issue 6).
//!
//! - **Reads outside a transaction** (a session by its token, the gate's facts, one holder's
//!   listings: `Db::fetch_*` in `db::query`): on SQLite they run through
//!   `rusqlite` on the calling thread over a few read-only connections (WAL: a reader never
//!   waits for the writer and sees every commit made before it starts). A reader that finds
//!   the database busy, or fails in any way, neither waits nor reports there: the statement
//!   goes to sqlx's reader pool, off the async worker, which waits and reports as every other
//!   read does. PostgreSQL, and SQLite databases without a file, take the sqlx path.
//! - **The trace appender's batches**: [`with_writer`] lends SQLite's writer connection to a
//!   write pipeline's own thread (`db::spawn_pipeline`), whose statements ([`query_on`],
//!   [`execute_on`]) then run there with no hand-off at all.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};

use crate::db::query::{Arg, Query, Value, Values};
use crate::error::StoreError;

/// Placeholder names of SQLite for the first arguments (`$1` is the parameter named "$1").
const NAMES: [&str; 16] = [
    "$1", "$2", "$3", "$4", "$5", "$6", "$7", "$8", "$9", "$10", "$11", "$12", "$13", "$14", "$15", "$16",
];

/// Read-only SQLite connections used on the calling thread (see the module's text).
pub struct SqliteReaders {
    conns: Vec<Mutex<Connection>>,
    next: AtomicUsize,
}

impl std::fmt::Debug for SqliteReaders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteReaders")
            .field("connections", &self.conns.len())
            .finish()
    }
}

impl SqliteReaders {
    /// Opens `n` read-only connections on the database file `path` (which must exist, in WAL
    /// mode: the writer opened it first), each with the trace database `audit` attached if
    /// there is one (`db::DbOptions::audit`).
    pub(crate) fn open(
        path: &Path,
        n: usize,
        cache_kib: u32,
        audit: Option<&Path>,
    ) -> Result<Arc<Self>, rusqlite::Error> {
        let mut conns = Vec::with_capacity(n);
        for _ in 0..n.max(1) {
            let c = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY
                    | OpenFlags::SQLITE_OPEN_NO_MUTEX
                    | OpenFlags::SQLITE_OPEN_URI,
            )?;
            // Never wait on the async worker: a busy database sends the statement to sqlx.
            c.busy_timeout(std::time::Duration::ZERO)?;
            c.set_prepared_statement_cache_capacity(64);
            c.pragma_update(None, "query_only", 1)?;
            c.pragma_update(None, "temp_store", "memory")?;
            c.pragma_update(None, "cache_size", -i64::from(cache_kib.max(64)))?;
            if let Some(a) = audit {
                // Read-only as the connection (ATTACH takes the main file's open flags).
                c.execute("ATTACH DATABASE ?1 AS audit", [a.to_string_lossy()])?;
            }
            conns.push(Mutex::new(c));
        }
        Ok(Arc::new(Self {
            conns,
            next: AtomicUsize::new(0),
        }))
    }

    /// Runs `q` on a free connection (or waits for one: they are held for microseconds).
    pub(crate) fn run(&self, q: &Query<'_>, limit: usize) -> Result<Vec<Values>, rusqlite::Error> {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let n = self.conns.len();
        let mut held = None;
        for k in 0..n {
            if let Ok(g) = self.conns[(start + k) % n].try_lock() {
                held = Some(g);
                break;
            }
        }
        let guard = match held {
            Some(g) => g,
            // A poisoned connection only means a panic elsewhere mid-statement; SQLite's own
            // state is consistent (the statement is reset on its next use).
            None => self.conns[start % n].lock().unwrap_or_else(|p| p.into_inner()),
        };
        query_on(&guard, &q.sql, &q.args, limit)
    }
}

fn bind_on(stmt: &mut rusqlite::Statement<'_>, args: &[Arg<'_>]) -> Result<(), rusqlite::Error> {
    for (i, a) in args.iter().enumerate() {
        // `$N` is usually the N-th parameter of the text: check that directly (one array read)
        // before searching the names (a scan over every parameter).
        let name = NAMES.get(i).copied();
        let at = match name {
            Some(name) if stmt.parameter_name(i + 1) == Some(name) => Some(i + 1),
            Some(name) => stmt.parameter_index(name)?,
            None => stmt.parameter_index(&format!("${}", i + 1))?,
        };
        let Some(at) = at else {
            continue;
        };
        match a {
            Arg::Null(_) => stmt.raw_bind_parameter(at, rusqlite::types::Null)?,
            Arg::Uuid(u) => stmt.raw_bind_parameter(at, &u.as_bytes()[..])?,
            Arg::Int(v) => stmt.raw_bind_parameter(at, v)?,
            Arg::Bool(v) => stmt.raw_bind_parameter(at, v)?,
            Arg::Text(v) => stmt.raw_bind_parameter(at, v.as_ref())?,
            Arg::Blob(v) => stmt.raw_bind_parameter(at, v.as_ref())?,
            // Arrays are PostgreSQL's (`Query::any_of`): never made for SQLite.
            Arg::List(_) => return Err(rusqlite::Error::InvalidParameterName(format!("${}", i + 1))),
        }
    }
    Ok(())
}

/// Runs `sql` with `args` on `c` (`rusqlite`, this thread), at most `limit` rows.
pub(crate) fn query_on(
    c: &Connection,
    sql: &str,
    args: &[Arg<'_>],
    limit: usize,
) -> Result<Vec<Values>, rusqlite::Error> {
    let mut stmt = c.prepare_cached(sql)?;
    bind_on(&mut stmt, args)?;
    let cols = stmt.column_count();
    let mut rows = stmt.raw_query();
    let mut out = Vec::new();
    while out.len() < limit {
        let Some(row) = rows.next()? else { break };
        let mut vals = Vec::with_capacity(cols);
        for i in 0..cols {
            vals.push(match row.get_ref(i)? {
                ValueRef::Null => Value::Null,
                ValueRef::Integer(n) => Value::Int(n),
                ValueRef::Text(t) => Value::Text(
                    String::from_utf8(t.to_vec())
                        .map_err(|e| rusqlite::Error::Utf8Error(i, e.utf8_error()))?,
                ),
                ValueRef::Blob(b) => Value::Blob(b.to_vec()),
                ValueRef::Real(_) => {
                    return Err(rusqlite::Error::InvalidColumnType(
                        i,
                        "REAL".into(),
                        rusqlite::types::Type::Real,
                    ));
                }
            });
        }
        out.push(Values(vals));
    }
    Ok(out)
}

/// Executes `sql` with `args` on `c`; returns the number of rows changed.
pub(crate) fn execute_on(c: &Connection, sql: &str, args: &[Arg<'_>]) -> Result<usize, rusqlite::Error> {
    let mut stmt = c.prepare_cached(sql)?;
    bind_on(&mut stmt, args)?;
    stmt.raw_execute()
}

/// Runs `f` on SQLite's writer connection, on this thread: the connection is taken from the
/// writer pool (so it waits for, and excludes, every other write) and its handle borrowed from
/// sqlx's worker for the duration. For a pipeline on its own thread (`db::spawn_pipeline`),
/// whose steps then need no thread hand-off; `f` must leave no transaction open.
pub(crate) async fn with_writer<T>(
    write: &sqlx::SqlitePool,
    f: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let mut conn = write.acquire().await.map_err(StoreError::db("take the writer"))?;
    let mut handle = conn
        .lock_handle()
        .await
        .map_err(StoreError::db("take the writer"))?;
    // SAFETY: `LockedSqliteHandle` gives this thread exclusive use of the open handle until it
    // is dropped (sqlx's worker waits on the same lock). The `Connection` made from it does not
    // own the handle (it never closes it), finalizes its own statements when dropped, and is
    // dropped below, before the lock is released.
    let c = unsafe { Connection::from_handle(handle.as_raw_handle().as_ptr()) }
        .map_err(|e| sqlite_error("take the writer", e))?;
    let out = f(&c);
    if !c.is_autocommit() {
        // `f` failed inside its transaction: leave the connection as sqlx expects it.
        let _ = c.execute_batch("ROLLBACK");
    }
    drop(c);
    drop(handle);
    out
}

/// A `rusqlite` failure on the write path, as the store reports it: a full disk is
/// [`StoreError::DiskFull`] (507); anything else failed the commit (503).
pub(crate) fn sqlite_error(op: &'static str, e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DiskFull) => StoreError::DiskFull,
        _ => StoreError::Commit(format!("{op}: {e}")),
    }
}

/// Whether `e` is a uniqueness violation (another server wrote the same key first).
pub(crate) fn is_sqlite_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
            || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{Db, DbOptions};

    const CREATE: &str = "CREATE TABLE r (id {{UUID}} NOT NULL PRIMARY KEY, n BIGINT NOT NULL, \
                          t TEXT, b {{BYTES}})";
    const SELECT: &str = "SELECT id, n, t, b FROM r WHERE n >= $2 AND id <> $1 ORDER BY n";

    type Row4 = (uuid::Uuid, i64, Option<String>, Option<Vec<u8>>);

    /// The bundled SQLite is built with the workspace's `.cargo/config.toml` flags: no
    /// process-wide page cache, allocation statistics or page-slot pool, each behind a mutex
    /// that every reader thread took for every page it loaded (a +12–20 % on the FHIR bench).
    #[test]
    fn sqlite_is_built_without_process_wide_mutexes() {
        let c = Connection::open_in_memory().unwrap();
        let mut st = c.prepare("PRAGMA compile_options").unwrap();
        let options: Vec<String> = st
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(options.iter().any(|o| o == "THREADSAFE=1"), "{options:?}");
        assert!(options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"), "{options:?}");
        assert!(
            options.iter().any(|o| o == "DEFAULT_PCACHE_INITSZ=0"),
            "{options:?}"
        );
        assert!(
            !options.iter().any(|o| o == "ENABLE_MEMORY_MANAGEMENT"),
            "{options:?}"
        );
    }

    async fn fill(db: &Db, ids: &[uuid::Uuid]) {
        let engine = db.engine();
        let ddl = crate::db::Migration {
            version: 0,
            name: "t",
            sql: CREATE,
        }
        .render(engine);
        let mut tx = db.begin().await.unwrap();
        tx.execute(Query::built(ddl), "create").await.unwrap();
        for (i, id) in ids.iter().enumerate() {
            let text = (i % 2 == 0).then(|| format!("é{i}"));
            let bytes = (i % 3 == 0).then(|| vec![i as u8, 0, 255]);
            // Typed NULLs: PostgreSQL refuses a text NULL in a bytea column.
            let q = Query::new("INSERT INTO r (id, n, t, b) VALUES ($1, $2, $3, $4)")
                .bind(id)
                .bind(i as i64)
                .bind(&text)
                .bind(&bytes);
            tx.execute(q, "insert").await.unwrap();
        }
        tx.commit().await.unwrap();
    }

    fn decode(rows: Vec<Values>) -> Vec<Row4> {
        rows.into_iter()
            .map(|mut r| {
                (
                    r.take(0).unwrap(),
                    r.take(1).unwrap(),
                    r.take(2).unwrap(),
                    r.take(3).unwrap(),
                )
            })
            .collect()
    }

    fn expected(ids: &[uuid::Uuid]) -> Vec<Row4> {
        ids.iter()
            .enumerate()
            .skip(2)
            .map(|(i, id)| {
                (
                    *id,
                    i as i64,
                    (i % 2 == 0).then(|| format!("é{i}")),
                    (i % 3 == 0).then(|| vec![i as u8, 0, 255]),
                )
            })
            .collect()
    }

    /// The same rows, decoded by the same code, whichever path ran the statement: SQLite's
    /// inline readers, sqlx's pool (what a busy reader falls back to) and PostgreSQL.
    async fn same_answer_on(db: &Db) {
        let ids: Vec<uuid::Uuid> = (0..6).map(|_| uuid::Uuid::now_v7()).collect();
        fill(db, &ids).await;
        // $1 excludes the row with n = 1 (and appears after $2 in the text).
        let q = || Query::new(SELECT).bind(ids[1]).bind(2);
        let all = db.fetch_all(q(), "test").await.unwrap();
        assert_eq!(decode(all), expected(&ids));
        let one = db.fetch_optional(q(), "test").await.unwrap().unwrap();
        assert_eq!(decode(vec![one]), expected(&ids)[..1]);
        assert!(
            db.fetch_optional(Query::new(SELECT).bind(ids[0]).bind(99), "test")
                .await
                .unwrap()
                .is_none()
        );
        // A wrong type is an error, not a panic.
        let mut row = db.fetch_optional(q(), "test").await.unwrap().unwrap();
        assert!(matches!(row.take::<String>(1), Err(StoreError::Integrity(_))));
        assert!(matches!(row.take::<i64>(9), Err(StoreError::Integrity(_))));
    }

    fn sqlite_url(dir: &tempfile::TempDir) -> String {
        format!("sqlite://{}", dir.path().join("r.db").display())
    }

    fn create() -> DbOptions {
        DbOptions {
            create_if_missing: true,
            ..DbOptions::default()
        }
    }

    #[tokio::test]
    async fn sqlite_inline_readers_and_the_pool_agree() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&sqlite_url(&dir), &create()).await.unwrap();
        assert!(matches!(&db, Db::Sqlite { fast: Some(_), .. }));
        same_answer_on(&db).await;
        // The same database without the inline readers: sqlx's pool answers alike.
        let Db::Sqlite { read, write, .. } = &db else {
            unreachable!()
        };
        let pooled = Db::Sqlite {
            read: read.clone(),
            write: write.clone(),
            fast: None,
        };
        let ids: Vec<uuid::Uuid> = decode(
            pooled
                .fetch_all(Query::new("SELECT id, n, t, b FROM r ORDER BY n"), "t")
                .await
                .unwrap(),
        )
        .into_iter()
        .map(|r| r.0)
        .collect();
        let q = Query::new(SELECT).bind(ids[1]).bind(2);
        assert_eq!(decode(pooled.fetch_all(q, "test").await.unwrap()), expected(&ids));
    }

    #[tokio::test]
    async fn an_in_memory_database_reads_through_the_pool() {
        let db = Db::connect("sqlite::memory:", &create()).await.unwrap();
        assert!(matches!(&db, Db::Sqlite { fast: None, .. }));
    }

    /// An inline reader that fails (here: opened on another file, without the table; in
    /// service: a busy database, an I/O error) neither answers nor blocks: the statement goes
    /// to sqlx's pool, which answers from the database.
    #[tokio::test]
    async fn a_failing_inline_reader_hands_the_statement_to_the_pool() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&sqlite_url(&dir), &create()).await.unwrap();
        let ids: Vec<uuid::Uuid> = (0..6).map(|_| uuid::Uuid::now_v7()).collect();
        fill(&db, &ids).await;
        let other = dir.path().join("other.db");
        Connection::open(&other)
            .unwrap()
            .execute_batch("CREATE TABLE x (n BIGINT)")
            .unwrap();
        let Db::Sqlite { read, write, .. } = &db else {
            unreachable!()
        };
        let broken = SqliteReaders::open(&other, 2, 2048, None).unwrap();
        let q = || Query::new(SELECT).bind(ids[1]).bind(2);
        assert!(broken.run(&q(), 10).is_err(), "the inline reader fails");
        let db = Db::Sqlite {
            read: read.clone(),
            write: write.clone(),
            fast: Some(broken),
        };
        assert_eq!(decode(db.fetch_all(q(), "test").await.unwrap()), expected(&ids));
    }

    #[tokio::test]
    #[allow(clippy::disallowed_methods)] // the test database's URL
    async fn postgres_answers_alike() {
        let Some(base) = std::env::var("CARNET_TEST_DATABASE_URL")
            .ok()
            .filter(|s| !s.is_empty())
        else {
            return;
        };
        let schema = format!("r_{}", uuid::Uuid::new_v4().simple());
        let admin = sqlx::PgPool::connect(&base).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&admin)
            .await
            .unwrap();
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
        let db = Db::connect(&url, &DbOptions::default()).await.unwrap();
        same_answer_on(&db).await;
        db.close().await;
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
            .execute(&admin)
            .await
            .unwrap();
    }
}
