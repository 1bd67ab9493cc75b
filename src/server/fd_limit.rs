//! The open-file limit, which bounds how many connections can be served.

/// Raises the soft open-file limit to the hard one (as Go and nginx's
/// `worker_rlimit_nofile` do) and returns the soft limit in force, or
/// `None` where it cannot be read.
#[cfg(unix)]
pub(super) fn raise() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `rlimit` through a valid pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return None;
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            // An unlimited hard limit is not a valid soft one on every
            // system; a million descriptors is plenty.
            rlim_cur: limit.rlim_max.min(1 << 20),
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit reads one `rlimit` through a valid pointer.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit.rlim_cur = raised.rlim_cur;
        }
    }
    // `rlim_t` is not 64 bits on every platform.
    #[allow(clippy::unnecessary_cast)]
    Some(limit.rlim_cur as u64)
}

#[cfg(not(unix))]
pub(super) fn raise() -> Option<u64> {
    None
}

/// `server.max_connections` when the config does not set it: half the
/// descriptors left after a reserve (each client connection may hold one
/// upstream connection too), at most `cap`.
pub(super) fn default_max_connections(open_files: Option<u64>, cap: u32) -> usize {
    const RESERVE: u64 = 64;
    match open_files {
        Some(n) => (n.saturating_sub(RESERVE) / 2).clamp(1, cap as u64) as usize,
        None => cap as usize,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_leaves_room_for_upstream_connections() {
        assert_eq!(default_max_connections(Some(256), 10_000), 96);
        assert_eq!(default_max_connections(Some(1024), 10_000), 480);
        assert_eq!(default_max_connections(Some(1 << 20), 10_000), 10_000);
        assert_eq!(default_max_connections(Some(10), 10_000), 1);
        assert_eq!(default_max_connections(None, 10_000), 10_000);
    }
}
