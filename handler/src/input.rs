//! Reading request members out of the JSON body with DynamoDB's errors: a member of the wrong
//! JSON type is a `SerializationException`, a value outside its constraints a
//! `ValidationException` in Coral's "N validation errors detected" form.

use serde_json::{Map, Value};

use crate::error::{ApiError, ApiResult};

mod weigh;

/// One JSON object of the request (the body, or a structure inside it).
#[derive(Clone, Copy)]
pub struct Input<'a> {
    members: &'a Map<String, Value>,
}

impl<'a> Input<'a> {
    pub fn new(members: &'a Map<String, Value>) -> Self {
        Input { members }
    }

    /// Parses a request body, which must be a JSON object. An empty body counts as `{}`, as
    /// clients send it for operations without parameters.
    pub fn parse_body(body: &[u8]) -> ApiResult<Map<String, Value>> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Map::new());
        }
        if let Some(refusal) = weigh::refusal(body) {
            return Err(refusal);
        }
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(members)) => Ok(members),
            Ok(other) => Err(mismatch(&other, "Structure")),
            // DynamoDB's answer to a body that does not parse carries no message at all.
            Err(_) => Err(ApiError::serialization("")),
        }
    }

    pub fn has(&self, name: &str) -> bool {
        self.present(name).is_some()
    }

    /// The members as parsed.
    pub fn members(&self) -> &'a Map<String, Value> {
        self.members
    }

    /// Names of members present (not null) in this object.
    pub fn names(&self) -> impl Iterator<Item = &'a str> + 'a {
        self.members.iter().filter(|(_, v)| !v.is_null()).map(|(k, _)| k.as_str())
    }

    /// JSON null counts as absent, as in DynamoDB's decoder.
    fn present(&self, name: &str) -> Option<&'a Value> {
        self.members.get(name).filter(|v| !v.is_null())
    }

    /// A String member the table operations cannot do without: its absence is reported before
    /// anything else, in a message of its own.
    pub fn required_string(&self, name: &str) -> ApiResult<&'a str> {
        self.string(name)?.ok_or_else(|| {
            ApiError::validation(format!("The parameter '{name}' is required but was not present in the request"))
        })
    }

    pub fn string(&self, name: &str) -> ApiResult<Option<&'a str>> {
        match self.present(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(mismatch(other, "String")),
        }
    }

    pub fn integer(&self, name: &str) -> ApiResult<Option<i64>> {
        match self.present(name) {
            None => Ok(None),
            Some(Value::Number(n)) => {
                n.as_i64().map(Some).ok_or_else(|| ApiError::serialization("NUMBER_VALUE cannot be converted to Long"))
            }
            Some(other) => Err(mismatch(other, "Long")),
        }
    }

    pub fn boolean(&self, name: &str) -> ApiResult<Option<bool>> {
        match self.present(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(mismatch(other, "Boolean")),
        }
    }

    pub fn list(&self, name: &str) -> ApiResult<Option<&'a [Value]>> {
        match self.present(name) {
            None => Ok(None),
            Some(Value::Array(items)) => Ok(Some(items)),
            Some(other) => Err(mismatch(other, "List")),
        }
    }

    /// A structure or a map member: both are JSON objects on the wire.
    pub fn object(&self, name: &str) -> ApiResult<Option<&'a Map<String, Value>>> {
        match self.present(name) {
            None => Ok(None),
            Some(value) => as_object(value).map(Some),
        }
    }

    pub fn structure(&self, name: &str) -> ApiResult<Option<Input<'a>>> {
        Ok(self.object(name)?.map(Input::new))
    }
}

/// A list element that must be a structure.
pub fn as_object(value: &Value) -> ApiResult<&Map<String, Value>> {
    match value {
        Value::Object(members) => Ok(members),
        other => Err(mismatch(other, "Structure")),
    }
}

/// The error for a member of the wrong JSON type, worded as DynamoDB's Jackson-based decoder does.
pub fn mismatch(found: &Value, wanted: &str) -> ApiError {
    let message = match found {
        Value::Object(_) => "Start of structure or map found where not expected".to_string(),
        Value::Array(_) => "Start of list found where not expected".to_string(),
        Value::String(_) => format!("STRING_VALUE cannot be converted to {wanted}"),
        Value::Number(_) => format!("NUMBER_VALUE cannot be converted to {wanted}"),
        Value::Bool(true) => format!("TRUE_VALUE cannot be converted to {wanted}"),
        Value::Bool(false) => format!("FALSE_VALUE cannot be converted to {wanted}"),
        Value::Null => format!("NULL_VALUE cannot be converted to {wanted}"),
    };
    ApiError::serialization(message)
}

