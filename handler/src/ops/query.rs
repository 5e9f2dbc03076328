//! Query: one partition of a table or an index, its sort keys narrowed by the key condition
//! (KeyConditionExpression or the legacy KeyConditions), read in either direction; the rest is
//! the reading Query shares with Scan (`read.rs`).

use std::ops::Bound;

use serde_json::Value;

use super::Context;
use super::read::{ReadExpressions, ReadMembers, Reading, Source, condition_paths};
use crate::catalog::Table;
use crate::error::{ApiError, ApiResult};
use crate::expr::{self, Comparator, Condition, Operand, Path, PathElement, legacy};
use crate::input::{Input, Violations};
use crate::model::{AttributeValue, key};
use crate::storage::{QueryRequest, Request, SortRange, Storage};

/// One key condition: what it asks of its attribute.
#[derive(Debug, Clone)]
enum KeyTest {
    Compare(Comparator, AttributeValue),
    Between(AttributeValue, AttributeValue),
    BeginsWith(AttributeValue),
}

impl KeyTest {
    fn values(&self) -> Vec<&AttributeValue> {
        match self {
            KeyTest::Compare(_, v) | KeyTest::BeginsWith(v) => vec![v],
            KeyTest::Between(low, high) => vec![low, high],
        }
    }
}

pub fn query<S: Storage>(input: Input<'_>, cx: &mut Context<'_, S>) -> ApiResult<Value> {
    let forward = input.boolean("ScanIndexForward")?.unwrap_or(true);
    let mut violations = Violations::default();
    let members = ReadMembers::read(input, &mut violations, "QueryFilter")?;
    if let Some(conditions) = input.object("KeyConditions")? {
        legacy::filter_violations(Some(conditions), "KeyConditions", None, &mut violations)?;
    }
    violations.finish()?;
    let expressions = ReadExpressions::parse(input, true, "QueryFilter", || Ok(()))?;
    let conditions = match (&expressions.key_condition, input.object("KeyConditions")?) {
        (Some(condition), _) => key_tests(condition)?,
        (None, Some(conditions)) => legacy_key_tests(conditions)?,
        (None, None) => unreachable!("ReadExpressions::parse requires one"),
    };
    if conditions.is_empty() || conditions.len() > 2 {
        return Err(ApiError::validation("Conditions can be of length 1 or 2 only"));
    }
    let select = members.select(expressions.projection_member)?;
    let start = &expressions.start;

    let table = Table::load(cx.storage, &cx.principal.account_id, members.table_name)?;
    let source = Source::new(&table, members.index_name, members.consistent)?;
    // DynamoDB checks the start key's attributes along with the key conditions: their names
    // before, their types after.
    if let Some(start) = start {
        source.check_start_names(start)?;
    }
    let (partition, sort) = key_range(&source, &conditions)?;
    let after = start.as_ref().map(|start| source.start_key(start, true)).transpose()?;
    if let Some(start) = start {
        check_start(&source, start, &conditions)?;
    }
    if let Some(paths) = &expressions.projection {
        source.check_key_paths(&paths.iter().collect::<Vec<_>>())?;
    }
    if let Some(filter) = &expressions.filter {
        let paths = condition_paths(filter);
        let keys = std::iter::once(source.hash_key()).chain(source.range_key());
        if let Some(key) = keys.into_iter().find(|k| paths.iter().any(|p| top_name(p) == Some(&k.name))) {
            return Err(ApiError::validation(format!(
                "{} can only contain non-primary key attributes: Primary key attribute: {}",
                expressions.filter_member, key.name
            )));
        }
    }
    source.check_select(select)?;
    if let Some(filter) = &expressions.filter {
        source.check_key_paths(&condition_paths(filter))?;
    }

    let keyspace = source.keyspace();
    let reading = Reading::new(source, expressions, select, &members);
    let account = cx.principal.account_id.clone();
    reading.run(cx.storage, cx.report, &account, after, |storage, limit, byte_budget, after| {
        let request = QueryRequest {
            keyspace: keyspace.clone(),
            partition: partition.clone(),
            sort: sort.clone(),
            forward,
            after,
            limit,
            byte_budget,
        };
        storage.ask(&account, Request::query(&request))
    })
}

fn top_name(path: &Path) -> Option<&String> {
    match path.0.first() {
        Some(PathElement::Name(name)) => Some(name),
        _ => None,
    }
}

/// The conditions of a KeyConditionExpression by attribute, with DynamoDB's checks on its shape
/// (they need no key schema): ANDs of one comparison, BETWEEN or begins_with per key attribute.
fn key_tests(condition: &Condition) -> ApiResult<Vec<(String, KeyTest)>> {
    let mut tests = Vec::new();
    collect(condition, &mut tests)?;
    Ok(tests)
}

