//! `router.yaml`: read → interpolate → validate → compile into a [`Table`].
//!
//! Only a table that passed every check is ever returned. Of the parsed
//! schema, only the settings that apply at start leave this module (in
//! [`Loaded`]: [`ConnectionLimits`], [`TlsFiles`]); everything else reaches
//! the rest of the router compiled into the table. Every mistake is
//! reported, each with its key path, and `switchyard check` prints exactly
//! what a load would.

mod compile;
mod interpolate;
mod keypath;
mod schema;
mod suggest;
mod validate;
mod walk;

#[cfg(test)]
mod tests;

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

pub use interpolate::{from_env, interpolate, InterpolateError, Interpolated};
pub use keypath::KeyPath;
pub use schema::{ConnectionLimits, TlsFiles, DEFAULT_MAX_CONNECTIONS_CAP, DEFAULT_STATE_FILE};
pub use walk::ConfigError;

use crate::routing::Table;
use crate::upstream::Registry;

/// A config that loaded.
pub struct Loaded {
    /// The compiled table.
    pub table: Table,
    /// Problems that did not stop the load (e.g. an unset `${VAR}` that
    /// disables one upstream).
    pub warnings: Vec<ConfigError>,
    /// `server.listen` (applies at start only).
    pub listen: SocketAddr,
    /// `server.shutdown_grace`.
    pub shutdown_grace: Duration,
    /// `server.max_connections` and the connection timeouts (at start only).
    pub connections: ConnectionLimits,
    /// `server.tls` (at start only), paths as written.
    pub tls: Option<TlsFiles>,
    /// `request_log:`.
    pub request_log: Option<crate::telemetry::request_log::RequestLogConfig>,
    /// `state.file` as written (`None`: the default beside the config).
    pub state_file: Option<std::path::PathBuf>,
}

/// A config that did not load: every error found.
#[derive(Debug)]
pub struct ConfigErrors {
    /// The file (or "config") the errors are about.
    pub source: String,
    /// The errors, in document order of discovery.
    pub errors: Vec<ConfigError>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.errors.len();
        write!(
            f,
            "{}: {n} error{}",
            self.source,
            if n == 1 { "" } else { "s" }
        )?;
        for error in &self.errors {
            write!(f, "\n  {}: {error}", self.source)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Reads and compiles the file at `path`, with `${VAR}` from the environment.
///
/// # Errors
/// Every problem found, when the file cannot be read or has any error.
pub fn load_file(
    path: &Path,
    registry: &Registry,
    generation: u64,
) -> Result<Loaded, ConfigErrors> {
    let source = path.display().to_string();
    let text = read_text(path).map_err(|message| ConfigErrors {
        source: source.clone(),
        errors: vec![ConfigError {
            path: KeyPath::root(),
            message,
        }],
    })?;
    load_str(&text, &source, &interpolate::from_env, registry, generation)
}

/// Largest config file read, in bytes.
pub const MAX_CONFIG_BYTES: u64 = 8 << 20;

/// Reads a config file of at most [`MAX_CONFIG_BYTES`].
///
/// # Errors
/// Why it could not be read, as a message.
pub fn read_text(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|err| format!("cannot read the file: {err}"))?;
    let mut text = String::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|err| format!("cannot read the file: {err}"))?;
    if text.len() as u64 > MAX_CONFIG_BYTES {
        return Err(format!(
            "the file is larger than {} MiB, the most Switchyard reads; split the models across routers",
            MAX_CONFIG_BYTES >> 20
        ));
    }
    Ok(text)
}

/// Compiles config text; `lookup` resolves `${VAR}`.
///
/// # Errors
/// Every problem found.
pub fn load_str(
    text: &str,
    source: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    registry: &Registry,
    generation: u64,
) -> Result<Loaded, ConfigErrors> {
    let fail = |errors| ConfigErrors {
        source: source.to_owned(),
        errors,
    };
    let doc: serde_yaml::Value = serde_yaml::from_str(text).map_err(|err| {
        let at = err
            .location()
            .map(|l| format!("line {} column {}: ", l.line(), l.column()))
            .unwrap_or_default();
        fail(vec![ConfigError {
            path: KeyPath::root(),
            message: format!("{at}not valid YAML: {err}"),
        }])
    })?;
    let mut walk = walk::Walk::new(lookup);
    let config = schema::read(&mut walk, &doc);
    validate::validate(&mut walk, &config);
    if !walk.errors.is_empty() {
        return Err(fail(walk.errors));
    }
    let table = compile::compile(&mut walk, &config, registry, generation);
    if !walk.errors.is_empty() {
        return Err(fail(walk.errors));
    }
    Ok(Loaded {
        table,
        warnings: walk.warnings,
        listen: config.server.listen,
        shutdown_grace: config.server.shutdown_grace,
        connections: config.server.connections.clone(),
        tls: config.server.tls.clone(),
        request_log: config.request_log,
        state_file: config.state.file,
    })
}

/// The compiled model table as text, for `switchyard check`.
pub fn describe(table: &Table) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(out, "models ({}):", table.models.len());
    for model in &table.models {
        let _ = writeln!(out, "  {}", model.name);
        for target in &model.targets {
            let upstream = &target.upstream;
            let address = if upstream.base_url.is_empty() {
                "built in".to_owned()
            } else {
                upstream.base_url.clone()
            };
            let status = match &upstream.unresolved {
                Some(u) => format!("  [disabled: {u} is not set]"),
                None => String::new(),
            };
            let _ = writeln!(
                out,
                "    -> {} ({}, {}) as {:?}, weight {}{}",
                upstream.name,
                upstream.kind.as_str(),
                address,
                target.upstream_model,
                target.weight,
                status
            );
        }
        if !model.fallbacks.is_empty() {
            let names: Vec<&str> = model.fallbacks.iter().map(|m| m.name.as_str()).collect();
            let _ = writeln!(out, "    fallbacks: {}", names.join(" -> "));
        }
    }
    out
}
