//! End-to-end: passkeys (WebAuthn, AU-1) with a software authenticator written here (ES256,
//! "none" attestation, user verification): a logged-in holder registers one, logs out, and logs
//! in with it alone; replays, other origins, tampered signatures, a counter that goes back,
//! someone else's challenge, and a closed space are refused.

use crate::common::*;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use ciborium::Value as Cbor;
use serde_json::{Value, json};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

fn sha256(b: &[u8]) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, b)
        .as_ref()
        .to_vec()
}

struct Authenticator {
    key: EcdsaKeyPair,
    id: Vec<u8>,
    counter: u32,
}

impl Authenticator {
    fn new() -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        Self {
            key: EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref()).unwrap(),
            id: b"carnet-test-credential-1".to_vec(),
            counter: 0,
        }
    }

    fn register(&self, rp_id: &str, origin: &str, challenge: &str) -> Value {
        let point = self.key.public_key().as_ref();
        let cose = Cbor::Map(vec![
            (Cbor::Integer(1.into()), Cbor::Integer(2.into())),
            (Cbor::Integer(3.into()), Cbor::Integer((-7).into())),
            (Cbor::Integer((-1).into()), Cbor::Integer(1.into())),
            (Cbor::Integer((-2).into()), Cbor::Bytes(point[1..33].to_vec())),
            (Cbor::Integer((-3).into()), Cbor::Bytes(point[33..].to_vec())),
        ]);
        let mut ad = sha256(rp_id.as_bytes());
        ad.push(0x45); // UP | UV | AT
        ad.extend_from_slice(&0u32.to_be_bytes());
        ad.extend_from_slice(&[0u8; 16]);
        ad.extend_from_slice(&(self.id.len() as u16).to_be_bytes());
        ad.extend_from_slice(&self.id);
        ciborium::ser::into_writer(&cose, &mut ad).unwrap();
        let att = Cbor::Map(vec![
            (Cbor::Text("fmt".into()), Cbor::Text("none".into())),
            (Cbor::Text("attStmt".into()), Cbor::Map(vec![])),
            (Cbor::Text("authData".into()), Cbor::Bytes(ad)),
        ]);
        let mut att_bytes = Vec::new();
        ciborium::ser::into_writer(&att, &mut att_bytes).unwrap();
        let cd = json!({"type": "webauthn.create", "challenge": challenge, "origin": origin}).to_string();
        json!({
            "id": B64.encode(&self.id), "type": "public-key",
            "response": {"clientDataJSON": B64.encode(cd), "attestationObject": B64.encode(att_bytes)}
        })
    }

    fn assert(&mut self, rp_id: &str, origin: &str, challenge: &str) -> Value {
        self.counter += 1;
        let mut ad = sha256(rp_id.as_bytes());
        ad.push(0x05); // UP | UV
        ad.extend_from_slice(&self.counter.to_be_bytes());
        let cd = json!({"type": "webauthn.get", "challenge": challenge, "origin": origin}).to_string();
        let mut msg = ad.clone();
        msg.extend_from_slice(&sha256(cd.as_bytes()));
        let sig = self.key.sign(&SystemRandom::new(), &msg).unwrap();
        json!({
            "id": B64.encode(&self.id), "type": "public-key",
            "response": {"clientDataJSON": B64.encode(cd), "authenticatorData": B64.encode(ad), "signature": B64.encode(sig.as_ref())}
        })
    }
}

