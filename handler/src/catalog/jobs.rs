//! Exports and imports as the store keeps them: one record per job in the account's internal
//! jobs table, keyed by the job's ARN. The handler writes a job when it accepts the request; the
//! host's worker, which alone can reach a bucket, claims it for a while (its lease), does it and
//! writes its outcome, each change guarded by the version it read, so several servers on one
//! store never both finish one job. A job whose lease ran out (its server stopped) is claimed and
//! done again from the start by the next worker that finds it.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::storage::{ItemKey, Keyspace, ScanRequest, StoredItem};

/// The account's jobs: internal, like [`super::CLIENT_TOKENS_TABLE`].
pub const JOBS_TABLE: &str = "#jobs";

/// How long a new job is left to its requester before a worker takes it up (milliseconds):
/// `dynabox export` and `import` do their jobs themselves and claim them at once.
pub const REQUESTER_FIRST_MILLIS: u64 = 2_000;
/// How long a worker's claim on a job lasts unless it renews it (milliseconds).
pub const LEASE_MILLIS: u64 = 30_000;

/// A job's state, as DescribeExport and DescribeImport name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobStatus {
    InProgress,
    Completed,
    Failed,
}

/// What went wrong with a job, for its `FailureCode` and `FailureMessage`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Failure {
    pub failure_code: String,
    pub failure_message: String,
}

/// A worker's hold on a job: which worker (a process's random id) and until when (ms since the
/// epoch). None while no worker has it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Lease {
    pub holder: String,
    pub until: u64,
}

impl Lease {
    /// Whether a worker may claim a job held by this lease at `now` (ms).
    pub fn claimable(lease: Option<&Lease>, now: u64) -> bool {
        lease.is_none_or(|lease| lease.until <= now)
    }
}

/// The window of an incremental export, in milliseconds since the epoch: from (inclusive) to
/// (exclusive), and the images it writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IncrementalWindow {
    pub from: u64,
    pub to: u64,
    /// NEW_IMAGE or NEW_AND_OLD_IMAGES.
    pub view_type: String,
}

/// An export (ExportTableToPointInTime).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ExportJob {
    pub export_arn: String,
    pub status: JobStatus,
    pub table_name: String,
    pub table_arn: String,
    pub table_id: String,
    /// The moment a full export is of; for an incremental one, the end of its window (ms).
    pub export_time: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incremental: Option<IncrementalWindow>,
    /// DYNAMODB_JSON or ION.
    pub export_format: String,
    pub s3_bucket: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_bucket_owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_sse_algorithm: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_sse_kms_key_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
    /// What the request asked, for telling a repeated ClientToken from a reused one.
    pub request_digest: String,
    /// When the export was asked for and when it ended (ms).
    pub start_time: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_count: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billed_size_bytes: Option<u64>,
    /// The key of `manifest-summary.json`, once written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export_manifest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<Lease>,
}

impl ExportJob {
    /// The export id, the last part of its ARN.
    pub fn export_id(&self) -> &str {
        self.export_arn.rsplit('/').next().unwrap_or_default()
    }

    /// DynamoDB's `ExportDescription`.
    pub fn description(&self) -> Value {
        let mut description = Map::new();
        let mut put = |name: &str, value: Value| {
            if !value.is_null() {
                description.insert(name.into(), value);
            }
        };
        put("ExportArn", json!(self.export_arn));
        put("ExportStatus", json!(self.status));
        put("StartTime", json!(seconds(self.start_time)));
        put("EndTime", json!(self.end_time.map(seconds)));
        put("ExportManifest", json!(self.export_manifest));
        put("TableArn", json!(self.table_arn));
        put("TableId", json!(self.table_id));
        put("ExportTime", json!(seconds(self.export_time)));
        put("ClientToken", json!(self.client_token));
        put("S3Bucket", json!(self.s3_bucket));
        put("S3BucketOwner", json!(self.s3_bucket_owner));
        put("S3Prefix", json!(self.s3_prefix));
        put("S3SseAlgorithm", json!(self.s3_sse_algorithm));
        put("S3SseKmsKeyId", json!(self.s3_sse_kms_key_id));
        put("FailureCode", json!(self.failure.as_ref().map(|f| &f.failure_code)));
        put("FailureMessage", json!(self.failure.as_ref().map(|f| &f.failure_message)));
        put("ExportFormat", json!(self.export_format));
        put("BilledSizeBytes", json!(self.billed_size_bytes));
        put("ItemCount", json!(self.item_count));
        put("ExportType", json!(self.export_type()));
        if let Some(window) = &self.incremental {
            put(
                "IncrementalExportSpecification",
                json!({
                    "ExportFromTime": seconds(window.from),
                    "ExportToTime": seconds(window.to),
                    "ExportViewType": window.view_type,
                }),
            );
        }
        Value::Object(description)
    }

