//! Why an OpenAI request cannot be expressed in a provider's protocol.

/// A request a translating provider cannot express: answered to the client
/// as a 400 `unsupported_parameter` (or `invalid_request_error`) naming the
/// field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RequestError {
    /// A sentence for the client: what cannot be translated and what to do.
    pub message: String,
    /// The request field at fault, if one is (OpenAI's `param`).
    pub param: Option<&'static str>,
}

impl RequestError {
    /// `message` about the field `param`.
    pub fn new(message: impl Into<String>, param: &'static str) -> RequestError {
        RequestError {
            message: message.into(),
            param: Some(param),
        }
    }

    /// `message` about the request as a whole (not one field).
    pub fn whole(message: impl Into<String>) -> RequestError {
        RequestError {
            message: message.into(),
            param: None,
        }
    }

    /// A field `provider`'s API has no counterpart for; `what` says which
    /// use of it (e.g. `"(audio output)"`).
    pub fn unsupported(param: &'static str, what: &str, provider: &str) -> RequestError {
        RequestError::new(
            format!("`{param}` {what} is not supported for {provider} upstreams; remove it or route the request to an OpenAI-compatible model."),
            param,
        )
    }
}
