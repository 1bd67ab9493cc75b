//! What `state.redis` adds per request, against the in-memory limiter, in
//! one run: admission + settlement of a key with rpm, tpm, max_parallel and
//! budgets, in memory and in a real `redis-server` on loopback (started
//! here; Debian's `redis-server` must be on PATH), and a shared-cache `GET`.
//!
//! ```sh
//! cargo bench --bench shared_state             # 5000 per series
//! ROUNDS=20000 cargo bench --bench shared_state
//! ```
//!
//! Sequential, one request at a time: the latency a single request pays.
//! Loopback has no network hop; add the RTT to your Redis for production.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use switchyard::cache::Entry;
use switchyard::quota::{estimate_tokens, Budget, KeySpec, Limits, Store};
use switchyard::shared::{LimitSpec, OnError, Redis, RedisConfig, Settlement};
use switchyard::telemetry::metrics::Metrics;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "{name:<58} p50 {:>8.1} µs   p99 {:>8.1} µs",
        percentile(&samples, 0.5).as_secs_f64() * 1e6,
        percentile(&samples, 0.99).as_secs_f64() * 1e6
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5000);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server on PATH (apt-get install redis-server)");
    std::thread::sleep(Duration::from_millis(300));

    let limits = Limits {
        rpm: Some(100_000_000),
        tpm: Some(100_000_000_000),
        max_parallel: Some(1_000_000),
        budget: Budget {
            daily_usd: Some(1e12),
            monthly_usd: Some(1e12),
        },
    };
    let spec = Arc::new(KeySpec {
        name: "bench".into(),
        models: Vec::new(),
        limits,
        expires: None,
        labels: Arc::new([]),
        state: Arc::default(),
        counters: None,
    });
    let body = br#"{"model":"gpt-4o","max_tokens":256,"messages":[{"role":"user","content":"Say hello in one word."}]}"#;
    let store = Store::default();
    let redis = Redis::new(
        RedisConfig {
            url: format!("redis://127.0.0.1:{port}/0"),
            on_error: OnError::FailOpen,
            timeout: Duration::from_secs(1),
            prefix: "bench:".into(),
        },
        Arc::new(Metrics::new()),
    )
    .expect("a URL");
    let shared = LimitSpec {
        name: "bench",
        rpm: limits.rpm,
        tpm: limits.tpm,
        max_parallel: limits.max_parallel.map(u64::from),
        daily_usd: limits.budget.daily_usd,
        monthly_usd: limits.budget.monthly_usd,
        day: "2026-12-07",
        month: "2026-12",
    };
    // Warm up (and prove the paths work) before measuring.
    let admitted = redis
        .admit(&shared, 100)
        .await
        .expect("Redis up")
        .expect("admitted");
    let settle = Settlement {
        reserved_tokens: 100,
        used_tokens: Some(74),
        cost_usd: Some(0.0001),
        slot: admitted.slot,
    };
    redis.settle(&shared, &settle).await.expect("settled");
    let entry = Entry {
        json: Some(Bytes::from(vec![b'x'; 2048])),
        sse: None,
    };
    redis
        .cache_put(&[1; 32], &entry, Duration::from_secs(600))
        .await
        .expect("put");

    let mut memory = Vec::with_capacity(rounds);
    let mut admit = Vec::with_capacity(rounds);
    let mut both = Vec::with_capacity(rounds);
    let mut get = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let t = Instant::now();
        let mut permit = store.admit(&spec, estimate_tokens(body)).expect("admitted");
        permit.settle(Some(74), Some(0.0001));
        drop(permit);
        memory.push(t.elapsed());

        let t = Instant::now();
        let tokens = estimate_tokens(body);
        let ok = redis
            .admit(&shared, tokens)
            .await
            .expect("up")
            .expect("admitted");
        admit.push(t.elapsed());
        let settle = Settlement {
            reserved_tokens: tokens,
            used_tokens: Some(74),
            cost_usd: Some(0.0001),
            slot: ok.slot,
        };
        redis.settle(&shared, &settle).await.expect("settled");
        both.push(t.elapsed());

        let t = Instant::now();
        assert!(redis.cache_get(&[1; 32]).await.expect("up").is_some());
        get.push(t.elapsed());
    }
    println!("{rounds} rounds, one at a time, redis-server on loopback");
    report(
        "memory: admit + settle (rpm, tpm, parallel, budgets)",
        memory,
    );
    report("redis: admit (the request waits for this)", admit);
    report("redis: admit + settle (settle runs after the answer)", both);
    report("redis: shared-cache GET of a 2 KiB answer", get);
    let _ = server.kill();
    let _ = server.wait();
}
