//! The gate's storage side (SPEC AC-3..8): the authorisation directory of each space (sealed,
//! compare-and-set), the access traces (a hash chain per holder over sealed entries), and
//! [`Gate::check`], which decides with the domain policy, traces and notifies in one place.
//!
//! Trace hash: `sha256(prev | holder | seq | at | allowed | emergency | sha256(sealed entry))`.
//! Hashing the *sealed* entry keeps the chain verifiable after crypto-shredding; editing,
//! removing or reordering any row breaks it (`carnet verify-traces`). Removing a chain's
//! newest rows is caught by the signed checkpoints (`checkpoint`).

use std::sync::Arc;

use carnet_domain::access::{
    AccessPolicy, Action, Actor, Author, Category, Context, Decision, HabilitationMatrix, ItemFacts, Reason,
    SpaceFacts, decide, traced_and_notified,
};
use carnet_domain::{HolderId, ItemKind, Timestamp};

use crate::Store;
use crate::crypto::item_aad;
use crate::db::query::Query;
use crate::documents::RawDocument;
use crate::error::StoreError;
use crate::traces::{Pending, TraceEntry, Withheld};

fn policy_aad(holder: HolderId) -> Vec<u8> {
    item_aad(holder, ItemKind::AccessPolicy, holder.as_bytes())
}

fn emergency_aad(holder: HolderId, rpps: &str) -> Vec<u8> {
    let mut id = [0u8; 16];
    let h = crate::crypto::sha256(rpps.as_bytes());
    id.copy_from_slice(&h[..16]);
    item_aad(holder, ItemKind::EmergencyReason, &id)
}

/// What the gate reads of a space before deciding.
#[derive(Clone, Debug)]
pub struct GateFacts {
    pub lifecycle: carnet_domain::Lifecycle,
    pub policy: AccessPolicy,
    /// The reason of the asking professional's emergency access still running (AC-5).
    pub emergency: Option<String>,
    /// An access notice already waits to be sent on every channel the holder chose (read in
    /// the same query, so that most accesses queue nothing and write nothing but the trace).
    pub notice_waiting: bool,
}

/// One access to decide on and trace (AC-6): who does what to which item of whose space,
/// and whom the item is kept from.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Access<'a> {
    pub holder: HolderId,
    pub actor: &'a Actor,
    pub action: Action,
    /// Which item, e.g. `document/0190…` (never its content).
    pub item: &'a str,
    pub category: Option<Category>,
    pub withheld: Withheld,
}

/// How long a declared emergency opens the record (AC-5, our choice).
pub const EMERGENCY_ACCESS_SECONDS: i64 = 4 * 3600;

/// Decides items of one space for one actor ([`Gate::decider`]).
pub(crate) struct Decider<'a> {
    gate: &'a Gate,
    actor: &'a Actor,
    space: SpaceFacts,
    ctx: Context,
    now: Timestamp,
}

impl Decider<'_> {
    pub(crate) fn decide(&self, action: Action, facts: &ItemFacts) -> Decision {
        decide(
            self.actor,
            action,
            facts,
            &self.space,
            &self.gate.matrix,
            &self.ctx,
            self.now,
        )
    }

    /// The instant every item is decided at.
    pub(crate) fn now(&self) -> Timestamp {
        self.now
    }

    /// The context every item is decided in (a running emergency access in it, AC-5).
    pub(crate) fn context(&self) -> &Context {
        &self.ctx
    }
}

