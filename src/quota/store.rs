//! The limiter's state and admission: per key, in this process's memory.
//!
//! The interface is two calls: [`Store::admit`] when a request for a model
//! is about to be forwarded (checks expiry-independent limits: budget,
//! parallel, requests and tokens per minute; reserves; returns a
//! [`Permit`] or a [`Denied`]), and [`Permit::settle`] when the answer ends
//! (reconciles the token reservation with the usage observed, charges the
//! spend, releases the parallel slot; dropping the permit releases too).
//! A shared store (Redis, for several routers) goes behind the same two
//! calls: `admit` becomes one atomic script over the same bucket arithmetic
//! (`bucket.rs` is pure), `settle` an asynchronous increment.
//!
//! State is created only for keys the config names (a request with an
//! unknown key is refused before any state exists), one small lock per key
//! (never a global lock on the request path), and kept by key name across
//! reloads. Spend is persisted to `state.file` (atomic write: temporary
//! file, then rename) so a restart does not reset budgets.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use super::bucket::{Bucket, Wait};
use super::calendar;
use super::key::{KeySpec, Limits, Rates};

/// Largest state file read, in bytes (a few hundred bytes per key: far
/// more than the most keys a config may declare need).
pub const MAX_STATE_BYTES: u64 = 8 << 20;

/// Seconds on the process's monotonic clock.
pub fn clock() -> f64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_secs_f64()
}

/// Spend in one UTC day and one UTC month.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Spend {
    /// Day number (days since 1970-01-01) `day_usd` is for.
    pub day: i64,
    /// Spent that day.
    pub day_usd: f64,
    /// Month number (months since January 1970) `month_usd` is for.
    pub month: i64,
    /// Spent that month.
    pub month_usd: f64,
}

impl Spend {
    /// Starts a new day or month when `today` is past the recorded ones.
    fn roll(&mut self, today: i64) {
        if self.day != today {
            self.day = today;
            self.day_usd = 0.0;
        }
        let month = calendar::month(today);
        if self.month != month {
            self.month = month;
            self.month_usd = 0.0;
        }
    }
}

/// One key's runtime state.
#[derive(Debug, Default)]
pub struct KeyState {
    inner: Mutex<Inner>,
    dirty: AtomicBool,
}

#[derive(Debug, Default)]
struct Inner {
    requests: Bucket,
    tokens: Bucket,
    in_flight: u32,
    spend: Spend,
    admitted: u64,
    limited: u64,
    tokens_used: u64,
}

impl KeyState {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a request admitted (or refused) elsewhere — by the limits
    /// shared through Redis — so this replica's `/stats` still shows it.
    pub fn note_shared(&self, admitted: bool) {
        let mut s = self.lock();
        if admitted {
            s.admitted += 1;
        } else {
            s.limited += 1;
        }
    }

    /// Adds the tokens a request admitted elsewhere used.
    pub fn note_shared_tokens(&self, used: u64) {
        self.lock().tokens_used += used;
    }
}

/// `limit`, `remaining` and seconds to `reset` of one rate limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Per minute.
    pub limit: u64,
    /// What fits now.
    pub remaining: u64,
    /// Seconds until the bucket is empty.
    pub reset: f64,
}

/// What the `x-ratelimit-*` headers say.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RateHeaders {
    /// Requests per minute, when limited.
    pub requests: Option<Rate>,
    /// Tokens per minute, when limited.
    pub tokens: Option<Rate>,
}

/// Which budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    /// Resets at 00:00 UTC.
    Daily,
    /// Resets on the first of the month, 00:00 UTC.
    Monthly,
}

/// Why a request was not admitted.
#[derive(Debug, Clone, PartialEq)]
pub enum Reason {
    /// `rpm` reached.
    Requests {
        /// Seconds until one more fits.
        wait: f64,
    },
    /// `tpm` reached (counting this request's reservation).
    Tokens {
        /// Seconds until it fits.
        wait: f64,
        /// Tokens reserved for this request.
        needed: u64,
    },
    /// `max_parallel` requests already running.
    Parallel {
        /// The limit.
        limit: u32,
    },
    /// A budget is spent.
    Budget {
        /// Which.
        period: Period,
        /// The budget, in US dollars.
        limit_usd: f64,
        /// When it resets, `YYYY-MM-DD` (00:00 UTC).
        resets_on: String,
        /// Seconds until then.
        resets_in: u64,
    },
}

