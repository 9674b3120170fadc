//! End-to-end: login through an OpenID Connect provider (FranceConnect's role) against a real
//! provider, panva/oidc-provider from npm, started by the test (`tests/oidc-provider`).
//! Checks PKCE + state + nonce flow, first-login matching on identity traits (LC-4: the space
//! is activated), later logins through the link, and refusals: foreign state, replay, a person
//! with no space.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::{Value, json};

struct Node(Child);
impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn provider_dir() -> Option<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/oidc-provider");
    dir.join("node_modules/oidc-provider").exists().then_some(dir)
}

fn start_provider(dir: &Path, port: u16, redirect: &str, account: Value) -> Node {
    start_provider_acr(dir, port, redirect, account, "")
}

fn start_provider_acr(dir: &Path, port: u16, redirect: &str, account: Value, acr: &str) -> Node {
    let child = Command::new("node")
        .arg("server.mjs")
        .current_dir(dir)
        .env("PORT", port.to_string())
        .env("REDIRECT_URI", redirect)
        .env("ACCOUNT", account.to_string())
        .env("ACR", acr)
        .env("NODE_ENV", "test")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("node");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the OpenID provider did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    Node(child)
}

fn set_cookie(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| v.split(';').next().unwrap_or("").to_string())
}

/// Runs the browser's part of a login; returns the callback URL and the state cookie.
async fn authorize(carnet: &str, provider: &str) -> (String, String) {
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = plain
        .get(format!("{carnet}/auth/oidc/{provider}/start"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let state_cookie = set_cookie(&r, "carnet_oidc_state").expect("state cookie");
    let to_provider = r.headers()["location"].to_str().unwrap().to_string();
    assert!(
        to_provider.contains("code_challenge_method=S256"),
        "PKCE S256: {to_provider}"
    );
    assert!(to_provider.contains("nonce="));
    let carnet_host = carnet.trim_start_matches("http://").to_string();
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::custom(move |a| {
            if a.url()
                .host_str()
                .zip(a.url().port())
                .map(|(h, p)| format!("{h}:{p}"))
                == Some(carnet_host.clone())
            {
                a.stop()
            } else {
                a.follow()
            }
        }))
        .build()
        .unwrap();
    let r = browser.get(&to_provider).send().await.unwrap();
    assert!(
        r.status().is_redirection(),
        "provider answered {}: {}",
        r.status(),
        r.text().await.unwrap_or_default()
    );
    let back = r.headers()["location"].to_str().unwrap().to_string();
    (back, state_cookie)
}

async fn callback(url: &str, cookie: &str) -> reqwest::Response {
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    plain.get(url).header("cookie", cookie).send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn franceconnect_login_against_a_real_openid_provider() {
    let Some(pdir) = provider_dir() else {
        eprintln!("tests/oidc-provider not installed (scripts/test-tools): OpenID case skipped");
        return;
    };
    let (_t, data) = fresh_dir();
    let ins = ins_for(77);
    init_with_roster(
        &data,
        &format!("ins,birth_name,given_names,sex,birth_date\n{ins},DUPONT,Jean Pierre,M,1970-05-05\n"),
    );

    // Carnet's port must be known before the providers start (their redirect URIs).
    let carnet_port = free_port();
    let carnet = format!("http://127.0.0.1:{carnet_port}");
    let (fc_port, other_port) = (free_port(), free_port());
    let _fc = start_provider(
        &pdir,
        fc_port,
        &format!("{carnet}/auth/oidc/franceconnect/callback"),
        json!({"sub": "fc-7f3a", "family_name": "DUPONT", "given_name": "Jean Pierre", "birthdate": "1970-05-05", "gender": "male"}),
    );
    let _other = start_provider(
        &pdir,
        other_port,
        &format!("{carnet}/auth/oidc/stranger/callback"),
        json!({"sub": "fc-0000", "family_name": "INCONNU", "given_name": "Personne", "birthdate": "1999-09-09", "gender": "female"}),
    );
    let mut env: Vec<(String, String)> = Vec::new();
    for (name, port) in [("FRANCECONNECT", fc_port), ("STRANGER", other_port)] {
        let lower = name.to_lowercase();
        env.push((
            format!("CARNET_OIDC__{name}__ISSUER"),
            format!("http://127.0.0.1:{port}"),
        ));
        env.push((format!("CARNET_OIDC__{name}__CLIENT_ID"), "carnet".into()));
        env.push((
            format!("CARNET_OIDC__{name}__CLIENT_SECRET"),
            "carnet-test-secret".into(),
        ));
        env.push((
            format!("CARNET_OIDC__{name}__REDIRECT_URI"),
            format!("{carnet}/auth/oidc/{lower}/callback"),
        ));
    }
    let env_ref: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let listen = format!("127.0.0.1:{carnet_port}");
    let s = Server::start(&data, &["--listen", &listen], &env_ref);
    assert_eq!(s.base, carnet);
    let c = client();

    // First login: matched on identity traits, the informed space is activated (LC-4).
    let (back, state_cookie) = authorize(&carnet, "franceconnect").await;
    assert!(
        back.starts_with(&format!("{carnet}/auth/oidc/franceconnect/callback?")),
        "{back}"
    );
    // A callback carried to another browser (no state cookie) is refused.
    let r = callback(&back, "carnet_oidc_state=someone-else").await;
    assert_eq!(r.status(), 401);
    // The cookie check comes before the request is consumed, so the right browser still can.
    let r = callback(&back, &state_cookie).await;
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap_or_default());
    let session = set_cookie(&r, "__Host-carnet_session").expect("session cookie");
    let me: Value = get(&c, &s.url("/api/v1/me"), As::Cookie(&session))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["administrative"]["birth_name"], "DUPONT");
    assert_eq!(me["lifecycle"], "activated");
    // Replay of the same callback: the request is single use.
    assert_eq!(callback(&back, &state_cookie).await.status(), 401);

    // Second login: through the stored link.
    let (back, state_cookie) = authorize(&carnet, "franceconnect").await;
    let r = callback(&back, &state_cookie).await;
    assert_eq!(r.status(), 303);
    assert!(set_cookie(&r, "__Host-carnet_session").is_some());

    // A person the roster does not know gets no space and no session.
    let (back, state_cookie) = authorize(&carnet, "stranger").await;
    let r = callback(&back, &state_cookie).await;
    assert_eq!(r.status(), 401);
    assert!(set_cookie(&r, "__Host-carnet_session").is_none());
    // An unknown provider does not exist.
    assert_eq!(
        get(&c, &s.url("/auth/oidc/nope/start"), As::Anonymous)
            .await
            .status(),
        404
    );
}

