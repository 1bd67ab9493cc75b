//! A documented estimate of a Messages request's input tokens, for
//! `count_tokens` on a target that cannot count them.
//!
//! It is a heuristic, never exact: about four characters per token for
//! English prose and code (fewer for other scripts), over what would be
//! sent to the target (the request as [`super::request_to_openai`] writes
//! it, so thinking blocks, which are dropped, do not count):
//!
//! ```text
//! estimate = ceil(characters / 4) + 4 × messages + 1600 × images + 3
//! ```
//!
//! - `characters`: Unicode scalar values of every message text (system
//!   prompt, turns, tool results, plain-text documents), every tool call's
//!   name and arguments (the input JSON as written), and every tool's name,
//!   description and `input_schema` JSON as written.
//! - `messages`: the OpenAI messages sent (the system prompt is one, each
//!   tool result is one): chat templates add a few tokens per message.
//! - `images`: 1,600 tokens each, Anthropic's figure for an image at its
//!   largest unresized size (about 1.15 megapixels); images are not decoded.
//! - `3`: the tokens that prime the reply.

use super::request::{self, Fields, OutContent, OutRequest, Part};
use crate::providers::RequestError;

/// Characters per token assumed.
pub const CHARS_PER_TOKEN: u64 = 4;
/// Tokens added per message sent.
pub const TOKENS_PER_MESSAGE: u64 = 4;
/// Tokens counted per image.
pub const TOKENS_PER_IMAGE: u64 = 1600;
/// Tokens that prime the reply.
pub const REPLY_PRIMING_TOKENS: u64 = 3;

/// A documented estimate of a Messages request's input tokens for targets
/// that cannot count them: a clearly labelled heuristic (the formula is in
/// this module's docs), never exact.
///
/// # Errors
///
/// The [`RequestError`] [`super::request_to_openai`] would give: a request
/// that cannot be sent to the target is not counted either.
pub fn estimate_input_tokens(body: &[u8]) -> Result<u64, RequestError> {
    let fields: Fields<'_> = request::read(body, "counted")?;
    let messages = request::messages(&fields)?;
    let out = request::translate(&fields, &messages)?;
    Ok(estimate(&out))
}

fn estimate(request: &OutRequest<'_>) -> u64 {
    let chars = |text: &str| text.chars().count() as u64;
    let mut characters = 0u64;
    let mut images = 0u64;
    for message in &request.messages {
        match &message.content {
            OutContent::Text(text) => characters += chars(text),
            OutContent::Parts(parts) => {
                for part in parts {
                    match part {
                        Part::Text { text } => characters += chars(text),
                        Part::Image { .. } => images += 1,
                    }
                }
            }
            OutContent::Null => {}
        }
        for call in &message.tool_calls {
            characters += chars(call.function.name) + chars(call.function.arguments);
        }
    }
    for tool in &request.tools {
        let function = &tool.function;
        characters += chars(&function.name)
            + function.description.as_deref().map_or(0, chars)
            + chars(function.parameters.get());
    }
    let messages = request.messages.len() as u64;
    characters.div_ceil(CHARS_PER_TOKEN)
        + TOKENS_PER_MESSAGE * messages
        + TOKENS_PER_IMAGE * images
        + REPLY_PRIMING_TOKENS
}
