//! What a server knows of a holder's documents lately listed, per holder, valid while the
//! holder's document stamp has not moved (migration 22).
//!
//! A listing decides on every document of a record before it counts and pages (S-1, S-2), and
//! each row's metadata is sealed: opening a record of 300 documents costs 300 AES-GCM opens and
//! JSON parses. What a listing decides, filters, ranks and pages on is kept here as a
//! [`DocHead`] per row (ids, status, version, the access policy's facts, dates, type: ~150
//! bytes), under the stamp read *before* the rows; a listing reads the stamp (one point read)
//! and uses the cached heads only if it is the same. Every transaction that changes a holder's
//! document rows bumps the stamp, on any server, so rows another server changed are never
//! decided on. What the cache holds was opened with the holder's key: nothing leaves it but
//! through the gate, which still decides on each row per request.
//!
//! Beside the heads, each holder's entry keeps the opened metadata of the few documents
//! lately shown ([`Metas`], at most [`Metas::KEEP`]), by id and version: a version's metadata
//! never changes (every change of a row moves its version), so these outlive the stamp and a
//! page is opened from them, or read row by row, never the whole record again. Until session
//! 17 the cache held every row opened (~650 bytes a row); a record that outgrew it was reopened
//! whole on each listing.
//!
//! Heads read after the stamp may be newer than it (a commit in between): such an entry is
//! only refreshed once more, since the stamp it is filed under is already behind. A server's
//! own deposit updates the entry it filed under the stamp just before its own (`extend`), so a
//! record that grows on this server is not reopened after each deposit.
//!
//! Bounded by an estimate of the bytes held ([`DOC_CACHE_BYTES`]); the oldest entries go first.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use carnet_domain::document::DocumentMeta;
use carnet_domain::{DocumentId, HolderId};

use crate::documents::DocHead;

/// Estimated bytes kept per server (48 MiB: the heads of ~200,000 documents with the opened
/// metadata of the newest of each record).
pub(crate) const DOC_CACHE_BYTES: usize = 48 << 20;

/// An estimate of the memory one opened metadata takes (its strings, the map's slot).
const META_BYTES: usize = 700;

/// A holder's documents as listings use them: every row's head, newest first, and the opened
/// metadata of the few lately shown.
#[derive(Clone, Debug)]
pub(crate) struct DocRecord {
    pub(crate) heads: Arc<Vec<DocHead>>,
    pub(crate) metas: Arc<Metas>,
}

impl DocRecord {
    /// An estimate of the memory this record may hold, its kept metadata included.
    fn approx_bytes(&self) -> usize {
        // The vector's spare capacity counts: it is held as much as its heads.
        (self.heads.capacity() - self.heads.len()) * std::mem::size_of::<DocHead>()
            + self.heads.iter().map(DocHead::approx_bytes).sum::<usize>()
            + self.heads.len().min(Metas::KEEP) * META_BYTES
    }
}

/// Opened metadata of one holder's document versions, by id and version, at most
/// [`Metas::KEEP`] (the oldest put go first).
#[derive(Debug, Default)]
pub(crate) struct Metas {
    inner: Mutex<MetasInner>,
}

#[derive(Debug, Default)]
struct MetasInner {
    map: HashMap<(DocumentId, i64), Arc<DocumentMeta>>,
    order: VecDeque<(DocumentId, i64)>,
}

impl Metas {
    /// How many are kept per holder: a page of a FHIR search (50 by default) and more.
    pub(crate) const KEEP: usize = 64;

    fn lock(&self) -> MutexGuard<'_, MetasInner> {
        // Each change leaves the map and its order consistent before the next starts.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The metadata of version `version` of document `id`, if kept.
    pub(crate) fn get(&self, id: DocumentId, version: i64) -> Option<Arc<DocumentMeta>> {
        self.lock().map.get(&(id, version)).cloned()
    }

    /// [`Metas::get`] for many, under one lock (a page's worth).
    pub(crate) fn get_many(
        &self,
        keys: impl Iterator<Item = (DocumentId, i64)>,
    ) -> Vec<Option<Arc<DocumentMeta>>> {
        let inner = self.lock();
        keys.map(|k| inner.map.get(&k).cloned()).collect()
    }

