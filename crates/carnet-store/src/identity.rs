//! Whose record it is, and what of it a professional may read (issue 33, ID-1, AC-8).
//!
//! A clinician checks the patient's identity before reading or filing anything: every
//! professional page about a patient carries it. [`Gate::find_patient`] is the lookup by INS
//! (traced, and kept as the professional's recent patient); [`Gate::identify`] gives the
//! identity traits (never the contact data) as `carnet_domain::access::decide_identity`
//! allows; [`Gate::standing`] says what the professional may read as a whole, so that a
//! refusal is said as one and never looks like an empty record, without telling what the
//! space holds.

use carnet_domain::access::{
    Action, Actor, CareTeam, Category, ConsentForm, Context, Decision, Grant, ProfessionalId, Reason,
    Standing, decide_identity, standing,
};
use carnet_domain::roster::Administrative;
use carnet_domain::{HolderId, Ins, Lifecycle, Timestamp};

use crate::db::query::Query;
use crate::error::StoreError;
use crate::gate::{Access, Gate};
use crate::traces::Withheld;

/// How long an INS a professional presented shows them whose record it is (our choice: a
/// working day; they look the patient up again after).
pub const PRESENTED_INS_SECONDS: i64 = 24 * 3600;

/// The identity traits of a space (ID-1), as the insurer's roster gave them: what a
/// professional checks. No contact data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub ins: Ins,
    pub birth_name: String,
    pub used_name: Option<String>,
    pub given_names: Vec<String>,
    pub sex: carnet_domain::roster::Sex,
    pub birth_date: time::Date,
    pub birth_place: Option<String>,
}

/// A professional's notice with what they may know of it ([`Gate::alerts`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProAlert {
    pub notice: crate::directory::ProNotice,
    /// "Camille MARTIN", when the professional may see whose record it is.
    pub patient: Option<String>,
    /// The RPPS of who opened the record in an emergency.
    pub by: Option<String>,
    /// The emergency's stated reason.
    pub reason: Option<String>,
}

/// What a professional may read of a space ([`Standing`]), and until when a running
/// emergency access of theirs lasts (AC-5).
/// Identity traits a professional types when the INS is not at hand (INSi's "recherche par
/// traits"): as on the Carte Vitale or an identity document.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Traits {
    pub birth_name: String,
    pub first_given_name: String,
    /// `YYYY-MM-DD`.
    pub birth_date: String,
    /// `female`, `male` or `unknown`.
    pub sex: String,
}

/// What a lookup by traits found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraitsLookup {
    Found(HolderId),
    /// Several people share these traits: only the INS tells them apart.
    Several,
    None,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProStanding {
    pub standing: Standing,
    pub emergency_until: Option<Timestamp>,
}

impl Gate {
    /// A professional's lookup by INS: the open space with this INS, if any (`None` otherwise,
    /// an erased, closed or objected one included, AC-8). The lookup is traced in that space,
    /// told to the holder like any access (AC-6), and kept as this professional's presented
    /// INS for [`PRESENTED_INS_SECONDS`].
    pub async fn find_patient(&self, actor: &Actor, ins: &Ins) -> Result<Option<HolderId>, StoreError> {
        if !matches!(actor, Actor::Professional { .. }) {
            return Ok(None);
        }
        let Some(holder) = self.store.find_by_ins(ins).await? else {
            return Ok(None);
        };
        self.presented(actor, holder).await
    }

