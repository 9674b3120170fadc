//! Ready to shard by holder (issue 34, `docs/design/sharding.md`): when one PostgreSQL
//! primary is not enough, every table of holder data is distributed by `holder_id` with Citus
//! and colocated, so that a request about one holder runs on one node. Two checks keep that
//! true as the schema grows:
//!
//! - the schema: every table is classified (holder data, keyed by a lookup key of its own, or
//!   reference data replicated to every node); a table of holder data leads its primary key
//!   and every index with the holder's id, except the cross-holder indexes listed below with
//!   the statement they serve; a table keyed by its own lookup key has that key in its primary
//!   key and in every unique index (Citus's rule for distributed tables);
//! - the statements: every statement of the store that reads or changes a table of holder data
//!   filters by the holder's id, except the cross-holder statements listed below (the jobs,
//!   the operators' aggregates, lookups by a blind index before the holder is known).
//!
//! The migrations are one text for both engines (`db::migrations`), so the keys checked here
//! on SQLite are PostgreSQL's too.

use std::sync::Arc;

use carnet_domain::SystemClock;
use carnet_store::datadir::{StoreSettings, open_store};
use sqlx::Row;

/// How a table is placed on a cluster distributed by holder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Placement {
    /// Holder data: distributed by this column (the holder's id), colocated.
    Holder(&'static str),
    /// Holder data without a key: an append-only work list, distributed by `holder_id`.
    HolderAppendOnly,
    /// Looked up by a key of its own before the holder is known (a secret's hash, a message
    /// id, a professional's RPPS): distributed by that column, not colocated.
    Keyed(&'static str),
    /// Small and read everywhere: replicated to every node.
    Reference,
}

use Placement::*;

const TABLES: &[(&str, Placement)] = &[
    // Holder data.
    ("holders", Holder("id")),
    ("holder_keys", Holder("holder_id")),
    ("traces", Holder("holder_id")),
    ("trace_heads_moved", HolderAppendOnly),
    ("access_policies", Holder("holder_id")),
    ("representatives", Holder("holder_id")),
    ("carers", Holder("holder_id")),
    ("known_devices", Holder("holder_id")),
    ("credentials", Holder("holder_id")),
    ("notification_preferences", Holder("holder_id")),
    ("emergency_accesses", Holder("holder_id")),
    ("documents", Holder("holder_id")),
    ("document_stamps", Holder("holder_id")),
    ("attachments", Holder("holder_id")),
    ("legacy_documents", Holder("holder_id")),
    ("profile_entries", Holder("holder_id")),
    ("measurements", Holder("holder_id")),
    ("conversations", Holder("holder_id")),
    ("messages", Holder("holder_id")),
    ("agenda_events", Holder("holder_id")),
    ("reimbursements", Holder("holder_id")),
    // Keyed by a lookup key of their own.
    ("sessions", Keyed("token_hash")),
    ("carer_invitations", Keyed("code_hash")),
    ("login_challenges", Keyed("id")),
    ("webauthn_challenges", Keyed("challenge_hash")),
    ("passkeys", Keyed("credential_id")),
    ("oidc_links", Keyed("subject_index")),
    ("oidc_requests", Keyed("state_hash")),
    ("oauth_codes", Keyed("code_hash")),
    ("oauth_tokens", Keyed("token_hash")),
    ("agenda_feeds", Keyed("token_hash")),
    ("pro_sessions", Keyed("token_hash")),
    ("pro_notices", Keyed("rpps")),
    ("pro_patients", Keyed("rpps")),
    ("pro_grants", Keyed("rpps")),
    ("outbox", Keyed("id")),
    ("rate_limits", Keyed("bucket")),
    ("system_assertions", Keyed("client_id")),
    ("system_tokens", Keyed("token_hash")),
    ("trace_checkpoint_leaves", Keyed("checkpoint")),
    // Reference data.
    ("carnet_migrations", Reference),
    ("carnet_vault_migrations", Reference),
    ("master_keys", Reference),
    ("service_keys", Reference),
    ("professionals", Reference),
    ("organisations", Reference),
    ("system_clients", Reference),
    ("referencing_accounts", Reference),
    ("services", Reference),
    ("service_steps", Reference),
    ("trace_checkpoints", Reference),
];

/// Indexes of holder data that do not lead with the holder's id, each with what reads it.
/// On a Citus cluster each shard keeps its own; the statement runs on every node.
const CROSS_HOLDER_INDEXES: &[(&str, &str)] = &[
    (
        "holders_by_ins",
        "INS blind index: roster import, INS lookups, the insurer's feed (a lookup table at distribution)",
    ),
    (
        "holders_by_identity",
        "OpenID identity index: the FranceConnect login (a lookup table at distribution)",
    ),
    ("holders_due", "the lifecycle job"),
    ("holders_majority", "the majority job"),
    (
        "credentials_login_index",
        "the login by login name (a lookup table at distribution)",
    ),
    (
        "representatives_by_representative",
        "the spaces a person represents",
    ),
    ("carers_by_carer", "the spaces a carer helps (MI-5)"),
    (
        "conversations_by_counterpart",
        "a professional's inbox across patients",
    ),
    ("agenda_reminders_due", "the reminders job"),
    ("documents_notice_due", "the DM-6 notices job"),
    (
        "attachments_by_blob",
        "whether a blob is still referenced before it is deleted",
    ),
    (
        "reimbursements_by_tag",
        "the insurer's feed: lines already filed, for a batch of holders",
    ),
];

/// Statements on holder data that do not filter by the holder, by their opening words.
const CROSS_HOLDER_STATEMENTS: &[(&str, &str)] = &[
    ("SELECT id FROM holders WHERE ins_index", "INS lookup"),
    (
        "SELECT ins_index, id FROM holders WHERE ins_index",
        "roster import and insurer feed",
    ),
    ("SELECT id FROM holders WHERE identity_index", "OpenID login"),
    (
        "SELECT id, lifecycle, state_since, erase_requested_at FROM holders WHERE due_at",
        "lifecycle job",
    ),
    (
        "SELECT id, majority_at FROM holders WHERE majority_at",
        "majority job",
    ),
    (
        "SELECT id, lifecycle, state_since FROM holders WHERE id",
        "insurer feed: the batch's spaces by id",
    ),
    (
        "UPDATE holders SET updated_at = updated_at WHERE",
        "insurer feed: the batch's spaces by id",
    ),
    (
        "SELECT COUNT(*) FROM attachments WHERE blob_hash",
        "blob garbage collection",
    ),
    ("SELECT lifecycle, COUNT(*) FROM holders", "operators' aggregates"),
    ("SELECT COUNT(*) FROM holders", "operators' aggregates"),
    ("SELECT COUNT(*) FROM agenda_events", "operators' aggregates"),
    ("SELECT COUNT(*) FROM traces", "operators' aggregates"),
    (
        "SELECT DISTINCT kid FROM holder_keys",
        "key rotation: the master keys in use",
    ),
    (
        "SELECT kid, COUNT(*) FROM holder_keys",
        "key rotation: the master keys in use",
    ),
    (
        "SELECT holder_id, kid, wrapped FROM holder_keys WHERE kid <>",
        "key rotation job",
    ),
    (
        "SELECT holder_id, password_hash FROM credentials WHERE login_index",
        "login by login name",
    ),
    (
        "SELECT t.kind, t.client_id, t.holder_id",
        "an app's token, then its holder's state",
    ),
    (
        "SELECT e.holder_id, e.id, e.next_reminder_at FROM agenda_events",
        "reminders job",
    ),
    (
        "SELECT holder_id, id, blob_hash FROM attachments",
        "the blob store's check against the rows",
    ),
    (
        "SELECT holder_id, line_tag FROM reimbursements WHERE line_tag",
        "insurer feed: a batch of holders",
    ),
    (
        "SELECT r.holder_id, r.kind FROM representatives r",
        "the spaces a person represents",
    ),
    (
        "SELECT holder_id, since, until_at FROM carers WHERE carer_id",
        "the spaces a carer helps (MI-5)",
    ),
    (
        "SELECT COUNT(DISTINCT holder_id) FROM trace_heads_moved",
        "operators' aggregates",
    ),
    (
        "SELECT holder_id, id FROM documents WHERE notice_due_at",
        "DM-6 notices job",
    ),
    (
        "SELECT DISTINCT holder_id FROM traces",
        "verify-traces: every chain",
    ),
    ("SELECT m.holder_id, m.seq, t.hash FROM", "trace checkpointer"),
    (
        "DELETE FROM trace_heads_moved WHERE holder_id <=",
        "trace checkpointer",
    ),
    (
        "SELECT l.holder_id, l.seq, l.hash, t.hash, h.lifecycle",
        "trace checkpoint verification",
    ),
];

fn placement(table: &str) -> Option<Placement> {
    TABLES.iter().find(|(t, _)| *t == table).map(|(_, p)| *p)
}

/// Every table of the three database files of a fresh store, with its primary key and its
/// indexes (name, unique, columns).
type Indexes = Vec<(String, bool, Vec<String>)>;
async fn schema() -> Vec<(String, Vec<String>, Vec<String>, Indexes)> {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let store = open_store(&StoreSettings::new(&data), Arc::new(SystemClock))
        .await
        .unwrap();
    let mut out = Vec::new();
    for file in ["carnet.db", "carnet-audit.db", "keys.db"] {
        let url = format!("sqlite://{}?mode=ro", data.join(file).display());
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        let tables: Vec<String> = sqlx::query(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
        )
        .fetch_all(&pool)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
        for t in tables {
            let cols = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT name, pk FROM pragma_table_info('{t}')"
            )))
            .fetch_all(&pool)
            .await
            .unwrap();
            let columns: Vec<String> = cols.iter().map(|r| r.get(0)).collect();
            let mut pk: Vec<(i64, String)> = cols
                .iter()
                .filter(|r| r.get::<i64, _>(1) > 0)
                .map(|r| (r.get(1), r.get(0)))
                .collect();
            pk.sort();
            let mut indexes = Vec::new();
            let list = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT name, \"unique\", origin FROM pragma_index_list('{t}')"
            )))
            .fetch_all(&pool)
            .await
            .unwrap();
            for r in list {
                let (name, unique, origin): (String, i64, String) = (r.get(0), r.get(1), r.get(2));
                if origin == "pk" {
                    continue; // the primary key, checked as such
                }
                let cols: Vec<String> = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT name FROM pragma_index_info('{name}') ORDER BY seqno"
                )))
                .fetch_all(&pool)
                .await
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect();
                // A column's UNIQUE constraint gets SQLite's automatic name: name it by table
                // and columns, as PostgreSQL would.
                let name = if origin == "u" {
                    format!("{t}_{}", cols.join("_"))
                } else {
                    name
                };
                indexes.push((name, unique != 0, cols));
            }
            out.push((t, columns, pk.into_iter().map(|(_, c)| c).collect(), indexes));
        }
        pool.close().await;
    }
    store.db().close().await;
    out
}

