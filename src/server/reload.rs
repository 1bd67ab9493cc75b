//! Hot reload: a file watcher and SIGHUP feed one debounced reload.
//!
//! A reload reads, interpolates, validates and compiles a complete new table
//! and swaps it in with one store; requests in flight finish on the table
//! they started with. A file that fails validation is never served: the last
//! good table keeps serving, and every error is logged with its key path and
//! shown in `/status` until a reload succeeds.
//!
//! The watcher watches the file's *directory*, not the file: editors save by
//! writing a new file and renaming it over the old one, and Kubernetes
//! swaps a ConfigMap by re-pointing a `..data` symlink, so the watched inode
//! changes either way. Any event in the directory schedules a check; after
//! [`DEBOUNCE`] of quiet the file is read and reloaded only if its text
//! changed. SIGHUP reloads unconditionally.

use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

use super::probes::Probes;
use crate::config::{self, ConnectionLimits, Loaded, TlsFiles};
use crate::gateway::AppState;
use crate::routing::Table;
use crate::upstream::Registry;

/// Quiet time after the last file event before reloading. Editors and
/// `kubectl` produce bursts of events for one save; a quarter second
/// collapses them while keeping "edits apply within a second".
pub const DEBOUNCE: Duration = Duration::from_millis(250);

/// Hash of a config text.
pub(crate) fn text_hash(text: &str) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut hasher);
    hasher.finish()
}

/// The served state and what only reloads need: the settings that apply at
/// start only (to warn when a reload changes them), the hash of the text
/// last loaded, and the health probes of the current table.
pub(crate) struct Reloader {
    /// What requests see.
    pub(crate) app: Arc<AppState>,
    /// `server.listen` as the config last said it, to notice a change.
    config_listen: Mutex<SocketAddr>,
    /// The connection limits and TLS files as the config last said them, to
    /// notice a change (they apply at start only).
    config_connections: Mutex<(ConnectionLimits, Option<TlsFiles>)>,
    /// Hash of the config text last loaded, so a file event that changed
    /// nothing (an editor touching the file) does not reload.
    loaded_hash: AtomicU64,
    /// Health probes of the current table.
    probes: Mutex<Probes>,
}

impl Reloader {
    /// Serves `loaded` (read from `text`) on a new [`AppState`], with its
    /// probes and request log started. `listen` is the address bound.
    pub(crate) fn new(
        loaded: Loaded,
        text: &str,
        registry: Arc<Registry>,
        config_path: PathBuf,
        listen: SocketAddr,
    ) -> Reloader {
        let probes = Probes::start(&loaded.table);
        let file = state_file(&loaded);
        let app = Arc::new(AppState::new(loaded.table, registry, config_path, listen));
        app.configure_request_log(loaded.request_log);
        app.configure_state_file(&file);
        Reloader {
            app,
            config_listen: Mutex::new(loaded.listen),
            config_connections: Mutex::new((loaded.connections, loaded.tls)),
            loaded_hash: AtomicU64::new(text_hash(text)),
            probes: Mutex::new(probes),
        }
    }

    /// Swaps in `table` and restarts the health probes for it; requests in
    /// flight keep the table they started with.
    fn install(&self, table: Table) {
        let probes = Probes::start(&table);
        self.app.install(table);
        if let Ok(mut current) = self.probes.lock() {
            *current = probes;
        }
    }
}

/// Why a reload is happening.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// A file event (reload only if the text changed).
    File,
    /// SIGHUP (reload whatever the text).
    Signal,
}

/// Reloads the config now. Returns the new generation, or `None` when the
/// file is unchanged (for [`Trigger::File`]) or was rejected.
pub(crate) fn reload(reloader: &Reloader, trigger: Trigger) -> Option<u64> {
    let state = &reloader.app;
    let path = &state.config_path;
    let text = match config::read_text(path) {
        Ok(text) => text,
        Err(err) => {
            // Mid-rename the file can be briefly missing; the next event retries.
            record_failure(state, format!("{}: {err}", path.display()));
            return None;
        }
    };
    let hash = text_hash(&text);
    if trigger == Trigger::File && hash == reloader.loaded_hash.load(Ordering::Relaxed) {
        return None;
    }
    let generation = state.generation() + 1;
    let source = path.display().to_string();
    match config::load_str(
        &text,
        &source,
        &config::from_env,
        &state.registry,
        generation,
    ) {
        Ok(loaded) => {
            for warning in &loaded.warnings {
                tracing::warn!("{source}: {warning}");
            }
            if let Ok(mut previous) = reloader.config_listen.lock() {
                if *previous != loaded.listen {
                    tracing::warn!(
                        "{source}: server.listen changed from {} to {}; restart Switchyard to apply it (still serving on {})",
                        *previous,
                        loaded.listen,
                        state.listen
                    );
                    *previous = loaded.listen;
                }
            }
            if let Ok(mut previous) = reloader.config_connections.lock() {
                let now = (loaded.connections.clone(), loaded.tls.clone());
                if *previous != now {
                    tracing::warn!(
                        "{source}: server listener settings changed (max_connections, header_timeout, keepalive_timeout, send_timeout, http2_max_streams or tls); restart Switchyard to apply them (changed certificate files are picked up without one)"
                    );
                    *previous = now;
                }
            }
            let models = loaded.table.models.len();
            if loaded.table.keys.is_empty() && !state.table.load().keys.is_empty() {
                tracing::error!(
                    "{source}: this reload removes every router key (server.auth.keys): the router is now OPEN to anyone who can reach its port"
                );
            }
            let file = state_file(&loaded);
            reloader.install(loaded.table);
            state.configure_request_log(loaded.request_log);
            state.configure_state_file(&file);
            state
                .registry
                .metrics()
                .config_reloads
                .with_label_values(&["success"])
                .inc();
            reloader.loaded_hash.store(hash, Ordering::Relaxed);
            if let Ok(mut status) = state.reloads.lock() {
                status.succeeded += 1;
                status.last_attempt = Some(SystemTime::now());
                status.last_error = None;
            }
            tracing::info!(generation, models, trigger = ?trigger, "config reloaded");
            Some(generation)
        }
        Err(errors) => {
            for error in &errors.errors {
                tracing::error!("{source}: {error}");
            }
            reloader.loaded_hash.store(hash, Ordering::Relaxed);
            record_failure(state, errors.to_string());
            None
        }
    }
}

