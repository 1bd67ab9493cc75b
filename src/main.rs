//! The `switchyard` command: flags, `check`, and starting the server.
//! Everything else lives in the library.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use switchyard::config;
use switchyard::telemetry::{init_logging, LogFormat};
use switchyard::upstream::Registry;
use switchyard::ServeOptions;

const USAGE: &str = "\
switchyard — an OpenAI-compatible proxy and model router

usage:
  switchyard [--config PATH] [--listen ADDR] [--log-format text|json]
  switchyard check [PATH]
  switchyard --version | --help

options:
  --config PATH        router config (default: $SWITCHYARD_CONFIG, else ./router.yaml)
  --listen ADDR        listen address, overrides server.listen (also $SWITCHYARD_LISTEN)
  --log-format FORMAT  text (default) or json (also $SWITCHYARD_LOG_FORMAT)

commands:
  check [PATH]         validate a config, print the compiled model table;
                       exits 1 and prints every error when it is invalid

environment:
  RUST_LOG             log filter (default: info), e.g. switchyard=debug
";

struct Args {
    check: Option<PathBuf>,
    config: PathBuf,
    listen: Option<SocketAddr>,
    log_format: LogFormat,
}

fn parse_args() -> Result<Option<Args>, String> {
    let mut args = Args {
        check: None,
        config: std::env::var_os("SWITCHYARD_CONFIG")
            .map(PathBuf::from)
            .unwrap_or_else(|| "router.yaml".into()),
        listen: None,
        log_format: LogFormat::Text,
    };
    if let Ok(addr) = std::env::var("SWITCHYARD_LISTEN") {
        args.listen = Some(addr.parse().map_err(|_| {
            format!("SWITCHYARD_LISTEN: {addr:?} is not an address like 0.0.0.0:8000")
        })?);
    }
    if let Ok(format) = std::env::var("SWITCHYARD_LOG_FORMAT") {
        args.log_format = format
            .parse()
            .map_err(|e| format!("SWITCHYARD_LOG_FORMAT: {e}"))?;
    }
    let mut it = std::env::args().skip(1);
    let mut checking = false;
    while let Some(arg) = it.next() {
        let mut value = |flag: &str| it.next().ok_or_else(|| format!("{flag} needs a value"));
        match arg.as_str() {
            "-h" | "--help" => {
                print!("{USAGE}");
                return Ok(None);
            }
            "-V" | "--version" => {
                println!("switchyard {}", env!("CARGO_PKG_VERSION"));
                return Ok(None);
            }
            "--config" | "-c" => args.config = value("--config")?.into(),
            "--listen" | "-l" => {
                let addr = value("--listen")?;
                args.listen = Some(addr.parse().map_err(|_| {
                    format!("--listen: {addr:?} is not an address like 0.0.0.0:8000")
                })?);
            }
            "--log-format" => {
                args.log_format = value("--log-format")?
                    .parse()
                    .map_err(|e| format!("--log-format: {e}"))?
            }
            "check" if !checking => checking = true,
            path if checking && !path.starts_with('-') && args.check.is_none() => {
                args.check = Some(path.into())
            }
            other => return Err(format!("unexpected argument {other:?}")),
        }
    }
    if checking && args.check.is_none() {
        args.check = Some(args.config.clone());
    }
    Ok(Some(args))
}

fn check(path: &std::path::Path) -> ExitCode {
    match config::load_file(path, &Registry::default(), 1) {
        Ok(loaded) => {
            for warning in &loaded.warnings {
                eprintln!("warning: {}: {warning}", path.display());
            }
            print!("{}", config::describe(&loaded.table));
            println!("{}: ok", path.display());
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprintln!("{errors}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(Some(args)) => args,
        Ok(None) => return ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("switchyard: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if let Some(path) = &args.check {
        // `check` builds no clients that connect, but the runtime is needed for timers.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
        return match runtime {
            Ok(rt) => rt.block_on(async { check(path) }),
            Err(err) => {
                eprintln!("switchyard: cannot start the runtime: {err}");
                ExitCode::FAILURE
            }
        };
    }
    init_logging(args.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("switchyard: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let server = match switchyard::start(ServeOptions {
            config_path: args.config,
            listen: args.listen,
        })
        .await
        {
            Ok(server) => server,
            Err(err) => {
                tracing::error!("{err}");
                eprintln!("switchyard: {err}");
                return ExitCode::FAILURE;
            }
        };
        let stopper = server.stopper();
        tokio::spawn(async move {
            shutdown_signal().await;
            tracing::info!("shutdown signal received");
            let _ = stopper.send(true);
        });
        server.stopped().await;
        ExitCode::SUCCESS
    })
}

/// SIGINT (Ctrl-C) or SIGTERM (docker stop, Kubernetes).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
