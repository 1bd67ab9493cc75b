//! The in-memory store: an LRU bounded by bytes, entries with a TTL.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use lru::LruCache;

use super::Key;

/// `cache.max_bytes` by default.
pub const DEFAULT_MAX_BYTES: usize = 64 << 20;
/// `cache.max_entry_bytes` by default: larger answers are not kept.
pub const DEFAULT_MAX_ENTRY_BYTES: usize = 1 << 20;

/// One cached answer, in the forms it was seen in.
#[derive(Debug, Clone, Default)]
pub struct Entry {
    /// The JSON answer to a non-streamed request.
    pub json: Option<Bytes>,
    /// The SSE answer to a streamed request, and whether it carries a usage
    /// chunk (the client asked for `include_usage`).
    pub sse: Option<(Bytes, bool)>,
}

impl Entry {
    fn bytes(&self) -> usize {
        self.json.as_ref().map_or(0, Bytes::len) + self.sse.as_ref().map_or(0, |(b, _)| b.len())
    }
}

struct Slot {
    entry: Entry,
    expires: Instant,
}

struct Inner {
    lru: LruCache<Key, Slot>,
    bytes: usize,
}

/// The cache: shared by every request, kept across reloads.
pub struct Cache {
    inner: Mutex<Inner>,
    /// Bounded by bytes, so the LRU itself is unbounded in count.
    max_bytes: std::sync::atomic::AtomicUsize,
}

/// Bytes counted per entry on top of its answers (key, bookkeeping).
const ENTRY_OVERHEAD: usize = 128;

impl Cache {
    /// An empty cache holding at most `max_bytes`.
    pub fn new(max_bytes: usize) -> Cache {
        Cache {
            inner: Mutex::new(Inner {
                lru: LruCache::unbounded(),
                bytes: 0,
            }),
            max_bytes: max_bytes.into(),
        }
    }

    /// Changes the bound (a reload); entries over it are evicted at the
    /// next store.
    pub fn set_max_bytes(&self, max_bytes: usize) {
        self.max_bytes
            .store(max_bytes, std::sync::atomic::Ordering::Relaxed);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the map torn (each
        // operation is a single map call plus a counter), so a poisoned
        // lock is used as it is.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The entry for `key`, unless it expired (then it is dropped).
    pub fn get(&self, key: &Key) -> Option<Entry> {
        let mut inner = self.lock();
        let now = Instant::now();
        match inner.lru.get(key) {
            Some(slot) if slot.expires > now => Some(slot.entry.clone()),
            Some(_) => {
                if let Some(slot) = inner.lru.pop(key) {
                    inner.bytes -= slot.entry.bytes() + ENTRY_OVERHEAD;
                }
                None
            }
            None => None,
        }
    }

    /// Stores an answer form for `key` for `ttl`, beside the other form if
    /// one is kept; evicts least recently used entries to stay in bounds.
    /// Returns the entry as kept (`None` if it is larger than the cache).
    pub fn put(&self, key: Key, ttl: Duration, update: impl FnOnce(&mut Entry)) -> Option<Entry> {
        let max = self.max_bytes.load(std::sync::atomic::Ordering::Relaxed);
        let mut inner = self.lock();
        let now = Instant::now();
        let mut entry = match inner.lru.pop(&key) {
            Some(slot) => {
                inner.bytes -= slot.entry.bytes() + ENTRY_OVERHEAD;
                if slot.expires > now {
                    slot.entry
                } else {
                    Entry::default()
                }
            }
            None => Entry::default(),
        };
        update(&mut entry);
        let size = entry.bytes() + ENTRY_OVERHEAD;
        if size > max {
            return None;
        }
        let kept = entry.clone();
        while inner.bytes + size > max {
            match inner.lru.pop_lru() {
                Some((_, slot)) => inner.bytes -= slot.entry.bytes() + ENTRY_OVERHEAD,
                None => break,
            }
        }
        inner.bytes += size;
        inner.lru.put(
            key,
            Slot {
                entry,
                expires: now + ttl,
            },
        );
        Some(kept)
    }

    /// Entries and bytes held now.
    pub fn size(&self) -> (usize, usize) {
        let inner = self.lock();
        (inner.lru.len(), inner.bytes)
    }
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (entries, bytes) = self.size();
        f.debug_struct("Cache")
            .field("entries", &entries)
            .field("bytes", &bytes)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(n: usize) -> impl FnOnce(&mut Entry) {
        move |e: &mut Entry| e.json = Some(Bytes::from(vec![b'x'; n]))
    }

    #[test]
    fn entries_expire_and_forms_are_kept_side_by_side() {
        let cache = Cache::new(1 << 20);
        let key = [1u8; 32];
        cache.put(key, Duration::from_secs(60), json(10));
        cache.put(key, Duration::from_secs(60), |e| {
            e.sse = Some((Bytes::from_static(b"data: x\n\n"), false))
        });
        let entry = cache.get(&key).expect("kept");
        assert!(entry.json.is_some() && entry.sse.is_some());
        cache.put([2u8; 32], Duration::ZERO, json(10));
        assert!(cache.get(&[2u8; 32]).is_none(), "expired");
        assert_eq!(cache.size().0, 1);
    }

    #[test]
    fn the_least_recently_used_go_first_when_bytes_run_out() {
        let cache = Cache::new(3 * (1000 + ENTRY_OVERHEAD));
        let ttl = Duration::from_secs(60);
        for k in 0..3u8 {
            cache.put([k; 32], ttl, json(1000));
        }
        assert!(cache.get(&[0u8; 32]).is_some()); // 0 is now the most recent
        cache.put([3u8; 32], ttl, json(1000));
        assert!(
            cache.get(&[1u8; 32]).is_none(),
            "1 was the least recently used"
        );
        assert!(cache.get(&[0u8; 32]).is_some());
        assert!(cache.size().1 <= 3 * (1000 + ENTRY_OVERHEAD));
        cache.put([9u8; 32], ttl, json(10_000));
        assert!(
            cache.get(&[9u8; 32]).is_none(),
            "larger than the whole cache"
        );
    }
}
