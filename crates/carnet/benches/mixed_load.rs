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
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    std::fs::create_dir(&data).expect("mkdir");
    let d = data.to_str().expect("utf-8 path").to_string();
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
    let pro = carnet(&["token", "professional", RPPS]).trim().to_string();
    let with_records: Vec<u64> = (0..n).step_by(EVERY as usize).collect();
    let sessions: Vec<String> = with_records
        .iter()
        .take(SESSIONS as usize)
        .map(|i| carnet(&["token", "holder", &bench_ins(*i)]).trim().to_string())
        .collect();
    let mut server = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir", &d])
        .args(&db_args)
        // The server's log on stderr (e.g. `carnet_store=info` for the document cache's minute
        // reports); errors only by default.
        .env(
            "RUST_LOG",
            std::env::var("CARNET_BENCH_SERVER_LOG").unwrap_or_else(|_| "error".into()),
        )
        .env("CARNET_JOB_INTERVAL_SECONDS", "1")
        .stdout(Stdio::piped())
        .spawn()
        .expect("serve");
    let pid = server.id();
    let base = support::listening_base(&mut server);
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
                    let status = |r: std::io::Result<http1::Response>| r.map(|r| r.status);
                    let (kind, status) = match r {
                        0..=9 => {
                            let body = format!("Compte rendu de charge {c}-{i}. ").repeat(500);
                            let s = conn
                                .send(
                                    "POST",
                                    &format!("/api/v1/pro/patients/{p}/documents?title=charge&class=reports"),
                                    &[auth[0], ("content-type", "text/plain")],
                                    Some(body.as_bytes()),
                                )
                                .await;
                            ("pro deposits a document", status(s))
                        }
                        10..=24 => (
                            "pro lists a patient's documents",
                            status(conn.send("GET", &format!("/api/v1/pro/patients/{p}/documents?limit=20"), &auth, None).await),
                        ),
                        25..=54 => {
                            // Two requests, each measured on its own (one entry for the pair
                            // would report the sum of both latencies).
                            match conn.send("GET", "/api/v1/me/documents?limit=10", &holder, None).await {
                                Ok(r) if r.status == 200 => {
                                    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
                                    match v["documents"][0]["id"].as_str() {
                                        Some(id) => {
                                            record(&mut kinds, "holder lists their documents", Ok(200), t);
                                            done.fetch_add(1, Ordering::Relaxed);
                                            t = Instant::now();
                                            let s = conn
                                                .send("GET", &format!("/api/v1/me/documents/{id}/content"), &holder, None)
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
                            status(conn.send("GET", "/api/v1/me/traces?limit=20", &holder, None).await),
                        ),
                        65..=84 => (
                            "FHIR DocumentReference?patient=",
                            status(conn.send("GET", &format!("/fhir/DocumentReference?patient={p}"), &auth, None).await),
                        ),
                        _ => (
                            "FHIR Patient/{id}",
                            status(conn.send("GET", &format!("/fhir/Patient/{p}"), &auth, None).await),
                        ),
                    };
                    done.fetch_add(1, Ordering::Relaxed);
                    record(&mut kinds, kind, status, t);
                }
                kinds
            }));
        }
        tokio::time::sleep(Duration::from_secs(secs)).await;
        stop.store(true, Ordering::Relaxed);
        let mut all: BTreeMap<&'static str, Kind> = BTreeMap::new();
        for t in tasks {
            for (name, k) in t.await.expect("client") {
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
        println!(
            "server RSS: idle {:.1} MiB, peak under load {:.1} MiB (anonymous: peak {:.1} MiB)",
            idle as f64 / 1024.0,
            peak.load(Ordering::Relaxed) as f64 / 1024.0,
            peak_anon.load(Ordering::Relaxed) as f64 / 1024.0
        );
    });
    let _ = server.kill();
    let _ = server.wait();
}
