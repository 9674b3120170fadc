//! Render time of the web pages (issue 7): `cargo bench -p carnet --bench web_render`.
//!
//! Builds a data directory with one activated holder and `CARNET_BENCH_DOCS` documents (default
//! 500: small text documents deposited by their médecin traitant through `gate.deposit_document`,
//! so the home page also has a full "what's new"), starts the real server (`carnet serve`) and
//! requests the home page and the documents page over loopback, one request at a time
//! (`CARNET_BENCH_REQUESTS` each, default 300, after 20 warm-up requests), with the holder's
//! session cookie. Every request is a full server-side render: session check, gate read with its
//! durable trace, HTML. Then the same for the médecin traitant's pages on that record (issue 33,
//! DM-8): the record's first view and two searches within it, with a professional session.
//! Prints p50 and p99; results go to BENCHMARKS.md. No assertion on time.
#![allow(clippy::disallowed_methods)] // tests and benches read the clock and the environment

#[path = "support/mod.rs"]
mod support;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use carnet_domain::access::{Actor, Category, Context, PracticeRole, ProfessionalId};
use carnet_domain::roster::RawRosterLine;
use carnet_domain::{Clock, Event, SystemClock};
use carnet_store::datadir::{StoreSettings, open_store};
use carnet_store::directory::Professional;
use carnet_store::documents::NewDocument;
use carnet_store::gate::Gate;
use carnet_store::roster::RosterOutcome;

const BIN: &str = env!("CARGO_BIN_EXE_carnet");
const RPPS: &str = "10000000099";

fn env_or(k: &str, d: u64) -> u64 {
    std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d)
}

fn ins() -> String {
    let nir = format!("1{:012}", 800_175_000_001u64);
    let k = 97 - nir.parse::<u64>().unwrap_or(0) % 97;
    format!("{nir}{k:02}")
}

async fn build(data: &std::path::Path, docs: u64) -> carnet_domain::HolderId {
    let store = open_store(&StoreSettings::new(data), Arc::new(SystemClock))
        .await
        .expect("open store");
    let line = RawRosterLine {
        ins: ins(),
        birth_name: "BENCH".into(),
        given_names: "Alex".into(),
        sex: "U".into(),
        birth_date: "1980-01-01".into(),
        ..RawRosterLine::default()
    }
    .validate(SystemClock.now())
    .expect("valid line");
    let holder = store
        .import_roster_batch(&[line])
        .await
        .expect("import")
        .into_iter()
        .find_map(|o| match o {
            RosterOutcome::Created { id, .. } => Some(id),
            _ => None,
        })
        .expect("created");
    store
        .upsert_professionals(&[Professional {
            rpps: RPPS.into(),
            family_name: "BENCH".into(),
            given_name: "Pat".into(),
            profession: "medecin".into(),
            specialty: None,
            role: PracticeRole::Care,
            finess: None,
            organisation_name: None,
            town: None,
        }])
        .await
        .expect("pro");
    store.transition(holder, Event::Activate).await.expect("activate");
    let gate = Gate::new(
        store.clone(),
        carnet_domain::access::HabilitationMatrix::default_matrix(),
    );
    gate.holder_side(holder, &Actor::Holder { id: holder })
        .await
        .expect("space")
        .expect("own space")
        .update_access_policy(|p| p.medecin_traitant = Some(ProfessionalId(RPPS.into())))
        .await
        .expect("policy");
    let pro = Actor::Professional {
        id: ProfessionalId(RPPS.into()),
        profession: "medecin".into(),
        role: PracticeRole::Care,
    };
    let t = Instant::now();
    for d in 0..docs {
        gate.deposit_document(
            holder,
            &pro,
            NewDocument {
                title: Some(format!("Compte rendu de consultation {d}")),
                class: Some(Category::Reports),
                mime: "text/plain".into(),
                ..NewDocument::default()
            },
            format!("Compte rendu de consultation numéro {d}.").into_bytes(),
            &Context::default(),
        )
        .await
        .expect("deposit");
    }
    println!(
        "setup: 1 holder, {docs} documents deposited through the gate in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    store.db().close().await;
    holder
}

fn percentile(sorted: &[u128], q: usize) -> u128 {
    sorted
        .get((sorted.len() * q / 100).min(sorted.len().saturating_sub(1)))
        .copied()
        .unwrap_or(0)
}

fn main() {
    let docs = env_or("CARNET_BENCH_DOCS", 500);
    let n = env_or("CARNET_BENCH_REQUESTS", 300);
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    std::fs::create_dir(&data).expect("mkdir");
    let d = data.to_str().expect("utf-8 path").to_string();
    let ok = Command::new(BIN)
        .args(["init", "--data-dir", &d])
        .stdout(Stdio::null())
        .status()
        .expect("init");
    assert!(ok.success());
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let holder = rt.block_on(build(&data, docs));
    let out = Command::new(BIN)
        .args(["token", "holder", &ins(), "--data-dir", &d])
        .output()
        .expect("token");
    let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        !token.is_empty(),
        "no holder token: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(BIN)
        .args(["token", "professional", RPPS, "--data-dir", &d])
        .output()
        .expect("token");
    let pro_token = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(!pro_token.is_empty(), "no professional token");
    let mut server = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir", &d])
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .spawn()
        .expect("serve");
    let base = support::listening_base(&mut server);
    println!("server: {base}; {n} sequential requests per page");
    rt.block_on(async {
        let http = reqwest::Client::new();
        let holder_cookie = format!("__Host-carnet_session={token}");
        let pro_cookie = format!("__Host-carnet_pro={pro_token}");
        let record = format!("/pro/patients/{holder}");
        let pages = [
            ("home page /", "/".to_string(), &holder_cookie),
            (
                "documents page /documents",
                "/documents".to_string(),
                &holder_cookie,
            ),
            ("profile page /profil", "/profil".to_string(), &holder_cookie),
            ("pro record, first view", record.clone(), &pro_cookie),
            (
                "pro search: words",
                format!("{record}?mots=consultation+1999"),
                &pro_cookie,
            ),
            (
                "pro search: category+period",
                format!("{record}?categorie=reports&du=01/01/2020&au=31/12/2099"),
                &pro_cookie,
            ),
        ];
        for (name, path, cookie) in pages {
            let mut lat = Vec::new();
            let mut bytes = 0;
            for i in 0..n + 20 {
                let t = Instant::now();
                let r = http
                    .get(format!("{base}{path}"))
                    .header("cookie", cookie.as_str())
                    .send()
                    .await
                    .expect("request");
                assert_eq!(r.status(), 200, "{path}");
                let body = r.text().await.expect("body");
                if i >= 20 {
                    lat.push(t.elapsed().as_micros());
                    bytes = body.len();
                }
            }
            lat.sort_unstable();
            println!(
                "{name:<28} p50 {:>6} µs  p99 {:>6} µs  ({} requests, {} bytes)",
                percentile(&lat, 50),
                percentile(&lat, 99),
                lat.len(),
                bytes
            );
        }
    });
    let _ = server.kill();
    let _ = server.wait();
}
