//! Tool-call ids: the thought signature and Gemini's call id go out in the
//! OpenAI id and come back, byte for byte, on the next request.

use proptest::prelude::*;
use serde_json::{json, Value};

use super::super::ids::{carried, response_tag, tool_call_id, Carried, MAX_SIGNATURE_BYTES};
use super::super::{translate_request, translate_response};

/// A signature as Gemini writes one: standard base64 with padding.
const SIGNATURE: &str = "CiQBjz1rX2+/abc/def+ghi=";

#[test]
fn ids_have_a_documented_shape() {
    assert_eq!(response_tag("Ab-c_D.e1"), "AbcDe1");
    assert_eq!(response_tag(&"x".repeat(40)).len(), 16);
    assert_eq!(tool_call_id(0, "Abc", None, None), "call_0Abc");
    assert_eq!(
        tool_call_id(2, "Abc", Some("fc-9x"), Some(SIGNATURE)),
        "call_2Abc_id_fc-9x_ts_CiQBjz1rX2-_abc_def-ghi"
    );
    // Only ASCII letters, digits, `_` and `-`.
    let id = tool_call_id(1, "T", Some("a-b"), Some(SIGNATURE));
    assert!(id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'));
}

#[test]
fn what_an_id_carries_comes_back_exactly() {
    let id = tool_call_id(2, "Abc", Some("fc-9x"), Some(SIGNATURE));
    assert_eq!(
        carried(&id),
        Carried {
            gemini_id: Some("fc-9x"),
            signature: Some(SIGNATURE.to_owned()),
        }
    );
    let id = tool_call_id(0, "", None, Some("AAAA"));
    assert_eq!(carried(&id).signature.as_deref(), Some("AAAA"));
    // Unpadded and URL-safe base64 come back as standard base64 with padding.
    let id = tool_call_id(0, "t", None, Some("ab-_cd"));
    assert_eq!(carried(&id).signature.as_deref(), Some("ab+/cd=="));
}

#[test]
fn what_cannot_be_carried_is_left_out() {
    // A Gemini id with other characters, a signature that is not base64 or too long.
    assert_eq!(tool_call_id(0, "t", Some("a_b"), None), "call_0t");
    assert_eq!(tool_call_id(0, "t", Some(""), None), "call_0t");
    assert_eq!(tool_call_id(0, "t", Some(&"a".repeat(65)), None), "call_0t");
    assert_eq!(tool_call_id(0, "t", None, Some("not base64!")), "call_0t");
    assert_eq!(tool_call_id(0, "t", None, Some("==")), "call_0t");
    let long = "A".repeat(MAX_SIGNATURE_BYTES + 1);
    assert_eq!(tool_call_id(0, "t", None, Some(&long)), "call_0t");
    let longest = "A".repeat(MAX_SIGNATURE_BYTES);
    assert_eq!(
        carried(&tool_call_id(0, "t", None, Some(&longest))).signature,
        Some(longest)
    );
}

#[test]
fn foreign_ids_carry_nothing() {
    for id in [
        "call_abc123",
        "call_0",
        "toolu_01A09q90qw90lq917835lq9",
        "call_",
        "call_x_ts_",
        "call_x_id__ts_AAAA",
        "call_x_ts_AA+A",
        "call_x_zz_AAAA",
        "",
        "call_é_ts_AAAA",
    ] {
        assert_eq!(carried(id), Carried::default(), "{id}");
    }
}

/// A Gemini 3 answer with parallel calls: the first carries the signature.
const GEMINI3_CALLS: &str = r#"{"candidates":[{"content":{"role":"model","parts":[
    {"functionCall":{"name":"check_flight","args":{"flight":"AA100"}},"thoughtSignature":"CiQBjz1rX2+/abc/def+ghi="},
    {"functionCall":{"name":"book_taxi","args":{"time":"10 AM"}}}
]},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":50,"candidatesTokenCount":20,"totalTokenCount":70},
"modelVersion":"gemini-3-pro-preview","responseId":"rsp-XYZ_123"}"#;

