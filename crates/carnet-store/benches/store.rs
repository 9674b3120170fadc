//! Store benchmark: `cargo bench -p carnet-store --bench store`.
//! Set CARNET_BENCH_DATABASE_URL=postgres://... to also run on PostgreSQL.
//! Prints one line per measure; results are recorded in BENCHMARKS.md.
#![allow(clippy::disallowed_methods)] // tests and benches read the clock and the environment

mod support;

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use carnet_store::Store;
use carnet_store::crypto::SecretKey;

const CONCURRENCY: usize = 16;

fn report(name: &str, n: usize, started: Instant) {
    let s = started.elapsed().as_secs_f64();
    println!(
        "{name:<58} {n:>6} ops {:>10.0} ops/s {:>10.1} µs/op",
        n as f64 / s,
        s * 1e6 / n as f64
    );
}

async fn concurrent<F, Fut>(total: usize, f: F)
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let per = total / CONCURRENCY;
    let mut tasks = Vec::new();
    for w in 0..CONCURRENCY {
        let f = f.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..per {
                f(w * per + i).await;
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
}

async fn run(label: &str, store: Store) {
    let holder = store.create_holder("open", b"{}").await.expect("holder");
    let t = Instant::now();
    let n = 2000;
    let s = store.clone();
    concurrent(n, move |_| {
        let s = s.clone();
        async move {
            s.create_holder("open", br#"{"family_name":"BENCH"}"#)
                .await
                .expect("create");
        }
    })
    .await;
    report(
        &format!("[{label}] create holder (key + sealed row), {CONCURRENCY} tasks"),
        n,
        t,
    );

    let doc = Bytes::from(vec![0x42u8; 100 * 1024]);
    let n = 1600;
    let t = Instant::now();
    let s = store.clone();
    let d = doc.clone();
    concurrent(n, move |_| {
        let s = s.clone();
        let d = d.clone();
        async move {
            s.put_attachment(holder, "application/pdf", d).await.expect("put");
        }
    })
    .await;
    report(
        &format!("[{label}] put 100 KiB attachment (seal, fsync blob, row), {CONCURRENCY} tasks"),
        n,
        t,
    );

    let ids = store.attachment_ids(holder).await.expect("ids");
    let t = Instant::now();
    let s = store.clone();
    let ids = Arc::new(ids);
    let n = 3200;
    let ids2 = ids.clone();
    concurrent(n, move |i| {
        let s = s.clone();
        let ids = ids2.clone();
        async move {
            s.attachment(holder, ids[i % ids.len()]).await.expect("get");
        }
    })
    .await;
    report(
        &format!("[{label}] read 100 KiB attachment (verify, open), {CONCURRENCY} tasks"),
        n,
        t,
    );

    // The gate: policy read + decision + sealed trace append + (collapsed) notice, per access.
    use carnet_domain::access::*;
    let gate = carnet_store::gate::Gate::new(store.clone(), HabilitationMatrix::default_matrix());
    gate.holder_side(holder, &carnet_domain::access::Actor::Holder { id: holder })
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
    let facts = ItemFacts {
        category: Category::Prescriptions,
        author: Author::Holder,
        masked: false,
        hidden_from_representatives: false,
        visible_to_holder: true,
    };
    let actor = Actor::Professional {
        id: ProfessionalId("bench".into()),
        profession: "pharmacien".into(),
        role: PracticeRole::Care,
    };
    let n = 2000;
    let mut lat = Vec::with_capacity(n);
    let t = Instant::now();
    for _ in 0..n {
        let s = Instant::now();
        let d = gate
            .check(
                holder,
                &actor,
                Action::Read,
                "document/bench",
                &facts,
                &Context::default(),
            )
            .await
            .expect("gate");
        assert!(d.allowed);
        lat.push(s.elapsed().as_micros());
    }
    report(&format!("[{label}] gate check + trace append, 1 task"), n, t);
    lat.sort_unstable();
    println!(
        "{:<58} p50 {} µs, p99 {} µs",
        format!("[{label}] gate check latency"),
        lat[n / 2],
        lat[n * 99 / 100]
    );
    // Concurrent accesses (16 tasks, 16 holders): one group commit serves many traces.
    let mut holders = Vec::new();
    for _ in 0..CONCURRENCY {
        let h = store.create_holder("open", b"{}").await.expect("holder");
        gate.holder_side(h, &carnet_domain::access::Actor::Holder { id: h })
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
        holders.push(h);
    }
    let n = 8000;
    let t = Instant::now();
    let mut tasks = Vec::new();
    for h in holders {
        let (gate, actor, facts) = (gate.clone(), actor.clone(), facts.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            for _ in 0..n / CONCURRENCY {
                let s = Instant::now();
                let d = gate
                    .check(
                        h,
                        &actor,
                        Action::Read,
                        "document/bench",
                        &facts,
                        &Context::default(),
                    )
                    .await
                    .expect("gate");
                assert!(d.allowed);
                lat.push(s.elapsed().as_micros());
            }
            lat
        }));
    }
    let mut lat = Vec::new();
    for task in tasks {
        lat.extend(task.await.expect("task"));
    }
    report(
        &format!("[{label}] gate check + trace append, {CONCURRENCY} tasks"),
        n,
        t,
    );
    lat.sort_unstable();
    println!(
        "{:<58} p50 {} µs, p99 {} µs",
        format!("[{label}] gate latency, {CONCURRENCY} tasks"),
        lat[n / 2],
        lat[n * 99 / 100]
    );
    documents(label, &store, &gate, &actor).await;
    let t = Instant::now();
    let traces = store.traces_of(holder, None, 100).await.expect("traces");
    println!(
        "{:<58} {} traces of {} listed in {} µs",
        format!("[{label}] newest 100 traces"),
        traces.len(),
        n,
        t.elapsed().as_micros()
    );
}

