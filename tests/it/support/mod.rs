//! Shared support for Switchyard's integration tests: a scripted mock
//! OpenAI-compatible upstream and a raw HTTP client.

pub mod client;
pub mod eventstream;
pub mod extra;
pub mod metrics_scrape;
pub mod mock_upstream;
pub mod pki;
pub mod raw_upstream;
pub mod redis;
pub mod router;
pub mod translated;

pub use client::Reply;
pub use mock_upstream::{
    chat_chunks, chat_completion_json, openai_error, Behaviour, Gate, MockUpstream, Recorded,
};
pub use router::{one_model, Router};

/// Installs a tracing subscriber that writes through the test harness (shown
/// only for failing tests). Filter from `RUST_LOG`, else
/// `switchyard=debug,warn`. Safe to call from every test: later calls are
/// no-ops.
pub fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("switchyard=debug,warn"));
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(filter)
        .try_init();
}