    /// Keeps the metadata of version `version` of document `id` (opened with the holder's key).
    pub(crate) fn put(&self, id: DocumentId, version: i64, meta: Arc<DocumentMeta>) {
        let mut inner = self.lock();
        if inner.map.insert((id, version), meta).is_none() {
            inner.order.push_back((id, version));
        }
        while inner.map.len() > Self::KEEP {
            let Some(oldest) = inner.order.pop_front() else {
                break;
            };
            inner.map.remove(&oldest);
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().map.len()
    }
}

#[derive(Debug)]
struct Entry {
    stamp: i64,
    record: DocRecord,
    bytes: usize,
    /// Which of the holder's insertions this entry is (older queue slots are stale).
    generation: u64,
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<HolderId, Entry>,
    /// Holders in the order their entries were filed, with the generation filed.
    order: VecDeque<(HolderId, u64)>,
    bytes: usize,
    next_generation: u64,
}

#[derive(Debug)]
pub(crate) struct DocCache {
    inner: Mutex<Inner>,
    /// Set at start (`Store::set_document_cache_bytes`); read at each insertion.
    capacity: AtomicUsize,
    stats: Stats,
}

/// What the cache did since its last report (logged at most once a minute, at `info`, by a
/// lookup after the minute — the clock is read once every [`Stats::CHECK_EVERY`] lookups: how
/// an operator sees whether the bound fits the load).
#[derive(Debug)]
struct Stats {
    hits: AtomicU64,
    misses: AtomicU64,
    evicted: AtomicU64,
    since: Mutex<Instant>,
}

impl Stats {
    const EVERY: Duration = Duration::from_secs(60);

    fn new() -> Self {
        Self {
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
            since: Mutex::new(Instant::now()),
        }
    }

    /// Lookups between two looks at the clock: the report costs a lookup nothing else.
    const CHECK_EVERY: u64 = 1024;

    /// Counts a lookup; true when it is time to look whether a minute has passed.
    fn count(&self, hit: bool) -> bool {
        metrics::counter!("carnet_document_cache_lookups_total", "result" => if hit { "hit" } else { "miss" })
            .increment(1);
        let counter = if hit { &self.hits } else { &self.misses };
        counter.fetch_add(1, Ordering::Relaxed) % Self::CHECK_EVERY == Self::CHECK_EVERY - 1
    }

    /// Logs and restarts the counts when a minute has passed (`entries`/`bytes`: now).
    fn report(&self, entries: usize, bytes: usize, capacity: usize) {
        let Ok(mut since) = self.since.try_lock() else {
            return; // another lookup is reporting
        };
        if since.elapsed() < Self::EVERY {
            return;
        }
        let secs = since.elapsed().as_secs();
        *since = Instant::now();
        drop(since);
        let hits = self.hits.swap(0, Ordering::Relaxed);
        let misses = self.misses.swap(0, Ordering::Relaxed);
        let evicted = self.evicted.swap(0, Ordering::Relaxed);
        tracing::info!(
            entries,
            mib = bytes >> 20,
            bound_mib = capacity >> 20,
            hits,
            misses,
            evicted,
            secs,
            "document cache"
        );
    }
}

impl Default for DocCache {
    fn default() -> Self {
        Self::with_capacity(DOC_CACHE_BYTES)
    }
}

impl DocCache {
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Self {
            inner: Mutex::default(),
            capacity: AtomicUsize::new(capacity),
            stats: Stats::new(),
        }
    }

    pub(crate) fn set_capacity(&self, bytes: usize) {
        self.capacity.store(bytes, Ordering::Relaxed);
    }

