//! What Query and Scan share: the members both take, the keyspace they read (a table or one of its
//! indexes) with its key schema, and the reading itself: pages cut by Limit (items read, not
//! returned) and by 1 MB of items read, the filter, Select and the projection, Count and
//! ScannedCount, LastEvaluatedKey and the capacity the items read cost.

use serde_json::{Map, Value, json};

use super::{items::stored_item, keys};
use crate::capacity::{ReturnConsumedCapacity, read_units};
use crate::catalog::{Index, IndexStatus, KeyAttribute, Projection, Table};
use crate::error::{ApiError, ApiResult, ErrorKind};
use crate::expr::{self, Condition, ExpressionKind, Operand, Path, PathElement, Substitutions, legacy};
use crate::input::{Input, Violations};
use crate::model::{Item, item_from_json, item_to_json, key, size::item_size};
use crate::report::Report;
use crate::storage::{ItemKey, Keyspace, Page, Request, Storage, StorageError};

/// DynamoDB stops a page once it has read 1 MB of items.
const PAGE_BYTES: usize = 1024 * 1024;
/// Items per storage call: about 1 MB of typical (100+ byte) items, so one call never pulls a
/// huge keyspace into memory.
const MAX_ITEMS_PER_CALL: u32 = 10_000;
/// Documents are larger than DynamoDB's item size; the exact 1 MB cut is made on item sizes.
const BYTE_BUDGET: u32 = 2 * PAGE_BYTES as u32;
const SELECTS: [&str; 4] = ["SPECIFIC_ATTRIBUTES", "COUNT", "ALL_ATTRIBUTES", "ALL_PROJECTED_ATTRIBUTES"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Select {
    All,
    AllProjected,
    Specific,
    Count,
}

/// The members Query and Scan both take, read together so their constraint violations are
/// reported in one message.
pub struct ReadMembers<'a> {
    pub table_name: &'a str,
    pub index_name: Option<&'a str>,
    pub limit: Option<u32>,
    select: Option<&'a str>,
    pub consistent: bool,
    pub capacity: ReturnConsumedCapacity,
}