#[tokio::test]
async fn holder_data_leads_its_keys_and_indexes_with_the_holder() {
    let mut problems = Vec::new();
    let tables = schema().await;
    for (table, columns, pk, indexes) in &tables {
        let Some(p) = placement(table) else {
            problems.push(format!(
                "{table}: not classified: add it to TABLES (holder data, keyed or reference) and to docs/design/sharding.md"
            ));
            continue;
        };
        match p {
            Holder(key) => {
                if pk.first().map(String::as_str) != Some(key) {
                    problems.push(format!("{table}: primary key {pk:?} does not lead with {key}"));
                }
                for (name, _, cols) in indexes {
                    let listed = CROSS_HOLDER_INDEXES.iter().any(|(i, _)| i == name);
                    if cols.first().map(String::as_str) != Some(key) && !listed {
                        problems.push(format!("{table}: index {name} {cols:?} does not lead with {key}"));
                    }
                }
            }
            HolderAppendOnly => {
                if !pk.is_empty() || !indexes.is_empty() || !columns.iter().any(|c| c == "holder_id") {
                    problems.push(format!("{table}: an append-only list has holder_id and no key"));
                }
            }
            Keyed(key) => {
                if !pk.iter().any(|c| c == key) {
                    problems.push(format!("{table}: primary key {pk:?} does not hold {key}"));
                }
                for (name, unique, cols) in indexes {
                    if *unique && !cols.iter().any(|c| c == key) {
                        problems.push(format!(
                            "{table}: unique index {name} {cols:?} does not hold {key}"
                        ));
                    }
                }
            }
            Reference => {}
        }
    }
    for (t, _) in TABLES {
        if !tables.iter().any(|(name, ..)| name == t) {
            problems.push(format!("{t}: classified but not in the schema"));
        }
    }
    for (i, _) in CROSS_HOLDER_INDEXES {
        if !tables.iter().any(|(.., idx)| idx.iter().any(|(n, ..)| n == i)) {
            problems.push(format!(
                "{i}: listed as a cross-holder index but not in the schema"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "not ready to shard by holder:\n{}",
        problems.join("\n")
    );
}

/// The store's source files.
fn source_files() -> Vec<std::path::PathBuf> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    let mut dirs = vec![root];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                files.push(p);
            }
        }
    }
    files
}

