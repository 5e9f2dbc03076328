//! `dynabox export TABLE DIR` and `dynabox import DIR TABLE`, on the store the flags name: the
//! request goes through the sandbox as an API client's would (ExportTableToPointInTime,
//! ImportTable, with their rules and records), and this process then does the job itself with
//! [`Transfers::do_here`], the directory as its bucket, showing its progress: a bar on a terminal,
//! a plain line every few seconds otherwise.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use dynabox_handler::auth::{LOCAL_ACCOUNT_ID, Principal};
use dynabox_handler::catalog::{Job, JobStatus};
use dynabox_transfer::destination::LocalDirectory;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};

use super::{Progress, Transfers};
use crate::console::api;
use crate::runtime::Runtime;
use crate::storage::Store;

/// The bucket name the command's requests give: the directory stands for it.
const BUCKET: &str = "local";
/// How often the plain display prints a line.
const PLAIN_EVERY: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FileFormat {
    DynamodbJson,
    Ion,
    Csv,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Compression {
    Gzip,
    Zstd,
    None,
}

/// `dynabox export`.
#[derive(Debug, Clone, clap::Args)]
pub struct ExportArgs {
    /// The table to export; it must have point-in-time recovery enabled, as for
    /// ExportTableToPointInTime.
    pub table: String,
    /// Where the export goes (made if missing): DIR/AWSDynamoDB/<export id>/, in AWS's layout.
    pub dir: PathBuf,
    /// The account whose table it is (its name under --auth sigv4); the local account otherwise.
    #[arg(long)]
    pub account: Option<String>,
    /// The moment to export, in seconds since the epoch (within the recovery window); now if not
    /// given.
    #[arg(long)]
    pub at: Option<f64>,
    /// DYNAMODB_JSON or ION.
    #[arg(long, value_enum, default_value_t = FileFormat::DynamodbJson)]
    pub format: FileFormat,
}

/// `dynabox import`.
#[derive(Debug, Clone, clap::Args)]
pub struct ImportArgs {
    /// The files to import: every file below DIR but an export's manifests (so an export's folder
    /// imports as it is).
    pub dir: PathBuf,
    /// The new table.
    pub table: String,
    /// The new table's partition key, NAME:TYPE (TYPE S, N or B).
    #[arg(long, value_name = "NAME:TYPE")]
    pub partition_key: String,
    /// Its sort key, if any, NAME:TYPE.
    #[arg(long, value_name = "NAME:TYPE")]
    pub sort_key: Option<String>,
    /// The account the table is made in (its name under --auth sigv4); the local account otherwise.
    #[arg(long)]
    pub account: Option<String>,
    /// The files' format; by default told by their names (.json, .ion, .csv).
    #[arg(long, value_enum)]
    pub input_format: Option<FileFormat>,
    /// The files' compression; by default told by their names (.gz, .zst).
    #[arg(long, value_enum)]
    pub compression: Option<Compression>,
}

/// The principal the command acts as: the named account, or the local one.
async fn principal(backend: &dyn Store, account: Option<&str>) -> anyhow::Result<Principal> {
    Ok(match account {
        None => Principal { account_id: LOCAL_ACCOUNT_ID.into(), access_key_id: "dynabox".into() },
        Some(name) => {
            let record = backend.find_account(name).await.map_err(|e| anyhow::anyhow!("reading accounts: {e:?}"))?;
            let record = record.with_context(|| format!("no account {name}"))?;
            Principal { account_id: record.account_id, access_key_id: name.into() }
        }
    })
}

/// Runs an API request as `principal`; its answer, or DynamoDB's error as the command's.
async fn call(runtime: &Runtime, principal: &Principal, operation: &str, body: Value) -> anyhow::Result<Value> {
    api::call(runtime, principal.clone(), operation, &body).await.map_err(|e| anyhow::anyhow!("{operation}: {e}"))
}

pub async fn export(
    args: &ExportArgs,
    backend: Arc<dyn Store>,
    runtime: &Runtime,
    transfers: &Transfers,
) -> anyhow::Result<String> {
    let principal = principal(backend.as_ref(), args.account.as_deref()).await?;
    let described = call(runtime, &principal, "DescribeTable", json!({"TableName": args.table})).await?;
    let mut request = json!({
        "TableArn": described["Table"]["TableArn"],
        "S3Bucket": BUCKET,
        "ExportFormat": if args.format == FileFormat::Ion { "ION" } else { "DYNAMODB_JSON" },
    });
    if let Some(at) = args.at {
        request["ExportTime"] = json!(at);
    }
    let answer = call(runtime, &principal, "ExportTableToPointInTime", request).await?;
    let arn = answer["ExportDescription"]["ExportArn"].as_str().context("no ExportArn in the answer")?;
    match do_job(transfers, &principal, arn, &args.dir, Display::new("exported", "items")).await? {
        Some(Job::Export(job)) if job.status == JobStatus::Completed => Ok(format!(
            "exported {} items ({} bytes) of {} to {}",
            job.item_count.unwrap_or_default(),
            job.billed_size_bytes.unwrap_or_default(),
            args.table,
            args.dir.join(job.export_manifest.unwrap_or_default()).display()
        )),
        Some(Job::Export(job)) => bail!("the export failed: {:?}", job.failure),
        _ => bail!("a running server took the export up: follow it with DescribeExport {arn}"),
    }
}

pub async fn import(
    args: &ImportArgs,
    backend: Arc<dyn Store>,
    runtime: &Runtime,
    transfers: &Transfers,
) -> anyhow::Result<String> {
    let principal = principal(backend.as_ref(), args.account.as_deref()).await?;
    let (guessed_format, guessed_compression) = guess(&args.dir)?;
    let format = match args.input_format.unwrap_or(guessed_format) {
        FileFormat::DynamodbJson => "DYNAMODB_JSON",
        FileFormat::Ion => "ION",
        FileFormat::Csv => "CSV",
    };
    let compression = match args.compression.unwrap_or(guessed_compression) {
        Compression::Gzip => "GZIP",
        Compression::Zstd => "ZSTD",
        Compression::None => "NONE",
    };
    let mut keys = vec![key_attribute(&args.partition_key, "HASH")?];
    if let Some(sort) = &args.sort_key {
        keys.push(key_attribute(sort, "RANGE")?);
    }
    let request = json!({
        "S3BucketSource": {"S3Bucket": BUCKET},
        "InputFormat": format,
        "InputCompressionType": compression,
        "TableCreationParameters": {
            "TableName": args.table,
            "KeySchema": keys.iter().map(|(schema, _)| schema).collect::<Vec<_>>(),
            "AttributeDefinitions": keys.iter().map(|(_, definition)| definition).collect::<Vec<_>>(),
            "BillingMode": "PAY_PER_REQUEST",
        },
    });
    let answer = call(runtime, &principal, "ImportTable", request).await?;
    let arn = answer["ImportTableDescription"]["ImportArn"].as_str().context("no ImportArn in the answer")?;
    match do_job(transfers, &principal, arn, &args.dir, Display::new("imported", "bytes")).await? {
        Some(Job::Import(job)) if job.status == JobStatus::Completed => Ok(format!(
            "imported {} items into {} ({} lines read, {} skipped as malformed, {} bytes)",
            job.imported_item_count, args.table, job.processed_item_count, job.error_count, job.processed_size_bytes
        )),
        Some(Job::Import(job)) => bail!("the import failed: {:?}", job.failure),
        _ => bail!("a running server took the import up: follow it with DescribeImport {arn}"),
    }
}

/// Does the job `arn` in this process, `dir` its bucket, shown on `display`: how it ended, or none
/// when a running server took it up first.
async fn do_job(
    transfers: &Transfers,
    principal: &Principal,
    arn: &str,
    dir: &Path,
    display: Display,
) -> anyhow::Result<Option<Job>> {
    let bucket = LocalDirectory::new(dir).and_then(|dir| dir.whole()).map_err(anyhow::Error::msg)?;
    let ended = transfers.do_here(&principal.account_id, arn, bucket, &display).await;
    display.finish();
    ended
}

/// `NAME:TYPE` as a KeySchema element and its attribute definition.
fn key_attribute(given: &str, key_type: &str) -> anyhow::Result<(Value, Value)> {
    let (name, kind) = given.rsplit_once(':').with_context(|| format!("{given}: not NAME:TYPE"))?;
    if !["S", "N", "B"].contains(&kind) {
        bail!("{given}: the type is S, N or B");
    }
    Ok((json!({"AttributeName": name, "KeyType": key_type}), json!({"AttributeName": name, "AttributeType": kind})))
}

/// The format and compression the first data file below `dir` names.
fn guess(dir: &Path) -> anyhow::Result<(FileFormat, Compression)> {
    let mut pending = vec![dir.to_path_buf()];
    while let Some(at) = pending.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&at)
            .with_context(|| format!("reading {}", at.display()))?
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .collect();
        entries.sort();
        for path in entries {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            let (stem, compression) = match (name.strip_suffix(".gz"), name.strip_suffix(".zst")) {
                (Some(stem), _) => (stem, Compression::Gzip),
                (_, Some(stem)) => (stem, Compression::Zstd),
                _ => (name.as_str(), Compression::None),
            };
            let format = match stem.rsplit('.').next() {
                Some("ion") => FileFormat::Ion,
                Some("csv") => FileFormat::Csv,
                Some("json") if !stem.starts_with("manifest-") => FileFormat::DynamodbJson,
                _ => continue,
            };
            return Ok((format, compression));
        }
    }
    bail!("no .json, .ion or .csv file below {}: say --input-format and --compression", dir.display())
}

