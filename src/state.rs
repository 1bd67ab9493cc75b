//! State shared by every connection: the current table (swapped whole on
//! reload) and the runtime state that outlives tables.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use arc_swap::{ArcSwap, ArcSwapOption};

use crate::routing::Table;
use crate::telemetry::request_log::{RequestLog, RequestLogConfig};
use crate::upstream::{Probes, Registry};

/// What the last reloads did, for `/status`.
#[derive(Debug, Clone, Default)]
pub struct ReloadStatus {
    /// Successful reloads since start.
    pub succeeded: u64,
    /// Rejected reloads since start.
    pub failed: u64,
    /// When the last reload was attempted.
    pub last_attempt: Option<SystemTime>,
    /// Every error of the last rejected reload, until a reload succeeds.
    pub last_error: Option<String>,
}

/// Everything a request can reach. One per server, in an `Arc`.
pub struct AppState {
    /// The current table; each request loads it once (`load_full`) and keeps
    /// that snapshot to its end.
    pub table: ArcSwap<Table>,
    /// Runtime state and clients by upstream identity.
    pub registry: Arc<Registry>,
    /// The config file served.
    pub config_path: PathBuf,
    /// The address the server listens on (a reload cannot change it).
    pub listen: SocketAddr,
    /// `server.listen` as the config last said it, to notice a change.
    pub(crate) config_listen: Mutex<SocketAddr>,
    /// The connection limits as the config last said them, to notice a
    /// change (they apply at start only).
    pub(crate) config_connections: Mutex<(
        crate::config::ConnectionLimits,
        Option<crate::config::TlsFiles>,
    )>,
    /// Reload outcomes.
    pub reloads: Mutex<ReloadStatus>,
    /// Hash of the config text last loaded, so a file event that changed
    /// nothing (an editor touching the file) does not reload.
    pub(crate) loaded_hash: AtomicU64,
    /// The request log sink, when `request_log:` is configured.
    pub request_log: ArcSwapOption<RequestLog>,
    /// When the server started.
    pub started: std::time::Instant,
    /// Health probes of the current table.
    probes: Mutex<Probes>,
}

impl AppState {
    /// State serving `table`, loaded from `config_path`.
    pub fn new(
        table: Table,
        registry: Arc<Registry>,
        config_path: PathBuf,
        listen: SocketAddr,
        config_listen: SocketAddr,
    ) -> AppState {
        let probes = Probes::start(&table);
        AppState {
            table: ArcSwap::from_pointee(table),
            registry,
            config_path,
            listen,
            config_listen: Mutex::new(config_listen),
            config_connections: Mutex::new((crate::config::ConnectionLimits::default(), None)),
            reloads: Mutex::new(ReloadStatus::default()),
            loaded_hash: AtomicU64::new(0),
            request_log: ArcSwapOption::empty(),
            started: std::time::Instant::now(),
            probes: Mutex::new(probes),
        }
    }

    /// Swaps in a new table in one store; requests in flight keep theirs.
    pub fn install(&self, table: Table) {
        let probes = Probes::start(&table);
        self.table.store(Arc::new(table));
        if let Ok(mut current) = self.probes.lock() {
            *current = probes;
        }
    }

    /// Starts, restarts or stops the request log to match `config`. A
    /// directory that cannot be created leaves request logging as it was.
    pub fn configure_request_log(&self, config: Option<RequestLogConfig>) {
        let current = self.request_log.load();
        if current.as_ref().map(|log| &log.config) == config.as_ref() {
            return;
        }
        let Some(config) = config else {
            self.request_log.store(None);
            return;
        };
        let metrics = self.registry.metrics();
        match RequestLog::start(
            config.clone(),
            metrics.request_log_written.clone(),
            metrics.request_log_dropped.clone(),
        ) {
            Ok(log) => {
                tracing::info!(dir = %config.dir.display(), content = config.include_content, "request log on");
                self.request_log.store(Some(Arc::new(log)));
            }
            Err(err) => tracing::error!(
                dir = %config.dir.display(), error = %err,
                "request_log.dir: cannot create the directory; request logging unchanged"
            ),
        }
    }

    /// The generation of the table being served.
    pub fn generation(&self) -> u64 {
        self.table.load().generation
    }

    pub(crate) fn set_loaded_hash(&self, hash: u64) {
        self.loaded_hash.store(hash, Ordering::Relaxed);
    }
}
