//! BatchWriteItem and BatchGetItem: many single-item writes or reads across tables in one call.
//!
//! The whole request is validated, and every table loaded, before anything is written or read.
//! Each write takes the single-item write path (`items::apply`), so it is atomic with its index
//! entries; the batch as a whole is not atomic, as in DynamoDB. Writes are left unprocessed only
//! after the store failed one (there is no throughput to exceed); a read stops at DynamoDB's
//! 16 MB of items and answers the rest as `UnprocessedKeys`.

use std::collections::HashSet;

use serde_json::{Map, Value, json};

use super::items::{self, Change, KEY_MISMATCH};
use super::{Context, keys};
use crate::capacity::{ReturnConsumedCapacity, read_units, write_units};
use crate::catalog::Table;
use crate::error::{ApiError, ApiResult, ErrorKind};
use crate::expr::{self, legacy};
use crate::index;
use crate::input::{Input, Violations, as_object, java_string, mismatch};
use crate::model::{Item, item_from_json, item_to_json, size::item_size};
use crate::storage::{Request, Storage};

const MAX_WRITES: usize = 25;
const MAX_KEYS: usize = 100;
/// A BatchGetItem answers at most 16 MB of items.
const RESPONSE_BYTES: usize = 16 * 1024 * 1024;
const ONE_DATATYPE: &str =
    "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes";

/// `RequestItems`' own constraints: not empty (refused at once, in DynamoDB's words for
/// `operation`), table names as map keys and, for BatchWriteItem, 1 to 25 requests per table as
/// map values. Each broken rule is one violation for the whole map.
fn request_items_violations(
    operation: &str,
    items: &Map<String, Value>,
    violations: &mut Violations,
    max_per_table: Option<usize>,
) -> ApiResult<()> {
    if items.is_empty() {
        return Err(ApiError::validation(format!("The requestItems parameter is required for {operation}")));
    }
    let shown = java_string(&Value::Object(items.clone()));
    let mut names = Violations::default();
    items.keys().for_each(|name| names.table_name(Some(name), "name"));
    if names.finish().is_err() {
        violations.add_constraint(
            Some(&shown),
            "requestItems",
            "Map keys must satisfy constraint: [Member must have length less than or equal to 255, \
             Member must have length greater than or equal to 3, \
             Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+]",
        );
    }
    let Some(max) = max_per_table else { return Ok(()) };
    if items.values().any(|v| v.as_array().is_some_and(|list| list.is_empty() || list.len() > max)) {
        violations.add_constraint(
            Some(&shown),
            "requestItems",
            &format!(
                "Map value must satisfy constraint: [Member must have length less than or equal to {max}, \
                 Member must have length greater than or equal to 1]"
            ),
        );
    }
    Ok(())
}

/// One request of a BatchWriteItem: the item to put, or the key to delete.
enum BatchWrite {
    Put(Item),
    Delete(Item),
}

