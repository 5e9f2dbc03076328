//! The HTTP front door against the real binary: slow and idle clients are cut off, shutdown is
//! bounded, the HTTP conventions DynamoDB clients and browsers rely on hold, and a database
//! outage is answered without the database's words.

mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
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

/// A TCP proxy to PostgreSQL that the test can cut and restore: a database outage without
/// touching the shared server.
struct Outage {
    address: String,
    up: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Outage {
    fn start(upstream: &str) -> Outage {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let (up, open) = (Arc::new(AtomicBool::new(true)), Arc::new(Mutex::new(Vec::<TcpStream>::new())));
        let (upstream, accepting, tracked) = (upstream.to_string(), up.clone(), open.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if !accepting.load(Ordering::SeqCst) {
                    continue; // dropped: the connection is refused
                }
                let Ok(server) = TcpStream::connect(&upstream) else { continue };
                tracked.lock().unwrap().extend([client.try_clone().unwrap(), server.try_clone().unwrap()]);
                for (mut from, mut to) in [(client.try_clone().unwrap(), server.try_clone().unwrap()), (server, client)]
                {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(Shutdown::Both);
                    });
                }
            }
        });
        Outage { address, up, open }
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for stream in self.open.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

#[test]
fn a_database_outage_is_a_retryable_error_without_internals_and_passes() {
    let Some(Store::Postgres(url)) = support::stores().into_iter().find(|s| matches!(s, Store::Postgres(_))) else {
        return; // stores() already failed the run if PostgreSQL is required
    };
    let host_port = url.split('@').nth(1).and_then(|rest| rest.split('/').next()).expect("host:port in DATABASE_URL");
    let outage = Outage::start(host_port);
    let proxied = url.replacen(host_port, &outage.address, 1);
    let server = Server::start_with(&Store::Postgres(proxied), &["--storage-timeout-ms", "2000"]);
    let list = || {
        let headers = support::signed_headers("ListTables");
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        raw_request(&server.address, "POST", &headers, b"{}")
    };
    assert_eq!(list().status, 200);
    outage.cut();
    let failed = list();
    assert_eq!(failed.status, 500, "{}", failed.body);
    assert!(failed.body.contains("InternalServerError"), "{}", failed.body);
    for internal in ["postgres", "db error", "connection", "127.0.0.1"] {
        assert!(!failed.body.to_lowercase().contains(internal), "{internal} in {}", failed.body);
    }
    outage.restore();
    let started = Instant::now();
    while list().status != 200 {
        assert!(started.elapsed() < Duration::from_secs(10), "the server reconnects by itself");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// CreateTable's body for an on-demand table with the string hash key `pk`.
fn create_table_body(table: &str) -> String {
    format!(
        r#"{{"TableName":"{table}","KeySchema":[{{"AttributeName":"pk","KeyType":"HASH"}}],"AttributeDefinitions":[{{"AttributeName":"pk","AttributeType":"S"}}],"BillingMode":"PAY_PER_REQUEST"}}"#
    )
}

/// One raw DynamoDB call signed (open mode: not checked) with access key `key`.
fn call_as(address: &str, key: &str, target: &str, body: &str) -> support::RawResponse {
    let headers = support::signed_headers(target);
    let headers: Vec<(&str, String)> = headers
        .into_iter()
        .map(|(name, value)| (name, value.replace("Credential=test-key/", &format!("Credential={key}/"))))
        .collect();
    let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    raw_request(address, "POST", &headers, body.as_bytes())
}

/// The latencies of `count` GetItems by key `calm`, one after another, sorted; each must succeed.
fn calm_reads(address: &str, table: &str, count: usize) -> Vec<Duration> {
    let get = format!(r#"{{"TableName":"{table}","Key":{{"pk":{{"S":"k1"}}}}}}"#);
    let mut latencies: Vec<Duration> = (0..count)
        .map(|_| {
            let started = Instant::now();
            let response = call_as(address, "calm", "GetItem", &get);
            assert_eq!(response.status, 200, "{}", response.body);
            started.elapsed()
        })
        .collect();
    latencies.sort();
    latencies
}

#[test]
fn one_keys_flood_of_scans_leaves_room_for_another_keys_reads() {
    let server = Server::start_with(&Store::InMemory, &["--key-concurrency", "2"]);
    let address = server.address.clone();
    let table = support::unique("flooded");
    assert_eq!(call_as(&address, "setup", "CreateTable", &create_table_body(&table)).status, 200);
    let padding = "p".repeat(400);
    for batch in 0..80 {
        let puts: Vec<String> = (0..25)
            .map(|i| {
                format!(
                    r#"{{"PutRequest":{{"Item":{{"pk":{{"S":"k{}"}},"filler":{{"S":"{padding}"}}}}}}}}"#,
                    batch * 25 + i
                )
            })
            .collect();
        let body = format!(r#"{{"RequestItems":{{"{table}":[{}]}}}}"#, puts.join(","));
        assert_eq!(call_as(&address, "setup", "BatchWriteItem", &body).status, 200);
    }
    let quiet = calm_reads(&address, &table, 50);

    let flooding = Arc::new(AtomicBool::new(true));
    let scan = format!(
        r#"{{"TableName":"{table}","FilterExpression":"filler = :none","ExpressionAttributeValues":{{":none":{{"S":"x"}}}}}}"#
    );
    let floods: Vec<_> = (0..24)
        .map(|_| {
            let (address, scan, flooding) = (address.clone(), scan.clone(), flooding.clone());
            std::thread::spawn(move || {
                let (mut done, mut throttled) = (0, 0);
                while flooding.load(Ordering::SeqCst) {
                    let response = call_as(&address, "flood", "Scan", &scan);
                    match response.status {
                        200 => done += 1,
                        _ if response.body.contains("ThrottlingException") => throttled += 1,
                        status => panic!("flood got {status}: {}", response.body),
                    }
                }
                (done, throttled)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let flooded = calm_reads(&address, &table, 100);
    flooding.store(false, Ordering::SeqCst);
    let (done, throttled) = floods.into_iter().map(|f| f.join().unwrap()).fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    assert!(throttled > 0, "a flood beyond its key's share is throttled");
    assert!(done > 0, "the flood's share still runs");
    let p =
        |latencies: &[Duration], q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    eprintln!(
        "calm GetItem p50/p99: alone {:?}/{:?}; beside 24 connections of filtered scans ({done} done, {throttled} throttled) {:?}/{:?}",
        p(&quiet, 0.5),
        p(&quiet, 0.99),
        p(&flooded, 0.5),
        p(&flooded, 0.99)
    );
}

#[test]
fn a_million_tiny_list_elements_get_a_quick_400_and_change_nothing() {
    let server = Server::start(&Store::InMemory);
    let table = support::unique("dense");
    assert_eq!(call_as(&server.address, "writer", "CreateTable", &create_table_body(&table)).status, 200);
    let elements = vec![r#"{"S":"a"}"#; 1_200_000].join(",");
    let put = format!(r#"{{"TableName":"{table}","Item":{{"pk":{{"S":"big"}},"list":{{"L":[{elements}]}}}}}}"#);
    assert!(put.len() > 12_000_000);
    // Several at once: each would have taken the sandbox's whole memory as a JSON tree.
    let answers: Vec<support::RawResponse> = std::thread::scope(|scope| {
        let calls: Vec<_> =
            (0..4).map(|_| scope.spawn(|| call_as(&server.address, "writer", "PutItem", &put))).collect();
        calls.into_iter().map(|call| call.join().unwrap()).collect()
    });
    for answer in answers {
        assert_eq!(answer.status, 400, "{}", answer.body);
        assert!(answer.body.contains("ValidationException"), "{}", answer.body);
        assert!(answer.body.contains("Item size has exceeded the maximum allowed size"), "{}", answer.body);
    }
    let scan = call_as(&server.address, "writer", "Scan", &format!(r#"{{"TableName":"{table}"}}"#));
    assert!(scan.body.contains(r#""Count":0"#), "{}", scan.body);
}

#[test]
fn compressed_request_bodies_are_decoded_and_broken_ones_refused() {
    use flate2::Compression;
    use flate2::write::{GzEncoder, ZlibEncoder};
    let server = Server::start(&Store::InMemory);
    let table = support::unique("compressed");
    let create = create_table_body(&table);
    let mut gzip = GzEncoder::new(Vec::new(), Compression::default());
    gzip.write_all(create.as_bytes()).unwrap();
    let created = call_encoded(&server.address, "CreateTable", "gzip", &gzip.finish().unwrap());
    assert_eq!(created.status, 200, "{}", created.body);

    let put = format!(r#"{{"TableName":"{table}","Item":{{"pk":{{"S":"deflated"}}}}}}"#);
    let mut zlib = ZlibEncoder::new(Vec::new(), Compression::default());
    zlib.write_all(put.as_bytes()).unwrap();
    assert_eq!(call_encoded(&server.address, "PutItem", "deflate", &zlib.finish().unwrap()).status, 200);

    let broken = call_encoded(&server.address, "PutItem", "gzip", b"\x1f\x8b not gzip at all");
    assert_eq!(broken.status, 400);
    assert!(broken.body.contains("SerializationException"), "{}", broken.body);

    let scan = call_as(&server.address, "reader", "Scan", &format!(r#"{{"TableName":"{table}"}}"#));
    assert!(scan.body.contains(r#""Count":1"#) && scan.body.contains("deflated"), "{}", scan.body);
}

#[test]
fn responses_are_compressed_for_clients_that_accept_it() {
    use flate2::read::GzDecoder;
    let server = Server::start(&Store::InMemory);
    let table = support::unique("gzipped");
    assert_eq!(call_as(&server.address, "writer", "CreateTable", &create_table_body(&table)).status, 200);
    let padding = "p".repeat(4000);
    let put = format!(r#"{{"TableName":"{table}","Item":{{"pk":{{"S":"k"}},"pad":{{"S":"{padding}"}}}}}}"#);
    assert_eq!(call_as(&server.address, "writer", "PutItem", &put).status, 200);

    let scan = format!(r#"{{"TableName":"{table}"}}"#);
    let headers = support::signed_headers("Scan");
    let mut headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let plain = raw_request(&server.address, "POST", &headers, scan.as_bytes());
    assert_eq!(plain.header("content-encoding"), None);
    headers.push(("accept-encoding", "gzip, deflate"));
    let gzipped = raw_request(&server.address, "POST", &headers, scan.as_bytes());
    assert_eq!(gzipped.header("content-encoding"), Some("gzip"));
    assert!(gzipped.body_bytes.len() < 1000, "{} bytes", gzipped.body_bytes.len());
    // DynamoDB's checksum is of the bytes on the wire.
    assert_eq!(gzipped.header("x-amz-crc32"), Some(crc32fast::hash(&gzipped.body_bytes).to_string().as_str()));
    let mut unzipped = String::new();
    GzDecoder::new(gzipped.body_bytes.as_slice()).read_to_string(&mut unzipped).unwrap();
    assert_eq!(unzipped, plain.body);
}

/// A raw call whose body is sent with `Content-Encoding: encoding`.
fn call_encoded(address: &str, target: &str, encoding: &str, body: &[u8]) -> support::RawResponse {
    let headers = support::signed_headers(target);
    let mut headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    headers.push(("content-encoding", encoding));
    raw_request(address, "POST", &headers, body)
}
