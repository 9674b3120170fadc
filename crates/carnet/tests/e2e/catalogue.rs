//! End-to-end: the catalogue, the referencing workflow and OAuth 2.0 / SMART on FHIR for apps
//! (issue 9, SPEC CA-1..CA-4) on the real binary (`carnet demo`).
//!
//! A publisher applies, the commission reviews each criterion and gives its opinion, the
//! decision-maker approves with a convention; the holder authorises the app on the consent
//! screen (after logging in through the forms); the app reads and writes within both the
//! convention and the holder's ticks, and is refused outside them; each attack of the OAuth 2.0
//! Security BCP (RFC 9700) that applies to a public client is tried and fails; disconnection
//! and withdrawal end the app's access at once.

use std::collections::HashMap;

use crate::common::browser::*;
use crate::common::*;
use base64::Engine;
use serde_json::{Value, json};

const REDIRECT: &str = "http://127.0.0.1:9/callback";
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

struct Accounts {
    publisher: String,
    commission: String,
    minister: String,
}

async fn account(c: &reqwest::Client, base: &str, operator: &str, role: &str) -> String {
    let r = post(
        c,
        &format!("{base}/api/v1/operator/referencing-accounts"),
        As::Bearer(operator),
        &json!({"role": role, "name": format!("Compte {role}")}),
    )
    .await;
    assert_eq!(r.status(), 201);
    r.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The referencing workflow's three accounts, created by the operators of the demo in `data`.
async fn accounts(c: &reqwest::Client, base: &str, data: &std::path::Path) -> Accounts {
    let operator = operator_token(data);
    Accounts {
        publisher: account(c, base, &operator, "publisher").await,
        commission: account(c, base, &operator, "commission").await,
        minister: account(c, base, &operator, "decision_maker").await,
    }
}

async fn criteria(c: &reqwest::Client, base: &str) -> Vec<String> {
    let v: Value = get(c, &format!("{base}/api/v1/referencing/criteria"), As::Anonymous)
        .await
        .json()
        .await
        .unwrap();
    v["criteria"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect()
}

fn application(name: &str, criteria: &[String]) -> Value {
    json!({
        "name": name,
        "description": "Suivi de la tension artérielle à domicile, partagé avec votre médecin.",
        "category": "prevention",
        "redirect_uris": [REDIRECT],
        "requested": [
            {"category": "summaries", "why": "afficher et ajouter vos mesures de tension"},
            {"category": "reports", "why": "lire les comptes rendus de cardiologie"},
            {"category": "imaging", "why": "afficher les échographies cardiaques"}
        ],
        "declarations": criteria.iter().map(|c| json!({"criterion": c, "complies": true, "evidence": "audit 2026"})).collect::<Vec<_>>(),
    })
}

async fn step(c: &reqwest::Client, base: &str, token: &str, client_id: &str, body: Value) -> (u16, Value) {
    let r = post(
        c,
        &format!("{base}/api/v1/referencing/services/{client_id}/steps"),
        As::Bearer(token),
        &body,
    )
    .await;
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// Submits and takes an application through review and approval (convention: summaries and
/// imaging, not the reports it also asked for, ending at `ends`); returns the client id.
async fn referenced(c: &reqwest::Client, base: &str, a: &Accounts, name: &str, ends: &str) -> String {
    let crit = criteria(c, base).await;
    let r = post(
        c,
        &format!("{base}/api/v1/referencing/services"),
        As::Bearer(&a.publisher),
        &application(name, &crit),
    )
    .await;
    assert_eq!(r.status(), 201);
    let client_id = r.json::<Value>().await.unwrap()["client_id"]
        .as_str()
        .unwrap()
        .to_string();
    for id in &crit {
        let body = json!({"step": "criterion_reviewed", "criterion": id, "satisfied": true});
        assert_eq!(step(c, base, &a.commission, &client_id, body).await.0, 200);
    }
    let opinion =
        json!({"step": "opinion", "favourable": true, "comment": "conforme aux trois référentiels"});
    assert_eq!(step(c, base, &a.commission, &client_id, opinion).await.0, 200);
    let approve = json!({"step": "approved", "categories": ["summaries", "imaging"], "starts": "2020-01-01",
                         "ends": ends, "withdrawal_terms": "préavis d'un mois"});
    let (status, v) = step(c, base, &a.minister, &client_id, approve).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["state"], "approved");
    assert_eq!(v["listed"], true);
    client_id
}

fn authorize_path(pairs: &[(&str, &str)]) -> String {
    format!("/oauth/authorize?{}", encode(pairs))
}

fn standard<'a>(
    client_id: &'a str,
    challenge: &'a str,
    aud: &'a str,
    scope: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", REDIRECT),
        ("scope", scope),
        ("state", "etat-123"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
        ("aud", aud),
    ]
}

/// The consent screen answered "authorise" with `ticked`; the redirect's query.
async fn consent(b: &mut Browser, path: &str, ticked: &[&str]) -> HashMap<String, String> {
    consent_to(b, path, ticked, REDIRECT).await
}

async fn token(c: &reqwest::Client, base: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let r = c
        .post(format!("{base}/oauth/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encode(form))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers().get("cache-control").map(|v| v.to_str().unwrap()),
        Some("no-store")
    );
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn fhir(c: &reqwest::Client, base: &str, path: &str, bearer: &str) -> (u16, Value) {
    let r = get(c, &format!("{base}/fhir/{path}"), As::Bearer(bearer)).await;
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn introspect(c: &reqwest::Client, base: &str, token: &str, client_id: &str) -> Value {
    c.post(format!("{base}/oauth/introspect"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encode(&[("token", token), ("client_id", client_id)]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn categories(bundle: &Value) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|e| {
            e["resource"]["category"][0]["coding"][0]["code"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apps_reach_only_what_convention_and_consent_allow_ca1_ca4_rfc9700() {
    let (_t, data) = fresh_dir();
    let demo = start_demo(&data);
    let base = demo.base.clone();
    let c = client();
    let a = accounts(&c, &base, &data).await;

    // ---- CA-2: the workflow, its checks, and its record for the publisher.
    let crit = criteria(&c, &base).await;
    assert_eq!(
        crit.len(),
        12,
        "interoperability, security and ethics criteria (data file)"
    );
    let mut bad = application("X", &crit);
    bad["redirect_uris"] = json!(["http://evil.example/cb"]);
    bad["declarations"].as_array_mut().unwrap().pop();
    let r = post(
        &c,
        &format!("{base}/api/v1/referencing/services"),
        As::Bearer(&a.publisher),
        &bad,
    )
    .await;
    assert_eq!(r.status(), 422);
    let msg = r.json::<Value>().await.unwrap()["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        msg.contains("http://evil.example/cb") && msg.contains("ETH-4"),
        "{msg}"
    );
    let r = post(
        &c,
        &format!("{base}/api/v1/referencing/services"),
        As::Bearer(&a.commission),
        &application("Y", &crit),
    )
    .await;
    assert_eq!(r.status(), 403, "only publishers apply");
    let client_id = referenced(&c, &base, &a, "Tensio", "2099-01-01").await;
    let v: Value = get(
        &c,
        &format!("{base}/api/v1/referencing/services/{client_id}"),
        As::Bearer(&a.publisher),
    )
    .await
    .json()
    .await
    .unwrap();
    let steps = v["steps"].as_array().unwrap();
    assert_eq!(
        steps.len(),
        1 + crit.len() + 2,
        "every step is visible to the publisher"
    );
    assert_eq!(steps[0]["step"]["step"], "submitted");
    assert_eq!(steps.last().unwrap()["role"], "decision_maker");
    assert_eq!(
        steps.last().unwrap()["step"]["convention"]["categories"],
        json!(["summaries", "imaging"])
    );
    let catalogue: Value = get(&c, &format!("{base}/api/v1/catalogue"), As::Anonymous)
        .await
        .json()
        .await
        .unwrap();
    assert!(
        catalogue["services"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["client_id"] == client_id),
        "CA-1"
    );

    // ---- Discovery.
    let conf: Value = get(
        &c,
        &format!("{base}/.well-known/smart-configuration"),
        As::Anonymous,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(conf["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(conf["authorization_endpoint"], format!("{base}/oauth/authorize"));
    let meta: Value = get(
        &c,
        &format!("{base}/.well-known/oauth-authorization-server"),
        As::Anonymous,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(meta["issuer"], base.as_str());
    // S-21: a client that sends another Host does not move the issuer, the endpoints or the
    // FHIR links anywhere else.
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/smart-configuration",
    ] {
        let forged: Value = c
            .get(format!("{base}{path}"))
            .header("host", "evil.example")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(!forged.to_string().contains("evil.example"), "{path}: {forged}");
        assert!(forged.to_string().contains(&base), "{path}: {forged}");
    }

    // ---- The holder authorises on the consent screen, logging in on the way.
    let aud = format!("{base}/fhir");
    let scope = "launch/patient openid fhirUser offline_access patient/Observation.crus \
                 patient/DocumentReference.rs patient/Immunization.rs patient/AuditEvent.rs";
    let (verifier, challenge) = pkce("first");
    let path = authorize_path(&standard(&client_id, &challenge, &aud, scope));
    let mut b = Browser::new(&base);
    let p = b.get(&path).await;
    assert_eq!(
        (p.status.as_u16(), p.location()),
        (303, "/connexion"),
        "log in first"
    );
    assert_eq!(b.login().await, path, "and come back to the request");
    let page = b.get(&path).await;
    assert!(page.html.contains("Tensio"));
    assert!(
        page.html.contains("value=\"summaries\"") && page.html.contains("value=\"imaging\""),
        "the convention's categories are offered"
    );
    assert!(
        !page.html.contains("value=\"reports\""),
        "requested but outside the convention"
    );
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.ends_with("form-action 'self' http://127.0.0.1:9"), "{csp}");
    let q = consent(&mut b, &path, &["summaries", "reports"]).await;
    assert_eq!(q["state"], "etat-123");
    assert_eq!(q["iss"], base, "RFC 9207");
    let code = q["code"].clone();
    let (status, t) = token(
        &c,
        &base,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", &client_id),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(status, 200, "{t}");
    let access = t["access_token"].as_str().unwrap().to_string();
    let refresh = t["refresh_token"].as_str().unwrap().to_string();
    let patient = t["patient"].as_str().unwrap().to_string();
    let granted = t["scope"].as_str().unwrap();
    assert!(granted.contains("patient/Observation.crus"), "{granted}");
    assert!(granted.contains("patient/DocumentReference.rs"), "{granted}");
    assert!(
        !granted.contains("Immunization") && !granted.contains("AuditEvent"),
        "{granted}"
    );
    // The ID token names the holder (EdDSA, key at /oauth/jwks).
    let idt = t["id_token"].as_str().unwrap();
    let claims: Value = serde_json::from_slice(&B64.decode(idt.split('.').nth(1).unwrap()).unwrap()).unwrap();
    assert_eq!(claims["aud"], client_id.as_str());
    assert_eq!(claims["fhirUser"], format!("{base}/fhir/Patient/{patient}"));
    let jwks: Value = get(&c, &format!("{base}/oauth/jwks"), As::Anonymous)
        .await
        .json()
        .await
        .unwrap();
    let x = B64.decode(jwks["keys"][0]["x"].as_str().unwrap()).unwrap();
    let (signed, sig) = idt.rsplit_once('.').unwrap();
    aws_lc_rs::signature::UnparsedPublicKey::new(&aws_lc_rs::signature::ED25519, &x)
        .verify(signed.as_bytes(), &B64.decode(sig).unwrap())
        .expect("the ID token verifies with the published key");
    // The grant is in the directory (AC-3), with the ticked categories within the convention.
    let dir: Value = b.json("/api/v1/me/access").await;
    let g = dir["grants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["grantee"]["id"] == client_id.as_str())
        .unwrap();
    assert_eq!(g["categories"], json!(["summaries"]), "{g}");

    // ---- Reads and writes within the scopes; refused outside them.
    let measurement = json!({
        "resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
        "subject": {"reference": format!("Patient/{patient}")},
        "effectiveDateTime": "2026-11-20T08:00:00Z",
        "valueQuantity": {"value": 128, "unit": "mm[Hg]", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}
    });
    let r = c
        .post(format!("{base}/fhir/Observation"))
        .bearer_auth(&access)
        .header("content-type", "application/fhir+json")
        .body(measurement.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let (status, obs) = fhir(&c, &base, &format!("Observation?patient={patient}"), &access).await;
    assert_eq!(status, 200, "{obs}");
    assert_eq!(obs["total"], 1, "the app reads back what it wrote: {obs}");
    for path in [
        format!("Immunization?patient={patient}"),
        format!("AuditEvent?patient={patient}"),
        format!("Consent?patient={patient}"),
        format!("Communication?patient={patient}"),
        format!("Patient/{patient}/$everything"),
        format!("Observation?patient={patient}&_revinclude=Immunization:patient"),
    ] {
        let (status, v) = fhir(&c, &base, &path, &access).await;
        assert_eq!(status, 403, "{path}: {v}");
        assert_eq!(v["resourceType"], "OperationOutcome");
    }
    let r = delete(&c, &format!("{base}/fhir/Observation/x"), As::Bearer(&access)).await;
    assert_eq!(r.status(), 403, "no 'd' granted");
    let tx = json!({"resourceType": "Bundle", "type": "transaction", "entry": [{
        "resource": {"resourceType": "Immunization", "status": "completed",
                     "patient": {"reference": format!("Patient/{patient}")},
                     "vaccineCode": {"text": "x"}, "occurrenceDateTime": "2026-01-01"},
        "request": {"method": "POST", "url": "Immunization"}}]});
    let r = c
        .post(format!("{base}/fhir"))
        .bearer_auth(&access)
        .header("content-type", "application/fhir+json")
        .body(tx.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        403,
        "a transaction entry outside the scopes refuses the whole"
    );
    // Documents: the scope allows the type, the gate allows only the granted category.
    let (_, docs) = fhir(
        &c,
        &base,
        &format!("DocumentReference?patient={patient}&_count=100"),
        &access,
    )
    .await;
    let holder_docs = b
        .json(&format!("/fhir/DocumentReference?patient={patient}&_count=100"))
        .await;
    let all = categories(&holder_docs);
    assert!(
        all.contains(&"imaging".to_string()) && all.contains(&"reports".to_string()),
        "{all:?}"
    );
    let seen = categories(&docs);
    assert_eq!(docs["resourceType"], "Bundle", "{docs}");
    assert!(
        seen.is_empty(),
        "imaging is in the convention but not ticked; reports not in it: {seen:?}"
    );
    // Bound to the holder who consented: another space is no space (Inès, whom Camille
    // represents, is another space even for the same person).
    let me: Value = b.json("/api/v1/me").await;
    let other = me["spaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .find(|id| *id != patient)
        .expect("a represented space");
    let (status, v) = fhir(&c, &base, &format!("Observation?patient={other}"), &access).await;
    assert!(status == 404 || v["total"] == 0, "{status} {v}");
    // Every app access is traced and told to the holder (AC-6).
    let notes: Value = b.json("/api/v1/me/notifications").await;
    assert!(
        notes.to_string().contains(&client_id),
        "the app's access is notified: {notes}"
    );

    // ---- RFC 9700 attacks, each refused.
    // Redirect URI not registered (or a prefix of one): our error page, never a redirect.
    for uri in [
        "http://127.0.0.1:9/callback/evil",
        "http://127.0.0.1:9/",
        "https://evil.example/cb",
    ] {
        let mut pairs = standard(&client_id, &challenge, &aud, scope);
        pairs[2] = ("redirect_uri", uri);
        let p = b.get(&authorize_path(&pairs)).await;
        assert_eq!(p.status, 400, "{uri}");
        assert!(p.headers.get("location").is_none(), "{uri}");
    }
    // PKCE missing or `plain`, a wrong audience: errors sent back with state and iss.
    for (k, v) in [
        ("code_challenge_method", "plain"),
        ("code_challenge", ""),
        ("aud", "https://other.example/fhir"),
    ] {
        let mut pairs = standard(&client_id, &challenge, &aud, scope);
        pairs.retain(|(name, _)| *name != k);
        pairs.push((k, v));
        let p = b.get(&authorize_path(&pairs)).await;
        assert_eq!(p.status, 303, "{k}");
        let q = query_of(p.location());
        assert_eq!(q["error"], "invalid_request", "{k}");
        assert_eq!(
            (q["state"].as_str(), q["iss"].as_str()),
            ("etat-123", base.as_str())
        );
    }
    // Unknown client: error page.
    let p = b
        .get(&authorize_path(&standard("app-unknown", &challenge, &aud, scope)))
        .await;
    assert_eq!(p.status, 400);
    // A wrong verifier, another client, another redirect URI: each code refused (and used up).
    let exchange = |code: String, client: String, redirect: &'static str, verifier: String| {
        let c = c.clone();
        let base = base.clone();
        async move {
            token(
                &c,
                &base,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", redirect),
                    ("client_id", &client),
                    ("code_verifier", &verifier),
                ],
            )
            .await
        }
    };
    let (v2, ch2) = pkce("second");
    let path2 = authorize_path(&standard(&client_id, &ch2, &aud, scope));
    let code = consent(&mut b, &path2, &["summaries"]).await["code"].clone();
    let (status, e) = exchange(code.clone(), client_id.clone(), REDIRECT, verifier.clone()).await;
    assert_eq!(
        (status, e["error"].as_str()),
        (400, Some("invalid_grant")),
        "wrong verifier: {e}"
    );
    let (status, _) = exchange(code, client_id.clone(), REDIRECT, v2.clone()).await;
    assert_eq!(status, 400, "the code was used up by the failed attempt");
    let code = consent(&mut b, &path2, &["summaries"]).await["code"].clone();
    let (status, e) = exchange(code, "app-other".into(), REDIRECT, v2.clone()).await;
    assert_eq!(
        (status, e["error"].as_str()),
        (400, Some("invalid_grant")),
        "another client: {e}"
    );
    let code = consent(&mut b, &path2, &["summaries"]).await["code"].clone();
    let (status, e) = exchange(code, client_id.clone(), "http://127.0.0.1:9/other", v2.clone()).await;
    assert_eq!(
        (status, e["error"].as_str()),
        (400, Some("invalid_grant")),
        "another redirect: {e}"
    );
    // A replayed code: refused, and the tokens it gave are revoked at once.
    let code = consent(&mut b, &path2, &["summaries"]).await["code"].clone();
    let (status, first) = exchange(code.clone(), client_id.clone(), REDIRECT, v2.clone()).await;
    assert_eq!(status, 200);
    let stolen = first["access_token"].as_str().unwrap().to_string();
    assert_eq!(
        fhir(&c, &base, &format!("Observation?patient={patient}"), &stolen)
            .await
            .0,
        200
    );
    let (status, _) = exchange(code, client_id.clone(), REDIRECT, v2.clone()).await;
    assert_eq!(status, 400, "replayed code");
    assert_eq!(
        fhir(&c, &base, &format!("Observation?patient={patient}"), &stolen)
            .await
            .0,
        401
    );
    // The first access token is live for its client only (introspection).
    assert_eq!(introspect(&c, &base, &access, &client_id).await["active"], true);
    assert_eq!(introspect(&c, &base, &access, "app-other").await["active"], false);
    // A token is not a session of anything else.
    let r = get(&c, &format!("{base}/api/v1/me"), As::Bearer(&access)).await;
    assert_eq!(r.status(), 401);
    // Refresh: rotation; another client cannot use it; a reused one revokes the family.
    let (status, e) = token(
        &c,
        &base,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", "app-other"),
        ],
    )
    .await;
    assert_eq!((status, e["error"].as_str()), (400, Some("invalid_grant")));
    let (status, t2) = token(
        &c,
        &base,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", &client_id),
        ],
    )
    .await;
    assert_eq!(status, 200, "{t2}");
    let access2 = t2["access_token"].as_str().unwrap().to_string();
    assert_ne!(t2["refresh_token"].as_str().unwrap(), refresh, "rotated");
    assert_eq!(
        fhir(&c, &base, &format!("Observation?patient={patient}"), &access2)
            .await
            .0,
        200
    );
    let (status, _) = token(
        &c,
        &base,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", &client_id),
        ],
    )
    .await;
    assert_eq!(status, 400, "reused refresh token");
    assert_eq!(
        fhir(&c, &base, &format!("Observation?patient={patient}"), &access2)
            .await
            .0,
        401,
        "the family is revoked"
    );

    assert_eq!(
        introspect(&c, &base, &access, &client_id).await["active"],
        false,
        "same family"
    );

    // ---- CA-3: disconnecting from the catalogue ends the access at once.
    let (v4, ch4) = pkce("fourth");
    let code = consent(
        &mut b,
        &authorize_path(&standard(&client_id, &ch4, &aud, scope)),
        &["summaries"],
    )
    .await["code"]
        .clone();
    let access = exchange(code, client_id.clone(), REDIRECT, v4).await.1["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        fhir(&c, &base, &format!("Observation?patient={patient}"), &access)
            .await
            .0,
        200
    );
    let cat = b.get("/catalogue").await;
    assert_eq!(cat.status, 200);
    assert!(cat.html.contains("Tensio") && cat.html.contains("/catalogue/deconnecter"));
    let r = b
        .post(
            "/catalogue/deconnecter",
            &[("csrf", &cat.csrf()), ("client_id", &client_id)],
        )
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(
        fhir(&c, &base, &format!("Observation?patient={patient}"), &access)
            .await
            .0,
        401
    );
    assert_eq!(introspect(&c, &base, &access, &client_id).await["active"], false);

    // ---- CA-4: withdrawal ends it at once too, and removes the service from the catalogue.
    let (v3, ch3) = pkce("third");
    let path3 = authorize_path(&standard(&client_id, &ch3, &aud, scope));
    let code = consent(&mut b, &path3, &["summaries"]).await["code"].clone();
    let (_, t3) = exchange(code, client_id.clone(), REDIRECT, v3).await;
    let access3 = t3["access_token"].as_str().unwrap().to_string();
    assert_eq!(
        fhir(&c, &base, &format!("Observation?patient={patient}"), &access3)
            .await
            .0,
        200
    );
    let (status, _) = step(
        &c,
        &base,
        &a.commission,
        &client_id,
        json!({"step": "withdrawn", "reason": "x"}),
    )
    .await;
    assert_eq!(status, 422, "the commission does not withdraw");
    let (status, _) = step(
        &c,
        &base,
        &a.minister,
        &client_id,
        json!({"step": "withdrawn", "reason": "manquement"}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        fhir(&c, &base, &format!("Observation?patient={patient}"), &access3)
            .await
            .0,
        401
    );
    let catalogue: Value = get(&c, &format!("{base}/api/v1/catalogue"), As::Anonymous)
        .await
        .json()
        .await
        .unwrap();
    assert!(
        !catalogue["services"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["client_id"] == client_id)
    );
    assert_eq!(b.get(&path3).await.status, 400, "no longer authorisable");
}

/// Issue 9, item 4: the SMART project's own Python client (fhirclient 4.4) runs a standalone
/// launch — discovery from `/fhir/metadata`, PKCE S256, the holder's consent in our pages, the
/// code exchanged by the library — then writes and reads within the granted scopes and is
/// refused outside them (403 for a type it was not granted; documents only of the granted
/// category).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_smart_python_client_runs_a_standalone_launch_ca3() {
    use std::io::{BufRead, BufReader, Write};
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let py = root.join("target/test-tools/fhir-venv/bin/python");
    let has_client = py.exists()
        && std::process::Command::new(&py)
            .args(["-c", "import fhirclient"])
            .status()
            .is_ok_and(|s| s.success());
    if !has_client {
        eprintln!("fhirclient not installed (scripts/test-tools): case skipped");
        return;
    }
    let (_t, data) = fresh_dir();
    let demo = start_demo(&data);
    let base = demo.base.clone();
    let c = client();
    let a = accounts(&c, &base, &data).await;
    let client_id = referenced(&c, &base, &a, "Cardio Suivi", "2099-01-01").await;
    let scope = "launch/patient openid fhirUser patient/Observation.crus patient/DocumentReference.rs";
    let mut app = std::process::Command::new(&py)
        .arg(root.join("tests/fhir-clients/smart_app.py"))
        .args([&format!("{base}/fhir"), &client_id, REDIRECT, scope])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(app.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let url = first
        .strip_prefix("AUTHORIZE ")
        .unwrap_or_else(|| panic!("{first}"));
    let path = url.strip_prefix(base.as_str()).unwrap().to_string();
    assert!(
        path.contains("code_challenge_method=S256"),
        "the library uses PKCE: {path}"
    );
    let mut b = Browser::new(&base);
    assert_eq!(b.get(&path).await.location(), "/connexion");
    assert_eq!(b.login().await, path);
    let q = consent(&mut b, &path, &["summaries", "imaging"]).await;
    let callback = format!(
        "{REDIRECT}?{}",
        encode(
            &q.iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect::<Vec<_>>()
        )
    );
    writeln!(app.stdin.as_mut().unwrap(), "{callback}").unwrap();
    let result = lines.next().unwrap().unwrap();
    assert!(app.wait().unwrap().success());
    let out: Value = serde_json::from_str(&result).unwrap_or_else(|_| panic!("{result}"));
    assert_eq!(out["ready"], true, "{out}");
    assert!(out["patient"].as_str().is_some_and(|p| p.len() == 36), "{out}");
    assert_eq!(out["created"], true, "{out}");
    assert_eq!(
        out["read_back"].as_f64(),
        Some(64.0),
        "reads back what it wrote: {out}"
    );
    assert_eq!(out["transaction"][0], "transaction-response", "{out}");
    assert_eq!(out["transaction"][1].as_array().map(Vec::len), Some(2), "{out}");
    assert_eq!(
        out["observations"],
        json!(["8867-4", "8867-4", "8867-4"]),
        "{out}"
    );
    assert_eq!(
        out["document_categories"],
        json!(["imaging"]),
        "the ticked category within the convention, never reports or prescriptions: {out}"
    );
    assert_eq!(out["immunization_search"], 403, "{out}");
    assert_eq!(out["audit_search"], 403, "{out}");
}