pub fn batch_write_item<S: Storage>(input: Input<'_>, cx: &mut Context<'_, S>) -> ApiResult<Value> {
    let mut violations = Violations::default();
    let capacity = ReturnConsumedCapacity::gather(input, &mut violations)?;
    let metrics = input.string("ReturnItemCollectionMetrics")?;
    violations.one_of(metrics, "returnItemCollectionMetrics", &["SIZE", "NONE"]);
    let request_items = input.object("RequestItems")?;
    if let Some(items) = violations.not_null(request_items, "requestItems") {
        request_items_violations("BatchWriteItem", items, &mut violations, Some(MAX_WRITES))?;
        for (name, list) in items {
            for (i, request) in list.as_array().ok_or_else(|| mismatch(list, "List"))?.iter().enumerate() {
                let request = Input::new(as_object(request)?);
                let path = format!("requestItems.{name}.member.{}.member", i + 1);
                if let Some(delete) = request.structure("DeleteRequest")? {
                    violations.not_null(delete.object("Key")?, &format!("{path}.deleteRequest.key"));
                }
                if let Some(put) = request.structure("PutRequest")? {
                    violations.not_null(put.object("Item")?, &format!("{path}.putRequest.item"));
                }
            }
        }
    }
    violations.finish()?;

    let mut writes: Vec<(&str, Vec<(BatchWrite, &Value)>)> = Vec::new();
    for (name, list) in request_items.expect("checked") {
        let mut table_writes = Vec::new();
        for sent in list.as_array().expect("checked") {
            let request = Input::new(as_object(sent)?);
            let members = (request.structure("PutRequest")?, request.structure("DeleteRequest")?);
            let write = match members {
                (Some(put), None) => {
                    let item = item_from_json(&Value::Object(put.object("Item")?.expect("checked").clone()))?;
                    items::check_item_size(&item)?;
                    BatchWrite::Put(item)
                }
                (None, Some(delete)) => {
                    BatchWrite::Delete(item_from_json(&Value::Object(delete.object("Key")?.expect("checked").clone()))?)
                }
                // A WriteRequest holds exactly one of its members, as an AttributeValue does.
                _ => return Err(ApiError::validation(ONE_DATATYPE)),
            };
            table_writes.push((write, sent));
        }
        writes.push((name.as_str(), table_writes));
    }
    if writes.iter().map(|(_, w)| w.len()).sum::<usize>() > MAX_WRITES {
        return Err(ApiError::validation("Too many items requested for the BatchWriteItem call"));
    }

    let account = &cx.principal.account_id;
    let mut planned = Vec::new();
    for (name, table_writes) in writes {
        let table = Table::load(cx.storage, account, name)?;
        let mut seen = HashSet::new();
        let mut keyed = Vec::new();
        for (write, sent) in table_writes {
            let key = match &write {
                BatchWrite::Put(item) => {
                    // A put names its key inside the item, but is refused as a delete's key is.
                    let key_item: Item = table
                        .key_attributes()
                        .filter_map(|k| item.get(&k.name).map(|v| (k.name.clone(), v.clone())))
                        .collect();
                    let key = keys::of_request(&table, &key_item, KEY_MISMATCH)?;
                    index::check_item(&table, item, &key)?;
                    key
                }
                BatchWrite::Delete(key_item) => keys::of_request(&table, key_item, KEY_MISMATCH)?,
            };
            if !seen.insert(key.clone()) {
                return Err(ApiError::validation("Provided list of item keys contains duplicates"));
            }
            keyed.push((key, write, sent));
        }
        planned.push((table, keyed));
    }

    let (mut consumed, mut collections, mut unprocessed) = (Vec::new(), Map::new(), Map::new());
    // After a write the store could not make, the rest are handed back as UnprocessedItems, as
    // DynamoDB does after an internal failure: the writes made are answered as made.
    let mut failed = false;
    for (mut table, keyed) in planned {
        let mut units = 0.0;
        let mut metrics_of_table = Vec::new();
        let mut left = Vec::new();
        for (key, write, sent) in keyed {
            if failed {
                left.push(sent.clone());
                continue;
            }
            let collection_metrics = match &write {
                BatchWrite::Put(item) | BatchWrite::Delete(item) if metrics == Some("SIZE") => {
                    items::item_collection_metrics(&table, item)
                }
                _ => None,
            };
            let change = match write {
                BatchWrite::Put(item) => Change::Put(item),
                BatchWrite::Delete(_) => Change::Delete,
            };
            let wants_old = capacity != ReturnConsumedCapacity::None;
            let (old, new) = match items::apply(cx.storage, account, &mut table, &key, None, &change, wants_old) {
                Err(e) if e.kind == ErrorKind::InternalServerError => {
                    failed = true;
                    left.push(sent.clone());
                    continue;
                }
                applied => applied?,
            };
            units += write_units(old.as_ref().map(item_size), new.as_ref().map(item_size));
            metrics_of_table.extend(collection_metrics);
        }
        cx.report.consumed_write(&table.table_name, units);
        consumed.extend(capacity.consumed(&table.table_name, units));
        if !metrics_of_table.is_empty() {
            collections.insert(table.table_name.clone(), Value::Array(metrics_of_table));
        }
        if !left.is_empty() {
            unprocessed.insert(table.table_name.clone(), Value::Array(left));
        }
    }
    let mut response = json!({"UnprocessedItems": unprocessed});
    if capacity != ReturnConsumedCapacity::None {
        response["ConsumedCapacity"] = Value::Array(consumed);
    }
    if !collections.is_empty() {
        response["ItemCollectionMetrics"] = Value::Object(collections);
    }
    Ok(response)
}

/// The keys a BatchGetItem reads from one table, and how.
struct TableReads<'a> {
    name: &'a str,
    /// The table's `KeysAndAttributes` as sent, for its `UnprocessedKeys`.
    request: &'a Map<String, Value>,
    keys: Vec<(&'a Value, Item)>,
    projection: Option<Vec<expr::Path>>,
    consistent: bool,
}

