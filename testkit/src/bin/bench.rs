//! `dynabox-bench`: what the sandbox costs, and what the server sustains.
//!
//! Part 0 starts the `dynabox` binary beside it from nothing (fresh data directory, no cache)
//! five times and prints the median time to its first answer, its idle resident memory and its size. Part 1 runs
//! the same GetItem natively (the handler called in-process) and in the sandbox
//! (fresh instance per request) against the handler's in-memory reference store, and prints the difference: the
//! sandbox tax per request, then where one sandboxed request's time goes (new store, instantiate,
//! call, drop). Part 2 starts the server on each backend in this process and drives PutItem,
//! GetItem, Query and a conditional UpdateItem over 16 keep-alive connections, printing
//! requests/s, p50 and p99; on PostgreSQL it then does the same work as plain prepared SQL over
//! 16 connections of its own and prints what share of that ceiling dynabox reaches. Part 3
//! (`--scale`) shows that a read costs what its answer costs, not what the table holds: Query (10
//! items of one partition) and GetItem on a table of 10 thousand items, then of 1 million, on each
//! backend, with the ratio of the two. Part 4 (`--contention`) is many clients on few items: 16
//! connections adding 1 to one counter (updates/s, the refused, and the counter against the
//! updates acknowledged: none may be lost), then transferring between 10 accounts with
//! TransactWriteItems (transfers/s, the cancelled, and the total, which must not change).
//!
//!     cargo build --release && cargo run --release -p dynabox-testkit [-- --seconds 5 --rounds 20000 --slots 64 --database-url URL --sandbox-only --scale --contention]
//!
//! `--rounds` sets part 1's calls and `--slots` its pool size, so that callgrind, which cannot
//! reserve 64 slots of address space, counts its instructions (see the README's Performance).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use dynabox::auth::{Authenticator, LOCAL_ACCOUNT_ID};
use dynabox::health::Readiness;
use dynabox::runtime::{Limits, Phases, Runtime};
use dynabox::server::Telemetry;
use dynabox::storage::{DEFAULT_WAIT_TIMEOUT, Store, postgres, sqlite};
use dynabox_handler::auth::OpenPolicy;
use dynabox_handler::http::Request;
use dynabox_handler::protocol::request_id;
use dynabox_handler::storage::memory::MemoryStore;
use dynabox_handler::storage::{self, Expect, ItemKey, Keyspace, Write};
use dynabox_testkit::reference::Reference;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;

const CONNECTIONS: usize = 16;
const TABLE: &str = "bench";