/// AC-1: professionals log in through Pro Santé Connect (an OpenID provider configured with
/// `audience = "professionals"`): the RPPS number comes from the `SubjectNameID` claim ("8" +
/// RPPS), must be in the directory, and the login must be strong (`acr` = eidas2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pro_sante_connect_login_against_a_real_openid_provider() {
    let Some(pdir) = provider_dir() else {
        eprintln!("tests/oidc-provider not installed (scripts/test-tools): OpenID case skipped");
        return;
    };
    let (_t, data) = fresh_dir();
    let ins = ins_for(78);
    init_with_roster(
        &data,
        &format!("ins,birth_name,given_names,sex,birth_date\n{ins},MARTIN,Anne,F,1980-01-01\n"),
    );
    let d = data.to_str().unwrap();
    let pros = data.parent().unwrap().join("pros.csv");
    std::fs::write(
        &pros,
        "rpps,family_name,given_name,profession,specialty,role,finess,organisation_name\n\
         10000000042,DURAND,Claire,medecin,cardiologie,care,750000001,Hôpital test\n",
    )
    .unwrap();
    let out = run(
        &["import", "professionals", pros.to_str().unwrap(), "--data-dir", d],
        &[],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let carnet_port = free_port();
    let carnet = format!("http://127.0.0.1:{carnet_port}");
    let ports = [free_port(), free_port(), free_port()];
    let claims = |nid: &str| json!({"sub": format!("psc-{nid}"), "family_name": "DURAND", "given_name": "Claire", "SubjectNameID": nid});
    // The directory's professional with a strong login; someone not in the directory; the
    // directory's professional with a weak (eidas1) login.
    let _psc = start_provider_acr(
        &pdir,
        ports[0],
        &format!("{carnet}/auth/oidc/psc/callback"),
        claims("810000000042"),
        "eidas2",
    );
    let _unknown = start_provider_acr(
        &pdir,
        ports[1],
        &format!("{carnet}/auth/oidc/pscunknown/callback"),
        claims("819999999999"),
        "eidas2",
    );
    let _weak = start_provider_acr(
        &pdir,
        ports[2],
        &format!("{carnet}/auth/oidc/pscweak/callback"),
        claims("810000000042"),
        "eidas1",
    );
    let mut env: Vec<(String, String)> = Vec::new();
    for (name, port) in [("PSC", ports[0]), ("PSCUNKNOWN", ports[1]), ("PSCWEAK", ports[2])] {
        let lower = name.to_lowercase();
        for (k, v) in [
            ("ISSUER", format!("http://127.0.0.1:{port}")),
            ("CLIENT_ID", "carnet".into()),
            ("CLIENT_SECRET", "carnet-test-secret".into()),
            ("REDIRECT_URI", format!("{carnet}/auth/oidc/{lower}/callback")),
            ("AUDIENCE", "professionals".into()),
            ("SCOPES", "[scope_all]".into()),
            ("ACR", "eidas2".into()),
        ] {
            env.push((format!("CARNET_OIDC__{name}__{k}"), v));
        }
    }
    let env_ref: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let listen = format!("127.0.0.1:{carnet_port}");
    let s = Server::start(&data, &["--listen", &listen], &env_ref);
    let c = client();

    let (back, state_cookie) = authorize(&carnet, "psc").await;
    assert!(back.contains("/auth/oidc/psc/callback?"), "{back}");
    let r = callback(&back, &state_cookie).await;
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap_or_default());
    // A professional's session, never a holder's.
    assert!(set_cookie(&r, "__Host-carnet_session").is_none());
    let pro = set_cookie(&r, "__Host-carnet_pro").expect("professional session cookie");
    let me: Value = get(&c, &s.url("/api/v1/pro/me"), As::Cookie(&pro))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["professional"]["rpps"], "10000000042", "{me}");
    assert_eq!(me["professional"]["family_name"], "DURAND");
    // The professional session does not open the holders' API.
    let r = get(&c, &s.url("/api/v1/me"), As::Cookie(&pro)).await;
    assert_eq!(r.status(), 401);

    // An RPPS number the directory does not know: no session.
    let (back, state_cookie) = authorize(&carnet, "pscunknown").await;
    let r = callback(&back, &state_cookie).await;
    assert_eq!(r.status(), 401);
    assert!(set_cookie(&r, "__Host-carnet_pro").is_none());
    // A weak login (eidas1) where eidas2 is required: no session.
    let (back, state_cookie) = authorize(&carnet, "pscweak").await;
    let r = callback(&back, &state_cookie).await;
    assert_eq!(r.status(), 401);
    assert!(set_cookie(&r, "__Host-carnet_pro").is_none());
}