/// The job's progress on stderr: a bar (count, rate, ETA) on a terminal, a line every
/// [`PLAIN_EVERY`] otherwise.
struct Display {
    bar: Option<ProgressBar>,
    verb: &'static str,
    /// What the bar counts: "items" (an export, whose item count is known) or "bytes" (an import,
    /// whose files' sizes are).
    unit: &'static str,
    items: AtomicU64,
    bytes: AtomicU64,
    total: AtomicU64,
    started: Instant,
    last_line: std::sync::Mutex<Instant>,
}

impl Display {
    fn new(verb: &'static str, unit: &'static str) -> Display {
        let bar = std::io::stderr().is_terminal().then(|| {
            let template = match unit {
                "bytes" => "{spinner} {msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
                _ => "{spinner} {msg} [{bar:30}] {human_pos}/{human_len} items {per_sec} ETA {eta}",
            };
            let bar = ProgressBar::new(0);
            bar.set_style(ProgressStyle::with_template(template).expect("a valid template").progress_chars("=> "));
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        let now = Instant::now();
        Display {
            bar,
            verb,
            unit,
            items: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            total: AtomicU64::new(0),
            started: now,
            last_line: std::sync::Mutex::new(now),
        }
    }

    fn finish(&self) {
        match &self.bar {
            Some(bar) => bar.finish_and_clear(),
            None => self.line(),
        }
    }

    fn line(&self) {
        let (items, bytes) = (self.items.load(Ordering::Relaxed), self.bytes.load(Ordering::Relaxed));
        let seconds = self.started.elapsed().as_secs_f64().max(0.001);
        let total = self.total.load(Ordering::Relaxed);
        let of = if total > 0 { format!(" of {total} {}", self.unit) } else { String::new() };
        eprintln!(
            "{} {items} items, {bytes} bytes{of} in {seconds:.1} s ({:.0} items/s)",
            self.verb,
            items as f64 / seconds
        );
    }
}

impl Progress for Display {
    fn expect(&self, items: Option<u64>, bytes: Option<u64>) {
        let total = if self.unit == "bytes" { bytes } else { items };
        if let Some(total) = total {
            self.total.store(total, Ordering::Relaxed);
            if let Some(bar) = &self.bar {
                bar.set_length(total);
            }
        }
    }

    fn advance(&self, items: u64, bytes: u64) {
        let items = self.items.fetch_add(items, Ordering::Relaxed) + items;
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        match &self.bar {
            Some(bar) => {
                bar.set_position(if self.unit == "bytes" { self.bytes.load(Ordering::Relaxed) } else { items });
                bar.set_message(format!("{} {items} items", self.verb));
            }
            None => {
                let mut last = self.last_line.lock().expect("not poisoned");
                if last.elapsed() >= PLAIN_EVERY {
                    *last = Instant::now();
                    drop(last);
                    self.line();
                }
            }
        }
    }
}
