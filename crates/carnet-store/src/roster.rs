//! Roster import (SPEC LC-1, LC-2): creates the spaces of insured people in batches,
//! idempotently on the INS (through its blind index), and queues for each new space the
//! information letter with its provisional activation code.

use carnet_domain::lifecycle::{Lifecycle, opposition_window_end};
use carnet_domain::roster::RosterRecord;
use carnet_domain::{HolderId, ItemKind};
use serde_json::json;

use crate::Store;
use crate::crypto::{item_aad, random_bytes};
use crate::db::query::Query;
use crate::error::StoreError;
use crate::outbox::{Channel, OutboxMessage};

/// What happened to one record of a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RosterOutcome {
    /// A new space, informed now; the activation code went into the information letter.
    Created { id: HolderId, activation_code: String },
    /// The INS already has a space (or had one: erased spaces are not re-created).
    Existing { id: HolderId },
}

/// Unambiguous alphabet for codes read aloud or typed from a letter (no 0/O, 1/I/L).
const CODE_ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
const CODE_LEN: usize = 12;
/// Two-step confirmations are issued per 10-minute slot.
const CONFIRMATION_SLOT_SECONDS: i64 = 600;

/// A provisional activation code: 12 characters of a 31-letter alphabet (about 59 bits).
pub fn new_activation_code() -> Result<String, StoreError> {
    let mut out = String::with_capacity(CODE_LEN);
    while out.len() < CODE_LEN {
        for b in random_bytes::<16>()? {
            // Rejection sampling keeps the distribution uniform.
            if usize::from(b) < 248 && out.len() < CODE_LEN {
                out.push(char::from(CODE_ALPHABET[usize::from(b) % CODE_ALPHABET.len()]));
            }
        }
    }
    Ok(out)
}

impl Store {
    /// Imports a batch of roster records. Records whose INS already has a space are reported
    /// as `Existing`; duplicates inside the batch too. Each new space gets a data key, sealed
    /// administrative data, a provisional activation code valid 6 weeks (stored as an HMAC)
    /// and an information letter in the outbox, by e-mail or by post (LC-2).
    pub async fn import_roster_batch(
        &self,
        records: &[RosterRecord],
    ) -> Result<Vec<RosterOutcome>, StoreError> {
        let now = self.now();
        let mut indexes = Vec::with_capacity(records.len());
        for r in records {
            indexes.push(self.ins_index(&r.admin.ins).await?);
        }
        let mut existing = self.ids_by_index(&indexes).await?;
        let mut outcomes: Vec<Option<RosterOutcome>> = vec![None; records.len()];
        let mut fresh = Vec::new();
        for (i, idx) in indexes.iter().enumerate() {
            if let Some(id) = existing.get(idx) {
                outcomes[i] = Some(RosterOutcome::Existing { id: *id });
            } else {
                let id = HolderId::new(now);
                existing.insert(idx.clone(), id);
                fresh.push((i, id));
            }
        }
        if fresh.is_empty() {
            return Ok(outcomes.into_iter().flatten().collect());
        }
        let ids: Vec<HolderId> = fresh.iter().map(|(_, id)| *id).collect();
        let keys = self.vault.create_many(&ids, now).await?;
        let informed = Lifecycle::Informed { informed_at: now };
        let deadline = opposition_window_end(now);
        let mut tx = self.db.begin().await?;
        let mut lost = Vec::new();
        for ((i, id), key) in fresh.iter().zip(&keys) {
            let rec = &records[*i];
            let admin = serde_json::to_vec(&rec.admin).map_err(|e| StoreError::Integrity(e.to_string()))?;
            let sealed = key.seal(&item_aad(*id, ItemKind::Administrative, id.as_bytes()), &admin)?;
            let code = new_activation_code()?;
            let code_hmac = self.activation_code_hmac(&code).await?;
            let identity = self
                .identity_index(&crate::oidc::identity_key_of(&rec.admin))
                .await?;
            let serial_hmac = match &rec.card_serial {
                Some(s) => Some(self.card_serial_hmac(s).await?),
                None => None,
            };
            let n = tx
                .execute(
                    Query::new(
                        "INSERT INTO holders (id, lifecycle, created_at, updated_at, admin_sealed, \
                         state_since, due_at, ins_index, majority_at, activation_code_hmac, \
                         activation_code_expires_at, card_serial_hmac, identity_index) VALUES ($1, $2, $3, \
                         $3, $4, $3, $5, $6, $7, $8, $5, $9, $10) ON CONFLICT (ins_index) DO NOTHING",
                    )
                    .binds((
                        id.as_uuid(),
                        informed.name(),
                        now.as_micros(),
                        &sealed,
                        deadline.as_micros(),
                        &indexes[*i],
                        rec.majority_at(now).map(|t| t.as_micros()),
                        &code_hmac,
                        &serial_hmac,
                        &identity,
                    )),
                    "insert roster holder",
                )
                .await?;
            if n == 0 {
                lost.push(*i); // another import created it meanwhile
                continue;
            }
            let channel = if rec.admin.email.is_some() {
                Channel::Email
            } else {
                Channel::Post
            };
            let payload = json!({
                "activation_code": code,
                "opposition_deadline": deadline.to_rfc3339(),
            });
            let msg = OutboxMessage::new(*id, "information", channel, payload.to_string().into_bytes());
            self.enqueue_in_tx(&mut tx, key, &msg, now).await?;
            outcomes[*i] = Some(RosterOutcome::Created {
                id: *id,
                activation_code: code,
            });
        }
        tx.commit().await?;
        if !lost.is_empty() {
            let lost_idx: Vec<String> = lost.iter().map(|i| indexes[*i].clone()).collect();
            let winners = self.ids_by_index(&lost_idx).await?;
            for i in lost {
                let id = winners.get(&indexes[i]).copied().ok_or(StoreError::Conflict)?;
                outcomes[i] = Some(RosterOutcome::Existing { id });
            }
        }
        Ok(outcomes.into_iter().flatten().collect())
    }

