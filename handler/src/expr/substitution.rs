//! ExpressionAttributeNames and ExpressionAttributeValues of one request: read with DynamoDB's
//! checks and messages, shared by all the request's expressions, which mark the entries they use
//! so that the unused ones can be refused.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::java_order::{buckets_after_puts, copy_buckets, in_map_order, java_hash, java_order};
use super::lexer::{Kind, Tokens};
use crate::error::{ApiError, ApiResult, ErrorKind};
use crate::input::mismatch;
use crate::model::AttributeValue;
use crate::model::size::value_size;
use crate::model::value::check_attribute_name;

/// Longest placeholder key, in UTF-16 units.
const MAX_KEY_LENGTH: usize = 255;
/// Each of the two maps, and both together, in bytes (keys plus names or values).
const MAX_MAPS_SIZE: usize = 2 * 1024 * 1024;

/// ExpressionAttributeNames / ExpressionAttributeValues of one request, shared by all its
/// expressions; records which entries were used.
pub struct Substitutions {
    names: Placeholders<String>,
    values: Placeholders<Placeholder>,
}

struct Placeholders<T> {
    entries: BTreeMap<String, T>,
    used: BTreeSet<String>,
    /// The keys in the order DynamoDB lists unused ones.
    report_order: Vec<String>,
}

struct Placeholder {
    value: AttributeValue,
    /// A number as the client wrote it, which is how DynamoDB prints it back in errors.
    written: Option<String>,
}

impl Placeholder {
    /// The value as DynamoDB prints it in a BETWEEN error (only S, N and B get there).
    fn shown(&self) -> String {
        let text = match (&self.value, &self.written) {
            (_, Some(written)) => written.clone(),
            (AttributeValue::S(s), _) => s.clone(),
            (AttributeValue::B(b), _) => {
                format!("java.nio.HeapByteBuffer[pos=0 lim={0} cap={0}]", b.len())
            }
            (other, _) => other.to_json().to_string(),
        };
        format!("AttributeValue: {{{}:{text}}}", self.value.type_name())
    }
}

impl Substitutions {
    /// Validates the maps themselves, in DynamoDB's order: JSON types (all of them, as DynamoDB
    /// decodes the whole request first), then the names' keys, the values' keys, the values,
    /// the names, and the sizes. JSON nulls count as absent entries.
    pub fn new(names: Option<&Map<String, Value>>, values: Option<&Map<String, Value>>) -> ApiResult<Substitutions> {
        let names: Option<Vec<(&String, &String)>> = names
            .map(|map| present(map).map(|(key, name)| string(name).map(|name| (key, name))).collect())
            .transpose()?;
        let values: Option<Vec<(&String, &Value, ApiResult<AttributeValue>)>> = values
            .map(|map| {
                present(map)
                    .map(|(key, json)| match AttributeValue::from_json(json) {
                        Err(e) if e.kind == ErrorKind::Serialization => Err(e),
                        decoded => Ok((key, json, decoded)),
                    })
                    .collect()
            })
            .transpose()?;
        if let Some(names) = &names {
            check_keys("ExpressionAttributeNames", names.iter().map(|&(key, _)| key).collect(), Kind::NameSub)?;
        }
        let values = values.map(check_values).transpose()?.unwrap_or_default();
        let names = names.map(check_names).transpose()?.unwrap_or_default();
        check_sizes(&names, &values)?;
        // DynamoDB lists unused keys from a Java set copied from the map; for values, from the
        // presized map it first copies the values into.
        let (n, v) = (names.len(), values.len());
        Ok(Substitutions {
            names: Placeholders::new(names, &[copy_buckets(n)]),
            values: Placeholders::new(values, &[buckets_after_puts(v.next_power_of_two(), v), copy_buckets(v)]),
        })
    }

