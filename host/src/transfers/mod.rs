//! Exports and imports: the jobs ExportTableToPointInTime and ImportTable record
//! (`dynabox_handler::catalog::jobs`), done here because only the host reaches a bucket. The
//! worker looks for jobs every second, claims each for [`LEASE_MILLIS`] (renewed while it runs),
//! and runs it in a task of its own; a job whose server stopped is claimed again once its lease
//! runs out, and done again from the start under the same ARN (an export's files are written
//! anew, an import's puts are idempotent). `dynabox export` and `dynabox import` run the same
//! [`Transfers::export`] and [`Transfers::import`] with a progress display.
//!
//! An export reads the table's history ([`Store::read_history`]), so it holds exactly what was
//! committed at its moment, page by page into `dynabox_transfer`'s writer; an import reads each
//! file of the bucket under the prefix on a blocking thread (line by line, bounded), puts its
//! items in write groups, and ends the import on the table ([`dynabox_handler::imported`]).

pub mod command;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, UNIX_EPOCH};

use dynabox_handler::auth::LOCAL_ACCOUNT_ID;
use dynabox_handler::catalog::{
    ExportJob, Failure, ImportJob, JOBS_TABLE, Job, JobStatus, LEASE_MILLIS, Lease, Table, job_key, jobs_keyspace,
};
use dynabox_handler::storage::{Expect, ItemKey, Request, StorageError, TableChange, Write};
use dynabox_transfer::Item;
use dynabox_transfer::destination::{self, Destination, DestinationError};
use dynabox_transfer::export::{
    Change, DEFAULT_MAX_DATA_FILE_BYTES, ExportError, ExportFormat, ExportSpec, ExportType, ExportViewType,
    ExportWriter,
};
use dynabox_transfer::import::{CsvOptions, InputCompressionType, InputFormat, ItemReader, ScalarAttributeType};
use futures_util::StreamExt;
use object_store::ObjectStore;
use object_store::path::Path;
use serde_json::Value;
use tracing::Instrument;

use crate::storage::{Ask, Store};

/// Jobs of an account one look takes up at most.
const JOBS_PER_LOOK: u32 = 100;
/// History entries an export reads per call, and items an import puts per write group.
const EXPORT_PAGE: u32 = 1000;
const IMPORT_GROUP: usize = 100;
/// Lines a reading thread hands over at a time, and how many such batches may wait.
const IMPORT_BATCH: usize = 500;
const IMPORT_BATCHES_WAITING: usize = 4;
/// A job's lease is renewed once this much of it has passed.
const RENEW_AFTER: Duration = Duration::from_millis(LEASE_MILLIS / 3);
/// An import whose table is not there yet this long after the request failed to make it.
const TABLE_GRACE_MILLIS: u64 = 10_000;

/// What a running job tells whoever watches it (the command line's progress bar).
pub trait Progress: Send + Sync {
    /// What the whole is, when known: items (an export) or bytes (an import).
    fn expect(&self, _items: Option<u64>, _bytes: Option<u64>) {}
    /// Items and bytes done since the last call.
    fn advance(&self, _items: u64, _bytes: u64) {}
}

/// Watches nothing: the worker's jobs.
pub struct Unwatched;

impl Progress for Unwatched {}

/// The worker's side of exports and imports.
pub struct Transfers {
    backend: Arc<dyn Store>,
    destination: Destination,
    /// This process's name on the leases it takes.
    holder: String,
    /// The jobs this process is running, so a look does not start one twice.
    running: Mutex<HashSet<String>>,
}

/// Why a job ended without its result: what its FailureCode and FailureMessage say.
#[derive(Debug)]
pub struct JobFailure(pub Failure);

impl JobFailure {
    fn new(code: &str, message: impl std::fmt::Display) -> JobFailure {
        JobFailure(Failure { failure_code: code.into(), failure_message: message.to_string() })
    }
}

impl From<StorageError> for JobFailure {
    fn from(e: StorageError) -> JobFailure {
        JobFailure::new("InternalServerError", format!("storage: {e:?}"))
    }
}

