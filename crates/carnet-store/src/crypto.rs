//! Encryption at rest (SPEC SE-3, LC-7).
//!
//! * Each holder has a random 256-bit **data key**. Every health field of a row and every blob
//!   of that holder is sealed with it, AES-256-GCM, a fresh random 96-bit nonce per value.
//! * The **associated data** binds each ciphertext to its holder, its kind and its item id,
//!   so a ciphertext moved to another row or holder fails to open.
//! * Data keys are **wrapped** by a master key (AES-256-GCM, associated data = holder id) and
//!   kept in the key vault (`vault.rs`), apart from the data. The master key comes from a key
//!   file (created 0600 at first start) or an environment variable; [`MasterKeyRing`] is the
//!   seam where a KMS/HSM would plug in. Rotating the master key re-wraps data keys only.
//! * Destroying a holder's data key makes every ciphertext of theirs unreadable, in the live
//!   database, in the blob store and in any backup of them (crypto-shredding).
//!
//! Sealed format: `0x01 || nonce (12 bytes) || ciphertext || tag (16 bytes)`.

use std::fmt;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::digest;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use carnet_domain::{HolderId, ItemKind};
use zeroize::{Zeroize, Zeroizing};

use crate::error::StoreError;

const FORMAT_V1: u8 = 1;
pub const KEY_LEN: usize = 32;
/// Bytes a sealed value adds to its plaintext.
pub const SEAL_OVERHEAD: usize = 1 + NONCE_LEN + 16;

pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    let d = digest::digest(&digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(sha256(bytes))
}

pub fn random_bytes<const N: usize>() -> Result<[u8; N], StoreError> {
    let mut b = [0u8; N];
    SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| StoreError::Integrity("system random generator failed".into()))?;
    Ok(b)
}

/// A random bearer token: 256 bits, URL-safe base64.
pub fn random_token() -> Result<String, StoreError> {
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<32>()?))
}

/// A 256-bit AES-GCM key, zeroed on drop, never printed.
#[derive(Clone)]
pub struct SecretKey(Zeroizing<[u8; KEY_LEN]>);

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(***)")
    }
}

impl SecretKey {
    pub fn generate() -> Result<Self, StoreError> {
        Ok(Self(Zeroizing::new(random_bytes::<KEY_LEN>()?)))
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let arr: [u8; KEY_LEN] = bytes.try_into().ok()?;
        Some(Self(Zeroizing::new(arr)))
    }

    pub(crate) fn expose(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    fn aead(&self) -> LessSafeKey {
        // Infallible for a 32-byte key with AES_256_GCM.
        LessSafeKey::new(UnboundKey::new(&AES_256_GCM, self.0.as_ref()).unwrap_or_else(|_| unreachable!()))
    }

    /// HMAC-SHA256 of `data` under this key, hex (blind indexes, code verifiers).
    pub fn hmac_hex(&self, data: &[u8]) -> String {
        let k = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, self.0.as_ref());
        hex::encode(aws_lc_rs::hmac::sign(&k, data).as_ref())
    }

    /// Seals `plaintext` bound to `aad`.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, StoreError> {
        let nonce_bytes = random_bytes::<NONCE_LEN>()?;
        let mut out = Vec::with_capacity(plaintext.len() + SEAL_OVERHEAD);
        out.push(FORMAT_V1);
        out.extend_from_slice(&nonce_bytes);
        out.extend_from_slice(plaintext);
        let tag = self
            .aead()
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(aad),
                &mut out[1 + NONCE_LEN..],
            )
            .map_err(|_| StoreError::Integrity("encryption failed".into()))?;
        out.extend_from_slice(tag.as_ref());
        Ok(out)
    }

    /// Seals `plaintext` in its own buffer (large documents are never held twice, DM-1): the
    /// header is moved in front within the reserved capacity, the tag appended.
    pub fn seal_owned(&self, aad: &[u8], mut buf: Vec<u8>) -> Result<Vec<u8>, StoreError> {
        let nonce_bytes = random_bytes::<NONCE_LEN>()?;
        buf.reserve_exact(SEAL_OVERHEAD);
        buf.splice(0..0, std::iter::once(FORMAT_V1).chain(nonce_bytes));
        let tag = self
            .aead()
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(aad),
                &mut buf[1 + NONCE_LEN..],
            )
            .map_err(|_| StoreError::Integrity("encryption failed".into()))?;
        buf.extend_from_slice(tag.as_ref());
        Ok(buf)
    }

    /// Opens a value sealed by [`SecretKey::seal`] with the same `aad`.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, StoreError> {
        open_with(&self.aead(), aad, sealed)
    }

    /// This key ready to open many values: the AES key schedule and the GHASH table are
    /// computed once, not for each value (a listing opens every row of a record).
    pub fn opener(&self) -> Opener {
        Opener(self.aead())
    }
}

