//! Why one attempt failed before it produced a response.

use std::time::Duration;

use crate::config::format_duration;

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
    /// The connection broke before a response (reset, closed, protocol error).
    #[error(
        "upstream `{upstream}` at {address} closed the connection without answering: {detail}"
    )]
    Transport {
        /// Upstream name.
        upstream: String,
        /// Its base URL.
        address: String,
        /// What hyper said.
        detail: String,
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
        }
    }
}

/// A readable cause for a hyper-util client error: the innermost source,
/// which says "Connection refused (os error 111)" rather than "client error (Connect)".
pub fn describe_client_error(err: &hyper_util::client::legacy::Error) -> String {
    let mut cause: &dyn std::error::Error = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    let text = cause.to_string();
    if text.is_empty() {
        err.to_string()
    } else {
        text
    }
}
