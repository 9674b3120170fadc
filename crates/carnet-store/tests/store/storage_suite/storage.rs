//! The storage suite: the data directory, sealing, blobs, keys, erasure.

use super::*;

suite!(
    first_start_initialises_and_data_survives_reopen,
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
    professionals_are_found_by_name_profession_and_town,
);

/// Issue 32, AC-3: the holder finds a professional as people think of them: the beginning of
/// the family name (case and accents folded), one profession, one town; two letters at least.
pub(super) async fn professionals_are_found_by_name_profession_and_town(env: Env, _e: Engine) {
    use carnet_domain::access::PracticeRole;
    use carnet_store::directory::Professional;
    let store = env.open().await.unwrap();
    let pro = |rpps: &str, family: &str, profession: &str, town: Option<&str>| Professional {
        rpps: rpps.into(),
        family_name: family.into(),
        given_name: "Anne".into(),
        profession: profession.into(),
        specialty: None,
        role: PracticeRole::Care,
        finess: None,
        organisation_name: None,
        town: town.map(str::to_string),
    };
    store
        .upsert_professionals(&[
            pro("10000000101", "LEROY", "medecin", Some("Paris")),
            pro("10000000102", "LEROY", "masseur_kinesitherapeute", Some("Lyon")),
            pro("10000000103", "LÉVÊQUE", "medecin", Some("Saint-Étienne")),
            pro("10000000104", "LEBRUN", "infirmier", None),
            pro("10000000105", "DELEROY", "medecin", Some("Paris")),
        ])
        .await
        .unwrap();
    let found = |name: &'static str, profession: Option<&'static str>, town: Option<&'static str>| {
        let store = store.clone();
        async move {
            store
                .search_professionals(name, profession, town, 50)
                .await
                .unwrap()
                .into_iter()
                .map(|p| p.rpps)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(found("leroy", None, None).await, ["10000000101", "10000000102"]);
    assert_eq!(
        found("Le", None, None).await.len(),
        4,
        "a prefix, not a substring"
    );
    assert_eq!(found("leve", None, None).await, ["10000000103"], "accents folded");
    assert_eq!(found("LER", Some("medecin"), None).await, ["10000000101"]);
    assert_eq!(found("le", None, Some("saint etienne")).await, ["10000000103"]);
    assert_eq!(found("le", None, Some("LYON")).await, ["10000000102"]);
    assert!(found("l", None, None).await.is_empty(), "two letters at least");
    assert!(found("leroy", Some("pharmacien"), None).await.is_empty());
    let p = store.professional("10000000103").await.unwrap().unwrap();
    assert_eq!(p.town.as_deref(), Some("Saint-Étienne"));
}

pub(super) async fn first_start_initialises_and_data_survives_reopen(env: Env, engine: Engine) {
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

pub(super) fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

pub(super) async fn health_data_is_sealed_in_the_database_and_blobs(env: Env, engine: Engine) {
    let store = env.open().await.unwrap();
    let id = store.create_holder("open", ADMIN).await.unwrap();
    store
        .put_attachment(id, "application/pdf", Bytes::from_static(PDF))
        .await
        .unwrap();
    let sealed: Vec<u8> = store
        .db()
        .fetch_one(Query::new("SELECT admin_sealed FROM holders"), "test")
        .await
        .unwrap()
        .take(0)
        .unwrap();
    assert!(
        !contains(&sealed, b"DUPONT"),
        "administrative data stored in clear"
    );
    let meta: Vec<u8> = store
        .db()
        .fetch_one(Query::new("SELECT meta_sealed FROM attachments"), "test")
        .await
        .unwrap()
        .take(0)
        .unwrap();
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

pub(super) fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
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

pub(super) fn blob_files(env: &Env) -> Vec<std::path::PathBuf> {
    walk(&env.data().join("blobs/objects"))
}

pub(super) async fn attachments_round_trip_and_detect_corruption(env: Env, _e: Engine) {
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

pub(super) async fn ciphertext_moved_to_another_holder_fails(env: Env, _e: Engine) {
    let store = env.open().await.unwrap();
    let a = store.create_holder("open", ADMIN).await.unwrap();
    let b = store.create_holder("open", b"{}").await.unwrap();
    let sealed_a: Vec<u8> = store
        .db()
        .fetch_one(
            Query::new("SELECT admin_sealed FROM holders WHERE id = $1").bind(a.as_uuid()),
            "test",
        )
        .await
        .unwrap()
        .take(0)
        .unwrap();
    let mut tx = store.db().begin().await.unwrap();
    tx.execute(
        Query::new("UPDATE holders SET admin_sealed = $1 WHERE id = $2").binds((&sealed_a, b.as_uuid())),
        "test",
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert!(matches!(store.holder(b).await, Err(StoreError::Integrity(_))));
    assert_eq!(store.holder(a).await.unwrap().administrative, ADMIN);
}

pub(super) async fn wrong_master_key_is_refused_at_start(env: Env, _e: Engine) {
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

pub(super) async fn missing_key_file_is_an_error_not_a_new_key(env: Env, engine: Engine) {
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
pub(super) async fn erasure_leaves_no_way_in_and_no_key_in_the_vault_files_lc7(env: Env, engine: Engine) {
    let store = env.open().await.unwrap();
    let gone = store.create_holder("activated", ADMIN).await.unwrap();
    let hash = carnet_store::password::hash("un mot de passe solide").unwrap();
    store
        .set_credentials(gone, "partie@example.org", &hash)
        .await
        .unwrap();
    store.begin_totp(gone).await.unwrap();
    let (token, _) = store.create_session(gone, "appareil").await.unwrap();
    let wrapped: Vec<u8> = store
        .vault()
        .db()
        .fetch_one(
            Query::new("SELECT wrapped FROM holder_keys WHERE holder_id = $1").bind(gone.as_uuid()),
            "test",
        )
        .await
        .unwrap()
        .take(0)
        .unwrap();
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
        let q =
            Query::built(format!("SELECT COUNT(*) FROM {table} WHERE holder_id = $1")).bind(gone.as_uuid());
        let n: i64 = store.db().fetch_one(q, "test").await.unwrap().take(0).unwrap();
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

pub(super) async fn erased_holder_is_unreadable_even_from_a_copy(env: Env, engine: Engine) {
    let store = env.open().await.unwrap();
    let gone = store.create_holder("closed", ADMIN).await.unwrap();
    let kept = store.create_holder("open", b"{\"kept\":true}").await.unwrap();
    let att = store
        .put_attachment(gone, "application/pdf", Bytes::from_static(PDF))
        .await
        .unwrap();
    // The "backup": raw sealed row and blobs, taken before erasure.
    let sealed: Vec<u8> = store
        .db()
        .fetch_one(
            Query::new("SELECT admin_sealed FROM holders WHERE id = $1").bind(gone.as_uuid()),
            "test",
        )
        .await
        .unwrap()
        .take(0)
        .unwrap();
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
        let q = Query::built(format!(
            "VACUUM INTO '{}'",
            env.dir.path().join("backup.db").display()
        ));
        store.db().execute(q, "test").await.unwrap();
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
    tx.execute(
        Query::new("UPDATE holders SET lifecycle = 'open', admin_sealed = $2 WHERE id = $1")
            .binds((gone.as_uuid(), &sealed)),
        "test",
    )
    .await
    .unwrap();
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

pub(super) async fn master_key_rotation_rewraps_without_touching_data(env: Env, _e: Engine) {
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

pub(super) async fn orphan_blobs_are_collected_referenced_ones_kept(env: Env, _e: Engine) {
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

pub(super) async fn migrations_are_idempotent(env: Env, _e: Engine) {
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

pub(super) async fn concurrent_writes_all_land(env: Env, _e: Engine) {
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
pub(super) async fn missing_or_foreign_data_directory_is_refused() {
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
pub(super) async fn unreachable_database_is_named_in_the_error() {
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

/// Issue 34: what PostgreSQL says during a failover — a write reaching a standby or a demoted
/// primary (25006), a connection ended by the server's shutdown (57P01) — is an outage the
/// caller retries (503 with `Retry-After`), not a failure of the data (500).
#[tokio::test]
pub(super) async fn a_failover_on_postgresql_is_an_outage() {
    let Some(base) = pg_base() else { return };
    let pool = sqlx::PgPool::connect(&base).await.expect("connect");
    let mut c = pool.acquire().await.expect("a connection");
    sqlx::query("SET default_transaction_read_only = on")
        .execute(&mut *c)
        .await
        .expect("read only");
    let e = sqlx::query("CREATE SCHEMA never_made_on_a_standby")
        .execute(&mut *c)
        .await
        .map_err(StoreError::db("write"))
        .expect_err("a read-only session refuses writes");
    assert!(e.is_unavailable(), "{e}");
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut *c)
        .await
        .expect("pid");
    sqlx::query("SELECT pg_terminate_backend($1)")
        .bind(pid)
        .execute(&pool)
        .await
        .expect("terminate");
    let e = sqlx::query("SELECT 1")
        .execute(&mut *c)
        .await
        .map_err(StoreError::db("read"))
        .expect_err("the server ended the connection");
    assert!(e.is_unavailable(), "{e}");
    let e = sqlx::query("SELECT * FROM no_such_table")
        .execute(&pool)
        .await
        .map_err(StoreError::db("read"))
        .expect_err("a bad statement");
    assert!(!e.is_unavailable(), "a bug is not an outage: {e}");
}

#[tokio::test]
pub(super) async fn in_memory_blob_store_verifies_hashes() {
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
pub(super) async fn ids_come_from_the_injected_clock() {
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
