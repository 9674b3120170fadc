//! The storage suite: messaging and agenda.

use super::*;

suite!(messages_and_agenda_follow_the_space_ms2_ag1_lc5_lc7,);

/// MS-2, AC-4, LC-5, LC-7 on both engines: a professional cannot write in a closed space; the
/// holder's side of a closed space reads nothing; erasure removes conversations, messages,
/// their attachments and the agenda; messages and events are sealed at rest.
pub(super) async fn messages_and_agenda_follow_the_space_ms2_ag1_lc5_lc7(env: Env, _e: Engine) {
    use carnet_domain::agenda::{EventInput, EventKind};
    use carnet_domain::messaging::Counterpart;
    use carnet_store::messaging::{CounterpartInfo, NewAttachment, Outgoing};
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
            Outgoing {
                text: "Secret-text-MS",
                attachments: vec![NewAttachment {
                    filename: "note.txt".into(),
                    content_type: "text/plain".into(),
                    content: b"Secret-attachment-MS".to_vec(),
                }],
                sender_name: "Dr Test",
            },
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
        let rows = store
            .db()
            .writer()
            .fetch_all(Query::built(sql.clone()), "test")
            .await
            .unwrap();
        let blobs: Vec<Vec<u8>> = rows.into_iter().map(|mut r| r.take(0).unwrap()).collect();
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
        gate.post_message(
            h,
            &pro,
            conv,
            Outgoing {
                text: "encore",
                attachments: vec![],
                sender_name: "Dr Test"
            },
            &none
        )
        .await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        gate.start_conversation(
            h,
            &pro,
            to(),
            "x",
            Outgoing {
                text: "y",
                attachments: vec![],
                sender_name: "Dr Test"
            },
            &none
        )
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