impl From<DestinationError> for JobFailure {
    fn from(e: DestinationError) -> JobFailure {
        let code = match &e {
            DestinationError::InvalidBucketName(_) | DestinationError::InvalidPrefix(_) => "S3InvalidParameter",
            DestinationError::Refused(_) => "S3AccessDenied",
            DestinationError::Io(_) | DestinationError::Store(_) => "S3Failure",
        };
        JobFailure::new(code, e)
    }
}

impl From<ExportError> for JobFailure {
    fn from(e: ExportError) -> JobFailure {
        JobFailure::new("S3Failure", e)
    }
}

impl std::fmt::Display for JobFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.0.failure_code, self.0.failure_message)
    }
}

impl std::error::Error for JobFailure {}

fn now_millis() -> u64 {
    dynabox_handler::time::now_millis() as u64
}

/// A job this process holds: renews and saves it under its lease.
pub struct Claim<'a> {
    backend: &'a dyn Store,
    account: &'a str,
    arn: String,
    holder: &'a str,
    renewed: Mutex<Instant>,
}

impl Claim<'_> {
    /// Writes `job` as it now is, if this process still holds it; `hold`: keep holding it (else
    /// the lease is given up). False when another worker took the job over.
    async fn save(&self, job: &mut Job, hold: bool) -> Result<bool, StorageError> {
        self.write(job, hold, |lease| lease.is_some_and(|lease| lease.holder == self.holder)).await
    }

    /// Takes the job if it is free (never held, or its lease ran out): whether it was.
    async fn take(&self, job: &mut Job) -> Result<bool, StorageError> {
        self.write(job, true, |lease| Lease::claimable(lease, now_millis())).await
    }

    /// Writes `job` with this process's lease (or none, unless `hold`) if the stored job's lease
    /// is `acceptable`, guarded by the version read.
    async fn write(
        &self,
        job: &mut Job,
        hold: bool,
        acceptable: impl Fn(Option<&Lease>) -> bool,
    ) -> Result<bool, StorageError> {
        let key = job_key(&self.arn);
        let Some(stored) = self.backend.ask(self.account, Request::get(&jobs_keyspace(), &key)).await? else {
            return Ok(false);
        };
        let current = Job::read(&stored).map_err(StorageError::Internal)?;
        if !acceptable(current.lease()) {
            return Ok(false);
        }
        job.set_lease(hold.then(|| Lease { holder: self.holder.to_string(), until: now_millis() + LEASE_MILLIS }));
        let writes = [Write::Put {
            keyspace: jobs_keyspace(),
            key,
            document: job.document(),
            expect: Expect::Version(stored.version),
            expires_at: job.due(),
        }];
        match self.backend.ask(self.account, Request::write(&writes)).await {
            Ok(_) => {
                *self.renewed.lock().expect("not poisoned") = Instant::now();
                Ok(true)
            }
            Err(dynabox_handler::storage::Failure::GuardFailed(_)) => Ok(false),
            Err(dynabox_handler::storage::Failure::Storage(e)) => Err(e),
        }
    }

    /// Saves `job` if its lease is a third gone: false when the job was taken over.
    async fn renew(&self, job: &mut Job) -> Result<bool, StorageError> {
        if self.renewed.lock().expect("not poisoned").elapsed() < RENEW_AFTER {
            return Ok(true);
        }
        self.save(job, true).await
    }
}

impl Transfers {
    pub fn new(backend: Arc<dyn Store>, destination: Destination) -> Arc<Transfers> {
        let holder = format!("{:016x}", getrandom::u64().unwrap_or_default());
        Arc::new(Transfers { backend, destination, holder, running: Mutex::new(HashSet::new()) })
    }

