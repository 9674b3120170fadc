//! The storage suite: reimbursements (RB-1, RB-2).

use super::*;

suite!(reimbursement_feed_is_idempotent_sealed_and_gated_rb1_rb2_ac6_ac8,);

pub(super) fn feed_line(
    n: u64,
    line_id: &str,
    date: &str,
    care: &str,
    pro: &str,
    paid: &str,
    back: &str,
) -> FeedLine {
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
pub(super) async fn reimbursement_feed_is_idempotent_sealed_and_gated_rb1_rb2_ac6_ac8(
    env: Env,
    engine: Engine,
) {
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
    assert!(!carnet_store::traces::is_notice(&traces[0]));
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
                    basis: Default::default(),
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
    let sealed: Vec<(Vec<u8>, String)> = store
        .db()
        .fetch_all_as::<(Vec<u8>, String)>(
            Query::new("SELECT line_sealed, line_tag FROM reimbursements"),
            "test",
        )
        .await
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