/// The gate's facts of a space ($1 holder, $2 the asking professional's RPPS or "", $3 now,
/// $4 a document id or the nil UUID) and that document's row, in one statement.
const GATE_FACTS: &str = concat!(
    "SELECT h.lifecycle, h.state_since, a.policy_sealed, \
     (SELECT e.reason_sealed FROM emergency_accesses e WHERE e.holder_id = h.id AND e.rpps = $2 \
      AND e.until_at > $3 ORDER BY e.until_at DESC LIMIT 1), \
     CAST(CASE WHEN (COALESCE(np.email, 1) = 0 OR EXISTS (SELECT 1 FROM outbox o WHERE o.holder_id = h.id \
                  AND o.kind = 'access' AND o.channel = 'email' AND o.sent_at IS NULL)) \
           AND (COALESCE(np.sms, 0) = 0 OR EXISTS (SELECT 1 FROM outbox o WHERE o.holder_id = h.id \
                  AND o.kind = 'access' AND o.channel = 'sms' AND o.sent_at IS NULL)) \
          THEN 1 ELSE 0 END AS BIGINT), \
     d.set_id, d.status, d.attachment_id, d.version, d.meta_sealed, \
     CAST(CASE WHEN EXISTS (SELECT 1 FROM representatives r WHERE r.holder_id = h.id \
                  AND r.representative_id = $5 AND ",
    current_representation!("$3"),
    ") \
          THEN 1 ELSE 0 END AS BIGINT) \
     FROM holders h LEFT JOIN access_policies a ON a.holder_id = h.id \
     LEFT JOIN notification_preferences np ON np.holder_id = h.id \
     LEFT JOIN documents d ON d.holder_id = h.id AND d.id = $4 WHERE h.id = $1"
);

impl Store {
    /// The holder's authorisation directory and its version (empty, version 0, if never set).
    pub(crate) async fn access_policy(&self, holder: HolderId) -> Result<(AccessPolicy, i64), StoreError> {
        let row = self
            .db
            .fetch_optional_as::<(Vec<u8>, i64)>(
                Query::new("SELECT policy_sealed, version FROM access_policies WHERE holder_id = $1")
                    .bind(holder.as_uuid()),
                "read access policy",
            )
            .await?;
        let Some((sealed, version)) = row else {
            return Ok((AccessPolicy::default(), 0));
        };
        let key = self.vault.get(holder).await?;
        let policy = serde_json::from_slice(&key.open(&policy_aad(holder), &sealed)?)
            .map_err(|e| StoreError::Integrity(format!("access policy: {e}")))?;
        Ok((policy, version))
    }

