//! Which headers cross the proxy, in each direction.
//!
//! Upward: everything the client sent except hop-by-hop headers (RFC 9110
//! §7.6.1), `Host` and `Content-Length` (set for the new request), the
//! caller's credentials (`Authorization`, `api-key`, `x-api-key`: ARCHITECTURE.md, invariant 6),
//! `Accept-Encoding` (so answers arrive uncompressed and can be observed
//! as they pass), and `OpenAI-Organization`/`OpenAI-Project` (the operator's
//! key decides the billing scope; set them under `headers:`). Then the upstream's own credential and configured headers.
//! Downward: everything except hop-by-hop headers; an upstream
//! `x-request-id` is kept as `x-upstream-request-id`, since ours wins.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

use crate::h1::HeadWriter;
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

/// Writes the headers of the upstream request into its head.
///
/// `anthropic_door`: the request came in through Anthropic's door; its
/// `anthropic-*` headers go only to Anthropic targets.
/// `native`: the client's own Anthropic request goes to an Anthropic target,
/// so its `anthropic-version` and `anthropic-beta` (which say how to read
/// its body) go up instead of the upstream's configured ones.
pub(super) fn upstream_request(
    client: &HeaderMap,
    upstream: &Upstream,
    request_id: &str,
    anthropic_door: bool,
    native: bool,
    out: &mut HeadWriter<'_>,
) {
    let listed = if client.contains_key(header::CONNECTION) {
        connection_listed(client)
    } else {
        Vec::new()
    };
    // Ours win: a client header the router sets itself is left out.
    let anthropic_header =
        |name: &HeaderName| matches!(name.as_str(), "anthropic-version" | "anthropic-beta");
    let clients_protocol = |name: &HeaderName| native && anthropic_header(name);
    let ours = |name: &HeaderName| {
        (upstream.headers.contains_key(name) && !clients_protocol(name))
            || upstream.credential.as_ref().is_some_and(|(n, _)| n == name)
    };
    for (name, value) in client {
        let drop = is_hop_by_hop(name)
            || matches!(
                name.as_str(),
                "host"
                    | "content-length"
                    | "content-type"
                    | "authorization"
                    | "api-key"
                    | "x-api-key"
                    | "accept-encoding"
                    | "expect"
                    | "x-request-id"
                    // The operator's billing scope is the operator's to set
                    // (`headers:`), not a caller's.
                    | "openai-organization"
                    | "openai-project"
            )
            || listed.contains(name)
            || ours(name)
            // An Anthropic client's protocol headers mean nothing to a
            // target it reaches through translation.
            || (anthropic_door && !native && anthropic_header(name));
        if !drop {
            out.header(name, value);
        }
    }
    if !ours(&X_REQUEST_ID) {
        if let Ok(id) = HeaderValue::from_str(request_id) {
            out.header(&X_REQUEST_ID, &id);
        }
    }
    if !upstream.headers.contains_key(header::CONTENT_TYPE) {
        out.header(
            &header::CONTENT_TYPE,
            &HeaderValue::from_static("application/json"),
        );
    }
    let credential = upstream.credential.as_ref().map(|(name, _)| name);
    for (name, value) in &upstream.headers {
        if credential != Some(name) && !(clients_protocol(name) && client.contains_key(name)) {
            out.header(name, value);
        }
    }
    if let Some((name, value)) = &upstream.credential {
        out.header(name, value);
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
