//! `dynabox-bench`: what the sandbox costs, and what the server sustains.
//!
//! Part 1 runs the same GetItem natively (the handler called in-process) and in the sandbox
//! (fresh instance per request) against the handler's in-memory reference store, and prints the difference: the
//! sandbox tax per request, then where one sandboxed request's time goes (new store, instantiate,
//! call, drop). Part 2 starts the server on each backend in this process and drives
//! PutItem and GetItem over 16 keep-alive connections, printing requests/s, p50 and p99. Part 3
//! (`--scale`) shows that a read costs what its answer costs, not what the table holds: Query (10
//! items of one partition) and GetItem on a table of 10 thousand items, then of 1 million, on each
//! backend, with the ratio of the two. Part 4 (`--contention`) is many clients on few items: 16
//! connections adding 1 to one counter (updates/s, the refused, and the counter against the
//! updates acknowledged: none may be lost), then transferring between 10 accounts with
//! TransactWriteItems (transfers/s, the cancelled, and the total, which must not change).
//!
//!     cargo run --release --bin dynabox-bench [-- --seconds 5 --database-url URL --sandbox-only --scale --contention]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use dynabox::auth::{Authenticator, LOCAL_ACCOUNT_ID};
use dynabox::runtime::{Limits, Phases, Runtime};
use dynabox::storage::{Backend, DEFAULT_WAIT_TIMEOUT};
use dynabox_handler::auth::OpenPolicy;
use dynabox_handler::http::Request;
use dynabox_handler::storage::memory::MemoryStore;
use dynabox_handler::storage::{Expect, ItemKey, Keyspace, Write};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;

const CONNECTIONS: usize = 16;
const TABLE: &str = "bench";

fn main() -> anyhow::Result<()> {
    let mut seconds = 5u64;
    let mut sandbox_only = false;
    let mut scale = false;
    let mut contention = false;
    let mut database_url = std::env::var("DATABASE_URL").ok();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => seconds = args.next().and_then(|s| s.parse().ok()).unwrap_or(seconds),
            "--database-url" => database_url = args.next(),
            "--sandbox-only" => sandbox_only = true,
            "--scale" => scale = true,
            "--contention" => contention = true,
            other => anyhow::bail!("unknown argument {other}; see the doc comment of host/src/bin/bench.rs"),
        }
    }
    sandbox_tax()?;
    if sandbox_only {
        return Ok(());
    }
    let duration = Duration::from_secs(seconds);
    let part: Part = match (scale, contention) {
        (true, _) => scale_part,
        (_, true) => contention_part,
        _ => load,
    };
    part("embedded (in memory)", &|| Backend::open_embedded(None, DEFAULT_WAIT_TIMEOUT), duration)?;
    let dir = std::env::temp_dir().join(format!("dynabox-bench-{}", std::process::id()));
    part("embedded (on disk)", &|| Backend::open_embedded(Some(&dir), DEFAULT_WAIT_TIMEOUT), duration)?;
    let _ = std::fs::remove_dir_all(&dir);
    match database_url {
        Some(url) => {
            part("PostgreSQL", &|| tokio_block_on(Backend::connect_postgres(&url, 16, DEFAULT_WAIT_TIMEOUT)), duration)?
        }
        None => println!("PostgreSQL: skipped (set DATABASE_URL or pass --database-url)"),
    }
    Ok(())
}

fn tokio_block_on<T>(future: impl Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime").block_on(future)
}

fn request(target: &str, body: String) -> Request {
    Request {
        method: "POST".into(),
        path: "/".into(),
        headers: vec![
            ("x-amz-target".into(), format!("DynamoDB_20120810.{target}")),
            ("x-amz-date".into(), "20240101T000000Z".into()),
            (
                "authorization".into(),
                "AWS4-HMAC-SHA256 Credential=bench/20240101/us-east-1/dynamodb/aws4_request, SignedHeaders=host;x-amz-date, Signature=00".into(),
            ),
            ("host".into(), "localhost".into()),
        ],
        body: body.into_bytes(),
    }
}

fn create_table_request() -> Request {
    request(
        "CreateTable",
        format!(
            r#"{{"TableName":"{TABLE}","KeySchema":[{{"AttributeName":"pk","KeyType":"HASH"}}],"AttributeDefinitions":[{{"AttributeName":"pk","AttributeType":"S"}}]}}"#
        ),
    )
}

