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
  switchyard key new NAME
  switchyard healthcheck [URL]
  switchyard --version | --help

options:
  --config PATH        router config (default: $SWITCHYARD_CONFIG, else ./router.yaml)
  --listen ADDR        listen address, overrides server.listen (also $SWITCHYARD_LISTEN)
  --log-format FORMAT  text (default) or json (also $SWITCHYARD_LOG_FORMAT)

commands:
  check [PATH]         validate a config, print the compiled model table;
                       exits 1 and prints every error when it is invalid
  key new NAME         print a new random router key and the `keys:` entry
                       (its SHA-256) to paste into router.yaml
  healthcheck [URL]    GET URL (default http://127.0.0.1:8000/health) and exit 0
                       on a 2xx answer, 1 otherwise (for container HEALTHCHECKs)

environment:
  RUST_LOG             log filter (default: info), e.g. switchyard=debug
";

struct Args {
    check: Option<PathBuf>,
    new_key: Option<String>,
    healthcheck: Option<String>,
    config: PathBuf,
    listen: Option<SocketAddr>,
    log_format: LogFormat,
}

fn parse_args() -> Result<Option<Args>, String> {
    let mut args = Args {
        check: None,
        new_key: None,
        healthcheck: None,
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
            "key" if !checking && args.new_key.is_none() => match it.next().as_deref() {
                Some("new") => {
                    let name = it
                        .next()
                        .ok_or("key new needs a NAME (e.g. switchyard key new ci-bot)")?;
                    args.new_key = Some(name);
                }
                _ => return Err("key: the only subcommand is `key new NAME`".to_owned()),
            },
            "healthcheck" if !checking && args.healthcheck.is_none() => {
                args.healthcheck = Some(
                    it.next()
                        .unwrap_or_else(|| "http://127.0.0.1:8000/health".to_owned()),
                );
            }
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
            if let Some(files) = &loaded.tls {
                if let Err(err) = switchyard::server::check_tls(path, files) {
                    eprintln!("{}: 1 error\n  {}: {err}", path.display(), path.display());
                    return ExitCode::FAILURE;
                }
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
    if let Some(url) = &args.healthcheck {
        return healthcheck(url);
    }
    if let Some(name) = &args.new_key {
        return new_key(name);
    }
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

/// `switchyard key new NAME`: a fresh key on stdout's first line, then the
/// `keys:` entry holding only its SHA-256 (the router never needs the key).
fn new_key(name: &str) -> ExitCode {
    use switchyard::quota::key;
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !ok {
        eprintln!(
            "switchyard: {name:?} is not a key name: use 1 to 64 letters, digits, `.`, `_` or `-`"
        );
        return ExitCode::from(2);
    }
    match key::new_key() {
        Ok(secret) => {
            let digest = key::hex(&key::sha256(secret.as_bytes()));
            println!("{secret}");
            println!();
            println!("# Give the key above to its user; it is not stored anywhere.");
            println!("# Add this entry under `keys:` in router.yaml:");
            println!("  - {{ name: {name}, sha256: \"{digest}\" }}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("switchyard: {err}");
            ExitCode::FAILURE
        }
    }
}

/// How long `healthcheck` waits for the whole answer.
const HEALTHCHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// `switchyard healthcheck [URL]`: a plain-HTTP GET with no dependencies, so
/// a minimal container image needs no curl. Exit 0 on 2xx, 1 otherwise.
fn healthcheck(url: &str) -> ExitCode {
    match probe(url) {
        Ok(status) if (200..300).contains(&status) => ExitCode::SUCCESS,
        Ok(status) => {
            eprintln!("switchyard healthcheck: {url} answered {status}");
            ExitCode::FAILURE
        }
        Err(err) => {
            eprintln!("switchyard healthcheck: {url}: {err}");
            ExitCode::FAILURE
        }
    }
}

fn probe(url: &str) -> Result<u16, String> {
    use std::io::{Read, Write};
    use std::net::ToSocketAddrs;
    let rest = url
        .strip_prefix("http://")
        .ok_or("only http:// URLs are supported (e.g. http://127.0.0.1:8000/health)")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let host_port = if authority.contains(':') {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    let addr = host_port
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {authority}: {e}"))?
        .next()
        .ok_or_else(|| format!("cannot resolve {authority}"))?;
    let mut stream = std::net::TcpStream::connect_timeout(&addr, HEALTHCHECK_TIMEOUT)
        .map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(HEALTHCHECK_TIMEOUT))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(HEALTHCHECK_TIMEOUT))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut head = [0u8; 64];
    let n = stream.read(&mut head).map_err(|e| e.to_string())?;
    let line = String::from_utf8_lossy(&head[..n]);
    line.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("not an HTTP answer: {line:?}"))
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
