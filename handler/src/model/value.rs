//! Attribute values and items, decoded from and encoded to DynamoDB JSON.
//!
//! Decoding mirrors DynamoDB's two stages. Its JSON reader (Coral) first turns the whole request
//! into typed objects and answers a JSON type that does not fit with a SerializationException;
//! only then does DynamoDB validate the values (ValidationException). So a type mismatch anywhere
//! beats a validation failure anywhere: [`Decoder`] returns mismatches at once, but only records
//! the first validation failure and walks on.

use std::collections::{BTreeMap, HashSet};
use std::hash::Hash;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::Number;
use crate::error::{ApiError, ApiResult};

/// A top-level attribute is level 1; DynamoDB takes values down to level 32, i.e. 31 maps or
/// lists wrapped around a scalar.
const MAX_LEVEL: usize = 32;

const EMPTY: &str = "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes";
const MORE_THAN_ONE: &str =
    "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes";
const TOO_DEEP: &str = "1 validation error detected: Nesting Levels have exceeded supported limits: Attributes in the item have nested levels beyond supported limit";
const START_OF_MAP: &str = "Start of structure or map found where not expected";
/// Longest attribute name, in UTF-8 bytes.
const MAX_NAME_BYTES: usize = 65535;
const UNEXPECTED_FIELD: &str = "Unexpected field type";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttributeValue {
    S(String),
    N(Number),
    B(Vec<u8>),
    Bool(bool),
    Null,
    M(Item),
    L(Vec<AttributeValue>),
    /// Sets keep the order they arrived in: DynamoDB promises none.
    Ss(Vec<String>),
    Ns(Vec<Number>),
    Bs(Vec<Vec<u8>>),
}

/// Attributes by name; a `BTreeMap` so they come back in name order.
pub type Item = BTreeMap<String, AttributeValue>;

impl AttributeValue {
    /// Decodes one AttributeValue from DynamoDB JSON, with DynamoDB's checks and messages.
    pub fn from_json(v: &Value) -> ApiResult<AttributeValue> {
        let mut decoder = Decoder::default();
        let value = decoder.value(v, 1)?;
        decoder.finish(value)
    }

    /// DynamoDB JSON: numbers in canonical form, binary as padded standard base64.
    pub fn to_json(&self) -> Value {
        let base64 = |bytes: &Vec<u8>| STANDARD.encode(bytes);
        match self {
            AttributeValue::S(s) => json!({ "S": s }),
            AttributeValue::N(n) => json!({ "N": n.to_string() }),
            AttributeValue::B(b) => json!({ "B": base64(b) }),
            AttributeValue::Bool(b) => json!({ "BOOL": b }),
            AttributeValue::Null => json!({ "NULL": true }),
            AttributeValue::M(m) => json!({ "M": item_to_json(m) }),
            AttributeValue::L(l) => json!({ "L": l.iter().map(Self::to_json).collect::<Vec<_>>() }),
            AttributeValue::Ss(ss) => json!({ "SS": ss }),
            AttributeValue::Ns(ns) => {
                json!({ "NS": ns.iter().map(Number::to_string).collect::<Vec<_>>() })
            }
            AttributeValue::Bs(bs) => json!({ "BS": bs.iter().map(base64).collect::<Vec<_>>() }),
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            AttributeValue::S(_) => "S",
            AttributeValue::N(_) => "N",
            AttributeValue::B(_) => "B",
            AttributeValue::Bool(_) => "BOOL",
            AttributeValue::Null => "NULL",
            AttributeValue::M(_) => "M",
            AttributeValue::L(_) => "L",
            AttributeValue::Ss(_) => "SS",
            AttributeValue::Ns(_) => "NS",
            AttributeValue::Bs(_) => "BS",
        }
    }
}

/// Decodes a JSON object of attribute name -> AttributeValue (an Item, a Key, ...).
pub fn item_from_json(v: &Value) -> ApiResult<Item> {
    let mut decoder = Decoder::default();
    let item = decoder.map(v, 1)?;
    decoder.finish(item)
}

/// DynamoDB's rule for an attribute name, in an item or in ExpressionAttributeNames: 1 to 65,535
/// bytes (a map key's too, which may be empty though). `Err` is the reason, which each caller
/// words into its own message.
pub fn check_attribute_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        Err("Empty attribute name")
    } else if name.len() > MAX_NAME_BYTES {
        Err("Attribute name is too large, must be less than 65536 bytes")
    } else {
        Ok(())
    }
}

