//! Password hashing: Argon2id (the `argon2` crate's defaults: m = 19 MiB, t = 2, p = 1, as
//! OWASP recommends), salted, PHC strings. CPU-bound: callers run it on a blocking thread.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

use crate::crypto::random_bytes;
use crate::error::StoreError;

/// Minimum length of a password (our choice; long passphrases beat composition rules).
pub const MIN_PASSWORD_CHARS: usize = 12;

/// Why a new password is refused; `Display` is the API's message, the pages word it
/// themselves (`web/password.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("the password must have at least {MIN_PASSWORD_CHARS} characters")]
    TooShort,
    #[error("the password is too long")]
    TooLong,
}

/// Checks a new password against the policy.
pub fn check_policy(password: &str) -> Result<(), PasswordError> {
    let n = password.chars().count();
    if n < MIN_PASSWORD_CHARS {
        return Err(PasswordError::TooShort);
    }
    if n > 1024 {
        return Err(PasswordError::TooLong);
    }
    Ok(())
}

pub fn hash(password: &str) -> Result<String, StoreError> {
    let salt = SaltString::encode_b64(&random_bytes::<16>()?)
        .map_err(|e| StoreError::Integrity(format!("salt: {e}")))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| StoreError::Integrity(format!("password hash: {e}")))
}

/// Verifies `password` against a stored PHC string. With `None` (unknown login) it still does
/// the same work against a fixed hash, so timing does not tell whether the login exists.
pub fn verify(password: &str, stored: Option<&str>) -> bool {
    verify_inner(password, stored)
}

const DUMMY: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$2R9r3dc1U8ZpbCj3v3aw6C1hT1ZQ9gqQd5T6l3O2tOI";
fn verify_inner(password: &str, stored: Option<&str>) -> bool {
    let target = stored.unwrap_or(DUMMY);
    let ok = PasswordHash::new(target)
        .map(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
        .unwrap_or(false);
    ok && stored.is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_verify() {
        let h = hash("correct horse battery staple").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("correct horse battery staple", Some(&h)));
        assert!(!verify("correct horse battery stapl", Some(&h)));
        assert!(!verify("anything", None));
        assert_ne!(h, hash("correct horse battery staple").unwrap(), "salted");
        assert!(
            PasswordHash::new(DUMMY).is_ok(),
            "the dummy hash must cost a real verification"
        );
    }

    #[test]
    fn policy() {
        assert!(check_policy("short").is_err());
        assert!(check_policy("douze caract").is_ok());
    }
}
