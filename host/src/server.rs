//! HTTP/1.1 with keep-alive in front of the runtime, over TLS when configured (with HTTP/2 for
//! clients that ask for it): the transport's rules (timeouts for slow and idle clients and for the
//! TLS handshake, a cap on open connections and on header size, `HEAD`, the one path (and the
//! console's, `/console/...`, handed to it), the memory budget for bodies) around the handler's
//! front door (CORS, content codings both ways), and graceful shutdown that drains in-flight
//! requests within a bounded time. Each API request runs in a span with its request id, is
//! counted in the metrics and may get an access log line; `GET /ready` and `GET /metrics` are
//! answered here too (see [`Telemetry`]), or on an admin address of their own ([`serve_admin`]).

mod connections;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use dynabox_handler::front_door::{self, Reply, Step};
use dynabox_handler::http::{Request, Response};
use dynabox_handler::protocol::{MAX_BODY_BYTES, error_response, known_operation, request_id, request_too_large};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::http::request::Parts;
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulConnection;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tracing::Instrument;
use tracing::field::Empty;

use crate::console::{self, Console};
use crate::health::Readiness;
use crate::metrics::{self, Metrics};
use crate::runtime::{Handled, Reservation, Runtime};
use connections::{Connections, Place};

/// The transport's limits (`dynabox --help` says what each is for).
#[derive(Debug, Clone)]
pub struct Transport {
    /// The time a client has to send a request's headers, and an idle keep-alive connection to
    /// start its next request.
    pub header_timeout: Duration,
    /// The time a client has to send a request's body once its headers are in.
    pub body_timeout: Duration,
    /// Connections open at once. At the cap, a new client takes the place of the connection idle
    /// for longest; when none is idle, it waits until one is or closes.
    pub max_connections: usize,
    /// How long shutdown waits for in-flight requests; idle connections close at once, and a
    /// request still arriving is bounded by the timeouts above anyway.
    pub drain_timeout: Duration,
    /// HTTPS with this configuration (`crate::tls`), its handshake bounded by `header_timeout`;
    /// plain HTTP without.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

impl Default for Transport {
    fn default() -> Self {
        Transport {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max_connections: 4096,
            drain_timeout: Duration::from_secs(10),
            tls: None,
        }
    }
}

/// The most a request's headers may take.
const MAX_HEADER_BYTES: usize = 64 * 1024;

/// What a listener tells about the server besides the API: the paths it answers for operators
/// (none of them the API's, which is `POST /`) and what it logs of each request.
#[derive(Clone)]
pub struct Telemetry {
    /// `GET /ready` answers from it.
    pub readiness: Arc<Readiness>,
    /// Whether `GET /metrics` is answered here.
    pub metrics: bool,
    /// A log line per API request (target `dynabox::access`).
    pub access_log: bool,
    /// API requests that take longer are logged as slow.
    pub slow_request: Option<Duration>,
}

impl Telemetry {
    /// The answer to a request for an operator's path, if it is one.
    fn answer(&self, request: &Request) -> Option<Response> {
        if request.method != "GET" && request.method != "HEAD" {
            return None;
        }
        match request.path.split('?').next() {
            Some("/ready") => Some(self.readiness.answer()),
            Some("/metrics") if self.metrics => {
                let headers = vec![("content-type".into(), metrics::CONTENT_TYPE.into())];
                Some(Response { status: 200, headers, body: Metrics::global().encode().into_bytes() })
            }
            _ => None,
        }
    }
}

/// Serves until `shutdown` resolves, then stops accepting and drains open connections. The
/// console, when given, answers its own paths (`/console/...`); the API keeps every other.
pub async fn serve(
    listener: TcpListener,
    runtime: Arc<Runtime>,
    transport: Transport,
    telemetry: Telemetry,
    console: Option<Arc<Console>>,
    shutdown: impl Future<Output = ()>,
) {
    let connections = Arc::new(Connections::new(transport.max_connections));
    let tls = transport.tls.clone().map(TlsAcceptor::from);
    tokio::pin!(shutdown);
    loop {
        let (stream, place) = tokio::select! {
            accepted = accept(&listener, &connections) => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let (runtime, connections, telemetry) = (runtime.clone(), connections.clone(), telemetry.clone());
        let body_timeout = transport.body_timeout;
        let activity = place.activity.clone();
        let from_loopback = stream.peer_addr().is_ok_and(|peer| peer.ip().to_canonical().is_loopback());
        let console = console.clone();
        let service = service_fn(move |request: hyper::Request<Incoming>| {
            let (runtime, telemetry, busy) = (runtime.clone(), telemetry.clone(), connections.busy(&activity));
            let console = console.clone().filter(|_| console::serves(request.uri().path()));
            async move {
                let response = match console {
                    Some(console) => console.answer(request, from_loopback).await,
                    None => answer(&runtime, &telemetry, request, body_timeout).await,
                };
                drop(busy);
                Ok::<_, Infallible>(to_hyper(response))
            }
        });
        let mut http1 = http1::Builder::new();
        http1.keep_alive(true).timer(TokioTimer::new()).header_read_timeout(transport.header_timeout);
        let (tls, header_timeout) = (tls.clone(), transport.header_timeout);
        tokio::spawn(async move {
            // The place is held until the connection ends.
            let place = place;
            let Some(tls) = tls else {
                return drive(http1.serve_connection(TokioIo::new(stream), service), &place, None).await;
            };
            let stream = tokio::select! {
                stream = tokio::time::timeout(header_timeout, handshake(&tls, stream)) => match stream {
                    Ok(Some(stream)) => stream,
                    _ => return,
                },
                () = place.activity.close.notified() => return,
            };
            if stream.get_ref().1.alpn_protocol() == Some(b"h2") {
                let mut http2 = http2::Builder::new(TokioExecutor::new());
                // Room for the request's own check of its headers, which answers 431.
                http2.timer(TokioTimer::new()).max_header_list_size(2 * MAX_HEADER_BYTES as u32);
                // HTTP/2 has no header timeout of its own: an idle connection is closed here.
                drive(http2.serve_connection(TokioIo::new(stream), service), &place, Some(header_timeout)).await;
            } else {
                drive(http1.serve_connection(TokioIo::new(stream), service), &place, None).await;
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(transport.drain_timeout, connections.close_all()).await.is_err() {
        tracing::warn!("gave up waiting for open connections after {:?}", transport.drain_timeout);
    }
}

/// Serves a connection until it ends, is asked to close (to make room, or at shutdown) or has
/// been idle for `idle_limit`; then an idle connection closes at once, and requests in progress
/// are answered first.
async fn drive<C: GracefulConnection>(connection: C, place: &Place, idle_limit: Option<Duration>) {
    tokio::pin!(connection);
    loop {
        let idle_left = match (idle_limit, place.idle_for()) {
            (Some(limit), Some(idle)) if idle >= limit => break,
            (Some(limit), idle) => Some(limit - idle.unwrap_or_default()),
            (None, _) => None,
        };
        tokio::select! {
            _ = connection.as_mut() => return,
            () = place.activity.close.notified() => break,
            () = tokio::time::sleep(idle_left.unwrap_or_default()), if idle_left.is_some() => {}
        }
    }
    connection.as_mut().graceful_shutdown();
    let _ = connection.await;
}

/// The TLS session, or `None` when the handshake fails or the client spoke plain HTTP; that one is
/// told so in plain HTTP, as Go's and nginx's servers do, rather than left with a closed socket.
async fn handshake(tls: &TlsAcceptor, mut stream: TcpStream) -> Option<TlsStream<TcpStream>> {
    let mut first = [0u8];
    // Every TLS connection opens with a handshake record, content type 22.
    if stream.peek(&mut first).await.ok()? == 1 && first[0] != 22 {
        let _ = stream.write_all(PLAIN_HTTP_ON_TLS).await;
        let _ = stream.shutdown().await;
        // Read what the client sent, so that closing does not reset the connection (and the
        // answer with it) before the client has read it.
        let _ = tokio::io::copy(&mut (&mut stream).take(MAX_HEADER_BYTES as u64), &mut tokio::io::sink()).await;
        return None;
    }
    tls.accept(stream).await.ok()
}

const PLAIN_HTTP_ON_TLS: &[u8] = b"HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\nconnection: close\r\n\
    content-length: 52\r\n\r\nThis server speaks HTTPS: use an https:// endpoint.\n";

/// The next connection with its place among the open ones (at the cap, once the connection idle
/// for longest has made room).
async fn accept(listener: &TcpListener, connections: &Arc<Connections>) -> std::io::Result<(TcpStream, Place)> {
    let (stream, _) = listener.accept().await?;
    Ok((stream, connections.place().await))
}

/// Serves only the operators' paths of `telemetry` (`/ready`, `/metrics`) and liveness (`GET /`),
/// forever: an address of their own, kept from the API's clients.
pub async fn serve_admin(listener: TcpListener, telemetry: Telemetry) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!("accept failed on the admin address: {e}");
                continue;
            }
        };
        let telemetry = telemetry.clone();
        let service = service_fn(move |request: hyper::Request<Incoming>| {
            let path = request.uri().path_and_query().map_or("/", |p| p.as_str()).to_string();
            let request = Request { method: request.method().to_string(), path, ..Request::default() };
            let response = telemetry.answer(&request).unwrap_or_else(|| match request.path.as_str() {
                "/" => Response { status: 200, headers: Vec::new(), body: b"healthy: dynabox".to_vec() },
                _ => Response { status: 404, headers: Vec::new(), body: Vec::new() },
            });
            async move { Ok::<_, Infallible>(to_hyper(response)) }
        });
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(10))
            .serve_connection(TokioIo::new(stream), service);
        tokio::spawn(connection);
    }
}

/// What answered a request: the transport or the front door by itself, or the API (in `elapsed`).
enum Answer {
    Transport(Response),
    Api(Handled, Duration),
}

/// Every response leaves through the front door's last step, the transport's own answers too.
/// A request (but an operator's) runs in its span and may get an access log line; an API request
/// (a `POST`) is counted in the metrics.
async fn answer(
    runtime: &Runtime,
    telemetry: &Telemetry,
    request: hyper::Request<Incoming>,
    body_timeout: Duration,
) -> Response {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(name, value)| (name.as_str().to_string(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
        .collect();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    let request = Request { method: parts.method.to_string(), path, headers, body: Vec::new() };
    let reply = Reply::to(&request);
    if let Some(response) = telemetry.answer(&request) {
        return reply.finish(response);
    }
    let api = request.method == "POST";
    let request_id = request_id();
    let operation = known_operation(&request).unwrap_or("");
    let span = tracing::info_span!("request", %request_id, operation, account = Empty, table = Empty);
    let answered = respond(runtime, &parts, request, body, body_timeout, request_id).instrument(span.clone()).await;
    let _entered = span.enter();
    let (response, error) = match answered {
        Answer::Transport(response) => (response, None),
        Answer::Api(handled, elapsed) => {
            if api {
                observe(telemetry, operation, &handled, elapsed);
            }
            (handled.response, handled.report.error)
        }
    };
    let response = reply.finish(response);
    if telemetry.access_log {
        tracing::info!(
            target: "dynabox::access",
            method = %parts.method,
            path = parts.uri.path(),
            status = response.status,
            error = error.as_deref(),
            bytes = response.body.len(),
            elapsed_ms = started.elapsed().as_micros() as f64 / 1000.0,
        );
    }
    response
}

/// Counts an API request and notes on its span what the handler reported.
fn observe(telemetry: &Telemetry, operation: &'static str, handled: &Handled, elapsed: Duration) {
    let report = &handled.report;
    Metrics::global().request(operation, report, handled.response.status, elapsed);
    let span = tracing::Span::current();
    if let Some(account) = &handled.account {
        span.record("account", account.as_str());
    }
    if !report.tables.is_empty() {
        let names: Vec<&str> = report.tables.iter().map(|t| t.name.as_str()).collect();
        span.record("table", names.join(",").as_str());
    }
    if let Some(error) = &report.error {
        tracing::debug!(error = error.as_str(), status = handled.response.status, "the request failed");
    }
    if telemetry.slow_request.is_some_and(|slow| elapsed > slow) {
        tracing::warn!(elapsed_ms = elapsed.as_millis() as u64, "slow request");
    }
}

/// `request` is the head; its body is read here, unless the front door answers from the head.
async fn respond(
    runtime: &Runtime,
    parts: &Parts,
    mut request: Request,
    body: Incoming,
    body_timeout: Duration,
    request_id: String,
) -> Answer {
    let header_bytes: usize = parts.headers.iter().map(|(name, value)| name.as_str().len() + value.len()).sum();
    if header_bytes > MAX_HEADER_BYTES {
        return Answer::Transport(Response {
            status: 431,
            headers: vec![("x-amzn-requestid".into(), request_id)],
            body: Vec::new(),
        });
    }
    // Held until the request is answered: the body, as read and as decoded.
    let mut held = Reservation::default();
    if !front_door::is_preflight(&request) {
        if parts.uri.path() != "/" {
            // DynamoDB serves its API at the root only.
            return Answer::Transport(Response {
                status: 404,
                headers: vec![("x-amzn-requestid".into(), request_id)],
                body: Vec::new(),
            });
        }
        // The body is read within the server's memory budget: its announced length, or the most a
        // body may be when it comes in chunks.
        let announced = request.header("content-length").and_then(|v| v.parse::<usize>().ok());
        runtime.memory_budget().reserve(&mut held, announced.unwrap_or(MAX_BODY_BYTES).min(MAX_BODY_BYTES + 1)).await;
        // Read at most one byte past the limit: enough to know the body is too large.
        request.body = match tokio::time::timeout(body_timeout, Limited::new(body, MAX_BODY_BYTES).collect()).await {
            Ok(Ok(collected)) => collected.to_bytes().to_vec(),
            Ok(Err(_)) => return Answer::Transport(error_response(&request_too_large(), request_id)),
            // Nothing to answer: the client stopped sending.
            Err(_) => return Answer::Transport(Response { status: 408, headers: Vec::new(), body: Vec::new() }),
        };
    }
    // HEAD answers as GET does, without the body (hyper leaves it out).
    if request.method == "HEAD" {
        request.method = "GET".into();
    }
    let sent_bytes = request.body.len();
    let request = match front_door::receive(request) {
        Step::Run(request) => request,
        Step::Answer(response) => return Answer::Transport(response),
    };
    if request.body.len() > sent_bytes {
        // A decoded body takes the place of the bytes sent, and may be larger.
        runtime.memory_budget().reserve(&mut held, request.body.len() - sent_bytes).await;
    }
    let _large = (request.body.len() >= LARGE_BODY_BYTES).then(LargeBody::start);
    let started = Instant::now();
    let handled = runtime.handle(request, request_id).await;
    Answer::Api(handled, started.elapsed())
}

/// Bodies from this size on count as large (see [`LargeBody`]).
const LARGE_BODY_BYTES: usize = 1 << 20;
static LARGE_BODIES_IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// A request with a large body, in flight. glibc keeps the memory a burst of them freed (after 24
/// requests of 12 MB at once the server held 386 MB instead of 27), so when the last one of a burst
/// ends, free memory is handed back to the system.
struct LargeBody;

impl LargeBody {
    fn start() -> LargeBody {
        LARGE_BODIES_IN_FLIGHT.fetch_add(1, Ordering::Relaxed);
        LargeBody
    }
}

impl Drop for LargeBody {
    fn drop(&mut self) {
        if LARGE_BODIES_IN_FLIGHT.fetch_sub(1, Ordering::Relaxed) == 1 {
            #[cfg(all(target_os = "linux", target_env = "gnu"))]
            // SAFETY: malloc_trim only returns free pages; it takes the allocator's own locks.
            tokio::task::spawn_blocking(|| unsafe { libc::malloc_trim(0) });
        }
    }
}

fn to_hyper(response: Response) -> hyper::Response<Full<Bytes>> {
    let mut builder = hyper::Response::builder().status(response.status).header("server", "dynabox");
    for (name, value) in &response.headers {
        builder = builder.header(name, value);
    }
    builder.body(Full::new(Bytes::from(response.body))).unwrap_or_else(|_| {
        let mut fallback = hyper::Response::new(Full::new(Bytes::new()));
        *fallback.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
        fallback
    })
}