    /// The lifecycle, the directory, for a professional their active emergency access (AC-5),
    /// for a representative whether they currently represent the holder (MI-1, MI-3), and
    /// optionally the raw row of one of the holder's documents (a read by id), in one query
    /// (the gate's hot path); `None` if there is no such space.
    pub(crate) async fn gate_facts_with(
        &self,
        holder: HolderId,
        actor: &Actor,
        document: Option<uuid::Uuid>,
    ) -> Result<(Option<GateFacts>, Option<RawDocument>), StoreError> {
        let rpps = match actor {
            Actor::Professional { id, .. } => id.0.as_str(),
            _ => "",
        };
        let representative = match actor {
            Actor::Representative { id } => *id.as_uuid(),
            _ => uuid::Uuid::nil(),
        };
        let now = self.now().as_micros();
        let row = self
            .db
            .fetch_optional(
                Query::new(GATE_FACTS)
                    .bind(*holder.as_uuid())
                    .bind(rpps)
                    .bind(now)
                    .bind(document.unwrap_or(uuid::Uuid::nil()))
                    .bind(representative),
                "read gate facts",
            )
            .await?;
        let row = match row {
            None => None,
            Some(mut r) => {
                let doc = match (
                    r.take::<Option<uuid::Uuid>>(5)?,
                    r.take::<Option<String>>(6)?,
                    r.take::<Option<uuid::Uuid>>(7)?,
                    r.take::<Option<i64>>(8)?,
                    r.take::<Option<Vec<u8>>>(9)?,
                ) {
                    (Some(set), Some(status), Some(att), Some(version), Some(sealed)) => Some(RawDocument {
                        set_id: set,
                        status,
                        attachment: att,
                        version,
                        meta_sealed: sealed,
                    }),
                    _ => None,
                };
                Some((
                    (
                        r.take::<String>(0)?,
                        r.take::<i64>(1)?,
                        r.take::<Option<Vec<u8>>>(2)?,
                        r.take::<Option<Vec<u8>>>(3)?,
                        r.take::<i64>(4)?,
                    ),
                    doc,
                    r.take::<i64>(10)? != 0,
                ))
            }
        };
        let Some(((name, since, sealed, emergency, notice_waiting), doc, represents)) = row else {
            return Ok((None, None));
        };
        // S-1: who may act in this space at all is decided here, before anything is opened.
        if !carnet_domain::access::enters(actor, holder, represents) {
            return Ok((None, None));
        }
        let lifecycle = carnet_domain::Lifecycle::from_parts(&name, Timestamp::from_micros(since))
            .ok_or_else(|| StoreError::Integrity(format!("unknown lifecycle state {name}")))?;
        let key = if sealed.is_some() || emergency.is_some() {
            Some(self.vault.get(holder).await?)
        } else {
            None
        };
        let policy = match (sealed, &key) {
            (Some(sealed), Some(key)) => serde_json::from_slice(&key.open(&policy_aad(holder), &sealed)?)
                .map_err(|e| StoreError::Integrity(format!("access policy: {e}")))?,
            _ => AccessPolicy::default(),
        };
        let emergency = match (emergency, &key) {
            (Some(sealed), Some(key)) => Some(
                String::from_utf8(key.open(&emergency_aad(holder, rpps), &sealed)?)
                    .map_err(|e| StoreError::Integrity(format!("emergency reason: {e}")))?,
            ),
            _ => None,
        };
        Ok((
            Some(GateFacts {
                lifecycle,
                policy,
                emergency,
                notice_waiting: notice_waiting != 0,
            }),
            doc,
        ))
    }

