//! Schema → [`Table`]: resolve names, build URLs and credential headers once,
//! attach runtime state from the registry.

use std::collections::HashMap;
use std::sync::Arc;

use http::{HeaderMap, HeaderName, HeaderValue, Uri};

use super::keypath::KeyPath;
use super::schema::{Config, ModelConfig};
use super::walk::Walk;
use crate::providers::{self, Endpoint, TargetAddress};
use crate::providers::{anthropic, bedrock, ProviderKind};
use crate::routing::StatusPolicy;
use std::sync::atomic::AtomicUsize;

use crate::quota::key::sha256;
use crate::quota::{Glob, KeySet, KeySpec, Limits};
use crate::routing::strategy::weighted_cycle;
use crate::routing::RequestLimits;
use crate::routing::{AttemptPolicy, Cors, Model, Signing, Table, Target, Translation, Upstream};
use crate::upstream::{BreakerPolicy, Registry, TargetId};

/// Builds the table. Problems that only show while compiling (a URL that
/// does not parse once the deployment is spliced in) go to `walk`.
pub fn compile(
    walk: &mut Walk<'_>,
    config: &Config,
    registry: &Registry,
    generation: u64,
) -> Table {
    let mut upstreams: HashMap<&str, Arc<Upstream>> = HashMap::new();
    let mut upstream_list = Vec::new();
    let mut keep = Vec::new();
    for u in &config.upstreams {
        let provider = providers::provider(u.provider);
        let credential = match (&u.api_key, provider) {
            (Some(key), Some(p)) => p.credential(key),
            _ => None,
        };
        let mut headers = HeaderMap::new();
        for (name, value) in &u.headers {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                headers.insert(name, value);
            }
        }
        let translation = match u.provider {
            ProviderKind::Anthropic => {
                // The operator's own `headers:` win over these.
                let a = &u.anthropic;
                let mut set = |name: &'static str, value: &str| {
                    if let Ok(value) = HeaderValue::from_str(value) {
                        headers
                            .entry(HeaderName::from_static(name))
                            .or_insert(value);
                    }
                };
                set("anthropic-version", &a.version);
                if !a.beta.is_empty() {
                    set("anthropic-beta", &a.beta.join(","));
                }
                Some(Translation::Anthropic(anthropic::Options {
                    default_max_tokens: a.max_tokens,
                }))
            }
            ProviderKind::Gemini => Some(Translation::Gemini),
            ProviderKind::Bedrock => {
                let b = &u.bedrock;
                let signing = b.keys.as_ref().map(|keys| {
                    Box::new(Signing {
                        region: b.region.clone(),
                        credentials: bedrock::Credentials {
                            access_key_id: keys.access_key_id.expose().to_owned(),
                            secret_access_key: keys.secret_access_key.clone(),
                            session_token: keys.session_token.clone(),
                        },
                    })
                });
                Some(Translation::Bedrock {
                    options: bedrock::Options {
                        default_max_tokens: b.max_tokens,
                    },
                    signing,
                })
            }
            _ => None,
        };
        let health_check = match (provider, u.health_check.interval) {
            (Some(p), Some(interval)) => {
                let url = match &u.health_check.path {
                    Some(path) => format!("{}{}", u.base_url, path),
                    None => p.health_url(&TargetAddress {
                        base_url: &u.base_url,
                        model: "",
                        deployment: "",
                        api_version: u.api_version.as_deref().unwrap_or(""),
                    }),
                };
                parse_uri(walk, &u.path.key("health_check"), &url).map(|uri| (uri, interval))
            }
            _ => None,
        };
        let client = provider.map(|_| registry.client(&u.name, &u.base_url, u.timeouts.connect));
        keep.push((u.name.clone(), u.base_url.clone(), u.timeouts.connect));
        let upstream = Arc::new(Upstream {
            name: u.name.clone(),
            kind: u.provider,
            base_url: u.base_url.clone(),
            provider,
            credential,
            headers,
            timeouts: u.timeouts,
            inject_stream_usage: u.inject_stream_usage,
            prefill: u
                .prefill
                .unwrap_or_else(|| crate::routing::Prefill::default_for(u.provider)),
            mock: (u.provider == ProviderKind::Mock).then(|| u.mock.clone()),
            translation,
            unresolved: u.unresolved.as_ref().map(|u| u.var.clone()),
            health_check: health_check.filter(|_| u.unresolved.is_none()),
            state: registry.state(&u.name, &u.base_url),
            client,
            metrics: registry.metrics().upstream(&u.name),
        });
        upstreams.insert(u.name.as_str(), upstream.clone());
        upstream_list.push(upstream);
    }

    // Models without fallbacks first, then resolve fallbacks by name.
    let api_versions: HashMap<&str, &str> = config
        .upstreams
        .iter()
        .map(|u| (u.name.as_str(), u.api_version.as_deref().unwrap_or("")))
        .collect();
    let breakers: HashMap<&str, BreakerPolicy> = config
        .upstreams
        .iter()
        .map(|u| {
            (
                u.name.as_str(),
                BreakerPolicy {
                    failure_threshold: u.breaker.failures,
                    cooldown: u.breaker.cooldown,
                    max_cooldown: u.breaker.max_cooldown,
                },
            )
        })
        .collect();
    let mut target_ids = Vec::new();
    let mut bare: HashMap<&str, Arc<Model>> = HashMap::new();
    for m in &config.models {
        let targets: Vec<Target> =
            m.targets
                .iter()
                .filter_map(|t| {
                    let upstream = upstreams.get(t.upstream.as_str())?.clone();
                    let upstream_model = t.model.clone().unwrap_or_else(|| m.name.clone());
                    let deployment = t
                        .deployment
                        .clone()
                        .unwrap_or_else(|| upstream_model.clone());
                    let urls = match upstream.provider {
                        Some(p) if upstream.unresolved.is_none() => {
                            let address = TargetAddress {
                                base_url: &upstream.base_url,
                                model: &upstream_model,
                                deployment: &deployment,
                                api_version: api_versions
                                    .get(t.upstream.as_str())
                                    .copied()
                                    .unwrap_or(""),
                            };
                            let plain = Endpoint::ALL.iter().map(|e| p.url(&address, *e));
                            let streamed = Endpoint::ALL.iter().map(|e| {
                                p.stream_url(&address, *e)
                                    .unwrap_or_else(|| p.url(&address, *e))
                            });
                            plain
                                .chain(streamed)
                                .map(|url| parse_uri(walk, &t.path, &url))
                                .collect::<Option<Vec<_>>>()?
                        }
                        _ => Vec::new(),
                    };
                    let responses_model = if upstream.kind == ProviderKind::Azure {
                        deployment.clone()
                    } else {
                        upstream_model.clone()
                    };
                    let id = TargetId {
                        upstream: upstream.name.clone(),
                        base_url: upstream.base_url.clone(),
                        model: upstream_model.clone(),
                    };
                    target_ids.push(id.clone());
                    let label = format!("{}/{}", upstream.name, upstream_model);
                    Some(Target {
                        metrics: registry.metrics().target(&m.name, &label, m.pricing),
                        model: m.name.clone(),
                        timeouts: m.timeouts.apply(upstream.timeouts),
                        breaker: breakers.get(t.upstream.as_str()).copied().unwrap_or(
                            BreakerPolicy {
                                failure_threshold: 0,
                                cooldown: std::time::Duration::ZERO,
                                max_cooldown: std::time::Duration::ZERO,
                            },
                        ),
                        state: registry.target(id),
                        label,
                        responses_model,
                        upstream,
                        upstream_model,
                        weight: t.weight,
                        rates: crate::quota::Rates {
                            rpm: t.rates.rpm.or(m.rates.rpm),
                            tpm: t.rates.tpm.or(m.rates.tpm),
                        },
                        urls,
                    })
                })
                .collect();
        let weights: Vec<u32> = targets.iter().map(|t| t.weight).collect();
        let mut statuses = StatusPolicy::default();
        if let Some(retry_on) = &m.retry.on_status {
            statuses.retry_on = retry_on.clone();
        }
        if let Some(fail_over) = &m.fail_over_on {
            statuses.fail_over_on = fail_over.clone();
        }
        bare.insert(
            m.name.as_str(),
            Arc::new(Model {
                name: m.name.clone(),
                cycle: weighted_cycle(&weights),
                targets,
                fallbacks: Vec::new(),
                context_window_fallbacks: Vec::new(),
                strategy: m.strategy,
                cursor: AtomicUsize::new(0),
                metrics: registry.metrics().model(&m.name, &[]),
                policy: AttemptPolicy {
                    statuses,
                    retries: m.retry.attempts,
                    backoff: m.retry.backoff,
                    max_backoff: m.retry.max_backoff,
                    max_attempts: m.max_attempts,
                    deadline: m.deadline,
                    resume: m.resume,
                },
                requests: m.requests.clone(),
                cache_ttl: m.cache,
            }),
        );
    }
    let by_name: HashMap<&str, &ModelConfig> =
        config.models.iter().map(|m| (m.name.as_str(), m)).collect();
    // A model reached as a fallback brings its own targets; its fallbacks are
    // already flattened into the chain.
    let models: Vec<Arc<Model>> = config
        .models
        .iter()
        .filter_map(|m| {
            let base = bare.get(m.name.as_str())?;
            let chain = fallback_chain(&m.name, &m.fallbacks, &by_name);
            let context: Vec<Arc<Model>> = m
                .context_window_fallbacks
                .iter()
                .flat_map(|(name, _)| {
                    let mut names = vec![name.clone()];
                    let first = by_name
                        .get(name.as_str())
                        .map(|m| m.fallbacks.as_slice())
                        .unwrap_or(&[]);
                    names.extend(fallback_chain(name, first, &by_name));
                    names
                })
                .filter_map(|n| bare.get(n.as_str()).cloned())
                .collect();
            if chain.is_empty() && context.is_empty() {
                return Some(base.clone());
            }
            let served_by: Vec<&str> = chain
                .iter()
                .map(String::as_str)
                .chain(context.iter().map(|m| m.name.as_str()))
                .collect();
            Some(Arc::new(Model {
                metrics: registry.metrics().model(&m.name, &served_by),
                name: base.name.clone(),
                targets: rebuild_targets(&base.targets),
                fallbacks: chain
                    .iter()
                    .filter_map(|n| bare.get(n.as_str()).cloned())
                    .collect(),
                context_window_fallbacks: context,
                strategy: base.strategy,
                cycle: base.cycle.clone(),
                cursor: AtomicUsize::new(0),
                policy: base.policy.clone(),
                requests: base.requests.clone(),
                cache_ttl: base.cache_ttl,
            }))
        })
        .collect();
    let keys = compile_keys(config, registry);
    if walk.errors.is_empty() {
        registry.retain(&keep, &target_ids);
        let names: Vec<&str> = config.keys.iter().map(|k| k.name.as_str()).collect();
        let persist = config
            .keys
            .iter()
            .any(|k| k.limits.budget.daily_usd.is_some() || k.limits.budget.monthly_usd.is_some());
        registry.quota().retain(&names, persist);
    }

    let cors = if config.server.cors_origins.iter().any(|o| o == "*") {
        Cors::Any
    } else if config.server.cors_origins.is_empty() {
        Cors::Off
    } else {
        Cors::Origins(
            config
                .server
                .cors_origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o).ok())
                .collect(),
        )
    };
    let table = Table::new(
        generation,
        RequestLimits {
            max_body_bytes: config.server.max_body_bytes,
            body_timeout: config.server.body_timeout,
        },
        keys,
        cors,
        models,
        upstream_list,
        registry.metrics().unknown_model(),
    );
    let table = if config.models.iter().any(|m| m.cache.is_some()) {
        let cache = registry.cache(config.cache.max_bytes);
        table.with_cache(cache, config.cache.max_entry_bytes)
    } else {
        table
    };
    match config.state.redis.as_ref().map(|c| registry.redis(c)) {
        Some(Ok(redis)) => table.with_redis(redis, config.cache.shared),
        Some(Err(err)) => {
            tracing::error!(error = %err, "state.redis: not used");
            table
        }
        None => table,
    }
}

