//! Mixed load over HTTP (issue 10, item 2): `cargo bench -p carnet --bench mixed_load`.
//!
//! Fills a fresh data directory with `carnet bench populate` (`CARNET_BENCH_HOLDERS`, default
//! 100,000; one in 50 with records), or PostgreSQL when `CARNET_BENCH_DATABASE_URL` (+
//! `CARNET_BENCH_KEYS_URL`) is set; starts the real server (`carnet serve`, release build, jobs
//! every second) and drives it over loopback with `CARNET_BENCH_CLIENTS` concurrent clients
//! (default 64; the target run is 256) for `CARNET_BENCH_SECONDS` (default 30; the target run
//! is 600, at `CARNET_BENCH_RATE=3000`: BENCHMARKS.md, the mixed load), each request drawn from the
//! mix:
//!
//! | share | who | request |
//! |---|---|---|
//! | 10 % | a professional | deposits a 16 KiB document in a patient's space |
//! | 15 % | a professional | lists a patient's documents (JSON API) |
//! | 30 % | a holder (session) | lists their documents, then downloads one (two requests, each measured) |
//! | 10 % | a holder | reads their access history |
//! | 20 % | a FHIR client | searches `DocumentReference?patient=` |
//! | 15 % | a FHIR client | reads `Patient/{id}` |
//!
//! Each client is a keep-alive connection of the small HTTP/1.1 client of `support/http1.rs`
//! (light as `wrk`: the 2 cores go to the server; reqwest's took about a fifth of the machine),
//! reading every response whole.
//!
//! By default each client sends its next request as soon as the previous one is answered (a
//! closed loop: the server is saturated and latency is mostly queueing). With
//! `CARNET_BENCH_RATE=R` the clients send R requests/s in all on a fixed schedule (an open
//! loop, as `wrk2`): each request's latency counts from the moment it was due, so a server that
//! falls behind is charged for the wait (no coordinated omission). Run at increasing rates to
//! find the throughput at which p99 stays under a bound. `CARNET_BENCH_SERVER_LOG` sets the
//! server's `RUST_LOG` (default `error`; `carnet_store=info` adds the document cache's report
//! each minute: entries, size, hits, misses, evictions).
//!
//! Against a deployment (the drill, `scripts/drill`): `CARNET_BENCH_BASE=http://lb:port` sends the
//! load there instead of starting a server (no populate: the deployment is filled beforehand;
//! tokens made with `carnet token` on `CARNET_BENCH_DATA_DIR` and the database flags), each
//! request bounded by 40 s (a hang counts as status 0), a 503 without `Retry-After` counted as
//! status 1503, every request written to `CARNET_BENCH_EVENTS` (`ms kind status`, after a line
//! `# start_unix_ms N`), and after the load every acknowledged deposit read back and compared
//! with the bytes sent (`acknowledged writes: N, intact: N, lost: 0`).
//!
//! Prints, per kind and overall (every HTTP request counted and measured on its own):
//! requests/s, p50/p95/p99, errors by status (5xx apart), and the
//! server's resident memory at idle and at its peak under load (`/proc/PID/status`). Not a test:
//! no assertion on time; figures go to BENCHMARKS.md.
#![allow(clippy::disallowed_methods)] // tests and benches read the clock and the environment

// This bench reads statuses and bodies, not headers.
#[allow(dead_code)]
#[path = "support/http1.rs"]
mod http1;
#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_carnet");
const RPPS: &str = "10000000099";
const EVERY: u64 = 50;
const SESSIONS: u64 = 200;
/// A 503 without `Retry-After`, in the error counts (the drill requires the header).
const NO_RETRY_AFTER: u16 = 1503;
/// The longest a request may take before the drill counts it as hung (status 0): the server's
/// request timeout (30 s) and a margin.
const HUNG: Duration = Duration::from_secs(40);

/// The body of client `c`'s `i`-th deposit (regenerated to check it after the load).
fn deposit_body(c: usize, i: u64) -> Vec<u8> {
    format!("Compte rendu de charge {c}-{i}. ")
        .repeat(500)
        .into_bytes()
}

