//! DynamoDB Streams on a table's change log: the change record every item write appends in its
//! own atomic group. Which streams a table has is its catalog record's (`catalog::streams`).
//!
//! Shards are fixed runs of [`SHARD_RECORDS`] sequence numbers within a stream, each the parent
//! of the next, so a stream rolls over to a new shard without anything stored.

use serde_json::json;

use crate::catalog::Table;
use crate::error::{ApiError, ApiResult};
use crate::model::size::item_size;
use crate::model::value::{Item, item_to_json};
use crate::storage::Write;
use crate::time::now_seconds;

/// Sequence numbers one shard holds before the stream rolls over to the next.
pub const SHARD_RECORDS: u64 = 1000;

/// Who made a change: a client's request, or the service expiring an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Request,
    TimeToLive,
}

/// The change record of a write that turns `old` into `new`, as the table's recording stream
/// shows it; none when nothing records, or nothing changed (a put of an identical item, a delete
/// of nothing).
pub fn change_record(
    table: &Table,
    old: Option<&Item>,
    new: Option<&Item>,
    origin: Origin,
) -> ApiResult<Option<Write>> {
    let Some(stream) = table.recording_stream() else { return Ok(None) };
    let event = match (old, new) {
        (None, Some(_)) => "INSERT",
        (Some(old), Some(new)) if old != new => "MODIFY",
        (Some(_), None) => "REMOVE",
        _ => return Ok(None),
    };
    let item = new.or(old).expect("one of them exists");
    let keys: Item =
        table.key_attributes().filter_map(|k| item.get(&k.name).map(|v| (k.name.clone(), v.clone()))).collect();
    let mut size = item_size(&keys);
    let mut record = json!({"ApproximateCreationDateTime": now_seconds().floor(), "Keys": item_to_json(&keys),
                            "StreamViewType": stream.view_type});
    let (with_new, with_old) = match stream.view_type.as_str() {
        "NEW_IMAGE" => (true, false),
        "OLD_IMAGE" => (false, true),
        "NEW_AND_OLD_IMAGES" => (true, true),
        _ => (false, false),
    };
    for (wanted, image, member) in [(with_new, new, "NewImage"), (with_old, old, "OldImage")] {
        if let Some(image) = image.filter(|_| wanted) {
            size += item_size(image);
            record[member] = item_to_json(image);
        }
    }
    record["SizeBytes"] = json!(size);
    let mut change = json!({"eventName": event, "dynamodb": record});
    if origin == Origin::TimeToLive {
        change["userIdentity"] = json!({"Type": "Service", "PrincipalId": "dynamodb.amazonaws.com"});
    }
    let record = serde_json::to_vec(&change).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Some(Write::AppendChange { table: table.table_name.clone(), record }))
}
