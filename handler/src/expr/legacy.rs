//! The legacy (pre-expression) parameters translated into the expression AST: `Expected` with
//! `ConditionalOperator`, `AttributeUpdates` and `AttributesToGet`, validated as DynamoDB does,
//! and the rule against mixing them with expression parameters.
//!
//! Every translation keeps DynamoDB's order of errors: a JSON type mismatch anywhere in the member
//! first (SerializationException), then Coral's constraint checks ("N validation errors
//! detected"), then the semantic checks entry by entry. The `*_violations` functions run the first
//! two steps only, so an operation can gather these constraint violations with those of its other
//! members before it reports any of them.

use serde_json::{Map, Value};

use super::{Comparator, Condition, Operand, Path, PathElement, SetOperand, SetValue, Update};
use crate::error::{ApiError, ApiResult, ErrorKind};
use crate::input::{Input, Violations, mismatch};
use crate::model::AttributeValue;
use crate::model::size::{MAX_ITEM_BYTES, value_size};

/// Coral's enum sets, in the order DynamoDB prints them.
const COMPARISON_OPERATORS: &[&str] = &[
    "IN",
    "NULL",
    "BETWEEN",
    "LT",
    "NOT_CONTAINS",
    "EQ",
    "GT",
    "NOT_NULL",
    "NE",
    "LE",
    "BEGINS_WITH",
    "GE",
    "CONTAINS",
];
const CONDITIONAL_OPERATORS: &[&str] = &["OR", "AND"];
const ACTIONS: &[&str] = &["ADD", "PUT", "DELETE"];

/// DynamoDB names the members of a mixed request in this fixed order, whatever the request's.
const LEGACY_ORDER: &[&str] = &[
    "AttributeUpdates",
    "AttributesToGet",
    "Expected",
    "QueryFilter",
    "ScanFilter",
    "ConditionalOperator",
    "KeyConditions",
];
const EXPRESSION_ORDER: &[&str] =
    &["UpdateExpression", "ProjectionExpression", "ConditionExpression", "FilterExpression", "KeyConditionExpression"];

/// What the update evaluator says when an operand has the wrong type, and what DynamoDB says
/// instead when the update came from `AttributeUpdates`.
const EXPRESSION_TYPE_MISMATCH: &str = "An operand in the update expression has an incorrect data type";
const LEGACY_TYPE_MISMATCH: &str = "Type mismatch for attribute to update";

// ---- Expected ----------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operator {
    Eq,
    Ne,
    Le,
    Lt,
    Ge,
    Gt,
    NotNull,
    Null,
    Contains,
    NotContains,
    BeginsWith,
    In,
    Between,
}

impl Operator {
    fn parse(name: &str) -> Option<Operator> {
        Some(match name {
            "EQ" => Operator::Eq,
            "NE" => Operator::Ne,
            "LE" => Operator::Le,
            "LT" => Operator::Lt,
            "GE" => Operator::Ge,
            "GT" => Operator::Gt,
            "NOT_NULL" => Operator::NotNull,
            "NULL" => Operator::Null,
            "CONTAINS" => Operator::Contains,
            "NOT_CONTAINS" => Operator::NotContains,
            "BEGINS_WITH" => Operator::BeginsWith,
            "IN" => Operator::In,
            "BETWEEN" => Operator::Between,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Operator::Eq => "EQ",
            Operator::Ne => "NE",
            Operator::Le => "LE",
            Operator::Lt => "LT",
            Operator::Ge => "GE",
            Operator::Gt => "GT",
            Operator::NotNull => "NOT_NULL",
            Operator::Null => "NULL",
            Operator::Contains => "CONTAINS",
            Operator::NotContains => "NOT_CONTAINS",
            Operator::BeginsWith => "BEGINS_WITH",
            Operator::In => "IN",
            Operator::Between => "BETWEEN",
        }
    }

    /// Whether a key condition may use the operator.
    fn indexable(self) -> bool {
        matches!(
            self,
            Operator::Eq
                | Operator::Le
                | Operator::Lt
                | Operator::Ge
                | Operator::Gt
                | Operator::BeginsWith
                | Operator::Between
        )
    }

    /// Which argument types the operator accepts.
    fn accepts(self, value: &AttributeValue) -> bool {
        use AttributeValue as V;
        let scalar = matches!(value, V::S(_) | V::N(_) | V::B(_));
        match self {
            Operator::Le | Operator::Lt | Operator::Ge | Operator::Gt | Operator::In | Operator::Between => scalar,
            Operator::Contains | Operator::NotContains => scalar || matches!(value, V::Bool(_) | V::Null),
            Operator::BeginsWith => matches!(value, V::S(_) | V::B(_)),
            Operator::Eq | Operator::Ne | Operator::Null | Operator::NotNull => true,
        }
    }
}

/// One `Expected` entry as read. Values are decoded, their validation failures kept for their
/// turn: type mismatches were returned while reading.
struct Expectation<'a> {
    name: &'a str,
    exists: Option<bool>,
    operator: Option<Operator>,
    value: Option<ApiResult<AttributeValue>>,
    list: Option<Vec<ApiResult<AttributeValue>>>,
}

/// Reads every entry of `Expected`, recording an invalid `ConditionalOperator` or
/// ComparisonOperator in `violations` (entries with one are left out: the request fails on them
/// anyway).
fn read_expected<'a>(
    expected: &'a Map<String, Value>,
    conditional_operator: Option<&str>,
    violations: &mut Violations,
    member: Conditions<'_>,
) -> ApiResult<Vec<Expectation<'a>>> {
    violations.one_of(conditional_operator, "conditionalOperator", CONDITIONAL_OPERATORS);
    let mut entries = Vec::with_capacity(expected.len());
    let (prefix, class) = match member {
        Conditions::Expected => ("expected", "ExpectedAttributeValue"),
        Conditions::Filter(path) => (path, "Condition"),
    };
    let filter = matches!(member, Conditions::Filter(_));
    for (name, members) in structures(expected, class)? {
        let input = Input::new(members);
        let operator = input.string("ComparisonOperator")?;
        // A filter's Condition has neither Exists nor Value.
        let exists = if filter { None } else { input.boolean("Exists")? };
        let value = if filter { None } else { attribute_value(members, "Value")? };
        let list = match input.list("AttributeValueList")? {
            Some(values) => Some(values.iter().filter(|v| !v.is_null()).map(decode).collect::<ApiResult<Vec<_>>>()?),
            // A filter without values has an empty list, which its operator may not take.
            None if filter => Some(Vec::new()),
            None => None,
        };
        let path = format!("{prefix}.{name}.member.comparisonOperator");
        if filter {
            violations.not_null(operator, &path);
        }
        violations.one_of(operator, &path, COMPARISON_OPERATORS);
        match operator.map(Operator::parse) {
            Some(None) => {}
            operator => entries.push(Expectation { name, exists, operator: operator.flatten(), value, list }),
        }
    }
    Ok(entries)
}

