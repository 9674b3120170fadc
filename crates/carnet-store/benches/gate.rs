//! The gate's own benchmark (issue 4 targets): `cargo bench -p carnet-store --bench gate`.
//! Set CARNET_BENCH_DATABASE_URL=postgres://... to also run on PostgreSQL.
//!
//! - the cost one access adds: policy read + `decide()` + sealed trace durably appended to the
//!   holder's chain + (collapsed) notice, alone and under concurrency (group commit);
//! - listing the traces of a holder with 100,000 entries: newest page, a page deep in history,
//!   a period filter, the notices.
//!
//! Prints one line per measure; results are recorded in BENCHMARKS.md.
#![allow(clippy::disallowed_methods)] // tests and benches read the clock and the environment

mod support;
use support::*;

use std::time::Instant;

use carnet_domain::HolderId;
use carnet_domain::access::*;
use carnet_store::Store;
use carnet_store::gate::Gate;
use carnet_store::traces::TraceEntry;

fn actor() -> Actor {
    Actor::Professional {
        id: ProfessionalId("bench".into()),
        profession: "pharmacien".into(),
        role: PracticeRole::Care,
    }
}

fn facts() -> ItemFacts {
    ItemFacts {
        category: Category::Prescriptions,
        author: Author::Holder,
        masked: false,
        hidden_from_representatives: false,
        visible_to_holder: true,
    }
}

async fn granted_holder(store: &Store) -> HolderId {
    let h = store.create_holder("activated", b"{}").await.expect("holder");
    carnet_store::gate::Gate::new(store.clone(), HabilitationMatrix::default_matrix())
        .holder_side(h, &Actor::Holder { id: h })
        .await
        .expect("space")
        .expect("own space")
        .update_access_policy(|p| {
            p.grants.push(Grant {
                grantee: Grantee::Professional {
                    id: ProfessionalId("bench".into()),
                },
                categories: None,
                until: None,
                express: false,
                basis: Default::default(),
            })
        })
        .await
        .expect("policy");
    h
}

async fn check(gate: &Gate, h: HolderId) {
    let d = gate
        .check(
            h,
            &actor(),
            Action::Read,
            "document/bench",
            &facts(),
            &Context::default(),
        )
        .await
        .expect("gate");
    assert!(d.allowed);
}

async fn accesses(label: &str, store: &Store, gate: &Gate, tasks: usize, total: usize) {
    let mut holders = Vec::new();
    for _ in 0..tasks {
        holders.push(granted_holder(store).await);
    }
    // Warm up (first notice per holder, pools, caches).
    for h in &holders {
        check(gate, *h).await;
    }
    let t = Instant::now();
    let mut joins = Vec::new();
    for h in holders {
        let gate = gate.clone();
        joins.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            for _ in 0..total / tasks {
                let s = Instant::now();
                check(&gate, h).await;
                lat.push(s.elapsed().as_micros());
            }
            lat
        }));
    }
    let mut lat = Vec::new();
    for j in joins {
        lat.extend(j.await.expect("task"));
    }
    let secs = t.elapsed().as_secs_f64();
    let n = lat.len();
    println!(
        "[{label}] access, {tasks:>2} tasks: {:>7.0} /s = {:>6.1} µs per access; latency p50 {} µs, p99 {} µs",
        n as f64 / secs,
        secs * 1e6 / n as f64,
        pct(&mut lat, 50),
        pct(&mut lat, 99),
    );
}

async fn listing(label: &str, store: &Store) {
    let h = granted_holder(store).await;
    let n = 100_000;
    let entry = |i: usize| TraceEntry {
        actor: Actor::Professional {
            id: ProfessionalId(format!("{:011}", 10_000_000_000u64 + (i % 500) as u64)),
            profession: "medecin".into(),
            role: PracticeRole::Care,
        },
        action: Action::Read,
        item: format!("document/{i}"),
        category: Some(Category::Reports),
        allowed: !i.is_multiple_of(7),
        reason: if !i.is_multiple_of(7) {
            Reason::Grant
        } else {
            Reason::NoGrant
        },
        emergency: false,
        purpose: None,
        hidden_from_representatives: false,
        withheld_until: None,
    };
    let t = Instant::now();
    for chunk in (0..n).collect::<Vec<_>>().chunks(2000) {
        let batch: Vec<(HolderId, TraceEntry)> = chunk.iter().map(|&i| (h, entry(i))).collect();
        store.append_traces(&batch).await.expect("append");
    }
    println!(
        "[{label}] {n} traces appended for one holder in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let runs = 200;
    let measure = |name: &str, lat: &mut Vec<u128>| {
        println!(
            "[{label}] {name:<52} p50 {:>6} µs, p99 {:>6} µs",
            pct(lat, 50),
            pct(lat, 99)
        );
        lat.clear();
    };
    let mut lat = Vec::new();
    for _ in 0..runs {
        let s = Instant::now();
        let page = store.traces_of(h, None, 50).await.expect("list");
        lat.push(s.elapsed().as_micros());
        assert_eq!(page.len(), 50);
    }
    measure("newest 50 of 100,000 traces", &mut lat);
    for i in 0..runs {
        let s = Instant::now();
        let page = store
            .traces_of(h, Some(10_000 + (i as i64) * 300), 50)
            .await
            .expect("list");
        lat.push(s.elapsed().as_micros());
        assert_eq!(page.len(), 50);
    }
    measure("a page of 50 deep in history (before=...)", &mut lat);
    let newest = store.traces_of(h, None, 1).await.expect("list")[0].at;
    let from = carnet_domain::Timestamp::from_micros(newest.as_micros() - 2_000_000);
    for _ in 0..runs {
        let s = Instant::now();
        store
            .traces_in(h, None, Some((from, newest)), 50)
            .await
            .expect("list");
        lat.push(s.elapsed().as_micros());
    }
    measure("newest 50 within a period", &mut lat);
    for _ in 0..runs {
        let s = Instant::now();
        let page = store.notices_before(h, None, 50).await.expect("notices");
        lat.push(s.elapsed().as_micros());
        assert!(!page.is_empty());
    }
    measure("newest 50 notices", &mut lat);
}

async fn run(label: &str, store: Store) {
    let gate = Gate::new(store.clone(), HabilitationMatrix::default_matrix());
    // decide() alone, for scale.
    let space = AccessPolicy::default().facts(carnet_domain::Lifecycle::Activated {
        since: carnet_domain::Timestamp::from_micros(0),
    });
    let matrix = HabilitationMatrix::default_matrix();
    let t = Instant::now();
    let k = 200_000;
    for _ in 0..k {
        std::hint::black_box(decide(
            &actor(),
            Action::Read,
            &facts(),
            &space,
            &matrix,
            &Context::default(),
            carnet_domain::Timestamp::from_micros(1),
        ));
    }
    println!(
        "[{label}] decide() alone: {:.2} µs",
        t.elapsed().as_secs_f64() * 1e6 / k as f64
    );
    accesses(label, &store, &gate, 1, 2_000).await;
    accesses(label, &store, &gate, 16, 16_000).await;
    accesses(label, &store, &gate, 64, 32_000).await;
    listing(label, &store).await;
}

fn main() {
    support::on_both_engines("gate", run);
}
