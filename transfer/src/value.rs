//! DynamoDB JSON values: checked as DynamoDB would take them, their numbers taken apart, and their
//! sizes as DynamoDB counts them.

use std::collections::HashSet;
use std::hash::Hash;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

use crate::Item;

/// How deep DynamoDB nests lists and maps.
const MAX_DEPTH: usize = 32;
/// DynamoDB's limits on a number: 38 significant digits, magnitude from 1E-130 to below 1E126.
const MAX_DIGITS: usize = 38;
const MAX_EXPONENT: i64 = 125;
const MIN_EXPONENT: i64 = -130;

/// Checks that every attribute of `item` is a well-formed DynamoDB value: one known type, valid
/// numbers and base64, sets neither empty nor holding duplicates, nesting within DynamoDB's limit.
/// Key and size rules are the table's business, not the file's.
pub(crate) fn check_item(item: &Item) -> Result<(), String> {
    for (name, value) in item {
        if name.is_empty() {
            return Err("an attribute name is empty".into());
        }
        check_value(value, 1).map_err(|reason| format!("attribute {name:?}: {reason}"))?;
    }
    Ok(())
}

fn check_value(value: &Value, depth: usize) -> Result<(), String> {
    let (tag, inner) = typed(value)?;
    match (tag, inner) {
        ("S", Value::String(_)) | ("BOOL", Value::Bool(_)) | ("NULL", Value::Bool(true)) => Ok(()),
        ("N", Value::String(text)) => Number::parse(text).map(drop),
        ("B", Value::String(text)) => decode_binary(text).map(drop),
        ("SS", Value::Array(elements)) => {
            check_set(elements, |e| e.as_str().map(str::to_owned).ok_or_else(|| "SS holds a non-string".into()))
        }
        ("NS", Value::Array(elements)) => check_set(elements, |e| {
            e.as_str().ok_or_else(|| "NS holds a non-string".to_owned()).and_then(Number::parse).map(|n| n.canonical())
        }),
        ("BS", Value::Array(elements)) => check_set(elements, |e| {
            e.as_str().ok_or_else(|| "BS holds a non-string".to_owned()).and_then(decode_binary)
        }),
        ("L", Value::Array(elements)) if depth <= MAX_DEPTH => {
            elements.iter().try_for_each(|element| check_value(element, depth + 1))
        }
        ("M", Value::Object(members)) if depth <= MAX_DEPTH => {
            members.values().try_for_each(|member| check_value(member, depth + 1))
        }
        ("L" | "M", _) if depth > MAX_DEPTH => Err(format!("nested deeper than {MAX_DEPTH} levels")),
        ("S" | "N" | "B" | "BOOL" | "NULL" | "SS" | "NS" | "BS" | "L" | "M", _) => {
            Err(format!("the {tag} value is not of the JSON type {tag} takes"))
        }
        _ => Err(format!("unknown type {tag:?}")),
    }
}

/// The one type tag of an attribute value and what it holds.
pub(crate) fn typed(value: &Value) -> Result<(&str, &Value), String> {
    let object = value.as_object().ok_or("an attribute value is not a JSON object")?;
    let mut members = object.iter();
    match (members.next(), members.next()) {
        (Some((tag, inner)), None) => Ok((tag, inner)),
        _ => Err("an attribute value does not hold exactly one type".into()),
    }
}

fn check_set<T: Hash + Eq>(elements: &[Value], key: impl Fn(&Value) -> Result<T, String>) -> Result<(), String> {
    if elements.is_empty() {
        return Err("a set is empty".into());
    }
    let mut seen = HashSet::with_capacity(elements.len());
    for element in elements {
        if !seen.insert(key(element)?) {
            return Err("a set holds duplicates".into());
        }
    }
    Ok(())
}

/// The bytes of a DynamoDB JSON binary: standard base64 with padding.
pub(crate) fn decode_binary(text: &str) -> Result<Vec<u8>, String> {
    STANDARD.decode(text).map_err(|e| format!("bad base64 ({e})"))
}

