//! `estimate_input_tokens`: the documented formula, on a known request.

use serde_json::json;

use super::super::{
    estimate_input_tokens, CHARS_PER_TOKEN, REPLY_PRIMING_TOKENS, TOKENS_PER_IMAGE,
    TOKENS_PER_MESSAGE,
};

#[test]
fn the_estimate_follows_the_documented_formula() {
    let body = json!({
        "model": "m",
        "system": "You are terse.",                     // 14 characters
        "messages": [{"role": "user", "content": "Hello, Claude"}], // 13
        "tools": [{"name": "get_weather",               // 11
                   "description": "Get weather",        // 11
                   "input_schema": {"type":"object"}}]  // 17 as written
    });
    let chars: u64 = 14 + 13 + 11 + 11 + 17;
    let expected = chars.div_ceil(CHARS_PER_TOKEN) + 2 * TOKENS_PER_MESSAGE + REPLY_PRIMING_TOKENS;
    assert_eq!(
        estimate_input_tokens(body.to_string().as_bytes()),
        Ok(expected)
    );
    assert_eq!(expected, 28);
}

#[test]
fn images_tool_calls_and_results_count_and_thinking_does_not() {
    let body = json!({
        "model": "m",
        "max_tokens": 1,
        "messages": [
            {"role": "user", "content": [
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgoAAAANSUhEUgAA"}},
                {"type": "text", "text": "What?"}                                       // 5
            ]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "a long chain of thought that is not sent", "signature": "x"},
                {"type": "tool_use", "id": "t", "name": "look", "input": {"a":1}}        // 4 + 7
            ]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "héllo"}]} // 5
        ]
    });
    let chars: u64 = 5 + 4 + 7 + 5;
    let expected = chars.div_ceil(CHARS_PER_TOKEN)
        + 3 * TOKENS_PER_MESSAGE
        + TOKENS_PER_IMAGE
        + REPLY_PRIMING_TOKENS;
    assert_eq!(
        estimate_input_tokens(body.to_string().as_bytes()),
        Ok(expected)
    );
}

#[test]
fn requests_that_cannot_be_sent_are_not_counted() {
    let e = estimate_input_tokens(br#"{"model":"m","messages":[],"tools":[{"type":"web_search_20250305","name":"web_search"}]}"#).unwrap_err();
    assert_eq!(e.param, Some("tools"));
    let e = estimate_input_tokens(b"nope").unwrap_err();
    assert_eq!(e.param, None);
    assert!(e.message.contains("OpenAI-compatible target"));
    // count_tokens requests carry no max_tokens.
    assert_eq!(
        estimate_input_tokens(br#"{"model":"m","messages":[{"role":"user","content":"abcd"}]}"#),
        Ok(1 + TOKENS_PER_MESSAGE + REPLY_PRIMING_TOKENS)
    );
}
