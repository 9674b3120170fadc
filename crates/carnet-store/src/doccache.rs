//! The document rows a server opened lately, per holder, valid while the holder's document
//! stamp has not moved (migration 22).
//!
//! A listing decides on every document of a record before it counts and pages (S-1, S-2), and
//! each row's metadata is sealed: opening a record of 300 documents costs 300 AES-GCM opens and
//! JSON parses. The rows opened are kept here under the stamp read *before* them; a listing
//! reads the stamp (one point read) and uses the cached rows only if it is the same. Every
//! transaction that changes a holder's document rows bumps the stamp, on any server, so rows
//! another server changed are never served. What the cache holds was opened with the holder's
//! key: nothing leaves it but through the gate, which still decides on each row per request.
//!
//! Rows read after the stamp may be newer than it (a commit in between): such an entry is only
//! refreshed once more, since the stamp it is filed under is already behind. A server's own
//! deposit updates the entry it filed under the stamp just before its own (`extend`), so a
//! record that grows on this server is not reopened after each deposit.
//!
//! Bounded by an estimate of the bytes held ([`DOC_CACHE_BYTES`]); the oldest entries go first.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use carnet_domain::{DocumentId, HolderId};

use crate::documents::DocRow;

/// Estimated bytes of opened rows kept per server (a row is ~1 KiB: 48 MiB is ~50,000 rows).
pub(crate) const DOC_CACHE_BYTES: usize = 48 << 20;

#[derive(Debug)]
struct Entry {
    stamp: i64,
    rows: Arc<Vec<DocRow>>,
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

    /// The rows filed for `holder` under exactly `stamp`.
    pub(crate) fn get(&self, holder: HolderId, stamp: i64) -> Option<Arc<Vec<DocRow>>> {
        let inner = self.lock();
        inner
            .entries
            .get(&holder)
            .filter(|e| e.stamp == stamp)
            .map(|e| e.rows.clone())
    }

    /// Files `rows`, read after `stamp` was read, unless a newer stamp is filed already.
    pub(crate) fn put(&self, holder: HolderId, stamp: i64, rows: Arc<Vec<DocRow>>) {
        let bytes = rows.iter().map(DocRow::approx_bytes).sum::<usize>();
        if bytes > self.capacity() / 4 {
            return; // one record must not push every other out
        }
        let mut inner = self.lock();
        if inner.entries.get(&holder).is_some_and(|e| e.stamp > stamp) {
            return;
        }
        inner.insert(holder, stamp, rows, bytes, self.capacity());
    }