/// Which map of legacy conditions is read: `Expected`, or a filter (`ScanFilter`,
/// `QueryFilter`, `KeyConditions`) under its path in violations.
#[derive(Clone, Copy)]
enum Conditions<'p> {
    Expected,
    Filter(&'p str),
}

/// The type mismatches and Coral constraint violations of `Expected` and `ConditionalOperator`.
pub fn expected_violations(
    expected: &Map<String, Value>,
    conditional_operator: Option<&str>,
    violations: &mut Violations,
) -> ApiResult<()> {
    read_expected(expected, conditional_operator, violations, Conditions::Expected).map(drop)
}

/// The type mismatches and Coral constraint violations of a filter map (`member`: "ScanFilter",
/// "QueryFilter" or "KeyConditions") and `ConditionalOperator`.
pub fn filter_violations(
    filter: Option<&Map<String, Value>>,
    member: &str,
    conditional_operator: Option<&str>,
    violations: &mut Violations,
) -> ApiResult<()> {
    let empty = Map::new();
    let path = member_path(member);
    read_expected(filter.unwrap_or(&empty), conditional_operator, violations, Conditions::Filter(&path)).map(drop)
}

/// How Coral names a member in violations: "ScanFilter" is "scanFilter".
fn member_path(member: &str) -> String {
    let mut chars = member.chars();
    chars.next().map(|first| first.to_lowercase().chain(chars).collect()).unwrap_or_default()
}

/// A filter map (`ScanFilter`, `QueryFilter`) with `ConditionalOperator` as one condition, as
/// [`expected_condition`] does for `Expected`. `member` names the map ("ScanFilter").
pub fn filter_condition(
    filter: &Map<String, Value>,
    conditional_operator: Option<&str>,
    member: &str,
) -> ApiResult<Option<Condition>> {
    conditions(filter, conditional_operator, Conditions::Filter(&member_path(member)))
}

/// `KeyConditions`: each entry's attribute and its condition (AND-ed, never OR-ed), checked as
/// any filter; which operators a key takes is the caller's to check.
pub fn key_conditions(conditions: &Map<String, Value>) -> ApiResult<Vec<(String, Condition)>> {
    let mut violations = Violations::default();
    let entries = read_expected(conditions, None, &mut violations, Conditions::Filter("keyConditions"))?;
    violations.finish()?;
    entries
        .into_iter()
        .map(|entry| {
            let name = entry.name.to_string();
            let operator = entry.operator;
            let condition = entry.condition()?;
            match operator {
                Some(op) if !op.indexable() => {
                    Err(ApiError::validation("Attempted conditional constraint is not an indexable operation"))
                }
                _ => Ok((name, condition)),
            }
        })
        .collect()
}

/// `Expected` + `ConditionalOperator` as one condition (AND by default); `None` for an empty
/// `Expected`, which DynamoDB accepts and which checks nothing. Pass an empty map when the
/// request has no `Expected`: `ConditionalOperator` alone is an error.
pub fn expected_condition(
    expected: &Map<String, Value>,
    conditional_operator: Option<&str>,
) -> ApiResult<Option<Condition>> {
    conditions(expected, conditional_operator, Conditions::Expected)
}

fn conditions(
    expected: &Map<String, Value>,
    conditional_operator: Option<&str>,
    member: Conditions<'_>,
) -> ApiResult<Option<Condition>> {
    let mut violations = Violations::default();
    let entries = read_expected(expected, conditional_operator, &mut violations, member)?;
    violations.finish()?;
    let conditions = entries.into_iter().map(Expectation::condition).collect::<ApiResult<Vec<_>>>()?;
    if conditional_operator.is_some() {
        match conditions.len() {
            0 => return Err(ApiError::validation("ConditionalOperator cannot be used without Filter or Expected")),
            1 => {
                return Err(ApiError::validation(
                    "ConditionalOperator can only be used when Filter or Expected has two or more elements",
                ));
            }
            _ => {}
        }
    }
    let or = conditional_operator == Some("OR");
    Ok(conditions.into_iter().reduce(|a, b| {
        if or { Condition::Or(Box::new(a), Box::new(b)) } else { Condition::And(Box::new(a), Box::new(b)) }
    }))
}