impl Reason {
    /// Seconds the client should wait (`retry-after`), at least 1.
    pub fn retry_after(&self) -> u64 {
        let secs = match self {
            // Less a hair, so float error does not add a whole second.
            Reason::Requests { wait } | Reason::Tokens { wait, .. } => (wait - 1e-6).ceil() as u64,
            // A running request ends when it ends; a second is a fair poll.
            Reason::Parallel { .. } => 1,
            Reason::Budget { resets_in, .. } => *resets_in,
        };
        secs.max(1)
    }
}

/// A request refused by a limit.
#[derive(Debug, Clone, PartialEq)]
pub struct Denied {
    /// Which limit, and for how long.
    pub reason: Reason,
    /// The key's rate limits as they stand.
    pub headers: RateHeaders,
}

/// Where the runtime state of every key lives; one per server, kept across
/// reloads (in `upstream::Registry`).
#[derive(Debug, Default)]
pub struct Store {
    keys: Mutex<HashMap<String, Arc<KeyState>>>,
    file: Mutex<Option<PathBuf>>,
    /// Whether any key has a budget (only then is the state file written).
    persist: AtomicBool,
}

impl Store {
    fn keys(&self) -> MutexGuard<'_, HashMap<String, Arc<KeyState>>> {
        self.keys.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The state of key `name` (the same object across reloads).
    pub fn state(&self, name: &str) -> Arc<KeyState> {
        self.keys().entry(name.to_owned()).or_default().clone()
    }

    /// Forgets keys no longer configured; `persist`: whether any has a budget.
    pub fn retain(&self, names: &[&str], persist: bool) {
        let names: std::collections::HashSet<&str> = names.iter().copied().collect();
        self.keys().retain(|name, _| names.contains(name.as_str()));
        self.persist.store(persist, Ordering::Relaxed);
    }

    /// Uses `path` as the state file; the first time a path is set, the
    /// spend it holds is restored to the keys already known (call it after
    /// the table that names them has compiled).
    ///
    /// # Errors
    /// Why an existing file could not be read (the store keeps no spend from it).
    pub fn open(&self, path: &Path) -> Result<(), String> {
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        if file.as_deref() == Some(path) {
            return Ok(());
        }
        *file = Some(path.to_owned());
        drop(file);
        let saved = match read_state(path) {
            Ok(Some(saved)) => saved,
            Ok(None) => return Ok(()),
            Err(err) => return Err(err),
        };
        // Only keys the config names (their state exists by now): a name
        // the file has and the config does not is not brought back.
        let keys = self.keys();
        for (name, spend) in saved.keys {
            if let Some(state) = keys.get(&name) {
                state.lock().spend = spend;
            }
        }
        Ok(())
    }

    /// Writes the spend of every key to the state file when a budget exists
    /// and something changed since the last write (`force`: even if not).
    ///
    /// # Errors
    /// Why the file could not be written.
    pub fn save(&self, force: bool) -> Result<(), String> {
        if !self.persist.load(Ordering::Relaxed) {
            return Ok(());
        }
        let Some(path) = self.file.lock().unwrap_or_else(|e| e.into_inner()).clone() else {
            return Ok(());
        };
        let mut saved = Saved {
            version: 1,
            keys: std::collections::BTreeMap::new(),
        };
        let mut changed = force;
        for (name, state) in self.keys().iter() {
            changed |= state.dirty.swap(false, Ordering::Relaxed);
            saved.keys.insert(name.clone(), state.lock().spend);
        }
        if !changed {
            return Ok(());
        }
        write_atomic(
            &path,
            &serde_json::to_vec_pretty(&saved).unwrap_or_default(),
        )
        .map_err(|err| format!("{}: {err}", path.display()))
    }

    /// Admits a request of key `spec` expected to use `tokens` tokens, now.
    /// Every admission goes through the store, so a shared store can take
    /// this call over; in memory the state is the one `spec` holds (from
    /// [`Store::state`]).
    ///
    /// # Errors
    /// [`Denied`] when a limit says no; nothing is reserved then.
    pub fn admit(&self, spec: &KeySpec, tokens: u64) -> Result<Permit, Denied> {
        admit_at(spec, tokens, clock(), SystemTime::now())
    }
}

