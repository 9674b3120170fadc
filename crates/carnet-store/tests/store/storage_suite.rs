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
use carnet_store::{BlobHash, BlobStore, Db, DbOptions, Store, StoreError, on_db};
use sqlx::Row;

const ADMIN: &[u8] = br#"{"family_name":"DUPONT-TESTEUR","given":"Zoe","ins":"2850275123456"}"#;
const PDF: &[u8] = b"%PDF-1.7 compte rendu: hypertension arterielle, suivi cardiologique";

/// One engine's environment: a temp data dir, and for PostgreSQL two fresh schemas.
struct Env {
    dir: tempfile::TempDir,
    settings: StoreSettings,
}

#[derive(Clone, Copy, Debug)]
enum Engine {
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

suite!(
    a_listing_opens_only_its_page_and_never_a_row_changed_since_s1_dm5,
    first_start_initialises_and_data_survives_reopen,
    concurrent_writes_commit_together_and_fail_alone,
    health_data_is_sealed_in_the_database_and_blobs,
    attachments_round_trip_and_detect_corruption,
    ciphertext_moved_to_another_holder_fails,
    wrong_master_key_is_refused_at_start,
    missing_key_file_is_an_error_not_a_new_key,
    erased_holder_is_unreadable_even_from_a_copy,
    erasure_leaves_no_way_in_and_no_key_in_the_vault_files_lc7,
    master_key_rotation_rewraps_without_touching_data,
    orphan_blobs_are_collected_referenced_ones_kept,
    migrations_are_idempotent,
    concurrent_writes_all_land,
    roster_import_is_idempotent_and_queues_the_information_letter,
    opposition_window_boundaries_lc3,
    activation_code_checks_lc4,
    archive_erased_after_ten_years_and_not_recreated_lc5_lc7,
    concurrent_jobs_apply_each_transition_once,
    majority_ends_representation_mi3,
    a_minors_space_is_the_representatives_then_the_adults_alone_mi1_mi3_s1,
    the_space_is_changed_by_its_holder_side_only_s1_lc6,
    outbox_claims_are_leased_and_retried,
    activation_proves_identity_once_lc4,
    login_codes_are_single_use_short_lived_and_limited_au1,
    sessions_expire_idle_and_absolute_and_revoke_everywhere_au3,
    rate_limits_hold_per_bucket_and_window,
    totp_codes_are_accepted_once_and_only_in_time,
    gate_decides_traces_and_notifies_ac3_ac8,
    traces_are_tamper_evident_ac7,
    concurrent_accesses_are_group_committed_into_one_valid_chain,
    documents_go_through_the_gate_dm1_dm8,
    held_documents_follow_dm6_with_the_clock,
    emergency_access_is_bounded_and_notified_ac5,
    checkpoints_sign_the_moved_chain_heads_ac7_s5,
    truncated_chain_tail_is_caught_by_the_checkpoint_ac7,
    altered_or_removed_checkpoints_are_reported_ac7_s5,
    concurrent_checkpoints_make_one_ac7,
    a_full_checkpoint_leaves_the_other_chains_for_the_next_ac7,
    erased_holder_chain_may_be_missing_lc7_ac7,
    checkpoints_racing_appends_cover_every_head_ac7,
    traces_written_before_checkpoints_are_covered_by_the_first_ac7,
    notices_follow_preferences_and_collapse_per_channel_ac6,
    two_servers_append_to_the_same_chains_s30,
    documents_changed_on_another_server_are_listed_as_they_are_now_s1_dm5,
    a_stale_cached_chain_head_is_read_again_s30,
    profile_goes_through_the_gate_pr1_pr3,
    measurements_are_validated_batched_and_sealed_pr1_pr4,
    legacy_import_lc8_files_documents_through_the_gate_dm1_ac6,
    reimbursement_feed_is_idempotent_sealed_and_gated_rb1_rb2_ac6_ac8,
    messages_and_agenda_follow_the_space_ms2_ag1_lc5_lc7,
    app_tokens_follow_consent_convention_and_space_ca3_ca4,
);

// ---- lifecycle, roster, outbox (issue 3) ----

use carnet_domain::lifecycle::{Event, Lifecycle, OPPOSITION_WINDOW_SECONDS};
use carnet_domain::roster::{RawRosterLine, RosterRecord};
use carnet_store::roster::RosterOutcome;

/// 2026-01-05 09:00:00 UTC.
const T0: i64 = 1_767_603_600;

fn ins_for(n: u64) -> String {
    let nir = format!("1{:012}", 850_275_000_000 + n);
    let k = carnet_domain::ins::nir_key(&nir).unwrap();
    format!("{nir}{k:02}")
}

fn record(n: u64, birth: &str, email: bool, rep: Option<u64>) -> RosterRecord {
    RawRosterLine {
        ins: ins_for(n),
        birth_name: format!("NOM{n}"),
        given_names: "Alex".into(),
        sex: "U".into(),
        birth_date: birth.into(),
        email: if email {
            format!("p{n}@example.org")
        } else {
            String::new()
        },
        representative_ins: rep.map(ins_for).unwrap_or_default(),
        ..RawRosterLine::default()
    }
    .validate(Timestamp::from_unix_seconds(T0))
    .unwrap()
}

fn created(o: &RosterOutcome) -> HolderId {
    match o {
        RosterOutcome::Created { id, .. } => *id,
        other => panic!("expected Created, got {other:?}"),
    }
}

async fn roster_import_is_idempotent_and_queues_the_information_letter(env: Env, engine: Engine) {
    let clock = ManualClock::new(Timestamp::from_unix_seconds(T0));
    let store = env.open_at(&clock).await;
    let batch = vec![
        record(1, "1980-01-01", true, None),
        record(2, "1990-05-05", false, None),
        record(1, "1980-01-01", true, None),
    ];
    let out = store.import_roster_batch(&batch).await.unwrap();
    assert_eq!(out.len(), 3);
    let a = created(&out[0]);
    let b = created(&out[1]);
    assert_eq!(
        out[2],
        RosterOutcome::Existing { id: a },
        "duplicate inside the batch"
    );
    // LC-2: an information letter each, by e-mail, or by post without an address.
    let msgs = store.outbox_of(a).await.unwrap();
    assert_eq!((msgs[0].0.as_str(), msgs[0].1.as_str()), ("information", "email"));
    assert_eq!(store.outbox_of(b).await.unwrap()[0].1, "post");
    assert_eq!(
        store.lifecycle(a).await.unwrap(),
        Lifecycle::Informed {
            informed_at: clock.now()
        }
    );
    // Re-importing creates nothing.
    clock.advance_seconds(3600);
    let again = store.import_roster_batch(&batch[..2]).await.unwrap();
    assert_eq!(
        again,
        vec![
            RosterOutcome::Existing { id: a },
            RosterOutcome::Existing { id: b }
        ]
    );
    assert_eq!(store.outbox_of(a).await.unwrap().len(), 1);
    let ins = carnet_domain::Ins::parse(&ins_for(2)).unwrap();
    assert_eq!(store.find_by_ins(&ins).await.unwrap(), Some(b));
    // The INS is nowhere in clear.
    let h = store.holder(a).await.unwrap();
    let admin: carnet_domain::roster::Administrative = serde_json::from_slice(&h.administrative).unwrap();
    assert_eq!(admin.ins.as_str(), ins_for(1));
    if let Engine::Sqlite = engine {
        store.db().close().await;
        let raw = std::fs::read(env.data().join("carnet.db")).unwrap();
        let wal = std::fs::read(env.data().join("carnet.db-wal")).unwrap_or_default();
        assert!(!contains(&raw, ins_for(1).as_bytes()) && !contains(&wal, ins_for(1).as_bytes()));
        assert!(!contains(&raw, b"NOM1") && !contains(&wal, b"NOM1"));
    }
}

async fn opposition_window_boundaries_lc3(env: Env, _e: Engine) {
    let clock = ManualClock::new(Timestamp::from_unix_seconds(T0));
    let store = env.open_at(&clock).await;
    let out = store
        .import_roster_batch(&[
            record(10, "1970-01-01", true, None),
            record(11, "1971-01-01", true, None),
        ])
        .await
        .unwrap();
    let (stays, objects) = (created(&out[0]), created(&out[1]));
    // The last second of the 6 weeks: nothing opens; objecting still works.
    clock.set(Timestamp::from_unix_seconds(T0 + OPPOSITION_WINDOW_SECONDS - 1));
    assert_eq!(
        store.transition(objects, Event::Oppose).await.unwrap().name(),
        "opposed"
    );
    assert_eq!(store.run_lifecycle_job(100).await.unwrap().opened, 0);
    assert_eq!(store.lifecycle(stays).await.unwrap().name(), "informed");
    // The window's end: the space opens by itself and the holder is told.
    clock.set(Timestamp::from_unix_seconds(T0 + OPPOSITION_WINDOW_SECONDS));
    assert_eq!(store.run_lifecycle_job(100).await.unwrap().opened, 1);
    assert_eq!(
        store.lifecycle(stays).await.unwrap(),
        Lifecycle::Open { since: clock.now() }
    );
    assert_eq!(
        store.lifecycle(objects).await.unwrap().name(),
        "opposed",
        "an opposition means no space"
    );
    assert!(
        store
            .outbox_of(stays)
            .await
            .unwrap()
            .iter()
            .any(|m| m.0 == "space_opened")
    );
    // Too late to object now; a second pass does nothing.
    let err = store.transition(stays, Event::Oppose).await.unwrap_err();
    assert!(err.to_string().contains("cannot object"), "{err}");
    assert_eq!(store.run_lifecycle_job(100).await.unwrap(), Default::default());
    // The opposed person may ask for a space later.
    assert_eq!(
        store
            .transition(objects, Event::RequestSpace)
            .await
            .unwrap()
            .name(),
        "open"
    );
}

async fn activation_code_checks_lc4(env: Env, _e: Engine) {
    let clock = ManualClock::new(Timestamp::from_unix_seconds(T0));
    let store = env.open_at(&clock).await;
    let out = store
        .import_roster_batch(&[record(20, "1960-01-01", true, None)])
        .await
        .unwrap();
    let RosterOutcome::Created { id, activation_code } = &out[0] else {
        panic!()
    };
    assert!(store.check_activation_code(*id, activation_code).await.unwrap());
    assert!(
        store
            .check_activation_code(*id, &activation_code.to_lowercase())
            .await
            .unwrap(),
        "case-insensitive"
    );
    assert!(!store.check_activation_code(*id, "AAAAAAAAAAAA").await.unwrap());
    clock.set(Timestamp::from_unix_seconds(T0 + OPPOSITION_WINDOW_SECONDS));
    assert!(
        !store.check_activation_code(*id, activation_code).await.unwrap(),
        "valid 6 weeks"
    );
}

async fn archive_erased_after_ten_years_and_not_recreated_lc5_lc7(env: Env, _e: Engine) {
    let clock = ManualClock::new(Timestamp::from_unix_seconds(T0));
    let store = env.open_at(&clock).await;
    let out = store
        .import_roster_batch(&[record(30, "1950-01-01", true, None)])
        .await
        .unwrap();
    let id = created(&out[0]);
    store.transition(id, Event::Activate).await.unwrap();
    store
        .put_attachment(id, "text/plain", Bytes::from_static(b"compte rendu"))
        .await
        .unwrap();
    let closed = store.transition(id, Event::Close).await.unwrap();
    // 2026-01-05 + 10 years = 2036-01-05, same time of day.
    let ten_years = Timestamp::from_unix_seconds(2_083_136_400);
    assert_eq!(closed.deadline().unwrap().0, ten_years);
    clock.set(ten_years.plus_seconds(-1));
    assert_eq!(store.run_lifecycle_job(100).await.unwrap().erased, 0);
    assert!(store.holder(id).await.is_ok(), "archived data is still there");
    clock.set(ten_years);
    assert_eq!(store.run_lifecycle_job(100).await.unwrap().erased, 1);
    assert!(matches!(store.holder(id).await, Err(StoreError::NotFound)));
    assert!(matches!(
        store.vault().get(id).await,
        Err(StoreError::Shredded(_))
    ));
    assert!(blob_files(&env).is_empty());
    assert!(store.outbox_of(id).await.unwrap().is_empty());
    assert_eq!(store.lifecycle(id).await.unwrap().name(), "erased");
    assert!(store.transition(id, Event::Reopen).await.is_err());
    // The roster still lists the person: the erased space is not silently re-created.
    let again = store
        .import_roster_batch(&[record(30, "1950-01-01", true, None)])
        .await
        .unwrap();
    assert_eq!(again, vec![RosterOutcome::Existing { id }]);
    assert_eq!(
        store.run_lifecycle_job(100).await.unwrap(),
        Default::default(),
        "erasure finished"
    );
}

async fn concurrent_jobs_apply_each_transition_once(env: Env, _e: Engine) {
    let clock = ManualClock::new(Timestamp::from_unix_seconds(T0));
    let a = env.open_at(&clock).await;
    let b = env.open_at(&clock).await; // a second server on the same databases
    let records: Vec<RosterRecord> = (100..160).map(|n| record(n, "1975-03-03", true, None)).collect();
    a.import_roster_batch(&records).await.unwrap();
    clock.advance_seconds(OPPOSITION_WINDOW_SECONDS);
    let (ra, rb) = tokio::join!(a.run_lifecycle_job(1000), b.run_lifecycle_job(1000));
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert_eq!(
        ra.opened + rb.opened,
        60,
        "each space opened exactly once: {ra:?} {rb:?}"
    );
    let mut notices = 0;
    for r in &records {
        let id = a.find_by_ins(&r.admin.ins).await.unwrap().unwrap();
        assert_eq!(a.lifecycle(id).await.unwrap().name(), "open");
        notices += a
            .outbox_of(id)
            .await
            .unwrap()
            .iter()
            .filter(|m| m.0 == "space_opened")
            .count();
    }
    assert_eq!(notices, 60, "one notice each, no duplicate");
}

async fn majority_ends_representation_mi3(env: Env, _e: Engine) {
    let clock = ManualClock::new(Timestamp::from_unix_seconds(T0));
    let store = env.open_at(&clock).await;
    // The child comes before the parent in the file: linking happens after the batch.
    let out = store
        .import_roster_batch(&[
            record(41, "2008-01-06", false, Some(40)),
            record(40, "1980-02-02", true, None),
        ])
        .await
        .unwrap();
    let (child, parent) = (created(&out[0]), created(&out[1]));
    store.link_representative(child, parent, "parent").await.unwrap();
    assert_eq!(
        store.representatives(child).await.unwrap(),
        vec![(parent, "parent".to_string())]
    );
    // 18th birthday: 2026-01-06 00:00 UTC. The last second before it: still a minor.
    clock.set(Timestamp::from_unix_seconds(1_767_657_600 - 1));
    assert_eq!(store.run_lifecycle_job(100).await.unwrap().came_of_age, 0);
    assert_eq!(store.representatives(child).await.unwrap().len(), 1);
    clock.set(Timestamp::from_unix_seconds(1_767_657_600));
    let r = store.run_lifecycle_job(100).await.unwrap();
    assert_eq!(r.came_of_age, 1);
    assert!(
        store.representatives(child).await.unwrap().is_empty(),
        "representatives' access ends at 18"
    );
    assert!(
        store
            .outbox_of(child)
            .await
            .unwrap()
            .iter()
            .any(|m| m.0 == "majority")
    );
    assert_eq!(
        store.run_lifecycle_job(100).await.unwrap().came_of_age,
        0,
        "once only"
    );
    // The letter carries a fresh code with which the new adult sets their own credentials.
    let letter = store
        .claim_messages(100)
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.kind == "majority")
        .unwrap();
    assert_eq!(letter.channel, Channel::Post, "no e-mail on file: by post");
    let v: serde_json::Value = serde_json::from_slice(&letter.payload).unwrap();
    let code = v["activation_code"].as_str().unwrap();
    let hash = carnet_store::password::hash("mon propre mot de passe").unwrap();
    let ins = carnet_domain::Ins::parse(&ins_for(41)).unwrap();
    assert_eq!(
        store
            .activate(&ins, code, "", "alex41@example.org", &hash)
            .await
            .unwrap(),
        child
    );
}

/// MI-1: a minor's space is reached by the representatives from their own space, never by
/// activating it as the child; S-1: the gate lets a representative in only while the
/// representation holds. MI-3: at 18 (to the second, before the job even ran) the parent is
/// out; the job ends every credential and session set up on the space while a minor, and the
/// new adult takes over the (already activated) space with the fresh code.
async fn a_minors_space_is_the_representatives_then_the_adults_alone_mi1_mi3_s1(env: Env, _e: Engine) {
    let clock = ManualClock::new(Timestamp::from_unix_seconds(T0));
    let store = env.open_at(&clock).await;
    let gate = Gate::new(store.clone(), HabilitationMatrix::default_matrix());
    let out = store
        .import_roster_batch(&[
            record(43, "2008-01-06", false, Some(42)),
            record(42, "1980-02-02", true, None),
        ])
        .await
        .unwrap();
    let (child, parent) = (created(&out[0]), created(&out[1]));
    let RosterOutcome::Created { activation_code, .. } = &out[0] else {
        panic!("created")
    };
    store.link_representative(child, parent, "parent").await.unwrap();
    let stranger = store.create_holder("activated", b"{}").await.unwrap();
    let hash = carnet_store::password::hash("mon propre mot de passe").unwrap();
    let ins = carnet_domain::Ins::parse(&ins_for(43)).unwrap();
    assert!(matches!(
        store
            .activate(&ins, activation_code, "", "enfant43@example.org", &hash)
            .await,
        Err(StoreError::Minor)
    ));
    store
        .transition(child, carnet_domain::Event::Activate)
        .await
        .unwrap();
    let own = ItemFacts {
        author: Author::Holder,
        category: Category::HolderDocuments,
        ..prescription()
    };
    let read = |who: HolderId, whose: HolderId| {
        let (gate, own) = (gate.clone(), own.clone());
        async move {
            gate.check(
                whose,
                &Actor::Representative { id: who },
                Action::Read,
                "documents",
                &own,
                &Context::default(),
            )
            .await
            .unwrap()
        }
    };
    assert!(read(parent, child).await.allowed);
    // S-1: a representative is no one in a space they do not represent.
    let d = read(parent, stranger).await;
    assert_eq!((d.allowed, d.reason), (false, Reason::NoSpace));
    let d = read(stranger, child).await;
    assert_eq!((d.allowed, d.reason), (false, Reason::NoSpace));

    // As if the space had been activated as the child before this rule: credentials, a
    // session; the parent's own session switched into it.
    let birthday = Timestamp::from_unix_seconds(1_767_657_600);
    clock.set(birthday.plus_seconds(-60));
    store
        .set_credentials(child, "fait-par-le-parent@example.org", &hash)
        .await
        .unwrap();
    let (child_token, _) = store.create_session(child, "tablette").await.unwrap();
    let (parent_token, _) = store.create_session(parent, "ordinateur").await.unwrap();
    store.set_acting_for(&parent_token, child).await.unwrap();
    assert!(store.represents(parent, child).await.unwrap());

    clock.set(birthday);
    assert!(!store.represents(parent, child).await.unwrap());
    assert_eq!(read(parent, child).await.reason, Reason::NoSpace);
    assert_eq!(store.run_lifecycle_job(100).await.unwrap().came_of_age, 1);
    assert!(store.session(&child_token).await.unwrap().is_none());
    assert!(
        store
            .credentials_by_login("fait-par-le-parent@example.org")
            .await
            .unwrap()
            .is_none()
    );
    let parent_session = store.session(&parent_token).await.unwrap().unwrap();
    assert_eq!(parent_session.acting_for, parent, "back in her own space");
    let letter = store
        .claim_messages(100)
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.kind == "majority" && m.holder == child)
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&letter.payload).unwrap();
    let code = v["activation_code"].as_str().unwrap();
    assert_eq!(
        store
            .activate(&ins, code, "", "alex43@example.org", &hash)
            .await
            .unwrap(),
        child
    );
    assert_eq!(store.lifecycle(child).await.unwrap().name(), "activated");
    assert!(
        store
            .credentials_by_login("alex43@example.org")
            .await
            .unwrap()
            .is_some()
    );
}

