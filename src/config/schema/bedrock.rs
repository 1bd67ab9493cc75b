//! `upstreams.<name>.bedrock` — the region and AWS credentials of an Amazon
//! Bedrock upstream.
//!
//! Requests to Bedrock are signed with SigV4 unless the upstream has an
//! `api_key` (a Bedrock API key, sent as a Bearer token). The signing keys
//! come from the block (usually as `${VAR}` references) or, when the block
//! names none, from the standard AWS environment variables
//! (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`), read
//! when the file loads or reloads. Missing credentials disable the upstream
//! (answered with "set AWS_ACCESS_KEY_ID") rather than the whole file, like
//! any unset `${VAR}`.

use serde_yaml::Value;

use super::upstream::Unresolved;
use crate::config::keypath::KeyPath;
use crate::config::walk::{Fields, Walk};
use crate::providers::ProviderKind;
use crate::secret::Secret;

/// The keys of a `bedrock:` block.
const BEDROCK_KEYS: &[&str] = &[
    "region",
    "access_key_id",
    "secret_access_key",
    "session_token",
    "max_tokens",
];

/// `upstreams.<name>.bedrock`, read.
#[derive(Debug, Clone, Default)]
pub struct BedrockConfig {
    /// The AWS region (`us-east-1`): the default `base_url` and the signing scope.
    pub region: String,
    /// SigV4 keys; `None` with an `api_key` (Bearer) or when unresolved.
    pub keys: Option<AwsKeys>,
    /// `maxTokens` sent when the client gives none (Bedrock's model default otherwise).
    pub max_tokens: Option<u32>,
}

/// Static AWS credentials.
#[derive(Debug, Clone)]
pub struct AwsKeys {
    /// `AWS_ACCESS_KEY_ID` (not secret on its own, but never logged either).
    pub access_key_id: Secret,
    /// `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: Secret,
    /// `AWS_SESSION_TOKEN`, for temporary credentials.
    pub session_token: Option<Secret>,
}

/// Reads `bedrock:` for a Bedrock upstream (an error on any other);
/// `has_api_key`: the upstream authenticates with a Bedrock API key, so no
/// signing keys are needed. An unset credential is noted in `unresolved`.
pub(super) fn read_bedrock(
    walk: &mut Walk<'_>,
    fields: &Fields<'_>,
    path: &KeyPath,
    provider: ProviderKind,
    has_api_key: bool,
    unresolved: &mut Option<Unresolved>,
) -> BedrockConfig {
    let mut config = BedrockConfig::default();
    let block = fields.get("bedrock");
    if provider != ProviderKind::Bedrock {
        if let Some((_, p)) = block {
            walk.error(
                &p,
                "only `provider: bedrock` upstreams take `bedrock` settings",
            );
        }
        return config;
    }
    let bpath = path.key("bedrock");
    let b = match &block {
        Some((v, p)) => walk.fields(v, p, BEDROCK_KEYS),
        None => None,
    };
    let get = |key: &str| b.as_ref().and_then(|b| b.get(key));

    // The region: the block's, else AWS_REGION, else AWS_DEFAULT_REGION.
    let region = match get("region") {
        Some((v, p)) => walk
            .strict_text(v, &p)
            .and_then(|r| check_region(walk, &p, r)),
        None => match walk
            .env("AWS_REGION")
            .or_else(|| walk.env("AWS_DEFAULT_REGION"))
        {
            Some(r) if !r.is_empty() => check_region(walk, &bpath.key("region"), r),
            _ => {
                walk.error(
                    &bpath.key("region"),
                    "missing: say which AWS region serves this model, e.g. `bedrock: { region: us-east-1 }` (or set AWS_REGION)",
                );
                None
            }
        },
    };
    config.region = region.unwrap_or_default();

    if let Some(n) = get("max_tokens").and_then(|(v, p)| walk.number(v, &p, 1..=1_000_000)) {
        config.max_tokens = Some(n as u32);
    }

    let id = get("access_key_id");
    let secret = get("secret_access_key");
    let token = get("session_token");
    if has_api_key {
        for (key, found) in [
            ("access_key_id", &id),
            ("secret_access_key", &secret),
            ("session_token", &token),
        ] {
            if let Some((_, p)) = found {
                walk.error(
                    p,
                    format!("`{key}` signs requests, but this upstream has an `api_key` (a Bedrock API key); keep one of the two"),
                );
            }
        }
        return config;
    }
    match (&id, &secret) {
        (Some(_), None) | (None, Some(_)) => {
            walk.error(
                &bpath,
                "`access_key_id` and `secret_access_key` go together: give both, or neither to read them from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
            );
            return config;
        }
        _ => {}
    }
    // Each credential: the block's `${VAR}` (or literal), else the standard variable.
    let mut read =
        |found: &Option<(&Value, KeyPath)>, var: &str| -> Result<Option<Secret>, String> {
            match found {
                Some((v, p)) => {
                    let Some(text) = walk.text(v, p) else {
                        return Ok(None);
                    };
                    if let Some(unset) = text.unset.first() {
                        return Err(unset.clone());
                    }
                    if text
                        .value
                        .bytes()
                        .any(|b| b.is_ascii_control() || b == b' ')
                    {
                        walk.error(p, "contains a space or control character; remove it");
                        return Ok(None);
                    }
                    Ok((!text.value.is_empty()).then(|| Secret::new(text.value)))
                }
                None => Ok(walk.env(var).filter(|v| !v.is_empty()).map(Secret::new)),
            }
        };
    let note = |unresolved: &mut Option<Unresolved>, var: String| {
        if unresolved.is_none() {
            *unresolved = Some(Unresolved {
                path: bpath.clone(),
                var,
            });
        }
    };
    let access_key_id = read(&id, "AWS_ACCESS_KEY_ID");
    let secret_access_key = read(&secret, "AWS_SECRET_ACCESS_KEY");
    let session_token = read(&token, "AWS_SESSION_TOKEN");
    match (access_key_id, secret_access_key, session_token) {
        (Ok(Some(access_key_id)), Ok(Some(secret_access_key)), Ok(session_token)) => {
            config.keys = Some(AwsKeys {
                access_key_id,
                secret_access_key,
                session_token,
            });
        }
        (Err(var), _, _) | (_, Err(var), _) | (_, _, Err(var)) => note(unresolved, var),
        (Ok(None), _, _) => note(unresolved, "AWS_ACCESS_KEY_ID".to_owned()),
        (_, Ok(None), _) => note(unresolved, "AWS_SECRET_ACCESS_KEY".to_owned()),
    }
    config
}

/// A region is a DNS label such as `us-east-1` or `eu-central-2`.
fn check_region(walk: &mut Walk<'_>, path: &KeyPath, region: String) -> Option<String> {
    let valid = !region.is_empty()
        && region.len() <= 32
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !region.starts_with('-')
        && !region.ends_with('-');
    if valid {
        Some(region)
    } else {
        walk.error(
            path,
            format!("{region:?} is not an AWS region; write it like us-east-1"),
        );
        None
    }
}
