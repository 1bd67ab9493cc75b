//! `/health` (liveness), `/health/ready` (readiness) and `/status` (the
//! operator's view: every upstream with its last known state, every model
//! with its targets).
//!
//! Readiness is 200 when at least one model has a target that is not known
//! to be down or disabled; 503 otherwise. `/health/ready` shows names and
//! states only; `/status` (behind the router key, when keys are set) adds
//! addresses and the last error. Neither ever shows a credential.

use std::time::UNIX_EPOCH;

use http::{Response, StatusCode};
use serde_json::{json, Value};

use super::models::json_response;
use super::AppState;
use crate::forward::body::ResponseBody;
use crate::routing::{Table, Upstream};
use crate::upstream::Health;

/// The status page: one self-contained HTML file, embedded in the binary,
/// that polls `/status` and `/stats` (no external scripts, styles or fonts).
const PAGE: &str = include_str!("../../assets/status.html");

/// `GET /` and `GET /ui`: the status page. It holds no data itself; the
/// JSON it fetches is behind the router key when keys are set (the page
/// asks for it).
pub(super) fn page() -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::full(PAGE));
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        http::header::CONTENT_SECURITY_POLICY,
        http::HeaderValue::from_static("default-src 'none'; connect-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'"),
    );
    headers.insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-cache"),
    );
    response
}

/// `GET /metrics`: Prometheus text format.
pub(super) fn metrics(state: &AppState, table: &Table) -> Response<ResponseBody> {
    let metrics = state.registry.metrics();
    if let Some(cache) = &table.cache {
        let (entries, bytes) = cache.size();
        metrics.cache_entries.set(entries as i64);
        metrics.cache_bytes.set(bytes as i64);
    }
    metrics.set_circuits(table.models.iter().flat_map(|model| {
        model.targets.iter().map(|target| {
            (
                model.name.as_str(),
                target.label.as_str(),
                target.state.circuit().as_gauge(),
            )
        })
    }));
    metrics.config_generation.set(table.generation as i64);
    let mut response = Response::new(ResponseBody::full(metrics.render()));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// `GET /health`: the process is up.
pub(super) fn live() -> Response<ResponseBody> {
    json_response(&json!({"status": "ok"}))
}

fn state_name(upstream: &Upstream) -> &'static str {
    if upstream.unresolved.is_some() {
        "disabled"
    } else if upstream.mock.is_some() {
        "up"
    } else {
        upstream.state.view().health.as_str()
    }
}

fn usable(upstream: &Upstream) -> bool {
    upstream.unresolved.is_none()
        && (upstream.mock.is_some() || upstream.state.view().health != Health::Down)
}

/// `GET /health/ready` (`detail = false`) and `GET /status` (`detail = true`).
pub(super) fn ready(
    state: &AppState,
    table: &Table,
    detail: bool,
    shared: &super::stats::SharedSpend,
) -> Response<ResponseBody> {
    let upstreams: Vec<Value> = table
        .upstreams
        .iter()
        .map(|u| {
            let view = u.state.view();
            let mut entry = json!({
                "name": u.name,
                "provider": u.kind.as_str(),
                "state": state_name(u),
            });
            if let Some(unresolved) = &u.unresolved {
                entry["reason"] = json!(format!("environment variable {} is not set", unresolved));
            }
            if detail {
                entry["address"] = json!(if u.base_url.is_empty() {
                    "built in"
                } else {
                    u.base_url.as_str()
                });
                entry["health_check"] = json!(u.health_check.is_some());
                entry["last_error"] = json!(view.last_error);
                entry["observed_at_ms"] = json!(view.observed_at_ms);
            }
            entry
        })
        .collect();
    let models: Vec<Value> = table
        .models
        .iter()
        .map(|m| {
            let available = m
                .targets
                .iter()
                .chain(m.fallbacks.iter().flat_map(|f| f.targets.iter()))
                .any(|t| usable(&t.upstream));
            let mut entry = json!({
                "name": m.name,
                "available": available,
                "strategy": m.strategy.name(),
                "targets": m.targets.iter().map(|t| t.label.as_str()).collect::<Vec<_>>(),
                "fallbacks": m.fallbacks.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(),
            });
            if detail {
                // Runtime state per target: what the planner sees right now.
                entry["target_states"] = m
                    .targets
                    .iter()
                    .map(|t| {
                        json!({
                            "target": t.label,
                            "weight": t.weight,
                            "circuit": t.state.circuit().as_str(),
                            "misconfigured": t.state.is_misconfigured(),
                            "in_flight": t.state.in_flight(),
                            "ttft_ms": t.state.ttft().map(|d| (d.as_secs_f64() * 1000.0 * 100.0).round() / 100.0),
                        })
                    })
                    .collect();
            }
            entry
        })
        .collect();
    let ready = models.iter().any(|m| m["available"] == json!(true));
    let loaded_at = table
        .loaded_at
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let reloads = state.reloads.lock().map(|r| r.clone()).unwrap_or_default();
    let mut config = json!({
        "generation": table.generation,
        "loaded_at": loaded_at,
        "reloads_succeeded": reloads.succeeded,
        "reloads_failed": reloads.failed,
    });
    if detail {
        // Error text can quote the config; it stays behind the router key.
        config["last_reload_error"] = json!(reloads.last_error);
        config["path"] = json!(state.config_path.display().to_string());
    }
    let mut body = json!({
        "status": if ready { "ready" } else { "unavailable" },
        "config": config,
        "upstreams": upstreams,
        "models": models,
    });
    if detail {
        // Usage and spend per key: behind the router key, like the rest.
        body["keys"] = json!(super::stats::keys(table, shared));
    }
    let mut response = json_response(&body);
    if !ready {
        *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    }
    response
}
