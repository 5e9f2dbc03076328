//! Capacity units, as `ReturnConsumedCapacity` reports them for the single-item operations and
//! Scan.
//!
//! After the Developer Guide's "DynamoDB read and write operations": a read takes one unit per
//! 4 KB of the item (rounded up; for a Scan, of all the items it read together), half that when
//! eventually consistent; a write one unit per 1 KB.
//! A write that replaces an item is charged for the larger of the old and the new item, a delete
//! for the item it removes. Nothing found or nothing there still costs the minimum of one unit
//! (half a unit for an eventually consistent read). Sizes are `model::size::item_size`.

use serde_json::{Value, json};

use crate::error::ApiResult;
use crate::input::{Input, Violations};

pub const READ_UNIT_BYTES: usize = 4 * 1024;
const WRITE_UNIT_BYTES: usize = 1024;

/// The request's `ReturnConsumedCapacity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReturnConsumedCapacity {
    None,
    Total,
    Indexes,
}

impl ReturnConsumedCapacity {
    /// Reads the member; an invalid value is a one-violation ValidationException.
    pub fn from_input(input: Input<'_>) -> ApiResult<Self> {
        let mut violations = Violations::default();
        let requested = Self::gather(input, &mut violations)?;
        violations.finish()?;
        Ok(requested)
    }

    /// Reads the member and records an invalid value in `violations`, for operations that report
    /// it together with their other members' violations (it reads as `None` then: the request
    /// fails on the violation anyway).
    pub fn gather(input: Input<'_>, violations: &mut Violations) -> ApiResult<Self> {
        let value = input.string("ReturnConsumedCapacity")?;
        violations.one_of(value, "returnConsumedCapacity", &["INDEXES", "TOTAL", "NONE"]);
        Ok(match value {
            Some("TOTAL") => ReturnConsumedCapacity::Total,
            Some("INDEXES") => ReturnConsumedCapacity::Indexes,
            _ => ReturnConsumedCapacity::None,
        })
    }

    /// The response's `ConsumedCapacity` member, `None` when not asked for. For single-item
    /// operations DynamoDB gives `CapacityUnits` only (no `ReadCapacityUnits` or
    /// `WriteCapacityUnits`), and INDEXES adds the table's own share (no index here).
    pub fn consumed(self, table: &str, units: f64) -> Option<Value> {
        match self {
            ReturnConsumedCapacity::None => None,
            ReturnConsumedCapacity::Total => Some(json!({"TableName": table, "CapacityUnits": units})),
            ReturnConsumedCapacity::Indexes => {
                Some(json!({"TableName": table, "CapacityUnits": units, "Table": {"CapacityUnits": units}}))
            }
        }
    }
}

impl ReturnConsumedCapacity {
    /// `ConsumedCapacity` of a read of an index (`global` or local) that also read `table_units`
    /// from the table: INDEXES gives each keyspace's share.
    pub fn consumed_with_index(
        self,
        table: &str,
        table_units: f64,
        index: &str,
        global: bool,
        index_units: f64,
    ) -> Option<Value> {
        let total = table_units + index_units;
        match self {
            ReturnConsumedCapacity::None => None,
            ReturnConsumedCapacity::Total => Some(json!({"TableName": table, "CapacityUnits": total})),
            ReturnConsumedCapacity::Indexes => {
                let kind = if global { "GlobalSecondaryIndexes" } else { "LocalSecondaryIndexes" };
                let mut consumed =
                    json!({"TableName": table, "CapacityUnits": total, "Table": {"CapacityUnits": table_units}});
                consumed[kind] = json!({ index: {"CapacityUnits": index_units} });
                Some(consumed)
            }
        }
    }
}

/// Read units of reading one item of `item_bytes` (`None`: nothing found).
pub fn read_units(item_bytes: Option<usize>, consistent: bool) -> f64 {
    let units = units(item_bytes.unwrap_or(0), READ_UNIT_BYTES);
    if consistent { units } else { units / 2.0 }
}

/// Write units of a put, update or delete that found `old_bytes` and left `new_bytes` (`None`:
/// no item before, or none after).
pub fn write_units(old_bytes: Option<usize>, new_bytes: Option<usize>) -> f64 {
    units(old_bytes.max(new_bytes).unwrap_or(0), WRITE_UNIT_BYTES)
}

