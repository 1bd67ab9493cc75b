//! The inspector and the splice against `serde_json` and hand-written cases.

use std::ops::Range;

use bytes::Bytes;

use super::string::encode_json_string;
use super::*;
use proptest::prelude::*;
use serde_json::{json, Map, Value};

fn ok(body: &str) -> Inspected {
    match inspect(body.as_bytes()) {
        Ok(i) => i,
        Err(e) => panic!("expected {body:?} to inspect, got {e}"),
    }
}

fn err(body: &[u8]) -> InspectError {
    match inspect(body) {
        Ok(i) => panic!(
            "expected {:?} to fail, got {i:?}",
            String::from_utf8_lossy(body)
        ),
        Err(e) => e,
    }
}

fn syntax_reason(body: &[u8]) -> &'static str {
    match err(body) {
        InspectError::Syntax { reason, .. } => reason,
        other => panic!("expected a syntax error, got {other:?}"),
    }
}

// --- field extraction -------------------------------------------------

#[test]
fn a_typical_chat_body_yields_model_stream_and_spans() {
    let body = r#"{
  "model": "gpt-4o-mini",
  "messages": [
{"role": "system", "content": "You are terse."},
{"role": "user", "content": "Hi \"there\""}
  ],
  "temperature": 0.2,
  "stream": true,
  "stream_options": {"include_usage": true}
}
"#;
    let i = ok(body);
    assert_eq!(i.model.as_deref(), Some("gpt-4o-mini"));
    assert_eq!(&body[i.model_span.clone().unwrap()], "\"gpt-4o-mini\"");
    assert_eq!(i.stream, Some(true));
    assert_eq!(
        &body[i.stream_options_span.clone().unwrap()],
        r#"{"include_usage": true}"#
    );
    assert_eq!(i.object_end, body.rfind('}').unwrap());
}