pub(crate) fn encode_binary(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// A DynamoDB number as `digits × 10^exponent`, the digits without leading or trailing zeros
/// (none for zero), so that equal numbers have one form.
#[derive(Debug, PartialEq)]
pub(crate) struct Number {
    negative: bool,
    digits: String,
    exponent: i64,
}

impl Number {
    /// Reads DynamoDB's number syntax ("-12.50", "1e3", "+5", ".5") within its limits.
    pub(crate) fn parse(text: &str) -> Result<Number, String> {
        let bad = || format!("{text:?} is not a number");
        let (negative, unsigned) = match text.as_bytes().first() {
            Some(b'-') => (true, &text[1..]),
            Some(b'+') => (false, &text[1..]),
            _ => (false, text),
        };
        let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
            Some((mantissa, exponent)) => (mantissa, exponent.parse::<i32>().map_err(|_| bad())?),
            None => (unsigned, 0),
        };
        let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let all = [int, frac].concat();
        if all.is_empty() || !all.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let significant = all.trim_start_matches('0');
        let digits = significant.trim_end_matches('0');
        if digits.is_empty() {
            return Ok(Number { negative: false, digits: String::new(), exponent: 0 });
        }
        let exponent = i64::from(exponent) - frac.len() as i64 + (significant.len() - digits.len()) as i64;
        let first = exponent + digits.len() as i64 - 1;
        if first > MAX_EXPONENT {
            return Err(format!("{text:?} is larger than DynamoDB's numbers"));
        }
        if first < MIN_EXPONENT {
            return Err(format!("{text:?} is smaller than DynamoDB's numbers"));
        }
        if digits.len() > MAX_DIGITS {
            return Err(format!("{text:?} has more than {MAX_DIGITS} significant digits"));
        }
        Ok(Number { negative, digits: digits.to_owned(), exponent })
    }

    /// The number from an Ion decimal's coefficient and exponent, within DynamoDB's limits.
    pub(crate) fn from_ion(decimal: &ion_rs::Decimal) -> Result<Number, String> {
        let coefficient = decimal.coefficient();
        let sign = if coefficient.is_negative() { "-" } else { "" };
        Number::parse(&format!("{sign}{}E{}", coefficient.magnitude(), decimal.exponent()))
    }

    /// The Ion decimal of the same value; 38 digits always fit an `i128`.
    pub(crate) fn to_ion(&self) -> ion_rs::Decimal {
        let magnitude = self.digits.parse::<i128>().unwrap_or(0);
        ion_rs::Decimal::new(if self.negative { -magnitude } else { magnitude }, self.exponent)
    }

    /// The plain decimal text DynamoDB answers with: no exponent, no needless zeros.
    pub(crate) fn canonical(&self) -> String {
        let sign = if self.negative { "-" } else { "" };
        let digits = &self.digits;
        if digits.is_empty() {
            return "0".into();
        }
        let exponent = self.exponent;
        if exponent >= 0 {
            return format!("{sign}{digits}{}", "0".repeat(exponent as usize));
        }
        let point = digits.len() as i64 + exponent;
        if point > 0 {
            let (int, frac) = digits.split_at(point as usize);
            format!("{sign}{int}.{frac}")
        } else {
            format!("{sign}0.{}{digits}", "0".repeat(point.unsigned_abs() as usize))
        }
    }

    /// Bytes DynamoDB counts: one of sign and exponent, the digits in pairs aligned on the
    /// decimal point, one more when negative.
    fn size(&self) -> u64 {
        if self.digits.is_empty() {
            return 1;
        }
        let first = self.exponent + self.digits.len() as i64 - 1;
        let aligned = self.digits.len() as u64 + u64::from(first % 2 == 0);
        1 + aligned.div_ceil(2) + u64::from(self.negative)
    }
}

/// An item's size as DynamoDB counts it (names and strings by UTF-8 length, binaries by their
/// bytes, BOOL and NULL one byte, a list or map 3 bytes plus 1 per element), for billed bytes.
pub(crate) fn item_size(item: &Item) -> u64 {
    item.iter().map(|(name, value)| name.len() as u64 + value_size(value)).sum()
}

