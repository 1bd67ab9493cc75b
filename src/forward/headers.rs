//! Which headers cross the proxy, in each direction.
//!
//! Upward: everything the client sent except hop-by-hop headers (RFC 9110
//! §7.6.1), `Host` and `Content-Length` (set for the new request), the
//! caller's credentials (`Authorization`, `api-key`, `x-api-key`: invariant 6),
//! and `Accept-Encoding` (so answers arrive uncompressed and can be observed
//! as they pass). Then the upstream's own credential and configured headers.
//! Downward: everything except hop-by-hop headers; an upstream
//! `x-request-id` is kept as `x-upstream-request-id`, since ours wins.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

use crate::routing::Upstream;

const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const X_UPSTREAM_REQUEST_ID: HeaderName = HeaderName::from_static("x-upstream-request-id");

/// Hop-by-hop headers (RFC 9110 §7.6.1) plus legacy `Proxy-Connection`.
fn is_hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "proxy-connection"
            | "keep-alive"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
    )
}

/// Names listed in `Connection:` are hop-by-hop for this message too.
fn connection_listed(headers: &HeaderMap) -> Vec<HeaderName> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect()
}

/// Fills `out` with the headers of the upstream request.
pub(super) fn upstream_request(
    client: &HeaderMap,
    upstream: &Upstream,
    request_id: &str,
    out: &mut HeaderMap,
) {
    let listed = connection_listed(client);
    out.reserve(client.len() + 4);
    for (name, value) in client {
        let drop = is_hop_by_hop(name)
            || listed.contains(name)
            || matches!(
                name.as_str(),
                "host"
                    | "content-length"
                    | "authorization"
                    | "api-key"
                    | "x-api-key"
                    | "accept-encoding"
                    | "expect"
                    | "x-request-id"
            );
        if !drop {
            out.append(name.clone(), value.clone());
        }
    }
    if let Ok(id) = HeaderValue::from_str(request_id) {
        out.insert(X_REQUEST_ID, id);
    }
    out.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    for (name, value) in &upstream.headers {
        out.insert(name.clone(), value.clone());
    }
    if let Some((name, value)) = &upstream.credential {
        out.insert(name.clone(), value.clone());
    }
}

/// Filters the upstream response's headers in place for the client.
///
/// The upstream's own CORS headers are dropped: the router's CORS policy
/// (`gateway::cors`) alone decides which browser origins get access, so an
/// upstream answering `Access-Control-Allow-Origin: *` cannot open it.
pub(super) fn downstream_response(headers: &mut HeaderMap) {
    // One pass over the names; most answers carry one or two to drop
    // (`connection`, `transfer-encoding`), so removing only those costs less
    // than removing every hop-by-hop name blindly.
    let mut drop: Vec<HeaderName> = headers
        .keys()
        .filter(|name| is_hop_by_hop(name) || name.as_str().starts_with("access-control-"))
        .cloned()
        .collect();
    if headers.contains_key(header::CONNECTION) {
        drop.extend(connection_listed(headers));
    }
    for name in drop {
        headers.remove(name);
    }
    if let Some(id) = headers.remove(X_REQUEST_ID) {
        headers.insert(X_UPSTREAM_REQUEST_ID, id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_hop_by_hop_and_connection_listed_headers() {
        let mut h = HeaderMap::new();
        h.insert(
            "connection",
            HeaderValue::from_static("close, x-secret-hop"),
        );
        h.insert("x-secret-hop", HeaderValue::from_static("1"));
        h.insert("transfer-encoding", HeaderValue::from_static("chunked"));
        h.insert("x-request-id", HeaderValue::from_static("req_up"));
        h.insert("openai-processing-ms", HeaderValue::from_static("12"));
        downstream_response(&mut h);
        assert!(h.get("x-secret-hop").is_none());
        assert!(h.get("transfer-encoding").is_none());
        assert_eq!(h.get("x-upstream-request-id").unwrap(), "req_up");
        assert_eq!(h.get("openai-processing-ms").unwrap(), "12");
    }
}
