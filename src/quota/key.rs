//! Router keys as compiled: who a key is, what it may call, its limits; the
//! set of keys and the one lookup a request makes.
//!
//! Keys are held only as SHA-256 digests. A request's key is hashed once
//! and looked up in a hash map of digests. That lookup is not constant
//! time, and need not be: what its timing could reveal is how a digest of
//! the attacker's own choosing compares with a stored digest, and knowing
//! part of a digest does not help find a key with that digest (SHA-256 is
//! preimage resistant), so there is no byte-by-byte guessing to speed up.
//! The map's SipHash keys are random per process besides.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use super::store::KeyState;

/// A SHA-256 digest.
pub type Digest = [u8; 32];

/// Prefix of the keys `switchyard key new` makes.
pub const KEY_PREFIX: &str = "sk-sy-";

/// Random bytes in a new key (256 bits).
pub const KEY_BYTES: usize = 32;

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> Digest {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        out.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    out
}

/// Reads 64 hex digits (either case) as a digest.
pub fn parse_digest(text: &str) -> Option<Digest> {
    let text = text.trim();
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in text.as_bytes().chunks(2).enumerate() {
        let digit = |b: u8| (b as char).to_digit(16);
        out[i] = (digit(pair[0])? * 16 + digit(pair[1])?) as u8;
    }
    Some(out)
}

/// A fresh key, `sk-sy-` and 32 bytes from the operating system's CSPRNG
/// (ring's `SystemRandom`, `getrandom(2)` on Linux) in hex.
///
/// # Errors
/// When the operating system has no randomness to give.
pub fn new_key() -> Result<String, String> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; KEY_BYTES];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| "the operating system's random number generator failed".to_owned())?;
    Ok(format!("{KEY_PREFIX}{}", hex(&bytes)))
}

/// A model-name pattern: `*` matches any run of characters, `?` one; any
/// other character itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob(pub String);

impl Glob {
    /// Whether `name` matches.
    pub fn matches(&self, name: &str) -> bool {
        glob_match(self.0.as_bytes(), name.as_bytes())
    }
}

/// Iterative wildcard match with one backtrack point (linear in practice,
/// never exponential).
fn glob_match(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, n));
                p += 1;
            }
            Some(&c) if c == b'?' || c == name[n] => {
                p += 1;
                n += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    p = sp + 1;
                    n = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// Requests and tokens per minute of one target (the upstream's own quota).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rates {
    /// Requests per minute.
    pub rpm: Option<u64>,
    /// Tokens per minute.
    pub tpm: Option<u64>,
}

impl Rates {
    /// Whether either is set.
    pub fn any(&self) -> bool {
        self.rpm.is_some() || self.tpm.is_some()
    }
}

/// Spend limits in US dollars, from the models' `pricing`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Budget {
    /// Per UTC day.
    pub daily_usd: Option<f64>,
    /// Per UTC calendar month.
    pub monthly_usd: Option<f64>,
}

/// What one key (or one target) may use per minute and at once.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Limits {
    /// Requests per minute.
    pub rpm: Option<u64>,
    /// Tokens per minute (prompt and completion).
    pub tpm: Option<u64>,
    /// Requests at once.
    pub max_parallel: Option<u32>,
    /// Spend per day and month.
    pub budget: Budget,
}

impl Limits {
    /// Whether any limit is set (a key without limits gets no rate headers).
    pub fn any(&self) -> bool {
        self.rpm.is_some()
            || self.tpm.is_some()
            || self.max_parallel.is_some()
            || self.budget.daily_usd.is_some()
            || self.budget.monthly_usd.is_some()
    }
}

/// One key, compiled.
#[derive(Debug)]
pub struct KeySpec {
    /// Its name (logs, metrics, `/stats`; never the key).
    pub name: String,
    /// Models it may call; empty: all.
    pub models: Vec<Glob>,
    /// Its limits.
    pub limits: Limits,
    /// When it stops working.
    pub expires: Option<SystemTime>,
    /// `labels`, for the access and request logs.
    pub labels: Arc<[(String, String)]>,
    /// Runtime state, kept across reloads by name.
    pub state: Arc<KeyState>,
    /// `switchyard_key_requests_total{key=name}` for each result, in the
    /// order of `telemetry::metrics::KEY_RESULTS`, resolved when the table
    /// compiles (none in tests and benches).
    pub counters: Option<Arc<[prometheus::IntCounter]>>,
}

impl KeySpec {
    /// Whether the key may call `model`.
    pub fn allows(&self, model: &str) -> bool {
        self.models.is_empty() || self.models.iter().any(|g| g.matches(model))
    }

    /// Counts one request of this key with `result` (an index into
    /// `telemetry::metrics::KEY_RESULTS`).
    pub fn count(&self, result: usize) {
        if let Some(counter) = self.counters.as_deref().and_then(|c| c.get(result)) {
            counter.inc();
        }
    }

    /// Whether the key has expired at `now`.
    pub fn expired(&self, now: SystemTime) -> bool {
        self.expires.is_some_and(|at| now >= at)
    }
}

/// Every key of a table: the flat `server.auth.keys` (no limits) and the
/// `keys:` entries, by digest. Empty: the router is open.
#[derive(Debug, Default)]
pub struct KeySet {
    by_digest: HashMap<Digest, Arc<KeySpec>>,
    /// Keys in file order (`keys:` first), for `/stats`.
    pub list: Vec<Arc<KeySpec>>,
}

impl KeySet {
    /// A set of `keys`; a digest given twice keeps the first.
    pub fn new(keys: Vec<(Digest, Arc<KeySpec>)>) -> KeySet {
        let mut set = KeySet::default();
        for (digest, spec) in keys {
            if let std::collections::hash_map::Entry::Vacant(slot) = set.by_digest.entry(digest) {
                slot.insert(spec.clone());
                set.list.push(spec);
            }
        }
        set
    }

    /// Whether no key is configured (the router is open).
    pub fn is_empty(&self) -> bool {
        self.by_digest.is_empty()
    }

    /// The key `presented` is, hashed once.
    pub fn lookup(&self, presented: &str) -> Option<&Arc<KeySpec>> {
        self.by_digest.get(&sha256(presented.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_a_known_string() {
        assert_eq!(
            hex(&sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let d = sha256(b"abc");
        assert_eq!(parse_digest(&hex(&d).to_uppercase()), Some(d));
        assert_eq!(parse_digest("abc"), None);
        assert_eq!(parse_digest(&"g".repeat(64)), None);
    }

    #[test]
    fn new_keys_are_prefixed_long_and_different() {
        let a = new_key().unwrap();
        let b = new_key().unwrap();
        assert!(a.starts_with(KEY_PREFIX));
        assert_eq!(a.len(), KEY_PREFIX.len() + 2 * KEY_BYTES);
        assert_ne!(a, b);
    }

    #[test]
    fn globs() {
        let g = |p: &str, n: &str| Glob(p.into()).matches(n);
        assert!(g("gpt-*", "gpt-4o"));
        assert!(g("gpt-*", "gpt-"));
        assert!(!g("gpt-*", "claude"));
        assert!(g("*mini", "gpt-4o-mini"));
        assert!(g("*-4o-*", "gpt-4o-mini"));
        assert!(g("gpt-?o", "gpt-4o"));
        assert!(!g("gpt-?o", "gpt-44o"));
        assert!(g("exact", "exact"));
        assert!(!g("exact", "exactly"));
        assert!(g("*", ""));
        assert!(g("a*b*c", "aXXbYYc"));
        assert!(!g("a*b*c", "aXXbYY"));
    }
}