    pub fn export_type(&self) -> &'static str {
        if self.incremental.is_some() { "INCREMENTAL_EXPORT" } else { "FULL_EXPORT" }
    }

    /// DynamoDB's `ExportSummary` (ListExports).
    pub fn summary(&self) -> Value {
        json!({"ExportArn": self.export_arn, "ExportStatus": self.status, "ExportType": self.export_type()})
    }
}

/// An import (ImportTable): the request as DynamoDB describes it back, and its counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImportJob {
    pub import_arn: String,
    pub status: JobStatus,
    pub table_name: String,
    pub table_arn: String,
    pub table_id: String,
    /// The request's `S3BucketSource`, `InputFormat`, `InputFormatOptions`, `InputCompressionType`
    /// and `TableCreationParameters`, as given.
    pub s3_bucket_source: Value,
    pub input_format: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_format_options: Option<Value>,
    pub input_compression_type: String,
    pub table_creation_parameters: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
    pub request_digest: String,
    /// ms since the epoch.
    pub start_time: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<u64>,
    #[serde(default)]
    pub processed_item_count: u64,
    #[serde(default)]
    pub processed_size_bytes: u64,
    #[serde(default)]
    pub imported_item_count: u64,
    #[serde(default)]
    pub error_count: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<Lease>,
}

impl ImportJob {
    /// DynamoDB's `ImportTableDescription`.
    pub fn description(&self) -> Value {
        let mut description = json!({
            "ImportArn": self.import_arn,
            "ImportStatus": self.status,
            "TableArn": self.table_arn,
            "TableId": self.table_id,
            "S3BucketSource": self.s3_bucket_source,
            "ErrorCount": self.error_count,
            "InputFormat": self.input_format,
            "InputCompressionType": self.input_compression_type,
            "TableCreationParameters": self.table_creation_parameters,
            "StartTime": seconds(self.start_time),
            "ProcessedSizeBytes": self.processed_size_bytes,
            "ProcessedItemCount": self.processed_item_count,
            "ImportedItemCount": self.imported_item_count,
        });
        if let Some(options) = &self.input_format_options {
            description["InputFormatOptions"] = options.clone();
        }
        if let Some(token) = &self.client_token {
            description["ClientToken"] = json!(token);
        }
        if let Some(end) = self.end_time {
            description["EndTime"] = json!(seconds(end));
        }
        if let Some(failure) = &self.failure {
            description["FailureCode"] = json!(failure.failure_code);
            description["FailureMessage"] = json!(failure.failure_message);
        }
        description
    }

    /// DynamoDB's `ImportSummary` (ListImports).
    pub fn summary(&self) -> Value {
        let mut summary = json!({
            "ImportArn": self.import_arn,
            "ImportStatus": self.status,
            "TableArn": self.table_arn,
            "S3BucketSource": self.s3_bucket_source,
            "InputFormat": self.input_format,
            "StartTime": seconds(self.start_time),
        });
        if let Some(end) = self.end_time {
            summary["EndTime"] = json!(seconds(end));
        }
        summary
    }
}

/// A stored job of either kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Job {
    Export(ExportJob),
    Import(ImportJob),
}

