//! `translate_response`: Google's documented answers, candidates, tool
//! calls, finish reasons, blocked prompts, usage.

use serde_json::{json, Value};

use super::super::translate_response;

const MODEL: &str = "gemini-2.5-flash";

fn translate(body: &Value) -> Value {
    let out = translate_response(body.to_string().as_bytes(), MODEL).expect("a response");
    let mut out: Value = serde_json::from_slice(&out).expect("JSON");
    let created = out["created"].as_u64().expect("created is a number");
    assert!(created > 1_700_000_000, "created is now: {created}");
    out["created"] = json!(0);
    out
}

fn candidate(parts: Value, finish: &str) -> Value {
    json!({"content": {"parts": parts, "role": "model"}, "finishReason": finish, "index": 0})
}

fn response(candidates: Value) -> Value {
    json!({
        "candidates": candidates,
        "usageMetadata": {"promptTokenCount": 8, "candidatesTokenCount": 12, "totalTokenCount": 20},
        "modelVersion": "gemini-2.5-flash-001", "responseId": "mHQXaMbiOrOH",
    })
}

#[test]
fn googles_text_answer_becomes_a_chat_completion() {
    // ai.google.dev "Text generation", REST answer, with thinking tokens.
    let body = r#"{
      "candidates": [{"content": {"parts": [{"text": "AI learns patterns from data to make predictions."}], "role": "model"},
                      "finishReason": "STOP", "index": 0}],
      "usageMetadata": {"promptTokenCount": 8, "candidatesTokenCount": 10, "totalTokenCount": 43,
                        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 8}], "thoughtsTokenCount": 25},
      "modelVersion": "gemini-2.5-flash",
      "responseId": "mHQXaMbiOrOHz7IPr5zWwAQ"
    }"#;
    let out = translate_response(body.as_bytes(), "ignored").unwrap();
    let out = String::from_utf8(out).unwrap();
    let created = serde_json::from_str::<Value>(&out).unwrap()["created"]
        .as_u64()
        .unwrap();
    assert_eq!(
        out,
        format!(
            concat!(
                r#"{{"id":"chatcmpl-mHQXaMbiOrOHz7IPr5zWwAQ","object":"chat.completion","created":{},"model":"gemini-2.5-flash","#,
                r#""choices":[{{"index":0,"message":{{"role":"assistant","content":"AI learns patterns from data to make predictions.","refusal":null}},"logprobs":null,"finish_reason":"stop"}}],"#,
                r#""usage":{{"prompt_tokens":8,"completion_tokens":35,"total_tokens":43,"prompt_tokens_details":{{"cached_tokens":0}},"completion_tokens_details":{{"reasoning_tokens":25}}}}}}"#
            ),
            created
        )
    );
}

#[test]
fn text_parts_are_joined_and_thoughts_skipped() {
    let out = translate(&response(json!([candidate(
        json!([
            {"text": "Let me think about it.", "thought": true},
            {"text": "Hello"},
            {"text": ", world", "thoughtSignature": "AAAA"},
            {"inlineData": {"mimeType": "image/png", "data": "AAAA"}},
            {"executableCode": {"language": "PYTHON", "code": "print(1)"}},
        ]),
        "STOP"
    )])));
    assert_eq!(out["choices"][0]["message"]["content"], "Hello, world");
    assert_eq!(out["model"], "gemini-2.5-flash-001");
    assert_eq!(out["id"], "chatcmpl-mHQXaMbiOrOH");
}

