//! AWS Signature Version 4 for Bedrock requests signed with access keys.
//!
//! [`sign`] computes the headers to add to a request; the request itself
//! (method, URI, the headers given, body) must be sent exactly as signed.
//! The signing is `aws-sigv4`'s, with its defaults for services other
//! than S3: the path is double-encoded in the canonical request (so a model
//! id's `%3A` is signed as `%253A`, as AWS expects), the body's SHA-256 is
//! part of the signature but not sent as `x-amz-content-sha256`, and a
//! session token is sent and signed as `x-amz-security-token`.
//!
//! Signed headers: `host` (from the URI's authority, without a default
//! port, unless a `host` header is given), `x-amz-date`,
//! `x-amz-security-token` when there is a session token, and every header
//! passed in (pass `content-type`). The returned `authorization` and
//! `x-amz-security-token` values are marked sensitive, so `http`'s `Debug`
//! and Switchyard's logs never print them; [`Credentials`] prints neither
//! secret either.

use std::time::SystemTime;

use aws_sigv4::http_request::{
    sign as sign_request, SignableBody, SignableRequest, SigningSettings,
};
use aws_sigv4::sign::v4::SigningParams;
use http::{HeaderName, HeaderValue};

use crate::secret::Secret;

/// The signing name of Bedrock's runtime API.
const SERVICE: &str = "bedrock";

/// AWS credentials for SigV4 (an access key pair, and a session token for
/// temporary credentials).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// `AKIA…` / `ASIA…`: not a secret (it is sent in every request).
    pub access_key_id: String,
    /// The secret key: only ever used to derive the signing key.
    pub secret_access_key: Secret,
    /// STS session token of temporary credentials.
    pub session_token: Option<Secret>,
}

impl Credentials {
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and (optional)
    /// `AWS_SESSION_TOKEN` from the environment; `None` unless both keys
    /// are set and not empty. An empty session token counts as none.
    pub fn from_env() -> Option<Credentials> {
        Credentials::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`Credentials::from_env`] with `lookup` for the environment.
    pub(super) fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Option<Credentials> {
        let present = |name: &str| lookup(name).filter(|v| !v.is_empty());
        Some(Credentials {
            access_key_id: present("AWS_ACCESS_KEY_ID")?,
            secret_access_key: Secret::new(present("AWS_SECRET_ACCESS_KEY")?),
            session_token: present("AWS_SESSION_TOKEN").map(Secret::new),
        })
    }
}

/// Why a request could not be signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the request cannot be SigV4-signed: {0}")]
pub struct SignError(String);

/// The SigV4 headers to add to a request to Bedrock in `region`, signed at
/// `time`: `authorization`, `x-amz-date`, and `x-amz-security-token` when
/// `credentials` has a session token (the module docs say what is signed).
///
/// `uri` must be absolute (`https://host/path`); `headers` are the other
/// headers that will be sent and should be signed (at least
/// `content-type`), names in any case.
///
/// # Errors
///
/// [`SignError`] when the URI has no host, or a header name, header value
/// or credential cannot be used in a request.
pub fn sign(
    method: &str,
    uri: &http::Uri,
    headers: &[(&str, &str)],
    body: &[u8],
    credentials: &Credentials,
    region: &str,
    time: SystemTime,
) -> Result<Vec<(HeaderName, HeaderValue)>, SignError> {
    sign_for(
        SERVICE,
        method,
        uri,
        headers,
        body,
        credentials,
        region,
        time,
    )
}

/// [`sign`] for any service name (AWS's test suite uses `service`).
#[allow(clippy::too_many_arguments)]
pub(super) fn sign_for(
    service: &str,
    method: &str,
    uri: &http::Uri,
    headers: &[(&str, &str)],
    body: &[u8],
    credentials: &Credentials,
    region: &str,
    time: SystemTime,
) -> Result<Vec<(HeaderName, HeaderValue)>, SignError> {
    // aws-sigv4 panics on a URI without an authority: refuse it here.
    if uri.authority().is_none() || uri.host().is_none_or(str::is_empty) {
        return Err(SignError("the URI has no host".into()));
    }
    for (name, value) in headers {
        // It lower-cases names and parses values: refuse what it would trip on.
        if HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()).is_err()
            || HeaderValue::from_str(value).is_err()
        {
            return Err(SignError(format!("the header `{name}` is not valid")));
        }
    }
    let identity = aws_credential_types::Credentials::new(
        credentials.access_key_id.as_str(),
        credentials.secret_access_key.expose(),
        credentials
            .session_token
            .as_ref()
            .map(|t| t.expose().to_owned()),
        None,
        "switchyard",
    )
    .into();
    let params = SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| SignError(e.to_string()))?
        .into();
    let request = SignableRequest::new(
        method,
        uri.to_string(),
        headers.iter().copied(),
        SignableBody::Bytes(body),
    )
    .map_err(|e| SignError(e.to_string()))?;
    let (instructions, _signature) = sign_request(request, &params)
        .map_err(|e| SignError(e.to_string()))?
        .into_parts();
    let (added, _params) = instructions.into_parts();
    added
        .into_iter()
        .map(|header| {
            let name = HeaderName::from_bytes(header.name().as_bytes())
                .map_err(|_| SignError(format!("`{}` is not a header name", header.name())))?;
            let mut value = HeaderValue::from_str(header.value())
                .map_err(|_| SignError(format!("the `{name}` value is not a header value")))?;
            value.set_sensitive(header.sensitive() || name == http::header::AUTHORIZATION);
            Ok((name, value))
        })
        .collect()
}
