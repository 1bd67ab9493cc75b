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
use crate::quota::{estimate_tokens, KeySpec, Permit, RateHeaders, Reason, Store};
use crate::telemetry::access_log::{AccessRecord, Settle};

/// The permit, carried by the access record until the answer ends.
struct Hold(Permit);

impl Settle for Hold {
    fn settle(&mut self, usage: Option<Usage>, cost_usd: Option<f64>) {
        let tokens = usage.map(|u| u.total_tokens.max(u.prompt_tokens + u.completion_tokens));
        self.0.settle(tokens, cost_usd);
    }
}

/// Checks that `key` may call `model` and admits the request under its
/// limits. Returns the headers every answer to it carries (`None` for a
/// key without rate limits, or no key on an open router).
///
/// # Errors
/// [`GatewayError::ModelNotAllowed`] or [`GatewayError::RateLimited`].
pub(super) fn admit(
    store: &Store,
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