    fn capacity(&self) -> usize {
        self.capacity.load(Ordering::Relaxed)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Each change leaves the map consistent before the next starts; a panic in between
        // cannot leave an entry under a wrong stamp.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The record filed for `holder` under exactly `stamp`.
    pub(crate) fn get(&self, holder: HolderId, stamp: i64) -> Option<DocRecord> {
        let inner = self.lock();
        let found = inner
            .entries
            .get(&holder)
            .filter(|e| e.stamp == stamp)
            .map(|e| e.record.clone());
        if self.stats.count(found.is_some()) {
            let (entries, bytes) = (inner.entries.len(), inner.bytes);
            drop(inner);
            self.stats.report(entries, bytes, self.capacity());
        }
        found
    }

    /// The opened metadata kept for `holder`, whatever the stamp (versions never change).
    pub(crate) fn metas(&self, holder: HolderId) -> Option<Arc<Metas>> {
        self.lock().entries.get(&holder).map(|e| e.record.metas.clone())
    }

    /// Files `record`, read after `stamp` was read, unless a newer stamp is filed already.
    pub(crate) fn put(&self, holder: HolderId, stamp: i64, record: DocRecord) {
        let bytes = record.approx_bytes();
        if bytes > self.capacity() / 4 {
            return; // one record must not push every other out
        }
        let mut inner = self.lock();
        if inner.entries.get(&holder).is_some_and(|e| e.stamp > stamp) {
            return;
        }
        let evicted = inner.insert(holder, stamp, record, bytes, self.capacity());
        self.stats.evicted.fetch_add(evicted, Ordering::Relaxed);
    }

    /// After this server committed a new document row `head` (its metadata `meta`; replacing
    /// `replaced`, if any, now deprecated at version + 1) that moved the stamp to `stamp`: the
    /// entry filed under `stamp - 1` becomes the record at `stamp`. Any doubt (no such entry,
    /// the row already there, the replaced row not as it was) drops the entry instead.
    pub(crate) fn extend(
        &self,
        holder: HolderId,
        stamp: i64,
        head: DocHead,
        meta: Arc<DocumentMeta>,
        replaced: Option<(DocumentId, i64)>,
    ) {
        let mut inner = self.lock();
        let Some(e) = inner.entries.get(&holder) else {
            return;
        };
        let heads = &e.record.heads;
        let applies = e.stamp == stamp - 1
            && !heads.iter().any(|r| r.id() == head.id())
            && replaced.is_none_or(|(id, version)| {
                heads
                    .iter()
                    .any(|r| r.id() == id && r.version() == version && !r.is_deprecated())
            });
        let DocRecord { mut heads, metas } = e.record.clone();
        // Taken out of the map: the heads are copied below only if a listing still reads them.
        inner.remove(holder);
        if !applies {
            return;
        }
        metas.put(head.id(), head.version(), meta);
        let v = Arc::make_mut(&mut heads);
        // One more, not twice as many: a record grows a row at a time.
        v.reserve_exact(1);
        if let Some((id, _)) = replaced {
            for r in v.iter_mut().filter(|r| r.id() == id) {
                r.deprecate();
            }
        }
        // Newest first, as read (`ORDER BY id DESC`): ids are time-ordered, but another
        // server's clock may be ahead.
        let at = v.partition_point(|r| r.id() > head.id());
        v.insert(at, head);
        let record = DocRecord { heads, metas };
        let bytes = record.approx_bytes();
        if bytes > self.capacity() / 4 {
            return;
        }
        let evicted = inner.insert(holder, stamp, record, bytes, self.capacity());
        self.stats.evicted.fetch_add(evicted, Ordering::Relaxed);
    }

    /// Drops what is filed for `holder` (erasure).
    pub(crate) fn forget(&self, holder: HolderId) {
        self.lock().remove(holder);
    }

    #[cfg(test)]
    fn bytes(&self) -> usize {
        self.lock().bytes
    }
}

impl Inner {
    fn remove(&mut self, holder: HolderId) {
        if let Some(e) = self.entries.remove(&holder) {
            self.bytes -= e.bytes;
        }
    }

