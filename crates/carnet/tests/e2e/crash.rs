//! Crash test (issue 10, item 3; S-30, S-31): a write load of professionals' document deposits
//! (each one a decision, a trace, a notice, sealed rows and a blob), the server killed with
//! SIGKILL at random moments, restarted, again and again. Afterwards:
//! - every acknowledged deposit (201) is there, and its content is byte for byte what was sent
//!   (SHA-256 compared);
//! - no half-written deposit is visible: every document of the load that can be listed — the
//!   acknowledged ones and those in flight when the server died — opens to the full content
//!   that was sent for it;
//! - the access traces verify (`carnet verify-traces`: hash chains and signed checkpoints), and
//!   every acknowledged deposit has its trace, which is the holder's notice (AC-6).
//!
//! `CARNET_CRASH_KILLS` sets the number of kills (12 by default, so CI stays fast);
//! `CARNET_CRASH_KILLS=200 cargo test -p carnet --test e2e crash:: -- --nocapture` is the full run
//! recorded in RELIABILITY.md.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::Value;

const PETIT: &str = "10000000002"; // granted by Camille in the demo data

fn body_of(key: &str) -> Vec<u8> {
    // Several KiB, so a deposit spans many writes (blob, rows) that a kill can cut.
    format!("crash-test {key}\n").repeat(400).into_bytes()
}

fn sha(b: &[u8]) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, b);
    d.as_ref().iter().map(|x| format!("{x:02x}")).collect()
}

/// A random number from the system's UUID generator (no extra dependency).
fn random_below(n: u64) -> u64 {
    (uuid::Uuid::new_v4().as_u128() % u128::from(n)) as u64
}

