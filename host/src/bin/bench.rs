//! `dynabox-bench`: what the sandbox costs, and what the server sustains.
//!
//! Part 1 runs the same GetItem natively (the handler called in-process) and in the sandbox
//! (fresh instance per request) against one in-memory store, and prints the difference: the
//! sandbox tax per request, then where one sandboxed request's time goes (new store, instantiate,
//! call, drop). Part 2 starts the server on each backend in this process and drives
//! PutItem and GetItem over 16 keep-alive connections, printing requests/s, p50 and p99.
//!
//!     cargo run --release --bin dynabox-bench [-- --seconds 5 --database-url URL --sandbox-only]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use dynabox::auth::Authenticator;
use dynabox::runtime::{Limits, Phases, Runtime};
use dynabox::storage::{Backend, DEFAULT_WAIT_TIMEOUT};
use dynabox_handler::http::Request;
use dynabox_handler::storage::{
    Committed, ItemKey, Keyspace, Page, QueryRequest, ScanRequest, Storage, StorageError, StoredItem, TableChange,
    TableRecord, Write, WriteError,
};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;

const CONNECTIONS: usize = 16;
const TABLE: &str = "bench";

fn main() -> anyhow::Result<()> {
    let mut seconds = 5u64;
    let mut sandbox_only = false;
    let mut database_url = std::env::var("DATABASE_URL").ok();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => seconds = args.next().and_then(|s| s.parse().ok()).unwrap_or(seconds),
            "--database-url" => database_url = args.next(),
            "--sandbox-only" => sandbox_only = true,
            other => anyhow::bail!("unknown argument {other}; see the doc comment of host/src/bin/bench.rs"),
        }
    }
    sandbox_tax()?;
    if sandbox_only {
        return Ok(());
    }
    let duration = Duration::from_secs(seconds);
    load("embedded (in memory)", || Backend::open_embedded(None, DEFAULT_WAIT_TIMEOUT), duration)?;
    let dir = std::env::temp_dir().join(format!("dynabox-bench-{}", std::process::id()));
    load("embedded (on disk)", || Backend::open_embedded(Some(&dir), DEFAULT_WAIT_TIMEOUT), duration)?;
    let _ = std::fs::remove_dir_all(&dir);
    match database_url {
        Some(url) => {
            load("PostgreSQL", || tokio_block_on(Backend::connect_postgres(&url, 16, DEFAULT_WAIT_TIMEOUT)), duration)?
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

/// The handler's `Storage` natively, over the same backend the sandbox uses.
struct NativeStorage<'a> {
    backend: &'a Backend,
    rt: &'a tokio::runtime::Runtime,
}

impl Storage for NativeStorage<'_> {
    fn create_table(
        &mut self,
        account: &str,
        name: &str,
        description: &[u8],
        indexes: &[String],
    ) -> Result<bool, StorageError> {
        self.rt.block_on(self.backend.create_table(account, name, description, indexes))
    }
    fn describe_table(&mut self, account: &str, name: &str) -> Result<Option<TableRecord>, StorageError> {
        self.rt.block_on(self.backend.describe_table(account, name))
    }
    fn update_table(
        &mut self,
        account: &str,
        name: &str,
        expected_version: u64,
        change: &TableChange<'_>,
    ) -> Result<Option<u64>, StorageError> {
        self.rt.block_on(self.backend.update_table(account, name, expected_version, change))
    }
    fn list_tables(
        &mut self,
        account: &str,
        start_after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<String>, StorageError> {
        self.rt.block_on(self.backend.list_tables(account, start_after, limit))
    }
    fn delete_table(&mut self, account: &str, name: &str) -> Result<bool, StorageError> {
        self.rt.block_on(self.backend.delete_table(account, name))
    }
    fn keyspace_stats(&mut self, account: &str, keyspace: &Keyspace) -> Result<(u64, u64), StorageError> {
        self.rt.block_on(self.backend.keyspace_stats(account, keyspace))
    }
    fn get(&mut self, account: &str, keyspace: &Keyspace, key: &ItemKey) -> Result<Option<StoredItem>, StorageError> {
        self.rt.block_on(self.backend.get(account, keyspace, key))
    }
    fn query(&mut self, account: &str, request: &QueryRequest) -> Result<Page, StorageError> {
        self.rt.block_on(self.backend.query(account, request))
    }
    fn scan(&mut self, account: &str, request: &ScanRequest) -> Result<Page, StorageError> {
        self.rt.block_on(self.backend.scan(account, request))
    }
    fn write(&mut self, account: &str, writes: &[Write]) -> Result<Committed, WriteError> {
        self.rt.block_on(self.backend.write(account, writes))
    }
}

/// Part 1: the same GetItem natively and in the sandbox, on one thread.
fn sandbox_tax() -> anyhow::Result<()> {
    const ROUNDS: usize = 20_000;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let backend = Arc::new(Backend::open_embedded(None, DEFAULT_WAIT_TIMEOUT)?);
    let auth = Authenticator;
    let cache = std::env::temp_dir().join("dynabox-bench-cache");
    let runtime = Runtime::new(backend.clone(), Arc::new(Authenticator), Limits::default(), Some(&cache))?;
    rt.block_on(runtime.handle(create_table_request()));
    rt.block_on(runtime.handle(put_request(1)));
    let get = get_request(1);
    assert_eq!(rt.block_on(runtime.handle(get.clone())).status, 200);

    let mut storage = NativeStorage { backend: &backend, rt: &rt };
    let native = time_per_call(ROUNDS, || {
        dynabox_handler::handle(&get, &mut storage, &mut &auth);
    });
    let sandboxed = time_per_call(ROUNDS, || {
        rt.block_on(runtime.handle(get.clone()));
    });
    println!("sandbox tax (GetItem, in-memory store, {ROUNDS} calls, one thread):");
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
        dynabox_handler::handle(&get, &mut storage, &mut &auth);
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

/// Part 2: the server on one backend under 16 connections, PutItem then GetItem.
fn load(label: &str, open: impl FnOnce() -> anyhow::Result<Backend>, duration: Duration) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let backend = Arc::new(open()?);
    let runtime = Arc::new(Runtime::new(backend, Arc::new(Authenticator), Limits::default(), None)?);
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let address = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = rt.spawn(dynabox::server::serve(listener, runtime.clone(), async {
        let _ = stopped.await;
    }));
    rt.block_on(runtime.handle(create_table_request()));
    // A table left by an earlier run on PostgreSQL is fine: the answer is then ResourceInUse.
    for (operation, make) in [("PutItem", put_request as fn(usize) -> Request), ("GetItem", get_request)] {
        let latencies = rt.block_on(drive(address, make, duration))?;
        report(label, operation, latencies, duration);
    }
    let _ = stop.send(());
    rt.block_on(server)?;
    Ok(())
}

async fn drive(
    address: std::net::SocketAddr,
    make: fn(usize) -> Request,
    duration: Duration,
) -> anyhow::Result<Vec<Duration>> {
    let deadline = Instant::now() + duration;
    let mut workers = Vec::new();
    for worker in 0..CONNECTIONS {
        workers.push(tokio::spawn(async move {
            let stream = tokio::net::TcpStream::connect(address).await?;
            let (mut sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(connection);
            let mut latencies = Vec::new();
            let mut i = 0;
            while Instant::now() < deadline {
                let request = make(worker * 1_000_000 + i % 1000);
                let mut builder = hyper::Request::post("/");
                for (name, value) in &request.headers {
                    builder = builder.header(name, value);
                }
                let started = Instant::now();
                let response = sender.send_request(builder.body(Full::new(Bytes::from(request.body)))?).await?;
                let status = response.status();
                response.into_body().collect().await?;
                anyhow::ensure!(status == 200, "unexpected status {status}");
                latencies.push(started.elapsed());
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