fn put_request(key: usize) -> Request {
    request(
        "PutItem",
        format!(
            r#"{{"TableName":"{TABLE}","Item":{{"pk":{{"S":"user{key}"}},"name":{{"S":"Alice"}},"age":{{"N":"24"}}}}}}"#
        ),
    )
}

fn get_request(key: usize) -> Request {
    request("GetItem", format!(r#"{{"TableName":"{TABLE}","Key":{{"pk":{{"S":"user{key}"}}}}}}"#))
}

/// Part 1: the same GetItem natively and in the sandbox, on one thread.
fn sandbox_tax() -> anyhow::Result<()> {
    const ROUNDS: usize = 20_000;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    // The same store on both sides, so only the sandbox differs: the handler's reference store,
    // one copy called natively and one behind the host.
    let mut store = MemoryStore::default();
    for setup in [create_table_request(), put_request(1)] {
        assert_eq!(dynabox_handler::handle(&setup, &mut store, &mut OpenPolicy).status, 200);
    }
    let backend = Arc::new(Backend::Reference(Mutex::new(store.clone())));
    let runtime = Runtime::new(backend, Arc::new(Authenticator::Open), Limits::default())?;
    let get = get_request(1);
    assert_eq!(rt.block_on(runtime.handle(get.clone())).status, 200);

    let native = time_per_call(ROUNDS, || {
        dynabox_handler::handle(&get, &mut store, &mut OpenPolicy);
    });
    let sandboxed = time_per_call(ROUNDS, || {
        rt.block_on(runtime.handle(get.clone()));
    });
    println!("sandbox tax (GetItem, reference store, {ROUNDS} calls, one thread):");
    println!("  native handler call   {:>8.1} µs", native);
    println!("  fresh sandbox instance {:>7.1} µs", sandboxed);
    println!("  sandbox tax           {:>8.1} µs per request ({:.2}x native)", sandboxed - native, sandboxed / native);

    // The same request again, timed phase by phase (no concurrency slot: a few ns).
    let mut phases = Vec::with_capacity(ROUNDS);
    for round in 0..ROUNDS + ROUNDS / 10 {
        let (response, timed) = rt.block_on(runtime.handle_phases(get.clone()))?;
        assert_eq!(response.status, 200);
        if round >= ROUNDS / 10 {
            phases.push(timed);
        }
    }
    type Pick = fn(&Phases) -> Duration;
    let column = |pick: Pick| {
        let mut values: Vec<f64> = phases.iter().map(|p| pick(p).as_secs_f64() * 1e6).collect();
        values.sort_by(f64::total_cmp);
        (values.iter().sum::<f64>() / values.len() as f64, values[values.len() / 2], values[values.len() * 99 / 100])
    };
    let mut native_calls = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let started = Instant::now();
        dynabox_handler::handle(&get, &mut store, &mut OpenPolicy);
        native_calls.push(started.elapsed());
    }
    native_calls.sort_unstable();
    println!("  one sandboxed request, by phase      mean µs   median µs   p99 µs");
    let rows: [(&str, Pick); 5] = [
        ("new store + WasiCtx", |p| p.store),
        ("instantiate", |p| p.instantiate),
        ("call handle", |p| p.call),
        ("drop instance + store", |p| p.drop),
        ("total", |p| p.store + p.instantiate + p.call + p.drop),
    ];
    for (label, pick) in rows {
        let (mean, median, p99) = column(pick);
        println!("    {label:<30} {mean:>9.1} {median:>11.1} {p99:>8.1}");
    }
    let micros = |d: Duration| d.as_secs_f64() * 1e6;
    let native_mean = native_calls.iter().map(|d| micros(*d)).sum::<f64>() / ROUNDS as f64;
    let (native_median, native_p99) = (micros(native_calls[ROUNDS / 2]), micros(native_calls[ROUNDS * 99 / 100]));
    println!("    {:<30} {native_mean:>9.1} {native_median:>11.1} {native_p99:>8.1}", "(native handler call)");
    Ok(())
}

fn time_per_call(rounds: usize, mut call: impl FnMut()) -> f64 {
    for _ in 0..rounds / 10 {
        call(); // warm caches and the pool first
    }
    let start = Instant::now();
    for _ in 0..rounds {
        call();
    }
    start.elapsed().as_secs_f64() * 1e6 / rounds as f64
}

/// Opens the backend a part runs on.
type Open<'a> = &'a dyn Fn() -> anyhow::Result<Backend>;
/// Part 2 or 3, run on one backend: (label, open, duration of each measurement).
type Part = fn(&str, Open<'_>, Duration) -> anyhow::Result<()>;

/// A server on one backend, in this process, for parts 2 and 3.
struct BenchServer {
    rt: tokio::runtime::Runtime,
    backend: Arc<Backend>,
    runtime: Arc<Runtime>,
    address: std::net::SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<()>,
}

impl BenchServer {
    fn start(open: Open<'_>) -> anyhow::Result<BenchServer> {
        let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
        let backend = Arc::new(open()?);
        let runtime = Arc::new(Runtime::new(backend.clone(), Arc::new(Authenticator::Open), Limits::default())?);
        let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let address = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = rt.spawn(dynabox::server::serve(listener, runtime.clone(), Default::default(), async {
            let _ = stopped.await;
        }));
        Ok(BenchServer { rt, backend, runtime, address, stop, server })
    }

    fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.rt.block_on(self.server)?;
        Ok(())
    }
}

/// Part 2: the server on one backend under 16 connections, PutItem then GetItem.
fn load(label: &str, open: Open<'_>, duration: Duration) -> anyhow::Result<()> {
    let server = BenchServer::start(open)?;
    server.rt.block_on(server.runtime.handle(create_table_request()));
    // A table left by an earlier run on PostgreSQL is fine: the answer is then ResourceInUse.
    for (operation, make) in [("PutItem", put_request as fn(usize) -> Request), ("GetItem", get_request)] {
        let latencies = server.rt.block_on(drive(server.address, make, duration))?;
        report(label, operation, latencies, duration);
    }
    server.stop()
}

/// Table of part 3: partitions `p0`, `p1`, ... of [`ITEMS_PER_PARTITION`] items each.
const SCALE_TABLE: &str = "bench-scale";
const ITEMS_PER_PARTITION: usize = 10;
/// Partitions the reads pick from: the first ones, present at every size.
const READ_PARTITIONS: usize = 1000;

/// Part 3: Query and GetItem throughput with 10 thousand and with 1 million items in the table.
fn scale_part(label: &str, open: Open<'_>, duration: Duration) -> anyhow::Result<()> {
    let server = BenchServer::start(open)?;
    let name = format!("{SCALE_TABLE}-{}", std::process::id());
    let create = format!(
        r#"{{"TableName":"{name}","KeySchema":[{{"AttributeName":"pk","KeyType":"HASH"}},{{"AttributeName":"sk","KeyType":"RANGE"}}],"AttributeDefinitions":[{{"AttributeName":"pk","AttributeType":"S"}},{{"AttributeName":"sk","AttributeType":"N"}}]}}"#
    );
    anyhow::ensure!(server.rt.block_on(server.runtime.handle(request("CreateTable", create))).status == 200);
    let query = |i: usize| {
        let body = format!(
            r#"{{"TableName":"{SCALE_TABLE}-{}","KeyConditionExpression":"pk = :p","ExpressionAttributeValues":{{":p":{{"S":"p{}"}}}}}}"#,
            std::process::id(),
            i % READ_PARTITIONS
        );
        request("Query", body)
    };
    let get = |i: usize| {
        let body = format!(
            r#"{{"TableName":"{SCALE_TABLE}-{}","Key":{{"pk":{{"S":"p{}"}},"sk":{{"N":"{}"}}}}}}"#,
            std::process::id(),
            i % READ_PARTITIONS,
            i % ITEMS_PER_PARTITION
        );
        request("GetItem", body)
    };
    let mut rates = Vec::new();
    let mut loaded = 0;
    for size in [10_000, 1_000_000] {
        let started = Instant::now();
        server.rt.block_on(fill(&server.backend, &name, loaded, size))?;
        loaded = size;
        println!("{label:<22} {size} items in the table (loaded in {:.1} s)", started.elapsed().as_secs_f64());
        for (operation, make) in [("Query", &query as &(dyn Fn(usize) -> Request + Sync)), ("GetItem", &get)] {
            let latencies = server.rt.block_on(drive_with(server.address, make, duration))?;
            rates.push(latencies.len() as f64 / duration.as_secs_f64());
            report(label, operation, latencies, duration);
        }
    }
    println!(
        "{label:<22} 1M / 10k items: Query {:.2}x, GetItem {:.2}x of the throughput",
        rates[2] / rates[0],
        rates[3] / rates[1]
    );
    server.rt.block_on(server.runtime.handle(request("DeleteTable", format!(r#"{{"TableName":"{name}"}}"#))));
    server.stop()
}

/// Writes items `from..to` of the scale table straight to the store, 1000 to a write group.
async fn fill(backend: &Backend, table: &str, from: usize, to: usize) -> anyhow::Result<()> {
    use dynabox_handler::model::{AttributeValue, Number, key};
    let keyspace = Keyspace::table(table);
    let mut group = Vec::with_capacity(1000);
    for i in from..to {
        let (partition, sort) = (i / ITEMS_PER_PARTITION, i % ITEMS_PER_PARTITION);
        let pk = key::encode(&AttributeValue::S(format!("p{partition}"))).expect("S is a key type");
        let sk = key::encode(&AttributeValue::N(Number::parse(&sort.to_string()).expect("a number")))
            .expect("N is a key type");
        let document =
            format!(r#"{{"pk":{{"S":"p{partition}"}},"sk":{{"N":"{sort}"}},"payload":{{"S":"{:0>100}"}}}}"#, i);
        group.push(Write::Put {
            keyspace: keyspace.clone(),
            key: ItemKey { partition: pk, sort: sk },
            document: document.into_bytes(),
            expect: Expect::Anything,
            expires_at: None,
        });
        if group.len() == 1000 || i + 1 == to {
            backend.write(LOCAL_ACCOUNT_ID, &group).await.map_err(|e| anyhow::anyhow!("{e:?}"))?;
            group.clear();
        }
    }
    Ok(())
}

async fn drive(
    address: std::net::SocketAddr,
    make: fn(usize) -> Request,
    duration: Duration,
) -> anyhow::Result<Vec<Duration>> {
    drive_with(address, &make, duration).await
}

/// Sends `make(i)` over [`CONNECTIONS`] keep-alive connections for `duration`; every latency,
/// all answers having been 200.
async fn drive_with(
    address: std::net::SocketAddr,
    make: &(dyn Fn(usize) -> Request + Sync),
    duration: Duration,
) -> anyhow::Result<Vec<Duration>> {
    let outcomes = drive_outcomes(address, make, duration).await?;
    let failed = outcomes.iter().find(|(_, status)| *status != 200);
    anyhow::ensure!(failed.is_none(), "unexpected status {:?}", failed.map(|(_, status)| status));
    Ok(outcomes.into_iter().map(|(latency, _)| latency).collect())
}

/// As [`drive_with`], keeping every answer's status: (latency, status).
async fn drive_outcomes(
    address: std::net::SocketAddr,
    make: &(dyn Fn(usize) -> Request + Sync),
    duration: Duration,
) -> anyhow::Result<Vec<(Duration, u16)>> {
    let deadline = Instant::now() + duration;
    // The requests are made up front, so building them costs the clients nothing while timed.
    let requests: Arc<Vec<Request>> = Arc::new((0..CONNECTIONS * 1000).map(make).collect());
    let mut workers = Vec::new();
    for worker in 0..CONNECTIONS {
        let requests = requests.clone();
        workers.push(tokio::spawn(async move {
            let stream = tokio::net::TcpStream::connect(address).await?;
            let (mut sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(connection);
            let mut latencies = Vec::new();
            let mut i = 0;
            while Instant::now() < deadline {
                let request = requests[worker * 1000 + i % 1000].clone();
                let mut builder = hyper::Request::post("/");
                for (name, value) in &request.headers {
                    builder = builder.header(name, value);
                }
                let started = Instant::now();
                let response = sender.send_request(builder.body(Full::new(Bytes::from(request.body)))?).await?;
                let status = response.status();
                response.into_body().collect().await?;
                latencies.push((started.elapsed(), status.as_u16()));
                i += 1;
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut all = Vec::new();
    for worker in workers {
        all.extend(worker.await??);
    }
    Ok(all)
}

/// Part 4: contention (see the module doc) on one backend.
fn contention_part(label: &str, open: Open<'_>, duration: Duration) -> anyhow::Result<()> {
    const ACCOUNTS: usize = 10;
    let server = BenchServer::start(open)?;
    let handle = |request: Request| server.rt.block_on(server.runtime.handle(request));
    let create = |table: &str| {
        request(
            "CreateTable",
            format!(
                r#"{{"TableName":"{table}","KeySchema":[{{"AttributeName":"pk","KeyType":"HASH"}}],"AttributeDefinitions":[{{"AttributeName":"pk","AttributeType":"S"}}]}}"#
            ),
        )
    };
    let put = |table: &str, key: &str, n: i64| {
        request("PutItem", format!(r#"{{"TableName":"{table}","Item":{{"pk":{{"S":"{key}"}},"n":{{"N":"{n}"}}}}}}"#))
    };
    let read = |key: &str, table: &str| -> anyhow::Result<i64> {
        let get = format!(r#"{{"TableName":"{table}","Key":{{"pk":{{"S":"{key}"}}}},"ConsistentRead":true}}"#);
        let answer: serde_json::Value = serde_json::from_slice(&handle(request("GetItem", get)).body)?;
        Ok(answer["Item"]["n"]["N"].as_str().unwrap_or("0").parse()?)
    };
    // Fresh tables per run, so a PostgreSQL database reused across runs starts from zero.
    let (hot, bank) = (format!("bench-hot-{}", std::process::id()), format!("bench-bank-{}", std::process::id()));
    handle(create(&hot));
    handle(put(&hot, "counter", 0));
    let add = |_: usize| {
        request(
            "UpdateItem",
            format!(
                r#"{{"TableName":"{hot}","Key":{{"pk":{{"S":"counter"}}}},"UpdateExpression":"ADD n :one","ExpressionAttributeValues":{{":one":{{"N":"1"}}}}}}"#
            ),
        )
    };
    let outcomes = server.rt.block_on(drive_outcomes(server.address, &add, duration))?;
    let (done, refused) = split(outcomes);
    let counter = read("counter", &hot)?;
    let (acknowledged, lost) = (done.len(), done.len() as i64 - counter);
    report(label, "hot ADD", done, duration);
    println!(
        "{label:<22} hot ADD  {refused:?} refused; counter {counter} for {acknowledged} acknowledged: {lost} lost"
    );

    handle(create(&bank));
    for account in 0..ACCOUNTS {
        handle(put(&bank, &format!("a{account}"), 1000));
    }
    let transfer = |i: usize| {
        let (from, to) = (i % ACCOUNTS, (i / ACCOUNTS + 1 + i) % ACCOUNTS);
        let to = if to == from { (to + 1) % ACCOUNTS } else { to };
        let change = |key: usize, amount: i64| {
            format!(
                r#"{{"Update":{{"TableName":"{bank}","Key":{{"pk":{{"S":"a{key}"}}}},"UpdateExpression":"ADD n :d","ExpressionAttributeValues":{{":d":{{"N":"{amount}"}}}}}}}}"#
            )
        };
        request("TransactWriteItems", format!(r#"{{"TransactItems":[{},{}]}}"#, change(from, -1), change(to, 1)))
    };
    let outcomes = server.rt.block_on(drive_outcomes(server.address, &transfer, duration))?;
    let (done, refused) = split(outcomes);
    let total: i64 = (0..ACCOUNTS).map(|account| read(&format!("a{account}"), &bank)).sum::<anyhow::Result<_>>()?;
    report(label, "transfer", done, duration);
    println!("{label:<22} transfer {refused:?} refused; total {total} (was {})", 1000 * ACCOUNTS);
    for table in [&hot, &bank] {
        handle(request("DeleteTable", format!(r#"{{"TableName":"{table}"}}"#)));
    }
    server.stop()
}

/// The latencies of the 200s, and how many answers of each other status.
fn split(outcomes: Vec<(Duration, u16)>) -> (Vec<Duration>, std::collections::BTreeMap<u16, usize>) {
    let mut refused = std::collections::BTreeMap::new();
    let mut done = Vec::new();
    for (latency, status) in outcomes {
        match status {
            200 => done.push(latency),
            other => *refused.entry(other).or_default() += 1,
        }
    }
    (done, refused)
}

fn report(label: &str, operation: &str, mut latencies: Vec<Duration>, duration: Duration) {
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    println!(
        "{label:<22} {operation:<8} {:>8.0} req/s   p50 {:>7.0} µs   p99 {:>7.0} µs   ({CONNECTIONS} connections)",
        latencies.len() as f64 / duration.as_secs_f64(),
        at(0.50).as_secs_f64() * 1e6,
        at(0.99).as_secs_f64() * 1e6,
    );
}
