//! The storage suite: medical profile (PR-1..4).

use super::*;

suite!(
    concurrent_writes_commit_together_and_fail_alone,
    profile_goes_through_the_gate_pr1_pr3,
    measurements_are_validated_batched_and_sealed_pr1_pr4,
);

pub(super) fn condition(text: &str, code: Option<(&str, CodeSystem)>) -> EntryInput {
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

pub(super) fn pro_granted(id: &str) -> Grant {
    Grant {
        grantee: Grantee::Professional {
            id: ProfessionalId(id.into()),
        },
        categories: None,
        until: None,
        express: false,
        basis: Default::default(),
    }
}

pub(super) async fn profile_count(store: &Store) -> i64 {
    let q = Query::new("SELECT COUNT(*) FROM profile_entries");
    store.db().fetch_one(q, "test").await.unwrap().take(0).unwrap()
}

/// The write combiner (group commit of small writes): concurrent writes share commits, and one
/// that fails (a stale version) is undone alone — the others land, and survive a reopen.
pub(super) async fn concurrent_writes_commit_together_and_fail_alone(env: Env, _engine: Engine) {
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

pub(super) async fn profile_goes_through_the_gate_pr1_pr3(env: Env, engine: Engine) {
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
        assert!(matches!(r, Err(StoreError::Profile { at: None, .. })), "{r:?}");
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
        let raw: Vec<u8> = store
            .db()
            .fetch_one(Query::new("SELECT entry_sealed FROM profile_entries"), "test")
            .await
            .unwrap()
            .take(0)
            .unwrap();
        assert!(!contains(&raw, "Diabète".as_bytes()));
        store.db().close().await;
    }
}

pub(super) fn weight(v: f64, at: &str) -> MeasurementInput {
    MeasurementInput {
        code: "29463-7".into(),
        value: v,
        unit: "kg".into(),
        at: at.into(),
    }
}

pub(super) async fn measurements_are_validated_batched_and_sealed_pr1_pr4(env: Env, _e: Engine) {
    let clock = ManualClock::new(Timestamp::from_unix_seconds(T0));
    let store = env.open_at(&clock).await;
    let gate = Gate::new(store.clone(), HabilitationMatrix::default_matrix());
    let h = store.create_holder("activated", b"{}").await.unwrap();
    let other = store.create_holder("activated", b"{}").await.unwrap();
    let me = Actor::Holder { id: h };
    let none = Context::default();
    let count = || async {
        let q = Query::new("SELECT COUNT(*) FROM measurements");
        store
            .db()
            .fetch_one(q, "test")
            .await
            .unwrap()
            .take::<i64>(0)
            .unwrap()
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
        Err(e @ StoreError::Profile { .. }) => {
            assert!(
                e.to_string().starts_with("measurements[137].value: 7000 kg"),
                "{e}"
            )
        }
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
    let q = Query::new("SELECT DISTINCT series FROM measurements");
    let tags: Vec<String> = store
        .db()
        .fetch_all(q, "test")
        .await
        .unwrap()
        .into_iter()
        .map(|mut r| r.take(0).unwrap())
        .collect();
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
