//! Why one attempt failed before it produced a response.

use std::time::Duration;

use crate::units::format_duration;

/// A failed attempt. Carries names and addresses, never a credential.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AttemptError {
    /// TCP/TLS connect failed or was refused.
    #[error("cannot connect to upstream `{upstream}` at {address}: {detail}")]
    Connect {
        /// Upstream name.
        upstream: String,
        /// Its base URL.
        address: String,
        /// What the connector said.
        detail: String,
    },
    /// No response headers within `timeouts.first_byte`.
    #[error("upstream `{upstream}` at {address} sent no response within {} (`timeouts.first_byte`)", format_duration(*after))]
    FirstByteTimeout {
        /// Upstream name.
        upstream: String,
        /// Its base URL.
        address: String,
        /// The timeout that ran out.
        after: Duration,
    },
    /// A stream sent no content event within `timeouts.first_token`.
    #[error("upstream `{upstream}` at {address} sent no token within {} (`timeouts.first_token`)", format_duration(*after))]
    FirstTokenTimeout {
        /// Upstream name.
        upstream: String,
        /// Its base URL.
        address: String,
        /// The timeout that ran out.
        after: Duration,
    },
    /// A stream's first event was an error.
    #[error("upstream `{upstream}` at {address} sent an error event before any token: {event}")]
    ErrorEvent {
        /// Upstream name.
        upstream: String,
        /// Its base URL.
        address: String,
        /// The start of the event's data.
        event: String,
    },
    /// A stream ended without any content.
    #[error("upstream `{upstream}` at {address} ended its stream without any content")]
    EmptyStream {
        /// Upstream name.
        upstream: String,
        /// Its base URL.
        address: String,
    },
    /// The upstream answered with an error status that was moved past.
    #[error("upstream `{upstream}` at {address} answered {status}")]
    Status {
        /// Upstream name.
        upstream: String,
        /// Its base URL.
        address: String,
        /// The status.
        status: http::StatusCode,
    },
    /// The model's `deadline` passed before any attempt committed.
    #[error("no answer within the model's deadline of {} (`deadline`)", format_duration(*after))]
    Deadline {
        /// The deadline.
        after: Duration,
    },
    /// The model's `max_attempts` were used up.
    #[error("the model's limit of {limit} attempts (`max_attempts`) was reached")]
    AttemptLimit {
        /// The limit.
        limit: u32,
    },
    /// No usable response: the connection closed or broke, or the bytes were
    /// not valid HTTP/1.1.
    #[error("upstream `{upstream}` at {address} gave no usable answer: {detail}")]
    Transport {
        /// Upstream name.
        upstream: String,
        /// Its base URL.
        address: String,
        /// What the HTTP/1.1 client saw (`h1::ClientError`).
        detail: String,
    },
    /// The upstream's protocol cannot serve this endpoint (an Anthropic
    /// upstream asked for embeddings).
    #[error("upstream `{upstream}` ({provider}) does not serve {endpoint}")]
    Unsupported {
        /// Upstream name.
        upstream: String,
        /// Its provider kind.
        provider: &'static str,
        /// The endpoint asked for, e.g. `/v1/embeddings`.
        endpoint: String,
    },
    /// The request cannot be expressed in the upstream's protocol.
    #[error("upstream `{upstream}` ({provider}) cannot take this request: {message}")]
    Untranslatable {
        /// Upstream name.
        upstream: String,
        /// Its provider kind.
        provider: &'static str,
        /// Why, naming the field.
        message: String,
        /// The request field at fault.
        param: Option<&'static str>,
    },
    /// The target is at its own `rpm`/`tpm` (skipped, nothing was sent).
    #[error("target `{target}` is at its rate limit (`rpm`/`tpm`); it has room again in {}", format_duration(*wait))]
    RateLimited {
        /// `upstream/model`.
        target: String,
        /// Until one more request fits.
        wait: Duration,
    },
    /// A `${VAR}` the upstream needs is unset.
    #[error("upstream `{upstream}` is not configured: environment variable {var} is not set")]
    NotConfigured {
        /// Upstream name.
        upstream: String,
        /// The variable to set.
        var: String,
    },
}

impl AttemptError {
    /// Stable label for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            AttemptError::Connect { .. } => "connect",
            AttemptError::FirstByteTimeout { .. } => "first_byte_timeout",
            AttemptError::Transport { .. } => "transport",
            AttemptError::NotConfigured { .. } => "not_configured",
            AttemptError::Unsupported { .. } => "unsupported",
            AttemptError::Untranslatable { .. } => "untranslatable",
            AttemptError::FirstTokenTimeout { .. } => "first_token_timeout",
            AttemptError::ErrorEvent { .. } => "error_event",
            AttemptError::EmptyStream { .. } => "empty_stream",
            AttemptError::Status { .. } => "status",
            AttemptError::Deadline { .. } => "deadline",
            AttemptError::AttemptLimit { .. } => "attempt_limit",
            AttemptError::RateLimited { .. } => "rate_limited",
        }
    }
}
