//! Secure messaging's benchmark (issue 8 target: 1,000 messages per second posted, each with a
//! 50 KiB attachment): `cargo bench -p carnet-store --bench messaging`. Set
//! CARNET_BENCH_DATABASE_URL=postgres://... to also run on PostgreSQL.
//!
//! One message = the messaging decision on the space, a durable trace (group-committed), the
//! attachment checked, sealed and written to the blob store (fsync'd), then one transaction for
//! the attachment row, the sealed message, the conversation's update and the holder's notice.
//! Professionals write to their patients from many tasks at once (a server's concurrency).
#![allow(clippy::disallowed_methods)] // tests and benches read the clock and the environment

mod support;
use support::*;

use std::time::Instant;

use carnet_domain::HolderId;
use carnet_domain::access::{Actor, Context, PracticeRole, ProfessionalId};
use carnet_domain::messaging::Counterpart;
use carnet_store::Store;
use carnet_store::gate::Gate;
use carnet_store::messaging::{CounterpartInfo, NewAttachment, Outgoing};

fn pro(i: usize) -> Actor {
    Actor::Professional {
        id: ProfessionalId(format!("{:011}", 10_000_000_000u64 + i as u64)),
        profession: "medecin".into(),
        role: PracticeRole::Care,
    }
}

/// A 50 KiB text attachment (any checked format would do; text is checked as UTF-8).
fn attachment(i: usize) -> NewAttachment {
    let mut content = format!("Compte rendu {i}\n").into_bytes();
    content.resize(50 * 1024, b'.');
    NewAttachment {
        filename: format!("compte-rendu-{i}.txt"),
        content_type: "text/plain".into(),
        content,
    }
}

async fn run(label: &str, store: Store) {
    let gate = Gate::new(
        store.clone(),
        carnet_domain::access::HabilitationMatrix::default_matrix(),
    );
    for tasks in [16usize, 64] {
        let per_task = 2_000 / tasks;
        // Each task: one professional writing to its own patient, in one conversation.
        let mut setups = Vec::new();
        for t in 0..tasks {
            let h: HolderId = store.create_holder("activated", b"{}").await.expect("holder");
            let actor = pro(t);
            let Some(counterpart) = Counterpart::of(&actor) else {
                unreachable!()
            };
            let thread = gate
                .start_conversation(
                    h,
                    &actor,
                    CounterpartInfo {
                        counterpart,
                        name: "Dr Bench".into(),
                        is_pharmacy: false,
                    },
                    "Suivi",
                    Outgoing {
                        text: "Bonjour",
                        attachments: vec![],
                        sender_name: "Dr Bench",
                    },
                    &Context::default(),
                )
                .await
                .expect("start");
            setups.push((h, actor, thread.conversation.id));
        }
        let started = Instant::now();
        let mut handles = Vec::new();
        for (h, actor, conv) in setups {
            let gate = gate.clone();
            handles.push(tokio::spawn(async move {
                let mut lat = Vec::with_capacity(per_task);
                for i in 0..per_task {
                    let t0 = Instant::now();
                    gate.post_message(
                        h,
                        &actor,
                        conv,
                        Outgoing {
                            text: "Voici le compte rendu.",
                            attachments: vec![attachment(i)],
                            sender_name: "Dr Bench",
                        },
                        &Context::default(),
                    )
                    .await
                    .expect("post");
                    lat.push(t0.elapsed().as_micros());
                }
                lat
            }));
        }
        let mut lat = Vec::new();
        for h in handles {
            lat.extend(h.await.expect("task"));
        }
        let secs = started.elapsed().as_secs_f64();
        let n = lat.len();
        println!(
            "{label}: {n} messages with a 50 KiB attachment, {tasks} tasks: {:.0} messages/s, p50 {:.1} ms, p99 {:.1} ms",
            n as f64 / secs,
            pct(&mut lat, 50) as f64 / 1000.0,
            pct(&mut lat, 99) as f64 / 1000.0,
        );
    }
}

fn main() {
    support::on_both_engines("msg", run);
}