impl Job {
    pub fn arn(&self) -> &str {
        match self {
            Job::Export(job) => &job.export_arn,
            Job::Import(job) => &job.import_arn,
        }
    }

    pub fn status(&self) -> JobStatus {
        match self {
            Job::Export(job) => job.status,
            Job::Import(job) => job.status,
        }
    }

    pub fn lease(&self) -> Option<&Lease> {
        match self {
            Job::Export(job) => job.lease.as_ref(),
            Job::Import(job) => job.lease.as_ref(),
        }
    }

    /// Sets or clears the worker's hold.
    pub fn set_lease(&mut self, lease: Option<Lease>) {
        match self {
            Job::Export(job) => job.lease = lease,
            Job::Import(job) => job.lease = lease,
        }
    }

    /// From when a worker should take the job up (seconds since the epoch, rounded up): once it
    /// is [`REQUESTER_FIRST_MILLIS`] old and no lease holds it. None once it has ended. Stored as
    /// the job's expiry, so the worker finds the jobs due on the store's expiry index
    /// (`Request::Expired`) rather than by reading every job there ever was.
    pub fn due(&self) -> Option<u64> {
        let start_time = match self {
            Job::Export(job) => job.start_time,
            Job::Import(job) => job.start_time,
        };
        let free = self.lease().map_or(0, |lease| lease.until);
        let due = (start_time + REQUESTER_FIRST_MILLIS).max(free);
        (self.status() == JobStatus::InProgress).then_some(due.div_ceil(1000))
    }

    /// Whether a worker should take the job up at `now` (ms).
    pub fn wants_worker(&self, now: u64) -> bool {
        self.due().is_some_and(|due| due * 1000 <= now)
    }

    /// The job read back from the store, or why it cannot be.
    pub fn read(stored: &StoredItem) -> Result<Job, String> {
        serde_json::from_slice(&stored.document).map_err(|e| format!("corrupt job record: {e}"))
    }

    pub fn document(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a job record serializes")
    }

    pub fn key(&self) -> ItemKey {
        job_key(self.arn())
    }
}

/// The jobs table's key of the job named `arn`.
pub fn job_key(arn: &str) -> ItemKey {
    ItemKey { partition: arn.as_bytes().to_vec(), sort: Vec::new() }
}

pub fn jobs_keyspace() -> Keyspace {
    Keyspace::table(JOBS_TABLE)
}

/// A page of the account's jobs, in ARN order, after `after`.
pub fn jobs_scan(after: Option<ItemKey>) -> ScanRequest {
    ScanRequest { keyspace: jobs_keyspace(), segment: 0, total_segments: 1, after, limit: 1000, byte_budget: u32::MAX }
}

fn seconds(millis: u64) -> f64 {
    millis as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_can_be_claimed_once_it_ran_out() {
        assert!(Lease::claimable(None, 5));
        let lease = Lease { holder: "a".into(), until: 10 };
        assert!(!Lease::claimable(Some(&lease), 9));
        assert!(Lease::claimable(Some(&lease), 10));
    }

    #[test]
    fn a_job_is_due_once_its_requester_had_its_turn_and_no_lease_holds_it() {
        let export = |lease: Option<Lease>, status| {
            let job: ExportJob = serde_json::from_value(serde_json::json!({
                "ExportArn": "a", "Status": status, "TableName": "t", "TableArn": "a", "TableId": "i",
                "ExportTime": 0, "ExportFormat": "ION", "S3Bucket": "b", "RequestDigest": "", "StartTime": 10_000,
            }))
            .unwrap();
            Job::Export(ExportJob { lease, ..job })
        };
        assert_eq!(export(None, "IN_PROGRESS").due(), Some(12));
        let held = Lease { holder: "h".into(), until: 40_500 };
        assert_eq!(export(Some(held.clone()), "IN_PROGRESS").due(), Some(41));
        assert!(!export(Some(held.clone()), "IN_PROGRESS").wants_worker(40_999));
        assert!(export(Some(held), "IN_PROGRESS").wants_worker(41_000));
        assert_eq!(export(None, "COMPLETED").due(), None);
    }
}
