//! Any request made of supported fields translates, and the translation
//! carries what it asked for.

use proptest::prelude::*;
use serde_json::{json, Value};

use super::super::{translate_request, Options, DEFAULT_MAX_TOKENS};

const MODEL: &str = "claude-haiku-4-5";

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
        "[a-zA-Z0-9_-]{1,20}",
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
    tools: Vec<Tool>,
    /// 0 auto, 1 required, 2 none, 3 the first tool by name.
    tool_choice: Option<u8>,
    stream: Option<bool>,
}

fn request() -> impl Strategy<Value = Request> {
    (
        proptest::collection::vec(text(), 0..3),
        proptest::collection::vec((any::<bool>(), text()), 1..10),
        proptest::option::of(1u32..200_000),
        proptest::option::of(1u32..200_000),
        proptest::option::of(0.0f64..=1.0),
        proptest::option::of(0.0f64..=1.0),
        proptest::option::of(proptest::collection::vec(text(), 1..4)),
        any::<bool>(),
        proptest::collection::vec(tool(), 0..4),
        proptest::option::of(0u8..4),
        proptest::option::of(any::<bool>()),
    )
        .prop_map(
            |(
                system,
                turns,
                max_tokens,
                max_completion_tokens,
                temperature,
                top_p,
                stop,
                stop_as_string,
                tools,
                tool_choice,
                stream,
            )| Request {
                system,
                turns,
                max_tokens,
                max_completion_tokens,
                temperature,
                top_p,
                stop,
                stop_as_string,
                tools,
                tool_choice,
                stream,
            },
        )
}

impl Request {
    fn body(&self) -> String {
        let mut messages: Vec<Value> = Vec::new();
        // System messages first and, for the last one, between the turns.
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
        let mut body = json!({"model": "gpt-4o", "messages": messages});
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
        if let Some(stream) = self.stream {
            set("stream", json!(stream));
        }
        let mut text = body.to_string();
        if !self.tools.is_empty() {
            // Written by hand so the schemas' key order is the generated one.
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
            text.pop();
            text.push_str(&format!(r#","tools":[{}]{choice}}}"#, tools.join(",")));
        }
        text
    }
}

/// The texts of the translated turns, in order, and their roles.
fn turn_texts(messages: &Value) -> Vec<(String, String)> {
    let mut texts = Vec::new();
    for message in messages.as_array().unwrap() {
        let role = message["role"].as_str().unwrap().to_owned();
        match &message["content"] {
            Value::String(s) => texts.push((role, s.clone())),
            Value::Array(blocks) => {
                for block in blocks {
                    assert_eq!(block["type"], "text");
                    texts.push((role.clone(), block["text"].as_str().unwrap().to_owned()));
                }
            }
            other => panic!("content {other}"),
        }
    }
    texts
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn supported_requests_translate_and_keep_what_they_ask(req in request()) {
        let body = req.body();
        let out = translate_request(body.as_bytes(), MODEL, &Options::default())
            .map_err(|e| TestCaseError::fail(format!("{e:?} for {body}")))?;
        let raw = String::from_utf8(out).unwrap();
        let out: Value = serde_json::from_str(&raw).unwrap();

        prop_assert_eq!(&out["model"], MODEL);
        let max = req.max_completion_tokens.or(req.max_tokens).unwrap_or(DEFAULT_MAX_TOKENS);
        prop_assert_eq!(&out["max_tokens"], &json!(max));

        let system = req.system.join("\n\n");
        if system.is_empty() {
            prop_assert!(out.get("system").is_none());
        } else {
            prop_assert_eq!(&out["system"], &json!(system));
        }

        let texts = turn_texts(&out["messages"]);
        let expected: Vec<(String, String)> = req
            .turns
            .iter()
            .map(|(user, t)| ((if *user { "user" } else { "assistant" }).to_owned(), t.clone()))
            .collect();
        prop_assert_eq!(texts, expected);
        let roles: Vec<&str> = out["messages"].as_array().unwrap().iter().map(|m| m["role"].as_str().unwrap()).collect();
        prop_assert!(roles.windows(2).all(|w| w[0] != w[1]), "roles alternate: {:?}", roles);

        // Within an ULP or two: serde_json reads floats back without its
        // `float_roundtrip` feature.
        let close = |field: &str, want: Option<f64>| match (out.get(field).and_then(Value::as_f64), want) {
            (Some(got), Some(want)) => (got - want).abs() <= 1e-12,
            (got, want) => got.is_none() && want.is_none(),
        };
        prop_assert!(close("temperature", req.temperature), "temperature {:?}", req.temperature);
        prop_assert!(close("top_p", req.top_p), "top_p {:?}", req.top_p);
        match &req.stop {
            Some(stop) if req.stop_as_string => prop_assert_eq!(&out["stop_sequences"], &json!([stop[0]])),
            Some(stop) => prop_assert_eq!(&out["stop_sequences"], &json!(stop)),
            None => prop_assert!(out.get("stop_sequences").is_none()),
        }
        prop_assert_eq!(out.get("stream") == Some(&json!(true)), req.stream == Some(true));

        let names: Vec<&str> = out.get("tools").map_or(Vec::new(), |tools| {
            tools.as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect()
        });
        let expected: Vec<&str> = req.tools.iter().map(|t| t.name.as_str()).collect();
        prop_assert_eq!(names, expected);
        for tool in &req.tools {
            // The schema arrives byte for byte, key order included.
            let schema = format!(r#""input_schema":{}"#, tool.schema());
            prop_assert!(raw.contains(&schema), "{} not in {}", schema, raw);
        }
        let choice = out.get("tool_choice").cloned();
        let expected = match (req.tools.is_empty(), req.tool_choice) {
            (true, _) | (false, None) => None,
            (false, Some(0)) => Some(json!({"type": "auto"})),
            (false, Some(1)) => Some(json!({"type": "any"})),
            (false, Some(2)) => Some(json!({"type": "none"})),
            (false, Some(_)) => Some(json!({"type": "tool", "name": req.tools[0].name})),
        };
        prop_assert_eq!(choice, expected);
    }
}
