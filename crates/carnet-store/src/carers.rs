//! MI-5: carers ("aidants"), as stored. The decision is the directory's: a carer reads what a
//! `Grantee::Carer` grant of the space covers ([`carnet_domain::access::decide`]). This module
//! keeps the three things around it consistent, each change in one transaction:
//!
//! - the holder's invitations (`carer_invitations`): a one-time code's hash and what it offers,
//!   sealed with the holder's key; made and cancelled through [`HolderSide`];
//! - the acceptance ([`Gate::accept_carer_invitation`]): consumes the code, files the grant in
//!   the directory (compare-and-set), indexes it in `carers` so that the carer finds the spaces
//!   they help, traces it in the holder's history and tells the holder;
//! - the end, by the holder ([`HolderSide::end_carer`]) or by the carer
//!   ([`Store::stop_helping`]): grant and index row go together; the other side is told.
//!
//! Nothing else files or changes a carer's grant: the directory's general update keeps the
//! carer grants as they were (`HolderSide::update_access_policy`).

use carnet_domain::access::{Action, Actor, Decision, Grant, Grantee, Reason};
use carnet_domain::carer::{Invitation, Refusal};
use carnet_domain::{HolderId, ItemKind, Timestamp};
use uuid::Uuid;

use crate::Store;
use crate::crypto::{item_aad, random_bytes, sha256_hex};
use crate::db::query::Query;
use crate::error::StoreError;
use crate::gate::{Access, Gate};
use crate::outbox::{Channel, OutboxMessage};
use crate::space::HolderSide;
use crate::traces::Withheld;

/// The code's alphabet: no 0/O, 1/I/L, so that it reads aloud and copies by hand.
const CODE_ALPHABET: &[u8; 32] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789#";
/// 12 symbols of 5 bits: 60 bits, single use, a week, rate-limited at acceptance.
const CODE_LEN: usize = 12;

/// A new code, grouped for reading ("ABCD-EFGH-JKMN").
fn new_code() -> Result<String, StoreError> {
    let bytes = random_bytes::<CODE_LEN>()?;
    // '#' (the 32nd symbol) is never drawn: 31 symbols would bias; redraw the few that hit it.
    let mut out = String::with_capacity(CODE_LEN + 2);
    for (i, b) in bytes.iter().enumerate() {
        let mut c = CODE_ALPHABET[(*b & 31) as usize];
        if c == b'#' {
            c = CODE_ALPHABET[((*b >> 5) as usize) % 31];
        }
        if i > 0 && i % 4 == 0 {
            out.push('-');
        }
        out.push(c as char);
    }
    Ok(out)
}

/// The code as typed, without spaces, dashes or case; `None` if it cannot be one.
fn normalise_code(typed: &str) -> Option<String> {
    let c: String = typed
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (c.len() == CODE_LEN).then_some(c)
}

fn code_hash(normalised: &str) -> String {
    sha256_hex(format!("carer-invitation\n{normalised}").as_bytes())
}

fn invitation_aad(holder: HolderId, code_hash: &str) -> Vec<u8> {
    let mut id = [0u8; 16];
    id.copy_from_slice(&crate::crypto::sha256(code_hash.as_bytes())[..16]);
    item_aad(holder, ItemKind::CarerInvitation, &id)
}

/// An invitation waiting for its carer, as the holder sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingInvitation {
    /// Names the invitation to cancel it (the code's hash, never the code).
    pub id: String,
    pub invitation: Invitation,
}

/// A space a carer helps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Helped {
    pub holder: HolderId,
    pub since: Timestamp,
    pub until: Option<Timestamp>,
}

/// A refusal of the domain, in words (French, then English) safe to show.
impl From<Refusal> for StoreError {
    fn from(r: Refusal) -> Self {
        StoreError::Invalid(
        match r {
            Refusal::NoCategory => "choisissez au moins une catégorie / choose at least one category",
            Refusal::EndPassed => {
                "la date de fin est déjà passée / the end date has passed"
            }
            Refusal::Expired => {
                "ce code a expiré : demandez à la personne de vous inviter à nouveau / this code expired: ask for a new invitation"
            }
            Refusal::OwnSpace => {
                "ce code invite dans votre propre espace / this code is for your own space"
            }
            Refusal::SpaceNotOpen => {
                "cet espace n'accueille plus d'aidant / this space takes no carer any more"
            }
        }
        .into(),
        )
    }
}

