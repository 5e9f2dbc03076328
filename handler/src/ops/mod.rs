//! DynamoDB operations, one module per family. Each takes the parsed request body and answers
//! the JSON response body.

mod backups;
mod batch;
mod exports;
mod imports;
mod items;
mod jobs;
mod keys;
mod query;
mod read;
mod recovery;
mod scan;
mod service;
mod streams;
mod tables;
mod tags;
mod transactions;
mod ttl;

pub use backups::system_backup_expiry;
pub use imports::{import_put, imported};
use serde_json::{Map, Value};
pub use ttl::expire_step;

use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::input::{Input, Violations};
use crate::report::Report;
use crate::storage::Storage;

/// What an operation may use besides its input: the store and who is asking; and where it notes
/// the capacity it consumed, for the host.
pub struct Context<'a, S: Storage> {
    pub storage: &'a mut S,
    pub principal: &'a Principal,
    /// The region the request was signed for; goes into ARNs.
    pub region: &'a str,
    /// The request's `Host`: the address the client reached.
    pub host: Option<&'a str>,
    pub report: &'a mut Report,
}

/// Every operation this version answers.
const OPERATIONS: &[&str] = &[
    "CreateTable",
    "DescribeTable",
    "UpdateTable",
    "ListTables",
    "DeleteTable",
    "PutItem",
    "GetItem",
    "UpdateItem",
    "DeleteItem",
    "Query",
    "Scan",
    "BatchWriteItem",
    "BatchGetItem",
    "TransactGetItems",
    "TransactWriteItems",
    "TagResource",
    "UntagResource",
    "ListTagsOfResource",
    "DescribeLimits",
    "DescribeEndpoints",
    "DescribeContinuousBackups",
    "UpdateContinuousBackups",
    "RestoreTableToPointInTime",
    "CreateBackup",
    "DescribeBackup",
    "ListBackups",
    "DeleteBackup",
    "RestoreTableFromBackup",
    "ExportTableToPointInTime",
    "DescribeExport",
    "ListExports",
    "ImportTable",
    "DescribeImport",
    "ListImports",
    "UpdateTimeToLive",
    "DescribeTimeToLive",
];

pub fn exists(name: &str) -> bool {
    known(name).is_some()
}

/// `name` as this version's own spelling of an operation it answers.
pub fn known(name: &str) -> Option<&'static str> {
    OPERATIONS.iter().chain(streams::OPERATIONS).find(|known| **known == name).copied()
}

/// Whether `name` is an operation of the DynamoDB Streams API, which has a target prefix of its own.
pub fn is_streams(name: &str) -> bool {
    streams::OPERATIONS.contains(&name)
}

/// Runs operation `name`, one of [`OPERATIONS`] or the Streams API's.
pub fn dispatch<S: Storage>(name: &str, body: &Map<String, Value>, cx: &mut Context<'_, S>) -> ApiResult<Value> {
    let input = Input::new(body);
    match name {
        "CreateTable" => tables::create_table(input, cx),
        "DescribeTable" => tables::describe_table(input, cx),
        "UpdateTable" => tables::update_table(input, cx),
        "ListTables" => tables::list_tables(input, cx),
        "DeleteTable" => tables::delete_table(input, cx),
        "PutItem" => items::put_item(input, cx),
        "GetItem" => items::get_item(input, cx),
        "UpdateItem" => items::update_item(input, cx),
        "DeleteItem" => items::delete_item(input, cx),
        "Query" => query::query(input, cx),
        "Scan" => scan::scan(input, cx),
        "BatchWriteItem" => batch::batch_write_item(input, cx),
        "BatchGetItem" => batch::batch_get_item(input, cx),
        "TransactGetItems" => transactions::transact_get_items(input, cx),
        "TransactWriteItems" => transactions::transact_write_items(input, cx),
        "TagResource" => tags::tag_resource(input, cx),
        "UntagResource" => tags::untag_resource(input, cx),
        "ListTagsOfResource" => tags::list_tags_of_resource(input, cx),
        "DescribeLimits" => service::describe_limits(input, cx),
        "DescribeEndpoints" => service::describe_endpoints(input, cx),
        "DescribeContinuousBackups" => recovery::describe_continuous_backups(input, cx),
        "UpdateContinuousBackups" => recovery::update_continuous_backups(input, cx),
        "RestoreTableToPointInTime" => recovery::restore_table_to_point_in_time(input, cx),
        "CreateBackup" => backups::create_backup(input, cx),
        "DescribeBackup" => backups::describe_backup(input, cx),
        "ListBackups" => backups::list_backups(input, cx),
        "DeleteBackup" => backups::delete_backup(input, cx),
        "RestoreTableFromBackup" => backups::restore_table_from_backup(input, cx),
        "ExportTableToPointInTime" => exports::export_table_to_point_in_time(input, cx),
        "DescribeExport" => exports::describe_export(input, cx),
        "ListExports" => exports::list_exports(input, cx),
        "ImportTable" => imports::import_table(input, cx),
        "DescribeImport" => imports::describe_import(input, cx),
        "ListImports" => imports::list_imports(input, cx),
        "UpdateTimeToLive" => ttl::update_time_to_live(input, cx),
        "DescribeTimeToLive" => ttl::describe_time_to_live(input, cx),
        "ListStreams" => streams::list_streams(input, cx),
        "DescribeStream" => streams::describe_stream(input, cx),
        "GetShardIterator" => streams::get_shard_iterator(input, cx),
        "GetRecords" => streams::get_records(input, cx),
        _ => unreachable!("dispatch is only called for names in OPERATIONS"),
    }
}

/// Refuses members this version does not implement yet, rather than silently ignoring them.
fn reject_unsupported(input: Input<'_>, members: &[&str]) -> ApiResult<()> {
    match members.iter().find(|m| input.has(m)) {
        Some(member) => Err(ApiError::validation(format!("dynabox does not support {member} yet"))),
        None => Ok(()),
    }
}

/// The request's ARN member `member` (a backup's, an export's, an import's), checked as DynamoDB
/// checks those; `path` is its name in violation messages.
fn arn_member<'a>(input: Input<'a>, member: &str, path: &str) -> ApiResult<&'a str> {
    let arn = input.string(member)?;
    let mut violations = Violations::default();
    if let Some(arn) = violations.not_null(arn, path) {
        violations.length(arn, path, 37, 1024);
    }
    violations.finish()?;
    Ok(arn.expect("a null ARN is a violation"))
}

/// The request's `TableName`, checked against DynamoDB's naming rules. `required`: the table
/// operations (DescribeTable, DeleteTable) refuse a missing name before anything else.
fn table_name(input: Input<'_>, required: bool) -> ApiResult<&str> {
    let name = if required { Some(input.required_string("TableName")?) } else { input.string("TableName")? };
    let mut violations = Violations::default();
    violations.table_name(name, "tableName");
    violations.finish()?;
    Ok(name.expect("a null name is a violation"))
}