impl Expectation<'_> {
    fn condition(self) -> ApiResult<Condition> {
        let attribute = self.name;
        let invalid = |detail: String| Err(ApiError::invalid_parameter(format!("{detail} for Attribute: {attribute}")));
        // The member combinations, in DynamoDB's order of checks.
        if self.exists.is_some() && self.operator.is_some() {
            return invalid("Exists and ComparisonOperator cannot be used together".into());
        }
        if self.value.is_some() && self.list.is_some() {
            return invalid("Value and AttributeValueList cannot be used together".into());
        }
        if self.operator.is_none() && self.list.is_some() {
            return invalid("AttributeValueList can only be used with a ComparisonOperator".into());
        }
        if self.exists == Some(false) && self.value.is_some() {
            return invalid("Value cannot be used when Exists is false".into());
        }
        if self.value.is_none() && self.list.is_none() {
            match (self.operator, self.exists) {
                (Some(op), _) if !matches!(op, Operator::Null | Operator::NotNull) => {
                    return invalid(format!(
                        "Value or AttributeValueList must be used with ComparisonOperator: {}",
                        op.name()
                    ));
                }
                (None, None) => return invalid("Value must be provided when Exists is null".into()),
                (None, Some(true)) => return invalid("Value must be provided when Exists is true".into()),
                _ => {}
            }
        }
        let value = self.value.transpose()?;
        let list = self.list.map(|l| l.into_iter().collect::<ApiResult<Vec<_>>>()).transpose()?;
        let path = top_level(attribute);
        let Some(operator) = self.operator else {
            // Exists (true or unset) with a Value is equality; Exists false is absence.
            return Ok(match value {
                Some(value) => Condition::Compare(Operand::Path(path), Comparator::Eq, Operand::Value(value)),
                None => Condition::AttributeNotExists(path),
            });
        };
        // With a ComparisonOperator, Value stands for a one-element AttributeValueList.
        let arguments = value.map(|v| vec![v]).or(list).unwrap_or_default();
        comparison(operator, path, arguments)
    }
}

/// A legacy comparison as a condition, after checking its arguments as DynamoDB does: their
/// number, then their types, then the range of a BETWEEN.
fn comparison(operator: Operator, path: Path, arguments: Vec<AttributeValue>) -> ApiResult<Condition> {
    let name = operator.name();
    let attribute = || Operand::Path(path.clone());
    let value = |v: &AttributeValue| Operand::Value(v.clone());
    let compare = |comparator, v| Some(Condition::Compare(attribute(), comparator, value(v)));
    let condition = match (operator, arguments.as_slice()) {
        (Operator::Eq, [v]) => compare(Comparator::Eq, v),
        (Operator::Ne, [v]) => compare(Comparator::Ne, v),
        (Operator::Le, [v]) => compare(Comparator::Le, v),
        (Operator::Lt, [v]) => compare(Comparator::Lt, v),
        (Operator::Ge, [v]) => compare(Comparator::Ge, v),
        (Operator::Gt, [v]) => compare(Comparator::Gt, v),
        (Operator::NotNull, []) => Some(Condition::AttributeExists(path.clone())),
        (Operator::Null, []) => Some(Condition::AttributeNotExists(path.clone())),
        (Operator::Contains, [v]) => Some(Condition::Contains(attribute(), value(v))),
        // Unlike NOT contains(...), legacy NOT_CONTAINS is false for a missing attribute (the
        // translation Amazon's own DAX client applies).
        (Operator::NotContains, [v]) => Some(Condition::And(
            Box::new(Condition::AttributeExists(path.clone())),
            Box::new(Condition::Not(Box::new(Condition::Contains(attribute(), value(v))))),
        )),
        (Operator::BeginsWith, [v]) => Some(Condition::BeginsWith(attribute(), value(v))),
        (Operator::In, values) if !values.is_empty() => {
            Some(Condition::In(attribute(), values.iter().map(value).collect()))
        }
        (Operator::Between, [low, high]) => Some(Condition::Between(attribute(), value(low), value(high))),
        _ => None,
    };
    let Some(condition) = condition else {
        return Err(ApiError::invalid_parameter(format!(
            "Invalid number of argument(s) for the {name} ComparisonOperator"
        )));
    };
    if let Some(bad) = arguments.iter().find(|v| !operator.accepts(v)) {
        return Err(ApiError::invalid_parameter(format!(
            "ComparisonOperator {name} is not valid for {} AttributeValue type",
            bad.type_name()
        )));
    }
    if arguments.windows(2).any(|pair| pair[0].type_name() != pair[1].type_name()) {
        return Err(ApiError::invalid_parameter("AttributeValues inside AttributeValueList must be of same type"));
    }
    if let [low, high] = arguments.as_slice()
        && operator == Operator::Between
        && greater(low, high)
    {
        return Err(ApiError::validation(
            "The BETWEEN condition was provided a range where the lower bound is greater than the upper bound",
        ));
    }
    Ok(condition)
}

/// DynamoDB's order on scalars of one type: numbers by value, strings and binaries bytewise.
fn greater(a: &AttributeValue, b: &AttributeValue) -> bool {
    match (a, b) {
        (AttributeValue::N(a), AttributeValue::N(b)) => a > b,
        (AttributeValue::S(a), AttributeValue::S(b)) => a > b,
        (AttributeValue::B(a), AttributeValue::B(b)) => a > b,
        _ => false,
    }
}

// ---- AttributeUpdates --------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Put,
    Add,
    Delete,
}

struct Change<'a> {
    name: &'a str,
    action: Action,
    value: Option<ApiResult<AttributeValue>>,
}

/// Reads every entry of `AttributeUpdates`, recording invalid Actions in `violations` (such
/// entries are left out: the request fails on them anyway).
fn read_updates<'a>(updates: &'a Map<String, Value>, violations: &mut Violations) -> ApiResult<Vec<Change<'a>>> {
    let mut changes = Vec::with_capacity(updates.len());
    for (name, members) in structures(updates, "AttributeValueUpdate")? {
        let action = Input::new(members).string("Action")?;
        let value = attribute_value(members, "Value")?;
        violations.one_of(action, &format!("attributeUpdates.{name}.member.action"), ACTIONS);
        let action = match action {
            None | Some("PUT") => Action::Put,
            Some("ADD") => Action::Add,
            Some("DELETE") => Action::Delete,
            Some(_) => continue,
        };
        changes.push(Change { name, action, value });
    }
    Ok(changes)
}

/// The type mismatches and Coral constraint violations of `AttributeUpdates`.
pub fn attribute_updates_violations(updates: &Map<String, Value>, violations: &mut Violations) -> ApiResult<()> {
    read_updates(updates, violations).map(drop)
}