/// S-1, LC-6, AC-6: the space itself (its directory) is changed by the holder and by a current
/// representative only; a representative's change is traced; after the holder's death the
/// representative reads, and changes nothing.
async fn the_space_is_changed_by_its_holder_side_only_s1_lc6(env: Env, _e: Engine) {
    let clock = ManualClock::new(Timestamp::from_unix_seconds(T0));
    let store = env.open_at(&clock).await;
    let gate = Gate::new(store.clone(), HabilitationMatrix::default_matrix());
    let child = store.create_holder("activated", b"{}").await.unwrap();
    let parent = store.create_holder("activated", b"{}").await.unwrap();
    let stranger = store.create_holder("activated", b"{}").await.unwrap();
    store.link_representative(child, parent, "parent").await.unwrap();
    let rep = |id| Actor::Representative { id };
    for nobody in [
        rep(stranger),
        Actor::Holder { id: parent },
        pro_actor("11111111111", "medecin"),
        Actor::Operator { id: "support".into() },
    ] {
        assert!(
            gate.holder_side(child, &nobody).await.unwrap().is_none(),
            "{nobody:?}"
        );
    }
    let side = gate.holder_side(child, &rep(parent)).await.unwrap().unwrap();
    side.update_access_policy(|p| p.hide_all = true).await.unwrap();
    let traces = store.traces_of(child, None, 10).await.unwrap();
    assert_eq!(traces.len(), 1);
    assert_eq!(traces[0].entry.actor, rep(parent));
    assert_eq!(traces[0].entry.item, "access_policy");
    // LC-6: after the death, the representative still enters, reads, and changes nothing.
    store
        .transition(child, carnet_domain::Event::Death)
        .await
        .unwrap();
    let side = gate.holder_side(child, &rep(parent)).await.unwrap().unwrap();
    assert!(side.access_policy().await.unwrap().0.hide_all);
    assert!(matches!(
        side.update_access_policy(|p| p.hide_all = false).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(
        own_side(&store, child)
            .await
            .access_policy()
            .await
            .unwrap()
            .0
            .hide_all
    );
}

async fn outbox_claims_are_leased_and_retried(env: Env, _e: Engine) {
    let clock = ManualClock::new(Timestamp::from_unix_seconds(T0));
    let store = env.open_at(&clock).await;
    store
        .import_roster_batch(&[record(50, "1985-01-01", true, None)])
        .await
        .unwrap();
    let first = store.claim_messages(10).await.unwrap();
    assert_eq!(first.len(), 1);
    let payload: serde_json::Value = serde_json::from_slice(&first[0].payload).unwrap();
    assert_eq!(payload["activation_code"].as_str().unwrap().len(), 12);
    assert!(
        store.claim_messages(10).await.unwrap().is_empty(),
        "leased to the first claimer"
    );
    // The sender crashed without marking it: after the lease another attempt follows.
    clock.advance_seconds(121);
    let again = store.claim_messages(10).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 2);
    store.mark_failed(again[0].id, again[0].attempts).await.unwrap();
    clock.advance_seconds(60);
    assert!(store.claim_messages(10).await.unwrap().is_empty(), "backing off");
    clock.advance_seconds(240);
    let third = store.claim_messages(10).await.unwrap();
    store.mark_sent(third[0].id).await.unwrap();
    clock.advance_seconds(3600);
    assert!(
        store.claim_messages(10).await.unwrap().is_empty(),
        "sent once, never again"
    );
}

async fn first_start_initialises_and_data_survives_reopen(env: Env, engine: Engine) {
    let store = env.open().await.unwrap();
    assert!(env.data().join("CARNET").exists());
    let key_mode = std::fs::metadata(env.data().join("master.key"))
        .unwrap()
        .permissions();
    assert_eq!(std::os::unix::fs::PermissionsExt::mode(&key_mode) & 0o777, 0o600);
    if let Engine::Sqlite = engine {
        assert!(env.data().join("carnet.db").exists());
        assert!(env.data().join("keys.db").exists());
    }
    let id = store.create_holder("informed", ADMIN).await.unwrap();
    let att = store
        .put_attachment(id, "application/pdf", Bytes::from_static(PDF))
        .await
        .unwrap();
    store.db().close().await;
    drop(store);

    let store = env.open().await.unwrap();
    let h = store.holder(id).await.unwrap();
    assert_eq!(h.administrative, ADMIN);
    assert_eq!(h.lifecycle.name(), "informed");
    let (rec, bytes) = store.attachment(id, att.id).await.unwrap();
    assert_eq!(&bytes[..], PDF);
    assert_eq!(rec.meta.content_type, "application/pdf");
    assert_eq!(rec.meta.size, PDF.len() as u64);
    assert_eq!(store.attachment_ids(id).await.unwrap(), vec![att.id]);
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

async fn health_data_is_sealed_in_the_database_and_blobs(env: Env, engine: Engine) {
    let store = env.open().await.unwrap();
    let id = store.create_holder("open", ADMIN).await.unwrap();
    store
        .put_attachment(id, "application/pdf", Bytes::from_static(PDF))
        .await
        .unwrap();
    let sealed: Vec<u8> = on_db!(store.db(), p => sqlx::query("SELECT admin_sealed FROM holders").fetch_one(p).await.unwrap().get(0));
    assert!(
        !contains(&sealed, b"DUPONT"),
        "administrative data stored in clear"
    );
    let meta: Vec<u8> = on_db!(store.db(), p => sqlx::query("SELECT meta_sealed FROM attachments").fetch_one(p).await.unwrap().get(0));
    assert!(!contains(&meta, b"application/pdf"));
    if let Engine::Sqlite = engine {
        store.db().close().await;
        for f in [
            "carnet.db",
            "carnet.db-wal",
            "carnet-audit.db",
            "carnet-audit.db-wal",
            "keys.db",
            "keys.db-wal",
        ] {
            if let Ok(raw) = std::fs::read(env.data().join(f)) {
                assert!(!contains(&raw, b"DUPONT"), "plaintext in {f}");
                assert!(!contains(&raw, b"hypertension"), "plaintext in {f}");
            }
        }
    }
    for b in walk(&env.data().join("blobs")) {
        let raw = std::fs::read(&b).unwrap();
        assert!(
            !contains(&raw, b"hypertension"),
            "plaintext document in blob {}",
            b.display()
        );
        assert!(
            !contains(&raw, b"%PDF"),
            "plaintext document in blob {}",
            b.display()
        );
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.path().is_dir() {
                out.extend(walk(&e.path()));
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

fn blob_files(env: &Env) -> Vec<std::path::PathBuf> {
    walk(&env.data().join("blobs/objects"))
}

async fn attachments_round_trip_and_detect_corruption(env: Env, _e: Engine) {
    let store = env.open().await.unwrap();
    let id = store.create_holder("open", ADMIN).await.unwrap();
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let a = store
        .put_attachment(id, "application/pdf", Bytes::from(big.clone()))
        .await
        .unwrap();
    assert_eq!(&store.attachment(id, a.id).await.unwrap().1[..], &big[..]);

    let files = blob_files(&env);
    assert_eq!(files.len(), 1);
    let blob = &files[0];
    let name = blob.file_name().unwrap().to_str().unwrap();
    let original = std::fs::read(blob).unwrap();
    assert_eq!(
        BlobHash::of(&original).as_str(),
        name,
        "blobs are named by the SHA-256 of their bytes"
    );

    // One flipped bit.
    let mut flipped = original.clone();
    flipped[1000] ^= 0x01;
    std::fs::write(blob, &flipped).unwrap();
    match store.attachment(id, a.id).await {
        Err(StoreError::BlobCorrupt { hash }) => assert_eq!(hash, name),
        other => panic!("expected BlobCorrupt, got {other:?}"),
    }
    // Truncated.
    std::fs::write(blob, &original[..original.len() / 2]).unwrap();
    assert!(matches!(
        store.attachment(id, a.id).await,
        Err(StoreError::BlobCorrupt { .. })
    ));
    let report = store.verify_blobs().await.unwrap();
    assert_eq!(report.checked, 1);
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    // Missing.
    std::fs::remove_file(blob).unwrap();
    assert!(matches!(
        store.attachment(id, a.id).await,
        Err(StoreError::BlobMissing { .. })
    ));
    // Restored: readable again.
    std::fs::write(blob, &original).unwrap();
    assert!(store.attachment(id, a.id).await.is_ok());
    assert!(store.verify_blobs().await.unwrap().problems.is_empty());
    // Unknown ids and holders are simply not found.
    let other = HolderId::new(store.now());
    assert!(matches!(
        store.attachment(other, a.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(store.holder(other).await, Err(StoreError::NotFound)));
    assert!(matches!(
        store
            .put_attachment(other, "text/plain", Bytes::from_static(b"x"))
            .await,
        Err(StoreError::Shredded(_) | StoreError::NotFound)
    ));
}

async fn ciphertext_moved_to_another_holder_fails(env: Env, _e: Engine) {
    let store = env.open().await.unwrap();
    let a = store.create_holder("open", ADMIN).await.unwrap();
    let b = store.create_holder("open", b"{}").await.unwrap();
    let sealed_a: Vec<u8> = on_db!(store.db(), p => sqlx::query("SELECT admin_sealed FROM holders WHERE id = $1").bind(a.as_uuid()).fetch_one(p).await.unwrap().get(0));
    let mut tx = store.db().begin().await.unwrap();
    carnet_store::on_tx!(&mut tx, t => sqlx::query("UPDATE holders SET admin_sealed = $1 WHERE id = $2").bind(&sealed_a).bind(b.as_uuid()).execute(&mut **t).await.map(|r| r.rows_affected())).unwrap();
    tx.commit().await.unwrap();
    assert!(matches!(store.holder(b).await, Err(StoreError::Integrity(_))));
    assert_eq!(store.holder(a).await.unwrap().administrative, ADMIN);
}

async fn wrong_master_key_is_refused_at_start(env: Env, _e: Engine) {
    let store = env.open().await.unwrap();
    store.create_holder("open", ADMIN).await.unwrap();
    store.db().close().await;
    let other = env.dir.path().join("other.key");
    let ring = carnet_store::MasterKeyRing::new(vec![carnet_store::MasterKey::generate().unwrap()]).unwrap();
    carnet_store::datadir::write_file_durably(&other, ring.to_file_text().as_bytes(), 0o600).unwrap();
    let mut s = env.settings.clone();
    s.master_key_file = Some(other);
    let err = open_store(&s, Arc::new(SystemClock)).await.unwrap_err();
    assert!(matches!(err, StoreError::WrongMasterKey { .. }), "{err}");
    assert!(err.to_string().contains("wrong master key"), "{err}");
    // A group-readable key file is refused.
    let key = env.data().join("master.key");
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let err = env.open().await.unwrap_err();
    assert!(err.to_string().contains("chmod 600"), "{err}");
}

async fn missing_key_file_is_an_error_not_a_new_key(env: Env, engine: Engine) {
    let store = env.open().await.unwrap();
    let id = store.create_holder("open", ADMIN).await.unwrap();
    store.db().close().await;
    let key = env.data().join("master.key");
    let saved = std::fs::read(&key).unwrap();
    std::fs::remove_file(&key).unwrap();
    let err = env.open().await.unwrap_err();
    assert!(err.to_string().contains("is missing"), "{err}");
    assert!(!key.exists(), "no new key was created over existing data");
    std::fs::write(&key, &saved).unwrap();
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    if let Engine::Sqlite = engine {
        let db = env.data().join("carnet.db");
        std::fs::rename(&db, env.dir.path().join("moved.db")).unwrap();
        let err = env.open().await.unwrap_err();
        assert!(
            err.to_string()
                .contains("refusing to create a new empty database"),
            "{err}"
        );
        assert!(!db.exists());
        std::fs::rename(env.dir.path().join("moved.db"), &db).unwrap();
    }
    let store = env.open().await.unwrap();
    assert_eq!(store.holder(id).await.unwrap().administrative, ADMIN);
}

/// LC-7: an erased holder leaves no way to log in (credentials, TOTP, sessions, devices,
/// login challenges, passkeys) and, on SQLite, no copy of their wrapped data key in the key
/// vault's file or its WAL (`secure_delete`, then a checkpoint).
async fn erasure_leaves_no_way_in_and_no_key_in_the_vault_files_lc7(env: Env, engine: Engine) {
    let store = env.open().await.unwrap();
    let gone = store.create_holder("activated", ADMIN).await.unwrap();
    let hash = carnet_store::password::hash("un mot de passe solide").unwrap();
    store
        .set_credentials(gone, "partie@example.org", &hash)
        .await
        .unwrap();
    store.begin_totp(gone).await.unwrap();
    let (token, _) = store.create_session(gone, "appareil").await.unwrap();
    let wrapped: Vec<u8> = on_db!(store.vault().db(), p => sqlx::query("SELECT wrapped FROM holder_keys WHERE holder_id = $1")
        .bind(gone.as_uuid()).fetch_one(p).await.unwrap().get(0));
    assert!(wrapped.len() >= 32);

    store.erase_holder(gone).await.unwrap();
    assert!(store.session(&token).await.unwrap().is_none());
    assert!(
        store
            .credentials_by_login("partie@example.org")
            .await
            .unwrap()
            .is_none()
    );
    for table in [
        "credentials",
        "sessions",
        "known_devices",
        "login_challenges",
        "passkeys",
    ] {
        let n: i64 = on_db!(store.db(), p => sqlx::query(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table} WHERE holder_id = $1")))
            .bind(gone.as_uuid()).fetch_one(p).await.unwrap().get(0));
        assert_eq!(n, 0, "{table}");
    }
    if let Engine::Sqlite = engine {
        for f in ["keys.db", "keys.db-wal"] {
            let bytes = std::fs::read(env.data().join(f)).unwrap_or_default();
            assert!(
                !bytes.windows(wrapped.len()).any(|w| w == wrapped.as_slice()),
                "the wrapped key is still in {f}"
            );
        }
    }
}

async fn erased_holder_is_unreadable_even_from_a_copy(env: Env, engine: Engine) {
    let store = env.open().await.unwrap();
    let gone = store.create_holder("closed", ADMIN).await.unwrap();
    let kept = store.create_holder("open", b"{\"kept\":true}").await.unwrap();
    let att = store
        .put_attachment(gone, "application/pdf", Bytes::from_static(PDF))
        .await
        .unwrap();
    // The "backup": raw sealed row and blobs, taken before erasure.
    let sealed: Vec<u8> = on_db!(store.db(), p => sqlx::query("SELECT admin_sealed FROM holders WHERE id = $1").bind(gone.as_uuid()).fetch_one(p).await.unwrap().get(0));
    let blobs_before: Vec<(std::path::PathBuf, Vec<u8>)> = blob_files(&env)
        .into_iter()
        .map(|p| {
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect();
    let backup_dir = env.dir.path().join("backup");
    if let Engine::Sqlite = engine {
        // Consistent copy of the main database (not the key vault: it is never in data backups).
        on_db!(store.db(), p => sqlx::query(sqlx::AssertSqlSafe(format!("VACUUM INTO '{}'", env.dir.path().join("backup.db").display()))).execute(p).await.map(|_| ()).unwrap());
        std::fs::create_dir(&backup_dir).unwrap();
    }

    store.erase_holder(gone).await.unwrap();
    assert!(matches!(store.holder(gone).await, Err(StoreError::NotFound)));
    assert!(matches!(
        store.vault().get(gone).await,
        Err(StoreError::Shredded(_))
    ));
    assert_eq!(
        store.holder(kept).await.unwrap().administrative,
        b"{\"kept\":true}"
    );
    assert!(blob_files(&env).is_empty(), "blobs of the erased holder deleted");

    // Putting the old rows and blobs back (restoring a backup) does not make them readable.
    let mut tx = store.db().begin().await.unwrap();
    carnet_store::on_tx!(&mut tx, t => sqlx::query("UPDATE holders SET lifecycle = 'open', admin_sealed = $2 WHERE id = $1")
        .bind(gone.as_uuid()).bind(&sealed).execute(&mut **t).await.map(|r| r.rows_affected())).unwrap();
    tx.commit().await.unwrap();
    for (p, b) in &blobs_before {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, b).unwrap();
    }
    assert!(matches!(store.holder(gone).await, Err(StoreError::Shredded(_))));
    if let Engine::Sqlite = engine {
        // And a whole pre-erasure copy of the database, opened with today's vault and key.
        store.db().close().await;
        std::fs::rename(env.dir.path().join("backup.db"), env.data().join("carnet.db")).unwrap();
        for f in ["carnet.db-wal", "carnet.db-shm"] {
            let _ = std::fs::remove_file(env.data().join(f));
        }
        let restored = env.open().await.unwrap();
        assert!(matches!(
            restored.holder(gone).await,
            Err(StoreError::Shredded(_))
        ));
        assert!(matches!(
            restored.attachment(gone, att.id).await,
            Err(StoreError::Shredded(_))
        ));
        assert!(restored.holder(kept).await.is_ok());
    }
}

async fn master_key_rotation_rewraps_without_touching_data(env: Env, _e: Engine) {
    let store = env.open().await.unwrap();
    let mut ids = Vec::new();
    for _ in 0..7 {
        ids.push(store.create_holder("open", ADMIN).await.unwrap());
    }
    let att = store
        .put_attachment(ids[0], "text/plain", Bytes::from_static(b"note"))
        .await
        .unwrap();
    let blobs_before = blob_files(&env);
    let old_kid = store.vault().ring().active().kid.clone();
    store.db().close().await;
    store.vault().db().close().await;

    let report = rotate_master_key(&env.settings, Arc::new(SystemClock))
        .await
        .unwrap();
    assert_eq!(report.old_kids, vec![old_kid.clone()]);
    assert_eq!(report.rewrapped, 7);
    assert_ne!(report.new_kid, old_kid);
    let store = env.open().await.unwrap();
    assert_eq!(
        store.vault().key_counts().await.unwrap(),
        vec![(report.new_kid.clone(), 7)]
    );
    for id in &ids {
        assert_eq!(store.holder(*id).await.unwrap().administrative, ADMIN);
    }
    assert_eq!(&store.attachment(ids[0], att.id).await.unwrap().1[..], b"note");
    assert_eq!(blob_files(&env), blobs_before, "blobs untouched");
}

async fn orphan_blobs_are_collected_referenced_ones_kept(env: Env, _e: Engine) {
    let store = env.open().await.unwrap();
    let id = store.create_holder("open", ADMIN).await.unwrap();
    let kept = store
        .put_attachment(id, "text/plain", Bytes::from_static(b"kept"))
        .await
        .unwrap();
    // A blob written by an upload that crashed before its row committed.
    let orphan = store
        .blobs()
        .put(Bytes::from_static(b"orphan ciphertext"))
        .await
        .unwrap();
    assert_eq!(blob_files(&env).len(), 2);
    // Too young: could be an upload in flight.
    let r = store.collect_orphan_blobs(3600).await.unwrap();
    assert_eq!(r.deleted, 0);
    let r = store.collect_orphan_blobs(0).await.unwrap();
    assert_eq!((r.examined, r.deleted), (2, 1));
    assert!(matches!(
        store.blobs().get(&orphan).await,
        Err(StoreError::BlobMissing { .. })
    ));
    assert!(store.attachment(id, kept.id).await.is_ok());
}

async fn migrations_are_idempotent(env: Env, _e: Engine) {
    let store = env.open().await.unwrap();
    assert!(
        store
            .db()
            .is_initialised(&carnet_store::db::MAIN_MIGRATIONS)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .db()
            .migrate(&carnet_store::db::MAIN_MIGRATIONS)
            .await
            .unwrap(),
        Vec::<i64>::new()
    );
    assert_eq!(
        store
            .vault()
            .db()
            .migrate(&carnet_store::db::VAULT_MIGRATIONS)
            .await
            .unwrap(),
        Vec::<i64>::new()
    );
}

async fn concurrent_writes_all_land(env: Env, _e: Engine) {
    let store = env.open().await.unwrap();
    let id = store.create_holder("open", ADMIN).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..40u32 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            let body = format!("measurement {i}");
            let a = s
                .put_attachment(id, "text/plain", Bytes::from(body.clone()))
                .await
                .unwrap();
            (a.id, body)
        }));
    }
    let mut written = Vec::new();
    for t in tasks {
        written.push(t.await.unwrap());
    }
    assert_eq!(store.attachment_ids(id).await.unwrap().len(), 40);
    for (aid, body) in written {
        assert_eq!(store.attachment(id, aid).await.unwrap().1, Bytes::from(body));
    }
}

#[tokio::test]
async fn missing_or_foreign_data_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let err = open_store(&StoreSettings::new(&missing), Arc::new(SystemClock))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
    assert!(!missing.exists(), "not created silently");
    let foreign = dir.path().join("foreign");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join("thesis.odt"), b"precious").unwrap();
    let err = open_store(&StoreSettings::new(&foreign), Arc::new(SystemClock))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not a Carnet data directory"), "{err}");
    assert_eq!(
        std::fs::read_dir(&foreign).unwrap().count(),
        1,
        "nothing written into it"
    );
}

#[tokio::test]
async fn unreachable_database_is_named_in_the_error() {
    let opts = DbOptions {
        connect_timeout: std::time::Duration::from_secs(2),
        ..DbOptions::default()
    };
    let err = Db::connect("postgres://carnet:secret@127.0.0.1:1/carnet", &opts)
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("cannot reach the database at postgres://carnet:***@127.0.0.1:1/carnet"),
        "{msg}"
    );
    assert!(!msg.contains("secret"), "password leaked: {msg}");
    let err = Db::connect("mysql://x@y/z", &opts).await.unwrap_err();
    assert!(err.to_string().contains("unsupported database URL"), "{err}");
}

#[tokio::test]
async fn in_memory_blob_store_verifies_hashes() {
    let b = BlobStore::memory();
    let h = b.put(Bytes::from_static(b"abc")).await.unwrap();
    assert_eq!(h, BlobHash::of(b"abc"));
    assert_eq!(&b.get(&h).await.unwrap()[..], b"abc");
    let absent = BlobHash::of(b"zzz");
    assert!(matches!(
        b.get(&absent).await,
        Err(StoreError::BlobMissing { .. })
    ));
    assert_eq!(b.list().await.unwrap().len(), 1);
}

#[tokio::test]
async fn ids_come_from_the_injected_clock() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(Timestamp::from_unix_seconds(1_900_000_000));
    let store = open_store(&StoreSettings::new(dir.path()), Arc::new(clock.clone()))
        .await
        .unwrap();
    let id = store.create_holder("open", b"{}").await.unwrap();
    let h = store.holder(id).await.unwrap();
    assert_eq!(h.created_at, clock.now());
    let (secs, _) = id.as_uuid().get_timestamp().unwrap().to_unix();
    assert_eq!(secs, 1_900_000_000);
}

