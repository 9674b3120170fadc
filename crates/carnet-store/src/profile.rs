//! The medical profile (SPEC PR-1..4) through the gate: entries of the sections and
//! measurements. As for documents, the only public operations are methods of [`Gate`]; every
//! read and write is decided by the access policy (the section's habilitation category, the
//! entry's author), traced and, for professionals, notified (AC-6). Rows are sealed with the
//! holder's key; a denial is `NotFound` (AC-8).
//!
//! Our rules: the holder (or their representative) writes their own entries and edits or
//! deletes only those; a professional with access adds entries within their habilitations
//! (the section's category, PR-3) and edits or deletes only theirs; every entry says who wrote
//! it and when.

use carnet_domain::access::{Action, Actor, Author, Context, ItemFacts};
use carnet_domain::profile::{EntryInput, Measurement, MeasurementInput, Section};
use carnet_domain::{HolderId, ItemKind, Timestamp};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Store;
use crate::crypto::{SecretKey, item_aad};
use crate::db::query::Query;
use crate::documents::{author_of, is_holder_side, record_facts};
use crate::error::StoreError;
use crate::gate::{Access, Gate};
use crate::traces::Withheld;

/// A profile entry as stored (sealed) and shown.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProfileEntry {
    pub id: Uuid,
    #[serde(flatten)]
    pub entry: EntryInput,
    pub author: Author,
    /// Display name of the author when written (the holder's side: "holder").
    pub author_name: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub version: i64,
}

/// The sealed part of an entry.
#[derive(Serialize, Deserialize)]
struct Sealed {
    entry: EntryInput,
    author: Author,
    author_name: String,
}

fn entry_aad(holder: HolderId, id: Uuid) -> Vec<u8> {
    item_aad(holder, ItemKind::ProfileEntry, id.as_bytes())
}

fn measurement_aad(holder: HolderId, id: Uuid) -> Vec<u8> {
    item_aad(holder, ItemKind::Measurement, id.as_bytes())
}

/// The per-holder tag of a measure's series (see migration 11).
fn series_tag(key: &SecretKey, loinc: &str) -> String {
    key.hmac_hex(format!("carnet/measure-series/v1|{loinc}").as_bytes())[..32].to_string()
}

/// A point of a measurement series, with who recorded it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub id: Uuid,
    pub measurement: Measurement,
    pub author: Author,
}

fn facts(section: Section, author: &Author) -> ItemFacts {
    ItemFacts {
        category: section.category(),
        author: author.clone(),
        masked: false,
        hidden_from_representatives: false,
        visible_to_holder: true,
    }
}

fn measurement_facts(author: &Author) -> ItemFacts {
    facts(Section::Conditions, author)
}

type MeasurementRow = (Uuid, String, i64, Vec<u8>);

async fn insert_measurements(
    tx: &mut crate::db::Tx,
    holder: HolderId,
    rows: &[MeasurementRow],
) -> Result<(), StoreError> {
    for chunk in rows.chunks(500) {
        let values: Vec<String> = (0..chunk.len())
            .map(|i| {
                format!(
                    "(${}, ${}, ${}, ${}, ${})",
                    i * 5 + 1,
                    i * 5 + 2,
                    i * 5 + 3,
                    i * 5 + 4,
                    i * 5 + 5
                )
            })
            .collect();
        let sql = format!(
            "INSERT INTO measurements (holder_id, id, series, at, value_sealed) VALUES {}",
            values.join(", ")
        );
        let mut q = Query::built(sql);
        for (id, series, at, sealed) in chunk {
            q = q.binds((holder.as_uuid(), *id, series, *at, sealed));
        }
        tx.execute(q, "write measurements").await?;
    }
    Ok(())
}

/// Seals a validated measurement as a row.
fn measurement_row(
    key: &SecretKey,
    holder: HolderId,
    author: &Author,
    m: Measurement,
    now: Timestamp,
) -> Result<(MeasurementRow, Point), StoreError> {
    let id = carnet_domain::id::new_v7(now);
    let point = Point {
        id,
        measurement: m,
        author: author.clone(),
    };
    let sealed = key.seal(
        &measurement_aad(holder, id),
        &serde_json::to_vec(&point).map_err(|e| StoreError::Integrity(e.to_string()))?,
    )?;
    Ok((
        (
            id,
            series_tag(key, &point.measurement.code),
            point.measurement.at.as_micros(),
            sealed,
        ),
        point,
    ))
}