    /// After all of a request's expressions are parsed: unused entries are errors, names first.
    pub fn finish(&self) -> ApiResult<()> {
        let unused = |label: &str, keys: Vec<&str>| {
            if keys.is_empty() {
                return Ok(());
            }
            Err(ApiError::validation(format!(
                "Value provided in {label} unused in expressions: keys: {{{}}}",
                keys.join(", ")
            )))
        };
        unused("ExpressionAttributeNames", self.names.unused())?;
        unused("ExpressionAttributeValues", self.values.unused())
    }

    /// The name behind `#key`, marking it used.
    pub(super) fn name(&mut self, key: &str) -> Option<&str> {
        self.names.get(key).map(String::as_str)
    }

    /// The value behind `:key`, marking it used.
    pub(super) fn value(&mut self, key: &str) -> Option<&AttributeValue> {
        self.values.get(key).map(|placeholder| &placeholder.value)
    }

    /// The value behind `:key` as DynamoDB prints it in a BETWEEN error.
    pub(super) fn shown_value(&self, key: &str) -> String {
        self.values.entries.get(key).map(Placeholder::shown).unwrap_or_default()
    }
}

impl<T> Placeholders<T> {
    /// `entries` in the order of the request's map; `copies` the bucket counts of the Java maps
    /// DynamoDB copies the keys through, one after the other, to list the unused ones.
    fn new(entries: Vec<(String, T)>, copies: &[usize]) -> Placeholders<T> {
        let mut report_order: Vec<String> = entries.iter().map(|(key, _)| key.clone()).collect();
        for &buckets in copies {
            java_order(&mut report_order, buckets, |key| java_hash(key));
        }
        Placeholders { entries: entries.into_iter().collect(), used: BTreeSet::new(), report_order }
    }

    fn get(&mut self, key: &str) -> Option<&T> {
        self.used.insert(key.to_string());
        self.entries.get(key)
    }

    fn unused(&self) -> Vec<&str> {
        self.report_order.iter().filter(|key| !self.used.contains(*key)).map(String::as_str).collect()
    }
}

fn present(map: &Map<String, Value>) -> impl Iterator<Item = (&String, &Value)> {
    map.iter().filter(|(_, value)| !value.is_null())
}

fn string(value: &Value) -> ApiResult<&String> {
    match value {
        Value::String(s) => Ok(s),
        other => Err(mismatch(other, "String")),
    }
}

/// The map's keys must each be one placeholder token (surrounding whitespace is tolerated, as
/// DynamoDB's lexer skips it), short enough, checked in the map's order.
fn check_keys(label: &str, mut keys: Vec<&String>, kind: Kind) -> ApiResult<()> {
    if keys.is_empty() {
        return Err(ApiError::validation(format!("{label} must not be empty")));
    }
    in_map_order(&mut keys, |key| java_hash(key));
    for key in keys {
        let length = key.encode_utf16().count();
        let problem = if key.is_empty() {
            "The expression attribute map contains an empty key;".to_string()
        } else if length > MAX_KEY_LENGTH && kind == Kind::NameSub {
            format!("The expression attribute map contains a key that is too long; size of key: {length}")
        } else if length > MAX_KEY_LENGTH {
            // Sic: DynamoDB gives the size only for names.
            "The expression attribute map contains a key that is too long;".to_string()
        } else if !is_placeholder(key, kind) {
            format!("Syntax error; key: \"{key}\"")
        } else {
            continue;
        };
        return Err(ApiError::validation(format!("{label} contains invalid key: {problem}")));
    }
    Ok(())
}

fn is_placeholder(key: &str, kind: Kind) -> bool {
    let tokens = Tokens::new(key);
    tokens.len() == 2 && tokens.get(0).kind == kind
}

/// Keys, then the values themselves; returns them in the map's order.
fn check_values(values: Vec<(&String, &Value, ApiResult<AttributeValue>)>) -> ApiResult<Vec<(String, Placeholder)>> {
    check_keys("ExpressionAttributeValues", values.iter().map(|(key, _, _)| *key).collect(), Kind::ValueSub)?;
    let mut values = values;
    in_map_order(&mut values, |(key, _, _)| java_hash(key));
    values
        .into_iter()
        .map(|(key, json, decoded)| match decoded {
            Ok(value) => {
                let written = json.get("N").and_then(Value::as_str).map(str::to_string);
                Ok((key.clone(), Placeholder { value, written }))
            }
            Err(e) => Err(ApiError::validation(format!(
                "ExpressionAttributeValues contains invalid value: {} for key {key}",
                e.message
            ))),
        })
        .collect()
}

