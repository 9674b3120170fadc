//! Load benchmark of the FHIR endpoint (issue 6): `cargo bench -p carnet --bench fhir_load`.
//!
//! Builds a data directory with `CARNET_BENCH_HOLDERS` spaces (default 100,000; roster import),
//! of which 2,000 are activated with the bench professional as médecin traitant and 5 documents
//! each; starts the real server (`carnet serve`, release build) and drives it over loopback with
//! 64 concurrent HTTP clients (`CARNET_BENCH_CLIENTS`; each a keep-alive connection of the small
//! HTTP/1.1 client of `support/http1.rs`, light as `wrk`, so that the 2 cores go to the server)
//! for `CARNET_BENCH_SECONDS` (default 10) per
//! scenario: read by id, patient-scoped search, a create + read mix, a CRUD mix (create, read,
//! update, delete a Condition) and transaction Bundles of 100 Observations (resources/s). Every
//! request goes through the gate and leaves a durable trace. Prints requests/s, p50, p99 and the CPU
//! time per request (the server's, and the machine's with the load generator); results go to
//! BENCHMARKS.md. Not a test: no assertion on time.
//!
//! `CARNET_BENCH_ONLY=read,search` runs only the scenarios whose names contain one of the words;
//! `CARNET_BENCH_AB=<path to another carnet binary>` with `CARNET_BENCH_ROUNDS=N` serves the same
//! data with this build (A) and that one (B) in turn, A B B A ..., and prints both means: the
//! figures of one build move by ±15 % between runs on a shared machine, more than most changes.
//! If B reads another data layout, `CARNET_BENCH_AB_PREPARE='<shell command>'` gives B a copy of
//! the data directory, first passed to the command (as its last argument) to convert: e.g.
//! `scripts/bench-traces-in-main` for a build from before the traces had a file of their own.
#![allow(clippy::disallowed_methods)] // tests and benches read the clock and the environment

#[path = "support/http1.rs"]
mod http1;
#[path = "support/mod.rs"]
mod support;

use http1::{Conn, Response};

use futures::StreamExt;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use carnet_domain::access::{Actor, Category, Context, PracticeRole, ProfessionalId};
use carnet_domain::roster::RawRosterLine;
use carnet_domain::{Clock, Event, HolderId, SystemClock};
use carnet_store::datadir::{StoreSettings, open_store};
use carnet_store::directory::Professional;
use carnet_store::documents::NewDocument;
use carnet_store::gate::Gate;
use carnet_store::roster::RosterOutcome;

const BIN: &str = env!("CARGO_BIN_EXE_carnet");
const RPPS: &str = "10000000099";
const ACTIVE: usize = 2000;
const DOCS: usize = 5;

fn env_or(k: &str, d: u64) -> u64 {
    std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d)
}

fn ins_for(n: u64) -> String {
    let nir = format!("1{:012}", 800_175_000_000 + n);
    let k = 97 - nir.parse::<u64>().unwrap_or(0) % 97;
    format!("{nir}{k:02}")
}

struct Data {
    holders: Vec<HolderId>,
    docs: Vec<String>,
}