    /// A professional's lookup by identity traits, when the INS is not at hand (issue 33):
    /// birth name, first given name, birth date and sex, exactly as the roster holds them
    /// (case and spaces aside), matched through the same keyed index as the identity
    /// providers'. One open space matched: found, traced and kept as [`Gate::find_patient`]
    /// does. Several people with these traits: [`TraitsLookup::Several`], none of them named
    /// or traced — the INS is needed. Otherwise nothing (AC-8).
    pub async fn find_patient_by_traits(
        &self,
        actor: &Actor,
        traits: &Traits,
    ) -> Result<TraitsLookup, StoreError> {
        if !matches!(actor, Actor::Professional { .. }) {
            return Ok(TraitsLookup::None);
        }
        let key = crate::oidc::identity_key(
            &traits.birth_name,
            &traits.first_given_name,
            &traits.birth_date,
            &traits.sex,
        );
        let found = self.store.holders_by_identity(&key).await?;
        match found.as_slice() {
            [holder] => Ok(self
                .presented(actor, *holder)
                .await?
                .map_or(TraitsLookup::None, TraitsLookup::Found)),
            [] => Ok(TraitsLookup::None),
            _ => Ok(TraitsLookup::Several),
        }
    }

    /// The professional presented this holder's identity: the open space, traced and kept.
    async fn presented(&self, actor: &Actor, holder: HolderId) -> Result<Option<HolderId>, StoreError> {
        let Actor::Professional { id, .. } = actor else {
            return Ok(None);
        };
        let Some(space) = self.space(holder, actor).await? else {
            return Ok(None);
        };
        if !matches!(
            space.lifecycle,
            Lifecycle::Open { .. } | Lifecycle::Activated { .. }
        ) {
            return Ok(None);
        }
        let now = self.store.now().as_micros();
        let rpps = id.0.clone();
        self.store
            .write(move |tx| {
                Box::pin(async move {
                    tx.execute(
                        Query::new(
                            "INSERT INTO pro_patients (rpps, holder_id, presented_at) VALUES ($1, $2, $3) ON \
                             CONFLICT (rpps, holder_id) DO UPDATE SET presented_at = excluded.presented_at",
                        )
                        .binds((&rpps, holder.as_uuid(), now)),
                        "record a presented INS",
                    )
                    .await
                    .map(|_| ())
                })
            })
            .await?;
        let d = carnet_domain::access::Decision {
            allowed: true,
            reason: carnet_domain::access::Reason::InsPresented,
            emergency: false,
        };
        self.record(
            Access {
                holder,
                actor,
                action: Action::Read,
                item: "patient/lookup",
                category: Some(Category::Administrative),
                withheld: Withheld::default(),
            },
            d,
            &space,
            &Context::default(),
        )
        .await?;
        Ok(Some(holder))
    }

    /// Whose record it is, as [`decide_identity`] lets `actor` see it; traced (AC-6).
    /// [`StoreError::NotFound`] when refused or when there is no such space (AC-8).
    pub async fn identify(&self, holder: HolderId, actor: &Actor) -> Result<Identity, StoreError> {
        let (space, d) = self.identity_decision(holder, actor).await?;
        let decider = self.decider(&space, actor, &Context::default());
        self.record(
            Access {
                holder,
                actor,
                action: Action::Read,
                item: "patient/identity",
                category: Some(Category::Administrative),
                withheld: Withheld::default(),
            },
            d,
            &space,
            decider.context(),
        )
        .await?;
        if !d.allowed {
            return Err(StoreError::NotFound);
        }
        #[allow(clippy::disallowed_methods)] // decided above (S-1)
        let record = self.store.holder(holder).await?;
        let admin: Administrative = serde_json::from_slice(&record.administrative)
            .map_err(|e| StoreError::Integrity(format!("administrative data: {e}")))?;
        Ok(Identity {
            ins: admin.ins,
            birth_name: admin.birth_name,
            used_name: admin.used_name,
            given_names: admin.given_names,
            sex: admin.sex,
            birth_date: admin.birth_date,
            birth_place: admin.birth_place,
        })
    }

