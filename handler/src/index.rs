//! Secondary index entries: which entry an item has in an index, the writes that keep an index
//! exact when an item changes, and the backfill of an index created on a table that has items.
//!
//! An item has an entry in an index when it has all the index's key attributes; the entry's key
//! is `model::key::index_entry_key` and its document the item projected as the index says, in
//! DynamoDB JSON. Every item write carries, in its atomic group, the deletion of the old item's
//! entries and the puts of the new item's, and a guard on the table's version, so no write can
//! miss an index added after it read the table.

use crate::catalog::{Index, IndexStatus, KeyAttribute, Projection, Table};
use crate::error::{ApiError, ApiResult, ErrorKind};
use crate::model::key::{encode, index_entry_key};
use crate::model::size::{MAX_PARTITION_KEY_BYTES, MAX_SORT_KEY_BYTES, value_size};
use crate::model::{AttributeValue, Item, item_from_json, item_to_json};
use crate::report::Step;
use crate::storage::{Expect, Failure, ItemKey, Request, ScanRequest, Storage, StorageError, TableChange, Write};

/// An index entry: its key in the index's keyspace and its document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: ItemKey,
    pub document: Vec<u8>,
}

/// The entry `item` (whose table key is `table_key`) has in `index`, or None when the item lacks
/// one of the index's key attributes. An index key attribute of the wrong type, an empty string
/// or binary one, or one over a key's size limit is DynamoDB's ValidationException.
pub fn entry(table: &Table, index: &Index, item: &Item, table_key: &ItemKey) -> ApiResult<Option<Entry>> {
    let hash = key_value(index, &index.hash_key, MAX_PARTITION_KEY_BYTES, item)?;
    let range = index.range_key.as_ref().map(|range| key_value(index, range, MAX_SORT_KEY_BYTES, item)).transpose()?;
    let (Some(hash), None | Some(Some(_))) = (hash, &range) else { return Ok(None) };
    let encoded = |value: &AttributeValue| encode(value).expect("index keys are scalars, checked above");
    let range = range.flatten().map(encoded);
    let key = index_entry_key(encoded(hash), range.as_deref(), table_key);
    let projected: Item = match &index.projection {
        Projection::All => item.clone(),
        Projection::KeysOnly | Projection::Include(_) => {
            let keys: Vec<&KeyAttribute> = table.key_attributes().chain(index.key_attributes()).collect();
            let included = |name: &String| match &index.projection {
                Projection::Include(names) => names.contains(name),
                _ => false,
            };
            let wanted = |name: &String| keys.iter().any(|k| &k.name == name) || included(name);
            item.iter().filter(|(name, _)| wanted(name)).map(|(n, v)| (n.clone(), v.clone())).collect()
        }
    };
    let document = serde_json::to_vec(&item_to_json(&projected)).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Some(Entry { key, document }))
}

/// An index key attribute of the item, if it has it, checked as DynamoDB checks it: an index's
/// key value is a key, at most `max_bytes` long like the table's.
fn key_value<'i>(
    index: &Index,
    key: &KeyAttribute,
    max_bytes: usize,
    item: &'i Item,
) -> ApiResult<Option<&'i AttributeValue>> {
    let Some(value) = item.get(&key.name) else { return Ok(None) };
    if value.type_name() != key.attribute_type {
        return Err(ApiError::invalid_parameter(format!(
            "Type mismatch for Index Key {} Expected: {} Actual: {} IndexName: {}",
            key.name,
            key.attribute_type,
            value.type_name(),
            index.index_name
        )));
    }
    let empty = match value {
        AttributeValue::S(s) if s.is_empty() => Some("string"),
        AttributeValue::B(b) if b.is_empty() => Some("binary"),
        _ => None,
    };
    if let Some(kind) = empty {
        return Err(ApiError::validation(format!(
            "One or more parameter values are not valid. A value specified for a secondary index key is not supported. The AttributeValue for a key attribute cannot contain an empty {kind} value. IndexName: {}, IndexKey: {}",
            index.index_name, key.name
        )));
    }
    let size = value_size(value);
    if size > max_bytes {
        return Err(ApiError::invalid_parameter(format!(
            "Size limit exceeded for Index Key {} Actual Size: {size} bytes Max Size: {max_bytes} bytes IndexName: {}",
            key.name, index.index_name
        )));
    }
    Ok(Some(value))
}

/// Refuses an item whose index key attributes DynamoDB would refuse (see [`entry`]).
pub fn check_item(table: &Table, item: &Item, table_key: &ItemKey) -> ApiResult<()> {
    table.indexes.iter().try_for_each(|index| entry(table, index, item, table_key).map(drop))
}

