//! Any request made of supported fields translates and carries what it
//! asked for; no input panics the decoder or a translator.

use proptest::prelude::*;
use serde_json::{json, Value};

use super::super::{
    translate_error, translate_request, translate_response, EventStreamDecoder, Options,
    StreamTranslator,
};
use super::eventstream::{event, frame};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        // Never write regression files into the source tree.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Text of any characters but control ones, never empty (empty texts are
/// dropped by design).
fn text() -> impl Strategy<Value = String> {
    prop_oneof!["\\PC{1,30}", "[a-z \"\\\\\n]{1,20}"]
}

#[derive(Debug, Clone)]
struct Request {
    system: Vec<String>,
    /// (is the user, text)
    turns: Vec<(bool, String)>,
    max_tokens: Option<u32>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    stop: Vec<String>,
    /// (name, description, property names)
    tools: Vec<(String, Option<String>, Vec<String>)>,
    /// 0 auto, 1 required, 2 the first tool by name.
    tool_choice: Option<u8>,
}

fn request() -> impl Strategy<Value = Request> {
    (
        proptest::collection::vec(text(), 0..3),
        proptest::collection::vec((any::<bool>(), text()), 1..6),
        proptest::option::of(1u32..100_000),
        proptest::option::of((0u32..=100).prop_map(|t| f64::from(t) / 100.0)),
        proptest::option::of((0u32..=100).prop_map(|t| f64::from(t) / 100.0)),
        proptest::collection::vec(text(), 0..4),
        proptest::collection::vec(
            (
                "[a-zA-Z0-9_-]{1,20}",
                proptest::option::of(text()),
                proptest::collection::vec("[a-z_]{1,8}", 0..4),
            ),
            0..3,
        ),
        proptest::option::of(0u8..3),
    )
        .prop_map(
            |(system, turns, max_tokens, temperature, top_p, stop, tools, tool_choice)| Request {
                system,
                turns,
                max_tokens,
                temperature,
                top_p,
                stop,
                tools,
                tool_choice,
            },
        )
}

fn schema(properties: &[String]) -> Value {
    let mut map = serde_json::Map::new();
    for p in properties {
        map.insert(p.clone(), json!({"type": "string"}));
    }
    json!({"type": "object", "properties": map})
}