    /// Finds every job that wants a worker and runs each in a task of its own.
    pub async fn look(self: &Arc<Self>) {
        let accounts = match self.backend.accounts_with_table(JOBS_TABLE).await {
            Ok(accounts) => accounts,
            Err(e) => return tracing::warn!("looking for exports and imports failed: {e:?}"),
        };
        for account in accounts {
            let jobs = match self.waiting_jobs(&account).await {
                Ok(jobs) => jobs,
                Err(e) => {
                    tracing::warn!(%account, "reading exports and imports failed: {e:?}");
                    continue;
                }
            };
            for job in jobs {
                if self.running.lock().expect("not poisoned").insert(job.arn().to_string()) {
                    let (transfers, account) = (self.clone(), account.clone());
                    tokio::spawn(async move { transfers.run(&account, job).await });
                }
            }
        }
    }

    /// The account's jobs that want a worker now: found on the store's expiry index, where each
    /// job in progress is due (`Job::due`), and read again to be sure.
    async fn waiting_jobs(&self, account: &str) -> Result<Vec<Job>, StorageError> {
        let now = now_millis();
        let jobs = jobs_keyspace();
        let mut waiting = Vec::new();
        for key in self.backend.ask(account, Request::expired(&jobs, now / 1000, JOBS_PER_LOOK)).await? {
            let Some(stored) = self.backend.ask(account, Request::get(&jobs, &key)).await? else { continue };
            match Job::read(&stored) {
                Ok(job) if job.wants_worker(now) => waiting.push(job),
                Ok(_) => {}
                Err(e) => tracing::warn!(%account, "{e}"),
            }
        }
        Ok(waiting)
    }

    /// Claims `job`, does it and records how it ended (the worker's way: its bucket from the
    /// server's destination).
    async fn run(&self, account: &str, job: Job) {
        let arn = job.arn().to_string();
        // Forgotten however the job ends, a panic included: a later look may take it up again.
        let _running = Running { running: &self.running, arn: &arn };
        let span = tracing::info_span!("transfer", %arn);
        if let Err(e) = self.claim_and_do(account, job, None, &Unwatched).instrument(span).await {
            tracing::warn!(%arn, "{e}");
        }
    }

    /// Does the job named `arn` here (`dynabox export` and `import`) with `bucket`, watched by
    /// `progress`: how it ended, or none when another worker holds it.
    pub async fn do_here(
        &self,
        account: &str,
        arn: &str,
        bucket: Arc<dyn ObjectStore>,
        progress: &dyn Progress,
    ) -> anyhow::Result<Option<Job>> {
        let stored = self.backend.ask(account, Request::get(&jobs_keyspace(), &job_key(arn))).await;
        let stored = stored.map_err(|e| anyhow::anyhow!("reading the job: {e:?}"))?;
        let job = Job::read(&stored.ok_or_else(|| anyhow::anyhow!("no job {arn}"))?).map_err(anyhow::Error::msg)?;
        self.claim_and_do(account, job, Some(bucket), progress).await
    }

