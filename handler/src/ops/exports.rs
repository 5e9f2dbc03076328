//! Exports to a bucket: ExportTableToPointInTime, DescribeExport and ListExports. The request is
//! checked here and recorded as a job (`catalog::jobs`); the host's worker writes the files (it
//! alone reaches buckets) from the table's history (point-in-time recovery), so an export is of
//! exactly the items committed at its moment, and records the outcome on the job.

use serde_json::{Value, json};

use super::jobs::{check_bucket, digest, find_by_token, jobs, list_members, load_job, page, record_job};
use super::recovery::{seconds, table_of_arn};
use super::{Context, arn_member, backups::timestamp};
use crate::catalog::{ExportJob, IncrementalWindow, Job, JobStatus, Table};
use crate::error::{ApiError, ApiResult, ErrorKind};
use crate::input::{Input, Violations};
use crate::storage::Storage;

/// An incremental export covers at least this and at most a day (milliseconds).
const MIN_INCREMENTAL_MILLIS: u64 = 15 * 60 * 1000;
const MAX_INCREMENTAL_MILLIS: u64 = 24 * 60 * 60 * 1000;

pub fn export_table_to_point_in_time<S: Storage>(input: Input<'_>, cx: &mut Context<'_, S>) -> ApiResult<Value> {
    let table_arn = input.string("TableArn")?;
    let bucket = input.string("S3Bucket")?;
    let prefix = input.string("S3Prefix")?;
    let owner = input.string("S3BucketOwner")?;
    let sse = input.string("S3SseAlgorithm")?;
    let kms_key = input.string("S3SseKmsKeyId")?;
    let format = input.string("ExportFormat")?;
    let export_type = input.string("ExportType")?;
    let token = input.string("ClientToken")?;
    let export_time = timestamp(input, "ExportTime")?;
    let incremental = input.structure("IncrementalExportSpecification")?;
    let view_type = incremental.map(|spec| spec.string("ExportViewType")).transpose()?.flatten();
    let mut violations = Violations::default();
    if let Some(arn) = violations.not_null(table_arn, "tableArn") {
        violations.length(arn, "tableArn", 1, 1024);
    }
    check_bucket(&mut violations, bucket, owner, "");
    if let Some(prefix) = prefix {
        violations.length(prefix, "s3Prefix", 0, 1024);
    }
    if let Some(key) = kms_key {
        violations.length(key, "s3SseKmsKeyId", 1, 2048);
    }
    if let Some(token) = token
        && token.contains('$')
    {
        violations.add(Some(token), "clientToken", "satisfy regular expression pattern: ^[^\\$]+$");
    }
    violations.one_of(sse, "s3SseAlgorithm", &["AES256", "KMS"]);
    violations.one_of(format, "exportFormat", &["DYNAMODB_JSON", "ION"]);
    violations.one_of(export_type, "exportType", &["FULL_EXPORT", "INCREMENTAL_EXPORT"]);
    violations.one_of(view_type, "incrementalExportSpecification.exportViewType", &["NEW_IMAGE", "NEW_AND_OLD_IMAGES"]);
    violations.finish()?;
    let (table_arn, bucket) = (table_arn.expect("checked"), bucket.expect("checked"));
    let incremental_asked = export_type == Some("INCREMENTAL_EXPORT");
    if !incremental_asked && incremental.is_some() {
        return Err(ApiError::validation("IncrementalExportSpecification is only valid for an INCREMENTAL_EXPORT"));
    }
    if incremental_asked && export_time.is_some() {
        return Err(ApiError::validation("ExportTime cannot be specified for an INCREMENTAL_EXPORT"));
    }
    let window = match incremental.filter(|_| incremental_asked) {
        Some(spec) => Some((
            timestamp(spec, "ExportFromTime")?,
            timestamp(spec, "ExportToTime")?,
            view_type.unwrap_or("NEW_AND_OLD_IMAGES"),
        )),
        None if incremental_asked => {
            return Err(ApiError::validation("IncrementalExportSpecification is required for an INCREMENTAL_EXPORT"));
        }
        None => None,
    };
    if !cx.storage.runs_transfers() {
        return Err(no_transfers());
    }
    let digest = digest(input, "ClientToken");
    if let Some(token) = token
        && let Some(job) = find_by_token(cx, token)?
    {
        return match job {
            Job::Export(job) if job.request_digest == digest => Ok(json!({"ExportDescription": job.description()})),
            _ => Err(ApiError::new(
                ErrorKind::ExportConflict,
                "Export with the same client token was made with different parameters",
            )),
        };
    }
    let name = table_of_arn(table_arn, cx).ok_or_else(|| {
        ApiError::validation(format!("Invalid TableArn: Invalid ResourceArn provided as input {table_arn}"))
    })?;
    let table = Table::load(cx.storage, &cx.principal.account_id, name).map_err(|e| match e.kind {
        ErrorKind::ResourceNotFound => ApiError::new(ErrorKind::TableNotFound, format!("Table not found: {table_arn}")),
        _ => e,
    })?;
    let Some(recovery) = &table.point_in_time_recovery else {
        return Err(ApiError::new(
            ErrorKind::PointInTimeRecoveryUnavailable,
            format!("Point in time recovery not enabled for table '{table_arn}'"),
        ));
    };
    let now = crate::time::now_millis() as u64;
    let earliest = recovery.earliest(now);
    let (export_time, incremental) = match window {
        None => (export_moment(export_time, earliest, now)?, None),
        Some((from, to, view_type)) => {
            let window = incremental_window(from, to, earliest, now)?;
            (window.1, Some(IncrementalWindow { from: window.0, to: window.1, view_type: view_type.into() }))
        }
    };
    let export_id = format!("{now:014}-{}", &crate::random::uuid().replace('-', "")[..8]);
    let job = ExportJob {
        export_arn: format!("{}/export/{export_id}", table.table_arn),
        status: JobStatus::InProgress,
        table_name: table.table_name.clone(),
        table_arn: table.table_arn.clone(),
        table_id: table.table_id.clone(),
        export_time,
        incremental,
        export_format: format.unwrap_or("DYNAMODB_JSON").into(),
        s3_bucket: bucket.into(),
        s3_bucket_owner: owner.map(Into::into),
        s3_prefix: prefix.map(Into::into),
        s3_sse_algorithm: sse.map(Into::into),
        s3_sse_kms_key_id: kms_key.map(Into::into),
        client_token: token.map(Into::into),
        request_digest: digest,
        start_time: now,
        end_time: None,
        item_count: None,
        billed_size_bytes: None,
        export_manifest: None,
        failure: None,
        lease: None,
    };
    let description = job.description();
    record_job(cx, &Job::Export(job))?;
    Ok(json!({"ExportDescription": description}))
}