impl<'a> ReadMembers<'a> {
    /// `filter_member`: "QueryFilter" or "ScanFilter".
    pub fn read(input: Input<'a>, violations: &mut Violations, filter_member: &str) -> ApiResult<ReadMembers<'a>> {
        let name = input.string("TableName")?;
        let index_name = input.string("IndexName")?;
        let limit = input.integer("Limit")?;
        let select = input.string("Select")?;
        let consistent = input.boolean("ConsistentRead")?.unwrap_or(false);
        // In DynamoDB's order, so the violations are listed as it lists them.
        let capacity = ReturnConsumedCapacity::gather(input, violations)?;
        violations.table_name(name, "tableName");
        if let Some(index_name) = index_name {
            violations.table_name(Some(index_name), "indexName");
        }
        match limit {
            // Query words a Limit below 1 its own way: no value, and the member's own name.
            Some(limit) if limit < 1 && filter_member == "QueryFilter" => {
                violations.add_unvalued("Limit", "have value greater than or equal to 1")
            }
            Some(limit) => violations.range(limit, "limit", 1, i64::from(i32::MAX)),
            None => {}
        }
        violations.one_of(select, "select", &SELECTS);
        if let Some(names) = input.list("AttributesToGet")? {
            legacy::attributes_to_get_violations(names, "attributesToGet", violations)?;
        }
        let filter = input.object(filter_member)?;
        legacy::filter_violations(filter, filter_member, input.string("ConditionalOperator")?, violations)?;
        Ok(ReadMembers {
            table_name: name.unwrap_or_default(),
            index_name,
            limit: limit.map(|l| l as u32),
            select,
            consistent,
            capacity,
        })
    }

    /// Select as DynamoDB decides it before looking at the table; `projection_member` names the
    /// member a projection came from (AttributesToGet or ProjectionExpression), if any.
    pub fn select(&self, projection_member: Option<&str>) -> ApiResult<Select> {
        let with_projection = |select: &str| {
            projection_member.map_or(Ok(()), |member| {
                Err(ApiError::validation(format!("Cannot specify the {member} when choosing to get {select}")))
            })
        };
        match self.select {
            None if projection_member.is_some() => Ok(Select::Specific),
            None if self.index_name.is_some() => Ok(Select::AllProjected),
            None => Ok(Select::All),
            Some("ALL_ATTRIBUTES") => with_projection("ALL_ATTRIBUTES").map(|()| Select::All),
            Some("ALL_PROJECTED_ATTRIBUTES") => {
                with_projection("ALL_PROJECTED_ATTRIBUTES")?;
                if self.index_name.is_none() {
                    return Err(ApiError::validation(
                        "ALL_PROJECTED_ATTRIBUTES can be used only when Querying using an IndexName",
                    ));
                }
                Ok(Select::AllProjected)
            }
            Some("COUNT") => with_projection("only the Count").map(|()| Select::Count),
            Some(_) if projection_member.is_none() => Err(ApiError::validation(
                "Must specify the AttributesToGet or ProjectionExpression when choosing to get SPECIFIC_ATTRIBUTES",
            )),
            Some(_) => Ok(Select::Specific),
        }
    }
}

/// The expressions of a read (or their legacy members), parsed with one set of substitutions,
/// and the ExclusiveStartKey: what a read validates before it looks at the table.
pub struct ReadExpressions {
    pub key_condition: Option<Condition>,
    pub filter: Option<Condition>,
    pub projection: Option<Vec<Path>>,
    /// Which member the projection came from, for Select's messages.
    pub projection_member: Option<&'static str>,
    /// Which member the filter came from, for Query's messages on key attributes.
    pub filter_member: &'static str,
    pub start: Option<Item>,
}

impl ReadExpressions {
    /// In DynamoDB's order: expression and legacy members not mixed, the legacy filter and
    /// AttributesToGet (Query checks the filter first, Scan the names), the ExclusiveStartKey's
    /// values, then `before_expressions` (the operation's own checks), then the expressions.
    /// `key_conditions`: Query (KeyConditionExpression or KeyConditions); `filter_member`:
    /// "QueryFilter" or "ScanFilter".
    pub fn parse(
        input: Input<'_>,
        key_conditions: bool,
        filter_member: &'static str,
        before_expressions: impl FnOnce() -> ApiResult<()>,
    ) -> ApiResult<ReadExpressions> {
        let mut legacy_members = vec!["AttributesToGet", filter_member, "ConditionalOperator"];
        let mut expression_members = vec!["ProjectionExpression", "FilterExpression"];
        if key_conditions {
            // KeyConditions goes with expressions only next to a KeyConditionExpression.
            if input.has("KeyConditionExpression") {
                legacy_members.push("KeyConditions");
            }
            expression_members.push("KeyConditionExpression");
        }
        let present = |members: &[&'static str]| members.iter().copied().filter(|m| input.has(m)).collect::<Vec<_>>();
        legacy::check_not_mixed(&present(&legacy_members), &present(&expression_members))?;
        let (names, values) = super::items::expression_maps(input, &expression_members)?;

        let operator = input.string("ConditionalOperator")?;
        let legacy_filter = || -> ApiResult<Option<Condition>> {
            let no_filter = Map::new();
            legacy::filter_condition(input.object(filter_member)?.unwrap_or(&no_filter), operator, filter_member)
        };
        let attributes = || input.list("AttributesToGet")?.map(legacy::attributes_to_get).transpose();
        let (legacy_filter, attributes) = if key_conditions {
            let filter = legacy_filter()?;
            (filter, attributes()?)
        } else {
            let attributes = attributes()?;
            (legacy_filter()?, attributes)
        };
        let start = input.object("ExclusiveStartKey")?.map(start_item).transpose()?;
        if key_conditions && !input.has("KeyConditionExpression") && !input.has("KeyConditions") {
            return Err(ApiError::validation(
                "Either the KeyConditions or KeyConditionExpression parameter must be specified in the request.",
            ));
        }
        before_expressions()?;

        let mut subs = Substitutions::new(names, values)?;
        let key_condition = input
            .string("KeyConditionExpression")?
            .map(|text| expr::parse_key_condition(text, &mut subs))
            .transpose()?;
        let filter = input
            .string("FilterExpression")?
            .map(|text| expr::parse_condition(text, ExpressionKind::Filter, &mut subs))
            .transpose()?;
        let projection =
            input.string("ProjectionExpression")?.map(|text| expr::parse_projection(text, &mut subs)).transpose()?;
        subs.finish()?;
        let projection_member = match (&projection, &attributes) {
            (Some(_), _) => Some("ProjectionExpression"),
            (None, Some(_)) => Some("AttributesToGet"),
            (None, None) => None,
        };
        Ok(ReadExpressions {
            key_condition,
            filter: filter.or(legacy_filter),
            projection: projection.or(attributes),
            projection_member,
            filter_member: if input.has("FilterExpression") { "Filter Expression" } else { filter_member },
            start,
        })
    }
}

/// An ExclusiveStartKey's values. DynamoDB puts its own prefix before most of their errors, but
/// not before those of numbers and of sets with duplicates, which it checks elsewhere.
fn start_item(start: &Map<String, Value>) -> ApiResult<Item> {
    item_from_json(&Value::Object(start.clone())).map_err(|mut e| {
        let checked_elsewhere = ["numeric value", "Number", "number set", "duplicates"];
        if e.kind == ErrorKind::Validation && !checked_elsewhere.iter().any(|m| e.message.contains(m)) {
            e.message = format!("The provided starting key is invalid: {}", e.message);
        }
        e
    })
}

/// The keyspace a Query or Scan reads, and its key schema: the table's, or one index's.
pub struct Source<'t> {
    pub table: &'t Table,
    pub index: Option<&'t Index>,
}

impl<'t> Source<'t> {
    /// The table itself, or its index `name` if it can be read as asked.
    pub fn new(table: &'t Table, index_name: Option<&str>, consistent: bool) -> ApiResult<Source<'t>> {
        let Some(name) = index_name else { return Ok(Source { table, index: None }) };
        let index = table
            .index(name)
            .ok_or_else(|| ApiError::validation(format!("The table does not have the specified index: {name}")))?;
        if index.global && consistent {
            return Err(ApiError::validation("Consistent reads are not supported on global secondary indexes"));
        }
        // As a client saw it (aws-cloudformation/cloudformation-coverage-roadmap#1075): no name.
        if index.status == IndexStatus::Creating {
            return Err(ApiError::validation("Cannot read from backfilling global secondary index"));
        }
        Ok(Source { table, index: Some(index) })
    }

    pub fn keyspace(&self) -> Keyspace {
        match self.index {
            Some(index) => Keyspace::index(&self.table.table_name, &index.index_name),
            None => self.table.keyspace(),
        }
    }

    pub fn hash_key(&self) -> &KeyAttribute {
        self.index.map_or(&self.table.hash_key, |i| &i.hash_key)
    }

    pub fn range_key(&self) -> Option<&KeyAttribute> {
        self.index.map_or(self.table.range_key.as_ref(), |i| i.range_key.as_ref())
    }

    /// The attributes of a LastEvaluatedKey: the table's key, then the index's.
    fn key_names(&self) -> Vec<&KeyAttribute> {
        let mut names: Vec<&KeyAttribute> = self.table.key_attributes().collect();
        if let Some(index) = self.index {
            for attribute in std::iter::once(&index.hash_key).chain(&index.range_key) {
                if !names.iter().any(|n| n.name == attribute.name) {
                    names.push(attribute);
                }
            }
        }
        names
    }

    /// A Query's start key, or an index scan's, names exactly the key attributes of the table and
    /// the index.
    pub fn check_start_names(&self, start: &Item) -> ApiResult<()> {
        let names = self.key_names();
        if start.len() != names.len() || names.iter().any(|n| !start.contains_key(&n.name)) {
            return Err(ApiError::validation("The provided starting key is invalid"));
        }
        Ok(())
    }

    /// The storage key to resume after, from an ExclusiveStartKey checked against the key schema
    /// with DynamoDB's messages, which differ between a table scan and the other reads.
    pub fn start_key(&self, start: &Item, query: bool) -> ApiResult<ItemKey> {
        let mismatch = "The provided starting key is invalid: The provided key element does not match the schema";
        if !query && self.index.is_none() {
            return keys::of_request(self.table, start, mismatch);
        }
        self.check_start_names(start)?;
        let schema = [Some(self.hash_key()), self.range_key()];
        for attribute in schema.into_iter().flatten() {
            if start[&attribute.name].type_name() != attribute.attribute_type {
                return Err(ApiError::validation("The provided key element does not match the schema"));
            }
        }
        let table_key: Item = self.table.key_attributes().map(|k| (k.name.clone(), start[&k.name].clone())).collect();
        let table_key = keys::of_request(self.table, &table_key, mismatch)?;
        let Some(index) = self.index else { return Ok(table_key) };
        let partition = keys::encode_attribute(&index.hash_key, &start[&index.hash_key.name], true)?;
        let sort = index.range_key.as_ref().map(|k| keys::encode_attribute(k, &start[&k.name], false)).transpose()?;
        Ok(key::index_entry_key(partition, sort.as_deref(), &table_key))
    }

    fn last_key(&self, item: &Item) -> Value {
        let key: Item =
            self.key_names().iter().filter_map(|k| item.get(&k.name).map(|v| (k.name.clone(), v.clone()))).collect();
        item_to_json(&key)
    }

    /// Whether an entry lacks attributes the request wants, so the item is read from the table:
    /// a local index does that for attributes it does not project (a global one cannot).
    fn reads_table(&self, select: Select, projection: Option<&[Path]>) -> bool {
        let Some(index) = self.index.filter(|i| !i.global) else { return false };
        let projected = |name: &str| match &index.projection {
            Projection::All => true,
            Projection::KeysOnly => false,
            Projection::Include(names) => names.iter().any(|n| n == name),
        } || self.key_names().iter().any(|k| k.name == name);
        match select {
            Select::All => index.projection != Projection::All,
            Select::Specific => projection.unwrap_or_default().iter().any(|path| match path.0.first() {
                Some(PathElement::Name(name)) => !projected(name),
                _ => false,
            }),
            Select::AllProjected | Select::Count => false,
        }
    }

    /// The checks on a request's paths that need the key schema: key attributes are scalars, so
    /// a path into one is refused (DynamoDB checks every key of the table and its indexes).
    pub fn check_key_paths(&self, paths: &[&Path]) -> ApiResult<()> {
        let nested = |name: &str| {
            paths.iter().any(|p| p.0.len() > 1 && matches!(p.0.first(), Some(PathElement::Name(n)) if n == name))
        };
        let refuse = |label: &str, name: &str| {
            Err(ApiError::validation(format!(
                "Key attributes must be scalars; list random access '[]' and map lookup '.' are not allowed: {label}: {name}"
            )))
        };
        if let Some(key) = self.table.key_attributes().find(|k| nested(&k.name)) {
            return refuse("Key", &key.name);
        }
        let mut index_keys = self.table.indexes.iter().flat_map(|i| std::iter::once(&i.hash_key).chain(&i.range_key));
        if let Some(key) = index_keys.find(|k| nested(&k.name)) {
            return refuse("IndexKey", &key.name);
        }
        Ok(())
    }

    /// Checks Select against the index (a global index has only what it projects).
    pub fn check_select(&self, select: Select) -> ApiResult<()> {
        match self.index {
            Some(index) if index.global && select == Select::All && index.projection != Projection::All => {
                Err(ApiError::invalid_parameter(format!(
                    "Select type ALL_ATTRIBUTES is not supported for global secondary index {} because its projection type is not ALL",
                    index.index_name
                )))
            }
            _ => Ok(()),
        }
    }
}

/// Every path a condition reads.
pub fn condition_paths(condition: &Condition) -> Vec<&Path> {
    fn operand<'c>(o: &'c Operand, out: &mut Vec<&'c Path>) {
        if let Operand::Path(p) | Operand::Size(p) = o {
            out.push(p);
        }
    }
    fn walk<'c>(c: &'c Condition, out: &mut Vec<&'c Path>) {
        match c {
            Condition::Compare(a, _, b) | Condition::BeginsWith(a, b) | Condition::Contains(a, b) => {
                operand(a, out);
                operand(b, out);
            }
            Condition::Between(a, b, c) => [a, b, c].into_iter().for_each(|o| operand(o, out)),
            Condition::In(a, list) => std::iter::once(a).chain(list).for_each(|o| operand(o, out)),
            Condition::And(a, b) | Condition::Or(a, b) => {
                walk(a, out);
                walk(b, out);
            }
            Condition::Not(a) => walk(a, out),
            Condition::AttributeExists(p) | Condition::AttributeNotExists(p) => out.push(p),
            Condition::AttributeType(p, o) => {
                out.push(p);
                operand(o, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(condition, &mut out);
    out
}

/// A validated read, ready to run.
pub struct Reading<'t> {
    pub source: Source<'t>,
    pub filter: Option<Condition>,
    pub projection: Option<Vec<Path>>,
    pub select: Select,
    pub limit: Option<u32>,
    pub consistent: bool,
    pub capacity: ReturnConsumedCapacity,
}

impl<'t> Reading<'t> {
    /// The read a Query or Scan asks for, once its members and expressions passed validation.
    pub fn new(source: Source<'t>, expressions: ReadExpressions, select: Select, members: &ReadMembers<'_>) -> Self {
        Reading {
            source,
            filter: expressions.filter,
            projection: expressions.projection,
            select,
            limit: members.limit,
            consistent: members.consistent,
            capacity: members.capacity,
        }
    }

    /// Reads one page of the answer: `fetch(storage, limit, after)` reads the keyspace in order
    /// from strictly after `after`, at most `limit` items, as many times as it takes to reach
    /// the Limit or 1 MB of items read, or the end.
    pub fn run<S: Storage>(
        &self,
        storage: &mut S,
        report: &mut Report,
        account: &str,
        start: Option<ItemKey>,
        mut fetch: impl FnMut(&mut S, u32, u32, Option<ItemKey>) -> Result<Page, StorageError>,
    ) -> ApiResult<Value> {
        let reads_table = self.source.reads_table(self.select, self.projection.as_deref());
        let (mut scanned, mut bytes, mut table_bytes) = (0u32, 0usize, None::<usize>);
        let mut items = Vec::new();
        let mut last = None;
        let mut after = start;
        let full = |scanned: u32, bytes: usize| self.limit.is_some_and(|l| scanned >= l) || bytes >= PAGE_BYTES;
        // Whether unread items may follow the last one read.
        let mut more = true;
        while more && !full(scanned, bytes) {
            let want = self.limit.map_or(MAX_ITEMS_PER_CALL, |l| (l - scanned).min(MAX_ITEMS_PER_CALL));
            let page = fetch(storage, want, BYTE_BUDGET, after.take())?;
            more = page.more;
            after = page.items.last().map(|stored| stored.key.clone());
            for (read, stored) in page.items.iter().enumerate() {
                let entry = stored_item(stored)?;
                scanned += 1;
                bytes += item_size(&entry);
                let item = match reads_table {
                    true => {
                        let key = keys::of_item(self.source.table, &entry)?;
                        let found = storage.ask(account, Request::get(&self.source.table.keyspace(), &key));
                        let found = found?.map(|s| stored_item(&s)).transpose()?;
                        *table_bytes.get_or_insert(0) += found.as_ref().map_or(0, item_size);
                        found.unwrap_or_default()
                    }
                    false => entry.clone(),
                };
                if self.filter.as_ref().map_or(Ok(true), |f| expr::evaluate(f, Some(&item)))? {
                    items.push(item);
                }
                last = Some(entry);
                if full(scanned, bytes) {
                    more |= read + 1 < page.items.len();
                    break;
                }
            }
        }
        let reached_limit = self.limit.is_some_and(|l| scanned >= l);
        let mut response = json!({"Count": items.len(), "ScannedCount": scanned});
        if (reached_limit || more)
            && let Some(last) = &last
        {
            response["LastEvaluatedKey"] = self.source.last_key(last);
        }
        if self.select != Select::Count {
            let shown = |item: &Item| match (&self.projection, self.select) {
                (Some(paths), Select::Specific) => item_to_json(&expr::project(item, paths)),
                _ => item_to_json(item),
            };
            response["Items"] = Value::Array(items.iter().map(shown).collect());
        }
        let table = &self.source.table.table_name;
        // Charged for all it read, as one read of that many bytes per keyspace.
        let units = read_units(Some(bytes), self.consistent);
        let consumed = match self.source.index {
            None => {
                report.consumed_read(table, units);
                self.capacity.consumed(table, units)
            }
            Some(index) => {
                let table_units = table_bytes.map_or(0.0, |b| read_units(Some(b), self.consistent));
                report.consumed_read(table, table_units + units);
                self.capacity.consumed_with_index(table, table_units, &index.index_name, index.global, units)
            }
        };
        if let Some(consumed) = consumed {
            response["ConsumedCapacity"] = consumed;
        }
        Ok(response)
    }
}
