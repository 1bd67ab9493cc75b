//! State shared by every connection: the current table (swapped whole on
//! reload) and the runtime state that outlives tables.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use arc_swap::{ArcSwap, ArcSwapOption};

use crate::routing::Table;
use crate::telemetry::request_log::{RequestLog, RequestLogConfig};
use crate::upstream::Registry;

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
    /// Reload outcomes.
    pub reloads: Mutex<ReloadStatus>,
    /// The request log sink, when `request_log:` is configured.
    pub request_log: ArcSwapOption<RequestLog>,
    /// When the server started.
    pub started: std::time::Instant,
}

impl AppState {
    /// State serving `table`, loaded from `config_path`.
    pub fn new(
        table: Table,
        registry: Arc<Registry>,
        config_path: PathBuf,
        listen: SocketAddr,
    ) -> AppState {
        AppState {
            table: ArcSwap::from_pointee(table),
            registry,
            config_path,
            listen,
            reloads: Mutex::new(ReloadStatus::default()),
            request_log: ArcSwapOption::empty(),
            started: std::time::Instant::now(),
        }
    }

    /// Swaps in a new table in one store; requests in flight keep theirs.
    pub fn install(&self, table: Table) {
        self.table.store(Arc::new(table));
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

    /// Keeps key budgets in `file` (`state.file`; relative to the config
    /// file's directory), restoring the spend it holds the first time.
    pub fn configure_state_file(&self, file: &std::path::Path) {
        let path = if file.is_absolute() {
            file.to_owned()
        } else {
            self.config_path
                .parent()
                .map_or_else(|| file.to_owned(), |dir| dir.join(file))
        };
        if let Err(err) = self.registry.quota().open(&path) {
            tracing::error!(error = %err, "state.file: cannot restore key budgets; they start from zero");
        }
    }

    /// Writes key budgets to the state file (when any key has a budget and,
    /// unless `force`, something was spent since the last write).
    pub fn save_key_state(&self, force: bool) {
        if let Err(err) = self.registry.quota().save(force) {
            tracing::error!(error = %err, "state.file: cannot write key budgets");
        }
    }

    /// The generation of the table being served.
    pub fn generation(&self) -> u64 {
        self.table.load().generation
    }
}