/// Issue 5 targets: deposit of a 100 KiB PDF by an authorised professional (gate, checks,
/// encryption, fsync'd blob, rows, trace, notice) >= 500/s; listing 200 documents < 5 ms p50.
async fn documents(
    label: &str,
    store: &Store,
    gate: &carnet_store::gate::Gate,
    pro: &carnet_domain::access::Actor,
) {
    use carnet_domain::access::*;
    use carnet_store::documents::{DocumentFilter, NewDocument};
    let mut pdf = b"%PDF-1.7\n".to_vec();
    pdf.resize(100 * 1024 - 6, b'x');
    pdf.extend_from_slice(b"\n%%EOF");
    let mut holders = Vec::new();
    for _ in 0..CONCURRENCY {
        let h = store.create_holder("open", b"{}").await.expect("holder");
        gate.holder_side(h, &carnet_domain::access::Actor::Holder { id: h })
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
        holders.push(h);
    }
    let doc = |title: &str, mime: &str| NewDocument {
        title: Some(title.into()),
        class: Some(Category::Reports),
        mime: mime.into(),
        ..NewDocument::default()
    };
    let n = 3200;
    let t = Instant::now();
    let mut tasks = Vec::new();
    for h in holders.clone() {
        let (gate, pro, pdf) = (gate.clone(), pro.clone(), pdf.clone());
        let new = doc("Compte rendu", "application/pdf");
        tasks.push(tokio::spawn(async move {
            for _ in 0..n / CONCURRENCY {
                gate.deposit_document(h, &pro, new.clone(), pdf.clone(), &Context::default())
                    .await
                    .expect("deposit");
            }
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
    report(
        &format!("[{label}] deposit 100 KiB PDF through the gate, {CONCURRENCY} tasks"),
        n,
        t,
    );
    // One holder with 200 small documents: the listing as the holder and as a professional.
    let h = holders[0];
    for i in 0..200 - n / CONCURRENCY {
        gate.deposit_document(
            h,
            pro,
            doc(&format!("Résultat {i}"), "text/plain"),
            b"ok".to_vec(),
            &Context::default(),
        )
        .await
        .expect("deposit");
    }
    let filter = DocumentFilter {
        limit: 200,
        ..DocumentFilter::default()
    };
    for (who, actor) in [("holder", Actor::Holder { id: h }), ("professional", pro.clone())] {
        let mut lat = Vec::new();
        for _ in 0..200 {
            let s = Instant::now();
            let page = gate
                .list_documents(h, &actor, &filter, &Context::default())
                .await
                .expect("list");
            assert_eq!(page.total, 200);
            lat.push(s.elapsed().as_micros());
        }
        lat.sort_unstable();
        println!(
            "{:<58} p50 {} µs, p99 {} µs",
            format!("[{label}] list 200 documents as {who}"),
            lat[lat.len() / 2],
            lat[lat.len() * 99 / 100]
        );
    }
}

fn main() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let key = SecretKey::generate().expect("key");
        let doc = vec![7u8; 100 * 1024];
        let n = 5000;
        let t = Instant::now();
        for _ in 0..n {
            let s = key.seal(b"aad", &doc).expect("seal");
            std::hint::black_box(key.open(b"aad", &s).expect("open"));
        }
        report("seal + open 100 KiB (AES-256-GCM), 1 thread", n, t);
    });
    drop(rt);
    support::on_both_engines("store", run);
}
