//! Imports from a bucket: ImportTable, DescribeImport and ListImports. ImportTable makes the new
//! table at once, CREATING and marked as importing, and records the job; the host's worker reads
//! the bucket's files and puts their items ([`import_put`] decides each, with PutItem's key and
//! size rules), then ends the import ([`imported`]): the table turns ACTIVE and its global
//! indexes are filled by the backfill. A malformed line or item is counted and skipped.

use serde_json::{Map, Value, json};

use super::exports::no_transfers;
use super::jobs::{check_bucket, digest, find_by_token, forget_job, jobs, list_members, load_job, page, record_job};
use super::{Context, arn_member, items, keys};
use crate::catalog::{ImportJob, IndexStatus, Job, JobStatus, Placement, Table, table_from_create_request};
use crate::error::{ApiError, ApiResult, ErrorKind};
use crate::index;
use crate::input::{Input, Violations};
use crate::model::value::check_nesting;
use crate::model::{item_from_json, item_to_json};
use crate::storage::{Expect, Request, Storage, Write};

/// The members of TableCreationParameters; others are refused, as DynamoDB's model has no more.
const CREATION_MEMBERS: &[&str] = &[
    "TableName",
    "AttributeDefinitions",
    "KeySchema",
    "BillingMode",
    "ProvisionedThroughput",
    "OnDemandThroughput",
    "SSESpecification",
    "GlobalSecondaryIndexes",
];

pub fn import_table<S: Storage>(input: Input<'_>, cx: &mut Context<'_, S>) -> ApiResult<Value> {
    let source = input.structure("S3BucketSource")?;
    let bucket = source.map(|s| s.string("S3Bucket")).transpose()?.flatten();
    let owner = source.map(|s| s.string("S3BucketOwner")).transpose()?.flatten();
    let prefix = source.map(|s| s.string("S3KeyPrefix")).transpose()?.flatten();
    let format = input.string("InputFormat")?;
    let compression = input.string("InputCompressionType")?;
    let options = input.structure("InputFormatOptions")?;
    let csv = options.map(|o| o.structure("Csv")).transpose()?.flatten();
    let delimiter = csv.map(|c| c.string("Delimiter")).transpose()?.flatten();
    let header = csv.map(|c| c.list("HeaderList")).transpose()?.flatten();
    let parameters = input.object("TableCreationParameters")?;
    let token = input.string("ClientToken")?;
    let mut violations = Violations::default();
    if violations.not_null(source, "s3BucketSource").is_some() {
        check_bucket(&mut violations, bucket, owner, "s3BucketSource.");
    }
    if let Some(prefix) = prefix {
        violations.length(prefix, "s3BucketSource.s3KeyPrefix", 0, 1024);
    }
    violations.not_null(format, "inputFormat");
    violations.one_of(format, "inputFormat", &["DYNAMODB_JSON", "ION", "CSV"]);
    violations.one_of(compression, "inputCompressionType", &["GZIP", "ZSTD", "NONE"]);
    if let Some(delimiter) = delimiter {
        violations.length(delimiter, "inputFormatOptions.csv.delimiter", 1, 1);
    }
    if let Some(header) = header
        && !(1..=255).contains(&header.len())
    {
        violations.add_unvalued("inputFormatOptions.csv.headerList", "Member must have length between 1 and 255");
    }
    violations.not_null(parameters, "tableCreationParameters");
    if let Some(token) = token
        && token.contains('$')
    {
        violations.add(Some(token), "clientToken", "satisfy regular expression pattern: ^[^\\$]+$");
    }
    violations.finish()?;
    let (format, parameters) = (format.expect("checked"), parameters.expect("checked"));
    if options.is_some() && format != "CSV" {
        return Err(ApiError::validation("InputFormatOptions can only be specified for the CSV InputFormat"));
    }
    if let Some(unknown) = parameters.keys().find(|m| !CREATION_MEMBERS.contains(&m.as_str())) {
        return Err(ApiError::validation(format!("TableCreationParameters has no member {unknown}")));
    }
    if !cx.storage.runs_transfers() {
        return Err(no_transfers());
    }
    let digest = digest(input, "ClientToken");
    if let Some(token) = token
        && let Some(job) = find_by_token(cx, token)?
    {
        return match job {
            Job::Import(job) if job.request_digest == digest => {
                Ok(json!({"ImportTableDescription": job.description()}))
            }
            _ => Err(ApiError::new(
                ErrorKind::ImportConflict,
                "Import with the same client token was made with different parameters",
            )),
        };
    }
    let now = crate::time::now_millis() as u64;
    let placement = Placement {
        region: cx.region,
        account_id: &cx.principal.account_id,
        table_id: crate::random::uuid(),
        now: now as f64 / 1000.0,
    };
    let mut table = table_from_create_request(Input::new(parameters), placement)?;
    for index in &mut table.indexes {
        index.status = IndexStatus::Creating;
    }
    let import_id = format!("{now:014}-{}", &crate::random::uuid().replace('-', "")[..8]);
    let import_arn = format!("{}/import/{import_id}", table.table_arn);
    table.importing = Some(import_arn.clone());
    let job = Job::Import(ImportJob {
        import_arn,
        status: JobStatus::InProgress,
        table_name: table.table_name.clone(),
        table_arn: table.table_arn.clone(),
        table_id: table.table_id.clone(),
        s3_bucket_source: Value::Object(source.expect("checked").members().clone()),
        input_format: format.into(),
        input_format_options: options.map(|o| Value::Object(o.members().clone())),
        input_compression_type: compression.unwrap_or("NONE").into(),
        table_creation_parameters: Value::Object(parameters.clone()),
        client_token: token.map(Into::into),
        request_digest: digest,
        start_time: now,
        end_time: None,
        processed_item_count: 0,
        processed_size_bytes: 0,
        imported_item_count: 0,
        error_count: 0,
        failure: None,
        lease: None,
    });
    let account = cx.principal.account_id.clone();
    let name = table.table_name.clone();
    let in_use = || ApiError::new(ErrorKind::ResourceInUse, format!("Table already exists: {name}"));
    if cx.storage.ask(&account, Request::describe_table(&name))?.is_some() {
        return Err(in_use());
    }
    // The job first: a worker that finds it before its table exists waits for the table, and a
    // table never waits for a job that was not recorded.
    record_job(cx, &job)?;
    let record = serde_json::to_vec(&table).map_err(|e| ApiError::internal(e.to_string()))?;
    let indexes: Vec<String> = table.indexes.iter().map(|i| i.index_name.clone()).collect();
    if !cx.storage.ask(&account, Request::create_table(&name, &record, &indexes))? {
        forget_job(cx, &job)?;
        return Err(in_use());
    }
    let Job::Import(job) = job else { unreachable!("made above") };
    Ok(json!({"ImportTableDescription": job.description()}))
}

