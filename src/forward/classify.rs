//! The classification table: what an upstream answer or failure means for
//! the attempt loop.
//!
//! | what happened | default verdict |
//! |---|---|
//! | 2xx | commit (a stream commits at its first content event, see `commit`) |
//! | connect error, TLS failure, reset, first-byte or first-token timeout, error event or empty stream before commit | next target |
//! | 408, 409, 429, 500, 502, 503, 504, 529 | retry the same target (at most `retry.attempts` times, backoff with equal jitter, or the upstream's `retry-after` when it fits the deadline) unless that failure opened its circuit, then next target |
//! | other 5xx | next target |
//! | 401, 403, 404 | next target; the target is marked misconfigured (logged as an error, shown in `/status`) |
//! | 400 with a context-window code or message | the model's `context_window_fallbacks`, else return it |
//! | other 4xx (400, 413, 422, …) | return it unchanged: the client's request is at fault and would fail everywhere |
//!
//! A model can replace the retried set (`retry.on_status`) and the
//! next-target set (`fail_over_on_status`). Never sleeps or sends anything.

use std::time::Duration;

use http::{HeaderMap, StatusCode};

use crate::routing::StatusPolicy;

/// What to do after an upstream answered with a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// This is the answer (a success, or an error the client must see).
    Accept,
    /// Try the same target again (after a delay, if the upstream gave one).
    RetrySame,
    /// Move to the next target in the plan.
    Next,
    /// Move to the model's context-window fallbacks.
    ContextWindow,
}

/// The verdict for an upstream status. `body` is the (small, already read)
/// error body, consulted only for a 400.
pub fn classify_status(status: StatusCode, body: Option<&[u8]>, policy: &StatusPolicy) -> Verdict {
    let code = status.as_u16();
    if status.is_success() || status.is_informational() || status.is_redirection() {
        return Verdict::Accept;
    }
    if policy.retry_on.contains(&code) {
        return Verdict::RetrySame;
    }
    if policy.fail_over_on.contains(&code) {
        return Verdict::Next;
    }
    if code == 400 && body.is_some_and(is_context_window_error) {
        return Verdict::ContextWindow;
    }
    if status.is_server_error() {
        return Verdict::Next;
    }
    Verdict::Accept
}

/// True for statuses that mean the target itself is misconfigured.
pub fn is_misconfiguration(status: StatusCode) -> bool {
    matches!(status.as_u16(), 401 | 403 | 404)
}

/// Does this 400 body say the prompt is over the model's context window?
/// OpenAI and Azure send `code: "context_length_exceeded"`; vLLM, Ollama and
/// others only say it in the message.
pub fn is_context_window_error(body: &[u8]) -> bool {
    const NEEDLES: [&[u8]; 6] = [
        b"context_length_exceeded",
        b"maximum context length",
        b"context window",
        b"context_window_exceeded",
        b"too many tokens",
        b"prompt is too long",
    ];
    let lower: Vec<u8> = body
        .iter()
        .take(64 * 1024)
        .map(u8::to_ascii_lowercase)
        .collect();
    NEEDLES
        .iter()
        .any(|n| lower.windows(n.len()).any(|w| w == *n))
}

/// The upstream's requested delay: `retry-after-ms` (milliseconds) first,
/// then `retry-after` as seconds. HTTP-date values are not honoured (no
/// upstream we know sends them for rate limits).
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let parse = |name: &str| headers.get(name)?.to_str().ok()?.trim().parse::<f64>().ok();
    let ms = parse("retry-after-ms").map(|ms| ms / 1000.0);
    let secs = ms.or_else(|| parse("retry-after"))?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(3600.0)))
}

/// Backoff before same-target retry `n` (0-based): "equal jitter" over an
/// exponential ceiling, `random(ceiling / 2, ceiling)` with
/// `ceiling = min(cap, base * 2^n)`. The jitter spreads retries from many
/// clients; the floor of half the ceiling keeps a retry from landing a few
/// milliseconds after the failure, when the upstream cannot have recovered.
pub fn backoff(n: u32, base: Duration, cap: Duration, unit_random: f64) -> Duration {
    let ceiling = base.saturating_mul(1u32 << n.min(16)).min(cap);
    ceiling / 2 + (ceiling / 2).mul_f64(unit_random.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(code: u16, body: &str) -> Verdict {
        classify_status(
            StatusCode::from_u16(code).unwrap(),
            Some(body.as_bytes()),
            &StatusPolicy::default(),
        )
    }

    #[test]
    fn follows_the_documented_table() {
        assert_eq!(verdict(200, ""), Verdict::Accept);
        for code in [408, 409, 429, 500, 502, 503, 504, 529] {
            assert_eq!(verdict(code, ""), Verdict::RetrySame, "{code}");
        }
        for code in [401, 403, 404, 501] {
            assert_eq!(verdict(code, ""), Verdict::Next, "{code}");
        }
        for code in [400, 413, 422] {
            assert_eq!(verdict(code, "{}"), Verdict::Accept, "{code}");
        }
        assert_eq!(verdict(599, ""), Verdict::Next);
    }

    #[test]
    fn spots_context_window_errors() {
        let openai = r#"{"error":{"message":"This model's maximum context length is 8192 tokens.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#;
        assert_eq!(verdict(400, openai), Verdict::ContextWindow);
        let vllm = r#"{"object":"error","message":"This model's Maximum Context Length is 4096 tokens","code":400}"#;
        assert_eq!(verdict(400, vllm), Verdict::ContextWindow);
        assert_eq!(
            verdict(400, r#"{"error":{"message":"bad temperature"}}"#),
            Verdict::Accept
        );
    }

    #[test]
    fn a_model_policy_replaces_the_sets() {
        let policy = StatusPolicy {
            retry_on: vec![],
            fail_over_on: vec![429],
        };
        assert_eq!(
            classify_status(StatusCode::TOO_MANY_REQUESTS, None, &policy),
            Verdict::Next
        );
    }

    #[test]
    fn reads_retry_after_headers() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", "2".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert("retry-after-ms", "150".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_millis(150)));
        h.insert("retry-after-ms", "soon".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }

    #[test]
    fn backoff_is_capped_equal_jitter() {
        let base = Duration::from_millis(100);
        let cap = Duration::from_secs(2);
        assert_eq!(backoff(0, base, cap, 1.0), base);
        assert_eq!(backoff(3, base, cap, 1.0), Duration::from_millis(800));
        assert_eq!(backoff(10, base, cap, 1.0), cap);
        // Never less than half the ceiling, whatever the random draw.
        assert_eq!(backoff(0, base, cap, 0.0), base / 2);
        assert_eq!(backoff(10, base, cap, 0.0), cap / 2);
        assert_eq!(backoff(2, base, cap, 0.5), Duration::from_millis(300));
    }
}
