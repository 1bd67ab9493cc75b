//! End-to-end benchmark: the same load sent straight to a mock upstream
//! ("direct"), through Switchyard, and through nginx (when installed) as
//! the reference reverse proxy, printed as one table.
//!
//! ```sh
//! ./scripts/bench.sh                         # the one command (installs nginx from Debian if allowed)
//! cargo bench --bench e2e                    # the same, without the nginx install
//! cargo bench --bench e2e -- --seconds 2 --workloads paced --loads open
//! cargo bench --bench e2e -- --help
//! ```
//!
//! Every piece is its own process: the mock upstream (this binary
//! re-executed with `--mock-upstream`), `switchyard` (the release binary,
//! `RUST_LOG=info`, so its access log writes a line per request — to a
//! file), nginx; only the load generator runs in this process. With
//! `taskset` and two or more CPUs, the load generator and the upstream
//! share CPU 0 and the proxy under test gets CPU 1 to itself (so Switchyard
//! runs one tokio worker and nginx one worker process). Each proxy is
//! started afresh for each cell, so its peak RSS is that cell's. The
//! proxy's CPU time comes from /proc (schedstat, ns) between the end of the
//! warm-up and the end of the cell. See docs/benchmarks.md.
//!
//! Beyond the table: `SWITCHYARD_BASELINE_BIN` adds a second Switchyard
//! binary (target `baseline`, run exactly like `switchyard`) for
//! before/after comparisons in one run; `--cold-start N` times N starts of
//! each proxy up to its first answer ([`coldstart`]); `--soak S` serves 64
//! paced streams for S seconds and follows the proxy's RSS ([`soak`]).

mod coldstart;
mod load;
mod mock;
mod procs;
mod soak;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::time::Instant;

use load::{RequestSpec, Sample};
use procs::Proc;

/// A cell during which other processes (or steal) used more than this
/// much of a core is marked with `*`.
const NOISY_PCT: f64 = 15.0;

const NGINX_TEMPLATE: &str = include_str!("../nginx.conf.template");

const HELP: &str = "\
e2e — Switchyard end-to-end benchmark (direct vs Switchyard vs nginx)

usage: cargo bench --bench e2e -- [OPTIONS]      (or ./scripts/bench.sh [OPTIONS])

options (each also an environment variable):
  --seconds S      measured seconds per cell, 1..=60            BENCH_SECONDS   (5)
  --warmup S       unmeasured seconds before each cell, 0..=10  BENCH_WARMUP    (0.5)
  --workloads L    nonstream,stream,paced                       BENCH_WORKLOADS (all)
  --loads L        closed-loop connection counts and/or `open`  BENCH_LOADS     (16,64,open)
  --rate R         open-loop requests per second, 1..=2000      BENCH_RATE      (50)
  --targets L      direct,baseline,switchyard,nginx             BENCH_TARGETS   (all; baseline if
                   SWITCHYARD_BASELINE_BIN is set, nginx if installed)
  --tokens N       tokens per answer, 1..=1000                  BENCH_TOKENS    (50)
  --first-token-ms MS / --token-ms MS  pacing of `paced`        BENCH_FIRST_TOKEN_MS / BENCH_TOKEN_MS (5 / 5)
  --no-pin         do not pin processes to CPUs with taskset    BENCH_PIN=0
  --load-cpus L    CPUs of the load generator and the upstream  BENCH_LOAD_CPUS  (0)
  --proxy-cpus L   CPUs of the proxy under test                 BENCH_PROXY_CPUS (1)
  --cold-start N   after the cells, start each proxy N times and time spawn →
                   first 200 to a non-streamed POST (polled every 1 ms);
                   0..=1000, 0 = off                            BENCH_COLD_START (0)
  --soak S         after the cells, serve 64 closed-loop `paced` streams for
                   S s per Switchyard target and sample its RSS every second;
                   0..=3600, 0 = off                            BENCH_SOAK       (0)

  --workloads none runs no cells: only --cold-start and/or --soak

  SWITCHYARD_BIN   the switchyard binary (default: the one cargo built with this bench)
  SWITCHYARD_BASELINE_BIN  another switchyard binary (e.g. before a change): adds
                   the target `baseline`, run exactly like `switchyard`
  NGINX_BIN        nginx (default: `nginx` on PATH, else /usr/sbin/nginx); BENCH_NGINX=0 skips it
  BENCH_NGINX_ACCESS_LOG=0  nginx without its access log (default: on, to a file)
  BENCH_RUST_LOG   Switchyard's RUST_LOG (default: info — access log on, to a file)
  BENCH_KEEP=1     keep the temp dir (configs, logs)

workloads:
  nonstream  chat completion, not streamed, 50 tokens
  stream     streamed, 50 content chunks sent with no delay
  paced      streamed, 5 ms to the first token, then 5 ms between tokens
";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Workload {
    NonStream,
    Stream,
    Paced,
}

impl Workload {
    fn parse(s: &str) -> Result<Workload, String> {
        match s {
            "nonstream" | "non-stream" => Ok(Workload::NonStream),
            "stream" => Ok(Workload::Stream),
            "paced" => Ok(Workload::Paced),
            other => Err(format!(
                "unknown workload {other:?} (nonstream, stream, paced)"
            )),
        }
    }

    fn label(self, o: &Options) -> String {
        match self {
            Workload::NonStream => format!("non-stream, {} tok", o.tokens),
            Workload::Stream => format!("stream, {} tok, no delay", o.tokens),
            Workload::Paced => format!(
                "stream, {} tok, {}+{} ms",
                o.tokens, o.first_token_ms, o.token_ms
            ),
        }
    }