#[test]
fn function_calls_become_tool_calls_with_the_args_as_written() {
    // ai.google.dev "Function calling": the model asks for set_light_values.
    let body = r#"{"candidates":[{"content":{"role":"model","parts":[
        {"text":"Setting the lights."},
        {"functionCall":{"name":"set_light_values","args":{"color_temp":"warm","brightness":25}}},
        {"functionCall":{"name":"now"}}
    ]},"finishReason":"STOP","index":0}],"responseId":"R1"}"#;
    let out = String::from_utf8(translate_response(body.as_bytes(), MODEL).unwrap()).unwrap();
    assert!(
        out.contains(r#""arguments":"{\"color_temp\":\"warm\",\"brightness\":25}""#),
        "{out}"
    );
    let out: Value = serde_json::from_str(&out).unwrap();
    let choice = &out["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(choice["message"]["content"], "Setting the lights.");
    assert_eq!(
        choice["message"]["tool_calls"],
        json!([
            {"id": "call_0R1", "type": "function", "function": {"name": "set_light_values", "arguments": "{\"color_temp\":\"warm\",\"brightness\":25}"}},
            {"id": "call_1R1", "type": "function", "function": {"name": "now", "arguments": "{}"}},
        ])
    );
    // No responseId and no modelVersion: generic id, the given model.
    assert_eq!(out["model"], MODEL);
}

#[test]
fn an_answer_of_only_tool_calls_has_null_content() {
    let out = translate(&response(json!([candidate(
        json!([{"functionCall": {"name": "f", "args": {"x": 1}}}]),
        "STOP"
    )])));
    assert_eq!(out["choices"][0]["message"]["content"], Value::Null);
    assert_eq!(out["choices"][0]["finish_reason"], "tool_calls");
}

#[test]
fn finish_reasons_map_as_documented() {
    for (reason, finish, refusal) in [
        ("STOP", "stop", false),
        ("MAX_TOKENS", "length", false),
        ("SAFETY", "content_filter", true),
        ("RECITATION", "content_filter", true),
        ("BLOCKLIST", "content_filter", true),
        ("PROHIBITED_CONTENT", "content_filter", true),
        ("SPII", "content_filter", true),
        ("IMAGE_SAFETY", "content_filter", true),
        ("IMAGE_PROHIBITED_CONTENT", "content_filter", true),
        ("OTHER", "stop", false),
        ("LANGUAGE", "stop", false),
        ("MALFORMED_FUNCTION_CALL", "stop", false),
        ("FINISH_REASON_UNSPECIFIED", "stop", false),
        ("SOMETHING_NEW", "stop", false),
    ] {
        let out = translate(&response(json!([candidate(
            json!([{"text": "x"}]),
            reason
        )])));
        let choice = &out["choices"][0];
        assert_eq!(choice["finish_reason"], finish, "{reason}");
        let message = &choice["message"];
        if refusal {
            let text = message["refusal"].as_str().expect("a refusal");
            assert!(text.contains(reason), "{text}");
        } else {
            assert_eq!(message["refusal"], Value::Null, "{reason}");
        }
    }
    // A filtered candidate without content.
    let out = translate(&response(
        json!([{"finishReason": "SAFETY", "index": 0, "safetyRatings": []}]),
    ));
    assert_eq!(out["choices"][0]["message"]["content"], Value::Null);
    assert_eq!(out["choices"][0]["finish_reason"], "content_filter");
    // MAX_TOKENS with calls stays `length`; no finishReason is `stop`.
    let out = translate(&response(json!([candidate(
        json!([{"functionCall": {"name": "f", "args": {}}}]),
        "MAX_TOKENS"
    ),])));
    assert_eq!(out["choices"][0]["finish_reason"], "length");
    let out = translate(&response(json!([{"content": {"parts": []}}])));
    assert_eq!(out["choices"][0]["finish_reason"], "stop");
    assert_eq!(out["choices"][0]["message"]["content"], "");
}

#[test]
fn a_blocked_prompt_is_one_filtered_choice() {
    let out = translate(&json!({
        "promptFeedback": {"blockReason": "PROHIBITED_CONTENT", "safetyRatings": []},
        "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9},
        "modelVersion": "gemini-2.5-pro", "responseId": "b1",
    }));
    assert_eq!(
        out["choices"],
        json!([{"index": 0, "message": {"role": "assistant", "content": null,
            "refusal": "The Gemini upstream blocked the prompt: blockReason PROHIBITED_CONTENT."},
            "logprobs": null, "finish_reason": "content_filter"}])
    );
    assert_eq!(out["usage"]["prompt_tokens"], 9);
    assert_eq!(out["usage"]["completion_tokens"], 0);
}

#[test]
fn each_candidate_is_a_choice() {
    let out = translate(&response(json!([
        {"content": {"parts": [{"text": "one"}], "role": "model"}, "finishReason": "STOP"},
        {"content": {"parts": [{"text": "two"}], "role": "model"}, "finishReason": "MAX_TOKENS", "index": 1},
    ])));
    let choices = out["choices"].as_array().unwrap();
    assert_eq!(choices.len(), 2);
    assert_eq!(
        (
            &choices[0]["index"],
            &choices[0]["message"]["content"],
            &choices[0]["finish_reason"]
        ),
        (&json!(0), &json!("one"), &json!("stop"))
    );
    assert_eq!(
        (
            &choices[1]["index"],
            &choices[1]["message"]["content"],
            &choices[1]["finish_reason"]
        ),
        (&json!(1), &json!("two"), &json!("length"))
    );
}

#[test]
fn usage_counts_thoughts_as_completion_and_cache_as_cached() {
    let mut body = response(json!([candidate(json!([{"text": "x"}]), "STOP")]));
    body["usageMetadata"] = json!({
        "promptTokenCount": 2000, "cachedContentTokenCount": 1500, "candidatesTokenCount": 40,
        "thoughtsTokenCount": 60, "totalTokenCount": 2100,
    });
    assert_eq!(
        translate(&body)["usage"],
        json!({"prompt_tokens": 2000, "completion_tokens": 100, "total_tokens": 2100,
            "prompt_tokens_details": {"cached_tokens": 1500},
            "completion_tokens_details": {"reasoning_tokens": 60}})
    );
    body.as_object_mut().unwrap().remove("usageMetadata");
    assert_eq!(translate(&body)["usage"]["total_tokens"], 0);
}

#[test]
fn long_ids_and_model_versions_are_bounded() {
    let mut body = response(json!([candidate(json!([{"text": "x"}]), "STOP")]));
    body["responseId"] = json!("r".repeat(10_000));
    body["modelVersion"] = json!("m".repeat(10_000));
    let out = translate(&body);
    assert!(out["id"].as_str().unwrap().len() <= 200);
    assert!(out["model"].as_str().unwrap().len() <= 200);
}

#[test]
fn bodies_that_are_not_answers_give_none() {
    for body in [
        &b""[..],
        b"not json",
        b"[]",
        b"[{\"candidates\":[]}]",
        b"{}",
        b"{\"candidates\":[]}",
        b"{\"candidates\":\"x\"}",
        br#"{"error":{"code":400,"message":"bad","status":"INVALID_ARGUMENT"}}"#,
        br#"{"candidates":[{"content":{"parts":[{"text":1}]}}]}"#,
    ] {
        assert!(
            translate_response(body, MODEL).is_none(),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
}
