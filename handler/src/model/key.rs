//! Order-preserving encoding of key attribute values: comparing two encodings as unsigned bytes
//! orders them as DynamoDB orders the values (S by UTF-8 bytes, B by bytes, N by value).
//!
//! Every encoding starts with a type tag. A key attribute has one type per table, so the order
//! between types never matters; the tag only keeps encodings of different types distinct.
//!
//! A number is `N`, a class byte (negative < zero < positive), then for non-zero values the
//! magnitude: the exponent biased to a byte, the digits two to a byte (a last odd digit padded
//! with 0) each plus one, and a 0 terminator. With no trailing zeros in the digits, a shorter
//! magnitude that runs out first (hits the terminator) is the smaller one. A negative number
//! complements the magnitude bytes, which reverses their order, terminator included.

use super::{AttributeValue, Number};
use crate::storage::ItemKey;

const TAG_B: u8 = b'B';
const TAG_N: u8 = b'N';
const TAG_S: u8 = b'S';

const NEGATIVE: u8 = 1;
const ZERO: u8 = 2;
const POSITIVE: u8 = 3;
/// Exponents run from -130 to 125, so `exponent + 130` fits a byte exactly.
const EXPONENT_BIAS: i32 = 130;

/// Encodes an S, N or B value so that comparing encodings as unsigned bytes orders them exactly
/// as DynamoDB orders the values. None for other types.
pub fn encode(value: &AttributeValue) -> Option<Vec<u8>> {
    match value {
        AttributeValue::S(s) => Some([&[TAG_S], s.as_bytes()].concat()),
        AttributeValue::B(b) => Some([&[TAG_B], b.as_slice()].concat()),
        AttributeValue::N(n) => Some(number(n)),
        _ => None,
    }
}

fn number(n: &Number) -> Vec<u8> {
    if n.is_zero() {
        return vec![TAG_N, ZERO];
    }
    let mut out = Vec::with_capacity(4 + n.digits.len().div_ceil(2));
    out.extend([TAG_N, if n.negative { NEGATIVE } else { POSITIVE }]);
    let magnitude = out.len();
    // `Number::parse` keeps the exponent in range, so this never truncates.
    out.push((n.exponent + EXPONENT_BIAS) as u8);
    out.extend(n.digits.chunks(2).map(|pair| pair[0] * 10 + pair.get(1).copied().unwrap_or(0) + 1));
    out.push(0);
    if n.negative {
        out[magnitude..].iter_mut().for_each(|b| *b = !*b);
    }
    out
}

/// Index entries. An index keyspace's key is (index partition, index sort ++ table partition ++
/// table sort): the index partition is the encoded index hash key; the sort part joins the
/// encoded index range key (if the index has one) and the table's partition, each made
/// self-delimiting by [`delimited`], and the table's sort key last. Byte order is then the order
/// of (index sort, table partition, table sort), and the entry's key is unique per table item.
pub fn index_entry_key(index_partition: Vec<u8>, index_sort: Option<&[u8]>, table_key: &ItemKey) -> ItemKey {
    let mut sort = Vec::with_capacity(index_sort.map_or(0, |s| s.len() + 2) + table_key.partition.len() + 2);
    if let Some(index_sort) = index_sort {
        push_delimited(&mut sort, index_sort);
    }
    push_delimited(&mut sort, &table_key.partition);
    sort.extend_from_slice(&table_key.sort);
    ItemKey { partition: index_partition, sort }
}

/// An encoding made self-delimiting: 0x00 becomes 0x00 0xFF, and 0x00 0x01 ends it. Byte order
/// is kept, and no result is a prefix of another, so a sequence of them orders component-wise.
pub fn delimited(encoded: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(encoded.len() + 2);
    push_delimited(&mut out, encoded);
    out
}

/// [`delimited`] without the end mark: a prefix of every delimited encoding of a value that starts
/// with `encoded` (for `begins_with` on an index sort key).
pub fn escaped(encoded: &[u8]) -> Vec<u8> {
    let mut out = delimited(encoded);
    out.truncate(out.len() - DELIMITER.len());
    out
}

/// The least byte string above every string that starts with `delimited` (a [`delimited`]
/// encoding): an upper bound that keeps all index entries of that index sort value.
pub fn after_delimited(delimited: &[u8]) -> Vec<u8> {
    let mut out = delimited.to_vec();
    *out.last_mut().expect("a delimited encoding ends with its mark") += 1;
    out
}

const DELIMITER: [u8; 2] = [0x00, 0x01];