/// The key set: the `keys:` entries, with their state from the registry's
/// store (kept by name across reloads), then the flat `server.auth.keys`
/// as keys without limits (their state is never looked at).
fn compile_keys(config: &Config, registry: &Registry) -> KeySet {
    let mut all = Vec::new();
    for k in &config.keys {
        let spec = KeySpec {
            name: k.name.clone(),
            models: k.models.iter().map(|(m, _)| Glob(m.clone())).collect(),
            limits: k.limits,
            expires: k.expires,
            labels: k.labels.clone().into(),
            state: registry.quota().state(&k.name),
            counters: Some(registry.metrics().key_counters(&k.name)),
        };
        all.push((k.digest, Arc::new(spec)));
    }
    for (i, key) in config.server.auth_keys.iter().enumerate() {
        let name = format!("server.auth.keys[{i}]");
        let spec = KeySpec {
            name: name.clone(),
            models: Vec::new(),
            limits: Limits::default(),
            expires: None,
            labels: Arc::new([]),
            state: Arc::default(),
            counters: Some(registry.metrics().key_counters(&name)),
        };
        all.push((sha256(key.expose().as_bytes()), Arc::new(spec)));
    }
    KeySet::new(all)
}

/// Fallback models of `name`, depth-first in declared order, each once, never
/// `name` itself; loops were already reported by `validate`.
fn fallback_chain(
    name: &str,
    first: &[(String, KeyPath)],
    models: &HashMap<&str, &ModelConfig>,
) -> Vec<String> {
    let mut chain: Vec<String> = Vec::new();
    let mut stack: Vec<String> = first.iter().rev().map(|(f, _)| f.clone()).collect();
    while let Some(next) = stack.pop() {
        if next == name || chain.contains(&next) || !models.contains_key(next.as_str()) {
            continue;
        }
        if let Some(m) = models.get(next.as_str()) {
            stack.extend(m.fallbacks.iter().rev().map(|(f, _)| f.clone()));
        }
        chain.push(next);
    }
    chain
}

fn rebuild_targets(targets: &[Target]) -> Vec<Target> {
    targets
        .iter()
        .map(|t| Target {
            model: t.model.clone(),
            timeouts: t.timeouts,
            breaker: t.breaker,
            state: t.state.clone(),
            metrics: t.metrics.clone(),
            upstream: t.upstream.clone(),
            upstream_model: t.upstream_model.clone(),
            responses_model: t.responses_model.clone(),
            weight: t.weight,
            rates: t.rates,
            urls: t.urls.clone(),
            label: t.label.clone(),
        })
        .collect()
}

fn parse_uri(walk: &mut Walk<'_>, path: &KeyPath, url: &str) -> Option<Uri> {
    match url.parse::<Uri>() {
        Ok(uri) => Some(uri),
        Err(err) => {
            walk.error(
                path,
                format!("the upstream URL {url:?} is not valid: {err}"),
            );
            None
        }
    }
}
