//! `response_format` by the forced answer tool, both ways.

use bytes::Bytes;
use serde_json::{json, Value};

use super::super::{translate_request, translate_response, Options, StreamTranslator};
use crate::openai::{classify, ChunkKind};
use crate::sse::SseScanner;

const ANSWER: &str = "switchyard_json_answer";

fn translate_raw(body: &str) -> Result<String, crate::providers::RequestError> {
    translate_request(body.as_bytes(), "claude", &Options::default())
        .map(|out| String::from_utf8(out).unwrap())
}

fn translate(body: &str) -> Value {
    serde_json::from_str(&translate_raw(body).expect("translates")).unwrap()
}

const MESSAGES: &str = r#""messages":[{"role":"user","content":"Weather in Oslo as JSON"}]"#;
const TOOLS: &str = r#""tools":[{"type":"function","function":{"name":"lookup"}}]"#;
const SCHEMA: &str = r#"{"type":"object","properties":{"zeta":{"type":"string"},"alpha":{"type":"number"}},"required":["zeta"]}"#;

fn json_schema() -> String {
    format!(
        r#""response_format":{{"type":"json_schema","json_schema":{{"name":"weather","description":"Current weather.","schema":{SCHEMA},"strict":true}}}}"#
    )
}

#[test]
fn json_schema_adds_a_forced_answer_tool_with_the_schema_as_written() {
    let raw = translate_raw(&format!("{{{MESSAGES},{}}}", json_schema())).unwrap();
    assert!(
        raw.contains(&format!(r#""input_schema":{SCHEMA}"#)),
        "{raw}"
    );
    let out: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(
        out["tools"],
        json!([{
            "name": ANSWER,
            "description": "Give your final answer by calling this tool: its input is the answer (`weather`). Current weather.",
            "input_schema": serde_json::from_str::<Value>(SCHEMA).unwrap(),
        }])
    );
    assert_eq!(
        out["tool_choice"],
        json!({"type": "tool", "name": ANSWER, "disable_parallel_tool_use": true})
    );
}

#[test]
fn json_object_asks_for_any_object() {
    let out = translate(&format!(
        r#"{{{MESSAGES},"response_format":{{"type":"json_object"}},"tool_choice":"none"}}"#
    ));
    assert_eq!(out["tools"][0]["input_schema"], json!({"type": "object"}));
    assert_eq!(out["tools"][0]["name"], ANSWER);
    assert_eq!(out["tool_choice"]["type"], "tool");
}

#[test]
fn with_client_tools_the_model_calls_a_tool_or_answers() {
    let body = |choice: &str| format!("{{{MESSAGES},{TOOLS},{}{choice}}}", json_schema());
    let out = translate(&body(""));
    let names: Vec<&str> = out["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["lookup", ANSWER]);
    assert_eq!(out["tool_choice"], json!({"type": "any"}));
    for (choice, expected) in [
        (r#","tool_choice":"auto""#, json!({"type": "any"})),
        (r#","tool_choice":"required""#, json!({"type": "any"})),
        (
            r#","tool_choice":"none""#,
            json!({"type": "tool", "name": ANSWER, "disable_parallel_tool_use": true}),
        ),
        (
            r#","tool_choice":{"type":"function","function":{"name":"lookup"}}"#,
            json!({"type": "tool", "name": "lookup"}),
        ),
        (
            r#","parallel_tool_calls":false"#,
            json!({"type": "any", "disable_parallel_tool_use": true}),
        ),
    ] {
        assert_eq!(
            translate(&body(choice))["tool_choice"],
            expected,
            "{choice}"
        );
    }
}

#[test]
fn formats_that_cannot_be_a_tool_input_are_refused() {
    for format in [
        r#"{"type":"json_schema"}"#,
        r#"{"type":"json_schema","json_schema":{"name":"list","schema":{"type":"array","items":{"type":"string"}}}}"#,
        r#"{"type":"json_schema","json_schema":{"name":"n","schema":{"type":["object","null"]}}}"#,
        r#"{"type":"json_schema","json_schema":{"name":"n","schema":true}}"#,
        r#"{"type":"xml"}"#,
    ] {
        let e =
            translate_raw(&format!(r#"{{{MESSAGES},"response_format":{format}}}"#)).unwrap_err();
        assert_eq!(e.param, Some("response_format"), "{format}: {e:?}");
    }
    let clash = format!(
        r#"{{{MESSAGES},"tools":[{{"type":"function","function":{{"name":"{ANSWER}"}}}}]}}"#
    );
    assert_eq!(translate_raw(&clash).unwrap_err().param, Some("tools"));
    // A schema without a root type is left to the upstream to judge.
    let any_of = r#"{"type":"json_schema","json_schema":{"name":"n","schema":{"anyOf":[{"type":"object"}]}}}"#;
    assert!(translate_raw(&format!(r#"{{{MESSAGES},"response_format":{any_of}}}"#)).is_ok());
}

fn answer_message(extra_block: &str, stop: &str) -> String {
    format!(
        r#"{{"id":"msg_1","type":"message","role":"assistant","model":"claude","content":[{extra_block}{{"type":"tool_use","id":"toolu_9","name":"{ANSWER}","input":{{"zeta":"sunny","alpha":12}}}}],"stop_reason":"{stop}","usage":{{"input_tokens":9,"output_tokens":4}}}}"#
    )
}

#[test]
fn the_answer_tool_call_comes_back_as_content() {
    let out = translate_response(answer_message("", "tool_use").as_bytes()).unwrap();
    let out: Value = serde_json::from_slice(&out).unwrap();
    let choice = &out["choices"][0];
    assert_eq!(
        choice["message"]["content"],
        r#"{"zeta":"sunny","alpha":12}"#
    );
    assert!(choice["message"].get("tool_calls").is_none());
    assert_eq!(choice["finish_reason"], "stop");

    let cut = translate_response(answer_message("", "max_tokens").as_bytes()).unwrap();
    let cut: Value = serde_json::from_slice(&cut).unwrap();
    assert_eq!(cut["choices"][0]["finish_reason"], "length");

    // With a real tool call beside it, the call decides the finish.
    let both = answer_message(
        r#"{"type":"text","text":"Sure."},{"type":"tool_use","id":"toolu_1","name":"lookup","input":{}},"#,
        "tool_use",
    );
    let both: Value =
        serde_json::from_slice(&translate_response(both.as_bytes()).unwrap()).unwrap();
    let choice = &both["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(
        choice["message"]["content"],
        r#"{"zeta":"sunny","alpha":12}"#
    );
    assert_eq!(
        choice["message"]["tool_calls"][0]["function"]["name"],
        "lookup"
    );
}

#[test]
fn a_streamed_answer_tool_call_streams_as_content() {
    let stream = format!(
        concat!(
            "event: message_start\n",
            r#"data: {{"type":"message_start","message":{{"id":"msg_1","model":"claude","usage":{{"input_tokens":9,"output_tokens":1}}}}}}"#,
            "\n\n",
            "event: content_block_start\n",
            r#"data: {{"type":"content_block_start","index":0,"content_block":{{"type":"tool_use","id":"toolu_9","name":"{answer}","input":{{}}}}}}"#,
            "\n\n",
            "event: content_block_delta\n",
            r#"data: {{"type":"content_block_delta","index":0,"delta":{{"type":"input_json_delta","partial_json":"{{\"zeta\": \"sun"}}}}"#,
            "\n\n",
            "event: content_block_delta\n",
            r#"data: {{"type":"content_block_delta","index":0,"delta":{{"type":"input_json_delta","partial_json":"ny\"}}"}}}}"#,
            "\n\n",
            "event: content_block_stop\n",
            r#"data: {{"type":"content_block_stop","index":0}}"#,
            "\n\n",
            "event: message_delta\n",
            r#"data: {{"type":"message_delta","delta":{{"stop_reason":"tool_use"}},"usage":{{"output_tokens":8}}}}"#,
            "\n\n",
            "event: message_stop\n",
            r#"data: {{"type":"message_stop"}}"#,
            "\n\n",
        ),
        answer = ANSWER
    );
    let mut scanner = SseScanner::new();
    let mut translator = StreamTranslator::new(false);
    let mut out = Vec::new();
    scanner
        .feed(&Bytes::from(stream), |e| translator.event(&e, &mut out))
        .unwrap();
    assert!(translator.finished());
    let deltas: Vec<(Value, Value)> = out[..out.len() - 1]
        .iter()
        .map(|b| {
            let data = std::str::from_utf8(b)
                .unwrap()
                .strip_prefix("data: ")
                .unwrap();
            let chunk: Value = serde_json::from_str(data).unwrap();
            let choice = &chunk["choices"][0];
            (choice["delta"].clone(), choice["finish_reason"].clone())
        })
        .collect();
    assert_eq!(
        deltas,
        [
            (json!({"role": "assistant", "content": ""}), Value::Null),
            (json!({"content": "{\"zeta\": \"sun"}), Value::Null),
            (json!({"content": "ny\"}"}), Value::Null),
            (json!({}), json!("stop")),
        ]
    );
    let mut kinds = Vec::new();
    for chunk in &out {
        SseScanner::new()
            .feed(chunk, |e| kinds.push(classify(&e)))
            .unwrap();
    }
    assert_eq!(kinds[..2], [ChunkKind::Empty, ChunkKind::Content]);
}
