//! `dynabox`: a DynamoDB-compatible endpoint. Every request runs in a fresh WebAssembly instance.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use dynabox::accounts::{AccountCommand, SealingKey, load_or_create_key};
use dynabox::auth::Authenticator;
use dynabox::console::{AccountAdmin, Console};
use dynabox::health::{self, Readiness};
use dynabox::logging::{self, LogFormat, START};
use dynabox::metrics::{DEFAULT_TABLE_LABELS, Metrics};
use dynabox::runtime::{Limits, Runtime};
use dynabox::server::{Telemetry, Transport};
use dynabox::storage::{Store, postgres, sqlite};
use dynabox::tls::{CertificateFiles, Certificates};
use dynabox::transfers::Transfers;
use dynabox::transfers::command::{self, ExportArgs, ImportArgs};
use dynabox_transfer::destination::{Destination, LocalDirectory, S3Endpoint};

/// A DynamoDB-compatible server. Point any DynamoDB client's endpoint at it.
///
/// Without flags it listens on 127.0.0.1:8000, accepts any credentials (--auth open) and keeps
/// data in ./dynabox-data.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    #[command(flatten)]
    store: StoreArgs,
    /// Address to listen on (port 0 picks a free port; the log line says which).
    #[arg(long, global = true, env = "DYNABOX_LISTEN", default_value = "127.0.0.1:8000")]
    listen: SocketAddr,
    /// Serve GET /ready and GET /metrics on this address of their own instead (and GET / there
    /// too). Without it they are served on --listen, /metrics only under --auth open: it names
    /// every account's tables.
    #[arg(long, global = true, env = "DYNABOX_ADMIN_LISTEN")]
    admin_listen: Option<SocketAddr>,
    /// Log as text lines or as JSON objects, one a line, on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// What to log: a level (error, warn, info, debug, trace) or `tracing` filter directives
    /// (`dynabox::access=off,info`). Without it RUST_LOG, else info.
    #[arg(long, global = true)]
    log_level: Option<String>,
    /// Log a line per request (target dynabox::access): method, path, status, error, size and
    /// time, with the request's id, operation, account and tables.
    #[arg(long)]
    access_log: bool,
    /// Log requests that take longer than this, in milliseconds (0: none).
    #[arg(long, default_value_t = 1000)]
    slow_request_ms: u64,
    /// Table names that get a `table` label of their own in the metrics; the rest count as
    /// `table="_other"`.
    #[arg(long, default_value_t = DEFAULT_TABLE_LABELS)]
    metrics_max_tables: usize,
    /// open: any credentials, one shared namespace (local development, like DynamoDB Local).
    /// sigv4: every request must be signed with the secret of an account made by
    /// `dynabox account create`, and sees only that account's tables.
    #[arg(long, value_enum, default_value_t = AuthMode::Open)]
    auth: AuthMode,
    /// Allow --auth open on an address other than loopback: anyone who reaches it can read and
    /// change every table.
    #[arg(long)]
    allow_open_non_loopback: bool,
    /// Serve HTTPS with this certificate chain (PEM, the server's certificate first). It is read
    /// again when the file changes (looked at every 5 s) and on SIGHUP; a new pair that does not
    /// load leaves the current one served.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Serve HTTPS with a self-signed certificate for localhost, made on first use and kept: at
    /// --tls-cert and --tls-key when given, else in tls/ beside the default key file. Its path is
    /// printed, to give clients as their CA bundle (AWS_CA_BUNDLE).
    #[arg(long)]
    tls_self_signed: bool,
    /// PostgreSQL connections in the pool.
    #[arg(long, default_value_t = 16)]
    pool_size: usize,
    /// Linear memory one request may use inside the sandbox, in MiB (at least 4: the handler
    /// starts with 2).
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(4..))]
    request_memory_mib: u32,
    /// Memory all requests in flight may hold at once, in MiB: their bodies and their sandboxes'
    /// memory. A request that finds it spent waits (one at a time may run over it, by at most its own
    /// cap); a sandbox that cannot grow within 5 s ends its request with InternalServerError.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(16..))]
    memory_budget_mib: u32,
    /// Time one request may spend running inside the sandbox, in milliseconds. Waits on storage
    /// do not count (they are bounded by --storage-timeout-ms).
    #[arg(long, default_value_t = 10_000)]
    request_sandbox_ms: u64,
    /// Requests executed at once (each holds one sandbox instance); more wait.
    #[arg(long, default_value_t = 64)]
    concurrency: u32,
    /// Requests of one access key executed at once; as many more may wait, and beyond that the
    /// key gets ThrottlingException, so one client's flood leaves room for the others.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..))]
    key_concurrency: u32,
    /// How long a client may take to send a request's headers, and an idle keep-alive
    /// connection to start its next request, in milliseconds.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    header_timeout_ms: u64,
    /// How long a client may take to send a request's body, in milliseconds.
    #[arg(long, default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(1..))]
    body_timeout_ms: u64,
    /// Connections open at once; at the cap a new client takes the place of the longest-idle
    /// keep-alive connection, or waits until one is idle or closes.
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u64).range(1..))]
    max_connections: u64,
    /// How long SIGTERM waits for in-flight requests before the server exits anyway, in
    /// milliseconds.
    #[arg(long, default_value_t = 10_000)]
    drain_timeout_ms: u64,
    /// The web console at /console (tables, items, accounts): on, or off to remove it. Under
    /// --auth open it answers only clients on this machine (loopback).
    #[arg(long, value_enum, default_value_t = Switch::On)]
    console: Switch,
    /// An account that may create, rotate, revoke and delete every account in the console
    /// (--auth sigv4; repeatable). Other accounts see only their own, and rotate its secret.
    #[arg(long = "console-admin", value_name = "ACCOUNT")]
    console_admins: Vec<String>,
    /// How often expired items (time to live) are looked for and deleted, in seconds.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..))]
    ttl_interval: u64,
    #[command(flatten)]
    buckets: BucketArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

