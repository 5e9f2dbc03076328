//! Shared by the end-to-end tests: start the real `dynabox` binary on a free port against a
//! chosen backend, and talk to it with the AWS SDK for Rust or with raw HTTP.

#![allow(dead_code)] // each test binary uses its own subset

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The storage a server under test uses.
#[derive(Debug, Clone)]
pub enum Store {
    Embedded(PathBuf),
    InMemory,
    Postgres(String),
}

/// Every backend these tests must pass on. PostgreSQL comes from DATABASE_URL; without it the
/// PostgreSQL runs are skipped, unless DYNABOX_REQUIRE_POSTGRES=1 (scripts/test.sh, CI) makes
/// that a failure.
pub fn stores() -> Vec<Store> {
    let mut stores = vec![Store::Embedded(temp_dir("e2e"))];
    match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => stores.push(Store::Postgres(url)),
        _ if std::env::var("DYNABOX_REQUIRE_POSTGRES").as_deref() == Ok("1") => {
            panic!("DYNABOX_REQUIRE_POSTGRES=1 but DATABASE_URL is not set")
        }
        _ => eprintln!("DATABASE_URL is not set: skipping the PostgreSQL backend"),
    }
    stores
}

/// A fresh directory under the system temp dir, unique to this process and call.
pub fn temp_dir(label: &str) -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "dynabox-{label}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

impl Store {
    /// The command-line flags that choose this store.
    pub fn flags(&self) -> Vec<String> {
        match self {
            Store::Embedded(dir) => vec!["--data-dir".into(), dir.display().to_string()],
            Store::InMemory => vec!["--in-memory".into()],
            Store::Postgres(url) => vec!["--database-url".into(), url.clone()],
        }
    }
}

/// The buckets' directory (`--export-dir`) of every server a test process starts. Servers on one
/// database take up each other's exports and imports, and a test binary's tests run at once on
/// one PostgreSQL database, so they all name the same buckets, as the README asks of operators.
pub fn export_dir() -> &'static Path {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| temp_dir("exports"))
}

/// A running `dynabox` process; killed when dropped.
pub struct Server {
    child: Child,
    pub address: String,
    /// `http`, or `https` when it serves TLS.
    pub scheme: String,
    /// Every line the server has written to stderr (its log) so far.
    pub log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    pub fn start(store: &Store) -> Server {
        Self::start_with(store, &[])
    }

    pub fn start_with(store: &Store, extra: &[&str]) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_dynabox"));
        command.args(["--listen", "127.0.0.1:0"]).env_remove("DATABASE_URL").args(store.flags());
        // Not the default, which is relative to the working directory: the checkout.
        command.env("DYNABOX_EXPORT_DIR", export_dir());
        let mut child = command.args(extra).stderr(Stdio::piped()).spawn().expect("dynabox starts");
        let mut stderr = BufReader::new(child.stderr.take().expect("piped"));
        let mut line = String::new();
        let (scheme, address) = loop {
            line.clear();
            if stderr.read_line(&mut line).expect("read stderr") == 0 {
                panic!("dynabox exited before listening");
            }
            eprint!("[server] {line}");
            // The start-up line, as text or as JSON.
            if let Some((_, rest)) = line.split_once("dynabox listening on ") {
                let url = rest.split_whitespace().next().expect("URL");
                let (scheme, address) = url.split_once("://").expect("scheme://address");
                break (scheme.to_string(), address.to_string());
            }
        };
        let log = Arc::new(Mutex::new(vec![line]));
        // Keep draining stderr so the server never blocks on a full pipe.
        let kept = log.clone();
        std::thread::spawn(move || {
            let mut line = String::new();
            while stderr.read_line(&mut line).unwrap_or(0) > 0 {
                eprint!("[server] {line}");
                kept.lock().unwrap().push(std::mem::take(&mut line));
            }
        });
        Server { child, address, scheme, log }
    }

    /// The server's log so far, as one text.
    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().concat()
    }

    pub fn endpoint(&self) -> String {
        format!("{}://{}", self.scheme, self.address)
    }

    pub fn client(&self) -> Client {
        self.client_as("test-key", "test-secret", "us-east-1")
    }

    /// A client that signs with these credentials for this region.
    pub fn client_as(&self, access_key_id: &str, secret: &str, region: &str) -> Client {
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(self.endpoint())
            .region(Region::new(region.to_string()))
            .credentials_provider(Credentials::new(access_key_id, secret, None, None, "tests"))
            .http_client(aws_smithy_http_client::Builder::new().build_http())
            .build();
        Client::from_conf(config)
    }

    /// The most memory the process has had resident so far (VmHWM), in MiB.
    pub fn peak_resident_mib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).expect("/proc status");
        let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("VmHWM");
        line.split_whitespace().nth(1).and_then(|kib| kib.parse::<u64>().ok()).expect("kB") / 1024
    }

    /// Sends SIGHUP (the server reads its certificate files again).
    pub fn hang_up(&self) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc_kill(self.child.id() as i32, 1) };
    }

    /// Sends SIGTERM and waits; returns whether the process exited successfully.
    pub fn terminate(mut self) -> bool {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc_kill(self.child.id() as i32, 15) };
        let status = self.child.wait().expect("wait");
        std::mem::forget(self);
        status.success()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

