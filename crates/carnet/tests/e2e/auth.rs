//! End-to-end: the holder's way in, against a real SMTP server (aiosmtpd from PyPI, started by
//! the test): roster import -> information letter by e-mail -> activation (LC-4) -> login with
//! password and a one-time code by e-mail (AU-1) -> session, new-device notice (AU-3) -> logout
//! everywhere; limits and answers that do not reveal accounts. And the demo: a parent switches
//! to a child's space (MI-1).

use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activation_login_with_emailed_code_session_and_logout_everywhere() {
    let (t, data) = fresh_dir();
    let Some(smtp) = start_smtp(t.path()) else {
        eprintln!("CARNET_TEST_PYTHON not set (no aiosmtpd): SMTP case skipped");
        return;
    };
    let email = "zoe.testeur@example.org";
    let ins = ins_for(21);
    let objector = "yves.refus@example.org";
    let objector_ins = ins_for(22);
    init_with_roster(
        &data,
        &format!(
            "ins,birth_name,given_names,sex,birth_date,email,card_serial\n\
             {ins},TESTEUR,Zoé,F,1990-04-04,{email},8250 0123 45\n\
             {objector_ins},REFUS,Yves,M,1960-02-02,{objector},\n"
        ),
    );
    let smtp_url = format!("smtp://127.0.0.1:{}", smtp.port);
    let s = Server::start(
        &data,
        &[],
        &[
            ("CARNET_SMTP_URL", &smtp_url),
            ("CARNET_MAIL_FROM", "Carnet <noreply@carnet.test>"),
        ],
    );
    let c = client();
    let mut seen = Default::default();

    // LC-2: the information letter, by real e-mail, carries the provisional code.
    let letter = wait_mail(&smtp, email, "Carnet", &mut seen);
    let code = find_after(&letter, "code provisoire d'activation : ", 12);
    assert_eq!(code.len(), 12, "{letter}");

    // LC-3: the other person objects online, in two steps, and gets a proof of refusal.
    let letter2 = wait_mail(&smtp, objector, "Carnet", &mut seen);
    let code2 = find_after(&letter2, "code provisoire d'activation : ", 12);
    let step1 = post(
        &c,
        &s.url("/api/v1/opposition"),
        As::Anonymous,
        &json!({"ins": objector_ins, "activation_code": code2}),
    )
    .await;
    assert_eq!(step1.status(), 200);
    let step1: Value = step1.json().await.unwrap();
    assert!(step1["message"].as_str().unwrap().contains("aucun espace"));
    let forged = post(
        &c,
        &s.url("/api/v1/opposition/confirm"),
        As::Anonymous,
        &json!({"ins": objector_ins, "activation_code": code2, "confirmation": "0".repeat(64)}),
    )
    .await;
    assert_eq!(forged.status(), 400, "the confirmation step cannot be skipped");
    let done = post(
        &c,
        &s.url("/api/v1/opposition/confirm"),
        As::Anonymous,
        &json!({"ins": objector_ins, "activation_code": code2, "confirmation": step1["confirmation"]}),
    )
    .await;
    assert_eq!(done.status(), 200);
    let reference = done.json::<Value>().await.unwrap()["reference"]
        .as_str()
        .unwrap()
        .to_string();
    let proof = wait_mail(&smtp, objector, "opposition", &mut seen);
    assert!(proof.contains(&reference), "{proof}");
    let r = post(&c, &s.url("/api/v1/activation"), As::Anonymous, &json!({"ins": objector_ins, "activation_code": code2, "login": objector, "password": "un mot de passe solide"})).await;
    assert_eq!(r.status(), 409, "an opposed person has no space to activate");

    // LC-4: a wrong code or card number gets the same answer as a right one would not.
    let activate = |code: &str, serial: &str| {
        c.post(s.url("/api/v1/activation"))
            .json(&json!({"ins": ins, "activation_code": code, "card_serial": serial, "login": email, "password": "un mot de passe solide"}))
            .send()
    };
    let bad1 = activate("AAAAAAAAAAAA", "8250012345").await.unwrap();
    let bad2 = activate(&code, "0000000000").await.unwrap();
    assert_eq!(bad1.status(), 401);
    assert_eq!(bad2.status(), 401);
    assert_eq!(
        bad1.text().await.unwrap(),
        bad2.text().await.unwrap(),
        "mismatches are indistinguishable"
    );
    let weak = post(&c, &s.url("/api/v1/activation"), As::Anonymous, &json!({"ins": ins, "activation_code": code, "card_serial": "8250012345", "login": email, "password": "court"})).await;
    assert_eq!(weak.status(), 400);
    assert_eq!(activate(&code, "8250012345").await.unwrap().status(), 201);

    // AU-1: wrong password and unknown login answer alike.
    let login = |l: &str, p: &str| {
        c.post(s.url("/api/v1/auth/login"))
            .json(&json!({"login": l, "password": p}))
            .send()
    };
    let wrong = login(email, "pas le bon mot de passe").await.unwrap();
    let unknown = login("nobody@example.org", "pas le bon mot de passe")
        .await
        .unwrap();
    assert_eq!((wrong.status().as_u16(), unknown.status().as_u16()), (401, 401));
    assert_eq!(wrong.text().await.unwrap(), unknown.text().await.unwrap());

    let r = login(email, "un mot de passe solide").await.unwrap();
    assert_eq!(r.status(), 200);
    // The device cookie this browser keeps (AU-3; its own login budget once known).
    let device = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("carnet_device="))
        .map(|v| v.split(';').next().unwrap().to_string())
        .expect("a device cookie");
    let challenge = r.json::<Value>().await.unwrap()["challenge"]
        .as_str()
        .unwrap()
        .to_string();
    let mail = wait_mail(&smtp, email, "code de connexion", &mut seen);
    let otp = find_after(&mail, "Votre code de connexion : ", 6);
    let verify = |code: &str| {
        c.post(s.url("/api/v1/auth/verify"))
            .json(&json!({"challenge": challenge, "code": code}))
            .send()
    };
    let wrong_otp = if otp == "000000" { "000001" } else { "000000" };
    assert_eq!(verify(wrong_otp).await.unwrap().status(), 401);
    let ok = verify(&otp).await.unwrap();
    assert_eq!(ok.status(), 200);
    let set_cookie = ok
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect::<Vec<_>>();
    let session = session_cookie(&ok);
    assert!(set_cookie.iter().any(|c| c.starts_with("__Host-carnet_session=")
        && c.contains("HttpOnly")
        && c.contains("Secure")
        && c.contains("SameSite=Lax")));
    assert_eq!(verify(&otp).await.unwrap().status(), 401, "a code is single use");
    // AU-3: first login from this device: the holder is told.
    wait_mail(&smtp, email, "Nouvelle connexion", &mut seen);

    let me = get(&c, &s.url("/api/v1/me"), As::Cookie(&session)).await;
    assert_eq!(me.status(), 200);
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["administrative"]["birth_name"], "TESTEUR");
    assert_eq!(me["lifecycle"], "activated");
    assert_eq!(
        get(&c, &s.url("/api/v1/me"), As::Anonymous).await.status(),
        401,
        "no cookie, no data"
    );

    // ID-2: contact rectification. The postal address changes at once; a new e-mail address
    // only with the code sent to it (a stolen session cannot send the codes elsewhere), and
    // the former address is told.
    let patch_contact = |body: Value| {
        c.patch(s.url("/api/v1/me/contact"))
            .header("cookie", &session)
            .json(&body)
            .send()
    };
    let r = patch_contact(json!({"address": "3 rue des Lilas, 69003 Lyon"}))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = patch_contact(json!({"email": "pas une adresse"})).await.unwrap();
    assert_eq!(r.status(), 400);
    let new_email = "eve.nouvelle@example.org";
    let r = patch_contact(json!({"email": new_email})).await.unwrap();
    assert_eq!(r.status(), 202);
    let pending: Value = r.json().await.unwrap();
    assert_eq!(pending["administrative"]["email"], email, "not yet: {pending}");
    let mail = wait_mail(&smtp, new_email, "confirmer vos coordonnées", &mut seen);
    let code = find_after(&mail, "Votre code : ", 6);
    let confirm = |code: &str| {
        c.post(s.url("/api/v1/me/contact/confirm"))
            .header("cookie", &session)
            .json(&json!({"field": "email", "value": new_email, "challenge": pending["pending"]["challenge"], "code": code}))
            .send()
    };
    let wrong = if code == "000000" { "000001" } else { "000000" };
    assert!(confirm(wrong).await.unwrap().status().is_client_error());
    assert_eq!(confirm(&code).await.unwrap().status(), 200);
    wait_mail(&smtp, email, "coordonnées Carnet ont été changées", &mut seen);
    // ID-3: export.
    let export: Value = get(&c, &s.url("/api/v1/me/export"), As::Cookie(&session))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(export["administrative"]["email"], new_email);
    assert_eq!(export["administrative"]["address"], "3 rue des Lilas, 69003 Lyon");
    assert_eq!(export["space"]["lifecycle"], "activated");
    let patient = &export["fhir"]["entry"][0]["resource"];
    assert_eq!(patient["resourceType"], "Patient");
    assert_eq!(patient["identifier"][0]["value"], ins.as_str());
    assert!(
        patient["telecom"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["value"] == new_email),
        "{patient}"
    );
    let html = get(&c, &s.url("/mon-espace/export"), As::Cookie(&session))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("Copie de votre espace") && html.contains("TESTEUR"),
        "{html}"
    );

    // Logout everywhere ends this session.
    let r = c
        .post(s.url("/api/v1/auth/logout-everywhere"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        get(&c, &s.url("/api/v1/me"), As::Cookie(&session)).await.status(),
        401
    );

    // Brute force: the account's bucket fills (10 per 15 minutes), then 429 — for unknown
    // accounts too, so the limit does not reveal which exist.
    let mut statuses = Vec::new();
    for _ in 0..10 {
        statuses.push(
            login(email, "encore une mauvaise tentative")
                .await
                .unwrap()
                .status()
                .as_u16(),
        );
    }
    assert_eq!(*statuses.last().unwrap(), 429, "{statuses:?}");
    // ... but not the owner: the device she logged in from keeps its own budget (OWASP's
    // device cookies), so a stranger's failures never lock her out.
    let r = post(
        &c,
        &s.url("/api/v1/auth/login"),
        As::Cookie(&device),
        &json!({"login": email, "password": "un mot de passe solide"}),
    )
    .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    for _ in 0..11 {
        statuses.push(
            login("ghost@example.org", "encore une mauvaise tentative")
                .await
                .unwrap()
                .status()
                .as_u16(),
        );
    }
    assert_eq!(*statuses.last().unwrap(), 429, "{statuses:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_needs_confirmation_and_then_nobody_logs_in() {
    let (t, data) = fresh_dir();
    // Demo data gives an activated holder; the demo mailbox shows the codes.
    let demo = start_demo(&data);
    let base = demo.base.clone();
    let _ = t;
    let c = client();
    let session = demo_login(&c, &base, "lucas.bernard@demo.carnet.invalid").await;
    let r: Value = c
        .post(format!("{base}/api/v1/me/close"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let confirmation = r["confirmation"].as_str().unwrap().to_string();
    assert!(r["message"].as_str().unwrap().contains("10 ans"));
    let bad = post(
        &c,
        &format!("{base}/api/v1/me/close/confirm"),
        As::Cookie(&session),
        &json!({"confirmation": "x"}),
    )
    .await;
    assert_eq!(bad.status(), 400);
    let ok = post(
        &c,
        &format!("{base}/api/v1/me/close/confirm"),
        As::Cookie(&session),
        &json!({"confirmation": confirmation}),
    )
    .await;
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.json::<Value>().await.unwrap()["lifecycle"], "closed");
    assert_eq!(
        get(&c, &format!("{base}/api/v1/me"), As::Cookie(&session))
            .await
            .status(),
        401
    );
    let again = post(
        &c,
        &format!("{base}/api/v1/auth/login"),
        As::Anonymous,
        &json!({"login": "lucas.bernard@demo.carnet.invalid", "password": "demo-carnet-2026"}),
    )
    .await;
    // The right password to a closed space says it is closed (only its holder gets this far),
    // so that the login page can offer to reopen it; a wrong one is refused as ever.
    assert_eq!(
        again.status(),
        409,
        "nobody logs into a closed space without reopening it"
    );
    assert_eq!(again.json::<Value>().await.unwrap()["error"], "closed");
    let wrong = post(
        &c,
        &format!("{base}/api/v1/auth/login"),
        As::Anonymous,
        &json!({"login": "lucas.bernard@demo.carnet.invalid", "password": "not-the-password"}),
    )
    .await;
    assert_eq!(wrong.status(), 401);
    // LC-5: within the 10 years, the holder reopens it with password and code, and finds it all.
    let r: Value = post(&c, &format!("{base}/api/v1/auth/login"), As::Anonymous, &json!({"login": "lucas.bernard@demo.carnet.invalid", "password": "demo-carnet-2026", "reopen": true})).await
        .json()
        .await
        .unwrap();
    let code = wait_demo_code(&c, &base, "lucas.bernard@demo.carnet.invalid", 2).await;
    let ok = post(
        &c,
        &format!("{base}/api/v1/auth/verify"),
        As::Anonymous,
        &json!({"challenge": r["challenge"], "code": code, "reopen": true}),
    )
    .await;
    assert_eq!(ok.status(), 200);
    let session = session_cookie(&ok);
    let me: Value = get(&c, &format!("{base}/api/v1/me"), As::Cookie(&session))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["lifecycle"], "activated");
    assert_eq!(me["administrative"]["birth_name"], "BERNARD");
}

/// The newest login code for `login` in the demo outbox, once there are at least `n` of them.
async fn wait_demo_code(c: &reqwest::Client, base: &str, login: &str, n: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let msgs: Value = get(c, &format!("{base}/demo/outbox.json"), As::Anonymous)
            .await
            .json()
            .await
            .unwrap();
        let codes: Vec<&Value> = msgs
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["to"] == login && m["subject"].as_str().unwrap().contains("code de connexion"))
            .collect();
        if codes.len() >= n {
            return find_after(
                codes[0]["body"].as_str().unwrap(),
                "Votre code de connexion : ",
                6,
            );
        }
        assert!(Instant::now() < deadline, "no code in the demo outbox");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parent_switches_to_a_childs_space_and_only_there() {
    let (_t, data) = fresh_dir();
    let demo = start_demo(&data);
    let base = demo.base.clone();
    let c = client();
    let camille = demo_login(&c, &base, "camille.martin@demo.carnet.invalid").await;
    let me: Value = get(&c, &format!("{base}/api/v1/me"), As::Cookie(&camille))
        .await
        .json()
        .await
        .unwrap();
    let spaces = me["spaces"].as_array().unwrap();
    assert_eq!(spaces.len(), 3, "her own and her two children's: {spaces:?}");
    let child_id = spaces.iter().find(|s| s["relation"] == "parent").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = post(
        &c,
        &format!("{base}/api/v1/me/act-for"),
        As::Cookie(&camille),
        &json!({"holder": child_id}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let me: Value = get(&c, &format!("{base}/api/v1/me"), As::Cookie(&camille))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["acting_for"], child_id.as_str());
    assert_ne!(
        me["logged_in_as"], me["acting_for"],
        "the representative stays themselves (S-6)"
    );
    assert_eq!(me["administrative"]["birth_name"], "MARTIN");
    assert!(
        me["administrative"]["given_names"][0] == "Inès" || me["administrative"]["given_names"][0] == "Hugo"
    );
    // Lucas represents nobody: switching to the child is refused as if it did not exist.
    let lucas = demo_login(&c, &base, "lucas.bernard@demo.carnet.invalid").await;
    let r = post(
        &c,
        &format!("{base}/api/v1/me/act-for"),
        As::Cookie(&lucas),
        &json!({"holder": child_id}),
    )
    .await;
    assert_eq!(r.status(), 404);
}

/// A stand-in SMS provider's HTTP API, recording what it is asked to send.
async fn sms_gateway() -> (String, std::sync::Arc<std::sync::Mutex<Vec<(String, Value)>>>) {
    use std::sync::{Arc, Mutex};
    let got: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
    let g = got.clone();
    let app = axum::Router::new().route(
        "/send",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, axum::Json(v): axum::Json<Value>| {
                let g = g.clone();
                async move {
                    let auth = headers
                        .get("authorization")
                        .and_then(|h| h.to_str().ok())
                        .unwrap_or("")
                        .to_string();
                    g.lock().unwrap().push((auth, v));
                    "ok"
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/send"), got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_code_by_sms_through_the_gateway() {
    let (t, data) = fresh_dir();
    let Some(smtp) = start_smtp(t.path()) else {
        eprintln!("CARNET_TEST_PYTHON not set (no aiosmtpd): SMS case skipped");
        return;
    };
    let ins = ins_for(31);
    let email = "eve.sms@example.org";
    init_with_roster(
        &data,
        &format!(
            "ins,birth_name,given_names,sex,birth_date,email,phone\n{ins},SMS,Eve,F,1970-01-01,{email},+33611223344\n"
        ),
    );
    let (gateway, got) = sms_gateway().await;
    let smtp_url = format!("smtp://127.0.0.1:{}", smtp.port);
    let s = Server::start(
        &data,
        &[],
        &[
            ("CARNET_SMTP_URL", &smtp_url),
            ("CARNET_SMS_GATEWAY_URL", &gateway),
            ("CARNET_SMS_GATEWAY_TOKEN", "gw-secret"),
        ],
    );
    let c = client();
    let mut seen = Default::default();
    let letter = wait_mail(&smtp, email, "Carnet", &mut seen);
    let code = find_after(&letter, "code provisoire d'activation : ", 12);
    let r = post(
        &c,
        &s.url("/api/v1/activation"),
        As::Anonymous,
        &json!({"ins": ins, "activation_code": code, "login": "eve", "password": "un mot de passe solide"}),
    )
    .await;
    assert_eq!(r.status(), 201);
    // First login: code by e-mail. Then Eve removes her e-mail address (ID-2)...
    let r: Value = post(
        &c,
        &s.url("/api/v1/auth/login"),
        As::Anonymous,
        &json!({"login": "eve", "password": "un mot de passe solide"}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(r["channel"], "email");
    let mail = wait_mail(&smtp, email, "code de connexion", &mut seen);
    let otp = find_after(&mail, "Votre code de connexion : ", 6);
    let ok = post(
        &c,
        &s.url("/api/v1/auth/verify"),
        As::Anonymous,
        &json!({"challenge": r["challenge"], "code": otp}),
    )
    .await;
    let session = session_cookie(&ok);
    let r = c
        .patch(s.url("/api/v1/me/contact"))
        .header("cookie", &session)
        .json(&json!({"email": ""}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // ...so the next code goes by SMS, through the gateway, with its token.
    let r: Value = post(
        &c,
        &s.url("/api/v1/auth/login"),
        As::Anonymous,
        &json!({"login": "eve", "password": "un mot de passe solide"}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(r["channel"], "sms");
    let deadline = Instant::now() + Duration::from_secs(20);
    let (auth, sms) = loop {
        if let Some(m) = got.lock().unwrap().first().cloned() {
            break m;
        }
        assert!(Instant::now() < deadline, "no SMS reached the gateway");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(auth, "Bearer gw-secret");
    assert_eq!(sms["to"], "+33611223344");
    let text = sms["text"].as_str().unwrap();
    let sms_code = find_after(text, "votre code de connexion est ", 6);
    let ok = post(
        &c,
        &s.url("/api/v1/auth/verify"),
        As::Anonymous,
        &json!({"challenge": r["challenge"], "code": sms_code}),
    )
    .await;
    assert_eq!(ok.status(), 200);
    assert!(
        !text.to_lowercase().contains("sms, eve"),
        "no identity in the SMS"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn totp_replaces_the_sent_code_once_enabled() {
    let (_t, data) = fresh_dir();
    let demo = start_demo(&data);
    let base = demo.base.clone();
    let c = client();
    let login = "camille.martin@demo.carnet.invalid";
    let session = demo_login(&c, &base, login).await;
    let r: Value = c
        .post(format!("{base}/api/v1/me/totp"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let b32 = r["secret_base32"].as_str().unwrap();
    assert!(
        r["otpauth_uri"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/Carnet:")
    );
    let secret = base32_decode(b32);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let code = carnet_store::Store::totp_code(&secret, now).unwrap();
    let r = post(
        &c,
        &format!("{base}/api/v1/me/totp/confirm"),
        As::Cookie(&session),
        &json!({"code": code}),
    )
    .await;
    assert_eq!(r.status(), 200);
    // Next login: no code is sent; the app's code (next step, within the skew) is asked for.
    let r: Value = post(
        &c,
        &format!("{base}/api/v1/auth/login"),
        As::Anonymous,
        &json!({"login": login, "password": "demo-carnet-2026"}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(r["channel"], "totp");
    let next = carnet_store::Store::totp_code(&secret, now + 30).unwrap();
    let ok = post(
        &c,
        &format!("{base}/api/v1/auth/verify"),
        As::Anonymous,
        &json!({"challenge": r["challenge"], "code": next}),
    )
    .await;
    assert_eq!(ok.status(), 200);
}

fn base32_decode(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let (mut buf, mut bits) = (0u32, 0);
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            _ => continue,
        };
        buf = (buf << 5) | u32::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_holder_manages_the_directory_and_reads_the_traces() {
    use carnet_domain::access::*;
    let (_t, data) = fresh_dir();
    let demo = start_demo(&data);
    let base = demo.base.clone();
    let c = client();
    let session = demo_login(&c, &base, "camille.martin@demo.carnet.invalid").await;
    let me: Value = get(&c, &format!("{base}/api/v1/me"), As::Cookie(&session))
        .await
        .json()
        .await
        .unwrap();
    let holder: carnet_domain::HolderId = me["acting_for"].as_str().unwrap().parse().unwrap();
    let post = |path: &str, body: Value| {
        c.post(format!("{base}/api/v1/me{path}"))
            .header("cookie", &session)
            .json(&body)
            .send()
    };
    // AC-3: grant a pharmacist prescriptions only, until a date; declare the médecin traitant.
    let r = post("/access/grants", json!({"kind": "professional", "id": "10000000001", "categories": ["prescriptions", "dispensations"], "until": "2099-01-01T00:00:00Z"})).await.unwrap();
    assert_eq!(r.status(), 200);
    let r = put(
        &c,
        &format!("{base}/api/v1/me/access/settings"),
        As::Cookie(&session),
        &json!({"medecin_traitant": "10000000009", "regulation_consent": true}),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        post("/access/blocked", json!({"professional": "10000000666"}))
            .await
            .unwrap()
            .status(),
        201
    );
    assert_eq!(
        post("/access/grants", json!({"kind": "professional", "id": "123"}))
            .await
            .unwrap()
            .status(),
        400,
        "RPPS checked"
    );
    assert_eq!(
        post(
            "/access/grants",
            json!({"kind": "professional", "id": "10000000002", "until": "2001-01-01T00:00:00Z"})
        )
        .await
        .unwrap()
        .status(),
        400,
        "past date refused"
    );
    let shown: Value = get(&c, &format!("{base}/api/v1/me/access"), As::Cookie(&session))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(shown["medecin_traitant"], "10000000009");
    assert_eq!(shown["blocked"][0], "10000000666");
    let granted = shown["grants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["grantee"]["id"] == "10000000001")
        .expect("the new grant is listed");
    assert_eq!(granted["categories"], json!(["prescriptions", "dispensations"]));

    // A second process (as another server would) checks accesses through the gate on the same
    // databases: the directory changes made over HTTP apply at once.
    let settings = carnet_store::datadir::StoreSettings::new(&data);
    let store = carnet_store::datadir::open_store(&settings, std::sync::Arc::new(carnet_domain::SystemClock))
        .await
        .unwrap();
    let gate = carnet_store::gate::Gate::new(store.clone(), HabilitationMatrix::default_matrix());
    let facts = ItemFacts {
        category: Category::Prescriptions,
        author: Author::Holder,
        masked: false,
        hidden_from_representatives: false,
        visible_to_holder: true,
    };
    let pharmacist = Actor::Professional {
        id: ProfessionalId("10000000001".into()),
        profession: "pharmacien".into(),
        role: PracticeRole::Care,
    };
    let blocked = Actor::Professional {
        id: ProfessionalId("10000000666".into()),
        profession: "medecin".into(),
        role: PracticeRole::Care,
    };
    assert!(
        gate.check(
            holder,
            &pharmacist,
            Action::Read,
            "document/ordonnance",
            &facts,
            &Context::default()
        )
        .await
        .unwrap()
        .allowed
    );
    assert!(
        !gate
            .check(
                holder,
                &blocked,
                Action::Read,
                "document/ordonnance",
                &facts,
                &Context::default()
            )
            .await
            .unwrap()
            .allowed
    );
    // S-4: revoking over HTTP cuts the pharmacist off on the very next check.
    let r = delete(
        &c,
        &format!("{base}/api/v1/me/access/grants/professional/10000000001"),
        As::Cookie(&session),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert!(
        !gate
            .check(
                holder,
                &pharmacist,
                Action::Read,
                "document/ordonnance",
                &facts,
                &Context::default()
            )
            .await
            .unwrap()
            .allowed
    );

    // AC-6: the holder reads the history, newest first, and can filter it.
    let t: Value = get(&c, &format!("{base}/api/v1/me/traces"), As::Cookie(&session))
        .await
        .json()
        .await
        .unwrap();
    // The demo's own deposits are traced too; look at the accesses made here.
    let list: Vec<&Value> = t["traces"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["item"] == "document/ordonnance")
        .collect();
    assert_eq!(list.len(), 3, "{t}");
    assert_eq!(list[0]["allowed"], false);
    assert_eq!(list[2]["allowed"], true);
    assert_eq!(list[2]["actor"]["id"], "10000000001");
    assert_eq!(list[1]["reason"], "blocked");
    let denied: Value = get(
        &c,
        &format!("{base}/api/v1/me/traces?allowed=false"),
        As::Cookie(&session),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(denied["traces"].as_array().unwrap().len(), 2);
    // The allowed access was told to the holder at once, without health content.
    let msgs: Value = get(&c, &format!("{base}/demo/outbox.json"), As::Anonymous)
        .await
        .json()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut found = msgs
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["subject"].as_str().unwrap().contains("accès"));
    while !found && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let msgs: Value = get(&c, &format!("{base}/demo/outbox.json"), As::Anonymous)
            .await
            .json()
            .await
            .unwrap();
        found = msgs.as_array().unwrap().iter().any(|m| {
            m["subject"].as_str().unwrap().contains("accès")
                && m["to"] == "camille.martin@demo.carnet.invalid"
        });
    }
    assert!(found, "an access notice reached the holder");
    store.db().close().await;
}
