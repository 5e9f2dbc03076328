//! A real S3-compatible server for tests: moto's (PyPI `moto[server]`), installed on first use
//! into a virtualenv and started on a free loopback port. A server that cannot be installed or
//! started fails the test, saying why.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const MOTO: &str = "moto[server]==5.2.6";

/// The server, stopped when dropped.
pub struct Moto {
    child: Child,
    pub port: u16,
    log: PathBuf,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Moto {
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The endpoint to give an S3 client.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Creates a bucket with a plain HTTP PUT (moto does not check signatures).
    pub fn create_bucket(&self, name: &str) {
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

/// Starts moto's server, installed into a virtualenv at `home` (a test's `CARGO_TARGET_TMPDIR`
/// joined with a name) the first time.
pub fn start(home: &Path) -> Moto {
    let server = home.join("bin/moto_server");
    if !server.exists() {
        run(Command::new("python3").args(["-m", "venv"]).arg(home));
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