// ---- authentication (issue 3) ----

use carnet_store::outbox::Channel;

fn with_serial(mut r: RosterRecord, serial: &str) -> RosterRecord {
    r.card_serial = Some(serial.to_string());
    r
}

async fn activation_proves_identity_once_lc4(env: Env, _e: Engine) {
    let clock = ManualClock::new(Timestamp::from_unix_seconds(T0));
    let store = env.open_at(&clock).await;
    let out = store
        .import_roster_batch(&[
            with_serial(record(60, "1970-01-01", true, None), "1234 5678 90"),
            record(61, "1971-01-01", true, None),
        ])
        .await
        .unwrap();
    let RosterOutcome::Created { id, activation_code } = out[0].clone() else {
        panic!()
    };
    let RosterOutcome::Created {
        activation_code: code_b,
        ..
    } = out[1].clone()
    else {
        panic!()
    };
    let ins = carnet_domain::Ins::parse(&ins_for(60)).unwrap();
    let hash = carnet_store::password::hash("un mot de passe solide").unwrap();
    for (code, serial) in [
        ("AAAAAAAAAAAA", "1234567890"),
        (activation_code.as_str(), "999"),
        (code_b.as_str(), "1234567890"),
    ] {
        assert!(matches!(
            store.activate(&ins, code, serial, "zoe@example.org", &hash).await,
            Err(StoreError::Mismatch)
        ));
    }
    assert_eq!(store.lifecycle(id).await.unwrap().name(), "informed");
    let got = store
        .activate(&ins, &activation_code, "1234567890", "Zoe@Example.org", &hash)
        .await
        .unwrap();
    assert_eq!(got, id);
    assert_eq!(store.lifecycle(id).await.unwrap().name(), "activated");
    assert!(
        matches!(
            store
                .activate(&ins, &activation_code, "1234567890", "x@example.org", &hash)
                .await,
            Err(StoreError::Mismatch)
        ),
        "single use"
    );
    let (who, stored) = store
        .credentials_by_login("  ZOE@example.ORG ")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(who, id);
    assert!(carnet_store::password::verify(
        "un mot de passe solide",
        Some(&stored)
    ));
    // Another holder cannot take the same login.
    let other = store.create_holder("activated", b"{}").await.unwrap();
    assert!(matches!(
        store.set_credentials(other, "zoe@example.org", &hash).await,
        Err(StoreError::LoginTaken)
    ));
}

async fn claim_code(store: &Store) -> String {
    let msgs = store.claim_messages(100).await.unwrap();
    let m = msgs
        .iter()
        .rev()
        .find(|m| m.kind == "login_code")
        .expect("a login code was queued");
    let v: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
    v["code"].as_str().unwrap().to_string()
}

async fn login_codes_are_single_use_short_lived_and_limited_au1(env: Env, _e: Engine) {
    let clock = ManualClock::new(Timestamp::from_unix_seconds(T0));
    let store = env.open_at(&clock).await;
    let h = store.create_holder("activated", b"{}").await.unwrap();
    let c1 = store
        .create_login_challenge(h, "dev1", Channel::Email)
        .await
        .unwrap();
    let code = claim_code(&store).await;
    assert_eq!(code.len(), 6);
    assert!(code.bytes().all(|b| b.is_ascii_digit()));
    let wrong = if code == "000000" { "000001" } else { "000000" };
    assert!(matches!(
        store.verify_login_challenge(c1, wrong).await,
        Err(StoreError::Mismatch)
    ));
    assert_eq!(
        store.verify_login_challenge(c1, &code).await.unwrap(),
        (h, "dev1".to_string())
    );
    assert!(
        matches!(
            store.verify_login_challenge(c1, &code).await,
            Err(StoreError::Mismatch)
        ),
        "single use"
    );
    // Expiry: the last second works, the next does not.
    let c2 = store
        .create_login_challenge(h, "dev1", Channel::Email)
        .await
        .unwrap();
    let code2 = claim_code(&store).await;
    clock.advance_seconds(carnet_store::auth::LOGIN_CODE_TTL_SECONDS);
    assert!(
        matches!(
            store.verify_login_challenge(c2, &code2).await,
            Err(StoreError::Mismatch)
        ),
        "expired"
    );
    // Five wrong attempts burn the challenge, even for the right code afterwards.
    let c3 = store
        .create_login_challenge(h, "dev1", Channel::Email)
        .await
        .unwrap();
    let code3 = claim_code(&store).await;
    let wrong3 = if code3 == "000000" { "000001" } else { "000000" };
    for _ in 0..carnet_store::auth::LOGIN_CODE_MAX_ATTEMPTS {
        assert!(store.verify_login_challenge(c3, wrong3).await.is_err());
    }
    assert!(
        matches!(
            store.verify_login_challenge(c3, &code3).await,
            Err(StoreError::Mismatch)
        ),
        "burnt"
    );
    // A code of one challenge does not open another.
    let c4 = store
        .create_login_challenge(h, "dev1", Channel::Email)
        .await
        .unwrap();
    let _ = claim_code(&store).await;
    let c5 = store
        .create_login_challenge(h, "dev1", Channel::Email)
        .await
        .unwrap();
    let code5 = claim_code(&store).await;
    assert!(store.verify_login_challenge(c4, &code5).await.is_err() || code5.is_empty());
    assert!(store.verify_login_challenge(c5, &code5).await.is_ok());
    assert!(matches!(
        store.verify_login_challenge(uuid::Uuid::new_v4(), "123456").await,
        Err(StoreError::Mismatch)
    ));
}

async fn sessions_expire_idle_and_absolute_and_revoke_everywhere_au3(env: Env, _e: Engine) {
    use carnet_store::auth::{SESSION_ABSOLUTE_SECONDS, SESSION_IDLE_SECONDS};
    let clock = ManualClock::new(Timestamp::from_unix_seconds(T0));
    let store = env.open_at(&clock).await;
    let h = store.create_holder("activated", b"{}").await.unwrap();
    let (t1, s1) = store.create_session(h, "laptop").await.unwrap();
    assert_eq!(store.session(&t1).await.unwrap(), Some(s1.clone()));
    assert_eq!(s1.acting_for, h);
    let new_device = |store: &Store| {
        let store = store.clone();
        async move {
            store
                .outbox_of(h)
                .await
                .unwrap()
                .iter()
                .filter(|m| m.0 == "new_device")
                .count()
        }
    };
    assert_eq!(
        new_device(&store).await,
        1,
        "first login from a device is notified"
    );
    let (_t2, _) = store.create_session(h, "laptop").await.unwrap();
    assert_eq!(new_device(&store).await, 1, "a known device is not");
    // Idle: used every 20 minutes it stays alive until the absolute limit.
    let mut elapsed = 0;
    while elapsed + 20 * 60 < SESSION_ABSOLUTE_SECONDS {
        clock.advance_seconds(20 * 60);
        elapsed += 20 * 60;
        assert!(
            store.session(&t1).await.unwrap().is_some(),
            "alive after {elapsed}s"
        );
    }
    clock.set(Timestamp::from_unix_seconds(T0 + SESSION_ABSOLUTE_SECONDS));
    assert_eq!(store.session(&t1).await.unwrap(), None, "absolute expiry");
    // Idle expiry.
    let (t3, _) = store.create_session(h, "phone").await.unwrap();
    clock.advance_seconds(SESSION_IDLE_SECONDS - 1);
    assert!(store.session(&t3).await.unwrap().is_some());
    clock.advance_seconds(SESSION_IDLE_SECONDS);
    assert_eq!(store.session(&t3).await.unwrap(), None, "idle expiry");
    // Logout everywhere.
    let (a, _) = store.create_session(h, "phone").await.unwrap();
    let (b, _) = store.create_session(h, "tablet").await.unwrap();
    store.revoke_session(&a).await.unwrap();
    assert_eq!(store.session(&a).await.unwrap(), None);
    assert!(store.session(&b).await.unwrap().is_some());
    assert!(store.revoke_all_sessions(h).await.unwrap() >= 1);
    assert_eq!(store.session(&b).await.unwrap(), None);
    assert_eq!(store.session("not-a-token").await.unwrap(), None);
}

async fn rate_limits_hold_per_bucket_and_window(env: Env, _e: Engine) {
    use carnet_store::auth::RateDecision;
    let clock = ManualClock::new(Timestamp::from_unix_seconds(T0));
    let store = env.open_at(&clock).await;
    for _ in 0..5 {
        assert_eq!(
            store.hit_rate_limit("login:acct:x", 900, 5).await.unwrap(),
            RateDecision::Allowed
        );
    }
    let RateDecision::Limited { retry_after_seconds } =
        store.hit_rate_limit("login:acct:x", 900, 5).await.unwrap()
    else {
        panic!("sixth hit allowed");
    };
    assert!(retry_after_seconds > 0 && retry_after_seconds <= 900);
    assert_eq!(
        store.hit_rate_limit("login:acct:y", 900, 5).await.unwrap(),
        RateDecision::Allowed,
        "per bucket"
    );
    clock.advance_seconds(900);
    assert_eq!(
        store.hit_rate_limit("login:acct:x", 900, 5).await.unwrap(),
        RateDecision::Allowed,
        "next window"
    );
}

async fn totp_codes_are_accepted_once_and_only_in_time(env: Env, _e: Engine) {
    let clock = ManualClock::new(Timestamp::from_unix_seconds(T0));
    let store = env.open_at(&clock).await;
    let h = store.create_holder("activated", b"{}").await.unwrap();
    let hash = carnet_store::password::hash("un mot de passe solide").unwrap();
    store.set_credentials(h, "totp-user", &hash).await.unwrap();
    let secret = store.begin_totp(h).await.unwrap();
    assert!(
        !store.totp_enabled(h).await.unwrap(),
        "not active before a first code is confirmed"
    );
    let at = |t: i64| Store::totp_code(&secret, t as u64).unwrap();
    assert!(matches!(store.verify_totp(h, "000000").await, Err(StoreError::Mismatch)) || at(T0) == "000000");
    store.verify_totp(h, &at(T0)).await.unwrap();
    assert!(store.totp_enabled(h).await.unwrap());
    assert!(
        matches!(store.verify_totp(h, &at(T0)).await, Err(StoreError::Mismatch)),
        "a code is accepted once"
    );
    // Through a login challenge: the next step's code (within the ±1 step skew) works.
    let c = store.create_totp_challenge(h, "dev").await.unwrap();
    assert_eq!(store.verify_login_challenge(c, &at(T0 + 30)).await.unwrap().0, h);
    // Two minutes later, a code of the old steps is refused; a current one works.
    clock.advance_seconds(120);
    assert!(store.verify_totp(h, &at(T0 + 30)).await.is_err());
    store.verify_totp(h, &at(T0 + 120)).await.unwrap();
    store.disable_totp(h).await.unwrap();
    assert!(!store.totp_enabled(h).await.unwrap());
}

// ---- the gate (issue 4) ----

/// The holder's own side of space `h` (S-1: reached only through the gate's binding).
async fn own_side(store: &Store, h: HolderId) -> carnet_store::space::HolderSide {
    Gate::new(store.clone(), HabilitationMatrix::default_matrix())
        .holder_side(h, &Actor::Holder { id: h })
        .await
        .unwrap()
        .expect("the holder's own space")
}

use carnet_domain::access::{
    Action, Actor, Author, Category, Context, Grant, Grantee, HabilitationMatrix, ItemFacts, PracticeRole,
    ProfessionalId, Reason,
};
use carnet_store::gate::Gate;

fn pro_actor(id: &str, profession: &str) -> Actor {
    Actor::Professional {
        id: ProfessionalId(id.into()),
        profession: profession.into(),
        role: PracticeRole::Care,
    }
}

fn prescription() -> ItemFacts {
    ItemFacts {
        category: Category::Prescriptions,
        author: Author::Professional {
            id: ProfessionalId("author".into()),
        },
        masked: false,
        hidden_from_representatives: false,
        visible_to_holder: true,
    }
}

async fn notices(store: &Store, h: HolderId) -> Vec<String> {
    let all = store.outbox_of(h).await.unwrap();
    all.into_iter()
        .map(|m| m.0)
        .filter(|k| k.contains("access"))
        .collect()
}

async fn gate_decides_traces_and_notifies_ac3_ac8(env: Env, _e: Engine) {
    let clock = ManualClock::new(Timestamp::from_unix_seconds(T0));
    let store = env.open_at(&clock).await;
    let gate = Gate::new(store.clone(), HabilitationMatrix::default_matrix());
    let h = store.create_holder("activated", b"{}").await.unwrap();
    own_side(&store, h)
        .await
        .update_access_policy(|p| {
            p.grants.push(Grant {
                grantee: Grantee::Professional {
                    id: ProfessionalId("pharma".into()),
                },
                categories: None,
                until: None,
                express: false,
            });
            p.blocked.push(ProfessionalId("blocked".into()));
        })
        .await
        .unwrap();
    let none = Context::default();
    let d = gate
        .check(
            h,
            &pro_actor("pharma", "pharmacien"),
            Action::Read,
            "document/1",
            &prescription(),
            &none,
        )
        .await
        .unwrap();
    assert!(d.allowed);
    assert_eq!(d.reason, Reason::Grant);
    assert_eq!(
        notices(&store, h).await,
        vec!["access"],
        "AC-6: the holder is told at once"
    );
    // A holder is a holder of their own space only: another holder gets "no space" (AC-8),
    // whatever a handler above might have let through.
    let other = store.create_holder("activated", b"{}").await.unwrap();
    let d = gate
        .check(
            h,
            &Actor::Holder { id: other },
            Action::Read,
            "document/1",
            &prescription(),
            &none,
        )
        .await
        .unwrap();
    assert!(!d.allowed, "{d:?}");
    assert_eq!(d.reason, Reason::NoSpace);
    gate.check(
        h,
        &pro_actor("pharma", "pharmacien"),
        Action::Read,
        "document/2",
        &prescription(),
        &none,
    )
    .await
    .unwrap();
    assert_eq!(notices(&store, h).await.len(), 1, "pending notices collapse");
    let d = gate
        .check(
            h,
            &pro_actor("blocked", "medecin"),
            Action::Read,
            "document/1",
            &prescription(),
            &none,
        )
        .await
        .unwrap();
    assert_eq!((d.allowed, d.reason), (false, Reason::Blocked));
    // The holder's own reads are not traced; an emergency is traced with its reason and notified.
    assert!(
        gate.check(
            h,
            &Actor::Holder { id: h },
            Action::Read,
            "document/1",
            &prescription(),
            &none
        )
        .await
        .unwrap()
        .allowed
    );
    let urgent = Context {
        emergency: Some("inconscient aux urgences".into()),
    };
    let d = gate
        .check(
            h,
            &pro_actor("er", "medecin"),
            Action::Read,
            "document/1",
            &prescription(),
            &urgent,
        )
        .await
        .unwrap();
    assert!(d.allowed && d.emergency);
    assert!(notices(&store, h).await.contains(&"emergency_access".to_string()));
    let traces = store.traces_of(h, None, 100).await.unwrap();
    let summary: Vec<(i64, bool, Reason)> = traces
        .iter()
        .map(|t| (t.seq, t.entry.allowed, t.entry.reason))
        .collect();
    assert_eq!(
        summary,
        vec![
            (4, true, Reason::Emergency),
            (3, false, Reason::Blocked),
            (2, true, Reason::Grant),
            (1, true, Reason::Grant)
        ]
    );
    assert_eq!(
        traces[0].entry.purpose.as_deref(),
        Some("inconscient aux urgences")
    );
    // S-4: a revocation applies to the very next request.
    own_side(&store, h)
        .await
        .update_access_policy(|p| p.grants.clear())
        .await
        .unwrap();
    let d = gate
        .check(
            h,
            &pro_actor("pharma", "pharmacien"),
            Action::Read,
            "document/1",
            &prescription(),
            &none,
        )
        .await
        .unwrap();
    assert_eq!((d.allowed, d.reason), (false, Reason::NoGrant));
    // AC-8: an unknown space is refused like any other, and nothing is written for it.
    let ghost = HolderId::new(clock.now());
    assert!(
        !gate
            .check(
                ghost,
                &pro_actor("pharma", "pharmacien"),
                Action::Read,
                "document/1",
                &prescription(),
                &none
            )
            .await
            .unwrap()
            .allowed
    );
    let report = store.verify_traces().await.unwrap();
    assert_eq!((report.holders, report.entries), (1, 5));
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    // LC-7: erasure takes the traces and the directory too.
    store.erase_holder(h).await.unwrap();
    assert_eq!(store.verify_traces().await.unwrap().entries, 0);
}