impl HolderSide {
    /// MI-5: invites a carer; the code to hand them (shown once) and when it expires.
    pub async fn invite_carer(&self, invitation: &Invitation) -> Result<(String, Timestamp), StoreError> {
        self.trace_change("carer_invitation", None).await?;
        let store = &self.gate().store;
        let code = new_code()?;
        let hash = code_hash(&normalise_code(&code).unwrap_or_default());
        let key = store.vault.get(self.holder()).await?;
        let bytes = serde_json::to_vec(invitation).map_err(|e| StoreError::Integrity(e.to_string()))?;
        let sealed = key.seal(&invitation_aad(self.holder(), &hash), &bytes)?;
        let expires = invitation.expires_at();
        let mut tx = store.db.begin().await?;
        tx.execute(
            Query::new(
                "INSERT INTO carer_invitations (code_hash, holder_id, invitation_sealed, created_at, \
                 expires_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .binds((
                &hash,
                self.holder().as_uuid(),
                &sealed,
                invitation.created_at.as_micros(),
                expires.as_micros(),
            )),
            "record carer invitation",
        )
        .await?;
        tx.commit().await?;
        Ok((code, expires))
    }

    /// The invitations still waiting (not expired), oldest first.
    pub async fn carer_invitations(&self) -> Result<Vec<PendingInvitation>, StoreError> {
        let store = &self.gate().store;
        let rows: Vec<(String, Vec<u8>)> = store
            .db
            .fetch_all_as(
                Query::new(
                    "SELECT code_hash, invitation_sealed FROM carer_invitations WHERE holder_id = $1 AND \
                     expires_at > $2 ORDER BY created_at, code_hash",
                )
                .binds((self.holder().as_uuid(), store.now().as_micros())),
                "list carer invitations",
            )
            .await?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let key = store.vault.get(self.holder()).await?;
        rows.into_iter()
            .map(|(id, sealed)| {
                let bytes = key.open(&invitation_aad(self.holder(), &id), &sealed)?;
                let invitation = serde_json::from_slice(&bytes)
                    .map_err(|e| StoreError::Integrity(format!("carer invitation: {e}")))?;
                Ok(PendingInvitation { id, invitation })
            })
            .collect()
    }

    /// Cancels a waiting invitation; whether there was one.
    pub async fn cancel_carer_invitation(&self, id: &str) -> Result<bool, StoreError> {
        self.trace_change("carer_invitation", None).await?;
        let store = &self.gate().store;
        let mut tx = store.db.begin().await?;
        let n = tx
            .execute(
                Query::new("DELETE FROM carer_invitations WHERE holder_id = $1 AND code_hash = $2")
                    .binds((self.holder().as_uuid(), id)),
                "cancel carer invitation",
            )
            .await?;
        tx.commit().await?;
        Ok(n == 1)
    }

    /// The space's carers: their grants in the directory, expired ones included.
    pub async fn carers(&self) -> Result<Vec<(HolderId, Grant)>, StoreError> {
        let (policy, _) = self.access_policy().await?;
        Ok(policy
            .grants
            .into_iter()
            .filter_map(|g| match g.grantee {
                Grantee::Carer { id } => Some((id, g)),
                _ => None,
            })
            .collect())
    }

    /// Ends a carer's access at once (S-4); the carer is told. Whether they were one.
    pub async fn end_carer(&self, carer: HolderId) -> Result<bool, StoreError> {
        self.trace_change("access_policy", None).await?;
        let store = &self.gate().store;
        let name = store.person_name(self.holder()).await?.full();
        let notice = OutboxMessage::new(
            carer,
            "carer_ended",
            Channel::Email,
            serde_json::json!({ "name": name }).to_string().into_bytes(),
        );
        store.remove_carer(self.holder(), carer, notice).await
    }
}