fn seal_entry(key: &SecretKey, holder: HolderId, e: &ProfileEntry) -> Result<Vec<u8>, StoreError> {
    key.seal(
        &entry_aad(holder, e.id),
        &serde_json::to_vec(&Sealed {
            entry: e.entry.clone(),
            author: e.author.clone(),
            author_name: e.author_name.clone(),
        })
        .map_err(|x| StoreError::Integrity(x.to_string()))?,
    )
}

impl Store {
    async fn profile_rows(&self, holder: HolderId) -> Result<Vec<ProfileEntry>, StoreError> {
        self.profile_rows_where(holder, None).await
    }

    /// One entry, or every entry of `holder` (`id` = `None`), opened.
    async fn profile_rows_where(
        &self,
        holder: HolderId,
        id: Option<Uuid>,
    ) -> Result<Vec<ProfileEntry>, StoreError> {
        let q = match id {
            Some(id) => Query::new(
                "SELECT id, created_at, updated_at, version, entry_sealed FROM profile_entries WHERE \
                 holder_id = $1 AND id = $2",
            )
            .bind(*holder.as_uuid())
            .bind(id),
            None => Query::new(
                "SELECT id, created_at, updated_at, version, entry_sealed FROM profile_entries WHERE \
                 holder_id = $1 ORDER BY id",
            )
            .bind(*holder.as_uuid()),
        };
        let rows = self.db.fetch_all(q, "read profile").await?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let key = self.vault.get(holder).await?.opener();
        rows.into_iter()
            .map(|mut r| {
                let (id, created, updated, version, sealed): (Uuid, i64, i64, i64, Vec<u8>) =
                    (r.take(0)?, r.take(1)?, r.take(2)?, r.take(3)?, r.take(4)?);
                let s: Sealed = serde_json::from_slice(&key.open(&entry_aad(holder, id), &sealed)?)
                    .map_err(|e| StoreError::Integrity(format!("profile entry: {e}")))?;
                Ok(ProfileEntry {
                    id,
                    entry: s.entry,
                    author: s.author,
                    author_name: s.author_name,
                    created_at: Timestamp::from_micros(created),
                    updated_at: Timestamp::from_micros(updated),
                    version,
                })
            })
            .collect()
    }

    async fn profile_row(&self, holder: HolderId, id: Uuid) -> Result<Option<ProfileEntry>, StoreError> {
        Ok(self
            .profile_rows_where(holder, Some(id))
            .await?
            .into_iter()
            .next())
    }