fn collect(condition: &Condition, tests: &mut Vec<(String, KeyTest)>) -> ApiResult<()> {
    let invalid_operator =
        |name: &str| Err(ApiError::validation(format!("Invalid operator used in KeyConditionExpression: {name}")));
    let invalid =
        |detail: &str| Err(ApiError::validation(format!("Invalid condition in KeyConditionExpression: {detail}")));
    let (name, test) = match condition {
        Condition::And(left, right) => {
            collect(left, tests)?;
            return collect(right, tests);
        }
        Condition::Or(..) => return invalid_operator("OR"),
        Condition::Not(..) => return invalid_operator("NOT"),
        Condition::In(..) => return invalid_operator("IN"),
        Condition::Compare(_, Comparator::Ne, _) => return invalid_operator("<>"),
        Condition::AttributeExists(_) => return invalid_operator("attribute_exists"),
        Condition::AttributeNotExists(_) => return invalid_operator("attribute_not_exists"),
        Condition::AttributeType(..) => return invalid_operator("attribute_type"),
        Condition::Contains(..) => return invalid_operator("contains"),
        Condition::Compare(left, comparator, right) => match (key_operand(left)?, key_operand(right)?) {
            (Some(_), Some(_)) => return invalid("Multiple attribute names used in one condition"),
            (None, None) => return invalid("No key attribute specified"),
            (Some(name), None) => (name, KeyTest::Compare(*comparator, value(right))),
            // `:v < k` is `k > :v`.
            (None, Some(name)) => (name, KeyTest::Compare(flipped(*comparator), value(left))),
        },
        Condition::Between(subject, low, high) => {
            let Some(name) = key_operand(subject)? else {
                return invalid("BETWEEN operator must have the key attribute as its first operand");
            };
            if key_operand(low)?.is_some() || key_operand(high)?.is_some() {
                return invalid("Multiple attribute names used in one condition");
            }
            (name, KeyTest::Between(value(low), value(high)))
        }
        Condition::BeginsWith(subject, prefix) => {
            let Some(name) = key_operand(subject)? else {
                return invalid("begins_with operator must have the key attribute as its first operand");
            };
            if key_operand(prefix)?.is_some() {
                return invalid("Multiple attribute names used in one condition");
            }
            (name, KeyTest::BeginsWith(value(prefix)))
        }
    };
    if tests.iter().any(|(n, _)| *n == name) {
        return Err(ApiError::validation("KeyConditionExpressions must only contain one condition per key"));
    }
    tests.push((name, test));
    Ok(())
}

/// The attribute an operand names (`None` for a value); size() and nested paths are refused.
fn key_operand(operand: &Operand) -> ApiResult<Option<String>> {
    match operand {
        Operand::Size(_) => Err(ApiError::validation("KeyConditionExpressions cannot contain nested operations")),
        Operand::Path(path) if path.0.len() > 1 => {
            Err(ApiError::validation("KeyConditionExpressions cannot have conditions on nested attributes"))
        }
        Operand::Path(path) => Ok(top_name(path).cloned()),
        Operand::Value(_) => Ok(None),
    }
}

fn value(operand: &Operand) -> AttributeValue {
    match operand {
        Operand::Value(value) => value.clone(),
        _ => unreachable!("key_operand found no path here"),
    }
}

fn flipped(comparator: Comparator) -> Comparator {
    match comparator {
        Comparator::Lt => Comparator::Gt,
        Comparator::Le => Comparator::Ge,
        Comparator::Gt => Comparator::Lt,
        Comparator::Ge => Comparator::Le,
        other => other,
    }
}

/// The legacy KeyConditions as the same tests.
fn legacy_key_tests(conditions: &serde_json::Map<String, Value>) -> ApiResult<Vec<(String, KeyTest)>> {
    legacy::key_conditions(conditions)?
        .into_iter()
        .map(|(name, condition)| {
            let test = match condition {
                Condition::Compare(_, comparator, Operand::Value(v)) => KeyTest::Compare(comparator, v),
                Condition::Between(_, Operand::Value(low), Operand::Value(high)) => KeyTest::Between(low, high),
                Condition::BeginsWith(_, Operand::Value(v)) => KeyTest::BeginsWith(v),
                _ => {
                    return Err(ApiError::validation("Attempted conditional constraint is not an indexable operation"));
                }
            };
            Ok((name, test))
        })
        .collect()
}

