//! Switchyard's integration tests, as one test binary (`cargo test --test it`).
//!
//! Each module was its own `tests/*.rs` binary once; together they compile and
//! link `support` (the mock upstreams, raw client and router harness) once
//! instead of once per file. Run one area with a filter on its module path,
//! e.g. `cargo test --test it resilience::`.
//!
//! The modules share one process, so nothing process-wide (environment
//! variables, temporary file names, the router's upstream TLS roots) may
//! depend on which module runs first: see `support::pki::trust_test_ca`.

mod support;

mod access_log_lines;
mod anthropic;
mod bedrock;
mod broken_upstreams;
mod cache;
mod commit_point;
mod config_check;
mod cors;
mod disconnect;
mod errors;
mod fuzz_corpus;
mod gemini;
mod h2_flood;
mod health_checks;
mod hostile_clients;
mod inbound_tls;
mod keys;
mod layering;
mod messages_door;
mod metrics;
mod mock_upstream_selftest;
mod models_and_health;
mod passthrough;
mod policies;
mod providers;
mod reload;
mod replicas;
mod request_log;
mod resilience;
mod resume;
mod shared_state;
mod smoke;
mod status_page;
mod strategies;
mod stream_usage;
mod upstream_tls;
mod upstream_wire;
