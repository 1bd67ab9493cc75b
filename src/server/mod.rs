//! The top layer: accepting connections (h1 or h2c by peek, optional TLS),
//! their limits and timeouts, graceful shutdown, the reload watcher and the
//! health probes of the current table.
//!
//! [`start`] loads the config, binds, and serves until [`RunningServer::shutdown`]
//! (or drop). Next: each request goes to `gateway::handle`.

mod fd_limit;
mod guard;
mod listen;
mod probes;
mod reload;
mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{self, ConfigErrors};
use crate::upstream::Registry;

/// How to start a server.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The `router.yaml` to serve.
    pub config_path: PathBuf,
    /// Overrides `server.listen`.
    pub listen: Option<SocketAddr>,
}

/// Why a server did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The config has errors.
    #[error("{0}")]
    Config(#[from] ConfigErrors),
    /// `server.tls` could not be loaded.
    #[error("{0}")]
    Tls(String),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// A server that is accepting connections.
pub struct RunningServer {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl RunningServer {
    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, waits for in-flight requests up to the grace period.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// Waits until the server stops (after [`RunningServer::shutdown`] from elsewhere).
    pub async fn stopped(mut self) {
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// A handle that can ask the server to stop.
    pub fn stopper(&self) -> watch::Sender<bool> {
        self.stop.clone()
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Reads the certificate and key of `server.tls` (paths relative to the
/// config file's directory), as `start` will: for `switchyard check`.
///
/// # Errors
/// What is wrong with them, naming the file.
pub fn check_tls(config_path: &std::path::Path, files: &config::TlsFiles) -> Result<(), String> {
    let files = config::TlsFiles {
        cert: tls::resolve(config_path, &files.cert),
        key: tls::resolve(config_path, &files.key),
    };
    tls::load(&files).map(|_| ())
}

/// Loads the config, binds the listener and starts serving in the background.
///
/// # Errors
/// [`StartError`] when the config has errors or the address cannot be bound.
pub async fn start(options: ServeOptions) -> Result<RunningServer, StartError> {
    let registry = Arc::new(Registry::default());
    let source = options.config_path.display().to_string();
    let text = config::read_text(&options.config_path).map_err(|message| ConfigErrors {
        source: source.clone(),
        errors: vec![config::ConfigError {
            path: config::KeyPath::root(),
            message,
        }],
    })?;
    let loaded = config::load_str(
        &text,
        &source,
        &|name| std::env::var(name).ok(),
        &registry,
        1,
    )?;
    for warning in &loaded.warnings {
        tracing::warn!("{}: {warning}", options.config_path.display());
    }
    if loaded.table.keys.is_empty() {
        tracing::warn!("no router keys configured (server.auth.keys): anyone who can reach this port can use every model");
    }
    let tls = match &loaded.tls {
        Some(files) => {
            let files = config::TlsFiles {
                cert: tls::resolve(&options.config_path, &files.cert),
                key: tls::resolve(&options.config_path, &files.key),
            };
            Some(Arc::new(tls::Tls::new(files).map_err(|e| {
                StartError::Tls(format!("{}: {e}", options.config_path.display()))
            })?))
        }
        None => None,
    };
    let addr = options.listen.unwrap_or(loaded.listen);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| StartError::Bind { addr, source })?;
    let grace: Duration = loaded.shutdown_grace;
    let open_files = fd_limit::raise();
    let max_connections = match loaded.connections.max_connections {
        Some(n) => n as usize,
        None => fd_limit::default_max_connections(open_files, config::DEFAULT_MAX_CONNECTIONS_CAP),
    };
    if let Some(files) = open_files {
        if max_connections as u64 > files / 2 {
            tracing::warn!(
                max_connections,
                open_files = files,
                "server.max_connections is over half the open-file limit: connections may fail for lack of descriptors (raise `ulimit -n`)"
            );
        }
    }
    tracing::info!(
        %addr,
        config = %options.config_path.display(),
        models = loaded.table.models.len(),
        upstreams = loaded.table.upstreams.len(),
        max_connections,
        tls = tls.is_some(),
        "switchyard listening"
    );
    let limits = loaded.connections.clone();
    let reloader = Arc::new(reload::Reloader::new(
        loaded,
        &text,
        registry,
        options.config_path.clone(),
        addr,
    ));
    let state = reloader.app.clone();
    let reloader = reload::spawn(reloader);
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(async move {
        let watcher = tls.as_ref().map(|tls| tls.watch());
        let listener = listen::Listener {
            listener,
            limits,
            max_connections,
            tls,
        };
        // Key budgets go to the state file every few seconds while
        // something is spent, and once more when the drain is over.
        let saver = {
            let state = state.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(crate::quota::store::SAVE_EVERY).await;
                    let state = state.clone();
                    let _ = tokio::task::spawn_blocking(move || state.save_key_state(false)).await;
                }
            })
        };
        listen::serve(listener, state.clone(), stopped, grace).await;
        saver.abort();
        let _ = tokio::task::spawn_blocking(move || state.save_key_state(true)).await;
        drop(reloader);
        if let Some(watcher) = watcher {
            watcher.abort();
        }
    });
    Ok(RunningServer {
        addr,
        stop,
        task: Some(task),
    })
}