/// `send` bounded by [`HUNG`]; a hung connection is dropped.
async fn send(
    conn: &mut http1::Conn,
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> std::io::Result<http1::Response> {
    match tokio::time::timeout(HUNG, conn.send(method, path, headers, body)).await {
        Ok(r) => r,
        Err(_) => {
            *conn = http1::Conn::new(base);
            Err(std::io::ErrorKind::TimedOut.into())
        }
    }
}

fn env_or(k: &str, d: u64) -> u64 {
    std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d)
}

/// The INS `carnet bench populate` gives to its n-th holder (`crates/carnet/src/bench.rs`).
fn bench_ins(n: u64) -> String {
    let nir = format!("1{:02}0699{:06}", 30 + (n / 1_000_000) % 70, n % 1_000_000);
    let key = 97 - nir.parse::<u64>().unwrap_or(0) % 97;
    format!("{nir}{key:02}")
}

/// A line of `/proc/PID/status` in KiB (`VmRSS`, `RssAnon`: the process's own memory,
/// `RssFile`: mapped files — the binary and SQLite's memory-mapped database pages, shared with
/// the page cache and reclaimable).
fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmRSS:")
}

#[derive(Default)]
struct Kind {
    lat: Vec<u128>,
    errors: BTreeMap<u16, u64>,
}

/// One answered request: its latency if it succeeded, its status (0: no answer) if not.
fn record(
    kinds: &mut BTreeMap<&'static str, Kind>,
    kind: &'static str,
    status: std::io::Result<u16>,
    t: Instant,
) {
    let k = kinds.entry(kind).or_default();
    match status {
        Ok(s) if (200..300).contains(&s) => k.lat.push(t.elapsed().as_micros()),
        Ok(s) => *k.errors.entry(s).or_default() += 1,
        Err(_) => *k.errors.entry(0).or_default() += 1,
    }
}

fn pct(sorted: &[u128], q: usize) -> u128 {
    sorted
        .get((sorted.len() * q / 100).min(sorted.len().saturating_sub(1)))
        .copied()
        .unwrap_or(0)
}

