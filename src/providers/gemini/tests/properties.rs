//! Any request made of fields Gemini can express translates, and each
//! field lands where the mapping says; no bytes panic any translation.

use std::borrow::Cow;

use bytes::Bytes;
use proptest::prelude::*;
use serde_json::{json, Value};

use super::super::{translate_error, translate_request, translate_response, StreamTranslator};
use crate::sse::Event;

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
struct Tool {
    name: String,
    description: Option<String>,
    properties: Vec<String>,
}

fn tool() -> impl Strategy<Value = Tool> {
    (
        "[a-zA-Z_][a-zA-Z0-9_]{0,19}",
        proptest::option::of(text()),
        proptest::collection::vec("[a-z_]{1,8}", 0..4),
    )
        .prop_map(|(name, description, properties)| Tool {
            name,
            description,
            properties,
        })
}

impl Tool {
    /// Its JSON schema, properties in the generated order.
    fn schema(&self) -> String {
        let properties: Vec<String> = self
            .properties
            .iter()
            .map(|p| format!(r#""{p}":{{"type":"string"}}"#))
            .collect();
        format!(
            r#"{{"type":"object","properties":{{{}}}}}"#,
            properties.join(",")
        )
    }
}

#[derive(Debug, Clone)]
struct Request {
    system: Vec<String>,
    /// (is the user, text)
    turns: Vec<(bool, String)>,
    max_tokens: Option<u32>,
    max_completion_tokens: Option<u32>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    stop: Option<Vec<String>>,
    stop_as_string: bool,
    n: Option<u64>,
    presence_penalty: Option<f64>,
    frequency_penalty: Option<f64>,
    seed: Option<i32>,
    /// 0 json_object, 1 json_schema.
    format: Option<u8>,
    effort: Option<usize>,
    tools: Vec<Tool>,
    /// 0 auto, 1 required, 2 none, 3 the first tool by name.
    tool_choice: Option<u8>,
    stream: Option<bool>,
}

const EFFORTS: [(&str, u32); 6] = [
    ("none", 0),
    ("minimal", 512),
    ("low", 1024),
    ("medium", 8192),
    ("high", 24576),
    ("xhigh", 24576),
];

fn request() -> impl Strategy<Value = Request> {
    (
        (
            proptest::collection::vec(text(), 0..3),
            proptest::collection::vec((any::<bool>(), text()), 1..10),
            proptest::option::of(1u32..200_000),
            proptest::option::of(1u32..200_000),
            proptest::option::of(0.0f64..=2.0),
            proptest::option::of(0.0f64..=1.0),
            proptest::option::of(proptest::collection::vec(text(), 1..4)),
            any::<bool>(),
        ),
        (
            proptest::option::of(1u64..=8),
            proptest::option::of(-2.0f64..=2.0),
            proptest::option::of(-2.0f64..=2.0),
            proptest::option::of(any::<i32>()),
            proptest::option::of(0u8..2),
            proptest::option::of(0usize..EFFORTS.len()),
            proptest::collection::vec(tool(), 0..4),
            proptest::option::of(0u8..4),
            proptest::option::of(any::<bool>()),
        ),
    )
        .prop_map(
            |(
                (
                    system,
                    turns,
                    max_tokens,
                    max_completion_tokens,
                    temperature,
                    top_p,
                    stop,
                    stop_as_string,
                ),
                (
                    n,
                    presence_penalty,
                    frequency_penalty,
                    seed,
                    format,
                    effort,
                    tools,
                    tool_choice,
                    stream,
                ),
            )| Request {
                system,
                turns,
                max_tokens,
                max_completion_tokens,
                temperature,
                top_p,
                stop,
                stop_as_string,
                n,
                presence_penalty,
                frequency_penalty,
                seed,
                format,
                effort,
                tools,
                tool_choice,
                stream,
            },
        )
}

/// The schema of a `json_schema` response format, keys in a fixed odd order.
const ANSWER_SCHEMA: &str = r#"{"type":"object","properties":{"z":{"type":"integer"},"a":{"type":"string"}},"required":["z","a"]}"#;

impl Request {
    fn body(&self) -> String {
        let mut messages: Vec<Value> = Vec::new();
        // System messages first and, for the later ones, between the turns.
        let (first, later) = self.system.split_at(self.system.len().min(1));
        for s in first {
            messages.push(json!({"role": "system", "content": s}));
        }
        for (i, (user, text)) in self.turns.iter().enumerate() {
            let role = if *user { "user" } else { "assistant" };
            messages.push(if i % 2 == 0 {
                json!({"role": role, "content": text})
            } else {
                json!({"role": role, "content": [{"type": "text", "text": text}]})
            });
            if i == 0 {
                for s in later {
                    messages.push(json!({"role": "developer", "content": s}));
                }
            }
        }
        let mut body =
            json!({"model": "gpt-4o", "messages": messages, "user": "u", "store": false});
        let mut set = |k: &str, v: Value| body[k] = v;
        if let Some(n) = self.max_tokens {
            set("max_tokens", json!(n));
        }
        if let Some(n) = self.max_completion_tokens {
            set("max_completion_tokens", json!(n));
        }
        if let Some(t) = self.temperature {
            set("temperature", json!(t));
        }
        if let Some(p) = self.top_p {
            set("top_p", json!(p));
        }
        match &self.stop {
            Some(stop) if self.stop_as_string => set("stop", json!(stop[0])),
            Some(stop) => set("stop", json!(stop)),
            None => {}
        }
        if let Some(n) = self.n {
            set("n", json!(n));
        }
        if let Some(p) = self.presence_penalty {
            set("presence_penalty", json!(p));
        }
        if let Some(p) = self.frequency_penalty {
            set("frequency_penalty", json!(p));
        }
        if let Some(seed) = self.seed {
            set("seed", json!(seed));
        }
        if let Some(effort) = self.effort {
            set("reasoning_effort", json!(EFFORTS[effort].0));
        }
        if let Some(stream) = self.stream {
            set("stream", json!(stream));
            set("stream_options", json!({"include_usage": true}));
        }
        let mut text = body.to_string();
        // Written by hand so the schemas' key order is the generated one.
        let mut extra = String::new();
        match self.format {
            Some(0) => extra.push_str(r#","response_format":{"type":"json_object"}"#),
            Some(_) => extra.push_str(&format!(
                r#","response_format":{{"type":"json_schema","json_schema":{{"name":"answer","strict":true,"schema":{ANSWER_SCHEMA}}}}}"#
            )),
            None => {}
        }
        if !self.tools.is_empty() {
            let tools: Vec<String> = self
                .tools
                .iter()
                .map(|t| {
                    let description = t
                        .description
                        .as_ref()
                        .map(|d| format!(r#","description":{}"#, json!(d)))
                        .unwrap_or_default();
                    format!(
                        r#"{{"type":"function","function":{{"name":{}{description},"parameters":{}}}}}"#,
                        json!(t.name),
                        t.schema()
                    )
                })
                .collect();
            let choice = match self.tool_choice {
                None => String::new(),
                Some(0) => r#","tool_choice":"auto""#.to_owned(),
                Some(1) => r#","tool_choice":"required""#.to_owned(),
                Some(2) => r#","tool_choice":"none""#.to_owned(),
                Some(_) => format!(
                    r#","tool_choice":{{"type":"function","function":{{"name":{}}}}}"#,
                    json!(self.tools[0].name)
                ),
            };
            extra.push_str(&format!(r#","tools":[{}]{choice}"#, tools.join(",")));
        }
        text.pop();
        text.push_str(&extra);
        text.push('}');
        text
    }
}

/// The texts of the translated contents, in order, with their roles.
fn content_texts(contents: &Value) -> Vec<(String, String)> {
    let mut texts = Vec::new();
    for content in contents.as_array().unwrap() {
        let role = content["role"].as_str().unwrap().to_owned();
        for part in content["parts"].as_array().unwrap() {
            texts.push((role.clone(), part["text"].as_str().unwrap().to_owned()));
        }
    }
    texts
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn supported_requests_translate_and_keep_what_they_ask(req in request()) {
        let body = req.body();
        let out = translate_request(body.as_bytes())
            .map_err(|e| TestCaseError::fail(format!("{e:?} for {body}")))?;
        let raw = String::from_utf8(out).unwrap();
        let out: Value = serde_json::from_str(&raw).unwrap();
        for absent in ["model", "stream", "stream_options", "user", "store"] {
            prop_assert!(out.get(absent).is_none(), "{} sent", absent);
        }

        let system = req.system.join("\n\n");
        if system.is_empty() {
            prop_assert!(out.get("systemInstruction").is_none());
        } else {
            prop_assert_eq!(&out["systemInstruction"], &json!({"parts": [{"text": system}]}));
        }

        let texts = content_texts(&out["contents"]);
        let expected: Vec<(String, String)> = req
            .turns
            .iter()
            .map(|(user, t)| ((if *user { "user" } else { "model" }).to_owned(), t.clone()))
            .collect();
        prop_assert_eq!(texts, expected);
        let roles: Vec<&str> = out["contents"].as_array().unwrap().iter().map(|m| m["role"].as_str().unwrap()).collect();
        prop_assert!(roles.windows(2).all(|w| w[0] != w[1]), "roles alternate: {:?}", roles);

        let config = out.get("generationConfig").cloned().unwrap_or(Value::Null);
        let max = req.max_completion_tokens.or(req.max_tokens);
        prop_assert_eq!(config.get("maxOutputTokens").and_then(Value::as_u64), max.map(u64::from));
        // Within an ULP or two: serde_json reads floats back without its
        // `float_roundtrip` feature.
        let close = |field: &str, want: Option<f64>| match (config.get(field).and_then(Value::as_f64), want) {
            (Some(got), Some(want)) => (got - want).abs() <= 1e-12,
            (got, want) => got.is_none() && want.is_none(),
        };
        prop_assert!(close("temperature", req.temperature), "temperature {:?}", req.temperature);
        prop_assert!(close("topP", req.top_p), "top_p {:?}", req.top_p);
        prop_assert!(close("presencePenalty", req.presence_penalty));
        prop_assert!(close("frequencyPenalty", req.frequency_penalty));
        match &req.stop {
            Some(stop) if req.stop_as_string => prop_assert_eq!(&config["stopSequences"], &json!([stop[0]])),
            Some(stop) => prop_assert_eq!(&config["stopSequences"], &json!(stop)),
            None => prop_assert!(config.get("stopSequences").is_none()),
        }
        let n = req.n.filter(|&n| n > 1);
        prop_assert_eq!(config.get("candidateCount").and_then(Value::as_u64), n);
        prop_assert_eq!(config.get("seed").and_then(Value::as_i64), req.seed.map(i64::from));
        let budget = req.effort.map(|e| json!({"thinkingBudget": EFFORTS[e].1}));
        prop_assert_eq!(config.get("thinkingConfig").cloned(), budget);
        match req.format {
            None => prop_assert!(config.get("responseMimeType").is_none()),
            Some(format) => {
                prop_assert_eq!(&config["responseMimeType"], "application/json");
                if format == 1 {
                    let schema = format!(r#""responseJsonSchema":{ANSWER_SCHEMA}"#);
                    prop_assert!(raw.contains(&schema), "{} not in {}", schema, raw);
                } else {
                    prop_assert!(config.get("responseJsonSchema").is_none());
                }
            }
        }

        let names: Vec<&str> = out.get("tools").map_or(Vec::new(), |tools| {
            tools[0]["functionDeclarations"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect()
        });
        let expected: Vec<&str> = req.tools.iter().map(|t| t.name.as_str()).collect();
        prop_assert_eq!(names, expected);
        for tool in &req.tools {
            // The schema arrives byte for byte, key order included.
            let schema = format!(r#""parametersJsonSchema":{}"#, tool.schema());
            prop_assert!(raw.contains(&schema), "{} not in {}", schema, raw);
        }
        let choice = out.get("toolConfig").cloned();
        let mode = |m: &str| Some(json!({"functionCallingConfig": {"mode": m}}));
        let expected = match (req.tools.is_empty(), req.tool_choice) {
            (true, _) | (false, None) => None,
            (false, Some(0)) => mode("AUTO"),
            (false, Some(1)) => mode("ANY"),
            (false, Some(2)) => mode("NONE"),
            (false, Some(_)) => Some(json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [req.tools[0].name]}})),
        };
        prop_assert_eq!(choice, expected);
    }

    #[test]
    fn no_bytes_panic_any_translation(bytes in proptest::collection::vec(any::<u8>(), 0..512), status in 100u16..600) {
        let _ = translate_request(&bytes);
        let _ = translate_response(&bytes, "m");
        let _ = translate_error(status, &bytes);
        let mut translator = StreamTranslator::new(true, "m");
        let mut out = Vec::new();
        translator.event(&event(bytes.clone()), &mut out);
        translator.end(&mut out);
    }

    #[test]
    fn no_json_shaped_input_panics_any_translation(value in json_value(), status in 100u16..600) {
        let bytes = value.to_string().into_bytes();
        let _ = translate_request(&bytes);
        let _ = translate_response(&bytes, "m");
        let _ = translate_error(status, &bytes);
        let mut translator = StreamTranslator::new(false, "m").with_usage_chunk();
        let mut out = Vec::new();
        translator.event(&event(bytes.clone()), &mut out);
        translator.event(&event(bytes), &mut out);
        translator.end(&mut out);
        for chunk in &out {
            prop_assert!(chunk.starts_with(b"data: ") && chunk.ends_with(b"\n\n"));
        }
    }
}

fn event(data: Vec<u8>) -> Event<'static> {
    Event {
        raw: Bytes::new(),
        event: None,
        data: Cow::Owned(data),
        has_data: true,
        comment_only: false,
    }
}

/// JSON built from the names both protocols use, so that the translators'
/// structs match often and their edge cases get visited.
fn json_value() -> impl Strategy<Value = Value> {
    let keys = prop_oneof![
        Just("messages"),
        Just("role"),
        Just("content"),
        Just("tool_calls"),
        Just("tool_call_id"),
        Just("function"),
        Just("arguments"),
        Just("name"),
        Just("type"),
        Just("text"),
        Just("tools"),
        Just("tool_choice"),
        Just("response_format"),
        Just("json_schema"),
        Just("schema"),
        Just("candidates"),
        Just("parts"),
        Just("functionCall"),
        Just("args"),
        Just("id"),
        Just("thoughtSignature"),
        Just("thought"),
        Just("finishReason"),
        Just("index"),
        Just("promptFeedback"),
        Just("blockReason"),
        Just("usageMetadata"),
        Just("promptTokenCount"),
        Just("error"),
        Just("status"),
        Just("message"),
        Just("image_url"),
        Just("url"),
        Just("n"),
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u32>().prop_map(Value::from),
        prop_oneof![
            Just("user".to_owned()),
            Just("assistant".to_owned()),
            Just("tool".to_owned()),
            Just("system".to_owned()),
            Just("function".to_owned()),
            Just("STOP".to_owned()),
            Just("SAFETY".to_owned()),
            Just("{}".to_owned()),
            Just("call_0x_ts_AA".to_owned()),
            Just("data:image/png;base64,AA".to_owned()),
            "\\PC{0,12}",
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec((keys.clone(), inner), 0..6).prop_map(|members| {
                Value::Object(
                    members
                        .into_iter()
                        .map(|(k, v)| (k.to_owned(), v))
                        .collect(),
                )
            }),
        ]
    })
}
