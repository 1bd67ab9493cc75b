//! Properties: a Messages request of expressible fields survives the trip
//! through `request_to_openai` and the outbound `translate_request` back to
//! Anthropic; no input panics anything; a stream's translation does not
//! depend on how it is split, is a well-formed Anthropic stream, and carries
//! every text and argument piece.

use bytes::Bytes;
use proptest::prelude::*;
use serde_json::{json, Value};

use super::super::super::{translate_request, Options};
use super::super::{
    error_body, error_from_openai, error_type, estimate_input_tokens, peek, request_to_openai,
    response_from_openai, MessageStream,
};
use crate::sse::{Event, SseScanner};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        // Never write regression files into the source tree.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Text of any characters but control ones, never empty.
fn text() -> impl Strategy<Value = String> {
    prop_oneof!["\\PC{1,30}", "[a-z \"\\\\\n]{1,20}"]
}

/// One or more texts: a string, or text blocks (`Err`).
fn content() -> impl Strategy<Value = Result<String, Vec<String>>> {
    prop_oneof![
        text().prop_map(Ok),
        proptest::collection::vec(text(), 1..4).prop_map(Err),
    ]
}

fn joined(content: &Result<String, Vec<String>>) -> String {
    match content {
        Ok(text) => text.clone(),
        Err(blocks) => blocks.join("\n\n"),
    }
}

fn content_json(content: &Result<String, Vec<String>>) -> Value {
    match content {
        Ok(text) => json!(text),
        Err(blocks) => json!(blocks
            .iter()
            .map(|t| json!({"type": "text", "text": t}))
            .collect::<Vec<_>>()),
    }
}

#[derive(Debug, Clone)]
struct Request {
    system: Option<Result<String, Vec<String>>>,
    turns: Vec<Result<String, Vec<String>>>,
    max_tokens: u32,
    temperature: Option<f64>,
    top_p: Option<f64>,
    stop: Option<Vec<String>>,
    /// (name, description, property names)
    tools: Vec<(String, Option<String>, Vec<String>)>,
    /// 0 auto, 1 any, 2 none, 3 the first tool; and disable_parallel_tool_use.
    tool_choice: Option<(u8, bool)>,
    user_id: Option<String>,
    stream: Option<bool>,
}

fn request() -> impl Strategy<Value = Request> {
    (
        proptest::option::of(content()),
        proptest::collection::vec(content(), 1..8),
        1u32..200_000,
        proptest::option::of(0.0f64..=1.0),
        proptest::option::of(0.0f64..=1.0),
        proptest::option::of(proptest::collection::vec(text(), 1..4)),
        proptest::collection::vec(
            (
                "[a-zA-Z0-9_-]{1,20}",
                proptest::option::of(text()),
                proptest::collection::vec("[a-z_]{1,8}", 0..4),
            ),
            0..4,
        ),
        proptest::option::of((0u8..4, any::<bool>())),
        proptest::option::of("[a-z0-9-]{1,20}"),
        proptest::option::of(any::<bool>()),
    )
        .prop_map(
            |(
                system,
                turns,
                max_tokens,
                temperature,
                top_p,
                stop,
                tools,
                tool_choice,
                user_id,
                stream,
            )| Request {
                system,
                turns,
                max_tokens,
                temperature,
                top_p,
                stop,
                tool_choice: if tools.is_empty() { None } else { tool_choice },
                tools,
                user_id,
                stream,
            },
        )
}

