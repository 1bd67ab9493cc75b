//! Idle keep-alive connections, per origin.
//!
//! Taken most recently used first (the likeliest to be alive), checked for
//! a close by the peer before reuse, and closed after [`IDLE_TIMEOUT`] by
//! a sweep every few seconds (or when the peer closes them), not only at
//! the next checkout.
//! The lock is held only to push or pop; connections are closed outside it.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::connect::{Conn, Origin};

/// Idle pooled connections are closed after this long; shorter than the
/// usual 120 s server keep-alive so we rarely reuse a connection the server
/// is about to close.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Idle connections kept per origin: enough for bursts of concurrent streams.
pub const MAX_IDLE_PER_ORIGIN: usize = 256;

/// The idle connections of one client.
#[derive(Default)]
pub struct Pool {
    slots: Mutex<Vec<Slot>>,
    /// A task sweeps this pool (started with the client's first request).
    pub sweeping: std::sync::atomic::AtomicBool,
}

struct Slot {
    /// `scheme://authority` as the URL spells it: compared as a string on
    /// every request, cheaper than parsing host and port again.
    key: String,
    origin: Origin,
    idle: Vec<(Conn, Instant)>,
}

/// `scheme` and `authority` of `uri` as written (`None` without both).
fn key_parts(uri: &http::Uri) -> Option<(&str, &str)> {
    Some((uri.scheme_str()?, uri.authority()?.as_str()))
}

fn key_matches(key: &str, (scheme, authority): (&str, &str)) -> bool {
    key.len() == scheme.len() + 3 + authority.len()
        && key.starts_with(scheme)
        && key[scheme.len()..].starts_with("://")
        && key.ends_with(authority)
}

impl Pool {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Slot>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The slot of `uri`'s origin, added on first use; `None` when `uri` is
    /// not an absolute `http`/`https` URL.
    pub fn slot(&self, uri: &http::Uri) -> Option<usize> {
        let parts = key_parts(uri)?;
        let mut slots = self.lock();
        if let Some(i) = slots.iter().position(|s| key_matches(&s.key, parts)) {
            return Some(i);
        }
        slots.push(Slot {
            key: format!("{}://{}", parts.0, parts.1),
            origin: Origin::of(uri)?,
            idle: Vec::new(),
        });
        Some(slots.len() - 1)
    }

    /// The origin of `slot`.
    pub fn origin(&self, slot: usize) -> Option<Origin> {
        self.lock().get(slot).map(|s| s.origin.clone())
    }

    /// An idle connection to `slot`'s origin that still looks usable.
    pub fn checkout(&self, slot: usize) -> Option<Conn> {
        let now = Instant::now();
        let mut stale = Vec::new();
        let found = {
            let mut slots = self.lock();
            let idle = &mut slots.get_mut(slot)?.idle;
            let expired = idle
                .iter()
                .take_while(|(_, since)| now.duration_since(*since) >= IDLE_TIMEOUT)
                .count();
            stale.extend(idle.drain(..expired).map(|(conn, _)| conn));
            let mut found = None;
            while let Some((mut conn, _)) = idle.pop() {
                if conn.is_reusable() {
                    found = Some(conn);
                    break;
                }
                stale.push(conn);
            }
            found
        };
        drop(stale);
        found
    }

    /// Closes idle connections older than `max_idle`, and those the peer
    /// has closed: without it, an idle connection would stay open until the
    /// next request to its origin, however long that takes.
    pub fn sweep(&self, now: Instant, max_idle: Duration) -> usize {
        let mut stale = Vec::new();
        {
            let mut slots = self.lock();
            for slot in slots.iter_mut() {
                let mut keep = Vec::with_capacity(slot.idle.len());
                for (mut conn, since) in std::mem::take(&mut slot.idle) {
                    if now.duration_since(since) < max_idle && conn.is_reusable() {
                        keep.push((conn, since));
                    } else {
                        stale.push(conn);
                    }
                }
                slot.idle = keep;
            }
        }
        let closed = stale.len();
        drop(stale);
        closed
    }

    /// Returns a connection whose response was read to its end.
    pub fn checkin(&self, slot: usize, conn: Conn) {
        let mut slots = self.lock();
        if let Some(s) = slots.get_mut(slot) {
            if s.idle.len() < MAX_IDLE_PER_ORIGIN {
                s.idle.push((conn, Instant::now()));
                return;
            }
        }
        drop(slots);
        drop(conn);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_sweep_closes_idle_connections_past_their_time_and_those_the_peer_closed() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let uri: http::Uri = format!("http://{}/v1", listener.local_addr().unwrap())
            .parse()
            .unwrap();
        let pool = Pool::default();
        let slot = pool.slot(&uri).unwrap();
        let mut peers = Vec::new();
        for _ in 0..3 {
            let conn = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
                .await
                .unwrap();
            peers.push(listener.accept().await.unwrap().0);
            pool.checkin(slot, Conn::Tcp(conn));
        }
        // The peer closes one of them.
        drop(peers.pop());
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            pool.sweep(Instant::now(), IDLE_TIMEOUT),
            1,
            "the closed one"
        );
        assert_eq!(pool.sweep(Instant::now(), IDLE_TIMEOUT), 0);
        let later = Instant::now() + IDLE_TIMEOUT;
        assert_eq!(
            pool.sweep(later, IDLE_TIMEOUT),
            2,
            "both idle past the timeout"
        );
        assert!(pool.checkout(slot).is_none());
    }

    #[test]
    fn slots_are_per_scheme_and_authority() {
        let pool = Pool::default();
        let a: http::Uri = "http://127.0.0.1:9000/v1/chat/completions".parse().unwrap();
        let a2: http::Uri = "http://127.0.0.1:9000/v1/embeddings".parse().unwrap();
        let b: http::Uri = "https://127.0.0.1:9000/v1/chat/completions"
            .parse()
            .unwrap();
        let c: http::Uri = "http://127.0.0.1:9001/v1".parse().unwrap();
        let relative: http::Uri = "/v1/chat/completions".parse().unwrap();
        assert_eq!(pool.slot(&a), Some(0));
        assert_eq!(pool.slot(&a2), Some(0));
        assert_eq!(pool.slot(&b), Some(1));
        assert_eq!(pool.slot(&c), Some(2));
        assert_eq!(pool.slot(&relative), None);
        let origin = pool.origin(1).unwrap();
        assert!(origin.tls);
        assert_eq!((origin.host.as_str(), origin.port), ("127.0.0.1", 9000));
        assert!(pool.checkout(0).is_none());
    }
}
