//! HTTPS against the real binary, with real TLS clients (rustls) that trust only the server's
//! certificate: DynamoDB calls over HTTP/1.1 keep-alive and HTTP/2, plain HTTP and strangers
//! refused, the handshake and idle HTTP/2 connections bounded by the header timeout, certificates
//! replaced without a restart, and the self-signed certificate made once and kept.

mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use support::{Server, Store, raw_request, signed_headers, temp_dir};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// A certificate (PEM) and its key, self-signed, for the names the tests connect to.
struct Pair {
    cert: String,
    key: String,
}

impl Pair {
    fn new() -> Pair {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .expect("a certificate");
        Pair { cert: made.cert.pem(), key: made.signing_key.serialize_pem() }
    }

    fn der(&self) -> Vec<u8> {
        CertificateDer::from_pem_slice(self.cert.as_bytes()).expect("PEM").to_vec()
    }

    /// Puts the pair where the server reads it, each file replaced whole (written beside, then
    /// renamed), as renewal tools do.
    fn install(&self, dir: &Path) {
        install(&dir.join("cert.pem"), &self.cert);
        install(&dir.join("key.pem"), &self.key);
    }
}

fn install(path: &Path, contents: &str) {
    let beside = path.with_extension("new");
    std::fs::write(&beside, contents).unwrap();
    std::fs::rename(&beside, path).unwrap();
}

fn tls_flags(dir: &Path) -> Vec<String> {
    let path = |name: &str| dir.join(name).display().to_string();
    vec!["--tls-cert".into(), path("cert.pem"), "--tls-key".into(), path("key.pem")]
}

fn start(dir: &Path, extra: &[&str]) -> Server {
    let flags = tls_flags(dir);
    let mut args: Vec<&str> = flags.iter().map(String::as_str).collect();
    args.extend_from_slice(extra);
    let server = Server::start_with(&Store::InMemory, &args);
    assert_eq!(server.scheme, "https");
    server
}

/// A TLS connection to the server that trusts only `trusted` (PEM) and offers `alpn`.
async fn connect(server: &Server, name: &str, trusted: &str, alpn: &[&[u8]]) -> std::io::Result<TlsStream<TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(trusted.as_bytes()) {
        roots.add(cert.expect("PEM")).expect("a trust anchor");
    }
    let mut config =
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let tcp = TcpStream::connect(&server.address).await?;
    TlsConnector::from(Arc::new(config)).connect(ServerName::try_from(name.to_string()).unwrap(), tcp).await
}

/// The certificate the server presented.
fn presented(stream: &TlsStream<TcpStream>) -> Vec<u8> {
    stream.get_ref().1.peer_certificates().expect("a certificate")[0].to_vec()
}

fn dynamodb_call(target: &str, body: &str) -> hyper::Request<Full<Bytes>> {
    // HTTP/2 takes its :scheme and :authority from the URI.
    let mut request = hyper::Request::post("https://localhost/");
    for (name, value) in signed_headers(target) {
        request = request.header(name, value);
    }
    request.header("host", "localhost").body(Full::new(Bytes::from(body.to_string()))).unwrap()
}