    async fn ids_by_index(
        &self,
        indexes: &[String],
    ) -> Result<std::collections::HashMap<String, HolderId>, StoreError> {
        let mut map = std::collections::HashMap::new();
        for chunk in indexes.chunks(500) {
            let placeholders: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT ins_index, id FROM holders WHERE ins_index IN ({})",
                placeholders.join(", ")
            );
            let mut q = Query::built(sql);
            for idx in chunk {
                q = q.bind(idx);
            }
            let rows: Vec<(String, uuid::Uuid)> = self
                .db
                .writer()
                .fetch_all(q, "look up INS")
                .await?
                .into_iter()
                .map(|mut r| Ok((r.take(0)?, r.take(1)?)))
                .collect::<Result<_, StoreError>>()?;
            map.extend(rows.into_iter().map(|(k, v)| (k, HolderId::from_uuid(v))));
        }
        Ok(map)
    }

    /// LC-2, LC-3: a person objects online with their INS and provisional code, within the
    /// 6-week window. The space is not opened; a proof of refusal (with a reference) is sent.
    pub async fn oppose_with_code(
        &self,
        ins: &carnet_domain::Ins,
        code: &str,
    ) -> Result<(HolderId, String, carnet_domain::Timestamp), StoreError> {
        let id = self.find_by_ins(ins).await?.ok_or(StoreError::Mismatch)?;
        if !self.check_activation_code(id, code).await? {
            return Err(StoreError::Mismatch);
        }
        let state = self.transition(id, carnet_domain::Event::Oppose).await?;
        let reference = format!("OPP-{}", &new_activation_code()?[..8]);
        let key = self.vault.get(id).await?;
        let channel = self.letter_channel(id).await?;
        let payload = json!({ "reference": reference, "recorded_at": state.since().to_rfc3339() });
        let msg = OutboxMessage::new(id, "opposition_proof", channel, payload.to_string().into_bytes());
        let mut tx = self.db.begin().await?;
        self.enqueue_in_tx(&mut tx, &key, &msg, self.now()).await?;
        tx.commit().await?;
        Ok((id, reference, state.since()))
    }

    /// A keyed tag for two-step confirmations (closing, objecting): the same on every server.
    async fn confirmation_tag(&self, purpose: &str, data: &str, slot: i64) -> Result<String, StoreError> {
        Ok(self
            .service_keys()
            .await?
            .activation_code
            .hmac_hex(format!("confirm:{purpose}:{data}:{slot}").as_bytes()))
    }

    /// The first step of a two-step action (closing, objecting): a confirmation bound to
    /// `purpose` and `data`, valid 10 to 20 minutes, the same on every server.
    pub async fn issue_confirmation(&self, purpose: &str, data: &str) -> Result<String, StoreError> {
        self.confirmation_tag(
            purpose,
            data,
            self.now().unix_seconds() / CONFIRMATION_SLOT_SECONDS,
        )
        .await
    }

    /// The second step: whether `presented` is a confirmation issued for `purpose` and `data`
    /// in the current or the previous slot. Constant time.
    pub async fn check_confirmation(
        &self,
        purpose: &str,
        data: &str,
        presented: &str,
    ) -> Result<bool, StoreError> {
        let slot = self.now().unix_seconds() / CONFIRMATION_SLOT_SECONDS;
        let mut valid = false;
        for sl in [slot, slot - 1] {
            let expected = self.confirmation_tag(purpose, data, sl).await?;
            valid |=
                aws_lc_rs::constant_time::verify_slices_are_equal(expected.as_bytes(), presented.as_bytes())
                    .is_ok();
        }
        Ok(valid)
    }

    /// LC-2: a provisional code is "valid 6 weeks and renewable online". The person proves who
    /// they are with the INS and the birth date; a fresh code, valid six weeks
    /// from now, replaces the old one and goes by the channel on file (e-mail, else a letter),
    /// never to the screen (the `activation_code` letter). Only for a space still to activate: informed, open or
    /// objected to (LC-3: the person may ask for one later), or taken over
    /// at 18 (MI-3); a minor's own request is refused (their representatives manage it). `None`
    /// when nothing matches or nothing is to renew, so that a caller cannot tell which (AC-8).
    pub async fn renew_activation_code(
        &self,
        ins: &carnet_domain::Ins,
        birth_date: time::Date,
    ) -> Result<Option<HolderId>, StoreError> {
        let Some(id) = self.find_by_ins(ins).await? else {
            return Ok(None);
        };
        if !self.birth_date_is(id, birth_date).await? {
            return Ok(None);
        }
        let (majority_at, credentials) = self.majority_and_credentials(id).await?;
        let now = self.now();
        if majority_at.is_some_and(|m| m > now.as_micros()) {
            return Ok(None);
        }
        let to_activate = match self.lifecycle(id).await? {
            // LC-3: a person who objected may still ask for a space: the code lets them
            // activate it, and nothing opens before they do (`Store::activate`).
            Lifecycle::Informed { .. } | Lifecycle::Open { .. } | Lifecycle::Opposed { .. } => true,
            Lifecycle::Activated { .. } => credentials == 0,
            _ => false,
        };
        if !to_activate {
            return Ok(None);
        }
        let code = new_activation_code()?;
        let code_hmac = self.activation_code_hmac(&code).await?;
        let expires = now.plus_seconds(carnet_domain::lifecycle::OPPOSITION_WINDOW_SECONDS);
        let channel = self.letter_channel(id).await?;
        let key = self.vault.get(id).await?;
        let payload = json!({ "activation_code": code, "valid_until": expires.to_rfc3339() });
        let msg = OutboxMessage::new(id, "activation_code", channel, payload.to_string().into_bytes());
        let mut tx = self.db.begin().await?;
        tx.execute(
            Query::new(
                "UPDATE holders SET activation_code_hmac = $2, activation_code_expires_at = $3 WHERE id = $1",
            )
            .binds((id.as_uuid(), &code_hmac, expires.as_micros())),
            "renew activation code",
        )
        .await?;
        self.enqueue_in_tx(&mut tx, &key, &msg, now).await?;
        tx.commit().await?;
        Ok(Some(id))
    }

    /// Checks a provisional activation code (LC-4): right code, not expired. Constant time.
    pub async fn check_activation_code(&self, id: HolderId, code: &str) -> Result<bool, StoreError> {
        let row = self
            .db
            .fetch_optional_as::<(Option<String>, Option<i64>)>(
                Query::new(
                    "SELECT activation_code_hmac, activation_code_expires_at FROM holders WHERE id = $1",
                )
                .bind(id.as_uuid()),
                "read activation code",
            )
            .await?;
        let Some((Some(stored), Some(expires))) = row else {
            return Ok(false);
        };
        let presented = self
            .activation_code_hmac(&code.trim().to_ascii_uppercase())
            .await?;
        let equal =
            aws_lc_rs::constant_time::verify_slices_are_equal(stored.as_bytes(), presented.as_bytes())
                .is_ok();
        Ok(equal && self.now().as_micros() < expires)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activation_codes_are_long_and_from_the_alphabet() {
        let a = new_activation_code().unwrap();
        assert_eq!(a.len(), CODE_LEN);
        assert!(a.bytes().all(|b| CODE_ALPHABET.contains(&b)));
        assert_ne!(a, new_activation_code().unwrap());
    }
}
