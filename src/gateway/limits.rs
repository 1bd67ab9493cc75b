//! A key's permissions and limits, applied to one model request: may it
//! call the model, is there room under its limits, and the
//! `x-ratelimit-*` headers its answers carry.
//!
//! Admission happens once the body is read and the model resolved, so the
//! token estimate can read the body. The permit rides on the access record
//! and is settled with the observed usage when the answer ends
//! (`telemetry::access_log::Settle`), which releases the parallel slot and
//! corrects the token reservation.

use std::sync::Arc;

use http::{HeaderMap, HeaderName, HeaderValue};

use super::error::GatewayError;
use crate::openai::Usage;
use crate::quota::store::Rate;
use crate::quota::{
    calendar, estimate_tokens, Denied, KeySpec, Period, Permit, RateHeaders, Reason, Store,
};
use crate::shared::{Admitted, LimitSpec, OnError, Redis, Refused, Settlement};
use crate::telemetry::access_log::{AccessRecord, Settle};

/// The permit, carried by the access record until the answer ends.
struct Hold(Permit);

impl Settle for Hold {
    fn settle(&mut self, usage: Option<Usage>, cost_usd: Option<f64>) {
        let tokens = usage.map(|u| u.total_tokens.max(u.prompt_tokens + u.completion_tokens));
        self.0.settle(tokens, cost_usd);
    }
}

/// An admission in Redis, settled there when the answer ends.
struct RedisHold {
    redis: Arc<Redis>,
    key: Arc<KeySpec>,
    name: String,
    limits: crate::quota::Limits,
    day: String,
    month: String,
    reserved: u64,
    slot: Option<String>,
}

impl Settle for RedisHold {
    fn settle(&mut self, usage: Option<Usage>, cost_usd: Option<f64>) {
        let used = usage.map(|u| u.total_tokens.max(u.prompt_tokens + u.completion_tokens));
        if let Some(used) = used {
            self.key.state.note_shared_tokens(used);
        }
        let settlement = Settlement {
            reserved_tokens: self.reserved,
            used_tokens: used,
            cost_usd,
            slot: self.slot.take(),
        };
        let (redis, name, limits) = (self.redis.clone(), self.name.clone(), self.limits);
        let (day, month) = (self.day.clone(), self.month.clone());
        // The answer has ended; its settlement need not hold anything up.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let spec = spec(&name, &limits, &day, &month);
                if let Err(err) = redis.settle(&spec, &settlement).await {
                    tracing::warn!(key = %name, error = %err, "the request's tokens and spend were not recorded in Redis");
                }
            });
        }
    }
}

fn spec<'a>(
    name: &'a str,
    limits: &crate::quota::Limits,
    day: &'a str,
    month: &'a str,
) -> LimitSpec<'a> {
    LimitSpec {
        name,
        rpm: limits.rpm,
        tpm: limits.tpm,
        max_parallel: limits.max_parallel.map(u64::from),
        daily_usd: limits.budget.daily_usd,
        monthly_usd: limits.budget.monthly_usd,
        day,
        month,
    }
}

/// Checks that `key` may call `model` and admits the request under its
/// limits — in Redis when `state.redis` is set (shared by every replica),
/// else in this process. Returns the headers every answer to it carries
/// (`None` for a key without rate limits, or no key on an open router).
///
/// # Errors
/// [`GatewayError::ModelNotAllowed`], [`GatewayError::RateLimited`], or
/// [`GatewayError::LimitsUnavailable`] while Redis is away with
/// `on_error: fail_closed`.
pub(super) async fn admit(
    store: &Store,
    redis: Option<&Arc<Redis>>,
    key: Option<&Arc<KeySpec>>,
    model: &str,
    body: &[u8],
    record: &mut AccessRecord,
) -> Result<Option<RateHeaders>, GatewayError> {
    let Some(key) = key else {
        return Ok(None);
    };
    // Indices into `telemetry::metrics::KEY_RESULTS`.
    const ADMITTED: usize = 0;
    const RATE_LIMITED: usize = 1;
    const QUOTA_EXCEEDED: usize = 2;
    const MODEL_NOT_ALLOWED: usize = 3;
    let count = |result: usize| key.count(result);
    if !key.allows(model) {
        count(MODEL_NOT_ALLOWED);
        return Err(GatewayError::ModelNotAllowed {
            model: model.to_owned(),
        });
    }
    if !key.limits.any() {
        count(ADMITTED);
        return Ok(None);
    }
    let tokens = if key.limits.tpm.is_some() {
        estimate_tokens(body)
    } else {
        0
    };
    if let Some(redis) = redis {
        let wall = std::time::SystemTime::now();
        let today = calendar::day(wall);
        let day = calendar::date(today);
        let month = day.get(..7).unwrap_or_default().to_owned();
        let limits = key.limits;
        let asked = spec(&key.name, &limits, &day, &month);
        match redis.admit(&asked, tokens).await {
            Ok(Ok(admitted)) => {
                count(ADMITTED);
                key.state.note_shared(true);
                let headers = headers_of(&limits, &admitted);
                record.settle.push(Box::new(RedisHold {
                    redis: redis.clone(),
                    key: key.clone(),
                    name: key.name.clone(),
                    limits,
                    day,
                    month,
                    reserved: tokens,
                    slot: admitted.slot,
                }));
                return Ok(Some(headers));
            }
            Ok(Err(refused)) => {
                key.state.note_shared(false);
                let denied = denied_by(&limits, refused, tokens, wall, today);
                count(match denied.reason {
                    Reason::Budget { .. } => QUOTA_EXCEEDED,
                    _ => RATE_LIMITED,
                });
                return Err(GatewayError::RateLimited(Box::new(denied)));
            }
            Err(_) if redis.config().on_error == OnError::FailClosed => {
                count(RATE_LIMITED);
                return Err(GatewayError::LimitsUnavailable);
            }
            // fail_open: this replica's own limits, below, until Redis is back.
            Err(_) => {}
        }
    }
    match store.admit(key, tokens) {
        Ok(permit) => {
            count(ADMITTED);
            let headers = permit.headers;
            record.settle.push(Box::new(Hold(permit)));
            Ok(Some(headers))
        }
        Err(denied) => {
            count(match denied.reason {
                Reason::Budget { .. } => QUOTA_EXCEEDED,
                _ => RATE_LIMITED,
            });
            Err(GatewayError::RateLimited(Box::new(denied)))
        }
    }
}

