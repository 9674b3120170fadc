//! Signed Merkle checkpoints over the access traces (SPEC AC-7, SECURITY S-5).
//!
//! Each holder's traces form a hash chain (`gate`), which shows an entry edited, removed or
//! reordered *inside* a chain but not the newest entries removed (tail truncation), nor a
//! chain rewritten from scratch with fresh hashes (the chain hash needs no key). Checkpoints
//! anchor the chains:
//!
//! * A checkpoint covers the chain heads that moved since the previous one: one leaf
//!   `(holder, seq, hash)` per holder whose chain grew. Appending traces records the new head
//!   in `trace_heads_moved` (same transaction, appended: the table has no index, so the
//!   record costs no random page per trace); a checkpoint reads and clears only those rows,
//!   so its cost follows activity, not the number of holders.
//! * Leaves, sorted by holder id, are hashed into a Merkle tree the RFC 6962 way:
//!   `leaf = SHA-256(0x00 | holder (16 bytes) | seq (8 bytes, big-endian) | chain hash (64
//!   hex characters))`, `node = SHA-256(0x01 | left | right)`, the split at the largest
//!   power of two below the size.
//! * The checkpoint text, in the signed-note style of transparency logs:
//!   `carnet-traces\n<number>\n<size>\n<root base64>\n<prev base64>\n<at µs>\n`, where `prev`
//!   is the SHA-256 of the previous checkpoint's text (32 zero bytes for the first), is
//!   signed with Ed25519. The key's 32-byte seed is the vault service key
//!   `trace-checkpoint`; its public half is published (`GET /api/v1/transparency/checkpoint`)
//!   so anyone who kept a checkpoint can hold the operator to it.
//!
//! `verify_traces` then checks every checkpoint (signature, `prev` links, root recomputed
//! from the stored leaves) and that every leaf's trace is still there with the same hash;
//! a holder whose space was erased (LC-7) is the only accepted absence, and only once their
//! data key is destroyed too.
//!
//! Creating a checkpoint is a compare-and-set on its number, so every server may try: the
//! one that loses the race skips.

use std::collections::HashMap;

use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use carnet_domain::{HolderId, Timestamp};
use serde::{Deserialize, Serialize};

use crate::Store;
use crate::crypto::sha256;
use crate::db::Tx;
use crate::db::query::Query;
use crate::db::query::{Arg, Values};
use crate::error::StoreError;
use crate::traces::TraceReport;

/// The first line of every checkpoint text, and the key name in signed notes.
pub const ORIGIN: &str = "carnet-traces";
/// The vault service key whose 32 bytes are the Ed25519 seed.
pub(crate) const SERVICE_KEY: &str = "trace-checkpoint";
/// At most this many leaves per checkpoint (a backlog is covered by several in a row).
pub const MAX_LEAVES: usize = 10_000;
/// Rows per multi-row statement (4 parameters each: well below both engines' limits).
const CHUNK: usize = 250;

/// One leaf: the head of a holder's chain when the checkpoint was made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leaf {
    pub holder: HolderId,
    pub seq: i64,
    /// The trace's chain hash (hex).
    pub hash: String,
}

impl Leaf {
    /// The leaf's bytes: holder id, sequence number (big-endian), chain hash as text.
    pub fn bytes(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(16 + 8 + self.hash.len());
        b.extend_from_slice(self.holder.as_bytes());
        b.extend_from_slice(&self.seq.to_be_bytes());
        b.extend_from_slice(self.hash.as_bytes());
        b
    }
}

/// RFC 6962 leaf hash: `SHA-256(0x00 | bytes)`.
pub fn leaf_hash(bytes: &[u8]) -> [u8; 32] {
    let mut b = Vec::with_capacity(1 + bytes.len());
    b.push(0);
    b.extend_from_slice(bytes);
    sha256(&b)
}

/// RFC 6962 interior node: `SHA-256(0x01 | left | right)`.
pub fn node_hash(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    let mut b = [0u8; 65];
    b[0] = 1;
    b[1..33].copy_from_slice(left);
    b[33..].copy_from_slice(right);
    sha256(&b)
}