    async fn write_entry(
        &self,
        holder: HolderId,
        e: &ProfileEntry,
        expected: Option<i64>,
    ) -> Result<(), StoreError> {
        let key = self.vault.get(holder).await?;
        let sealed = seal_entry(&key, holder, e)?;
        let (id, created, updated, version) = (
            e.id,
            e.created_at.as_micros(),
            e.updated_at.as_micros(),
            e.version,
        );
        // Group-committed with concurrent writes (`combiner`).
        self.write(move |tx| {
            Box::pin(async move {
                let q = match expected {
                    None => Query::new(
                        "INSERT INTO profile_entries (holder_id, id, created_at, updated_at, version, \
                         entry_sealed) VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .binds((holder.as_uuid(), id, created, updated, version, &sealed)),
                    Some(v) => Query::new(
                        "UPDATE profile_entries SET updated_at = $1, version = $2, entry_sealed = $3 WHERE \
                         holder_id = $4 AND id = $5 AND version = $6",
                    )
                    .binds((updated, version, &sealed, holder.as_uuid(), id, v)),
                };
                let n = tx.execute(q, "write profile entry").await?;
                if n != 1 {
                    return Err(StoreError::Conflict);
                }
                Ok(())
            })
        })
        .await
    }
}

/// The author's display name at writing time: "holder" for the holder, the representative's
/// name when one writes in the represented person's space (S-6).
fn author_name(actor: &Actor, given: &str) -> String {
    if matches!(actor, Actor::Representative { .. }) && !given.trim().is_empty() {
        given.trim().to_string()
    } else if is_holder_side(actor) {
        "holder".into()
    } else if given.trim().is_empty() {
        match author_of(actor) {
            Some(a) => crate::documents::author_key(&a),
            None => String::new(),
        }
    } else {
        given.trim().to_string()
    }
}

impl Gate {
    /// The profile entries `actor` may read, by section order then age (PR-3). The listing is
    /// one traced access, like a documents listing.
    pub async fn list_profile(
        &self,
        holder: HolderId,
        actor: &Actor,
        section: Option<Section>,
        ctx: &Context,
    ) -> Result<Vec<ProfileEntry>, StoreError> {
        let space = self.space(holder, actor).await?.ok_or(StoreError::NotFound)?;
        let mut first_allowed = None;
        let mut out = Vec::new();
        let decider = self.decider(&space, actor, ctx);
        for e in self.store.profile_rows(holder).await? {
            let d = decider.decide(Action::Read, &facts(e.entry.section, &e.author));
            if !d.allowed {
                continue;
            }
            first_allowed.get_or_insert(d);
            if section.is_none_or(|s| s == e.entry.section) {
                out.push(e);
            }
        }
        let d = match first_allowed {
            Some(d) => d,
            None => self.decide_in(&space, actor, Action::Read, &record_facts(), ctx),
        };
        self.record(
            Access {
                holder,
                actor,
                action: Action::Read,
                item: "profile",
                category: None,
                withheld: Withheld::default(),
            },
            d,
            &space,
            ctx,
        )
        .await?;
        out.sort_by(|a, b| a.entry.section.cmp(&b.entry.section).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// Adds an entry (PR-1, PR-3). Invalid input is `Invalid` before anything is decided or
    /// written; a professional needs the section's habilitation besides access.
    pub async fn add_profile_entry(
        &self,
        holder: HolderId,
        actor: &Actor,
        input: EntryInput,
        author_display: &str,
        ctx: &Context,
    ) -> Result<ProfileEntry, StoreError> {
        let entry = input.validate().map_err(|e| StoreError::profile(None, e))?;
        let author = author_of(actor).ok_or(StoreError::NotFound)?;
        let space = self.space(holder, actor).await?.ok_or(StoreError::NotFound)?;
        let section = entry.section;
        // A single-valued section (blood group, organ donation): the author's new value
        // replaces theirs, as an update of that entry.
        let previous = if section.single_valued() {
            self.store
                .profile_rows(holder)
                .await?
                .into_iter()
                .find(|e| e.entry.section == section && e.author == author)
        } else {
            None
        };
        let action = if previous.is_some() {
            Action::Update
        } else {
            Action::Create
        };
        let mut d = self.decide_in(&space, actor, action, &facts(section, &author), ctx);
        if d.allowed && !self.habilitated(actor, section) {
            d = carnet_domain::access::Decision {
                allowed: false,
                reason: carnet_domain::access::Reason::NotHabilitated,
                emergency: false,
            };
        }
        let now = self.store.now();
        let id = previous
            .as_ref()
            .map_or_else(|| carnet_domain::id::new_v7(now), |p| p.id);
        self.record(
            Access {
                holder,
                actor,
                action,
                item: &format!("profile/{id}"),
                category: Some(section.category()),
                withheld: Withheld::default(),
            },
            d,
            &space,
            ctx,
        )
        .await?;
        if !d.allowed {
            return Err(StoreError::NotFound);
        }
        if let Some(mut p) = previous {
            let seen = p.version;
            p.entry = entry;
            p.updated_at = now;
            p.version += 1;
            self.store.write_entry(holder, &p, Some(seen)).await?;
            return Ok(p);
        }
        let e = ProfileEntry {
            id,
            entry,
            author,
            author_name: author_name(actor, author_display),
            created_at: now,
            updated_at: now,
            version: 1,
        };
        self.store.write_entry(holder, &e, None).await?;
        Ok(e)
    }

    fn habilitated(&self, actor: &Actor, section: Section) -> bool {
        match actor {
            Actor::Professional { profession, .. } => self.matrix().allows(profession, section.category()),
            _ => true,
        }
    }

    /// Loads an entry and decides `action` on it (traced); denial or absence: `NotFound`.
    async fn decide_on_entry(
        &self,
        holder: HolderId,
        actor: &Actor,
        id: Uuid,
        action: Action,
        ctx: &Context,
    ) -> Result<ProfileEntry, StoreError> {
        let row = self.store.profile_row(holder, id).await?;
        let item_facts = row.as_ref().map(|e| facts(e.entry.section, &e.author));
        let access = Access {
            holder,
            actor,
            action,
            item: &format!("profile/{id}"),
            category: row.as_ref().map(|e| e.entry.section.category()),
            withheld: Withheld::default(),
        };
        self.admit_found(access, item_facts.as_ref(), ctx).await?;
        row.ok_or(StoreError::NotFound)
    }

    /// Rewrites an entry: its author only (the holder edits what they wrote, PR-1), same
    /// section, compare-and-set on `version`.
    pub async fn update_profile_entry(
        &self,
        holder: HolderId,
        actor: &Actor,
        id: Uuid,
        version: i64,
        input: EntryInput,
        ctx: &Context,
    ) -> Result<ProfileEntry, StoreError> {
        let input = input.validate().map_err(|e| StoreError::profile(None, e))?;
        let mut e = self
            .decide_on_entry(holder, actor, id, Action::Update, ctx)
            .await?;
        if input.section != e.entry.section {
            return Err(StoreError::Invalid(
                "section: an entry stays in its section".into(),
            ));
        }
        if e.version != version {
            return Err(StoreError::Conflict);
        }
        e.entry = input;
        e.updated_at = self.store.now();
        e.version += 1;
        self.store.write_entry(holder, &e, Some(version)).await?;
        Ok(e)
    }

    /// Deletes an entry: its author only. The trace remains.
    pub async fn delete_profile_entry(
        &self,
        holder: HolderId,
        actor: &Actor,
        id: Uuid,
        ctx: &Context,
    ) -> Result<(), StoreError> {
        self.decide_on_entry(holder, actor, id, Action::Delete, ctx)
            .await?;
        self.store
            .write(move |tx| {
                Box::pin(async move {
                    tx.execute(
                        Query::new("DELETE FROM profile_entries WHERE holder_id = $1 AND id = $2")
                            .binds((holder.as_uuid(), id)),
                        "delete profile entry",
                    )
                    .await
                    .map(|_| ())
                })
            })
            .await
    }

    /// Adds measurements, one or a batch (a device through an app sends hundreds, PR-1): all
    /// are validated first (the first bad one refuses the batch, naming its index: nothing is
    /// written), then one decision, one trace, one transaction.
    pub async fn add_measurements(
        &self,
        holder: HolderId,
        actor: &Actor,
        batch: &[MeasurementInput],
        ctx: &Context,
    ) -> Result<usize, StoreError> {
        const MAX_BATCH: usize = 5000;
        if batch.is_empty() || batch.len() > MAX_BATCH {
            return Err(StoreError::Invalid(format!(
                "between 1 and {MAX_BATCH} measurements per request"
            )));
        }
        let now = self.store.now();
        let checked: Vec<Measurement> = batch
            .iter()
            .enumerate()
            .map(|(i, m)| {
                m.validate(now)
                    .map_err(|e| StoreError::profile(Some(format!("measurements[{i}].")), e))
            })
            .collect::<Result<_, _>>()?;
        let author = author_of(actor).ok_or(StoreError::NotFound)?;
        self.admit(
            Access {
                holder,
                actor,
                action: Action::Create,
                item: &format!("measurements/{}", checked.len()),
                category: Some(Section::Conditions.category()),
                withheld: Withheld::default(),
            },
            &measurement_facts(&author),
            ctx,
        )
        .await?;
        let key = self.store.vault.get(holder).await?;
        let mut rows = Vec::with_capacity(checked.len());
        for m in checked {
            rows.push(measurement_row(&key, holder, &author, m, now)?.0);
        }
        let n = rows.len();
        self.store
            .write(move |tx| Box::pin(async move { insert_measurements(tx, holder, &rows).await }))
            .await?;
        Ok(n)
    }

    /// A measure's series between two instants, oldest first (PR-4), at most `limit` points.
    pub async fn measurements(
        &self,
        holder: HolderId,
        actor: &Actor,
        loinc: &str,
        period: Option<(Timestamp, Timestamp)>,
        limit: i64,
        ctx: &Context,
    ) -> Result<Vec<Point>, StoreError> {
        // One decision for the series: measurements are summaries written by anyone allowed.
        self.admit(
            Access {
                holder,
                actor,
                action: Action::Read,
                item: &format!("measurements/{loinc}"),
                category: Some(Section::Conditions.category()),
                withheld: Withheld::default(),
            },
            &measurement_facts(&Author::Holder),
            ctx,
        )
        .await?;
        let key = self.store.vault.get(holder).await?;
        let (from, to) = period.map_or((i64::MIN, i64::MAX), |(f, t)| (f.as_micros(), t.as_micros()));
        let tag = series_tag(&key, loinc);
        let rows: Vec<(Uuid, Vec<u8>)> = self
            .store
            .db
            .fetch_all_as(
                Query::new(
                    "SELECT id, value_sealed FROM measurements WHERE holder_id = $1 AND series = $2 AND at \
                     >= $3 AND at < $4 ORDER BY at DESC LIMIT $5",
                )
                .binds((holder.as_uuid(), &tag, from, to, limit)),
                "read measurements",
            )
            .await?;
        let opener = key.opener();
        let mut points = rows
            .into_iter()
            .map(|(id, sealed)| {
                serde_json::from_slice::<Point>(&opener.open(&measurement_aad(holder, id), &sealed)?)
                    .map_err(|e| StoreError::Integrity(format!("measurement: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        points.reverse();
        Ok(points)
    }

    /// One measurement by id (a FHIR read), decided like its series.
    pub async fn measurement(
        &self,
        holder: HolderId,
        actor: &Actor,
        id: Uuid,
        ctx: &Context,
    ) -> Result<Point, StoreError> {
        self.admit(
            Access {
                holder,
                actor,
                action: Action::Read,
                item: &format!("measurement/{id}"),
                category: Some(Section::Conditions.category()),
                withheld: Withheld::default(),
            },
            &measurement_facts(&Author::Holder),
            ctx,
        )
        .await?;
        self.store
            .measurement_point(holder, id)
            .await?
            .ok_or(StoreError::NotFound)
    }

    /// Deletes a measurement (a mistyped weight, PR-1): its author only, as for a profile
    /// entry; a correction is a new measurement. The trace of the deletion remains (AC-6).
    pub async fn delete_measurement(
        &self,
        holder: HolderId,
        actor: &Actor,
        id: Uuid,
        ctx: &Context,
    ) -> Result<(), StoreError> {
        let point = self.store.measurement_point(holder, id).await?;
        let item_facts = point.as_ref().map(|p| measurement_facts(&p.author));
        let access = Access {
            holder,
            actor,
            action: Action::Delete,
            item: &format!("measurement/{id}"),
            category: Some(Section::Conditions.category()),
            withheld: Withheld::default(),
        };
        self.admit_found(access, item_facts.as_ref(), ctx).await?;
        self.store
            .write(move |tx| {
                Box::pin(async move {
                    tx.execute(
                        Query::new("DELETE FROM measurements WHERE holder_id = $1 AND id = $2")
                            .binds((holder.as_uuid(), id)),
                        "delete measurement",
                    )
                    .await
                    .map(|_| ())
                })
            })
            .await
    }

    /// The holder's administrative data (identity, contact) as the policy lets `actor` see
    /// it: the "administrative" category of the habilitation matrix (AC-1), traced.
    pub async fn read_administrative(
        &self,
        holder: HolderId,
        actor: &Actor,
        ctx: &Context,
    ) -> Result<crate::HolderRecord, StoreError> {
        let facts = ItemFacts {
            category: carnet_domain::access::Category::Administrative,
            ..record_facts()
        };
        self.admit(
            Access {
                holder,
                actor,
                action: Action::Read,
                item: "patient",
                category: Some(facts.category),
                withheld: Withheld::default(),
            },
            &facts,
            ctx,
        )
        .await?;
        #[allow(clippy::disallowed_methods)] // decided above (S-1)
        let record = self.store.holder(holder).await;
        record
    }

    /// Several profile entries and measurements for one space, all or nothing (a FHIR
    /// transaction): everything is validated and decided first — one refusal refuses all, with
    /// nothing written — then every row goes in one database transaction.
    pub async fn add_profile_atomically(
        &self,
        holder: HolderId,
        actor: &Actor,
        entries: Vec<EntryInput>,
        author_display: &str,
        measurements: &[MeasurementInput],
        ctx: &Context,
    ) -> Result<(Vec<ProfileEntry>, Vec<Point>), StoreError> {
        let writes = TransactionWrites {
            ops: entries.into_iter().map(ProfileOp::Create).collect(),
            measurements: measurements.to_vec(),
            documents: Vec::new(),
        };
        let done = self
            .profile_transaction(holder, actor, writes, author_display, ctx)
            .await?;
        Ok((done.entries.into_iter().flatten().collect(), done.points))
    }

    /// A FHIR transaction over the profile (IO-2): creations, updates (with the version the
    /// caller saw, if given) and deletions of entries, and measurements, all decided and traced
    /// first, then written in one database transaction, or none of it. Gives, per operation,
    /// the entry as written (`None` for a deletion).
    pub async fn profile_transaction(
        &self,
        holder: HolderId,
        actor: &Actor,
        writes: TransactionWrites,
        author_display: &str,
        ctx: &Context,
    ) -> Result<TransactionDone, StoreError> {
        let TransactionWrites {
            ops,
            measurements,
            documents,
        } = writes;
        let now = self.store.now();
        let mut entries = Vec::new();
        let mut changes: Vec<(usize, ProfileEntry, i64)> = Vec::new();
        let mut deletions: Vec<(usize, Uuid)> = Vec::new();
        let mut slots: Vec<Option<ProfileEntry>> = Vec::with_capacity(ops.len());
        let mut create_slots = Vec::new();
        for (i, op) in ops.into_iter().enumerate() {
            slots.push(None);
            match op {
                ProfileOp::Create(e) => {
                    entries.push(
                        e.validate()
                            .map_err(|e| StoreError::profile(Some(format!("entry[{i}].")), e))?,
                    );
                    create_slots.push(i);
                }
                ProfileOp::Update { id, version, input } => {
                    let input = input
                        .validate()
                        .map_err(|e| StoreError::profile(Some(format!("entry[{i}].")), e))?;
                    let mut e = self
                        .decide_on_entry(holder, actor, id, Action::Update, ctx)
                        .await?;
                    if input.section != e.entry.section {
                        return Err(StoreError::Invalid(format!(
                            "entry[{i}].section: an entry stays in its section"
                        )));
                    }
                    if version.is_some_and(|v| v != e.version) {
                        return Err(StoreError::Conflict);
                    }
                    let seen = e.version;
                    e.entry = input;
                    e.updated_at = now;
                    e.version += 1;
                    changes.push((i, e, seen));
                }
                ProfileOp::Delete { id } => {
                    self.decide_on_entry(holder, actor, id, Action::Delete, ctx)
                        .await?;
                    deletions.push((i, id));
                }
            }
        }
        let checked: Vec<Measurement> = measurements
            .iter()
            .enumerate()
            .map(|(i, m)| {
                m.validate(now)
                    .map_err(|e| StoreError::profile(Some(format!("measurements[{i}].")), e))
            })
            .collect::<Result<_, _>>()?;
        let author = author_of(actor).ok_or(StoreError::NotFound)?;
        let space = self.space(holder, actor).await?.ok_or(StoreError::NotFound)?;
        let mut made = Vec::with_capacity(entries.len());
        let mut refused = false;
        for entry in entries {
            let section = entry.section;
            let mut d = self.decide_in(&space, actor, Action::Create, &facts(section, &author), ctx);
            if d.allowed && !self.habilitated(actor, section) {
                d = carnet_domain::access::Decision {
                    allowed: false,
                    reason: carnet_domain::access::Reason::NotHabilitated,
                    emergency: false,
                };
            }
            let id = carnet_domain::id::new_v7(now);
            self.record(
                Access {
                    holder,
                    actor,
                    action: Action::Create,
                    item: &format!("profile/{id}"),
                    category: Some(section.category()),
                    withheld: Withheld::default(),
                },
                d,
                &space,
                ctx,
            )
            .await?;
            refused |= !d.allowed;
            made.push(ProfileEntry {
                id,
                entry,
                author: author.clone(),
                author_name: author_name(actor, author_display),
                created_at: now,
                updated_at: now,
                version: 1,
            });
        }
        if !checked.is_empty() {
            let d = self.decide_in(&space, actor, Action::Create, &measurement_facts(&author), ctx);
            self.record(
                Access {
                    holder,
                    actor,
                    action: Action::Create,
                    item: &format!("measurements/{}", checked.len()),
                    category: Some(Section::Conditions.category()),
                    withheld: Withheld::default(),
                },
                d,
                &space,
                ctx,
            )
            .await?;
            refused |= !d.allowed;
        }
        let mut staged = Vec::with_capacity(documents.len());
        for w in documents {
            match w.replaces {
                None => {
                    let (doc, allowed) = self
                        .stage_document(holder, actor, w.new, w.content, &space, ctx)
                        .await?;
                    refused |= !allowed;
                    staged.push(doc);
                }
                // A refused replacement is NotFound at once: nothing is written.
                Some(old) => staged.push(
                    self.stage_replacement(holder, actor, old, w.new, w.content, ctx)
                        .await?,
                ),
            }
        }
        if refused {
            return Err(StoreError::NotFound);
        }
        let key = self.store.vault.get(holder).await?;
        let mut rows = Vec::with_capacity(checked.len());
        let mut points = Vec::with_capacity(checked.len());
        for m in checked {
            let (row, point) = measurement_row(&key, holder, &author, m, now)?;
            rows.push(row);
            points.push(point);
        }
        // Document contents go to the blob store first; the rows of everything then commit
        // at once, or the blobs are deleted again.
        let written = self.store.write_staged_documents(&key, holder, staged).await?;
        let rows_written = self
            .transaction_rows(
                holder,
                &key,
                TransactionRows {
                    made: &made,
                    changes: &changes,
                    deletions: &deletions,
                    measurements: &rows,
                    documents: &written,
                },
            )
            .await;
        let (tx, notify) = match rows_written {
            Ok(x) => x,
            Err(e) => {
                self.store.forget_written_documents(&written).await;
                return Err(e);
            }
        };
        // A failed commit may still have committed: the blobs stay (gc-blobs collects them if not).
        tx.commit().await?;
        if notify {
            self.store.wake_delivery();
        }
        for (slot, e) in create_slots.into_iter().zip(made) {
            slots[slot] = Some(e);
        }
        for (slot, e, _) in changes {
            slots[slot] = Some(e);
        }
        Ok(TransactionDone {
            entries: slots,
            points,
            documents: written.iter().map(|d| d.view()).collect(),
        })
    }

    /// The rows of [`Gate::profile_transaction`], in one database transaction (not committed);
    /// gives it and whether the holder is to be told of new documents.
    async fn transaction_rows(
        &self,
        holder: HolderId,
        key: &SecretKey,
        rows: TransactionRows<'_>,
    ) -> Result<(crate::db::Tx, bool), StoreError> {
        let TransactionRows {
            made,
            changes,
            deletions,
            measurements,
            documents: written,
        } = rows;
        let mut tx = self.store.db.begin().await?;
        for e in made {
            let sealed = seal_entry(key, holder, e)?;
            tx.execute(
                Query::new(
                    "INSERT INTO profile_entries (holder_id, id, created_at, updated_at, version, \
                     entry_sealed) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .binds((
                    holder.as_uuid(),
                    e.id,
                    e.created_at.as_micros(),
                    e.updated_at.as_micros(),
                    e.version,
                    &sealed,
                )),
                "write profile entry",
            )
            .await?;
        }
        for (_, e, seen) in changes {
            let sealed = seal_entry(key, holder, e)?;
            let n = tx
                .execute(
                    Query::new(
                        "UPDATE profile_entries SET updated_at = $3, version = $4, entry_sealed = $5 WHERE \
                         holder_id = $1 AND id = $2 AND version = $6",
                    )
                    .binds((
                        holder.as_uuid(),
                        e.id,
                        e.updated_at.as_micros(),
                        e.version,
                        &sealed,
                        *seen,
                    )),
                    "update profile entry",
                )
                .await?;
            if n != 1 {
                // Changed by someone else since it was read: nothing of the transaction lands.
                return Err(StoreError::Conflict);
            }
        }
        for (_, id) in deletions {
            let n = tx
                .execute(
                    Query::new("DELETE FROM profile_entries WHERE holder_id = $1 AND id = $2")
                        .binds((holder.as_uuid(), *id)),
                    "delete profile entry",
                )
                .await?;
            if n != 1 {
                return Err(StoreError::Conflict);
            }
        }
        insert_measurements(&mut tx, holder, measurements).await?;
        let notify = self
            .store
            .insert_written_documents(&mut tx, holder, written)
            .await?;
        if notify {
            let now = self.store.now();
            self.store
                .enqueue_notice_in_tx(&mut tx, key, holder, "new_document", now, false)
                .await?;
        }
        Ok((tx, notify))
    }
}

/// The rows of a decided transaction: entries made, changed (slot, entry, version read) and
/// deleted (slot, id), measurements, documents whose blobs are written.
struct TransactionRows<'a> {
    made: &'a [ProfileEntry],
    changes: &'a [(usize, ProfileEntry, i64)],
    deletions: &'a [(usize, Uuid)],
    measurements: &'a [MeasurementRow],
    documents: &'a [crate::documents::WrittenDocument],
}

impl Store {
    /// One measurement of a holder, opened (crate-private: read after a decision).
    pub(crate) async fn measurement_point(
        &self,
        holder: HolderId,
        id: Uuid,
    ) -> Result<Option<Point>, StoreError> {
        let sealed: Option<Vec<u8>> = self
            .db
            .fetch_optional_as(
                Query::new("SELECT value_sealed FROM measurements WHERE holder_id = $1 AND id = $2")
                    .binds((holder.as_uuid(), id)),
                "read measurement",
            )
            .await?;
        let Some(sealed) = sealed else {
            return Ok(None);
        };
        let key = self.vault.get(holder).await?;
        serde_json::from_slice::<Point>(&key.open(&measurement_aad(holder, id), &sealed)?)
            .map(Some)
            .map_err(|e| StoreError::Integrity(format!("measurement: {e}")))
    }
}

/// What a FHIR transaction writes in one space (see [`Gate::profile_transaction`]).
#[derive(Debug, Default)]
pub struct TransactionWrites {
    pub ops: Vec<ProfileOp>,
    pub measurements: Vec<MeasurementInput>,
    /// New documents and new versions, with their contents (DM-1: checked like a deposit;
    /// DM-3: a replacement by its author only).
    pub documents: Vec<crate::documents::DocumentWrite>,
}

/// What a transaction wrote: per profile operation the entry as written (`None` for a
/// deletion), the measurements, the documents, each in the order given.
#[derive(Debug)]
pub struct TransactionDone {
    pub entries: Vec<Option<ProfileEntry>>,
    pub points: Vec<Point>,
    pub documents: Vec<crate::documents::DocumentView>,
}

/// One operation of a profile transaction.
#[derive(Clone, Debug)]
pub enum ProfileOp {
    Create(EntryInput),
    Update {
        id: Uuid,
        /// The version the caller saw (`If-Match`), if any.
        version: Option<i64>,
        input: EntryInput,
    },
    Delete {
        id: Uuid,
    },
}