/// `AttributeUpdates` as an update: PUT sets, DELETE without a value removes, DELETE with a set
/// removes its elements, ADD adds a number or set elements and appends a list's elements.
/// Apply the result through [`legacy_update_error`].
pub fn attribute_updates(updates: &Map<String, Value>) -> ApiResult<Update> {
    let mut violations = Violations::default();
    let changes = read_updates(updates, &mut violations)?;
    violations.finish()?;
    let mut update = Update::default();
    let mut size = 0;
    for change in changes {
        let value = change.value.transpose()?;
        let path = top_level(change.name);
        let Some(value) = value else {
            match change.action {
                Action::Delete => update.remove.push(path),
                Action::Put | Action::Add => {
                    return Err(ApiError::invalid_parameter(
                        "Only DELETE action is allowed when no attribute value is specified",
                    ));
                }
            }
            continue;
        };
        let is_set = matches!(value, AttributeValue::Ss(_) | AttributeValue::Ns(_) | AttributeValue::Bs(_));
        let type_name = value.type_name();
        match change.action {
            Action::Delete if is_set => update.delete.push((path, value)),
            Action::Delete => {
                return Err(ApiError::invalid_parameter(format!(
                    "DELETE action with value is not supported for the type {type_name}"
                )));
            }
            Action::Put | Action::Add => {
                // What PUT and ADD bring must fit in an item by itself.
                size += change.name.len() + value_size(&value);
                if change.action == Action::Put {
                    update.set.push((path, SetValue::Operand(SetOperand::Value(value))));
                } else if let AttributeValue::L(_) = value {
                    // ADD of a list appends to the attribute, or creates it.
                    let existing = SetOperand::IfNotExists(
                        path.clone(),
                        Box::new(SetOperand::Value(AttributeValue::L(Vec::new()))),
                    );
                    let appended = SetOperand::ListAppend(Box::new(existing), Box::new(SetOperand::Value(value)));
                    update.set.push((path, SetValue::Operand(appended)));
                } else if is_set || matches!(value, AttributeValue::N(_)) {
                    update.add.push((path, value));
                } else {
                    return Err(ApiError::invalid_parameter(format!(
                        "ADD action is not supported for the type {type_name}"
                    )));
                }
                if size > MAX_ITEM_BYTES {
                    return Err(ApiError::validation("Item size to update has exceeded the maximum allowed size"));
                }
            }
        }
    }
    Ok(update)
}

/// DynamoDB words an operand type error differently when the update came from
/// `AttributeUpdates` (e.g. ADD of a number to a string set).
pub fn legacy_update_error(error: ApiError) -> ApiError {
    if error.kind == ErrorKind::Validation && error.message == EXPRESSION_TYPE_MISMATCH {
        ApiError::validation(LEGACY_TYPE_MISMATCH)
    } else {
        error
    }
}

// ---- AttributesToGet ---------------------------------------------------------------------

/// The type mismatches and Coral constraint violations of `AttributesToGet`, found at `path`
/// ("attributesToGet", or inside BatchGetItem's RequestItems).
pub fn attributes_to_get_violations(names: &[Value], path: &str, violations: &mut Violations) -> ApiResult<()> {
    if read_names(names)?.is_empty() {
        violations.add(Some("[]"), path, "have length greater than or equal to 1");
    }
    Ok(())
}

/// `AttributesToGet` as projection paths: each name is one top-level attribute, dots and
/// brackets included.
pub fn attributes_to_get(names: &[Value]) -> ApiResult<Vec<Path>> {
    let mut violations = Violations::default();
    attributes_to_get_violations(names, "attributesToGet", &mut violations)?;
    violations.finish()?;
    let names = read_names(names)?;
    let mut paths: Vec<Path> = Vec::with_capacity(names.len());
    for name in names {
        let path = top_level(name);
        if paths.contains(&path) {
            return Err(ApiError::invalid_parameter(format!("Duplicate value in attribute name: {name}")));
        }
        paths.push(path);
    }
    Ok(paths)
}

fn read_names(names: &[Value]) -> ApiResult<Vec<&str>> {
    names.iter().filter(|v| !v.is_null()).map(|v| v.as_str().ok_or_else(|| mismatch(v, "String"))).collect()
}

// ---- Mixing ------------------------------------------------------------------------------

/// Refuses a request with both legacy and expression members. Takes the names of the members
/// present (`KeyConditions` only counts alongside `KeyConditionExpression`); the message lists
/// them in DynamoDB's fixed order.
pub fn check_not_mixed(legacy_present: &[&str], expression_present: &[&str]) -> ApiResult<()> {
    if legacy_present.is_empty() || expression_present.is_empty() {
        return Ok(());
    }
    Err(ApiError::validation(format!(
        "Can not use both expression and non-expression parameters in the same request: \
         Non-expression parameters: {{{}}} Expression parameters: {{{}}}",
        in_order(legacy_present, LEGACY_ORDER),
        in_order(expression_present, EXPRESSION_ORDER)
    )))
}

fn in_order(names: &[&str], order: &[&str]) -> String {
    let mut names = names.to_vec();
    names.sort_by_key(|name| order.iter().position(|o| o == name).unwrap_or(order.len()));
    names.join(", ")
}

// ---- Helpers -----------------------------------------------------------------------------

fn top_level(name: &str) -> Path {
    Path(vec![PathElement::Name(name.to_string())])
}

/// The non-null entries of a map of structures, with the messages DynamoDB's decoder gives for a
/// JSON value that is not an object.
fn structures<'a>(map: &'a Map<String, Value>, class: &str) -> ApiResult<Vec<(&'a str, &'a Map<String, Value>)>> {
    map.iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(name, v)| match v {
            Value::Object(members) => Ok((name.as_str(), members)),
            Value::Array(_) => Err(ApiError::serialization(format!(
                "Unrecognized collection type class com.amazonaws.dynamodb.v20120810.{class}"
            ))),
            _ => Err(ApiError::serialization("Unexpected value type in payload")),
        })
        .collect()
}

/// An AttributeValue member of a structure, decoded (see [`decode`]).
fn attribute_value(members: &Map<String, Value>, name: &str) -> ApiResult<Option<ApiResult<AttributeValue>>> {
    members.get(name).filter(|v| !v.is_null()).map(decode).transpose()
}

