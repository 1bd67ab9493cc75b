//! OpenAI tool-call ids that carry Gemini's call id and thought signature.
//!
//! Gemini 3 answers a function call with a `thoughtSignature` on the
//! `functionCall` part (on the first call of a step when several are made
//! in parallel) and refuses the next request (400) if the history does not
//! send it back on that part. OpenAI clients keep nothing of a tool call
//! but its `id`, `name` and `arguments`, and send the `id` back twice: on
//! the assistant message's `tool_calls` and on the `tool` message. So the
//! id carries what must come back:
//!
//! ```text
//! id  = "call_" tag [ "_id_" gid ] [ "_ts_" sig ]
//! tag = [A-Za-z0-9]+   the call's position k in the answer, then up to 16
//!                      letters and digits of Gemini's responseId (unique
//!                      across turns)
//! gid = [A-Za-z0-9-]+  Gemini's functionCall.id, when it gave one of at
//!                      most 64 such characters (else it is not carried)
//! sig = the thoughtSignature in base64url without padding ('+' → '-',
//!       '/' → '_', '=' dropped), when it is base64 of at most 64 KiB
//! ```
//!
//! e.g. `call_0AbC123_ts_CiQBjz1rX2…`. Every id is ASCII letters, digits,
//! `_` and `-`, which every OpenAI client and other providers' tool-call id
//! rules accept. Reading an id back ([`carried`]) restores `functionCall.id`
//! and `functionResponse.id` (only when Gemini gave one) and the signature
//! in standard base64 with padding, byte for byte what Gemini sent. Any id
//! not of this form (a client's own, another provider's) carries nothing:
//! the call goes back without id or signature.

/// The prefix of every id made here.
const PREFIX: &str = "call_";
/// Before Gemini's functionCall.id.
const ID_MARK: &str = "_id_";
/// Before the thought signature.
const SIGNATURE_MARK: &str = "_ts_";

/// Longest Gemini functionCall.id carried, in bytes.
pub(super) const MAX_GEMINI_ID_BYTES: usize = 64;
/// Longest thought signature carried, in bytes of base64.
pub(super) const MAX_SIGNATURE_BYTES: usize = 64 << 10;
/// Letters and digits of the responseId in the tag.
const RESPONSE_ID_CHARS: usize = 16;

/// The letters and digits of `response_id` put in every tag of one answer.
pub(super) fn response_tag(response_id: &str) -> String {
    response_id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(RESPONSE_ID_CHARS)
        .collect()
}

/// The OpenAI id of call `k` of an answer whose [`response_tag`] is `tag`.
pub(super) fn tool_call_id(
    k: u32,
    tag: &str,
    gemini_id: Option<&str>,
    signature: Option<&str>,
) -> String {
    let gemini_id = gemini_id.filter(|id| {
        !id.is_empty()
            && id.len() <= MAX_GEMINI_ID_BYTES
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    });
    let signature = signature.filter(|s| {
        !s.is_empty()
            && s.len() <= MAX_SIGNATURE_BYTES
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_' | b'='))
            && s.bytes().any(|b| b != b'=')
    });
    let mut id =
        String::with_capacity(32 + gemini_id.map_or(0, str::len) + signature.map_or(0, str::len));
    id.push_str(PREFIX);
    id.push_str(&k.to_string());
    id.push_str(tag);
    if let Some(gemini_id) = gemini_id {
        id.push_str(ID_MARK);
        id.push_str(gemini_id);
    }
    if let Some(signature) = signature {
        id.push_str(SIGNATURE_MARK);
        id.extend(signature.chars().filter_map(|c| match c {
            '+' => Some('-'),
            '/' => Some('_'),
            '=' => None,
            c => Some(c),
        }));
    }
    id
}

/// What an OpenAI tool-call id carries back to Gemini.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Carried<'a> {
    /// Gemini's functionCall.id.
    pub(super) gemini_id: Option<&'a str>,
    /// The thought signature, in standard base64 with padding.
    pub(super) signature: Option<String>,
}

/// What `id` carries; nothing when it is not of this module's form.
pub(super) fn carried(id: &str) -> Carried<'_> {
    parse(id).unwrap_or_default()
}

/// The signature Google documents for a function call Gemini did not make
/// (a history begun on another provider, or written by the client): Gemini 3
/// refuses a call without a signature in the current turn, and accepts this
/// value as "not validated".
pub(super) const FOREIGN_CALL_SIGNATURE: &str = "context_engineering_is_the_way_to_go";

fn parse(id: &str) -> Option<Carried<'_>> {
    let rest = id.strip_prefix(PREFIX)?;
    let tag_end = rest.find('_').unwrap_or(rest.len());
    let (tag, mut rest) = rest.split_at(tag_end);
    if tag.is_empty() || !tag.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    let mut carried = Carried::default();
    if let Some(after) = rest.strip_prefix(ID_MARK) {
        let end = after.find('_').unwrap_or(after.len());
        let gemini_id = &after[..end];
        if gemini_id.is_empty()
            || gemini_id.len() > MAX_GEMINI_ID_BYTES
            || !gemini_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return None;
        }
        carried.gemini_id = Some(gemini_id);
        rest = &after[end..];
    }
    if let Some(signature) = rest.strip_prefix(SIGNATURE_MARK) {
        if signature.is_empty()
            || signature.len() > MAX_SIGNATURE_BYTES
            || !signature
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return None;
        }
        let mut standard = String::with_capacity(signature.len() + 3);
        standard.extend(signature.chars().map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        }));
        while !standard.len().is_multiple_of(4) {
            standard.push('=');
        }
        carried.signature = Some(standard);
        rest = "";
    }
    rest.is_empty().then_some(carried)
}
