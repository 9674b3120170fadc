//! WebAuthn (passkeys) checks for holders (SPEC AU-1, our choice beyond the service): ES256
//! credentials, "none" attestation, user verification required (a passkey stands for the
//! password and the one-time code together). Pure: bytes in, verdicts out; the store keeps the
//! challenges and keys.
//!
//! Registration: `clientDataJSON` (type `webauthn.create`, our challenge, our origin) and the
//! attestation object (CBOR: `fmt` "none", `authData` with the RP id hash, flags UP+UV+AT, the
//! credential id and its COSE EC2 P-256 key). Login: `clientDataJSON` (`webauthn.get`), the
//! authenticator data (RP id hash, UP+UV) and an ECDSA P-256 / SHA-256 signature over
//! `authenticatorData || SHA-256(clientDataJSON)`.

use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};
use base64::Engine;
use ciborium::Value as Cbor;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WebauthnError {
    #[error("malformed {0}")]
    Malformed(&'static str),
    #[error("{0} does not match")]
    Mismatch(&'static str),
    #[error("unsupported {0}")]
    Unsupported(&'static str),
}

fn sha256(b: &[u8]) -> [u8; 32] {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, b);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

pub fn b64(s: &str) -> Result<Vec<u8>, WebauthnError> {
    B64.decode(s.trim_end_matches('='))
        .or_else(|_| base64::engine::general_purpose::STANDARD.decode(s))
        .map_err(|_| WebauthnError::Malformed("base64url"))
}

/// Checks `clientDataJSON`: its type, the challenge we issued, the page's origin. Returns the
/// challenge (to be consumed by the store).
pub fn client_data(raw: &[u8], want_type: &str, origin: &str) -> Result<String, WebauthnError> {
    let v: serde_json::Value =
        serde_json::from_slice(raw).map_err(|_| WebauthnError::Malformed("clientDataJSON"))?;
    if v["type"] != want_type {
        return Err(WebauthnError::Mismatch("type"));
    }
    if v["origin"] != origin {
        return Err(WebauthnError::Mismatch("origin"));
    }
    v["challenge"]
        .as_str()
        .map(str::to_string)
        .ok_or(WebauthnError::Malformed("challenge"))
}

/// What the authenticator data says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthData {
    pub sign_count: u32,
    /// On registration: the credential id and its public key (uncompressed P-256 point).
    pub credential: Option<(Vec<u8>, Vec<u8>)>,
}

const UP: u8 = 0x01;
const UV: u8 = 0x04;
const AT: u8 = 0x40;

/// Parses and checks authenticator data for `rp_id`: the RP id hash, user present and user
/// verified; the attested credential when `registering`.
pub fn auth_data(b: &[u8], rp_id: &str, registering: bool) -> Result<AuthData, WebauthnError> {
    if b.len() < 37 {
        return Err(WebauthnError::Malformed("authenticator data"));
    }
    if b[..32] != sha256(rp_id.as_bytes()) {
        return Err(WebauthnError::Mismatch("RP id"));
    }
    let flags = b[32];
    if flags & UP == 0 || flags & UV == 0 {
        return Err(WebauthnError::Mismatch("user presence and verification"));
    }
    let sign_count = u32::from_be_bytes([b[33], b[34], b[35], b[36]]);
    if !registering {
        return Ok(AuthData {
            sign_count,
            credential: None,
        });
    }
    if flags & AT == 0 || b.len() < 55 {
        return Err(WebauthnError::Malformed("attested credential data"));
    }
    let len = usize::from(u16::from_be_bytes([b[53], b[54]]));
    let id = b
        .get(55..55 + len)
        .ok_or(WebauthnError::Malformed("credential id"))?
        .to_vec();
    let key: Cbor =
        ciborium::de::from_reader(&b[55 + len..]).map_err(|_| WebauthnError::Malformed("COSE key"))?;
    Ok(AuthData {
        sign_count,
        credential: Some((id, cose_es256(&key)?)),
    })
}

/// A COSE EC2 key (kty 2, alg -7, crv 1) as an uncompressed P-256 point.
fn cose_es256(key: &Cbor) -> Result<Vec<u8>, WebauthnError> {
    let map = key.as_map().ok_or(WebauthnError::Malformed("COSE key"))?;
    let get = |label: i64| {
        map.iter()
            .find(|(k, _)| k.as_integer().is_some_and(|i| i128::from(i) == i128::from(label)))
            .map(|(_, v)| v)
    };
    let int = |label: i64| get(label).and_then(Cbor::as_integer).map(i128::from);
    if int(1) != Some(2) || int(3) != Some(-7) || int(-1) != Some(1) {
        return Err(WebauthnError::Unsupported("key (ES256 / P-256 only)"));
    }
    let x = get(-2)
        .and_then(Cbor::as_bytes)
        .ok_or(WebauthnError::Malformed("COSE x"))?;
    let y = get(-3)
        .and_then(Cbor::as_bytes)
        .ok_or(WebauthnError::Malformed("COSE y"))?;
    if x.len() != 32 || y.len() != 32 {
        return Err(WebauthnError::Malformed("COSE point"));
    }
    let mut point = vec![0x04];
    point.extend_from_slice(x);
    point.extend_from_slice(y);
    Ok(point)
}

/// The authenticator data of a "none" attestation object.
pub fn attestation_auth_data(raw: &[u8]) -> Result<Vec<u8>, WebauthnError> {
    let v: Cbor =
        ciborium::de::from_reader(raw).map_err(|_| WebauthnError::Malformed("attestation object"))?;
    let map = v.as_map().ok_or(WebauthnError::Malformed("attestation object"))?;
    let get = |k: &str| {
        map.iter()
            .find(|(key, _)| key.as_text() == Some(k))
            .map(|(_, v)| v)
    };
    if get("fmt").and_then(Cbor::as_text) != Some("none") {
        return Err(WebauthnError::Unsupported("attestation (ask for \"none\")"));
    }
    get("authData")
        .and_then(Cbor::as_bytes)
        .cloned()
        .ok_or(WebauthnError::Malformed("authData"))
}

/// Verifies an assertion's signature with the stored public key.
pub fn verify_signature(
    public_key: &[u8],
    auth_data: &[u8],
    client_data: &[u8],
    signature: &[u8],
) -> Result<(), WebauthnError> {
    let mut msg = auth_data.to_vec();
    msg.extend_from_slice(&sha256(client_data));
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, public_key)
        .verify(&msg, signature)
        .map_err(|_| WebauthnError::Mismatch("signature"))
}

pub fn encode(b: &[u8]) -> String {
    B64.encode(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};

    fn cose(point: &[u8]) -> Vec<u8> {
        let key = Cbor::Map(vec![
            (Cbor::Integer(1.into()), Cbor::Integer(2.into())),
            (Cbor::Integer(3.into()), Cbor::Integer((-7).into())),
            (Cbor::Integer((-1).into()), Cbor::Integer(1.into())),
            (Cbor::Integer((-2).into()), Cbor::Bytes(point[1..33].to_vec())),
            (Cbor::Integer((-3).into()), Cbor::Bytes(point[33..].to_vec())),
        ]);
        let mut out = Vec::new();
        ciborium::ser::into_writer(&key, &mut out).unwrap();
        out
    }

    #[test]
    fn registration_and_assertion_round_trip() {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let kp = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref()).unwrap();
        let point = kp.public_key().as_ref().to_vec();
        let mut ad = sha256(b"carnet.example").to_vec();
        ad.push(UP | UV | AT);
        ad.extend_from_slice(&0u32.to_be_bytes());
        ad.extend_from_slice(&[0u8; 16]);
        ad.extend_from_slice(&3u16.to_be_bytes());
        ad.extend_from_slice(b"abc");
        ad.extend_from_slice(&cose(&point));
        let parsed = auth_data(&ad, "carnet.example", true).unwrap();
        assert_eq!(parsed.credential, Some((b"abc".to_vec(), point.clone())));
        assert_eq!(
            auth_data(&ad, "evil.example", true),
            Err(WebauthnError::Mismatch("RP id"))
        );
        // Without user verification: refused.
        let mut weak = ad.clone();
        weak[32] = UP | AT;
        assert!(auth_data(&weak, "carnet.example", true).is_err());

        let mut login = sha256(b"carnet.example").to_vec();
        login.push(UP | UV);
        login.extend_from_slice(&7u32.to_be_bytes());
        let cd = br#"{"type":"webauthn.get","challenge":"xyz","origin":"https://carnet.example"}"#;
        let mut msg = login.clone();
        msg.extend_from_slice(&sha256(cd));
        let sig = kp.sign(&rng, &msg).unwrap();
        assert_eq!(
            client_data(cd, "webauthn.get", "https://carnet.example").unwrap(),
            "xyz"
        );
        assert!(client_data(cd, "webauthn.create", "https://carnet.example").is_err());
        assert!(client_data(cd, "webauthn.get", "https://evil.example").is_err());
        assert_eq!(auth_data(&login, "carnet.example", false).unwrap().sign_count, 7);
        verify_signature(&point, &login, cd, sig.as_ref()).unwrap();
        let mut bad = sig.as_ref().to_vec();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(verify_signature(&point, &login, cd, &bad).is_err());
        assert!(
            verify_signature(
                &point,
                &login,
                br#"{"type":"webauthn.get","challenge":"other"}"#,
                sig.as_ref()
            )
            .is_err()
        );
    }
}
