//! Resuming a stream that broke after its first token: which models do it
//! (`models.<name>.resume`) and how each upstream continues a partial
//! answer (`upstreams.<name>.prefill`).

use crate::providers::ProviderKind;

/// Resumes per request when `resume: true` is written without settings.
pub const DEFAULT_MAX_RESUMES: u32 = 2;
/// Most answer text kept per stream for a resume (`resume.max_text`): past
/// it a break ends the stream with an error event, as without `resume`.
pub const DEFAULT_MAX_RESUME_TEXT: usize = 128 * 1024;

/// `models.<name>.resume`: continue a committed stream on the next target
/// when it breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResumePolicy {
    /// Continuations per request.
    pub max_resumes: u32,
    /// Most answer text (bytes) kept for the continuation's prefill.
    pub max_text: usize,
}

impl Default for ResumePolicy {
    fn default() -> Self {
        ResumePolicy {
            max_resumes: DEFAULT_MAX_RESUMES,
            max_text: DEFAULT_MAX_RESUME_TEXT,
        }
    }
}

/// `upstreams.<name>.prefill`: how an upstream continues a partial answer
/// given as the last, assistant, message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefill {
    /// It cannot (OpenAI's own API, Azure OpenAI, Gemini, …): skipped for
    /// resumes that carry text (a resume before any text needs no prefill).
    None,
    /// A trailing assistant message is continued as it is: Anthropic,
    /// Ollama, llama.cpp's server.
    Assistant,
    /// vLLM: the trailing assistant message plus
    /// `"continue_final_message": true, "add_generation_prompt": false`.
    Vllm,
}

impl Prefill {
    /// The spellings in `router.yaml`.
    pub const NAMES: [&'static str; 3] = ["none", "assistant", "vllm"];

    /// The spelling in `router.yaml`.
    pub fn name(self) -> &'static str {
        match self {
            Prefill::None => "none",
            Prefill::Assistant => "assistant",
            Prefill::Vllm => "vllm",
        }
    }

    /// Parses a spelling of [`Prefill::NAMES`].
    pub fn parse(name: &str) -> Option<Prefill> {
        match name {
            "none" => Some(Prefill::None),
            "assistant" => Some(Prefill::Assistant),
            "vllm" => Some(Prefill::Vllm),
            _ => None,
        }
    }

    /// What a provider does when `prefill` is not set: Anthropic's Messages
    /// API and Ollama continue a final assistant message; OpenAI's API does
    /// not support it; an OpenAI-compatible server depends on what it is
    /// (vLLM wants `vllm`, llama.cpp `assistant`), so it has to be said;
    /// Gemini and Bedrock depend on the model.
    pub fn default_for(kind: ProviderKind) -> Prefill {
        match kind {
            ProviderKind::Anthropic | ProviderKind::Ollama => Prefill::Assistant,
            ProviderKind::OpenAi
            | ProviderKind::Compatible
            | ProviderKind::Azure
            | ProviderKind::Gemini
            | ProviderKind::Bedrock
            | ProviderKind::Mock => Prefill::None,
        }
    }
}