/// RFC 6962 Merkle tree hash over leaf hashes, in order; `SHA-256("")` for none.
pub fn merkle_root(leaves: &[[u8; 32]]) -> [u8; 32] {
    match leaves.len() {
        0 => sha256(b""),
        1 => leaves[0],
        n => {
            // The largest power of two strictly below n.
            let k = 1usize << (usize::BITS - 1 - (n - 1).leading_zeros());
            node_hash(&merkle_root(&leaves[..k]), &merkle_root(&leaves[k..]))
        }
    }
}

/// The root over `leaves`, sorted by holder id.
pub fn root_of(leaves: &[Leaf]) -> [u8; 32] {
    let mut sorted: Vec<&Leaf> = leaves.iter().collect();
    sorted.sort_by(|a, b| a.holder.as_bytes().cmp(b.holder.as_bytes()));
    let hashes: Vec<[u8; 32]> = sorted.iter().map(|l| leaf_hash(&l.bytes())).collect();
    merkle_root(&hashes)
}

/// A signed checkpoint (what is published: no holder data, only the root).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub number: i64,
    pub at: Timestamp,
    /// Number of leaves (chains that moved since the previous checkpoint).
    pub size: i64,
    /// Merkle root, base64.
    pub root: String,
    /// SHA-256 of the previous checkpoint's text, base64.
    pub prev: String,
    /// Ed25519 signature of [`Checkpoint::text`].
    pub signature: Vec<u8>,
}

/// `prev` of the first checkpoint: 32 zero bytes.
fn genesis() -> String {
    B64.encode([0u8; 32])
}

fn text_of(number: i64, size: i64, root: &str, prev: &str, at: i64) -> String {
    format!("{ORIGIN}\n{number}\n{size}\n{root}\n{prev}\n{at}\n")
}

/// The 4-byte key hash of signed notes (golang.org/x/mod/sumdb/note): the first bytes of
/// `SHA-256(name | "\n" | 0x01 | public key)`.
fn key_hash(public_key: &[u8]) -> [u8; 4] {
    let mut b = Vec::with_capacity(ORIGIN.len() + 2 + public_key.len());
    b.extend_from_slice(ORIGIN.as_bytes());
    b.push(b'\n');
    b.push(1);
    b.extend_from_slice(public_key);
    let h = sha256(&b);
    [h[0], h[1], h[2], h[3]]
}

/// Splits a signed note into its text and the signature of the `carnet-traces` line.
fn parse_signed_note(note: &str) -> Option<(String, Vec<u8>)> {
    let split = note.rfind("\n\n")?;
    let text = &note[..split + 1];
    let prefix = format!("\u{2014} {ORIGIN} ");
    let line = note[split + 2..].lines().find(|l| l.starts_with(&prefix))?;
    let sig = B64.decode(line[prefix.len()..].trim()).ok()?;
    (sig.len() > 4 && text.starts_with(&format!("{ORIGIN}\n"))).then(|| (text.to_string(), sig[4..].to_vec()))
}

impl Checkpoint {
    /// The signed text: `carnet-traces\n<number>\n<size>\n<root>\n<prev>\n<at µs>\n`.
    pub fn text(&self) -> String {
        text_of(
            self.number,
            self.size,
            &self.root,
            &self.prev,
            self.at.as_micros(),
        )
    }

    /// SHA-256 of the text, base64: the next checkpoint's `prev`.
    pub fn hash(&self) -> String {
        B64.encode(sha256(self.text().as_bytes()))
    }

    /// The text followed by its signature line, in the signed-note format of transparency
    /// logs (`— carnet-traces base64(key hash | signature)`), verifiable with the note tools.
    pub fn signed_note(&self, public_key: &[u8]) -> String {
        let mut sig = key_hash(public_key).to_vec();
        sig.extend_from_slice(&self.signature);
        format!("{}\n\u{2014} {ORIGIN} {}\n", self.text(), B64.encode(sig))
    }

    /// Whether the signature is `public_key`'s over the text.
    pub fn signature_is_valid(&self, public_key: &[u8]) -> bool {
        UnparsedPublicKey::new(&ED25519, public_key)
            .verify(self.text().as_bytes(), &self.signature)
            .is_ok()
    }
}

/// What `GET /api/v1/transparency/checkpoint` shows, and what an auditor keeps.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PublishedCheckpoint {
    pub number: i64,
    pub at: String,
    pub size: i64,
    pub root: String,
    pub prev: String,
    pub signed_note: String,
    pub public_key: String,
}