async fn tamper(store: &Store, sql: &'static str, holder: HolderId) {
    let mut tx = store.db().begin().await.unwrap();
    carnet_store::on_tx!(&mut tx, t => sqlx::query(sql).bind(holder.as_uuid()).execute(&mut **t).await.map(|r| r.rows_affected())).unwrap();
    tx.commit().await.unwrap();
}

async fn traces_are_tamper_evident_ac7(env: Env, _e: Engine) {
    let store = env.open().await.unwrap();
    let gate = Gate::new(store.clone(), HabilitationMatrix::default_matrix());
    let h = store.create_holder("activated", b"{}").await.unwrap();
    for i in 0..5 {
        gate.check(
            h,
            &pro_actor(&format!("p{i}"), "medecin"),
            Action::Read,
            "document/x",
            &prescription(),
            &Context::default(),
        )
        .await
        .unwrap();
    }
    assert!(store.verify_traces().await.unwrap().problems.is_empty());
    // An operator flips a denial into an allowed access behind the server's back.
    tamper(
        &store,
        "UPDATE traces SET allowed = 1 WHERE holder_id = $1 AND seq = 2",
        h,
    )
    .await;
    let r = store.verify_traces().await.unwrap();
    assert!(
        r.problems.iter().any(|p| p.contains("trace 2 was altered")),
        "{:?}",
        r.problems
    );
    tamper(
        &store,
        "UPDATE traces SET allowed = 0 WHERE holder_id = $1 AND seq = 2",
        h,
    )
    .await;
    assert!(
        store.verify_traces().await.unwrap().problems.is_empty(),
        "restored"
    );
    // Removing one.
    tamper(&store, "DELETE FROM traces WHERE holder_id = $1 AND seq = 3", h).await;
    let r = store.verify_traces().await.unwrap();
    assert!(
        r.problems
            .iter()
            .any(|p| p.contains("missing") || p.contains("does not follow")),
        "{:?}",
        r.problems
    );
    // Reordering: renumber the last one into the gap.
    tamper(
        &store,
        "UPDATE traces SET seq = 3 WHERE holder_id = $1 AND seq = 5",
        h,
    )
    .await;
    let r = store.verify_traces().await.unwrap();
    assert!(!r.problems.is_empty(), "reordering must be detected");
}

async fn concurrent_accesses_are_group_committed_into_one_valid_chain(env: Env, _e: Engine) {
    let store = env.open().await.unwrap();
    let gate = Gate::new(store.clone(), HabilitationMatrix::default_matrix());
    let a = store.create_holder("activated", b"{}").await.unwrap();
    let b = store.create_holder("activated", b"{}").await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..60 {
        let gate = gate.clone();
        let holder = if i % 3 == 0 { b } else { a };
        tasks.push(tokio::spawn(async move {
            gate.check(
                holder,
                &pro_actor(&format!("p{i}"), "medecin"),
                Action::Read,
                "document/x",
                &prescription(),
                &Context::default(),
            )
            .await
            .unwrap()
        }));
    }
    for t in tasks {
        assert!(!t.await.unwrap().allowed, "no grant: denied, and traced");
    }
    let r = store.verify_traces().await.unwrap();
    assert_eq!((r.holders, r.entries), (2, 60));
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    let seqs: Vec<i64> = store
        .traces_of(a, None, 100)
        .await
        .unwrap()
        .iter()
        .map(|t| t.seq)
        .collect();
    assert_eq!(seqs, (1..=40).rev().collect::<Vec<_>>());
}

// ---- documents (issue 5) and emergency access (issue 4) ----

use carnet_domain::document::{NOT_VISIBLE_MAX_SECONDS, Status, WAITING_NOTICE_SECONDS};
use carnet_store::documents::{DocumentChange, DocumentFilter, NewDocument};

fn text_doc(title: &str, class: Category) -> NewDocument {
    NewDocument {
        title: Some(title.into()),
        class: Some(class),
        mime: "text/plain".into(),
        ..NewDocument::default()
    }
}

fn all_docs() -> DocumentFilter {
    DocumentFilter {
        limit: 100,
        ..DocumentFilter::default()
    }
}

/// The titles `who` sees in `h`'s documents, sorted.
async fn listed_titles(gate: &Gate, h: HolderId, who: &Actor) -> Vec<String> {
    let page = gate
        .list_documents(h, who, &all_docs(), &Context::default())
        .await
        .unwrap();
    let mut titles: Vec<String> = page.documents.into_iter().map(|d| d.meta.title).collect();
    titles.sort();
    assert_eq!(page.total, titles.len());
    titles
}

/// Two servers over one store, an activated space whose directory grants two doctors, and
/// its holder, the first doctor and the second.
async fn two_servers_and_two_doctors(env: &Env) -> (Gate, Gate, HolderId, [Actor; 3]) {
    let (one, two) = (env.open().await.unwrap(), env.open().await.unwrap());
    let g1 = Gate::new(one.clone(), HabilitationMatrix::default_matrix());
    let g2 = Gate::new(two.clone(), HabilitationMatrix::default_matrix());
    let h = one.create_holder("activated", ADMIN).await.unwrap();
    own_side(&one, h)
        .await
        .update_access_policy(|p| {
            for id in ["11111111111", "33333333333"] {
                p.grants.push(Grant {
                    grantee: Grantee::Professional {
                        id: ProfessionalId(id.into()),
                    },
                    categories: None,
                    until: None,
                    express: false,
                })
            }
        })
        .await
        .unwrap();
    let actors = [
        Actor::Holder { id: h },
        pro_actor("11111111111", "medecin"),
        pro_actor("33333333333", "medecin"),
    ];
    (g1, g2, h, actors)
}

/// S-1, S-2, DM-3..DM-5: a server keeps the document rows it opened (`doccache`), but never
/// past a change made on another server: a deposit, a mask, a deletion and a new version made
/// there are listed here at once, as is this server's own deposit.
async fn documents_changed_on_another_server_are_listed_as_they_are_now_s1_dm5(env: Env, _e: Engine) {
    let (g1, g2, h, [me, doctor, colleague]) = two_servers_and_two_doctors(&env).await;
    let none = Context::default();
    let deposit = |g: &Gate, title: &str| {
        let (g, title) = (g.clone(), title.to_string());
        let doctor = doctor.clone();
        async move {
            g.deposit_document(
                h,
                &doctor,
                text_doc(&title, Category::Reports),
                title.as_bytes().to_vec(),
                &Context::default(),
            )
            .await
            .unwrap()
        }
    };
    assert!(listed_titles(&g1, h, &doctor).await.is_empty());
    let a = deposit(&g1, "A").await;
    // Both servers have now opened (and keep) the record.
    assert_eq!(listed_titles(&g1, h, &doctor).await, ["A"]);
    assert_eq!(listed_titles(&g2, h, &doctor).await, ["A"]);
    let b = deposit(&g2, "B").await;
    assert_eq!(listed_titles(&g1, h, &doctor).await, ["A", "B"]);
    // This server's own deposit, on top of the rows it keeps.
    let c = deposit(&g1, "C").await;
    assert_eq!(listed_titles(&g1, h, &doctor).await, ["A", "B", "C"]);
    assert_eq!(listed_titles(&g2, h, &doctor).await, ["A", "B", "C"]);
    // DM-5: masked on server two, hidden on server one from professionals (but its author).
    assert_eq!(listed_titles(&g1, h, &colleague).await, ["A", "B", "C"]);
    g2.change_document(h, &me, a.id, DocumentChange::Mask(true), &none)
        .await
        .unwrap();
    assert_eq!(listed_titles(&g1, h, &colleague).await, ["B", "C"]);
    assert_eq!(listed_titles(&g1, h, &me).await, ["A", "B", "C"]);
    // DM-4: deleted on server two, gone on server one.
    g2.change_document(
        h,
        &me,
        b.id,
        DocumentChange::RequestDeletion("doublon".into()),
        &none,
    )
    .await
    .unwrap();
    g2.change_document(h, &doctor, b.id, DocumentChange::AnswerDeletion(true), &none)
        .await
        .unwrap();
    assert_eq!(listed_titles(&g1, h, &me).await, ["A", "C"]);
    // DM-3: a new version made on server two replaces the old one on server one, then one
    // made on server one replaces it in both.
    let c2 = g2
        .replace_document(
            h,
            &doctor,
            c.id,
            text_doc("C2", Category::Reports),
            b"c2".to_vec(),
            &none,
        )
        .await
        .unwrap();
    assert_eq!(listed_titles(&g1, h, &me).await, ["A", "C2"]);
    g1.replace_document(
        h,
        &doctor,
        c2.id,
        text_doc("C3", Category::Reports),
        b"c3".to_vec(),
        &none,
    )
    .await
    .unwrap();
    assert_eq!(listed_titles(&g1, h, &me).await, ["A", "C3"]);
    assert_eq!(listed_titles(&g2, h, &me).await, ["A", "C3"]);
    let history = g1.document_history(h, &me, c2.id, &none).await.unwrap();
    assert_eq!(
        history.iter().map(|v| v.status).collect::<Vec<_>>(),
        [Status::Approved, Status::Deprecated, Status::Deprecated]
    );
}

/// S-1, DM-5, DM-8: a listing decides and counts on what a server keeps of each row (its
/// head), and opens the sealed metadata of only the documents it shows; a row that changed
/// after the decision (masked on another server) is left out rather than shown as it was
/// decided, and the next listing decides on it as it is now. Titles are searched in the
/// opened rows, past the few whose metadata a server keeps per holder.
async fn a_listing_opens_only_its_page_and_never_a_row_changed_since_s1_dm5(env: Env, _e: Engine) {
    let (g1, g2, h, [me, doctor, colleague]) = two_servers_and_two_doctors(&env).await;
    let none = Context::default();
    // More documents than a server keeps opened per holder (64).
    let mut ids = Vec::new();
    for n in 0..70 {
        let title = format!("D{n:02}");
        let v = g1
            .deposit_document(
                h,
                &doctor,
                text_doc(&title, Category::Reports),
                title.into_bytes(),
                &none,
            )
            .await
            .unwrap();
        ids.push(v.id);
    }
    let set = g2.document_set(h, &colleague, &all_docs(), &none).await.unwrap();
    assert_eq!(set.len(), 70);
    assert_eq!(set.id(0), Some(ids[69]), "newest first");
    assert!(
        set.get(0).is_none() && set.get(69).is_none(),
        "nothing opened before asked"
    );
    set.open(&[0, 1]).await.unwrap();
    assert_eq!(set.get(1).map(|d| d.meta.title.clone()).as_deref(), Some("D68"));
    assert!(set.get(2).is_none(), "only the page asked for is opened");
    // The oldest (not among the rows the server kept opened) is masked on the other server
    // after this listing decided on it.
    g1.change_document(h, &me, ids[0], DocumentChange::Mask(true), &none)
        .await
        .unwrap();
    set.open_all().await.unwrap();
    assert!(
        set.get(69).is_none(),
        "changed since the decision: left out, not shown as it was"
    );
    assert_eq!((0..70).filter(|i| set.get(*i).is_some()).count(), 69);
    // The next listings decide on the row as it is now.
    assert_eq!(listed_titles(&g2, h, &colleague).await.len(), 69);
    assert!(
        !listed_titles(&g2, h, &colleague)
            .await
            .contains(&"D00".to_string())
    );
    assert_eq!(listed_titles(&g2, h, &me).await.len(), 70);
    // A search in the titles opens what it must, on either server.
    for g in [&g1, &g2] {
        let found = g
            .list_documents(
                h,
                &me,
                &DocumentFilter {
                    text: Some("d0".into()),
                    ..all_docs()
                },
                &none,
            )
            .await
            .unwrap();
        let mut titles: Vec<String> = found.documents.into_iter().map(|d| d.meta.title).collect();
        titles.sort();
        assert_eq!(titles, (0..10).map(|n| format!("D{n:02}")).collect::<Vec<_>>());
        assert_eq!(found.total, 10);
    }
    // Paging through the record by `before` opens page after page and misses none.
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = g2
            .list_documents(
                h,
                &me,
                &DocumentFilter {
                    limit: 16,
                    before,
                    ..all_docs()
                },
                &none,
            )
            .await
            .unwrap();
        assert_eq!(page.total, 70);
        seen.extend(page.documents.iter().map(|d| d.id));
        match page.next_before {
            Some(b) => before = Some(b),
            None => break,
        }
    }
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(seen, newest_first);
}

