//! The directory of professionals (RPPS) and establishments (FINESS): who they are, their
//! profession (for the habilitation matrix, AC-1), their practice role (care, emergency
//! regulation, occupational: AC-1b, AC-5) and organisation. Public data, stored in clear.

use carnet_domain::access::{Actor, PracticeRole, ProfessionalId};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::error::StoreError;
use crate::{Store, on_db, on_tx};

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
}

impl Professional {
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
                on_tx!(&mut tx, t => sqlx::query(
                    "INSERT INTO organisations (finess, name, updated_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (finess) DO UPDATE SET name = $2, updated_at = $3")
                    .bind(f).bind(&name).bind(now).execute(&mut **t).await.map(|r| r.rows_affected()))
                .map_err(StoreError::db("upsert organisation"))?;
            }
            on_tx!(&mut tx, t => sqlx::query(
                "INSERT INTO professionals (rpps, family_name, given_name, profession, specialty, role, finess, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (rpps) DO UPDATE SET family_name = $2, given_name = $3, \
                 profession = $4, specialty = $5, role = $6, finess = $7, updated_at = $8")
                .bind(&p.rpps).bind(&p.family_name).bind(&p.given_name).bind(&p.profession).bind(&p.specialty)
                .bind(role_tag(p.role)).bind(&p.finess).bind(now)
                .execute(&mut **t).await.map(|r| r.rows_affected()))
                .map_err(StoreError::db("upsert professional"))?;
        }
        tx.commit().await
    }

    /// A professional by RPPS number.
    pub async fn professional(&self, rpps: &str) -> Result<Option<Professional>, StoreError> {
        on_db!(&self.db, p => sqlx::query(
        "SELECT p.rpps, p.family_name, p.given_name, p.profession, p.specialty, p.role, p.finess, o.name \
         FROM professionals p LEFT JOIN organisations o ON o.finess = p.finess WHERE p.rpps = $1")
        .bind(rpps).fetch_optional(p).await
        .map(|r| r.map(|r| Professional {
            rpps: r.get(0),
            family_name: r.get(1),
            given_name: r.get(2),
            profession: r.get(3),
            specialty: r.get(4),
            role: role_of(&r.get::<String, _>(5)),
            finess: r.get(6),
            organisation_name: r.get(7),
        })))
        .map_err(StoreError::db("read professional"))
    }

    pub async fn professional_count(&self) -> Result<i64, StoreError> {
        on_db!(&self.db, p => sqlx::query("SELECT COUNT(*) FROM professionals").fetch_one(p).await.map(|r| r.get::<i64, _>(0)))
            .map_err(StoreError::db("count professionals"))
    }
}
