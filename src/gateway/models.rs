//! `GET /v1/models` and `GET /v1/models/{id}` from the table, in OpenAI's shape.

use std::borrow::Cow;
use std::time::UNIX_EPOCH;

use http::{header, HeaderValue, Response};
use serde_json::{json, Value};

use super::error::GatewayError;
use crate::forward::body::ResponseBody;
use crate::quota::KeySpec;
use crate::routing::{Model, Table};

fn object(table: &Table, model: &Model) -> Value {
    let created = table
        .loaded_at
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    json!({"id": model.name, "object": "model", "created": created, "owned_by": "switchyard"})
}

pub(super) fn json_response(body: &Value) -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::full(body.to_string()));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Every model the caller's key may use (all, with no key or no `models`),
/// in `router.yaml` order.
pub(super) fn list(table: &Table, key: Option<&KeySpec>) -> Response<ResponseBody> {
    let data: Vec<Value> = table
        .models
        .iter()
        .filter(|m| key.is_none_or(|k| k.allows(&m.name)))
        .map(|m| object(table, m))
        .collect();
    json_response(&json!({"object": "list", "data": data}))
}

/// One model; `id` may be percent-encoded (`qwen2.5%3A0.5b`, `org%2Fmodel`).
pub(super) fn get(table: &Table, id: &str) -> Result<Response<ResponseBody>, GatewayError> {
    let id = percent_decode(id);
    match table.model(&id) {
        Some(model) => Ok(json_response(&object(table, model))),
        None => Err(GatewayError::ModelNotFound {
            model: id.into_owned(),
            available: table
                .some_model_names(5)
                .into_iter()
                .map(str::to_owned)
                .collect(),
        }),
    }
}

/// `%XX` (either case) decoded; a `%` not followed by two hex digits stays
/// as it is, and bytes that are not UTF-8 become U+FFFD. Borrows when there
/// is nothing to decode.
fn percent_decode(text: &str) -> Cow<'_, str> {
    percent_encoding::percent_decode_str(text).decode_utf8_lossy()
}

#[cfg(test)]
mod tests {
    use super::percent_decode;

    #[test]
    fn decodes_encoded_model_ids() {
        assert_eq!(percent_decode("qwen2.5%3A0.5b"), "qwen2.5:0.5b");
        assert_eq!(percent_decode("org%2Fmodel"), "org/model");
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("100%"), "100%");
    }
}
