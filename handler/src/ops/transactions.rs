//! TransactGetItems: up to 100 reads across tables, answered from one consistent snapshot.
//!
//! The snapshot is optimistic, like every write: the items are read with their versions, then one
//! group of `Check` guards confirms each item is still at the version read (or still absent).
//! Versions never repeat, so an item that passes its check was unchanged from its read to its
//! check; all reads come before all checks, so at the moment between the last read and the first
//! check every item was as read: a transaction that changed two of them cannot have committed
//! halfway through what we return. A failed check reads again, a bounded number of times.

use std::collections::HashSet;

use serde_json::{Map, Value, json};

use super::items::{self, KEY_MISMATCH};
use super::{Context, keys};
use crate::capacity::{ReturnConsumedCapacity, read_units};
use crate::catalog::{Table, storage_error};
use crate::error::{ApiError, ApiResult};
use crate::expr::{self, Path};
use crate::input::{Input, Violations, as_object, java_string};
use crate::model::{item_from_json, item_to_json, size::item_size};
use crate::storage::{Expect, ItemKey, Storage, Write, WriteError};

/// Actions in one transaction, at most.
const MAX_ACTIONS: usize = 100;
/// Snapshots tried before the request is cancelled as conflicting: each failed one means another
/// writer changed an item between our read and our check.
const SNAPSHOT_ATTEMPTS: usize = 16;

/// `TransactItems`' own constraints: 1 to 100 actions.
fn transact_items_violations(items: &[Value], violations: &mut Violations) {
    let shown = java_string(&Value::Array(items.to_vec()));
    if items.is_empty() {
        violations.add(Some(&shown), "transactItems", "have length greater than or equal to 1");
    } else if items.len() > MAX_ACTIONS {
        violations.add(Some(&shown), "transactItems", &format!("have length less than or equal to {MAX_ACTIONS}"));
    }
}

/// One Get of a TransactGetItems, as requested.
struct Get<'a> {
    table_name: &'a str,
    key: &'a Map<String, Value>,
    projection: Option<Vec<Path>>,
}

pub fn transact_get_items<S: Storage>(input: Input<'_>, cx: &mut Context<'_, S>) -> ApiResult<Value> {
    let mut violations = Violations::default();
    let capacity = ReturnConsumedCapacity::gather(input, &mut violations)?;
    let actions = violations.not_null(input.list("TransactItems")?, "transactItems").unwrap_or_default();
    transact_items_violations(actions, &mut violations);
    let mut requested = Vec::new();
    for (i, action) in actions.iter().enumerate() {
        let path = format!("transactItems.{}.member.get", i + 1);
        let Some(get) = violations.not_null(Input::new(as_object(action)?).structure("Get")?, &path) else {
            continue;
        };
        let table_name = get.string("TableName")?;
        violations.table_name(table_name, &format!("{path}.tableName"));
        let key = violations.not_null(get.object("Key")?, &format!("{path}.key"));
        get.string("ProjectionExpression")?;
        requested.push((get, table_name.unwrap_or_default(), key));
    }
    violations.finish()?;

    let mut gets = Vec::with_capacity(requested.len());
    for (get, table_name, key) in requested {
        let projection = items::projection(get)?;
        gets.push(Get { table_name, key: key.expect("checked"), projection });
    }
    let account = &cx.principal.account_id;
    let mut tables = Vec::with_capacity(gets.len());
    for get in &gets {
        tables.push(Table::load(cx.storage, account, get.table_name)?);
    }
    // A key that does not fit its table cancels the transaction, reported per action.
    let keys: Vec<ApiResult<ItemKey>> = gets
        .iter()
        .zip(&tables)
        .map(|(get, table)| {
            let key_item = item_from_json(&Value::Object(get.key.clone()))?;
            keys::of_request(table, &key_item, KEY_MISMATCH)
        })
        .collect();
    if keys.iter().any(Result::is_err) {
        let reasons = keys.iter().map(|key| match key {
            Ok(_) => json!({"Code": "None"}),
            Err(e) => json!({"Code": "ValidationError", "Message": e.message}),
        });
        return Err(ApiError::transaction_canceled(reasons.collect()));
    }
    let keys: Vec<ItemKey> = keys.into_iter().map(|key| key.expect("checked")).collect();
    let mut seen = HashSet::new();
    if !tables.iter().zip(&keys).all(|(table, key)| seen.insert((&table.table_name, key))) {
        return Err(ApiError::validation("Transaction request cannot include multiple operations on one item"));
    }

    let found = snapshot(cx.storage, account, &tables, &keys)?;
    let mut responses = Vec::with_capacity(found.len());
    let mut units: Vec<(&str, f64)> = Vec::new();
    for ((get, table), stored) in gets.iter().zip(&tables).zip(found) {
        let item = stored.as_ref().map(items::stored_item).transpose()?;
        // A transactional read costs twice a consistent one.
        let cost = 2.0 * read_units(item.as_ref().map(item_size), true);
        match units.iter_mut().find(|(name, _)| *name == table.table_name) {
            Some((_, total)) => *total += cost,
            None => units.push((&table.table_name, cost)),
        }
        responses.push(match (item, &get.projection) {
            (None, _) => json!({}),
            (Some(item), None) => json!({"Item": item_to_json(&item)}),
            (Some(item), Some(paths)) => json!({"Item": item_to_json(&expr::project(&item, paths))}),
        });
    }
    let mut response = json!({"Responses": responses});
    if capacity != ReturnConsumedCapacity::None {
        let consumed = units.into_iter().filter_map(|(name, units)| capacity.consumed(name, units));
        response["ConsumedCapacity"] = Value::Array(consumed.collect());
    }
    Ok(response)
}

/// The stored items at `keys`, as they all were at one moment (see the module comment).
fn snapshot(
    storage: &mut impl Storage,
    account: &str,
    tables: &[Table],
    keys: &[ItemKey],
) -> ApiResult<Vec<Option<crate::storage::StoredItem>>> {
    for _ in 0..SNAPSHOT_ATTEMPTS {
        let mut found = Vec::with_capacity(keys.len());
        for (table, key) in tables.iter().zip(keys) {
            found.push(storage.get(account, &table.keyspace(), key).map_err(storage_error)?);
        }
        if found.len() == 1 {
            return Ok(found);
        }
        let checks: Vec<Write> = tables
            .iter()
            .zip(keys)
            .zip(&found)
            .map(|((table, key), stored)| Write::Check {
                keyspace: table.keyspace(),
                key: key.clone(),
                expect: stored.as_ref().map_or(Expect::Absent, |stored| Expect::Version(stored.version)),
            })
            .collect();
        match storage.write(account, &checks) {
            Ok(_) => return Ok(found),
            Err(WriteError::GuardFailed(_)) => {}
            Err(WriteError::Storage(e)) => return Err(storage_error(e)),
        }
    }
    let reasons = keys.iter().map(|_| json!({"Code": "TransactionConflict", "Message": CONFLICT})).collect();
    Err(ApiError::transaction_canceled(reasons))
}

const CONFLICT: &str = "Transaction is ongoing for the item";
