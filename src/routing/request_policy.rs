//! What a model's policies do to a request and to its last answer:
//! `system_prompt`, `defaults`, `clamp` and `on_exhausted`.

/// A model's request and answer policies (all optional).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestPolicy {
    /// A system prompt to add.
    pub system_prompt: Option<SystemPrompt>,
    /// Top-level request members set when the request has none, as JSON
    /// text (`"temperature"` → `0.2`), in file order.
    pub defaults: Vec<(String, String)>,
    /// Numeric request members kept within bounds.
    pub clamps: Vec<Clamp>,
    /// The assistant message answered when every target and fallback
    /// failed, instead of an error.
    pub on_exhausted: Option<String>,
}

impl RequestPolicy {
    /// Whether it changes any request.
    pub fn edits_requests(&self) -> bool {
        self.system_prompt.is_some() || !self.defaults.is_empty() || !self.clamps.is_empty()
    }
}

/// `system_prompt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemPrompt {
    /// The prompt.
    pub text: String,
    /// When it is added.
    pub mode: SystemPromptMode,
}

/// `system_prompt.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SystemPromptMode {
    /// Only to a request that has no system (or developer) message.
    IfMissing,
    /// Always, before any the request has.
    Always,
}

impl SystemPromptMode {
    /// The spellings in `router.yaml`.
    pub const NAMES: [&'static str; 2] = ["if_missing", "always"];
}

/// One `clamp` entry: a numeric member kept within `[min, max]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Clamp {
    /// The member as written; `max_tokens` also covers
    /// `max_completion_tokens` and the Responses API's `max_output_tokens`.
    pub key: String,
    /// Lowest value let through.
    pub min: Option<f64>,
    /// Highest value let through.
    pub max: Option<f64>,
}
