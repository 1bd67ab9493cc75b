//! Reading a translated stream whole: its `data:` payloads and the text
//! their deltas carry (shared by the tests of the translating providers).

use serde_json::Value;

use super::client::open_stream;
use super::Router;

/// Sends `request` (a streamed chat request) and reads the whole answer.
pub async fn read_stream(router: &Router, request: &str) -> String {
    let stream = open_stream(&router.url("/v1/chat/completions"), &[], request).await;
    String::from_utf8(stream.rest().await.expect("a whole stream").to_vec()).expect("UTF-8")
}

/// The `data:` payloads of an SSE body, in order.
pub fn data_lines(body: &str) -> Vec<String> {
    body.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(str::to_owned)
        .collect()
}

pub fn content_of(chunks: &[String]) -> String {
    chunks
        .iter()
        .filter(|d| d.as_str() != "[DONE]")
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|v| {
            v["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect()
}
