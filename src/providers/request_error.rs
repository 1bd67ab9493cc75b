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

/// One field of a request, read on its own so that an error names it.
pub(crate) fn parse<'a, T: serde::Deserialize<'a>>(
    raw: Option<&'a serde_json::value::RawValue>,
    param: &'static str,
) -> Result<Option<T>, RequestError> {
    raw.map(|raw| {
        serde_json::from_str(raw.get()).map_err(|e| {
            RequestError::new(
                format!("`{param}` is malformed: {}.", without_position(&e)),
                param,
            )
        })
    })
    .transpose()
}

/// serde_json's message without " at line 1 column 42", which would point
/// into the field rather than the body.
pub(crate) fn without_position(e: &impl std::fmt::Display) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

/// A count that must be at least 1 (`max_tokens`, `n`, …) was not.
pub(crate) fn positive(param: &'static str) -> RequestError {
    RequestError::new(format!("`{param}` must be at least 1."), param)
}

/// OpenAI's `stop` (absent, null, a string or an array of strings) as a list.
pub(crate) fn stop_sequences(stop: Option<&serde_json::Value>) -> Result<Vec<&str>, RequestError> {
    use serde_json::Value;
    let bad = || RequestError::new("`stop` must be a string or an array of strings.", "stop");
    match stop {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(one)) => Ok(vec![one.as_str()]),
        Some(Value::Array(many)) => many.iter().map(|s| s.as_str().ok_or_else(bad)).collect(),
        Some(_) => Err(bad()),
    }
}
