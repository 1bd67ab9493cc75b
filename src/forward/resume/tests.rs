use super::*;

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).expect("valid JSON")
}

#[test]
fn the_continuation_carries_the_prefix_as_the_last_assistant_message() {
    let body = br#"{"model":"m","stream":true,"max_tokens":100,"messages":[{"role":"user","content":"Count"}],"tools":[{"type":"function","function":{"name":"f","parameters":{"z":1,"a":2}}}]}"#;
    let out = continuation_body(body, "1 2 3", Prefill::Assistant, 30).expect("resumable");
    let v = json(&out);
    assert_eq!(
        v["messages"][1],
        serde_json::json!({"role": "assistant", "content": "1 2 3"})
    );
    assert_eq!(v["max_tokens"], 70);
    assert_eq!(v["stream_options"]["include_usage"], true);
    assert!(v.get("continue_final_message").is_none());
    // The client's values are kept byte for byte (a schema's key order too).
    let text = std::str::from_utf8(&out).expect("utf-8");
    assert!(text.contains(r#""parameters":{"z":1,"a":2}"#), "{text}");
    assert!(
        text.contains(r#"{"role":"user","content":"Count"}"#),
        "{text}"
    );
}

#[test]
fn vllm_is_told_to_continue_the_final_message() {
    let body = br#"{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":false,"x":1}}"#;
    let v = json(&continuation_body(body, "Hel", Prefill::Vllm, 1).expect("resumable"));
    assert_eq!(v["continue_final_message"], true);
    assert_eq!(v["add_generation_prompt"], false);
    assert_eq!(
        v["stream_options"],
        serde_json::json!({"include_usage": true, "x": 1})
    );
}

#[test]
fn nothing_said_yet_resends_the_request_as_it_was() {
    let body = br#"{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true}"#;
    let v = json(&continuation_body(body, "", Prefill::None, 0).expect("resumable"));
    assert_eq!(v["messages"].as_array().map(Vec::len), Some(1));
    assert!(v.get("continue_final_message").is_none());
}

#[test]
fn some_requests_cannot_be_continued() {
    let several = br#"{"model":"m","n":2,"messages":[]}"#;
    assert!(continuation_body(several, "x", Prefill::Assistant, 1).is_err());
    let used_up = br#"{"model":"m","max_completion_tokens":10,"messages":[]}"#;
    assert!(continuation_body(used_up, "x", Prefill::Assistant, 10).is_err());
    assert!(continuation_body(b"[1,2]", "x", Prefill::Assistant, 1).is_err());
    let no_messages = br#"{"model":"m","prompt":"x"}"#;
    assert!(continuation_body(no_messages, "x", Prefill::Assistant, 1).is_err());
}

fn observed(events: &[&str]) -> Transcript {
    let mut t = Transcript::default();
    for e in events {
        t.observe(e.as_bytes(), 1024);
    }
    t
}

#[test]
fn the_transcript_keeps_the_text_and_the_first_chunk_s_identity() {
    let t = observed(&[
        r#"{"id":"c1","model":"up","created":7,"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}"#,
        r#"{"id":"c1","model":"up","created":7,"choices":[{"index":0,"delta":{"content":"Hello"}}]}"#,
        r#"{"id":"c1","choices":[{"index":0,"delta":{"content":" world"},"finish_reason":null}]}"#,
    ]);
    assert_eq!(t.text, "Hello world");
    assert_eq!(
        (t.id.as_deref(), t.model.as_deref(), t.created),
        (Some("c1"), Some("up"), Some(7))
    );
    assert!(t.blocked.is_none() && !t.finished());
}

#[test]
fn tool_calls_refusals_several_choices_and_long_answers_are_not_resumed() {
    let tools = observed(&[
        r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"a"}}]}}]}"#,
    ]);
    assert!(tools.blocked.is_some());
    let empty_tools =
        observed(&[r#"{"choices":[{"index":0,"delta":{"content":"x","tool_calls":[]}}]}"#]);
    assert!(empty_tools.blocked.is_none());
    let refusal = observed(&[r#"{"choices":[{"index":0,"delta":{"refusal":"no"}}]}"#]);
    assert!(refusal.blocked.is_some());
    let two = observed(&[
        r#"{"choices":[{"index":0,"delta":{"content":"a"}}]}"#,
        r#"{"choices":[{"index":1,"delta":{"content":"b"}}]}"#,
    ]);
    assert!(two.blocked.is_some());
    let mut long = Transcript::default();
    long.observe(
        br#"{"choices":[{"index":0,"delta":{"content":"abcdef"}}]}"#,
        4,
    );
    assert!(long.blocked.is_some());
    let done = observed(&["[DONE]"]);
    assert!(done.finished());
    let finished = observed(&[r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#]);
    assert!(finished.finished());
}

fn splice(client_usage: bool, strip_leading: bool) -> Splice {
    Splice {
        id: Some("orig".into()),
        model: Some("gpt".into()),
        created: Some(42),
        index: 0,
        strip_leading,
        client_usage,
        earlier: 5,
    }
}

fn rewrite(s: &mut Splice, data: &str) -> Spliced {
    let raw = Bytes::from(format!("data: {data}\n\n"));
    s.rewrite(&raw, data.as_bytes(), true)
}

fn data_of(spliced: &Spliced) -> Value {
    let bytes = spliced.bytes.as_ref().expect("relayed");
    let text = std::str::from_utf8(bytes).expect("utf-8");
    let data = text
        .strip_prefix("data: ")
        .and_then(|t| t.strip_suffix("\n\n"));
    serde_json::from_str(data.expect("one data event")).expect("JSON")
}

#[test]
fn the_continuation_speaks_as_the_original_stream() {
    let mut s = splice(false, true);
    let role = rewrite(
        &mut s,
        r#"{"id":"new","model":"other","created":1,"choices":[{"index":0,"delta":{"role":"assistant","content":""}}],"usage":null}"#,
    );
    assert!(role.bytes.is_none(), "the role chunk is dropped");
    let first = rewrite(
        &mut s,
        r#"{"id":"new","model":"other","created":1,"choices":[{"index":0,"delta":{"content":" world"}}],"usage":null}"#,
    );
    let v = data_of(&first);
    assert_eq!(
        (v["id"].as_str(), v["model"].as_str(), v["created"].as_u64()),
        (Some("orig"), Some("gpt"), Some(42))
    );
    assert_eq!(
        v["choices"][0]["delta"]["content"], "world",
        "whitespace the client has is not repeated"
    );
    assert!(v.get("usage").is_none(), "the client did not ask for usage");
    let next = rewrite(
        &mut s,
        r#"{"id":"new","choices":[{"index":0,"delta":{"content":" again"}}]}"#,
    );
    assert_eq!(data_of(&next)["choices"][0]["delta"]["content"], " again");
    let finish = rewrite(
        &mut s,
        r#"{"id":"new","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#,
    );
    assert_eq!(data_of(&finish)["choices"][0]["finish_reason"], "stop");
    let usage = rewrite(
        &mut s,
        r#"{"id":"new","choices":[],"usage":{"prompt_tokens":20,"completion_tokens":3,"total_tokens":23}}"#,
    );
    assert!(
        usage.bytes.is_none(),
        "usage only goes to a client that asked"
    );
    assert_eq!(
        usage
            .usage
            .map(|u| (u.prompt_tokens, u.completion_tokens, u.total_tokens)),
        Some((20, 8, 28))
    );
    let done = rewrite(&mut s, "[DONE]");
    assert_eq!(done.bytes.as_deref(), Some(&b"data: [DONE]\n\n"[..]));
}

#[test]
fn a_client_that_asked_for_usage_gets_the_sum() {
    let mut s = splice(true, false);
    let usage = rewrite(
        &mut s,
        r#"{"id":"new","choices":[],"usage":{"prompt_tokens":20,"completion_tokens":3,"total_tokens":23}}"#,
    );
    let v = data_of(&usage);
    assert_eq!(
        v["usage"],
        serde_json::json!({"prompt_tokens": 20, "completion_tokens": 8, "total_tokens": 28})
    );
    assert_eq!(v["id"], "orig");
}

#[test]
fn comments_and_other_json_pass_as_they_are() {
    let mut s = splice(false, false);
    let raw = Bytes::from_static(b": keep-alive\n\n");
    assert_eq!(s.rewrite(&raw, b"", false).bytes, Some(raw));
    let error = r#"{"error":{"message":"x"}}"#;
    let out = rewrite(&mut s, error);
    assert_eq!(out.bytes, Some(Bytes::from(format!("data: {error}\n\n"))));
}
