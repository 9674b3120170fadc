//! The storage suite: lifecycle, roster, outbox.

use super::*;

suite!(
    roster_import_is_idempotent_and_queues_the_information_letter,
    opposition_window_boundaries_lc3,
    activation_code_checks_lc4,
    a_person_who_objected_asks_for_a_space_and_opens_it_lc3,
    archive_erased_after_ten_years_and_not_recreated_lc5_lc7,
    erased_on_express_request_after_the_grace_period_lc5,
    concurrent_jobs_apply_each_transition_once,
    majority_ends_representation_mi3,
    a_minors_space_is_the_representatives_then_the_adults_alone_mi1_mi3_s1,
    the_space_is_changed_by_its_holder_side_only_s1_lc6,
    outbox_claims_are_leased_and_retried,
    an_email_that_fails_for_good_goes_by_post_lc2,
    a_suspended_space_reaches_nobody_and_closes_unless_contested_lc5b,
);

/// 2026-01-05 09:00:00 UTC.
pub(super) const T0: i64 = 1_767_603_600;

pub(super) fn ins_for(n: u64) -> String {
    let nir = format!("1{:012}", 850_275_000_000 + n);
    let k = carnet_domain::ins::nir_key(&nir).unwrap();
    format!("{nir}{k:02}")
}

