//! Soak (`--soak S`): does the proxy's memory stay bounded under a long,
//! steady streaming load?
//!
//! For each Switchyard target (`switchyard`, and `baseline` when set, one
//! after the other), started afresh as the cells start it: 64 closed-loop
//! connections of the `paced` workload for S seconds, and the proxy's
//! `VmRSS` from `/proc/<pid>/status` sampled every second. `paced`, not
//! `stream`: a paced answer takes ~250 ms (50 tokens, 5 ms apart), so all
//! 64 streams are in flight at every moment, which is the load the
//! memory budget is about; a no-delay stream is over in well under a
//! millisecond and the 64 would hardly overlap.
//!
//! Reported: RSS 10 s into the load, at the end, the peak (`VmHWM`, which
//! also catches what happens between samples), the slope in KiB per
//! minute (least squares over the samples after min(30 s, 10 % of the
//! run), so start-up growth is left out), requests answered and errors.
//! Bounded: S ≤ [`MAX_SECONDS`], one sample per second, each request ≤ 30 s.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::{markdown, ms, percentile, start_switchyard, Bench, Target, Workload};
use crate::load::{self, RequestSpec};
use crate::procs;

/// The longest soak `--soak` accepts, in seconds.
pub const MAX_SECONDS: u64 = 3600;
/// Closed-loop connections during a soak.
const CONNECTIONS: usize = 64;
/// The sample whose RSS is reported as the start-of-load figure.
const EARLY_SAMPLE_S: f64 = 10.0;
/// Samples up to min(this, 10 % of the run) are left out of the slope.
const SLOPE_SKIP_S: f64 = 30.0;

/// What a soak of one target measured.
struct Soak {
    target: Target,
    /// (seconds since the load started, VmRSS KiB), one a second
    rss: Vec<(f64, u64)>,
    peak_kib: u64,
    ok: usize,
    errors: usize,
    p99: Option<Duration>,
    failure: Option<String>,
}

/// Every Switchyard target in `--targets`, one after the other, and the table.
pub async fn run(bench: &Bench) -> String {
    let targets = bench.opts.switchyard_targets();
    if targets.is_empty() {
        return "Soak: skipped, no Switchyard target in --targets.\n".into();
    }
    let mut results = Vec::new();
    for target in targets {
        eprintln!(
            "soak: {} for {} s, {CONNECTIONS} paced streams",
            target.name(),
            bench.opts.soak
        );
        let soak = match soak_one(bench, target).await {
            Ok(soak) => soak,
            Err(e) => Soak {
                target,
                rss: Vec::new(),
                peak_kib: 0,
                ok: 0,
                errors: 0,
                p99: None,
                failure: Some(e),
            },
        };
        results.push(soak);
    }
    table(bench, &results)
}

/// One target: started afresh, loaded for `--soak` seconds, its RSS
/// sampled every second; stopped at the end.
async fn soak_one(bench: &Bench, target: Target) -> Result<Soak, String> {
    let seconds = bench.opts.soak.min(MAX_SECONDS);
    let (mut proc, addr, _log) = start_switchyard(bench, target, "soak").await?;
    let spec = Arc::new(RequestSpec {
        body: Workload::Paced.body(),
        stream: true,
        host: addr.to_string(),
    });
    let start = Instant::now();
    let end = start + Duration::from_secs(seconds);
    let generator = tokio::spawn(load::closed(addr, spec, CONNECTIONS, end));
    let every = (seconds / 10).max(10);
    let mut rss = Vec::with_capacity(seconds as usize);
    let mut failure = None;
    for i in 1..=seconds {
        tokio::time::sleep_until(start + Duration::from_secs(i)).await;
        if let Some(status) = proc.exited() {
            failure = Some(format!("{} exited after {i} s ({status})", target.name()));
            break;
        }
        let kib = procs::status_kib(proc.pid(), "VmRSS:");
        rss.push((i as f64, kib));
        if i % every == 0 {
            eprintln!(
                "soak: {} {i}/{seconds} s, RSS {:.1} MiB",
                target.name(),
                kib as f64 / 1024.0
            );
        }
    }
    // the generator ends by itself: at `end`, plus the answers in flight
    let samples = generator
        .await
        .map_err(|e| format!("load generator: {e}"))?;
    let peak_kib = proc.peak_rss_kib();
    drop(proc); // stops it
    let mut totals: Vec<Duration> = samples.iter().filter(|s| s.ok).map(|s| s.total).collect();
    totals.sort_unstable();
    Ok(Soak {
        target,
        rss,
        peak_kib,
        ok: totals.len(),
        errors: samples.iter().filter(|s| !s.ok).count(),
        p99: percentile(&totals, 0.99),
        failure,
    })
}

