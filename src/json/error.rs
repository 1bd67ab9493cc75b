//! Why a request body was refused.

/// Why a request body was refused. Every variant is the client's fault and maps
/// to HTTP 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InspectError {
    /// Body is not valid JSON. `offset` is the byte offset where parsing failed;
    /// `reason` is short lowercase text such as `"expected ',' or '}'"`.
    #[error("the request body is not valid JSON: {reason} at byte {offset}")]
    Syntax {
        /// Byte offset in the body where the problem was found.
        offset: usize,
        /// Short lowercase description of the problem.
        reason: &'static str,
    },
    /// Valid JSON but the top level is not an object.
    #[error("the request body must be a JSON object")]
    NotAnObject,
    /// `"model"` is present but not a string (`found` is e.g. `"number"`,
    /// `"null"`, `"object"`).
    #[error("`model` must be a string, found {found}")]
    ModelNotString {
        /// JSON type that was found instead.
        found: &'static str,
    },
    /// `"stream"` is present but neither a bool nor `null`.
    #[error("`stream` must be a boolean, found {found}")]
    StreamNotBool {
        /// JSON type that was found instead.
        found: &'static str,
    },
    /// The same top-level key appears twice (`"model"`, `"stream"` or
    /// `"stream_options"`); JSON parsers disagree on which copy wins, so we refuse
    /// to guess.
    #[error("the request body has more than one `{key}` field")]
    DuplicateKey {
        /// The repeated key.
        key: &'static str,
    },
    /// Arrays/objects nest deeper than [`MAX_DEPTH`](super::MAX_DEPTH).
    #[error("the request body nests deeper than {max} levels")]
    TooDeep {
        /// The limit that was exceeded ([`MAX_DEPTH`](super::MAX_DEPTH)).
        max: usize,
    },
}

/// A syntax error at `offset`.
pub(super) fn syntax(offset: usize, reason: &'static str) -> InspectError {
    InspectError::Syntax { offset, reason }
}