    /// AC-5: records an emergency access of `rpps` to `holder`'s record until `until`, or
    /// (`running`) extends the one still running to `until`.
    async fn open_emergency(
        &self,
        holder: HolderId,
        rpps: &str,
        reason: &str,
        until: Timestamp,
        running: bool,
    ) -> Result<(), StoreError> {
        let now = self.now().as_micros();
        let mut tx = self.db.begin().await?;
        if running {
            tx.execute(
                Query::new(
                    "UPDATE emergency_accesses SET until_at = $1 WHERE holder_id = $2 AND rpps = $3 AND \
                     until_at > $4",
                )
                .binds((until.as_micros(), holder.as_uuid(), rpps, now)),
                "extend emergency access",
            )
            .await?;
        } else {
            let key = self.vault.get(holder).await?;
            let sealed = key.seal(&emergency_aad(holder, rpps), reason.as_bytes())?;
            tx.execute(
                Query::new(
                    "INSERT INTO emergency_accesses (holder_id, rpps, started_at, until_at, reason_sealed) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .binds((holder.as_uuid(), rpps, now, until.as_micros(), &sealed)),
                "record emergency access",
            )
            .await?;
        }
        tx.commit().await
    }

    /// Changes the directory (AC-3): applied with compare-and-set, effective on the very next
    /// request (S-4: nothing caches it).
    pub(crate) async fn update_access_policy(
        &self,
        holder: HolderId,
        change: impl Fn(&mut AccessPolicy),
    ) -> Result<AccessPolicy, StoreError> {
        for _ in 0..5 {
            let (mut policy, version) = self.access_policy(holder).await?;
            change(&mut policy);
            let mut tx = self.db.begin().await?;
            if self
                .write_access_policy(&mut tx, holder, &policy, version)
                .await?
            {
                tx.commit().await?;
                return Ok(policy);
            }
        }
        Err(StoreError::Conflict)
    }

    /// Writes `policy` over the directory at `version` (0: none yet) in `tx`; `false` when
    /// another writer came first (the caller reads again and retries).
    pub(crate) async fn write_access_policy(
        &self,
        tx: &mut crate::db::Tx,
        holder: HolderId,
        policy: &AccessPolicy,
        version: i64,
    ) -> Result<bool, StoreError> {
        let key = self.vault.get(holder).await?;
        let bytes = serde_json::to_vec(policy).map_err(|e| StoreError::Integrity(e.to_string()))?;
        let sealed = key.seal(&policy_aad(holder), &bytes)?;
        let now = self.now().as_micros();
        let q = if version == 0 {
            Query::new(
                "INSERT INTO access_policies (holder_id, policy_sealed, version, updated_at) VALUES ($1, $2, \
                 1, $3)",
            )
            .binds((holder.as_uuid(), &sealed, now))
        } else {
            Query::new(
                "UPDATE access_policies SET policy_sealed = $1, version = version + 1, updated_at = $2 WHERE \
                 holder_id = $3 AND version = $4",
            )
            .binds((&sealed, now, holder.as_uuid(), version))
        };
        match tx.execute(q, "write access policy").await {
            Ok(1) => {}
            Ok(_) => return Ok(false),
            Err(e) if e.is_unique_violation() => return Ok(false),
            Err(e) => return Err(e),
        }
        // Issue 33: who the directory opens the record to, by RPPS (`pro_grants`); a grant
        // kept keeps its `since`.
        let granted = granted_professionals(policy);
        let indexed: Vec<String> = tx
            .fetch_all_as::<String>(
                Query::new("SELECT rpps FROM pro_grants WHERE holder_id = $1").bind(holder.as_uuid()),
                "read professionals' grants",
            )
            .await?;
        for gone in indexed.iter().filter(|r| !granted.iter().any(|(g, _)| g == *r)) {
            tx.execute(
                Query::new("DELETE FROM pro_grants WHERE holder_id = $1 AND rpps = $2")
                    .binds((holder.as_uuid(), gone)),
                "index professionals' grants",
            )
            .await?;
        }
        for (rpps, until) in granted {
            tx.execute(
                Query::new(
                    "INSERT INTO pro_grants (rpps, holder_id, since, until_at) VALUES ($1, $2, $3, $4) ON \
                     CONFLICT (rpps, holder_id) DO UPDATE SET until_at = excluded.until_at",
                )
                .binds((&rpps, holder.as_uuid(), now, until.map(|u| u.as_micros()))),
                "index professionals' grants",
            )
            .await?;
        }
        Ok(true)
    }
}

/// The professionals a directory opens the record to (not blocked): the médecin traitant, then
/// each professional grant with its end (`None`: until revoked). What `pro_grants` indexes;
/// `decide` still decides every access.
fn granted_professionals(p: &AccessPolicy) -> Vec<(String, Option<Timestamp>)> {
    let mut out: Vec<(String, Option<Timestamp>)> = Vec::new();
    if let Some(mt) = p.medecin_traitant.as_ref().filter(|mt| !p.blocked.contains(mt)) {
        out.push((mt.0.clone(), None));
    }
    for g in &p.grants {
        if let carnet_domain::access::Grantee::Professional { id } = &g.grantee {
            let objected = p.care_team_objection
                && matches!(g.basis, carnet_domain::access::GrantBasis::CareTeam { .. });
            if !p.blocked.contains(id) && !objected && !out.iter().any(|(r, _)| *r == id.0) {
                out.push((id.0.clone(), g.until));
            }
        }
    }
    out
}

/// The one place that decides on access to holder data, traces it and notifies the holder.
#[derive(Clone, Debug)]
pub struct Gate {
    pub(crate) store: Store,
    matrix: Arc<HabilitationMatrix>,
    appender: tokio::sync::mpsc::Sender<Pending>,
}

impl Gate {
    /// Creates the gate and its trace appender (`db::spawn_pipeline`) which
    /// group-commits the traces of concurrent accesses: each caller still waits until its trace
    /// is durable, but one commit serves every access that arrived meanwhile.
    pub fn new(store: Store, matrix: HabilitationMatrix) -> Self {
        let appender = crate::traces::spawn_appender(&store);
        Self {
            store,
            matrix: Arc::new(matrix),
            appender,
        }
    }

