//! Fault tests (issue 10, item 4; S-30): the disk fills up, the database becomes unreachable
//! for a while, the blob store fails. Each time the server answers with a clear status and
//! message (507 "storage is full", 503 "temporarily unavailable") instead of a 500 or a hang,
//! changes nothing it did not acknowledge, recovers by itself once the fault is gone, and
//! loses nothing it acknowledged.
//!
//! Outages are made by a TCP proxy in the test between the server and PostgreSQL or the S3
//! service (cut: every connection dropped and new ones refused; restore). The full disk is a
//! small tmpfs (needs root: skipped with a message otherwise).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};

/// A TCP proxy that can cut and restore the link.
struct Proxy {
    port: u16,
    up: Arc<AtomicBool>,
    links: Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Proxy {
    async fn start(target: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let links: Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let (up2, links2) = (up.clone(), links.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !up2.load(Ordering::SeqCst) {
                    drop(inbound); // refused
                    continue;
                }
                let target = target.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                links2.lock().unwrap().push(task.abort_handle());
            }
        });
        Proxy { port, up, links }
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for l in self.links.lock().unwrap().drain(..) {
            l.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

/// Polls `f` until it gives `Some`, for at most `secs` seconds.
async fn within<T, F: std::future::Future<Output = Option<T>>>(
    secs: u64,
    mut f: impl FnMut() -> F,
) -> Option<T> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if let Some(v) = f().await {
            return Some(v);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    None
}

/// PostgreSQL unreachable for a while: 503 with a message (never 500, never a hang), `/readyz`
/// says so, nothing half-done; back by itself when the database returns, nothing lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_outage_answers_503_and_recovers() {
    let (Some(db), Some(keys)) = (pg_schema_url().await, pg_schema_url().await) else {
        eprintln!("CARNET_TEST_DATABASE_URL not set: PostgreSQL outage case skipped");
        return;
    };
    let url = reqwest::Url::parse(&db).unwrap();
    let target = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(5432));
    let proxy = Proxy::start(target.clone()).await;
    let through = db.replacen(&target, &format!("127.0.0.1:{}", proxy.port), 1);
    let (_t, data) = fresh_dir();
    let server = Server::start(&data, &["--database-url", &through, "--keys-url", &keys], &[]);
    let c = client();
    let create = |name: String| {
        let (c, url) = (c.clone(), server.url("/api/v1/operator/holders"));
        async move {
            c.post(url)
                .bearer_auth(TOKEN)
                .timeout(Duration::from_secs(20))
                .json(&json!({ "administrative": { "family_name": name } }))
                .send()
                .await
        }
    };
    let mut acked = Vec::new();
    for i in 0..20 {
        let r = create(format!("AVANT-{i}")).await.unwrap();
        assert_eq!(r.status(), 201);
        acked.push((
            r.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string(),
            format!("AVANT-{i}"),
        ));
    }
    proxy.cut();
    let started = Instant::now();
    let r = create("PENDANT".into()).await.expect("an answer, not a hang");
    assert_eq!(r.status(), 503, "{}", r.text().await.unwrap_or_default());
    let v: Value = r.json().await.unwrap_or_default();
    assert!(
        v["message"].as_str().unwrap_or("").contains("nothing was saved"),
        "{v}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "answered in {:?}",
        started.elapsed()
    );
    let ready = get(&c, &server.url("/readyz"), As::Anonymous).await;
    assert_eq!(ready.status(), 503, "readiness tells the load balancer");
    tokio::time::sleep(Duration::from_secs(1)).await;
    proxy.restore();
    let back = within(30, || async {
        match create("APRES".into()).await {
            Ok(r) if r.status() == 201 => r.json::<Value>().await.ok(),
            _ => None,
        }
    })
    .await
    .expect("the server recovers by itself when the database is back");
    acked.push((back["id"].as_str().unwrap().to_string(), "APRES".into()));
    assert_eq!(get(&c, &server.url("/readyz"), As::Anonymous).await.status(), 200);
    for (id, name) in &acked {
        let v: Value = get(
            &c,
            &server.url(&format!("/api/v1/operator/holders/{id}?reason=verification")),
            As::Bearer(TOKEN),
        )
        .await
        .json()
        .await
        .unwrap();
        assert_eq!(v["administrative"]["family_name"], name.as_str(), "lost: {id}");
    }
}

async fn deposit(
    c: &reqwest::Client,
    base: &str,
    pro: &str,
    camille: &str,
    key: &str,
    size: usize,
) -> reqwest::Response {
    c.post(format!(
        "{base}/api/v1/pro/patients/{camille}/documents?title=fault-{key}&class=reports"
    ))
    .bearer_auth(pro)
    .header("content-type", "text/plain")
    .timeout(Duration::from_secs(30))
    .body(format!("{key} ").repeat(size / (key.len() + 1)))
    .send()
    .await
    .expect("an answer, not a hang")
}

async fn camille_of(c: &reqwest::Client, base: &str, pro: &str) -> String {
    let v: Value = post(
        c,
        &format!("{base}/api/v1/pro/patients/lookup"),
        As::Bearer(pro),
        &json!({"ins": camille_ins()}),
    )
    .await
    .json()
    .await
    .unwrap();
    v["patient"].as_str().unwrap().to_string()
}

async fn content_ok(c: &reqwest::Client, base: &str, pro: &str, camille: &str, id: &str, key: &str) -> bool {
    let r = get(
        c,
        &format!("{base}/api/v1/pro/patients/{camille}/documents/{id}/content"),
        As::Bearer(pro),
    )
    .await;
    r.status() == 200 && r.text().await.unwrap_or_default().starts_with(&format!("{key} "))
}

