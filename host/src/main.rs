//! `dynabox`: a DynamoDB-compatible endpoint. Every request runs in a fresh WebAssembly instance.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use dynabox::auth::Authenticator;
use dynabox::runtime::{Limits, Runtime};
use dynabox::storage::Backend;

/// A DynamoDB-compatible server. Point any DynamoDB client's endpoint at it.
///
/// Without flags it listens on 127.0.0.1:8000 and keeps data in ./dynabox-data.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Address to listen on (port 0 picks a free port; the log line says which).
    #[arg(long, default_value = "127.0.0.1:8000")]
    listen: SocketAddr,
    /// Directory of the embedded store; created if missing, data survives restarts.
    #[arg(long, default_value = "dynabox-data", conflicts_with_all = ["in_memory", "database_url"])]
    data_dir: PathBuf,
    /// Keep everything in memory; lost when the server stops.
    #[arg(long, conflicts_with = "database_url")]
    in_memory: bool,
    /// Store data in PostgreSQL instead (e.g. postgres://user@host:5432/db). dynabox creates and
    /// migrates its own schema on start.
    #[arg(long, env = "DATABASE_URL")]
    database_url: Option<String>,
    /// PostgreSQL connections in the pool.
    #[arg(long, default_value_t = 16)]
    pool_size: usize,
    /// Linear memory one request may use inside the sandbox, in MiB (at least 4: the handler
    /// starts with 2).
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(4..))]
    request_memory_mib: u32,
    /// Time one request may spend running inside the sandbox, in milliseconds. Waits on storage
    /// do not count (they are bounded by --storage-timeout-ms).
    #[arg(long, default_value_t = 10_000)]
    request_sandbox_ms: u64,
    /// How long one storage call may wait (for a lock, a connection, the database), in
    /// milliseconds. A write that times out is rolled back and answered with a retryable
    /// InternalServerError; a write that committed is always answered as a success.
    #[arg(long, default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(1..))]
    storage_timeout_ms: u64,
    /// Requests executed at once (each holds one sandbox instance); more wait.
    #[arg(long, default_value_t = 64)]
    concurrency: u32,
    /// Where compiled sandbox code is cached so restarts do not recompile
    /// (default: $XDG_CACHE_HOME/dynabox or ~/.cache/dynabox).
    #[arg(long)]
    cache_dir: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let wait_timeout = Duration::from_millis(args.storage_timeout_ms);
    let backend = match (&args.database_url, args.in_memory) {
        (Some(url), _) => {
            Backend::connect_postgres(url, args.pool_size, wait_timeout).await.context("connecting to PostgreSQL")?
        }
        (None, true) => Backend::open_embedded(None, wait_timeout)?,
        (None, false) => Backend::open_embedded(Some(&args.data_dir), wait_timeout)
            .with_context(|| format!("opening the embedded store in {}", args.data_dir.display()))?,
    };
    let limits = Limits {
        memory_bytes: (args.request_memory_mib as usize) << 20,
        sandbox_time: Duration::from_millis(args.request_sandbox_ms),
        concurrency: args.concurrency,
    };
    let cache_dir = args.cache_dir.or_else(default_cache_dir);
    let store = backend.describe();
    let backend = Arc::new(backend);
    let runtime = Arc::new(Runtime::new(backend.clone(), Arc::new(Authenticator), limits, cache_dir.as_deref())?);
    let listener =
        tokio::net::TcpListener::bind(args.listen).await.with_context(|| format!("listening on {}", args.listen))?;
    eprintln!("dynabox listening on http://{} with the {store}", listener.local_addr()?);
    // Dropped with the runtime when serving ends: a step cut short is redone by the next start.
    let worker = tokio::spawn(dynabox::worker::run(runtime.clone(), backend));
    dynabox::server::serve(listener, runtime, shutdown_signal()).await;
    worker.abort();
    eprintln!("dynabox stopped");
    Ok(())
}

fn default_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
    Some(base.join("dynabox"))
}

async fn shutdown_signal() {
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler installs");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    eprintln!("dynabox: shutting down, draining in-flight requests");
}
