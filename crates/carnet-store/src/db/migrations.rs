//! The migration runner and the schema's migrations, one SQL text for both engines
//! (`{{BLOB}}`, `{{SERIAL}}` and the like rendered per engine).

use crate::error::StoreError;

use super::*;
use crate::db::query::Query;

impl Db {
    /// Applies the pending migrations of `set`, each in its own transaction, and checks that
    /// the ones already applied are unchanged. Safe when several servers start at once: the
    /// version row is inserted first, so a second server blocks on it, then sees it applied.
    pub async fn migrate(&self, set: &MigrationSet) -> Result<Vec<i64>, StoreError> {
        let table = set.table;
        let create = format!(
            "CREATE TABLE IF NOT EXISTS {table} (version BIGINT PRIMARY KEY, name TEXT NOT NULL, \
             checksum TEXT NOT NULL, applied_at BIGINT NOT NULL)"
        );
        {
            let mut tx = self.begin().await?;
            tx.execute(Query::built(create.clone()), "create migrations table")
                .await?;
            tx.commit().await?;
        }
        let mut applied_now = Vec::new();
        for m in set.migrations {
            let sql = m.render(self.engine());
            let checksum = crate::crypto::sha256_hex(sql.as_bytes());
            let select = format!("SELECT checksum FROM {table} WHERE version = $1");
            let existing: Option<String> = self
                .writer()
                .fetch_optional_as::<String>(Query::built(select.clone()).bind(m.version), "read migrations")
                .await?;
            if let Some(existing) = existing {
                if existing != checksum {
                    return Err(StoreError::Migration(format!(
                        "migration {} ({}) was changed after it was applied",
                        m.version, m.name
                    )));
                }
                continue;
            }
            let mut tx = self.begin().await?;
            let insert =
                format!("INSERT INTO {table} (version, name, checksum, applied_at) VALUES ($1, $2, $3, $4)");
            let now = carnet_domain::Clock::now(&carnet_domain::SystemClock).as_micros();
            let insert = Query::built(insert)
                .bind(m.version)
                .bind(m.name)
                .bind(&checksum)
                .bind(now);
            match tx.execute(insert, "record migration").await {
                Ok(_) => {}
                Err(e) if e.is_unique_violation() => continue, // another server applied it meanwhile
                Err(e) => return Err(e),
            }
            tx.execute_script(sql)
                .await
                .map_err(|e| StoreError::Migration(format!("migration {} ({}): {e}", m.version, m.name)))?;
            tx.commit().await?;
            applied_now.push(m.version);
        }
        Ok(applied_now)
    }

    /// Whether any table of `set` exists: tells an initialised database from an empty one.
    pub async fn is_initialised(&self, set: &MigrationSet) -> Result<bool, StoreError> {
        let q = match self.engine() {
            Engine::Sqlite => "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = $1",
            Engine::Postgres => {
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = $1"
            }
        };
        let n: i64 = self
            .writer()
            .fetch_one(Query::new(q).bind(set.table), "inspect schema")
            .await
            .and_then(|mut r| r.take::<i64>(0))?;
        Ok(n > 0)
    }
}

/// One migration, as embedded in the binary.
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

impl Migration {
    /// The SQL for `engine`: the only dialect differences are the id and bytes column types,
    /// and migrations whose first line is `-- engines: sqlite` (a storage layout of SQLite's
    /// own, such as `WITHOUT ROWID`), which are a no-op on PostgreSQL.
    pub fn render(&self, engine: Engine) -> String {
        if engine == Engine::Postgres && self.sql.starts_with("-- engines: sqlite\n") {
            return format!(
                "-- migration {} ({}) applies to SQLite only\nSELECT 1;",
                self.version, self.name
            );
        }
        // `{{BYTEWISE}}`: a text column ordered byte by byte whatever the database's locale,
        // so that prefix ranges (`>= 'ab' AND < 'ab\u{10FFFF}'`) hold (SQLite's default).
        let (uuid, bytes, bytewise) = match engine {
            Engine::Sqlite => ("BLOB", "BLOB", ""),
            Engine::Postgres => ("UUID", "BYTEA", "COLLATE \"C\""),
        };
        self.sql
            .replace("{{UUID}}", uuid)
            .replace("{{BYTES}}", bytes)
            .replace("{{BYTEWISE}}", bytewise)
    }
}

/// An ordered list of migrations and the table that records them.
pub struct MigrationSet {
    pub table: &'static str,
    pub migrations: &'static [Migration],
}