async fn build(data: &std::path::Path, n: u64) -> Data {
    let store = open_store(&StoreSettings::new(data), Arc::new(SystemClock))
        .await
        .expect("open store");
    let t = Instant::now();
    let now = SystemClock.now();
    let mut ids = Vec::new();
    for start in (0..n).step_by(1000) {
        let batch: Vec<_> = (start..(start + 1000).min(n))
            .map(|i| {
                RawRosterLine {
                    ins: ins_for(i),
                    birth_name: format!("BENCH{i}"),
                    given_names: "Alex".into(),
                    sex: "U".into(),
                    birth_date: "1980-01-01".into(),
                    ..RawRosterLine::default()
                }
                .validate(now)
                .expect("valid line")
            })
            .collect();
        for o in store.import_roster_batch(&batch).await.expect("import") {
            if let RosterOutcome::Created { id, .. } = o {
                ids.push(id);
            }
        }
    }
    println!(
        "setup: {} spaces imported in {:.1} s",
        ids.len(),
        t.elapsed().as_secs_f64()
    );
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
    let gate = Gate::new(
        store.clone(),
        carnet_domain::access::HabilitationMatrix::default_matrix(),
    );
    let pro = Actor::Professional {
        id: ProfessionalId(RPPS.into()),
        profession: "medecin".into(),
        role: PracticeRole::Care,
    };
    let t = Instant::now();
    let holders: Vec<HolderId> = ids
        .iter()
        .step_by((ids.len() / ACTIVE).max(1))
        .take(ACTIVE)
        .copied()
        .collect();
    let mut docs = Vec::new();
    for h in &holders {
        store.transition(*h, Event::Activate).await.expect("activate");
        gate.holder_side(*h, &Actor::Holder { id: *h })
            .await
            .expect("space")
            .expect("own space")
            .update_access_policy(|p| p.medecin_traitant = Some(ProfessionalId(RPPS.into())))
            .await
            .expect("policy");
        for d in 0..DOCS {
            let v = gate
                .deposit_document(
                    *h,
                    &pro,
                    NewDocument {
                        title: Some(format!("Compte rendu {d}")),
                        class: Some(Category::Reports),
                        mime: "text/plain".into(),
                        ..NewDocument::default()
                    },
                    format!("Compte rendu de consultation numéro {d}.").into_bytes(),
                    &Context::default(),
                )
                .await
                .expect("deposit");
            docs.push(carnet_fhir::resources::item_id(*h, *v.id.as_uuid()));
        }
    }
    println!(
        "setup: {} spaces activated with {} documents in {:.1} s",
        holders.len(),
        docs.len(),
        t.elapsed().as_secs_f64()
    );
    store.db().close().await;
    Data { holders, docs }
}

/// The server under load (its CPU time is read from `/proc` around each scenario).
static SERVER_PID: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// CPU seconds used so far by process `pid` (user + system) and by the whole machine (every
/// core, every process: the load generator shares them), from `/proc`; zeros where `/proc` is
/// missing. Less noisy than throughput between runs on a shared machine: what a request costs.
fn cpu_seconds(pid: u32) -> (f64, f64) {
    // Linux reports both in clock ticks of 1/100 s (USER_HZ) on every architecture we run on.
    const TICK: f64 = 0.01;
    let process = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // Fields after the command name (which may hold spaces) in parentheses.
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some(f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?)
        })
        .unwrap_or(0.0);
    let machine = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            let cpu = s.lines().next()?.strip_prefix("cpu ")?.to_string();
            let v: Vec<f64> = cpu.split_whitespace().filter_map(|x| x.parse().ok()).collect();
            // user nice system idle iowait irq softirq steal: busy = all but idle and iowait.
            Some(v.iter().take(8).sum::<f64>() - v.get(3)? - v.get(4)?)
        })
        .unwrap_or(0.0);
    (process * TICK, machine * TICK)
}

struct Report {
    name: &'static str,
    /// CPU seconds of the server and of the machine during the scenario.
    cpu: (f64, f64),
    lat: Vec<u128>,
    errors: u64,
    secs: f64,
    /// What one operation counts as (requests, or resources of a transaction), and its unit.
    per_op: f64,
    unit: &'static str,
}

impl Report {
    fn print(mut self) -> Summary {
        self.lat.sort_unstable();
        let n = self.lat.len();
        let p = |q: usize| {
            self.lat
                .get((n * q / 100).min(n.saturating_sub(1)))
                .copied()
                .unwrap_or(0)
        };
        let rate = n as f64 * self.per_op / self.secs;
        let per = |cpu: f64| cpu * 1e6 / (n as f64 * self.per_op).max(1.0);
        println!(
            "{:<44} {:>8.0} {}/s  p50 {:>6} µs  p99 {:>6} µs  ({} operations, {} errors; CPU per {}: server {:.0} µs, machine {:.0} µs)",
            self.name,
            rate,
            self.unit,
            p(50),
            p(99),
            n,
            self.errors,
            self.unit,
            per(self.cpu.0),
            per(self.cpu.1),
        );
        (self.name, rate, p(99), self.errors)
    }
}

