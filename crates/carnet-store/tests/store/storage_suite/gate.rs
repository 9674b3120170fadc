//! The storage suite: the gate.

use super::*;

suite!(
    gate_decides_traces_and_notifies_ac3_ac8,
    traces_are_tamper_evident_ac7,
    concurrent_accesses_are_group_committed_into_one_valid_chain,
    whose_record_it_is_and_what_a_professional_may_read_id1_ac8,
    a_professional_finds_a_patient_by_traits_unless_several_share_them,
);

/// The holder's own side of space `h` (S-1: reached only through the gate's binding).
pub(super) async fn own_side(store: &Store, h: HolderId) -> carnet_store::space::HolderSide {
    Gate::new(store.clone(), HabilitationMatrix::default_matrix())
        .holder_side(h, &Actor::Holder { id: h })
        .await
        .unwrap()
        .expect("the holder's own space")
}

pub(super) fn pro_actor(id: &str, profession: &str) -> Actor {
    Actor::Professional {
        id: ProfessionalId(id.into()),
        profession: profession.into(),
        role: PracticeRole::Care,
    }
}

pub(super) fn prescription() -> ItemFacts {
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

pub(super) async fn notices(store: &Store, h: HolderId) -> Vec<String> {
    let all = store.outbox_of(h).await.unwrap();
    all.into_iter()
        .map(|m| m.0)
        .filter(|k| k.contains("access"))
        .collect()
}

pub(super) async fn gate_decides_traces_and_notifies_ac3_ac8(env: Env, _e: Engine) {
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
                basis: Default::default(),
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

pub(super) async fn tamper(store: &Store, sql: &'static str, holder: HolderId) {
    let mut tx = store.db().begin().await.unwrap();
    tx.execute(Query::new(sql).bind(holder.as_uuid()), "test")
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

pub(super) async fn traces_are_tamper_evident_ac7(env: Env, _e: Engine) {
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

pub(super) async fn concurrent_accesses_are_group_committed_into_one_valid_chain(env: Env, _e: Engine) {
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

/// Issue 33, ID-1, AC-8: a professional who presented the INS sees whose record it is (for a
/// day), as do the médecin traitant and a granted professional; nobody else. What they may
/// read is said as a whole (`standing`), the emergency form offered only to who could use it.
/// Every lookup and identity read is traced; erasure forgets the presented INS (LC-7).
pub(super) async fn whose_record_it_is_and_what_a_professional_may_read_id1_ac8(env: Env, _e: Engine) {
    use carnet_domain::Event;
    use carnet_store::roster::RosterOutcome;
    let clock = ManualClock::new(Timestamp::from_unix_seconds(T0));
    let store = env.open_at(&clock).await;
    let gate = Gate::new(store.clone(), HabilitationMatrix::default_matrix());
    let out = store
        .import_roster_batch(&[super::lifecycle::record(70, "1984-03-12", true, None)])
        .await
        .unwrap();
    let RosterOutcome::Created { id: h, .. } = out[0].clone() else {
        panic!("{out:?}")
    };
    let ins = carnet_domain::Ins::parse(&super::lifecycle::ins_for(70)).unwrap();
    let er = pro_actor("33333333333", "medecin");
    let mt = pro_actor("11111111111", "medecin");
    let nurse = pro_actor("44444444444", "infirmier");
    // Not open yet: no record to find (LC-3).
    assert_eq!(gate.find_patient(&er, &ins).await.unwrap(), None);
    clock.advance_seconds(43 * 86_400);
    store.transition(h, Event::OppositionWindowEnded).await.unwrap();
    own_side(&store, h)
        .await
        .update_access_policy(|p| {
            p.medecin_traitant = Some(ProfessionalId("11111111111".into()));
            p.grants.push(carnet_domain::access::Grant {
                grantee: carnet_domain::access::Grantee::Professional {
                    id: ProfessionalId("44444444444".into()),
                },
                categories: Some(vec![Category::Prescriptions, Category::CarePlans]),
                until: None,
                express: false,
                basis: Default::default(),
            });
        })
        .await
        .unwrap();
    // Without the INS presented and without an authorisation: nothing, like no record.
    assert!(matches!(gate.identify(h, &er).await, Err(StoreError::NotFound)));
    let st = gate.standing(h, &er).await.unwrap().unwrap();
    assert!(st.standing.readable.is_empty() && st.standing.may_declare_emergency);
    // The INS presented: whose record it is, still nothing of it.
    assert_eq!(gate.find_patient(&er, &ins).await.unwrap(), Some(h));
    let who = gate.identify(h, &er).await.unwrap();
    assert_eq!((who.ins.as_str(), who.birth_date.year()), (ins.as_str(), 1984));
    assert!(!who.birth_name.is_empty() && !who.given_names.is_empty());
    // The médecin traitant reads everything; the nurse two categories, no emergency offered.
    assert!(gate.identify(h, &mt).await.is_ok());
    let st = gate.standing(h, &mt).await.unwrap().unwrap().standing;
    assert!(st.everything() && !st.may_declare_emergency && !st.emergency);
    let st = gate.standing(h, &nurse).await.unwrap().unwrap().standing;
    assert_eq!(st.readable, vec![Category::Prescriptions, Category::CarePlans]);
    assert!(!st.emergency);
    assert!(gate.identify(h, &nurse).await.is_ok());
    // An emergency: open, until when, and no second form.
    let (d, until) = gate.declare_emergency(h, &er, "inconscient").await.unwrap();
    assert!(d.allowed);
    let st = gate.standing(h, &er).await.unwrap().unwrap();
    assert!(st.standing.emergency && !st.standing.may_declare_emergency);
    assert_eq!(st.emergency_until, until);
    // A day later the presented INS no longer shows the identity, the emergency is over.
    clock.advance_seconds(carnet_store::identity::PRESENTED_INS_SECONDS + 1);
    assert!(matches!(gate.identify(h, &er).await, Err(StoreError::NotFound)));
    let traces = store.traces_of(h, None, 100).await.unwrap();
    let items: Vec<&str> = traces.iter().map(|t| t.entry.item.as_str()).collect();
    assert!(items.contains(&"patient/lookup") && items.contains(&"patient/identity"));
    assert!(
        traces
            .iter()
            .any(|t| t.entry.item == "patient/identity" && !t.entry.allowed)
    );
    // An unknown INS and another holder's id are the same nothing (AC-8).
    let other = carnet_domain::Ins::parse(&super::lifecycle::ins_for(71)).unwrap();
    assert_eq!(gate.find_patient(&er, &other).await.unwrap(), None);
}

/// Issue 33: without the INS, the four identity traits (case and spaces aside) find one open
/// record, traced as a lookup; when several people share them, nobody is found or traced (the
/// INS is needed); a mistyped trait, a record not yet open or a caller who is not a
/// professional find nothing.
pub(super) async fn a_professional_finds_a_patient_by_traits_unless_several_share_them(env: Env, _e: Engine) {
    use carnet_domain::Event;
    use carnet_domain::roster::RawRosterLine;
    use carnet_store::identity::{Traits, TraitsLookup};
    let clock = ManualClock::new(Timestamp::from_unix_seconds(T0));
    let store = env.open_at(&clock).await;
    let gate = Gate::new(store.clone(), HabilitationMatrix::default_matrix());
    let line = |n: u64, name: &str| {
        RawRosterLine {
            ins: super::lifecycle::ins_for(n),
            birth_name: name.into(),
            given_names: "Zoé".into(),
            sex: "F".into(),
            birth_date: "1990-05-04".into(),
            ..RawRosterLine::default()
        }
        .validate(Timestamp::from_unix_seconds(T0))
        .unwrap()
    };
    let out = store
        .import_roster_batch(&[line(80, "DURAND"), line(81, "LEGRAND"), line(82, "LEGRAND")])
        .await
        .unwrap();
    let ids: Vec<HolderId> = out.iter().map(super::lifecycle::created).collect();
    let er = pro_actor("33333333333", "medecin");
    let traits = |name: &str| Traits {
        birth_name: name.into(),
        first_given_name: "zoé".into(),
        birth_date: "1990-05-04".into(),
        sex: "female".into(),
    };
    let find = |t: Traits, who: Actor| {
        let gate = gate.clone();
        async move { gate.find_patient_by_traits(&who, &t).await.unwrap() }
    };
    assert_eq!(
        find(traits("DURAND"), er.clone()).await,
        TraitsLookup::None,
        "not open yet"
    );
    clock.advance_seconds(43 * 86_400);
    for id in &ids {
        store.transition(*id, Event::OppositionWindowEnded).await.unwrap();
    }
    assert_eq!(
        find(traits("  durand "), er.clone()).await,
        TraitsLookup::Found(ids[0])
    );
    let lookups = |h: HolderId| {
        let store = store.clone();
        async move {
            store
                .traces_of(h, None, 20)
                .await
                .unwrap()
                .iter()
                .filter(|t| t.entry.item == "patient/lookup")
                .count()
        }
    };
    assert_eq!(lookups(ids[0]).await, 1, "traced like a lookup by INS");
    assert_eq!(find(traits("LEGRAND"), er.clone()).await, TraitsLookup::Several);
    assert_eq!((lookups(ids[1]).await, lookups(ids[2]).await), (0, 0));
    assert_eq!(find(traits("DURANT"), er.clone()).await, TraitsLookup::None);
    assert_eq!(
        find(traits("DURAND"), Actor::Holder { id: ids[1] }).await,
        TraitsLookup::None
    );
}