/// [`Store::admit`] at monotonic `now` and wall-clock `wall`.
///
/// # Errors
/// As [`Store::admit`].
pub fn admit_at(spec: &KeySpec, tokens: u64, now: f64, wall: SystemTime) -> Result<Permit, Denied> {
    let limits = spec.limits;
    let mut s = spec.state.lock();
    let today = calendar::day(wall);
    s.spend.roll(today);
    let refuse = |s: &mut Inner, reason: Reason| {
        s.limited += 1;
        let headers = headers(s, &limits, now);
        Err(Denied { reason, headers })
    };
    let budget = limits.budget;
    if let Some(limit) = budget.daily_usd.filter(|max| s.spend.day_usd >= *max) {
        let next = today + 1;
        return refuse(
            &mut s,
            Reason::Budget {
                period: Period::Daily,
                limit_usd: limit,
                resets_on: calendar::date(next),
                resets_in: calendar::until_day(wall, next).as_secs(),
            },
        );
    }
    if let Some(limit) = budget.monthly_usd.filter(|max| s.spend.month_usd >= *max) {
        let next = calendar::next_month_start(today);
        return refuse(
            &mut s,
            Reason::Budget {
                period: Period::Monthly,
                limit_usd: limit,
                resets_on: calendar::date(next),
                resets_in: calendar::until_day(wall, next).as_secs(),
            },
        );
    }
    if let Some(limit) = limits.max_parallel.filter(|max| s.in_flight >= *max) {
        return refuse(&mut s, Reason::Parallel { limit });
    }
    // Both buckets are checked before either is charged.
    let mut requests = s.requests;
    if let Some(rpm) = limits.rpm {
        if let Err(Wait(wait)) = requests.take(rpm, 1.0, now) {
            return refuse(&mut s, Reason::Requests { wait });
        }
    }
    let mut reserved = 0;
    let mut token_bucket = s.tokens;
    if let Some(tpm) = limits.tpm {
        reserved = tokens.min(tpm);
        if let Err(Wait(wait)) = token_bucket.take(tpm, reserved as f64, now) {
            return refuse(
                &mut s,
                Reason::Tokens {
                    wait,
                    needed: reserved,
                },
            );
        }
    }
    s.requests = requests;
    s.tokens = token_bucket;
    s.in_flight += 1;
    s.admitted += 1;
    let headers = headers(&mut s, &limits, now);
    drop(s);
    Ok(Permit {
        state: spec.state.clone(),
        limits,
        reserved,
        headers,
    })
}

fn headers(s: &mut Inner, limits: &Limits, now: f64) -> RateHeaders {
    RateHeaders {
        requests: limits.rpm.map(|limit| Rate {
            limit,
            remaining: s.requests.remaining(limit, now),
            reset: s.requests.reset_in(limit, now),
        }),
        tokens: limits.tpm.map(|limit| Rate {
            limit,
            remaining: s.tokens.remaining(limit, now),
            reset: s.tokens.reset_in(limit, now),
        }),
    }
}

/// An admitted request's hold on its key: the parallel slot and the token
/// reservation. Settled with the usage when the answer ends; dropping it
/// releases the slot (an unsettled reservation stays charged: the estimate
/// is the best figure there is).
#[derive(Debug)]
pub struct Permit {
    state: Arc<KeyState>,
    limits: Limits,
    reserved: u64,
    /// The rate limits after this admission, for the answer's headers.
    pub headers: RateHeaders,
}

impl Permit {
    /// Reconciles the reservation with `tokens` used (when known) and
    /// charges `cost_usd` (when the model has pricing).
    pub fn settle_at(
        &mut self,
        tokens: Option<u64>,
        cost_usd: Option<f64>,
        now: f64,
        wall: SystemTime,
    ) {
        let mut s = self.state.lock();
        if let Some(used) = tokens {
            s.tokens_used += used;
            if let Some(tpm) = self.limits.tpm {
                s.tokens
                    .adjust(tpm, used as f64 - self.reserved as f64, now);
            }
            self.reserved = used;
        }
        if let Some(cost) = cost_usd.filter(|c| c.is_finite() && *c > 0.0) {
            s.spend.roll(calendar::day(wall));
            s.spend.day_usd += cost;
            s.spend.month_usd += cost;
            self.state.dirty.store(true, Ordering::Relaxed);
        }
    }

    /// [`Permit::settle_at`] now.
    pub fn settle(&mut self, tokens: Option<u64>, cost_usd: Option<f64>) {
        self.settle_at(tokens, cost_usd, clock(), SystemTime::now());
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut s = self.state.lock();
        s.in_flight = s.in_flight.saturating_sub(1);
    }
}

/// One key's usage, for `/stats` and the status page.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct KeyUsage {
    /// Requests admitted since start.
    pub admitted: u64,
    /// Requests refused by a limit since start.
    pub limited: u64,
    /// Requests running now.
    pub in_flight: u32,
    /// Tokens observed since start.
    pub tokens: u64,
    /// Spend today and this month (UTC).
    pub spend: Spend,
    /// The rate limits now.
    pub rates: RateHeaders,
}

