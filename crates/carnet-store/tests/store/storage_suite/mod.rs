//! The storage test-suite, run against SQLite always and against PostgreSQL when
//! `CARNET_TEST_DATABASE_URL` is set (CI sets it). Every case runs on both engines through
//! the same code. Cites: S-30 (durability), LC-7 (crypto-shredding), SE-3 (encryption).
//! It reads holder rows as stored (sealing, erasure, shredding), which `clippy.toml` keeps
//! from every other caller.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use carnet_domain::{Clock, HolderId, ManualClock, SystemClock, Timestamp};
use carnet_store::datadir::{StoreSettings, open_store, rotate_master_key};
use carnet_store::db::query::Query;
use carnet_store::{BlobHash, BlobStore, Db, DbOptions, Store, StoreError};

const ADMIN: &[u8] = br#"{"family_name":"DUPONT-TESTEUR","given":"Zoe","ins":"2850275123456"}"#;
const PDF: &[u8] = b"%PDF-1.7 compte rendu: hypertension arterielle, suivi cardiologique";

/// One engine's environment: a temp data dir, and for PostgreSQL two fresh schemas.
pub(super) struct Env {
    dir: tempfile::TempDir,
    settings: StoreSettings,
}

#[derive(Clone, Copy, Debug)]
pub(super) enum Engine {
    Sqlite,
    Postgres,
}

use crate::support::pg;
use pg::{pg_base, pg_schema_url};

impl Env {
    async fn new(engine: Engine) -> Option<Env> {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let mut settings = StoreSettings::new(&data);
        if let Engine::Postgres = engine {
            let base = pg_base()?;
            settings.database_url = Some(pg_schema_url(&base).await);
            settings.keys_url = Some(pg_schema_url(&base).await);
        }
        Some(Env { dir, settings })
    }

    async fn open(&self) -> Result<Store, StoreError> {
        open_store(&self.settings, Arc::new(SystemClock)).await
    }

    async fn open_at(&self, clock: &ManualClock) -> Store {
        open_store(&self.settings, Arc::new(clock.clone())).await.unwrap()
    }

    fn data(&self) -> &Path {
        &self.settings.data_dir
    }
}

/// Declares each case once; it runs on both engines.
macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let env = super::Env::new(super::Engine::Sqlite).await.unwrap();
                super::$name(env, super::Engine::Sqlite).await;
            })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some(env) = super::Env::new(super::Engine::Postgres).await else {
                    eprintln!("CARNET_TEST_DATABASE_URL not set: PostgreSQL case skipped");
                    return;
                };
                super::$name(env, super::Engine::Postgres).await;
            })*
        }
    };
}

use carnet_domain::access::insurer_feed_actor;
use carnet_domain::access::legacy_import_actor;
use carnet_domain::access::{
    Action, Actor, Author, Category, Context, Grant, Grantee, HabilitationMatrix, ItemFacts, PracticeRole,
    ProfessionalId, Reason,
};
use carnet_domain::document::{NOT_VISIBLE_MAX_SECONDS, Status, WAITING_NOTICE_SECONDS};
use carnet_domain::lifecycle::{Event, Lifecycle, OPPOSITION_WINDOW_SECONDS};
use carnet_domain::profile::{CodeSystem, Coding, EntryInput, MeasurementInput, Section};
use carnet_domain::reimbursement::{FeedLine, Filter, RawReimbursementLine};
use carnet_domain::roster::{RawRosterLine, RosterRecord};
use carnet_store::documents::{DocumentChange, DocumentFilter, NewDocument};
use carnet_store::documents::{LegacyDocument, LegacyOutcome};
use carnet_store::gate::Gate;
use carnet_store::outbox::Channel;
use carnet_store::reimbursements::{NO_SPACE, NOT_RECEIVING};
use carnet_store::roster::RosterOutcome;

mod auth;
mod carers;
mod catalogue;
mod checkpoints;
mod documents;
mod gate;
mod legacy;
mod lifecycle;
mod messaging;
mod notifications;
mod profile;
mod reimbursements;
mod storage;

use checkpoints::*;
use documents::*;
use gate::*;
use legacy::*;
use lifecycle::*;
use storage::*;
