//! A router key's limits and budgets in Redis: admission and settlement,
//! one round trip each.
//!
//! The arithmetic is the in-memory limiter's (a leaky bucket per minute per
//! limit, see `quota::bucket`), run inside Redis by a Lua script on
//! Redis's own clock (`TIME`), so every replica sees one bucket and no
//! replica's clock skew matters. A script is atomic: the checks and the
//! takes of one admission can't interleave with another replica's.

use redis::Script;

use super::{Redis, Unavailable};

/// What a key may do, as the scripts take it.
#[derive(Debug, Clone, Copy)]
pub struct LimitSpec<'a> {
    /// The router key's name (never the key itself).
    pub name: &'a str,
    /// Requests per minute.
    pub rpm: Option<u64>,
    /// Tokens per minute.
    pub tpm: Option<u64>,
    /// Requests at once.
    pub max_parallel: Option<u64>,
    /// Spend per UTC day, US dollars.
    pub daily_usd: Option<f64>,
    /// Spend per UTC month, US dollars.
    pub monthly_usd: Option<f64>,
    /// Today, `YYYY-MM-DD` (UTC): names the day's spend counter.
    pub day: &'a str,
    /// This month, `YYYY-MM` (UTC).
    pub month: &'a str,
}

/// An admitted request: what is left (for the `x-ratelimit-*` headers).
#[derive(Debug, Clone, PartialEq)]
pub struct Admitted {
    /// Requests left now, when the key has `rpm`.
    pub requests_remaining: Option<u64>,
    /// Seconds until the request bucket is empty again.
    pub requests_reset: f64,
    /// Tokens left now, when the key has `tpm`.
    pub tokens_remaining: Option<u64>,
    /// Seconds until the token bucket is empty again.
    pub tokens_reset: f64,
    /// The `max_parallel` slot taken, to give back when the answer ends.
    pub slot: Option<String>,
}

/// A refused request: which limit, and when to try again.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Refused {
    /// `rpm`, `tpm`, `parallel`, `daily` or `monthly`.
    pub limit: &'static str,
    /// Seconds until it would fit (0 for budgets: the caller knows when the
    /// period ends).
    pub retry_after: f64,
}

/// How an answer ended, to settle its admission.
#[derive(Debug, Clone, Default)]
pub struct Settlement {
    /// Tokens reserved at admission.
    pub reserved_tokens: u64,
    /// Tokens the answer used (`None`: unknown, the reservation stands).
    pub used_tokens: Option<u64>,
    /// What it cost, US dollars.
    pub cost_usd: Option<f64>,
    /// The `max_parallel` slot the admission took ([`Admitted::slot`]):
    /// given back.
    pub slot: Option<String>,
}

/// How long a `max_parallel` slot survives a replica that died holding it.
const PARALLEL_TTL_MS: u64 = 15 * 60 * 1000;
/// Spend counters outlive their period by a little (for `/stats` and late
/// settlements), then go.
const DAY_TTL_S: u64 = 3 * 24 * 3600;
const MONTH_TTL_S: u64 = 40 * 24 * 3600;

const BUCKET_LUA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local function read(key, cap)
  if cap <= 0 then return 0 end
  local v = redis.call('HMGET', key, 'level', 'at')
  local level = tonumber(v[1]) or 0
  local at = tonumber(v[2]) or now
  local elapsed = now - at
  if elapsed < 0 then elapsed = 0 end
  level = level - elapsed * cap / 60
  if level < 0 then level = 0 end
  return level
end
local function store(key, cap, level)
  redis.call('HSET', key, 'level', tostring(level), 'at', tostring(now))
  redis.call('PEXPIRE', key, math.ceil(level / (cap / 60) * 1000) + 1000)
end
";