    fn stream(self) -> bool {
        self != Workload::NonStream
    }

    fn body(self) -> Bytes {
        let (model, stream) = match self {
            Workload::NonStream => ("fast", ""),
            Workload::Stream => ("fast", r#""stream":true,"#),
            Workload::Paced => ("paced", r#""stream":true,"#),
        };
        Bytes::from(format!(
            r#"{{"model":"{model}",{stream}"messages":[{{"role":"system","content":"You are terse."}},{{"role":"user","content":"Say something about reverse proxies in one sentence, please."}}],"temperature":0.2,"max_tokens":64}}"#
        ))
    }
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Load {
    Closed(usize),
    Open(f64),
}

impl Load {
    fn label(self) -> String {
        match self {
            Load::Closed(n) => format!("closed {n}"),
            Load::Open(r) => format!("open {r}/s"),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Target {
    Direct,
    /// `SWITCHYARD_BASELINE_BIN`, run exactly like [`Target::Switchyard`]
    Baseline,
    Switchyard,
    Nginx,
}

impl Target {
    fn parse(s: &str) -> Result<Target, String> {
        match s {
            "direct" => Ok(Target::Direct),
            "baseline" => Ok(Target::Baseline),
            "switchyard" => Ok(Target::Switchyard),
            "nginx" => Ok(Target::Nginx),
            other => Err(format!(
                "unknown target {other:?} (direct, baseline, switchyard, nginx)"
            )),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Target::Direct => "direct",
            Target::Baseline => "baseline",
            Target::Switchyard => "switchyard",
            Target::Nginx => "nginx",
        }
    }

    /// A Switchyard binary (`switchyard` or `baseline`)?
    fn is_switchyard(self) -> bool {
        matches!(self, Target::Switchyard | Target::Baseline)
    }
}

struct Options {
    seconds: f64,
    warmup: f64,
    workloads: Vec<Workload>,
    loads: Vec<Load>,
    targets: Vec<Target>,
    tokens: usize,
    first_token_ms: u64,
    token_ms: u64,
    /// (load generator + upstream CPUs, proxy CPUs), when pinning
    pin: Option<(String, String)>,
    switchyard_bin: PathBuf,
    /// `SWITCHYARD_BASELINE_BIN`: the `baseline` target's binary
    baseline_bin: Option<PathBuf>,
    nginx_bin: Option<PathBuf>,
    /// starts per proxy for the cold-start table (0: none)
    cold_start: usize,
    /// seconds of soak per Switchyard target (0: none)
    soak: u64,
    nginx_access_log: bool,
    rust_log: String,
    keep: bool,
}

impl Options {
    /// The binary a Switchyard target runs (None for direct and nginx).
    fn binary(&self, target: Target) -> Option<&Path> {
        match target {
            Target::Switchyard => Some(&self.switchyard_bin),
            Target::Baseline => self.baseline_bin.as_deref(),
            Target::Direct | Target::Nginx => None,
        }
    }

    /// The targets that run a Switchyard binary, in `--targets` order.
    fn switchyard_targets(&self) -> Vec<Target> {
        self.targets
            .iter()
            .copied()
            .filter(|t| t.is_switchyard())
            .collect()
    }
}

fn parse_options(args: &[String]) -> Result<Option<Options>, String> {
    let mut vars: HashMap<&'static str, String> = HashMap::new();
    for name in [
        "BENCH_SECONDS",
        "BENCH_WARMUP",
        "BENCH_WORKLOADS",
        "BENCH_LOADS",
        "BENCH_RATE",
        "BENCH_TARGETS",
        "BENCH_TOKENS",
        "BENCH_FIRST_TOKEN_MS",
        "BENCH_TOKEN_MS",
        "BENCH_PIN",
        "BENCH_LOAD_CPUS",
        "BENCH_PROXY_CPUS",
        "BENCH_COLD_START",
        "BENCH_SOAK",
    ] {
        if let Ok(v) = std::env::var(name) {
            if !v.is_empty() {
                vars.insert(name, v);
            }
        }
    }
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let name = match arg.as_str() {
            "-h" | "--help" => {
                print!("{HELP}");
                return Ok(None);
            }
            "--no-pin" => {
                vars.insert("BENCH_PIN", "0".into());
                continue;
            }
            "--seconds" => "BENCH_SECONDS",
            "--warmup" => "BENCH_WARMUP",
            "--workloads" => "BENCH_WORKLOADS",
            "--loads" => "BENCH_LOADS",
            "--rate" => "BENCH_RATE",
            "--targets" => "BENCH_TARGETS",
            "--tokens" => "BENCH_TOKENS",
            "--first-token-ms" => "BENCH_FIRST_TOKEN_MS",
            "--token-ms" => "BENCH_TOKEN_MS",
            "--load-cpus" => "BENCH_LOAD_CPUS",
            "--proxy-cpus" => "BENCH_PROXY_CPUS",
            "--cold-start" => "BENCH_COLD_START",
            "--soak" => "BENCH_SOAK",
            other => return Err(format!("unknown argument {other:?} (see --help)")),
        };
        let value = it.next().ok_or_else(|| format!("{arg} needs a value"))?;
        vars.insert(name, value.clone());
    }
    let get = |name: &str, default: &str| {
        vars.get(name)
            .cloned()
            .unwrap_or_else(|| default.to_owned())
    };
    let number = |name: &str, default: &str, min: f64, max: f64| -> Result<f64, String> {
        let v = get(name, default);
        let n: f64 = v
            .trim()
            .parse()
            .map_err(|_| format!("{name}: {v:?} is not a number"))?;
        if !(min..=max).contains(&n) {
            return Err(format!("{name}: {n} is outside {min}..={max}"));
        }
        Ok(n)
    };
    let seconds = number("BENCH_SECONDS", "5", 1.0, 60.0)?;
    let warmup = number("BENCH_WARMUP", "0.5", 0.0, 10.0)?;
    let rate = number("BENCH_RATE", "50", 1.0, 2000.0)?;
    let tokens = number("BENCH_TOKENS", "50", 1.0, 1000.0)? as usize;
    let first_token_ms = number("BENCH_FIRST_TOKEN_MS", "5", 0.0, 1000.0)? as u64;
    let token_ms = number("BENCH_TOKEN_MS", "5", 0.0, 1000.0)? as u64;
    let cold_start = whole(
        "BENCH_COLD_START",
        number("BENCH_COLD_START", "0", 0.0, 1000.0)?,
    )? as usize;
    let soak = whole(
        "BENCH_SOAK",
        number("BENCH_SOAK", "0", 0.0, soak::MAX_SECONDS as f64)?,
    )?;
    let list = |name: &str, default: &str| -> Vec<String> {
        get(name, default)
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    };
    let workloads = list("BENCH_WORKLOADS", "nonstream,stream,paced")
        .iter()
        .filter(|s| s.as_str() != "none")
        .map(|s| Workload::parse(s))
        .collect::<Result<Vec<_>, _>>()?;
    let loads = list("BENCH_LOADS", "16,64,open")
        .iter()
        .map(|s| match s.as_str() {
            "open" => Ok(Load::Open(rate)),
            n => match n.parse::<usize>() {
                Ok(n) if (1..=1024).contains(&n) => Ok(Load::Closed(n)),
                _ => Err(format!(
                    "BENCH_LOADS: {n:?} is neither `open` nor a connection count 1..=1024"
                )),
            },
        })
        .collect::<Result<Vec<_>, _>>()?;
    let nginx_wanted = std::env::var("BENCH_NGINX")
        .map(|v| v != "0")
        .unwrap_or(true);
    let nginx_bin = std::env::var_os("NGINX_BIN")
        .map(PathBuf::from)
        .or_else(|| which("nginx"))
        .or_else(|| Some(PathBuf::from("/usr/sbin/nginx")).filter(|p| p.exists()))
        .filter(|_| nginx_wanted);
    let baseline_bin = std::env::var_os("SWITCHYARD_BASELINE_BIN")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    if let Some(bin) = &baseline_bin {
        if !bin.is_file() {
            return Err(format!(
                "SWITCHYARD_BASELINE_BIN: {} is not a file",
                bin.display()
            ));
        }
    }
    let explicit_targets = vars.contains_key("BENCH_TARGETS");
    let default_targets = if baseline_bin.is_some() {
        "direct,baseline,switchyard,nginx"
    } else {
        "direct,switchyard,nginx"
    };
    let mut targets = Vec::new();
    for t in list("BENCH_TARGETS", default_targets) {
        let target = Target::parse(&t)?;
        if targets.contains(&target) {
            return Err(format!("target {t} is listed twice"));
        }
        if target == Target::Baseline && baseline_bin.is_none() {
            return Err(
                "target baseline: set SWITCHYARD_BASELINE_BIN=/path/to/old/switchyard".into(),
            );
        }
        if target == Target::Nginx && nginx_bin.is_none() {
            if explicit_targets && nginx_wanted {
                return Err(
                    "target nginx: nginx is not installed (./scripts/bench.sh installs it)".into(),
                );
            }
            eprintln!(
                "note: nginx not found (or BENCH_NGINX=0): running without the nginx reference"
            );
            continue;
        }
        targets.push(target);
    }
    if targets.is_empty() {
        return Err("nothing to run: no targets".into());
    }
    if (workloads.is_empty() || loads.is_empty()) && cold_start == 0 && soak == 0 {
        return Err("nothing to run: no workloads or loads, and no --cold-start or --soak".into());
    }
    let pin = if get("BENCH_PIN", "1") == "0" {
        None
    } else if which("taskset").is_none() {
        eprintln!("note: taskset not found: processes are not pinned to CPUs");
        None
    } else if cpu_count() < 2 && !vars.contains_key("BENCH_PROXY_CPUS") {
        None
    } else {
        Some((get("BENCH_LOAD_CPUS", "0"), get("BENCH_PROXY_CPUS", "1")))
    };
    let switchyard_bin = std::env::var_os("SWITCHYARD_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_switchyard")));
    if !switchyard_bin.exists() {
        return Err(format!(
            "{} does not exist (cargo build --release)",
            switchyard_bin.display()
        ));
    }
    Ok(Some(Options {
        seconds,
        warmup,
        workloads,
        loads,
        targets,
        tokens,
        first_token_ms,
        token_ms,
        pin,
        switchyard_bin,
        baseline_bin,
        nginx_bin,
        cold_start,
        soak,
        nginx_access_log: std::env::var("BENCH_NGINX_ACCESS_LOG")
            .map(|v| v != "0")
            .unwrap_or(true),
        rust_log: std::env::var("BENCH_RUST_LOG").unwrap_or_else(|_| "info".into()),
        keep: std::env::var("BENCH_KEEP")
            .map(|v| v == "1")
            .unwrap_or(false),
    }))
}

/// A count or a number of seconds given as a number: must be whole.
fn whole(name: &str, n: f64) -> Result<u64, String> {
    if n.fract() != 0.0 {
        return Err(format!("{name}: {n} is not a whole number"));
    }
    Ok(n as u64)
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .map(|paths| {
            std::env::split_paths(&paths)
                .map(|p| p.join(program))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
        .into_iter()
        .find(|p| p.is_file())
}

/// CPUs in the machine (not the ones this process may use).
fn cpu_count() -> usize {
    std::fs::read_to_string("/proc/cpuinfo")
        .map(|s| s.lines().filter(|l| l.starts_with("processor")).count())
        .unwrap_or(1)
        .max(1)
}

/// How many CPUs a taskset list like `0`, `1-3`, `0,2-3` names.
fn cpus_in(list: &str) -> usize {
    list.split(',')
        .map(|part| match part.split_once('-') {
            Some((a, b)) => match (a.trim().parse::<usize>(), b.trim().parse::<usize>()) {
                (Ok(a), Ok(b)) if b >= a => b - a + 1,
                _ => 1,
            },
            None => 1,
        })
        .sum::<usize>()
        .max(1)
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if args.first().map(String::as_str) == Some("--mock-upstream") {
        mock::main(&args[1..]);
        return;
    }
    let opts = match parse_options(&args) {
        Ok(Some(opts)) => opts,
        Ok(None) => return,
        Err(e) => {
            eprintln!("e2e: {e}");
            std::process::exit(2);
        }
    };
    if let Some((load_cpus, _)) = &opts.pin {
        // this process (the load generator) and, by inheritance, the mock
        // upstream; the proxy is started under its own `taskset -c`
        let pinned = Command::new("taskset")
            .args(["-a", "-p", "-c", load_cpus, &std::process::id().to_string()])
            .stdout(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !pinned {
            eprintln!("e2e: taskset -p -c {load_cpus} failed");
            std::process::exit(2);
        }
    }
    // one thread: the load generator's CPU use stays predictable, and it
    // shares CPU 0 with the upstream
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    if let Err(e) = runtime.block_on(run(opts)) {
        eprintln!("e2e: {e}");
        std::process::exit(1);
    }
}

/// What one cell (workload × load × target) measured.
#[derive(Default, Clone)]
struct Cell {
    ok: usize,
    errors: usize,
    rps: f64,
    p50: Option<Duration>,
    p99: Option<Duration>,
    ttft_p50: Option<Duration>,
    ttft_p99: Option<Duration>,
    /// the proxy's CPU ns over the measured window (None for direct)
    proxy_cpu_ns: Option<u64>,
    upstream_cpu_ns: u64,
    peak_rss_kib: Option<u64>,
    /// mean body frames per answer as the client received them
    frames: f64,
    window: Duration,
    failure: Option<String>,
    /// CPU used by anything but the bench's own processes (other
    /// processes, and time the hypervisor stole), % of one core
    foreign_pct: f64,
}

struct Upstream {
    proc: Proc,
    addr: SocketAddr,
    _stdin: std::process::ChildStdin,
}

struct Bench {
    opts: Options,
    dir: PathBuf,
    upstream: Upstream,
    router_yaml: PathBuf,
    /// per Switchyard target: (access-log lines written, requests sent)
    access: HashMap<Target, (usize, usize)>,
}

async fn run(opts: Options) -> Result<(), String> {
    let dir = std::env::temp_dir().join(format!("switchyard-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let keep = opts.keep;
    let result = run_in(opts, dir.clone()).await;
    if keep {
        eprintln!("kept {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

/// A copy of `bin` in the temp dir: a `cargo build` elsewhere during the
/// run must not swap the binary between cells.
fn freeze(bin: &Path, dir: &Path, name: &str) -> Result<PathBuf, String> {
    let frozen = dir.join(name);
    std::fs::copy(bin, &frozen).map_err(|e| format!("copying {}: {e}", bin.display()))?;
    Ok(frozen)
}

async fn run_in(opts: Options, dir: PathBuf) -> Result<(), String> {
    // the header names the binaries by their own paths, not the copies'
    let header = header(&opts);
    let mut opts = opts;
    opts.switchyard_bin = freeze(&opts.switchyard_bin, &dir, "switchyard")?;
    if let Some(bin) = &opts.baseline_bin {
        opts.baseline_bin = Some(freeze(bin, &dir, "baseline")?);
    }
    let upstream = start_upstream(&opts)?;
    wait_ready(upstream.addr, None)
        .await
        .map_err(|e| format!("mock upstream: {e}"))?;
    // the config in a directory of its own: Switchyard watches the config's
    // directory for reloads, and a log file written beside it would wake
    // that watcher on every access-log line
    let config_dir = dir.join("config");
    std::fs::create_dir_all(&config_dir).map_err(|e| format!("{}: {e}", config_dir.display()))?;
    let router_yaml = config_dir.join("router.yaml");
    std::fs::write(
        &router_yaml,
        format!(
            "# generated by benches/e2e: every model to the mock upstream\n\
             upstreams:\n  mock:\n    provider: openai-compatible\n    base_url: http://{}/v1\n    health_check: false\n\
             models:\n  fast:\n    targets: [{{ upstream: mock, model: fast }}]\n  paced:\n    targets: [{{ upstream: mock, model: paced }}]\n",
            upstream.addr
        ),
    )
    .map_err(|e| format!("{}: {e}", router_yaml.display()))?;

    let mut bench = Bench {
        opts,
        dir,
        upstream,
        router_yaml,
        access: HashMap::new(),
    };
    let mut out = String::new();
    out.push_str(&header);
    if !bench.opts.workloads.is_empty() {
        out.push('\n');
        out.push_str(&run_cells(&mut bench).await);
    }
    if bench.opts.cold_start > 0 {
        out.push('\n');
        out.push_str(&coldstart::run(&bench).await);
    }
    if bench.opts.soak > 0 {
        out.push('\n');
        out.push_str(&soak::run(&bench).await);
    }
    print!("{out}");
    Ok(())
}

/// Every cell (workload × load × target), then the table and the notes
/// under it.
async fn run_cells(bench: &mut Bench) -> String {
    let o = &bench.opts;
    let cells: Vec<(Workload, Load, Target)> = o
        .workloads
        .iter()
        .flat_map(|&w| {
            o.loads
                .iter()
                .flat_map(move |&l| o.targets.iter().map(move |&t| (w, l, t)))
        })
        .collect();
    let mut results: Vec<(Workload, Load, Target, Cell)> = Vec::new();
    let total = cells.len();
    eprintln!(
        "e2e: {total} cells of {:.1} + {:.1} s (about {:.0} s in all)",
        o.warmup,
        o.seconds,
        total as f64 * (o.warmup + o.seconds + 0.3)
    );
    for (i, (workload, load, target)) in cells.into_iter().enumerate() {
        let cell = match run_cell(bench, workload, load, target, i).await {
            Ok(cell) => cell,
            Err(e) => Cell {
                failure: Some(e),
                ..Cell::default()
            },
        };
        eprintln!(
            "[{:>2}/{total}] {:<26} {:<11} {:<10} {}",
            i + 1,
            workload.label(&bench.opts),
            load.label(),
            target.name(),
            match &cell.failure {
                Some(e) => format!("FAILED: {e}"),
                None => format!(
                    "{:.0} req/s, p50 {}, {:.1} frames/answer, {} errors; others used {:.0}% of a core",
                    cell.rps,
                    ms(cell.p50),
                    cell.frames,
                    cell.errors,
                    cell.foreign_pct
                ),
            }
        );
        results.push((workload, load, target, cell));
    }

    let mut out = table(&bench.opts, &results);
    out.push('\n');
    let measured: Vec<f64> = results
        .iter()
        .filter(|r| r.3.failure.is_none())
        .map(|r| r.3.foreign_pct)
        .collect();
    let noisy = measured.iter().filter(|&&p| p > NOISY_PCT).count();
    let _ = writeln!(
        out,
        "Machine noise: CPU used by other processes (and steal) during a cell: mean {:.0}%, max {:.0}% of a core; \
         {noisy} of {} cells over {NOISY_PCT:.0}% (marked *).\n",
        measured.iter().sum::<f64>() / measured.len().max(1) as f64,
        measured.iter().cloned().fold(0.0, f64::max),
        measured.len()
    );
    for target in bench.opts.switchyard_targets() {
        let (lines, requests) = bench.access.get(&target).copied().unwrap_or_default();
        let _ = writeln!(
            out,
            "{}'s access log (RUST_LOG={}, stdout and stderr to a file) wrote {lines} lines for {requests} requests sent to it.",
            if target == Target::Switchyard { "Switchyard" } else { "baseline" },
            bench.opts.rust_log,
        );
    }
    out
}

fn header(o: &Options) -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_owned())
        .unwrap_or_else(|| "unknown CPU".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mem_gib = procs_meminfo_kib() as f64 / 1048576.0;
    let version = |cmd: &Path, arg: &str| {
        Command::new(cmd)
            .arg(arg)
            .output()
            .ok()
            .map(|o| {
                let s = if o.stdout.is_empty() {
                    o.stderr
                } else {
                    o.stdout
                };
                String::from_utf8_lossy(&s)
                    .trim()
                    .replace("nginx version: ", "")
            })
            .unwrap_or_else(|| "?".into())
    };
    let mut h = String::new();
    let _ = writeln!(
        h,
        "machine: {} CPUs ({model}), {mem_gib:.0} GiB, Linux {}",
        cpu_count(),
        kernel.trim()
    );
    let _ = write!(h, "proxies: {}", version(&o.switchyard_bin, "--version"));
    if let Some(baseline) = o
        .baseline_bin
        .as_ref()
        .filter(|_| o.targets.contains(&Target::Baseline))
    {
        let _ = write!(h, ", baseline = {}", version(baseline, "--version"));
    }
    if let Some(nginx) = o
        .nginx_bin
        .as_ref()
        .filter(|_| o.targets.contains(&Target::Nginx))
    {
        let _ = write!(
            h,
            ", {} (access_log {})",
            version(nginx, "-v"),
            if o.nginx_access_log { "on" } else { "off" }
        );
    }
    h.push('\n');
    if let Some(baseline) = o
        .baseline_bin
        .as_ref()
        .filter(|_| o.targets.contains(&Target::Baseline))
    {
        let _ = writeln!(
            h,
            "binaries: switchyard = {}, baseline = {} (same config, pinning and logging)",
            o.switchyard_bin.display(),
            baseline.display()
        );
    }
    match &o.pin {
        Some((load, proxy)) => {
            let _ = writeln!(
                h,
                "CPUs: load generator + mock upstream on {load}, proxy under test on {proxy} (taskset); nginx worker_processes {}",
                cpus_in(proxy)
            );
        }
        None => {
            let _ = writeln!(h, "CPUs: not pinned; nginx worker_processes auto");
        }
    }
    if !procs::schedstat_available() {
        let _ = writeln!(
            h,
            "note: no /proc schedstat here: CPU time from utime+stime (10 ms ticks)"
        );
    }
    if o.workloads.is_empty() {
        let _ = writeln!(h, "cells: none (--workloads none)");
    } else {
        let _ = writeln!(
            h,
            "cells: {:.1} s measured after {:.1} s warm-up; closed loop = N keep-alive connections back to back; open = fixed schedule",
            o.seconds, o.warmup
        );
    }
    h
}

fn procs_meminfo_kib() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

fn pinned(opts: &Options, program: &Path) -> Command {
    match &opts.pin {
        Some((_, proxy_cpus)) => {
            let mut cmd = Command::new("taskset");
            cmd.arg("-c").arg(proxy_cpus).arg(program);
            cmd
        }
        None => Command::new(program),
    }
}

fn start_upstream(opts: &Options) -> Result<Upstream, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let mut child = Command::new(exe)
        .args([
            "--mock-upstream",
            "--tokens",
            &opts.tokens.to_string(),
            "--first-token-ms",
            &opts.first_token_ms.to_string(),
            "--token-ms",
            &opts.token_ms.to_string(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("starting the mock upstream: {e}"))?;
    let stdin = child.stdin.take().expect("piped stdin");
    let stdout = child.stdout.take().expect("piped stdout");
    let proc = Proc::new("mock upstream", child);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(|e| format!("mock upstream: {e}"))?;
    let port: u16 = line
        .trim()
        .parse()
        .map_err(|_| format!("mock upstream said {line:?}, not a port"))?;
    Ok(Upstream {
        proc,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        _stdin: stdin,
    })
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

/// Waits until `GET /health` at `addr` answers 200 (10 s at most).
async fn wait_ready(addr: SocketAddr, mut proc: Option<&mut Proc>) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = String::from("no answer");
    while Instant::now() < deadline {
        if let Some(p) = proc.as_deref_mut() {
            if let Some(status) = p.exited() {
                return Err(format!("{} exited ({status})", p.name));
            }
        }
        match health(addr).await {
            Ok(()) => return Ok(()),
            Err(e) => last = e,
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(format!("not ready on {addr} after 10 s: {last}"))
}

async fn health(addr: SocketAddr) -> Result<(), String> {
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let req = Request::get("/health")
        .header("host", addr.to_string())
        .body(Empty::<Bytes>::new())
        .expect("request");
    let res = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = res.status();
    let _ = res.into_body().collect().await;
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("GET /health: {status}"))
    }
}

/// The command that runs a Switchyard target (`switchyard` or `baseline`)
/// on `addr` with the bench's config, pinned like every proxy, its stdout
/// and stderr to `log_path` (created here, outside the config's directory).
fn switchyard_command(
    bench: &Bench,
    target: Target,
    addr: SocketAddr,
    log_path: &Path,
) -> Result<Command, String> {
    let bin = bench
        .opts
        .binary(target)
        .ok_or_else(|| format!("{} is not a Switchyard target", target.name()))?;
    let log =
        std::fs::File::create(log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
    let mut cmd = pinned(&bench.opts, bin);
    cmd.arg("--config")
        .arg(&bench.router_yaml)
        .arg("--listen")
        .arg(addr.to_string())
        .env("RUST_LOG", &bench.opts.rust_log)
        .env_remove("SWITCHYARD_CONFIG")
        .env_remove("SWITCHYARD_LISTEN")
        .env_remove("SWITCHYARD_LOG_FORMAT")
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log);
    Ok(cmd)
}

/// The last lines of a log, on one line, for an error message.
fn log_tail(path: &Path, lines: usize) -> String {
    let log = std::fs::read_to_string(path).unwrap_or_default();
    let tail: Vec<&str> = log.lines().rev().take(lines).collect();
    tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
}

/// Starts a Switchyard target on a free port and waits until it answers
/// `/health`; its log is `<target>-<tag>.log` in the temp dir.
async fn start_switchyard(
    bench: &Bench,
    target: Target,
    tag: &str,
) -> Result<(Proc, SocketAddr, PathBuf), String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()?));
    let log_path = bench.dir.join(format!("{}-{tag}.log", target.name())); // not in config/
    let child = switchyard_command(bench, target, addr, &log_path)?
        .spawn()
        .map_err(|e| format!("starting {}: {e}", target.name()))?;
    let mut proc = Proc::new(target.name(), child);
    if let Err(e) = wait_ready(addr, Some(&mut proc)).await {
        return Err(format!("{e}; log: {}", log_tail(&log_path, 5)));
    }
    Ok((proc, addr, log_path))
}

/// nginx's config for a run in `prefix` (created here), listening on
/// `addr`; the command that runs it, pinned like every proxy, and the path
/// of its error log.
fn nginx_command(
    bench: &Bench,
    prefix: &Path,
    addr: SocketAddr,
) -> Result<(Command, PathBuf), String> {
    let nginx = bench
        .opts
        .nginx_bin
        .as_ref()
        .ok_or("nginx is not installed")?;
    std::fs::create_dir_all(prefix).map_err(|e| format!("{}: {e}", prefix.display()))?;
    let workers = match &bench.opts.pin {
        Some((_, proxy)) => cpus_in(proxy).to_string(),
        None => "auto".into(),
    };
    let access_log = if bench.opts.nginx_access_log {
        format!("{}/access.log", prefix.display())
    } else {
        "off".into()
    };
    let conf = NGINX_TEMPLATE
        .replace("{{WORKERS}}", &workers)
        .replace("{{PREFIX}}", &prefix.display().to_string())
        .replace("{{ACCESS_LOG}}", &access_log)
        .replace("{{LISTEN}}", &addr.to_string())
        .replace("{{UPSTREAM}}", &bench.upstream.addr.to_string());
    let conf_path = prefix.join("nginx.conf");
    std::fs::write(&conf_path, conf).map_err(|e| format!("{}: {e}", conf_path.display()))?;
    let error_log = prefix.join("error.log");
    let mut cmd = pinned(&bench.opts, nginx);
    cmd.arg("-p")
        .arg(prefix)
        .arg("-c")
        .arg(&conf_path)
        .arg("-e")
        .arg(&error_log)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    Ok((cmd, error_log))
}

async fn start_nginx(bench: &Bench, cell: usize) -> Result<(Proc, SocketAddr), String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()?));
    let prefix = bench.dir.join(format!("nginx-{cell:02}"));
    let (mut cmd, error_log) = nginx_command(bench, &prefix, addr)?;
    let child = cmd.spawn().map_err(|e| format!("starting nginx: {e}"))?;
    let mut proc = Proc::new("nginx", child);
    if let Err(e) = wait_ready(addr, Some(&mut proc)).await {
        return Err(format!("{e}; error.log: {}", log_tail(&error_log, 1)));
    }
    proc.refresh_tree(); // master + workers
    Ok((proc, addr))
}

async fn run_cell(
    bench: &mut Bench,
    workload: Workload,
    load: Load,
    target: Target,
    index: usize,
) -> Result<Cell, String> {
    let mut switchyard_log = None;
    let (proxy, addr) = match target {
        Target::Direct => (None, bench.upstream.addr),
        Target::Switchyard | Target::Baseline => {
            let (proc, addr, log) = start_switchyard(bench, target, &format!("{index:02}")).await?;
            switchyard_log = Some(log);
            (Some(proc), addr)
        }
        Target::Nginx => {
            let (proc, addr) = start_nginx(bench, index).await?;
            (Some(proc), addr)
        }
    };
    let spec = Arc::new(RequestSpec {
        body: workload.body(),
        stream: workload.stream(),
        host: addr.to_string(),
    });
    let start = Instant::now();
    let warm_end = start + Duration::from_secs_f64(bench.opts.warmup);
    let end = warm_end + Duration::from_secs_f64(bench.opts.seconds);
    let generator = match load {
        Load::Closed(n) => tokio::spawn(load::closed(addr, spec, n, end)),
        Load::Open(rate) => tokio::spawn(load::open(addr, spec, rate, start, end)),
    };
    tokio::time::sleep_until(warm_end).await;
    let t0 = Instant::now();
    let proxy_cpu0 = proxy.as_ref().map(Proc::cpu_ns);
    let upstream_cpu0 = bench.upstream.proc.cpu_ns();
    let self_cpu0 = procs::cpu_ns(std::process::id());
    let busy0 = procs::machine_busy_ns();
    tokio::time::sleep_until(end).await;
    let t1 = Instant::now();
    let proxy_cpu1 = proxy.as_ref().map(Proc::cpu_ns);
    let upstream_cpu1 = bench.upstream.proc.cpu_ns();
    let self_cpu1 = procs::cpu_ns(std::process::id());
    let busy1 = procs::machine_busy_ns();
    let samples = generator
        .await
        .map_err(|e| format!("load generator: {e}"))?;
    let peak_rss_kib = proxy.as_ref().map(Proc::peak_rss_kib);
    drop(proxy); // stops it
    if let Some(log) = switchyard_log {
        let lines = std::fs::read_to_string(log)
            .map(|s| {
                s.lines()
                    .filter(|l| l.contains("/v1/chat/completions"))
                    .count()
            })
            .unwrap_or(0);
        let counts = bench.access.entry(target).or_default();
        counts.0 += lines;
        counts.1 += samples.len();
    }
    let mut cell = stats(&samples, t0, t1);
    cell.proxy_cpu_ns = proxy_cpu0.zip(proxy_cpu1).map(|(a, b)| b.saturating_sub(a));
    cell.upstream_cpu_ns = upstream_cpu1.saturating_sub(upstream_cpu0);
    cell.peak_rss_kib = peak_rss_kib;
    let ours =
        cell.proxy_cpu_ns.unwrap_or(0) + cell.upstream_cpu_ns + self_cpu1.saturating_sub(self_cpu0);
    let foreign = busy1.saturating_sub(busy0).saturating_sub(ours);
    cell.foreign_pct = foreign as f64 / (t1 - t0).as_nanos() as f64 * 100.0;
    Ok(cell)
}

/// Statistics over the requests that completed inside `[t0, t1]`.
fn stats(samples: &[Sample], t0: Instant, t1: Instant) -> Cell {
    let window = t1 - t0;
    let inside: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.done >= t0 && s.done <= t1)
        .collect();
    let errors = inside.iter().filter(|s| !s.ok).count();
    let mut totals: Vec<Duration> = inside.iter().filter(|s| s.ok).map(|s| s.total).collect();
    let mut ttfts: Vec<Duration> = inside
        .iter()
        .filter(|s| s.ok)
        .filter_map(|s| s.ttft)
        .collect();
    totals.sort_unstable();
    ttfts.sort_unstable();
    Cell {
        ok: totals.len(),
        errors,
        rps: totals.len() as f64 / window.as_secs_f64(),
        p50: percentile(&totals, 0.50),
        p99: percentile(&totals, 0.99),
        ttft_p50: percentile(&ttfts, 0.50),
        ttft_p99: percentile(&ttfts, 0.99),
        frames: inside
            .iter()
            .filter(|s| s.ok)
            .map(|s| s.frames as f64)
            .sum::<f64>()
            / totals.len().max(1) as f64,
        window,
        ..Cell::default()
    }
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

fn ms(d: Option<Duration>) -> String {
    match d {
        Some(d) => format!("{:.2}", d.as_secs_f64() * 1e3),
        None => "–".into(),
    }
}

fn table(o: &Options, results: &[(Workload, Load, Target, Cell)]) -> String {
    let head = [
        "workload",
        "load",
        "via",
        "req/s",
        "× direct",
        "p50 ms",
        "p99 ms",
        "TTFT p50",
        "TTFT p99",
        "added p50",
        "CPU ms/req",
        "CPU %",
        "peak RSS MiB",
        "frames/ans",
        "errors",
    ];
    let mut rows: Vec<Vec<String>> = Vec::new();
    for (workload, load, target, cell) in results {
        let direct = results
            .iter()
            .find(|(w, l, t, c)| {
                w == workload && l == load && *t == Target::Direct && c.failure.is_none()
            })
            .map(|r| &r.3);
        let noisy = if cell.foreign_pct > NOISY_PCT {
            "*"
        } else {
            ""
        };
        let mut row = vec![
            workload.label(o),
            load.label(),
            format!("{}{noisy}", target.name()),
        ];
        if let Some(e) = &cell.failure {
            row.push(format!("failed: {e}"));
            row.resize(head.len(), String::new());
            rows.push(row);
            continue;
        }
        let per_req = |ns: u64| {
            if cell.ok == 0 {
                "–".to_owned()
            } else {
                format!("{:.3}", ns as f64 / 1e6 / cell.ok as f64)
            }
        };
        row.push(format!("{:.0}", cell.rps));
        row.push(match direct {
            Some(d) if d.rps > 0.0 => format!("{:.2}", cell.rps / d.rps),
            _ => "–".into(),
        });
        row.push(ms(cell.p50));
        row.push(ms(cell.p99));
        row.push(ms(cell.ttft_p50));
        row.push(ms(cell.ttft_p99));
        row.push(match (direct.and_then(|d| d.p50), cell.p50, *target) {
            (_, _, Target::Direct) => "–".into(),
            (Some(d), Some(c), _) => format!("{:+.2}", (c.as_secs_f64() - d.as_secs_f64()) * 1e3),
            _ => "–".into(),
        });
        match cell.proxy_cpu_ns {
            Some(ns) => {
                row.push(per_req(ns));
                row.push(format!(
                    "{:.0}",
                    ns as f64 / cell.window.as_nanos() as f64 * 100.0
                ));
            }
            // direct: the mock upstream's own CPU, in parentheses
            None => {
                row.push(format!("({})", per_req(cell.upstream_cpu_ns)));
                row.push(format!(
                    "({:.0})",
                    cell.upstream_cpu_ns as f64 / cell.window.as_nanos() as f64 * 100.0
                ));
            }
        }
        row.push(
            cell.peak_rss_kib
                .map(|k| format!("{:.1}", k as f64 / 1024.0))
                .unwrap_or_else(|| "–".into()),
        );
        row.push(format!("{:.1}", cell.frames));
        row.push(cell.errors.to_string());
        rows.push(row);
    }
    let mut out = markdown(&head, &rows, 3);
    out.push_str(
        "\nTimes in ms, from sending the request: total = to the last body byte, TTFT = to the first body frame \
         carrying a token (streams). added p50 = p50 total minus direct's. CPU ms/req and CPU % (of one core) are \
         the proxy's, from /proc schedstat over the measured window; on direct rows, in parentheses, the mock \
         upstream's. peak RSS = VmHWM of the proxy started for that cell (master + worker for nginx). frames/ans = \
         body frames per answer as hyper's client decoded them (about one per HTTP/1.1 chunk).\n",
    );
    out
}

/// A Markdown table with aligned columns: the first `text_columns` columns
/// left-aligned, the others (numbers) right-aligned. Short rows are padded.
fn markdown(head: &[&str], rows: &[Vec<String>], text_columns: usize) -> String {
    let cell = |row: &[String], i: usize| row.get(i).cloned().unwrap_or_default();
    let widths: Vec<usize> = (0..head.len())
        .map(|i| {
            rows.iter()
                .map(|r| cell(r, i).chars().count())
                .chain([head[i].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let numeric = |i: usize| i >= text_columns;
    let line = |cells: &[String]| {
        let mut s = String::from("|");
        for (i, w) in widths.iter().enumerate() {
            let c = cell(cells, i);
            let pad = " ".repeat(w - c.chars().count());
            if numeric(i) {
                let _ = write!(s, " {pad}{c} |");
            } else {
                let _ = write!(s, " {c}{pad} |");
            }
        }
        s.push('\n');
        s
    };
    let mut out = line(&head.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    out.push('|');
    for (i, w) in widths.iter().enumerate() {
        if numeric(i) {
            let _ = write!(out, "{}:|", "-".repeat(w + 1));
        } else {
            let _ = write!(out, "{}|", "-".repeat(w + 2));
        }
    }
    out.push('\n');
    for row in rows {
        out.push_str(&line(row));
    }
    out
}
