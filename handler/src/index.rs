//! Secondary index entries: which entry an item has in an index, the writes that keep an index
//! exact when an item changes, and the backfill of an index created on a table that has items.
//!
//! An item has an entry in an index when it has all the index's key attributes; the entry's key
//! is `model::key::index_entry_key` and its document the item projected as the index says, in
//! DynamoDB JSON. Every item write carries, in its atomic group, the deletion of the old item's
//! entries and the puts of the new item's, and a guard on the table's version, so no write can
//! miss an index added after it read the table.

use crate::catalog::{Index, KeyAttribute, Projection, Table};
use crate::error::{ApiError, ApiResult};
use crate::model::key::{encode, index_entry_key};
use crate::model::{AttributeValue, Item, item_to_json};
use crate::storage::{Expect, ItemKey, Write};

/// An index entry: its key in the index's keyspace and its document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: ItemKey,
    pub document: Vec<u8>,
}

/// The entry `item` (whose table key is `table_key`) has in `index`, or None when the item lacks
/// one of the index's key attributes. An index key attribute of the wrong type, or an empty string
/// or binary one, is DynamoDB's ValidationException.
pub fn entry(table: &Table, index: &Index, item: &Item, table_key: &ItemKey) -> ApiResult<Option<Entry>> {
    let hash = key_value(index, &index.hash_key, item)?;
    let range = index.range_key.as_ref().map(|range| key_value(index, range, item)).transpose()?;
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

/// An index key attribute of the item, if it has it, checked as DynamoDB checks it.
fn key_value<'i>(index: &Index, key: &KeyAttribute, item: &'i Item) -> ApiResult<Option<&'i AttributeValue>> {
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
        let old = old.map(|item| entry(table, index, item, key)).transpose()?.flatten();
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