async fn post(
    c: &reqwest::Client,
    url: String,
    cookie: Option<&str>,
    body: Value,
) -> (u16, Value, Option<String>) {
    let mut rq = c.post(url).json(&body);
    if let Some(k) = cookie {
        rq = rq.header("cookie", k);
    }
    let r = rq.send().await.unwrap();
    let status = r.status().as_u16();
    let session = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("__Host-carnet_session="))
        .map(|v| v.split(';').next().unwrap().to_string());
    (status, r.json().await.unwrap_or(Value::Null), session)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passkeys_register_and_log_in_au1() {
    let (_t, data) = fresh_dir();
    let demo = start_demo(&data);
    // WebAuthn needs a domain name: the loopback server is reached as `localhost` (S-21).
    let base = demo.base.replace("127.0.0.1", "localhost");
    let origin = base.clone();
    let rp_id = "localhost";
    let c = client();
    let holder = demo_login(&c, &base, "camille.martin@demo.carnet.invalid").await;
    let mut auth = Authenticator::new();

    // Registration from the logged-in session.
    let (status, opts, _) = post(
        &c,
        format!("{base}/api/v1/me/passkeys/register/begin"),
        Some(&holder),
        json!({}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(opts["publicKey"]["rp"]["id"], rp_id);
    assert_eq!(
        opts["publicKey"]["authenticatorSelection"]["userVerification"],
        "required"
    );
    let challenge = opts["publicKey"]["challenge"].as_str().unwrap().to_string();
    // Another origin (a phishing page) is refused and burns nothing else.
    let (status, _, _) = post(
        &c,
        format!("{base}/api/v1/me/passkeys/register/finish"),
        Some(&holder),
        auth.register(rp_id, "https://evil.example", &challenge),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _, _) = post(
        &c,
        format!("{base}/api/v1/me/passkeys/register/finish"),
        Some(&holder),
        auth.register(rp_id, &origin, &challenge),
    )
    .await;
    assert_eq!(status, 201);
    // The challenge was single use.
    let (status, _, _) = post(
        &c,
        format!("{base}/api/v1/me/passkeys/register/finish"),
        Some(&holder),
        auth.register(rp_id, &origin, &challenge),
    )
    .await;
    assert_eq!(status, 401);
    let list: Value = crate::common::get(&c, &format!("{base}/api/v1/me/passkeys"), As::Cookie(&holder))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["passkeys"].as_array().unwrap().len(), 1);

    // Log out, then in with the passkey alone.
    let r = c
        .post(format!("{base}/api/v1/auth/logout"))
        .header("cookie", &holder)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let begin = |c: reqwest::Client| {
        let base = base.clone();
        async move {
            let (_, o, _) = post(&c, format!("{base}/api/v1/auth/passkey/begin"), None, json!({})).await;
            o["publicKey"]["challenge"].as_str().unwrap().to_string()
        }
    };
    let ch = begin(c.clone()).await;
    let assertion = auth.assert(rp_id, &origin, &ch);
    let (status, _, session) = post(
        &c,
        format!("{base}/api/v1/auth/passkey/finish"),
        None,
        assertion.clone(),
    )
    .await;
    assert_eq!(status, 200);
    let session = session.expect("a session cookie");
    let me: Value = crate::common::get(&c, &format!("{base}/api/v1/me"), As::Cookie(&session))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["administrative"]["birth_name"], "MARTIN");
    // Replaying the same assertion: refused (challenge consumed, counter would not grow).
    let (status, _, replayed) = post(&c, format!("{base}/api/v1/auth/passkey/finish"), None, assertion).await;
    assert_eq!((status, replayed), (401, None));
    // Another origin, a tampered signature, a counter that goes back: refused.
    let ch = begin(c.clone()).await;
    let (status, _, _) = post(
        &c,
        format!("{base}/api/v1/auth/passkey/finish"),
        None,
        auth.assert(rp_id, "https://evil.example", &ch),
    )
    .await;
    assert_eq!(status, 401);
    let ch = begin(c.clone()).await;
    let mut bad = auth.assert(rp_id, &origin, &ch);
    let sig = B64
        .decode(bad["response"]["signature"].as_str().unwrap())
        .unwrap();
    let mut sig = sig.clone();
    let n = sig.len() - 1;
    sig[n] ^= 0x01;
    bad["response"]["signature"] = json!(B64.encode(sig));
    let (status, _, _) = post(&c, format!("{base}/api/v1/auth/passkey/finish"), None, bad).await;
    assert_eq!(status, 401);
    let ch = begin(c.clone()).await;
    auth.counter = 0; // a cloned authenticator replays an old counter
    let (status, _, _) = post(
        &c,
        format!("{base}/api/v1/auth/passkey/finish"),
        None,
        auth.assert(rp_id, &origin, &ch),
    )
    .await;
    assert_eq!(status, 401);
    // A login challenge is not a registration challenge.
    let ch = begin(c.clone()).await;
    let (status, _, _) = post(
        &c,
        format!("{base}/api/v1/me/passkeys/register/finish"),
        Some(&session),
        auth.register(rp_id, &origin, &ch),
    )
    .await;
    assert_eq!(status, 401);

    // The holder removes the passkey: it no longer logs in.
    let id = B64.encode(&auth.id);
    let r = crate::common::delete(
        &c,
        &format!("{base}/api/v1/me/passkeys/{id}"),
        As::Cookie(&session),
    )
    .await;
    assert_eq!(r.status(), 204);
    auth.counter = 100;
    let ch = begin(c.clone()).await;
    let (status, _, _) = post(
        &c,
        format!("{base}/api/v1/auth/passkey/finish"),
        None,
        auth.assert(rp_id, &origin, &ch),
    )
    .await;
    assert_eq!(status, 401);
}