pub(super) fn record(n: u64, birth: &str, email: bool, rep: Option<u64>) -> RosterRecord {
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

pub(super) fn created(o: &RosterOutcome) -> HolderId {
    match o {
        RosterOutcome::Created { id, .. } => *id,
        other => panic!("expected Created, got {other:?}"),
    }
}

pub(super) async fn roster_import_is_idempotent_and_queues_the_information_letter(env: Env, engine: Engine) {
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

pub(super) async fn opposition_window_boundaries_lc3(env: Env, _e: Engine) {
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

pub(super) async fn activation_code_checks_lc4(env: Env, _e: Engine) {
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
    // LC-2: renewable online, with the INS and the birth date; the new code goes by the
    // channel on file (here e-mail), valid six weeks from now, and replaces the old one.
    let ins = carnet_domain::Ins::parse(&ins_for(20)).unwrap();
    let date = |s: &str| time::Date::parse(s, &time::format_description::well_known::Iso8601::DATE).unwrap();
    let wrong = store
        .renew_activation_code(&ins, date("1960-01-02"))
        .await
        .unwrap();
    assert_eq!(wrong, None, "a wrong birth date renews nothing");
    let other = carnet_domain::Ins::parse(&ins_for(21)).unwrap();
    assert_eq!(
        store
            .renew_activation_code(&other, date("1960-01-01"))
            .await
            .unwrap(),
        None
    );
    while !store.claim_messages(100).await.unwrap().is_empty() {}
    assert_eq!(
        store
            .renew_activation_code(&ins, date("1960-01-01"))
            .await
            .unwrap(),
        Some(*id)
    );
    let sent = store.claim_messages(100).await.unwrap();
    assert_eq!((sent.len(), sent[0].kind.as_str()), (1, "activation_code"));
    let payload: serde_json::Value = serde_json::from_slice(&sent[0].payload).unwrap();
    let fresh = payload["activation_code"].as_str().unwrap().to_string();
    assert!(store.check_activation_code(*id, &fresh).await.unwrap());
    assert!(!store.check_activation_code(*id, activation_code).await.unwrap());
    clock.advance_seconds(OPPOSITION_WINDOW_SECONDS - 1);
    assert!(
        store.check_activation_code(*id, &fresh).await.unwrap(),
        "six weeks from renewal"
    );
    let hash = carnet_store::password::hash("un-mot-de-passe-solide").unwrap();
    store
        .activate(&ins, &fresh, "", "alex20@example.org", &hash)
        .await
        .expect("activated with the renewed code");
    // Once activated there is nothing to renew (the same answer as no match).
    assert_eq!(
        store
            .renew_activation_code(&ins, date("1960-01-01"))
            .await
            .unwrap(),
        None
    );
}

/// LC-3: "an opposition means no space (the person may still ask for one later)": the code
/// sent on request opens nothing by itself; activating with it opens and activates the space.
pub(super) async fn a_person_who_objected_asks_for_a_space_and_opens_it_lc3(env: Env, _e: Engine) {
    let clock = ManualClock::new(Timestamp::from_unix_seconds(T0));
    let store = env.open_at(&clock).await;
    let out = store
        .import_roster_batch(&[record(22, "1960-01-01", true, None)])
        .await
        .unwrap();
    let RosterOutcome::Created {
        id,
        activation_code: letter,
    } = out[0].clone()
    else {
        panic!()
    };
    clock.advance_seconds(3600);
    store.transition(id, Event::Oppose).await.unwrap();
    let ins = carnet_domain::Ins::parse(&ins_for(22)).unwrap();
    let born = time::Date::from_calendar_date(1960, time::Month::January, 1).unwrap();
    let hash = carnet_store::password::hash("un-mot-de-passe-solide").unwrap();
    // The letter's code, which served to object, never undoes the objection.
    assert!(
        store
            .activate(&ins, &letter, "", "alex22@example.org", &hash)
            .await
            .is_err()
    );
    assert_eq!(store.lifecycle(id).await.unwrap().name(), "opposed");
    clock.advance_seconds(60);
    while !store.claim_messages(100).await.unwrap().is_empty() {}
    assert_eq!(store.renew_activation_code(&ins, born).await.unwrap(), Some(id));
    assert_eq!(
        store.lifecycle(id).await.unwrap().name(),
        "opposed",
        "nothing opens yet"
    );
    let sent = store.claim_messages(100).await.unwrap();
    let payload: serde_json::Value = serde_json::from_slice(&sent[0].payload).unwrap();
    let code = payload["activation_code"].as_str().unwrap();
    store
        .activate(&ins, code, "", "alex22@example.org", &hash)
        .await
        .expect("activated with the code");
    assert_eq!(store.lifecycle(id).await.unwrap().name(), "activated");
}

pub(super) async fn archive_erased_after_ten_years_and_not_recreated_lc5_lc7(env: Env, _e: Engine) {
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

/// LC-5: an express request for deletion is honoured within 3 months (30 days here); reopening
/// meanwhile cancels it; once done the holder is told at the address they had, and that last
/// message goes once sent (LC-7).
pub(super) async fn erased_on_express_request_after_the_grace_period_lc5(env: Env, _e: Engine) {
    use carnet_domain::lifecycle::ERASURE_GRACE_SECONDS;
    let clock = ManualClock::new(Timestamp::from_unix_seconds(T0));
    let store = env.open_at(&clock).await;
    let out = store
        .import_roster_batch(&[record(31, "1950-01-01", true, None)])
        .await
        .unwrap();
    let id = created(&out[0]);
    store.transition(id, Event::Activate).await.unwrap();
    assert!(
        matches!(store.request_erasure(id).await, Err(StoreError::Invalid(_))),
        "only a closed space"
    );
    store.transition(id, Event::Close).await.unwrap();
    let when = store.request_erasure(id).await.unwrap();
    assert_eq!(when, clock.now().plus_seconds(ERASURE_GRACE_SECONDS));
    assert!(
        store
            .outbox_of(id)
            .await
            .unwrap()
            .iter()
            .any(|m| m.0 == "erasure_requested")
    );
    // Reopened within the grace period: the request is cancelled.
    clock.advance_seconds(10 * 86_400);
    store.transition(id, Event::Reopen).await.unwrap();
    clock.advance_seconds(ERASURE_GRACE_SECONDS);
    assert_eq!(store.run_lifecycle_job(100).await.unwrap().erased, 0);
    assert!(store.holder(id).await.is_ok());
    // Asked again: nothing before the end of the grace period, erased at it.
    store.transition(id, Event::Close).await.unwrap();
    let when = store.request_erasure(id).await.unwrap();
    while !store.claim_messages(100).await.unwrap().is_empty() {}
    clock.set(when.plus_seconds(-1));
    assert_eq!(store.run_lifecycle_job(100).await.unwrap().erased, 0);
    clock.set(when);
    assert_eq!(store.run_lifecycle_job(100).await.unwrap().erased, 1);
    assert_eq!(store.lifecycle(id).await.unwrap().name(), "erased");
    assert!(matches!(
        store.vault().get(id).await,
        Err(StoreError::Shredded(_))
    ));
    // The notice that it is done is the one row left, readable without the holder's key.
    let left = store.outbox_of(id).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].0, carnet_store::outbox::ERASURE_DONE);
    let sent = store.claim_messages(100).await.unwrap();
    assert_eq!(sent.len(), 1);
    let payload: serde_json::Value = serde_json::from_slice(&sent[0].payload).unwrap();
    assert_eq!(payload["email"], "p31@example.org");
    store.mark_sent(sent[0].id).await.unwrap();
    assert!(
        store.outbox_of(id).await.unwrap().is_empty(),
        "the address goes once sent"
    );
    assert_eq!(store.run_lifecycle_job(100).await.unwrap(), Default::default());
}

pub(super) async fn concurrent_jobs_apply_each_transition_once(env: Env, _e: Engine) {
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

pub(super) async fn majority_ends_representation_mi3(env: Env, _e: Engine) {
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
pub(super) async fn a_minors_space_is_the_representatives_then_the_adults_alone_mi1_mi3_s1(
    env: Env,
    _e: Engine,
) {
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
    store.set_acting_for(&parent_token, child, false).await.unwrap();
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
pub(super) async fn the_space_is_changed_by_its_holder_side_only_s1_lc6(env: Env, _e: Engine) {
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

pub(super) async fn outbox_claims_are_leased_and_retried(env: Env, _e: Engine) {
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

pub(super) async fn an_email_that_fails_for_good_goes_by_post_lc2(env: Env, _e: Engine) {
    let clock = ManualClock::new(Timestamp::from_unix_seconds(T0));
    let store = env.open_at(&clock).await;
    let out = store
        .import_roster_batch(&[
            record(60, "1985-01-01", true, None),
            record(61, "2016-05-01", false, None),
        ])
        .await
        .unwrap();
    let (adult, child) = (created(&out[0]), created(&out[1]));
    let mut claimed = store.claim_messages_on(10, &[Channel::Email]).await.unwrap();
    assert_eq!(claimed.len(), 1, "the adult's information by e-mail");
    let info = claimed.remove(0);
    assert_eq!((info.holder, info.kind.as_str()), (adult, "information"));
    // The e-mail failed for good: the same letter, the same code, goes by post, at once.
    assert!(store.send_by_post_instead(info.id).await.unwrap());
    assert!(
        !store.send_by_post_instead(info.id).await.unwrap(),
        "no longer an e-mail"
    );
    let post = store.claim_messages_on(10, &[Channel::Post]).await.unwrap();
    let ids: Vec<_> = post
        .iter()
        .map(|m| (m.holder, m.kind.as_str(), m.attempts))
        .collect();
    assert!(ids.contains(&(adult, "information", 1)), "{ids:?}");
    assert!(
        ids.contains(&(child, "information", 1)),
        "no e-mail: by post from the start"
    );
    let rerouted = post.iter().find(|m| m.holder == adult).unwrap();
    assert_eq!(rerouted.payload, info.payload);
    // A login code is worth nothing in a letter days later: it stays an e-mail.
    let h = store.create_holder("activated", b"{}").await.unwrap();
    store
        .create_login_challenge(h, "dev", Channel::Email)
        .await
        .unwrap();
    let code = store.claim_messages_on(10, &[Channel::Email]).await.unwrap();
    assert_eq!(code[0].kind, "login_code");
    assert!(!store.send_by_post_instead(code[0].id).await.unwrap());
    // Whom the letters go to: a minor's, to their representatives.
    let r = store.postal_recipient(child).await.unwrap();
    assert!(r.minor);
    assert_eq!(r.name.family, "NOM61");
    assert!(!store.postal_recipient(adult).await.unwrap().minor);
}

pub(super) async fn a_suspended_space_reaches_nobody_and_closes_unless_contested_lc5b(env: Env, _e: Engine) {
    use carnet_domain::lifecycle::SUSPENSION_OBJECTION_SECONDS;
    use carnet_store::gate::Suspension;
    use carnet_store::outbox::{SPACE_SUSPENDED, SUSPENSION_CLOSED, SUSPENSION_CONTESTED, SUSPENSION_LIFTED};
    let clock = ManualClock::new(Timestamp::from_unix_seconds(T0));
    let store = env.open_at(&clock).await;
    let gate = Gate::new(store.clone(), HabilitationMatrix::default_matrix());
    let ids: Vec<HolderId> = store
        .import_roster_batch(&[
            record(41, "1970-01-01", true, None),
            record(42, "1971-01-01", false, None),
        ])
        .await
        .unwrap()
        .iter()
        .map(created)
        .collect();
    let doctor = pro_actor("11111111111", "medecin");
    for id in &ids {
        store.transition(*id, Event::Activate).await.unwrap();
        own_side(&store, *id)
            .await
            .update_access_policy(|p| p.medecin_traitant = Some(ProfessionalId("11111111111".into())))
            .await
            .unwrap();
        gate.deposit_document(
            *id,
            &Actor::Holder { id: *id },
            text_doc("Vaccins", Category::Reports),
            b"x".to_vec(),
            &Context::default(),
        )
        .await
        .unwrap();
    }
    let (a, b) = (ids[0], ids[1]);
    let holder = Actor::Holder { id: a };
    assert_eq!(listed_titles(&gate, a, &doctor).await, ["Vaccins"]);
    // Reasoned: no reason, no change.
    assert!(matches!(
        gate.operator_suspension(a, "support", Suspension::Suspend, "  ")
            .await,
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(store.lifecycle(a).await.unwrap().name(), "activated");
    let since = clock.now();
    let suspended = gate
        .operator_suspension(
            a,
            "support",
            Suspension::Suspend,
            "usurpation d'identité signalée",
        )
        .await
        .unwrap();
    assert_eq!(suspended, Some(Lifecycle::Suspended { at: since }));
    // Nobody reaches it: not the holder's side, not the holder's reading, not the médecin traitant.
    assert!(gate.holder_side(a, &holder).await.unwrap().is_none());
    for who in [&holder, &doctor] {
        let listed = gate
            .list_documents(a, who, &all_docs(), &Context::default())
            .await;
        assert!(
            listed
                .as_ref()
                .map_or(true, |p| p.documents.is_empty() && p.total == 0),
            "{who:?} saw {listed:?}"
        );
    }
    // The holder is told, with the reason and the date of closure; the action is traced.
    assert!(queued(&store, a, SPACE_SUSPENDED, Some("email")).await);
    let traces = store.traces_of(a, None, 50).await.unwrap();
    let traced = traces
        .iter()
        .find(|t| t.entry.item == "suspension")
        .expect("the suspension is traced");
    assert_eq!(
        traced.entry.purpose.as_deref(),
        Some("usurpation d'identité signalée")
    );
    assert_eq!(traced.entry.actor, Actor::Operator { id: "support".into() });
    // Suspending twice, or lifting a space that is not suspended, changes nothing.
    assert!(matches!(
        gate.operator_suspension(a, "support", Suspension::Suspend, "encore")
            .await,
        Err(StoreError::Transition(_))
    ));
    // The second holder, without an e-mail, is told by post.
    gate.operator_suspension(b, "support", Suspension::Suspend, "dysfonctionnement grave")
        .await
        .unwrap();
    assert!(queued(&store, b, SPACE_SUSPENDED, Some("post")).await);
    // The first objects on the last day: the closure is off, the space stays suspended.
    clock.set(since.plus_seconds(SUSPENSION_OBJECTION_SECONDS - 60));
    store.contest_suspension(a).await.unwrap();
    assert_eq!(store.lifecycle(a).await.unwrap().name(), "suspension_contested");
    assert!(queued(&store, a, SUSPENSION_CONTESTED, None).await);
    assert!(gate.holder_side(a, &holder).await.unwrap().is_none());
    // Six weeks on: the job closes the second (told by post), not the first.
    clock.set(since.plus_seconds(SUSPENSION_OBJECTION_SECONDS));
    assert!(
        matches!(store.contest_suspension(b).await, Err(StoreError::Transition(_))),
        "too late"
    );
    let report = store.run_lifecycle_job(100).await.unwrap();
    assert_eq!(report.closed, 1, "{report:?}");
    assert_eq!(store.lifecycle(b).await.unwrap().name(), "closed");
    assert!(queued(&store, b, SUSPENSION_CLOSED, Some("post")).await);
    assert_eq!(store.run_lifecycle_job(100).await.unwrap().closed, 0, "once");
    // The operator lifts the first: everything is there again, for the holder and the doctor.
    let lifted = gate
        .operator_suspension(a, "support", Suspension::Lift, "vérification faite")
        .await
        .unwrap();
    assert_eq!(lifted.map(|l| l.name()), Some("activated"));
    assert!(queued(&store, a, SUSPENSION_LIFTED, None).await);
    assert_eq!(listed_titles(&gate, a, &doctor).await, ["Vaccins"]);
    assert!(gate.holder_side(a, &holder).await.unwrap().is_some());
    // An unknown space reads like one that does not exist.
    let unknown = HolderId::new(clock.now());
    assert_eq!(
        gate.operator_suspension(unknown, "support", Suspension::Suspend, "x")
            .await
            .unwrap(),
        None
    );
}

/// Whether a message of `kind` (by `channel`, if given) is queued for `holder`.
async fn queued(store: &Store, holder: HolderId, kind: &str, channel: Option<&str>) -> bool {
    store
        .outbox_of(holder)
        .await
        .unwrap()
        .iter()
        .any(|m| m.0 == kind && channel.is_none_or(|c| m.1 == c))
}
