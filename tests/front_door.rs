//! The HTTP front door against the real binary: slow and idle clients are cut off, shutdown is
//! bounded, and the HTTP conventions DynamoDB clients and browsers rely on hold.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::{Server, Store, raw_request};

/// Whether the server closes `stream` within `within` (reading until end of stream).
fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    stream.set_read_timeout(Some(within)).unwrap();
    let mut sink = Vec::new();
    stream.read_to_end(&mut sink).is_ok()
}

fn fast_timeouts() -> Server {
    Server::start_with(&Store::InMemory, &["--header-timeout-ms", "300", "--body-timeout-ms", "300"])
}

#[test]
fn idle_and_slow_clients_are_cut_off() {
    let server = fast_timeouts();
    let mut idle = TcpStream::connect(&server.address).unwrap();
    assert!(closed_within(&mut idle, Duration::from_secs(3)), "a connection that sends nothing is closed");

    let mut dribbling = TcpStream::connect(&server.address).unwrap();
    dribbling.write_all(b"POST / HTTP/1.1\r\nhost: x\r\n").unwrap();
    assert!(closed_within(&mut dribbling, Duration::from_secs(3)), "headers that never end are cut off");

    let mut short_body = TcpStream::connect(&server.address).unwrap();
    short_body.write_all(b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{}").unwrap();
    assert!(closed_within(&mut short_body, Duration::from_secs(3)), "a body that never ends is cut off");

    // A keep-alive connection that goes quiet after a request is closed too.
    let mut kept = TcpStream::connect(&server.address).unwrap();
    kept.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
    assert!(closed_within(&mut kept, Duration::from_secs(3)));
}

#[test]
fn sigterm_drains_within_the_drain_timeout() {
    let server = Server::start_with(&Store::InMemory, &["--header-timeout-ms", "60000", "--drain-timeout-ms", "500"]);
    let mut half_sent = TcpStream::connect(&server.address).unwrap();
    half_sent.write_all(b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{").unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    server.terminate();
    assert!(started.elapsed() < Duration::from_secs(5), "shutdown took {:?}", started.elapsed());
}

#[test]
fn http_conventions_hold() {
    let server = Server::start(&Store::InMemory);
    let get = raw_request(&server.address, "GET", &[], b"");
    assert_eq!(get.status, 200);
    assert_eq!(get.header("server"), Some("dynabox"));
    assert_eq!(get.header("access-control-allow-origin"), Some("*"));

    let head = raw_request(&server.address, "HEAD", &[], b"");
    assert_eq!((head.status, head.body.as_str()), (200, ""));

    let preflight = raw_request(
        &server.address,
        "OPTIONS",
        &[("origin", "http://localhost:3000"), ("access-control-request-headers", "x-amz-target,authorization")],
        b"",
    );
    assert_eq!(preflight.status, 200);
    assert_eq!(preflight.header("access-control-allow-origin"), Some("*"));
    assert_eq!(preflight.header("access-control-allow-headers"), Some("x-amz-target,authorization"));

    let elsewhere = support::raw_request_to(&server.address, "POST", "/tables", &[], b"{}");
    assert_eq!(elsewhere.status, 404);

    let padding = "x".repeat(100 * 1024);
    let oversized = raw_request(&server.address, "GET", &[("x-padding", &padding)], b"");
    assert_eq!(oversized.status, 431, "headers over the limit are refused");
}