/// The S3 service unreachable: deposits and downloads answer 503 (nothing half-written:
/// no document appears without its content), and work again when it is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blob_store_outage_answers_503_and_recovers() {
    let Ok(endpoint) = std::env::var("CARNET_TEST_S3_ENDPOINT") else {
        eprintln!("CARNET_TEST_S3_ENDPOINT not set: S3 outage case skipped");
        return;
    };
    let target = endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let proxy = Proxy::start(target).await;
    let (_t, data) = fresh_dir();
    let prefix = format!("fault-{}", uuid::Uuid::new_v4().simple());
    let s3 = format!("http://127.0.0.1:{}", proxy.port);
    let mut child = std::process::Command::new(BIN)
        .args(["demo", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .envs([
            ("RUST_LOG", "error"),
            ("CARNET_BLOB_BACKEND", "s3"),
            ("CARNET_S3__BUCKET", "carnet-test"),
            ("CARNET_S3__ENDPOINT", s3.as_str()),
            ("CARNET_S3__REGION", "us-east-1"),
            ("CARNET_S3__ACCESS_KEY_ID", "test"),
            ("CARNET_S3__SECRET_ACCESS_KEY", "test"),
            ("CARNET_S3__ALLOW_HTTP", "true"),
            ("CARNET_S3__PREFIX", prefix.as_str()),
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let base = wait_listening(&mut child);
    let c = client();
    let pro = pro_token(&c, &base, "10000000002").await;
    let camille = camille_of(&c, &base, &pro).await;
    let r = deposit(&c, &base, &pro, &camille, "before", 4096).await;
    assert_eq!(r.status(), 201);
    let before = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    proxy.cut();
    let r = deposit(&c, &base, &pro, &camille, "during", 4096).await;
    assert_eq!(r.status(), 503, "{}", r.text().await.unwrap_or_default());
    let r = get(
        &c,
        &format!("{base}/api/v1/pro/patients/{camille}/documents/{before}/content"),
        As::Bearer(&pro),
    )
    .await;
    assert_eq!(r.status(), 503, "a read of a blob answers 503 too");
    let list: Value = get(
        &c,
        &format!("{base}/api/v1/pro/patients/{camille}/documents?limit=100"),
        As::Bearer(&pro),
    )
    .await
    .json()
    .await
    .unwrap();
    assert!(
        !list.to_string().contains("fault-during"),
        "a deposit refused is not listed"
    );
    proxy.restore();
    let after = within(30, || async {
        let r = deposit(&c, &base, &pro, &camille, "after", 4096).await;
        (r.status() == 201).then_some(())?;
        r.json::<Value>().await.ok()
    })
    .await
    .expect("deposits work again when the blob store is back");
    assert!(content_ok(&c, &base, &pro, &camille, &before, "before").await);
    assert!(content_ok(&c, &base, &pro, &camille, after["id"].as_str().unwrap(), "after").await);
    let _ = child.kill();
    let _ = child.wait();
}

/// The data directory's disk fills up: deposits answer 507 with a message and leave nothing
/// behind; once space is freed, deposits work again and every acknowledged one is intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_disk_answers_507_and_recovers() {
    let mnt = tempfile::tempdir().unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=24m", "tmpfs"])
        .arg(mnt.path())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("cannot mount a tmpfs (needs root): full-disk case skipped");
        return;
    }
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.0)
                .status();
        }
    }
    let _guard = Unmount(mnt.path().to_path_buf());
    let data = mnt.path().join("data");
    let demo = start_demo(&data);
    let base = demo.base.clone();
    let c = client();
    let pro = pro_token(&c, &base, "10000000002").await;
    let camille = camille_of(&c, &base, &pro).await;
    // Fill the disk but for about 1 MiB, with a file we can remove later.
    let free = {
        let out = std::process::Command::new("df")
            .args(["--output=avail", "-B1"])
            .arg(mnt.path())
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .nth(1)
            .unwrap()
            .trim()
            .parse::<u64>()
            .unwrap()
    };
    let filler = mnt.path().join("filler");
    std::fs::write(&filler, vec![0u8; free.saturating_sub(1 << 20) as usize]).unwrap();
    let mut acked = Vec::new();
    let mut full = None;
    for i in 0..200 {
        let key = format!("k{i}");
        let r = deposit(&c, &base, &pro, &camille, &key, 64 * 1024).await;
        match r.status().as_u16() {
            201 => acked.push((
                r.json::<Value>().await.unwrap()["id"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                key,
            )),
            507 => {
                full = Some((key, r.json::<Value>().await.unwrap_or_default()));
                break;
            }
            other => panic!("deposit {key}: {other} {}", r.text().await.unwrap_or_default()),
        }
    }
    let (refused, v) = full.expect("the disk never filled up");
    assert!(
        v["message"].as_str().unwrap_or("").contains("storage is full"),
        "{v}"
    );
    let list: Value = get(
        &c,
        &format!("{base}/api/v1/pro/patients/{camille}/documents?limit=100"),
        As::Bearer(&pro),
    )
    .await
    .json()
    .await
    .unwrap();
    assert!(
        !list.to_string().contains(&format!("fault-{refused}\"")),
        "a refused deposit is listed"
    );
    // Space comes back: the server goes on by itself.
    std::fs::remove_file(&filler).unwrap();
    let after = within(20, || async {
        let r = deposit(&c, &base, &pro, &camille, "after", 64 * 1024).await;
        (r.status() == 201).then_some(())?;
        r.json::<Value>().await.ok()
    })
    .await
    .expect("deposits work again once space is freed");
    acked.push((after["id"].as_str().unwrap().to_string(), "after".into()));
    for (id, key) in &acked {
        assert!(
            content_ok(&c, &base, &pro, &camille, id, key).await,
            "acknowledged {key} lost or altered"
        );
    }
    drop(demo);
}
