//! Helpers shared by the end-to-end tests: start the real binary, talk HTTP, run commands.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub mod browser;
mod world;

pub use world::*;

pub const BIN: &str = env!("CARGO_BIN_EXE_carnet");
pub const TOKEN: &str = "test-operator-token-0123456789abcdef";

pub struct Server {
    pub child: Child,
    pub base: String,
}

impl Server {
    /// Starts `carnet serve` and waits for its "listening" line.
    pub fn start(data_dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Server {
        Self::start_with_stderr(data_dir, extra, env, Stdio::inherit())
    }

    pub fn start_with_stderr(data_dir: &Path, extra: &[&str], env: &[(&str, &str)], stderr: Stdio) -> Server {
        let mut cmd = Command::new(BIN);
        cmd.arg("serve");
        if !extra.contains(&"--listen") {
            cmd.args(["--listen", "127.0.0.1:0"]);
        }
        cmd.arg("--data-dir")
            .arg(data_dir)
            .args(extra)
            .env("CARNET_OPERATOR_TOKEN", TOKEN)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(stderr);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn carnet");
        let base = wait_listening(&mut child);
        Server { child, base }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn kill9(mut self) {
        self.child.kill().unwrap(); // SIGKILL
        self.child.wait().unwrap();
    }

    pub fn sigterm(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            assert!(Instant::now() < deadline, "server did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

pub fn run(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args).env("RUST_LOG", "error");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

pub fn fresh_dir() -> (tempfile::TempDir, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let d = t.path().join("data");
    std::fs::create_dir(&d).unwrap();
    (t, d)
}

pub fn ins_for(n: u64) -> String {
    let nir = format!("2{:012}", 880_675_000_000 + n);
    let k = 97 - nir.parse::<u64>().unwrap() % 97;
    format!("{nir}{k:02}")
}

/// Waits for the "Carnet listening on URL" line of a starting `carnet` and returns the URL.
pub fn wait_listening(child: &mut Child) -> String {
    let stdout = child.stdout.take().expect("stdout is piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("Carnet listening on ") {
                let _ = tx.send(url.trim().to_string());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(60)).unwrap_or_else(|_| {
        let _ = child.kill();
        panic!("carnet did not start: {:?}", child.wait());
    })
}

/// A free TCP port on loopback (for peers whose address must be known in advance).
///
/// Taken below Linux's ephemeral range (32768 and up): a port the kernel hands out for `:0`
/// binds (our servers, peers, client sockets of other tests running at the same time) can never
/// be this one between the check here and its use. Spread by process id, then sequential.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let seed = (std::process::id() % 997) * 12;
    loop {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let port = 20_000 + ((seed + n) % 12_000) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// `carnet demo` on a free port with its data in `data`; stopped when dropped.
pub struct Demo {
    child: Child,
    pub base: String,
}

pub fn start_demo(data: &Path) -> Demo {
    start_demo_with(data, &[])
}

/// `carnet demo` with extra arguments (e.g. `--database-url` for PostgreSQL).
pub fn start_demo_with(data: &Path, extra: &[&str]) -> Demo {
    let mut child = Command::new(BIN)
        .args(["demo", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn carnet demo");
    let base = wait_listening(&mut child);
    Demo { child, base }
}

/// `carnet demo`, and the first line of its welcome text that contains `marker`.
pub fn start_demo_reading(data: &Path, marker: &'static str) -> (Demo, String) {
    let mut child = Command::new(BIN)
        .args(["demo", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn carnet demo");
    let stdout = child.stdout.take().expect("stdout is piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("Carnet listening on ") {
                let _ = tx.send((true, url.trim().to_string()));
            } else if line.contains(marker) {
                let _ = tx.send((false, line));
            }
        }
    });
    let (mut base, mut found) = (None, None);
    while base.is_none() || found.is_none() {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok((true, url)) => base = Some(url),
            Ok((false, line)) => found = Some(line),
            Err(_) => {
                let _ = child.kill();
                panic!("carnet demo did not start or did not print {marker}");
            }
        }
    }
    (
        Demo {
            child,
            base: base.unwrap_or_default(),
        },
        found.unwrap_or_default(),
    )
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Initialises the data directory `data` and imports `csv` as the insurer's roster.
pub fn init_with_roster(data: &Path, csv: &str) {
    let d = data.to_str().unwrap();
    assert!(run(&["init", "--data-dir", d], &[]).status.success());
    let file = data.parent().unwrap().join("roster-for-test.csv");
    std::fs::write(&file, csv).unwrap();
    let out = run(
        &["import", "roster", file.to_str().unwrap(), "--data-dir", d],
        &[],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

pub fn find_after(text: &str, marker: &str, len: usize) -> String {
    let i = text
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} not in {text}"))
        + marker.len();
    text[i..]
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(len)
        .collect()
}

pub fn session_cookie(r: &reqwest::Response) -> String {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("__Host-carnet_session="))
        .map(|v| v.split(';').next().unwrap().to_string())
        .expect("a session cookie")
}

/// Logs in a demo account, reading the one-time code from the demo outbox.
pub async fn demo_login(c: &reqwest::Client, base: &str, login: &str) -> String {
    // The codes sent before this login (a second session of the same person gets a new one).
    let code_mail =
        |m: &Value| m["to"] == login && m["subject"].as_str().unwrap_or("").contains("code de connexion");
    let before: Vec<Value> = get(c, &format!("{base}/demo/outbox.json"), As::Anonymous)
        .await
        .json::<Vec<Value>>()
        .await
        .unwrap()
        .into_iter()
        .filter(|m| code_mail(m))
        .collect();
    let r = post(
        c,
        &format!("{base}/api/v1/auth/login"),
        As::Anonymous,
        &json!({"login": login, "password": "demo-carnet-2026"}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let challenge = r.json::<Value>().await.unwrap()["challenge"]
        .as_str()
        .unwrap()
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(20);
    let code = loop {
        let msgs: Value = get(c, &format!("{base}/demo/outbox.json"), As::Anonymous)
            .await
            .json()
            .await
            .unwrap();
        let found = msgs
            .as_array()
            .unwrap()
            .iter()
            .find(|m| code_mail(m) && !before.contains(m));
        if let Some(m) = found {
            break find_after(m["body"].as_str().unwrap(), "Votre code de connexion : ", 6);
        }
        assert!(Instant::now() < deadline, "no code in the demo outbox");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let r = post(
        c,
        &format!("{base}/api/v1/auth/verify"),
        As::Anonymous,
        &json!({"challenge": challenge, "code": code}),
    )
    .await;
    assert_eq!(r.status(), 200);
    session_cookie(&r)
}

/// A real SMTP server writing every message it receives into a maildir.
pub struct Smtp {
    pub child: Child,
    pub port: u16,
    pub maildir: PathBuf,
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn start_smtp(dir: &Path) -> Option<Smtp> {
    let python = std::env::var("CARNET_TEST_PYTHON").ok()?;
    let port = free_port();
    let maildir = dir.join("maildir");
    let child = Command::new(python)
        .args([
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            &format!("127.0.0.1:{port}"),
            "-c",
            "aiosmtpd.handlers.Mailbox",
        ])
        .arg(&maildir)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start aiosmtpd");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "aiosmtpd did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    Some(Smtp { child, port, maildir })
}

/// Decodes a quoted-printable or base64 body (lettre picks one for non-ASCII text).
pub fn decode_body(raw: &str) -> String {
    let (headers, body) = raw
        .split_once("\r\n\r\n")
        .or_else(|| raw.split_once("\n\n"))
        .unwrap_or((raw, ""));
    let lower = headers.to_ascii_lowercase();
    if lower.contains("content-transfer-encoding: base64") {
        use base64_decode::decode;
        return String::from_utf8_lossy(&decode(&body.replace(['\r', '\n'], ""))).into_owned();
    }
    if lower.contains("content-transfer-encoding: quoted-printable") {
        let joined = body.replace("=\r\n", "").replace("=\n", "");
        let bytes = joined.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
            if bytes[i] == b'='
                && let Some(Ok(b)) = hex.map(|h| u8::from_str_radix(h, 16))
            {
                out.push(b);
                i += 3;
                continue;
            }
            out.push(bytes[i]);
            i += 1;
        }
        return String::from_utf8_lossy(&out).into_owned();
    }
    body.to_string()
}

mod base64_decode {
    pub fn decode(s: &str) -> Vec<u8> {
        let table = |c: u8| -> Option<u8> {
            Some(match c {
                b'A'..=b'Z' => c - b'A',
                b'a'..=b'z' => c - b'a' + 26,
                b'0'..=b'9' => c - b'0' + 52,
                b'+' => 62,
                b'/' => 63,
                _ => return None,
            })
        };
        let mut out = Vec::new();
        let mut buf = 0u32;
        let mut bits = 0;
        for c in s.bytes().filter_map(table) {
            buf = (buf << 6) | u32::from(c);
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                out.push((buf >> bits) as u8);
            }
        }
        out
    }
}

/// Waits for a message to `to` whose subject contains `subject`; returns (headers+body, body).
pub fn wait_mail(
    smtp: &Smtp,
    to: &str,
    subject: &str,
    seen: &mut std::collections::HashSet<PathBuf>,
) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let new = smtp.maildir.join("new");
        if let Ok(rd) = std::fs::read_dir(&new) {
            let mut files: Vec<_> = rd.flatten().map(|e| e.path()).collect();
            files.sort();
            for f in files {
                if seen.contains(&f) {
                    continue;
                }
                let raw = std::fs::read_to_string(&f).unwrap_or_default();
                let headers = raw.split("\r\n\r\n").next().unwrap_or("").to_string()
                    + raw.split("\n\n").next().unwrap_or("");
                if headers.contains(to) && decode_subject(&headers).contains(subject) {
                    seen.insert(f);
                    return decode_body(&raw);
                }
            }
        }
        assert!(Instant::now() < deadline, "no e-mail to {to} about {subject}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The headers with their RFC 2047 encoded words (`=?utf-8?b?…?=`, what non-ASCII subjects
/// are sent as) decoded, so that a subject is found as people read it.
pub fn decode_subject(headers: &str) -> String {
    use base64::Engine as _;
    let mut out = String::new();
    let mut rest = headers;
    while let Some(i) = rest.find("=?") {
        out.push_str(&rest[..i]);
        let word = &rest[i + 2..];
        let parts: Vec<&str> = word.splitn(3, '?').collect();
        let end = parts.get(2).and_then(|p| p.find("?="));
        match (parts.as_slice(), end) {
            ([_, enc, text], Some(e)) if enc.eq_ignore_ascii_case("b") => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(&text[..e])
                    .unwrap_or_default();
                out.push_str(&String::from_utf8_lossy(&bytes));
                rest = &text[e + 2..];
                // Adjacent encoded words are joined without the folding between them.
                let trimmed = rest.trim_start();
                if trimmed.starts_with("=?") {
                    rest = trimmed;
                }
            }
            _ => {
                out.push_str("=?");
                rest = word;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Camille MARTIN's INS in the demo (her NIR is fictitious: department 99).
pub fn camille_ins() -> String {
    let nir = format!("2{}99{:06}", "8403", 1);
    let key = 97 - nir.parse::<u64>().unwrap() % 97;
    format!("{nir}{key:02}")
}

/// A demo professional's bearer token (`POST /api/v1/pro/demo-login`).
pub async fn pro_token(c: &reqwest::Client, base: &str, rpps: &str) -> String {
    let r = post(
        c,
        &format!("{base}/api/v1/pro/demo-login"),
        As::Anonymous,
        &json!({ "rpps": rpps }),
    )
    .await;
    assert_eq!(r.status(), 200);
    r.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string()
}

/// What the demo "sent" (its outbox), newest first.
pub async fn outbox(c: &reqwest::Client, base: &str) -> Vec<Value> {
    get(c, &format!("{base}/demo/outbox.json"), As::Anonymous)
        .await
        .json::<Vec<Value>>()
        .await
        .unwrap()
}

/// A fresh PostgreSQL schema of `CARNET_TEST_DATABASE_URL`, as a URL (None when unset).
pub async fn pg_schema_url() -> Option<String> {
    let base = std::env::var("CARNET_TEST_DATABASE_URL")
        .ok()
        .filter(|s| !s.is_empty())?;
    let schema = format!("e2e_{}", uuid::Uuid::new_v4().simple());
    let pool = sqlx::PgPool::connect(&base)
        .await
        .expect("connect to CARNET_TEST_DATABASE_URL");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&pool)
        .await
        .expect("create schema");
    pool.close().await;
    let sep = if base.contains('?') { '&' } else { '?' };
    Some(format!("{base}{sep}options=-c%20search_path%3D{schema}"))
}

/// The operator token `carnet demo` writes in its data directory.
pub fn operator_token(data: &Path) -> String {
    std::fs::read_to_string(data.join("operator.token"))
        .expect("operator.token")
        .trim()
        .to_string()
}

/// GET `url` with a holder's session cookie: the JSON answer.
pub async fn get_as(c: &reqwest::Client, url: &str, cookie: &str) -> Value {
    get(c, url, As::Cookie(cookie)).await.json().await.unwrap()
}

/// An establishment's system registered by the operator (`client_id`, FINESS `finess`) and
/// its access token (SMART Backend Services: a client assertion signed with its P-384 key).
pub async fn system_token(
    c: &reqwest::Client,
    base: &str,
    operator: &str,
    client_id: &str,
    finess: &str,
) -> String {
    system_token_with(c, base, operator, client_id, finess, "system/*.read").await
}

/// [`system_token`] with the SMART `scope` asked for.
pub async fn system_token_with(
    c: &reqwest::Client,
    base: &str,
    operator: &str,
    client_id: &str,
    finess: &str,
    scope: &str,
) -> String {
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, &rng).unwrap();
    let kp = EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
    let pt = kp.public_key().as_ref().to_vec();
    let jwk = json!({"kty": "EC", "crv": "P-384", "x": b64.encode(&pt[1..49]), "y": b64.encode(&pt[49..])});
    let r = post(
        c,
        &format!("{base}/api/v1/operator/system-clients"),
        As::Bearer(operator),
        &json!({"client_id": client_id, "finess": finess, "name": "Système d'établissement", "jwk": jwk}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let token_url = format!("{base}/oauth/token");
    let h = b64.encode(json!({"alg": "ES384", "typ": "JWT", "kid": "k1"}).to_string());
    let p = b64.encode(
        json!({"iss": client_id, "sub": client_id, "aud": token_url, "exp": now + 120, "jti": format!("{client_id}-{now}")})
            .to_string(),
    );
    let sig = kp.sign(&rng, format!("{h}.{p}").as_bytes()).unwrap();
    let assertion = format!("{h}.{p}.{}", b64.encode(sig.as_ref()));
    let body = browser::encode(&[
        ("grant_type", "client_credentials"),
        ("scope", scope),
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ),
        ("client_assertion", &assertion),
    ]);
    let r = c
        .post(token_url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The text of a PDF as an independent reader (pypdf, in the test tools' venv) extracts it;
/// `None` without the test tools (CI always has them).
pub fn pdf_text(path: &Path) -> Option<String> {
    let python = std::env::var("CARNET_TEST_PYTHON").ok()?;
    let out = Command::new(python)
        .args([
            "-c",
            "import sys, pypdf\nr = pypdf.PdfReader(sys.argv[1])\nprint(len(r.pages))\n\
             print('\\n\\f\\n'.join(p.extract_text() for p in r.pages))",
        ])
        .arg(path)
        .output()
        .expect("run pypdf");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    Some(String::from_utf8(out.stdout).expect("UTF-8 text"))
}

/// Whether `text` holds something like `2026-12-07T10:42` or `2026-12-07 10:42`.
pub fn has_iso_timestamp(text: &str) -> bool {
    let b = text.as_bytes();
    let d = |i: usize| b.get(i).is_some_and(u8::is_ascii_digit);
    (0..b.len()).any(|i| {
        (0..4).all(|k| d(i + k))
            && b.get(i + 4) == Some(&b'-')
            && d(i + 5)
            && d(i + 6)
            && b.get(i + 7) == Some(&b'-')
            && d(i + 8)
            && d(i + 9)
            && matches!(b.get(i + 10), Some(b'T' | b' '))
            && d(i + 11)
            && d(i + 12)
            && b.get(i + 13) == Some(&b':')
    })
}

/// A demo person's INS (see `carnet/src/demo.rs`), e.g. Camille MARTIN's `demo_ins('2', "8403", 1)`.
pub fn demo_ins(sex: char, yymm: &str, n: u32) -> String {
    let nir = format!("{sex}{yymm}99{n:06}");
    let key = 97 - nir.parse::<u64>().unwrap() % 97;
    format!("{nir}{key:02}")
}

/// A demo server and Léa's provisional code, as the demo prints it (her letter went by
/// e-mail): `(demo, code)`.
pub fn start_demo_with_leas_code(data: &Path) -> (Demo, String) {
    let (demo, line) = start_demo_reading(data, "provisional code");
    let code = line
        .split_once("provisional code ")
        .map(|(_, rest)| rest.split_whitespace().next().unwrap_or(""))
        .unwrap_or_else(|| panic!("no code in {line}"))
        .to_string();
    (demo, code)
}

/// The SHA-256 of `bytes` in lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    carnet_store::crypto::sha256_hex(bytes)
}
