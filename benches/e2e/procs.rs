//! Child processes (mock upstream, Switchyard, nginx) and what /proc says
//! about them: CPU time and peak RSS.
//!
//! CPU time is the sum, over every thread of the process and of its
//! descendants (nginx's workers), of the first field of
//! `/proc/<pid>/task/<tid>/schedstat`: nanoseconds on a CPU, exact, unlike
//! `utime`/`stime` in `/proc/<pid>/stat` which count 10 ms clock ticks. A
//! thread that exits between two readings takes its time with it; neither
//! Switchyard (fixed tokio workers, no blocking-pool work on the request
//! path) nor nginx starts or ends threads while serving.
//! Peak RSS is `VmHWM` from `/proc/<pid>/status`, summed over the tree.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// A child process that is stopped (SIGTERM, then SIGKILL) when dropped,
/// with its descendants.
pub struct Proc {
    pub name: String,
    pub child: Child,
    /// the process and its descendants, as of the last `refresh_tree`
    pub tree: Vec<u32>,
}

impl Proc {
    pub fn new(name: impl Into<String>, child: Child) -> Proc {
        let pid = child.id();
        Proc {
            name: name.into(),
            child,
            tree: vec![pid],
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn refresh_tree(&mut self) {
        self.tree = tree(self.pid());
    }

    /// Exited already? Then its status, for an error message.
    pub fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            Ok(None) => None,
            Err(e) => Some(e.to_string()),
        }
    }

    pub fn cpu_ns(&self) -> u64 {
        self.tree.iter().map(|&pid| cpu_ns(pid)).sum()
    }

    pub fn peak_rss_kib(&self) -> u64 {
        self.tree.iter().map(|&pid| status_kib(pid, "VmHWM:")).sum()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let pid = self.pid();
        if self.child.try_wait().ok().flatten().is_some() {
            return;
        }
        let family = tree(pid);
        signal("TERM", pid);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if self.child.try_wait().ok().flatten().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        // nginx's master takes its workers with it on SIGTERM; make sure.
        for &p in family.iter().skip(1) {
            if Path::new(&format!("/proc/{p}")).exists() {
                signal("KILL", p);
            }
        }
    }
}

/// Sends a signal to one process, by id.
fn signal(sig: &str, pid: u32) {
    let _ = Command::new("kill")
        .args(["-s", sig, &pid.to_string()])
        .stderr(std::process::Stdio::null())
        .status();
}

/// `pid` and its descendants (from the ppid field of every /proc/*/stat).
pub fn tree(pid: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(p) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
                continue;
            };
            // the command name may contain spaces and parentheses: fields
            // start after the last ')'
            let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
                continue;
            };
            if let Some(ppid) = rest
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse::<u32>().ok())
            {
                children.entry(ppid).or_default().push(p);
            }
        }
    }
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        if let Some(kids) = children.get(&out[i]) {
            out.extend(kids);
        }
        i += 1;
    }
    out
}

/// CPU nanoseconds of every thread of `pid` (schedstat), 0 if it is gone.
/// Without schedstat (a kernel built without it), utime + stime from
/// /proc/<pid>/stat at USER_HZ = 100 (10 ms resolution).
pub fn cpu_ns(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    let ns: u64 = tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| {
            s.split_whitespace()
                .next()
                .and_then(|n| n.parse::<u64>().ok())
        })
        .sum();
    if ns > 0 {
        return ns;
    }
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
        return 0;
    };
    // after the name: state(0) ppid(1) … utime(11) stime(12)
    let ticks: u64 = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|n| n.parse::<u64>().ok())
        .sum();
    ticks * 10_000_000
}

/// A `kB` field of /proc/<pid>/status, 0 when missing.
pub fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

/// CPU time the whole machine spent busy (user, nice, system, irq,
/// softirq, steal: the `cpu` line of /proc/stat, USER_HZ = 100), in ns.
pub fn machine_busy_ns() -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = stat.lines().find(|l| l.starts_with("cpu ")) else {
        return 0;
    };
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|n| n.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal
    let busy: u64 = [0, 1, 2, 5, 6, 7].iter().filter_map(|&i| f.get(i)).sum();
    busy * 10_000_000
}

/// Whether schedstat works here (some kernels are built without it).
pub fn schedstat_available() -> bool {
    std::fs::read_to_string(format!("/proc/{}/schedstat", std::process::id()))
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .next()
                .and_then(|n| n.parse::<u64>().ok())
        })
        .is_some_and(|n| n > 0)
}