    /// After this server committed a new document row `row` (replacing `replaced`, if any,
    /// now deprecated at version + 1) that moved the stamp to `stamp`: the entry filed under
    /// `stamp - 1` becomes the record at `stamp`. Any doubt (no such entry, the row already
    /// there, the replaced row not as it was) drops the entry instead.
    pub(crate) fn extend(
        &self,
        holder: HolderId,
        stamp: i64,
        row: DocRow,
        replaced: Option<(DocumentId, i64)>,
    ) {
        let mut inner = self.lock();
        let Some(e) = inner.entries.get(&holder) else {
            return;
        };
        let applies = e.stamp == stamp - 1
            && !e.rows.iter().any(|r| r.id() == row.id())
            && replaced.is_none_or(|(id, version)| {
                e.rows
                    .iter()
                    .any(|r| r.id() == id && r.version() == version && !r.is_deprecated())
            });
        let (mut rows, bytes) = (e.rows.clone(), e.bytes + row.approx_bytes());
        // Taken out of the map: the rows are copied below only if a listing still reads them.
        inner.remove(holder);
        if !applies || bytes > self.capacity() / 4 {
            return;
        }
        let v = Arc::make_mut(&mut rows);
        if let Some((id, _)) = replaced {
            for r in v.iter_mut().filter(|r| r.id() == id) {
                r.deprecate();
            }
        }
        // Newest first, as read (`ORDER BY id DESC`): ids are time-ordered, but another
        // server's clock may be ahead.
        let at = v.partition_point(|r| r.id() > row.id());
        v.insert(at, row);
        inner.insert(holder, stamp, rows, bytes, self.capacity());
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

    fn insert(
        &mut self,
        holder: HolderId,
        stamp: i64,
        rows: Arc<Vec<DocRow>>,
        bytes: usize,
        capacity: usize,
    ) {
        self.remove(holder);
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
                rows,
                bytes,
                generation,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::documents::test_row;

    fn holder(n: u8) -> HolderId {
        HolderId::from_uuid(uuid::Uuid::from_bytes([n; 16]))
    }

    #[test]
    fn rows_are_served_only_under_the_stamp_they_were_filed_under() {
        let c = DocCache::default();
        let h = holder(1);
        c.put(h, 3, Arc::new(vec![test_row(1, 1)]));
        assert_eq!(c.get(h, 3).map(|r| r.len()), Some(1));
        assert!(
            c.get(h, 4).is_none(),
            "the stamp moved: another server changed the record"
        );
        assert!(c.get(h, 2).is_none());
        assert!(c.get(holder(2), 3).is_none());
        // An older reading does not replace a newer one.
        c.put(h, 2, Arc::new(Vec::new()));
        assert_eq!(c.get(h, 3).map(|r| r.len()), Some(1));
        c.forget(h);
        assert!(c.get(h, 3).is_none());
        assert_eq!(c.bytes(), 0);
    }

    #[test]
    fn a_deposit_extends_only_the_entry_just_before_it() {
        let c = DocCache::default();
        let h = holder(1);
        c.put(h, 5, Arc::new(vec![test_row(2, 1), test_row(1, 1)]));
        // The stamp went 5 -> 6 with this server's deposit of document 3 replacing 2.
        c.extend(h, 6, test_row(3, 1), Some((test_row(2, 1).id(), 1)));
        let rows = c.get(h, 6).expect("extended");
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].id(), test_row(3, 1).id(), "newest first");
        assert!(rows[1].is_deprecated() && rows[1].version() == 2);
        assert!(!rows[2].is_deprecated());
        // A deposit whose stamp skipped one (another server's change in between) drops it.
        c.extend(h, 8, test_row(4, 1), None);
        assert!(c.get(h, 6).is_none() && c.get(h, 8).is_none());
        // Rows read after a commit may already hold the deposit: dropped, not doubled.
        c.put(h, 8, Arc::new(vec![test_row(5, 1)]));
        c.extend(h, 9, test_row(5, 1), None);
        assert!(c.get(h, 9).is_none() && c.get(h, 8).is_none());
        // The replaced row not as the deposit saw it: dropped.
        c.put(h, 10, Arc::new(vec![test_row(6, 2)]));
        c.extend(h, 11, test_row(7, 1), Some((test_row(6, 1).id(), 1)));
        assert!(c.get(h, 11).is_none());
        assert_eq!(c.bytes(), 0);
    }

    #[test]
    fn the_oldest_entries_go_first_when_full() {
        let one = test_row(1, 1).approx_bytes();
        let c = DocCache::with_capacity(one * 12);
        for n in 0..10 {
            c.put(holder(n), 1, Arc::new(vec![test_row(n, 1), test_row(n + 100, 1)]));
        }
        assert!(c.bytes() <= one * 12);
        assert!(c.get(holder(0), 1).is_none(), "the oldest went");
        assert!(c.get(holder(9), 1).is_some(), "the newest stays");
        // Refiling the same holder again and again keeps the bookkeeping bounded.
        for stamp in 2..10_000 {
            c.put(holder(9), stamp, Arc::new(vec![test_row(9, 1)]));
        }
        let inner = c.lock();
        assert!(inner.order.len() <= 4 * inner.entries.len() + 1025);
        drop(inner);
        // A record larger than a quarter of the cache is not kept.
        let big: Vec<DocRow> = (0..4).map(|n| test_row(n, 1)).collect();
        c.put(holder(50), 1, Arc::new(big));
        assert!(c.get(holder(50), 1).is_none());
    }

    #[test]
    fn the_bound_set_at_start_holds() {
        let one = test_row(1, 1).approx_bytes();
        let c = DocCache::default();
        c.set_capacity(one * 8);
        for n in 0..10 {
            c.put(holder(n), 1, Arc::new(vec![test_row(n, 1), test_row(n + 100, 1)]));
        }
        assert!(c.bytes() <= one * 8, "{} > {}", c.bytes(), one * 8);
        assert!(c.get(holder(0), 1).is_none() && c.get(holder(9), 1).is_some());
    }
}