fn value_size(value: &Value) -> u64 {
    fn elements(value: &Value) -> &[Value] {
        value.as_array().map_or(&[], Vec::as_slice)
    }
    fn string(value: &Value) -> u64 {
        value.as_str().map_or(0, |text| text.len() as u64)
    }
    fn number(value: &Value) -> u64 {
        value.as_str().and_then(|text| Number::parse(text).ok()).map_or(0, |n| n.size())
    }
    fn binary(value: &Value) -> u64 {
        let text = value.as_str().unwrap_or_default();
        let padding = text.bytes().rev().take_while(|&b| b == b'=').count();
        (text.len() / 4 * 3).saturating_sub(padding) as u64
    }
    let Ok((tag, inner)) = typed(value) else { return 0 };
    match tag {
        "S" => string(inner),
        "N" => number(inner),
        "B" => binary(inner),
        "SS" => elements(inner).iter().map(string).sum(),
        "NS" => elements(inner).iter().map(number).sum(),
        "BS" => elements(inner).iter().map(binary).sum(),
        "L" => 3 + elements(inner).iter().map(|element| 1 + value_size(element)).sum::<u64>(),
        "M" => 3 + inner.as_object().map_or(0, |members| members.len() as u64 + item_size(members)),
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item(value: Value) -> Item {
        value.as_object().cloned().unwrap_or_default()
    }

    fn check(value: Value) -> Result<(), String> {
        check_item(&item(json!({ "a": value })))
    }

    #[test]
    fn numbers_take_their_canonical_form() {
        for (text, canonical) in [
            ("1.50", "1.5"),
            ("-0.0125", "-0.0125"),
            ("1e3", "1000"),
            ("-0", "0"),
            ("+5", "5"),
            (".5", "0.5"),
            ("5.", "5"),
            ("007.100", "7.1"),
            ("12.5E-3", "0.0125"),
            ("-1E+2", "-100"),
            ("1E-130", &format!("0.{}1", "0".repeat(129))),
            ("9.9999999999999999999999999999999999999E125", &format!("{}{}", "9".repeat(38), "0".repeat(88))),
        ] {
            assert_eq!(Number::parse(text).map(|n| n.canonical()).as_deref(), Ok(canonical), "{text}");
        }
        for bad in ["", "abc", ".", "-", "1e", "e5", "1.2.3", " 1", "1E99999999999", "1E126", "1E-131"] {
            assert!(Number::parse(bad).is_err(), "{bad}");
        }
        assert!(Number::parse(&"1".repeat(39)).is_err());
        assert!(Number::parse(&format!("{}000", "1".repeat(38))).is_ok());
    }

    #[test]
    fn numbers_go_to_ion_decimals() {
        for (text, ion) in [("600", "6d2"), ("103", "103."), ("-1.5", "-1.5"), ("0", "0."), ("1E125", "1d125")] {
            assert_eq!(Number::parse(text).unwrap().to_ion().to_string(), ion, "{text}");
        }
    }

    #[test]
    fn ion_decimals_come_back_as_numbers() {
        for text in
            ["0", "103", "600", "-1.5", "0.000001", "12345678901234567890123456789012345678", "1E125", "-1E-130"]
        {
            let number = Number::parse(text).unwrap();
            assert_eq!(Number::from_ion(&number.to_ion()), Ok(number), "{text}");
        }
        assert!(Number::from_ion(&ion_rs::Decimal::new(1, 126)).is_err());
    }

    #[test]
    fn every_type_is_checked() {
        for good in [
            json!({"S": ""}),
            json!({"N": "-1.5e3"}),
            json!({"B": "AAE="}),
            json!({"B": ""}),
            json!({"BOOL": false}),
            json!({"NULL": true}),
            json!({"SS": ["", "a"]}),
            json!({"NS": ["1", "2"]}),
            json!({"BS": ["", "AA=="]}),
            json!({"L": [{"S": ""}, {"L": []}]}),
            json!({"M": {"": {"S": "x"}}}),
        ] {
            assert_eq!(check(good.clone()), Ok(()), "{good}");
        }
        for (bad, reason) in [
            (json!("x"), "not a JSON object"),
            (json!({}), "exactly one type"),
            (json!({"S": "a", "N": "1"}), "exactly one type"),
            (json!({"X": "1"}), "unknown type"),
            (json!({"S": 1}), "JSON type"),
            (json!({"N": "one"}), "not a number"),
            (json!({"B": "not base64!"}), "bad base64"),
            (json!({"NULL": false}), "JSON type"),
            (json!({"SS": []}), "empty"),
            (json!({"SS": ["a", "a"]}), "duplicates"),
            (json!({"NS": ["1", "1.0"]}), "duplicates"),
            (json!({"BS": ["AA==", "AA=="]}), "duplicates"),
            (json!({"NS": [1]}), "non-string"),
            (json!({"L": [{"Q": "x"}]}), "unknown type"),
        ] {
            let error = check(bad.clone()).unwrap_err();
            assert!(error.contains(reason), "{bad}: {error}");
        }
        assert!(check_item(&item(json!({"": {"S": "x"}}))).is_err());
    }

    #[test]
    fn nesting_stops_at_32_levels() {
        let nest = |levels: usize| (1..levels).fold(json!({"M": {}}), |inner, _| json!({"L": [inner]}));
        assert_eq!(check(nest(32)), Ok(()));
        assert!(check(nest(33)).unwrap_err().contains("nested deeper"));
    }

    #[test]
    fn sizes_are_counted_as_dynamodb_does() {
        let sized = |value: Value| item_size(&item(json!({ "ab": value }))) - 2;
        assert_eq!(sized(json!({"S": "héllo"})), 6);
        assert_eq!(sized(json!({"B": "AAEC"})), 3);
        assert_eq!(sized(json!({"B": "AAE="})), 2);
        assert_eq!(sized(json!({"N": "0"})), 1);
        assert_eq!(sized(json!({"N": "1"})), 2);
        assert_eq!(sized(json!({"N": "1.5"})), 3);
        assert_eq!(sized(json!({"N": "-15"})), 3);
        assert_eq!(sized(json!({"BOOL": true})), 1);
        assert_eq!(sized(json!({"SS": ["a", "bc"]})), 3);
        assert_eq!(sized(json!({"L": [{"S": "a"}, {"NULL": true}]})), 3 + 2 + 2);
        assert_eq!(sized(json!({"M": {"k": {"S": "v"}}})), 3 + 1 + 1 + 1);
    }
}