/// The main database's schema.
pub static MAIN_MIGRATIONS: MigrationSet = MigrationSet {
    table: "carnet_migrations",
    migrations: &[
        Migration {
            version: 1,
            name: "init",
            sql: include_str!("../../migrations/main/0001_init.sql"),
        },
        Migration {
            version: 2,
            name: "lifecycle",
            sql: include_str!("../../migrations/main/0002_lifecycle.sql"),
        },
        Migration {
            version: 3,
            name: "auth",
            sql: include_str!("../../migrations/main/0003_auth.sql"),
        },
        Migration {
            version: 4,
            name: "oidc",
            sql: include_str!("../../migrations/main/0004_oidc.sql"),
        },
        Migration {
            version: 5,
            name: "totp",
            sql: include_str!("../../migrations/main/0005_totp.sql"),
        },
        Migration {
            version: 6,
            name: "gate",
            sql: include_str!("../../migrations/main/0006_gate.sql"),
        },
        Migration {
            version: 7,
            name: "professionals",
            sql: include_str!("../../migrations/main/0007_professionals.sql"),
        },
        Migration {
            version: 8,
            name: "documents",
            sql: include_str!("../../migrations/main/0008_documents.sql"),
        },
        Migration {
            version: 9,
            name: "checkpoints",
            sql: include_str!("../../migrations/main/0009_checkpoints.sql"),
        },
        Migration {
            version: 10,
            name: "notifications",
            sql: include_str!("../../migrations/main/0010_notifications.sql"),
        },
        Migration {
            version: 11,
            name: "profile",
            sql: include_str!("../../migrations/main/0011_profile.sql"),
        },
        Migration {
            version: 12,
            name: "legacy",
            sql: include_str!("../../migrations/main/0012_legacy.sql"),
        },
        Migration {
            version: 13,
            name: "passkeys",
            sql: include_str!("../../migrations/main/0013_passkeys.sql"),
        },
        Migration {
            version: 14,
            name: "system_clients",
            sql: include_str!("../../migrations/main/0014_system_clients.sql"),
        },
        Migration {
            version: 15,
            name: "messaging",
            sql: include_str!("../../migrations/main/0015_messaging.sql"),
        },
        Migration {
            version: 16,
            name: "agenda",
            sql: include_str!("../../migrations/main/0016_agenda.sql"),
        },
        Migration {
            version: 17,
            name: "reimbursements",
            sql: include_str!("../../migrations/main/0017_reimbursements.sql"),
        },
        Migration {
            version: 18,
            name: "catalogue",
            sql: include_str!("../../migrations/main/0018_catalogue.sql"),
        },
        Migration {
            version: 19,
            name: "clustered",
            sql: include_str!("../../migrations/main/0019_clustered.sql"),
        },
        Migration {
            version: 20,
            name: "traces_rowid",
            sql: include_str!("../../migrations/main/0020_traces_rowid.sql"),
        },
        Migration {
            version: 21,
            name: "trace_heads_moved",
            sql: include_str!("../../migrations/main/0021_trace_heads_moved.sql"),
        },
        Migration {
            version: 22,
            name: "document_stamps",
            sql: include_str!("../../migrations/main/0022_document_stamps.sql"),
        },
        Migration {
            version: 23,
            name: "emergency_by_until",
            sql: include_str!("../../migrations/main/0023_emergency_by_until.sql"),
        },
        Migration {
            version: 24,
            name: "webauthn_state",
            sql: include_str!("../../migrations/main/0024_webauthn_state.sql"),
        },
        Migration {
            version: 25,
            name: "pro_patients",
            sql: include_str!("../../migrations/main/0025_pro_patients.sql"),
        },
        Migration {
            version: 26,
            name: "directory_search",
            sql: include_str!("../../migrations/main/0026_directory_search.sql"),
        },
        Migration {
            version: 27,
            name: "erase_on_request",
            sql: include_str!("../../migrations/main/0027_erase_on_request.sql"),
        },
        Migration {
            version: 28,
            name: "pro_notice_detail",
            sql: include_str!("../../migrations/main/0028_pro_notice_detail.sql"),
        },
        Migration {
            version: 29,
            name: "message_language",
            sql: include_str!("../../migrations/main/0029_message_language.sql"),
        },
        Migration {
            version: 30,
            name: "carers",
            sql: include_str!("../../migrations/main/0030_carers.sql"),
        },
        Migration {
            version: 31,
            name: "pro_grants",
            sql: include_str!("../../migrations/main/0031_pro_grants.sql"),
        },
    ],
};

/// The key vault's schema.
pub static VAULT_MIGRATIONS: MigrationSet = MigrationSet {
    table: "carnet_vault_migrations",
    migrations: &[
        Migration {
            version: 1,
            name: "init",
            sql: include_str!("../../migrations/vault/0001_init.sql"),
        },
        Migration {
            version: 2,
            name: "service_keys",
            sql: include_str!("../../migrations/vault/0002_service_keys.sql"),
        },
    ],
};