    /// Claims the job (a guarded write, so one worker wins it), does it, and records how it ended: that ending, or none when another worker holds
    /// the job or its import's table is not there yet.
    async fn claim_and_do(
        &self,
        account: &str,
        mut job: Job,
        bucket: Option<Arc<dyn ObjectStore>>,
        progress: &dyn Progress,
    ) -> anyhow::Result<Option<Job>> {
        let claim = Claim {
            backend: self.backend.as_ref(),
            account,
            arn: job.arn().to_string(),
            holder: &self.holder,
            renewed: Mutex::new(Instant::now()),
        };
        let claimed = claim.take(&mut job).await.map_err(|e| anyhow::anyhow!("claiming the job: {e:?}"))?;
        if !claimed {
            return Ok(None);
        }
        let bucket = |name: &str| match &bucket {
            Some(bucket) => Ok(bucket.clone()),
            None => self.bucket(account, name),
        };
        let mut ended = match job {
            Job::Export(job) => {
                let outcome = match bucket(&job.s3_bucket) {
                    Ok(bucket) => self.export(account, job.clone(), bucket, Some(&claim), progress).await,
                    Err(e) => Err(e.into()),
                };
                Job::Export(outcome.unwrap_or_else(|failure| ExportJob {
                    status: JobStatus::Failed,
                    failure: Some(failure.0),
                    end_time: Some(now_millis()),
                    ..job
                }))
            }
            Job::Import(job) => {
                let outcome = match bucket(bucket_of(&job)) {
                    Ok(bucket) => self.import(account, job.clone(), bucket, Some(&claim), progress).await,
                    Err(e) => Err(e.into()),
                };
                match outcome {
                    Ok(Some(done)) => Job::Import(done),
                    Ok(None) => {
                        // Given back: another look will find the job again.
                        claim.save(&mut Job::Import(job), false).await.ok();
                        return Ok(None);
                    }
                    Err(failure) => {
                        self.drop_import_table(account, &job).await;
                        Job::Import(ImportJob {
                            status: JobStatus::Failed,
                            failure: Some(failure.0),
                            end_time: Some(now_millis()),
                            ..job
                        })
                    }
                }
            }
        };
        match ended.status() {
            JobStatus::Failed => tracing::warn!(arn = ended.arn(), "job failed"),
            _ => tracing::info!(arn = ended.arn(), "job completed"),
        }
        if !claim.save(&mut ended, false).await.map_err(|e| anyhow::anyhow!("recording the job's end: {e:?}"))? {
            anyhow::bail!("another server took the job over");
        }
        Ok(Some(ended))
    }

    /// The bucket `name` of `account`. Local buckets of an account but the local one are below a
    /// directory of its own (DIR/ACCOUNT/NAME), so accounts never read each other's exports; an
    /// S3-compatible store's buckets are the operator's, shared by every account.
    fn bucket(&self, account: &str, name: &str) -> Result<Arc<dyn ObjectStore>, DestinationError> {
        match &self.destination {
            Destination::Local(dir) if account != LOCAL_ACCOUNT_ID => dir.within(account)?.bucket(name),
            destination => destination.bucket(name),
        }
    }