fn main() -> anyhow::Result<()> {
    let mut seconds = 5u64;
    let mut rounds = 20_000;
    let mut slots = Limits::default().concurrency;
    let mut sandbox_only = false;
    let mut scale = false;
    let mut contention = false;
    let mut database_url = std::env::var("DATABASE_URL").ok();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => seconds = args.next().and_then(|s| s.parse().ok()).unwrap_or(seconds),
            "--database-url" => database_url = args.next(),
            "--rounds" => rounds = args.next().and_then(|s| s.parse().ok()).unwrap_or(rounds),
            "--slots" => slots = args.next().and_then(|s| s.parse().ok()).unwrap_or(slots),
            "--sandbox-only" => sandbox_only = true,
            "--scale" => scale = true,
            "--contention" => contention = true,
            other => anyhow::bail!("unknown argument {other}; see the doc comment of testkit/src/bin/bench.rs"),
        }
    }
    if !sandbox_only {
        startup()?;
    }
    sandbox_tax(rounds, slots)?;
    if sandbox_only {
        return Ok(());
    }
    let duration = Duration::from_secs(seconds);
    let part: Part = match (scale, contention) {
        (true, _) => scale_part,
        (_, true) => contention_part,
        _ => load,
    };
    part(
        "embedded (in memory)",
        &|| Ok(Arc::new(tokio_block_on(sqlite::open(None, DEFAULT_WAIT_TIMEOUT))?)),
        duration,
    )?;
    let dir = std::env::temp_dir().join(format!("dynabox-bench-{}", std::process::id()));
    let on_disk = || Ok(Arc::new(tokio_block_on(sqlite::open(Some(&dir), DEFAULT_WAIT_TIMEOUT))?) as Arc<dyn Store>);
    part("embedded (on disk)", &on_disk, duration)?;
    let _ = std::fs::remove_dir_all(&dir);
    let Some(url) = database_url else {
        println!("PostgreSQL: skipped (set DATABASE_URL or pass --database-url)");
        return Ok(());
    };
    let served = part(
        "PostgreSQL",
        &|| Ok(Arc::new(tokio_block_on(postgres::connect(&url, 16, DEFAULT_WAIT_TIMEOUT))?)),
        duration,
    )?;
    if !(scale || contention) {
        let raw = tokio_block_on(raw_postgres(&url, duration))?;
        for ((operation, served), (_, raw)) in served.iter().zip(&raw) {
            println!(
                "PostgreSQL {operation:<10} dynabox {served:>8.0} req/s = {:>5.1} % of raw SQL",
                100.0 * served / raw
            );
        }
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

/// Part 0: the shipped binary from nothing. Starts `dynabox` (beside this benchmark) five times,
/// each on a fresh data directory with an empty home and no cache, times its first answer to
/// `GET /`, reads its resident memory once it is idle, and prints the binary's size.
fn startup() -> anyhow::Result<()> {
    const STARTS: usize = 5;
    let binary = std::env::current_exe()?.with_file_name("dynabox");
    let mut answered = Vec::with_capacity(STARTS);
    let mut resident = String::new();
    for start in 0..STARTS {
        let scratch = std::env::temp_dir().join(format!("dynabox-bench-start-{}-{start}", std::process::id()));
        std::fs::create_dir_all(&scratch)?;
        let address = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let started = Instant::now();
        let mut server = std::process::Command::new(&binary)
            .args(["--listen", &address.to_string(), "--data-dir"])
            .arg(scratch.join("data"))
            .env("HOME", &scratch)
            .env_remove("XDG_CACHE_HOME")
            .env_remove("DATABASE_URL")
            .stderr(std::process::Stdio::null())
            .spawn()?;
        while !answers_health_check(address) {
            anyhow::ensure!(started.elapsed() < Duration::from_secs(60), "{} did not answer", binary.display());
            std::thread::sleep(Duration::from_micros(200));
        }
        answered.push(started.elapsed().as_secs_f64() * 1e3);
        if start == 0 {
            std::thread::sleep(Duration::from_secs(1));
            let status = std::fs::read_to_string(format!("/proc/{}/status", server.id())).unwrap_or_default();
            let found = status.lines().find_map(|line| line.strip_prefix("VmRSS:"));
            resident = found.map_or("?", str::trim).to_string();
        }
        server.kill()?;
        server.wait()?;
        let _ = std::fs::remove_dir_all(&scratch);
    }
    answered.sort_by(f64::total_cmp);
    let size = std::fs::metadata(&binary)?.len() as f64 / (1 << 20) as f64;
    println!("start from nothing ({}, {size:.1} MiB, embedded store on disk, no cache):", binary.display());
    let (median, slowest) = (answered[STARTS / 2], answered[STARTS - 1]);
    println!("  first answer after    {median:>8.1} ms median of {STARTS}, slowest {slowest:.1} ms");
    println!("  idle resident memory  {resident:>11}");
    Ok(())
}

fn answers_health_check(address: std::net::SocketAddr) -> bool {
    use std::io::{Read, Write};
    let answer = std::net::TcpStream::connect(address).and_then(|mut stream| {
        stream.write_all(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer)?;
        Ok(answer)
    });
    answer.is_ok_and(|answer| answer.starts_with("HTTP/1.1 200"))
}

/// Part 1: the same GetItem natively and in the sandbox, on one thread.
fn sandbox_tax(rounds: usize, slots: u32) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    // The same store on both sides, so only the sandbox differs: the handler's reference store,
    // one copy called natively and one behind the host.
    let mut store = MemoryStore::default();
    for setup in [create_table_request(), put_request(1)] {
        assert_eq!(dynabox_handler::handle(&setup, &mut store, &mut OpenPolicy).status, 200);
    }
    let backend = Arc::new(Reference::new(store.clone()));
    let runtime =
        Runtime::new(backend, Arc::new(Authenticator::Open), Limits { concurrency: slots, ..Limits::default() })?;
    let get = get_request(1);
    assert_eq!(rt.block_on(runtime.handle(get.clone(), request_id())).response.status, 200);

    let native = time_per_call(rounds, || {
        dynabox_handler::handle(&get, &mut store, &mut OpenPolicy);
    });
    let sandboxed = time_per_call(rounds, || {
        rt.block_on(runtime.handle(get.clone(), request_id()));
    });
    println!("sandbox tax (GetItem, reference store, {rounds} calls, one thread):");
    println!("  native handler call   {:>8.1} µs", native);
    println!("  fresh sandbox instance {:>7.1} µs", sandboxed);
    println!("  sandbox tax           {:>8.1} µs per request ({:.2}x native)", sandboxed - native, sandboxed / native);

    // The same request again, timed phase by phase (no concurrency slot: a few ns).
    let mut phases = Vec::with_capacity(rounds);
    for round in 0..rounds + rounds / 10 {
        let (response, timed) = rt.block_on(runtime.handle_phases(get.clone()))?;
        assert_eq!(response.status, 200);
        if round >= rounds / 10 {
            phases.push(timed);
        }
    }
    type Pick = fn(&Phases) -> Duration;
    let column = |pick: Pick| {
        let mut values: Vec<f64> = phases.iter().map(|p| pick(p).as_secs_f64() * 1e6).collect();
        values.sort_by(f64::total_cmp);
        (values.iter().sum::<f64>() / values.len() as f64, values[values.len() / 2], values[values.len() * 99 / 100])
    };
    let mut native_calls = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let started = Instant::now();
        dynabox_handler::handle(&get, &mut store, &mut OpenPolicy);
        native_calls.push(started.elapsed());
    }
    native_calls.sort_unstable();
    println!("  one sandboxed request, by phase      mean µs   median µs   p99 µs");
    let rows: [(&str, Pick); 5] = [
        ("new store", |p| p.store),
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
    let native_mean = native_calls.iter().map(|d| micros(*d)).sum::<f64>() / rounds as f64;
    let (native_median, native_p99) = (micros(native_calls[rounds / 2]), micros(native_calls[rounds * 99 / 100]));
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
type Open<'a> = &'a dyn Fn() -> anyhow::Result<Arc<dyn Store>>;
/// Part 2, 3 or 4, run on one backend: (label, open, duration of each measurement); the
/// operations' requests per second.
type Part = fn(&str, Open<'_>, Duration) -> anyhow::Result<Rates>;
type Rates = Vec<(&'static str, f64)>;

/// A server on one backend, in this process, for parts 2 and 3.
struct BenchServer {
    rt: tokio::runtime::Runtime,
    backend: Arc<dyn Store>,
    runtime: Arc<Runtime>,
    address: std::net::SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<()>,
}

impl BenchServer {
    fn start(open: Open<'_>) -> anyhow::Result<BenchServer> {
        let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
        let backend = open()?;
        let runtime = Arc::new(Runtime::new(backend.clone(), Arc::new(Authenticator::Open), Limits::default())?);
        let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let address = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        // As `dynabox` serves by default: metrics counted, no access log, no console.
        let telemetry = Telemetry { readiness: Readiness::new(), metrics: true, access_log: false, slow_request: None };
        let serve = dynabox::server::serve(listener, runtime.clone(), Default::default(), telemetry, None, async {
            let _ = stopped.await;
        });
        let server = rt.spawn(serve);
        Ok(BenchServer { rt, backend, runtime, address, stop, server })
    }

    fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.rt.block_on(self.server)?;
        Ok(())
    }
}

/// Part 2: the server on one backend under 16 connections: PutItem, GetItem, Query of a 10-item
/// partition, and UpdateItem adding to a counter under a condition, as
/// `../shared/tools/ddb-bench` does them. The requests are made before the clock starts, 1,000 per
/// connection, so PutItem inserts a thousand keys per connection and then writes over them (the
/// raw SQL does the same).
fn load(label: &str, open: Open<'_>, duration: Duration) -> anyhow::Result<Rates> {
    let server = BenchServer::start(open)?;
    let table = format!("bench-{}", std::process::id());
    let handle = |request: Request| server.rt.block_on(server.runtime.handle(request, request_id())).response;
    let create = format!(
        r#"{{"TableName":"{table}","KeySchema":[{{"AttributeName":"pk","KeyType":"HASH"}},{{"AttributeName":"sk","KeyType":"RANGE"}}],"AttributeDefinitions":[{{"AttributeName":"pk","AttributeType":"S"}},{{"AttributeName":"sk","AttributeType":"S"}}]}}"#
    );
    anyhow::ensure!(handle(request("CreateTable", create)).status == 200);
    let item = |pk: &str, sk: &str| {
        format!(
            r#"{{"TableName":"{table}","Item":{{"pk":{{"S":"{pk}"}},"sk":{{"S":"{sk}"}},"data":{{"S":"{PAD}"}}}}}}"#
        )
    };
    for (pk, sk) in preloaded_items() {
        anyhow::ensure!(handle(request("PutItem", item(&pk, &sk))).status == 200);
    }
    let key = |i: usize| format!(r#""Key":{{"pk":{{"S":"k-{}"}},"sk":{{"S":"0"}}}}"#, i % KEYS);
    let put = |i: usize| request("PutItem", item(&format!("p-{}-{i}", std::process::id()), "0"));
    let get = |i: usize| request("GetItem", format!(r#"{{"TableName":"{table}",{}}}"#, key(i)));
    let query = |i: usize| {
        let p = i % PARTITIONS;
        let body = format!(
            r#"{{"TableName":"{table}","KeyConditionExpression":"pk = :p","ExpressionAttributeValues":{{":p":{{"S":"q-{p}"}}}}}}"#
        );
        request("Query", body)
    };
    let update = |i: usize| {
        let body = format!(
            r#"{{"TableName":"{table}",{},"UpdateExpression":"ADD cnt :one","ConditionExpression":"attribute_exists(pk)","ExpressionAttributeValues":{{":one":{{"N":"1"}}}}}}"#,
            key(i)
        );
        request("UpdateItem", body)
    };
    let mut rates = Rates::new();
    let operations: [(&str, &(dyn Fn(usize) -> Request + Sync)); 4] =
        [("PutItem", &put), ("GetItem", &get), ("Query", &query), ("UpdateItem", &update)];
    for (operation, make) in operations {
        let latencies = server.rt.block_on(drive_with(server.address, make, duration))?;
        rates.push((operation, report(label, operation, latencies, duration)));
    }
    handle(request("DeleteTable", format!(r#"{{"TableName":"{table}"}}"#)));
    server.stop()?;
    Ok(rates)
}

/// Part 2's items: [`KEYS`] single items `k-<i>`/`0` and [`PARTITIONS`] partitions `q-<p>` of ten
/// items `00`..`09`, each about 200 bytes with [`PAD`].
const KEYS: usize = 2000;
const PARTITIONS: usize = 200;
const PAD: &str = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";

fn preloaded_items() -> impl Iterator<Item = (String, String)> {
    let singles = (0..KEYS).map(|i| (format!("k-{i}"), "0".to_string()));
    singles.chain((0..PARTITIONS).flat_map(|p| (0..10).map(move |s| (format!("q-{p}"), format!("{s:02}")))))
}

/// Part 2's work as plain prepared SQL over 16 connections of its own to the same PostgreSQL
/// server: the ceiling the PostgreSQL backend is measured against. Its table, in the database's
/// default schema, is made for the run and dropped after it. Columns and statements are those of
/// `../shared/tools/pg-limit`.
async fn raw_postgres(url: &str, duration: Duration) -> anyhow::Result<Rates> {
    let (setup, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    let table = format!("dynabox_bench_raw_{}", std::process::id());
    setup
        .batch_execute(&format!(
            "CREATE TABLE {table} (hash bigint, pk bytea, sk bytea, doc jsonb NOT NULL, PRIMARY KEY (hash, pk, sk))"
        ))
        .await?;
    let upsert = format!(
        "INSERT INTO {table} VALUES (hashtextextended($1, 0), convert_to($1, 'UTF8'), convert_to($2, 'UTF8'), $3::text::jsonb) \
         ON CONFLICT (hash, pk, sk) DO UPDATE SET doc = EXCLUDED.doc"
    );
    let insert = setup.prepare(&upsert).await?;
    let document =
        |pk: &str, sk: &str| format!(r#"{{"pk":{{"S":"{pk}"}},"sk":{{"S":"{sk}"}},"data":{{"S":"{PAD}"}}}}"#);
    for (pk, sk) in preloaded_items() {
        setup.execute(&insert, &[&pk, &sk, &document(&pk, &sk)]).await?;
    }
    setup.batch_execute(&format!("ANALYZE {table}")).await?;
    let by_key = "WHERE hash = hashtextextended($1, 0) AND pk = convert_to($1, 'UTF8')";
    let statements = [
        ("PutItem", upsert),
        ("GetItem", format!("SELECT doc FROM {table} {by_key} AND sk = '\\x30'")),
        ("Query", format!("SELECT doc FROM {table} {by_key} ORDER BY sk")),
        (
            "UpdateItem",
            format!(
                "UPDATE {table} SET doc = jsonb_set(doc, '{{cnt}}', jsonb_build_object('N', (coalesce(doc #>> '{{cnt,N}}', '0')::numeric + 1)::text)) {by_key} AND sk = '\\x30'"
            ),
        ),
    ];
    let mut rates = Rates::new();
    for (operation, sql) in statements {
        let deadline = Instant::now() + duration;
        let mut clients = Vec::new();
        for client in 0..CONNECTIONS {
            let (url, sql) = (url.to_string(), sql.clone());
            clients.push(tokio::spawn(async move {
                let (db, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
                tokio::spawn(connection);
                let statement = db.prepare(&sql).await?;
                let mut latencies = Vec::new();
                for i in 0.. {
                    if Instant::now() >= deadline {
                        break;
                    }
                    let started = Instant::now();
                    match operation {
                        "PutItem" => {
                            let pk = format!("p-{client}-{}", i % 1000);
                            db.execute(&statement, &[&pk, &"0", &document(&pk, "0")]).await?;
                        }
                        "GetItem" | "UpdateItem" => {
                            db.query(&statement, &[&format!("k-{}", (client * 1000 + i) % KEYS)]).await?;
                        }
                        _ => {
                            db.query(&statement, &[&format!("q-{}", (client * 1000 + i) % PARTITIONS)]).await?;
                        }
                    }
                    latencies.push(started.elapsed());
                }
                anyhow::Ok(latencies)
            }));
        }
        let mut latencies = Vec::new();
        for client in clients {
            latencies.extend(client.await??);
        }
        rates.push((operation, report("raw PostgreSQL SQL", operation, latencies, duration)));
    }
    setup.batch_execute(&format!("DROP TABLE {table}")).await?;
    Ok(rates)
}

/// Table of part 3: partitions `p0`, `p1`, ... of [`ITEMS_PER_PARTITION`] items each.
const SCALE_TABLE: &str = "bench-scale";
const ITEMS_PER_PARTITION: usize = 10;
/// Partitions the reads pick from: the first ones, present at every size.
const READ_PARTITIONS: usize = 1000;

/// Part 3: Query and GetItem throughput with 10 thousand and with 1 million items in the table.
fn scale_part(label: &str, open: Open<'_>, duration: Duration) -> anyhow::Result<Rates> {
    let server = BenchServer::start(open)?;
    let name = format!("{SCALE_TABLE}-{}", std::process::id());
    let create = format!(
        r#"{{"TableName":"{name}","KeySchema":[{{"AttributeName":"pk","KeyType":"HASH"}},{{"AttributeName":"sk","KeyType":"RANGE"}}],"AttributeDefinitions":[{{"AttributeName":"pk","AttributeType":"S"}},{{"AttributeName":"sk","AttributeType":"N"}}]}}"#
    );
    anyhow::ensure!(
        server.rt.block_on(server.runtime.handle(request("CreateTable", create), request_id())).response.status == 200
    );
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
        server.rt.block_on(fill(server.backend.as_ref(), &name, loaded, size))?;
        loaded = size;
        println!("{label:<22} {size} items in the table (loaded in {:.1} s)", started.elapsed().as_secs_f64());
        for (operation, make) in [("Query", &query as &(dyn Fn(usize) -> Request + Sync)), ("GetItem", &get)] {
            let latencies = server.rt.block_on(drive_with(server.address, make, duration))?;
            rates.push((operation, report(label, operation, latencies, duration)));
        }
    }
    println!(
        "{label:<22} 1M / 10k items: Query {:.2}x, GetItem {:.2}x of the throughput",
        rates[2].1 / rates[0].1,
        rates[3].1 / rates[1].1
    );
    server
        .rt
        .block_on(server.runtime.handle(request("DeleteTable", format!(r#"{{"TableName":"{name}"}}"#)), request_id()));
    server.stop()?;
    Ok(rates)
}

/// Writes items `from..to` of the scale table straight to the store, 1000 to a write group.
async fn fill(backend: &dyn Store, table: &str, from: usize, to: usize) -> anyhow::Result<()> {
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
            let write = storage::Request::Write(std::borrow::Cow::Borrowed(&group));
            backend.call(LOCAL_ACCOUNT_ID, write).await.map_err(|e| anyhow::anyhow!("{e:?}"))?;
            group.clear();
        }
    }
    Ok(())
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
fn contention_part(label: &str, open: Open<'_>, duration: Duration) -> anyhow::Result<Rates> {
    const ACCOUNTS: usize = 10;
    let server = BenchServer::start(open)?;
    let handle = |request: Request| server.rt.block_on(server.runtime.handle(request, request_id())).response;
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
    let hot_rate = report(label, "hot ADD", done, duration);
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
    let transfer_rate = report(label, "transfer", done, duration);
    println!("{label:<22} transfer {refused:?} refused; total {total} (was {})", 1000 * ACCOUNTS);
    for table in [&hot, &bank] {
        handle(request("DeleteTable", format!(r#"{{"TableName":"{table}"}}"#)));
    }
    server.stop()?;
    Ok(vec![("hot ADD", hot_rate), ("transfer", transfer_rate)])
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

/// Prints an operation's requests per second, p50 and p99, and returns the rate.
fn report(label: &str, operation: &str, mut latencies: Vec<Duration>, duration: Duration) -> f64 {
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    let rate = latencies.len() as f64 / duration.as_secs_f64();
    println!(
        "{label:<22} {operation:<10} {rate:>8.0} req/s   p50 {:>7.0} µs   p99 {:>7.0} µs   ({CONNECTIONS} connections)",
        at(0.50).as_secs_f64() * 1e6,
        at(0.99).as_secs_f64() * 1e6,
    );
    rate
}
