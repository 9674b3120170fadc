//! Holders' authentication state (AU-1, AU-3, LC-4): credentials, one-time login codes,
//! sessions, known devices, and rate-limit counters. Secrets are stored only as hashes or
//! HMACs; codes are compared in constant time; every counter lives in the database so that
//! limits hold across servers.

use carnet_domain::lifecycle::Event;
use carnet_domain::{HolderId, Ins, Timestamp};
use serde_json::json;
use uuid::Uuid;

use crate::Store;
use crate::crypto::{random_bytes, random_token, sha256_hex};
use crate::db::query::Query;
use crate::error::StoreError;
use crate::outbox::{Channel, OutboxMessage};

/// Marks a challenge answered from the holder's TOTP app (no code stored).
const TOTP_MARK: &str = "totp";
/// The device of a challenge that proves a password reset (AU-1): never a login's.
const RESET_MARK: &str = "password-reset";
/// The device mark of a contact change's code (ID-2): `contact:` + the SHA-256 of the
/// channel and the new value, so that a code proves that one value and nothing else.
const CONTACT_MARK: &str = "contact:";

/// What a challenge's code may prove.
enum Purpose<'a> {
    /// A login's second factor on a device.
    Login,
    /// A forgotten password (AU-1).
    Reset,
    /// A new e-mail address or phone number (ID-2), with its mark.
    Contact(&'a str),
}

impl Purpose<'_> {
    fn fits(&self, device: &str) -> bool {
        match self {
            Purpose::Login => device != RESET_MARK && !device.starts_with(CONTACT_MARK),
            Purpose::Reset => device == RESET_MARK,
            Purpose::Contact(mark) => device == *mark,
        }
    }
}

fn contact_mark(channel: Channel, value: &str) -> String {
    format!(
        "{CONTACT_MARK}{}",
        sha256_hex(format!("{}\n{value}", channel.tag()).as_bytes())
    )
}

/// A one-time login code lives 10 minutes (AU-1: "expire in minutes").
pub const LOGIN_CODE_TTL_SECONDS: i64 = 10 * 60;
/// Wrong codes allowed per challenge before it is burnt.
pub const LOGIN_CODE_MAX_ATTEMPTS: i64 = 5;
/// A session ends after 30 minutes without use...
pub const SESSION_IDLE_SECONDS: i64 = 30 * 60;
/// ...and 12 hours after login in any case.
pub const SESSION_ABSOLUTE_SECONDS: i64 = 12 * 3600;
/// `last_seen_at` is written at most this often (not on every request).
const SESSION_TOUCH_SECONDS: i64 = 60;

/// An authenticated session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    /// Who logged in (a representative stays themselves, S-6).
    pub holder: HolderId,
    /// Whose space they are acting in: their own, a represented person's (MI-1), or one
    /// they help as a carer (MI-5, `as_carer`).
    pub acting_for: HolderId,
    /// The other space is one this person helps as a carer, not one they represent.
    pub as_carer: bool,
    pub device_hash: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// The answer of a rate limiter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateDecision {
    Allowed,
    Limited { retry_after_seconds: i64 },
}

fn six_digits() -> Result<String, StoreError> {
    loop {
        let n = u32::from_le_bytes(random_bytes::<4>()?);
        if n < 4_294_000_000 {
            return Ok(format!("{:06}", n % 1_000_000));
        }
    }
}

impl Store {
    pub async fn login_index(&self, login: &str) -> Result<String, StoreError> {
        let normalised = login.trim().to_lowercase();
        Ok(self
            .service_keys()
            .await?
            .login_index
            .hmac_hex(normalised.as_bytes()))
    }

    async fn login_code_hmac(&self, challenge: Uuid, code: &str) -> Result<String, StoreError> {
        let mut input = challenge.as_bytes().to_vec();
        input.extend_from_slice(code.trim().as_bytes());
        Ok(self.service_keys().await?.login_code.hmac_hex(&input))
    }

    pub(crate) async fn card_serial_hmac(&self, serial: &str) -> Result<String, StoreError> {
        let normalised: String = serial.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
        let input = format!("card-serial:{}", normalised.to_ascii_uppercase());
        Ok(self.service_keys().await?.ins_index.hmac_hex(input.as_bytes()))
    }