/// A member's value as DynamoDB's Java service prints it in a violation: maps as `{k=v, ...}`,
/// lists as `[a, b]`. Close to, not exactly, what it prints for structures.
pub fn java_string(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let entries: Vec<String> = map.iter().map(|(k, v)| format!("{k}={}", java_string(v))).collect();
            format!("{{{}}}", entries.join(", "))
        }
        Value::Array(items) => format!("[{}]", items.iter().map(java_string).collect::<Vec<_>>().join(", ")),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Collects constraint violations and reports them all at once, as DynamoDB does:
/// "2 validation errors detected: Value 'x' at 'tableName' failed to satisfy constraint: ...; ...".
#[derive(Default)]
pub struct Violations(Vec<String>);

impl Violations {
    /// `value` is the offending value as DynamoDB prints it (`None` prints `null`).
    pub fn add(&mut self, value: Option<&str>, path: &str, constraint: &str) {
        self.add_constraint(value, path, &format!("Member must {constraint}"));
    }

    /// A violation worded without the value, as DynamoDB words some ("Value at 'Limit' ...").
    pub fn add_unvalued(&mut self, path: &str, constraint: &str) {
        self.0.push(format!("Value at '{path}' failed to satisfy constraint: Member must {constraint}"));
    }

    /// A violation worded in full, such as a map's "Map keys must satisfy constraint: [...]".
    pub fn add_constraint(&mut self, value: Option<&str>, path: &str, constraint: &str) {
        let shown = value.map_or_else(|| "null".to_string(), |v| format!("'{v}'"));
        self.0.push(format!("Value {shown} at '{path}' failed to satisfy constraint: {constraint}"));
    }

    pub fn not_null<T>(&mut self, value: Option<T>, path: &str) -> Option<T> {
        if value.is_none() {
            self.add(None, path, "not be null");
        }
        value
    }

    /// DynamoDB's table name rules: 3 to 255 characters of [a-zA-Z0-9_.-]. An empty name only
    /// breaks the member's own minimum length of 1 (the member also takes a table ARN).
    pub fn table_name(&mut self, name: Option<&str>, path: &str) {
        let Some(name) = self.not_null(name, path) else { return };
        if name.is_empty() {
            return self.length(name, path, 1, usize::MAX);
        }
        if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b)) {
            self.add(Some(name), path, "satisfy regular expression pattern: [a-zA-Z0-9_.-]+");
        }
        self.length(name, path, 3, 255);
    }

    pub fn length(&mut self, value: &str, path: &str, min: usize, max: usize) {
        let len = value.chars().count();
        if len < min {
            self.add(Some(value), path, &format!("have length greater than or equal to {min}"));
        } else if len > max {
            self.add(Some(value), path, &format!("have length less than or equal to {max}"));
        }
    }

    pub fn range(&mut self, value: i64, path: &str, min: i64, max: i64) {
        let shown = value.to_string();
        if value < min {
            self.add(Some(&shown), path, &format!("have value greater than or equal to {min}"));
        } else if value > max {
            self.add(Some(&shown), path, &format!("have value less than or equal to {max}"));
        }
    }

    pub fn one_of(&mut self, value: Option<&str>, path: &str, allowed: &[&str]) {
        if let Some(v) = value
            && !allowed.contains(&v)
        {
            self.add(Some(v), path, &format!("satisfy enum value set: [{}]", allowed.join(", ")));
        }
    }

    pub fn finish(self) -> ApiResult<()> {
        match self.0.len() {
            0 => Ok(()),
            1 => Err(ApiError::validation(format!("1 validation error detected: {}", self.0[0]))),
            n => Err(ApiError::validation(format!("{n} validation errors detected: {}", self.0.join("; ")))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn violations_are_reported_together() {
        let mut v = Violations::default();
        v.table_name(Some("a!"), "tableName");
        let err = v.finish().unwrap_err();
        assert_eq!(
            err.message,
            "2 validation errors detected: Value 'a!' at 'tableName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+; \
             Value 'a!' at 'tableName' failed to satisfy constraint: Member must have length greater than or equal to 3"
        );
    }

    #[test]
    fn wrong_json_types_are_serialization_errors() {
        let body = Input::parse_body(br#"{"TableName": 5, "Limit": "x"}"#).unwrap();
        let input = Input::new(&body);
        assert_eq!(input.string("TableName").unwrap_err().message, "NUMBER_VALUE cannot be converted to String");
        assert_eq!(input.integer("Limit").unwrap_err().message, "STRING_VALUE cannot be converted to Long");
        assert_eq!(Input::parse_body(b"{not json").unwrap_err().message, "");
        assert!(Input::parse_body(b"").unwrap().is_empty());
    }
}