    /// What `actor` may read of `holder`'s space as a whole ([`standing`]), not traced: it
    /// reads the directory, nothing of the record, and says nothing of what it holds (AC-8).
    /// `None`: no such space.
    pub async fn standing(&self, holder: HolderId, actor: &Actor) -> Result<Option<ProStanding>, StoreError> {
        let Some(space) = self.space(holder, actor).await? else {
            return Ok(None);
        };
        let decider = self.decider(&space, actor, &Context::default());
        let standing = standing(
            actor,
            &space.policy.facts(space.lifecycle),
            self.matrix(),
            decider.context(),
            decider.now(),
        );
        let emergency_until = match actor {
            Actor::Professional { id, .. } if standing.emergency => {
                let row = self
                    .store
                    .db
                    .fetch_optional(
                        Query::new(
                            "SELECT MAX(until_at) FROM emergency_accesses WHERE holder_id = $1 AND rpps = $2 \
                             AND until_at > $3",
                        )
                        .bind(*holder.as_uuid())
                        .bind(&id.0)
                        .bind(decider.now().as_micros()),
                        "read emergency access",
                    )
                    .await?;
                match row {
                    Some(mut r) => r.take::<Option<i64>>(0)?.map(Timestamp::from_micros),
                    None => None,
                }
            }
            _ => None,
        };
        Ok(Some(ProStanding {
            standing,
            emergency_until,
        }))
    }