impl Gate {
    /// MI-5: the grant `carer` holds in `holder`'s space now, if any (what they were given:
    /// which categories, until when). `None` in their own space, or once it ended.
    pub async fn carer_grant(&self, holder: HolderId, carer: HolderId) -> Result<Option<Grant>, StoreError> {
        let Some(space) = self.space(holder, &Actor::Carer { id: carer }).await? else {
            return Ok(None);
        };
        if !matches!(
            space.lifecycle,
            carnet_domain::Lifecycle::Open { .. } | carnet_domain::Lifecycle::Activated { .. }
        ) {
            return Ok(None);
        }
        let facts = space.policy.facts(space.lifecycle);
        Ok(facts
            .grant(&Grantee::Carer { id: carer }, None, self.store.now())
            .cloned())
    }

    /// MI-5: `carer` accepts the invitation behind `code`: the grant is filed in the inviting
    /// space's directory, the code consumed, the acceptance traced in that space's history and
    /// told to its holder, in one transaction. The inviting space's id. An unknown or used code
    /// is [`StoreError::Mismatch`] (says nothing more); an expired one, or a space that takes no
    /// carer any more, a readable [`StoreError::Invalid`].
    pub async fn accept_carer_invitation(&self, carer: HolderId, code: &str) -> Result<HolderId, StoreError> {
        let store = &self.store;
        let hash = code_hash(&normalise_code(code).ok_or(StoreError::Mismatch)?);
        let row: Option<(Uuid, Vec<u8>)> = store
            .db
            .fetch_optional_as(
                Query::new("SELECT holder_id, invitation_sealed FROM carer_invitations WHERE code_hash = $1")
                    .bind(&hash),
                "read carer invitation",
            )
            .await?;
        let Some((holder, sealed)) = row else {
            return Err(StoreError::Mismatch);
        };
        let holder = HolderId::from_uuid(holder);
        let actor = Actor::Carer { id: carer };
        if holder == carer {
            return Err(Refusal::OwnSpace.into());
        }
        let Some(space) = self.space(holder, &actor).await? else {
            return Err(StoreError::Mismatch);
        };
        let key = store.vault.get(holder).await?;
        let invitation: Invitation =
            serde_json::from_slice(&key.open(&invitation_aad(holder, &hash), &sealed)?)
                .map_err(|e| StoreError::Integrity(format!("carer invitation: {e}")))?;
        let now = store.now();
        let grant = carnet_domain::carer::accept(&invitation, holder, carer, &space.lifecycle, now)
            .map_err(StoreError::from)?;
        let carer_name = store.person_name(carer).await?.full();
        let mut filed = false;
        for _ in 0..5 {
            let (mut policy, version) = store.access_policy(holder).await?;
            policy.grants.retain(|g| g.grantee != grant.grantee);
            policy.grants.push(grant.clone());
            let mut tx = store.db.begin().await?;
            let consumed = tx
                .execute(
                    Query::new("DELETE FROM carer_invitations WHERE code_hash = $1 AND holder_id = $2")
                        .binds((&hash, holder.as_uuid())),
                    "consume carer invitation",
                )
                .await?;
            if consumed != 1 {
                return Err(StoreError::Mismatch);
            }
            if !store
                .write_access_policy(&mut tx, holder, &policy, version)
                .await?
            {
                continue;
            }
            tx.execute(
                Query::new(
                    "INSERT INTO carers (holder_id, carer_id, since, until_at) VALUES ($1, $2, $3, $4) ON \
                     CONFLICT (holder_id, carer_id) DO UPDATE SET since = $3, until_at = $4",
                )
                .binds((
                    holder.as_uuid(),
                    carer.as_uuid(),
                    now.as_micros(),
                    grant.until.map(|u| u.as_micros()),
                )),
                "index carer",
            )
            .await?;
            let notice = OutboxMessage::new(
                holder,
                "carer_accepted",
                Channel::Email,
                serde_json::json!({ "name": carer_name }).to_string().into_bytes(),
            );
            store.enqueue_in_tx(&mut tx, &key, &notice, now).await?;
            tx.commit().await?;
            filed = true;
            break;
        }
        if !filed {
            return Err(StoreError::Conflict);
        }
        self.trace_decision(
            Access {
                holder,
                actor: &actor,
                action: Action::Create,
                item: "carer",
                category: None,
                withheld: Withheld::default(),
            },
            Decision {
                allowed: true,
                reason: Reason::Carer,
                emergency: false,
            },
            &space,
            &Default::default(),
        )
        .await?;
        Ok(holder)
    }
}

