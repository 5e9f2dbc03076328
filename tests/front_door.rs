//! The HTTP front door against the real binary: slow and idle clients are cut off, shutdown is
//! bounded, the HTTP conventions DynamoDB clients and browsers rely on hold, and a database
//! outage is answered without the database's words.

mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::{Outage, Server, Store, raw_request};

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

/// A keep-alive connection that has made one request and now sits idle.
fn idle_keep_alive(address: &str) -> TcpStream {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let (mut answer, mut chunk) = (Vec::new(), [0u8; 1024]);
    while !String::from_utf8_lossy(&answer).contains("healthy: dynabox") {
        let read = stream.read(&mut chunk).expect("the health answer");
        assert!(read > 0, "closed before answering");
        answer.extend_from_slice(&chunk[..read]);
    }
    stream
}

#[test]
fn at_the_connection_cap_the_longest_idle_keep_alive_connection_makes_room() {
    let server = Server::start_with(&Store::InMemory, &["--max-connections", "2", "--header-timeout-ms", "60000"]);
    let mut oldest = idle_keep_alive(&server.address);
    std::thread::sleep(Duration::from_millis(50));
    let mut newer = idle_keep_alive(&server.address);
    // Before, a new client waited until an idle connection timed out (here a minute).
    let mut newcomer = TcpStream::connect(&server.address).unwrap();
    newcomer.write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").unwrap();
    assert!(closed_within(&mut newcomer, Duration::from_secs(5)), "the new client is served at once");
    assert!(closed_within(&mut oldest, Duration::from_secs(1)), "the longest-idle connection was closed");
    newer.set_nonblocking(true).unwrap();
    let still_open = matches!(newer.read(&mut [0u8; 1]), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
    assert!(still_open, "the other idle connection stays open");
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
    // CORS headers are for browsers, which send `Origin`; other clients get none.
    assert_eq!(get.header("access-control-allow-origin"), None);
    assert_eq!(get.header("access-control-expose-headers"), None);
    let from_page = raw_request(&server.address, "GET", &[("origin", "http://localhost:3000")], b"");
    assert_eq!(from_page.header("access-control-allow-origin"), Some("*"));

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
    let not_a_preflight = raw_request(&server.address, "OPTIONS", &[], b"");
    assert_eq!(not_a_preflight.status, 200);
    assert!(
        !not_a_preflight.headers.iter().any(|(name, _)| name.starts_with("access-control-")),
        "{:?}",
        not_a_preflight.headers
    );

    let elsewhere = support::raw_request_to(&server.address, "POST", "/tables", &[], b"{}");
    assert_eq!(elsewhere.status, 404);

    let padding = "x".repeat(100 * 1024);
    let oversized = raw_request(&server.address, "GET", &[("x-padding", &padding)], b"");
    assert_eq!(oversized.status, 431, "headers over the limit are refused");
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

/// Where [`CommitCutter`] loses a COMMIT.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Cut {
    /// The COMMIT never reaches the server: the transaction rolls back when the connection goes.
    BeforeCommit,
    /// The server commits, and the connection is cut before its answer reaches dynabox.
    AfterCommit,
}

/// A TCP proxy to PostgreSQL that follows the protocol's messages both ways, to lose the next
/// COMMIT of a pipelined write group at a chosen moment: every answer before the COMMIT's is
/// passed on, then the connection is cut. Answers are matched to statements by their Executes:
/// each gets exactly one completion (CommandComplete, or an error), whatever Syncs and Flushes the
/// client sends around them.
struct CommitCutter {
    address: String,
    armed: Arc<Mutex<Option<Cut>>>,
}

/// One proxied connection's view: prepared statements by name, and the cut it is to make.
#[derive(Default)]
struct Conversation {
    statements: std::collections::HashMap<Vec<u8>, Vec<u8>>,
    executes: usize,
    /// Completions passed on to dynabox.
    completions: usize,
    /// The cut, and how many statements (Executes, and each of a simple query) come before the
    /// COMMIT's.
    cut: Option<(Cut, usize)>,
}

/// One protocol message: its type byte and body.
fn read_message(stream: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
    let mut head = [0u8; 5];
    stream.read_exact(&mut head).ok()?;
    let length = u32::from_be_bytes(head[1..].try_into().unwrap()) as usize;
    let mut body = vec![0u8; length.checked_sub(4)?];
    stream.read_exact(&mut body).ok()?;
    Some((head[0], body))
}

/// The NUL-terminated strings at the start of a message body.
fn c_strings(body: &[u8]) -> impl Iterator<Item = &[u8]> {
    body.split(|b| *b == 0)
}

impl CommitCutter {
    fn start(upstream: &str) -> CommitCutter {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let armed = Arc::new(Mutex::new(None));
        let (upstream, next_cut) = (upstream.to_string(), armed.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(&upstream) else { continue };
                let conversation = Arc::new(Mutex::new(Conversation::default()));
                let (mut from_client, mut to_server) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let (shared, next_cut) = (conversation.clone(), next_cut.clone());
                std::thread::spawn(move || {
                    // The startup message has no type byte.
                    let mut length = [0u8; 4];
                    if from_client.read_exact(&mut length).is_err() {
                        return;
                    }
                    let mut startup = vec![0u8; u32::from_be_bytes(length) as usize - 4];
                    from_client.read_exact(&mut startup).unwrap();
                    to_server.write_all(&length).unwrap();
                    to_server.write_all(&startup).unwrap();
                    while let Some((kind, body)) = read_message(&mut from_client) {
                        let mut state = shared.lock().unwrap();
                        match kind {
                            b'P' => {
                                let mut strings = c_strings(&body);
                                let (name, query) = (strings.next().unwrap(), strings.next().unwrap());
                                state.statements.insert(name.to_vec(), query.to_vec());
                            }
                            b'B' => {
                                let statement = c_strings(&body).nth(1).unwrap();
                                if state.statements.get(statement).is_some_and(|q| q == b"COMMIT")
                                    && let Some(cut) = next_cut.lock().unwrap().take()
                                {
                                    state.cut = Some((cut, state.executes));
                                }
                            }
                            b'E' => state.executes += 1,
                            // A simple query (DDL, migrations) completes once per statement.
                            b'Q' => {
                                let query = String::from_utf8_lossy(c_strings(&body).next().unwrap_or_default());
                                state.executes += dynabox_sql::statements(&query).len();
                            }
                            _ => {}
                        }
                        if let Some((Cut::BeforeCommit, before_commit)) = state.cut {
                            // Nothing more reaches the server but a Flush: the client may not have
                            // sent the Sync that makes it send the answers before, which are passed
                            // on.
                            drop(state);
                            to_server.write_all(&[b'H', 0, 0, 0, 4]).unwrap();
                            while shared.lock().unwrap().completions < before_commit {
                                std::thread::sleep(Duration::from_millis(1));
                            }
                            let _ = to_server.shutdown(Shutdown::Both);
                            let _ = from_client.shutdown(Shutdown::Both);
                            return;
                        }
                        drop(state);
                        let mut message = vec![kind];
                        message.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
                        message.extend_from_slice(&body);
                        if to_server.write_all(&message).is_err() {
                            return;
                        }
                    }
                });
                let (mut from_server, mut to_client) = (server, client);
                std::thread::spawn(move || {
                    let mut withheld = false;
                    while let Some((kind, body)) = read_message(&mut from_server) {
                        let mut state = conversation.lock().unwrap();
                        if let Some((_, before_commit)) = state.cut
                            && state.completions == before_commit
                            && (withheld || kind != b'Z')
                        {
                            // The COMMIT's answer: the server has committed once it ends.
                            if kind == b'Z' {
                                break;
                            }
                            withheld = true;
                            continue;
                        }
                        state.completions += usize::from(matches!(kind, b'C' | b'I' | b's' | b'E'));
                        drop(state);
                        let mut message = vec![kind];
                        message.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
                        message.extend_from_slice(&body);
                        if to_client.write_all(&message).is_err() {
                            break;
                        }
                    }
                    let _ = to_client.shutdown(Shutdown::Both);
                    let _ = from_server.shutdown(Shutdown::Both);
                });
            }
        });
        CommitCutter { address, armed }
    }

    /// The next COMMIT of a pipelined group sent through the proxy is lost as `cut` says.
    fn arm(&self, cut: Cut) {
        *self.armed.lock().unwrap() = Some(cut);
    }
}