    /// Files `record`, dropping the oldest entries to make room; gives how many went.
    fn insert(
        &mut self,
        holder: HolderId,
        stamp: i64,
        record: DocRecord,
        bytes: usize,
        capacity: usize,
    ) -> u64 {
        self.remove(holder);
        let mut evicted = 0;
        while self.bytes + bytes > capacity {
            let Some((oldest, generation)) = self.order.pop_front() else {
                break;
            };
            if self
                .entries
                .get(&oldest)
                .is_some_and(|e| e.generation == generation)
            {
                self.remove(oldest);
                evicted += 1;
            }
        }
        // Stale queue slots (entries since replaced or removed) are dropped as they come up;
        // bound them too, so that a few hot holders refiled again and again cannot grow it.
        if self.order.len() > 4 * self.entries.len() + 1024 {
            let entries = &self.entries;
            self.order
                .retain(|(h, g)| entries.get(h).is_some_and(|e| e.generation == *g));
        }
        let generation = self.next_generation;
        self.next_generation += 1;
        self.order.push_back((holder, generation));
        self.bytes += bytes;
        self.entries.insert(
            holder,
            Entry {
                stamp,
                record,
                bytes,
                generation,
            },
        );
        evicted
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::documents::test_row;

    fn holder(n: u8) -> HolderId {
        HolderId::from_uuid(uuid::Uuid::from_bytes([n; 16]))
    }

    fn head(n: u8, version: i64) -> DocHead {
        test_row(n, version).head()
    }

    fn record(heads: Vec<DocHead>) -> DocRecord {
        DocRecord {
            heads: Arc::new(heads),
            metas: Arc::default(),
        }
    }

    fn meta() -> Arc<DocumentMeta> {
        Arc::new(test_row(0, 1).meta().clone())
    }

    #[test]
    fn rows_are_served_only_under_the_stamp_they_were_filed_under() {
        let c = DocCache::default();
        let h = holder(1);
        c.put(h, 3, record(vec![head(1, 1)]));
        assert_eq!(c.get(h, 3).map(|r| r.heads.len()), Some(1));
        assert!(
            c.get(h, 4).is_none(),
            "the stamp moved: another server changed the record"
        );
        assert!(c.get(h, 2).is_none());
        assert!(c.get(holder(2), 3).is_none());
        // An older reading does not replace a newer one.
        c.put(h, 2, record(Vec::new()));
        assert_eq!(c.get(h, 3).map(|r| r.heads.len()), Some(1));
        // The opened metadata outlives the stamp (a version never changes).
        assert!(c.metas(h).is_some());
        c.forget(h);
        assert!(c.get(h, 3).is_none());
        assert!(c.metas(h).is_none(), "erasure leaves nothing opened behind");
        assert_eq!(c.bytes(), 0);
    }

    #[test]
    fn a_deposit_extends_only_the_entry_just_before_it() {
        let c = DocCache::default();
        let h = holder(1);
        c.put(h, 5, record(vec![head(2, 1), head(1, 1)]));
        // The stamp went 5 -> 6 with this server's deposit of document 3 replacing 2.
        c.extend(h, 6, head(3, 1), meta(), Some((head(2, 1).id(), 1)));
        let rec = c.get(h, 6).expect("extended");
        let rows = &rec.heads;
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].id(), head(3, 1).id(), "newest first");
        assert!(rows[1].is_deprecated() && rows[1].version() == 2);
        assert!(!rows[2].is_deprecated());
        assert!(
            rec.metas.get(head(3, 1).id(), 1).is_some(),
            "the deposit's metadata is kept"
        );
        // A deposit whose stamp skipped one (another server's change in between) drops it.
        c.extend(h, 8, head(4, 1), meta(), None);
        assert!(c.get(h, 6).is_none() && c.get(h, 8).is_none());
        // Rows read after a commit may already hold the deposit: dropped, not doubled.
        c.put(h, 8, record(vec![head(5, 1)]));
        c.extend(h, 9, head(5, 1), meta(), None);
        assert!(c.get(h, 9).is_none() && c.get(h, 8).is_none());
        // The replaced row not as the deposit saw it: dropped.
        c.put(h, 10, record(vec![head(6, 2)]));
        c.extend(h, 11, head(7, 1), meta(), Some((head(6, 1).id(), 1)));
        assert!(c.get(h, 11).is_none());
        assert_eq!(c.bytes(), 0);
    }