fn main() {
    let n = env_or("CARNET_BENCH_HOLDERS", 100_000);
    let clients = env_or("CARNET_BENCH_CLIENTS", 64) as usize;
    let secs = env_or("CARNET_BENCH_SECONDS", 30);
    // Open loop: one client's requests are due every `clients / rate` seconds.
    let interval = match env_or("CARNET_BENCH_RATE", 0) {
        0 => None,
        rate => Some(Duration::from_secs_f64(clients as f64 / rate as f64)),
    };
    let external = std::env::var("CARNET_BENCH_BASE").ok();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = match (&external, std::env::var("CARNET_BENCH_DATA_DIR")) {
        (Some(_), Ok(d)) => d,
        (Some(_), Err(_)) => panic!("CARNET_BENCH_BASE needs CARNET_BENCH_DATA_DIR"),
        (None, _) => {
            let data = dir.path().join("data");
            std::fs::create_dir(&data).expect("mkdir");
            data.to_str().expect("utf-8 path").to_string()
        }
    };
    let mut db_args: Vec<String> = Vec::new();
    if let Ok(url) = std::env::var("CARNET_BENCH_DATABASE_URL") {
        db_args.extend(["--database-url".into(), url]);
        if let Ok(keys) = std::env::var("CARNET_BENCH_KEYS_URL") {
            db_args.extend(["--keys-url".into(), keys]);
        }
    }
    let carnet = |args: &[&str]| {
        let out = Command::new(BIN)
            .args(args)
            .args(["--data-dir", &d])
            .args(&db_args)
            .env("RUST_LOG", "error")
            .output()
            .expect("carnet");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    if external.is_none() {
        carnet(&["init"]);
        let t = Instant::now();
        let populated = carnet(&[
            "bench",
            "populate",
            "--holders",
            &n.to_string(),
            "--every",
            &EVERY.to_string(),
        ]);
        print!("{populated}");
        println!("populate: {:.1} s in all", t.elapsed().as_secs_f64());
    }
    let pro = carnet(&["token", "professional", RPPS]).trim().to_string();
    let with_records: Vec<u64> = (0..n).step_by(EVERY as usize).collect();
    let sessions: Vec<String> = with_records
        .iter()
        .take(SESSIONS as usize)
        .map(|i| carnet(&["token", "holder", &bench_ins(*i)]).trim().to_string())
        .collect();
    let mut server = external.is_none().then(|| {
        Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir", &d])
            .args(&db_args)
            // The server's log on stderr (e.g. `carnet_store=info` for the document cache's
            // minute reports); errors only by default.
            .env(
                "RUST_LOG",
                std::env::var("CARNET_BENCH_SERVER_LOG").unwrap_or_else(|_| "error".into()),
            )
            .env("CARNET_JOB_INTERVAL_SECONDS", "1")
            .stdout(Stdio::piped())
            .spawn()
            .expect("serve")
    });
    // Memory is sampled only for a server of this process's own.
    let pid = server.as_ref().map_or(0, |s| s.id());
    let base = match (&external, server.as_mut()) {
        (Some(b), _) => b.trim_end_matches('/').to_string(),
        (None, Some(s)) => support::listening_base(s),
        (None, None) => unreachable!("a server is started without CARNET_BENCH_BASE"),
    };
    let events_path = std::env::var("CARNET_BENCH_EVENTS").ok();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async move {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(clients)
            .build()
            .expect("client");
        // The spaces with records, as their ids (the professional looks them up by INS).
        let mut patients = Vec::new();
        for i in with_records.iter().take(500) {
            let v: serde_json::Value = http
                .post(format!("{base}/api/v1/pro/patients/lookup"))
                .bearer_auth(&pro)
                .json(&serde_json::json!({"ins": bench_ins(*i)}))
                .send()
                .await
                .expect("lookup")
                .json()
                .await
                .expect("lookup json");
            patients.push(v["patient"].as_str().expect("patient").to_string());
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let idle = rss_kib(pid);
        println!(
            "server: {base}, {} holders, {clients} clients, {secs} s, {}, idle RSS {:.1} MiB \
             (anonymous {:.1} MiB, mapped files {:.1} MiB)",
            n,
            match interval {
                Some(d) => format!("open loop at {:.0} req/s", clients as f64 / d.as_secs_f64()),
                None => "closed loop".to_string(),
            },
            idle as f64 / 1024.0,
            status_kib(pid, "RssAnon:") as f64 / 1024.0,
            status_kib(pid, "RssFile:") as f64 / 1024.0
        );
        let (patients, sessions) = (Arc::new(patients), Arc::new(sessions));
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(idle));
        let peak_anon = Arc::new(AtomicU64::new(status_kib(pid, "RssAnon:")));
        let sampler = {
            let (stop, peak, peak_anon) = (stop.clone(), peak.clone(), peak_anon.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    peak.fetch_max(rss_kib(pid), Ordering::Relaxed);
                    peak_anon.fetch_max(status_kib(pid, "RssAnon:"), Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            })
        };
        let started = Instant::now();
        // Throughput over the run, in ten windows: whether the cost of a request stays flat
        // as the spaces fill up.
        let done = Arc::new(AtomicU64::new(0));
        let reporter = {
            let (stop, done) = (stop.clone(), done.clone());
            let window = Duration::from_secs((secs / 10).max(5));
            tokio::spawn(async move {
                let mut last = 0;
                loop {
                    tokio::time::sleep(window).await;
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let now = done.load(Ordering::Relaxed);
                    println!(
                        "  at {:>4.0} s: {:>6.0} req/s over the last {} s",
                        started.elapsed().as_secs_f64(),
                        (now - last) as f64 / window.as_secs_f64(),
                        window.as_secs()
                    );
                    last = now;
                }
            })
        };
        let mut tasks = Vec::new();
        for c in 0..clients {
            let done = done.clone();
            let (base, pro, patients, sessions, stop) = (
                base.clone(),
                pro.clone(),
                patients.clone(),
                sessions.clone(),
                stop.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let mut kinds: BTreeMap<&'static str, Kind> = BTreeMap::new();
                // Every request (ms since the start, kind, status) and the acknowledged deposits
                // (patient, document id, request number).
                let mut events: Vec<(u32, &'static str, u16)> = Vec::new();
                let mut acknowledged: Vec<(String, String, u64)> = Vec::new();
                let mut i: u64 = 0;
                // Each client on its own keep-alive connection (the light client of the FHIR
                // bench: the 2 cores go to the server, not to the load generator).
                let mut conn = http1::Conn::new(&base);
                let bearer = format!("Bearer {pro}");
                let auth = [("authorization", bearer.as_str())];
                // Open loop: clients staggered over one interval.
                let mut due = interval.map(|d| started + d.mul_f64(c as f64 / clients as f64));
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    if let (Some(at), Some(d)) = (due.as_mut(), interval) {
                        tokio::time::sleep_until((*at).into()).await;
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        *at += d;
                    }
                    let r = (c as u64 * 7919 + i * 104_729) % 100;
                    let p = &patients[(c * 31 + i as usize * 7) % patients.len()];
                    let session = &sessions[(c * 17 + i as usize) % sessions.len()];
                    let cookie = format!("__Host-carnet_session={session}");
                    let holder = [("cookie", cookie.as_str())];
                    // Latency counts from when the request was due (open loop) or sent.
                    let mut t = due.map_or_else(Instant::now, |next| next - interval.unwrap_or_default());
                    let status = |r: std::io::Result<http1::Response>| {
                        r.map(|r| match r.status {
                            503 if r.header("retry-after").is_none() => NO_RETRY_AFTER,
                            s => s,
                        })
                    };
                    let (kind, status) = match r {
                        0..=9 => {
                            let body = deposit_body(c, i);
                            let s = send(
                                &mut conn,
                                &base,
                                "POST",
                                &format!("/api/v1/pro/patients/{p}/documents?title=charge&class=reports"),
                                &[auth[0], ("content-type", "text/plain")],
                                Some(&body),
                            )
                            .await;
                            if let Ok(r) = &s
                                && r.status == 201
                            {
                                let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
                                if let Some(id) = v["id"].as_str() {
                                    acknowledged.push((p.clone(), id.to_string(), i));
                                }
                            }
                            ("pro deposits a document", status(s))
                        }
                        10..=24 => (
                            "pro lists a patient's documents",
                            status(send(&mut conn, &base, "GET", &format!("/api/v1/pro/patients/{p}/documents?limit=20"), &auth, None).await),
                        ),
                        25..=54 => {
                            // Two requests, each measured on its own (one entry for the pair
                            // would report the sum of both latencies).
                            match send(&mut conn, &base, "GET", "/api/v1/me/documents?limit=10", &holder, None).await {
                                Ok(r) if r.status == 200 => {
                                    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
                                    match v["documents"][0]["id"].as_str() {
                                        Some(id) => {
                                            record(&mut kinds, "holder lists their documents", Ok(200), t);
                                            events.push((started.elapsed().as_millis() as u32, "holder lists their documents", 200));
                                            done.fetch_add(1, Ordering::Relaxed);
                                            t = Instant::now();
                                            let s = send(&mut conn, &base, "GET", &format!("/api/v1/me/documents/{id}/content"), &holder, None)
                                                .await;
                                            ("holder downloads a document", status(s))
                                        }
                                        None => ("holder lists their documents", Ok(200)),
                                    }
                                }
                                other => ("holder lists their documents", status(other)),
                            }
                        }
                        55..=64 => (
                            "holder reads their history",
                            status(send(&mut conn, &base, "GET", "/api/v1/me/traces?limit=20", &holder, None).await),
                        ),
                        65..=84 => (
                            "FHIR DocumentReference?patient=",
                            status(send(&mut conn, &base, "GET", &format!("/fhir/DocumentReference?patient={p}"), &auth, None).await),
                        ),
                        _ => (
                            "FHIR Patient/{id}",
                            status(send(&mut conn, &base, "GET", &format!("/fhir/Patient/{p}"), &auth, None).await),
                        ),
                    };
                    done.fetch_add(1, Ordering::Relaxed);
                    events.push((
                        started.elapsed().as_millis() as u32,
                        kind,
                        *status.as_ref().unwrap_or(&0),
                    ));
                    record(&mut kinds, kind, status, t);
                }
                (kinds, events, acknowledged)
            }));
        }
        tokio::time::sleep(Duration::from_secs(secs)).await;
        stop.store(true, Ordering::Relaxed);
        let mut all: BTreeMap<&'static str, Kind> = BTreeMap::new();
        let (mut events, mut acknowledged) = (Vec::new(), Vec::new());
        for (c, t) in tasks.into_iter().enumerate() {
            let (kinds, e, a) = t.await.expect("client");
            events.extend(e);
            acknowledged.extend(a.into_iter().map(|(p, id, i)| (p, id, c, i)));
            for (name, k) in kinds {
                let e = all.entry(name).or_default();
                e.lat.extend(k.lat);
                for (s, n) in k.errors {
                    *e.errors.entry(s).or_default() += n;
                }
            }
        }
        let _ = sampler.await;
        let _ = reporter.await;
        let elapsed = started.elapsed().as_secs_f64();
        let mut total: Vec<u128> = Vec::new();
        let (mut errors, mut fivexx) = (0u64, 0u64);
        for (name, mut k) in all {
            k.lat.sort_unstable();
            let e: u64 = k.errors.values().sum();
            errors += e;
            fivexx += k.errors.iter().filter(|(s, _)| **s >= 500 || **s == 0).map(|(_, n)| n).sum::<u64>();
            println!(
                "{name:<34} {:>7.0} req/s  p50 {:>6} µs  p95 {:>6} µs  p99 {:>6} µs  errors {:?}",
                k.lat.len() as f64 / elapsed,
                pct(&k.lat, 50),
                pct(&k.lat, 95),
                pct(&k.lat, 99),
                k.errors
            );
            total.extend(k.lat);
        }
        total.sort_unstable();
        println!(
            "{:<34} {:>7.0} req/s  p50 {:>6} µs  p95 {:>6} µs  p99 {:>6} µs  {errors} errors ({fivexx} 5xx or transport)",
            "ALL",
            total.len() as f64 / elapsed,
            pct(&total, 50),
            pct(&total, 95),
            pct(&total, 99),
        );
        if pid != 0 {
            println!(
                "server RSS: idle {:.1} MiB, peak under load {:.1} MiB (anonymous: peak {:.1} MiB)",
                idle as f64 / 1024.0,
                peak.load(Ordering::Relaxed) as f64 / 1024.0,
                peak_anon.load(Ordering::Relaxed) as f64 / 1024.0
            );
        }
        if let Some(path) = events_path {
            events.sort_unstable_by_key(|e| e.0);
            let start_unix_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis())
                - started.elapsed().as_millis();
            let mut out = format!("# start_unix_ms {start_unix_ms}\n");
            for (ms, kind, status) in &events {
                out.push_str(&format!("{ms} {status} {kind}\n"));
            }
            std::fs::write(&path, out).expect("events file");
        }
        if external.is_some() {
            verify_deposits(&base, &pro, &acknowledged).await;
        }
    });
    if let Some(mut server) = server {
        let _ = server.kill();
        let _ = server.wait();
    }
}