fn schema(properties: &[String]) -> String {
    let properties: Vec<String> = properties
        .iter()
        .map(|p| format!(r#""{p}":{{"type":"string"}}"#))
        .collect();
    format!(
        r#"{{"type":"object","properties":{{{}}}}}"#,
        properties.join(",")
    )
}

impl Request {
    fn body(&self) -> String {
        let messages: Vec<Value> = self
            .turns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let role = if i % 2 == 0 { "user" } else { "assistant" };
                json!({"role": role, "content": content_json(c)})
            })
            .collect();
        let mut body = json!({"model": "claude-sonnet-4-5", "max_tokens": self.max_tokens, "messages": messages});
        if let Some(system) = &self.system {
            body["system"] = content_json(system);
        }
        if let Some(t) = self.temperature {
            body["temperature"] = json!(t);
        }
        if let Some(p) = self.top_p {
            body["top_p"] = json!(p);
        }
        if let Some(stop) = &self.stop {
            body["stop_sequences"] = json!(stop);
        }
        if let Some(user) = &self.user_id {
            body["metadata"] = json!({ "user_id": user });
        }
        if let Some(stream) = self.stream {
            body["stream"] = json!(stream);
        }
        if let Some((kind, disable)) = self.tool_choice {
            let mut choice = match kind {
                0 => json!({"type": "auto"}),
                1 => json!({"type": "any"}),
                2 => json!({"type": "none"}),
                _ => json!({"type": "tool", "name": self.tools[0].0}),
            };
            if disable {
                choice["disable_parallel_tool_use"] = json!(true);
            }
            body["tool_choice"] = choice;
        }
        let mut text = body.to_string();
        if !self.tools.is_empty() {
            // By hand, so each schema's key order is the generated one.
            let tools: Vec<String> = self
                .tools
                .iter()
                .map(|(name, description, properties)| {
                    let description = description
                        .as_ref()
                        .map(|d| format!(r#","description":{}"#, json!(d)))
                        .unwrap_or_default();
                    format!(
                        r#"{{"name":{}{description},"input_schema":{}}}"#,
                        json!(name),
                        schema(properties)
                    )
                })
                .collect();
            text.pop();
            text.push_str(&format!(r#","tools":[{}]}}"#, tools.join(",")));
        }
        text
    }
}

/// Arbitrary JSON, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-2.0f64..2.0).prop_map(Value::from),
        "\\PC{0,8}".prop_map(Value::from),
        prop_oneof![
            Just("text"),
            Just("image"),
            Just("tool_use"),
            Just("tool_result"),
            Just("user"),
            Just("assistant"),
            Just("auto"),
            Just("tool"),
            Just("base64"),
            Just("url"),
            Just("[DONE]"),
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::from),
            proptest::collection::vec(
                (
                    prop_oneof![
                        Just("type"),
                        Just("text"),
                        Just("content"),
                        Just("role"),
                        Just("messages"),
                        Just("source"),
                        Just("tool_calls"),
                        Just("function"),
                        Just("arguments"),
                        Just("index"),
                        Just("id"),
                        Just("name"),
                        Just("delta"),
                        Just("choices"),
                        Just("usage"),
                        Just("error"),
                        Just("input"),
                        Just("tools"),
                        Just("system"),
                        Just("finish_reason"),
                        Just("message"),
                        Just("model"),
                        Just("prompt_tokens"),
                        Just("reasoning_content"),
                        Just("tool_use_id"),
                        Just("is_error"),
                        Just("data"),
                    ],
                    inner,
                ),
                0..6,
            )
            .prop_map(|members| {
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

/// One piece of a generated OpenAI stream.
#[derive(Debug, Clone)]
enum Piece {
    Text(String),
    Reasoning(String),
    /// A new tool call: name, argument pieces.
    Tool(String, Vec<String>),
}

fn piece() -> impl Strategy<Value = Piece> {
    prop_oneof![
        text().prop_map(Piece::Text),
        text().prop_map(Piece::Reasoning),
        ("[a-z_]{1,10}", proptest::collection::vec(text(), 0..4))
            .prop_map(|(name, args)| Piece::Tool(name, args)),
    ]
}

/// The OpenAI SSE bytes for `pieces`, then a finish and a usage chunk.
fn openai_stream(pieces: &[Piece], usage: bool, done: bool) -> String {
    let mut out = String::new();
    let mut push = |chunk: Value| out.push_str(&format!("data: {chunk}\n\n"));
    push(
        json!({"id": "chatcmpl-p", "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}]}),
    );
    let mut tools = 0;
    for piece in pieces {
        match piece {
            Piece::Text(text) => push(
                json!({"id": "chatcmpl-p", "choices": [{"index": 0, "delta": {"content": text}}]}),
            ),
            Piece::Reasoning(text) => push(
                json!({"id": "chatcmpl-p", "choices": [{"index": 0, "delta": {"reasoning_content": text}}]}),
            ),
            Piece::Tool(name, args) => {
                push(
                    json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": tools, "id": format!("call_{tools}"), "type": "function", "function": {"name": name, "arguments": ""}}]}}]}),
                );
                for arg in args {
                    push(
                        json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": tools, "function": {"arguments": arg}}]}}]}),
                    );
                }
                tools += 1;
            }
        }
    }
    push(
        json!({"choices": [{"index": 0, "delta": {}, "finish_reason": if tools > 0 { "tool_calls" } else { "stop" }}]}),
    );
    if usage {
        push(json!({"choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": 3}}));
    }
    if done {
        out.push_str("data: [DONE]\n\n");
    }
    out
}

/// Feeds `bytes` split at `cuts` to a scanner and a `MessageStream`, ends it.
fn run(bytes: &[u8], cuts: &[usize]) -> (Vec<String>, bool) {
    let mut scanner = SseScanner::new();
    let mut stream = MessageStream::new("claude-x");
    let mut out = Vec::new();
    let mut at = 0;
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    cuts.sort_unstable();
    cuts.push(bytes.len());
    for cut in cuts {
        let chunk = Bytes::copy_from_slice(&bytes[at..cut.max(at)]);
        at = cut.max(at);
        let _ = scanner.feed(&chunk, |e| stream.event(&e, &mut out));
    }
    scanner.finish(|e| stream.event(&e, &mut out));
    stream.end(&mut out);
    let events = out
        .iter()
        .map(|b| String::from_utf8(b.to_vec()).unwrap())
        .collect();
    (events, stream.finished())
}

/// What an Anthropic SDK would assemble from `events`: the blocks (kind and
/// accumulated text or arguments), the stop reason; checks the framing.
fn assemble(events: &[String]) -> Result<(Vec<(String, String)>, String), TestCaseError> {
    let mut blocks: Vec<(String, String)> = Vec::new();
    let mut open: Option<u64> = None;
    let mut stop_reason = String::new();
    let data: Vec<Value> = events
        .iter()
        .map(|e| {
            let (name, data) = e
                .strip_prefix("event: ")
                .unwrap()
                .split_once("\ndata: ")
                .unwrap();
            let value: Value = serde_json::from_str(data.strip_suffix("\n\n").unwrap()).unwrap();
            assert_eq!(value["type"], name);
            value
        })
        .collect();
    prop_assert!(data.len() >= 4);
    prop_assert_eq!(&data[0]["type"], "message_start");
    prop_assert_eq!(&data[1]["type"], "ping");
    prop_assert_eq!(&data[data.len() - 2]["type"], "message_delta");
    prop_assert_eq!(&data[data.len() - 1]["type"], "message_stop");
    for event in &data[2..data.len() - 2] {
        match event["type"].as_str().unwrap() {
            "content_block_start" => {
                prop_assert_eq!(open, None);
                let index = event["index"].as_u64().unwrap();
                prop_assert_eq!(index, blocks.len() as u64);
                open = Some(index);
                blocks.push((
                    event["content_block"]["type"].as_str().unwrap().to_owned(),
                    String::new(),
                ));
            }
            "content_block_delta" => {
                prop_assert_eq!(open, event["index"].as_u64());
                let delta = &event["delta"];
                let piece = delta["text"]
                    .as_str()
                    .or(delta["thinking"].as_str())
                    .or(delta["partial_json"].as_str())
                    .unwrap();
                blocks.last_mut().unwrap().1.push_str(piece);
            }
            "content_block_stop" => {
                prop_assert_eq!(open, event["index"].as_u64());
                open = None;
            }
            other => prop_assert!(false, "unexpected {}", other),
        }
    }
    prop_assert_eq!(open, None);
    stop_reason.push_str(
        data[data.len() - 2]["delta"]["stop_reason"]
            .as_str()
            .unwrap(),
    );
    Ok((blocks, stop_reason))
}

/// The blocks `pieces` should become: consecutive texts (and reasonings)
/// merge into one block; each tool call is its own.
fn expected_blocks(pieces: &[Piece]) -> Vec<(String, String)> {
    let mut blocks: Vec<(String, String)> = Vec::new();
    for piece in pieces {
        let (kind, text) = match piece {
            Piece::Text(t) => ("text", t.clone()),
            Piece::Reasoning(t) => ("thinking", t.clone()),
            Piece::Tool(_, args) => {
                blocks.push(("tool_use".to_owned(), args.concat()));
                continue;
            }
        };
        match blocks.last_mut() {
            Some((k, acc)) if k == kind => acc.push_str(&text),
            _ => blocks.push((kind.to_owned(), text)),
        }
    }
    blocks
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn expressible_requests_survive_the_trip_to_openai_and_back(req in request()) {
        let body = req.body();
        let openai = request_to_openai(body.as_bytes())
            .map_err(|e| TestCaseError::fail(format!("{e:?} for {body}")))?;
        let back = translate_request(&openai, "claude-sonnet-4-5", &Options::default())
            .map_err(|e| TestCaseError::fail(format!("{e:?} for {}", String::from_utf8_lossy(&openai))))?;
        let raw = String::from_utf8(back).unwrap();
        let out: Value = serde_json::from_str(&raw).unwrap();

        prop_assert_eq!(&out["max_tokens"], &json!(req.max_tokens));
        match &req.system {
            Some(system) => prop_assert_eq!(&out["system"], &json!(joined(system))),
            None => prop_assert!(out.get("system").is_none()),
        }
        let turns: Vec<(String, String)> = out["messages"].as_array().unwrap().iter().map(|m| {
            let text = match &m["content"] {
                Value::String(s) => s.clone(),
                other => panic!("content {other}"),
            };
            (m["role"].as_str().unwrap().to_owned(), text)
        }).collect();
        let expected: Vec<(String, String)> = req.turns.iter().enumerate().map(|(i, c)| {
            ((if i % 2 == 0 { "user" } else { "assistant" }).to_owned(), joined(c))
        }).collect();
        prop_assert_eq!(turns, expected);

        let close = |field: &str, want: Option<f64>| match (out.get(field).and_then(Value::as_f64), want) {
            (Some(got), Some(want)) => (got - want).abs() <= 1e-12,
            (got, want) => got.is_none() && want.is_none(),
        };
        prop_assert!(close("temperature", req.temperature), "temperature {:?}", req.temperature);
        prop_assert!(close("top_p", req.top_p), "top_p {:?}", req.top_p);
        match &req.stop {
            Some(stop) => prop_assert_eq!(&out["stop_sequences"], &json!(stop)),
            None => prop_assert!(out.get("stop_sequences").is_none()),
        }
        prop_assert_eq!(out.get("stream") == Some(&json!(true)), req.stream == Some(true));
        match &req.user_id {
            Some(user) => prop_assert_eq!(&out["metadata"], &json!({"user_id": user})),
            None => prop_assert!(out.get("metadata").is_none()),
        }

        let names: Vec<&str> = out.get("tools").map_or(Vec::new(), |tools| {
            tools.as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect()
        });
        let expected: Vec<&str> = req.tools.iter().map(|t| t.0.as_str()).collect();
        prop_assert_eq!(names, expected);
        for (i, (_, description, properties)) in req.tools.iter().enumerate() {
            let schema = format!(r#""input_schema":{}"#, schema(properties));
            prop_assert!(raw.contains(&schema), "{} not in {}", schema, raw);
            prop_assert_eq!(out["tools"][i].get("description").and_then(Value::as_str), description.as_deref());
        }
        let expected = req.tool_choice.map(|(kind, disable)| {
            let mut choice = match kind {
                0 => json!({"type": "auto"}),
                1 => json!({"type": "any"}),
                2 => json!({"type": "none"}),
                _ => json!({"type": "tool", "name": req.tools[0].0}),
            };
            if disable && kind != 2 {
                choice["disable_parallel_tool_use"] = json!(true);
            }
            choice
        });
        prop_assert_eq!(out.get("tool_choice").cloned(), expected);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256), status in any::<u16>()) {
        let _ = request_to_openai(&bytes);
        let _ = estimate_input_tokens(&bytes);
        let _ = peek(&bytes);
        let _ = response_from_openai(&bytes, "m");
        let out: Value = serde_json::from_slice(&error_from_openai(status, &bytes)).unwrap();
        prop_assert_eq!(&out["error"]["type"], error_type(status));
        let _ = error_body(status, &String::from_utf8_lossy(&bytes));
        let mut stream = MessageStream::new("m");
        let mut out = Vec::new();
        let _ = SseScanner::new().feed(&Bytes::from(bytes.clone()), |e| stream.event(&e, &mut out));
        stream.end(&mut out);
    }

    #[test]
    fn arbitrary_json_never_panics(value in any_json(), fields in proptest::collection::vec(any_json(), 0..4)) {
        let mut request = json!({"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": value.clone()}]});
        for (field, v) in ["system", "tools", "tool_choice", "messages"].iter().zip(&fields) {
            request[*field] = v.clone();
        }
        let bytes = request.to_string();
        let _ = request_to_openai(bytes.as_bytes());
        let _ = estimate_input_tokens(bytes.as_bytes());
        let _ = request_to_openai(value.to_string().as_bytes());
        let answer = json!({"choices": [{"index": 0, "message": value.clone(), "finish_reason": fields.first().cloned()}], "usage": fields.get(1).cloned()});
        let _ = response_from_openai(answer.to_string().as_bytes(), "m");
        let _ = response_from_openai(value.to_string().as_bytes(), "m");
        let _ = error_from_openai(500, value.to_string().as_bytes());
        let mut stream = MessageStream::new("m");
        let mut out = Vec::new();
        for data in [
            json!({"choices": [{"index": 0, "delta": value.clone()}]}).to_string(),
            value.to_string(),
            json!({"choices": fields.clone(), "usage": value.clone()}).to_string(),
        ] {
            let event = Event { raw: Bytes::new(), event: None, data: data.as_bytes().into(), has_data: true, comment_only: false };
            stream.event(&event, &mut out);
        }
        stream.end(&mut out);
    }

    #[test]
    fn streams_are_well_formed_split_anywhere_and_carry_every_piece(
        pieces in proptest::collection::vec(piece(), 0..8),
        usage in any::<bool>(),
        done in any::<bool>(),
        cuts in proptest::collection::vec(any::<usize>(), 0..6),
    ) {
        let stream = openai_stream(&pieces, usage, done);
        let whole = run(stream.as_bytes(), &[]);
        prop_assert_eq!(&run(stream.as_bytes(), &cuts), &whole);
        let (events, finished) = whole;
        prop_assert!(finished);
        let (blocks, stop_reason) = assemble(&events)?;
        prop_assert_eq!(blocks, expected_blocks(&pieces));
        let tools = pieces.iter().any(|p| matches!(p, Piece::Tool(..)));
        prop_assert_eq!(stop_reason, if tools { "tool_use" } else { "end_turn" });
        let delta = &events[events.len() - 2];
        prop_assert_eq!(delta.contains(r#""input_tokens":10"#), usage);
    }
}
