//! BatchWriteItem: many single-item writes across tables in one call.
//!
//! The whole request is validated, and every table loaded, before anything is written.
//! Each write takes the single-item write path (`items::apply`), so it is atomic with its index
//! entries; the batch as a whole is not atomic, as in DynamoDB. Nothing is ever left unprocessed
//! by a write (there is no throughput to exceed).

use std::collections::HashSet;

use serde_json::{Map, Value, json};

use super::items::{self, Change, KEY_MISMATCH};
use super::{Context, keys};
use crate::capacity::{ReturnConsumedCapacity, write_units};
use crate::catalog::Table;
use crate::error::{ApiError, ApiResult};
use crate::index;
use crate::input::{Input, Violations, as_object, java_string, mismatch};
use crate::model::{Item, item_from_json, item_to_json, size::item_size};
use crate::storage::Storage;

const MAX_WRITES: usize = 25;
const ONE_DATATYPE: &str =
    "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes";

/// `RequestItems`' own constraints: not empty, table names as map keys and, for BatchWriteItem,
/// 1 to 25 requests per table as map values. Each broken rule is one violation for the whole map.
fn request_items_violations(items: &Map<String, Value>, violations: &mut Violations, max_per_table: Option<usize>) {
    let shown = java_string(&Value::Object(items.clone()));
    if items.is_empty() {
        return violations.add(Some(&shown), "requestItems", "have length greater than or equal to 1");
    }
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
    let Some(max) = max_per_table else { return };
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
        request_items_violations(items, &mut violations, Some(MAX_WRITES));
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

    let mut writes: Vec<(&str, Vec<BatchWrite>)> = Vec::new();
    for (name, list) in request_items.expect("checked") {
        let mut table_writes = Vec::new();
        for request in list.as_array().expect("checked") {
            let request = Input::new(as_object(request)?);
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
            table_writes.push(write);
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
        for write in table_writes {
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
            keyed.push((key, write));
        }
        planned.push((table, keyed));
    }

    let mut consumed = Vec::new();
    let mut collections = Map::new();
    for (mut table, keyed) in planned {
        let mut units = 0.0;
        let mut metrics_of_table = Vec::new();
        let local_indexes = table.indexes.iter().any(|i| !i.global);
        for (key, write) in keyed {
            // DynamoDB measures item collections of tables with local indexes only: the
            // collection is the item's partition, its size an estimate.
            if metrics == Some("SIZE") && local_indexes {
                let (BatchWrite::Put(item) | BatchWrite::Delete(item)) = &write;
                let hash = &table.hash_key.name;
                let collection_key: Item = item.get(hash).map(|v| (hash.clone(), v.clone())).into_iter().collect();
                metrics_of_table.push(
                    json!({"ItemCollectionKey": item_to_json(&collection_key), "SizeEstimateRangeGB": [0.0, 1.0]}),
                );
            }
            let change = match write {
                BatchWrite::Put(item) => Change::Put(item),
                BatchWrite::Delete(_) => Change::Delete,
            };
            let wants_old = capacity != ReturnConsumedCapacity::None;
            let (old, new) = items::apply(cx.storage, account, &mut table, &key, None, &change, wants_old, false)?;
            units += write_units(old.as_ref().map(item_size), new.as_ref().map(item_size));
        }
        consumed.extend(capacity.consumed(&table.table_name, units));
        if !metrics_of_table.is_empty() {
            collections.insert(table.table_name.clone(), Value::Array(metrics_of_table));
        }
    }
    let mut response = json!({"UnprocessedItems": {}});
    if capacity != ReturnConsumedCapacity::None {
        response["ConsumedCapacity"] = Value::Array(consumed);
    }
    if !collections.is_empty() {
        response["ItemCollectionMetrics"] = Value::Object(collections);
    }
    Ok(response)
}