    /// Counts a hit in `bucket` (fixed windows of `window_seconds`) and says whether it is
    /// within `max`. One statement, atomic on both engines.
    pub async fn hit_rate_limit(
        &self,
        bucket: &str,
        window_seconds: i64,
        max: i64,
    ) -> Result<RateDecision, StoreError> {
        let now = self.now().unix_seconds();
        let window = now - now.rem_euclid(window_seconds);
        let mut tx = self.db.begin().await?;
        let hits: i64 = tx
            .fetch_one(
                Query::new(
                    "INSERT INTO rate_limits (bucket, window_start, hits) VALUES ($1, $2, 1) ON CONFLICT \
                     (bucket) DO UPDATE SET hits = CASE WHEN rate_limits.window_start = $2 THEN \
                     rate_limits.hits + 1 ELSE 1 END, window_start = $2 RETURNING hits",
                )
                .binds((bucket, window)),
                "rate limit",
            )
            .await
            .and_then(|mut r| r.take::<i64>(0))?;
        tx.commit().await?;
        Ok(if hits <= max {
            RateDecision::Allowed
        } else {
            RateDecision::Limited {
                retry_after_seconds: window + window_seconds - now,
            }
        })
    }

    /// LC-4: the holder proves identity with the INS, the provisional code and (when the
    /// roster gave one) the Carte Vitale serial number, then chooses a login and password.
    /// Any mismatch is the same [`StoreError::Mismatch`].
    pub async fn activate(
        &self,
        ins: &Ins,
        activation_code: &str,
        card_serial: &str,
        login: &str,
        password_hash: &str,
    ) -> Result<HolderId, StoreError> {
        let id = self.find_by_ins(ins).await?.ok_or(StoreError::Mismatch)?;
        if !self.check_activation_code(id, activation_code).await? {
            return Err(StoreError::Mismatch);
        }
        let stored_serial: Option<String> = self
            .db
            .fetch_one(
                Query::new("SELECT card_serial_hmac FROM holders WHERE id = $1").bind(id.as_uuid()),
                "read card serial",
            )
            .await
            .and_then(|mut r| r.take::<Option<String>>(0))?;
        if let Some(stored) = stored_serial {
            let presented = self.card_serial_hmac(card_serial).await?;
            if aws_lc_rs::constant_time::verify_slices_are_equal(stored.as_bytes(), presented.as_bytes())
                .is_err()
            {
                return Err(StoreError::Mismatch);
            }
        }
        // MI-1, MI-2: a minor's space is reached by the legal representatives from their own
        // space until 18, never by logging in as the child (what is hidden from them would
        // show); at majority (MI-3) the new adult gets a fresh code and activates it.
        let (majority_at, has_credentials) = self.majority_and_credentials(id).await?;
        if majority_at.is_some_and(|m| m > self.now().as_micros()) {
            return Err(StoreError::Minor);
        }
        let lifecycle = self.lifecycle(id).await?;
        // MI-3: a space activated while a minor, whose credentials ended at majority, is
        // taken over by the new adult: it stays activated.
        let takeover =
            matches!(lifecycle, carnet_domain::Lifecycle::Activated { .. }) && has_credentials == 0;
        // LC-3: a person who objected and asked for a space (a code sent to them) opens it
        // now, by activating it: nothing opened before.
        let asked = match lifecycle {
            // Only with a code issued since the objection (`Store::renew_activation_code`): the
            // letter's code, which served to object, never undoes the objection.
            carnet_domain::Lifecycle::Opposed { at } => {
                let expires: Option<i64> = self
                    .db
                    .fetch_one(
                        Query::new("SELECT activation_code_expires_at FROM holders WHERE id = $1")
                            .bind(id.as_uuid()),
                        "read activation code",
                    )
                    .await
                    .and_then(|mut r| r.take::<Option<i64>>(0))?;
                let issued =
                    expires.map(|e| e - carnet_domain::lifecycle::OPPOSITION_WINDOW_SECONDS * 1_000_000);
                issued.is_some_and(|i| i > at.as_micros())
            }
            _ => false,
        };
        if asked {
            lifecycle
                .apply(Event::RequestSpace, self.now())?
                .apply(Event::Activate, self.now())?;
        } else if !takeover {
            lifecycle.apply(Event::Activate, self.now())?;
        }
        self.set_credentials(id, login, password_hash).await?;
        if asked {
            self.transition(id, Event::RequestSpace).await?;
        }
        if !takeover {
            self.transition(id, Event::Activate).await?;
        }
        // The provisional code is single use.
        let mut tx = self.db.begin().await?;
        tx.execute(
            Query::new(
                "UPDATE holders SET activation_code_hmac = NULL, activation_code_expires_at = NULL WHERE id \
                 = $1",
            )
            .bind(id.as_uuid()),
            "clear activation code",
        )
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// When the holder comes of age (if a minor was recorded) and how many credentials
    /// they have (MI-3: none left once majority ended a child's).
    pub(crate) async fn majority_and_credentials(
        &self,
        id: HolderId,
    ) -> Result<(Option<i64>, i64), StoreError> {
        let q = Query::new(
            "SELECT h.majority_at, (SELECT COUNT(*) FROM credentials c WHERE c.holder_id = h.id) FROM \
             holders h WHERE h.id = $1",
        )
        .bind(id.as_uuid());
        self.db.fetch_one_as(q, "read majority").await
    }

    /// Sets (or replaces) a holder's login and password hash.
    pub async fn set_credentials(
        &self,
        holder: HolderId,
        login: &str,
        password_hash: &str,
    ) -> Result<(), StoreError> {
        let idx = self.login_index(login).await?;
        let now = self.now().as_micros();
        let mut tx = self.db.begin().await?;
        let q = Query::new(
            "INSERT INTO credentials (holder_id, login_index, password_hash, created_at, updated_at) VALUES \
             ($1, $2, $3, $4, $4) ON CONFLICT (holder_id) DO UPDATE SET login_index = $2, password_hash = \
             $3, updated_at = $4",
        )
        .binds((holder.as_uuid(), &idx, password_hash, now));
        tx.execute(q, "store credentials").await.map_err(|e| {
            if e.is_unique_violation() {
                StoreError::LoginTaken
            } else {
                e
            }
        })?;
        tx.commit().await
    }

    /// The holder and password hash behind a login, if any.
    pub async fn credentials_by_login(&self, login: &str) -> Result<Option<(HolderId, String)>, StoreError> {
        let idx = self.login_index(login).await?;
        self.db
            .fetch_optional(
                Query::new("SELECT holder_id, password_hash FROM credentials WHERE login_index = $1")
                    .bind(&idx),
                "read credentials",
            )
            .await
            .and_then(|r| {
                r.map(|mut r| Ok((HolderId::from_uuid(r.take::<Uuid>(0)?), r.take::<String>(1)?)))
                    .transpose()
            })
    }

    /// Starts the second factor: a 6-digit code, queued for delivery in the same transaction.
    pub async fn create_login_challenge(
        &self,
        holder: HolderId,
        device_hash: &str,
        channel: Channel,
    ) -> Result<Uuid, StoreError> {
        self.challenge_sent(holder, device_hash, channel, "login_code", json!({}))
            .await
    }

    /// Starts a password reset (AU-1) for a holder who gave their login and a second proof
    /// (their birth date): a 6-digit code sent on `channel`, valid 10 minutes, single use,
    /// five attempts; [`Store::reset_password`] takes it. It never opens a session.
    pub async fn create_reset_challenge(
        &self,
        holder: HolderId,
        channel: Channel,
    ) -> Result<Uuid, StoreError> {
        self.challenge_sent(holder, RESET_MARK, channel, "password_code", json!({}))
            .await
    }

    /// A challenge whose 6-digit code goes out as a `kind` message (its `payload` plus the
    /// code), queued in the same transaction.
    async fn challenge_sent(
        &self,
        holder: HolderId,
        device_hash: &str,
        channel: Channel,
        kind: &str,
        mut payload: serde_json::Value,
    ) -> Result<Uuid, StoreError> {
        let now = self.now();
        let id = Uuid::new_v4();
        let code = six_digits()?;
        let code_hmac = self.login_code_hmac(id, &code).await?;
        let key = self.vault.get(holder).await?;
        if let Some(p) = payload.as_object_mut() {
            p.insert("code".into(), serde_json::Value::String(code));
        }
        let msg = OutboxMessage::new(holder, kind, channel, payload.to_string().into_bytes());
        let mut tx = self.db.begin().await?;
        insert_challenge(&mut tx, id, holder, &code_hmac, device_hash, now).await?;
        self.enqueue_in_tx(&mut tx, &key, &msg, now).await?;
        tx.commit().await?;
        Ok(id)
    }
    /// ID-2: a code sent to a new e-mail address or phone number (`channel`, `value`) before
    /// it replaces the one on file, so that login codes never go where the holder cannot read
    /// them. The code proves that one value ([`Store::check_contact_code`]).
    pub async fn create_contact_challenge(
        &self,
        holder: HolderId,
        channel: Channel,
        value: &str,
    ) -> Result<Uuid, StoreError> {
        self.challenge_sent(
            holder,
            &contact_mark(channel, value),
            channel,
            "contact_code",
            json!({ "to": value }),
        )
        .await
    }
    /// ID-2: whether `code` is the one sent to `value` for `holder` (single use, in time,
    /// within the attempts); [`StoreError::Mismatch`] otherwise. On success the former
    /// address (`former`, if any) is told of the change.
    pub async fn check_contact_code(
        &self,
        holder: HolderId,
        challenge: Uuid,
        code: &str,
        channel: Channel,
        value: &str,
        former: Option<&str>,
    ) -> Result<(), StoreError> {
        let mark = contact_mark(channel, value);
        let (of, _) = self
            .check_challenge(challenge, code, Purpose::Contact(&mark))
            .await?;
        if of != holder {
            return Err(StoreError::Mismatch);
        }
        if let Some(former) = former.filter(|f| *f != value) {
            let now = self.now();
            let key = self.vault.get(holder).await?;
            let msg = OutboxMessage::new(
                holder,
                "contact_changed",
                channel,
                json!({ "to": former }).to_string().into_bytes(),
            );
            let mut tx = self.db.begin().await?;
            self.enqueue_in_tx(&mut tx, &key, &msg, now).await?;
            tx.commit().await?;
        }
        Ok(())
    }

    /// Starts the second factor for a holder who uses TOTP: nothing is sent; the code comes
    /// from their authenticator app.
    pub async fn create_totp_challenge(
        &self,
        holder: HolderId,
        device_hash: &str,
    ) -> Result<Uuid, StoreError> {
        let now = self.now();
        let id = Uuid::new_v4();
        let mut tx = self.db.begin().await?;
        insert_challenge(&mut tx, id, holder, TOTP_MARK, device_hash, now).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Checks a login code. Right code (sent, or from the TOTP app), in time, first use, within
    /// the attempts: the holder and the device of the challenge. Else [`StoreError::Mismatch`],
    /// also for a password reset's code (it proves no password).
    pub async fn verify_login_challenge(
        &self,
        id: Uuid,
        code: &str,
    ) -> Result<(HolderId, String), StoreError> {
        self.check_challenge(id, code, Purpose::Login).await
    }

    /// AU-1: a new password with a reset code ([`Store::create_reset_challenge`]): every
    /// session of the holder ends and they are told. [`StoreError::Mismatch`] for a wrong,
    /// used or expired code, or a login's code.
    pub async fn reset_password(
        &self,
        challenge: Uuid,
        code: &str,
        password_hash: &str,
    ) -> Result<HolderId, StoreError> {
        let (holder, _) = self.check_challenge(challenge, code, Purpose::Reset).await?;
        self.set_password(holder, password_hash, None).await?;
        Ok(holder)
    }

    /// The password hash of a holder's credentials, if they chose any.
    pub async fn password_hash_of(&self, holder: HolderId) -> Result<Option<String>, StoreError> {
        self.db
            .fetch_optional_as::<String>(
                Query::new("SELECT password_hash FROM credentials WHERE holder_id = $1")
                    .bind(holder.as_uuid()),
                "read credentials",
            )
            .await
    }

    /// Replaces a holder's password (AU-1): in one transaction the new hash, the end of every
    /// session but `keep` (the one that asked, when changed from the space; none after a
    /// reset) and a "your password was changed" message on the channel of their login codes.
    pub async fn set_password(
        &self,
        holder: HolderId,
        password_hash: &str,
        keep: Option<&str>,
    ) -> Result<(), StoreError> {
        let now = self.now();
        let key = self.vault.get(holder).await?;
        let channel = if self.contact(holder).await?.email.is_some() {
            Channel::Email
        } else {
            Channel::Sms
        };
        let msg = OutboxMessage::new(holder, "password_changed", channel, b"{}".to_vec());
        let kept = keep.map(|t| sha256_hex(t.as_bytes())).unwrap_or_default();
        let mut tx = self.db.begin().await?;
        let n = tx
            .execute(
                Query::new("UPDATE credentials SET password_hash = $1, updated_at = $2 WHERE holder_id = $3")
                    .binds((password_hash, now.as_micros(), holder.as_uuid())),
                "store credentials",
            )
            .await?;
        if n != 1 {
            return Err(StoreError::NotFound);
        }
        tx.execute(
            Query::new(
                "UPDATE sessions SET revoked_at = $1 WHERE holder_id = $2 AND revoked_at IS NULL AND \
                 token_hash <> $3",
            )
            .binds((now.as_micros(), holder.as_uuid(), &kept)),
            "revoke sessions",
        )
        .await?;
        self.enqueue_in_tx(&mut tx, &key, &msg, now).await?;
        tx.commit().await
    }

    /// Checks the code of a login challenge (`reset` false) or of a password reset's: a
    /// challenge of the other kind is a mismatch, and is not used up by it.
    async fn check_challenge(
        &self,
        id: Uuid,
        code: &str,
        purpose: Purpose<'_>,
    ) -> Result<(HolderId, String), StoreError> {
        let now = self.now().as_micros();
        // Count the attempt first, in its own transaction, then judge it.
        let mut tx = self.db.begin().await?;
        let row = tx
            .fetch_optional_as::<(Uuid, String, String, i64, i64)>(
                Query::new(
                    "UPDATE login_challenges SET attempts = attempts + 1 WHERE id = $1 AND used_at IS NULL \
                     RETURNING holder_id, code_hmac, device_hash, expires_at, attempts",
                )
                .bind(id),
                "check login code",
            )
            .await?;
        tx.commit().await?;
        let Some((holder, stored, device, expires, attempts)) = row else {
            return Err(StoreError::Mismatch);
        };
        let holder = HolderId::from_uuid(holder);
        if now >= expires || attempts > LOGIN_CODE_MAX_ATTEMPTS || !purpose.fits(&device) {
            return Err(StoreError::Mismatch);
        }
        let right = if stored == TOTP_MARK {
            self.verify_totp(holder, code).await.is_ok()
        } else {
            let presented = self.login_code_hmac(id, code).await?;
            aws_lc_rs::constant_time::verify_slices_are_equal(stored.as_bytes(), presented.as_bytes()).is_ok()
        };
        if !right {
            return Err(StoreError::Mismatch);
        }
        // Single use, even against a concurrent request with the same code.
        let mut tx = self.db.begin().await?;
        let n = tx
            .execute(
                Query::new("UPDATE login_challenges SET used_at = $1 WHERE id = $2 AND used_at IS NULL")
                    .binds((now, id)),
                "use login code",
            )
            .await?;
        tx.commit().await?;
        if n == 1 {
            Ok((holder, device))
        } else {
            Err(StoreError::Mismatch)
        }
    }

    /// Opens a session for `holder` on `device_hash`; returns the bearer secret (shown once).
    /// A device never seen for this holder is remembered and the holder is told (AU-3).
    pub async fn create_session(
        &self,
        holder: HolderId,
        device_hash: &str,
    ) -> Result<(String, Session), StoreError> {
        let now = self.now();
        let token = random_token()?;
        let session = Session {
            holder,
            acting_for: holder,
            as_carer: false,
            device_hash: device_hash.to_string(),
            created_at: now,
            expires_at: now.plus_seconds(SESSION_ABSOLUTE_SECONDS),
        };
        let key = self.vault.get(holder).await?;
        let mut tx = self.db.begin().await?;
        tx.execute(
            Query::new(
                "INSERT INTO sessions (token_hash, holder_id, acting_for, device_hash, created_at, \
                 last_seen_at, expires_at) VALUES ($1, $2, $2, $3, $4, $4, $5)",
            )
            .binds((
                sha256_hex(token.as_bytes()),
                holder.as_uuid(),
                device_hash,
                now.as_micros(),
                session.expires_at.as_micros(),
            )),
            "create session",
        )
        .await?;
        let new_device = tx
            .execute(
                Query::new(
                    "INSERT INTO known_devices (holder_id, device_hash, first_seen_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (holder_id, device_hash) DO NOTHING",
                )
                .binds((holder.as_uuid(), device_hash, now.as_micros())),
                "remember device",
            )
            .await?
            == 1;
        if new_device {
            let msg = OutboxMessage::new(holder, "new_device", Channel::Email, b"{}".to_vec());
            self.enqueue_in_tx(&mut tx, &key, &msg, now).await?;
        }
        tx.commit().await?;
        Ok((token, session))
    }

    /// Whether `holder` already logged in from this device (its cookie's hash, AU-3): such a
    /// device keeps a login budget of its own (OWASP's device cookies).
    pub async fn is_known_device(&self, holder: HolderId, device_hash: &str) -> Result<bool, StoreError> {
        let q = Query::new("SELECT 1 FROM known_devices WHERE holder_id = $1 AND device_hash = $2")
            .binds((holder.as_uuid(), device_hash));
        Ok(self.db.fetch_optional(q, "read known device").await?.is_some())
    }

    /// The live session behind `token`, or `None` (unknown, revoked, idle or expired).
    pub async fn session(&self, token: &str) -> Result<Option<Session>, StoreError> {
        self.session_touching(token, true).await
    }

    /// Whether the session is still live, without counting this as activity (a live
    /// notification stream must not keep an idle session open).
    pub async fn session_alive(&self, token: &str) -> Result<bool, StoreError> {
        Ok(self.session_touching(token, false).await?.is_some())
    }

    async fn session_touching(&self, token: &str, touch: bool) -> Result<Option<Session>, StoreError> {
        let now = self.now();
        let hash = sha256_hex(token.as_bytes());
        let row = match self
            .db
            .fetch_optional(
                Query::new(
                    "SELECT holder_id, acting_for, device_hash, created_at, last_seen_at, expires_at, \
                     revoked_at, as_carer FROM sessions WHERE token_hash = $1",
                )
                .bind(&hash),
                "read session",
            )
            .await?
        {
            Some(mut r) => Some((
                r.take::<Uuid>(0)?,
                r.take::<Uuid>(1)?,
                r.take::<String>(2)?,
                r.take::<i64>(3)?,
                r.take::<i64>(4)?,
                r.take::<i64>(5)?,
                r.take::<Option<i64>>(6)?,
                r.take::<i64>(7)? != 0,
            )),
            None => None,
        };
        let Some((holder, acting, device, created, last_seen, expires, revoked, as_carer)) = row else {
            return Ok(None);
        };
        let idle_end = Timestamp::from_micros(last_seen).plus_seconds(SESSION_IDLE_SECONDS);
        if revoked.is_some() || now.as_micros() >= expires || now >= idle_end {
            return Ok(None);
        }
        if touch && now.as_micros() - last_seen >= SESSION_TOUCH_SECONDS * Timestamp::MICROS_PER_SECOND {
            let mut tx = self.db.begin().await?;
            tx.execute(
                Query::new("UPDATE sessions SET last_seen_at = $1 WHERE token_hash = $2")
                    .binds((now.as_micros(), &hash)),
                "touch session",
            )
            .await?;
            tx.commit().await?;
        }
        Ok(Some(Session {
            holder: HolderId::from_uuid(holder),
            acting_for: HolderId::from_uuid(acting),
            as_carer: as_carer && acting != holder,
            device_hash: device,
            created_at: Timestamp::from_micros(created),
            expires_at: Timestamp::from_micros(expires),
        }))
    }

    /// Switches the space a session acts in, as a representative or (`as_carer`) as a carer
    /// (the caller checked the representation or the carer's grant; the gate checks again on
    /// every access).
    pub async fn set_acting_for(
        &self,
        token: &str,
        target: HolderId,
        as_carer: bool,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        tx.execute(
            Query::new(
                "UPDATE sessions SET acting_for = $1, as_carer = $3 WHERE token_hash = $2 AND revoked_at IS \
                 NULL",
            )
            .binds((
                target.as_uuid(),
                sha256_hex(token.as_bytes()),
                i64::from(as_carer),
            )),
            "switch space",
        )
        .await?;
        tx.commit().await
    }

    pub async fn revoke_session(&self, token: &str) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        tx.execute(
            Query::new("UPDATE sessions SET revoked_at = $1 WHERE token_hash = $2 AND revoked_at IS NULL")
                .binds((self.now().as_micros(), sha256_hex(token.as_bytes()))),
            "revoke session",
        )
        .await?;
        tx.commit().await
    }

    /// "Log out everywhere": revokes every session of `holder`; returns how many.
    pub async fn revoke_all_sessions(&self, holder: HolderId) -> Result<u64, StoreError> {
        let mut tx = self.db.begin().await?;
        let n = tx
            .execute(
                Query::new(REVOKE_SESSIONS_OF_HOLDER).binds((self.now().as_micros(), holder.as_uuid())),
                "revoke sessions",
            )
            .await?;
        tx.commit().await?;
        Ok(n)
    }
}

/// TOTP (RFC 6238): SHA-1, 6 digits, 30-second steps, one step of skew either way.
fn totp_for(secret: &[u8]) -> Result<totp_rs::Totp, StoreError> {
    totp_rs::Builder::new()
        .with_secret(secret.to_vec())
        .with_skew(1)
        .build()
        .map_err(|e| StoreError::Integrity(format!("TOTP: {e:?}")))
}

/// Base32 (RFC 4648, no padding), as authenticator apps expect secrets.
pub fn base32(bytes: &[u8]) -> String {
    const A: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    let (mut buf, mut bits) = (0u32, 0);
    for &b in bytes {
        buf = (buf << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(A[((buf >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(A[((buf << (5 - bits)) & 31) as usize]));
    }
    out
}

impl Store {
    /// Starts TOTP enrolment: a new 160-bit secret, sealed with the holder's key, not yet active
    /// (it replaces any previous one). Returns the secret for the authenticator app.
    pub async fn begin_totp(&self, holder: HolderId) -> Result<Vec<u8>, StoreError> {
        let secret = random_bytes::<20>()?.to_vec();
        let key = self.vault.get(holder).await?;
        let sealed = key.seal(
            &crate::crypto::item_aad(holder, carnet_domain::ItemKind::TotpSecret, holder.as_bytes()),
            &secret,
        )?;
        let mut tx = self.db.begin().await?;
        let n = tx
            .execute(
                Query::new(
                    "UPDATE credentials SET totp_sealed = $1, totp_enabled_at = NULL, totp_last_step = NULL \
                     WHERE holder_id = $2",
                )
                .binds((&sealed, holder.as_uuid())),
                "store TOTP secret",
            )
            .await?;
        tx.commit().await?;
        if n == 1 {
            Ok(secret)
        } else {
            Err(StoreError::NotFound)
        }
    }

    /// Whether the holder logs in with TOTP instead of a code sent to them.
    pub async fn totp_enabled(&self, holder: HolderId) -> Result<bool, StoreError> {
        let at: Option<Option<i64>> = self
            .db
            .fetch_optional_as::<Option<i64>>(
                Query::new("SELECT totp_enabled_at FROM credentials WHERE holder_id = $1")
                    .bind(holder.as_uuid()),
                "read TOTP state",
            )
            .await?;
        Ok(matches!(at, Some(Some(_))))
    }

    /// Checks a TOTP code: valid now (±30 s) and of a later step than any accepted before
    /// (a code is never accepted twice). The first valid code after `begin_totp` activates TOTP.
    pub async fn verify_totp(&self, holder: HolderId, code: &str) -> Result<(), StoreError> {
        let row = self
            .db
            .writer()
            .fetch_optional_as::<(Option<Vec<u8>>, Option<i64>)>(
                Query::new("SELECT totp_sealed, totp_last_step FROM credentials WHERE holder_id = $1")
                    .bind(holder.as_uuid()),
                "read TOTP secret",
            )
            .await?;
        let Some((Some(sealed), last)) = row else {
            return Err(StoreError::Mismatch);
        };
        let key = self.vault.get(holder).await?;
        let secret = zeroize::Zeroizing::new(key.open(
            &crate::crypto::item_aad(holder, carnet_domain::ItemKind::TotpSecret, holder.as_bytes()),
            &sealed,
        )?);
        let now = u64::try_from(self.now().unix_seconds()).unwrap_or(0);
        let step = totp_for(&secret)?
            .check(code.trim(), now)
            .ok_or(StoreError::Mismatch)?;
        let step = i64::try_from(step).map_err(|_| StoreError::Mismatch)?;
        if last.is_some_and(|l| step <= l) {
            return Err(StoreError::Mismatch);
        }
        let mut tx = self.db.begin().await?;
        let n = tx
            .execute(
                Query::new(
                    "UPDATE credentials SET totp_last_step = $1, totp_enabled_at = COALESCE(totp_enabled_at, \
                     $2) WHERE holder_id = $3 AND (totp_last_step IS NULL OR totp_last_step < $1)",
                )
                .binds((step, self.now().as_micros(), holder.as_uuid())),
                "record TOTP step",
            )
            .await?;
        tx.commit().await?;
        if n == 1 { Ok(()) } else { Err(StoreError::Mismatch) }
    }

    /// Turns TOTP off (back to codes sent by e-mail or SMS).
    pub async fn disable_totp(&self, holder: HolderId) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        tx.execute(
            Query::new(
                "UPDATE credentials SET totp_sealed = NULL, totp_enabled_at = NULL, totp_last_step = NULL \
                 WHERE holder_id = $1",
            )
            .bind(holder.as_uuid()),
            "disable TOTP",
        )
        .await?;
        tx.commit().await
    }

    /// For tests and the demo: the current TOTP code of a secret.
    pub fn totp_code(secret: &[u8], unix_seconds: u64) -> Result<String, StoreError> {
        Ok(totp_for(secret)?.generate(unix_seconds).to_string())
    }
}

/// Ends every session of holder `$2` at `$1` (logout everywhere; LC-5b's suspension).
pub(crate) const REVOKE_SESSIONS_OF_HOLDER: &str =
    "UPDATE sessions SET revoked_at = $1 WHERE holder_id = $2 AND revoked_at IS NULL";

/// A login challenge row, valid for [`LOGIN_CODE_TTL_SECONDS`]: `code_hmac` is the code's HMAC
/// (or [`TOTP_MARK`] when an authenticator app answers it).
async fn insert_challenge(
    tx: &mut crate::db::Tx,
    id: Uuid,
    holder: HolderId,
    code_hmac: &str,
    device_hash: &str,
    now: Timestamp,
) -> Result<u64, StoreError> {
    let q = Query::new(
        "INSERT INTO login_challenges (id, holder_id, code_hmac, device_hash, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .binds((
        id,
        holder.as_uuid(),
        code_hmac,
        device_hash,
        now.as_micros(),
        now.plus_seconds(LOGIN_CODE_TTL_SECONDS).as_micros(),
    ));
    tx.execute(q, "create login challenge").await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32_matches_rfc4648() {
        assert_eq!(base32(b""), "");
        assert_eq!(base32(b"f"), "MY");
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
    }

    #[test]
    fn rfc6238_vector() {
        // RFC 6238 appendix B, SHA-1, T = 59 s: 94287082 (8 digits) -> 287082 with 6 digits.
        assert_eq!(Store::totp_code(b"12345678901234567890", 59).unwrap(), "287082");
    }
}
