//! `GET /stats`: a small JSON summary since start, for people without
//! Prometheus — totals, and per model: requests, errors, average latency
//! and time to first token, tokens and cost. Like the metrics, a request
//! counts under the model whose target answered; `answered_by_fallback`
//! counts the requests for a model that one of its fallbacks answered.
//!
//! Derived from the Prometheus registry at request time, so it can never
//! disagree with `/metrics` and adds no state to the request path.

use std::collections::BTreeMap;

use http::Response;
use serde_json::json;

use super::models::json_response;
use super::AppState;
use crate::forward::body::ResponseBody;
use crate::quota::store::usage;
use crate::routing::Table;

#[derive(Default)]
struct ModelStats {
    requests: f64,
    errors: f64,
    duration_sum: f64,
    duration_count: f64,
    ttft_sum: f64,
    ttft_count: f64,
    prompt_tokens: f64,
    completion_tokens: f64,
    cost: f64,
    via_fallback: f64,
}

fn label<'a>(metric: &'a prometheus::proto::Metric, name: &str) -> &'a str {
    metric
        .get_label()
        .iter()
        .find(|l| l.name() == name)
        .map(|l| l.value())
        .unwrap_or("")
}

pub(super) fn stats(
    state: &AppState,
    table: &Table,
    shared: &SharedSpend,
) -> Response<ResponseBody> {
    let mut models: BTreeMap<String, ModelStats> = BTreeMap::new();
    for family in state.registry.metrics().gather() {
        for metric in family.get_metric() {
            let model = label(metric, "model");
            if model.is_empty() {
                continue;
            }
            let entry = || -> ModelStats { ModelStats::default() };
            match family.name() {
                "switchyard_requests_total" => {
                    let n = metric.get_counter().get_value();
                    let s = models.entry(model.to_owned()).or_insert_with(entry);
                    s.requests += n;
                    let failed = matches!(label(metric, "status_class"), "4xx" | "5xx")
                        || label(metric, "outcome") == "upstream_error";
                    if failed {
                        s.errors += n;
                    }
                }
                "switchyard_request_duration_seconds" => {
                    let h = metric.get_histogram();
                    let s = models.entry(model.to_owned()).or_insert_with(entry);
                    s.duration_sum += h.get_sample_sum();
                    s.duration_count += h.get_sample_count() as f64;
                }
                "switchyard_time_to_first_token_seconds" => {
                    let h = metric.get_histogram();
                    let s = models.entry(model.to_owned()).or_insert_with(entry);
                    s.ttft_sum += h.get_sample_sum();
                    s.ttft_count += h.get_sample_count() as f64;
                }
                "switchyard_tokens_total" => {
                    let n = metric.get_counter().get_value();
                    let s = models.entry(model.to_owned()).or_insert_with(entry);
                    match label(metric, "type") {
                        "prompt" => s.prompt_tokens += n,
                        _ => s.completion_tokens += n,
                    }
                }
                "switchyard_fallbacks_total" => {
                    models
                        .entry(model.to_owned())
                        .or_insert_with(entry)
                        .via_fallback += metric.get_counter().get_value();
                }
                "switchyard_cost_usd_total" => {
                    models.entry(model.to_owned()).or_insert_with(entry).cost +=
                        metric.get_counter().get_value();
                }
                _ => {}
            }
        }
    }
    let avg = |sum: f64, count: f64| {
        if count > 0.0 {
            Some((sum / count * 1000.0 * 100.0).round() / 100.0)
        } else {
            None
        }
    };
    let mut totals = ModelStats::default();
    let per_model: Vec<_> = models
        .iter()
        .filter(|(_, s)| s.requests > 0.0 || s.via_fallback > 0.0)
        .map(|(name, s)| {
            totals.requests += s.requests;
            totals.errors += s.errors;
            totals.prompt_tokens += s.prompt_tokens;
            totals.completion_tokens += s.completion_tokens;
            totals.cost += s.cost;
            json!({
                "model": name,
                "requests": s.requests as u64,
                "answered_by_fallback": s.via_fallback as u64,
                "errors": s.errors as u64,
                "avg_latency_ms": avg(s.duration_sum, s.duration_count),
                "avg_ttft_ms": avg(s.ttft_sum, s.ttft_count),
                "prompt_tokens": s.prompt_tokens as u64,
                "completion_tokens": s.completion_tokens as u64,
                "cost_usd": s.cost,
            })
        })
        .collect();
    json_response(&json!({
        "uptime_seconds": state.started.elapsed().as_secs(),
        "config_generation": state.generation(),
        "totals": {
            "requests": totals.requests as u64,
            "errors": totals.errors as u64,
            "prompt_tokens": totals.prompt_tokens as u64,
            "completion_tokens": totals.completion_tokens as u64,
            "cost_usd": totals.cost,
        },
        "models": per_model,
        "keys": keys(table, shared),
    }))
}