/// Where exports go and imports come from (ExportTableToPointInTime, ImportTable).
#[derive(clap::Args, Debug)]
struct BucketArgs {
    /// The directory whose subdirectories are the buckets: bucket B is DIR/B, or DIR/ACCOUNT/B
    /// for an account under --auth sigv4 (made when first used; no path in it may leave it,
    /// through `..` or a symbolic link). Made if missing.
    #[arg(long, env = "DYNABOX_EXPORT_DIR", default_value = "dynabox-exports")]
    export_dir: PathBuf,
    /// An S3-compatible store for the buckets instead of --export-dir (http://127.0.0.1:9000,
    /// https://s3.eu-west-1.amazonaws.com).
    #[arg(long, env = "DYNABOX_S3_ENDPOINT")]
    s3_endpoint: Option<String>,
    #[arg(long, env = "DYNABOX_S3_REGION", default_value = "us-east-1")]
    s3_region: String,
    #[arg(long, env = "DYNABOX_S3_ACCESS_KEY_ID", requires = "s3_endpoint")]
    s3_access_key_id: Option<String>,
    #[arg(long, env = "DYNABOX_S3_SECRET_ACCESS_KEY", hide_env_values = true, requires = "s3_endpoint")]
    s3_secret_access_key: Option<String>,
    /// Address buckets as BUCKET.HOST rather than HOST/BUCKET (what AWS prefers; local servers
    /// mostly want the path style).
    #[arg(long, requires = "s3_endpoint")]
    s3_virtual_hosted_style: bool,
}

impl BucketArgs {
    fn destination(&self) -> anyhow::Result<Destination> {
        if let Some(endpoint) = &self.s3_endpoint {
            return Ok(Destination::S3(S3Endpoint {
                endpoint: endpoint.clone(),
                region: self.s3_region.clone(),
                access_key_id: self.s3_access_key_id.clone().unwrap_or_default(),
                secret_access_key: self.s3_secret_access_key.clone().unwrap_or_default(),
                virtual_hosted_style: self.s3_virtual_hosted_style,
            }));
        }
        let dir = &self.export_dir;
        std::fs::create_dir_all(dir).with_context(|| format!("making --export-dir {}", dir.display()))?;
        let local = LocalDirectory::new(dir).map_err(anyhow::Error::msg);
        Ok(Destination::Local(local.with_context(|| format!("--export-dir {}", dir.display()))?))
    }
}