/// A [`SecretKey`] expanded once for opening many values ([`SecretKey::opener`]).
pub struct Opener(LessSafeKey);

impl Opener {
    /// Opens a value sealed by [`SecretKey::seal`] with the same `aad`.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, StoreError> {
        open_with(&self.0, aad, sealed)
    }
}

impl fmt::Debug for Opener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Opener(***)")
    }
}

fn open_with(aead: &LessSafeKey, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, StoreError> {
    if sealed.len() < SEAL_OVERHEAD || sealed[0] != FORMAT_V1 {
        return Err(StoreError::Integrity(
            "sealed value is truncated or of an unknown format".into(),
        ));
    }
    let nonce = Nonce::try_assume_unique_for_key(&sealed[1..1 + NONCE_LEN])
        .map_err(|_| StoreError::Integrity("bad nonce".into()))?;
    let mut buf = sealed[1 + NONCE_LEN..].to_vec();
    let len = aead
        .open_in_place(nonce, Aad::from(aad), &mut buf)
        .map_err(|_| {
            StoreError::Integrity(
                "authentication of a sealed value failed (tampered, moved or wrong key)".into(),
            )
        })?
        .len();
    buf.truncate(len);
    Ok(buf)
}

/// Associated data for a holder's item: binds a ciphertext to holder, kind and item.
pub fn item_aad(holder: HolderId, kind: ItemKind, item: &[u8; 16]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(64);
    aad.extend_from_slice(b"carnet/item/v1\0");
    aad.extend_from_slice(holder.as_bytes());
    aad.extend_from_slice(kind.tag().as_bytes());
    aad.push(0);
    aad.extend_from_slice(item);
    aad
}

/// Associated data for a wrapped data key.
pub(crate) fn wrap_aad(holder: HolderId) -> Vec<u8> {
    let mut aad = b"carnet/data-key/v1\0".to_vec();
    aad.extend_from_slice(holder.as_bytes());
    aad
}

pub(crate) const CANARY_AAD: &[u8] = b"carnet/master-key-canary/v1";
pub(crate) const CANARY_PLAINTEXT: &[u8] = b"carnet master key check";

/// A master key with its public id (first 16 hex digits of a SHA-256 of the key).
#[derive(Clone, Debug)]
pub struct MasterKey {
    pub kid: String,
    pub key: SecretKey,
}

impl MasterKey {
    pub fn new(key: SecretKey) -> Self {
        let mut material = b"carnet/master-key-id/v1\0".to_vec();
        material.extend_from_slice(key.expose());
        let kid = hex::encode(&sha256(&material)[..8]);
        material.zeroize();
        Self { kid, key }
    }

    pub fn generate() -> Result<Self, StoreError> {
        Ok(Self::new(SecretKey::generate()?))
    }

    /// `kid:base64(key)`, the line format of a key file.
    pub fn to_line(&self) -> Zeroizing<String> {
        Zeroizing::new(format!("{}:{}", self.kid, B64.encode(self.key.expose())))
    }

    /// Parses a base64 key, with or without the `kid:` prefix of a key-file line.
    pub fn parse(line: &str) -> Result<Self, StoreError> {
        let line = line.trim();
        let (kid, b64) = match line.split_once(':') {
            Some((kid, b64)) => (Some(kid), b64),
            None => (None, line),
        };
        let bytes = Zeroizing::new(
            B64.decode(b64.trim())
                .map_err(|_| StoreError::MasterKey("a master key must be 32 bytes in base64".into()))?,
        );
        let key = SecretKey::from_bytes(&bytes)
            .ok_or_else(|| StoreError::MasterKey("a master key must be 32 bytes in base64".into()))?;
        let mk = MasterKey::new(key);
        if let Some(kid) = kid
            && kid != mk.kid
        {
            return Err(StoreError::MasterKey(format!(
                "key id {kid} in the key file does not match its key (expected {})",
                mk.kid
            )));
        }
        Ok(mk)
    }
}

/// The master keys the server holds: the first one wraps new data keys; the others still
/// unwrap keys wrapped before a rotation that has not finished.
#[derive(Clone, Debug)]
pub struct MasterKeyRing {
    keys: Vec<MasterKey>,
}

impl MasterKeyRing {
    pub fn new(keys: Vec<MasterKey>) -> Result<Self, StoreError> {
        if keys.is_empty() {
            return Err(StoreError::MasterKey("no master key configured".into()));
        }
        Ok(Self { keys })
    }

    /// Parses the content of a key file: one `kid:base64` line per key, active key first;
    /// blank lines and `#` comments ignored.
    pub fn parse(text: &str) -> Result<Self, StoreError> {
        let keys = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(MasterKey::parse)
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(keys)
    }

    pub fn to_file_text(&self) -> Zeroizing<String> {
        let mut s = Zeroizing::new(String::from(
            "# Carnet master key file. Keep it secret, keep it safe, back it up apart from the data.\n",
        ));
        for k in &self.keys {
            s.push_str(&k.to_line());
            s.push('\n');
        }
        s
    }

    pub fn active(&self) -> &MasterKey {
        &self.keys[0]
    }

    pub fn get(&self, kid: &str) -> Option<&MasterKey> {
        self.keys.iter().find(|k| k.kid == kid)
    }

    pub fn kids(&self) -> Vec<String> {
        self.keys.iter().map(|k| k.kid.clone()).collect()
    }

    pub fn keys(&self) -> &[MasterKey] {
        &self.keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn holder(n: u8) -> HolderId {
        HolderId::from_uuid(uuid::Uuid::from_bytes([n; 16]))
    }

    #[test]
    fn sealed_values_open_only_with_same_key_and_binding() {
        let k = SecretKey::generate().unwrap();
        let other = SecretKey::generate().unwrap();
        let aad = item_aad(holder(1), ItemKind::Administrative, &[7; 16]);
        let sealed = k.seal(&aad, b"allergie: penicilline").unwrap();
        assert_eq!(k.open(&aad, &sealed).unwrap(), b"allergie: penicilline");
        assert!(other.open(&aad, &sealed).is_err(), "wrong key");
        let moved = item_aad(holder(2), ItemKind::Administrative, &[7; 16]);
        assert!(k.open(&moved, &sealed).is_err(), "moved to another holder");
        let other_kind = item_aad(holder(1), ItemKind::AttachmentMeta, &[7; 16]);
        assert!(k.open(&other_kind, &sealed).is_err(), "replayed as another kind");
        let mut flipped = sealed.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(k.open(&aad, &flipped).is_err(), "tampered");
        assert!(k.open(&aad, &sealed[..10]).is_err(), "truncated");
    }

    #[test]
    fn same_plaintext_seals_differently() {
        let k = SecretKey::generate().unwrap();
        assert_ne!(k.seal(b"a", b"x").unwrap(), k.seal(b"a", b"x").unwrap());
    }

    #[test]
    fn key_file_round_trip_and_checks() {
        let ring = MasterKeyRing::new(vec![
            MasterKey::generate().unwrap(),
            MasterKey::generate().unwrap(),
        ])
        .unwrap();
        let text = ring.to_file_text();
        let back = MasterKeyRing::parse(&text).unwrap();
        assert_eq!(back.kids(), ring.kids());
        assert!(MasterKeyRing::parse("# nothing\n").is_err());
        assert!(MasterKey::parse("not base64!").is_err());
        assert!(MasterKey::parse(&B64.encode([1u8; 16])).is_err(), "too short");
        let line = ring.active().to_line();
        let (_, b64) = line.split_once(':').unwrap();
        assert!(
            MasterKey::parse(&format!("0000000000000000:{b64}")).is_err(),
            "kid mismatch"
        );
        assert_eq!(MasterKey::parse(b64).unwrap().kid, ring.active().kid);
        assert!(
            !format!("{:?}", ring).contains(b64),
            "Debug never prints key material"
        );
    }

    proptest! {
        #[test]
        fn seal_open_round_trip(data in proptest::collection::vec(any::<u8>(), 0..2048), aad in proptest::collection::vec(any::<u8>(), 0..64)) {
            let k = SecretKey::generate().unwrap();
            let sealed = k.seal(&aad, &data).unwrap();
            prop_assert_eq!(sealed.len(), data.len() + SEAL_OVERHEAD);
            prop_assert_eq!(k.open(&aad, &sealed).unwrap(), data);
        }
    }
}