/// Runs `clients` loops of `f` for `secs` seconds, each client on its own keep-alive connection
/// to the server of `base` (handed to `f` and back with whether the operation succeeded).
async fn drive<F, Fut>(name: &'static str, clients: usize, secs: u64, base: &str, f: F) -> Report
where
    F: Fn(Conn, usize, u64) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = (Conn, bool)> + Send,
{
    let stop = Arc::new(AtomicBool::new(false));
    let pid = SERVER_PID.load(Ordering::Relaxed);
    let cpu0 = cpu_seconds(pid);
    let t = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (f, stop, mut conn) = (f.clone(), stop.clone(), Conn::new(base));
        tasks.push(tokio::spawn(async move {
            let (mut lat, mut errors, mut i) = (Vec::new(), 0u64, 0u64);
            while !stop.load(Ordering::Relaxed) {
                let s = Instant::now();
                let (back, ok) = f(conn, c, i).await;
                conn = back;
                if ok {
                    lat.push(s.elapsed().as_micros());
                } else {
                    errors += 1;
                }
                i += 1;
            }
            (lat, errors)
        }));
    }
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, Ordering::Relaxed);
    let cpu1 = cpu_seconds(pid);
    let mut lat = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (l, e) = task.await.expect("client");
        lat.extend(l);
        errors += e;
    }
    Report {
        name,
        cpu: (cpu1.0 - cpu0.0, cpu1.1 - cpu0.1),
        lat,
        errors,
        secs: t.elapsed().as_secs_f64(),
        per_op: 1.0,
        unit: "req",
    }
}

impl Report {
    /// Counts each operation as `per_op` `unit`s (an operation of several requests, a Bundle).
    fn counting(self, per_op: f64, unit: &'static str) -> Self {
        Self { per_op, unit, ..self }
    }
}

/// Where the scenarios run: Carnet, or a peer FHIR server (issue 10, item 7).
#[derive(Clone)]
struct Target {
    /// The FHIR base URL.
    base: String,
    /// `Bearer …` (Carnet: the bench professional's token; the peer runs without auth).
    auth: Option<String>,
    patients: Arc<Vec<String>>,
    docs: Arc<Vec<String>>,
}

