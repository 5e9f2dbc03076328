//! Item sizes as DynamoDB counts them (the 400 KB item limit, capacity units), after the Developer
//! Guide's "DynamoDB item sizes and formats": names and strings by UTF-8 length, binary by raw
//! length, BOOL and NULL 1 byte, a list or map 3 bytes plus 1 per element plus its elements (map
//! elements with their names), a set the sum of its elements.
//!
//! Numbers follow what DynamoDB measurably does rather than the guide's "approximately 1 byte per
//! two significant digits plus 1": it stores digits in base 100 pairs aligned on the decimal point
//! (so 1.5 = 01.50 takes two digit bytes, 15 takes one) and a negative number takes one byte more.

use super::{AttributeValue, Item, Number};
use crate::error::ApiError;

/// DynamoDB's limit on an item's size.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;

/// DynamoDB's limits on a key value, of a table's key or of a secondary index's.
pub const MAX_PARTITION_KEY_BYTES: usize = 2048;
pub const MAX_SORT_KEY_BYTES: usize = 1024;

/// The answer to an item over [`MAX_ITEM_BYTES`].
pub fn item_too_large() -> ApiError {
    ApiError::validation("Item size has exceeded the maximum allowed size")
}

/// Bytes of a map or list before its elements.
pub const CONTAINER_OVERHEAD: usize = 3;
/// Bytes of each element of a map or list on top of its own size.
pub const ELEMENT_OVERHEAD: usize = 1;

/// The item's size as DynamoDB counts it.
pub fn item_size(item: &Item) -> usize {
    item.iter().map(|(name, value)| name.len() + value_size(value)).sum()
}

/// The size of one value, without the name of the attribute holding it.
pub fn value_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => number_size(n),
        AttributeValue::B(b) => b.len(),
        AttributeValue::Bool(_) | AttributeValue::Null => 1,
        AttributeValue::M(m) => CONTAINER_OVERHEAD + m.len() * ELEMENT_OVERHEAD + item_size(m),
        AttributeValue::L(l) => CONTAINER_OVERHEAD + l.iter().map(|v| ELEMENT_OVERHEAD + value_size(v)).sum::<usize>(),
        AttributeValue::Ss(ss) => ss.iter().map(String::len).sum(),
        AttributeValue::Ns(ns) => ns.iter().map(number_size).sum(),
        AttributeValue::Bs(bs) => bs.iter().map(Vec::len).sum(),
    }
}

/// One byte of sign and exponent, the base-100 digits, and a byte more when negative.
fn number_size(n: &Number) -> usize {
    if n.is_zero() {
        return 1;
    }
    // A first digit at an even power of ten is the low half of its pair (1 is 01): one more
    // digit to pair up.
    let aligned = n.digits.len() + usize::from(n.exponent % 2 == 0);
    1 + aligned.div_ceil(2) + usize::from(n.negative)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn size_of(v: serde_json::Value) -> usize {
        value_size(&AttributeValue::from_json(&v).unwrap())
    }

    fn number(text: &str) -> usize {
        size_of(json!({ "N": text }))
    }

    #[test]
    fn numbers() {
        for (text, size) in [
            ("0", 1),
            ("-0.00", 1),
            ("1", 2),
            ("27", 2),
            ("-27", 3),
            ("461", 3),
            ("1234", 3),
            ("12345", 4),
            ("1.5", 3),
            ("12.5", 3),
            ("100.5", 4),
            ("0.5", 2),
            ("0.05", 2),
            ("0.123", 3),
            ("1E125", 2),
            ("1E124", 2),
            ("1200", 2),
            ("120", 3),
            // The numbers DynamoDB's 400 KB limit was probed with: 38 digits take 20 bytes.
            (&format!("{}{}", "1".repeat(38), "0".repeat(88)), 20),
            (&format!("11{}", "0".repeat(124)), 2),
            (&format!("11111{}", "0".repeat(121)), 4),
            (&format!("111111{}", "0".repeat(120)), 4),
            (&format!("1111111{}", "0".repeat(119)), 5),
        ] {
            assert_eq!(number(text), size, "{text}");
        }
    }

    #[test]
    fn values() {
        assert_eq!(size_of(json!({ "S": "héllo" })), 6);
        assert_eq!(size_of(json!({ "S": "" })), 0);
        assert_eq!(size_of(json!({ "B": "AAEC" })), 3);
        assert_eq!(size_of(json!({ "BOOL": false })), 1);
        assert_eq!(size_of(json!({ "NULL": true })), 1);
        assert_eq!(size_of(json!({ "SS": ["ab", "c"] })), 3);
        assert_eq!(size_of(json!({ "NS": ["1", "-27"] })), 5);
        assert_eq!(size_of(json!({ "BS": ["AA==", "AAE="] })), 3);
        assert_eq!(size_of(json!({ "L": [] })), 3);
        assert_eq!(size_of(json!({ "M": {} })), 3);
        // 3 + (1 + 1) + (1 + 2)
        assert_eq!(size_of(json!({ "L": [{ "S": "a" }, { "N": "27" }] })), 8);
        // 3 + (1 + "ab" + 1) + (1 + "c" + 3)
        assert_eq!(size_of(json!({ "M": { "ab": { "BOOL": true }, "c": { "L": [] } } })), 12);
    }

    #[test]
    fn items() {
        let item = crate::model::item_from_json(&json!({
            "pk": { "S": "user#1" }, "n": { "N": "27" }, "tags": { "SS": ["a", "bc"] }, "ü": { "NULL": true },
        }))
        .unwrap();
        assert_eq!(item_size(&item), (2 + 6) + (1 + 2) + (4 + 3) + (2 + 1));
        assert_eq!(item_size(&Item::new()), 0);
    }
}
