//! The storage suite: signed Merkle checkpoints over the traces (AC-7, S-5).

use super::*;

suite!(
    checkpoints_sign_the_moved_chain_heads_ac7_s5,
    truncated_chain_tail_is_caught_by_the_checkpoint_ac7,
    altered_or_removed_checkpoints_are_reported_ac7_s5,
    concurrent_checkpoints_make_one_ac7,
    a_full_checkpoint_leaves_the_other_chains_for_the_next_ac7,
    erased_holder_chain_may_be_missing_lc7_ac7,
    checkpoints_racing_appends_cover_every_head_ac7,
    traces_written_before_checkpoints_are_covered_by_the_first_ac7,
);

/// `n` traced accesses (denied: no grant) to `h`'s space.
pub(super) async fn traced(gate: &Gate, h: HolderId, n: usize) {
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
pub(super) async fn operator_sql(store: &Store, sql: &'static str) {
    let mut tx = store.db().begin().await.unwrap();
    tx.execute(Query::new(sql), "test").await.unwrap();
    tx.commit().await.unwrap();
}

pub(super) fn from_checkpoints(problems: &[String]) -> bool {
    problems.iter().all(|p| p.contains("checkpoint"))
}

pub(super) async fn checkpoints_sign_the_moved_chain_heads_ac7_s5(env: Env, _e: Engine) {
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

pub(super) async fn truncated_chain_tail_is_caught_by_the_checkpoint_ac7(env: Env, _e: Engine) {
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

pub(super) async fn altered_or_removed_checkpoints_are_reported_ac7_s5(env: Env, _e: Engine) {
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
    tx.execute(
        Query::new("UPDATE trace_checkpoints SET root = $1 WHERE number = 1").bind(&first.root),
        "test",
    )
    .await
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
pub(super) async fn a_full_checkpoint_leaves_the_other_chains_for_the_next_ac7(env: Env, _e: Engine) {
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
        let q = Query::new("SELECT DISTINCT holder_id FROM trace_heads_moved ORDER BY holder_id");
        let rows = store.db().fetch_all(q, "test").await.unwrap();
        rows.into_iter()
            .map(|mut r| r.take::<uuid::Uuid>(0).unwrap())
            .collect::<Vec<_>>()
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

pub(super) async fn concurrent_checkpoints_make_one_ac7(env: Env, _e: Engine) {
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

pub(super) async fn erased_holder_chain_may_be_missing_lc7_ac7(env: Env, _e: Engine) {
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
pub(super) async fn heads_and_covered(store: &Store) -> (Vec<(uuid::Uuid, i64)>, Vec<(uuid::Uuid, i64)>) {
    let q = |sql: &'static str| async move {
        let rows = store.db().fetch_all(Query::new(sql), "test").await.unwrap();
        rows.into_iter()
            .map(|mut r| (r.take::<uuid::Uuid>(0).unwrap(), r.take::<i64>(1).unwrap()))
            .collect::<Vec<_>>()
    };
    (
        q("SELECT holder_id, MAX(seq) FROM traces GROUP BY holder_id ORDER BY holder_id").await,
        q("SELECT holder_id, MAX(seq) FROM trace_checkpoint_leaves GROUP BY holder_id ORDER BY holder_id")
            .await,
    )
}

pub(super) async fn checkpoints_racing_appends_cover_every_head_ac7(env: Env, e: Engine) {
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

pub(super) async fn traces_written_before_checkpoints_are_covered_by_the_first_ac7(env: Env, _e: Engine) {
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
