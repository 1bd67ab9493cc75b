//! State shared through a real `redis-server`: limits admit exactly across
//! two clients (two replicas), tokens are reconciled, budgets add up, cache
//! entries round-trip with their TTL, and a Redis that goes away is told
//! at once (no waiting) and found again when it returns.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use switchyard::cache::Entry;
use switchyard::shared::{LimitSpec, OnError, Redis, RedisConfig, Settlement};
use switchyard::telemetry::metrics::Metrics;

use crate::support::redis::RedisServer;

fn client(server: &RedisServer) -> Redis {
    Redis::new(
        RedisConfig {
            url: server.url(),
            on_error: OnError::FailOpen,
            timeout: Duration::from_millis(250),
            prefix: "test:".into(),
        },
        Arc::new(Metrics::new()),
    )
    .expect("a valid URL")
}

fn spec(name: &str) -> LimitSpec<'_> {
    LimitSpec {
        name,
        rpm: None,
        tpm: None,
        max_parallel: None,
        daily_usd: None,
        monthly_usd: None,
        day: "2026-12-07",
        month: "2026-12",
    }
}

#[tokio::test]
async fn two_replicas_admit_exactly_rpm_requests_between_them() {
    let server = RedisServer::start().await;
    let (a, b) = (client(&server), client(&server));
    let limited = LimitSpec {
        rpm: Some(10),
        ..spec("team-a")
    };
    let mut admitted = 0;
    let mut last_retry = 0.0;
    for i in 0..30 {
        let replica = if i % 2 == 0 { &a } else { &b };
        match replica.admit(&limited, 0).await.expect("Redis is up") {
            Ok(ok) => {
                admitted += 1;
                assert_eq!(ok.requests_remaining, Some(10 - admitted));
            }
            Err(refused) => {
                assert_eq!(refused.limit, "rpm");
                last_retry = refused.retry_after;
            }
        }
    }
    assert_eq!(admitted, 10);
    // 10 a minute: one more fits after 6 s.
    assert!((5.0..=6.01).contains(&last_retry), "{last_retry}");
}

#[tokio::test]
async fn tokens_are_reserved_then_reconciled_with_what_was_used() {
    let server = RedisServer::start().await;
    let redis = client(&server);
    let limited = LimitSpec {
        tpm: Some(1000),
        ..spec("tokens")
    };
    let ok = redis.admit(&limited, 600).await.unwrap().expect("fits");
    assert_eq!(ok.tokens_remaining, Some(400));
    assert_eq!(
        redis
            .admit(&limited, 600)
            .await
            .unwrap()
            .map(|_| ())
            .unwrap_err()
            .limit,
        "tpm"
    );
    // The answer used 100 of the 600 reserved.
    let settled = Settlement {
        reserved_tokens: 600,
        used_tokens: Some(100),
        ..Settlement::default()
    };
    redis.settle(&limited, &settled).await.unwrap();
    let ok = redis
        .admit(&limited, 600)
        .await
        .unwrap()
        .expect("fits after the correction");
    assert!(ok.tokens_remaining.unwrap() <= 300, "{ok:?}");
}

#[tokio::test]
async fn parallel_slots_are_given_back_and_budgets_add_up() {
    let server = RedisServer::start().await;
    let redis = client(&server);
    let one = LimitSpec {
        max_parallel: Some(1),
        ..spec("parallel")
    };
    let held = redis.admit(&one, 0).await.unwrap().expect("the slot");
    assert!(held.slot.is_some());
    assert_eq!(
        redis.admit(&one, 0).await.unwrap().unwrap_err().limit,
        "parallel"
    );
    let release = Settlement {
        slot: held.slot.clone(),
        ..Settlement::default()
    };
    redis.settle(&one, &release).await.unwrap();
    redis.admit(&one, 0).await.unwrap().expect("the slot again");

    let budget = LimitSpec {
        daily_usd: Some(0.01),
        monthly_usd: Some(1.0),
        ..spec("budget")
    };
    redis
        .admit(&budget, 0)
        .await
        .unwrap()
        .expect("nothing spent yet");
    let spent = Settlement {
        cost_usd: Some(0.006),
        ..Settlement::default()
    };
    redis.settle(&budget, &spent).await.unwrap();
    redis
        .admit(&budget, 0)
        .await
        .unwrap()
        .expect("0.006 of 0.01");
    redis.settle(&budget, &spent).await.unwrap();
    assert_eq!(
        redis.admit(&budget, 0).await.unwrap().unwrap_err().limit,
        "daily"
    );
    let (day, month) = redis.spend(&budget).await.unwrap();
    assert!(
        (day - 0.012).abs() < 1e-9 && (month - 0.012).abs() < 1e-9,
        "{day} {month}"
    );
    let tomorrow = LimitSpec {
        day: "2026-12-08",
        ..budget
    };
    redis.admit(&tomorrow, 0).await.unwrap().expect("a new day");
}

#[tokio::test]
async fn cache_entries_round_trip_and_expire() {
    let server = RedisServer::start().await;
    let redis = client(&server);
    let entry = Entry {
        json: Some(Bytes::from_static(b"{\"choices\":[]}")),
        sse: Some((Bytes::from_static(b"data: [DONE]\n\n"), false)),
    };
    redis
        .cache_put(&[3; 32], &entry, Duration::from_millis(300))
        .await
        .unwrap();
    let back = redis.cache_get(&[3; 32]).await.unwrap().expect("kept");
    assert_eq!(
        (back.json, back.sse),
        (entry.json.clone(), entry.sse.clone())
    );
    assert!(redis.cache_get(&[4; 32]).await.unwrap().is_none());
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        redis.cache_get(&[3; 32]).await.unwrap().is_none(),
        "expired"
    );
}

#[tokio::test]
async fn a_redis_that_goes_away_is_told_at_once_and_found_again() {
    let mut server = RedisServer::start().await;
    let redis = client(&server);
    let limited = LimitSpec {
        rpm: Some(100),
        ..spec("outage")
    };
    redis.admit(&limited, 0).await.unwrap().expect("up");
    server.stop();
    let started = Instant::now();
    assert!(redis.admit(&limited, 0).await.is_err());
    assert!(!redis.is_up());
    // While it is down, callers are answered without waiting for a timeout.
    let quick = Instant::now();
    for _ in 0..100 {
        assert!(redis.admit(&limited, 0).await.is_err());
    }
    assert!(
        quick.elapsed() < Duration::from_millis(100),
        "{:?}",
        quick.elapsed()
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    server.restart().await;
    let back = async {
        loop {
            if redis.admit(&limited, 0).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), back)
        .await
        .expect("found again within 10 s");
    assert!(redis.is_up());
}
