//! `GET /v1/models` and `GET /v1/models/{id}` from the table, in OpenAI's shape.

use std::time::UNIX_EPOCH;

use http::{header, HeaderValue, Response};
use serde_json::{json, Value};

use super::error::GatewayError;
use crate::forward::body::ResponseBody;
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

/// Every model, in `router.yaml` order.
pub(super) fn list(table: &Table) -> Response<ResponseBody> {
    let data: Vec<Value> = table.models.iter().map(|m| object(table, m)).collect();
    json_response(&json!({"object": "list", "data": data}))
}

/// One model; `id` may be percent-encoded (`qwen2.5%3A0.5b`, `org%2Fmodel`).
pub(super) fn get(table: &Table, id: &str) -> Result<Response<ResponseBody>, GatewayError> {
    let id = percent_decode(id);
    match table.model(&id) {
        Some(model) => Ok(json_response(&object(table, model))),
        None => Err(GatewayError::ModelNotFound {
            model: id,
            available: table
                .some_model_names(5)
                .into_iter()
                .map(str::to_owned)
                .collect(),
        }),
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            if let (Some(hi), Some(lo)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            ) {
                out.push(hi << 4 | lo);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
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