/// `spec`'s usage now.
pub fn usage(spec: &KeySpec) -> KeyUsage {
    let mut s = spec.state.lock();
    s.spend.roll(calendar::day(SystemTime::now()));
    let rates = headers(&mut s, &spec.limits, clock());
    KeyUsage {
        admitted: s.admitted,
        limited: s.limited,
        in_flight: s.in_flight,
        tokens: s.tokens_used,
        spend: s.spend,
        rates,
    }
}

#[derive(Serialize, Deserialize)]
struct Saved {
    version: u32,
    keys: std::collections::BTreeMap<String, Spend>,
}

fn read_state(path: &Path) -> Result<Option<Saved>, String> {
    use std::io::Read;
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(format!("{}: cannot read: {err}", path.display())),
    };
    let mut bytes = Vec::new();
    file.take(MAX_STATE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|err| format!("{}: cannot read: {err}", path.display()))?;
    if bytes.len() as u64 > MAX_STATE_BYTES {
        return Err(format!(
            "{}: larger than {} MiB; not read",
            path.display(),
            MAX_STATE_BYTES >> 20
        ));
    }
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|err| format!("{}: not a Switchyard state file: {err}", path.display()))
}

/// Writes `bytes` to a temporary file beside `path`, syncs it, and renames
/// it over `path`: a reader (or a crash) sees the old file or the new one.
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)
}

/// The per-minute buckets of one target (`models.<m>.targets[].rpm`/`tpm`),
/// kept with the target's runtime state across reloads.
#[derive(Debug, Default)]
pub struct RateState {
    buckets: Mutex<(Bucket, Bucket)>,
}

impl RateState {
    /// Takes one request and `tokens` when both fit; else the seconds until
    /// they would (nothing is taken then).
    pub fn take(&self, rates: Rates, tokens: u64) -> Result<(), f64> {
        self.take_at(rates, tokens, clock())
    }

    /// [`RateState::take`] at monotonic `now`.
    pub fn take_at(&self, rates: Rates, tokens: u64, now: f64) -> Result<(), f64> {
        let mut guard = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let (mut requests, mut token_bucket) = *guard;
        if let Some(rpm) = rates.rpm {
            requests.take(rpm, 1.0, now).map_err(|Wait(w)| w)?;
        }
        if let Some(tpm) = rates.tpm {
            token_bucket
                .take(tpm, tokens.min(tpm) as f64, now)
                .map_err(|Wait(w)| w)?;
        }
        *guard = (requests, token_bucket);
        Ok(())
    }

    /// Whether one more request (of no tokens) would fit now.
    pub fn has_room(&self, rates: Rates) -> bool {
        let now = clock();
        let mut guard = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let (requests, tokens) = &mut *guard;
        rates
            .rpm
            .is_none_or(|rpm| requests.remaining(rpm, now) >= 1)
            && rates.tpm.is_none_or(|tpm| tokens.remaining(tpm, now) >= 1)
    }

    /// Replaces a reservation of `reserved` tokens by the `used` ones.
    pub fn reconcile(&self, rates: Rates, reserved: u64, used: u64) {
        if let Some(tpm) = rates.tpm {
            let mut guard = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
            guard
                .1
                .adjust(tpm, used as f64 - reserved.min(tpm) as f64, clock());
        }
    }
}

