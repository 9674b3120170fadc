//! The storage suite: legacy DMP import (LC-8).

use super::*;

suite!(legacy_import_lc8_files_documents_through_the_gate_dm1_ac6,);

pub(super) const LEGACY_TEXT: &[u8] = b"appendicectomie sans complication";

pub(super) fn legacy_doc(unique_id: &str, mime: &str) -> LegacyDocument {
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

pub(super) async fn count(store: &Store, sql: &'static str) -> i64 {
    store
        .db()
        .writer()
        .fetch_one(Query::new(sql), "test")
        .await
        .and_then(|mut r| r.take::<i64>(0))
        .unwrap()
}

/// LC-8: the documents of a former DMP are filed through the gate (invariant 2): allowed for
/// a space that exists and whose holder did not object, traced with the migration as actor
/// (AC-6), sealed like any document (DM-1, SE-3), idempotent on the uniqueId, told to nobody.
pub(super) async fn legacy_import_lc8_files_documents_through_the_gate_dm1_ac6(env: Env, _e: Engine) {
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
    assert!(!carnet_store::traces::is_notice(t), "not told as an access");

    // Sealed: neither the rows nor the blobs hold the content, the author or the uniqueId.
    let metas: Vec<Vec<u8>> = store
        .db()
        .fetch_all_as::<Vec<u8>>(Query::new("SELECT meta_sealed FROM documents"), "test")
        .await
        .unwrap();
    let indexes: Vec<String> = store
        .db()
        .fetch_all_as::<String>(Query::new("SELECT unique_id_index FROM legacy_documents"), "test")
        .await
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