/// A stored leaf with what it is checked against: holder, seq, hash, the hash of that trace
/// in the chain now (if still there), the holder's lifecycle state (if the space exists).
type LeafRow = (uuid::Uuid, i64, String, Option<String>, Option<String>);

/// A checkpoint row as stored: number, at, size, root, prev, signature (base64).
type CheckpointRow = (i64, i64, i64, String, String, String);

fn from_row((number, at, size, root, prev, signature): CheckpointRow) -> Result<Checkpoint, String> {
    let signature = B64
        .decode(signature.as_bytes())
        .map_err(|_| format!("checkpoint {number}: its signature is not base64"))?;
    Ok(Checkpoint {
        number,
        at: Timestamp::from_micros(at),
        size,
        root,
        prev,
        signature,
    })
}

const SELECT_CHECKPOINT: &str = "SELECT number, at, size, root, prev, signature FROM trace_checkpoints";

/// Reads a [`CheckpointRow`] from a row of [`SELECT_CHECKPOINT`], whatever the engine.
fn checkpoint_row(r: &mut Values) -> Result<CheckpointRow, StoreError> {
    Ok((
        r.take(0)?,
        r.take(1)?,
        r.take(2)?,
        r.take(3)?,
        r.take(4)?,
        r.take(5)?,
    ))
}

/// Records the new heads of the chains a transaction appended to (in that transaction): the
/// next checkpoint covers them. Insert-only (one row per head, never updated, no index).
pub(crate) async fn mark_heads_moved(tx: &mut Tx, heads: &[(HolderId, i64)]) -> Result<(), StoreError> {
    for chunk in heads.chunks(PENDING_CHUNK) {
        let args = pending_args(chunk);
        tx.execute(
            Query::built(pending_sql(chunk.len())).bind_all(args),
            "mark trace heads",
        )
        .await?;
    }
    Ok(())
}

/// Heads per statement of [`pending_sql`].
pub(crate) const PENDING_CHUNK: usize = 250;

/// The statement recording `n` moved heads (arguments: [`pending_args`]), for both engines.
pub(crate) fn pending_sql(n: usize) -> String {
    pending_sql_from(n, 1)
}

/// [`pending_sql`] whose arguments start at `$first` (after those of another statement).
pub(crate) fn pending_sql_from(n: usize, first: usize) -> String {
    let values: Vec<String> = (0..n)
        .map(|i| format!("(${}, ${})", first + 2 * i, first + 2 * i + 1))
        .collect();
    format!(
        "INSERT INTO trace_heads_moved (holder_id, seq) VALUES {}",
        values.join(", ")
    )
}

pub(crate) fn pending_args(heads: &[(HolderId, i64)]) -> Vec<Arg<'static>> {
    heads
        .iter()
        .flat_map(|(h, seq)| [Arg::Uuid(*h.as_uuid()), Arg::Int(*seq)])
        .collect()
}

impl Store {
    /// The signing key: the vault service key `trace-checkpoint` as an Ed25519 seed.
    async fn checkpoint_signer(&self) -> Result<Ed25519KeyPair, StoreError> {
        let seed = &self.service_keys().await?.trace_checkpoint;
        Ed25519KeyPair::from_seed_unchecked(seed.expose())
            .map_err(|e| StoreError::Integrity(format!("trace checkpoint key: {e}")))
    }

    /// The raw 32-byte Ed25519 public key that checkpoints are signed with (AC-7).
    pub async fn checkpoint_public_key(&self) -> Result<[u8; 32], StoreError> {
        let pair = self.checkpoint_signer().await?;
        let mut pk = [0u8; 32];
        let raw = pair.public_key().as_ref();
        if raw.len() != pk.len() {
            return Err(StoreError::Integrity(
                "trace checkpoint key: bad public key length".into(),
            ));
        }
        pk.copy_from_slice(raw);
        Ok(pk)
    }

    /// The checkpoint public key, base64.
    pub async fn checkpoint_public_key_b64(&self) -> Result<String, StoreError> {
        Ok(B64.encode(self.checkpoint_public_key().await?))
    }