/// What an export or import answers where no worker can reach a bucket (under Spin).
pub(super) fn no_transfers() -> ApiError {
    ApiError::validation(
        "This dynabox server has no destination for S3 buckets: exports and imports run in the dynabox host \
         (with --export-dir or an S3-compatible store), not under Spin",
    )
}

/// A full export's moment (ms): ExportTime, or now when none is given.
fn export_moment(export_time: Option<f64>, earliest: u64, now: u64) -> ApiResult<u64> {
    let Some(at) = export_time else { return Ok(now) };
    let millis = (at * 1000.0).round();
    if !(millis >= earliest as f64 && millis <= now as f64) {
        return Err(ApiError::new(
            ErrorKind::InvalidExportTime,
            format!(
                "Invalid export time: ExportTime must be between EarliestRestorableDateTime {} and now {}",
                seconds(earliest),
                seconds(now)
            ),
        ));
    }
    Ok(millis as u64)
}

/// An incremental export's window (ms), checked against the recovery window and DynamoDB's
/// bounds on its length.
fn incremental_window(from: Option<f64>, to: Option<f64>, earliest: u64, now: u64) -> ApiResult<(u64, u64)> {
    let invalid = |message: String| ApiError::new(ErrorKind::InvalidExportTime, message);
    let from = from.ok_or_else(|| ApiError::validation("ExportFromTime is required for an INCREMENTAL_EXPORT"))?;
    let (from, to) = ((from * 1000.0).round(), to.map_or(now as f64, |to| (to * 1000.0).round()));
    if from.is_nan() || from < earliest as f64 {
        return Err(invalid(format!(
            "ExportFromTime {} is before the EarliestRestorableDateTime {}",
            seconds(from as u64),
            seconds(earliest)
        )));
    }
    if to > now as f64 {
        return Err(invalid("ExportToTime cannot be in the future".into()));
    }
    if to.is_nan() || to <= from {
        return Err(invalid("ExportToTime must be after ExportFromTime".into()));
    }
    let length = (to - from) as u64;
    if !(MIN_INCREMENTAL_MILLIS..=MAX_INCREMENTAL_MILLIS).contains(&length) {
        return Err(invalid("The incremental export period must be at least 15 minutes and at most 24 hours".into()));
    }
    Ok((from as u64, to as u64))
}