async fn documents_go_through_the_gate_dm1_dm8(env: Env, _e: Engine) {
    let clock = ManualClock::new(Timestamp::from_unix_seconds(T0));
    let store = env.open_at(&clock).await;
    let gate = Gate::new(store.clone(), HabilitationMatrix::default_matrix());
    let h = store.create_holder("activated", ADMIN).await.unwrap();
    let me = Actor::Holder { id: h };
    let doctor = pro_actor("11111111111", "medecin");
    let stranger = pro_actor("22222222222", "medecin");
    own_side(&store, h)
        .await
        .update_access_policy(|p| {
            p.grants.push(Grant {
                grantee: Grantee::Professional {
                    id: ProfessionalId("11111111111".into()),
                },
                categories: None,
                until: None,
                express: false,
            })
        })
        .await
        .unwrap();
    let none = Context::default();
    let blobs_before = blob_files(&env).len();
    // Bad input leaves nothing behind.
    let bad = NewDocument {
        mime: "application/pdf".into(),
        ..text_doc("x", Category::Reports)
    };
    assert!(matches!(
        gate.deposit_document(h, &doctor, bad, b"not a pdf".to_vec(), &none)
            .await,
        Err(StoreError::Invalid(_))
    ));
    // A stranger's deposit is refused like a missing space (AC-8) and traced.
    assert!(matches!(
        gate.deposit_document(
            h,
            &stranger,
            text_doc("x", Category::Reports),
            b"x".to_vec(),
            &none
        )
        .await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(blob_files(&env).len(), blobs_before);
    let v1 = gate
        .deposit_document(
            h,
            &doctor,
            text_doc("Bilan sanguin", Category::Reports),
            b"glycemie 1.02".to_vec(),
            &none,
        )
        .await
        .unwrap();
    clock.advance_seconds(10);
    let own = gate
        .deposit_document(
            h,
            &me,
            text_doc("Mon carnet", Category::Reports),
            b"notes".to_vec(),
            &none,
        )
        .await
        .unwrap();
    assert_eq!(
        own.meta.class,
        Category::HolderDocuments,
        "S-3: a holder files only as holder documents"
    );
    // DM-3: a new version deprecates the old one; the history keeps both.
    clock.advance_seconds(10);
    let v2 = gate
        .replace_document(
            h,
            &doctor,
            v1.id,
            text_doc("Bilan sanguin (corrigé)", Category::Reports),
            b"glycemie 1.05".to_vec(),
            &none,
        )
        .await
        .unwrap();
    assert_eq!(v2.set_id, v1.id);
    let page = gate.list_documents(h, &me, &all_docs(), &none).await.unwrap();
    assert_eq!(page.total, 2, "the deprecated version is not current");
    let hist = gate.document_history(h, &me, v2.id, &none).await.unwrap();
    assert_eq!(
        hist.iter().map(|v| v.status).collect::<Vec<_>>(),
        [Status::Approved, Status::Deprecated]
    );
    // Only the author replaces; the holder cannot replace a professional's document.
    assert!(
        gate.replace_document(
            h,
            &me,
            v2.id,
            text_doc("x", Category::Reports),
            b"y".to_vec(),
            &none
        )
        .await
        .is_err()
    );
    // Content round trip, and the stranger sees nothing.
    let (_, bytes) = gate.read_document(h, &doctor, v2.id, &none).await.unwrap();
    assert_eq!(bytes.as_ref(), b"glycemie 1.05");
    assert!(matches!(
        gate.read_document(h, &stranger, v2.id, &none).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        gate.list_documents(h, &stranger, &all_docs(), &none)
            .await
            .unwrap()
            .total,
        0
    );
    // Filters and paging (stable, by id).
    let f = DocumentFilter {
        text: Some("BILAN".into()),
        ..all_docs()
    };
    assert_eq!(gate.list_documents(h, &me, &f, &none).await.unwrap().total, 1);
    let first = DocumentFilter {
        limit: 1,
        ..all_docs()
    };
    let p1 = gate.list_documents(h, &me, &first, &none).await.unwrap();
    let next = DocumentFilter {
        before: p1.next_before,
        ..first.clone()
    };
    let p2 = gate.list_documents(h, &me, &next, &none).await.unwrap();
    assert_eq!(
        (p1.documents.len(), p2.documents.len(), p2.next_before),
        (1, 1, None)
    );
    assert_ne!(p1.documents[0].id, p2.documents[0].id);
    // DM-4: a deletion request, refused, then asked again and accepted: the document is gone
    // for everyone, its blob too, and the traces remain.
    gate.change_document(
        h,
        &me,
        v2.id,
        DocumentChange::RequestDeletion("erreur de patient".into()),
        &none,
    )
    .await
    .unwrap();
    assert_eq!(
        store.pro_notices("11111111111", 10).await.unwrap()[0].kind,
        "deletion_request"
    );
    let blobs = blob_files(&env).len();
    assert!(
        gate.change_document(h, &me, v2.id, DocumentChange::AnswerDeletion(true), &none)
            .await
            .is_err(),
        "only the author answers"
    );
    assert!(
        gate.change_document(h, &doctor, v2.id, DocumentChange::AnswerDeletion(true), &none)
            .await
            .unwrap()
            .is_none()
    );
    assert!(matches!(
        gate.read_document(h, &me, v2.id, &none).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(blob_files(&env).len(), blobs - 1);
    gate.delete_document(h, &me, own.id, &none).await.unwrap();
    assert!(store.verify_traces().await.unwrap().problems.is_empty());
    let traced = store.traces_of(h, None, 100).await.unwrap();
    assert!(
        traced
            .iter()
            .any(|t| t.entry.action == Action::Delete && t.entry.allowed)
    );
    assert!(
        traced
            .iter()
            .any(|t| !t.entry.allowed && t.entry.actor == stranger),
        "AC-8: denials traced"
    );
    // LC-7: erasure removes documents, content and all.
    let kept = gate
        .deposit_document(h, &me, text_doc("garde", Category::Reports), b"z".to_vec(), &none)
        .await
        .unwrap();
    store.erase_holder(h).await.unwrap();
    assert!(gate.read_document(h, &me, kept.id, &none).await.is_err());
    let left: i64 = on_db!(store.db(), p => sqlx::query("SELECT COUNT(*) FROM documents").fetch_one(p).await.map(|r| r.get::<i64, _>(0))).unwrap();
    assert_eq!(left, 0);
}

async fn held_documents_follow_dm6_with_the_clock(env: Env, _e: Engine) {
    let clock = ManualClock::new(Timestamp::from_unix_seconds(T0));
    let store = env.open_at(&clock).await;
    let gate = Gate::new(store.clone(), HabilitationMatrix::default_matrix());
    let h = store.create_holder("activated", ADMIN).await.unwrap();
    let me = Actor::Holder { id: h };
    let doctor = pro_actor("11111111111", "medecin");
    own_side(&store, h)
        .await
        .update_access_policy(|p| p.medecin_traitant = Some(ProfessionalId("11111111111".into())))
        .await
        .unwrap();
    let none = Context::default();
    let held = NewDocument {
        hold_from_holder: true,
        ..text_doc("Résultat à annoncer", Category::Reports)
    };
    let d = gate
        .deposit_document(h, &doctor, held, b"resultat".to_vec(), &none)
        .await
        .unwrap();
    assert_eq!(
        gate.list_documents(h, &me, &all_docs(), &none)
            .await
            .unwrap()
            .total,
        0
    );
    assert!(matches!(
        gate.read_document(h, &me, d.id, &none).await,
        Err(StoreError::NotFound)
    ));
    // Nothing reveals it meanwhile: no access notice queued, and neither the history nor the
    // notices the holder reads show its deposit (the author's own reads of it neither).
    gate.read_document(h, &doctor, d.id, &none).await.unwrap();
    assert!(
        store.outbox_of(h).await.unwrap().is_empty(),
        "{:?}",
        store.outbox_of(h).await.unwrap()
    );
    let shown = |gate: Gate| {
        let me = me.clone();
        async move {
            let history = gate.history(h, &me, None, None, 50).await.unwrap().unwrap();
            let notices = gate.notices(h, &me, None, 50).await.unwrap().unwrap();
            (history.traces.len(), notices.traces.len())
        }
    };
    assert_eq!(shown(gate.clone()).await, (0, 0));
    // Deposit, the holder's refused read, the author's read: traced all the same (AC-6, AC-8).
    assert_eq!(store.traces_of(h, None, 50).await.unwrap().len(), 3);
    // Nobody else reads this history through the gate (S-1).
    assert!(gate.history(h, &doctor, None, None, 50).await.unwrap().is_none());
    assert!(
        gate.history(h, &Actor::Representative { id: h }, None, None, 50)
            .await
            .unwrap()
            .is_none()
    );
    // No "document waiting" notice before two weeks; exactly one at two weeks.
    clock.advance_seconds(WAITING_NOTICE_SECONDS - 1);
    assert_eq!(store.run_document_notices(100).await.unwrap(), 0);
    clock.advance_seconds(1);
    assert_eq!(store.run_document_notices(100).await.unwrap(), 1);
    assert_eq!(store.run_document_notices(100).await.unwrap(), 0);
    assert!(
        store
            .outbox_of(h)
            .await
            .unwrap()
            .iter()
            .any(|m| m.0 == "document_waiting")
    );
    // Visible by itself one month after the deposit.
    clock.set(Timestamp::from_unix_seconds(T0).plus_seconds(NOT_VISIBLE_MAX_SECONDS - 1));
    assert_eq!(
        gate.list_documents(h, &me, &all_docs(), &none)
            .await
            .unwrap()
            .total,
        0
    );
    clock.advance_seconds(1);
    assert_eq!(
        gate.list_documents(h, &me, &all_docs(), &none)
            .await
            .unwrap()
            .total,
        1
    );
    // Once it shows, so do the traces of it (the two professional accesses are notices).
    assert_eq!(shown(gate.clone()).await, (3, 2));
    // A second held document is lifted early by its author; "never invisible again".
    let held2 = NewDocument {
        hold_from_holder: true,
        ..text_doc("Autre", Category::Reports)
    };
    let d2 = gate
        .deposit_document(h, &doctor, held2, b"x".to_vec(), &none)
        .await
        .unwrap();
    assert!(
        gate.change_document(h, &me, d2.id, DocumentChange::MakeVisible, &none)
            .await
            .is_err(),
        "only the author lifts the hold"
    );
    let v = gate
        .change_document(h, &doctor, d2.id, DocumentChange::MakeVisible, &none)
        .await
        .unwrap()
        .unwrap();
    assert!(v.meta.visible_to_holder(store.now()));
    assert_eq!(
        gate.list_documents(h, &me, &all_docs(), &none)
            .await
            .unwrap()
            .total,
        2
    );
    // Its waiting notice is no longer due.
    clock.advance_seconds(WAITING_NOTICE_SECONDS);
    assert_eq!(store.run_document_notices(100).await.unwrap(), 0);
}

async fn emergency_access_is_bounded_and_notified_ac5(env: Env, _e: Engine) {
    let clock = ManualClock::new(Timestamp::from_unix_seconds(T0));
    let store = env.open_at(&clock).await;
    let gate = Gate::new(store.clone(), HabilitationMatrix::default_matrix());
    let h = store.create_holder("activated", ADMIN).await.unwrap();
    let mt = pro_actor("11111111111", "medecin");
    let er = pro_actor("33333333333", "medecin");
    own_side(&store, h)
        .await
        .update_access_policy(|p| p.medecin_traitant = Some(ProfessionalId("11111111111".into())))
        .await
        .unwrap();
    let none = Context::default();
    let d = gate
        .deposit_document(
            h,
            &mt,
            text_doc("Synthèse", Category::Summaries),
            b"vsm".to_vec(),
            &none,
        )
        .await
        .unwrap();
    assert!(gate.read_document(h, &er, d.id, &none).await.is_err());
    // S-7: no reason, no access.
    let (dec, until) = gate.declare_emergency(h, &er, "   ").await.unwrap();
    assert!(!dec.allowed && until.is_none());
    let (dec, until) = gate.declare_emergency(h, &er, "arrêt cardiaque").await.unwrap();
    assert!(dec.allowed && dec.emergency);
    let until = until.unwrap();
    assert_eq!(
        until,
        store
            .now()
            .plus_seconds(carnet_store::gate::EMERGENCY_ACCESS_SECONDS)
    );
    assert!(gate.read_document(h, &er, d.id, &none).await.is_ok());
    assert!(notices(&store, h).await.contains(&"emergency_access".to_string()));
    assert_eq!(
        store.pro_notices("11111111111", 10).await.unwrap()[0].kind,
        "emergency_access"
    );
    let traces = store.traces_of(h, None, 10).await.unwrap();
    assert!(
        traces
            .iter()
            .filter(|t| t.entry.actor == er && t.entry.allowed)
            .all(|t| t.entry.emergency && t.entry.purpose.as_deref() == Some("arrêt cardiaque"))
    );
    // The window closes by itself.
    clock.set(until);
    assert!(matches!(
        gate.read_document(h, &er, d.id, &none).await,
        Err(StoreError::NotFound)
    ));
    // AC-4: hiding everything shuts emergencies out too.
    own_side(&store, h)
        .await
        .update_access_policy(|p| p.hide_all = true)
        .await
        .unwrap();
    let (dec, until) = gate.declare_emergency(h, &er, "arrêt cardiaque").await.unwrap();
    assert!(!dec.allowed && until.is_none());
}

// ---- signed Merkle checkpoints over the traces (AC-7, S-5) ----

/// `n` traced accesses (denied: no grant) to `h`'s space.
async fn traced(gate: &Gate, h: HolderId, n: usize) {
    for i in 0..n {
        gate.check(
            h,
            &pro_actor(&format!("p{i}"), "medecin"),
            Action::Read,
            "document/x",
            &prescription(),
            &Context::default(),
        )
        .await
        .unwrap();
    }
}

/// Runs `sql` (no parameters) behind the store's back, as an operator could.
async fn operator_sql(store: &Store, sql: &'static str) {
    let mut tx = store.db().begin().await.unwrap();
    carnet_store::on_tx!(&mut tx, t => sqlx::query(sql).execute(&mut **t).await.map(|r| r.rows_affected()))
        .unwrap();
    tx.commit().await.unwrap();
}

fn from_checkpoints(problems: &[String]) -> bool {
    problems.iter().all(|p| p.contains("checkpoint"))
}

async fn checkpoints_sign_the_moved_chain_heads_ac7_s5(env: Env, _e: Engine) {
    let store = env.open().await.unwrap();
    let gate = Gate::new(store.clone(), HabilitationMatrix::default_matrix());
    assert!(
        store.make_checkpoint().await.unwrap().is_none(),
        "nothing traced yet"
    );
    assert!(store.latest_checkpoint().await.unwrap().is_none());
    let a = store.create_holder("activated", b"{}").await.unwrap();
    let b = store.create_holder("activated", b"{}").await.unwrap();
    traced(&gate, a, 3).await;
    traced(&gate, b, 2).await;
    let first = store.make_checkpoint().await.unwrap().expect("two chains moved");
    assert_eq!((first.number, first.size), (1, 2));
    let key = store.checkpoint_public_key().await.unwrap();
    assert!(first.signature_is_valid(&key));
    assert!(
        store.make_checkpoint().await.unwrap().is_none(),
        "nothing moved since"
    );
    traced(&gate, a, 1).await;
    let second = store.make_checkpoint().await.unwrap().expect("one chain moved");
    assert_eq!((second.number, second.size), (2, 1));
    assert_eq!(second.prev, first.hash(), "chained to the previous checkpoint");
    assert_eq!(store.latest_checkpoint().await.unwrap(), Some(second.clone()));
    let published = store.published_checkpoint().await.unwrap().unwrap();
    assert_eq!((published.number, published.size), (2, 1));
    assert_eq!(published.root, second.root);
    assert!(published.signed_note.starts_with(&second.text()));
    assert_eq!(
        published.public_key,
        store.checkpoint_public_key_b64().await.unwrap()
    );
    let r = store.verify_traces().await.unwrap();
    assert_eq!((r.holders, r.entries, r.checkpoints), (2, 6, 2));
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    // The key survives a restart: the same public key verifies the old checkpoints.
    store.db().close().await;
    let store = env.open().await.unwrap();
    assert_eq!(store.checkpoint_public_key().await.unwrap(), key);
    assert!(store.verify_traces().await.unwrap().problems.is_empty());
}

async fn truncated_chain_tail_is_caught_by_the_checkpoint_ac7(env: Env, _e: Engine) {
    let store = env.open().await.unwrap();
    let gate = Gate::new(store.clone(), HabilitationMatrix::default_matrix());
    let h = store.create_holder("activated", b"{}").await.unwrap();
    let other = store.create_holder("activated", b"{}").await.unwrap();
    traced(&gate, h, 5).await;
    traced(&gate, other, 2).await;
    store.make_checkpoint().await.unwrap().unwrap();
    assert!(store.verify_traces().await.unwrap().problems.is_empty());
    // An auditor keeps the published checkpoint.
    let kept = store.published_checkpoint().await.unwrap().unwrap();
    assert!(store.verify_published_checkpoint(&kept).await.unwrap().is_empty());
    let mut forged = kept.clone();
    forged.signed_note = forged.signed_note.replacen("\n1\n", "\n9\n", 1);
    assert!(store.verify_published_checkpoint(&forged).await.unwrap()[0].contains("not an authentic copy"));
    // An operator deletes the newest trace: the chain that is left is still a valid chain...
    tamper(&store, "DELETE FROM traces WHERE holder_id = $1 AND seq = 5", h).await;
    let r = store.verify_traces().await.unwrap();
    assert_eq!(r.entries, 6);
    assert!(
        from_checkpoints(&r.problems),
        "the per-holder chain alone sees nothing: {:?}",
        r.problems
    );
    // ...but the signed checkpoint still names its head.
    assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
    assert!(
        r.problems[0].contains(&format!(
            "holder {h}: trace 5, covered by checkpoint 1, is missing"
        )),
        "{:?}",
        r.problems
    );
    // Filling the gap with fresh accesses on a server that never saw trace 5 (restarted, or
    // another one: the running server remembers its head and would write trace 6, which the
    // chain alone shows as a gap, see `a_stale_cached_chain_head_is_read_again_s30`) makes a
    // valid chain again, with another head.
    let restarted = Gate::new(env.open().await.unwrap(), HabilitationMatrix::default_matrix());
    traced(&restarted, h, 1).await;
    let r = store.verify_traces().await.unwrap();
    assert!(
        r.problems
            .iter()
            .any(|p| p.contains(&format!("holder {h}: trace 5 differs from checkpoint 1"))),
        "{:?}",
        r.problems
    );
    assert!(from_checkpoints(&r.problems), "{:?}", r.problems);
    // Deleting every checkpoint as well hides it from the database alone; not from a kept copy.
    operator_sql(&store, "DELETE FROM trace_checkpoint_leaves").await;
    operator_sql(&store, "DELETE FROM trace_checkpoints").await;
    assert!(store.verify_traces().await.unwrap().problems.is_empty());
    assert_eq!(
        store.verify_published_checkpoint(&kept).await.unwrap(),
        vec!["published checkpoint 1 is no longer in the database".to_string()]
    );
}

async fn altered_or_removed_checkpoints_are_reported_ac7_s5(env: Env, _e: Engine) {
    let store = env.open().await.unwrap();
    let gate = Gate::new(store.clone(), HabilitationMatrix::default_matrix());
    let h = store.create_holder("activated", b"{}").await.unwrap();
    let other = store.create_holder("activated", b"{}").await.unwrap();
    traced(&gate, h, 2).await;
    traced(&gate, other, 1).await;
    let first = store.make_checkpoint().await.unwrap().unwrap();
    traced(&gate, h, 1).await;
    store.make_checkpoint().await.unwrap().unwrap();
    traced(&gate, other, 1).await;
    store.make_checkpoint().await.unwrap().unwrap();
    assert!(store.verify_traces().await.unwrap().problems.is_empty());
    let problems = || async { store.verify_traces().await.unwrap().problems };

    // Another root (a valid base64 SHA-256): signature, leaves and the next link all break.
    operator_sql(
        &store,
        "UPDATE trace_checkpoints SET root = 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=' WHERE number = 1",
    )
    .await;
    let p = problems().await;
    for expected in [
        "checkpoint 1: the signature does not match",
        "checkpoint 1: its stored leaves do not match its root",
        "checkpoint 2 does not follow the previous one",
    ] {
        assert!(p.iter().any(|x| x.contains(expected)), "{expected}: {p:?}");
    }
    let mut tx = store.db().begin().await.unwrap();
    carnet_store::on_tx!(&mut tx, t => sqlx::query("UPDATE trace_checkpoints SET root = $1 WHERE number = 1")
        .bind(&first.root).execute(&mut **t).await.map(|r| r.rows_affected()))
    .unwrap();
    tx.commit().await.unwrap();
    assert!(problems().await.is_empty(), "restored");

    // A forged signature.
    operator_sql(
        &store,
        "UPDATE trace_checkpoints SET signature = 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==' WHERE number = 2",
    )
    .await;
    let p = problems().await;
    assert_eq!(p, vec!["checkpoint 2: the signature does not match".to_string()]);
    operator_sql(
        &store,
        "UPDATE trace_checkpoints SET signature = 'not base64!' WHERE number = 2",
    )
    .await;
    assert_eq!(
        problems().await,
        vec!["checkpoint 2: its signature is not base64".to_string()],
        "and checkpoint 3 still follows it"
    );

    // A stored leaf edited to match a rewritten chain.
    operator_sql(
        &store,
        "UPDATE trace_checkpoint_leaves SET hash = 'x' WHERE checkpoint = 3",
    )
    .await;
    let p = problems().await;
    assert!(
        p.iter()
            .any(|x| x.contains("checkpoint 3: its stored leaves do not match its root")),
        "{p:?}"
    );

    // A checkpoint removed: the numbering and the links show it.
    operator_sql(&store, "DELETE FROM trace_checkpoint_leaves WHERE checkpoint = 1").await;
    operator_sql(&store, "DELETE FROM trace_checkpoints WHERE number = 1").await;
    let p = problems().await;
    assert!(
        p.iter().any(|x| x.contains("checkpoint 1 is missing (found 2)")),
        "{p:?}"
    );
    assert!(
        p.iter()
            .any(|x| x.contains("checkpoint 2 does not follow the previous one")),
        "{p:?}"
    );
}

/// A backlog larger than one checkpoint: the first covers the lowest holder ids and clears
/// only their moved heads (every row of them, however many batches wrote them); the next
/// covers the rest, with heads appended in between.
async fn a_full_checkpoint_leaves_the_other_chains_for_the_next_ac7(env: Env, _e: Engine) {
    let store = env.open().await.unwrap();
    let gate = Gate::new(store.clone(), HabilitationMatrix::default_matrix());
    let mut holders = Vec::new();
    for _ in 0..5 {
        let h = store.create_holder("activated", b"{}").await.unwrap();
        traced(&gate, h, 2).await; // two batches: two moved rows per chain
        holders.push(h);
    }
    holders.sort_by_key(|h| *h.as_uuid());
    let first = store.make_checkpoint_of(3).await.unwrap().expect("a full one");
    assert_eq!((first.number, first.size), (1, 3));
    let moved = |store: Store| async move {
        on_db!(store.db(), p => sqlx::query("SELECT DISTINCT holder_id FROM trace_heads_moved ORDER BY holder_id")
            .fetch_all(p).await.map(|rs| rs.into_iter().map(|r| r.get::<uuid::Uuid, _>(0)).collect::<Vec<_>>()))
        .unwrap()
    };
    let waiting: Vec<uuid::Uuid> = holders[3..].iter().map(|h| *h.as_uuid()).collect();
    assert_eq!(moved(store.clone()).await, waiting, "the two highest ids wait");
    // One covered chain moves again before the next checkpoint: covered again.
    traced(&gate, holders[0], 1).await;
    let second = store.make_checkpoint_of(3).await.unwrap().expect("the rest");
    assert_eq!((second.number, second.size), (2, 3));
    assert!(moved(store.clone()).await.is_empty());
    assert!(store.make_checkpoint_of(3).await.unwrap().is_none());
    let (heads, covered) = heads_and_covered(&store).await;
    assert_eq!(covered, heads);
    assert_eq!(
        heads.iter().find(|(h, _)| h == holders[0].as_uuid()).map(|x| x.1),
        Some(3)
    );
    assert!(store.verify_traces().await.unwrap().problems.is_empty());
}

async fn concurrent_checkpoints_make_one_ac7(env: Env, _e: Engine) {
    let a = env.open().await.unwrap();
    let b = env.open().await.unwrap(); // a second server on the same databases
    let gate_a = Gate::new(a.clone(), HabilitationMatrix::default_matrix());
    let gate_b = Gate::new(b.clone(), HabilitationMatrix::default_matrix());
    let mut holders = Vec::new();
    for _ in 0..6 {
        holders.push(a.create_holder("activated", b"{}").await.unwrap());
    }
    for round in 1..=4i64 {
        for (i, h) in holders.iter().enumerate() {
            let gate = if i % 2 == 0 { &gate_a } else { &gate_b };
            traced(gate, *h, 1).await;
        }
        let (ra, rb) = tokio::join!(a.make_checkpoint(), b.make_checkpoint());
        let made: Vec<_> = [ra.unwrap(), rb.unwrap()].into_iter().flatten().collect();
        assert_eq!(made.len(), 1, "round {round}: exactly one server made it");
        assert_eq!((made[0].number, made[0].size), (round, 6));
        assert_eq!(b.latest_checkpoint().await.unwrap(), Some(made[0].clone()));
    }
    let r = a.verify_traces().await.unwrap();
    assert_eq!((r.entries, r.checkpoints), (24, 4));
    assert!(r.problems.is_empty(), "{:?}", r.problems);
}

async fn erased_holder_chain_may_be_missing_lc7_ac7(env: Env, _e: Engine) {
    let store = env.open().await.unwrap();
    let gate = Gate::new(store.clone(), HabilitationMatrix::default_matrix());
    let erased = store.create_holder("activated", b"{}").await.unwrap();
    let kept = store.create_holder("activated", b"{}").await.unwrap();
    let faked = store.create_holder("activated", b"{}").await.unwrap();
    traced(&gate, erased, 2).await;
    traced(&gate, kept, 2).await;
    traced(&gate, faked, 2).await;
    store.make_checkpoint().await.unwrap().unwrap();
    // LC-7: erasure deletes the whole chain on purpose; the checkpoint accepts it.
    store.erase_holder(erased).await.unwrap();
    let r = store.verify_traces().await.unwrap();
    assert_eq!((r.holders, r.entries), (2, 4));
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    // Marking a space erased without destroying its key does not pass for an erasure.
    tamper(
        &store,
        "UPDATE holders SET lifecycle = 'erased' WHERE id = $1",
        faked,
    )
    .await;
    tamper(&store, "DELETE FROM traces WHERE holder_id = $1", faked).await;
    let r = store.verify_traces().await.unwrap();
    assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
    assert!(r.problems[0].contains(&format!(
        "holder {faked}: trace 2, covered by checkpoint 1, is missing"
    )));
    // A space erased after its accesses but before any checkpoint: nothing is left to cover.
    let late = store.create_holder("activated", b"{}").await.unwrap();
    traced(&gate, late, 1).await;
    store.erase_holder(late).await.unwrap();
    assert!(store.make_checkpoint().await.unwrap().is_none());
    traced(&gate, kept, 1).await;
    let c = store.make_checkpoint().await.unwrap().unwrap();
    assert_eq!((c.number, c.size), (2, 1));
}

/// The newest seq of each chain, and the newest seq any checkpoint covers, per holder.
async fn heads_and_covered(store: &Store) -> (Vec<(uuid::Uuid, i64)>, Vec<(uuid::Uuid, i64)>) {
    let q = |sql: &'static str| async move {
        on_db!(store.db(), p => sqlx::query(sql).fetch_all(p).await
            .map(|rs| rs.into_iter().map(|r| (r.get::<uuid::Uuid, _>(0), r.get::<i64, _>(1))).collect::<Vec<_>>()))
        .unwrap()
    };
    (
        q("SELECT holder_id, MAX(seq) FROM traces GROUP BY holder_id ORDER BY holder_id").await,
        q("SELECT holder_id, MAX(seq) FROM trace_checkpoint_leaves GROUP BY holder_id ORDER BY holder_id")
            .await,
    )
}

async fn checkpoints_racing_appends_cover_every_head_ac7(env: Env, e: Engine) {
    let a = env.open().await.unwrap();
    // On PostgreSQL a second server on the same databases; SQLite serves one server, whose
    // single writer connection serialises the racing tasks.
    let b = match e {
        Engine::Postgres => env.open().await.unwrap(),
        Engine::Sqlite => a.clone(),
    };
    let gates = [
        Gate::new(a.clone(), HabilitationMatrix::default_matrix()),
        Gate::new(b.clone(), HabilitationMatrix::default_matrix()),
    ];
    let mut holders = Vec::new();
    for _ in 0..8 {
        holders.push(a.create_holder("activated", b"{}").await.unwrap());
    }
    let mut appenders = Vec::new();
    for (i, h) in holders.iter().enumerate() {
        let gate = gates[i % 2].clone();
        let h = *h;
        appenders.push(tokio::spawn(async move { traced(&gate, h, 12).await }));
    }
    let mut checkpointers = Vec::new();
    for store in [a.clone(), b.clone()] {
        checkpointers.push(tokio::spawn(async move {
            let mut made = 0;
            for _ in 0..15 {
                if store.make_checkpoint().await.unwrap().is_some() {
                    made += 1;
                }
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            made
        }));
    }
    for t in appenders {
        t.await.unwrap();
    }
    for t in checkpointers {
        t.await.unwrap();
    }
    while a.make_checkpoint().await.unwrap().is_some() {}
    let (heads, covered) = heads_and_covered(&a).await;
    assert_eq!(heads.len(), 8);
    assert_eq!(
        covered, heads,
        "every chain's newest trace is under a signed checkpoint"
    );
    let r = a.verify_traces().await.unwrap();
    assert_eq!(r.entries, 96);
    assert!(r.problems.is_empty(), "{:?}", r.problems);
}

async fn traces_written_before_checkpoints_are_covered_by_the_first_ac7(env: Env, _e: Engine) {
    let store = env.open().await.unwrap();
    let gate = Gate::new(store.clone(), HabilitationMatrix::default_matrix());
    let a = store.create_holder("activated", b"{}").await.unwrap();
    let b = store.create_holder("activated", b"{}").await.unwrap();
    traced(&gate, a, 3).await;
    traced(&gate, b, 1).await;
    // Back to the schema before version 9, with these traces already there.
    for sql in [
        "DROP TABLE trace_checkpoint_leaves",
        "DROP TABLE trace_checkpoints",
        "DROP TABLE trace_heads_moved",
        "DELETE FROM carnet_migrations WHERE version IN (9, 21)",
    ] {
        operator_sql(&store, sql).await;
    }
    store.db().close().await;
    let store = env.open().await.unwrap();
    let c = store
        .make_checkpoint()
        .await
        .unwrap()
        .expect("the existing chains");
    assert_eq!((c.number, c.size), (1, 2));
    let (heads, covered) = heads_and_covered(&store).await;
    assert_eq!(covered, heads);
    assert!(store.verify_traces().await.unwrap().problems.is_empty());
}

// ---- notifications (issue 4: AC-6, DM-7) ----

async fn notices_follow_preferences_and_collapse_per_channel_ac6(env: Env, _e: Engine) {
    use carnet_store::outbox::NotificationPreferences;
    let clock = ManualClock::new(Timestamp::from_unix_seconds(T0));
    let store = env.open_at(&clock).await;
    let gate = Gate::new(store.clone(), HabilitationMatrix::default_matrix());
    let h = store.create_holder("activated", b"{}").await.unwrap();
    own_side(&store, h)
        .await
        .update_access_policy(|p| {
            p.grants.push(Grant {
                grantee: Grantee::Professional {
                    id: ProfessionalId("pharma".into()),
                },
                categories: None,
                until: None,
                express: false,
            });
        })
        .await
        .unwrap();
    let mut live = store.subscribe_traces();
    let read = |who: &'static str, item: &'static str| {
        let gate = gate.clone();
        async move {
            gate.check(
                h,
                &pro_actor(who, "pharmacien"),
                Action::Read,
                item,
                &prescription(),
                &Context::default(),
            )
            .await
            .unwrap()
        }
    };
    let channels = |store: Store| async move {
        let mut v: Vec<String> = store
            .outbox_of(h)
            .await
            .unwrap()
            .into_iter()
            .filter(|m| m.0 == "access")
            .map(|m| m.1)
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        own_side(&store, h)
            .await
            .notification_preferences()
            .await
            .unwrap(),
        NotificationPreferences::default()
    );
    assert!(read("pharma", "document/1").await.allowed);
    assert_eq!(channels(store.clone()).await, ["email"], "e-mail by default");
    // This server's appends are announced to live streams.
    assert_eq!(live.try_recv().unwrap(), h);
    // The holder switches to SMS only: the e-mail still waiting does not hold back the SMS.
    own_side(&store, h)
        .await
        .set_notification_preferences(NotificationPreferences {
            email: false,
            sms: true,
        })
        .await
        .unwrap();
    assert_eq!(
        own_side(&store, h)
            .await
            .notification_preferences()
            .await
            .unwrap(),
        NotificationPreferences {
            email: false,
            sms: true
        }
    );
    clock.advance_seconds(1);
    assert!(read("pharma", "document/2").await.allowed);
    assert_eq!(channels(store.clone()).await, ["email", "sms"]);
    // Waiting notices collapse, per channel.
    assert!(read("pharma", "document/3").await.allowed);
    assert_eq!(channels(store.clone()).await, ["email", "sms"]);
    // Neither channel: the space still shows it, nothing leaves.
    own_side(&store, h)
        .await
        .set_notification_preferences(NotificationPreferences {
            email: false,
            sms: false,
        })
        .await
        .unwrap();
    let before = store.outbox_of(h).await.unwrap().len();
    let denied = read("stranger", "document/1").await;
    assert!(!denied.allowed);
    own_side(&store, h)
        .await
        .update_access_policy(|p| p.grants.clear())
        .await
        .unwrap();
    assert_eq!(store.outbox_of(h).await.unwrap().len(), before);

    // Notices in the space are the traces told to the holder: allowed professional accesses,
    // not the denial.
    let all = store.notices_after(h, 0, 100).await.unwrap();
    let items: Vec<&str> = all.iter().map(|t| t.entry.item.as_str()).collect();
    assert_eq!(items, ["document/1", "document/2", "document/3"]);
    let head = store.trace_head(h).await.unwrap();
    assert_eq!(head, 4, "the denial is traced");
    assert!(store.notices_after(h, all[2].seq, 100).await.unwrap().is_empty());
    let newest = store.notices_before(h, None, 2).await.unwrap();
    assert_eq!(
        newest.iter().map(|t| t.seq).collect::<Vec<_>>(),
        [all[2].seq, all[1].seq]
    );
    // Traces by period (AC-6: the holder filters by when).
    let t1 = Timestamp::from_unix_seconds(T0 + 1);
    let later = store
        .traces_in(h, None, Some((t1, Timestamp::from_unix_seconds(T0 + 10))), 100)
        .await
        .unwrap();
    assert_eq!(later.len(), 3, "document/2, document/3 and the denial");
    store.db().close().await;
}

/// Two servers (two stores with their own connection pools, as two processes would have) on one
/// database append traces to the same chains at once: every write lands, none fails on a lock
/// (SQLite takes the write lock at `BEGIN IMMEDIATE` and waits), and the chains stay valid.
/// Each server keeps the heads of the chains it appended to (`gate::HeadCache`); when another
/// server moved one meanwhile, the append collides on `(holder, seq)`, is undone and starts
/// again from the database's head: the chain stays one valid chain, nothing is lost.
async fn a_stale_cached_chain_head_is_read_again_s30(env: Env, _e: Engine) {
    let one = env.open().await.unwrap();
    let two = env.open().await.unwrap();
    let gate_one = Gate::new(one.clone(), HabilitationMatrix::default_matrix());
    let gate_two = Gate::new(two.clone(), HabilitationMatrix::default_matrix());
    let h = one.create_holder("activated", b"{}").await.unwrap();
    traced(&gate_one, h, 1).await; // server one now knows head 1
    traced(&gate_two, h, 2).await; // server two writes 2 and 3
    traced(&gate_one, h, 1).await; // one's head is stale: this must land as 4
    traced(&gate_two, h, 1).await; // and two's (3) as well: 5
    let seqs: Vec<i64> = one
        .traces_of(h, None, 10)
        .await
        .unwrap()
        .iter()
        .map(|t| t.seq)
        .collect();
    assert_eq!(seqs, vec![5, 4, 3, 2, 1]);
    let r = two.verify_traces().await.unwrap();
    assert_eq!((r.holders, r.entries), (1, 5));
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    // A head removed behind the servers' back (AC-7): the server that wrote it goes on from
    // it, so the chain itself shows the gap.
    tamper(&one, "DELETE FROM traces WHERE holder_id = $1 AND seq = 5", h).await;
    traced(&gate_two, h, 1).await;
    let r = one.verify_traces().await.unwrap();
    assert!(
        r.problems
            .iter()
            .any(|p| p.contains(&format!("holder {h}: trace 5 is missing (found 6)"))),
        "{:?}",
        r.problems
    );
    one.db().close().await;
    two.db().close().await;
}

async fn two_servers_append_to_the_same_chains_s30(env: Env, _e: Engine) {
    let one = env.open().await.unwrap();
    let two = env.open().await.unwrap();
    let a = one.create_holder("activated", b"{}").await.unwrap();
    let b = one.create_holder("activated", b"{}").await.unwrap();
    let mut tasks = Vec::new();
    for (n, store) in [one.clone(), two.clone()].into_iter().enumerate() {
        let gate = Gate::new(store.clone(), HabilitationMatrix::default_matrix());
        for i in 0..40 {
            let gate = gate.clone();
            let store = store.clone();
            let holder = if i % 2 == 0 { a } else { b };
            tasks.push(tokio::spawn(async move {
                gate.check(
                    holder,
                    &pro_actor(&format!("s{n}p{i}"), "medecin"),
                    Action::Read,
                    "document/x",
                    &prescription(),
                    &Context::default(),
                )
                .await
                .expect("a trace from either server lands");
                // And ordinary writes meanwhile.
                own_side(&store, holder)
                    .await
                    .set_notification_preferences(carnet_store::outbox::NotificationPreferences {
                        email: i % 3 == 0,
                        sms: true,
                    })
                    .await
                    .expect("a write from either server lands");
            }));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    let r = one.verify_traces().await.unwrap();
    assert_eq!((r.holders, r.entries), (2, 80));
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    one.db().close().await;
    two.db().close().await;
}

// ---- medical profile (issue 5: PR-1..4) ----

use carnet_domain::profile::{CodeSystem, Coding, EntryInput, MeasurementInput, Section};

fn condition(text: &str, code: Option<(&str, CodeSystem)>) -> EntryInput {
    EntryInput {
        section: Section::Conditions,
        text: text.into(),
        code: code.map(|(c, system)| Coding {
            system,
            code: c.into(),
            display: None,
        }),
        date: Some("2019-03".into()),
        end_date: None,
        value: None,
        contact: None,
        note: None,
    }
}

fn pro_granted(id: &str) -> Grant {
    Grant {
        grantee: Grantee::Professional {
            id: ProfessionalId(id.into()),
        },
        categories: None,
        until: None,
        express: false,
    }
}

async fn profile_count(store: &Store) -> i64 {
    on_db!(store.db(), p => sqlx::query("SELECT COUNT(*) FROM profile_entries").fetch_one(p).await.unwrap().get::<i64, _>(0))
}

/// The write combiner (group commit of small writes): concurrent writes share commits, and one
/// that fails (a stale version) is undone alone — the others land, and survive a reopen.
async fn concurrent_writes_commit_together_and_fail_alone(env: Env, _engine: Engine) {
    let store = env.open().await.unwrap();
    let gate = Gate::new(store.clone(), HabilitationMatrix::default_matrix());
    let h = store.create_holder("activated", b"{}").await.unwrap();
    let me = Actor::Holder { id: h };
    let first = gate
        .add_profile_entry(
            h,
            &me,
            condition("Diabète de type 2", Some(("E11", CodeSystem::Icd10))),
            "",
            &Context::default(),
        )
        .await
        .unwrap();
    // 40 creations and 40 updates of one entry from its version 1, all at once.
    let mut creations = Vec::new();
    let mut updates = Vec::new();
    for i in 0..40 {
        let (g, holder) = (gate.clone(), me.clone());
        creations.push(tokio::spawn(async move {
            g.add_profile_entry(
                h,
                &holder,
                condition(&format!("Note {i}"), None),
                "",
                &Context::default(),
            )
            .await
            .map(|e| e.id)
        }));
        let (g, holder, mut edit) = (gate.clone(), me.clone(), first.entry.clone());
        edit.note = Some(format!("édition {i}"));
        updates.push(tokio::spawn(async move {
            g.update_profile_entry(h, &holder, first.id, 1, edit, &Context::default())
                .await
        }));
    }
    let mut created = Vec::new();
    for t in creations {
        created.push(t.await.unwrap().unwrap());
    }
    let mut won = Vec::new();
    for t in updates {
        match t.await.unwrap() {
            Ok(e) => won.push(e),
            Err(StoreError::Conflict) => {}
            Err(e) => panic!("an update failed otherwise than by a conflict: {e:?}"),
        }
    }
    assert_eq!(
        won.len(),
        1,
        "one update from version 1 wins; the others conflict"
    );
    assert_eq!(won[0].version, 2);
    assert_eq!(profile_count(&store).await, 41);
    drop(gate);
    store.db().close().await;
    // Acknowledged means committed: all of it after a reopen, the winning edit included.
    let store = env.open().await.unwrap();
    let gate = Gate::new(store.clone(), HabilitationMatrix::default_matrix());
    let all = gate
        .list_profile(h, &me, None, &Context::default())
        .await
        .unwrap();
    assert_eq!(all.len(), 41);
    assert!(created.iter().all(|id| all.iter().any(|e| e.id == *id)));
    let edited = all.iter().find(|e| e.id == first.id).unwrap();
    assert_eq!((edited.version, &edited.entry.note), (2, &won[0].entry.note));
}

async fn profile_goes_through_the_gate_pr1_pr3(env: Env, engine: Engine) {
    let clock = ManualClock::new(Timestamp::from_unix_seconds(T0));
    let store = env.open_at(&clock).await;
    let gate = Gate::new(store.clone(), HabilitationMatrix::default_matrix());
    let h = store.create_holder("activated", b"{}").await.unwrap();
    own_side(&store, h)
        .await
        .update_access_policy(|p| {
            p.grants.push(pro_granted("doc"));
            p.grants.push(pro_granted("lab"));
        })
        .await
        .unwrap();
    let me = Actor::Holder { id: h };
    let none = Context::default();
    // Bad input: refused before anything is decided or written.
    for bad in [
        condition("", None),
        condition("Diabète", Some(("E1", CodeSystem::Icd10))),
        condition("Asthme", Some(("195967002", CodeSystem::SnomedCt))),
        condition("Metformine", Some(("A10BA02", CodeSystem::Atc))),
    ] {
        let r = gate.add_profile_entry(h, &me, bad, "", &none).await;
        assert!(matches!(r, Err(StoreError::Invalid(_))), "{r:?}");
    }
    assert_eq!(profile_count(&store).await, 0);
    assert!(
        store.traces_of(h, None, 10).await.unwrap().is_empty(),
        "nothing traced for bad input"
    );

    let mine = gate
        .add_profile_entry(
            h,
            &me,
            condition("Diabète de type 2", Some(("E11", CodeSystem::Icd10))),
            "",
            &none,
        )
        .await
        .unwrap();
    assert_eq!((mine.author.clone(), mine.version), (Author::Holder, 1));

    // A granted doctor reads it (traced, notified) and adds within habilitations.
    let doc = pro_actor("doc", "medecin");
    let seen = gate.list_profile(h, &doc, None, &none).await.unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].entry.text, "Diabète de type 2");
    let theirs = gate
        .add_profile_entry(
            h,
            &doc,
            condition("Asthme", Some(("195967001", CodeSystem::SnomedCt))),
            "Dr Test",
            &none,
        )
        .await
        .unwrap();
    assert_eq!(theirs.author_name, "Dr Test");
    // A lab technician with a grant may not write what their profession may not read (PR-3).
    let lab = pro_actor("lab", "technicien_laboratoire");
    let r = gate
        .add_profile_entry(
            h,
            &lab,
            condition("Anémie", Some(("D64.9", CodeSystem::Icd10))),
            "",
            &none,
        )
        .await;
    assert!(matches!(r, Err(StoreError::NotFound)), "{r:?}");
    assert!(gate.list_profile(h, &lab, None, &none).await.unwrap().is_empty());
    // No grant: nothing, and a denial in the trace (AC-8).
    let stranger = pro_actor("stranger", "medecin");
    assert!(
        gate.list_profile(h, &stranger, None, &none)
            .await
            .unwrap()
            .is_empty()
    );
    let traces = store.traces_of(h, None, 50).await.unwrap();
    assert!(
        traces
            .iter()
            .any(|t| t.entry.item == "profile" && !t.entry.allowed)
    );
    assert!(
        traces
            .iter()
            .any(|t| t.entry.item == format!("profile/{}", theirs.id) && t.entry.allowed)
    );

    // Each edits and deletes only their own (PR-1).
    let mut edit = mine.entry.clone();
    edit.note = Some("Suivi tous les 3 mois".into());
    let r = gate
        .update_profile_entry(h, &doc, mine.id, 1, edit.clone(), &none)
        .await;
    assert!(matches!(r, Err(StoreError::NotFound)), "{r:?}");
    let v2 = gate
        .update_profile_entry(h, &me, mine.id, 1, edit.clone(), &none)
        .await
        .unwrap();
    assert_eq!(v2.version, 2);
    let r = gate.update_profile_entry(h, &me, mine.id, 1, edit, &none).await;
    assert!(matches!(r, Err(StoreError::Conflict)), "a stale version: {r:?}");
    let r = gate.delete_profile_entry(h, &me, theirs.id, &none).await;
    assert!(matches!(r, Err(StoreError::NotFound)));
    gate.delete_profile_entry(h, &doc, theirs.id, &none)
        .await
        .unwrap();
    let left = gate.list_profile(h, &me, None, &none).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].entry.note.as_deref(), Some("Suivi tous les 3 mois"));
    let r = gate
        .delete_profile_entry(h, &me, uuid::Uuid::now_v7(), &none)
        .await;
    assert!(
        matches!(r, Err(StoreError::NotFound)),
        "absent looks like refused"
    );

    // Single-valued sections: a new blood group replaces the author's previous one.
    let group = |v: &str| EntryInput {
        section: Section::BloodGroup,
        text: String::new(),
        code: None,
        date: None,
        end_date: None,
        value: Some(v.into()),
        contact: None,
        note: None,
    };
    let first = gate
        .add_profile_entry(h, &me, group("A+"), "", &none)
        .await
        .unwrap();
    let second = gate
        .add_profile_entry(h, &me, group("O-"), "", &none)
        .await
        .unwrap();
    assert_eq!((second.id, second.version), (first.id, 2));
    let groups: Vec<_> = gate
        .list_profile(h, &me, Some(Section::BloodGroup), &none)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.entry.value.unwrap())
        .collect();
    assert_eq!(groups, ["O-"]);

    // Sealed at rest.
    if let Engine::Sqlite = engine {
        store.db().close().await;
        for f in [
            "carnet.db",
            "carnet.db-wal",
            "carnet-audit.db",
            "carnet-audit.db-wal",
        ] {
            if let Ok(raw) = std::fs::read(env.data().join(f)) {
                assert!(!contains(&raw, "Diabète".as_bytes()), "plaintext in {f}");
                assert!(!contains(&raw, b"E11"), "plaintext code in {f}");
            }
        }
    } else {
        let raw: Vec<u8> = on_db!(store.db(), p => sqlx::query("SELECT entry_sealed FROM profile_entries").fetch_one(p).await.unwrap().get(0));
        assert!(!contains(&raw, "Diabète".as_bytes()));
        store.db().close().await;
    }
}

fn weight(v: f64, at: &str) -> MeasurementInput {
    MeasurementInput {
        code: "29463-7".into(),
        value: v,
        unit: "kg".into(),
        at: at.into(),
    }
}

async fn measurements_are_validated_batched_and_sealed_pr1_pr4(env: Env, _e: Engine) {
    let clock = ManualClock::new(Timestamp::from_unix_seconds(T0));
    let store = env.open_at(&clock).await;
    let gate = Gate::new(store.clone(), HabilitationMatrix::default_matrix());
    let h = store.create_holder("activated", b"{}").await.unwrap();
    let other = store.create_holder("activated", b"{}").await.unwrap();
    let me = Actor::Holder { id: h };
    let none = Context::default();
    let count = || async {
        on_db!(store.db(), p => sqlx::query("SELECT COUNT(*) FROM measurements").fetch_one(p).await.unwrap().get::<i64, _>(0))
    };
    // A device's batch of 300, one of them impossible: nothing is stored, the index is named.
    let mut batch: Vec<MeasurementInput> = (0..300)
        .map(|i| {
            weight(
                70.0 + (i % 10) as f64 / 10.0,
                &format!("2025-12-{:02}T07:{:02}:00Z", 1 + i / 20, i % 20),
            )
        })
        .collect();
    batch[137].value = 7000.0;
    match gate.add_measurements(h, &me, &batch, &none).await {
        Err(StoreError::Invalid(m)) => assert!(m.starts_with("measurements[137]"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(count().await, 0);
    batch[137].value = 71.0;
    assert_eq!(gate.add_measurements(h, &me, &batch, &none).await.unwrap(), 300);
    assert_eq!(count().await, 300);
    gate.add_measurements(
        other,
        &Actor::Holder { id: other },
        &[weight(90.0, "2025-12-01T07:00:00Z")],
        &none,
    )
    .await
    .unwrap();
    // The series, oldest first, in a period.
    let all = gate
        .measurements(h, &me, "29463-7", None, 1000, &none)
        .await
        .unwrap();
    assert_eq!(all.len(), 300);
    assert!(all.windows(2).all(|w| w[0].measurement.at <= w[1].measurement.at));
    let dec2 = gate
        .measurements(
            h,
            &me,
            "29463-7",
            Some((
                Timestamp::from_unix_seconds(1_764_633_600),
                Timestamp::from_unix_seconds(1_764_720_000),
            )),
            1000,
            &none,
        )
        .await
        .unwrap();
    assert_eq!(dec2.len(), 20, "2025-12-02 only");
    assert!(
        gate.measurements(h, &me, "8302-2", None, 1000, &none)
            .await
            .unwrap()
            .is_empty()
    );
    // The same measure has a different series tag in each space (nothing links holders).
    let tags: Vec<String> = on_db!(store.db(), p => sqlx::query("SELECT DISTINCT series FROM measurements").fetch_all(p).await.unwrap()
        .into_iter().map(|r| r.get::<String, _>(0)).collect());
    assert_eq!(tags.len(), 2);
    // A professional without access gets nothing and leaves a denial.
    let r = gate
        .measurements(h, &pro_actor("nobody", "medecin"), "29463-7", None, 10, &none)
        .await;
    assert!(matches!(r, Err(StoreError::NotFound)));
    let r = gate
        .add_measurements(
            h,
            &pro_actor("nobody", "medecin"),
            &[weight(70.0, "2025-12-01T07:00:00Z")],
            &none,
        )
        .await;
    assert!(matches!(r, Err(StoreError::NotFound)));
    assert_eq!(count().await, 301);
    store.db().close().await;
}

// ---- legacy DMP import (issue 5, LC-8) ----

use carnet_domain::access::legacy_import_actor;
use carnet_store::documents::{LegacyDocument, LegacyOutcome};

const LEGACY_TEXT: &[u8] = b"appendicectomie sans complication";

fn legacy_doc(unique_id: &str, mime: &str) -> LegacyDocument {
    LegacyDocument {
        unique_id: unique_id.into(),
        author_rpps: "10001234567".into(),
        creation_time: Some(Timestamp::from_unix_seconds(T0 - 5 * 365 * 86_400)),
        document: NewDocument {
            title: Some("Compte rendu opératoire".into()),
            class: Some(Category::Reports),
            mime: mime.into(),
            author_name: "Dr Jeanne DURAND".into(),
            organisation: Some("CHU de Nantes".into()),
            ..NewDocument::default()
        },
    }
}

async fn count(store: &Store, sql: &'static str) -> i64 {
    on_db!(&store.db().writer(), p => sqlx::query(sql).fetch_one(p).await.map(|r| r.get::<i64, _>(0)))
        .unwrap()
}

/// LC-8: the documents of a former DMP are filed through the gate (invariant 2): allowed for
/// a space that exists and whose holder did not object, traced with the migration as actor
/// (AC-6), sealed like any document (DM-1, SE-3), idempotent on the uniqueId, told to nobody.
async fn legacy_import_lc8_files_documents_through_the_gate_dm1_ac6(env: Env, _e: Engine) {
    let clock = ManualClock::new(Timestamp::from_unix_seconds(T0));
    let store = env.open_at(&clock).await;
    let gate = Gate::new(store.clone(), HabilitationMatrix::default_matrix());
    let none = Context::default();
    let activated = store.create_holder("activated", ADMIN).await.unwrap();
    let open = store.create_holder("open", ADMIN).await.unwrap();
    let opposed = store.create_holder("opposed", ADMIN).await.unwrap();
    let closed = store.create_holder("closed", ADMIN).await.unwrap();
    let blobs_before = blob_files(&env).len();
    let outbox_before = store.outbox_of(activated).await.unwrap().len();
    let uid = "1.2.250.1.999.1.2019.42";

    // Allowed for an activated and an open space; the document is its original author's.
    let LegacyOutcome::Imported(v) = gate
        .import_legacy_document(activated, legacy_doc(uid, "text/plain"), LEGACY_TEXT.to_vec())
        .await
        .unwrap()
    else {
        panic!("expected an import");
    };
    assert_eq!(
        v.meta.author,
        Author::Professional {
            id: ProfessionalId("10001234567".into())
        }
    );
    assert_eq!(v.meta.author_name, "Dr Jeanne DURAND");
    assert_eq!(v.meta.legacy_unique_id.as_deref(), Some(uid));
    assert_eq!(
        v.meta.uploaded_at,
        Timestamp::from_unix_seconds(T0 - 5 * 365 * 86_400),
        "its age in the former DMP (DM-8 ranks by it)"
    );
    assert!(v.meta.visible_to_holder(clock.now()), "no DM-6 hold");
    assert!(matches!(
        gate.import_legacy_document(open, legacy_doc(uid, "text/plain"), LEGACY_TEXT.to_vec())
            .await
            .unwrap(),
        LegacyOutcome::Imported(_)
    ));
    let blobs = blob_files(&env).len();
    assert_eq!(blobs, blobs_before + 2);

    // Idempotent: the same uniqueId again for the same holder writes nothing.
    clock.advance_seconds(60);
    match gate
        .import_legacy_document(activated, legacy_doc(uid, "text/plain"), LEGACY_TEXT.to_vec())
        .await
        .unwrap()
    {
        LegacyOutcome::AlreadyPresent(id) => assert_eq!(id, v.id),
        other => panic!("expected AlreadyPresent, got {other:?}"),
    }
    assert_eq!(blob_files(&env).len(), blobs);
    assert_eq!(count(&store, "SELECT COUNT(*) FROM documents").await, 2);

    assert_eq!(
        store.outbox_of(activated).await.unwrap().len(),
        outbox_before,
        "no notice per legacy document"
    );

    // The holder sees it with its content; its author reads it without a grant.
    let me = Actor::Holder { id: activated };
    let page = gate
        .list_documents(activated, &me, &all_docs(), &none)
        .await
        .unwrap();
    assert_eq!(page.total, 1);
    let (_, bytes) = gate.read_document(activated, &me, v.id, &none).await.unwrap();
    assert_eq!(bytes.as_ref(), LEGACY_TEXT);
    assert!(
        gate.read_document(activated, &pro_actor("10001234567", "medecin"), v.id, &none)
            .await
            .is_ok()
    );

    // Traced with the migration as actor and the reason legacy_import (AC-6); no notice.
    let traces = store.traces_of(activated, None, 100).await.unwrap();
    let t = traces
        .iter()
        .find(|t| t.entry.item == format!("document/{}", v.id) && t.entry.action == Action::Create)
        .expect("the import is traced");
    assert_eq!(t.entry.actor, legacy_import_actor());
    assert_eq!(
        (t.entry.allowed, t.entry.reason, t.entry.category),
        (true, Reason::LegacyImport, Some(Category::Reports))
    );
    assert!(!carnet_store::gate::is_notice(t), "not told as an access");

    // Sealed: neither the rows nor the blobs hold the content, the author or the uniqueId.
    let metas: Vec<Vec<u8>> = on_db!(store.db(), p => sqlx::query("SELECT meta_sealed FROM documents")
        .fetch_all(p).await.map(|rs| rs.into_iter().map(|r| r.get::<Vec<u8>, _>(0)).collect()))
    .unwrap();
    let indexes: Vec<String> =
        on_db!(store.db(), p => sqlx::query("SELECT unique_id_index FROM legacy_documents")
        .fetch_all(p).await.map(|rs| rs.into_iter().map(|r| r.get::<String, _>(0)).collect()))
        .unwrap();
    assert_eq!(indexes.len(), 2);
    for m in &metas {
        assert!(!contains(m, b"DURAND") && !contains(m, uid.as_bytes()));
    }
    assert!(indexes.iter().all(|i| !i.contains(uid)));
    for b in blob_files(&env) {
        assert!(
            !contains(&std::fs::read(&b).unwrap(), LEGACY_TEXT),
            "plaintext in a blob"
        );
    }

    // Refused for an opposed space (no space: nothing traced) and a closed one (a traced
    // denial); nothing written.
    for h in [opposed, closed] {
        assert!(matches!(
            gate.import_legacy_document(h, legacy_doc("other", "text/plain"), LEGACY_TEXT.to_vec())
                .await,
            Err(StoreError::NotFound)
        ));
    }
    assert!(store.traces_of(opposed, None, 10).await.unwrap().is_empty());
    let denied = store.traces_of(closed, None, 10).await.unwrap();
    assert_eq!(denied.len(), 1);
    assert_eq!(
        (
            denied[0].entry.allowed,
            denied[0].entry.reason,
            &denied[0].entry.actor
        ),
        (false, Reason::SpaceClosed, &legacy_import_actor())
    );

    // Bad input leaves nothing behind: a type the bytes contradict, a CDA about another
    // patient, a bad RPPS number, an empty uniqueId.
    let cda = br#"<ClinicalDocument xmlns="urn:hl7-org:v3"><recordTarget><patientRole>
        <id root="1.2.250.1.213.1.4.8" extension="185027512345678"/></patientRole></recordTarget>
        </ClinicalDocument>"#;
    let bad_rpps = LegacyDocument {
        author_rpps: "123".into(),
        ..legacy_doc("bad-rpps", "text/plain")
    };
    let cases = [
        (legacy_doc("not-a-pdf", "application/pdf"), b"not a pdf".to_vec()),
        (legacy_doc("other-patient", "text/xml"), cda.to_vec()),
        (bad_rpps, LEGACY_TEXT.to_vec()),
        (legacy_doc(" ", "text/plain"), LEGACY_TEXT.to_vec()),
    ];
    for (doc, bytes) in cases {
        let r = gate.import_legacy_document(activated, doc, bytes).await;
        assert!(matches!(r, Err(StoreError::Invalid(_))), "{r:?}");
    }
    assert_eq!(blob_files(&env).len(), blobs);
    assert_eq!(count(&store, "SELECT COUNT(*) FROM documents").await, 2);
    assert_eq!(count(&store, "SELECT COUNT(*) FROM attachments").await, 2);
    assert_eq!(count(&store, "SELECT COUNT(*) FROM legacy_documents").await, 2);

    // Operators still read no health data (decide() unchanged), and erasure (LC-7) takes the
    // import's rows with the rest.
    assert!(matches!(
        gate.read_document(activated, &legacy_import_actor(), v.id, &none)
            .await,
        Err(StoreError::NotFound)
    ));
    store.erase_holder(open).await.unwrap();
    assert_eq!(count(&store, "SELECT COUNT(*) FROM legacy_documents").await, 1);
    assert!(store.verify_traces().await.unwrap().problems.is_empty());
}

// ---- reimbursements (issue 8, RB-1, RB-2) ----

use carnet_domain::access::insurer_feed_actor;
use carnet_domain::reimbursement::{FeedLine, Filter, RawReimbursementLine};
use carnet_store::reimbursements::{NO_SPACE, NOT_RECEIVING};

fn feed_line(n: u64, line_id: &str, date: &str, care: &str, pro: &str, paid: &str, back: &str) -> FeedLine {
    RawReimbursementLine {
        ins: ins_for(n),
        line_id: line_id.into(),
        date_of_care: date.into(),
        type_of_care: care.into(),
        act_label: "Consultation du généraliste".into(),
        professional_name: pro.into(),
        professional_id: "10003456789".into(),
        amount_paid: paid.into(),
        amount_reimbursed: back.into(),
        ..RawReimbursementLine::default()
    }
    .validate(Timestamp::from_unix_seconds(T0))
    .unwrap()
}

/// RB-1: the insurer's feed files lines through the gate (invariant 2): decided by
/// `decide_insurer_feed`, traced with the feed as actor (AC-6), sealed (SE-3), idempotent on
/// the insurer's line id; lines for no space or a refusing space are rejects. RB-2: the holder
/// lists and filters; a professional without a grant gets `NotFound`, traced (AC-8).
async fn reimbursement_feed_is_idempotent_sealed_and_gated_rb1_rb2_ac6_ac8(env: Env, engine: Engine) {
    let clock = ManualClock::new(Timestamp::from_unix_seconds(T0));
    let store = env.open_at(&clock).await;
    let gate = Gate::new(store.clone(), HabilitationMatrix::default_matrix());
    let none = Context::default();
    let out = store
        .import_roster_batch(&[
            record(80, "1970-01-01", false, None),
            record(81, "1971-01-01", false, None),
            record(82, "1972-01-01", false, None),
            record(83, "1973-01-01", false, None),
        ])
        .await
        .unwrap();
    let (h, informed, opposed, closed) = (
        created(&out[0]),
        created(&out[1]),
        created(&out[2]),
        created(&out[3]),
    );
    store.transition(h, Event::Activate).await.unwrap();
    store.transition(opposed, Event::Oppose).await.unwrap();
    store.transition(closed, Event::Activate).await.unwrap();
    store.transition(closed, Event::Close).await.unwrap();

    let feed = vec![
        (
            2,
            feed_line(
                80,
                "CPAM-1",
                "2025-10-03",
                "consultation",
                "Dr Martin",
                "30.00",
                "21.00",
            ),
        ),
        (
            3,
            feed_line(
                80,
                "CPAM-2",
                "2025-11-20",
                "pharmacie",
                "Pharmacie du Port",
                "12,40",
                "8,06",
            ),
        ),
        (
            4,
            feed_line(80, "CPAM-3", "2025-12-01", "consultation", "Dr Noël", "60", "42"),
        ),
        (
            5,
            feed_line(
                80,
                "CPAM-1",
                "2025-10-03",
                "consultation",
                "Dr Martin",
                "30.00",
                "21.00",
            ),
        ),
        (
            6,
            feed_line(81, "CPAM-9", "2025-12-15", "biologie", "Labo Sud", "25", "15"),
        ),
        (
            7,
            feed_line(82, "CPAM-8", "2025-12-15", "biologie", "Labo Sud", "25", "15"),
        ),
        (
            8,
            feed_line(83, "CPAM-7", "2025-12-15", "biologie", "Labo Sud", "25", "15"),
        ),
        (
            9,
            feed_line(84, "CPAM-6", "2025-12-15", "biologie", "Labo Sud", "25", "15"),
        ),
    ];
    let report = gate.import_reimbursements(feed.clone()).await.unwrap();
    assert_eq!(
        (report.imported, report.present, report.holders),
        (4, 1, 2),
        "{report:?}"
    );
    let mut rejected = report.rejected.clone();
    rejected.sort();
    assert_eq!(
        rejected,
        vec![
            (7, NOT_RECEIVING.to_string()),
            (8, NOT_RECEIVING.to_string()),
            (9, NO_SPACE.to_string())
        ]
    );
    assert_eq!(count(&store, "SELECT COUNT(*) FROM reimbursements").await, 4);

    // Traced once per receiving space, as the feed, not told as an access (AC-6); the closed
    // space's refusal is traced, the opposed one (no space) is not.
    let traces = store.traces_of(h, None, 10).await.unwrap();
    assert_eq!(traces.len(), 1);
    assert_eq!(traces[0].entry.actor, insurer_feed_actor());
    assert_eq!(
        (
            traces[0].entry.allowed,
            traces[0].entry.reason,
            traces[0].entry.category,
            traces[0].entry.item.as_str()
        ),
        (
            true,
            Reason::InsurerFeed,
            Some(Category::Reimbursements),
            "reimbursements/3"
        )
    );
    assert!(!carnet_store::gate::is_notice(&traces[0]));
    let denied = store.traces_of(closed, None, 10).await.unwrap();
    assert_eq!(
        (denied.len(), denied[0].entry.allowed, denied[0].entry.reason),
        (1, false, Reason::SpaceClosed)
    );
    assert!(store.traces_of(opposed, None, 10).await.unwrap().is_empty());
    let informed_traces = store.traces_of(informed, None, 10).await.unwrap();
    assert_eq!(
        (informed_traces.len(), informed_traces[0].entry.allowed),
        (1, true),
        "an informed space receives its lines, like any deposit"
    );

    // Idempotent: the same feed again adds no row and no trace.
    clock.advance_seconds(3600);
    let again = gate.import_reimbursements(feed.clone()).await.unwrap();
    assert_eq!((again.imported, again.present, again.rejected.len()), (0, 5, 3));
    assert_eq!(count(&store, "SELECT COUNT(*) FROM reimbursements").await, 4);
    assert_eq!(store.traces_of(h, None, 10).await.unwrap().len(), 1);

    // The holder lists (newest care first), filters and sums (RB-2).
    let me = Actor::Holder { id: h };
    let all = gate
        .list_reimbursements(h, &me, &Filter::default(), &none)
        .await
        .unwrap();
    assert_eq!(
        all.iter().map(|r| r.line.line_id.as_str()).collect::<Vec<_>>(),
        ["CPAM-3", "CPAM-2", "CPAM-1"]
    );
    let t = carnet_domain::reimbursement::totals(all.iter().map(|r| &r.line));
    assert_eq!(
        (t.paid_cents, t.reimbursed_cents, t.remaining_cents),
        (10_240, 7_106, 3_134)
    );
    let oct_nov = Filter::parse("2025-10-03", "2025-11-20", "", "").unwrap();
    assert_eq!(
        gate.list_reimbursements(h, &me, &oct_nov, &none)
            .await
            .unwrap()
            .len(),
        2,
        "bounds included"
    );
    let pharmacy = Filter::parse("", "", "", "pharmacy").unwrap();
    assert_eq!(
        gate.list_reimbursements(h, &me, &pharmacy, &none).await.unwrap()[0]
            .line
            .line_id,
        "CPAM-2"
    );
    let by_name = Filter::parse("", "", "noel", "").unwrap();
    assert_eq!(
        gate.list_reimbursements(h, &me, &by_name, &none)
            .await
            .unwrap()
            .len(),
        1
    );
    let one = gate.reimbursement(h, &me, all[0].id, &none).await.unwrap();
    assert_eq!(one, all[0]);
    assert!(
        store.traces_of(h, None, 10).await.unwrap().len() == 1,
        "the holder's own reads are not traced"
    );

    // A professional without a grant: NotFound, traced as a denial (AC-8); with a grant and
    // the habilitation (a doctor), allowed and traced; a pharmacist's profession does not
    // cover reimbursements (AC-1) even with a grant.
    let doctor = pro_actor("10003456789", "medecin");
    assert!(matches!(
        gate.list_reimbursements(h, &doctor, &Filter::default(), &none)
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        gate.reimbursement(h, &doctor, all[0].id, &none).await,
        Err(StoreError::NotFound)
    ));
    let t = store.traces_of(h, None, 1).await.unwrap();
    assert_eq!(
        (t[0].entry.allowed, t[0].entry.reason, t[0].entry.category),
        (false, Reason::NoGrant, Some(Category::Reimbursements))
    );
    for rpps in ["10003456789", "22222222222"] {
        own_side(&store, h)
            .await
            .update_access_policy(|p| {
                p.grants.push(Grant {
                    grantee: Grantee::Professional {
                        id: ProfessionalId(rpps.into()),
                    },
                    categories: Some(vec![Category::Reimbursements]),
                    until: None,
                    express: false,
                })
            })
            .await
            .unwrap();
    }
    assert_eq!(
        gate.list_reimbursements(h, &doctor, &Filter::default(), &none)
            .await
            .unwrap()
            .len(),
        3
    );
    let t = store.traces_of(h, None, 1).await.unwrap();
    assert_eq!((t[0].entry.allowed, t[0].entry.reason), (true, Reason::Grant));
    assert!(matches!(
        gate.list_reimbursements(
            h,
            &pro_actor("22222222222", "pharmacien"),
            &Filter::default(),
            &none
        )
        .await,
        Err(StoreError::NotFound)
    ));
    // The feed itself reads nothing (operators see no health data).
    assert!(matches!(
        gate.list_reimbursements(h, &insurer_feed_actor(), &Filter::default(), &none)
            .await,
        Err(StoreError::NotFound)
    ));
    // Sealed at rest: no label, name, line id or amount in the rows; tags differ per space.
    let sealed: Vec<(Vec<u8>, String)> = on_db!(store.db(), p => sqlx::query("SELECT line_sealed, line_tag FROM reimbursements")
        .fetch_all(p).await.map(|rs| rs.into_iter().map(|r| (r.get::<Vec<u8>, _>(0), r.get::<String, _>(1))).collect()))
    .unwrap();
    for (s, tag) in &sealed {
        for needle in [
            &b"Martin"[..],
            b"Pharmacie",
            b"CPAM-",
            b"3000",
            b"10003456789",
            "généraliste".as_bytes(),
        ] {
            assert!(!contains(s, needle), "plaintext in a sealed line");
        }
        assert!(!tag.contains("CPAM"));
    }
    if let Engine::Sqlite = engine {
        let raw = std::fs::read(env.data().join("carnet.db")).unwrap();
        let wal = std::fs::read(env.data().join("carnet.db-wal")).unwrap_or_default();
        for needle in [&b"Pharmacie du Port"[..], b"CPAM-2", "généraliste".as_bytes()] {
            assert!(!contains(&raw, needle) && !contains(&wal, needle));
        }
    }

    // Erasure (LC-7) deletes the holder's lines with the rest; the chains stay valid.
    store.erase_holder(h).await.unwrap();
    assert_eq!(count(&store, "SELECT COUNT(*) FROM reimbursements").await, 1);
    assert!(store.verify_traces().await.unwrap().problems.is_empty());
    store.db().close().await;
}

// ---- messaging and agenda (issue 8) ----

/// MS-2, AC-4, LC-5, LC-7 on both engines: a professional cannot write in a closed space; the
/// holder's side of a closed space reads nothing; erasure removes conversations, messages,
/// their attachments and the agenda; messages and events are sealed at rest.
async fn messages_and_agenda_follow_the_space_ms2_ag1_lc5_lc7(env: Env, _e: Engine) {
    use carnet_domain::agenda::{EventInput, EventKind};
    use carnet_domain::messaging::Counterpart;
    use carnet_store::messaging::{CounterpartInfo, NewAttachment};
    let clock = ManualClock::new(Timestamp::from_unix_seconds(T0));
    let store = env.open_at(&clock).await;
    let gate = Gate::new(store.clone(), HabilitationMatrix::default_matrix());
    let none = Context::default();
    let h = store.create_holder("activated", ADMIN).await.unwrap();
    let holder = Actor::Holder { id: h };
    let pro = Actor::Professional {
        id: ProfessionalId("10000000777".into()),
        profession: "medecin".into(),
        role: PracticeRole::Care,
    };
    let Some(counterpart) = Counterpart::of(&pro) else {
        unreachable!()
    };
    let to = || CounterpartInfo {
        counterpart: counterpart.clone(),
        name: "Dr Test".into(),
        is_pharmacy: false,
    };
    let t = gate
        .start_conversation(
            h,
            &pro,
            to(),
            "Secret-subject-MS",
            "Secret-text-MS",
            vec![NewAttachment {
                filename: "note.txt".into(),
                content_type: "text/plain".into(),
                content: b"Secret-attachment-MS".to_vec(),
            }],
            "Dr Test",
            &none,
        )
        .await
        .unwrap();
    let conv = t.conversation.id;
    gate.add_event(
        h,
        &holder,
        EventInput {
            kind: EventKind::Appointment,
            title: "Secret-event-AG".into(),
            start: Timestamp::from_unix_seconds(T0 + 86_400),
            end: None,
            location: None,
            notes: None,
            recurrence: None,
            reminders: vec![60],
        },
        "",
        &none,
    )
    .await
    .unwrap();
    // Sealed at rest: no subject, text, attachment or title in clear in the database.
    for (table, col) in [
        ("conversations", "meta_sealed"),
        ("messages", "body_sealed"),
        ("agenda_events", "event_sealed"),
    ] {
        let sql = format!("SELECT {col} FROM {table}");
        let blobs: Vec<Vec<u8>> =
            on_db!(&store.db().writer(), p => sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
            .fetch_all(p).await.map(|rs| rs.into_iter().map(|r| r.get::<Vec<u8>, _>(0)).collect()))
            .unwrap();
        assert!(!blobs.is_empty());
        for b in blobs {
            for needle in ["Secret-subject-MS", "Secret-text-MS", "Secret-event-AG"] {
                assert!(
                    !b.windows(needle.len()).any(|w| w == needle.as_bytes()),
                    "{needle} in clear in {table}"
                );
            }
        }
    }
    // AG-3: the reminder falls due with the clock, is queued once, and not again.
    clock.set(Timestamp::from_unix_seconds(T0 + 86_400 - 3600));
    let before = store.outbox_of(h).await.unwrap().len();
    let r = store.send_due_reminders(100).await.unwrap();
    assert_eq!((r.queued, r.late), (1, 0));
    assert_eq!(
        store.send_due_reminders(100).await.unwrap().queued,
        0,
        "queued once"
    );
    assert_eq!(store.outbox_of(h).await.unwrap().len(), before + 1);

    // LC-5: once the space is closed, the professional can neither write nor read, and the
    // holder's side reads nothing (the archive is kept until erasure).
    store.transition(h, Event::Close).await.unwrap();
    assert!(matches!(
        gate.post_message(h, &pro, conv, "encore", vec![], "Dr Test", &none)
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        gate.start_conversation(h, &pro, to(), "x", "y", vec![], "Dr Test", &none)
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(gate.list_conversations(h, &holder, &none).await.is_err());
    assert!(gate.list_events(h, &holder, &none).await.is_err());
    assert_eq!(store.send_due_reminders(100).await.unwrap().queued, 0);
    assert!(
        count(&store, "SELECT COUNT(*) FROM messages").await > 0,
        "kept in the archive"
    );

    // LC-7: erasure removes everything of it.
    store.erase_holder(h).await.unwrap();
    for sql in [
        "SELECT COUNT(*) FROM conversations",
        "SELECT COUNT(*) FROM messages",
        "SELECT COUNT(*) FROM agenda_events",
        "SELECT COUNT(*) FROM attachments",
    ] {
        assert_eq!(count(&store, sql).await, 0, "{sql}");
    }
}

// ---- catalogue and app tokens (issue 9) ----

/// CA-2..CA-4 at the storage level, on both engines: the workflow's compare-and-set, codes used
/// once (a replay revokes what the code gave), refresh rotation (a reuse revokes the family),
/// and tokens that die at once with the grant, the convention (withdrawal or term) and the
/// space (LC-5).
async fn app_tokens_follow_consent_convention_and_space_ca3_ca4(env: Env, _e: Engine) {
    use carnet_domain::catalogue::{
        Application, Convention, Declaration, ReferencingRole, RequestedCategory, ServiceCategory, Step,
        default_criteria,
    };
    use carnet_store::catalogue::{CodeGrant, Redeem};
    let clock = ManualClock::new(Timestamp::from_unix_seconds(T0));
    let store = env.open_at(&clock).await;
    let criteria = default_criteria();
    let (publisher, _) = store
        .create_referencing_account(ReferencingRole::Publisher, "Éditeur")
        .await
        .unwrap();
    let (commission, _) = store
        .create_referencing_account(ReferencingRole::Commission, "Commission")
        .await
        .unwrap();
    let (minister, token) = store
        .create_referencing_account(ReferencingRole::DecisionMaker, "Décision")
        .await
        .unwrap();
    assert_eq!(
        store.referencing_account(&token).await.unwrap(),
        Some(minister.clone())
    );
    assert_eq!(store.referencing_account("nope").await.unwrap(), None);
    let app = Application {
        name: "Tensio".into(),
        description: "Suivi de la tension artérielle".into(),
        category: ServiceCategory::Prevention,
        redirect_uris: vec!["https://tensio.example/cb".into()],
        requested: vec![RequestedCategory {
            category: Category::Summaries,
            why: "courbes".into(),
        }],
        declarations: criteria
            .iter()
            .map(|c| Declaration {
                criterion: c.id.clone(),
                complies: true,
                evidence: String::new(),
            })
            .collect(),
    };
    let svc = store.submit_service(&publisher, app, &criteria).await.unwrap();
    for c in &criteria {
        let step = Step::CriterionReviewed {
            criterion: c.id.clone(),
            satisfied: true,
            comment: String::new(),
        };
        store
            .apply_service_step(&commission, &svc.client_id, &step, &criteria)
            .await
            .unwrap();
    }
    let opinion = Step::Opinion {
        favourable: true,
        comment: "conforme".into(),
    };
    store
        .apply_service_step(&commission, &svc.client_id, &opinion, &criteria)
        .await
        .unwrap();
    let ends = Timestamp::from_unix_seconds(T0 + 365 * 86_400);
    let approve = Step::Approved {
        convention: Convention {
            categories: vec![Category::Summaries],
            starts: Timestamp::from_unix_seconds(T0),
            ends,
            withdrawal_terms: "un mois".into(),
        },
    };
    let svc = store
        .apply_service_step(&minister, &svc.client_id, &approve, &criteria)
        .await
        .unwrap();
    assert_eq!(
        store.service_steps(&svc.client_id).await.unwrap().len(),
        criteria.len() + 3
    );
    assert_eq!(store.listed_services().await.unwrap().len(), 1, "CA-1");

    let h = store.create_holder("activated", b"{}").await.unwrap();
    assert_eq!(
        own_side(&store, h)
            .await
            .connect_app(&svc, &[Category::Summaries, Category::Imaging])
            .await
            .unwrap(),
        vec![Category::Summaries],
        "CA-3: never beyond the convention"
    );
    let (policy, _) = own_side(&store, h).await.access_policy().await.unwrap();
    let grant = policy
        .grants
        .iter()
        .find(|g| matches!(g.grantee, Grantee::App { .. }))
        .unwrap();
    assert_eq!(grant.until, Some(ends), "the grant ends with the convention");
    let grant_code = |scope: &str| CodeGrant {
        client_id: svc.client_id.clone(),
        holder: h,
        subject: h,
        redirect_uri: "https://tensio.example/cb".into(),
        challenge: "c".repeat(43),
        scope: scope.into(),
    };
    // A code works once; its replay revokes the tokens it gave (RFC 6749 4.1.2).
    let code = store
        .issue_code(&grant_code("patient/Observation.rs offline_access"))
        .await
        .unwrap();
    let (g, family) = store.redeem_code(&code).await.unwrap().unwrap();
    assert_eq!(g.scope, "patient/Observation.rs offline_access");
    let t = store
        .issue_app_tokens(&svc.client_id, h, h, &g.scope, &family, true)
        .await
        .unwrap();
    assert!(store.live_app_token(&t.access_token).await.unwrap().is_some());
    assert_eq!(
        store.redeem_code(&code).await.unwrap().unwrap_err(),
        Redeem::Replayed
    );
    assert!(
        store.live_app_token(&t.access_token).await.unwrap().is_none(),
        "replay revokes"
    );
    // An expired code is refused.
    let late = store
        .issue_code(&grant_code("patient/Observation.rs"))
        .await
        .unwrap();
    clock.advance_seconds(61);
    assert_eq!(
        store.redeem_code(&late).await.unwrap().unwrap_err(),
        Redeem::Invalid
    );

    // Refresh rotation: the old one is used up; reusing it revokes the family (RFC 9700 4.14).
    let code = store
        .issue_code(&grant_code("patient/Observation.rs offline_access"))
        .await
        .unwrap();
    let (g, family) = store.redeem_code(&code).await.unwrap().unwrap();
    let t1 = store
        .issue_app_tokens(&svc.client_id, h, h, &g.scope, &family, true)
        .await
        .unwrap();
    let r1 = t1.refresh_token.clone().unwrap();
    assert_eq!(
        store
            .rotate_refresh_token(&r1, "another-client")
            .await
            .unwrap()
            .unwrap_err(),
        Redeem::Invalid,
        "bound to its client"
    );
    let t2 = store
        .rotate_refresh_token(&r1, &svc.client_id)
        .await
        .unwrap()
        .unwrap();
    assert!(store.live_app_token(&t2.access_token).await.unwrap().is_some());
    assert_eq!(
        store
            .rotate_refresh_token(&r1, &svc.client_id)
            .await
            .unwrap()
            .unwrap_err(),
        Redeem::Replayed
    );
    assert!(
        store.live_app_token(&t2.access_token).await.unwrap().is_none(),
        "family revoked"
    );

    let fresh = |store: Store| {
        let svc = svc.clone();
        async move {
            let code = store
                .issue_code(&CodeGrant {
                    client_id: svc.client_id.clone(),
                    holder: h,
                    subject: h,
                    redirect_uri: "https://tensio.example/cb".into(),
                    challenge: "c".repeat(43),
                    scope: "patient/Observation.rs".into(),
                })
                .await
                .unwrap();
            let (g, family) = store.redeem_code(&code).await.unwrap().unwrap();
            store
                .issue_app_tokens(&svc.client_id, h, h, &g.scope, &family, false)
                .await
                .unwrap()
                .access_token
        }
    };
    // RFC 7009: another client cannot revoke it; its own client can.
    let t = fresh(store.clone()).await;
    store.revoke_app_token(&t, "another-client").await.unwrap();
    assert!(store.live_app_token(&t).await.unwrap().is_some());
    store.revoke_app_token(&t, &svc.client_id).await.unwrap();
    assert!(store.live_app_token(&t).await.unwrap().is_none());
    // CA-3: disconnecting removes the grant and kills the tokens at once.
    let t = fresh(store.clone()).await;
    own_side(&store, h)
        .await
        .disconnect_app(&svc.client_id)
        .await
        .unwrap();
    assert!(store.live_app_token(&t).await.unwrap().is_none());
    assert!(
        !own_side(&store, h)
            .await
            .access_policy()
            .await
            .unwrap()
            .0
            .grants
            .iter()
            .any(|g| matches!(g.grantee, Grantee::App { .. }))
    );
    // LC-5: a closed space's tokens stop; reopened, they are not revived by magic but a new
    // one works.
    own_side(&store, h)
        .await
        .connect_app(&svc, &[Category::Summaries])
        .await
        .unwrap();
    let t = fresh(store.clone()).await;
    store.transition(h, Event::Close).await.unwrap();
    assert!(store.live_app_token(&t).await.unwrap().is_none(), "closed space");
    store.transition(h, Event::Reopen).await.unwrap();
    // CA-4: the convention's term ends every token at once, and the catalogue drops it.
    let t = fresh(store.clone()).await;
    assert!(store.live_app_token(&t).await.unwrap().is_some());
    clock.set(ends);
    assert!(
        store.live_app_token(&t).await.unwrap().is_none(),
        "expired convention"
    );
    assert!(store.listed_services().await.unwrap().is_empty());
    clock.set(Timestamp::from_unix_seconds(T0 + 86_400));
    // CA-4: a withdrawal ends them at once too, and is recorded as a step.
    let t = fresh(store.clone()).await;
    let withdraw = Step::Withdrawn {
        reason: "manquement".into(),
    };
    assert!(matches!(
        store
            .apply_service_step(&commission, &svc.client_id, &withdraw, &criteria)
            .await,
        Err(StoreError::Invalid(_))
    ));
    store
        .apply_service_step(&minister, &svc.client_id, &withdraw, &criteria)
        .await
        .unwrap();
    assert!(store.live_app_token(&t).await.unwrap().is_none(), "withdrawn");
    assert!(store.listed_services().await.unwrap().is_empty());
    let steps = store.service_steps(&svc.client_id).await.unwrap();
    assert!(matches!(steps.last().unwrap().step, Step::Withdrawn { .. }));
    assert_eq!(steps.last().unwrap().role, ReferencingRole::DecisionMaker);
    // A publisher sees only its own services.
    let (other, _) = store
        .create_referencing_account(ReferencingRole::Publisher, "Autre")
        .await
        .unwrap();
    assert!(store.services(Some(&other.id)).await.unwrap().is_empty());
    assert!(matches!(
        store
            .apply_service_step(
                &other,
                &svc.client_id,
                &Step::Withdrawn { reason: "x".into() },
                &criteria
            )
            .await,
        Err(StoreError::NotFound)
    ));
}
