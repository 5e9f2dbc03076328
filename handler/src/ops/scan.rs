//! Scan in its plain form: the whole table in key order, paged by Limit and 1 MB.

use serde_json::{Value, json};

use super::{Context, items::stored_item, keys, reject_unsupported};
use crate::capacity::{ReturnConsumedCapacity, read_units};
use crate::catalog::{Table, storage_error};
use crate::error::ApiResult;
use crate::input::{Input, Violations};
use crate::model::{item_from_json, item_to_json, size::item_size};
use crate::storage::{ScanRequest, Storage};

/// DynamoDB stops a page once it has read 1 MB of items.
const PAGE_BYTES: usize = 1024 * 1024;
/// Items per storage call without a Limit: about 1 MB of typical (100+ byte) items, so one call
/// never pulls a huge table into memory.
const MAX_ITEMS_PER_CALL: u32 = 10_000;

pub fn scan<S: Storage>(input: Input<'_>, cx: &mut Context<'_, S>) -> ApiResult<Value> {
    reject_unsupported(
        input,
        &[
            "ScanFilter",
            "FilterExpression",
            "ProjectionExpression",
            "AttributesToGet",
            "ExpressionAttributeNames",
            "ExpressionAttributeValues",
            "Segment",
            "TotalSegments",
            "Select",
            "IndexName",
            "ConditionalOperator",
        ],
    )?;
    let name = input.string("TableName")?;
    let limit = input.integer("Limit")?;
    let start = input.object("ExclusiveStartKey")?;
    let consistent = input.boolean("ConsistentRead")?.unwrap_or(false);
    // In DynamoDB's order, so the violations are listed as it lists them.
    let mut violations = Violations::default();
    let capacity = ReturnConsumedCapacity::gather(input, &mut violations)?;
    violations.table_name(name, "tableName");
    if let Some(limit) = limit {
        violations.range(limit, "limit", 1, i64::from(i32::MAX));
    }
    violations.finish()?;
    let name = name.expect("a null name is a violation");

    let table = Table::load(cx.storage, &cx.principal.account_id, name)?;
    let after = match start {
        Some(start) => Some(keys::of_request(
            &table,
            &item_from_json(&Value::Object(start.clone()))?,
            "The provided starting key is invalid: The provided key element does not match the schema",
        )?),
        None => None,
    };
    let limit = limit.map(|l| l as u32);
    let request = ScanRequest {
        keyspace: table.keyspace(),
        segment: 0,
        total_segments: 1,
        after,
        limit: limit.unwrap_or(MAX_ITEMS_PER_CALL).min(MAX_ITEMS_PER_CALL),
        // Documents are larger than DynamoDB's item size; the exact 1 MB cut is made below.
        byte_budget: (2 * PAGE_BYTES) as u32,
    };
    let page = cx.storage.scan(&cx.principal.account_id, &request).map_err(storage_error)?;

    let mut items = Vec::with_capacity(page.items.len());
    let mut bytes = 0;
    let mut cut_short = page.more;
    for stored in &page.items {
        let item = stored_item(stored)?;
        bytes += item_size(&item);
        items.push(item);
        if bytes >= PAGE_BYTES {
            cut_short = items.len() < page.items.len() || page.more;
            break;
        }
    }
    let reached_limit = limit.is_some_and(|l| items.len() as u32 >= l);
    let mut response = json!({"Count": items.len(), "ScannedCount": items.len()});
    if (reached_limit || cut_short)
        && let Some(last) = items.last()
    {
        response["LastEvaluatedKey"] = keys::key_attributes_of(&table, last);
    }
    response["Items"] = Value::Array(items.iter().map(item_to_json).collect());
    // A scan is charged for all it read, as one read of that many bytes.
    if let Some(consumed) = capacity.consumed(name, read_units(Some(bytes), consistent)) {
        response["ConsumedCapacity"] = consumed;
    }
    Ok(response)
}