#[test]
fn a_body_without_model_has_no_model_and_no_span() {
    let i = ok(r#"{"messages": [], "stream": false}"#);
    assert_eq!(i.model, None);
    assert_eq!(i.model_span, None);
    assert_eq!(i.stream_options_span, None);
}

#[test]
fn stream_true_false_null_and_absent_are_read_as_such() {
    assert_eq!(ok(r#"{"stream":true}"#).stream, Some(true));
    assert_eq!(ok(r#"{"stream":false}"#).stream, Some(false));
    assert_eq!(ok(r#"{"stream":null}"#).stream, None);
    assert_eq!(ok(r#"{"model":"m"}"#).stream, None);
}

#[test]
fn the_empty_object_is_accepted_with_its_closing_brace_found() {
    let i = ok(" { } \n");
    assert_eq!(i.model, None);
    assert_eq!(i.object_end, 3);
}

#[test]
fn model_and_stream_nested_below_the_top_level_are_ignored() {
    let body = r#"{"messages":[{"model":"x","stream":"no"}],"meta":{"model":7},"model":"top"}"#;
    let i = ok(body);
    assert_eq!(i.model.as_deref(), Some("top"));
    assert_eq!(i.stream, None);
    let only_nested = ok(r#"{"a":{"model":"x"},"b":[{"stream":true}]}"#);
    assert_eq!(only_nested.model, None);
    assert_eq!(only_nested.stream, None);
}

#[test]
fn a_model_inside_a_top_level_array_is_not_a_model() {
    assert_eq!(err(br#"[{"model":"x"}]"#), InspectError::NotAnObject);
}

#[test]
fn an_escaped_model_value_is_unescaped_and_its_span_keeps_the_escapes() {
    let body = r#"{"model":"a\"b\\c\/d\n\u00e9\ud83d\ude00\u0041"}"#;
    let i = ok(body);
    assert_eq!(i.model.as_deref(), Some("a\"b\\c/d\né😀A"));
    assert_eq!(
        &body[i.model_span.unwrap()],
        r#""a\"b\\c\/d\n\u00e9\ud83d\ude00\u0041""#
    );
}

#[test]
fn a_model_with_raw_unicode_is_returned_as_is() {
    assert_eq!(ok(r#"{"model":"模型-ü"}"#).model.as_deref(), Some("模型-ü"));
}

#[test]
fn an_escaped_key_spelling_model_counts_as_model() {
    let i = ok(r#"{"mod\u0065l":"m","str\u0065am":true,"\u0073tream_options":{}}"#);
    assert_eq!(i.model.as_deref(), Some("m"));
    assert_eq!(i.stream, Some(true));
    assert!(i.stream_options_span.is_some());
    // An escaped and a plain spelling of the same key are one key twice.
    assert_eq!(
        err(br#"{"model":"a","mod\u0065l":"b"}"#),
        InspectError::DuplicateKey { key: "model" }
    );
}

#[test]
fn keys_that_only_resemble_model_are_other_fields() {
    let i = ok(r#"{"Model":1,"models":2,"model ":3,"stream_option":4}"#);
    assert_eq!(i.model, None);
    assert_eq!(i.stream, None);
    assert_eq!(i.stream_options_span, None);
}

#[test]
fn stream_options_span_covers_any_value_type() {
    let body = r#"{"stream_options" : null }"#;
    let i = ok(body);
    assert_eq!(&body[i.stream_options_span.unwrap()], "null");
}

// --- errors -----------------------------------------------------------

#[test]
fn an_empty_body_is_a_syntax_error() {
    assert_eq!(
        err(b""),
        InspectError::Syntax {
            offset: 0,
            reason: "unexpected end of input"
        }
    );
}

#[test]
fn a_whitespace_only_body_is_a_syntax_error() {
    assert_eq!(
        err(b" \r\n\t "),
        InspectError::Syntax {
            offset: 5,
            reason: "unexpected end of input"
        }
    );
}

#[test]
fn trailing_garbage_after_the_object_is_a_syntax_error() {
    assert_eq!(
        err(br#"{"model":"m"} x"#),
        InspectError::Syntax {
            offset: 14,
            reason: "trailing characters after the value"
        }
    );
    assert_eq!(
        syntax_reason(b"{}{}"),
        "trailing characters after the value"
    );
    // Trailing whitespace is fine.
    ok("{} \n\r\t");
}

#[test]
fn a_leading_byte_order_mark_is_refused() {
    assert_eq!(
        syntax_reason(b"\xEF\xBB\xBF{}"),
        "byte-order mark is not allowed"
    );
}

#[test]
fn structural_mistakes_are_syntax_errors_with_a_useful_reason() {
    assert_eq!(syntax_reason(br#"{"a":1 "b":2}"#), "expected ',' or '}'");
    assert_eq!(syntax_reason(br#"{"a":[1 2]}"#), "expected ',' or ']'");
    assert_eq!(syntax_reason(br#"{"a" 1}"#), "expected ':'");
    assert_eq!(syntax_reason(br#"{a:1}"#), "expected a string key");
    assert_eq!(syntax_reason(br#"{"a":1,}"#), "trailing comma");
    assert_eq!(syntax_reason(br#"{"a":[1,]}"#), "trailing comma");
    assert_eq!(syntax_reason(br#"{"a":}"#), "expected a value");
    assert_eq!(syntax_reason(br#"{"a":tru}"#), "invalid literal");
    assert_eq!(syntax_reason(br#"{"a":1"#), "unexpected end of input");
    assert_eq!(syntax_reason(br#"{"a":"b"#), "unterminated string");
    assert_eq!(syntax_reason(b"{\"a\":\x0c1}"), "expected a value");
}

#[test]
fn the_top_level_must_be_an_object() {
    for body in ["[]", "[1,2]", "\"model\"", "12", "true", "null"] {
        assert_eq!(err(body.as_bytes()), InspectError::NotAnObject, "{body}");
    }
    // ...but a malformed non-object is reported as malformed.
    assert_eq!(syntax_reason(b"[1,"), "unexpected end of input");
}

#[test]
fn a_model_that_is_not_a_string_is_refused_with_its_type() {
    for (value, found) in [
        ("1", "number"),
        ("-0.5e3", "number"),
        ("null", "null"),
        ("true", "boolean"),
        ("{}", "object"),
        ("[\"m\"]", "array"),
    ] {
        let body = format!(r#"{{"model": {value}}}"#);
        assert_eq!(
            err(body.as_bytes()),
            InspectError::ModelNotString { found },
            "{body}"
        );
    }
}

#[test]
fn a_stream_that_is_not_a_bool_is_refused_with_its_type() {
    for (value, found) in [
        ("\"true\"", "string"),
        ("1", "number"),
        ("{}", "object"),
        ("[]", "array"),
    ] {
        let body = format!(r#"{{"stream": {value}}}"#);
        assert_eq!(
            err(body.as_bytes()),
            InspectError::StreamNotBool { found },
            "{body}"
        );
    }
}

#[test]
fn a_repeated_model_stream_or_stream_options_key_is_refused() {
    assert_eq!(
        err(br#"{"model":"a","model":"b"}"#),
        InspectError::DuplicateKey { key: "model" }
    );
    assert_eq!(
        err(br#"{"stream":true,"x":1,"stream":false}"#),
        InspectError::DuplicateKey { key: "stream" }
    );
    assert_eq!(
        err(br#"{"stream_options":{},"stream_options":{}}"#),
        InspectError::DuplicateKey {
            key: "stream_options"
        }
    );
    // Other keys may repeat: they are not ours to judge.
    ok(r#"{"x":1,"x":2}"#);
}

#[test]
fn a_syntax_error_wins_over_a_field_error_found_earlier() {
    assert_eq!(syntax_reason(br#"{"model":1,"x":}"#), "expected a value");
    assert_eq!(
        syntax_reason(br#"{"model":"a","model":"b""#),
        "unexpected end of input"
    );
}

#[test]
fn nesting_up_to_max_depth_is_accepted() {
    let inner = MAX_DEPTH - 1; // the top-level object is one level
    let body = format!(r#"{{"a":{}{}}}"#, "[".repeat(inner), "]".repeat(inner));
    ok(&body);
    assert!(serde_json::from_str::<Value>(&body).is_ok());
}

#[test]
fn nesting_beyond_max_depth_is_too_deep() {
    let inner = MAX_DEPTH;
    let body = format!(r#"{{"a":{}{}}}"#, "[".repeat(inner), "]".repeat(inner));
    assert_eq!(
        err(body.as_bytes()),
        InspectError::TooDeep { max: MAX_DEPTH }
    );
    // serde_json draws the line at the same place.
    assert!(serde_json::from_str::<Value>(&body).is_err());
    let objects = format!(
        "{}{}",
        r#"{"a":"#.repeat(MAX_DEPTH + 1),
        "}".repeat(MAX_DEPTH + 1)
    );
    assert_eq!(
        err(objects.as_bytes()),
        InspectError::TooDeep { max: MAX_DEPTH }
    );
}

#[test]
fn a_hundred_thousand_open_brackets_are_too_deep_not_a_stack_overflow() {
    let body = vec![b'['; 100_000];
    assert_eq!(err(&body), InspectError::TooDeep { max: MAX_DEPTH });
    let mut in_object = b"{\"model\":\"m\",\"x\":".to_vec();
    in_object.resize(in_object.len() + 100_000, b'[');
    assert_eq!(err(&in_object), InspectError::TooDeep { max: MAX_DEPTH });
}

#[test]
fn bad_escapes_and_lone_surrogates_are_syntax_errors() {
    for (s, reason) in [
        (r#"\x"#, "invalid escape"),
        (r#"\'"#, "invalid escape"),
        (r#"\u12"#, "invalid \\u escape"),
        (r#"\u12G4"#, "invalid \\u escape"),
        (r#"\ud800"#, "lone surrogate in \\u escape"),
        (r#"\ud800x"#, "lone surrogate in \\u escape"),
        (r#"\ud800\u0041"#, "lone surrogate in \\u escape"),
        (r#"\udc00"#, "lone surrogate in \\u escape"),
        (r#"\ude00\ud83d"#, "lone surrogate in \\u escape"),
    ] {
        for body in [
            format!(r#"{{"model":"{s}"}}"#),
            format!(r#"{{"{s}":1}}"#),
            format!(r#"{{"x":["{s}"]}}"#),
        ] {
            assert_eq!(syntax_reason(body.as_bytes()), reason, "{body}");
            assert!(serde_json::from_str::<Value>(&body).is_err(), "{body}");
        }
    }
}

#[test]
fn raw_control_characters_in_strings_are_syntax_errors() {
    for c in [0u8, b'\n', b'\t', 0x1F] {
        let mut body = br#"{"x":"a"#.to_vec();
        body.push(c);
        body.extend_from_slice(br#""}"#);
        assert_eq!(
            err(&body),
            InspectError::Syntax {
                offset: 7,
                reason: "control character in string"
            }
        );
    }
    // DEL is not a control character in JSON.
    ok("{\"x\":\"\u{7f}\"}");
}

#[test]
fn invalid_utf8_in_strings_is_a_syntax_error() {
    for bad in [
        &b"\xff"[..],
        b"\xc3",
        b"\xc3(",
        b"\xed\xa0\x80",
        b"\xf8\x88\x80\x80\x80",
    ] {
        let mut body = br#"{"model":"ab"#.to_vec();
        body.extend_from_slice(bad);
        body.extend_from_slice(br#""}"#);
        assert_eq!(
            err(&body),
            InspectError::Syntax {
                offset: 12,
                reason: "invalid utf-8 in string"
            }
        );
    }
    // Outside strings any non-ASCII byte is simply not JSON.
    assert_eq!(
        syntax_reason("{\"a\":1,\u{e9}}".as_bytes()),
        "expected a string key"
    );
}

#[test]
fn numbers_follow_the_json_grammar() {
    let valid = [
        "0",
        "-0",
        "7",
        "-12",
        "0.2",
        "10.25",
        "1e3",
        "1E+3",
        "1e-3",
        "-0.0e0",
        "2.5E-10",
        "123456789012345678901234567890",
        "0e400",
    ];
    for n in valid {
        let body = format!(r#"{{"n":{n}}}"#);
        ok(&body);
        assert!(serde_json::from_str::<Value>(&body).is_ok(), "{n}");
    }
    let invalid = [
        "01",
        "-",
        "-a",
        "+1",
        ".5",
        "1.",
        "1.e3",
        "1e",
        "1e+",
        "0x10",
        "1_000",
        "NaN",
        "Infinity",
        "--1",
        "1e400",
        "-1e309",
        "1.7976931348623158e308",
    ];
    for n in invalid {
        let body = format!(r#"{{"n":{n}}}"#);
        assert!(inspect(body.as_bytes()).is_err(), "{n} should be refused");
        assert!(serde_json::from_str::<Value>(&body).is_err(), "{n}");
    }
    assert_eq!(syntax_reason(br#"{"n":1e400}"#), "number out of range");
    assert_eq!(syntax_reason(br#"{"n":01}"#), "leading zero in number");
    let huge = format!(r#"{{"n":1{}}}"#, "0".repeat(309));
    assert_eq!(syntax_reason(huge.as_bytes()), "number out of range");
}

#[test]
fn errors_read_well_when_displayed() {
    assert_eq!(
        err(b"{").to_string(),
        "the request body is not valid JSON: unexpected end of input at byte 1"
    );
    assert_eq!(
        err(br#"{"model":3}"#).to_string(),
        "`model` must be a string, found number"
    );
    assert_eq!(
        InspectError::TooDeep { max: MAX_DEPTH }.to_string(),
        format!("the request body nests deeper than {MAX_DEPTH} levels")
    );
}

// --- splicing ---------------------------------------------------------

fn spliced(body: &str, new_model: &str) -> (Spliced, Inspected, Bytes) {
    let bytes = Bytes::copy_from_slice(body.as_bytes());
    let i = ok(body);
    (splice_model(&bytes, &i, new_model), i, bytes)
}

#[test]
fn splicing_keeps_every_byte_outside_the_model_value() {
    let body = "{ \"temperature\": 0.2,\t\"model\" :\r\n  \"alias\"  ,\n\"x-unknown\": [1e3, {\"b\":null}], \"max_tokens\":1024 }  ";
    let (out, i, _) = spliced(body, "upstream/real-model");
    let span = i.model_span.unwrap();
    let out = out.to_bytes();
    let expected = format!(
        "{}\"upstream/real-model\"{}",
        &body[..span.start],
        &body[span.end..]
    );
    assert_eq!(out, expected.as_bytes());
    assert!(std::str::from_utf8(&out)
        .unwrap()
        .contains("\"temperature\": 0.2,\t"));

    let mut want: Value = serde_json::from_str(body).unwrap();
    want["model"] = json!("upstream/real-model");
    assert_eq!(serde_json::from_slice::<Value>(&out).unwrap(), want);
}

#[test]
fn splicing_is_three_zero_copy_parts_around_the_new_value() {
    let (out, i, bytes) = spliced(r#"{"model":"a","stream":true}"#, "b");
    assert_eq!(out.parts.len(), 3);
    assert_eq!(out.parts[0].as_ptr(), bytes.as_ptr());
    assert_eq!(&out.parts[1][..], b"\"b\"");
    assert_eq!(
        out.parts[2].as_ptr(),
        bytes[i.model_span.unwrap().end..].as_ptr()
    );
    assert_eq!(out.len(), bytes.len());
    assert!(!out.is_empty());
}

#[test]
fn a_new_model_name_with_quotes_backslashes_controls_and_unicode_is_escaped() {
    for name in [
        "a\"b",
        "back\\slash",
        "ünï-模型-😀",
        "line\nbreak\ttab\r\u{8}\u{c}",
        "\u{0}\u{1f}\u{7f}",
        "</script>",
        "",
    ] {
        let (out, _, _) = spliced(r#"{"model":"old","n":0.2}"#, name);
        let out = out.to_bytes();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v, json!({"model": name, "n": 0.2}), "{name:?}");
        assert_eq!(
            encode_json_string(name),
            serde_json::to_vec(name).unwrap(),
            "{name:?}"
        );
        assert_eq!(inspect(&out).unwrap().model.as_deref(), Some(name));
    }
}

#[test]
fn splicing_the_same_encoded_name_returns_the_original_body_uncopied() {
    let (out, _, bytes) = spliced(r#"{"model":"same","x":1}"#, "same");
    assert_eq!(out.parts.len(), 1);
    assert_eq!(out.parts[0].as_ptr(), bytes.as_ptr());
    assert_eq!(out.to_bytes(), bytes);
}

#[test]
fn splicing_an_equal_name_spelled_differently_rewrites_the_spelling() {
    // Same string value, different bytes: we emit serde_json's spelling.
    let (out, _, _) = spliced(r#"{"model":"\u0061"}"#, "a");
    assert_eq!(out.to_bytes(), &br#"{"model":"a"}"#[..]);
}

#[test]
fn splicing_a_body_without_model_returns_it_unchanged() {
    let (out, _, bytes) = spliced(r#"{"messages":[]}"#, "m");
    assert_eq!(out.parts.len(), 1);
    assert_eq!(out.parts[0].as_ptr(), bytes.as_ptr());
}

#[test]
fn splicing_with_a_span_that_does_not_fit_the_body_does_not_panic() {
    let bytes = Bytes::from_static(b"{}");
    let mut i = ok(r#"{"model":"m"}"#);
    let out = splice_model(&bytes, &i, "x");
    assert_eq!(out.to_bytes(), bytes);
    i.model_span = Some(Range { start: 2, end: 1 });
    assert_eq!(splice_model(&bytes, &i, "x").to_bytes(), bytes);
}

// --- properties ---------------------------------------------------------

/// Strings that exercise escaping: quotes, backslashes, control characters,
/// DEL, non-ASCII, astral characters (surrogate pairs when escaped), and any char.
fn arb_text() -> impl Strategy<Value = String> {
    let tricky = prop::sample::select(vec![
        '"', '\\', '/', '\n', '\r', '\t', '\u{0}', '\u{8}', '\u{c}', '\u{1f}', '\u{7f}', 'é', '模',
        '😀', '\u{2028}', '\u{feff}', 'a', 'z', ' ',
    ]);
    prop::collection::vec(prop_oneof![tricky, any::<char>()], 0..10).prop_map(String::from_iter)
}

fn arb_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        // Non-finite floats become null, as serde_json itself does.
        any::<f64>().prop_map(Value::from),
        (-1000i32..1000).prop_map(|n| Value::from(f64::from(n) / 10.0)),
        arb_text().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((arb_text(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// Top-level request-like objects; "model", "stream" and "stream_options" are
/// present in some cases, and decoys with those names are nested below.
fn arb_body() -> impl Strategy<Value = Value> {
    (
        prop::collection::vec((arb_text(), arb_value()), 0..6),
        prop::option::of(prop_oneof![arb_text(), Just("gpt-4o".to_string())]),
        prop::option::of(prop::option::of(any::<bool>())),
        prop::option::of(arb_value()),
        any::<bool>(),
    )
        .prop_map(|(members, model, stream, stream_options, decoys)| {
            let mut map: Map<String, Value> = members
                .into_iter()
                .filter(|(k, _)| !matches!(k.as_str(), "model" | "stream" | "stream_options"))
                .collect();
            if decoys {
                map.insert(
                    "messages".into(),
                    json!([{"model": 5, "stream": "x", "stream_options": 1}]),
                );
            }
            if let Some(m) = model {
                map.insert("model".into(), Value::String(m));
            }
            if let Some(s) = stream {
                map.insert("stream".into(), s.map_or(Value::Null, Value::Bool));
            }
            if let Some(o) = stream_options {
                map.insert("stream_options".into(), o);
            }
            Value::Object(map)
        })
}

fn serializations(v: &Value) -> [Vec<u8>; 2] {
    [
        serde_json::to_vec(v).unwrap(),
        serde_json::to_vec_pretty(v).unwrap(),
    ]
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 128,
        // Never write regression files into the source tree.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// JSON-ish bytes, so random inputs get past the first byte more often.
fn arb_jsonish_bytes() -> impl Strategy<Value = Vec<u8>> {
    let alphabet =
        prop::sample::select(b"{}[]\":, \n0123456789-+.eEtruefalsn\\u\"a\xc3\xa9\x00\x1f".to_vec());
    prop::collection::vec(prop_oneof![alphabet, any::<u8>()], 0..512)
}

/// The body after one random edit: delete, insert or overwrite a byte.
fn arb_mutated_body() -> impl Strategy<Value = Vec<u8>> {
    (
        arb_body(),
        any::<bool>(),
        any::<prop::sample::Index>(),
        0u8..3,
        any::<u8>(),
    )
        .prop_map(|(v, pretty, at, op, byte)| {
            let mut b = if pretty {
                serde_json::to_vec_pretty(&v).unwrap()
            } else {
                serde_json::to_vec(&v).unwrap()
            };
            let i = at.index(b.len() + 1);
            const POOL: &[u8] = b"{}[]\":,\\ 0-.eunt\xff";
            let byte = POOL[usize::from(byte) % POOL.len()];
            match op {
                0 if i < b.len() => {
                    b.remove(i);
                }
                1 => b.insert(i, byte),
                _ if i < b.len() => b[i] = byte,
                _ => b.push(byte),
            }
            b
        })
}

/// Agreement with serde_json: whatever it refuses, we refuse; whatever it
/// accepts, we do not call malformed. Where we are stricter than serde_json it
/// is on purpose and never a syntax error: a repeated top-level "model",
/// "stream" or "stream_options" key (serde_json keeps the last one) and the
/// field-type checks are `DuplicateKey`/`ModelNotString`/`StreamNotBool`, and a
/// non-object top level is `NotAnObject`. Depth and number range match
/// serde_json exactly (see `MAX_DEPTH` and `Scanner::scan_number`).
fn agrees_with_serde(body: &[u8]) -> Result<(), TestCaseError> {
    let ours = inspect(body);
    match serde_json::from_slice::<Value>(body) {
        Err(e) => prop_assert!(ours.is_err(), "serde_json refused ({e}) but we accepted"),
        Ok(_) => prop_assert!(
            !matches!(
                ours,
                Err(InspectError::Syntax { .. } | InspectError::TooDeep { .. })
            ),
            "serde_json accepted but we said {ours:?}"
        ),
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn serialized_objects_inspect_to_the_model_and_stream_they_contain(v in arb_body()) {
        for body in serializations(&v) {
            // Compare with what serde_json reads back, not with `v`: without its
            // `float_roundtrip` feature serde_json may read a float back a ULP off.
            let v: Value = serde_json::from_slice(&body).unwrap();
            let i = inspect(&body).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(i.model.as_deref(), v.get("model").and_then(Value::as_str));
            prop_assert_eq!(i.stream, v.get("stream").and_then(Value::as_bool));
            if let Some(span) = i.model_span.clone() {
                let value: Value = serde_json::from_slice(&body[span]).unwrap();
                prop_assert_eq!(Some(&value), v.get("model"));
            }
            match (&i.stream_options_span, v.get("stream_options")) {
                (Some(span), Some(want)) => {
                    let got: Value = serde_json::from_slice(&body[span.clone()]).unwrap();
                    prop_assert_eq!(&got, want);
                }
                (None, None) => {}
                (got, want) => prop_assert!(false, "span {got:?} for {want:?}"),
            }
            prop_assert_eq!(body[i.object_end], b'}');
            prop_assert!(body[i.object_end + 1..].iter().all(u8::is_ascii_whitespace));
        }
    }

    #[test]
    fn splicing_changes_only_the_model(v in arb_body(), new_model in arb_text()) {
        for body in serializations(&v) {
            let v: Value = serde_json::from_slice(&body).unwrap(); // see above
            let body = Bytes::from(body);
            let i = inspect(&body).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let out = splice_model(&body, &i, &new_model).to_bytes();

            let mut want = v.clone();
            if let Some(m) = want.get_mut("model") {
                *m = Value::String(new_model.clone());
            }
            let got: Value = serde_json::from_slice(&out).unwrap();
            prop_assert_eq!(got, want);

            match i.model_span {
                Some(span) => {
                    let tail = body.len() - span.end;
                    prop_assert_eq!(&out[..span.start], &body[..span.start]);
                    prop_assert_eq!(&out[out.len() - tail..], &body[span.end..]);
                    prop_assert_eq!(
                        &out[span.start..out.len() - tail],
                        &serde_json::to_vec(&new_model).unwrap()[..]
                    );
                }
                None => prop_assert_eq!(&out, &body),
            }
        }
    }

    #[test]
    fn inspect_never_panics_and_refuses_whatever_serde_json_refuses(
        body in prop::collection::vec(any::<u8>(), 0..512)
    ) {
        agrees_with_serde(&body)?;
    }

    #[test]
    fn inspect_agrees_with_serde_json_on_json_like_noise(body in arb_jsonish_bytes()) {
        agrees_with_serde(&body)?;
    }

    #[test]
    fn inspect_agrees_with_serde_json_on_almost_valid_bodies(body in arb_mutated_body()) {
        agrees_with_serde(&body)?;
    }

    #[test]
    fn model_names_are_encoded_exactly_like_serde_json(s in arb_text()) {
        prop_assert_eq!(encode_json_string(&s), serde_json::to_vec(&s).unwrap());
    }
}
