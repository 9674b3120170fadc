//! End-to-end tests of the `carnet` binary: real processes, real sockets, real databases.
//! Cites: S-30/S-31 (acknowledged writes survive kill -9), S-23 (limits answer 4xx).

use std::path::Path;
use std::time::Duration;

use crate::common::*;

use serde_json::{Value, json};

async fn create_holder(c: &reqwest::Client, s: &Server, name: &str) -> reqwest::Result<reqwest::Response> {
    c.post(s.url("/api/v1/operator/holders"))
        .bearer_auth(TOKEN)
        .json(&json!({ "administrative": { "family_name": name } }))
        .send()
        .await
}

/// Writes continuously from several tasks, kills the server with SIGKILL in the middle,
/// restarts it, and checks that every write that was acknowledged (201) is there, intact.
async fn kill9_rounds(data: &Path, extra: &[&str]) {
    let c = client();
    let mut acknowledged: Vec<(String, String)> = Vec::new();
    for round in 0..3 {
        let server = Server::start(data, extra, &[]);
        let base = server.base.clone();
        let mut tasks = Vec::new();
        for w in 0..4 {
            let c = c.clone();
            let base = base.clone();
            tasks.push(tokio::spawn(async move {
                let mut acked = Vec::new();
                for i in 0.. {
                    let name = format!("HOLDER-{round}-{w}-{i}");
                    let r = c
                        .post(format!("{base}/api/v1/operator/holders"))
                        .bearer_auth(TOKEN)
                        .json(&json!({ "administrative": { "family_name": name } }))
                        .send()
                        .await;
                    match r {
                        Ok(r) if r.status() == 201 => {
                            let v: Value = match r.json().await {
                                Ok(v) => v,
                                Err(_) => break,
                            };
                            acked.push((v["id"].as_str().unwrap().to_string(), name));
                        }
                        _ => break, // the server died under us
                    }
                }
                acked
            }));
        }
        tokio::time::sleep(Duration::from_millis(400 + 300 * round)).await;
        server.kill9();
        for t in tasks {
            acknowledged.extend(t.await.unwrap());
        }
    }
    assert!(
        acknowledged.len() >= 12,
        "the load wrote too little to mean anything: {}",
        acknowledged.len()
    );
    let server = Server::start(data, extra, &[]);
    for (id, name) in &acknowledged {
        let r = get(
            &c,
            &server.url(&format!("/api/v1/operator/holders/{id}?reason=verification")),
            As::Bearer(TOKEN),
        )
        .await;
        assert_eq!(r.status(), 200, "acknowledged holder {id} lost after kill -9");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["administrative"]["family_name"], name.as_str());
    }
    eprintln!("{} acknowledged writes survived 3 kill -9", acknowledged.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9_sqlite() {
    let (_t, data) = fresh_dir();
    kill9_rounds(&data, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9_postgres() {
    let (Some(db), Some(keys)) = (pg_schema_url().await, pg_schema_url().await) else {
        eprintln!("CARNET_TEST_DATABASE_URL not set: PostgreSQL case skipped");
        return;
    };
    let (_t, data) = fresh_dir();
    kill9_rounds(&data, &["--database-url", &db, "--keys-url", &keys]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_errors_and_limits() {
    let (_t, data) = fresh_dir();
    let s = Server::start(&data, &[], &[("CARNET_BODY_LIMIT_MIB", "1")]);
    let c = client();
    let r = get(&c, &s.url("/healthz"), As::Anonymous).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "ok");
    let r = get(&c, &s.url("/readyz"), As::Anonymous).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("x-request-id"));
    let home = get(&c, &s.url("/"), As::Anonymous).await.text().await.unwrap();
    assert!(home.contains("lang=\"fr\"") && home.contains("espace numérique de santé"));

    // Authentication.
    let r = post(
        &c,
        &s.url("/api/v1/operator/holders"),
        As::Anonymous,
        &json!({"administrative": {}}),
    )
    .await;
    assert_eq!(r.status(), 401);
    let r = post(
        &c,
        &s.url("/api/v1/operator/holders"),
        As::Bearer("not-the-token"),
        &json!({"administrative": {}}),
    )
    .await;
    assert_eq!(r.status(), 401);
    // Bad input: readable 4xx, nothing created.
    let r = c
        .post(s.url("/api/v1/operator/holders"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "bad_request");
    assert!(v["message"].as_str().unwrap().contains("JSON"), "{v}");
    let r = c
        .post(s.url("/api/v1/operator/holders"))
        .bearer_auth(TOKEN)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415, "missing content type");
    let r = post(
        &c,
        &s.url("/api/v1/operator/holders"),
        As::Bearer(TOKEN),
        &json!({"administrative": {}, "lifecycle": "activated"}),
    )
    .await;
    assert_eq!(r.status(), 422, "unknown fields are refused, not ignored");
    let r = get(
        &c,
        &s.url("/api/v1/operator/holders/not-a-uuid"),
        As::Bearer(TOKEN),
    )
    .await;
    assert_eq!(r.status(), 400);
    let r = get(
        &c,
        &s.url("/api/v1/operator/holders/01900000-0000-7000-8000-000000000000?reason=verification"),
        As::Bearer(TOKEN),
    )
    .await;
    assert_eq!(r.status(), 404);
    // Size limit: 413, never 5xx (S-23).
    // The server may answer 413 before the client has finished sending the body and close the
    // connection; the client can then see a broken pipe instead of the answer. Retry: every
    // answer obtained must be 413, and at least one must be obtained.
    let big = format!(
        "{{\"administrative\":{{\"x\":\"{}\"}}}}",
        "a".repeat(1024 * 1024 + 1024)
    );
    // A client of its own, without connection reuse: the server closes those connections.
    let oversize = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let mut answered = 0;
    for _ in 0..10 {
        let sent = oversize
            .post(s.url("/api/v1/operator/holders"))
            .bearer_auth(TOKEN)
            .header("content-type", "application/json")
            .body(big.clone())
            .send()
            .await;
        if let Ok(r) = sent {
            assert_eq!(r.status(), 413);
            answered += 1;
        }
    }
    assert!(answered > 0, "never got the 413 answer");
    let r = create_holder(&c, &s, "DURAND").await.unwrap();
    assert_eq!(r.status(), 201);
    // Lifecycle events recorded by an operator; illegal ones are a 409 with the reason.
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let event = |e: &str| {
        c.post(s.url(&format!("/api/v1/operator/holders/{id}/events")))
            .bearer_auth(TOKEN)
            .json(&json!({ "event": e }))
            .send()
    };
    let r = event("oppose").await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["lifecycle"], "opposed");
    let r = event("death").await.unwrap();
    assert_eq!(r.status(), 409);
    let msg = r.json::<Value>().await.unwrap()["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        msg.contains("a space that is opposed cannot be closed on death"),
        "{msg}"
    );
    assert_eq!(event("request_space").await.unwrap().status(), 200);
    assert_eq!(event("death").await.unwrap().status(), 200);
    assert_eq!(event("fly").await.unwrap().status(), 422);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_gracefully_and_data_persists() {
    let (_t, data) = fresh_dir();
    let s = Server::start(&data, &[], &[]);
    let c = client();
    let v: Value = create_holder(&c, &s, "LEROY")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let st = s.sigterm();
    assert!(st.success(), "exit status {st:?}");
    let s = Server::start(&data, &[], &[]);
    let r = get(
        &c,
        &s.url(&format!(
            "/api/v1/operator/holders/{}?reason=verification",
            v["id"].as_str().unwrap()
        )),
        As::Bearer(TOKEN),
    )
    .await;
    assert_eq!(r.status(), 200);
}

#[test]
fn startup_errors_name_the_problem() {
    let t = tempfile::tempdir().unwrap();
    let missing = t.path().join("missing");
    let out = run(&["serve", "--data-dir", missing.to_str().unwrap()], &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("does not exist"), "{err}");
    assert!(!missing.exists());

    let out = run(
        &[
            "migrate",
            "--data-dir",
            t.path().to_str().unwrap(),
            "--database-url",
            "postgres://carnet:pw@127.0.0.1:1/carnet",
        ],
        &[],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot reach the database at postgres://carnet:***@127.0.0.1:1/carnet"),
        "{err}"
    );

    // An initialised directory opened with another master key.
    let (_t2, data) = fresh_dir();
    let out = run(&["init", "--data-dir", data.to_str().unwrap()], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let other_key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let out = run(
        &["migrate", "--data-dir", data.to_str().unwrap()],
        &[("CARNET_MASTER_KEY", other_key)],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("wrong master key"), "{err}");

    let out = run(&["serve", "--config", "/nonexistent/carnet.toml"], &[]);
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("configuration file /nonexistent/carnet.toml does not exist")
    );

    // S-21: a server reachable from elsewhere must be told its public URL (it never builds a
    // link from a request's Host); it says so and stops.
    let out = run(
        &[
            "serve",
            "--data-dir",
            data.to_str().unwrap(),
            "--listen",
            "0.0.0.0:0",
        ],
        &[("CARNET_OPERATOR_TOKEN", TOKEN)],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("public_url is required"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn master_key_rotation_from_the_command_line() {
    let (_t, data) = fresh_dir();
    let s = Server::start(&data, &[], &[]);
    let c = client();
    let v: Value = create_holder(&c, &s, "ROUSSEAU")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let before = std::fs::read_to_string(data.join("master.key")).unwrap();
    assert!(s.sigterm().success());
    let out = run(
        &["admin", "rotate-master-key", "--data-dir", data.to_str().unwrap()],
        &[],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 data key(s) re-wrapped"));
    let after = std::fs::read_to_string(data.join("master.key")).unwrap();
    assert_ne!(before, after);
    let s = Server::start(&data, &[], &[]);
    let r = get(
        &c,
        &s.url(&format!(
            "/api/v1/operator/holders/{}?reason=verification",
            v["id"].as_str().unwrap()
        )),
        As::Bearer(TOKEN),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap()["administrative"]["family_name"],
        "ROUSSEAU"
    );
}

#[test]
fn demo_never_replaces_a_real_directory() {
    let (_t, data) = fresh_dir();
    std::fs::write(data.join("precious.txt"), b"x").unwrap();
    let out = run(
        &[
            "demo",
            "--data-dir",
            data.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ],
        &[],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a demo directory"));
    assert!(data.join("precious.txt").exists());
}

#[test]
fn help_explains_the_commands() {
    let out = run(&["--help"], &[]);
    let help = String::from_utf8_lossy(&out.stdout);
    for word in ["serve", "demo", "migrate", "init", "admin", "health space"] {
        assert!(help.contains(word), "--help lacks {word}: {help}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_never_contain_health_or_administrative_data_nor_secrets() {
    let (t, data) = fresh_dir();
    let log_path = t.path().join("server.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let s = Server::start_with_stderr(
        &data,
        &[],
        &[("RUST_LOG", "debug"), ("CARNET_LOG_FORMAT", "json")],
        log.into(),
    );
    let c = client();
    // A cookie beside the operator's token: neither may reach the log.
    let r = c
        .post(s.url("/api/v1/operator/holders"))
        .bearer_auth(TOKEN)
        .header("cookie", "session=COOKIE-SECRET-42")
        .json(&json!({ "administrative": { "family_name": "ZYGOMATIQUE", "note": "VIH-positif" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = get(
        &c,
        &s.url(&format!("/api/v1/operator/holders/{id}?reason=verification")),
        As::Bearer(TOKEN),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert!(s.sigterm().success());
    let logs = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        logs.contains("/api/v1/operator/holders"),
        "the request was logged at all: {logs}"
    );
    for secret in ["ZYGOMATIQUE", "VIH-positif", TOKEN, "COOKIE-SECRET-42"] {
        assert!(!logs.contains(secret), "{secret} appears in the logs");
    }
    // JSON lines for log collectors.
    let first = logs.lines().find(|l| !l.trim().is_empty()).unwrap();
    assert!(serde_json::from_str::<Value>(first).is_ok(), "not JSON: {first}");
}

#[test]
fn roster_import_from_the_command_line_is_idempotent_and_reports_rejects() {
    let (t, data) = fresh_dir();
    let d = data.to_str().unwrap();
    assert!(run(&["init", "--data-dir", d], &[]).status.success());
    let csv = format!(
        "ins;birth_name;given_names;sex;birth_date;email;representative_ins;representative_kind\n\
         {};MARTIN;Camille;F;1984-03-12;camille@example.org;;\n\
         {};PETIT;Inès;F;2015-06-02;;{};\n\
         {}9;BAD;Key;M;1980-01-01;;;\n\
         {};BERNARD;Lucas;X;1957-09-30;;;\n\
         {};BERNARD;Lucas;M;1957-09-30;;;\n\
         {};MARTIN;Paul;M;1931-01-01;;{};guardian\n\
         {};DURAND;Marc;M;1950-01-01;;{};curateur\n",
        ins_for(1),
        ins_for(2),
        ins_for(1),
        &ins_for(3)[..14],
        ins_for(4),
        ins_for(4),
        ins_for(5),
        ins_for(1),
        ins_for(6),
        ins_for(1)
    );
    let file = t.path().join("roster.csv");
    std::fs::write(&file, csv).unwrap();
    let rejects = t.path().join("rejects.csv");
    let out = run(
        &[
            "import",
            "roster",
            file.to_str().unwrap(),
            "--data-dir",
            d,
            "--rejects",
            rejects.to_str().unwrap(),
        ],
        &[],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(
            "7 lines read, 5 spaces created, 0 already present, 2 rejected, 2 linked to a representative, \
             1 curators not linked (MI-4)"
        ),
        "{stdout}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("line 4: ins:"), "{stderr}");
    assert!(stderr.contains("line 5: sex: 'x' is not F, M or U"), "{stderr}");
    let r = std::fs::read_to_string(&rejects).unwrap();
    assert_eq!(r.lines().count(), 3, "{r}");
    // Again: nothing new.
    let out = run(
        &["import", "roster", file.to_str().unwrap(), "--data-dir", d],
        &[],
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 spaces created, 5 already present"));
    // A FHIR Bundle of Patient.
    let bundle = json!({"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Patient",
            "identifier": [{"system": "urn:oid:1.2.250.1.213.1.4.8", "value": ins_for(7)}],
            "name": [{"use": "official", "family": "LEROY", "given": ["Paul"]}],
            "gender": "male", "birthDate": "1990-01-01"}},
        {"resource": {"resourceType": "Patient",
            "identifier": [{"system": "urn:oid:1.2.250.1.213.1.4.8", "value": ins_for(1)}],
            "name": [{"family": "MARTIN", "given": ["Camille"]}], "gender": "female", "birthDate": "1984-03-12"}}
    ]});
    let jf = t.path().join("roster.json");
    std::fs::write(&jf, bundle.to_string()).unwrap();
    let out = run(&["import", "roster", jf.to_str().unwrap(), "--data-dir", d], &[]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("2 lines read, 1 spaces created, 1 already present")
    );
    // A file without the required columns is refused as a whole.
    std::fs::write(&file, "name,age\nx,1\n").unwrap();
    let out = run(
        &["import", "roster", file.to_str().unwrap(), "--data-dir", d],
        &[],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no column \"ins\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_traces_detects_an_edit_behind_the_servers_back() {
    use carnet_domain::access::*;
    let (_t, data) = fresh_dir();
    let d = data.to_str().unwrap();
    assert!(run(&["init", "--data-dir", d], &[]).status.success());
    {
        let settings = carnet_store::datadir::StoreSettings::new(&data);
        let store =
            carnet_store::datadir::open_store(&settings, std::sync::Arc::new(carnet_domain::SystemClock))
                .await
                .unwrap();
        let gate = carnet_store::gate::Gate::new(store.clone(), HabilitationMatrix::default_matrix());
        let h = store.create_holder("activated", b"{}").await.unwrap();
        let facts = ItemFacts {
            category: Category::Reports,
            author: Author::Holder,
            masked: false,
            hidden_from_representatives: false,
            visible_to_holder: true,
        };
        for i in 0..3 {
            let actor = Actor::Professional {
                id: ProfessionalId(format!("p{i}")),
                profession: "medecin".into(),
                role: PracticeRole::Care,
            };
            gate.check(h, &actor, Action::Read, "document/1", &facts, &Context::default())
                .await
                .unwrap();
        }
        store.db().close().await;
    }
    let out = run(&["verify-traces", "--data-dir", d], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 holder chain(s), 3 trace(s) checked, 0 problem(s)")
    );
    // Someone with write access to the trace database rewrites a denial as an allowed access.
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", data.join("carnet-audit.db").display()))
        .await
        .unwrap();
    sqlx::query("UPDATE traces SET allowed = 1 WHERE seq = 2")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let out = run(&["verify-traces", "--data-dir", d], &[]);
    assert!(!out.status.success(), "tampering must make the command fail");
    assert!(String::from_utf8_lossy(&out.stdout).contains("trace 2 was altered"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("tampered"));
}

/// `n` accesses by professionals without a grant (denied, traced) to `h`'s space.
async fn traced_accesses(store: &carnet_store::Store, h: carnet_domain::HolderId, n: usize) {
    use carnet_domain::access::*;
    let gate = carnet_store::gate::Gate::new(store.clone(), HabilitationMatrix::default_matrix());
    let facts = ItemFacts {
        category: Category::Reports,
        author: Author::Holder,
        masked: false,
        hidden_from_representatives: false,
        visible_to_holder: true,
    };
    for i in 0..n {
        let actor = Actor::Professional {
            id: ProfessionalId(format!("p{i}")),
            profession: "medecin".into(),
            role: PracticeRole::Care,
        };
        gate.check(h, &actor, Action::Read, "document/1", &facts, &Context::default())
            .await
            .unwrap();
    }
}

async fn open_data_dir(data: &Path) -> carnet_store::Store {
    let settings = carnet_store::datadir::StoreSettings::new(data);
    carnet_store::datadir::open_store(&settings, std::sync::Arc::new(carnet_domain::SystemClock))
        .await
        .unwrap()
}

/// Runs `sql` on the trace database file (`carnet-audit.db`, where the traces live on SQLite).
async fn sqlite_exec(data: &Path, sql: &str) {
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", data.join("carnet-audit.db").display()))
        .await
        .unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
}

/// AC-7, S-5: the server's job signs a checkpoint over the traces and publishes it; deleting
/// the newest trace of a chain behind the server's back (which leaves a valid shorter chain)
/// makes `carnet verify-traces` fail, and so does deleting the checkpoints too, given a copy
/// of the published one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_checkpoint_catches_a_truncated_trace_chain_ac7_s5() {
    let (t, data) = fresh_dir();
    let d = data.to_str().unwrap();
    assert!(run(&["init", "--data-dir", d], &[]).status.success());
    let h = {
        let store = open_data_dir(&data).await;
        let h = store.create_holder("activated", b"{}").await.unwrap();
        traced_accesses(&store, h, 3).await;
        store.db().close().await;
        h
    };
    // The server's background job signs the first checkpoint, published at once.
    let server = Server::start(&data, &[], &[("CARNET_JOB_INTERVAL_SECONDS", "1")]);
    let c = client();
    let url = server.url("/api/v1/transparency/checkpoint");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let published = loop {
        let r = get(&c, &url, As::Anonymous).await;
        if r.status() == 200 {
            break r.text().await.unwrap();
        }
        assert_eq!(r.status(), 404, "before the first checkpoint");
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint was published"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    server.kill9();
    let v: Value = serde_json::from_str(&published).unwrap();
    assert_eq!((v["number"].as_i64(), v["size"].as_i64()), (Some(1), Some(1)));
    for field in ["at", "root", "prev", "signed_note", "public_key"] {
        assert!(v[field].is_string(), "{field} in {v}");
    }
    assert!(
        v["signed_note"]
            .as_str()
            .unwrap()
            .starts_with("carnet-traces\n1\n1\n")
    );
    assert!(
        !published.contains(&h.to_string()) && !published.contains(&h.as_uuid().simple().to_string()),
        "no holder data in what is published"
    );
    let kept = t.path().join("kept-checkpoint.json");
    std::fs::write(&kept, &published).unwrap();

    // More accesses, and an operator signs the next checkpoint by hand.
    {
        let store = open_data_dir(&data).await;
        traced_accesses(&store, h, 2).await;
        store.db().close().await;
    }
    let out = run(&["admin", "checkpoint-traces", "--data-dir", d], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("checkpoint 2 signed: 1 chain head(s)"),
        "{stdout}"
    );
    assert!(stdout.contains("carnet-traces\n2\n1\n"), "{stdout}");
    let out = run(&["admin", "checkpoint-traces", "--data-dir", d], &[]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("nothing to sign"));

    let kept_arg = kept.to_str().unwrap();
    let out = run(&["verify-traces", "--data-dir", d, "--published", kept_arg], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("2 signed checkpoint(s) checked, 1 kept checkpoint(s) compared"),
        "{stdout}"
    );
    assert!(
        stdout.contains("1 holder chain(s), 5 trace(s) checked, 0 problem(s)"),
        "{stdout}"
    );

    // Someone with write access to the database deletes the newest trace: what is left is a
    // valid chain of 4, but the signed checkpoint 2 names trace 5.
    sqlite_exec(&data, "DELETE FROM traces WHERE seq = 5").await;
    let out = run(&["verify-traces", "--data-dir", d], &[]);
    assert!(!out.status.success(), "truncation must make the command fail");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "PROBLEM holder {h}: trace 5, covered by checkpoint 2, is missing"
        )),
        "{stdout}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("tampered"));

    // Deleting the checkpoints too leaves nothing in the database to compare with; the copy
    // kept from the public endpoint still shows it.
    sqlite_exec(
        &data,
        "DELETE FROM trace_checkpoint_leaves; DELETE FROM trace_checkpoints;",
    )
    .await;
    let out = run(&["verify-traces", "--data-dir", d, "--published", kept_arg], &[]);
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("PROBLEM published checkpoint 1 is no longer in the database"),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn professionals_directory_import() {
    let (t, data) = fresh_dir();
    let d = data.to_str().unwrap();
    assert!(run(&["init", "--data-dir", d], &[]).status.success());
    let f = t.path().join("pros.csv");
    std::fs::write(
        &f,
        "rpps;family_name;given_name;profession;specialty;role;finess;organisation_name\n\
         10000000001;LAMBERT;Sophie;pharmacien;;care;750000001;Pharmacie du Centre\n\
         10000000002;ROCHE;Henri;medecin;medecine_urgence;regulation;750000002;SAMU 75\n\
         123;COURT;Numero;medecin;;;;\n\
         10000000004;MAGE;Merlin;sorcier;;;;\n",
    )
    .unwrap();
    let out = run(
        &["import", "professionals", f.to_str().unwrap(), "--data-dir", d],
        &[],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("2 professionals imported or updated, 2 rejected"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 4: rpps") && err.contains("line 5: profession: 'sorcier'"),
        "{err}"
    );
    let settings = carnet_store::datadir::StoreSettings::new(&data);
    let store = carnet_store::datadir::open_store(&settings, std::sync::Arc::new(carnet_domain::SystemClock))
        .await
        .unwrap();
    let p = store.professional("10000000002").await.unwrap().unwrap();
    assert_eq!(p.role, carnet_domain::access::PracticeRole::Regulation);
    assert_eq!(p.organisation_name.as_deref(), Some("SAMU 75"));
    assert_eq!(store.professional_count().await.unwrap(), 2);
    // Idempotent.
    store.db().close().await;
    let out = run(
        &["import", "professionals", f.to_str().unwrap(), "--data-dir", d],
        &[],
    );
    assert!(out.status.success());
    let store = carnet_store::datadir::open_store(&settings, std::sync::Arc::new(carnet_domain::SystemClock))
        .await
        .unwrap();
    assert_eq!(store.professional_count().await.unwrap(), 2);
    store.db().close().await;

    // The same directory from a FHIR Bundle (Practitioner, PractitionerRole, Organization).
    let bundle = t.path().join("pros.json");
    std::fs::write(
        &bundle,
        serde_json::json!({
            "resourceType": "Bundle", "type": "collection",
            "entry": [
                { "resource": { "resourceType": "Practitioner", "id": "a",
                    "identifier": [{ "system": "urn:oid:1.2.250.1.71.4.2.1", "value": "810000000005" }],
                    "name": [{ "family": "BLANC", "given": ["Iris"] }] } },
                { "resource": { "resourceType": "Organization", "id": "o",
                    "identifier": [{ "system": "urn:oid:1.2.250.1.71.4.2.2", "value": "1750000003" }],
                    "name": "Centre de santé test" } },
                { "resource": { "resourceType": "PractitionerRole", "id": "ra",
                    "practitioner": { "reference": "Practitioner/a" },
                    "organization": { "reference": "Organization/o" },
                    "code": [{ "coding": [{ "system": "https://mos.esante.gouv.fr/NOS/TRE_G15-ProfessionSante/FHIR/TRE-G15-ProfessionSante", "code": "60" }] }] } },
                { "resource": { "resourceType": "Practitioner", "id": "b",
                    "identifier": [{ "value": "810000000006" }],
                    "name": [{ "family": "ROUGE" }],
                    "qualification": [{ "code": { "coding": [{ "code": "sorcier" }] } }] } }
            ]
        })
        .to_string(),
    )
    .unwrap();
    let out = run(
        &[
            "import",
            "professionals",
            bundle.to_str().unwrap(),
            "--data-dir",
            d,
        ],
        &[],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 professionals imported or updated, 1 rejected"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("Practitioner/b: profession: 'sorcier'"));
    let store = carnet_store::datadir::open_store(&settings, std::sync::Arc::new(carnet_domain::SystemClock))
        .await
        .unwrap();
    let p = store.professional("10000000005").await.unwrap().unwrap();
    assert_eq!(
        (p.profession.as_str(), p.finess.as_deref()),
        ("infirmier", Some("750000003"))
    );
    assert_eq!(p.organisation_name.as_deref(), Some("Centre de santé test"));
    // Not a bundle: refused as a whole.
    std::fs::write(&bundle, r#"{"resourceType":"Patient"}"#).unwrap();
    let out = run(
        &[
            "import",
            "professionals",
            bundle.to_str().unwrap(),
            "--data-dir",
            d,
        ],
        &[],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a FHIR Bundle"));
}

/// Issue 6: `carnet token` mints a session for a named actor where the server's key is, and
/// is refused elsewhere (another master key) or for an actor that cannot have one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_command_mints_sessions_only_with_the_servers_key() {
    let (t, data) = fresh_dir();
    let ins = ins_for(91);
    init_with_roster(
        &data,
        &format!("ins,birth_name,given_names,sex,birth_date\n{ins},NOEL,Lou,F,1990-02-02\n"),
    );
    let d = data.to_str().unwrap();
    let pros = t.path().join("pros.csv");
    std::fs::write(
        &pros,
        "rpps,family_name,given_name,profession\n10000000077,VIDAL,Anne,medecin\n",
    )
    .unwrap();
    assert!(
        run(
            &["import", "professionals", pros.to_str().unwrap(), "--data-dir", d],
            &[]
        )
        .status
        .success()
    );

    let out = run(&["token", "professional", "10000000077", "--data-dir", d], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(token.len() >= 32);
    // Unknown professional; a space still in its opposition window (informed): no session.
    assert!(
        !run(&["token", "professional", "19999999999", "--data-dir", d], &[])
            .status
            .success()
    );
    let out = run(&["token", "holder", &ins, "--data-dir", d], &[]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("informed"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Without the server's master key: refused.
    let other = "k2:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    let out = run(
        &["token", "professional", "10000000077", "--data-dir", d],
        &[("CARNET_MASTER_KEY", other)],
    );
    assert!(!out.status.success());

    let s = Server::start(&data, &[], &[]);
    let c = client();
    let r = get(&c, &s.url("/api/v1/pro/me"), As::Bearer(&token)).await;
    assert_eq!(r.status(), 200);
    let r = get(&c, &s.url("/fhir/metadata"), As::Bearer(&token)).await;
    assert_eq!(r.status(), 200);
}

/// Issue 34: what operators watch. `/metrics` answers the operator token only, in Prometheus'
/// text format: requests by route template (never an id) and status, gate decisions, trace
/// group commits, backlogs; nothing about a holder.
#[tokio::test]
async fn operators_scrape_metrics_with_their_token_only() {
    let w = World::start().await;
    let operator = operator_token(&w.data);
    let me = get(
        &w.c,
        &format!("{}/api/v1/me/documents", w.base),
        As::Cookie(&w.camille),
    )
    .await;
    assert_eq!(me.status(), 200);
    // A professional's read: decided, traced (a group commit) and counted.
    let petit = w.pro("10000000002").await;
    let camille = w.camille_for(&petit).await;
    let r = get(&w.c, &w.pro_url(&camille, "/documents"), As::Bearer(&petit)).await;
    assert_eq!(r.status(), 200);
    let scrape = |auth: Option<&str>| {
        let r = w.c.get(format!("{}/metrics", w.base));
        let r = match auth {
            Some(t) => r.bearer_auth(t),
            None => r,
        };
        r.send()
    };
    assert_eq!(scrape(None).await.unwrap().status(), 401);
    assert_eq!(scrape(Some("not-the-token")).await.unwrap().status(), 401);
    let r = scrape(Some(&operator)).await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = r.text().await.unwrap();
    for expected in [
        "carnet_http_requests_total{method=\"GET\",route=\"/api/v1/me/documents\",status=\"200\"}",
        "carnet_http_request_duration_seconds_bucket{method=\"GET\",route=\"/api/v1/me/documents\",le=\"0.005\"}",
        "carnet_gate_decisions_total{outcome=\"allowed\",reason=\"holder\"}",
        "carnet_traces_appended_total",
        "carnet_outbox_waiting ",
        "carnet_lifecycle_due ",
        "carnet_db_pool_connections{state=\"open\"}",
    ] {
        assert!(text.contains(expected), "no {expected} in:\n{text}");
    }
    // Route templates only: no holder's id, no INS, no query string.
    let holder = get_json(&w.c, &format!("{}/api/v1/me", w.base), As::Cookie(&w.camille)).await["acting_for"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        !text.contains(&holder) && !text.contains(&camille_ins()),
        "{text}"
    );
}
