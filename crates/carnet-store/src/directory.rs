//! The directory of professionals (RPPS) and establishments (FINESS): who they are, their
//! profession (for the habilitation matrix, AC-1), their practice role (care, emergency
//! regulation, occupational: AC-1b, AC-5) and organisation. Public data, stored in clear.

use carnet_domain::access::{Actor, PracticeRole, ProfessionalId};
use serde::{Deserialize, Serialize};

use crate::Store;
use crate::db::query::{Query, Values};
use crate::error::StoreError;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Professional {
    pub rpps: String,
    pub family_name: String,
    pub given_name: String,
    pub profession: String,
    pub specialty: Option<String>,
    pub role: PracticeRole,
    pub finess: Option<String>,
    pub organisation_name: Option<String>,
    /// The practice's town, as the directory gives it (issue 32: found by town).
    #[serde(default)]
    pub town: Option<String>,
}

impl Professional {
    /// How the professional is named to patients and colleagues (issue 33): "Dr Claire
    /// LEROY" for physicians and dental surgeons, "Sophie MOREAU" otherwise.
    pub fn display_name(&self) -> String {
        let dr = if matches!(self.profession.as_str(), "medecin" | "chirurgien_dentiste") {
            "Dr "
        } else {
            ""
        };
        format!("{dr}{} {}", self.given_name, self.family_name)
    }

    /// The gate's view of this professional.
    pub fn actor(&self) -> Actor {
        Actor::Professional {
            id: ProfessionalId(self.rpps.clone()),
            profession: self.profession.clone(),
            role: self.role,
        }
    }
}

fn role_tag(r: PracticeRole) -> &'static str {
    match r {
        PracticeRole::Care => "care",
        PracticeRole::Regulation => "regulation",
        PracticeRole::Occupational => "occupational",
    }
}

fn role_of(s: &str) -> PracticeRole {
    match s {
        "regulation" => PracticeRole::Regulation,
        "occupational" => PracticeRole::Occupational,
        _ => PracticeRole::Care,
    }
}

impl Store {
    /// Inserts or updates professionals (and their organisations) in one transaction.
    pub async fn upsert_professionals(&self, batch: &[Professional]) -> Result<(), StoreError> {
        let now = self.now().as_micros();
        let mut tx = self.db.begin().await?;
        for p in batch {
            if let Some(f) = &p.finess {
                let name = p.organisation_name.clone().unwrap_or_else(|| f.clone());
                tx.execute(
                    Query::new(
                        "INSERT INTO organisations (finess, name, updated_at) VALUES ($1, $2, $3) ON \
                         CONFLICT (finess) DO UPDATE SET name = $2, updated_at = $3",
                    )
                    .binds((f, &name, now)),
                    "upsert organisation",
                )
                .await?;
            }
            let (name_key, town_key) = (
                search_key(&p.family_name),
                search_key(p.town.as_deref().unwrap_or_default()),
            );
            tx.execute(
                Query::new(
                    "INSERT INTO professionals (rpps, family_name, given_name, profession, specialty, role, \
                     finess, updated_at, town, name_key, town_key) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, \
                     $9, $10, $11) ON CONFLICT (rpps) DO UPDATE SET family_name = $2, given_name = $3, \
                     profession = $4, specialty = $5, role = $6, finess = $7, updated_at = $8, town = $9, \
                     name_key = $10, town_key = $11",
                )
                .binds((
                    &p.rpps,
                    &p.family_name,
                    &p.given_name,
                    &p.profession,
                    &p.specialty,
                    role_tag(p.role),
                    &p.finess,
                    now,
                    &p.town,
                    &name_key,
                    &town_key,
                )),
                "upsert professional",
            )
            .await?;
        }
        tx.commit().await
    }

