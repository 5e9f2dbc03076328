//! Against a real S3-compatible server: moto's (PyPI `moto[server]`), installed on first use into
//! a virtualenv under Cargo's target directory and started on a free loopback port. A server that
//! cannot be installed or started fails the test, saying why.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dynabox_transfer::destination::{Destination, S3Endpoint};
use dynabox_transfer::export::{ExportFormat, ExportWriter};
use dynabox_transfer::import::InputFormat;

use crate::common::*;

const MOTO: &str = "moto[server]==5.2.6";

/// The server, stopped when dropped.
struct Moto {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Moto {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Creates a bucket with a plain HTTP PUT (moto does not check signatures).
    fn create_bucket(&self, name: &str) {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        let host = format!("127.0.0.1:{}", self.port);
        write!(stream, "PUT /{name} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200") || answer.starts_with("HTTP/1.0 200"), "CreateBucket: {answer}");
    }
}

fn run(command: &mut Command) {
    let output = command.output().unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn start_moto() -> Moto {
    let home = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("moto-venv");
    let server = home.join("bin/moto_server");
    if !server.exists() {
        run(Command::new("python3").args(["-m", "venv"]).arg(&home));
        run(Command::new(home.join("bin/pip")).args(["install", "--quiet", "--disable-pip-version-check", MOTO]));
    }
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let log = home.join(format!("server-{port}.log"));
    let out = File::create(&log).unwrap();
    let child = Command::new(&server)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", server.display()));
    let mut moto = Moto { child, port, log };
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = moto.child.try_wait().unwrap() {
            panic!("moto_server exited ({status}):\n{}", moto.log());
        }
        assert!(Instant::now() < deadline, "moto_server did not listen on {port} within 60 s:\n{}", moto.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    moto
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_to_s3_and_read_it_back() {
    let moto = tokio::task::spawn_blocking(start_moto).await.unwrap();
    moto.create_bucket("ddb-exports");
    let destination = Destination::S3(S3Endpoint {
        endpoint: format!("http://127.0.0.1:{}", moto.port),
        region: "us-east-1".into(),
        access_key_id: "testing".into(),
        secret_access_key: "testing".into(),
        virtual_hosted_style: false,
    });
    let store = destination.bucket("ddb-exports").unwrap();

    // Small items, then incompressible ones: the first data file passes an upload part (8 MiB)
    // and goes up in parts, the second is one PUT.
    let mut items = items(9, 1000);
    let mut rng = Rng::new(21);
    items.extend((0..40).map(|id| big_item(&mut rng, id, 300 << 10)));
    let mut spec = spec("ddb-exports", Some("tables/things"), ExportFormat::DynamoDbJson, full(1_700_000_000));
    spec.max_data_file_bytes = 14 << 20;
    let mut writer = ExportWriter::start(store.clone(), spec).await.unwrap_or_else(|e| panic!("{e}\n{}", moto.log()));
    for item in &items {
        writer.write_item(item).await.unwrap();
    }
    let summary = writer.finish().await.unwrap();
    assert_eq!(summary.data_files, 2);

    let checked = check_export(store.as_ref(), &summary, FULL_MEMBERS).await;
    assert_eq!(checked.summary["s3Bucket"], "ddb-exports");
    // S3's ETags: a multipart object's ends in its part count, a single PUT's is its MD5 in hex.
    assert!(checked.files[0].etag.ends_with("-2"), "{}", checked.files[0].etag);
    assert_eq!(checked.files[1].etag.len(), 32, "{}", checked.files[1].etag);

    let back = read_items(&store, &checked.files, InputFormat::DynamoDbJson).await;
    assert_eq!(back.len(), items.len());
    assert!(back == items, "the items read back differ from those written");
}