    /// The newest checkpoint, if any.
    pub async fn latest_checkpoint(&self) -> Result<Option<Checkpoint>, StoreError> {
        let sql = format!("{SELECT_CHECKPOINT} ORDER BY number DESC LIMIT 1");
        let row = self
            .db
            .fetch_optional(Query::built(sql), "read latest checkpoint")
            .await
            .and_then(|r| r.map(|mut r| checkpoint_row(&mut r)).transpose())?;
        row.map(from_row).transpose().map_err(StoreError::Integrity)
    }

    /// The newest checkpoint as published: fields, signed note and public key.
    pub async fn published_checkpoint(&self) -> Result<Option<PublishedCheckpoint>, StoreError> {
        let Some(c) = self.latest_checkpoint().await? else {
            return Ok(None);
        };
        let pk = self.checkpoint_public_key().await?;
        Ok(Some(PublishedCheckpoint {
            number: c.number,
            at: c.at.to_rfc3339(),
            size: c.size,
            root: c.root.clone(),
            prev: c.prev.clone(),
            signed_note: c.signed_note(&pk),
            public_key: B64.encode(pk),
        }))
    }

    /// Makes the next checkpoint over the chains that moved since the previous one (at most
    /// [`MAX_LEAVES`] of them; call again while it returns a full one). `None` when nothing
    /// moved, or when another server made this checkpoint at the same moment (compare-and-set
    /// on the number: the loser skips).
    pub async fn make_checkpoint(&self) -> Result<Option<Checkpoint>, StoreError> {
        self.make_checkpoint_of(MAX_LEAVES).await
    }

    /// [`Store::make_checkpoint`] with at most `max_leaves` leaves (the lowest holder ids
    /// first; the others wait for the next one).
    pub async fn make_checkpoint_of(&self, max_leaves: usize) -> Result<Option<Checkpoint>, StoreError> {
        let signer = self.checkpoint_signer().await?;
        let at = self.now();
        let mut tx = self.begin_checkpoint().await?;
        // Appends wait until this checkpoint commits, so that the rows it deletes below are
        // exactly those it read (SQLite's one writer already serialises them).
        if tx.engine() == crate::db::Engine::Postgres {
            let lock = Query::new("LOCK TABLE trace_heads_moved IN SHARE ROW EXCLUSIVE MODE");
            tx.execute(lock, "lock moved trace heads").await?;
        }
        let latest_sql = format!("{SELECT_CHECKPOINT} ORDER BY number DESC LIMIT 1");
        let latest = tx
            .fetch_optional(Query::built(latest_sql), "read latest checkpoint")
            .await
            .and_then(|r| r.map(|mut r| checkpoint_row(&mut r)).transpose())?;
        // `prev` hashes the text only: a damaged signature (reported by `verify_traces`) does
        // not stop the next checkpoints.
        let (number, prev) = match latest {
            None => (1, genesis()),
            Some((n, at, size, root, prev, _)) => (
                n + 1,
                B64.encode(sha256(text_of(n, size, &root, &prev, at).as_bytes())),
            ),
        };
        // The newest head of every chain that moved, with its hash as it is now in the chain.
        // A head whose trace is gone belongs to an erased space (LC-7): no leaf for it.
        let pending: Vec<(uuid::Uuid, i64, Option<String>)> = tx
            .fetch_all_as(
                Query::new(
                    "SELECT m.holder_id, m.seq, t.hash FROM (SELECT holder_id, MAX(seq) AS seq FROM \
                     trace_heads_moved GROUP BY holder_id ORDER BY holder_id LIMIT $1) m LEFT JOIN traces t \
                     ON t.holder_id = m.holder_id AND t.seq = m.seq",
                )
                .bind(i64::try_from(max_leaves).unwrap_or(i64::MAX)),
                "read moved trace heads",
            )
            .await?;
        if pending.is_empty() {
            return Ok(None);
        }
        let last = pending.iter().map(|(h, _, _)| *h).max();
        let leaves: Vec<Leaf> = pending
            .into_iter()
            .filter_map(|(h, seq, hash)| {
                hash.map(|hash| Leaf {
                    holder: HolderId::from_uuid(h),
                    seq,
                    hash,
                })
            })
            .collect();
        let mut made = None;
        if !leaves.is_empty() {
            let root = B64.encode(root_of(&leaves));
            let size = leaves.len() as i64;
            let text = text_of(number, size, &root, &prev, at.as_micros());
            let signature = signer.sign(text.as_bytes()).as_ref().to_vec();
            let inserted = tx
                .execute(
                    Query::new(
                        "INSERT INTO trace_checkpoints (number, at, prev, size, root, signature) VALUES ($1, \
                         $2, $3, $4, $5, $6)",
                    )
                    .binds((
                        number,
                        at.as_micros(),
                        &prev,
                        size,
                        &root,
                        B64.encode(&signature),
                    )),
                    "insert checkpoint",
                )
                .await;
            match inserted {
                Ok(_) => {}
                // Another server made checkpoint `number` meanwhile: it covers these heads.
                Err(e) if e.is_unique_violation() => return Ok(None),
                Err(e) => return Err(e),
            }
            for chunk in leaves.chunks(CHUNK) {
                let values: Vec<String> = (0..chunk.len())
                    .map(|i| format!("(${}, ${}, ${}, ${})", 4 * i + 1, 4 * i + 2, 4 * i + 3, 4 * i + 4))
                    .collect();
                let sql = format!(
                    "INSERT INTO trace_checkpoint_leaves (checkpoint, holder_id, seq, hash) VALUES {}",
                    values.join(", ")
                );
                let mut q = Query::built(sql);
                for l in chunk {
                    q = q.binds((number, l.holder.as_uuid(), l.seq, &l.hash));
                }
                tx.execute(q, "insert checkpoint leaves").await?;
            }
            made = Some(Checkpoint {
                number,
                at,
                size,
                root,
                prev,
                signature,
            });
        }
        // The rows of the holders covered: the query took the lowest holder ids, so every row
        // up to the highest of them (nothing was appended meanwhile: see the lock). UUIDs
        // compare as their 16 bytes in Rust, SQLite (blobs) and PostgreSQL alike.
        if let Some(last) = last {
            tx.execute(
                Query::new("DELETE FROM trace_heads_moved WHERE holder_id <= $1").bind(last),
                "clear checkpointed trace heads",
            )
            .await?;
        }
        tx.commit().await?;
        Ok(made)
    }