impl Store {
    /// The spaces `carer` helps now (grant not ended), by space.
    pub async fn helped_by(&self, carer: HolderId) -> Result<Vec<Helped>, StoreError> {
        self.db
            .fetch_all(
                Query::new(
                    "SELECT holder_id, since, until_at FROM carers WHERE carer_id = $1 AND (until_at IS NULL \
                     OR until_at > $2) ORDER BY holder_id",
                )
                .binds((carer.as_uuid(), self.now().as_micros())),
                "list helped spaces",
            )
            .await
            .and_then(|rs| {
                rs.into_iter()
                    .map(|mut r| {
                        Ok(Helped {
                            holder: HolderId::from_uuid(r.take::<Uuid>(0)?),
                            since: Timestamp::from_micros(r.take::<i64>(1)?),
                            until: r.take::<Option<i64>>(2)?.map(Timestamp::from_micros),
                        })
                    })
                    .collect()
            })
    }

    /// Whether `carer` helps `holder` now (the session's switch; the gate decides each read).
    pub async fn helps(&self, carer: HolderId, holder: HolderId) -> Result<bool, StoreError> {
        let q = Query::new(
            "SELECT 1 FROM carers WHERE holder_id = $1 AND carer_id = $2 AND (until_at IS NULL OR until_at > \
             $3)",
        )
        .binds((holder.as_uuid(), carer.as_uuid(), self.now().as_micros()));
        Ok(self.db.fetch_optional(q, "read carer").await?.is_some())
    }

    /// MI-5: `carer` stops helping `holder`; the holder is told. Whether they helped.
    pub async fn stop_helping(&self, carer: HolderId, holder: HolderId) -> Result<bool, StoreError> {
        let name = self.person_name(carer).await?.full();
        let notice = OutboxMessage::new(
            holder,
            "carer_withdrew",
            Channel::Email,
            serde_json::json!({ "name": name }).to_string().into_bytes(),
        );
        self.remove_carer(holder, carer, notice).await
    }

    /// Removes `carer`'s grant from `holder`'s directory and its index row, and queues
    /// `notice` (to the other side) when there was one, together.
    async fn remove_carer(
        &self,
        holder: HolderId,
        carer: HolderId,
        notice: OutboxMessage,
    ) -> Result<bool, StoreError> {
        let grantee = Grantee::Carer { id: carer };
        let key = self.vault.get(notice.holder).await?;
        for _ in 0..5 {
            let (mut policy, version) = self.access_policy(holder).await?;
            let before = policy.grants.len();
            policy.grants.retain(|g| g.grantee != grantee);
            let had_grant = policy.grants.len() != before;
            let mut tx = self.db.begin().await?;
            if had_grant
                && !self
                    .write_access_policy(&mut tx, holder, &policy, version)
                    .await?
            {
                continue;
            }
            let indexed = tx
                .execute(
                    Query::new("DELETE FROM carers WHERE holder_id = $1 AND carer_id = $2")
                        .binds((holder.as_uuid(), carer.as_uuid())),
                    "remove carer",
                )
                .await?;
            let ended = had_grant || indexed == 1;
            if ended {
                self.enqueue_in_tx(&mut tx, &key, &notice, self.now()).await?;
            }
            tx.commit().await?;
            return Ok(ended);
        }
        Err(StoreError::Conflict)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_read_aloud_and_forgive_the_typing() {
        for _ in 0..200 {
            let code = new_code().unwrap();
            assert_eq!(code.len(), CODE_LEN + 2);
            assert!(!code.contains(['0', 'O', '1', 'I', 'L', '#']), "{code}");
            let typed = format!(" {} ", code.to_lowercase().replace('-', " "));
            assert_eq!(
                normalise_code(&typed).map(|c| code_hash(&c)),
                Some(code_hash(&code.replace('-', "")))
            );
        }
        assert_eq!(normalise_code("ABCD-EFGH"), None);
    }
}