fn units(bytes: usize, unit: usize) -> f64 {
    bytes.div_ceil(unit).max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{item_from_json, size::item_size};
    use serde_json::Map;

    fn requested(body: Value) -> ApiResult<ReturnConsumedCapacity> {
        let Value::Object(members) = body else { unreachable!("tests pass objects") };
        ReturnConsumedCapacity::from_input(Input::new(&members))
    }

    /// DynamoDB's probe items (dynalite's tests against AWS): a string padded so that the item
    /// is exactly `target` bytes, or one more with `larger`.
    fn probe_item_size(target: usize, larger: bool) -> usize {
        let a = "k1";
        // Names take 5 bytes, c 4, d 2 and e 4 (or 3 with two elements).
        let (b_len, set) =
            if larger { (target - 13, vec!["AQI=", "Ag=="]) } else { (target - 15, vec!["AQI=", "Ag==", "AQ=="]) };
        let item = json!({
            "a": { "S": a }, "b": { "S": "b".repeat(b_len - a.len()) }, "c": { "N": "12.3456" },
            "d": { "B": "AQI=" }, "e": { "BS": set },
        });
        item_size(&item_from_json(&item).unwrap())
    }

    #[test]
    fn member() {
        assert_eq!(requested(json!({})).unwrap(), ReturnConsumedCapacity::None);
        assert_eq!(requested(json!({"ReturnConsumedCapacity": null})).unwrap(), ReturnConsumedCapacity::None);
        assert_eq!(requested(json!({"ReturnConsumedCapacity": "NONE"})).unwrap(), ReturnConsumedCapacity::None);
        assert_eq!(requested(json!({"ReturnConsumedCapacity": "TOTAL"})).unwrap(), ReturnConsumedCapacity::Total);
        assert_eq!(requested(json!({"ReturnConsumedCapacity": "INDEXES"})).unwrap(), ReturnConsumedCapacity::Indexes);
        assert_eq!(
            requested(json!({"ReturnConsumedCapacity": "hi"})).unwrap_err().message,
            "1 validation error detected: Value 'hi' at 'returnConsumedCapacity' failed to satisfy constraint: \
             Member must satisfy enum value set: [INDEXES, TOTAL, NONE]"
        );
        assert_eq!(
            requested(json!({"ReturnConsumedCapacity": 1})).unwrap_err().message,
            "NUMBER_VALUE cannot be converted to String"
        );
        let body = Map::from_iter([("ReturnConsumedCapacity".to_string(), json!("total"))]);
        let mut violations = Violations::default();
        violations.table_name(Some("a;"), "tableName");
        assert_eq!(
            ReturnConsumedCapacity::gather(Input::new(&body), &mut violations).unwrap(),
            ReturnConsumedCapacity::None
        );
        assert!(violations.finish().unwrap_err().message.starts_with("3 validation errors detected: "));
    }

    #[test]
    fn reads() {
        // Nothing found still costs a unit, or half of one.
        assert_eq!(read_units(None, true), 1.0);
        assert_eq!(read_units(None, false), 0.5);
        assert_eq!(read_units(Some(0), true), 1.0);
        assert_eq!(probe_item_size(4096, false), 4096);
        assert_eq!(probe_item_size(4096, true), 4097);
        assert_eq!(read_units(Some(4096), true), 1.0);
        assert_eq!(read_units(Some(4096), false), 0.5);
        assert_eq!(read_units(Some(4097), true), 2.0);
        assert_eq!(read_units(Some(4097), false), 1.0);
        // The guide's examples: 3.5 KB reads as 4 KB, 10 KB as 12 KB.
        assert_eq!(read_units(Some(3584), true), 1.0);
        assert_eq!(read_units(Some(10 * 1024), true), 3.0);
        assert_eq!(read_units(Some(10 * 1024), false), 1.5);
    }

    #[test]
    fn writes() {
        assert_eq!(probe_item_size(1024, false), 1024);
        assert_eq!(probe_item_size(1024, true), 1025);
        assert_eq!(write_units(None, Some(1024)), 1.0);
        assert_eq!(write_units(None, Some(1025)), 2.0);
        // Deleting nothing, or a small item, costs the minimum.
        assert_eq!(write_units(None, None), 1.0);
        assert_eq!(write_units(Some(10), None), 1.0);
        // A delete is charged for the item removed.
        assert_eq!(write_units(Some(2049), None), 3.0);
        // Replacing charges the larger of the two images, whichever it is.
        assert_eq!(write_units(Some(2049), Some(20)), 3.0);
        assert_eq!(write_units(Some(1024), Some(1025)), 2.0);
        assert_eq!(write_units(Some(400 * 1024), Some(1)), 400.0);
    }

    #[test]
    fn shapes() {
        assert_eq!(ReturnConsumedCapacity::None.consumed("t", 1.0), None);
        assert_eq!(
            ReturnConsumedCapacity::Total.consumed("t", 0.5),
            Some(json!({"TableName": "t", "CapacityUnits": 0.5}))
        );
        assert_eq!(
            ReturnConsumedCapacity::Indexes.consumed("t", 2.0),
            Some(json!({"TableName": "t", "CapacityUnits": 2.0, "Table": {"CapacityUnits": 2.0}}))
        );
        // Units are JSON numbers with a fraction, as DynamoDB writes them ("1.0").
        let total = ReturnConsumedCapacity::Total.consumed("t", 1.0).unwrap();
        assert_eq!(total.to_string(), r#"{"CapacityUnits":1.0,"TableName":"t"}"#);
    }
}
