//! HTTP/1.1 with keep-alive in front of the runtime: the transport's rules (timeouts for slow and
//! idle clients, a cap on open connections and on header size, CORS, `HEAD`, the one path,
//! content codings both ways), and graceful shutdown that drains in-flight requests within a
//! bounded time.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use dynabox_handler::content_coding;
use dynabox_handler::http::{Request, Response};
use dynabox_handler::protocol::{MAX_BODY_BYTES, error_response, request_id, request_too_large};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::runtime::Runtime;

/// The transport's limits (`dynabox --help` says what each is for).
#[derive(Debug, Clone)]
pub struct Transport {
    /// The time a client has to send a request's headers, and an idle keep-alive connection to
    /// start its next request.
    pub header_timeout: Duration,
    /// The time a client has to send a request's body once its headers are in.
    pub body_timeout: Duration,
    /// Connections open at once; more wait in the listen backlog.
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

/// Serves until `shutdown` resolves, then stops accepting and drains open connections.
pub async fn serve(
    listener: TcpListener,
    runtime: Arc<Runtime>,
    transport: Transport,
    shutdown: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    let connections = Arc::new(Semaphore::new(transport.max_connections));
    tokio::pin!(shutdown);
    loop {
        let (stream, open) = tokio::select! {
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
        let runtime = runtime.clone();
        let body_timeout = transport.body_timeout;
        let service = service_fn(move |request| {
            let runtime = runtime.clone();
            async move { Ok::<_, Infallible>(to_hyper(answer(&runtime, request, body_timeout).await)) }
        });
        let connection = http1::Builder::new()
            .keep_alive(true)
            .timer(TokioTimer::new())
            .header_read_timeout(transport.header_timeout)
            .serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _ = connection.await;
            drop(open);
        });
    }
    drop(listener);
    if tokio::time::timeout(transport.drain_timeout, graceful.shutdown()).await.is_err() {
        eprintln!("dynabox: gave up waiting for open connections after {:?}", transport.drain_timeout);
    }
}

/// The next connection, once fewer than the maximum are open; the permit is its place.
async fn accept(
    listener: &TcpListener,
    connections: &Arc<Semaphore>,
) -> std::io::Result<(TcpStream, OwnedSemaphorePermit)> {
    let open = connections.clone().acquire_owned().await.expect("the semaphore is never closed");
    let (stream, _) = listener.accept().await?;
    Ok((stream, open))
}

async fn answer(runtime: &Runtime, request: hyper::Request<Incoming>, body_timeout: Duration) -> Response {
    let (parts, body) = request.into_parts();
    let method = parts.method.as_str();
    let path = parts.uri.path();
    let header_bytes: usize = parts.headers.iter().map(|(name, value)| name.as_str().len() + value.len()).sum();
    if header_bytes > MAX_HEADER_BYTES {
        return Response { status: 431, headers: vec![("x-amzn-requestid".into(), request_id())], body: Vec::new() };
    }
    if method == "OPTIONS" {
        return preflight(&parts.headers);
    }
    if path != "/" {
        // DynamoDB serves its API at the root only.
        return Response { status: 404, headers: vec![("x-amzn-requestid".into(), request_id())], body: Vec::new() };
    }
    // Read at most one byte past the limit: enough to know the body is too large.
    let body = match tokio::time::timeout(body_timeout, Limited::new(body, MAX_BODY_BYTES).collect()).await {
        Ok(Ok(collected)) => collected.to_bytes().to_vec(),
        Ok(Err(_)) => return error_response(&request_too_large(), request_id()),
        // Nothing to answer: the client stopped sending.
        Err(_) => return Response { status: 408, headers: Vec::new(), body: Vec::new() },
    };
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(name, value)| (name.as_str().to_string(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
        .collect();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    // HEAD answers as GET does, without the body (hyper leaves it out).
    let method = if method == "HEAD" { "GET" } else { method };
    let mut request = Request { method: method.to_string(), path, headers, body };
    if let Err(error) = content_coding::decode_request_body(&mut request) {
        return error_response(&error, request_id());
    }
    let _large = (request.body.len() >= LARGE_BODY_BYTES).then(LargeBody::start);
    let mut response = runtime.handle(request).await;
    let accepted = parts.headers.get("accept-encoding").and_then(|v| v.to_str().ok());
    content_coding::encode_response(accepted, &mut response);
    response
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

/// A CORS preflight: any origin may call the API from a browser, with the headers it asks for.
fn preflight(headers: &hyper::HeaderMap) -> Response {
    let requested = headers.get("access-control-request-headers").and_then(|v| v.to_str().ok()).unwrap_or("*");
    Response {
        status: 200,
        headers: vec![
            ("access-control-allow-methods".into(), "GET, POST, OPTIONS".into()),
            ("access-control-allow-headers".into(), requested.to_string()),
            ("access-control-max-age".into(), "172800".into()),
            ("x-amzn-requestid".into(), request_id()),
        ],
        body: Vec::new(),
    }
}

fn to_hyper(response: Response) -> hyper::Response<Full<Bytes>> {
    let mut builder = hyper::Response::builder()
        .status(response.status)
        .header("server", "dynabox")
        .header("access-control-allow-origin", "*")
        .header("access-control-expose-headers", "x-amzn-RequestId, x-amz-crc32");
    for (name, value) in &response.headers {
        builder = builder.header(name, value);
    }
    builder.body(Full::new(Bytes::from(response.body))).unwrap_or_else(|_| {
        let mut fallback = hyper::Response::new(Full::new(Bytes::new()));
        *fallback.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
        fallback
    })
}