pub fn batch_get_item<S: Storage>(input: Input<'_>, cx: &mut Context<'_, S>) -> ApiResult<Value> {
    let mut violations = Violations::default();
    let capacity = ReturnConsumedCapacity::gather(input, &mut violations)?;
    let request_items = input.object("RequestItems")?;
    let mut requests = Vec::new();
    if let Some(items) = violations.not_null(request_items, "requestItems") {
        request_items_violations("BatchGetItem", items, &mut violations, None)?;
        for (name, request) in items {
            let request = as_object(request)?;
            let members = Input::new(request);
            let path = format!("requestItems.{name}.member.keys");
            if let Some(keys) = violations.not_null(members.list("Keys")?, &path) {
                if keys.is_empty() {
                    violations.add(Some("[]"), &path, "have length greater than or equal to 1");
                } else if keys.len() > MAX_KEYS {
                    // Worded without the value, with the members' own names, as DynamoDB does.
                    let path = format!("RequestItems.{name}.member.Keys");
                    violations.add_unvalued(&path, &format!("have length less than or equal to {MAX_KEYS}"));
                }
            }
            if let Some(names) = members.list("AttributesToGet")? {
                let path = format!("requestItems.{name}.member.attributesToGet");
                legacy::attributes_to_get_violations(names, &path, &mut violations)?;
            }
            // Type errors of the other members come before any constraint is reported.
            members.boolean("ConsistentRead")?;
            members.string("ProjectionExpression")?;
            requests.push((name.as_str(), request));
        }
    }
    violations.finish()?;

    let mut reads = Vec::new();
    let mut total = 0;
    for (name, request) in requests {
        let members = Input::new(request);
        let projection = items::projection(members)?;
        let mut seen = HashSet::new();
        let mut keys = Vec::new();
        for key in members.list("Keys")?.unwrap_or_default() {
            let key_item = item_from_json(&Value::Object(as_object(key)?.clone()))?;
            // Keys are compared as values: attribute order does not matter.
            if !seen.insert(item_to_json(&key_item).to_string()) {
                return Err(ApiError::validation("Provided list of item keys contains duplicates"));
            }
            total += 1;
            if total > MAX_KEYS {
                return Err(ApiError::validation("Too many items requested for the BatchGetItem call"));
            }
            keys.push((key, key_item));
        }
        let consistent = members.boolean("ConsistentRead")?.unwrap_or(false);
        reads.push(TableReads { name, request, keys, projection, consistent });
    }

    let account = &cx.principal.account_id;
    let mut planned = Vec::new();
    for read in reads {
        let table = Table::load(cx.storage, account, read.name)?;
        let keys = read
            .keys
            .iter()
            .map(|(_, key)| keys::of_request(&table, key, KEY_MISMATCH))
            .collect::<ApiResult<Vec<_>>>()?;
        planned.push((table, keys, read));
    }

    let (mut responses, mut unprocessed, mut consumed) = (Map::new(), Map::new(), Vec::new());
    let mut bytes = 0;
    for (table, keys, read) in planned {
        let mut found = Vec::new();
        let mut left = Vec::new();
        let mut units = 0.0;
        for (key, (sent, _)) in keys.iter().zip(&read.keys) {
            if bytes >= RESPONSE_BYTES {
                left.push((*sent).clone());
                continue;
            }
            let stored = cx.storage.ask(account, Request::get(&table.keyspace(), key))?;
            let item = stored.as_ref().map(items::stored_item).transpose()?;
            let size = item.as_ref().map(item_size);
            if bytes + size.unwrap_or(0) > RESPONSE_BYTES {
                // Not returned, so not charged: the client asks for it again. The response is
                // full: every key after this one is left too.
                bytes = RESPONSE_BYTES;
                left.push((*sent).clone());
                continue;
            }
            bytes += size.unwrap_or(0);
            units += read_units(size, read.consistent);
            if let Some(item) = item {
                found.push(match &read.projection {
                    Some(paths) => item_to_json(&expr::project(&item, paths)),
                    None => item_to_json(&item),
                });
            }
        }
        responses.insert(read.name.to_string(), Value::Array(found));
        if !left.is_empty() {
            let mut request = read.request.clone();
            request.insert("Keys".into(), Value::Array(left));
            unprocessed.insert(read.name.to_string(), Value::Object(request));
        }
        cx.report.consumed_read(read.name, units);
        consumed.extend(capacity.consumed(read.name, units));
    }
    let mut response = json!({"Responses": responses, "UnprocessedKeys": unprocessed});
    if capacity != ReturnConsumedCapacity::None {
        response["ConsumedCapacity"] = Value::Array(consumed);
    }
    Ok(response)
}