fn push_delimited(out: &mut Vec<u8>, encoded: &[u8]) {
    for &byte in encoded {
        out.push(byte);
        if byte == 0 {
            out.push(0xFF);
        }
    }
    out.extend_from_slice(&DELIMITER);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(text: &str) -> Vec<u8> {
        encode(&AttributeValue::N(Number::parse(text).unwrap())).unwrap()
    }

    #[test]
    fn equal_numbers_encode_alike() {
        for same in ["1.0", "10e-1", "0.1E1", "+1", "001"] {
            assert_eq!(key(same), key("1"), "{same}");
        }
        assert_eq!(key("-0"), key("0.000"));
        assert_eq!(key("0"), [TAG_N, ZERO]);
    }

    #[test]
    fn orders_hand_picked_numbers() {
        let ordered = [
            "-9.9999999999999999999999999999999999999E+125",
            "-1e10",
            "-100",
            "-12",
            "-1.23",
            "-1.2",
            "-1.02",
            "-1",
            "-0.5",
            "-1E-130",
            "0",
            "1E-130",
            "0.5",
            "1",
            "1.02",
            "1.2",
            "1.23",
            "12",
            "100",
            "1e10",
            "9.9999999999999999999999999999999999999E+125",
        ];
        for pair in ordered.windows(2) {
            assert!(key(pair[0]) < key(pair[1]), "{} < {}", pair[0], pair[1]);
        }
    }

    #[test]
    fn only_scalars_are_keys() {
        assert_eq!(encode(&AttributeValue::S("ab".into())), Some(b"Sab".to_vec()));
        assert_eq!(encode(&AttributeValue::B(vec![0, 255])), Some(vec![TAG_B, 0, 255]));
        assert_eq!(encode(&AttributeValue::Bool(true)), None);
        assert_eq!(encode(&AttributeValue::Ss(vec!["a".into()])), None);
    }

    /// Numbers from digit strings of every length and placement, across the whole range.
    fn number() -> impl Strategy<Value = Number> {
        (any::<bool>(), "[0-9]{1,38}", 0usize..=38, -131i32..=126).prop_filter_map(
            "out of range",
            |(negative, digits, point, exp)| {
                let point = point.min(digits.len());
                let sign = if negative { "-" } else { "" };
                Number::parse(&format!("{sign}{}.{}e{exp}", &digits[..point], &digits[point..])).ok()
            },
        )
    }

    fn n_key(n: &Number) -> Vec<u8> {
        encode(&AttributeValue::N(n.clone())).unwrap()
    }

    proptest! {
        #[test]
        fn number_order(a in number(), b in number()) {
            prop_assert_eq!(n_key(&a).cmp(&n_key(&b)), a.cmp(&b));
        }

        #[test]
        fn number_order_near(a in number(), digit in 0u8..10) {
            // Neighbours that share a long prefix: one more digit, and the same digits negated.
            let longer = Number::parse(&format!("{a}{}{digit}", if a.to_string().contains('.') { "" } else { "." }));
            if let Ok(b) = longer {
                prop_assert_eq!(n_key(&a).cmp(&n_key(&b)), a.cmp(&b));
            }
            let negated = Number::parse(&format!("-{a}")).unwrap_or(a.clone());
            prop_assert_eq!(n_key(&a).cmp(&n_key(&negated)), a.cmp(&negated));
        }

        #[test]
        fn integer_order(a in any::<i64>(), b in any::<i64>()) {
            prop_assert_eq!(key(&a.to_string()).cmp(&key(&b.to_string())), a.cmp(&b));
        }

        #[test]
        fn float_order(a in -1e30f64..1e30, b in -1e30f64..1e30) {
            prop_assert_eq!(key(&format!("{a:e}")).cmp(&key(&format!("{b:e}"))), a.partial_cmp(&b).unwrap());
        }

        #[test]
        fn string_order(a in any::<String>(), b in any::<String>()) {
            let (x, y) = (AttributeValue::S(a.clone()), AttributeValue::S(b.clone()));
            prop_assert_eq!(encode(&x).cmp(&encode(&y)), a.cmp(&b));
        }

        #[test]
        fn binary_order(a in any::<Vec<u8>>(), b in any::<Vec<u8>>()) {
            let (x, y) = (AttributeValue::B(a.clone()), AttributeValue::B(b.clone()));
            prop_assert_eq!(encode(&x).cmp(&encode(&y)), a.cmp(&b));
        }

        /// Index entry keys order as (index sort, table partition, table sort), whatever the
        /// bytes (zeros included), and bounds built from one index sort value keep exactly its
        /// entries on the right side.
        #[test]
        fn index_entry_order(
            a in (proptest::collection::vec(0u8..4, 0..5), proptest::collection::vec(0u8..4, 0..4), proptest::collection::vec(0u8..4, 0..3)),
            b in (proptest::collection::vec(0u8..4, 0..5), proptest::collection::vec(0u8..4, 0..4), proptest::collection::vec(0u8..4, 0..3)),
        ) {
            let entry = |(isk, pk, sk): &(Vec<u8>, Vec<u8>, Vec<u8>)| {
                index_entry_key(b"p".to_vec(), Some(isk), &ItemKey { partition: pk.clone(), sort: sk.clone() }).sort
            };
            let (ka, kb) = (entry(&a), entry(&b));
            prop_assert_eq!(ka.cmp(&kb), a.cmp(&b));
            let (lower, upper) = (delimited(&b.0), after_delimited(&delimited(&b.0)));
            prop_assert_eq!(ka >= lower && ka < upper, a.0 == b.0);
            prop_assert_eq!(ka < lower, a.0 < b.0);
            prop_assert_eq!(ka.starts_with(&escaped(&b.0)), a.0.starts_with(&b.0));
        }
    }
}
