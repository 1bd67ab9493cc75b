//! Checks that span entries: targets name real upstreams, fallbacks name real
//! models without loops, keys fit their upstream's provider.
//!
//! Every check runs and records its findings; nothing stops at the first.

use std::collections::HashMap;

use super::schema::Config;
use super::suggest;
use super::walk::Walk;
use crate::providers::ProviderKind;

/// Runs every cross-entry check on `config`.
pub fn validate(walk: &mut Walk<'_>, config: &Config) {
    if config.cache.shared && config.state.redis.is_none() {
        walk.error(
            &crate::config::keypath::KeyPath::root().key("cache").key("shared"),
            "needs `state.redis` (where the entries are shared); remove it, or add state: { redis: { url: \"${REDIS_URL}\" } }",
        );
    }
    let upstreams: HashMap<&str, _> = config
        .upstreams
        .iter()
        .map(|u| (u.name.as_str(), u))
        .collect();
    let models: HashMap<&str, _> = config.models.iter().map(|m| (m.name.as_str(), m)).collect();

    for model in &config.models {
        for target in &model.targets {
            let path = target.path.key("upstream");
            let Some(upstream) = upstreams.get(target.upstream.as_str()) else {
                let hint = suggest::hint(&target.upstream, upstreams.keys().copied());
                let message = if config.upstreams.is_empty() {
                    format!(
                        "no upstream named {:?}; declare it under `upstreams:`",
                        target.upstream
                    )
                } else {
                    format!("no upstream named {:?}{hint}", target.upstream)
                };
                walk.error(&path, message);
                continue;
            };
            if target.deployment.is_some() && upstream.provider != ProviderKind::Azure {
                walk.error(
                    &target.path.key("deployment"),
                    format!(
                        "only Azure upstreams take a `deployment`; upstream {:?} is {}",
                        upstream.name,
                        upstream.provider.as_str()
                    ),
                );
            }
        }
        if !model.targets.is_empty() && model.targets.iter().all(|t| t.weight == 0) {
            walk.error(
                &model.path.key("targets"),
                "every target has weight 0, so none would ever be chosen",
            );
        }
        for (fallback, path) in model
            .fallbacks
            .iter()
            .chain(&model.context_window_fallbacks)
        {
            if fallback == &model.name {
                walk.error(path, "a model cannot fall back to itself");
            } else if !models.contains_key(fallback.as_str()) {
                let hint = suggest::hint(fallback, models.keys().copied());
                walk.error(path, format!("unknown model {fallback:?}{hint}"));
            }
        }
    }

    report_fallback_cycles(walk, config, &models);
    validate_keys(walk, config);

    for upstream in &config.upstreams {
        let t = &upstream.timeouts;
        let timeouts = upstream.path.key("timeouts");
        for (name, value) in [
            ("first_byte", t.first_byte),
            ("first_token", t.first_token),
            ("idle", t.idle),
        ] {
            if value > t.total {
                walk.error(
                    &timeouts.key(name),
                    format!(
                        "`timeouts.{name}` ({}) must not be longer than `timeouts.total` ({})",
                        crate::units::format_duration(value),
                        crate::units::format_duration(t.total)
                    ),
                );
            }
        }
        if let Some(unresolved) = &upstream.unresolved {
            let users: Vec<&str> = config
                .models
                .iter()
                .filter(|m| m.targets.iter().any(|t| t.upstream == upstream.name))
                .map(|m| m.name.as_str())
                .collect();
            let users = if users.is_empty() {
                String::new()
            } else {
                format!(" (used by {})", users.join(", "))
            };
            walk.warn(
                &unresolved.path,
                format!(
                    "environment variable {} is not set; upstream {:?} is disabled until it is{users}",
                    unresolved.var, upstream.name
                ),
            );
        }
        if !config
            .models
            .iter()
            .any(|m| m.targets.iter().any(|t| t.upstream == upstream.name))
        {
            walk.warn(&upstream.path, "no model uses this upstream");
        }
    }
}

/// Fallback chains are walked transitively, so a loop would never end; report
/// each loop once, spelled out.
fn report_fallback_cycles(
    walk: &mut Walk<'_>,
    config: &Config,
    models: &HashMap<&str, &super::schema::ModelConfig>,
) {
    let mut reported: Vec<Vec<String>> = Vec::new();
    for start in &config.models {
        let mut stack: Vec<(&str, usize)> = vec![(start.name.as_str(), 0)];
        while let Some(&(name, next)) = stack.last() {
            let fallbacks = models
                .get(name)
                .map(|m| m.fallbacks.as_slice())
                .unwrap_or(&[]);
            if next >= fallbacks.len() {
                stack.pop();
                continue;
            }
            stack.last_mut().expect("stack is not empty").1 += 1;
            let child = fallbacks[next].0.as_str();
            if child == name || !models.contains_key(child) {
                continue; // reported by the per-entry checks
            }
            if let Some(at) = stack.iter().position(|(n, _)| *n == child) {
                let mut cycle: Vec<String> =
                    stack[at..].iter().map(|(n, _)| n.to_string()).collect();
                let mut canonical = cycle.clone();
                canonical.sort();
                if !reported.contains(&canonical) {
                    reported.push(canonical);
                    cycle.push(child.to_owned());
                    let path = models[stack[stack.len() - 1].0].path.key("fallbacks");
                    walk.error(
                        &path,
                        format!("fallbacks form a loop: {}", cycle.join(" -> ")),
                    );
                }
                continue;
            }
            // Bound the walk: chains longer than the model count must loop.
            if stack.len() <= config.models.len() {
                stack.push((child, 0));
            }
        }
    }
}

/// `keys:`: names and keys are unique (also against `server.auth.keys`);
/// a `models` pattern that matches no model is probably a typo; a budget
/// needs prices to count against.
fn validate_keys(walk: &mut Walk<'_>, config: &Config) {
    use crate::quota::key::{sha256, Glob};
    let mut names: HashMap<&str, &super::keypath::KeyPath> = HashMap::new();
    let mut digests: HashMap<[u8; 32], String> = config
        .server
        .auth_keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            (
                sha256(k.expose().as_bytes()),
                format!("server.auth.keys[{i}]"),
            )
        })
        .collect();
    for key in &config.keys {
        if let Some(first) = names.insert(&key.name, &key.path) {
            walk.error(
                &key.path.key("name"),
                format!(
                    "the name {:?} is already used at {first}; key names must be unique",
                    key.name
                ),
            );
        }
        if let Some(other) = digests.insert(key.digest, key.path.to_string()) {
            walk.error(
                &key.path,
                format!("this key is the same key as {other}; give each key its own value"),
            );
        }
        for (pattern, path) in &key.models {
            let glob = Glob(pattern.clone());
            if !config.models.iter().any(|m| glob.matches(&m.name)) {
                let hint = suggest::hint(pattern, config.models.iter().map(|m| m.name.as_str()));
                walk.warn(
                    path,
                    format!("{pattern:?} matches no model of this config{hint}"),
                );
            }
        }
        let budget = key.limits.budget;
        if (budget.daily_usd.is_some() || budget.monthly_usd.is_some())
            && config.models.iter().any(|m| m.pricing.is_none())
        {
            walk.warn(
                &key.path.key("budget"),
                "some models have no `pricing`: requests to them cost nothing against this budget",
            );
        }
    }
}