const ADMIT_LUA: &str = r"
local rpm, tpm, tokens = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local maxp, daily, monthly = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local r = read(KEYS[1], rpm)
local k = read(KEYS[2], tpm)
if rpm > 0 and r + 1 - rpm > 1e-9 then
  return {'rpm', tostring((r + 1 - rpm) / (rpm / 60))}
end
local cost = tokens
if tpm > 0 and cost > tpm then cost = tpm end
if tpm > 0 and k + cost - tpm > 1e-9 then
  return {'tpm', tostring((k + cost - tpm) / (tpm / 60))}
end
if maxp > 0 then
  -- Slots are members scored by when they lapse: one a dead replica held
  -- lapses on its own, whatever the traffic.
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
  if redis.call('ZCARD', KEYS[3]) >= maxp then
    return {'parallel', '1'}
  end
end
if daily >= 0 and tonumber(redis.call('GET', KEYS[4]) or '0') >= daily then
  return {'daily', '0'}
end
if monthly >= 0 and tonumber(redis.call('GET', KEYS[5]) or '0') >= monthly then
  return {'monthly', '0'}
end
local out = {'ok', '-1', '0', '-1', '0'}
if rpm > 0 then
  r = r + 1
  store(KEYS[1], rpm, r)
  out[2] = tostring(math.floor(math.max(rpm - r, 0)))
  out[3] = tostring(r / (rpm / 60))
end
if tpm > 0 then
  k = k + cost
  store(KEYS[2], tpm, k)
  out[4] = tostring(math.floor(math.max(tpm - k, 0)))
  out[5] = tostring(k / (tpm / 60))
end
if maxp > 0 then
  redis.call('ZADD', KEYS[3], now + tonumber(ARGV[7]) / 1000, ARGV[8])
  redis.call('PEXPIRE', KEYS[3], ARGV[7])
end
return out
";

const SETTLE_LUA: &str = r"
local tpm, delta, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
if tpm > 0 and delta ~= 0 then
  local level = read(KEYS[1], tpm) + delta
  if level < 0 then level = 0 end
  store(KEYS[1], tpm, level)
end
if ARGV[4] ~= '' then
  redis.call('ZREM', KEYS[2], ARGV[4])
end
if cost > 0 then
  redis.call('INCRBYFLOAT', KEYS[3], ARGV[3])
  redis.call('EXPIRE', KEYS[3], ARGV[5])
  redis.call('INCRBYFLOAT', KEYS[4], ARGV[3])
  redis.call('EXPIRE', KEYS[4], ARGV[6])
end
return 1
";

fn scripts() -> &'static (Script, Script) {
    static SCRIPTS: std::sync::OnceLock<(Script, Script)> = std::sync::OnceLock::new();
    SCRIPTS.get_or_init(|| {
        (
            Script::new(&format!("{BUCKET_LUA}{ADMIT_LUA}")),
            Script::new(&format!("{BUCKET_LUA}{SETTLE_LUA}")),
        )
    })
}

