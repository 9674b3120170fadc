//! The storage suite: documents and emergency access.

use super::*;

suite!(
    a_listing_opens_only_its_page_and_never_a_row_changed_since_s1_dm5,
    documents_go_through_the_gate_dm1_dm8,
    held_documents_follow_dm6_with_the_clock,
    emergency_access_is_bounded_and_notified_ac5,
    documents_changed_on_another_server_are_listed_as_they_are_now_s1_dm5,
);

pub(super) fn text_doc(title: &str, class: Category) -> NewDocument {
    NewDocument {
        title: Some(title.into()),
        class: Some(class),
        mime: "text/plain".into(),
        ..NewDocument::default()
    }
}

pub(super) fn all_docs() -> DocumentFilter {
    DocumentFilter {
        limit: 100,
        ..DocumentFilter::default()
    }
}

/// The titles `who` sees in `h`'s documents, sorted.
pub(super) async fn listed_titles(gate: &Gate, h: HolderId, who: &Actor) -> Vec<String> {
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
pub(super) async fn two_servers_and_two_doctors(env: &Env) -> (Gate, Gate, HolderId, [Actor; 3]) {
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
                    basis: Default::default(),
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
pub(super) async fn documents_changed_on_another_server_are_listed_as_they_are_now_s1_dm5(
    env: Env,
    _e: Engine,
) {
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
pub(super) async fn a_listing_opens_only_its_page_and_never_a_row_changed_since_s1_dm5(env: Env, _e: Engine) {
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

pub(super) async fn documents_go_through_the_gate_dm1_dm8(env: Env, _e: Engine) {
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
                basis: Default::default(),
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
    let left: i64 = store
        .db()
        .fetch_one(Query::new("SELECT COUNT(*) FROM documents"), "test")
        .await
        .and_then(|mut r| r.take::<i64>(0))
        .unwrap();
    assert_eq!(left, 0);
}

pub(super) async fn held_documents_follow_dm6_with_the_clock(env: Env, _e: Engine) {
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

pub(super) async fn emergency_access_is_bounded_and_notified_ac5(env: Env, _e: Engine) {
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
    assert!(gate.read_document(h, &er, d.id, &none).await.is_ok());
    // One notice per emergency (issue 33): the declaration's, not one per read under it, and
    // a declaration while it runs only extends it.
    let (dec, _) = gate
        .declare_emergency(h, &er, "toujours inconscient")
        .await
        .unwrap();
    assert!(dec.allowed && dec.emergency);
    let told = |kinds: Vec<String>| kinds.iter().filter(|k| *k == "emergency_access").count();
    assert_eq!(told(notices(&store, h).await), 1);
    let mt_notices = store.pro_notices("11111111111", 10).await.unwrap();
    assert_eq!(mt_notices.len(), 1);
    assert_eq!(mt_notices[0].kind, "emergency_access");
    let traces = store.traces_of(h, None, 10).await.unwrap();
    assert!(
        traces
            .iter()
            .filter(|t| t.entry.actor == er && t.entry.allowed)
            .all(|t| t.entry.emergency
                && matches!(
                    t.entry.purpose.as_deref(),
                    Some("arrêt cardiaque" | "toujours inconscient")
                ))
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
