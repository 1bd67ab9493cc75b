//! `provider: anthropic` (placeholder module header; replaced at merge).

mod address;

pub use address::Anthropic;

/// `max_tokens` sent when the client gives none (placeholder; replaced at merge).
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

/// Per-upstream settings the translation needs (placeholder; replaced at merge).
#[derive(Debug, Clone)]
pub struct Options {
    /// `max_tokens` sent when the client gives none.
    pub default_max_tokens: u32,
}

// --- placeholders until the translation lands (never on main) ---
/// Placeholder.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RequestError {
    /// Placeholder.
    pub message: String,
    /// Placeholder.
    pub param: Option<&'static str>,
}
/// Placeholder.
pub fn translate_request(_body: &[u8], _model: &str, _o: &Options) -> Result<Vec<u8>, RequestError> {
    unimplemented!()
}
/// Placeholder.
pub fn translate_response(_body: &[u8]) -> Option<Vec<u8>> {
    unimplemented!()
}
/// Placeholder.
pub fn translate_error(_status: u16, _body: &[u8]) -> Vec<u8> {
    unimplemented!()
}
/// Placeholder.
pub struct StreamTranslator;
impl StreamTranslator {
    /// Placeholder.
    pub fn new(_include_usage: bool) -> StreamTranslator {
        StreamTranslator
    }
    /// Placeholder.
    pub fn event(&mut self, _event: &crate::sse::Event<'_>, _out: &mut Vec<bytes::Bytes>) {}
    /// Placeholder.
    pub fn finished(&self) -> bool {
        false
    }
}
