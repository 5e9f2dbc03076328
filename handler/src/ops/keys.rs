//! Turning an item or a request's `Key` into the storage key, with DynamoDB's key rules.

use crate::catalog::{KeyAttribute, Table};
use crate::error::{ApiError, ApiResult};
use crate::model::size::{MAX_PARTITION_KEY_BYTES, MAX_SORT_KEY_BYTES, value_size};
use crate::model::{AttributeValue, Item, key};
use crate::storage::ItemKey;

/// The key of an item about to be written (PutItem).
pub fn of_item(table: &Table, item: &Item) -> ApiResult<ItemKey> {
    encode_key(table, |attribute| {
        let value = item
            .get(&attribute.name)
            .ok_or_else(|| ApiError::invalid_parameter(format!("Missing the key {} in the item", attribute.name)))?;
        if value.type_name() != attribute.attribute_type {
            return Err(ApiError::invalid_parameter(format!(
                "Type mismatch for key {} expected: {} actual: {}",
                attribute.name,
                attribute.attribute_type,
                value.type_name()
            )));
        }
        Ok(value)
    })
}

/// The key named by a request's `Key` (or `ExclusiveStartKey`): exactly the table's key
/// attributes with their types, else `mismatch` is the error.
pub fn of_request(table: &Table, key: &Item, mismatch: &str) -> ApiResult<ItemKey> {
    if key.len() != table.key_attributes().count() {
        return Err(ApiError::validation(mismatch));
    }
    encode_key(table, |attribute| match key.get(&attribute.name) {
        Some(value) if value.type_name() == attribute.attribute_type => Ok(value),
        _ => Err(ApiError::validation(mismatch)),
    })
}

fn encode_key<'v>(
    table: &Table,
    mut value_of: impl FnMut(&KeyAttribute) -> ApiResult<&'v AttributeValue>,
) -> ApiResult<ItemKey> {
    let partition = encode_part(&table.hash_key, value_of(&table.hash_key)?, MAX_PARTITION_KEY_BYTES)?;
    let sort = match &table.range_key {
        Some(range) => encode_part(range, value_of(range)?, MAX_SORT_KEY_BYTES)?,
        None => Vec::new(),
    };
    Ok(ItemKey { partition, sort })
}

/// One key attribute's value encoded, with DynamoDB's checks (`hash`: a partition key).
pub fn encode_attribute(attribute: &KeyAttribute, value: &AttributeValue, hash: bool) -> ApiResult<Vec<u8>> {
    encode_part(attribute, value, if hash { MAX_PARTITION_KEY_BYTES } else { MAX_SORT_KEY_BYTES })
}

fn encode_part(attribute: &KeyAttribute, value: &AttributeValue, max_bytes: usize) -> ApiResult<Vec<u8>> {
    let empty_kind = match value {
        AttributeValue::S(s) if s.is_empty() => Some("string"),
        AttributeValue::B(b) if b.is_empty() => Some("binary"),
        _ => None,
    };
    if let Some(kind) = empty_kind {
        return Err(ApiError::validation(format!(
            "One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty {kind} value. Key: {}",
            attribute.name
        )));
    }
    if value_size(value) > max_bytes {
        return Err(ApiError::invalid_parameter(if max_bytes == MAX_PARTITION_KEY_BYTES {
            // DynamoDB's message really lacks the space before 2048.
            "Size of hashkey has exceeded the maximum size limit of2048 bytes"
        } else {
            "Aggregated size of all range keys has exceeded the size limit of 1024 bytes"
        }));
    }
    key::encode(value).ok_or_else(|| ApiError::internal("key attribute of a non-key type"))
}
