//! Starts the real Switchyard server from a YAML string on a loopback port.
//! Dropping the [`Router`] shuts it down and removes the temporary config.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use switchyard::{RunningServer, ServeOptions};

static NEXT: AtomicU64 = AtomicU64::new(0);

/// A running router.
pub struct Router {
    server: Option<RunningServer>,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    config: PathBuf,
}

impl Router {
    /// Writes `yaml` to a temporary file and serves it on `127.0.0.1:0`.
    pub async fn start(yaml: &str) -> Router {
        let config = std::env::temp_dir().join(format!(
            "switchyard-test-{}-{}.yaml",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&config, yaml).expect("write the test config");
        let server = switchyard::start(ServeOptions {
            config_path: config.clone(),
            listen: Some("127.0.0.1:0".parse().unwrap()),
        })
        .await
        .unwrap_or_else(|e| panic!("router did not start: {e}"));
        let base = format!("http://{}", server.local_addr());
        Router {
            server: Some(server),
            base,
            config,
        }
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// The config file this router serves and watches; rewrite it to reload.
    pub fn config_path(&self) -> &std::path::Path {
        &self.config
    }

    /// Shuts down gracefully and waits for the drain.
    pub async fn shutdown(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
    }
}

impl Drop for Router {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.config);
    }
}

/// A config with one upstream `up` of `provider` at `base_url` (active health
/// checks off, so the mock sees only the test's requests) and one model `m`
/// served by it as `upstream-model`. `extra_upstream` is appended verbatim
/// to the upstream's keys (indent it by four spaces).
pub fn one_model(provider: &str, base_url: &str, extra_upstream: &str) -> String {
    format!(
        "upstreams:\n  up:\n    provider: {provider}\n    base_url: {base_url}\n    health_check: false\n{extra_upstream}\nmodels:\n  m:\n    targets: [{{ upstream: up, model: upstream-model }}]\n"
    )
}