/// The writes that take every index of `table` from the item `old` to the item `new` (either
/// absent), unguarded: the base item's own write in the same group is the guard. Ends with the
/// guard on the table's version.
pub fn maintenance(table: &Table, key: &ItemKey, old: Option<&Item>, new: Option<&Item>) -> ApiResult<Vec<Write>> {
    let mut writes = Vec::new();
    for index in &table.indexes {
        let keyspace = index.keyspace(&table.table_name);
        // An old item may hold index keys that are refused now (it was written before the index
        // came, which the backfill left out): it has no entry, and a write may mend or delete it.
        let old = old.and_then(|item| entry(table, index, item, key).unwrap_or(None));
        let new = new.map(|item| entry(table, index, item, key)).transpose()?.flatten();
        match (old, new) {
            (Some(old), Some(new)) if old == new => {}
            (old, new) => {
                // A put of the same key replaces the old entry: no delete needed.
                if let Some(old) = old.filter(|old| new.as_ref().is_none_or(|new| new.key != old.key)) {
                    writes.push(Write::Delete { keyspace: keyspace.clone(), key: old.key, expect: Expect::Anything });
                }
                if let Some(new) = new {
                    let document = new.document;
                    writes.push(Write::Put {
                        keyspace,
                        key: new.key,
                        document,
                        expect: Expect::Anything,
                        expires_at: None,
                    });
                }
            }
        }
    }
    writes.push(Write::TableAt { table: table.table_name.clone(), version: table.version });
    Ok(writes)
}

/// One step of the backfill of index `index_name` of table `table_name`: the index was created
/// (UpdateTable) on a table that held items, and stays CREATING until every item's entry is in.
///
/// A step reads at most `budget` items of the table (at least one) after the point the previous
/// step reached, writes their entries, and saves its progress in the table's description; the
/// step that reads the last item marks the index ACTIVE. Each entry is written in a group with a
/// guard on its item's version, so the backfill never writes an entry for an item that was
/// changed or deleted since it was read (the write that changed it wrote its entries itself).
/// Steps are idempotent and may be repeated after a failure; two workers on the same index do not
/// corrupt it (a step whose progress was overtaken saves nothing).
///
/// `done`: nothing is left to do (the index is ACTIVE, or the index or the table is gone);
/// otherwise call again. `count`: the items this step read.
pub fn backfill_step(
    storage: &mut impl Storage,
    account: &str,
    table_name: &str,
    index_name: &str,
    budget: u32,
) -> ApiResult<Step> {
    let Some((table, index)) = creating_index(storage, account, table_name, index_name)? else { return Ok(Step::DONE) };
    let request = ScanRequest {
        keyspace: table.keyspace(),
        segment: 0,
        total_segments: 1,
        after: index.backfill_after.clone().map(|(partition, sort)| ItemKey { partition, sort }),
        limit: budget.max(1),
        byte_budget: u32::MAX,
    };
    let page = match storage.ask(account, Request::scan(&request)) {
        Err(StorageError::NoSuchKeyspace) => return Ok(Step::DONE),
        page => page?,
    };
    let count = page.items.len() as u32;
    for stored in &page.items {
        let document = serde_json::from_slice(&stored.document);
        let item = document.map_err(|e| ApiError::internal(e.to_string())).and_then(|d| item_from_json(&d))?;
        // An item whose index keys DynamoDB refuses (of the wrong type, too large) stays out of
        // the index, as in DynamoDB.
        let Ok(Some(entry)) = entry(&table, &index, &item, &stored.key) else { continue };
        let writes = [
            Write::Check {
                keyspace: table.keyspace(),
                key: stored.key.clone(),
                expect: Expect::Version(stored.version),
            },
            Write::Put {
                keyspace: index.keyspace(table_name),
                key: entry.key,
                document: entry.document,
                expect: Expect::Anything,
                expires_at: None,
            },
        ];
        match storage.ask(account, Request::write(&writes)) {
            Ok(_) | Err(Failure::GuardFailed(_)) => {}
            Err(Failure::Storage(StorageError::NoSuchKeyspace)) => return Ok(Step { done: true, count }),
            Err(Failure::Storage(e)) => return Err(e.into()),
        }
    }
    let done = !page.more;
    let reached = page.items.last().map(|item| (item.key.partition.clone(), item.key.sort.clone()));
    // Saved on the description as it is now (other changes may have come meanwhile), but only if
    // the index is still the one this step read and no other step moved it on.
    loop {
        let Some((mut table, current)) = creating_index(storage, account, table_name, index_name)? else {
            return Ok(Step { done: true, count });
        };
        if current != index {
            return Ok(Step { done: false, count });
        }
        let saved = table.indexes.iter_mut().find(|i| i.index_name == index_name).expect("found above");
        if done {
            saved.status = IndexStatus::Active;
            saved.backfill_after = None;
            table.finish_restore_when_indexed();
        } else if reached.is_some() {
            saved.backfill_after = reached.clone();
        }
        let description = serde_json::to_vec(&table).map_err(|e| ApiError::internal(e.to_string()))?;
        match storage
            .ask(account, Request::update_table(table_name, table.version, &TableChange::record_only(&description)))
        {
            Ok(Some(_)) => return Ok(Step { done, count }),
            Ok(None) => continue,
            Err(StorageError::NoSuchKeyspace) => return Ok(Step { done: true, count }),
            Err(e) => return Err(e.into()),
        }
    }
}

/// The table and its index `index_name` if the index is being created.
fn creating_index(
    storage: &mut impl Storage,
    account: &str,
    table_name: &str,
    index_name: &str,
) -> ApiResult<Option<(Table, Index)>> {
    let table = match Table::load(storage, account, table_name) {
        Err(e) if e.kind == ErrorKind::ResourceNotFound => return Ok(None),
        table => table?,
    };
    let index = table.index(index_name).filter(|i| i.status == IndexStatus::Creating).cloned();
    Ok(index.map(|index| (table, index)))
}
