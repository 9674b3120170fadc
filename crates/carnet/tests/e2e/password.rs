//! End-to-end: passwords through the web pages (AU-1). A forgotten one is replaced with a code
//! sent to the e-mail on file and the birth date as second proof; a known one is changed from
//! "Mon espace". Every other session ends and the holder is told; a reset code never opens a
//! session; a wrong birth date or an unknown login gets the very same page as a right one.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::browser::{Browser, LOGIN};
use crate::common::*;

/// Bodies of the demo outbox's messages to Camille whose subject contains `subject`.
async fn messages(c: &reqwest::Client, base: &str, subject: &str) -> Vec<String> {
    let all: Value = get_json(c, &format!("{base}/demo/outbox.json"), As::Anonymous).await;
    all.as_array()
        .unwrap()
        .iter()
        .filter(|m| m["to"] == LOGIN && m["subject"].as_str().unwrap_or("").contains(subject))
        .map(|m| m["body"].as_str().unwrap().to_string())
        .collect()
}

/// Waits for the `n`th message with `subject` (the outbox is delivered in the background).
async fn nth_message(c: &reqwest::Client, base: &str, subject: &str, n: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let found = messages(c, base, subject).await;
        if found.len() >= n {
            return found[0].clone();
        }
        assert!(Instant::now() < deadline, "no message '{subject}' #{n}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The page without what differs by design from one request to the next.
fn stripped(html: &str) -> String {
    html.split('"')
        .filter(|part| uuid::Uuid::parse_str(part).is_err() && part.len() != 64 && part.len() != 43)
        .collect::<Vec<_>>()
        .join("\"")
}

/// Borrowed pairs of an owned form, as `Browser::post` takes them.
fn pairs<'a>(form: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    form.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

async fn login_status(w: &World, password: &str) -> u16 {
    post(
        &w.c,
        &format!("{}/api/v1/auth/login", w.base),
        As::Anonymous,
        &json!({ "login": LOGIN, "password": password }),
    )
    .await
    .status()
    .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forgotten_password_is_replaced_with_a_code_and_the_birth_date_au1() {
    let w = World::start().await;
    let mut b = Browser::new(&w.base);
    let p = b.get("/connexion").await;
    assert!(p.html.contains("href=\"/connexion/oubli\""), "{}", p.html);
    let p = b.get("/connexion/oubli").await;
    assert_eq!(p.status, 200);
    let csrf = p.csrf();
    let subject = "nouveau mot de passe";

    // A wrong birth date, an unknown login and the right pair get the same page; one code goes.
    let mut pages = Vec::new();
    for (login, birth) in [
        (LOGIN, "13/03/1984"),
        ("personne@nulle.part.invalid", "12/03/1984"),
        (LOGIN, "12/03/1984"),
    ] {
        let p = b
            .post(
                "/connexion/oubli",
                &[("csrf", &csrf), ("login", login), ("naissance", birth)],
            )
            .await;
        assert_eq!(p.status, 200, "{}", p.html);
        assert!(p.html.contains("Choisir un nouveau mot de passe"));
        pages.push(p);
    }
    assert_eq!(stripped(&pages[0].html), stripped(&pages[1].html));
    assert_eq!(stripped(&pages[0].html), stripped(&pages[2].html));
    let body = nth_message(&w.c, &w.base, subject, 1).await;
    let code = find_after(&body, "Votre code : ", 6);
    assert_eq!(
        messages(&w.c, &w.base, subject).await.len(),
        1,
        "one code for the right pair only"
    );
    let challenge = {
        let html = &pages[2].html;
        let i = html.find("name=\"challenge\" value=\"").unwrap() + 24;
        html[i..].split('"').next().unwrap().to_string()
    };

    // The reset code proves no password: it opens no session (and stays usable).
    let r = post(
        &w.c,
        &format!("{}/api/v1/auth/verify", w.base),
        As::Anonymous,
        &json!({ "challenge": challenge, "code": code }),
    )
    .await;
    assert_eq!(r.status(), 401);

    // Bad new passwords: French words, nothing changed.
    let csrf = pages[2].csrf();
    let form = |pw: &'static str, again: &'static str| {
        vec![
            ("csrf", csrf.clone()),
            ("challenge", challenge.clone()),
            ("code", code.clone()),
            ("motdepasse", pw.to_string()),
            ("confirmation", again.to_string()),
        ]
    };
    let p = b
        .post("/connexion/oubli/code", &pairs(&form("court", "court")))
        .await;
    assert_eq!(p.status, 400);
    assert!(p.html.contains("au moins 12 caractères"), "{}", p.html);
    let differ = form("une phrase assez longue", "une autre phrase longue");
    let p = b.post("/connexion/oubli/code", &pairs(&differ)).await;
    assert_eq!(p.status, 400);
    assert!(p.html.contains("ne sont pas identiques"), "{}", p.html);
    assert_eq!(
        login_status(&w, "demo-carnet-2026").await,
        200,
        "still the old password"
    );

    // The right code and a good password: every session ends, the holder is told.
    let good = form("le chat dort sur le canapé", "le chat dort sur le canapé");
    let p = b.post("/connexion/oubli/code", &pairs(&good)).await;
    assert_eq!(p.status, 303, "{}", p.html);
    assert_eq!(p.location(), "/connexion?ok=motdepasse");
    let p = b.get(p.location()).await;
    assert!(p.html.contains("Votre mot de passe est changé"), "{}", p.html);
    let r = get(&w.c, &w.me(""), w.holder()).await;
    assert_eq!(r.status(), 401, "the earlier session ended");
    let told = nth_message(&w.c, &w.base, "a été changé", 1).await;
    assert!(
        told.contains("vos autres appareils ont été déconnectés"),
        "{told}"
    );
    assert_eq!(login_status(&w, "demo-carnet-2026").await, 401);
    assert_eq!(login_status(&w, "le chat dort sur le canapé").await, 200);

    // A used code does not serve twice.
    let p = b.post("/connexion/oubli/code", &pairs(&good)).await;
    assert_eq!(p.status, 401);
    assert!(p.html.contains("Code incorrect ou expiré"), "{}", p.html);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_is_changed_from_my_space_and_other_sessions_end_au1() {
    let w = World::start().await;
    let mut b = Browser::new(&w.base);
    b.login().await;
    let p = b.get("/mon-espace").await;
    assert!(p.html.contains("Mot de passe actuel"), "{}", p.html);
    let csrf = p.csrf();
    let change = |current: &'static str, new: &'static str| {
        vec![
            ("csrf", csrf.clone()),
            ("actuel", current.to_string()),
            ("motdepasse", new.to_string()),
            ("confirmation", new.to_string()),
        ]
    };

    let p = b
        .post(
            "/mon-espace/mot-de-passe",
            &pairs(&change("pas le bon mot de passe", "une phrase assez longue")),
        )
        .await;
    assert_eq!(p.status, 400);
    assert!(
        p.html.contains("pas le bon : rien n&#39;a été changé"),
        "{}",
        p.html
    );
    let p = b
        .post(
            "/mon-espace/mot-de-passe",
            &pairs(&change("demo-carnet-2026", "court")),
        )
        .await;
    assert_eq!(p.status, 400);
    assert!(p.html.contains("au moins 12 caractères"), "{}", p.html);
    assert_eq!(
        login_status(&w, "demo-carnet-2026").await,
        200,
        "nothing changed yet"
    );

    let p = b
        .post(
            "/mon-espace/mot-de-passe",
            &pairs(&change("demo-carnet-2026", "trois petits chats gris")),
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.html);
    let p = b.get(p.location()).await;
    assert_eq!(p.status, 200, "the session that asked stays open");
    assert!(p.html.contains("Votre mot de passe est changé"), "{}", p.html);
    let r = get(&w.c, &w.me(""), w.holder()).await;
    assert_eq!(r.status(), 401, "the other session ended");
    nth_message(&w.c, &w.base, "a été changé", 1).await;
    assert_eq!(login_status(&w, "demo-carnet-2026").await, 401);
    assert_eq!(login_status(&w, "trois petits chats gris").await, 200);
}

/// RFC 4648 base32 without padding, as the page shows a TOTP key.
fn base32_decode(s: &str) -> Vec<u8> {
    const A: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut bits, mut n, mut out) = (0u64, 0u32, Vec::new());
    for c in s.bytes().filter(|c| *c != b' ') {
        let v = A.iter().position(|a| *a == c).expect("a base32 letter") as u64;
        bits = (bits << 5) | v;
        n += 5;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    out
}

async fn login_channel(w: &World) -> String {
    let r = post(
        &w.c,
        &format!("{}/api/v1/auth/login", w.base),
        As::Anonymous,
        &json!({ "login": LOGIN, "password": "demo-carnet-2026" }),
    )
    .await;
    assert_eq!(r.status(), 200);
    r.json::<Value>().await.unwrap()["channel"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Issue 32, journey 1 (AU-1): an authenticator app is set up from "Mon espace" — a key to
/// type, then its first code; a wrong code changes nothing — and removed with a code from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authenticator_app_is_set_up_and_removed_from_my_space_au1() {
    let w = World::start().await;
    let mut b = Browser::new(&w.base);
    b.login().await;
    let p = b.get("/mon-espace").await;
    assert!(
        p.html.contains("Utiliser une application d&#39;authentification")
            || p.html.contains("Utiliser une application d'authentification"),
        "{}",
        p.html
    );
    let setup = b.post("/mon-espace/totp", &[("csrf", &p.csrf())]).await;
    assert_eq!(setup.status, 200, "{}", setup.html);
    let key = {
        let marker = "name=\"secret\" value=\"";
        let i = setup.html.find(marker).unwrap() + marker.len();
        setup.html[i..].split('"').next().unwrap().to_string()
    };
    let secret = base32_decode(&key);
    assert_eq!(secret.len(), 20);
    let csrf = setup.csrf();
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    let right = carnet_store::Store::totp_code(&secret, now()).unwrap();
    let wrong = if right == "000000" { "111111" } else { "000000" };
    let p = b
        .post(
            "/mon-espace/totp/confirmer",
            &[("csrf", &csrf), ("secret", &key), ("code", wrong)],
        )
        .await;
    assert_eq!(p.status, 400);
    assert!(p.html.contains("ne correspond pas"), "{}", p.html);
    assert_eq!(login_channel(&w).await, "email", "nothing changed yet");
    let p = b
        .post(
            "/mon-espace/totp/confirmer",
            &[("csrf", &csrf), ("secret", &key), ("code", &right)],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.html);
    let page = b.get(p.location()).await;
    assert!(
        page.html.contains("vos prochains codes de connexion viendront d"),
        "{}",
        page.html
    );
    assert_eq!(login_channel(&w).await, "totp");

    // Removed with a code of the app (the next one: a code serves once).
    let next = carnet_store::Store::totp_code(&secret, now() + 30).unwrap();
    let p = b
        .post(
            "/mon-espace/totp/retirer",
            &[("csrf", &page.csrf()), ("code", &next)],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.html);
    assert_eq!(login_channel(&w).await, "email");
}