/// Which store, for the server and for `dynabox account` alike.
#[derive(clap::Args, Debug)]
struct StoreArgs {
    /// Directory of the embedded store; created if missing, data survives restarts.
    #[arg(long, global = true, default_value = "dynabox-data", conflicts_with_all = ["in_memory", "database_url"])]
    data_dir: PathBuf,
    /// Keep everything in memory; lost when the server stops.
    #[arg(long, global = true, conflicts_with = "database_url")]
    in_memory: bool,
    /// Store data in PostgreSQL instead (e.g. postgres://user@host:5432/db). dynabox creates and
    /// migrates its own schema on start.
    #[arg(long, global = true, env = "DATABASE_URL")]
    database_url: Option<String>,
    /// The key that seals account secrets in the store: a file of 64 hex digits, created when
    /// missing (default: $XDG_CONFIG_HOME/dynabox/secret.key or ~/.config/dynabox/secret.key).
    /// Keep it apart from the store: with it, a copy of the store reveals every secret.
    #[arg(long, global = true, env = "DYNABOX_SECRET_KEY_FILE")]
    secret_key_file: Option<PathBuf>,
    /// How long one storage call may wait (for a lock, a connection, the database), in
    /// milliseconds. A write that times out is rolled back and answered with a retryable
    /// InternalServerError; a write that committed is always answered as a success.
    #[arg(long, global = true, default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(1..))]
    storage_timeout_ms: u64,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Asks a running server (at --admin-listen if given, else --listen) whether it is ready:
    /// exit status 0 if it is, 1 if not or if it does not answer. For container health checks.
    Healthcheck {
        /// How long to wait for the answer, in milliseconds.
        #[arg(long, default_value_t = 2_000)]
        timeout_ms: u64,
    },
    /// Manages the accounts of --auth sigv4, in the store the flags name (a running server's too).
    Account {
        #[command(subcommand)]
        command: AccountCommand,
        /// Print JSON instead of lines.
        #[arg(long, global = true)]
        json: bool,
    },
    /// Exports a table to a directory in DynamoDB's export layout, as ExportTableToPointInTime
    /// does, in the store the flags name (a running server's too).
    Export(ExportArgs),
    /// Imports a directory of DynamoDB JSON, Ion or CSV files (an export's folder too) into a new
    /// table, as ImportTable does, in the store the flags name.
    Import(ImportArgs),
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum Switch {
    On,
    Off,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum AuthMode {
    Open,
    Sigv4,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    logging::init(args.log_format, args.log_level.as_deref())?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    if let Some(Command::Healthcheck { timeout_ms }) = &args.command {
        let address = health::local_address(args.admin_listen.unwrap_or(args.listen));
        // An error exits with status 1.
        println!("{}", runtime.block_on(health::check(address, Duration::from_millis(*timeout_ms)))?);
        return Ok(());
    }
    runtime.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    if let Some(Command::Account { command, json }) = &args.command {
        let backend = open_store(&args.store, 1).await?;
        let printed = dynabox::accounts::run(command, backend.as_ref(), &sealing_key(&args.store)?, *json).await?;
        if !printed.is_empty() {
            println!("{printed}");
        }
        return Ok(());
    }
    if let Some(Command::Export(_) | Command::Import(_)) = &args.command {
        return transfer_command(&args).await;
    }
    if args.auth == AuthMode::Open && !args.listen.ip().is_loopback() && !args.allow_open_non_loopback {
        anyhow::bail!(
            "--auth open on {} would let anyone who reaches it read and change every table: use --auth sigv4, \
             or say --allow-open-non-loopback",
            args.listen
        );
    }
    let backend = open_store(&args.store, args.pool_size).await?;
    let auth = Arc::new(match args.auth {
        AuthMode::Open => Authenticator::Open,
        AuthMode::Sigv4 => Authenticator::sigv4(backend.clone(), sealing_key(&args.store)?),
    });
    let limits = Limits {
        memory_bytes: (args.request_memory_mib as usize) << 20,
        memory_budget_bytes: (args.memory_budget_mib as usize) << 20,
        sandbox_time: Duration::from_millis(args.request_sandbox_ms),
        concurrency: args.concurrency,
        key_concurrency: args.key_concurrency,
    };
    let certificates = match certificate_files(&args)? {
        Some(files) => Some(Certificates::load(files)?),
        None => None,
    };
    let store = backend.describe();
    let mode = auth.mode();
    let runtime = Arc::new(Runtime::new(backend.clone(), auth.clone(), limits)?);
    Metrics::global().cap_tables(args.metrics_max_tables);
    let readiness = Readiness::new();
    let telemetry = Telemetry {
        readiness: readiness.clone(),
        metrics: args.admin_listen.is_none() && args.auth == AuthMode::Open,
        access_log: args.access_log,
        slow_request: (args.slow_request_ms > 0).then(|| Duration::from_millis(args.slow_request_ms)),
    };
    let listener =
        tokio::net::TcpListener::bind(args.listen).await.with_context(|| format!("listening on {}", args.listen))?;
    let admin = match args.admin_listen {
        Some(address) => {
            Some(tokio::net::TcpListener::bind(address).await.with_context(|| format!("listening on {address}"))?)
        }
        None => None,
    };
    let address = listener.local_addr()?;
    let scheme = if certificates.is_some() { "https" } else { "http" };
    // Before clients are told where to connect: from then on SIGTERM drains.
    let shutdown = shutdown_signal();
    tracing::info!(target: START, %address, "dynabox listening on {scheme}://{address} with the {store}, --auth {mode}");
    // Dropped with the runtime when serving ends: a step cut short is redone by the next start.
    let ttl_interval = Duration::from_secs(args.ttl_interval);
    let watcher = tokio::spawn(readiness.watch(backend.clone()));
    let admin = match admin {
        Some(admin) => {
            let address = admin.local_addr()?;
            tracing::info!(target: START, %address, "dynabox admin paths on http://{address}: /ready, /metrics");
            let telemetry = Telemetry { metrics: true, ..telemetry.clone() };
            Some(tokio::spawn(dynabox::server::serve_admin(admin, telemetry)))
        }
        None => None,
    };
    let transfers = Transfers::new(backend.clone(), args.buckets.destination()?);
    let worker = tokio::spawn(dynabox::worker::run(runtime.clone(), backend.clone(), transfers, ttl_interval));
    let reloader = certificates.clone().map(|certificates| tokio::spawn(dynabox::tls::watch(certificates)));
    let transport = Transport {
        header_timeout: Duration::from_millis(args.header_timeout_ms),
        body_timeout: Duration::from_millis(args.body_timeout_ms),
        max_connections: args.max_connections as usize,
        drain_timeout: Duration::from_millis(args.drain_timeout_ms),
        tls: certificates.map(|certificates| certificates.server_config()).transpose()?,
    };
    let console = console(&args, &backend, &runtime, auth, transport.body_timeout)?;
    let sampler = console.clone().map(|console| {
        tracing::info!(target: START, "dynabox console at {scheme}://{address}/console");
        tokio::spawn(async move { console.sample_metrics().await })
    });
    dynabox::server::serve(listener, runtime, transport, telemetry, console, shutdown).await;
    worker.abort();
    watcher.abort();
    if let Some(admin) = admin {
        admin.abort();
    }
    for task in [reloader, sampler].into_iter().flatten() {
        task.abort();
    }
    tracing::info!("dynabox stopped");
    Ok(())
}

/// `dynabox export` or `dynabox import`: the request through a sandbox, as the server runs it, and
/// the job done here.
async fn transfer_command(args: &Args) -> anyhow::Result<()> {
    let backend = open_store(&args.store, 2).await?;
    let runtime = Runtime::new(backend.clone(), Arc::new(Authenticator::Open), Limits::default())?;
    // The command's directory is its one bucket.
    let dir = match &args.command {
        Some(Command::Export(export)) => &export.dir,
        Some(Command::Import(import)) => &import.dir,
        _ => unreachable!("called for export and import only"),
    };
    std::fs::create_dir_all(dir).with_context(|| format!("making {}", dir.display()))?;
    let local = LocalDirectory::new(dir).map_err(anyhow::Error::msg)?;
    let transfers = Transfers::new(backend.clone(), Destination::Local(local));
    let done = match &args.command {
        Some(Command::Export(export)) => command::export(export, backend, &runtime, &transfers).await?,
        Some(Command::Import(import)) => command::import(import, backend, &runtime, &transfers).await?,
        _ => unreachable!("called for export and import only"),
    };
    println!("{done}");
    Ok(())
}

/// The certificate files to serve HTTPS with, if any; `--tls-self-signed` makes them first when
/// they do not exist yet, and says where they are.
fn certificate_files(args: &Args) -> anyhow::Result<Option<CertificateFiles>> {
    let given = args.tls_cert.clone().zip(args.tls_key.clone()).map(|(cert, key)| CertificateFiles { cert, key });
    if !args.tls_self_signed {
        return Ok(given);
    }
    let files = given
        .or_else(dynabox::tls::default_self_signed_files)
        .context("--tls-self-signed: no --tls-cert and --tls-key given and no home directory for the default")?;
    let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()];
    if !args.listen.ip().is_loopback() && !args.listen.ip().is_unspecified() {
        names.push(args.listen.ip().to_string());
    }
    let made = dynabox::tls::make_self_signed(&files, names)?;
    let path = files.cert.display();
    let state = if made { "made" } else { "kept from before" };
    tracing::info!(target: START, "self-signed certificate {path} ({state}); for clients: export AWS_CA_BUNDLE={path}");
    Ok(Some(files))
}

/// The web console, unless `--console off`; under `--auth sigv4` with the accounts page.
fn console(
    args: &Args,
    backend: &Arc<dyn Store>,
    runtime: &Arc<Runtime>,
    auth: Arc<Authenticator>,
    body_timeout: Duration,
) -> anyhow::Result<Option<Arc<Console>>> {
    if args.console == Switch::Off {
        return Ok(None);
    }
    let accounts = match args.auth {
        AuthMode::Open => None,
        AuthMode::Sigv4 => Some(AccountAdmin {
            backend: backend.clone(),
            key: sealing_key(&args.store)?,
            admins: args.console_admins.clone(),
        }),
    };
    let over_tls = args.tls_cert.is_some() || args.tls_self_signed;
    Ok(Some(Arc::new(Console::new(runtime.clone(), auth, accounts, body_timeout, over_tls))))
}

async fn open_store(store: &StoreArgs, pool_size: usize) -> anyhow::Result<Arc<dyn Store>> {
    let wait_timeout = Duration::from_millis(store.storage_timeout_ms);
    Ok(match (&store.database_url, store.in_memory) {
        (Some(url), _) => {
            Arc::new(postgres::connect(url, pool_size, wait_timeout).await.context("connecting to PostgreSQL")?)
        }
        (None, true) => Arc::new(sqlite::open(None, wait_timeout).await?),
        (None, false) => Arc::new(
            sqlite::open(Some(&store.data_dir), wait_timeout)
                .await
                .with_context(|| format!("opening the embedded store in {}", store.data_dir.display()))?,
        ),
    })
}

fn sealing_key(store: &StoreArgs) -> anyhow::Result<SealingKey> {
    let path = store.secret_key_file.clone().or_else(dynabox::accounts::default_key_file);
    load_or_create_key(&path.context("no --secret-key-file given and no home directory for the default")?)
}

fn shutdown_signal() -> impl Future<Output = ()> {
    // Installed now, not when the server first waits: a signal that comes earlier would
    // otherwise end the process at once instead of draining it.
    let handler = |kind| tokio::signal::unix::signal(kind).expect("signal handler installs");
    let (mut interrupt, mut terminate) =
        (handler(tokio::signal::unix::SignalKind::interrupt()), handler(tokio::signal::unix::SignalKind::terminate()));
    async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        tracing::info!("shutting down, draining in-flight requests");
    }
}