/// `state.file`, or the default beside the config.
fn state_file(loaded: &Loaded) -> std::path::PathBuf {
    loaded
        .state_file
        .clone()
        .unwrap_or_else(|| config::DEFAULT_STATE_FILE.into())
}

fn record_failure(state: &AppState, message: String) {
    state
        .registry
        .metrics()
        .config_reloads
        .with_label_values(&["failure"])
        .inc();
    tracing::error!(
        generation = state.generation(),
        "config reload rejected; still serving the last good config"
    );
    if let Ok(mut status) = state.reloads.lock() {
        status.failed += 1;
        status.last_attempt = Some(SystemTime::now());
        status.last_error = Some(message);
    }
}

/// Starts the file watcher and the SIGHUP listener. They stop when the
/// returned handle is dropped.
pub(crate) fn spawn(reloader: Arc<Reloader>) -> ReloadHandle {
    let (tx, rx) = mpsc::channel::<Trigger>(16);
    let file_tx = tx.clone();
    let watched = reloader.app.config_path.clone();
    let dir = watched
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(|p| p.to_path_buf())
        .unwrap_or_else(|| ".".into());
    let name = watched.file_name().map(|n| n.to_os_string());
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        // Only events that can change the config: its own name (written in
        // place, or renamed over by an editor) or a Kubernetes ConfigMap's
        // `..data` symlink swap. Anything else in the directory (a log file
        // being written there) is ignored, so it costs nothing.
        let relevant = event.paths.iter().any(|p| {
            let file = p.file_name();
            file.is_some_and(|f| Some(f) == name.as_deref() || f == "..data")
        });
        if relevant {
            // Full channel: a reload is already pending, which covers this event.
            let _ = file_tx.try_send(Trigger::File);
        }
    })
    .and_then(|mut w| w.watch(&dir, RecursiveMode::NonRecursive).map(|_| w));
    let watcher = match watcher {
        Ok(w) => Some(w),
        Err(err) => {
            tracing::warn!(dir = %dir.display(), error = %err, "cannot watch the config directory; reload with SIGHUP instead");
            None
        }
    };
    let mut tasks = tokio::task::JoinSet::new();
    #[cfg(unix)]
    {
        let tx = tx.clone();
        tasks.spawn(async move {
            use tokio::signal::unix::{signal, SignalKind};
            let Ok(mut hup) = signal(SignalKind::hangup()) else {
                return;
            };
            while hup.recv().await.is_some() {
                tracing::info!("SIGHUP received; reloading the config");
                let _ = tx.send(Trigger::Signal).await;
            }
        });
    }
    tasks.spawn(run(reloader, rx));
    ReloadHandle {
        _watcher: watcher,
        _tasks: tasks,
    }
}

/// Keeps the watcher and reload tasks alive.
pub struct ReloadHandle {
    _watcher: Option<notify::RecommendedWatcher>,
    _tasks: tokio::task::JoinSet<()>,
}

async fn run(reloader: Arc<Reloader>, mut rx: mpsc::Receiver<Trigger>) {
    while let Some(first) = rx.recv().await {
        let mut trigger = first;
        // Debounce: wait until no event arrived for DEBOUNCE.
        loop {
            match tokio::time::timeout(DEBOUNCE, rx.recv()).await {
                Ok(Some(next)) => {
                    if next == Trigger::Signal {
                        trigger = Trigger::Signal;
                    }
                }
                Ok(None) => return,
                Err(_) => break,
            }
        }
        let reloader = reloader.clone();
        // Reading and compiling is blocking work; keep it off the reactor.
        let _ = tokio::task::spawn_blocking(move || reload(&reloader, trigger)).await;
    }
}
