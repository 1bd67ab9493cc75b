//! Active health checks: a probe per upstream that has them on.
//!
//! Each probe sends `GET <health url>` every interval and records up/down in
//! the upstream's runtime state, which the status view shows. Probes belong
//! to the table that started them: installing a new table stops the old
//! probes and starts new ones (the state they write survives).

use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request};
use tokio::task::JoinSet;

use crate::h1::{ClientError, RequestBody, UpstreamClient};
use crate::routing::{Table, Upstream};

/// A probe never waits longer than this for an answer, whatever the interval.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// Most of a probe's answer read (to reuse the connection); a longer one
/// is dropped with its connection.
const MAX_PROBE_BODY: usize = 1 << 20;

/// Running probes; dropping this stops them.
#[derive(Default)]
pub struct Probes {
    /// Held for its `Drop`, which aborts every probe.
    _tasks: JoinSet<()>,
}

impl Probes {
    /// Starts a probe for each upstream of `table` with active checks on.
    pub fn start(table: &Table) -> Probes {
        let mut tasks = JoinSet::new();
        for upstream in &table.upstreams {
            if upstream.unresolved.is_some() {
                continue;
            }
            if let (Some((url, interval)), Some(client)) =
                (&upstream.health_check, &upstream.client)
            {
                let (url, interval, client) = (url.clone(), *interval, client.clone());
                let upstream = Arc::clone(upstream);
                tasks.spawn(async move {
                    loop {
                        probe(&upstream, &client, &url).await;
                        tokio::time::sleep(interval).await;
                    }
                });
            }
        }
        Probes { _tasks: tasks }
    }
}

async fn probe(upstream: &Upstream, client: &UpstreamClient, url: &http::Uri) {
    let mut request = Request::builder().method(Method::GET).uri(url.clone());
    if let Some((name, value)) = &upstream.credential {
        request = request.header(name, value);
    }
    let Ok(request) = request.body(RequestBody::empty()) else {
        return;
    };
    let answered = tokio::time::timeout(PROBE_TIMEOUT, async {
        let response = client.request(request).await?;
        let status = response.status();
        // Read the (bounded) body so the connection goes back to the pool:
        // otherwise every probe of an https upstream is a new TLS handshake.
        let body = http_body_util::Limited::new(response.into_body(), MAX_PROBE_BODY);
        let _ = http_body_util::BodyExt::collect(body).await;
        Ok::<_, ClientError>(status)
    });
    match answered.await {
        Ok(Ok(status)) if status.is_success() => upstream.state.mark_up(),
        Ok(Ok(status)) => upstream
            .state
            .mark_probe_down(format!("health check GET {url} answered {status}")),
        Ok(Err(err)) => upstream
            .state
            .mark_probe_down(format!("health check GET {url} failed: {}", err)),
        Err(_) => upstream.state.mark_probe_down(format!(
            "health check GET {url} got no answer within {}s",
            PROBE_TIMEOUT.as_secs()
        )),
    }
}
