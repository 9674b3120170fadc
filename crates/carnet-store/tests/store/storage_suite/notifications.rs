//! The storage suite: notifications (AC-6, DM-7).

use super::*;

suite!(
    notices_follow_preferences_and_collapse_per_channel_ac6,
    two_servers_append_to_the_same_chains_s30,
    a_stale_cached_chain_head_is_read_again_s30,
);

pub(super) async fn notices_follow_preferences_and_collapse_per_channel_ac6(env: Env, _e: Engine) {
    use carnet_store::outbox::{MessageLanguage, NotificationPreferences};
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
            language: MessageLanguage::En,
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
            sms: true,
            language: MessageLanguage::En,
        }
    );
    assert_eq!(store.message_language(h).await.unwrap(), MessageLanguage::En);
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
            ..Default::default()
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
pub(super) async fn a_stale_cached_chain_head_is_read_again_s30(env: Env, _e: Engine) {
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

pub(super) async fn two_servers_append_to_the_same_chains_s30(env: Env, _e: Engine) {
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
                        ..Default::default()
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