    /// Appends a trace through the group-commit appender; returns once it is durable.
    pub(crate) async fn trace(&self, holder: HolderId, entry: TraceEntry) -> Result<i64, StoreError> {
        let (reply, wait) = tokio::sync::oneshot::channel();
        self.appender
            .send((holder, entry, reply))
            .await
            .map_err(|_| StoreError::Integrity("the trace appender stopped".into()))?;
        match wait.await {
            Ok(Ok(seq)) => Ok(seq),
            Ok(Err(None)) => Err(StoreError::DiskFull),
            Ok(Err(Some(msg))) => Err(StoreError::TraceAppend(msg)),
            Err(_) => Err(StoreError::Integrity("the trace appender stopped".into())),
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn matrix(&self) -> &HabilitationMatrix {
        &self.matrix
    }

    /// Decides whether `actor` may do `action` on `item` (described by `facts`) of `holder`'s
    /// space; traces every access by someone other than the holder and every denial (AC-6,
    /// AC-8); notifies the holder at once of accesses by professionals, establishments and apps,
    /// and of every emergency access (AC-5, AC-6), collapsing notices not yet sent.
    pub async fn check(
        &self,
        holder: HolderId,
        actor: &Actor,
        action: Action,
        item: &str,
        facts: &ItemFacts,
        ctx: &Context,
    ) -> Result<Decision, StoreError> {
        let Some(space) = self.space(holder, actor).await? else {
            return Ok(NO_SPACE);
        };
        let d = self.decide_in(&space, actor, action, facts, ctx);
        self.record(
            Access {
                holder,
                actor,
                action,
                item,
                category: Some(facts.category),
                withheld: Withheld::default(),
            },
            d,
            &space,
            ctx,
        )
        .await?;
        Ok(d)
    }

    /// The facts of a space the gate decides on (`None`: no such space, or erased).
    pub(crate) async fn space(
        &self,
        holder: HolderId,
        actor: &Actor,
    ) -> Result<Option<GateFacts>, StoreError> {
        Ok(self.space_with(holder, actor, None).await?.0)
    }

    /// [`Gate::space`] and the raw row of one document of the space, in one round trip.
    pub(crate) async fn space_with(
        &self,
        holder: HolderId,
        actor: &Actor,
        document: Option<uuid::Uuid>,
    ) -> Result<(Option<GateFacts>, Option<RawDocument>), StoreError> {
        // Decided without a read where the actor alone says no (a holder in another's space,
        // an app outside the space that connected it); a representative's tie is read with
        // the space's facts (`Store::gate_facts_with`).
        if !carnet_domain::access::enters(actor, holder, true) {
            return Ok((None, None));
        }
        match self.store.gate_facts_with(holder, actor, document).await {
            Ok(f) => Ok(f),
            // An unknown or erased space is decided like an existing one that refuses (AC-8).
            Err(StoreError::Shredded(_)) => Ok((None, None)),
            Err(e) => Err(e),
        }
    }

    /// The pure decision (no trace): for one item of a listing whose access is traced once.
    pub(crate) fn decide_in(
        &self,
        space: &GateFacts,
        actor: &Actor,
        action: Action,
        facts: &ItemFacts,
        ctx: &Context,
    ) -> Decision {
        self.decider(space, actor, ctx).decide(action, facts)
    }

    /// [`Gate::decide_in`] for many items of one listing: the space's facts (grants, blocks)
    /// and the context are made once, and every item is decided at the same instant.
    pub(crate) fn decider<'a>(&'a self, space: &GateFacts, actor: &'a Actor, ctx: &Context) -> Decider<'a> {
        // A running emergency access (AC-5) stands for a reason stated with every request.
        let ctx = match (&ctx.emergency, &space.emergency) {
            (None, Some(reason)) => Context {
                emergency: Some(reason.clone()),
            },
            _ => ctx.clone(),
        };
        Decider {
            gate: self,
            actor,
            space: space.policy.facts(space.lifecycle),
            ctx,
            now: self.store.now(),
        }
    }

    /// Traces a decision (every access by someone other than the holder, and every denial:
    /// AC-6, AC-8) and notifies the holder (AC-6, AC-5). Returns once the trace is durable. An
    /// item kept from the holder for now (DM-6, `access.withheld`) is told to nobody yet.
    pub(crate) async fn record(
        &self,
        access: Access<'_>,
        d: Decision,
        space: &GateFacts,
        ctx: &Context,
    ) -> Result<(), StoreError> {
        let (holder, actor, withheld) = (access.holder, access.actor, access.withheld);
        self.trace_decision(access, d, space, ctx).await?;
        let (_, notified) = traced_and_notified(actor);
        let told_now = withheld.from_holder_until.is_none();
        if d.allowed && d.emergency {
            // AC-5: one notice per emergency, its declaration's; what the professional then
            // reads under it is traced as an emergency without telling the holder again.
            if ctx.emergency.is_some() && space.emergency.is_none() {
                self.store.notify_access(holder, true).await?;
            }
        } else if d.allowed && notified && told_now && !space.notice_waiting {
            self.store.notify_access(holder, false).await?;
        }
        Ok(())
    }

    /// The opening of most operations on one item: decides `access` on an item described by
    /// `facts` (its action is the one decided), records it (trace, notice: AC-6) and answers
    /// [`StoreError::NotFound`] when refused or when there is no such space (AC-8).
    pub(crate) async fn admit(
        &self,
        access: Access<'_>,
        facts: &ItemFacts,
        ctx: &Context,
    ) -> Result<(), StoreError> {
        self.admit_found(access, Some(facts), ctx).await
    }

    /// [`Gate::admit`] for an item looked up first: `None` (no such item) is decided, traced
    /// and refused exactly like an item the caller may not touch (AC-8).
    pub(crate) async fn admit_found(
        &self,
        access: Access<'_>,
        facts: Option<&ItemFacts>,
        ctx: &Context,
    ) -> Result<(), StoreError> {
        let space = self
            .space(access.holder, access.actor)
            .await?
            .ok_or(StoreError::NotFound)?;
        let none = crate::documents::record_facts();
        let d = self.decide_in(&space, access.actor, access.action, facts.unwrap_or(&none), ctx);
        let d = if facts.is_some() {
            d
        } else {
            Decision { allowed: false, ..d }
        };
        self.record(access, d, &space, ctx).await?;
        if d.allowed {
            Ok(())
        } else {
            Err(StoreError::NotFound)
        }
    }

    /// The trace part of [`Gate::record`], for an operation that tells the holder in its own
    /// words and in its own transaction (a new message, MS-4).
    pub(crate) async fn trace_decision(
        &self,
        access: Access<'_>,
        d: Decision,
        space: &GateFacts,
        ctx: &Context,
    ) -> Result<(), StoreError> {
        let (traced, _) = traced_and_notified(access.actor);
        metrics::counter!(
            "carnet_gate_decisions_total",
            "outcome" => if d.allowed { "allowed" } else { "denied" },
            "reason" => d.reason.name(),
        )
        .increment(1);
        if (traced || !d.allowed) && !matches!(d.reason, Reason::NoSpace) {
            let entry = TraceEntry {
                actor: access.actor.clone(),
                action: access.action,
                item: access.item.to_string(),
                category: access.category,
                allowed: d.allowed,
                reason: d.reason,
                emergency: d.emergency,
                purpose: if d.emergency {
                    ctx.emergency.clone().or_else(|| space.emergency.clone())
                } else {
                    ctx.emergency.clone()
                },
                hidden_from_representatives: access.withheld.from_representatives,
                withheld_until: access.withheld.from_holder_until,
            };
            self.trace(access.holder, entry).await?;
        }
        Ok(())
    }

    /// AC-5, S-7: a professional who is not authorised declares an emergency, with a reason.
    /// If the policy allows it (not blocked, not everything hidden, habilitated), the record
    /// opens to them for [`EMERGENCY_ACCESS_SECONDS`]; the declaration is traced as an
    /// emergency and told at once to the holder and to the médecin traitant. Returns the
    /// decision and, when opened, the end of the access.
    pub async fn declare_emergency(
        &self,
        holder: HolderId,
        actor: &Actor,
        reason: &str,
    ) -> Result<(Decision, Option<Timestamp>), StoreError> {
        let Actor::Professional { id, .. } = actor else {
            return Ok((NO_SPACE, None));
        };
        let Some(space) = self.space(holder, actor).await? else {
            return Ok((NO_SPACE, None));
        };
        let ctx = Context {
            emergency: Some(reason.trim().to_string()),
        };
        // The declaration is decided as reading the record's summary under the emergency.
        let facts = ItemFacts {
            category: Category::Summaries,
            author: Author::Holder,
            masked: false,
            hidden_from_representatives: false,
            visible_to_holder: true,
        };
        let d = decide(
            actor,
            Action::Read,
            &facts,
            &space.policy.facts(space.lifecycle),
            &self.matrix,
            &ctx,
            self.store.now(),
        );
        let until = self.store.now().plus_seconds(EMERGENCY_ACCESS_SECONDS);
        if d.allowed && d.emergency {
            // A declaration while one runs extends it (its first reason stays).
            self.store
                .open_emergency(holder, &id.0, reason.trim(), until, space.emergency.is_some())
                .await?;
        }
        self.record(
            Access {
                holder,
                actor,
                action: Action::Read,
                item: "record/emergency",
                category: None,
                withheld: Withheld::default(),
            },
            d,
            &space,
            &ctx,
        )
        .await?;
        if d.allowed && d.emergency {
            // Told once per emergency: a declaration while one runs only extends it.
            if let Some(mt) = space
                .policy
                .medecin_traitant
                .as_ref()
                .filter(|mt| *mt != id && space.emergency.is_none())
            {
                let detail = serde_json::json!({ "by": id.0, "reason": reason.trim() });
                self.store
                    .notify_professional(&mt.0, "emergency_access", holder, Some(&detail))
                    .await?;
            }
            return Ok((d, Some(until)));
        }
        Ok((d, None))
    }
}

impl Gate {
    /// AC-6, S-5: an operator opens one holder's administrative data (identity, contact) for
    /// a support action, with a stated reason; the access, or its refusal, is traced with that
    /// reason. `Ok(None)`: no such space (or erased), exactly like an unknown id.
    pub async fn operator_support_read(
        &self,
        holder: HolderId,
        operator: &str,
        reason: &str,
    ) -> Result<Option<crate::HolderRecord>, StoreError> {
        let actor = Actor::Operator {
            id: operator.to_string(),
        };
        let Some(space) = self.space(holder, &actor).await? else {
            return Ok(None);
        };
        let d = carnet_domain::access::decide_operator_support(&space.policy.facts(space.lifecycle), reason);
        if matches!(d.reason, Reason::NoSpace) {
            return Ok(None);
        }
        let entry = TraceEntry {
            actor,
            action: Action::Read,
            item: "administrative".into(),
            category: None,
            allowed: d.allowed,
            reason: d.reason,
            emergency: false,
            purpose: Some(reason.trim().to_string()).filter(|r| !r.is_empty()),
            hidden_from_representatives: false,
            withheld_until: None,
        };
        self.trace(holder, entry).await?;
        if !d.allowed {
            return Err(StoreError::Invalid(
                "a support access needs its reason (reason=…)".into(),
            ));
        }
        #[allow(clippy::disallowed_methods)] // decided and traced above (S-1, S-5)
        let record = self.store.holder(holder).await;
        match record {
            Ok(h) => Ok(Some(h)),
            Err(StoreError::NotFound | StoreError::Shredded(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// An operator's decision on one space's lifecycle (LC-5b).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Suspension {
    /// Suspend an activated space on serious malfunction or fraud.
    Suspend,
    /// Lift the suspension: the space is as it was.
    Lift,
}

impl Gate {
    /// LC-5b: an operator suspends a space, or lifts its suspension, with a stated reason.
    /// The change and the letter that tells the holder (the reason, and the date the space will
    /// be closed unless they object) are made in one transaction; the action is traced in the
    /// holder's history with its reason before the answer. `Ok(None)`: no such space (or
    /// erased), exactly like an unknown id; an illegal change (suspending a closed space,
    /// lifting one that is not suspended) is [`StoreError::Transition`] and changes nothing.
    pub async fn operator_suspension(
        &self,
        holder: HolderId,
        operator: &str,
        decision: Suspension,
        reason: &str,
    ) -> Result<Option<carnet_domain::Lifecycle>, StoreError> {
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(StoreError::Invalid(
                "une suspension et sa levée disent leur motif / a suspension states its reason".into(),
            ));
        }
        let actor = Actor::Operator {
            id: operator.to_string(),
        };
        if self.space(holder, &actor).await?.is_none() {
            return Ok(None);
        }
        let channel = self.store.letter_channel(holder).await?;
        let (event, item) = match decision {
            Suspension::Suspend => (carnet_domain::Event::Suspend, "suspension"),
            Suspension::Lift => (carnet_domain::Event::LiftSuspension, "suspension-lifted"),
        };
        let next = self
            .store
            .transition_notified(holder, event, |next| {
                let (kind, payload) = match next {
                    carnet_domain::Lifecycle::Suspended { at } => (
                        crate::outbox::SPACE_SUSPENDED,
                        serde_json::json!({
                            "reason": reason,
                            "suspended_on": at.to_rfc3339(),
                            "closes_on": carnet_domain::lifecycle::suspension_end(at).to_rfc3339(),
                        }),
                    ),
                    _ => (crate::outbox::SUSPENSION_LIFTED, serde_json::json!({})),
                };
                crate::outbox::OutboxMessage::new(holder, kind, channel, payload.to_string().into_bytes())
            })
            .await?;
        let entry = TraceEntry {
            actor,
            action: Action::Update,
            item: item.into(),
            category: None,
            allowed: true,
            reason: Reason::Support,
            emergency: false,
            purpose: Some(reason.to_string()),
            hidden_from_representatives: false,
            withheld_until: None,
        };
        self.trace(holder, entry).await?;
        Ok(Some(next))
    }
}

const NO_SPACE: Decision = Decision {
    allowed: false,
    reason: Reason::NoSpace,
    emergency: false,
};

impl Store {
    /// Queues "someone accessed your space" (no content: AC-6, MS-4). Ordinary notices collapse
    /// while one is still waiting to be sent; emergency notices never do.
    pub(crate) async fn notify_access(&self, holder: HolderId, emergency: bool) -> Result<(), StoreError> {
        let kind = if emergency { "emergency_access" } else { "access" };
        // Most accesses find a notice already waiting on every channel: check on a reader
        // first, without taking the writer.
        if !emergency && self.notice_waiting_everywhere(holder, kind).await? {
            return Ok(());
        }
        let key = self.vault.get(holder).await?;
        let now = self.now();
        let mut tx = self.db.begin().await?;
        self.enqueue_notice_in_tx(&mut tx, &key, holder, kind, now, !emergency)
            .await?;
        tx.commit().await?;
        self.wake_delivery();
        Ok(())
    }
}