/// Reads every acknowledged deposit back (as the professional who made it) and compares it
/// with the bytes sent: the drill's "every acknowledged write is there".
async fn verify_deposits(base: &str, pro: &str, acknowledged: &[(String, String, usize, u64)]) {
    let bearer = format!("Bearer {pro}");
    let mut conn = http1::Conn::new(base);
    let (mut intact, mut lost, mut altered) = (0u64, Vec::new(), 0u64);
    for (p, id, c, i) in acknowledged {
        let path = format!("/api/v1/pro/patients/{p}/documents/{id}/content");
        // A request the load balancer refuses in passing is asked again, a few times.
        let mut got = None;
        for _ in 0..5 {
            match send(&mut conn, base, "GET", &path, &[("authorization", &bearer)], None).await {
                Ok(r) if r.status == 200 || r.status == 404 => {
                    got = Some(r);
                    break;
                }
                _ => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
        match got {
            Some(r) if r.status == 200 && r.body == deposit_body(*c, *i) => intact += 1,
            Some(r) if r.status == 200 => altered += 1,
            _ => lost.push(id.clone()),
        }
    }
    println!(
        "acknowledged writes: {}, intact: {intact}, altered: {altered}, lost: {}{}",
        acknowledged.len(),
        lost.len(),
        if lost.is_empty() {
            String::new()
        } else {
            format!(" {lost:?}")
        }
    );
}
