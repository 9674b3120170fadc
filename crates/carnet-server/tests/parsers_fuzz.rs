//! Fuzzing of the HTTP layer's parsers of outside input (issue 10, item 5) with proptest:
//! multipart bodies of the web forms, WebAuthn client data / authenticator data / attestation
//! objects, and the JWT assertions of SMART Backend Services. Each answers `Some`/`Ok` or a
//! refusal; none panics. `PROPTEST_CASES=100000 cargo test -p carnet-server --test
//! parsers_fuzz --release` by hand (RELIABILITY.md).

use base64::Engine;
use carnet_server::{smart, web, webauthn};
use proptest::prelude::*;
use serde_json::json;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

fn multipart_body() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        prop_oneof![
            3 => proptest::sample::select(vec![
                "--B\r\n", "--B--\r\n", "--B", "\r\n", "\r\n\r\n",
                "Content-Disposition: form-data; name=\"fichier\"; filename=\"a.pdf\"\r\n",
                "Content-Disposition: form-data; name=\"csrf\"\r\n",
                "Content-Type: application/pdf\r\n", "%PDF-1.7", "name=\"", "filename*=UTF-8''x",
            ]).prop_map(|s| s.as_bytes().to_vec()),
            1 => proptest::collection::vec(any::<u8>(), 0..12),
        ],
        0..30,
    )
    .prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn multipart_never_panics(body in multipart_body(), ct in "multipart/form-data; boundary=(B|\"B\"|)[a-z]{0,3}") {
        if let Some(parts) = web::parse_multipart(&ct, &body) {
            for p in parts {
                prop_assert!(p.name.len() <= body.len());
            }
        }
    }

    #[test]
    fn webauthn_inputs_never_panic(
        raw in proptest::collection::vec(any::<u8>(), 0..200),
        text in "\\PC{0,60}",
        kind in proptest::sample::select(vec!["webauthn.create", "webauthn.get"]),
        chal in "[A-Za-z0-9_-]{0,20}",
        count in any::<i64>(),
    ) {
        let cd = json!({"type": kind, "challenge": chal, "origin": "http://localhost:8080"}).to_string();
        let found = webauthn::challenge_in(&B64.encode(&cd), "http://localhost:8080");
        prop_assert_eq!(found.ok(), Some(chal.clone()));
        prop_assert!(webauthn::challenge_in(&B64.encode(&cd), "https://evil.example").is_err());
        let _ = webauthn::challenge_in(&text, "http://localhost:8080");
        let _ = webauthn::challenge_in(&B64.encode(&raw), "http://localhost:8080");
        let _ = webauthn::decode(&text);
        // A stored key of any shape is read or refused, never a panic.
        let _ = webauthn::stored_passkey(&carnet_store::passkeys::Passkey {
            credential_id: text.clone(),
            holder: carnet_domain::HolderId::from_uuid(uuid::Uuid::nil()),
            credential: None,
            public_key: raw.clone(),
            sign_count: count,
            created_at: 0,
            last_used_at: None,
        });
        let _ = webauthn::stored_passkey(&carnet_store::passkeys::Passkey {
            credential_id: text.clone(),
            holder: carnet_domain::HolderId::from_uuid(uuid::Uuid::nil()),
            credential: Some(text.clone()),
            public_key: Vec::new(),
            sign_count: count,
            created_at: 0,
            last_used_at: None,
        });
    }

    #[test]
    fn jwt_assertions_never_panic(
        h in "\\PC{0,40}", p in "\\PC{0,80}", sig in proptest::collection::vec(any::<u8>(), 0..96),
        iss in "[a-z]{0,8}", exp in any::<i64>(),
    ) {
        let jwk = json!({"kty": "EC", "crv": "P-256", "x": B64.encode([1u8; 32]), "y": B64.encode([2u8; 32])});
        let shaped = format!(
            "{}.{}.{}",
            B64.encode(json!({"alg": "ES256", "typ": h}).to_string()),
            B64.encode(json!({"iss": iss, "sub": iss, "aud": "https://x/oauth/token", "exp": exp, "jti": p}).to_string()),
            B64.encode(&sig),
        );
        for jwt in [shaped.as_str(), &format!("{h}.{p}.x"), &h] {
            let _ = smart::claimed_client(jwt);
            prop_assert!(smart::verify(jwt, &jwk, &iss, "https://x/oauth/token", 1_000_000).is_err());
        }
        let _ = smart::ec_key(&json!({"kty": "EC", "crv": h, "x": p, "y": p}));
    }
}