/// Checks an item built by an update (rather than decoded) against the nesting limit.
pub fn check_nesting(item: &Item) -> ApiResult<()> {
    fn level(value: &AttributeValue) -> usize {
        match value {
            AttributeValue::M(map) => 1 + map.values().map(level).max().unwrap_or(0),
            AttributeValue::L(list) => 1 + list.iter().map(level).max().unwrap_or(0),
            _ => 1,
        }
    }
    match item.values().map(level).max() {
        Some(deepest) if deepest > MAX_LEVEL => Err(ApiError::validation(TOO_DEEP)),
        _ => Ok(()),
    }
}

pub fn item_to_json(item: &Item) -> Value {
    Value::Object(item.iter().map(|(name, value)| (name.clone(), value.to_json())).collect())
}

/// One decoding walk; see the module comment. A JSON `null` counts as absent everywhere, as it
/// does for Coral.
#[derive(Default)]
struct Decoder {
    invalid: Option<ApiError>,
}

impl Decoder {
    /// Records a validation failure (the first one wins) and yields a stand-in value: the walk
    /// goes on only to find type mismatches, and its result is thrown away.
    fn reject(&mut self, error: ApiError) -> AttributeValue {
        self.invalid.get_or_insert(error);
        AttributeValue::Null
    }

    fn finish<T>(self, decoded: T) -> ApiResult<T> {
        self.invalid.map_or(Ok(decoded), Err)
    }

    /// A JSON object of AttributeValues sitting at `level`.
    fn map(&mut self, v: &Value, level: usize) -> ApiResult<Item> {
        let Value::Object(fields) = v else {
            return Err(match v {
                Value::Array(_) => ApiError::serialization(
                    "Unrecognized collection type java.util.Map<java.lang.String, com.amazonaws.dynamodb.v20120810.AttributeValue>",
                ),
                _ => ApiError::serialization(UNEXPECTED_FIELD),
            });
        };
        let mut item = Item::new();
        for (name, value) in fields.iter().filter(|(_, value)| !value.is_null()) {
            // Map keys at any depth are names too, held to the same length; only they may be empty.
            if let Err(reason) = check_attribute_name(name)
                && (level == 1 || !name.is_empty())
            {
                self.reject(ApiError::validation(reason));
            }
            item.insert(name.clone(), self.value(value, level)?);
        }
        Ok(item)
    }

    fn value(&mut self, v: &Value, level: usize) -> ApiResult<AttributeValue> {
        // Checked on the way down, which also bounds the recursion whatever the input.
        if level > MAX_LEVEL {
            return Ok(self.reject(ApiError::validation(TOO_DEEP)));
        }
        let members = match v {
            Value::Object(members) => members,
            Value::Null => return Ok(self.reject(ApiError::validation(EMPTY))),
            Value::Array(_) => {
                return Err(ApiError::serialization(
                    "Unrecognized collection type class com.amazonaws.dynamodb.v20120810.AttributeValue",
                ));
            }
            _ => return Err(ApiError::serialization("Unexpected value type in payload")),
        };
        let mut decoded = Vec::with_capacity(1);
        for (key, member) in members.iter().filter(|(_, member)| !member.is_null()) {
            decoded.push(match key.as_str() {
                "S" => AttributeValue::S(string(member)?.to_owned()),
                "N" => match Number::parse(string(member)?) {
                    Ok(n) => AttributeValue::N(n),
                    Err(e) => self.reject(e),
                },
                "B" => AttributeValue::B(blob(member)?),
                "BOOL" => AttributeValue::Bool(boolean(member)?),
                "NULL" if boolean(member)? => AttributeValue::Null,
                "NULL" => {
                    self.reject(ApiError::invalid_parameter("Null attribute value types must have the value of true"))
                }
                "M" => AttributeValue::M(self.map(member, level + 1)?),
                "L" => AttributeValue::L(
                    elements(member)?.map(|element| self.value(element, level + 1)).collect::<ApiResult<_>>()?,
                ),
                "SS" => self.string_set(member)?,
                "NS" => self.number_set(member)?,
                "BS" => self.binary_set(member)?,
                // Coral skips members the model does not know, so {"X": "1"} is just empty.
                _ => continue,
            });
        }
        // Members are validated before their count, as DynamoDB does ({"S":"a","N":"x"} is a
        // number error).
        Ok(match decoded.len() {
            0 => self.reject(ApiError::validation(EMPTY)),
            1 => decoded.swap_remove(0),
            _ => self.reject(ApiError::validation(MORE_THAN_ONE)),
        })
    }