#[test]
fn a_gemini3_tool_loop_round_trips_the_signature() {
    let answer = translate_response(GEMINI3_CALLS.as_bytes(), "gemini-3-pro-preview").unwrap();
    let answer: Value = serde_json::from_slice(&answer).unwrap();
    let message = answer["choices"][0]["message"].clone();
    let calls = message["tool_calls"].as_array().unwrap();
    assert_eq!(calls[0]["id"], "call_0rspXYZ123_ts_CiQBjz1rX2-_abc_def-ghi");
    assert_eq!(calls[1]["id"], "call_1rspXYZ123");

    // The client sends the history back as OpenAI clients do.
    let request = json!({"model": "m", "messages": [
        {"role": "user", "content": "Check flight AA100 and book a taxi"},
        message,
        {"role": "tool", "tool_call_id": calls[0]["id"], "content": "{\"status\":\"delayed\"}"},
        {"role": "tool", "tool_call_id": calls[1]["id"], "content": "{\"booking\":\"ok\"}"},
    ]});
    let out =
        String::from_utf8(translate_request(request.to_string().as_bytes()).unwrap()).unwrap();
    assert_eq!(
        out,
        concat!(
            r#"{"contents":[{"role":"user","parts":[{"text":"Check flight AA100 and book a taxi"}]},"#,
            r#"{"role":"model","parts":[{"functionCall":{"name":"check_flight","args":{"flight":"AA100"}},"thoughtSignature":"CiQBjz1rX2+/abc/def+ghi="},"#,
            r#"{"functionCall":{"name":"book_taxi","args":{"time":"10 AM"}}}]},"#,
            r#"{"role":"user","parts":[{"functionResponse":{"name":"check_flight","response":{"status":"delayed"}}},"#,
            r#"{"functionResponse":{"name":"book_taxi","response":{"booking":"ok"}}}]}]}"#
        )
    );
}

#[test]
fn a_gemini_call_id_goes_back_on_the_call_and_its_response() {
    let body = r#"{"candidates":[{"content":{"role":"model","parts":[{"functionCall":{"id":"fc-7","name":"f","args":{}}}]},"finishReason":"STOP"}],"responseId":"r1"}"#;
    let answer: Value =
        serde_json::from_slice(&translate_response(body.as_bytes(), "m").unwrap()).unwrap();
    let message = answer["choices"][0]["message"].clone();
    let id = message["tool_calls"][0]["id"].clone();
    assert_eq!(id, "call_0r1_id_fc-7");
    let request = json!({"model": "m", "messages": [
        {"role": "user", "content": "go"}, message, {"role": "tool", "tool_call_id": id, "content": "done"},
    ]});
    let out: Value =
        serde_json::from_slice(&translate_request(request.to_string().as_bytes()).unwrap())
            .unwrap();
    assert_eq!(out["contents"][1]["parts"][0]["functionCall"]["id"], "fc-7");
    assert_eq!(
        out["contents"][2]["parts"][0]["functionResponse"]["id"],
        "fc-7"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_padded_base64_signature_round_trips(
        bytes in proptest::collection::vec(any::<u8>(), 1..300),
        k in 0u32..100,
        gemini_id in proptest::option::of("[A-Za-z0-9-]{1,64}"),
        response_id in "\\PC{0,40}",
    ) {
        let signature = base64(&bytes);
        let tag = response_tag(&response_id);
        let id = tool_call_id(k, &tag, gemini_id.as_deref(), Some(&signature));
        let back = carried(&id);
        prop_assert_eq!(back.signature, Some(signature));
        prop_assert_eq!(back.gemini_id, gemini_id.as_deref());
    }

    #[test]
    fn reading_any_id_never_panics(id in "\\PC{0,80}") {
        let _ = carried(&id);
    }
}

/// Standard base64 with padding (the test's own, to make signatures).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
