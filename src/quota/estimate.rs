//! The tokens a request is expected to use, reserved against a `tpm`
//! (a key's or a target's) when it is admitted and corrected by the usage
//! its answer reports.

use crate::json::member;

/// Completion tokens reserved for a request that sets no `max_tokens`
/// (nor `max_completion_tokens`, `max_output_tokens`): a long chat answer.
/// The reservation is corrected by the observed usage when the answer ends.
pub const DEFAULT_COMPLETION_ESTIMATE: u64 = 1024;

/// Prompt bytes per token in the estimate (English text and JSON run at 3
/// to 4; the request's JSON framing is counted too, so this errs high).
pub const BYTES_PER_TOKEN: u64 = 4;

/// The tokens a request is expected to use, reserved against `tpm`: its
/// prompt at [`BYTES_PER_TOKEN`] per token (the whole body), plus its
/// completion limit or [`DEFAULT_COMPLETION_ESTIMATE`].
pub fn estimate_tokens(body: &[u8]) -> u64 {
    let completion = ["max_completion_tokens", "max_tokens", "max_output_tokens"]
        .iter()
        .find_map(|key| {
            let at = member(body, key.as_bytes())?;
            let digits = body[at..].iter().take_while(|b| b.is_ascii_digit()).count();
            std::str::from_utf8(&body[at..at + digits])
                .ok()?
                .parse::<u64>()
                .ok()
        })
        .unwrap_or(DEFAULT_COMPLETION_ESTIMATE);
    (body.len() as u64).div_ceil(BYTES_PER_TOKEN) + completion
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_estimate_reads_the_completion_limit() {
        let body = br#"{"model":"m","max_tokens":100,"messages":[]}"#;
        assert_eq!(estimate_tokens(body), (body.len() as u64).div_ceil(4) + 100);
        let body = br#"{"model":"m","max_completion_tokens": 7}"#;
        assert_eq!(estimate_tokens(body), (body.len() as u64).div_ceil(4) + 7);
        let body = br#"{"model":"m","messages":[{"max_tokens":5}]}"#;
        assert_eq!(
            estimate_tokens(body),
            (body.len() as u64).div_ceil(4) + DEFAULT_COMPLETION_ESTIMATE
        );
    }
}