/// A fresh slot name: unique per admission across replicas.
fn slot_id() -> String {
    let mut bytes = [0u8; 12];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A limit that is not set, as the scripts read it.
fn or_off(limit: Option<u64>) -> u64 {
    limit.unwrap_or(0)
}

fn budget(limit: Option<f64>) -> String {
    limit.map_or_else(|| "-1".to_owned(), |usd| usd.to_string())
}

impl Redis {
    fn limit_keys(&self, spec: &LimitSpec<'_>) -> [String; 5] {
        let tag = format!("{{k:{}}}", spec.name);
        [
            self.key(&format!("{tag}:rpm")),
            self.key(&format!("{tag}:tpm")),
            self.key(&format!("{tag}:parallel")),
            self.key(&format!("{tag}:spend:d:{}", spec.day)),
            self.key(&format!("{tag}:spend:m:{}", spec.month)),
        ]
    }

    /// Admits one request of `spec`'s key reserving `tokens` (one round
    /// trip), or says which limit refuses it.
    ///
    /// # Errors
    /// [`Unavailable`] when Redis can't be used: the caller applies `on_error`.
    pub async fn admit(
        &self,
        spec: &LimitSpec<'_>,
        tokens: u64,
    ) -> Result<Result<Admitted, Refused>, Unavailable> {
        let keys = self.limit_keys(spec);
        let slot = spec.max_parallel.map(|_| slot_id());
        let slot_arg = slot.clone().unwrap_or_default();
        let reply: Vec<String> = self
            .run("admit", |mut conn| async move {
                let (admit, _) = scripts();
                let mut call = admit.prepare_invoke();
                for key in &keys {
                    call.key(key);
                }
                call.arg(or_off(spec.rpm))
                    .arg(or_off(spec.tpm))
                    .arg(tokens)
                    .arg(or_off(spec.max_parallel))
                    .arg(budget(spec.daily_usd))
                    .arg(budget(spec.monthly_usd))
                    .arg(PARALLEL_TTL_MS)
                    .arg(&slot_arg);
                call.invoke_async(&mut conn).await
            })
            .await?;
        let number = |i: usize| {
            reply
                .get(i)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        let count = |i: usize| Some(number(i)).filter(|n| *n >= 0.0).map(|n| n as u64);
        let limit = match reply.first().map(String::as_str) {
            Some("ok") => {
                return Ok(Ok(Admitted {
                    requests_remaining: count(1),
                    requests_reset: number(2),
                    tokens_remaining: count(3),
                    tokens_reset: number(4),
                    slot,
                }))
            }
            Some("rpm") => "rpm",
            Some("tpm") => "tpm",
            Some("parallel") => "parallel",
            Some("daily") => "daily",
            Some("monthly") => "monthly",
            other => return Err(Unavailable(format!("unexpected admission reply {other:?}"))),
        };
        Ok(Err(Refused {
            limit,
            retry_after: number(1),
        }))
    }

    /// Settles an admission once its answer ended: the token reservation
    /// corrected by what was used, the `max_parallel` slot given back, the
    /// cost added to the day's and the month's spend.
    ///
    /// # Errors
    /// [`Unavailable`] when Redis can't be used (the settlement is lost;
    /// the reservation stands and the slot expires on its own).
    pub async fn settle(
        &self,
        spec: &LimitSpec<'_>,
        settlement: &Settlement,
    ) -> Result<(), Unavailable> {
        let [_, tpm, parallel, day, month] = self.limit_keys(spec);
        let delta = settlement
            .used_tokens
            .map_or(0, |used| used as i64 - settlement.reserved_tokens as i64);
        let cost = settlement
            .cost_usd
            .filter(|c| c.is_finite() && *c > 0.0)
            .unwrap_or(0.0);
        let _: i64 = self
            .run("settle", |mut conn| async move {
                let (_, settle) = scripts();
                settle
                    .key(&tpm)
                    .key(&parallel)
                    .key(&day)
                    .key(&month)
                    .arg(or_off(spec.tpm))
                    .arg(delta)
                    .arg(cost.to_string())
                    .arg(settlement.slot.as_deref().unwrap_or(""))
                    .arg(DAY_TTL_S)
                    .arg(MONTH_TTL_S)
                    .invoke_async(&mut conn)
                    .await
            })
            .await?;
        Ok(())
    }

    /// The key's spend today and this month, US dollars.
    ///
    /// # Errors
    /// [`Unavailable`] when Redis can't be used.
    pub async fn spend(&self, spec: &LimitSpec<'_>) -> Result<(f64, f64), Unavailable> {
        let [.., day, month] = self.limit_keys(spec);
        let (d, m): (Option<f64>, Option<f64>) = self
            .run("spend", |mut conn| async move {
                redis::pipe()
                    .get(&day)
                    .get(&month)
                    .query_async(&mut conn)
                    .await
            })
            .await?;
        Ok((d.unwrap_or(0.0), m.unwrap_or(0.0)))
    }
}