/// How often spend is written to the state file while the server runs.
pub const SAVE_EVERY: Duration = Duration::from_secs(10);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quota::key::Budget;

    fn key(limits: Limits) -> KeySpec {
        KeySpec {
            name: "k".into(),
            models: Vec::new(),
            limits,
            expires: None,
            labels: Arc::new([]),
            state: Arc::default(),
            counters: None,
        }
    }

    const WALL: SystemTime = SystemTime::UNIX_EPOCH;

    #[test]
    fn rpm_admits_the_limit_then_refuses_with_the_wait() {
        let k = key(Limits {
            rpm: Some(10),
            ..Limits::default()
        });
        let permits: Vec<_> = (0..10)
            .map(|_| admit_at(&k, 0, 0.0, WALL).unwrap())
            .collect();
        assert_eq!(permits[9].headers.requests.unwrap().remaining, 0);
        let denied = admit_at(&k, 0, 1.0, WALL).unwrap_err();
        assert_eq!(denied.reason.retry_after(), 5);
        assert_eq!(denied.headers.requests.unwrap().limit, 10);
        assert!(admit_at(&k, 0, 6.0, WALL).is_ok());
    }

    #[test]
    fn max_parallel_is_released_when_the_permit_goes() {
        let k = key(Limits {
            max_parallel: Some(2),
            ..Limits::default()
        });
        let a = admit_at(&k, 0, 0.0, WALL).unwrap();
        let _b = admit_at(&k, 0, 0.0, WALL).unwrap();
        assert!(matches!(
            admit_at(&k, 0, 0.0, WALL).unwrap_err().reason,
            Reason::Parallel { limit: 2 }
        ));
        drop(a);
        assert!(admit_at(&k, 0, 0.0, WALL).is_ok());
    }

    #[test]
    fn tpm_reserves_then_reconciles_with_the_usage() {
        let k = key(Limits {
            tpm: Some(1000),
            ..Limits::default()
        });
        let mut p = admit_at(&k, 600, 0.0, WALL).unwrap();
        // 600 reserved: another 600 does not fit.
        assert!(matches!(
            admit_at(&k, 600, 0.0, WALL).unwrap_err().reason,
            Reason::Tokens { needed: 600, .. }
        ));
        // It used 100: now it does.
        p.settle_at(Some(100), None, 0.0, WALL);
        assert!(admit_at(&k, 600, 0.0, WALL).is_ok());
        assert_eq!(usage(&k).tokens, 100);
    }

    #[test]
    fn a_spent_budget_refuses_until_the_next_day() {
        let k = key(Limits {
            budget: Budget {
                daily_usd: Some(1.0),
                monthly_usd: Some(10.0),
            },
            ..Limits::default()
        });
        let noon = WALL + Duration::from_secs(12 * 3600);
        let mut p = admit_at(&k, 0, 0.0, noon).unwrap();
        p.settle_at(None, Some(1.5), 0.0, noon);
        drop(p);
        let denied = admit_at(&k, 0, 0.0, noon).unwrap_err();
        let Reason::Budget {
            period,
            resets_on,
            resets_in,
            ..
        } = &denied.reason
        else {
            panic!("{denied:?}")
        };
        assert_eq!(*period, Period::Daily);
        assert_eq!(resets_on, "1970-01-02");
        assert_eq!(*resets_in, 12 * 3600);
        let tomorrow = WALL + Duration::from_secs(86_400 + 60);
        assert!(admit_at(&k, 0, 0.0, tomorrow).is_ok());
        assert!((usage(&k).spend.month_usd - 1.5).abs() < 1e-9 || usage(&k).spend.month_usd == 0.0);
    }

    #[test]
    fn a_monthly_budget_resets_on_the_first() {
        let k = key(Limits {
            budget: Budget {
                daily_usd: None,
                monthly_usd: Some(2.0),
            },
            ..Limits::default()
        });
        let jan31 = WALL + Duration::from_secs(30 * 86_400);
        admit_at(&k, 0, 0.0, jan31)
            .unwrap()
            .settle_at(None, Some(2.0), 0.0, jan31);
        let Reason::Budget {
            period, resets_on, ..
        } = admit_at(&k, 0, 0.0, jan31).unwrap_err().reason
        else {
            panic!()
        };
        assert_eq!(
            (period, resets_on.as_str()),
            (Period::Monthly, "1970-02-01")
        );
        let feb1 = WALL + Duration::from_secs(31 * 86_400);
        assert!(admit_at(&k, 0, 0.0, feb1).is_ok());
    }

    #[test]
    fn a_target_rate_takes_nothing_when_either_bucket_is_full() {
        let state = RateState::default();
        let rates = Rates {
            rpm: Some(2),
            tpm: Some(100),
        };
        assert!(state.take_at(rates, 60, 0.0).is_ok());
        // 60 + 60 is over the tpm: refused, and the request is not charged.
        assert!(state.take_at(rates, 60, 0.0).is_err());
        state.reconcile(rates, 60, 10);
        assert!(state.take_at(rates, 60, 0.0).is_ok());
        // Two requests were admitted: the rpm is full now.
        let wait = state.take_at(rates, 0, 0.0).unwrap_err();
        assert!((wait - 30.0).abs() < 1e-6, "{wait}");
    }

    #[test]
    fn spend_survives_a_save_and_an_open() {
        let dir = std::env::temp_dir().join(format!("switchyard-quota-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("state.json");
        let _ = std::fs::remove_file(&path);
        let store = Store::default();
        store.open(&path).unwrap();
        store.retain(&["a"], true);
        let spec = KeySpec {
            state: store.state("a"),
            ..key(Limits::default())
        };
        let mut p = store.admit(&spec, 0).unwrap();
        p.settle(None, Some(0.25));
        store.save(false).unwrap();
        let again = Store::default();
        let restored = KeySpec {
            state: again.state("a"),
            ..key(Limits::default())
        };
        again.open(&path).unwrap();
        assert!((usage(&restored).spend.day_usd - 0.25).abs() < 1e-12);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
