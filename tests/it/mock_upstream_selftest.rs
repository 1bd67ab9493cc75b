//! Exercises the test-support mock upstream and client directly (no proxy).

use std::time::Duration;

use crate::support::client::{self, open_stream, post_json, send, try_send};
use crate::support::{
    chat_chunks, chat_completion_json, init_tracing, openai_error, Behaviour, Gate, MockUpstream,
    Recorded,
};

const DEADLINE: Duration = Duration::from_secs(5);

fn chat_url(mock: &MockUpstream) -> String {
    format!("{}/v1/chat/completions", mock.base_url())
}

#[tokio::test]
async fn json_behaviour_answers_200_with_the_exact_body_as_application_json() {
    init_tracing();
    let body = chat_completion_json("gpt-4o-mini", "Hello there!");
    let mock = MockUpstream::start(Behaviour::Json(body.clone())).await;

    let reply = post_json(&chat_url(&mock), r#"{"model":"gpt-4o-mini"}"#).await;

    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(reply.text(), body);
    let json = reply.json();
    assert_eq!(json["object"], "chat.completion");
    assert_eq!(json["model"], "gpt-4o-mini");
    assert_eq!(json["choices"][0]["message"]["content"], "Hello there!");
    assert_eq!(json["choices"][0]["finish_reason"], "stop");
    assert_eq!(json["usage"]["prompt_tokens"], 11);
    assert_eq!(json["usage"]["completion_tokens"], 7);
    assert_eq!(json["usage"]["total_tokens"], 18);
}

#[tokio::test]
async fn status_behaviour_sends_its_status_body_and_extra_headers() {
    let mock = MockUpstream::start(Behaviour::Status {
        status: 429,
        body: r#"{"error":"slow down"}"#.to_string(),
        headers: vec![
            ("retry-after".to_string(), "7".to_string()),
            (
                "x-ratelimit-remaining-requests".to_string(),
                "0".to_string(),
            ),
        ],
    })
    .await;

    let reply = post_json(&chat_url(&mock), "{}").await;

    assert_eq!(reply.status, 429);
    assert_eq!(reply.text(), r#"{"error":"slow down"}"#);
    assert_eq!(
        reply.header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(reply.header("retry-after").as_deref(), Some("7"));
    assert_eq!(
        reply.header("x-ratelimit-remaining-requests").as_deref(),
        Some("0")
    );
}

#[tokio::test]
async fn a_content_type_in_extra_headers_replaces_the_default_one() {
    let mock = MockUpstream::start(Behaviour::Status {
        status: 502,
        body: "<html>bad gateway</html>".to_string(),
        headers: vec![("Content-Type".to_string(), "text/html".to_string())],
    })
    .await;

    let reply = send("GET", &mock.base_url(), &[], "").await;

    assert_eq!(reply.status, 502);
    let types: Vec<_> = reply.headers.get_all("content-type").iter().collect();
    assert_eq!(types, ["text/html"]);
}

#[tokio::test]
async fn openai_error_builds_an_openai_shaped_error_body() {
    let mock = MockUpstream::start(openai_error(
        401,
        "Incorrect API key provided.",
        "invalid_request_error",
        "invalid_api_key",
    ))
    .await;

    let reply = post_json(&chat_url(&mock), "{}").await;

    assert_eq!(reply.status, 401);
    assert_eq!(
        reply.json(),
        serde_json::json!({"error": {
            "message": "Incorrect API key provided.",
            "type": "invalid_request_error",
            "param": null,
            "code": "invalid_api_key",
        }})
    );
}

#[tokio::test]
async fn sse_behaviour_streams_chunks_that_concatenate_byte_exactly() {
    let chunks = chat_chunks("gpt-4o", &["Hel", "lo", " \"world\"\n"], true);
    let mock = MockUpstream::start(Behaviour::Sse {
        chunks: chunks.clone(),
        delay: Duration::from_millis(5),
    })
    .await;

    let reply = post_json(&chat_url(&mock), r#"{"stream":true}"#).await;

    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("content-type").as_deref(),
        Some("text/event-stream")
    );
    assert_eq!(reply.text(), chunks.concat());
    assert_eq!(
        mock.cancelled_streams(),
        0,
        "a finished stream is not cancelled"
    );
}

#[tokio::test]
async fn chat_chunks_follow_the_openai_stream_shape() {
    let chunks = chat_chunks("gpt-4o", &["Hel", "lo"], true);
    assert_eq!(chunks.len(), 6);
    assert!(chunks
        .iter()
        .all(|c| c.starts_with("data: ") && c.ends_with("\n\n")));
    assert_eq!(chunks.last().unwrap(), "data: [DONE]\n\n");
    let parsed: Vec<serde_json::Value> = chunks[..5]
        .iter()
        .map(|c| serde_json::from_str(c["data: ".len()..].trim_end()).unwrap())
        .collect();
    assert!(parsed
        .iter()
        .all(|p| p["object"] == "chat.completion.chunk"));
    assert!(parsed.iter().all(|p| p["model"] == "gpt-4o"));
    assert_eq!(parsed[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(parsed[0]["choices"][0]["delta"]["content"], "");
    assert_eq!(parsed[1]["choices"][0]["delta"]["content"], "Hel");
    assert_eq!(parsed[2]["choices"][0]["delta"]["content"], "lo");
    assert_eq!(parsed[3]["choices"][0]["finish_reason"], "stop");
    assert_eq!(parsed[4]["choices"], serde_json::json!([]));
    assert_eq!(parsed[4]["usage"]["total_tokens"], 18);

    let without_usage = chat_chunks("gpt-4o", &["Hi"], false);
    assert_eq!(without_usage.len(), 4);
    assert!(without_usage.iter().all(|c| !c.contains("usage")));
}

#[tokio::test]
async fn sse_gated_sends_the_first_chunk_then_one_chunk_per_release() {
    let gate = Gate::new();
    let chunks = vec![
        "data: one\n\n".to_string(),
        "data: two\n\n".to_string(),
        "data: three\n\n".to_string(),
    ];
    let mock = MockUpstream::start(Behaviour::SseGated {
        chunks: chunks.clone(),
        gate: gate.clone(),
    })
    .await;

    let mut stream = open_stream(&chat_url(&mock), &[], "{}").await;
    assert_eq!(stream.status, 200);
    assert_eq!(
        stream.header("content-type").as_deref(),
        Some("text/event-stream")
    );

    assert_eq!(stream.read_until("one").await, chunks[0]);
    assert!(
        stream
            .chunk_within(Duration::from_millis(100))
            .await
            .is_none(),
        "nothing more may arrive before a release"
    );
    gate.release();
    assert_eq!(stream.read_until("two").await, chunks[1]);
    gate.release();
    assert_eq!(stream.read_until("three").await, chunks[2]);
    assert_eq!(stream.rest().await.unwrap(), "", "the body ends cleanly");
    assert_eq!(mock.cancelled_streams(), 0);
}

#[tokio::test]
async fn sse_cut_delivers_its_chunks_then_a_body_error_not_a_clean_end() {
    let chunks = chat_chunks("gpt-4o", &["partial"], false)[..2].to_vec();
    let mock = MockUpstream::start(Behaviour::SseCut {
        chunks: chunks.clone(),
    })
    .await;

    let err = try_send("POST", &chat_url(&mock), &[], "{}")
        .await
        .expect_err("a cut body must be an error");
    assert!(err.contains("body error after status 200"), "{err}");

    let mut stream = open_stream(&chat_url(&mock), &[], "{}").await;
    assert_eq!(stream.status, 200);
    let got = stream.read_until("partial").await;
    assert!(chunks.concat().starts_with(&got), "{got:?}");
    let rest = stream.rest().await;
    assert!(rest.is_err(), "rest must fail on a cut body, got {rest:?}");
    assert_eq!(
        mock.cancelled_streams(),
        0,
        "a deliberate cut is not a cancellation"
    );
}

#[tokio::test]
async fn hang_never_sends_a_response_head() {
    let mock = MockUpstream::start(Behaviour::Hang).await;

    let outcome = tokio::time::timeout(
        Duration::from_millis(300),
        try_send("POST", &chat_url(&mock), &[], "{}"),
    )
    .await;

    assert!(outcome.is_err(), "expected no answer, got {outcome:?}");
    assert!(
        mock.wait_for_requests(1, DEADLINE).await,
        "the request was recorded"
    );
}

#[tokio::test]
async fn dropping_the_mock_ends_a_hanging_connection() {
    let mock = MockUpstream::start(Behaviour::Hang).await;
    let url = chat_url(&mock);
    let pending = tokio::spawn(async move { try_send("POST", &url, &[], "{}").await });
    assert!(mock.wait_for_requests(1, DEADLINE).await);

    drop(mock);

    let outcome = tokio::time::timeout(DEADLINE, pending)
        .await
        .expect("the client must see the connection end")
        .unwrap();
    let err = outcome.expect_err("no response can have been sent");
    assert!(err.contains("transport error"), "{err}");
}

#[tokio::test]
async fn reset_closes_the_connection_without_any_response() {
    let mock = MockUpstream::start(Behaviour::Reset).await;

    let err = try_send("POST", &chat_url(&mock), &[], r#"{"a":1}"#)
        .await
        .expect_err("a reset must be a transport error");

    assert!(err.contains("transport error"), "{err}");
    assert!(!err.contains("status"), "{err}");
    assert_eq!(mock.request_count(), 1);
    assert_eq!(mock.requests()[0].json(), serde_json::json!({"a": 1}));
}

#[tokio::test]
async fn delayed_waits_then_behaves_as_the_inner_behaviour() {
    let mock = MockUpstream::start(Behaviour::Delayed(
        Duration::from_millis(50),
        Box::new(openai_error(503, "overloaded", "server_error", "")),
    ))
    .await;

    let reply = post_json(&chat_url(&mock), "{}").await;

    assert_eq!(reply.status, 503);
    assert_eq!(reply.json()["error"]["message"], "overloaded");
    assert_eq!(reply.json()["error"]["code"], serde_json::Value::Null);
}

#[tokio::test]
async fn delayed_hang_never_answers() {
    let mock = MockUpstream::start(Behaviour::Hang.delayed(Duration::from_millis(10))).await;
    let outcome = tokio::time::timeout(
        Duration::from_millis(300),
        try_send("GET", &mock.base_url(), &[], ""),
    )
    .await;
    assert!(outcome.is_err());
}

#[tokio::test]
async fn requests_are_recorded_in_order_with_method_uri_headers_and_body() {
    let mock = MockUpstream::start(Behaviour::Json("{}".to_string())).await;
    let url = format!(
        "{}/v1/chat/completions?api-version=2024-06-01",
        mock.base_url()
    );

    send(
        "POST",
        &url,
        &[
            ("authorization", "Bearer sk-upstream"),
            ("content-type", "application/json"),
            ("x-multi", "a"),
            ("x-multi", "b"),
        ],
        r#"{"model":"m","messages":[]}"#,
    )
    .await;
    send("GET", &format!("{}/v1/models", mock.base_url()), &[], "").await;

    let requests = mock.requests();
    assert_eq!(mock.request_count(), 2);
    let first: &Recorded = &requests[0];
    assert_eq!(first.method, "POST");
    assert_eq!(first.uri, "/v1/chat/completions?api-version=2024-06-01");
    assert_eq!(
        first.header("Authorization").as_deref(),
        Some("Bearer sk-upstream")
    );
    assert_eq!(first.headers.get_all("x-multi").iter().count(), 2);
    assert_eq!(first.body, r#"{"model":"m","messages":[]}"#);
    assert_eq!(first.json()["model"], "m");
    assert_eq!(requests[1].method, "GET");
    assert_eq!(requests[1].uri, "/v1/models");
    assert!(requests[1].body.is_empty());
    assert_eq!(mock.last_request().unwrap().uri, "/v1/models");
}

#[tokio::test]
async fn start_with_chooses_a_behaviour_per_request() {
    let mock = MockUpstream::start_with(|req: &Recorded| {
        if req.header("x-attempt").as_deref() == Some("1") {
            openai_error(500, "boom", "server_error", "")
        } else {
            Behaviour::Json(chat_completion_json("m", "ok"))
        }
    })
    .await;

    let first = send("POST", &chat_url(&mock), &[("x-attempt", "1")], "{}").await;
    let second = send("POST", &chat_url(&mock), &[("x-attempt", "2")], "{}").await;

    assert_eq!(first.status, 500);
    assert_eq!(second.status, 200);
    assert_eq!(second.json()["choices"][0]["message"]["content"], "ok");
}

#[tokio::test]
async fn start_sequence_answers_in_order_then_repeats_the_last() {
    let mock = MockUpstream::start_sequence(vec![
        Behaviour::Reset,
        openai_error(502, "bad", "server_error", ""),
        Behaviour::Json("{}".to_string()),
    ])
    .await;
    let url = chat_url(&mock);

    assert!(try_send("POST", &url, &[], "{}").await.is_err());
    assert_eq!(post_json(&url, "{}").await.status, 502);
    assert_eq!(post_json(&url, "{}").await.status, 200);
    assert_eq!(post_json(&url, "{}").await.status, 200);
    assert_eq!(mock.request_count(), 4);
}

#[tokio::test]
async fn dropping_a_stream_reader_mid_stream_is_seen_as_a_cancelled_stream() {
    let gate = Gate::new();
    let mock = MockUpstream::start(Behaviour::SseGated {
        chunks: chat_chunks("m", &["a", "b", "c"], false),
        gate: gate.clone(),
    })
    .await;

    let mut stream = open_stream(&chat_url(&mock), &[], "{}").await;
    let first = stream.next_chunk().await.expect("a first chunk").unwrap();
    assert!(!first.is_empty());
    assert_eq!(mock.cancelled_streams(), 0);

    drop(stream);

    assert!(mock.wait_for_cancelled_stream(DEADLINE).await);
    assert_eq!(mock.cancelled_streams(), 1);
}

#[tokio::test]
async fn dropping_a_reader_of_a_slow_sse_stream_is_seen_as_a_cancelled_stream() {
    let chunks: Vec<String> = (0..1000).map(|i| format!("data: {i}\n\n")).collect();
    let mock = MockUpstream::start(Behaviour::Sse {
        chunks,
        delay: Duration::from_millis(20),
    })
    .await;

    let mut stream = open_stream(&chat_url(&mock), &[], "{}").await;
    stream.read_until("data: 1\n\n").await;
    drop(stream);

    assert!(mock.wait_for_cancelled_stream(DEADLINE).await);
}

#[tokio::test]
async fn wait_for_cancelled_stream_gives_false_when_nothing_was_cancelled() {
    let mock = MockUpstream::start(Behaviour::sse(vec!["data: x\n\n".to_string()])).await;
    let reply = post_json(&chat_url(&mock), "{}").await;
    assert_eq!(reply.text(), "data: x\n\n");
    assert!(
        !mock
            .wait_for_cancelled_stream(Duration::from_millis(50))
            .await
    );
}

#[tokio::test]
async fn a_dropped_mock_stops_listening() {
    let addr = {
        let mock = MockUpstream::start(Behaviour::Json("{}".to_string())).await;
        assert_eq!(post_json(&mock.base_url(), "{}").await.status, 200);
        mock.addr()
    };
    // The listener is owned by the accept task, which is aborted on drop;
    // retry until the abort has landed.
    for _ in 0..100 {
        if let Err(e) = client::try_send("GET", &format!("http://{addr}/"), &[], "").await {
            assert!(e.contains("transport error"), "{e}");
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the dropped mock still answered");
}