#[test]
fn a_write_whose_commit_answer_is_lost_is_answered_by_its_outcome() {
    let Some(Store::Postgres(url)) = support::stores().into_iter().find(|s| matches!(s, Store::Postgres(_))) else {
        return; // stores() already failed the run if PostgreSQL is required
    };
    let host_port = url.split('@').nth(1).and_then(|rest| rest.split('/').next()).expect("host:port in DATABASE_URL");
    let cutter = CommitCutter::start(host_port);
    let server = Server::start(&Store::Postgres(url.replacen(host_port, &cutter.address, 1)));
    let table = support::unique("commits");
    assert_eq!(call_as(&server.address, "writer", "CreateTable", &create_table_body(&table)).status, 200);
    let add = format!(
        r#"{{"TableName":"{table}","Key":{{"pk":{{"S":"counter"}}}},"UpdateExpression":"ADD n :one","ExpressionAttributeValues":{{":one":{{"N":"1"}}}},"ReturnValues":"UPDATED_NEW"}}"#
    );
    let counter = || {
        let get = format!(r#"{{"TableName":"{table}","Key":{{"pk":{{"S":"counter"}}}},"ConsistentRead":true}}"#);
        call_as(&server.address, "writer", "GetItem", &get).body
    };
    assert_eq!(call_as(&server.address, "writer", "UpdateItem", &add).status, 200);

    // Committed, though its connection was lost before the answer: a success, as told.
    cutter.arm(Cut::AfterCommit);
    let committed = call_as(&server.address, "writer", "UpdateItem", &add);
    assert_eq!(committed.status, 200, "{}", committed.body);
    assert!(committed.body.contains(r#""n":{"N":"2"}"#), "{}", committed.body);
    assert!(counter().contains(r#""n":{"N":"2"}"#), "{}", counter());

    // Never committed: a retryable failure, and nothing changed.
    cutter.arm(Cut::BeforeCommit);
    let lost = call_as(&server.address, "writer", "UpdateItem", &add);
    assert_eq!(lost.status, 500, "{}", lost.body);
    assert!(lost.body.contains("InternalServerError"), "{}", lost.body);
    assert!(counter().contains(r#""n":{"N":"2"}"#), "{}", counter());
    assert_eq!(call_as(&server.address, "writer", "UpdateItem", &add).status, 200, "the server recovers");
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

/// `call`'s answers, made `count` times at once.
fn at_once<T: Send>(count: usize, call: impl Fn() -> T + Sync) -> Vec<T> {
    std::thread::scope(|scope| {
        let calls: Vec<_> = (0..count).map(|_| scope.spawn(&call)).collect();
        calls.into_iter().map(|call| call.join().unwrap()).collect()
    })
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
    for answer in at_once(4, || call_as(&server.address, "writer", "PutItem", &put)) {
        assert_eq!(answer.status, 400, "{}", answer.body);
        assert!(answer.body.contains("ValidationException"), "{}", answer.body);
        assert!(answer.body.contains("Item size has exceeded the maximum allowed size"), "{}", answer.body);
    }
    let scan = call_as(&server.address, "writer", "Scan", &format!(r#"{{"TableName":"{table}"}}"#));
    assert!(scan.body.contains(r#""Count":0"#), "{}", scan.body);
}

#[test]
fn a_dense_member_the_operation_ignores_gets_a_4xx_not_a_trap() {
    let server = Server::start(&Store::InMemory);
    let table = support::unique("ignored");
    assert_eq!(call_as(&server.address, "reader", "CreateTable", &create_table_body(&table)).status, 200);
    let elements = vec![r#"{"S":"a"}"#; 800_000].join(",");
    let get = format!(r#"{{"TableName":"{table}","Key":{{"pk":{{"S":"k"}}}},"Unknown":[{elements}]}}"#);
    for answer in at_once(16, || call_as(&server.address, "reader", "GetItem", &get)) {
        assert_eq!(answer.status, 413, "{}", answer.body);
        assert!(answer.body.contains("RequestEntityTooLarge"), "{}", answer.body);
    }
    eprintln!("16 dense GetItems at once: peak resident {} MiB", server.peak_resident_mib());
}

/// The peak resident memory of a server with `budget_mib` while 16 PutItems of dense items
/// within the item limit (each needs tens of MiB of sandbox memory to parse) arrive at once, and
/// how many of them succeeded.
fn dense_burst(budget_mib: &str) -> (u64, usize) {
    let server = Server::start_with(&Store::InMemory, &["--memory-budget-mib", budget_mib]);
    let table = support::unique("burst");
    assert_eq!(call_as(&server.address, "writer", "CreateTable", &create_table_body(&table)).status, 200);
    let elements = vec![r#"{"N":"1"}"#; 40_000].join(",");
    let put = format!(r#"{{"TableName":"{table}","Item":{{"pk":{{"S":"k"}},"list":{{"L":[{elements}]}}}}}}"#);
    let statuses: Vec<u16> = at_once(16, || call_as(&server.address, "writer", "PutItem", &put))
        .iter()
        .map(|answer| answer.status)
        .collect();
    // A sandbox that cannot grow within the budget in time ends its request, retryably.
    assert!(statuses.iter().all(|s| [200, 500].contains(s)), "{statuses:?}");
    (server.peak_resident_mib(), statuses.iter().filter(|s| **s == 200).count())
}

#[test]
fn the_memory_budget_bounds_a_burst_of_dense_requests() {
    let (unbounded, unbounded_done) = dense_burst("65536");
    let (bounded, bounded_done) = dense_burst("192");
    eprintln!(
        "16 dense PutItems at once: peak resident {unbounded} MiB without a budget ({unbounded_done} done), \
         {bounded} MiB within 192 MiB ({bounded_done} done)"
    );
    assert_eq!(bounded_done, 16, "a burst within the budget waits, it does not fail");
    // The budget, one request over it, and what the server holds besides (code, pools, buffers).
    assert!(bounded < 192 + 96 + 160, "peak {bounded} MiB");
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