    /// A professional by RPPS number.
    pub async fn professional(&self, rpps: &str) -> Result<Option<Professional>, StoreError> {
        static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            format!(
                "SELECT {PROFESSIONAL_COLUMNS} FROM professionals p \
                 LEFT JOIN organisations o ON o.finess = p.finess WHERE p.rpps = $1"
            )
        });
        match self
            .db
            .fetch_optional(Query::new(&SQL).bind(rpps), "read professional")
            .await?
        {
            Some(mut r) => Ok(Some(professional_from(&mut r, 0)?)),
            None => Ok(None),
        }
    }

    /// Finds professionals as people think of them (issue 32, AC-3): by the beginning of the
    /// family name (at least two letters), optionally one profession and one town, in name
    /// order, at most `limit`. Public data: not traced.
    pub async fn search_professionals(
        &self,
        name: &str,
        profession: Option<&str>,
        town: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Professional>, StoreError> {
        let from = search_key(name);
        if from.chars().count() < 2 {
            return Ok(Vec::new());
        }
        // The keys starting with `from`: [from, from + U+10FFFF).
        let to = format!("{from}\u{10FFFF}");
        static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            format!(
                "SELECT {PROFESSIONAL_COLUMNS} FROM professionals p \
                 LEFT JOIN organisations o ON o.finess = p.finess \
                 WHERE p.name_key >= $1 AND p.name_key < $2 AND ($3 = '' OR p.profession = $3) \
                 AND ($4 = '' OR p.town_key = $4) ORDER BY p.name_key, p.given_name, p.rpps LIMIT $5"
            )
        });
        let rows = self
            .db
            .fetch_all(
                Query::new(&SQL)
                    .bind(&from)
                    .bind(&to)
                    .bind(profession.unwrap_or_default())
                    .bind(search_key(town.unwrap_or_default()))
                    .bind(limit.clamp(1, 100)),
                "search professionals",
            )
            .await?;
        rows.into_iter()
            .map(|mut r| professional_from(&mut r, 0))
            .collect()
    }

    /// An establishment's name by FINESS number, if the directory knows it.
    pub async fn organisation_name(&self, finess: &str) -> Result<Option<String>, StoreError> {
        match self
            .db
            .fetch_optional(
                Query::new("SELECT name FROM organisations WHERE finess = $1").bind(finess),
                "read organisation",
            )
            .await?
        {
            Some(mut r) => Ok(Some(r.take(0)?)),
            None => Ok(None),
        }
    }

    pub async fn professional_count(&self) -> Result<i64, StoreError> {
        self.db
            .fetch_one(
                Query::new("SELECT COUNT(*) FROM professionals"),
                "count professionals",
            )
            .await
            .and_then(|mut r| r.take::<i64>(0))
    }
}

/// The columns of a [`Professional`] (read by [`professional_from`]), from `professionals p`
/// and `organisations o`.
const PROFESSIONAL_COLUMNS: &str =
    "p.rpps, p.family_name, p.given_name, p.profession, p.specialty, p.role, p.finess, o.name, p.town";

/// A [`Professional`] from the [`PROFESSIONAL_COLUMNS`] of a point read's row, from column `at`.
fn professional_from(r: &mut Values, at: usize) -> Result<Professional, StoreError> {
    Ok(Professional {
        rpps: r.take(at)?,
        family_name: r.take(at + 1)?,
        given_name: r.take(at + 2)?,
        profession: r.take(at + 3)?,
        specialty: r.take(at + 4)?,
        role: role_of(&r.take::<String>(at + 5)?),
        finess: r.take(at + 6)?,
        organisation_name: r.take(at + 7)?,
        town: r.take(at + 8)?,
    })
}