    /// Checks a checkpoint kept by someone outside (as published; AC-7): it must be signed by
    /// its public key, that key must still be the one of this deployment, and the database
    /// must still hold that very checkpoint. Since each checkpoint is linked to the previous
    /// one, this also vouches for every earlier one; an operator who deleted the checkpoints
    /// along with the traces they cover is caught here. Returns the problems found.
    pub async fn verify_published_checkpoint(
        &self,
        kept: &PublishedCheckpoint,
    ) -> Result<Vec<String>, StoreError> {
        let mut problems = Vec::new();
        let Some((text, signature)) = parse_signed_note(&kept.signed_note) else {
            problems.push("the kept checkpoint is not a signed note of carnet-traces".to_string());
            return Ok(problems);
        };
        let number: Option<i64> = text.lines().nth(1).and_then(|n| n.parse().ok());
        let Some(number) = number else {
            problems.push("the kept checkpoint has no number".to_string());
            return Ok(problems);
        };
        let kept_key = B64.decode(kept.public_key.as_bytes()).unwrap_or_default();
        let verifies = UnparsedPublicKey::new(&ED25519, &kept_key)
            .verify(text.as_bytes(), &signature)
            .is_ok();
        if !verifies {
            problems.push(format!(
                "kept checkpoint {number}: its signature does not match its public key (not an authentic copy)"
            ));
        }
        if kept_key != self.checkpoint_public_key().await? {
            problems.push(format!(
                "kept checkpoint {number}: the checkpoint signing key changed since it was published"
            ));
        }
        let sql = format!("{SELECT_CHECKPOINT} WHERE number = $1");
        let row = self
            .db
            .fetch_optional(Query::built(sql).bind(number), "read checkpoint")
            .await
            .and_then(|r| r.map(|mut r| checkpoint_row(&mut r)).transpose())?;
        match row.map(from_row) {
            None => problems.push(format!(
                "published checkpoint {number} is no longer in the database"
            )),
            Some(Ok(c)) if c.text() == text && c.signature == signature => {}
            Some(_) => problems.push(format!(
                "published checkpoint {number} differs from the one in the database"
            )),
        }
        Ok(problems)
    }

    /// A write transaction that holds the write lock from its start on SQLite (`BEGIN
    /// IMMEDIATE`), so a checkpoint's reads and writes see one state even with another
    /// process on the same file; PostgreSQL relies on the number's uniqueness instead.
    async fn begin_checkpoint(&self) -> Result<Tx, StoreError> {
        self.db.begin().await
    }