pub fn describe_export<S: Storage>(input: Input<'_>, cx: &mut Context<'_, S>) -> ApiResult<Value> {
    let arn = arn_member(input, "ExportArn", "exportArn")?;
    match load_job(cx, arn)? {
        Some(Job::Export(job)) => Ok(json!({"ExportDescription": job.description()})),
        _ => Err(ApiError::new(ErrorKind::ExportNotFound, format!("Export not found: {arn}"))),
    }
}

pub fn list_exports<S: Storage>(input: Input<'_>, cx: &mut Context<'_, S>) -> ApiResult<Value> {
    let (table_arn, max, next) = list_members(input, ("MaxResults", "maxResults"), |_| {})?;
    let exports = jobs(cx)?.into_iter().filter_map(|job| match job {
        Job::Export(job) if table_arn.is_none_or(|arn| job.table_arn == arn) => Some(job),
        _ => None,
    });
    let (page, more) = page(exports, |job| &job.export_arn, next.unwrap_or_default(), max);
    let mut response = json!({"ExportSummaries": page.iter().map(ExportJob::summary).collect::<Vec<_>>()});
    if more && let Some(last) = page.last() {
        response["NextToken"] = json!(last.export_arn);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: u64 = 60_000;

    #[test]
    fn an_incremental_window_lies_in_the_recovery_window_and_spans_15_minutes_to_a_day() {
        let (earliest, now) = (100 * MINUTE, 2000 * MINUTE);
        let s = |millis: u64| Some(millis as f64 / 1000.0);
        assert_eq!(
            incremental_window(s(100 * MINUTE), s(115 * MINUTE), earliest, now).unwrap(),
            (100 * MINUTE, 115 * MINUTE)
        );
        assert_eq!(incremental_window(s(1980 * MINUTE), None, earliest, now).unwrap(), (1980 * MINUTE, now));
        for (from, to) in [
            (s(99 * MINUTE), s(120 * MINUTE)),
            (s(200 * MINUTE), s(214 * MINUTE)),
            (s(200 * MINUTE), s(200 * MINUTE + 24 * 60 * MINUTE + 1)),
            (s(200 * MINUTE), s(190 * MINUTE)),
            (s(1990 * MINUTE), s(2010 * MINUTE)),
        ] {
            assert_eq!(incremental_window(from, to, earliest, now).unwrap_err().kind, ErrorKind::InvalidExportTime);
        }
        assert_eq!(incremental_window(None, None, earliest, now).unwrap_err().kind, ErrorKind::Validation);
    }

    #[test]
    fn a_full_export_is_of_now_or_a_moment_in_the_recovery_window() {
        assert_eq!(export_moment(None, 1000, 5000).unwrap(), 5000);
        assert_eq!(export_moment(Some(2.5), 1000, 5000).unwrap(), 2500);
        for outside in [0.5, 5.001, f64::NAN] {
            assert_eq!(export_moment(Some(outside), 1000, 5000).unwrap_err().kind, ErrorKind::InvalidExportTime);
        }
    }
}