/// The `x-ratelimit-*` figures of a Redis admission.
fn headers_of(limits: &crate::quota::Limits, admitted: &Admitted) -> RateHeaders {
    let rate = |limit: Option<u64>, remaining: Option<u64>, reset: f64| {
        limit.map(|limit| Rate {
            limit,
            remaining: remaining.unwrap_or(0),
            reset,
        })
    };
    RateHeaders {
        requests: rate(
            limits.rpm,
            admitted.requests_remaining,
            admitted.requests_reset,
        ),
        tokens: rate(limits.tpm, admitted.tokens_remaining, admitted.tokens_reset),
    }
}

/// A Redis refusal as the in-memory limiter words it.
fn denied_by(
    limits: &crate::quota::Limits,
    refused: Refused,
    tokens: u64,
    wall: std::time::SystemTime,
    today: i64,
) -> Denied {
    let budget = |period: Period, limit_usd: f64, next: i64| Reason::Budget {
        period,
        limit_usd,
        resets_on: calendar::date(next),
        resets_in: calendar::until_day(wall, next).as_secs(),
    };
    let reason = match refused.limit {
        "rpm" => Reason::Requests {
            wait: refused.retry_after,
        },
        "tpm" => Reason::Tokens {
            wait: refused.retry_after,
            needed: tokens,
        },
        "parallel" => Reason::Parallel {
            limit: limits.max_parallel.unwrap_or(0),
        },
        "daily" => budget(
            Period::Daily,
            limits.budget.daily_usd.unwrap_or(0.0),
            today + 1,
        ),
        _ => budget(
            Period::Monthly,
            limits.budget.monthly_usd.unwrap_or(0.0),
            calendar::next_month_start(today),
        ),
    };
    let rate = |limit: Option<u64>| {
        limit.map(|limit| Rate {
            limit,
            remaining: 0,
            reset: refused.retry_after,
        })
    };
    let headers = match refused.limit {
        "rpm" => RateHeaders {
            requests: rate(limits.rpm),
            tokens: None,
        },
        "tpm" => RateHeaders {
            requests: None,
            tokens: rate(limits.tpm),
        },
        _ => RateHeaders::default(),
    };
    Denied { reason, headers }
}

/// Names the key on the access record (never the key itself).
pub(super) fn note_key(key: Option<&Arc<KeySpec>>, record: &mut AccessRecord) {
    if let Some(key) = key {
        record.entry.key = Some(key.name.clone());
        if !key.labels.is_empty() {
            record.entry.key_labels = Some(key.labels.clone());
        }
    }
}

const LIMIT_REQUESTS: HeaderName = HeaderName::from_static("x-ratelimit-limit-requests");
const REMAINING_REQUESTS: HeaderName = HeaderName::from_static("x-ratelimit-remaining-requests");
const RESET_REQUESTS: HeaderName = HeaderName::from_static("x-ratelimit-reset-requests");
const LIMIT_TOKENS: HeaderName = HeaderName::from_static("x-ratelimit-limit-tokens");
const REMAINING_TOKENS: HeaderName = HeaderName::from_static("x-ratelimit-remaining-tokens");
const RESET_TOKENS: HeaderName = HeaderName::from_static("x-ratelimit-reset-tokens");

/// Sets the `x-ratelimit-*` headers OpenAI's API sends, for the limits the
/// key has.
pub fn apply_headers(headers: &mut HeaderMap, rates: &RateHeaders) {
    let mut set = |rate: Option<Rate>, names: [HeaderName; 3]| {
        if let Some(rate) = rate {
            let [limit, remaining, reset] = names;
            headers.insert(limit, HeaderValue::from(rate.limit));
            headers.insert(remaining, HeaderValue::from(rate.remaining));
            if let Ok(value) = HeaderValue::from_str(&reset_text(rate.reset)) {
                headers.insert(reset, value);
            }
        }
    };
    set(
        rates.requests,
        [LIMIT_REQUESTS, REMAINING_REQUESTS, RESET_REQUESTS],
    );
    set(rates.tokens, [LIMIT_TOKENS, REMAINING_TOKENS, RESET_TOKENS]);
}

/// A reset time as OpenAI writes it: `250ms`, `6s`, `1m30s`.
pub fn reset_text(secs: f64) -> String {
    if secs < 1.0 {
        return format!("{}ms", (secs * 1000.0).ceil() as u64);
    }
    let secs = secs.ceil() as u64;
    if secs < 60 {
        format!("{secs}s")
    } else {
        format!("{}m{}s", secs / 60, secs % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_texts() {
        assert_eq!(reset_text(0.0), "0ms");
        assert_eq!(reset_text(0.2501), "251ms");
        assert_eq!(reset_text(5.2), "6s");
        assert_eq!(reset_text(90.0), "1m30s");
    }
}
