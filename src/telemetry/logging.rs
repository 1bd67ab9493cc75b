//! `tracing` setup: human-readable lines by default, JSON on request.

use std::sync::atomic::{AtomicU8, Ordering};

use tracing_subscriber::EnvFilter;

/// How the access log is written: through `tracing` (0: colours, or no
/// subscriber installed by us), or directly as text (1) or JSON (2).
static DIRECT: AtomicU8 = AtomicU8::new(0);

/// `Some(json)` when the access log may write its lines itself (see
/// `log_line`), in the same format as the installed subscriber.
pub fn direct() -> Option<bool> {
    match DIRECT.load(Ordering::Relaxed) {
        1 => Some(false),
        2 => Some(true),
        _ => None,
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One readable line per event.
    Text,
    /// One JSON object per event (for log shippers).
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<LogFormat, String> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("unknown log format {other:?} (use text or json)")),
        }
    }
}

/// Installs the global subscriber. The level comes from `RUST_LOG` (default
/// `info`). Calling it twice is harmless.
pub fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Logs go to stderr (stdout stays free for `check` output and pipes);
    // colours only on a terminal, never with NO_COLOR set: log files and
    // collectors get plain text, which is also about half the bytes.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    if installed.is_ok() && !(ansi && format == LogFormat::Text) {
        DIRECT.store(
            if format == LogFormat::Json { 2 } else { 1 },
            Ordering::Relaxed,
        );
    }
}
