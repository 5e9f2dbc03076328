//! PutItem, GetItem, DeleteItem in their plain forms (no expressions yet).

use serde_json::{Map, Value, json};

use super::{Context, keys, reject_unsupported, table_name};
use crate::catalog::{Table, storage_error};
use crate::error::{ApiError, ApiResult};
use crate::input::{Input, Violations};
use crate::model::{item_from_json, item_to_json, size::item_size};
use crate::storage::{Expect, ItemKey, Storage, StoredItem, Write, WriteError};

const MAX_ITEM_BYTES: usize = 400 * 1024;
const KEY_MISMATCH: &str = "The provided key element does not match the schema";
/// Members of the expression and condition families, which come with the next version.
const CONDITIONAL_MEMBERS: &[&str] = &[
    "ConditionExpression",
    "Expected",
    "ConditionalOperator",
    "ExpressionAttributeNames",
    "ExpressionAttributeValues",
    "ReturnValuesOnConditionCheckFailure",
];

pub fn put_item<S: Storage>(input: Input<'_>, cx: &mut Context<'_, S>) -> ApiResult<Value> {
    reject_unsupported(input, CONDITIONAL_MEMBERS)?;
    let name = table_name(input)?;
    let item = input.object("Item")?;
    let return_old = return_values(input)?;
    let mut violations = Violations::default();
    let item = violations.not_null(item, "item");
    violations.finish()?;
    let table = Table::load(cx.storage, name)?;
    let item = item_from_json(&Value::Object(item.expect("checked").clone()))?;
    let key = keys::of_item(&table, &item)?;
    if item_size(&item) > MAX_ITEM_BYTES {
        return Err(ApiError::validation("Item size has exceeded the maximum allowed size"));
    }
    let document = serde_json::to_vec(&item_to_json(&item)).map_err(|e| ApiError::internal(e.to_string()))?;
    write_item(cx.storage, name, key, Some(document), return_old)
}

pub fn get_item<S: Storage>(input: Input<'_>, cx: &mut Context<'_, S>) -> ApiResult<Value> {
    reject_unsupported(input, &["ProjectionExpression", "AttributesToGet", "ExpressionAttributeNames"])?;
    let name = table_name(input)?;
    let key = request_key(input)?;
    input.boolean("ConsistentRead")?; // every read is strongly consistent here
    let table = Table::load(cx.storage, name)?;
    let key = keys::of_request(&table, &item_from_json(&key)?, KEY_MISMATCH)?;
    match cx.storage.get(name, &key).map_err(storage_error)? {
        Some(stored) => Ok(json!({"Item": stored_document(&stored)?})),
        None => Ok(json!({})),
    }
}

pub fn delete_item<S: Storage>(input: Input<'_>, cx: &mut Context<'_, S>) -> ApiResult<Value> {
    reject_unsupported(input, CONDITIONAL_MEMBERS)?;
    let name = table_name(input)?;
    let key = request_key(input)?;
    let return_old = return_values(input)?;
    let table = Table::load(cx.storage, name)?;
    let key = keys::of_request(&table, &item_from_json(&key)?, KEY_MISMATCH)?;
    write_item(cx.storage, name, key, None, return_old)
}

fn request_key(input: Input<'_>) -> ApiResult<Value> {
    let key = input.object("Key")?;
    let mut violations = Violations::default();
    let key = violations.not_null(key, "key");
    violations.finish()?;
    Ok(Value::Object(key.expect("checked").clone()))
}

/// Whether the caller asked for the old item back (`ReturnValues` ALL_OLD; NONE otherwise).
fn return_values(input: Input<'_>) -> ApiResult<bool> {
    let value = input.string("ReturnValues")?;
    let mut violations = Violations::default();
    violations.one_of(value, "returnValues", &["NONE", "ALL_OLD", "UPDATED_OLD", "ALL_NEW", "UPDATED_NEW"]);
    violations.finish()?;
    match value {
        None | Some("NONE") => Ok(false),
        Some("ALL_OLD") => Ok(true),
        Some(_) => Err(ApiError::validation("Return values set to invalid value")),
    }
}

/// Puts (`Some(document)`) or deletes (`None`) one item. When the old item is wanted, it is read
/// and the write is guarded by its version, retried if another writer got there first, so the
/// item returned is exactly the one replaced.
fn write_item(
    storage: &mut impl Storage,
    keyspace: &str,
    key: ItemKey,
    document: Option<Vec<u8>>,
    return_old: bool,
) -> ApiResult<Value> {
    if !return_old {
        let write = Write { keyspace: keyspace.to_string(), key, document, expect: Expect::Anything };
        storage.write(std::slice::from_ref(&write)).map_err(write_error)?;
        return Ok(json!({}));
    }
    let mut write = Write { keyspace: keyspace.to_string(), key, document, expect: Expect::Anything };
    loop {
        let old = storage.get(keyspace, &write.key).map_err(storage_error)?;
        write.expect = old.as_ref().map_or(Expect::Absent, |o| Expect::Version(o.version));
        match storage.write(std::slice::from_ref(&write)) {
            Ok(()) => {
                return Ok(match old {
                    Some(old) => json!({"Attributes": stored_document(&old)?}),
                    None => json!({}),
                });
            }
            Err(WriteError::GuardFailed(_)) => continue,
            Err(other) => return Err(write_error(other)),
        }
    }
}

fn write_error(error: WriteError) -> ApiError {
    match error {
        WriteError::Storage(e) => storage_error(e),
        WriteError::GuardFailed(_) => ApiError::internal("unexpected guard failure on an unguarded write"),
    }
}

/// A stored document as response JSON. Parsing it again puts attributes in name order, whatever
/// order the store kept (PostgreSQL's jsonb reorders keys).
pub fn stored_document(stored: &StoredItem) -> ApiResult<Map<String, Value>> {
    match serde_json::from_slice(&stored.document) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(ApiError::internal("stored document is not a JSON object")),
    }
}
