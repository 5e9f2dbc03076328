//! CreateTable, DescribeTable, ListTables, DeleteTable.

use serde_json::{Value, json};

use super::{Context, table_name};
use crate::catalog::{Placement, Stats, Table, storage_error, table_from_create_request};
use crate::error::{ApiError, ApiResult, ErrorKind};
use crate::input::{Input, Violations};
use crate::storage::Storage;

pub fn create_table<S: Storage>(input: Input<'_>, cx: &mut Context<'_, S>) -> ApiResult<Value> {
    let placement = Placement {
        region: cx.region,
        account_id: &cx.principal.account_id,
        table_id: crate::random::uuid(),
        now: crate::random::now_seconds(),
    };
    let table = table_from_create_request(input, placement)?;
    let record = serde_json::to_vec(&table).map_err(|e| ApiError::internal(e.to_string()))?;
    let account = &cx.principal.account_id;
    let indexes: Vec<String> = table.indexes.iter().map(|i| i.index_name.clone()).collect();
    if !cx.storage.create_table(account, &table.table_name, &record, &indexes).map_err(storage_error)? {
        return Err(ApiError::new(ErrorKind::ResourceInUse, format!("Table already exists: {}", table.table_name)));
    }
    Ok(json!({"TableDescription": table.description(&Stats::empty(&table))}))
}

pub fn describe_table<S: Storage>(input: Input<'_>, cx: &mut Context<'_, S>) -> ApiResult<Value> {
    let name = table_name(input, true)?;
    let account = &cx.principal.account_id;
    let table = Table::load(cx.storage, account, name).map_err(|e| not_found_named(e, name))?;
    let stats = Stats::load(cx.storage, account, &table).map_err(|e| not_found_named(e, name))?;
    Ok(json!({"Table": table.description(&stats)}))
}

pub fn delete_table<S: Storage>(input: Input<'_>, cx: &mut Context<'_, S>) -> ApiResult<Value> {
    let name = table_name(input, true)?;
    let account = &cx.principal.account_id;
    let table = Table::load(cx.storage, account, name).map_err(|e| not_found_named(e, name))?;
    if table.deletion_protection {
        return Err(ApiError::validation(
            "Resource cannot be deleted as it is currently protected against deletion. Disable deletion protection first.",
        ));
    }
    let (count, bytes) = cx.storage.keyspace_stats(account, &table.keyspace()).map_err(storage_error)?;
    if !cx.storage.delete_table(account, name).map_err(storage_error)? {
        return Err(table_not_found(name));
    }
    Ok(json!({"TableDescription": table.deleting_description(count, bytes)}))
}

pub fn list_tables<S: Storage>(input: Input<'_>, cx: &mut Context<'_, S>) -> ApiResult<Value> {
    let start = input.string("ExclusiveStartTableName")?;
    let limit = input.integer("Limit")?;
    let mut violations = Violations::default();
    if let Some(start) = start {
        violations.table_name(Some(start), "exclusiveStartTableName");
    }
    if let Some(limit) = limit {
        violations.range(limit, "limit", 1, 100);
    }
    violations.finish()?;
    let limit = limit.unwrap_or(100) as u32;
    // One name more than asked for tells whether another page follows.
    let mut names = cx.storage.list_tables(&cx.principal.account_id, start, limit + 1).map_err(storage_error)?;
    let more = names.len() > limit as usize;
    names.truncate(limit as usize);
    let mut response = json!({"TableNames": names});
    if more {
        response["LastEvaluatedTableName"] = json!(names.last());
    }
    Ok(response)
}

/// DescribeTable and DeleteTable name the missing table in their message.
fn not_found_named(error: ApiError, name: &str) -> ApiError {
    match error.kind {
        ErrorKind::ResourceNotFound => table_not_found(name),
        _ => error,
    }
}

fn table_not_found(name: &str) -> ApiError {
    ApiError::resource_not_found(format!("Requested resource not found: Table: {name} not found"))
}