    #[test]
    fn the_oldest_entries_go_first_when_full() {
        let one = record(vec![head(1, 1), head(101, 1)]).approx_bytes();
        let c = DocCache::with_capacity(one * 6);
        for n in 0..10 {
            c.put(holder(n), 1, record(vec![head(n, 1), head(n + 100, 1)]));
        }
        assert!(c.bytes() <= one * 6);
        assert!(c.get(holder(0), 1).is_none(), "the oldest went");
        assert!(c.get(holder(9), 1).is_some(), "the newest stays");
        // Refiling the same holder again and again keeps the bookkeeping bounded.
        for stamp in 2..10_000 {
            c.put(holder(9), stamp, record(vec![head(9, 1)]));
        }
        let inner = c.lock();
        assert!(inner.order.len() <= 4 * inner.entries.len() + 1025);
        drop(inner);
        // A record larger than a quarter of the cache is not kept.
        let big: Vec<DocHead> = (0..8).map(|n| head(n, 1)).collect();
        c.put(holder(50), 1, record(big));
        assert!(c.get(holder(50), 1).is_none());
    }

    #[test]
    fn the_bound_set_at_start_holds() {
        let one = record(vec![head(1, 1), head(101, 1)]).approx_bytes();
        let c = DocCache::default();
        c.set_capacity(one * 4);
        for n in 0..10 {
            c.put(holder(n), 1, record(vec![head(n, 1), head(n + 100, 1)]));
        }
        assert!(c.bytes() <= one * 4, "{} > {}", c.bytes(), one * 4);
        assert!(c.get(holder(0), 1).is_none() && c.get(holder(9), 1).is_some());
    }

    #[test]
    fn what_a_record_holds_is_counted_and_grows_a_row_at_a_time() {
        // Spare capacity is memory held: a bound that ignored it was exceeded unseen.
        let exact = record(vec![head(1, 1), head(2, 1)]);
        let mut roomy = Vec::with_capacity(100);
        roomy.extend([head(1, 1), head(2, 1)]);
        let roomy = record(roomy);
        assert_eq!(
            roomy.approx_bytes() - exact.approx_bytes(),
            98 * std::mem::size_of::<DocHead>()
        );
        // A deposit adds one slot, not as many again as the record holds.
        let c = DocCache::default();
        let h = holder(1);
        let heads: Vec<DocHead> = (1..=64).rev().map(|n| head(n, 1)).collect();
        c.put(h, 1, record(heads));
        let listing = c.get(h, 1).expect("filed"); // a listing still reading them
        c.extend(h, 2, head(65, 1), meta(), None);
        let grown = c.get(h, 2).expect("extended");
        assert_eq!(grown.heads.len(), 65);
        assert_eq!(grown.heads.capacity(), 65);
        assert_eq!(listing.heads.len(), 64, "the listing's heads are left as read");
        drop(listing);
        c.extend(h, 3, head(66, 1), meta(), None);
        let grown = c.get(h, 3).expect("extended in place");
        assert_eq!(grown.heads.capacity(), 66);
        assert_eq!(c.bytes(), grown.approx_bytes());
    }

    #[test]
    fn lookups_and_evictions_are_counted_for_the_report() {
        let one = record(vec![head(1, 1)]).approx_bytes();
        let c = DocCache::with_capacity(one * 8);
        for n in 0..10 {
            c.put(holder(n), 1, record(vec![head(n, 1)]));
        }
        assert!(c.get(holder(9), 1).is_some());
        assert!(c.get(holder(0), 1).is_none());
        assert!(c.get(holder(9), 2).is_none());
        assert_eq!(c.stats.hits.load(Ordering::Relaxed), 1);
        assert_eq!(c.stats.misses.load(Ordering::Relaxed), 2);
        assert_eq!(c.stats.evicted.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn a_holder_keeps_the_metadata_of_few_versions() {
        let m = Metas::default();
        for n in 0..100u8 {
            m.put(head(n, 1).id(), 1, meta());
        }
        assert_eq!(m.len(), Metas::KEEP);
        assert!(m.get(head(0, 1).id(), 1).is_none(), "the oldest put went");
        assert!(m.get(head(99, 1).id(), 1).is_some());
        assert!(
            m.get(head(99, 1).id(), 2).is_none(),
            "another version is another entry"
        );
        // Putting one again does not count it twice.
        m.put(head(99, 1).id(), 1, meta());
        assert_eq!(m.len(), Metas::KEEP);
    }
}
