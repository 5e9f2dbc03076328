//! Liveness and readiness. `GET /` answers while the process serves (liveness); `GET /ready`
//! answers 200 only while the store answers (readiness), so a load balancer or Kubernetes stops
//! sending requests to a server whose database is gone, and sends them again when it is back.
//! The store is asked once a second in the background rather than on each probe: a probe answers
//! at once whatever the store does, and probes, however many, cost the store nothing more.
//! `dynabox healthcheck` asks a running server's `/ready`, for container health checks.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use dynabox_handler::http::Response;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;

use crate::metrics::Metrics;
use crate::storage::Store;

/// How often the store is asked.
const INTERVAL: Duration = Duration::from_secs(1);
/// How long the store may take to answer before the server counts as not ready.
const TIMEOUT: Duration = Duration::from_secs(2);

/// Whether the store answered the last time it was asked.
pub struct Readiness {
    ready: AtomicBool,
}

impl Readiness {
    /// Ready: the store was just opened.
    pub fn new() -> Arc<Readiness> {
        Metrics::global().set_ready(true);
        Arc::new(Readiness { ready: AtomicBool::new(true) })
    }

    /// Asks the store every [`INTERVAL`] forever, logging each change.
    pub async fn watch(self: Arc<Self>, store: Arc<dyn Store>) {
        loop {
            tokio::time::sleep(INTERVAL).await;
            // A primary-key lookup of an account that cannot exist: the cheapest statement the
            // store has that reaches the database.
            let failure = match tokio::time::timeout(TIMEOUT, store.find_account("")).await {
                Ok(Ok(_)) => None,
                Ok(Err(e)) => Some(format!("{e:?}")),
                Err(_) => Some(format!("no answer within {TIMEOUT:?}")),
            };
            let ready = failure.is_none();
            if self.ready.swap(ready, Ordering::Relaxed) != ready {
                match failure {
                    // The first line only: a database's error may quote data on the next.
                    Some(why) => tracing::warn!("not ready: the store failed: {}", why.lines().next().unwrap_or("")),
                    None => tracing::info!("ready: the store answers again"),
                }
            }
            Metrics::global().set_ready(ready);
            if let Some(pool) = store.pool_use() {
                Metrics::global().pool(pool);
            }
        }
    }

    /// The answer to `GET /ready`: without the store's words, since anyone may ask.
    pub fn answer(&self) -> Response {
        let (status, body) = match self.ready.load(Ordering::Relaxed) {
            true => (200, "ready: dynabox"),
            false => (503, "not ready: the store does not answer"),
        };
        let headers = vec![("content-type".into(), "text/plain".into())];
        Response { status, headers, body: body.as_bytes().to_vec() }
    }
}

/// `dynabox healthcheck`: asks the server at `address` whether it is ready; Ok with its answer.
pub async fn check(address: SocketAddr, timeout: Duration) -> anyhow::Result<String> {
    let asked = async {
        let stream =
            tokio::net::TcpStream::connect(address).await.with_context(|| format!("connecting to {address}"))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        let request = hyper::Request::get("/ready").header("host", address.to_string()).body(Empty::<Bytes>::new())?;
        let response = sender.send_request(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        let body = String::from_utf8_lossy(&body).into_owned();
        anyhow::ensure!(status == hyper::StatusCode::OK, "{address} answered {status}: {body}");
        Ok(body)
    };
    tokio::time::timeout(timeout, asked)
        .await
        .map_err(|_| anyhow::anyhow!("{address} did not answer within {timeout:?}"))?
}

/// Where a server listening on `listen` is reached from this machine: its unspecified address
/// (`0.0.0.0`, `[::]`) as loopback.
pub fn local_address(listen: SocketAddr) -> SocketAddr {
    let mut address = listen;
    if address.ip().is_unspecified() {
        address.set_ip(match address {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    address
}
