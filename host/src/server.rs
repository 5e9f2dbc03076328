//! HTTP/1.1 with keep-alive in front of the runtime: the transport's rules (timeouts for slow and
//! idle clients, a cap on open connections and on header size, `HEAD`, the one path (and the
//! console's, `/console/...`, handed to it), the memory budget for bodies) around the handler's front door (CORS, content codings both ways), and
//! graceful shutdown that drains in-flight requests within a bounded time.

mod connections;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use dynabox_handler::front_door::{self, Reply, Step};
use dynabox_handler::http::{Request, Response};
use dynabox_handler::protocol::{MAX_BODY_BYTES, error_response, request_id, request_too_large};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::http::request::Parts;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};

use crate::console::{self, Console};
use crate::runtime::{Reservation, Runtime};
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
}

impl Default for Transport {
    fn default() -> Self {
        Transport {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max_connections: 4096,
            drain_timeout: Duration::from_secs(10),
        }
    }
}

/// The most a request's headers may take.
const MAX_HEADER_BYTES: usize = 64 * 1024;

/// Serves until `shutdown` resolves, then stops accepting and drains open connections. The
/// console, when given, answers its own paths (`/console/...`); the API keeps every other.
pub async fn serve(
    listener: TcpListener,
    runtime: Arc<Runtime>,
    transport: Transport,
    console: Option<Arc<Console>>,
    shutdown: impl Future<Output = ()>,
) {
    let connections = Arc::new(Connections::new(transport.max_connections));
    tokio::pin!(shutdown);
    loop {
        let (stream, place) = tokio::select! {
            accepted = accept(&listener, &connections) => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    eprintln!("dynabox: accept failed: {e}");
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let (runtime, connections) = (runtime.clone(), connections.clone());
        let body_timeout = transport.body_timeout;
        let activity = place.activity.clone();
        let from_loopback = stream.peer_addr().is_ok_and(|peer| peer.ip().to_canonical().is_loopback());
        let console = console.clone();
        let service = service_fn(move |request: hyper::Request<Incoming>| {
            let (runtime, busy) = (runtime.clone(), connections.busy(&activity));
            let console = console.clone().filter(|_| console::serves(request.uri().path()));
            async move {
                let response = match console {
                    Some(console) => console.answer(request, from_loopback).await,
                    None => answer(&runtime, request, body_timeout).await,
                };
                drop(busy);
                Ok::<_, Infallible>(to_hyper(response))
            }
        });
        let connection = http1::Builder::new()
            .keep_alive(true)
            .timer(TokioTimer::new())
            .header_read_timeout(transport.header_timeout)
            .serve_connection(TokioIo::new(stream), service);
        tokio::spawn(async move {
            // The place is held until the connection ends.
            let place = place;
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => return,
                () = place.activity.close.notified() => {}
            }
            // Asked to close (to make room, or at shutdown): an idle connection closes now, a
            // request in progress is answered first.
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        });
    }
    drop(listener);
    if tokio::time::timeout(transport.drain_timeout, connections.close_all()).await.is_err() {
        eprintln!("dynabox: gave up waiting for open connections after {:?}", transport.drain_timeout);
    }
}

/// The next connection with its place among the open ones (at the cap, once the connection idle
/// for longest has made room).
async fn accept(listener: &TcpListener, connections: &Arc<Connections>) -> std::io::Result<(TcpStream, Place)> {
    let (stream, _) = listener.accept().await?;
    Ok((stream, connections.place().await))
}

/// Every response leaves through the front door's last step, the transport's own answers too.
async fn answer(runtime: &Runtime, request: hyper::Request<Incoming>, body_timeout: Duration) -> Response {
    let (parts, body) = request.into_parts();
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(name, value)| (name.as_str().to_string(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
        .collect();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    let request = Request { method: parts.method.to_string(), path, headers, body: Vec::new() };
    let reply = Reply::to(&request);
    reply.finish(respond(runtime, &parts, request, body, body_timeout).await)
}

/// `request` is the head; its body is read here, unless the front door answers from the head.
async fn respond(
    runtime: &Runtime,
    parts: &Parts,
    mut request: Request,
    body: Incoming,
    body_timeout: Duration,
) -> Response {
    let header_bytes: usize = parts.headers.iter().map(|(name, value)| name.as_str().len() + value.len()).sum();
    if header_bytes > MAX_HEADER_BYTES {
        return Response { status: 431, headers: vec![("x-amzn-requestid".into(), request_id())], body: Vec::new() };
    }
    // Held until the request is answered: the body, as read and as decoded.
    let mut held = Reservation::default();
    if !front_door::is_preflight(&request) {
        if parts.uri.path() != "/" {
            // DynamoDB serves its API at the root only.
            return Response {
                status: 404,
                headers: vec![("x-amzn-requestid".into(), request_id())],
                body: Vec::new(),
            };
        }
        // The body is read within the server's memory budget: its announced length, or the most a
        // body may be when it comes in chunks.
        let announced = request.header("content-length").and_then(|v| v.parse::<usize>().ok());
        runtime.memory_budget().reserve(&mut held, announced.unwrap_or(MAX_BODY_BYTES).min(MAX_BODY_BYTES + 1)).await;
        // Read at most one byte past the limit: enough to know the body is too large.
        request.body = match tokio::time::timeout(body_timeout, Limited::new(body, MAX_BODY_BYTES).collect()).await {
            Ok(Ok(collected)) => collected.to_bytes().to_vec(),
            Ok(Err(_)) => return error_response(&request_too_large(), request_id()),
            // Nothing to answer: the client stopped sending.
            Err(_) => return Response { status: 408, headers: Vec::new(), body: Vec::new() },
        };
    }
    // HEAD answers as GET does, without the body (hyper leaves it out).
    if request.method == "HEAD" {
        request.method = "GET".into();
    }
    let sent_bytes = request.body.len();
    let request = match front_door::receive(request) {
        Step::Run(request) => request,
        Step::Answer(response) => return response,
    };
    if request.body.len() > sent_bytes {
        // A decoded body takes the place of the bytes sent, and may be larger.
        runtime.memory_budget().reserve(&mut held, request.body.len() - sent_bytes).await;
    }
    let _large = (request.body.len() >= LARGE_BODY_BYTES).then(LargeBody::start);
    runtime.handle(request).await
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