impl Target {
    /// `method` of `rest` (a path under the FHIR base, query included) with the caller's token,
    /// `extra` headers and a JSON `body`; `None` if the exchange failed.
    async fn call(
        &self,
        conn: &mut Conn,
        method: &str,
        rest: &str,
        extra: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Option<Response> {
        let mut h: Vec<(&str, &str)> = Vec::with_capacity(3 + extra.len());
        if let Some(a) = &self.auth {
            h.push(("authorization", a));
        }
        if body.is_some() {
            h.push(("content-type", "application/json"));
        }
        h.extend_from_slice(extra);
        // A server's root is `/`, never an empty request target (a transaction is POSTed there).
        let path = match format!("{}{rest}", base_path(&self.base)) {
            p if p.is_empty() => "/".to_string(),
            p => p,
        };
        conn.send(method, &path, &h, body).await.ok()
    }
}

/// The path of a base URL (`http://host:port/fhir` → `/fhir`; empty for a server's root).
fn base_path(base: &str) -> &str {
    let rest = base.strip_prefix("http://").unwrap_or(base);
    rest.find('/').map(|i| &rest[i..]).unwrap_or("")
}

/// Whether scenario `name` runs: `CARNET_BENCH_ONLY` is a comma-separated list of words, one of
/// which the name must contain (`read,search`); unset, every scenario runs.
fn wanted(name: &str) -> bool {
    match std::env::var("CARNET_BENCH_ONLY") {
        Ok(only) if !only.trim().is_empty() => only
            .split(',')
            .map(str::trim)
            .any(|w| !w.is_empty() && name.to_lowercase().contains(&w.to_lowercase())),
        _ => true,
    }
}

/// One scenario's result: name, throughput (in its unit per second), p99 in µs.
/// A scenario's name, rate, p99 (µs) and errors.
type Summary = (&'static str, f64, u128, u64);

/// The FHIR workload of issue 6, the same for Carnet and for a peer.
async fn scenarios(t: &Target, clients: usize, secs: u64) -> Vec<Summary> {
    let tt = Arc::new(t.clone());
    let base = t.base.as_str();
    let mut out = Vec::new();
    if wanted("read DocumentReference by id") {
        let tt = tt.clone();
        out.push(
            drive(
                "read DocumentReference by id",
                clients,
                secs,
                base,
                move |mut conn, c, i| {
                    let t = tt.clone();
                    async move {
                        let id = &t.docs[(c * 7919 + i as usize * 104_729) % t.docs.len()];
                        let ok = t
                            .call(&mut conn, "GET", &format!("/DocumentReference/{id}"), &[], None)
                            .await
                            .is_some_and(|r| r.status == 200 && !r.body.is_empty());
                        (conn, ok)
                    }
                },
            )
            .await
            .print(),
        );
    }
    if wanted("search DocumentReference?patient=") {
        let tt = tt.clone();
        out.push(
            drive(
                "search DocumentReference?patient=",
                clients,
                secs,
                base,
                move |mut conn, c, i| {
                    let t = tt.clone();
                    async move {
                        let p = &t.patients[(c * 31 + i as usize * 7) % t.patients.len()];
                        let ok = t
                            .call(
                                &mut conn,
                                "GET",
                                &format!("/DocumentReference?patient={p}"),
                                &[],
                                None,
                            )
                            .await
                            .is_some_and(|r| r.status == 200 && !r.body.is_empty());
                        (conn, ok)
                    }
                },
            )
            .await
            .print(),
        );
    }
    if wanted("create Observation + read it back") {
        let tt = tt.clone();
        out.push(
            drive("create Observation + read it back", clients, secs, base, move |mut conn, c, i| {
                let t = tt.clone();
                async move {
                    let p = &t.patients[(c * 131 + i as usize * 17) % t.patients.len()];
                    let obs = serde_json::json!({
                        "resourceType": "Observation", "status": "final",
                        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                        "subject": {"reference": format!("Patient/{p}")},
                        "effectiveDateTime": format!("2025-01-01T{:02}:{:02}:{:02}Z", (i / 3600) % 24, (i / 60) % 60, i % 60),
                        "valueQuantity": {"value": 60 + (i % 40), "unit": "/min", "code": "/min"}
                    });
                    let body = obs.to_string();
                    let Some(loc) = t.call(&mut conn, "POST", "/Observation", &[], Some(body.as_bytes())).await
                        .and_then(|r| location(&r, &t.base)) else {
                        return (conn, false);
                    };
                    let ok = t.call(&mut conn, "GET", &format!("/{loc}"), &[], None).await.is_some_and(|r| r.status == 200);
                    (conn, ok)
                }
            })
            .await
            .counting(2.0, "req")
            .print(),
        );
    }
    // A CRUD mix on the profile: create a Condition, read it, update it (If-Match), delete it.
    if wanted("CRUD Condition (4 requests per operation)") {
        let tt = tt.clone();
        out.push(
            drive("CRUD Condition (4 requests per operation)", clients, secs, base, move |mut conn, c, i| {
                let t = tt.clone();
                async move {
                    let p = &t.patients[(c * 257 + i as usize * 13) % t.patients.len()];
                    let mut cond = serde_json::json!({
                        "resourceType": "Condition",
                        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "J45"}], "text": "Asthme"},
                        "subject": {"reference": format!("Patient/{p}")}
                    });
                    let body = cond.to_string();
                    let Some(loc) = t.call(&mut conn, "POST", "/Condition", &[], Some(body.as_bytes())).await
                        .and_then(|r| location(&r, &t.base)) else {
                        return (conn, false);
                    };
                    let id = loc.trim_start_matches("Condition/").split('/').next().unwrap_or("").to_string();
                    let Some(etag) = t.call(&mut conn, "GET", &format!("/Condition/{id}"), &[], None).await
                        .filter(|r| r.status == 200)
                        .and_then(|r| r.header("etag").map(str::to_string)) else {
                        return (conn, false);
                    };
                    cond["id"] = serde_json::json!(id);
                    cond["note"] = serde_json::json!([{"text": "contrôlé"}]);
                    let body = cond.to_string();
                    let ok = t.call(&mut conn, "PUT", &format!("/Condition/{id}"), &[("if-match", &etag)], Some(body.as_bytes()))
                        .await.is_some_and(|r| r.status == 200);
                    let ok = ok && t.call(&mut conn, "DELETE", &format!("/Condition/{id}"), &[], None).await
                        .is_some_and(|r| (200..300).contains(&r.status));
                    (conn, ok)
                }
            })
            .await
            .counting(4.0, "req")
            .print(),
        );
    }
    // Transaction Bundles of 100 Observations for one patient (a device's or a lab's import).
    if wanted("transaction of 100 Observations") {
        let tt = tt.clone();
        out.push(
            drive("transaction of 100 Observations", clients, secs, base, move |mut conn, c, i| {
                let t = tt.clone();
                async move {
                    let p = &t.patients[(c * 521 + i as usize * 11) % t.patients.len()];
                    let entries: Vec<serde_json::Value> = (0..100u64)
                        .map(|k| {
                            let n = i * 100 + k;
                            serde_json::json!({"request": {"method": "POST", "url": "Observation"}, "resource": {
                                "resourceType": "Observation", "status": "final",
                                "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                                "subject": {"reference": format!("Patient/{p}")},
                                "effectiveDateTime": format!("2024-{:02}-{:02}T{:02}:{:02}:00Z", 1 + (n / 40_000) % 12, 1 + (n / 1440) % 28, (n / 60) % 24, n % 60),
                                "valueQuantity": {"value": 50 + (n % 60), "unit": "/min", "code": "/min"}}})
                        })
                        .collect();
                    let bundle = serde_json::json!({"resourceType": "Bundle", "type": "transaction", "entry": entries}).to_string();
                    let ok = t.call(&mut conn, "POST", "", &[], Some(bundle.as_bytes())).await.is_some_and(|r| r.status == 200);
                    (conn, ok)
                }
            })
            .await
            .counting(100.0, "resource")
            .print(),
        );
    }
    out
}

