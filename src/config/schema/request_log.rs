//! `request_log:` — where request records are written.

use serde_yaml::Value;

use crate::config::keypath::KeyPath;
use crate::config::walk::Walk;

/// Size at which a request log file is rotated.
pub const DEFAULT_REQUEST_LOG_FILE_BYTES: u64 = 100 << 20;

/// Records buffered for the request log writer; a burst this large is
/// absorbed, a longer stall drops (and counts) records.
pub const DEFAULT_REQUEST_LOG_QUEUE: u64 = 4096;

pub(super) fn read_request_log(
    walk: &mut Walk<'_>,
    value: &Value,
    path: &KeyPath,
) -> Option<crate::telemetry::request_log::RequestLogConfig> {
    let f = walk.fields(
        value,
        path,
        &["dir", "max_file_bytes", "include_content", "queue"],
    )?;
    let dir = match f.get("dir") {
        Some((v, p)) => walk.strict_text(v, &p)?,
        None => {
            walk.error(
                &path.key("dir"),
                "missing: the directory to write request logs to, e.g. dir: ./logs",
            );
            return None;
        }
    };
    let max_file_bytes = f
        .get("max_file_bytes")
        .and_then(|(v, p)| walk.bytes(v, &p))
        .unwrap_or(DEFAULT_REQUEST_LOG_FILE_BYTES)
        .max(4096);
    let include_content = match f.get("include_content") {
        Some((Value::Bool(b), _)) => *b,
        Some((_, p)) => {
            walk.error(&p, "expected true or false");
            false
        }
        None => false,
    };
    let queue = f
        .get("queue")
        .and_then(|(v, p)| walk.number(v, &p, 1..=1_000_000))
        .unwrap_or(DEFAULT_REQUEST_LOG_QUEUE) as usize;
    Some(crate::telemetry::request_log::RequestLogConfig {
        dir: dir.into(),
        max_file_bytes,
        include_content,
        queue,
    })
}