/// Every statement is a `db::query::Query` that `db/` runs on either engine: outside `db/`
/// no code names sqlx (its pools, rows or query functions), so no per-engine SQL path grows
/// beside the one the storage suite tests on both engines (ARCHITECTURE.md, `carnet-store`).
#[test]
fn only_db_names_sqlx() {
    let db = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/db");
    let mut found = Vec::new();
    for f in source_files() {
        if f.starts_with(&db) || f.ends_with("error.rs") {
            continue; // `error.rs` wraps sqlx's errors
        }
        let src = std::fs::read_to_string(&f).unwrap();
        for (n, l) in src.lines().enumerate() {
            if l.contains("sqlx::") || l.contains("use sqlx") {
                found.push(format!("{}:{}: {}", f.display(), n + 1, l.trim()));
            }
        }
    }
    assert!(found.is_empty(), "sqlx named outside db/:\n{}", found.join("\n"));
}

/// The SQL texts of the store's sources (string literals holding a statement), with where
/// they are; Rust's line continuations joined.
fn statements() -> Vec<(String, String)> {
    let files = source_files();
    let mut out = Vec::new();
    for f in files {
        let src = std::fs::read_to_string(&f).unwrap();
        // Unit tests set up their own rows.
        let src = src.split("#[cfg(test)]").next().unwrap_or_default();
        let mut joined = String::new();
        let mut lines = src.lines().peekable();
        while let Some(l) = lines.next() {
            if let Some(head) = l.strip_suffix('\\') {
                joined.push_str(head);
                while let Some(next) = lines.peek() {
                    let next = next.trim_start();
                    if let Some(h) = next.strip_suffix('\\') {
                        joined.push_str(h);
                        lines.next();
                    } else {
                        break;
                    }
                }
                if let Some(next) = lines.next() {
                    joined.push_str(next.trim_start());
                }
                joined.push('\n');
            } else {
                joined.push_str(l);
                joined.push('\n');
            }
        }
        for literal in joined.split('"').skip(1).step_by(2) {
            let s = literal.trim();
            if ["SELECT ", "UPDATE ", "DELETE "].iter().any(|k| s.starts_with(k)) {
                out.push((f.display().to_string(), s.to_string()));
            }
        }
    }
    out
}