unsafe extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, signal: i32) -> i32;
}

/// A raw HTTP/1.1 exchange (one request per connection), for protocol tests no SDK would send.
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// The body as text (lossy), and as sent.
    pub body: String,
    pub body_bytes: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

pub fn raw_request(address: &str, method: &str, headers: &[(&str, &str)], body: &[u8]) -> RawResponse {
    raw_request_to(address, method, "/", headers, body)
}

/// [`raw_request`] to another path than `/`.
pub fn raw_request_to(address: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> RawResponse {
    let mut stream = TcpStream::connect(address).expect("connect");
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nhost: {address}\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).expect("write head");
    // The server may answer (413) before the whole body is sent; a broken pipe is fine then.
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read");
    let end_of_head = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("a complete response");
    let head = String::from_utf8_lossy(&raw[..end_of_head]).into_owned();
    let body_bytes = raw[end_of_head + 4..].to_vec();
    let mut lines = head.lines();
    let status =
        lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|s| s.parse().ok()).expect("status line");
    let headers = lines.filter_map(|l| l.split_once(": ")).map(|(n, v)| (n.to_string(), v.to_string())).collect();
    RawResponse { status, headers, body: String::from_utf8_lossy(&body_bytes).into_owned(), body_bytes }
}

/// Headers of a signed DynamoDB call (the signature itself is not checked by the open policy).
pub fn signed_headers(target: &str) -> Vec<(&'static str, String)> {
    vec![
        ("x-amz-target", format!("DynamoDB_20120810.{target}")),
        ("content-type", "application/x-amz-json-1.0".to_string()),
        ("x-amz-date", "20240101T000000Z".to_string()),
        (
            "authorization",
            "AWS4-HMAC-SHA256 Credential=test-key/20240101/us-east-1/dynamodb/aws4_request, SignedHeaders=host;x-amz-date, Signature=00"
                .to_string(),
        ),
    ]
}

pub fn unique(name: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("{name}-{}-{nanos}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Runs `dynabox account ARGS` on the store; its standard output, which must be a success.
pub fn account(store: &Store, key_file: &Path, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_dynabox"))
        .arg("account")
        .args(args)
        .args(store.flags())
        .arg("--secret-key-file")
        .arg(key_file)
        .env_remove("DATABASE_URL")
        .output()
        .expect("dynabox account runs");
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(output.status.success(), "dynabox account {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    stdout
}

/// Creates an account named after `label`; its name and secret.
pub fn new_account(store: &Store, key_file: &Path, label: &str) -> (String, String) {
    let name = unique(label);
    let line = account(store, key_file, &["create", &name]);
    let (printed, secret) = line.trim().split_once(' ').expect("NAME SECRET");
    assert_eq!(printed, name);
    (name, secret.to_string())
}

/// A new on-demand table named after `label` (see [`unique`]) with the string hash key `key`;
/// its name.
pub async fn create_hash_table(client: &Client, label: &str, key: &str) -> String {
    let name = unique(label);
    client
        .create_table()
        .table_name(&name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(KeySchemaElement::builder().attribute_name(key).key_type(KeyType::Hash).build().unwrap())
        .attribute_definitions(
            AttributeDefinition::builder().attribute_name(key).attribute_type(ScalarAttributeType::S).build().unwrap(),
        )
        .send()
        .await
        .expect("create table");
    name
}

/// A TCP proxy to PostgreSQL that the test can cut and restore: a database outage without
/// touching the shared server.
pub struct Outage {
    pub address: String,
    up: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Outage {
    pub fn start(upstream: &str) -> Outage {
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

    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for stream in self.open.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

/// A SigV4 signature of `string_to_sign` with `secret` for us-east-1's DynamoDB on `date`
/// (YYYYMMDD), in hex, as the SDKs compute it.
pub fn sigv4_signature(secret: &str, date: &str, string_to_sign: &str) -> String {
    let mac = |key: &[u8], data: &str| {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
        mac.update(data.as_bytes());
        mac.finalize().into_bytes().to_vec()
    };
    let mut key = mac(format!("AWS4{secret}").as_bytes(), date);
    for part in ["us-east-1", "dynamodb", "aws4_request"] {
        key = mac(&key, part);
    }
    hex(&mac(&key, string_to_sign))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every item of the table (or of its index), by their `id` attribute, read with Scan.
pub async fn contents(client: &Client, table: &str, index: Option<&str>) -> Vec<HashMap<String, AttributeValue>> {
    let (mut items, mut start) = (Vec::new(), None);
    loop {
        let scan = client.scan().table_name(table).set_index_name(index.map(str::to_string));
        let page = scan.set_exclusive_start_key(start).send().await.expect("scan");
        items.extend(page.items().iter().cloned());
        start = page.last_evaluated_key().cloned();
        if start.is_none() {
            break;
        }
    }
    items.sort_by(|a, b| a["id"].as_s().unwrap().cmp(b["id"].as_s().unwrap()));
    items
}