    /// Checks every checkpoint (AC-7): contiguous numbers from 1, each `prev` the hash of the
    /// previous one (none removed or reordered), the signature, the root recomputed from the
    /// stored leaves, and every leaf's trace still in its chain with the same hash (which
    /// catches a truncated tail or a rewritten chain). A missing chain is accepted only for
    /// a space erased on purpose (LC-7: state `erased` and data key destroyed).
    pub(crate) async fn verify_checkpoints(&self, report: &mut TraceReport) -> Result<(), StoreError> {
        let sql = format!("{SELECT_CHECKPOINT} ORDER BY number");
        let rows: Vec<CheckpointRow> = self
            .db
            .fetch_all(Query::built(sql), "read checkpoints")
            .await
            .and_then(|rs| rs.into_iter().map(|mut r| checkpoint_row(&mut r)).collect())?;
        if rows.is_empty() {
            return Ok(());
        }
        let public_key = self.checkpoint_public_key().await?;
        let mut erased: HashMap<uuid::Uuid, bool> = HashMap::new();
        let mut expected_number = 1;
        let mut expected_prev = genesis();
        for (number, at, size, root, prev, signature) in rows {
            report.checkpoints += 1;
            if number != expected_number {
                report.problems.push(format!(
                    "checkpoint {expected_number} is missing (found {number})"
                ));
            }
            if prev != expected_prev {
                report
                    .problems
                    .push(format!("checkpoint {number} does not follow the previous one"));
            }
            expected_number = number + 1;
            let signature = B64.decode(signature.as_bytes());
            let c = Checkpoint {
                number,
                at: Timestamp::from_micros(at),
                size,
                root,
                prev,
                signature: signature.clone().unwrap_or_default(),
            };
            expected_prev = c.hash();
            match signature {
                Err(_) => report
                    .problems
                    .push(format!("checkpoint {number}: its signature is not base64")),
                Ok(_) if !c.signature_is_valid(&public_key) => report
                    .problems
                    .push(format!("checkpoint {number}: the signature does not match")),
                Ok(_) => {}
            }
            let leaves: Vec<LeafRow> = self
                .db
                .fetch_all_as(
                    Query::new(
                        "SELECT l.holder_id, l.seq, l.hash, t.hash, h.lifecycle FROM trace_checkpoint_leaves \
                         l LEFT JOIN traces t ON t.holder_id = l.holder_id AND t.seq = l.seq LEFT JOIN \
                         holders h ON h.id = l.holder_id WHERE l.checkpoint = $1 ORDER BY l.holder_id",
                    )
                    .bind(number),
                    "read checkpoint leaves",
                )
                .await?;
            let as_leaves: Vec<Leaf> = leaves
                .iter()
                .map(|(h, seq, hash, _, _)| Leaf {
                    holder: HolderId::from_uuid(*h),
                    seq: *seq,
                    hash: hash.clone(),
                })
                .collect();
            if as_leaves.len() as i64 != c.size || B64.encode(root_of(&as_leaves)) != c.root {
                report.problems.push(format!(
                    "checkpoint {number}: its stored leaves do not match its root"
                ));
            }
            for (h, seq, hash, in_chain, lifecycle) in leaves {
                let holder = HolderId::from_uuid(h);
                match in_chain {
                    Some(now) if now == hash => {}
                    Some(_) => report.problems.push(format!(
                        "holder {holder}: trace {seq} differs from checkpoint {number}"
                    )),
                    None => {
                        let ok = match erased.get(&h) {
                            Some(ok) => *ok,
                            None => {
                                let ok = lifecycle.as_deref() == Some("erased")
                                    && matches!(self.vault.get(holder).await, Err(StoreError::Shredded(_)));
                                erased.insert(h, ok);
                                ok
                            }
                        };
                        if !ok {
                            report.problems.push(format!(
                                "holder {holder}: trace {seq}, covered by checkpoint {number}, is missing \
                                 (the chain was truncated)"
                            ));
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(b: &[u8]) -> [u8; 32] {
        leaf_hash(b)
    }

    /// RFC 6962 written out by hand for small trees.
    #[test]
    fn merkle_root_small_vectors_ac7() {
        let l: Vec<[u8; 32]> = (0u8..5).map(|i| h(&[i])).collect();
        assert_eq!(merkle_root(&[]), sha256(b""));
        assert_eq!(merkle_root(&l[..1]), l[0]);
        assert_eq!(merkle_root(&l[..2]), node_hash(&l[0], &l[1]));
        assert_eq!(merkle_root(&l[..3]), node_hash(&node_hash(&l[0], &l[1]), &l[2]));
        assert_eq!(
            merkle_root(&l[..5]),
            node_hash(
                &node_hash(&node_hash(&l[0], &l[1]), &node_hash(&l[2], &l[3])),
                &l[4]
            )
        );
        // Domain separation: a leaf hash is not SHA-256 of the bytes alone.
        assert_ne!(h(b"x"), sha256(b"x"));
    }

    /// An independent construction: pair bottom-up, a lone last node goes up unchanged. It
    /// gives the RFC 6962 tree for every size.
    fn bottom_up(leaves: &[[u8; 32]]) -> [u8; 32] {
        if leaves.is_empty() {
            return sha256(b"");
        }
        let mut level = leaves.to_vec();
        while level.len() > 1 {
            level = level
                .chunks(2)
                .map(|p| {
                    if p.len() == 2 {
                        node_hash(&p[0], &p[1])
                    } else {
                        p[0]
                    }
                })
                .collect();
        }
        level[0]
    }

    #[test]
    fn merkle_root_matches_an_independent_construction() {
        let l: Vec<[u8; 32]> = (0u8..40).map(|i| h(&[i, 7])).collect();
        for n in 0..=l.len() {
            assert_eq!(merkle_root(&l[..n]), bottom_up(&l[..n]), "size {n}");
        }
    }

    #[test]
    fn root_sorts_leaves_by_holder() {
        let a = Leaf {
            holder: HolderId::from_uuid(uuid::Uuid::from_u128(1)),
            seq: 3,
            hash: "aa".into(),
        };
        let b = Leaf {
            holder: HolderId::from_uuid(uuid::Uuid::from_u128(2)),
            seq: 1,
            hash: "bb".into(),
        };
        assert_eq!(root_of(&[a.clone(), b.clone()]), root_of(&[b.clone(), a.clone()]));
        assert_eq!(
            root_of(&[b.clone(), a.clone()]),
            node_hash(&leaf_hash(&a.bytes()), &leaf_hash(&b.bytes()))
        );
        let mut bytes = uuid::Uuid::from_u128(1).as_bytes().to_vec();
        bytes.extend_from_slice(&3i64.to_be_bytes());
        bytes.extend_from_slice(b"aa");
        assert_eq!(a.bytes(), bytes);
    }

    #[test]
    fn checkpoint_text_is_signed_and_chained_s5() {
        let pair = Ed25519KeyPair::from_seed_unchecked(&[7u8; 32]).unwrap();
        let pk = pair.public_key().as_ref().to_vec();
        let mut c = Checkpoint {
            number: 2,
            at: Timestamp::from_micros(1_767_603_600_000_000),
            size: 3,
            root: B64.encode([1u8; 32]),
            prev: genesis(),
            signature: Vec::new(),
        };
        assert_eq!(
            c.text(),
            format!(
                "carnet-traces\n2\n3\n{}\n{}\n1767603600000000\n",
                B64.encode([1u8; 32]),
                B64.encode([0u8; 32])
            )
        );
        c.signature = pair.sign(c.text().as_bytes()).as_ref().to_vec();
        assert!(c.signature_is_valid(&pk));
        let note = c.signed_note(&pk);
        assert!(note.starts_with(&c.text()));
        let sig_line = note.lines().last().unwrap();
        let sig_b64 = sig_line.strip_prefix("\u{2014} carnet-traces ").unwrap();
        let sig = B64.decode(sig_b64).unwrap();
        assert_eq!(&sig[..4], &key_hash(&pk));
        assert_eq!(&sig[4..], &c.signature[..]);
        assert_eq!(parse_signed_note(&note), Some((c.text(), c.signature.clone())));
        assert_eq!(parse_signed_note("carnet-traces\n1\n"), None);
        let mut altered = c.clone();
        altered.root = B64.encode([2u8; 32]);
        assert!(!altered.signature_is_valid(&pk));
        assert_ne!(altered.hash(), c.hash());
    }
}