    /// Writes the export `job` into `bucket`: the job as completed, or why it failed.
    pub async fn export(
        &self,
        account: &str,
        mut job: ExportJob,
        bucket: Arc<dyn ObjectStore>,
        claim: Option<&Claim<'_>>,
        progress: &dyn Progress,
    ) -> Result<ExportJob, JobFailure> {
        let table = self.table(account, &job.table_name).await?;
        let Some(table) = table.filter(|table| table.table_id == job.table_id) else {
            return Err(JobFailure::new("TableNotFound", format!("Table not found: {}", job.table_arn)));
        };
        let format = if job.export_format == "ION" { ExportFormat::Ion } else { ExportFormat::DynamoDbJson };
        let time = |millis: u64| UNIX_EPOCH + Duration::from_millis(millis);
        // The history reads moments (from, to]; an incremental export's window is [from, to).
        let (export_type, from, to) = match &job.incremental {
            None => (ExportType::Full { export_time: time(job.export_time) }, None, job.export_time),
            Some(window) => {
                let view_type = if window.view_type == "NEW_IMAGE" {
                    ExportViewType::NewImage
                } else {
                    ExportViewType::NewAndOldImages
                };
                let export_type =
                    ExportType::Incremental { from_time: time(window.from), to_time: time(window.to), view_type };
                (export_type, Some(window.from.saturating_sub(1)), window.to.saturating_sub(1))
            }
        };
        let spec = ExportSpec {
            table_arn: job.table_arn.clone(),
            table_id: job.table_id.clone(),
            export_id: job.export_id().to_string(),
            s3_bucket: job.s3_bucket.clone(),
            s3_prefix: job.s3_prefix.clone(),
            s3_sse_algorithm: job.s3_sse_algorithm.clone(),
            s3_sse_kms_key_id: job.s3_sse_kms_key_id.clone(),
            format,
            export_type,
            start_time: time(job.start_time),
            max_data_file_bytes: DEFAULT_MAX_DATA_FILE_BYTES,
        };
        if from.is_none() {
            let stats = self.backend.ask(account, Request::keyspace_stats(&table.keyspace())).await?;
            progress.expect(Some(stats.0), None);
        }
        let mut writer = ExportWriter::start(bucket, spec).await?;
        let mut after: Option<ItemKey> = None;
        loop {
            let page =
                match self.backend.read_history(account, &job.table_name, from, to, after.clone(), EXPORT_PAGE).await {
                    Ok(page) => page,
                    Err(StorageError::NoSuchKeyspace) => {
                        writer.abort().await.ok();
                        return Err(JobFailure::new(
                            "PointInTimeRecoveryUnavailable",
                            "The table was deleted, or its point-in-time recovery disabled, during the export",
                        ));
                    }
                    Err(e) => {
                        writer.abort().await.ok();
                        return Err(e.into());
                    }
                };
            let mut bytes = 0;
            for entry in &page {
                bytes += entry.new.as_ref().map_or(0, Vec::len) as u64;
                match &job.incremental {
                    None => writer.write_item(&document(entry.new.as_deref())?).await?,
                    Some(window) => {
                        let new_image = entry.new.as_deref().map(|d| document(Some(d))).transpose()?;
                        let old_image = entry.old.as_deref().map(|d| document(Some(d))).transpose()?;
                        let either = new_image.as_ref().or(old_image.as_ref()).expect("the history skips neither");
                        let keys = table
                            .key_attributes()
                            .filter_map(|k| Some((k.name.clone(), either.get(&k.name)?.clone())))
                            .collect();
                        let old_image = old_image.filter(|_| window.view_type == "NEW_AND_OLD_IMAGES");
                        let change = Change { write_timestamp_micros: entry.at * 1000, keys, new_image, old_image };
                        writer.write_change(&change).await?;
                    }
                }
            }
            progress.advance(page.len() as u64, bytes);
            if let Some(claim) = claim
                && !claim.renew(&mut Job::Export(job.clone())).await?
            {
                writer.abort().await.ok();
                return Err(JobFailure::new("InternalServerError", "another server took the export over"));
            }
            if page.len() < EXPORT_PAGE as usize {
                break;
            }
            after = page.last().map(|entry| entry.key.clone());
        }
        let summary = writer.finish().await?;
        job.status = JobStatus::Completed;
        job.end_time = Some(now_millis());
        job.item_count = Some(summary.item_count);
        job.billed_size_bytes = Some(summary.billed_size_bytes);
        job.export_manifest = Some(summary.manifest_summary_key);
        Ok(job)
    }