/// Each budgeted key's spend today and this month in `state.redis`, by
/// key name (empty without Redis, or while it is away).
pub(super) type SharedSpend = std::collections::HashMap<String, (f64, f64)>;

/// Most keys whose shared spend one `/stats` or `/status` asks Redis for.
const MAX_SHARED_SPEND_KEYS: usize = 1000;

/// The spend of each budgeted key, from Redis when the router shares state
/// (every replica's spend); empty otherwise.
pub(super) async fn shared_spend(table: &Table) -> SharedSpend {
    let mut out = SharedSpend::new();
    let Some(redis) = &table.redis else {
        return out;
    };
    let today =
        crate::quota::calendar::date(crate::quota::calendar::day(std::time::SystemTime::now()));
    let month = today.get(..7).unwrap_or_default().to_owned();
    let budgeted = table
        .keys
        .list
        .iter()
        .filter(|k| k.limits.budget.daily_usd.is_some() || k.limits.budget.monthly_usd.is_some())
        .take(MAX_SHARED_SPEND_KEYS);
    for k in budgeted {
        let spec = crate::shared::LimitSpec {
            name: &k.name,
            rpm: None,
            tpm: None,
            max_parallel: None,
            daily_usd: None,
            monthly_usd: None,
            day: &today,
            month: &month,
        };
        match redis.spend(&spec).await {
            Ok(spend) => {
                out.insert(k.name.clone(), spend);
            }
            Err(_) => break,
        }
    }
    out
}

/// Per key of `keys:` (the flat `server.auth.keys` have no limits to show):
/// requests admitted and refused, in flight, tokens, spend and what is
/// left of each budget and rate limit. Never the key itself.
pub(super) fn keys(table: &Table, shared: &SharedSpend) -> Vec<serde_json::Value> {
    table
        .keys
        .list
        .iter()
        .filter(|k| !k.name.starts_with("server.auth.keys["))
        .map(|k| {
            let mut u = usage(k);
            if let Some(&(day, month)) = shared.get(&k.name) {
                u.spend.day_usd = day;
                u.spend.month_usd = month;
            }
            let budget = k.limits.budget;
            let left = |max: Option<f64>, spent: f64| max.map(|m| (m - spent).max(0.0));
            json!({
                "name": k.name,
                "labels": k.labels.iter().cloned().collect::<BTreeMap<String, String>>(),
                "requests": u.admitted,
                "rate_limited": u.limited,
                "in_flight": u.in_flight,
                "tokens": u.tokens,
                "spend_today_usd": u.spend.day_usd,
                "spend_this_month_usd": u.spend.month_usd,
                "budget_daily_usd": budget.daily_usd,
                "budget_monthly_usd": budget.monthly_usd,
                "remaining_daily_usd": left(budget.daily_usd, u.spend.day_usd),
                "remaining_monthly_usd": left(budget.monthly_usd, u.spend.month_usd),
                "rpm": k.limits.rpm,
                "remaining_requests": u.rates.requests.map(|r| r.remaining),
                "tpm": k.limits.tpm,
                "remaining_tokens": u.rates.tokens.map(|r| r.remaining),
                "max_parallel": k.limits.max_parallel,
                "expires": k.expires.map(|at| humantime::format_rfc3339_seconds(at).to_string()),
            })
        })
        .collect()
}