/// How names and towns are compared in searches: lower case, accents and punctuation folded
/// to plain letters ("Saint-Étienne" → "saint etienne").
pub fn search_key(s: &str) -> String {
    let folded = carnet_domain::document::fold(s.trim())
        .replace('œ', "oe")
        .replace('æ', "ae");
    folded
        .split(|c: char| c.is_whitespace() || matches!(c, '-' | '\'' | '\u{2019}' | '.'))
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A notice for a professional (S-7), without health content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProNotice {
    pub at: carnet_domain::Timestamp,
    pub kind: String,
    pub holder: carnet_domain::HolderId,
    #[serde(skip)]
    pub id: uuid::Uuid,
    /// What it is about, sealed with the holder's key (`Gate::alerts` opens it).
    #[serde(skip)]
    pub detail_sealed: Option<Vec<u8>>,
}

fn notice_aad(holder: carnet_domain::HolderId, id: uuid::Uuid) -> Vec<u8> {
    crate::crypto::item_aad(holder, carnet_domain::ItemKind::ProNotice, id.as_bytes())
}

impl Store {
    /// Opens a session for a professional who authenticated strongly (AU-2: Pro Santé Connect
    /// or a card); returns the bearer secret, shown once. Same expiry rules as holders'.
    pub async fn create_pro_session(&self, rpps: &str) -> Result<String, StoreError> {
        let now = self.now();
        let token = crate::crypto::random_token()?;
        let mut tx = self.db.begin().await?;
        let q = Query::new(
            "INSERT INTO pro_sessions (token_hash, rpps, created_at, last_seen_at, expires_at) VALUES ($1, \
             $2, $3, $3, $4)",
        )
        .binds((
            crate::crypto::sha256_hex(token.as_bytes()),
            rpps,
            now.as_micros(),
            now.plus_seconds(crate::auth::SESSION_ABSOLUTE_SECONDS)
                .as_micros(),
        ));
        tx.execute(q, "create professional session")
            .await
            .map_err(crate::not_found_if_foreign_key)?;
        tx.commit().await?;
        Ok(token)
    }

    /// The professional behind a live session token, or `None`.
    pub async fn pro_session(&self, token: &str) -> Result<Option<Professional>, StoreError> {
        let now = self.now().as_micros();
        let hash = crate::crypto::sha256_hex(token.as_bytes());
        let idle = crate::auth::SESSION_IDLE_SECONDS * carnet_domain::Timestamp::MICROS_PER_SECOND;
        // The session and its professional in one point read (every FHIR request starts here).
        static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            format!(
                "SELECT s.last_seen_at, {PROFESSIONAL_COLUMNS} FROM pro_sessions s \
                 JOIN professionals p ON p.rpps = s.rpps LEFT JOIN organisations o ON o.finess = p.finess \
                 WHERE s.token_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > $2"
            )
        });
        let row = match self
            .db
            .fetch_optional(
                Query::new(&SQL).bind(&hash).bind(now),
                "read professional session",
            )
            .await?
        {
            Some(mut r) => Some((r.take::<i64>(0)?, professional_from(&mut r, 1)?)),
            None => None,
        };
        let Some((last_seen, professional)) = row else {
            return Ok(None);
        };
        if now >= last_seen + idle {
            return Ok(None);
        }
        if now - last_seen >= 60 * carnet_domain::Timestamp::MICROS_PER_SECOND {
            let mut tx = self.db.begin().await?;
            tx.execute(
                Query::new("UPDATE pro_sessions SET last_seen_at = $1 WHERE token_hash = $2")
                    .binds((now, &hash)),
                "touch professional session",
            )
            .await?;
            tx.commit().await?;
        }
        Ok(Some(professional))
    }

    pub async fn revoke_pro_session(&self, token: &str) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        tx.execute(
            Query::new("UPDATE pro_sessions SET revoked_at = $1 WHERE token_hash = $2").binds((
                self.now().as_micros(),
                crate::crypto::sha256_hex(token.as_bytes()),
            )),
            "revoke professional session",
        )
        .await?;
        tx.commit().await
    }

    /// Queues a notice for a professional (S-7: emergency access to their patient), with
    /// what it is about (`detail`, sealed with the holder's key; opened by `Gate::alerts`).
    pub(crate) async fn notify_professional(
        &self,
        rpps: &str,
        kind: &str,
        holder: carnet_domain::HolderId,
        detail: Option<&serde_json::Value>,
    ) -> Result<(), StoreError> {
        let now = self.now();
        let id = uuid::Uuid::now_v7();
        let sealed = match detail {
            Some(d) => {
                let key = self.vault.get(holder).await?;
                let bytes = serde_json::to_vec(d).map_err(|e| StoreError::Integrity(e.to_string()))?;
                Some(key.seal(&notice_aad(holder, id), &bytes)?)
            }
            None => None,
        };
        let mut tx = self.db.begin().await?;
        tx.execute(
            Query::new(
                "INSERT INTO pro_notices (rpps, id, at, kind, holder_id, detail_sealed) VALUES ($1, $2, $3, \
                 $4, $5, $6)",
            )
            .binds((rpps, id, now.as_micros(), kind, holder.as_uuid(), &sealed)),
            "queue professional notice",
        )
        .await?;
        tx.commit().await
    }

    /// A notice's detail, opened with the holder's key (`None` without one).
    pub(crate) async fn notice_detail(&self, n: &ProNotice) -> Result<Option<serde_json::Value>, StoreError> {
        let Some(sealed) = &n.detail_sealed else {
            return Ok(None);
        };
        let key = self.vault.get(n.holder).await?;
        let bytes = key.open(&notice_aad(n.holder, n.id), sealed)?;
        Ok(serde_json::from_slice(&bytes).ok())
    }

    /// A professional's notices, newest first.
    pub async fn pro_notices(&self, rpps: &str, limit: i64) -> Result<Vec<ProNotice>, StoreError> {
        self.db
            .fetch_all(
                Query::new(
                    "SELECT at, kind, holder_id, id, detail_sealed FROM pro_notices WHERE rpps = $1 ORDER BY \
                     id DESC LIMIT $2",
                )
                .binds((rpps, limit)),
                "list professional notices",
            )
            .await
            .and_then(|rs| {
                rs.into_iter()
                    .map(|mut r| {
                        Ok(ProNotice {
                            at: carnet_domain::Timestamp::from_micros(r.take(0)?),
                            kind: r.take(1)?,
                            holder: carnet_domain::HolderId::from_uuid(r.take::<uuid::Uuid>(2)?),
                            id: r.take(3)?,
                            detail_sealed: r.take(4)?,
                        })
                    })
                    .collect()
            })
    }
}