fn check_names(names: Vec<(&String, &String)>) -> ApiResult<Vec<(String, String)>> {
    let mut names = names;
    in_map_order(&mut names, |(key, _)| java_hash(key));
    names
        .into_iter()
        .map(|(key, name)| match check_attribute_name(name) {
            Ok(()) => Ok((key.clone(), name.clone())),
            Err(problem) => Err(ApiError::validation(format!(
                "ExpressionAttributeNames contains invalid value: {problem} for key {key}"
            ))),
        })
        .collect()
}

fn check_sizes(names: &[(String, String)], values: &[(String, Placeholder)]) -> ApiResult<()> {
    let names_size: usize = names.iter().map(|(key, name)| key.len() + name.len()).sum();
    let values_size: usize = values.iter().map(|(key, p)| key.len() + value_size(&p.value)).sum();
    let problem = if names_size > MAX_MAPS_SIZE {
        "ExpressionAttributeNames exceeds max size"
    } else if values_size > MAX_MAPS_SIZE {
        "ExpressionAttributeValues exceeds max size"
    } else if names_size + values_size > MAX_MAPS_SIZE {
        "Combined size of ExpressionAttributeNames and ExpressionAttributeValues exceeds max size"
    } else {
        return Ok(());
    };
    Err(ApiError::validation(problem))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn new(names: Value, values: Value) -> ApiResult<Substitutions> {
        Substitutions::new(names.as_object(), values.as_object())
    }

    fn message(names: Value, values: Value) -> String {
        let error = new(names, values).err().expect("an error");
        assert_eq!(error.kind, ErrorKind::Validation, "{}", error.message);
        error.message
    }

    #[test]
    fn map_messages() {
        assert_eq!(message(json!({}), Value::Null), "ExpressionAttributeNames must not be empty");
        assert_eq!(message(Value::Null, json!({})), "ExpressionAttributeValues must not be empty");
        assert_eq!(message(json!({"#a": null}), Value::Null), "ExpressionAttributeNames must not be empty");
        assert_eq!(
            message(json!({"a": "a"}), Value::Null),
            r#"ExpressionAttributeNames contains invalid key: Syntax error; key: "a""#
        );
        for key in ["#", "#a-b", "#a b", ":a", "##a", "#a#"] {
            assert_eq!(
                message(json!({ key: "x" }), Value::Null),
                format!(r#"ExpressionAttributeNames contains invalid key: Syntax error; key: "{key}""#)
            );
        }
        assert_eq!(
            message(json!({"": "x"}), Value::Null),
            "ExpressionAttributeNames contains invalid key: The expression attribute map contains an empty key;"
        );
        let long = format!("#{}", "a".repeat(255));
        assert_eq!(
            message(json!({ long.clone(): "x" }), Value::Null),
            "ExpressionAttributeNames contains invalid key: The expression attribute map contains a key that is too long; size of key: 256"
        );
        assert!(message(json!({ format!("{long}-x"): "x" }), Value::Null).contains("size of key: 258"));
        assert_eq!(
            message(Value::Null, json!({ format!(":{}", "a".repeat(255)): {"S": "x"} })),
            "ExpressionAttributeValues contains invalid key: The expression attribute map contains a key that is too long;"
        );
        assert_eq!(
            message(Value::Null, json!({":b": {"a": ""}, "b": {"S": "a"}})),
            r#"ExpressionAttributeValues contains invalid key: Syntax error; key: "b""#
        );
        assert_eq!(
            message(Value::Null, json!({":b": {}})),
            "ExpressionAttributeValues contains invalid value: Supplied AttributeValue is empty, must contain exactly one of the supported datatypes for key :b"
        );
        assert_eq!(
            message(Value::Null, json!({":b": {"SS": []}})),
            "ExpressionAttributeValues contains invalid value: One or more parameter values were invalid: An string set  may not be empty for key :b"
        );
        assert_eq!(
            message(Value::Null, json!({":b": {"N": "b"}})),
            "ExpressionAttributeValues contains invalid value: The parameter cannot be converted to a numeric value: b for key :b"
        );
        assert_eq!(
            message(Value::Null, json!({":b": {"S": "a", "N": "1"}})),
            "ExpressionAttributeValues contains invalid value: Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes for key :b"
        );
        assert_eq!(
            message(json!({"#a": ""}), Value::Null),
            "ExpressionAttributeNames contains invalid value: Empty attribute name for key #a"
        );
        assert_eq!(
            message(json!({"#a": "a".repeat(65536)}), Value::Null),
            "ExpressionAttributeNames contains invalid value: Attribute name is too large, must be less than 65536 bytes for key #a"
        );
        // Values are checked before names' values, keys before both.
        assert!(
            message(json!({"#a": ""}), json!({":b": {}}))
                .starts_with("ExpressionAttributeValues contains invalid value")
        );
        assert!(
            message(json!({"#a": ""}), json!({"b": {}})).starts_with("ExpressionAttributeValues contains invalid key")
        );
        assert!(
            message(json!({"a": ""}), json!({"b": {}})).starts_with("ExpressionAttributeNames contains invalid key")
        );
        // Whitespace around a key is tolerated, as DynamoDB's lexer skips it.
        assert!(new(json!({" #a ": "a"}), json!({":v\n": {"S": "x"}})).is_ok());
        // JSON type mismatches are SerializationExceptions, ahead of everything.
        let error = new(json!({"#a": 5, "a": "x"}), Value::Null).err().unwrap();
        assert_eq!(
            (error.kind, error.message.as_str()),
            (ErrorKind::Serialization, "NUMBER_VALUE cannot be converted to String")
        );
        let error = new(json!({"a": "x"}), json!({":a": {"SS": []}, ":b": {"S": 5}})).err().unwrap();
        assert_eq!(error.kind, ErrorKind::Serialization);
    }

    #[test]
    fn map_sizes() {
        // Names are at most 64 KB each: 2 MB takes many.
        let names = |n: usize| -> Value {
            (0..n).map(|i| (format!("#n{i}"), Value::from("a".repeat(60_000)))).collect::<Map<_, _>>().into()
        };
        assert_eq!(message(names(36), Value::Null), "ExpressionAttributeNames exceeds max size");
        let big = "a".repeat(1024 * 1024);
        assert_eq!(
            message(Value::Null, json!({":a": {"S": big}, ":b": {"S": big}})),
            "ExpressionAttributeValues exceeds max size"
        );
        assert_eq!(
            message(names(20), json!({":a": {"S": big}})),
            "Combined size of ExpressionAttributeNames and ExpressionAttributeValues exceeds max size"
        );
        assert!(new(names(17), json!({":a": {"S": big}})).is_ok());
    }

    #[test]
    fn unused_keys_in_dynamodb_order() {
        let subs =
            new(json!({"#a": "a", "#b": "b"}), json!({":create_at_1_v1": {"N": "1"}, ":create_at_2_v1": {"N": "2"}}))
                .unwrap();
        assert_eq!(
            subs.finish().unwrap_err().message,
            "Value provided in ExpressionAttributeNames unused in expressions: keys: {#a, #b}"
        );
        let subs = new(Value::Null, json!({":create_at_1_v1": {"N": "1"}, ":create_at_2_v1": {"N": "2"}})).unwrap();
        // As DynamoDB answered (awspilot/dynamodb-oop#29).
        assert_eq!(
            subs.finish().unwrap_err().message,
            "Value provided in ExpressionAttributeValues unused in expressions: keys: {:create_at_2_v1, :create_at_1_v1}"
        );
        assert!(new(Value::Null, Value::Null).unwrap().finish().is_ok());
    }
}