pub fn describe_import<S: Storage>(input: Input<'_>, cx: &mut Context<'_, S>) -> ApiResult<Value> {
    let arn = arn_member(input, "ImportArn", "importArn")?;
    match load_job(cx, arn)? {
        Some(Job::Import(job)) => Ok(json!({"ImportTableDescription": job.description()})),
        _ => Err(ApiError::new(ErrorKind::ImportNotFound, format!("Import not found: {arn}"))),
    }
}

pub fn list_imports<S: Storage>(input: Input<'_>, cx: &mut Context<'_, S>) -> ApiResult<Value> {
    let next_length = |(violations, next): (&mut Violations, &str)| violations.length(next, "nextToken", 112, 1024);
    let (table_arn, page_size, next) = list_members(input, ("PageSize", "pageSize"), next_length)?;
    let after = next.map(decode_token).transpose()?.unwrap_or_default();
    let imports = jobs(cx)?.into_iter().filter_map(|job| match job {
        Job::Import(job) if table_arn.is_none_or(|arn| job.table_arn == arn) => Some(job),
        _ => None,
    });
    let (page, more) = page(imports, |job| &job.import_arn, &after, page_size);
    let mut response = json!({"ImportSummaryList": page.iter().map(ImportJob::summary).collect::<Vec<_>>()});
    if more && let Some(last) = page.last() {
        response["NextToken"] = json!(encode_token(&last.import_arn));
    }
    Ok(response)
}

/// ListImports' NextToken: DynamoDB's is at least 112 characters, so the last ARN listed is
/// written in hex (an ARN is at least 56 bytes).
fn encode_token(arn: &str) -> String {
    arn.bytes().map(|b| format!("{b:02x}")).collect()
}

fn decode_token(token: &str) -> ApiResult<String> {
    let invalid = || ApiError::validation("Invalid NextToken");
    if !token.len().is_multiple_of(2) {
        return Err(invalid());
    }
    let bytes: Option<Vec<u8>> =
        (0..token.len()).step_by(2).map(|i| u8::from_str_radix(token.get(i..i + 2)?, 16).ok()).collect();
    String::from_utf8(bytes.ok_or_else(invalid)?).map_err(|_| invalid())
}

/// The write that puts one imported item into `table` (its base keyspace; the indexes are filled
/// after the import), with PutItem's rules on keys, index keys, size and nesting; the item's size
/// as DynamoDB counts it. The error says why the item is skipped.
pub fn import_put(table: &Table, item: &Map<String, Value>) -> ApiResult<(Write, u64)> {
    let item = item_from_json(&Value::Object(item.clone()))?;
    let key = keys::of_item(table, &item)?;
    index::check_item(table, &item, &key)?;
    items::check_item_size(&item)?;
    check_nesting(&item)?;
    let document = serde_json::to_vec(&item_to_json(&item)).map_err(|e| ApiError::internal(e.to_string()))?;
    let size = crate::model::size::item_size(&item) as u64;
    let put = Write::Put { keyspace: table.keyspace(), key, document, expect: Expect::Anything, expires_at: None };
    Ok((put, size))
}

/// The table's description once its import `arn` has put every item: no longer importing, so
/// ACTIVE, and its indexes left to the backfill. None when the table is not that import's.
pub fn imported(description: &[u8], arn: &str) -> Option<Vec<u8>> {
    let mut table: Table = serde_json::from_slice(description).ok()?;
    if table.importing.as_deref() != Some(arn) {
        return None;
    }
    table.importing = None;
    serde_json::to_vec(&table).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_next_token_names_the_last_import_listed() {
        let arn = "arn:aws:dynamodb:us-east-1:000000000000:table/t/import/01700000000000-abcdef12";
        let token = encode_token(arn);
        assert!(token.len() >= 112);
        assert_eq!(decode_token(&token).unwrap(), arn);
        for bad in ["abc", "zz", "ff"] {
            assert!(decode_token(bad).is_err(), "{bad}");
        }
    }
}