/// The partition and the sort range the conditions select, checked against the key schema in
/// DynamoDB's order: the hash key's condition, then the range key's.
fn key_range(source: &Source<'_>, tests: &[(String, KeyTest)]) -> ApiResult<(Vec<u8>, SortRange)> {
    let find = |name: &str| tests.iter().find(|(n, _)| n == name).map(|(_, t)| t);
    let hash = source.hash_key();
    let range = source.range_key();
    let not_supported = || ApiError::validation("Query key condition not supported");
    let missed = |name: &str| ApiError::validation(format!("Query condition missed key schema element: {name}"));
    let type_mismatch = || ApiError::invalid_parameter("Condition parameter type does not match schema type");
    if range.is_none() && tests.len() > 1 {
        return Err(not_supported());
    }
    let hash_test = find(&hash.name).ok_or_else(|| missed(&hash.name))?;
    if hash_test.values().iter().any(|v| v.type_name() != hash.attribute_type) {
        return Err(type_mismatch());
    }
    let KeyTest::Compare(Comparator::Eq, hash_value) = hash_test else { return Err(not_supported()) };
    let range_test = match range {
        Some(range) => match find(&range.name) {
            Some(test) if test.values().iter().any(|v| v.type_name() != range.attribute_type) => {
                return Err(type_mismatch());
            }
            Some(test) => Some(test),
            None if tests.len() > 1 => return Err(missed(&range.name)),
            None => None,
        },
        None => None,
    };
    let encode = |v: &AttributeValue| key::encode(v).ok_or_else(|| ApiError::internal("key of a non-key type"));
    let partition = encode(hash_value)?;
    let index_sort = source.index.is_some_and(|i| i.range_key.is_some());
    let sort = match range_test {
        None => SortRange::All,
        Some(test) => sort_range(test, index_sort, encode)?,
    };
    Ok((partition, sort))
}

/// The sort bytes a range key test selects. In an index keyspace the index sort value is
/// delimited and followed by the table's key, so a value's entries lie between `delimited(v)`
/// and `after_delimited(delimited(v))`; in a table the sort bytes are the value's encoding.
fn sort_range(
    test: &KeyTest,
    index: bool,
    encode: impl Fn(&AttributeValue) -> ApiResult<Vec<u8>>,
) -> ApiResult<SortRange> {
    // The first sort key with value `v` (`at`) or the first above it; and the bound below the
    // first above `v` (`at`) or below the first with `v`.
    let from = |v: &AttributeValue, at: bool| -> ApiResult<Bound<Vec<u8>>> {
        let e = encode(v)?;
        Ok(match (index, at) {
            (false, true) => Bound::Included(e),
            (false, false) => Bound::Excluded(e),
            (true, true) => Bound::Included(key::delimited(&e)),
            (true, false) => Bound::Included(key::after_delimited(&key::delimited(&e))),
        })
    };
    let to = |v: &AttributeValue, at: bool| -> ApiResult<Bound<Vec<u8>>> {
        let e = encode(v)?;
        Ok(match (index, at) {
            (false, true) => Bound::Included(e),
            (false, false) => Bound::Excluded(e),
            (true, true) => Bound::Excluded(key::after_delimited(&key::delimited(&e))),
            (true, false) => Bound::Excluded(key::delimited(&e)),
        })
    };
    Ok(match test {
        KeyTest::Compare(Comparator::Eq, v) => SortRange::Between(from(v, true)?, to(v, true)?),
        KeyTest::Compare(Comparator::Lt, v) => SortRange::Between(Bound::Unbounded, to(v, false)?),
        KeyTest::Compare(Comparator::Le, v) => SortRange::Between(Bound::Unbounded, to(v, true)?),
        KeyTest::Compare(Comparator::Gt, v) => SortRange::Between(from(v, false)?, Bound::Unbounded),
        KeyTest::Compare(Comparator::Ge, v) => SortRange::Between(from(v, true)?, Bound::Unbounded),
        KeyTest::Compare(Comparator::Ne, _) => unreachable!("refused as a key condition"),
        KeyTest::Between(low, high) => SortRange::Between(from(low, true)?, to(high, true)?),
        KeyTest::BeginsWith(prefix) => {
            let e = encode(prefix)?;
            SortRange::Prefix(if index { key::escaped(&e) } else { e })
        }
    })
}

/// An ExclusiveStartKey must lie inside what the conditions select.
fn check_start(source: &Source<'_>, start: &crate::model::Item, tests: &[(String, KeyTest)]) -> ApiResult<()> {
    let holds = |name: &str, test: &KeyTest| -> ApiResult<bool> {
        let path = || Operand::Path(Path(vec![PathElement::Name(name.to_string())]));
        let condition = match test {
            KeyTest::Compare(comparator, v) => Condition::Compare(path(), *comparator, Operand::Value(v.clone())),
            KeyTest::Between(low, high) => {
                Condition::Between(path(), Operand::Value(low.clone()), Operand::Value(high.clone()))
            }
            KeyTest::BeginsWith(v) => Condition::BeginsWith(path(), Operand::Value(v.clone())),
        };
        expr::evaluate(&condition, Some(start))
    };
    for (name, test) in tests {
        if !holds(name, test)? {
            return Err(ApiError::validation(if *name == source.hash_key().name {
                "The provided starting key is outside query boundaries based on provided conditions"
            } else {
                "The provided starting key does not match the range key predicate"
            }));
        }
    }
    Ok(())
}