/// The tables a statement reads or changes.
fn tables_of(sql: &str) -> Vec<String> {
    let words: Vec<&str> = sql
        .split(|c: char| c.is_whitespace() || c == '(' || c == ',')
        .collect();
    words
        .windows(2)
        .filter(|w| ["FROM", "UPDATE", "JOIN"].contains(&w[0]))
        .map(|w| w[1].to_string())
        .collect()
}

/// Whether the statement's conditions pin the holder (`holder_id = …`, `holder_id IN …`,
/// `holder_id {in}` of `Query::any_of`, `id = …` for the holders table).
fn pins_the_holder(sql: &str, key: &str) -> bool {
    let Some((_, conditions)) = sql.split_once("WHERE") else {
        return false;
    };
    let normal = conditions.replace(['(', ')'], " ");
    let words: Vec<&str> = normal.split_whitespace().collect();
    words.windows(2).any(|w| {
        let column = w[0].rsplit('.').next().unwrap_or_default();
        column == key && (w[1] == "=" || w[1] == "{in}" || w[1].eq_ignore_ascii_case("IN"))
    })
}

#[test]
fn statements_on_holder_data_filter_by_the_holder() {
    let all = statements();
    assert!(
        all.len() > 100,
        "the store's statements were not found: {}",
        all.len()
    );
    let mut problems = Vec::new();
    for (file, sql) in &all {
        for t in tables_of(sql) {
            let key = match placement(&t) {
                Some(Holder(key)) => key,
                Some(HolderAppendOnly) => "holder_id",
                _ => continue,
            };
            let listed = CROSS_HOLDER_STATEMENTS
                .iter()
                .any(|(head, _)| sql.starts_with(head));
            if !listed && !pins_the_holder(sql, key) && !pins_the_holder(sql, "holder_id") {
                problems.push(format!("{file}: on {t} without the holder: {sql}"));
            }
        }
    }
    problems.dedup();
    assert!(
        problems.is_empty(),
        "statements on holder data that do not filter by the holder (filter, or list the \
         cross-holder statement with its reason):\n{}",
        problems.join("\n")
    );
}
