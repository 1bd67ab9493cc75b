use crate::support::*;

#[tokio::test]
async fn forwards_a_chat_completion_byte_for_byte() {
    let body = chat_completion_json("upstream-model", "Hello!");
    let mock = MockUpstream::start(Behaviour::Json(body.clone())).await;
    let router = Router::start(&one_model(
        "openai-compatible",
        &format!("{}/v1", mock.base_url()),
        "",
    ))
    .await;
    let reply = client::post_json(
        &router.url("/v1/chat/completions"),
        r#"{"model":"m","messages":[]}"#,
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text(), body);
    assert_eq!(
        mock.requests()[0].text(),
        r#"{"model":"upstream-model","messages":[]}"#
    );
}