    /// Imports the files of `bucket` under the job's prefix into its table: the job as completed,
    /// or None when its table is not there yet (the request that recorded it is still making it).
    pub async fn import(
        &self,
        account: &str,
        mut job: ImportJob,
        bucket: Arc<dyn ObjectStore>,
        claim: Option<&Claim<'_>>,
        progress: &dyn Progress,
    ) -> Result<Option<ImportJob>, JobFailure> {
        let Some(table) = self.table(account, &job.table_name).await? else {
            if now_millis() < job.start_time + TABLE_GRACE_MILLIS {
                return Ok(None);
            }
            return Err(JobFailure::new("InternalServerError", "the import's table was not made"));
        };
        if table.importing.as_deref() != Some(job.import_arn.as_str()) {
            return Err(JobFailure::new("InternalServerError", "the import's table is not the import's any more"));
        }
        let format = input_format(&job, &table)?;
        let compression: InputCompressionType =
            job.input_compression_type.parse().map_err(|e: String| JobFailure::new("InvalidParameter", e))?;
        let files =
            data_files(bucket.as_ref(), job.s3_bucket_source.get("S3KeyPrefix").and_then(Value::as_str)).await?;
        progress.expect(None, Some(files.iter().map(|(_, size)| size).sum()));
        (job.processed_item_count, job.processed_size_bytes, job.imported_item_count, job.error_count) = (0, 0, 0, 0);
        for (path, size) in files {
            let input = destination::open(bucket.as_ref(), &path).await?;
            let (sender, mut batches) = tokio::sync::mpsc::channel(IMPORT_BATCHES_WAITING);
            // The file is read (and a compressed one's header checked) off the runtime's threads.
            let format = format.clone();
            let reading =
                tokio::task::spawn_blocking(move || read_batches(ItemReader::new(input, format, compression)?, sender));
            while let Some(batch) = batches.recv().await {
                progress.advance(batch.len() as u64, 0);
                let mut group = Vec::with_capacity(IMPORT_GROUP);
                for line in batch {
                    job.processed_item_count += 1;
                    match line.map(|item| dynabox_handler::import_put(&table, &item)) {
                        Ok(Ok((put, _))) => group.push(put),
                        Ok(Err(_)) | Err(_) => job.error_count += 1,
                    }
                    if group.len() == IMPORT_GROUP {
                        job.imported_item_count += self.put(account, &mut group).await?;
                    }
                }
                job.imported_item_count += self.put(account, &mut group).await?;
                if let Some(claim) = claim
                    && !claim.renew(&mut Job::Import(job.clone())).await?
                {
                    return Err(JobFailure::new("InternalServerError", "another server took the import over"));
                }
            }
            match reading.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(JobFailure::new("S3Failure", format!("reading {path}: {e}"))),
                Err(e) => return Err(JobFailure::new("InternalServerError", format!("reading {path}: {e}"))),
            }
            job.processed_size_bytes += size;
            progress.advance(0, size);
        }
        self.end_import(account, &job).await?;
        job.status = JobStatus::Completed;
        job.end_time = Some(now_millis());
        Ok(Some(job))
    }

    /// Puts a group of imported items at once, emptying it: how many.
    async fn put(&self, account: &str, group: &mut Vec<Write>) -> Result<u64, JobFailure> {
        if group.is_empty() {
            return Ok(0);
        }
        match self.backend.ask(account, Request::write(group)).await {
            Ok(_) => {}
            Err(dynabox_handler::storage::Failure::Storage(e)) => return Err(e.into()),
            Err(dynabox_handler::storage::Failure::GuardFailed(_)) => unreachable!("imported puts have no guards"),
        }
        let count = group.len() as u64;
        group.clear();
        Ok(count)
    }

    /// Ends the import on its table: ACTIVE, its indexes left to the backfill.
    async fn end_import(&self, account: &str, job: &ImportJob) -> Result<(), JobFailure> {
        for _ in 0..16 {
            let Some(record) = self.backend.ask(account, Request::describe_table(&job.table_name)).await? else {
                return Err(JobFailure::new("InternalServerError", "the import's table was deleted"));
            };
            let Some(description) = dynabox_handler::imported(&record.description, &job.import_arn) else {
                return Err(JobFailure::new("InternalServerError", "the import's table is not the import's any more"));
            };
            let change = TableChange::record_only(&description);
            if self
                .backend
                .ask(account, Request::update_table(&job.table_name, record.version, &change))
                .await?
                .is_some()
            {
                return Ok(());
            }
        }
        Err(JobFailure::new("InternalServerError", "the import's table kept changing"))
    }

    /// Drops the table of a failed import, if it is still that import's.
    async fn drop_import_table(&self, account: &str, job: &ImportJob) {
        if let Ok(Some(table)) = self.table(account, &job.table_name).await
            && table.importing.as_deref() == Some(job.import_arn.as_str())
            && let Err(e) = self.backend.ask(account, Request::delete_table(&job.table_name)).await
        {
            tracing::warn!("dropping a failed import's table failed: {e:?}");
        }
    }

    /// A table's record, if it exists.
    async fn table(&self, account: &str, name: &str) -> Result<Option<Table>, JobFailure> {
        let Some(record) = self.backend.ask(account, Request::describe_table(name)).await? else { return Ok(None) };
        let table: Table = serde_json::from_slice(&record.description)
            .map_err(|e| JobFailure::new("InternalServerError", format!("corrupt table record: {e}")))?;
        Ok(Some(Table { version: record.version, ..table }))
    }
}