    /// The spaces of `rows` (a holder id each) named through [`Gate::identify`] for `actor`,
    /// in order; a space gone, erased or no longer theirs to know is left out.
    async fn named(
        &self,
        rows: Vec<crate::db::query::Values>,
        actor: &Actor,
    ) -> Result<Vec<(HolderId, Identity)>, StoreError> {
        let mut out = Vec::new();
        for mut r in rows {
            let holder = HolderId::from_uuid(r.take::<uuid::Uuid>(0)?);
            match self.identify(holder, actor).await {
                Ok(who) => out.push((holder, who)),
                Err(StoreError::NotFound | StoreError::Shredded(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// "My patients" (issue 33): the patients this professional looked up by INS in the last
    /// [`PRESENTED_INS_SECONDS`], newest first, so that nobody types a 15-digit INS twice in a
    /// day. Each is named through [`Gate::identify`] (traced like the banner); a space that is
    /// gone or closed since is left out.
    pub async fn recent_patients(
        &self,
        actor: &Actor,
        limit: i64,
    ) -> Result<Vec<(HolderId, Identity)>, StoreError> {
        let Actor::Professional { id, .. } = actor else {
            return Ok(Vec::new());
        };
        let since = self.store.now().plus_seconds(-PRESENTED_INS_SECONDS).as_micros();
        let rows = self
            .store
            .db
            .fetch_all(
                Query::new(
                    "SELECT holder_id FROM pro_patients WHERE rpps = $1 AND presented_at > $2 ORDER BY \
                     presented_at DESC LIMIT $3",
                )
                .bind(&id.0)
                .bind(since)
                .bind(limit.clamp(1, 50)),
                "read recent patients",
            )
            .await?;
        self.named(rows, actor).await
    }

    /// "The patients who authorised me" (issue 33, AC-3): the spaces whose directory opens
    /// the record to this professional (médecin traitant, or a grant not ended and not
    /// blocked: `pro_grants`), newest first. Each is named through [`Gate::identify`], traced
    /// in the patient's history like the banner; asked for on purpose (a page of its own), so
    /// that a busy doctor's every visit does not write into each patient's history.
    pub async fn authorising_patients(
        &self,
        actor: &Actor,
        limit: i64,
    ) -> Result<Vec<(HolderId, Identity)>, StoreError> {
        let Actor::Professional { id, .. } = actor else {
            return Ok(Vec::new());
        };
        let rows = self
            .store
            .db
            .fetch_all(
                Query::new(
                    "SELECT holder_id FROM pro_grants WHERE rpps = $1 AND (until_at IS NULL OR until_at > \
                     $2) ORDER BY since DESC, holder_id LIMIT $3",
                )
                .bind(&id.0)
                .bind(self.store.now().as_micros())
                .bind(limit.clamp(1, 100)),
                "read authorising patients",
            )
            .await?;
        self.named(rows, actor).await
    }

    /// A professional's alerts (S-7, AC-5, issue 33), each with whose record it is and what
    /// happened, as far as they may know it: the patient's name comes from an identity read
    /// [`decide_identity`] allows (traced, like the banner), and only then is the notice's
    /// detail opened (who opened the record in an emergency, and why). A record no longer
    /// theirs to know (a changed médecin traitant, a block, an erasure) names nobody.
    pub async fn alerts(&self, actor: &Actor, limit: i64) -> Result<Vec<ProAlert>, StoreError> {
        let Actor::Professional { id, .. } = actor else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for notice in self.store.pro_notices(&id.0, limit).await? {
            let (patient, detail) = match self.identify(notice.holder, actor).await {
                Ok(who) => {
                    let given = who.given_names.first().cloned().unwrap_or_default();
                    let family = who.used_name.clone().unwrap_or_else(|| who.birth_name.clone());
                    let detail = self.store.notice_detail(&notice).await?;
                    (Some(format!("{given} {family}").trim().to_string()), detail)
                }
                Err(StoreError::NotFound | StoreError::Shredded(_)) => (None, None),
                Err(e) => return Err(e),
            };
            let field = |k: &str| {
                detail
                    .as_ref()
                    .and_then(|d| d.get(k))
                    .and_then(serde_json::Value::as_str)
                    .map(str::to_string)
            };
            out.push(ProAlert {
                by: field("by"),
                reason: field("reason"),
                patient,
                notice,
            });
        }
        Ok(out)
    }

    /// AC-1b: `actor` declares a care relationship with `holder` (which team, for which
    /// episode); the presumed authorisation is filed in the directory unless the holder objects
    /// or blocked them. Only a professional who knows the patient (presented the INS, or the
    /// record is open to them) may declare: for anyone else it is a missing space (AC-8).
    /// Traced and told to the holder like any access (AC-6). `Ok(Err(reason))`: refused, for
    /// the caller to word; `Ok(Ok(false))`: a grant was already in force, left as it was.
    pub async fn declare_care_team(
        &self,
        holder: HolderId,
        actor: &Actor,
        team: CareTeam,
        episode: &str,
    ) -> Result<Result<bool, Reason>, StoreError> {
        let space = self.knows(holder, actor).await?;
        let now = self.store.now();
        self.file_grant(holder, actor, "care_team/declared", &space, |facts| {
            carnet_domain::access::declare_care_team(actor, facts, team, episode, now)
        })
        .await
    }

    /// AC-1b: `actor` records the holder's consent (`form`, today) for the professional
    /// `for_rpps` (who may be themselves). Same conditions of knowing the patient as
    /// [`Gate::declare_care_team`]; refused for an unknown RPPS (`Reason::NoGrant`), for an
    /// occupational doctor or a blocked professional (`carnet_domain::access::record_consent`).
    pub async fn record_consent(
        &self,
        holder: HolderId,
        actor: &Actor,
        for_rpps: &str,
        form: ConsentForm,
    ) -> Result<Result<bool, Reason>, StoreError> {
        let space = self.knows(holder, actor).await?;
        let Some(target) = self.store.professional(for_rpps).await? else {
            return Ok(Err(Reason::NoGrant));
        };
        let target_id = ProfessionalId(target.rpps.clone());
        let now = self.store.now();
        self.file_grant(holder, actor, "care_team/consent", &space, |facts| {
            carnet_domain::access::record_consent(actor, &target_id, target.role, form, facts, now)
        })
        .await
    }

    /// Files the grant `obtain` gives on the directory's current facts (compare-and-set, so
    /// decided again on a retry), then traces it, allowed or refused, and tells the holder.
    async fn file_grant(
        &self,
        holder: HolderId,
        actor: &Actor,
        item: &str,
        space: &crate::gate::GateFacts,
        obtain: impl Fn(&carnet_domain::access::SpaceFacts) -> Result<Grant, Reason>,
    ) -> Result<Result<bool, Reason>, StoreError> {
        let now = self.store.now();
        let lifecycle = space.lifecycle;
        let outcome = std::sync::Mutex::new(Err(Reason::NoSpace));
        self.store
            .update_access_policy(holder, |p| {
                let r = obtain(&p.facts(lifecycle)).map(|g| p.admit(g, now));
                if let Ok(mut o) = outcome.lock() {
                    *o = r;
                }
            })
            .await?;
        let outcome = outcome
            .into_inner()
            .map_err(|_| StoreError::Integrity("a grant's outcome".into()))?;
        self.record_grant(holder, actor, item, outcome.map(|_| ()), space)
            .await?;
        Ok(outcome)
    }

    /// The space, if `actor` knows this patient ([`decide_identity`]); a missing space otherwise.
    async fn knows(&self, holder: HolderId, actor: &Actor) -> Result<crate::gate::GateFacts, StoreError> {
        if !matches!(actor, Actor::Professional { .. }) {
            return Err(StoreError::NotFound);
        }
        let (space, d) = self.identity_decision(holder, actor).await?;
        if d.allowed {
            Ok(space)
        } else {
            Err(StoreError::NotFound)
        }
    }

    /// The space and [`decide_identity`]'s answer for `actor` (not traced: the callers are).
    async fn identity_decision(
        &self,
        holder: HolderId,
        actor: &Actor,
    ) -> Result<(crate::gate::GateFacts, Decision), StoreError> {
        let space = self.space(holder, actor).await?.ok_or(StoreError::NotFound)?;
        let presented = match actor {
            Actor::Professional { id, .. } => self.presented_ins(holder, &id.0).await?,
            _ => false,
        };
        let decider = self.decider(&space, actor, &Context::default());
        let d = decide_identity(
            actor,
            &space.policy.facts(space.lifecycle),
            self.matrix(),
            presented,
            decider.context(),
            decider.now(),
        );
        Ok((space, d))
    }

    /// Traces an AC-1b declaration or consent (AC-6), allowed or refused, and tells the holder.
    async fn record_grant(
        &self,
        holder: HolderId,
        actor: &Actor,
        item: &str,
        outcome: Result<(), Reason>,
        space: &crate::gate::GateFacts,
    ) -> Result<(), StoreError> {
        let d = Decision {
            allowed: outcome.is_ok(),
            reason: outcome.err().unwrap_or(Reason::Grant),
            emergency: false,
        };
        self.record(
            Access {
                holder,
                actor,
                action: Action::Create,
                item,
                category: None,
                withheld: Withheld::default(),
            },
            d,
            space,
            &Context::default(),
        )
        .await
    }

    /// Whether the professional `rpps` knows this patient: presented `holder`'s INS in the
    /// last [`PRESENTED_INS_SECONDS`], or corresponds with them (MS-2: a conversation of
    /// theirs in the space, which they started).
    async fn presented_ins(&self, holder: HolderId, rpps: &str) -> Result<bool, StoreError> {
        let since = self.store.now().plus_seconds(-PRESENTED_INS_SECONDS).as_micros();
        let counterpart = format!("rpps:{rpps}");
        let row = self
            .store
            .db
            .fetch_optional(
                Query::new(
                    "SELECT 1 FROM pro_patients WHERE rpps = $1 AND holder_id = $2 AND presented_at > $3 \
                     UNION ALL SELECT 1 FROM conversations WHERE holder_id = $2 AND counterpart = $4",
                )
                .bind(rpps)
                .bind(*holder.as_uuid())
                .bind(since)
                .bind(&counterpart),
                "read presented INS",
            )
            .await?;
        Ok(row.is_some())
    }
}