fn token(args: &[&str]) -> String {
    let out = run(args, &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_deposits_survive_repeated_kill_9_s30() {
    let kills: u32 = std::env::var("CARNET_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12);
    let (_t, data) = fresh_dir();
    let d = data.to_str().unwrap().to_string();
    // The demo's data (Camille, Dr PETIT with her grant), then a plain server on it.
    let camille = {
        let demo = start_demo(&data);
        let c = client();
        let pro = pro_token(&c, &demo.base, PETIT).await;
        let v: Value = post(
            &c,
            &format!("{}/api/v1/pro/patients/lookup", demo.base),
            As::Bearer(&pro),
            &serde_json::json!({"ins": camille_ins()}),
        )
        .await
        .json()
        .await
        .unwrap();
        v["patient"].as_str().expect("Camille's space").to_string()
    };
    let pro = token(&["token", "professional", PETIT, "--data-dir", &d]);
    let c = client();
    let started = Instant::now();
    let mut acked: BTreeMap<String, String> = BTreeMap::new(); // document id -> key
    let mut attempted: BTreeSet<String> = BTreeSet::new();
    for round in 0..kills {
        let server = Server::start(&data, &[], &[]);
        let base = server.base.clone();
        let mut tasks = Vec::new();
        for w in 0..4 {
            let (c, base, pro, camille) = (c.clone(), base.clone(), pro.clone(), camille.clone());
            tasks.push(tokio::spawn(async move {
                let mut tried = Vec::new();
                let mut ok = Vec::new();
                for i in 0.. {
                    let key = format!("r{round}-w{w}-{i}");
                    tried.push(key.clone());
                    let r = c
                        .post(format!(
                            "{base}/api/v1/pro/patients/{camille}/documents?title=crash-{key}&class=reports"
                        ))
                        .bearer_auth(&pro)
                        .header("content-type", "text/plain")
                        .body(body_of(&key))
                        .send()
                        .await;
                    match r {
                        Ok(r) if r.status() == 201 => match r.json::<Value>().await {
                            Ok(v) => ok.push((v["id"].as_str().unwrap_or_default().to_string(), key)),
                            Err(_) => break,
                        },
                        Ok(r) => panic!(
                            "deposit refused: {} {}",
                            r.status(),
                            r.text().await.unwrap_or_default()
                        ),
                        Err(_) => break, // the server died under us
                    }
                }
                (tried, ok)
            }));
        }
        tokio::time::sleep(Duration::from_millis(30 + random_below(700))).await;
        server.kill9();
        for t in tasks {
            let (tried, ok) = t.await.unwrap();
            attempted.extend(tried);
            acked.extend(ok);
        }
    }
    assert!(
        acked.len() as u32 >= kills,
        "the load wrote too little to mean anything: {} acknowledged",
        acked.len()
    );

    // Everything acknowledged is there and intact; nothing half-written is visible.
    let server = Server::start(&data, &[], &[]);
    let base = server.base.clone();
    let docs = format!("{base}/api/v1/pro/patients/{camille}/documents");
    let content = |id: String| {
        let (c, docs, pro) = (c.clone(), docs.clone(), pro.clone());
        async move {
            let r = get(&c, &format!("{docs}/{id}/content"), As::Bearer(&pro)).await;
            (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
        }
    };
    for (id, key) in &acked {
        let (status, bytes) = content(id.clone()).await;
        assert_eq!(
            status, 200,
            "acknowledged deposit {key} ({id}) lost after kill -9"
        );
        assert_eq!(
            sha(&bytes),
            sha(&body_of(key)),
            "acknowledged deposit {key} altered"
        );
    }
    let mut listed = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let url = match &before {
            Some(b) => format!("{docs}?limit=100&before={b}"),
            None => format!("{docs}?limit=100"),
        };
        let v: Value = get(&c, &url, As::Bearer(&pro)).await.json().await.unwrap();
        let page = v["documents"].as_array().cloned().unwrap_or_default();
        for doc in &page {
            if let Some(key) = doc["title"].as_str().and_then(|t| t.strip_prefix("crash-")) {
                listed.push((doc["id"].as_str().unwrap().to_string(), key.to_string()));
            }
        }
        match v["next_before"].as_str() {
            Some(b) if !page.is_empty() && before.as_deref() != Some(b) => before = Some(b.to_string()),
            _ => break,
        }
    }
    for (id, key) in &listed {
        assert!(attempted.contains(key), "a document nobody sent: {key}");
        let (status, bytes) = content(id.clone()).await;
        assert_eq!(status, 200, "listed but unreadable: {key} ({id})");
        assert_eq!(
            sha(&bytes),
            sha(&body_of(key)),
            "a half-written deposit is visible: {key}"
        );
    }
    let listed_ids: BTreeSet<&String> = listed.iter().map(|(id, _)| id).collect();
    for id in acked.keys() {
        assert!(
            listed_ids.contains(id),
            "acknowledged {id} missing from the listing"
        );
    }

    // The holder's traces: every acknowledged deposit has its trace (her notice), and the
    // chains and checkpoints verify.
    let holder = token(&["token", "holder", &camille_ins(), "--data-dir", &d]);
    let mut traced = 0usize;
    let mut before: Option<String> = None;
    loop {
        let url = match &before {
            Some(b) => format!("{base}/api/v1/me/traces?limit=200&before={b}"),
            None => format!("{base}/api/v1/me/traces?limit=200"),
        };
        let v: Value = get(&c, &url, As::Cookie(&format!("__Host-carnet_session={holder}")))
            .await
            .json()
            .await
            .unwrap();
        let list = v["traces"].as_array().cloned().unwrap_or_default();
        traced += list
            .iter()
            .filter(|t| t["action"] == "create" && t["allowed"] == true && t.to_string().contains(PETIT))
            .count();
        match v["next_before"].as_i64() {
            Some(seq) => before = Some(seq.to_string()),
            None => break,
        }
    }
    assert!(
        traced >= acked.len(),
        "{traced} deposit traces for {} acknowledged deposits",
        acked.len()
    );
    drop(server);
    let out = run(&["verify-traces", "--data-dir", &d], &[]);
    assert!(
        out.status.success(),
        "traces do not verify after the kills: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    eprintln!(
        "crash test: {kills} kills survived in {:.0} s; {} acknowledged deposits intact, {} attempted, \
         {} listed (all complete), {traced} deposit traces, traces verified",
        started.elapsed().as_secs_f64(),
        acked.len(),
        attempted.len(),
        listed.len()
    );
}