/// A job this process runs, in [`Transfers::running`] while this lives.
struct Running<'a> {
    running: &'a Mutex<HashSet<String>>,
    arn: &'a str,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.running.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(self.arn);
    }
}

/// The bucket an import reads.
fn bucket_of(job: &ImportJob) -> &str {
    job.s3_bucket_source.get("S3Bucket").and_then(Value::as_str).unwrap_or_default()
}

/// An item document of the history (DynamoDB JSON of the whole item).
fn document(bytes: Option<&[u8]>) -> Result<Item, JobFailure> {
    let bytes = bytes.ok_or_else(|| JobFailure::new("InternalServerError", "a history entry without its item"))?;
    serde_json::from_slice(bytes).map_err(|e| JobFailure::new("InternalServerError", format!("corrupt item: {e}")))
}

/// The job's InputFormat, with CSV's options and the table's key types.
fn input_format(job: &ImportJob, table: &Table) -> Result<InputFormat, JobFailure> {
    Ok(match job.input_format.as_str() {
        "ION" => InputFormat::Ion,
        "CSV" => {
            let csv = job.input_format_options.as_ref().and_then(|o| o.get("Csv"));
            let delimiter =
                csv.and_then(|c| c.get("Delimiter")).and_then(Value::as_str).map_or(b',', |d| d.as_bytes()[0]);
            let header_list = csv
                .and_then(|c| c.get("HeaderList"))
                .and_then(Value::as_array)
                .map(|names| names.iter().filter_map(Value::as_str).map(String::from).collect());
            let mut key_types: Vec<(String, ScalarAttributeType)> = Vec::new();
            for key in table.key_attributes().chain(table.indexes.iter().flat_map(|index| index.key_attributes())) {
                let kind = match key.attribute_type.as_str() {
                    "N" => ScalarAttributeType::N,
                    "B" => ScalarAttributeType::B,
                    _ => ScalarAttributeType::S,
                };
                if !key_types.iter().any(|(name, _)| *name == key.name) {
                    key_types.push((key.name.clone(), kind));
                }
            }
            InputFormat::Csv(CsvOptions { delimiter, header_list, key_types })
        }
        _ => InputFormat::DynamoDbJson,
    })
}

/// The objects an import reads under `prefix`, in key order, with their sizes: every object but
/// an export's own bookkeeping (`_started`, manifests and their checksums), so an export's folder
/// imports as it is.
async fn data_files(bucket: &dyn ObjectStore, prefix: Option<&str>) -> Result<Vec<(Path, u64)>, JobFailure> {
    let prefix = prefix.filter(|p| !p.is_empty()).map(destination::parse_prefix).transpose()?;
    let mut files = Vec::new();
    let mut listed = bucket.list(prefix.as_ref());
    while let Some(meta) = listed.next().await {
        let meta = meta.map_err(|e| JobFailure::from(DestinationError::Store(e)))?;
        let name = meta.location.filename().unwrap_or_default();
        if name == "_started" || name.ends_with(".md5") || name.starts_with("manifest-") {
            continue;
        }
        files.push((meta.location, meta.size));
    }
    if files.is_empty() {
        return Err(JobFailure::new("InvalidImportSource", "No objects found under the S3 key prefix"));
    }
    files.sort();
    Ok(files)
}

type Line = Result<Item, dynabox_transfer::import::BadLine>;

/// Reads `reader` on a blocking thread, handing its lines over in batches.
fn read_batches(reader: ItemReader, sender: tokio::sync::mpsc::Sender<Vec<Line>>) -> std::io::Result<()> {
    let mut batch = Vec::with_capacity(IMPORT_BATCH);
    for line in reader {
        batch.push(line?);
        if batch.len() == IMPORT_BATCH && sender.blocking_send(std::mem::take(&mut batch)).is_err() {
            return Ok(());
        }
    }
    if !batch.is_empty() {
        sender.blocking_send(batch).ok();
    }
    Ok(())
}