    fn string_set(&mut self, member: &Value) -> ApiResult<AttributeValue> {
        let strings = elements(member)?.map(|e| string(e).map(str::to_owned)).collect::<ApiResult<Vec<_>>>()?;
        Ok(if strings.is_empty() {
            // Sic: DynamoDB's text, double space included.
            self.reject(ApiError::invalid_parameter("An string set  may not be empty"))
        } else if has_duplicates(&strings) {
            self.reject(ApiError::invalid_parameter(format!(
                "Input collection [{}] contains duplicates.",
                strings.join(", ")
            )))
        } else {
            AttributeValue::Ss(strings)
        })
    }

    fn number_set(&mut self, member: &Value) -> ApiResult<AttributeValue> {
        let texts = elements(member)?.map(string).collect::<ApiResult<Vec<_>>>()?;
        if texts.is_empty() {
            return Ok(self.reject(ApiError::invalid_parameter("An number set  may not be empty")));
        }
        Ok(match texts.into_iter().map(Number::parse).collect::<ApiResult<Vec<_>>>() {
            Err(e) => self.reject(e),
            // Duplicates by value ("1" and "1.0"); unlike SS and BS, DynamoDB's message for NS
            // has neither the prefix nor the collection.
            Ok(numbers) if has_duplicates(&numbers) => {
                self.reject(ApiError::validation("Input collection contains duplicates"))
            }
            Ok(numbers) => AttributeValue::Ns(numbers),
        })
    }

    fn binary_set(&mut self, member: &Value) -> ApiResult<AttributeValue> {
        let blobs = elements(member)?.map(blob).collect::<ApiResult<Vec<_>>>()?;
        Ok(if blobs.is_empty() {
            self.reject(ApiError::invalid_parameter("Binary sets should not be empty"))
        } else if has_duplicates(&blobs) {
            // Sic: no space before "of".
            let shown = blobs.iter().map(|b| STANDARD.encode(b)).collect::<Vec<_>>();
            self.reject(ApiError::invalid_parameter(format!(
                "Input collection [{}]of type BS contains duplicates.",
                shown.join(", ")
            )))
        } else {
            AttributeValue::Bs(blobs)
        })
    }
}

fn has_duplicates<T: Hash + Eq>(items: &[T]) -> bool {
    let mut seen = HashSet::with_capacity(items.len());
    !items.iter().all(|item| seen.insert(item))
}

/// How Coral names a JSON scalar in its type errors. Nulls never get here: they are dropped first.
fn token(v: &Value) -> &'static str {
    match v {
        Value::Bool(true) => "TRUE_VALUE",
        Value::Bool(false) => "FALSE_VALUE",
        Value::Number(n) if n.is_f64() => "DECIMAL_VALUE",
        Value::Number(_) => "NUMBER_VALUE",
        Value::String(_) => "STRING_VALUE",
        _ => "NULL_VALUE",
    }
}

/// A String member (S, N and the elements of SS and NS).
fn string(v: &Value) -> ApiResult<&str> {
    match v {
        Value::String(s) => Ok(s),
        Value::Array(_) => Err(ApiError::serialization("Unrecognized collection type class java.lang.String")),
        Value::Object(_) => Err(ApiError::serialization(START_OF_MAP)),
        _ => Err(ApiError::serialization(format!("{} cannot be converted to String", token(v)))),
    }
}

/// A Boolean member (BOOL, NULL): a JSON boolean, nothing else (not even the string "true").
fn boolean(v: &Value) -> ApiResult<bool> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::Array(_) => Err(ApiError::serialization("Unrecognized collection type class java.lang.Boolean")),
        Value::Object(_) => Err(ApiError::serialization(START_OF_MAP)),
        _ => Err(ApiError::serialization(format!("{} cannot be converted to Boolean", token(v)))),
    }
}