impl Request {
    fn body(&self) -> Value {
        let mut messages: Vec<Value> = self
            .system
            .iter()
            .map(|s| json!({"role": "system", "content": s}))
            .collect();
        for (user, text) in &self.turns {
            let role = if *user { "user" } else { "assistant" };
            messages.push(json!({"role": role, "content": text}));
        }
        let mut body = json!({"model": "m", "messages": messages});
        if let Some(n) = self.max_tokens {
            body["max_tokens"] = json!(n);
        }
        if let Some(t) = self.temperature {
            body["temperature"] = json!(t);
        }
        if let Some(p) = self.top_p {
            body["top_p"] = json!(p);
        }
        if !self.stop.is_empty() {
            body["stop"] = json!(self.stop);
        }
        if !self.tools.is_empty() {
            body["tools"] = self
                .tools
                .iter()
                .map(|(name, description, properties)| {
                    let mut function = json!({"name": name, "parameters": schema(properties)});
                    if let Some(d) = description {
                        function["description"] = json!(d);
                    }
                    json!({"type": "function", "function": function})
                })
                .collect();
            if let Some(choice) = self.tool_choice {
                body["tool_choice"] = match choice {
                    0 => json!("auto"),
                    1 => json!("required"),
                    _ => json!({"type": "function", "function": {"name": self.tools[0].0}}),
                };
            }
        }
        body
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn expressible_requests_carry_every_field(req in request()) {
        let out = translate_request(req.body().to_string().as_bytes(), &Options::default());
        let out: Value = serde_json::from_slice(&out.expect("translates")).unwrap();

        let system: Vec<Value> = req.system.iter().map(|s| json!({"text": s})).collect();
        prop_assert_eq!(out.get("system").cloned().unwrap_or(json!([])), json!(system));

        // Merged by role, texts in order.
        let mut turns: Vec<(bool, Vec<Value>)> = Vec::new();
        for (user, text) in &req.turns {
            match turns.last_mut() {
                Some((last, blocks)) if last == user => blocks.push(json!({"text": text})),
                _ => turns.push((*user, vec![json!({"text": text})])),
            }
        }
        let expected: Vec<Value> = turns
            .into_iter()
            .map(|(user, content)| json!({"role": if user { "user" } else { "assistant" }, "content": content}))
            .collect();
        prop_assert_eq!(&out["messages"], &json!(expected));

        let inference = out.get("inferenceConfig").cloned().unwrap_or(json!({}));
        prop_assert_eq!(inference.get("maxTokens").and_then(Value::as_u64), req.max_tokens.map(u64::from));
        prop_assert_eq!(inference.get("temperature").and_then(Value::as_f64), req.temperature);
        prop_assert_eq!(inference.get("topP").and_then(Value::as_f64), req.top_p);
        prop_assert_eq!(inference.get("stopSequences").cloned().unwrap_or(json!([])), json!(req.stop));

        if req.tools.is_empty() {
            prop_assert!(out.get("toolConfig").is_none());
        } else {
            let tools = out["toolConfig"]["tools"].as_array().unwrap();
            prop_assert_eq!(tools.len(), req.tools.len());
            for (spec, (name, description, properties)) in tools.iter().zip(&req.tools) {
                prop_assert_eq!(&spec["toolSpec"]["name"], &json!(name));
                prop_assert_eq!(spec["toolSpec"].get("description").cloned(), description.clone().map(Value::from));
                prop_assert_eq!(&spec["toolSpec"]["inputSchema"]["json"], &schema(properties));
            }
            let choice = out["toolConfig"].get("toolChoice").cloned();
            let expected = req.tool_choice.map(|c| match c {
                0 => json!({"auto": {}}),
                1 => json!({"any": {}}),
                _ => json!({"tool": {"name": req.tools[0].0}}),
            });
            prop_assert_eq!(choice, expected);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400), split in 0usize..400) {
        let _ = translate_request(&bytes, &Options::default());
        let _ = translate_response(&bytes, "m");
        let _ = translate_error(400, std::str::from_utf8(&bytes).ok(), &bytes);
        let mut decoder = EventStreamDecoder::new();
        let mut translator = StreamTranslator::new(true, "m");
        let mut out = Vec::new();
        let at = split.min(bytes.len());
        for chunk in [&bytes[..at], &bytes[at..]] {
            if decoder.feed(chunk, |m| translator.message(&m, &mut out)).is_err() {
                break;
            }
        }
        let _ = decoder.finish();
    }

    #[test]
    fn valid_frames_with_arbitrary_payloads_never_panic(
        frames in proptest::collection::vec(
            (
                prop_oneof![Just("event".to_owned()), Just("exception".to_owned()), Just("error".to_owned()), "[a-z]{0,8}"],
                prop_oneof![
                    Just("messageStart".to_owned()), Just("contentBlockStart".to_owned()), Just("contentBlockDelta".to_owned()),
                    Just("contentBlockStop".to_owned()), Just("messageStop".to_owned()), Just("metadata".to_owned()), "[a-zA-Z]{0,12}"
                ],
                prop_oneof![
                    proptest::collection::vec(any::<u8>(), 0..64),
                    Just(br#"{"contentBlockIndex":0,"start":{"toolUse":{"toolUseId":"t","name":"n"}}}"#.to_vec()),
                    Just(br#"{"contentBlockIndex":0,"delta":{"toolUse":{"input":"{\"a\""}}}"#.to_vec()),
                    Just(br#"{"contentBlockIndex":0,"delta":{"text":"x"}}"#.to_vec()),
                    Just(br#"{"usage":{"inputTokens":18446744073709551615,"outputTokens":1}}"#.to_vec()),
                ],
            ),
            0..12,
        ),
        flip in proptest::option::of(any::<(usize, u8)>()),
    ) {
        let mut bytes = Vec::new();
        for (kind, name, payload) in &frames {
            bytes.extend(frame(&[(":message-type", kind.as_str()), (":event-type", name.as_str()), (":exception-type", name.as_str())], payload));
        }
        bytes.extend(event("metadata", "{}"));
        if let Some((at, bits)) = flip {
            if !bytes.is_empty() {
                let at = at % bytes.len();
                bytes[at] ^= bits;
            }
        }
        let mut decoder = EventStreamDecoder::new();
        let mut translator = StreamTranslator::new(false, "m").with_usage_chunk();
        let mut out = Vec::new();
        let _ = decoder.feed(&bytes, |m| translator.message(&m, &mut out));
        for event in &out {
            prop_assert!(event.starts_with(b"data: ") && event.ends_with(b"\n\n"));
        }
    }
}
