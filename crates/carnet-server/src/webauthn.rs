//! Passkeys for holders (SPEC AU-1, our choice beyond the service): the WebAuthn ceremonies are
//! checked by `webauthn-rs` (kanidm's library, built for exactly this): client data (type,
//! challenge, origin), authenticator data (RP id hash, user presence and verification, flags),
//! the COSE public key, the signature and the counter. A passkey stands for the password and
//! the one-time code together, so user verification is required; it is discoverable (a login
//! needs no identifier). This module only adapts: the relying party from the configured
//! origin (S-21), the challenge a response answers (to find the ceremony's stored state), and
//! the passkeys registered before the library (an ES256 point) read as its credential.

use base64::Engine;
use webauthn_rs::prelude::{Passkey, Url, Webauthn, WebauthnBuilder};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

#[derive(Debug, thiserror::Error)]
pub enum WebauthnError {
    #[error("malformed {0}")]
    Malformed(&'static str),
    #[error("the relying party cannot be set up: {0}")]
    Config(String),
    #[error(transparent)]
    Ceremony(#[from] webauthn_rs::prelude::WebauthnError),
}

/// The relying party for `origin` (`https://carnet.example`, or a loopback server's own): its
/// id is the origin's host (WebAuthn needs a domain: a loopback server is reached for passkeys
/// as `localhost`).
pub fn relying_party(origin: &str) -> Result<Webauthn, WebauthnError> {
    let url = Url::parse(origin).map_err(|e| WebauthnError::Config(e.to_string()))?;
    let host = url
        .host_str()
        .ok_or_else(|| WebauthnError::Config("no host".into()))?
        .to_string();
    Ok(WebauthnBuilder::new(&host, &url)?.rp_name("Carnet").build()?)
}

/// The challenge a response's `clientDataJSON` (base64url) answers, to find the ceremony's
/// state, provided it comes from `origin`: a response made for another site (a phishing page)
/// is refused before it can use up the ceremony. The library checks both again.
pub fn challenge_in(client_data_json: &str, origin: &str) -> Result<String, WebauthnError> {
    let raw = B64
        .decode(client_data_json.trim_end_matches('='))
        .map_err(|_| WebauthnError::Malformed("clientDataJSON"))?;
    let v: serde_json::Value =
        serde_json::from_slice(&raw).map_err(|_| WebauthnError::Malformed("clientDataJSON"))?;
    if v["origin"].as_str() != Some(origin) {
        return Err(WebauthnError::Malformed("origin"));
    }
    v["challenge"]
        .as_str()
        .map(|c| c.trim_end_matches('=').to_string())
        .ok_or(WebauthnError::Malformed("challenge"))
}

/// A stored passkey as the library's credential: its own JSON, or, for a passkey registered
/// before it (an uncompressed ES256 point and a counter), the same credential rebuilt.
pub fn stored_passkey(p: &carnet_store::passkeys::Passkey) -> Result<Passkey, WebauthnError> {
    if let Some(json) = &p.credential {
        return serde_json::from_str(json).map_err(|_| WebauthnError::Malformed("stored credential"));
    }
    let point = &p.public_key;
    if point.len() != 65 || point[0] != 0x04 {
        return Err(WebauthnError::Malformed("stored public key"));
    }
    let legacy = serde_json::json!({
        "cred": {
            "cred_id": p.credential_id,
            "cred": {
                "type_": "ES256",
                "key": { "EC_EC2": { "curve": "SECP256R1", "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..]) } }
            },
            "counter": p.sign_count,
            "transports": null,
            "user_verified": true,
            "backup_eligible": false,
            "backup_state": false,
            "registration_policy": "required",
            "extensions": {
                "cred_protect": "NotRequested",
                "hmac_create_secret": "NotRequested",
                "appid": "NotRequested",
                "cred_props": "Ignored"
            },
            "attestation": { "data": "None", "metadata": "None" },
            "attestation_format": "none"
        }
    });
    serde_json::from_value(legacy).map_err(|_| WebauthnError::Malformed("stored public key"))
}

/// base64url without padding, as WebAuthn writes ids.
pub fn encode(b: &[u8]) -> String {
    B64.encode(b)
}

/// The bytes of a base64url id.
pub fn decode(s: &str) -> Option<Vec<u8>> {
    B64.decode(s.trim_end_matches('=')).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
    use ciborium::Value as Cbor;
    use serde_json::{Value, json};
    use webauthn_rs::prelude::{PublicKeyCredential, RegisterPublicKeyCredential};

    const ORIGIN: &str = "http://localhost:8080";

    fn sha256(b: &[u8]) -> Vec<u8> {
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, b)
            .as_ref()
            .to_vec()
    }

    /// A software authenticator: ES256, "none" attestation, user verification.
    struct Authenticator {
        key: EcdsaKeyPair,
        id: Vec<u8>,
    }

    impl Authenticator {
        fn new() -> Self {
            let rng = SystemRandom::new();
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
            Self {
                key: EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref()).unwrap(),
                id: b"carnet-unit-credential".to_vec(),
            }
        }

        fn point(&self) -> Vec<u8> {
            self.key.public_key().as_ref().to_vec()
        }

        fn register(&self, challenge: &str) -> Value {
            let point = self.point();
            let cose = Cbor::Map(vec![
                (Cbor::Integer(1.into()), Cbor::Integer(2.into())),
                (Cbor::Integer(3.into()), Cbor::Integer((-7).into())),
                (Cbor::Integer((-1).into()), Cbor::Integer(1.into())),
                (Cbor::Integer((-2).into()), Cbor::Bytes(point[1..33].to_vec())),
                (Cbor::Integer((-3).into()), Cbor::Bytes(point[33..].to_vec())),
            ]);
            let mut ad = sha256(b"localhost");
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
            let cd = json!({"type": "webauthn.create", "challenge": challenge, "origin": ORIGIN}).to_string();
            json!({
                "id": encode(&self.id), "rawId": encode(&self.id), "type": "public-key",
                "response": {"clientDataJSON": encode(cd.as_bytes()), "attestationObject": encode(&att_bytes)}
            })
        }

        fn assert(&self, challenge: &str, counter: u32) -> Value {
            let mut ad = sha256(b"localhost");
            ad.push(0x05); // UP | UV
            ad.extend_from_slice(&counter.to_be_bytes());
            let cd = json!({"type": "webauthn.get", "challenge": challenge, "origin": ORIGIN}).to_string();
            let mut msg = ad.clone();
            msg.extend_from_slice(&sha256(cd.as_bytes()));
            let sig = self.key.sign(&SystemRandom::new(), &msg).unwrap();
            json!({
                "id": encode(&self.id), "rawId": encode(&self.id), "type": "public-key",
                "response": {"clientDataJSON": encode(cd.as_bytes()), "authenticatorData": encode(&ad), "signature": encode(sig.as_ref())}
            })
        }
    }

    fn challenge(options: &impl serde::Serialize) -> String {
        serde_json::to_value(options).unwrap()["publicKey"]["challenge"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// A passkey registered before webauthn-rs (an ES256 point and a counter) is read as the
    /// credential the library makes for the same key, and logs in like it.
    #[test]
    fn a_passkey_registered_before_the_library_still_logs_in_au1() {
        let wa = relying_party(ORIGIN).unwrap();
        let a = Authenticator::new();
        let (ccr, state) = wa
            .start_passkey_registration(uuid::Uuid::nil(), "h", "Carnet", None)
            .unwrap();
        let reg: RegisterPublicKeyCredential = serde_json::from_value(a.register(&challenge(&ccr))).unwrap();
        let made = wa.finish_passkey_registration(&reg, &state).unwrap();
        let legacy = stored_passkey(&carnet_store::passkeys::Passkey {
            credential_id: encode(&a.id),
            holder: carnet_domain::HolderId::from_uuid(uuid::Uuid::nil()),
            credential: None,
            public_key: a.point(),
            sign_count: 0,
            created_at: 0,
            last_used_at: None,
        })
        .unwrap();
        let (made, legacy_json) = (
            serde_json::to_value(&made).unwrap(),
            serde_json::to_value(&legacy).unwrap(),
        );
        assert_eq!(made["cred"]["cred_id"], legacy_json["cred"]["cred_id"]);
        assert_eq!(made["cred"]["cred"], legacy_json["cred"]["cred"]);
        // It logs in; a counter that goes back is refused (a cloned authenticator).
        let (rcr, auth) = wa.start_discoverable_authentication().unwrap();
        let cred: PublicKeyCredential = serde_json::from_value(a.assert(&challenge(&rcr), 5)).unwrap();
        let result = wa
            .finish_discoverable_authentication_v2(&cred, auth, &legacy)
            .unwrap();
        assert_eq!(result.counter(), 5);
        let mut after = legacy.clone();
        after.update_credential(&result);
        let (rcr, auth) = wa.start_discoverable_authentication().unwrap();
        let cred: PublicKeyCredential = serde_json::from_value(a.assert(&challenge(&rcr), 4)).unwrap();
        assert!(
            wa.finish_discoverable_authentication_v2(&cred, auth, &after)
                .is_err()
        );
        // Another origin's response is refused.
        let (rcr, auth) = wa.start_discoverable_authentication().unwrap();
        let mut forged = a.assert(&challenge(&rcr), 9);
        let cd =
            json!({"type": "webauthn.get", "challenge": challenge(&rcr), "origin": "https://evil.example"})
                .to_string();
        forged["response"]["clientDataJSON"] = json!(encode(cd.as_bytes()));
        let cred: PublicKeyCredential = serde_json::from_value(forged).unwrap();
        assert!(
            wa.finish_discoverable_authentication_v2(&cred, auth, &after)
                .is_err()
        );
        assert!(challenge_in(&encode(cd.as_bytes()), ORIGIN).is_err());
        let ours =
            json!({"type": "webauthn.get", "challenge": challenge(&rcr), "origin": ORIGIN}).to_string();
        assert_eq!(
            challenge_in(&encode(ours.as_bytes()), ORIGIN).unwrap(),
            challenge(&rcr)
        );
    }
}