async fn body_text(response: hyper::Response<hyper::body::Incoming>) -> String {
    String::from_utf8(response.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn dynamodb_over_https_on_keep_alive_http1_and_on_http2() {
    let dir = temp_dir("tls-calls");
    let pair = Pair::new();
    pair.install(&dir);
    let server = start(&dir, &[]);

    // HTTP/1.1: one connection carries every call.
    let stream = connect(&server, "localhost", &pair.cert, &[b"http/1.1"]).await.expect("handshake");
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let (mut sender, connection) = http1::handshake(TokioIo::new(stream)).await.unwrap();
    let connection = tokio::spawn(connection);
    let table = support::unique("tls");
    let create = format!(
        r#"{{"TableName":"{table}","BillingMode":"PAY_PER_REQUEST","KeySchema":[{{"AttributeName":"k","KeyType":"HASH"}}],"AttributeDefinitions":[{{"AttributeName":"k","AttributeType":"S"}}]}}"#
    );
    let put = format!(r#"{{"TableName":"{table}","Item":{{"k":{{"S":"a"}},"v":{{"N":"1"}}}}}}"#);
    let get = format!(r#"{{"TableName":"{table}","Key":{{"k":{{"S":"a"}}}}}}"#);
    for (target, body) in [("CreateTable", &create), ("PutItem", &put), ("GetItem", &get)] {
        // Ready again once the previous exchange is done, as long as the server keeps it open.
        sender.ready().await.expect("the connection is kept alive");
        let response =
            sender.send_request(dynamodb_call(target, body)).await.expect("an answer on the same connection");
        assert_eq!(response.status(), 200, "{target}");
        let text = body_text(response).await;
        if target == "GetItem" {
            assert!(text.contains(r#""v":{"N":"1"}"#), "{text}");
        }
    }
    drop(sender);
    connection.await.unwrap().unwrap();

    // HTTP/2 for a client that asks for it: calls at once on one connection.
    let stream = connect(&server, "127.0.0.1", &pair.cert, &[b"h2", b"http/1.1"]).await.expect("handshake");
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, connection) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await.unwrap();
    tokio::spawn(connection);
    sender.ready().await.expect("an HTTP/2 connection");
    let calls = (0..8).map(|_| {
        let mut sender = sender.clone();
        let get = get.clone();
        async move { sender.send_request(dynamodb_call("GetItem", &get)).await.expect("an answer") }
    });
    for response in futures_util::future::join_all(calls).await {
        assert_eq!((response.version(), response.status()), (hyper::Version::HTTP_2, hyper::StatusCode::OK));
        assert!(body_text(response).await.contains(r#""v":{"N":"1"}"#));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_http_slow_handshakes_idle_http2_and_other_certificates_are_refused() {
    let dir = temp_dir("tls-refused");
    let pair = Pair::new();
    pair.install(&dir);
    let server = start(&dir, &["--header-timeout-ms", "300"]);

    let plain = raw_request(&server.address, "GET", &[], b"");
    assert_eq!(plain.status, 400);
    assert!(plain.body.contains("https://"), "{}", plain.body);

    let stranger = Pair::new();
    let refused = connect(&server, "localhost", &stranger.cert, &[]).await;
    assert!(refused.is_err(), "a client that trusts another certificate does not get through");

    // A handshake begun and never finished is cut off like headers that never end.
    let mut stalled = TcpStream::connect(&server.address).await.unwrap();
    stalled.write_all(&[22, 3, 1]).await.unwrap();
    let started = Instant::now();
    let mut sink = Vec::new();
    let read =
        tokio::time::timeout(Duration::from_secs(5), tokio::io::AsyncReadExt::read_to_end(&mut stalled, &mut sink));
    assert!(read.await.is_ok(), "the stalled handshake was closed");
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());

    // An HTTP/2 connection left idle after a request is closed too.
    let stream = connect(&server, "localhost", &pair.cert, &[b"h2"]).await.expect("handshake");
    let (mut sender, connection) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await.unwrap();
    let connection = tokio::spawn(connection);
    sender.ready().await.expect("an HTTP/2 connection");
    let health = hyper::Request::get("https://localhost/").body(Full::new(Bytes::new())).unwrap();
    assert_eq!(sender.send_request(health).await.unwrap().status(), 200);
    let closed = tokio::time::timeout(Duration::from_secs(5), connection).await;
    assert!(closed.is_ok(), "the idle HTTP/2 connection was closed");
}

/// Connects trusting `pair` until the server presents it, for at most `within`.
async fn presents_within(server: &Server, pair: &Pair, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Ok(stream) = connect(server, "localhost", &pair.cert, &[]).await {
            return presented(&stream) == pair.der();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replaced_certificate_is_served_without_a_restart() {
    let dir = temp_dir("tls-reload");
    let first = Pair::new();
    first.install(&dir);
    let server = start(&dir, &[]);
    assert!(presents_within(&server, &first, Duration::from_secs(1)).await);

    // SIGHUP: at once (the files are otherwise looked at every 5 s, the first time 5 s after start).
    let second = Pair::new();
    second.install(&dir);
    server.hang_up();
    assert!(presents_within(&server, &second, Duration::from_secs(2)).await, "served after SIGHUP");

    // A pair that does not load leaves the served one in place: a file that is no certificate,
    // then a certificate with another's key.
    install(&dir.join("cert.pem"), "not a certificate");
    server.hang_up();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(presents_within(&server, &second, Duration::from_secs(1)).await, "still served");
    let third = Pair::new();
    install(&dir.join("cert.pem"), &third.cert);
    server.hang_up();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(presents_within(&server, &second, Duration::from_secs(1)).await, "still served");

    // Without a signal: the change is noticed within the 5 s between looks.
    third.install(&dir);
    assert!(presents_within(&server, &third, Duration::from_secs(12)).await, "served after the files changed");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_self_signed_certificate_is_made_once_and_kept() {
    let dir = temp_dir("tls-self-signed");
    let (cert, key): (PathBuf, PathBuf) = (dir.join("cert.pem"), dir.join("key.pem"));
    let mut flags = tls_flags(&dir);
    flags.push("--tls-self-signed".into());
    let args: Vec<&str> = flags.iter().map(String::as_str).collect();

    let server = Server::start_with(&Store::InMemory, &args);
    let made = std::fs::read_to_string(&cert).expect("the certificate was made");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600, "the key is private");
    // The certificate is its own trust anchor, for each name a local client uses.
    for name in ["localhost", "127.0.0.1"] {
        let stream = connect(&server, name, &made, &[]).await.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(presented(&stream), CertificateDer::from_pem_slice(made.as_bytes()).unwrap().to_vec());
    }
    assert!(server.terminate());

    let again = Server::start_with(&Store::InMemory, &args);
    assert_eq!(std::fs::read_to_string(&cert).unwrap(), made, "kept, not made again");
    connect(&again, "localhost", &made, &[]).await.expect("still trusted");
}