/// A Blob member (B and the elements of BS): strict, padded, standard base64.
fn blob(v: &Value) -> ApiResult<Vec<u8>> {
    let text = match v {
        Value::String(text) => text,
        Value::Array(_) => {
            return Err(ApiError::serialization("Unrecognized collection type class java.nio.ByteBuffer"));
        }
        Value::Object(_) => return Err(ApiError::serialization(START_OF_MAP)),
        _ => {
            return Err(ApiError::serialization("only base-64-encoded strings are convertible to bytes"));
        }
    };
    // Java counts UTF-16 units.
    let length = text.encode_utf16().count();
    if length % 4 != 0 {
        return Err(ApiError::serialization(format!(
            "Base64 encoded length is expected a multiple of 4 bytes but found: {length}"
        )));
    }
    if let Some(c) = text.chars().find(|&c| !c.is_ascii_alphanumeric() && !matches!(c, '+' | '/' | '=')) {
        return Err(ApiError::serialization(format!("Invalid Base64 character: '{c}'")));
    }
    // Misplaced padding or stray bits in the last character; "dectected" is DynamoDB's spelling.
    STANDARD.decode(text).map_err(|_| ApiError::serialization("Invalid last non-pad Base64 character dectected"))
}

/// The elements of a List member (L, SS, NS, BS), nulls dropped.
fn elements(v: &Value) -> ApiResult<impl Iterator<Item = &Value>> {
    match v {
        Value::Array(elements) => Ok(elements.iter().filter(|e| !e.is_null())),
        Value::Object(_) => Err(ApiError::serialization(START_OF_MAP)),
        _ => Err(ApiError::serialization(UNEXPECTED_FIELD)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use proptest::prelude::*;

    fn decode(v: Value) -> ApiResult<AttributeValue> {
        AttributeValue::from_json(&v)
    }

    fn rejected(v: Value) -> (ErrorKind, String) {
        let e = decode(v.clone()).expect_err(&v.to_string());
        (e.kind, e.message)
    }

    fn invalid(v: Value) -> String {
        let (kind, message) = rejected(v);
        assert_eq!(kind, ErrorKind::Validation, "{message}");
        message
    }

    fn malformed(v: Value) -> String {
        let (kind, message) = rejected(v);
        assert_eq!(kind, ErrorKind::Serialization, "{message}");
        message
    }

    fn n(s: &str) -> Number {
        Number::parse(s).unwrap()
    }

    /// `levels` maps or lists (alternating) wrapped around a string.
    fn nested(levels: usize) -> Value {
        (0..levels).fold(json!({ "S": "x" }), |inner, i| {
            if i % 2 == 0 { json!({ "M": { "a": inner } }) } else { json!({ "L": [inner] }) }
        })
    }

    #[test]
    fn decodes_every_type() {
        let v = json!({
            "S": { "S": "" }, "N": { "N": "-1.50" }, "B": { "B": "AAEC" }, "T": { "BOOL": true },
            "Z": { "NULL": true }, "M": { "M": { "x": { "S": "y" } } }, "L": { "L": [{ "N": "1e2" }, { "BOOL": false }] },
            "SS": { "SS": ["b", "a", ""] }, "NS": { "NS": ["2", "1"] }, "BS": { "BS": ["", "AQ=="] },
        });
        let item = item_from_json(&v).unwrap();
        let expected: Item = [
            ("S", AttributeValue::S(String::new())),
            ("N", AttributeValue::N(n("-1.5"))),
            ("B", AttributeValue::B(vec![0, 1, 2])),
            ("T", AttributeValue::Bool(true)),
            ("Z", AttributeValue::Null),
            ("M", AttributeValue::M([("x".to_owned(), AttributeValue::S("y".into()))].into())),
            ("L", AttributeValue::L(vec![AttributeValue::N(n("100")), AttributeValue::Bool(false)])),
            ("SS", AttributeValue::Ss(vec!["b".into(), "a".into(), String::new()])),
            ("NS", AttributeValue::Ns(vec![n("2"), n("1")])),
            ("BS", AttributeValue::Bs(vec![vec![], vec![1]])),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        assert_eq!(item, expected);
        for (name, type_name) in [("T", "BOOL"), ("Z", "NULL"), ("M", "M"), ("SS", "SS"), ("BS", "BS")] {
            assert_eq!(item[name].type_name(), type_name);
        }
        // Canonical numbers and base64 on the way out; set order kept.
        let out = item_to_json(&item);
        assert_eq!(out["N"], json!({ "N": "-1.5" }));
        assert_eq!(out["L"], json!({ "L": [{ "N": "100" }, { "BOOL": false }] }));
        assert_eq!(out["SS"], json!({ "SS": ["b", "a", ""] }));
        assert_eq!(out["BS"], json!({ "BS": ["", "AQ=="] }));
        assert_eq!(item_from_json(&out).unwrap(), item);
    }

    #[test]
    fn one_type_per_value() {
        for v in [
            json!({}),
            json!({ "X": "1" }),
            json!({ "S": null }),
            json!(null),
            json!({ "M": { "a": {} } }),
            json!({ "L": [{}] }),
            json!({ "L": [{ "a": {} }] }),
        ] {
            assert_eq!(invalid(v), EMPTY);
        }
        assert_eq!(invalid(json!({ "S": "a", "N": "1" })), MORE_THAN_ONE);
        assert_eq!(invalid(json!({ "S": "a", "BOOL": true, "X": 1 })), MORE_THAN_ONE);
        // Unknown and null members are ignored.
        assert_eq!(decode(json!({ "S": "a", "X": 5, "N": null })).unwrap(), AttributeValue::S("a".into()));
        // A member's own failure is reported before the count.
        assert_eq!(invalid(json!({ "S": "a", "N": "b" })), "The parameter cannot be converted to a numeric value: b");
        assert_eq!(invalid(json!({ "S": "", "N": "" })), "The parameter cannot be converted to a numeric value");
    }

    #[test]
    fn value_messages() {
        let p = "One or more parameter values were invalid: ";
        for (v, message) in [
            (json!({ "NULL": false }), "Null attribute value types must have the value of true"),
            (json!({ "SS": [] }), "An string set  may not be empty"),
            (json!({ "NS": [] }), "An number set  may not be empty"),
            (json!({ "BS": [] }), "Binary sets should not be empty"),
            (json!({ "SS": ["a", "a"] }), "Input collection [a, a] contains duplicates."),
            (json!({ "SS": ["", "b", ""] }), "Input collection [, b, ] contains duplicates."),
            (json!({ "BS": ["Yg==", "Yg=="] }), "Input collection [Yg==, Yg==]of type BS contains duplicates."),
        ] {
            assert_eq!(invalid(v), format!("{p}{message}"));
        }
        assert_eq!(invalid(json!({ "NS": ["1", "1.0"] })), "Input collection contains duplicates");
        assert_eq!(invalid(json!({ "NS": ["1", ""] })), "The parameter cannot be converted to a numeric value");
        assert_eq!(invalid(json!({ "NS": ["1", "b"] })), "The parameter cannot be converted to a numeric value: b");
        assert_eq!(
            invalid(json!({ "N": "1e126" })),
            "Number overflow. Attempting to store a number with magnitude larger than supported range"
        );
        assert_eq!(
            invalid(json!({ "N": "1e-131" })),
            "Number underflow. Attempting to store a number with magnitude smaller than supported range"
        );
        assert_eq!(
            invalid(json!({ "N": "1".repeat(39) })),
            "Attempting to store more than 38 significant digits in a Number"
        );
        assert_eq!(decode(json!({ "SS": ["a", null] })).unwrap(), AttributeValue::Ss(vec!["a".into()]));
    }

    #[test]
    fn serialization_messages() {
        for (v, message) in [
            (json!({ "S": 5 }), "NUMBER_VALUE cannot be converted to String"),
            (json!({ "S": -5 }), "NUMBER_VALUE cannot be converted to String"),
            (json!({ "S": 5.5 }), "DECIMAL_VALUE cannot be converted to String"),
            (json!({ "N": 5 }), "NUMBER_VALUE cannot be converted to String"),
            (json!({ "S": true }), "TRUE_VALUE cannot be converted to String"),
            (json!({ "S": false }), "FALSE_VALUE cannot be converted to String"),
            (json!({ "S": [] }), "Unrecognized collection type class java.lang.String"),
            (json!({ "S": {} }), START_OF_MAP),
            (json!({ "SS": ["a", 1] }), "NUMBER_VALUE cannot be converted to String"),
            (json!({ "NS": [true] }), "TRUE_VALUE cannot be converted to String"),
            (json!({ "BOOL": "23" }), "STRING_VALUE cannot be converted to Boolean"),
            (json!({ "BOOL": "true" }), "STRING_VALUE cannot be converted to Boolean"),
            (json!({ "NULL": "true" }), "STRING_VALUE cannot be converted to Boolean"),
            (json!({ "BOOL": 23 }), "NUMBER_VALUE cannot be converted to Boolean"),
            (json!({ "NULL": 34.56 }), "DECIMAL_VALUE cannot be converted to Boolean"),
            (json!({ "BOOL": [] }), "Unrecognized collection type class java.lang.Boolean"),
            (json!({ "NULL": {} }), START_OF_MAP),
            (json!({ "B": 5 }), "only base-64-encoded strings are convertible to bytes"),
            (json!({ "BS": [true] }), "only base-64-encoded strings are convertible to bytes"),
            (json!({ "B": [] }), "Unrecognized collection type class java.nio.ByteBuffer"),
            (json!({ "B": {} }), START_OF_MAP),
            (json!({ "B": "23456" }), "Base64 encoded length is expected a multiple of 4 bytes but found: 5"),
            (json!({ "B": "=+/=" }), "Invalid last non-pad Base64 character dectected"),
            (json!({ "B": "+/+=" }), "Invalid last non-pad Base64 character dectected"),
            (json!({ "B": "ab!d" }), "Invalid Base64 character: '!'"),
            (json!({ "L": "23" }), UNEXPECTED_FIELD),
            (json!({ "SS": 23 }), UNEXPECTED_FIELD),
            (json!({ "BS": {} }), START_OF_MAP),
            (json!({ "L": [5] }), "Unexpected value type in payload"),
            (
                json!({ "L": [[]] }),
                "Unrecognized collection type class com.amazonaws.dynamodb.v20120810.AttributeValue",
            ),
            (json!({ "M": true }), UNEXPECTED_FIELD),
            (
                json!({ "M": [] }),
                "Unrecognized collection type java.util.Map<java.lang.String, com.amazonaws.dynamodb.v20120810.AttributeValue>",
            ),
            (json!({ "M": { "a": "x" } }), "Unexpected value type in payload"),
            (json!(5), "Unexpected value type in payload"),
        ] {
            assert_eq!(malformed(v), message);
        }
        let item_error = |v: Value| item_from_json(&v).unwrap_err().message;
        assert_eq!(item_error(json!("x")), UNEXPECTED_FIELD);
        assert_eq!(item_error(json!({ "a": 5 })), "Unexpected value type in payload");
    }

    #[test]
    fn type_mismatches_beat_validation_failures() {
        // Whatever their order, as DynamoDB deserializes the whole request before validating.
        let v = json!({ "a": { "SS": [] }, "b": { "M": { "c": { "S": 1 } } }, "c": {} });
        assert_eq!(item_from_json(&v).unwrap_err().kind, ErrorKind::Serialization);
        assert_eq!(
            malformed(json!({ "S": "a", "N": "x", "B": "!" })),
            "Base64 encoded length is expected a multiple of 4 bytes but found: 1"
        );
        // Among validation failures, the first met wins.
        assert_eq!(
            invalid(json!({ "L": [{ "NS": [] }, { "SS": [] }] })),
            "One or more parameter values were invalid: An number set  may not be empty"
        );
    }

    #[test]
    fn nesting_limit() {
        // 31 wraps put the string at level 32: fine; 32 wraps put it at 33.
        assert!(decode(nested(31)).is_ok());
        assert_eq!(invalid(nested(32)), TOO_DEEP);
        assert!(item_from_json(&json!({ "a": nested(31) })).is_ok());
        // An empty map may sit at level 32 (it holds nothing below).
        let empty_at_32 = (1..32).fold(json!({ "M": {} }), |inner, _| json!({ "L": [inner] }));
        assert!(decode(empty_at_32).is_ok());
        // Far deeper than any request serde_json would parse is still just a validation error.
        assert_eq!(invalid(nested(200)), TOO_DEEP);
    }

    /// Arbitrary JSON, biased towards DynamoDB's member names so decoding gets far.
    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            prop::sample::select(vec!["", "a", "1", "1.0", "-2e3", "x", "QQ==", "QR==", "1e999", "true"])
                .prop_map(Value::from),
        ];
        leaf.prop_recursive(6, 64, 6, |inner| {
            let key = prop::sample::select(vec!["S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS", "X", "a"]);
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::from),
                prop::collection::btree_map(key.prop_map(str::to_owned), inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn never_panics_and_round_trips(v in any_json()) {
            if let Ok(value) = AttributeValue::from_json(&v) {
                prop_assert_eq!(AttributeValue::from_json(&value.to_json()).unwrap(), value);
            }
            if let Ok(item) = item_from_json(&v) {
                prop_assert_eq!(item_from_json(&item_to_json(&item)).unwrap(), item);
            }
        }
    }
}