/// Starts `carnet serve` (binary `bin`) on `data` and returns it with its base URL.
fn serve(bin: &str, data: &str) -> (std::process::Child, String) {
    let mut server = Command::new(bin)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir", data])
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .spawn()
        .expect("serve");
    SERVER_PID.store(server.id(), Ordering::Relaxed);
    let base = support::listening_base(&mut server);
    (server, base)
}

/// `Type/id[/_history/v]` of a 201's `Location` (absolute or relative to `base`).
fn location(r: &Response, base: &str) -> Option<String> {
    if r.status != 201 {
        return None;
    }
    let l = r.header("location")?;
    Some(
        l.strip_prefix(base)
            .unwrap_or(l)
            .trim_start_matches('/')
            .to_string(),
    )
}

fn main() {
    let n = env_or("CARNET_BENCH_HOLDERS", 100_000);
    let clients = env_or("CARNET_BENCH_CLIENTS", 64) as usize;
    let secs = env_or("CARNET_BENCH_SECONDS", 10);
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
    let built = rt.block_on(build(&data, n));
    let out = Command::new(BIN)
        .args(["token", "professional", RPPS, "--data-dir", &d])
        .output()
        .expect("token");
    let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let patients: Arc<Vec<String>> = Arc::new(built.holders.iter().map(|h| h.to_string()).collect());
    let docs = Arc::new(built.docs);
    // A/B runs (`CARNET_BENCH_AB=<another carnet binary>`, `CARNET_BENCH_ROUNDS=N`): both
    // builds serve the same data in turn, A B B A A B ..., so that the drift of a shared
    // machine and the data's growth weigh on both alike.
    let mut bins = vec![BIN.to_string()];
    bins.extend(std::env::var("CARNET_BENCH_AB").ok().filter(|b| !b.is_empty()));
    let mut dirs = vec![d.clone(); bins.len()];
    if let (true, Ok(prepare)) = (bins.len() > 1, std::env::var("CARNET_BENCH_AB_PREPARE")) {
        let copy = dir.path().join("data-b");
        let ok = Command::new("cp")
            .arg("-a")
            .arg(&data)
            .arg(&copy)
            .status()
            .expect("cp");
        assert!(ok.success(), "copy of the data directory for B");
        let copy = copy.to_str().expect("utf-8 path").to_string();
        let ok = Command::new("sh")
            .args(["-c", &format!("{prepare} \"$1\""), "prepare", &copy])
            .status()
            .expect("CARNET_BENCH_AB_PREPARE");
        assert!(ok.success(), "CARNET_BENCH_AB_PREPARE failed");
        dirs[1] = copy;
    }
    let rounds = env_or("CARNET_BENCH_ROUNDS", 1).max(1) as usize;
    let mut runs: Vec<Vec<Vec<Summary>>> = vec![Vec::new(); bins.len()];
    for round in 0..rounds {
        let mut order: Vec<usize> = (0..bins.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for b in order {
            let (mut server, base) = serve(&bins[b], &dirs[b]);
            println!(
                "Carnet{}: {base}, {clients} clients, {secs} s per scenario",
                if bins.len() > 1 {
                    format!(" {} ({})", ["A", "B"][b], bins[b])
                } else {
                    String::new()
                }
            );
            let carnet = Target {
                base: format!("{base}/fhir"),
                auth: Some(format!("Bearer {token}")),
                patients: patients.clone(),
                docs: docs.clone(),
            };
            runs[b].push(rt.block_on(scenarios(&carnet, clients, secs)));
            let _ = server.kill();
            let _ = server.wait();
        }
    }
    if bins.len() > 1 {
        println!(
            "\n{:<44} {:>10} {:>10} {:>7}",
            "scenario (mean of rounds)", "A", "B", "B/A"
        );
        let mean = |b: usize, k: usize| runs[b].iter().map(|r| r[k].1).sum::<f64>() / runs[b].len() as f64;
        for (k, (name, ..)) in runs[0][0].iter().enumerate() {
            let (a, b) = (mean(0, k), mean(1, k));
            println!("{name:<44} {a:>10.0} {b:>10.0} {:>7.3}", b / a);
        }
    }
    let ours = runs.swap_remove(0).swap_remove(0);
    // Issue 10, item 7: the same workload against a peer, alone on the machine.
    let Ok(hfs) = std::env::var("CARNET_BENCH_PEER_HFS") else {
        println!(
            "(set CARNET_BENCH_PEER_HFS and CARNET_BENCH_PEER_DATA_DIR to compare with Helios FHIR Server: scripts/peer-helios)"
        );
        return;
    };
    let peer_data = std::env::var("CARNET_BENCH_PEER_DATA_DIR").expect("CARNET_BENCH_PEER_DATA_DIR");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let peer_base = format!("http://127.0.0.1:{port}");
    let db = dir.path().join("hfs.db");
    let mut peer = Command::new(&hfs)
        .args(["--port", &port.to_string(), "--host", "127.0.0.1"])
        .args(["--database-url", db.to_str().expect("utf-8 path")])
        .args([
            "--data-dir",
            &peer_data,
            "--base-url",
            &peer_base,
            "--log-level",
            "error",
        ])
        .stdout(Stdio::null())
        .spawn()
        .expect("start the peer (hfs)");
    SERVER_PID.store(peer.id(), Ordering::Relaxed);
    let theirs = rt.block_on(async {
        let peer = seed_peer(&peer_base, ACTIVE, DOCS).await;
        println!(
            "Helios FHIR Server ({hfs}): {peer_base}, SQLite, {} patients with {} DocumentReferences, no auth, no encryption, no trace",
            peer.patients.len(),
            peer.docs.len()
        );
        scenarios(&peer, clients, secs).await
    });
    let _ = peer.kill();
    let _ = peer.wait();
    println!(
        "\n{:<44} {:>12} {:>12} {:>7} {:>10} {:>10}",
        "scenario", "Carnet", "Helios", "ratio", "p99 C µs", "p99 H µs"
    );
    for ((name, c, cp99, ce), (_, h, hp99, he)) in ours.iter().zip(&theirs) {
        // A ratio only where both sides answered every request: otherwise the errors.
        let ratio = if *ce == 0 && *he == 0 && *h > 0.0 {
            format!("{:.2}", c / h)
        } else {
            format!("errors {ce}/{he}")
        };
        println!("{name:<44} {c:>12.0} {h:>12.0} {ratio:>7} {cp99:>10} {hp99:>10}");
    }
}

/// Creates `patients` Patients on the peer, each with `docs` DocumentReferences (the same
/// content as Carnet's), 16 at a time; waits for the peer to answer first.
async fn seed_peer(base: &str, patients: usize, docs: usize) -> Target {
    use base64::Engine;
    let http = reqwest::Client::new();
    for _ in 0..300 {
        if http
            .get(format!("{base}/metadata"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let t = Instant::now();
    let made: Vec<(String, Vec<String>)> = futures::stream::iter(0..patients)
        .map(|n| {
            let http = http.clone();
            async move {
                let patient = serde_json::json!({"resourceType": "Patient", "name": [{"family": format!("BENCH{n}"), "given": ["Alex"]}],
                    "gender": "unknown", "birthDate": "1980-01-01"});
                let r = http.post(format!("{base}/Patient")).json(&patient).send().await.expect("peer: create Patient");
                assert_eq!(r.status(), 201, "peer: Patient created");
                let l = r.headers().get("location").and_then(|l| l.to_str().ok()).expect("peer: Location");
                let l = l.strip_prefix(base).unwrap_or(l).trim_start_matches('/');
                let id = l.trim_start_matches("Patient/").split('/').next().unwrap_or("").to_string();
                let entries: Vec<serde_json::Value> = (0..docs).map(|d| serde_json::json!({
                    "request": {"method": "POST", "url": "DocumentReference"},
                    "resource": {"resourceType": "DocumentReference", "status": "current",
                        "subject": {"reference": format!("Patient/{id}")},
                        "description": format!("Compte rendu {d}"),
                        "category": [{"coding": [{"code": "reports"}]}],
                        "content": [{"attachment": {"contentType": "text/plain",
                            "data": base64::engine::general_purpose::STANDARD.encode(format!("Compte rendu de consultation numéro {d}."))}}]}})).collect();
                let r = http.post(base).json(&serde_json::json!({"resourceType": "Bundle", "type": "transaction", "entry": entries}))
                    .send().await.expect("peer: transaction");
                let v: serde_json::Value = r.json().await.expect("peer: transaction-response");
                // Each entry's id: from the resource returned, else from its location.
                let id_of = |e: &serde_json::Value| -> Option<String> {
                    if let Some(id) = e["resource"]["id"].as_str() {
                        return Some(id.to_string());
                    }
                    let l = e["response"]["location"].as_str()?;
                    let l = l.strip_prefix(base).unwrap_or(l).trim_start_matches('/');
                    l.strip_prefix("DocumentReference/").map(|x| x.split('/').next().unwrap_or("").to_string())
                };
                let ids: Vec<String> = v["entry"].as_array().map(|es| es.iter().filter_map(id_of).collect()).unwrap_or_default();
                (id, ids)
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let docs: Vec<String> = made.iter().flat_map(|(_, d)| d.clone()).collect();
    println!(
        "peer setup: {} patients, {} documents in {:.1} s",
        made.len(),
        docs.len(),
        t.elapsed().as_secs_f64()
    );
    assert!(!docs.is_empty(), "the peer created no DocumentReference");
    Target {
        base: base.to_string(),
        auth: None,
        patients: Arc::new(made.into_iter().map(|(p, _)| p).collect()),
        docs: Arc::new(docs),
    }
}