/// Decodes an AttributeValue member: a type mismatch is returned at once, a validation failure
/// kept for its turn.
fn decode(value: &Value) -> ApiResult<ApiResult<AttributeValue>> {
    match AttributeValue::from_json(value) {
        Err(e) if e.kind == ErrorKind::Serialization => Err(e),
        decoded => Ok(decoded),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            other => panic!("not an object: {other}"),
        }
    }

    fn av(v: Value) -> AttributeValue {
        AttributeValue::from_json(&v).unwrap()
    }

    fn path(name: &str) -> Operand {
        Operand::Path(top_level(name))
    }

    fn value(v: Value) -> Operand {
        Operand::Value(av(v))
    }

    fn expected(v: Value, op: Option<&str>) -> ApiResult<Option<Condition>> {
        expected_condition(&map(v), op)
    }

    /// The condition of a one-entry `Expected` on attribute `a`.
    fn one(entry: Value) -> Condition {
        expected(json!({ "a": entry }), None).unwrap().unwrap()
    }

    fn error(result: ApiResult<impl std::fmt::Debug>) -> (ErrorKind, String) {
        let e = result.unwrap_err();
        (e.kind, e.message)
    }

    fn invalid(entry: Value) -> String {
        let (kind, message) = error(expected(json!({ "a": entry }), None));
        assert_eq!(kind, ErrorKind::Validation, "{message}");
        message
    }

    const P: &str = "One or more parameter values were invalid: ";

    #[test]
    fn exists_and_value() {
        let s = json!({ "S": "x" });
        let equal = Condition::Compare(path("a"), Comparator::Eq, value(s.clone()));
        assert_eq!(one(json!({ "Value": s })), equal);
        assert_eq!(one(json!({ "Value": s, "Exists": true })), equal);
        assert_eq!(one(json!({ "Exists": false })), Condition::AttributeNotExists(top_level("a")));
        // JSON nulls are absent members.
        assert_eq!(one(json!({ "Value": s, "Exists": null, "AttributeValueList": null })), equal);
    }

    #[test]
    fn member_combinations() {
        let s = json!({ "S": "x" });
        for (entry, message) in [
            (json!({}), "Value must be provided when Exists is null for Attribute: a"),
            (json!({ "Exists": true }), "Value must be provided when Exists is true for Attribute: a"),
            (json!({ "Exists": false, "Value": s }), "Value cannot be used when Exists is false for Attribute: a"),
            (
                json!({ "ComparisonOperator": "LT" }),
                "Value or AttributeValueList must be used with ComparisonOperator: LT for Attribute: a",
            ),
            (
                json!({ "Exists": true, "ComparisonOperator": "LT" }),
                "Exists and ComparisonOperator cannot be used together for Attribute: a",
            ),
            (
                json!({ "Exists": false, "ComparisonOperator": "NULL" }),
                "Exists and ComparisonOperator cannot be used together for Attribute: a",
            ),
            (
                json!({ "AttributeValueList": [] }),
                "AttributeValueList can only be used with a ComparisonOperator for Attribute: a",
            ),
            (
                json!({ "Exists": true, "AttributeValueList": [] }),
                "AttributeValueList can only be used with a ComparisonOperator for Attribute: a",
            ),
            (
                json!({ "Value": s, "AttributeValueList": [] }),
                "Value and AttributeValueList cannot be used together for Attribute: a",
            ),
            (
                json!({ "Value": s, "ComparisonOperator": "BETWEEN" }),
                "Invalid number of argument(s) for the BETWEEN ComparisonOperator",
            ),
            (
                json!({ "Value": s, "ComparisonOperator": "NULL" }),
                "Invalid number of argument(s) for the NULL ComparisonOperator",
            ),
        ] {
            assert_eq!(invalid(entry.clone()), format!("{P}{message}"), "{entry}");
        }
        // The member checks come before the values' own validation.
        assert_eq!(
            invalid(json!({ "Exists": false, "Value": { "SS": [] } })),
            format!("{P}Value cannot be used when Exists is false for Attribute: a")
        );
        assert_eq!(invalid(json!({ "Value": { "SS": [] } })), format!("{P}An string set  may not be empty"));
    }

    #[test]
    fn argument_counts() {
        let s = json!({ "S": "a" });
        for (op, counts) in [
            ("EQ", [false, true, false, false]),
            ("NE", [false, true, false, false]),
            ("LE", [false, true, false, false]),
            ("LT", [false, true, false, false]),
            ("GE", [false, true, false, false]),
            ("GT", [false, true, false, false]),
            ("CONTAINS", [false, true, false, false]),
            ("NOT_CONTAINS", [false, true, false, false]),
            ("BEGINS_WITH", [false, true, false, false]),
            ("NULL", [true, false, false, false]),
            ("NOT_NULL", [true, false, false, false]),
            ("IN", [false, true, true, true]),
            ("BETWEEN", [false, false, true, false]),
        ] {
            for (n, ok) in counts.into_iter().enumerate() {
                let entry = json!({ "ComparisonOperator": op, "AttributeValueList": vec![s.clone(); n] });
                match expected(json!({ "a": entry }), None) {
                    Ok(_) => assert!(ok, "{op} with {n}"),
                    Err(e) => {
                        assert!(!ok, "{op} with {n}: {}", e.message);
                        assert_eq!(
                            e.message,
                            format!("{P}Invalid number of argument(s) for the {op} ComparisonOperator")
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn argument_types() {
        let all = [
            json!({ "S": "a" }),
            json!({ "N": "1" }),
            json!({ "B": "YQ==" }),
            json!({ "BOOL": true }),
            json!({ "NULL": true }),
            json!({ "SS": ["a"] }),
            json!({ "NS": ["1"] }),
            json!({ "BS": ["YQ=="] }),
            json!({ "M": {} }),
            json!({ "L": [] }),
        ];
        for (op, accepted) in [
            ("EQ", &["S", "N", "B", "BOOL", "NULL", "SS", "NS", "BS", "M", "L"][..]),
            ("NE", &["S", "N", "B", "BOOL", "NULL", "SS", "NS", "BS", "M", "L"]),
            ("LT", &["S", "N", "B"]),
            ("LE", &["S", "N", "B"]),
            ("GT", &["S", "N", "B"]),
            ("GE", &["S", "N", "B"]),
            ("IN", &["S", "N", "B"]),
            ("CONTAINS", &["S", "N", "B", "BOOL", "NULL"]),
            ("NOT_CONTAINS", &["S", "N", "B", "BOOL", "NULL"]),
            ("BEGINS_WITH", &["S", "B"]),
        ] {
            for v in &all {
                let type_name = av(v.clone()).type_name();
                let result = expected(json!({ "a": { "ComparisonOperator": op, "AttributeValueList": [v] } }), None);
                if accepted.contains(&type_name) {
                    assert!(result.is_ok(), "{op} {type_name}");
                } else {
                    assert_eq!(
                        error(result).1,
                        format!("{P}ComparisonOperator {op} is not valid for {type_name} AttributeValue type")
                    );
                }
            }
        }
        // BETWEEN names the first argument of a wrong type.
        let between = |list: Value| invalid(json!({ "ComparisonOperator": "BETWEEN", "AttributeValueList": list }));
        assert_eq!(
            between(json!([{ "S": "a" }, { "SS": ["a"] }])),
            format!("{P}ComparisonOperator BETWEEN is not valid for SS AttributeValue type")
        );
        assert_eq!(
            between(json!([{ "BOOL": true }, { "BOOL": true }])),
            format!("{P}ComparisonOperator BETWEEN is not valid for BOOL AttributeValue type")
        );
        // Argument types beat the count only when the count is right.
        assert_eq!(
            invalid(json!({ "ComparisonOperator": "LT", "AttributeValueList": [{ "SS": ["a"] }, { "SS": ["b"] }] })),
            format!("{P}Invalid number of argument(s) for the LT ComparisonOperator")
        );
    }

    #[test]
    fn mixed_types_and_between_bounds() {
        let list = |op: &str, list: Value| invalid(json!({ "ComparisonOperator": op, "AttributeValueList": list }));
        let same_type = format!("{P}AttributeValues inside AttributeValueList must be of same type");
        assert_eq!(list("IN", json!([{ "S": "a" }, { "N": "1" }])), same_type);
        assert_eq!(list("BETWEEN", json!([{ "N": "1" }, { "S": "a" }])), same_type);
        let reversed =
            "The BETWEEN condition was provided a range where the lower bound is greater than the upper bound";
        assert_eq!(list("BETWEEN", json!([{ "N": "10" }, { "N": "9.5" }])), reversed);
        assert_eq!(list("BETWEEN", json!([{ "S": "b" }, { "S": "a" }])), reversed);
        assert_eq!(list("BETWEEN", json!([{ "B": "/w==" }, { "B": "AA==" }])), reversed);
        // Numbers by value, not text; equal bounds are a valid range.
        for ok in [
            json!([{ "N": "9" }, { "N": "10" }]),
            json!([{ "N": "-2" }, { "N": "-2.0" }]),
            json!([{ "S": "B" }, { "S": "a" }]),
        ] {
            let entry = json!({ "a": { "ComparisonOperator": "BETWEEN", "AttributeValueList": ok } });
            assert!(expected(entry.clone(), None).is_ok(), "{entry}");
        }
    }

    #[test]
    fn operators_translate() {
        let s = json!({ "S": "x" });
        let t = json!({ "S": "y" });
        let with = |op: &str, list: Value| one(json!({ "ComparisonOperator": op, "AttributeValueList": list }));
        for (op, comparator) in [
            ("EQ", Comparator::Eq),
            ("NE", Comparator::Ne),
            ("LE", Comparator::Le),
            ("LT", Comparator::Lt),
            ("GE", Comparator::Ge),
            ("GT", Comparator::Gt),
        ] {
            assert_eq!(with(op, json!([s])), Condition::Compare(path("a"), comparator, value(s.clone())));
        }
        // Value stands for a one-element list.
        assert_eq!(
            one(json!({ "ComparisonOperator": "GT", "Value": s })),
            Condition::Compare(path("a"), Comparator::Gt, value(s.clone()))
        );
        assert_eq!(with("NOT_NULL", json!([])), Condition::AttributeExists(top_level("a")));
        assert_eq!(one(json!({ "ComparisonOperator": "NULL" })), Condition::AttributeNotExists(top_level("a")));
        assert_eq!(with("CONTAINS", json!([s])), Condition::Contains(path("a"), value(s.clone())));
        assert_eq!(
            with("NOT_CONTAINS", json!([s])),
            Condition::And(
                Box::new(Condition::AttributeExists(top_level("a"))),
                Box::new(Condition::Not(Box::new(Condition::Contains(path("a"), value(s.clone()))))),
            )
        );
        assert_eq!(with("BEGINS_WITH", json!([s])), Condition::BeginsWith(path("a"), value(s.clone())));
        assert_eq!(with("IN", json!([s, t])), Condition::In(path("a"), vec![value(s.clone()), value(t.clone())]));
        assert_eq!(with("BETWEEN", json!([s, t])), Condition::Between(path("a"), value(s.clone()), value(t)));
        // The name is one top-level attribute, dots and all.
        assert_eq!(
            expected(json!({ "a.b[0]": { "Exists": false } }), None).unwrap(),
            Some(Condition::AttributeNotExists(Path(vec![PathElement::Name("a.b[0]".into())])))
        );
    }

    #[test]
    fn conditional_operator() {
        let a = json!({ "Exists": false });
        let not = |name: &str| Box::new(Condition::AttributeNotExists(top_level(name)));
        let two = json!({ "a": a, "b": a });
        assert_eq!(expected(two.clone(), None).unwrap(), Some(Condition::And(not("a"), not("b"))));
        assert_eq!(expected(two.clone(), Some("AND")).unwrap(), Some(Condition::And(not("a"), not("b"))));
        assert_eq!(expected(two, Some("OR")).unwrap(), Some(Condition::Or(not("a"), not("b"))));
        let three = json!({ "a": a, "b": a, "c": a });
        assert_eq!(
            expected(three, Some("OR")).unwrap(),
            Some(Condition::Or(Box::new(Condition::Or(not("a"), not("b"))), not("c")))
        );
        assert_eq!(expected(json!({}), None).unwrap(), None);
        assert_eq!(
            error(expected(json!({}), Some("AND"))).1,
            "ConditionalOperator cannot be used without Filter or Expected"
        );
        assert_eq!(
            error(expected(json!({ "a": a, "b": null }), Some("OR"))).1,
            "ConditionalOperator can only be used when Filter or Expected has two or more elements"
        );
        // Entries are checked before the operator's element count.
        assert_eq!(
            error(expected(json!({ "a": {} }), Some("OR"))).1,
            format!("{P}Value must be provided when Exists is null for Attribute: a")
        );
    }

    #[test]
    fn enum_violations() {
        assert_eq!(
            error(expected(json!({ "a": { "ComparisonOperator": "XX" } }), Some("AN"))).1,
            "2 validation errors detected: \
             Value 'AN' at 'conditionalOperator' failed to satisfy constraint: Member must satisfy enum value set: [OR, AND]; \
             Value 'XX' at 'expected.a.member.comparisonOperator' failed to satisfy constraint: Member must satisfy enum value set: \
             [IN, NULL, BETWEEN, LT, NOT_CONTAINS, EQ, GT, NOT_NULL, NE, LE, BEGINS_WITH, GE, CONTAINS]"
        );
        // Constraint violations beat the semantic checks of every entry.
        let (kind, message) = error(expected(json!({ "a": {}, "b": { "ComparisonOperator": "" } }), None));
        assert_eq!(kind, ErrorKind::Validation);
        assert!(message.starts_with("1 validation error detected: Value '' at 'expected.b.member"), "{message}");
        // Gathered with an operation's other violations.
        let mut violations = Violations::default();
        violations.table_name(Some("ab"), "tableName");
        expected_violations(&map(json!({ "a": { "ComparisonOperator": "x" } })), None, &mut violations).unwrap();
        assert!(violations.finish().unwrap_err().message.starts_with("2 validation errors detected: "));
    }

    #[test]
    fn expected_type_mismatches() {
        for (v, message) in [
            (json!({ "a": "x" }), "Unexpected value type in payload"),
            (json!({ "a": 1 }), "Unexpected value type in payload"),
            (
                json!({ "a": [] }),
                "Unrecognized collection type class com.amazonaws.dynamodb.v20120810.ExpectedAttributeValue",
            ),
            (json!({ "a": { "Exists": "x" } }), "STRING_VALUE cannot be converted to Boolean"),
            (json!({ "a": { "ComparisonOperator": 1 } }), "NUMBER_VALUE cannot be converted to String"),
            (json!({ "a": { "AttributeValueList": {} } }), "Start of structure or map found where not expected"),
            (json!({ "a": { "Value": { "S": 1 } } }), "NUMBER_VALUE cannot be converted to String"),
            (json!({ "a": { "AttributeValueList": [5] } }), "Unexpected value type in payload"),
        ] {
            let (kind, got) = error(expected(v.clone(), None));
            assert_eq!((kind, got.as_str()), (ErrorKind::Serialization, message), "{v}");
        }
        // A type mismatch anywhere beats constraint violations and invalid values anywhere.
        let v = json!({ "a": { "Value": { "SS": [] }, "ComparisonOperator": "XX" }, "b": { "Value": { "B": 1 } } });
        assert_eq!(error(expected(v, Some("AN"))).0, ErrorKind::Serialization);
    }

    fn updates(v: Value) -> ApiResult<Update> {
        attribute_updates(&map(v))
    }

    #[test]
    fn update_actions() {
        let s = json!({ "S": "x" });
        let update = updates(json!({
            "p": { "Value": s },
            "q": { "Action": "PUT", "Value": s },
            "r": { "Action": "DELETE" },
            "t": { "Action": "DELETE", "Value": { "SS": ["a"] } },
            "u": { "Action": "ADD", "Value": { "N": "5" } },
            "v": { "Action": "ADD", "Value": { "NS": ["1"] } },
            "w": { "Action": "ADD", "Value": { "L": [s] } },
            "z": null,
        }))
        .unwrap();
        let put = |name: &str| (top_level(name), SetValue::Operand(SetOperand::Value(av(s.clone()))));
        let append = SetOperand::ListAppend(
            Box::new(SetOperand::IfNotExists(top_level("w"), Box::new(SetOperand::Value(AttributeValue::L(vec![]))))),
            Box::new(SetOperand::Value(av(json!({ "L": [s] })))),
        );
        assert_eq!(
            update,
            Update {
                set: vec![put("p"), put("q"), (top_level("w"), SetValue::Operand(append))],
                remove: vec![top_level("r")],
                add: vec![(top_level("u"), av(json!({ "N": "5" }))), (top_level("v"), av(json!({ "NS": ["1"] })))],
                delete: vec![(top_level("t"), av(json!({ "SS": ["a"] })))],
            }
        );
        assert_eq!(updates(json!({})).unwrap(), Update::default());
    }

    #[test]
    fn update_messages() {
        let bad = |entry: Value| {
            let (kind, message) = error(updates(json!({ "a": entry })));
            assert_eq!(kind, ErrorKind::Validation, "{message}");
            message
        };
        let no_value = format!("{P}Only DELETE action is allowed when no attribute value is specified");
        assert_eq!(bad(json!({})), no_value);
        assert_eq!(bad(json!({ "x": "whatever" })), no_value);
        assert_eq!(bad(json!({ "Action": "ADD" })), no_value);
        for v in [
            json!({ "S": "1" }),
            json!({ "N": "1" }),
            json!({ "B": "Yg==" }),
            json!({ "NULL": true }),
            json!({ "BOOL": true }),
            json!({ "M": {} }),
            json!({ "L": [] }),
        ] {
            let type_name = av(v.clone()).type_name();
            assert_eq!(
                bad(json!({ "Action": "DELETE", "Value": v })),
                format!("{P}DELETE action with value is not supported for the type {type_name}")
            );
        }
        for v in [
            json!({ "S": "1" }),
            json!({ "B": "Yg==" }),
            json!({ "NULL": true }),
            json!({ "BOOL": true }),
            json!({ "M": {} }),
        ] {
            let type_name = av(v.clone()).type_name();
            assert_eq!(
                bad(json!({ "Action": "ADD", "Value": v })),
                format!("{P}ADD action is not supported for the type {type_name}")
            );
        }
        // The value's own validation comes first.
        assert_eq!(
            bad(json!({ "Action": "DELETE", "Value": { "NS": [] } })),
            format!("{P}An number set  may not be empty")
        );
        assert_eq!(
            bad(json!({ "Action": "hi" })),
            "1 validation error detected: Value 'hi' at 'attributeUpdates.a.member.action' failed to satisfy constraint: \
             Member must satisfy enum value set: [ADD, PUT, DELETE]"
        );
        let mut violations = Violations::default();
        attribute_updates_violations(&map(json!({ "a": { "Action": "x" }, "b": { "Action": "y" } })), &mut violations)
            .unwrap();
        assert!(violations.finish().unwrap_err().message.starts_with("2 validation errors detected: "));
    }

    #[test]
    fn update_type_mismatches() {
        for (v, message) in [
            (json!({ "a": "x" }), "Unexpected value type in payload"),
            (
                json!({ "a": [] }),
                "Unrecognized collection type class com.amazonaws.dynamodb.v20120810.AttributeValueUpdate",
            ),
            (json!({ "a": { "Action": 1 } }), "NUMBER_VALUE cannot be converted to String"),
            (
                json!({ "a": { "Action": "hi" }, "b": { "Value": [] } }),
                "Unrecognized collection type class com.amazonaws.dynamodb.v20120810.AttributeValue",
            ),
        ] {
            let (kind, got) = error(updates(v.clone()));
            assert_eq!((kind, got.as_str()), (ErrorKind::Serialization, message), "{v}");
        }
    }

    #[test]
    fn update_size_limit() {
        // DynamoDB's probe: a 409,599-character string under a one-letter name, plus a number.
        let big = "a".repeat(MAX_ITEM_BYTES - 1);
        let number = format!("{}{}", "1".repeat(38), "0".repeat(88));
        let too_big = json!({
            "b": { "Action": "PUT", "Value": { "S": big } },
            "c": { "Action": "PUT", "Value": { "N": number } },
        });
        assert_eq!(error(updates(too_big)).1, "Item size to update has exceeded the maximum allowed size");
        // Exactly 400 KB fits; what DELETE names does not count.
        let fits = json!({
            "b": { "Value": { "S": big } },
            "cc": { "Action": "DELETE" },
            "d": { "Action": "DELETE", "Value": { "SS": ["x"] } },
        });
        assert!(updates(fits).is_ok());
    }

    #[test]
    fn legacy_type_mismatch_wording() {
        let mapped = legacy_update_error(ApiError::validation(EXPRESSION_TYPE_MISMATCH));
        assert_eq!(
            (mapped.kind, mapped.message.as_str()),
            (ErrorKind::Validation, "Type mismatch for attribute to update")
        );
        let other = ApiError::validation("The provided key element does not match the schema");
        assert_eq!(legacy_update_error(other.clone()), other);
    }

    #[test]
    fn projection_names() {
        let paths = attributes_to_get(&[json!("a"), json!("b.c"), Value::Null]).unwrap();
        assert_eq!(paths, vec![top_level("a"), top_level("b.c")]);
        assert_eq!(
            error(attributes_to_get(&[json!("a"), json!("b"), json!("a")])).1,
            format!("{P}Duplicate value in attribute name: a")
        );
        assert_eq!(
            error(attributes_to_get(&[])).1,
            "1 validation error detected: Value '[]' at 'attributesToGet' failed to satisfy constraint: \
             Member must have length greater than or equal to 1"
        );
        let (kind, message) = error(attributes_to_get(&[json!("a"), json!(5)]));
        assert_eq!((kind, message.as_str()), (ErrorKind::Serialization, "NUMBER_VALUE cannot be converted to String"));
        let mut violations = Violations::default();
        attributes_to_get_violations(&[json!("a")], "attributesToGet", &mut violations).unwrap();
        assert!(violations.finish().is_ok());
    }

    #[test]
    fn mixing() {
        assert!(check_not_mixed(&["Expected"], &[]).is_ok());
        assert!(check_not_mixed(&[], &["ConditionExpression"]).is_ok());
        let message = |legacy: &[&str], expression: &[&str]| error(check_not_mixed(legacy, expression)).1;
        assert_eq!(
            message(&["Expected"], &["ConditionExpression"]),
            "Can not use both expression and non-expression parameters in the same request: \
             Non-expression parameters: {Expected} Expression parameters: {ConditionExpression}"
        );
        // DynamoDB's order, whatever the caller's.
        assert_eq!(
            message(
                &["ConditionalOperator", "Expected", "AttributeUpdates"],
                &["ConditionExpression", "UpdateExpression"]
            ),
            "Can not use both expression and non-expression parameters in the same request: \
             Non-expression parameters: {AttributeUpdates, Expected, ConditionalOperator} \
             Expression parameters: {UpdateExpression, ConditionExpression}"
        );
        assert_eq!(
            message(
                &["KeyConditions", "ConditionalOperator", "QueryFilter"],
                &["KeyConditionExpression", "FilterExpression", "ProjectionExpression"]
            ),
            "Can not use both expression and non-expression parameters in the same request: \
             Non-expression parameters: {QueryFilter, ConditionalOperator, KeyConditions} \
             Expression parameters: {ProjectionExpression, FilterExpression, KeyConditionExpression}"
        );
        assert_eq!(
            message(
                &["ConditionalOperator", "ScanFilter", "AttributesToGet"],
                &["FilterExpression", "ProjectionExpression"]
            ),
            "Can not use both expression and non-expression parameters in the same request: \
             Non-expression parameters: {AttributesToGet, ScanFilter, ConditionalOperator} \
             Expression parameters: {ProjectionExpression, FilterExpression}"
        );
    }
}