/// Where the slope starts: min(30 s, 10 % of the run).
fn slope_from(seconds: u64) -> f64 {
    SLOPE_SKIP_S.min(seconds as f64 * 0.1)
}

/// KiB per minute: the least-squares slope of RSS over the samples taken
/// after `from` seconds; None with fewer than 3 of them.
fn slope_kib_per_min(rss: &[(f64, u64)], from: f64) -> Option<f64> {
    let points: Vec<(f64, f64)> = rss
        .iter()
        .filter(|(t, _)| *t > from)
        .map(|&(t, kib)| (t / 60.0, kib as f64))
        .collect();
    if points.len() < 3 {
        return None;
    }
    let n = points.len() as f64;
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
    (sxx > 0.0).then(|| sxy / sxx)
}

fn mib(kib: Option<u64>) -> String {
    match kib {
        Some(k) if k > 0 => format!("{:.1}", k as f64 / 1024.0),
        _ => "–".into(),
    }
}

fn table(bench: &Bench, results: &[Soak]) -> String {
    let o = &bench.opts;
    let from = slope_from(o.soak);
    let head = [
        "proxy",
        "seconds",
        "requests",
        "req/s",
        "errors",
        "p99 ms",
        "RSS 10 s MiB",
        "RSS end MiB",
        "peak RSS MiB",
        "slope KiB/min",
    ];
    let mut rows = Vec::new();
    for soak in results {
        let mut row = vec![soak.target.name().to_owned()];
        if let Some(e) = soak.failure.as_ref().filter(|_| soak.rss.is_empty()) {
            row.push(format!("failed: {e}"));
            rows.push(row);
            continue;
        }
        let at = |t: f64| soak.rss.iter().find(|s| s.0 >= t).map(|s| s.1);
        row.extend([
            o.soak.to_string(),
            soak.ok.to_string(),
            format!("{:.0}", soak.ok as f64 / o.soak.max(1) as f64),
            soak.errors.to_string(),
            ms(soak.p99),
            mib(at(EARLY_SAMPLE_S)),
            mib(soak.rss.last().map(|s| s.1)),
            mib(Some(soak.peak_kib)),
            slope_kib_per_min(&soak.rss, from)
                .map(|s| format!("{s:+.1}"))
                .unwrap_or_else(|| "–".into()),
        ]);
        rows.push(row);
    }
    let mut out = format!(
        "Soak: {CONNECTIONS} closed-loop connections of `paced` streams ({}), {} s per Switchyard target, \
         started afresh; VmRSS sampled every second.\n\n",
        Workload::Paced.label(o),
        o.soak
    );
    out.push_str(&markdown(&head, &rows, 1));
    let _ = writeln!(
        out,
        "\nRSS 10 s / end = VmRSS 10 s into the load / at its end; peak = VmHWM after the run; slope = least squares \
         over the samples after {from:.0} s (min(30 s, 10 % of the run)), KiB per minute. requests = complete 200 \
         answers; p99 = send to last byte."
    );
    for soak in results {
        if let Some(e) = &soak.failure {
            let _ = writeln!(out, "{}: {e}", soak.target.name());
        }
    }
    out
}
