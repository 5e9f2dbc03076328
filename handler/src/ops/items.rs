//! PutItem, UpdateItem, DeleteItem and GetItem: every expression, its legacy form, ReturnValues,
//! ReturnValuesOnConditionCheckFailure and ReturnConsumedCapacity.
//!
//! Writes are read-modify-write under optimistic concurrency: the old item is read with its
//! version, the condition is decided and the new item computed from exactly that version, and the
//! write is guarded by it; if another writer got there first the whole decision is made again.
//! So a condition is never evaluated against a stale item and no update is lost. The read
//! announces the write (`Storage::get_for_write`), so a store that can queue the writers of one
//! key does, and a hot key's writers take turns instead of deciding again and again.

use serde_json::{Map, Value, json};

use super::{Context, keys, table_name};
use crate::capacity::{READ_UNIT_BYTES, ReturnConsumedCapacity};
use crate::catalog::Table;
use crate::error::{ApiError, ApiResult, ErrorKind};
use crate::expr::{self, Condition, ExpressionKind, Path, Substitutions, Update, legacy};
use crate::index;
use crate::input::{Input, Violations};
use crate::model::value::{AttributeValue, check_nesting};
use crate::model::{
    Item, item_from_json, item_to_json,
    size::{MAX_ITEM_BYTES, item_size, item_too_large},
};
use crate::storage::{Expect, Failure, ItemKey, Request, Storage, StoredItem, Write};
use crate::stream::{self, Origin};
use crate::time::now_seconds;

/// DynamoDB leaves alone items whose expiry lies more than five years in the past.
const OLDEST_EXPIRY_SECONDS: u64 = 5 * 365 * 24 * 3600;

pub(super) const KEY_MISMATCH: &str = "The provided key element does not match the schema";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReturnValues {
    None,
    AllOld,
    UpdatedOld,
    AllNew,
    UpdatedNew,
}

impl ReturnValues {
    const NAMES: [&str; 5] = ["NONE", "ALL_OLD", "UPDATED_OLD", "ALL_NEW", "UPDATED_NEW"];

    /// Reads `ReturnValues`; `allowed` is the subset the operation supports.
    fn read(input: Input<'_>, violations: &mut Violations, allowed: &[&str]) -> ApiResult<ReturnValues> {
        let value = input.string("ReturnValues")?;
        violations.one_of(value, "returnValues", &Self::NAMES);
        Ok(match value {
            None | Some("NONE") => ReturnValues::None,
            Some(v) if !allowed.contains(&v) => ReturnValues::None, // reported by `check_allowed`
            Some("ALL_OLD") => ReturnValues::AllOld,
            Some("UPDATED_OLD") => ReturnValues::UpdatedOld,
            Some("ALL_NEW") => ReturnValues::AllNew,
            Some(_) => ReturnValues::UpdatedNew,
        })
    }

    /// After the constraint checks: a known value the operation does not support.
    fn check_allowed(input: Input<'_>, allowed: &[&str]) -> ApiResult<()> {
        match input.string("ReturnValues")? {
            Some(v) if Self::NAMES.contains(&v) && !allowed.contains(&v) => {
                Err(ApiError::validation("Return values set to invalid value"))
            }
            _ => Ok(()),
        }
    }
}

/// What a write does to the item.
pub(super) enum Change {
    Put(Item),
    /// `key_item` holds the key attributes an absent item starts from; `legacy` says the update
    /// came from `AttributeUpdates`, whose errors DynamoDB words differently.
    Update {
        update: Update,
        key_item: Item,
        legacy: bool,
    },
    Delete,
}

/// The members every single-item write has, read together so their constraint violations are
/// reported in one message.
struct WriteMembers<'a> {
    table_name: &'a str,
    return_values: ReturnValues,
    old_item_on_failure: bool,
    capacity: ReturnConsumedCapacity,
    /// ReturnItemCollectionMetrics is SIZE.
    collection_metrics: bool,
}

impl<'a> WriteMembers<'a> {
    fn read(input: Input<'a>, violations: &mut Violations, allowed: &[&str]) -> ApiResult<WriteMembers<'a>> {
        let table_name = input.string("TableName")?;
        violations.table_name(table_name, "tableName");
        let return_values = ReturnValues::read(input, violations, allowed)?;
        let metrics = input.string("ReturnItemCollectionMetrics")?;
        violations.one_of(metrics, "returnItemCollectionMetrics", &["SIZE", "NONE"]);
        let on_failure = input.string("ReturnValuesOnConditionCheckFailure")?;
        violations.one_of(on_failure, "returnValuesOnConditionCheckFailure", &["ALL_OLD", "NONE"]);
        let capacity = ReturnConsumedCapacity::gather(input, violations)?;
        if let Some(expected) = input.object("Expected")? {
            legacy::expected_violations(expected, input.string("ConditionalOperator")?, violations)?;
        }
        Ok(WriteMembers {
            table_name: table_name.unwrap_or_default(),
            return_values,
            old_item_on_failure: on_failure == Some("ALL_OLD"),
            capacity,
            collection_metrics: metrics == Some("SIZE"),
        })
    }
}

/// Everything a write needs once the request is validated.
struct WritePlan<'a> {
    table: Table,
    key: ItemKey,
    condition: Option<Condition>,
    change: Change,
    members: WriteMembers<'a>,
}

pub fn put_item<S: Storage>(input: Input<'_>, cx: &mut Context<'_, S>) -> ApiResult<Value> {
    let allowed = ["NONE", "ALL_OLD"];
    let mut violations = Violations::default();
    let item = input.object("Item")?;
    let common = WriteMembers::read(input, &mut violations, &allowed)?;
    let item = violations.not_null(item, "item");
    violations.finish()?;
    let name = common.table_name;
    let (condition, _) = write_expressions(input, false)?;
    ReturnValues::check_allowed(input, &allowed)?;
    let item = item_from_json(&Value::Object(item.expect("checked").clone()))?;
    let table = Table::load(cx.storage, &cx.principal.account_id, name)?;
    let key = keys::of_item(&table, &item)?;
    index::check_item(&table, &item, &key)?;
    check_item_size(&item)?;
    let plan = WritePlan { table, key, condition, change: Change::Put(item), members: common };
    execute(cx, plan)
}

pub fn update_item<S: Storage>(input: Input<'_>, cx: &mut Context<'_, S>) -> ApiResult<Value> {
    let allowed = ReturnValues::NAMES;
    let mut violations = Violations::default();
    let key = input.object("Key")?;
    let common = WriteMembers::read(input, &mut violations, &allowed)?;
    if let Some(updates) = input.object("AttributeUpdates")? {
        legacy::attribute_updates_violations(updates, &mut violations)?;
    }
    let key = violations.not_null(key, "key");
    violations.finish()?;
    let name = common.table_name;
    let (condition, update) = write_expressions(input, true)?;
    let update = update.unwrap_or_default();
    let legacy_update = input.has("AttributeUpdates");
    let key_item = item_from_json(&Value::Object(key.expect("checked").clone()))?;
    let table = Table::load(cx.storage, &cx.principal.account_id, name)?;
    let key = keys::of_request(&table, &key_item, KEY_MISMATCH)?;
    check_key_not_updated(&table, &update)?;
    let plan = WritePlan {
        table,
        key,
        condition,
        change: Change::Update { update, key_item, legacy: legacy_update },
        members: common,
    };
    execute(cx, plan)
}

/// An update may not touch the table's key attributes.
pub(super) fn check_key_not_updated(table: &Table, update: &Update) -> ApiResult<()> {
    for path in expr::updated_paths(update) {
        if let Some(expr::PathElement::Name(first)) = path.0.first()
            && table.key_attributes().any(|k| &k.name == first)
        {
            return Err(ApiError::invalid_parameter(format!(
                "Cannot update attribute {first}. This attribute is part of the key"
            )));
        }
    }
    Ok(())
}

pub fn delete_item<S: Storage>(input: Input<'_>, cx: &mut Context<'_, S>) -> ApiResult<Value> {
    let allowed = ["NONE", "ALL_OLD"];
    let mut violations = Violations::default();
    let key = input.object("Key")?;
    let common = WriteMembers::read(input, &mut violations, &allowed)?;
    let key = violations.not_null(key, "key");
    violations.finish()?;
    let name = common.table_name;
    let (condition, _) = write_expressions(input, false)?;
    ReturnValues::check_allowed(input, &allowed)?;
    let key_item = item_from_json(&Value::Object(key.expect("checked").clone()))?;
    let table = Table::load(cx.storage, &cx.principal.account_id, name)?;
    let key = keys::of_request(&table, &key_item, KEY_MISMATCH)?;
    let plan = WritePlan { table, key, condition, change: Change::Delete, members: common };
    execute(cx, plan)
}

pub fn get_item<S: Storage>(input: Input<'_>, cx: &mut Context<'_, S>) -> ApiResult<Value> {
    let name = table_name(input, false)?;
    let key = input.object("Key")?;
    let consistent = input.boolean("ConsistentRead")?.unwrap_or(false);
    let capacity = ReturnConsumedCapacity::from_input(input)?;
    let mut violations = Violations::default();
    let key = violations.not_null(key, "key");
    violations.finish()?;
    let projection = projection(input)?;
    let key_item = item_from_json(&Value::Object(key.expect("checked").clone()))?;
    let table = Table::load(cx.storage, &cx.principal.account_id, name)?;
    let key = keys::of_request(&table, &key_item, KEY_MISMATCH)?;
    let stored = cx.storage.ask(&cx.principal.account_id, Request::get(&table.keyspace(), &key))?;
    // Charged on the item's size as DynamoDB counts it (not its stored JSON), whatever the
    // projection keeps. The stored JSON is never shorter than that size, so an item stored in
    // one read unit costs one unit: it is decoded for its size only when capacity is asked for.
    let size = match &stored {
        Some(stored) if capacity != ReturnConsumedCapacity::None || stored.document.len() > READ_UNIT_BYTES => {
            Some(item_size(&stored_item(stored)?))
        }
        _ => None,
    };
    let mut response = match (stored, projection) {
        (None, _) => json!({}),
        (Some(stored), None) => json!({"Item": stored_document(&stored)?}),
        (Some(stored), Some(paths)) => {
            let item = expr::project(&stored_item(&stored)?, &paths);
            json!({"Item": item_to_json(&item)})
        }
    };
    let units = crate::capacity::read_units(size, consistent);
    cx.report.consumed_read(name, units);
    if let Some(consumed) = capacity.consumed(name, units) {
        response["ConsumedCapacity"] = consumed;
    }
    Ok(response)
}

/// The condition of a write (ConditionExpression, or the legacy Expected/ConditionalOperator),
/// and for UpdateItem (`update` is `Some`) the update (UpdateExpression, or AttributeUpdates).
/// All expressions of the request share one set of substitutions, so unused names and values
/// are found across them.
pub(super) fn write_expressions(input: Input<'_>, with_update: bool) -> ApiResult<(Option<Condition>, Option<Update>)> {
    let legacy_members: &[&str] = if with_update {
        &["AttributeUpdates", "Expected", "ConditionalOperator"]
    } else {
        &["Expected", "ConditionalOperator"]
    };
    let expression_members: &[&str] =
        if with_update { &["UpdateExpression", "ConditionExpression"] } else { &["ConditionExpression"] };
    let present = |members: &[&'static str]| members.iter().copied().filter(|m| input.has(m)).collect::<Vec<_>>();
    legacy::check_not_mixed(&present(legacy_members), &present(expression_members))?;

    let (names, values) = expression_maps(input, expression_members)?;
    let mut subs = Substitutions::new(names, values)?;
    // DynamoDB parses the update before the condition, so its errors win.
    let update = match (with_update, input.string("UpdateExpression")?) {
        (false, _) => None,
        (true, Some(text)) => Some(expr::parse_update(text, &mut subs)?),
        (true, None) => input.object("AttributeUpdates")?.map(legacy::attribute_updates).transpose()?,
    };
    let condition = match input.string("ConditionExpression")? {
        Some(text) => Some(expr::parse_condition(text, ExpressionKind::Condition, &mut subs)?),
        None => {
            let no_expectations = Map::new();
            let expected = input.object("Expected")?.unwrap_or(&no_expectations);
            legacy::expected_condition(expected, input.string("ConditionalOperator")?)?
        }
    };
    subs.finish()?;
    Ok((condition, update))
}

/// GetItem's ProjectionExpression or legacy AttributesToGet.
pub(super) fn projection(input: Input<'_>) -> ApiResult<Option<Vec<Path>>> {
    let present = |members: &[&'static str]| members.iter().copied().filter(|m| input.has(m)).collect::<Vec<_>>();
    legacy::check_not_mixed(&present(&["AttributesToGet"]), &present(&["ProjectionExpression"]))?;
    // GetItem has no ExpressionAttributeValues member: DynamoDB ignores one sent anyway.
    let names = input.object("ExpressionAttributeNames")?;
    if names.is_some() && !input.has("ProjectionExpression") {
        return Err(ApiError::validation("ExpressionAttributeNames can only be specified when using expressions"));
    }
    let mut subs = Substitutions::new(names, None)?;
    let paths = match input.string("ProjectionExpression")? {
        Some(text) => Some(expr::parse_projection(text, &mut subs)?),
        None => input.list("AttributesToGet")?.map(legacy::attributes_to_get).transpose()?,
    };
    subs.finish()?;
    Ok(paths)
}

/// The request's ExpressionAttributeNames/Values, which need at least one of the operation's
/// `expression_members` (in DynamoDB's order, for its message); values need one that takes
/// values (not a ProjectionExpression). The maps themselves are checked by `Substitutions::new`.
pub(super) type ExpressionMaps<'a> = (Option<&'a Map<String, Value>>, Option<&'a Map<String, Value>>);

pub(super) fn expression_maps<'a>(input: Input<'a>, expression_members: &[&str]) -> ApiResult<ExpressionMaps<'a>> {
    let names = input.object("ExpressionAttributeNames")?;
    let values = input.object("ExpressionAttributeValues")?;
    if names.is_some() && !expression_members.iter().any(|m| input.has(m)) {
        return Err(ApiError::validation("ExpressionAttributeNames can only be specified when using expressions"));
    }
    let with_values: Vec<&str> = expression_members.iter().copied().filter(|m| *m != "ProjectionExpression").collect();
    if values.is_some() && !with_values.iter().any(|m| input.has(m)) {
        let verb = if with_values.len() > 1 { "are" } else { "is" };
        return Err(ApiError::validation(format!(
            "ExpressionAttributeValues can only be specified when using expressions: {} {verb} null",
            with_values.join(" and ")
        )));
    }
    Ok((names, values))
}

/// Decides and applies one write (see the module comment).
fn execute<S: Storage>(cx: &mut Context<'_, S>, mut plan: WritePlan<'_>) -> ApiResult<Value> {
    let wants_old =
        plan.members.return_values != ReturnValues::None || plan.members.capacity != ReturnConsumedCapacity::None;
    let account = &cx.principal.account_id;
    let (old, new) =
        apply(cx.storage, account, &mut plan.table, &plan.key, plan.condition.as_ref(), &plan.change, wants_old)
            .map_err(|mut error| {
                if !plan.members.old_item_on_failure {
                    error.item = None;
                }
                error
            })?;

    let attributes = match plan.members.return_values {
        ReturnValues::None => None,
        ReturnValues::AllOld => old.clone(),
        ReturnValues::AllNew => new.clone(),
        ReturnValues::UpdatedOld | ReturnValues::UpdatedNew => {
            let Change::Update { update, .. } = &plan.change else { unreachable!("only UpdateItem allows UPDATED_*") };
            let image = if plan.members.return_values == ReturnValues::UpdatedOld { &old } else { &new };
            image.as_ref().map(|item| expr::project(item, &expr::updated_paths(update)))
        }
    };
    let mut response = json!({});
    if let Some(attributes) = attributes.filter(|a| !a.is_empty()) {
        response["Attributes"] = item_to_json(&attributes);
    }
    // Without ReturnValues or ReturnConsumedCapacity an unconditional write reads nothing, so it
    // is charged for the item it writes alone.
    let units = crate::capacity::write_units(old.as_ref().map(item_size), new.as_ref().map(item_size));
    cx.report.consumed_write(&plan.table.table_name, units);
    if let Some(consumed) = plan.members.capacity.consumed(&plan.table.table_name, units) {
        response["ConsumedCapacity"] = consumed;
    }
    if plan.members.collection_metrics
        && let Some(metrics) = new.as_ref().or(old.as_ref()).and_then(|item| item_collection_metrics(&plan.table, item))
    {
        response["ItemCollectionMetrics"] = metrics;
    }
    Ok(response)
}

/// The `ItemCollectionMetrics` of a write of `item`. DynamoDB measures item collections of tables
/// with local indexes only: the collection is the item's partition, its size an estimate in GB.
pub(super) fn item_collection_metrics(table: &Table, item: &Item) -> Option<Value> {
    if !table.indexes.iter().any(|index| !index.global) {
        return None;
    }
    let hash = &table.hash_key.name;
    let key: Item = item.get(hash).map(|v| (hash.clone(), v.clone())).into_iter().collect();
    Some(json!({"ItemCollectionKey": item_to_json(&key), "SizeEstimateRangeGB": [0.0, 1.0]}))
}

/// Applies `change` to the item at `key` with its index maintenance in one atomic group, guarded
/// by the version the decision was made on; decided again while another writer intervened, at
/// most [`MAX_DECISIONS`] times. `wants_old`:
/// the caller needs the old item (return values, capacity) even without a condition. The old and
/// the new item; a failed condition's error carries the old item, for the caller to drop unless
/// it was asked for.
pub(super) fn apply(
    storage: &mut impl Storage,
    account: &str,
    table: &mut Table,
    key: &ItemKey,
    condition: Option<&Condition>,
    change: &Change,
    wants_old: bool,
) -> ApiResult<(Option<Item>, Option<Item>)> {
    let keyspace = table.keyspace();
    for _ in 0..MAX_DECISIONS {
        // An unconditional put or delete that returns nothing needs no read (one round trip),
        // unless indexes need the old item's entries removed or a stream its old image.
        let needs_old = condition.is_some()
            || matches!(change, Change::Update { .. })
            || wants_old
            || !table.indexes.is_empty()
            || table.recording_stream().is_some();
        let stored = if needs_old { storage.ask(account, Request::get_for_write(&keyspace, key))? } else { None };
        let old = stored.as_ref().map(stored_item).transpose()?;
        if let Some(condition) = condition
            && !expr::evaluate(condition, old.as_ref())?
        {
            return Err(condition_failed(old));
        }
        let new = new_item(change, old.as_ref())?;
        let expect = if needs_old { Expect::matching(stored.as_ref()) } else { Expect::Anything };
        let writes = item_writes(table, key, old.as_ref(), new.as_ref(), expect, Origin::Request)?;
        match storage.ask(account, Request::write(&writes)) {
            Ok(_) => return Ok((old, new)),
            Err(Failure::GuardFailed(at)) => {
                // The table changed (an index came or went): decide again on its new description.
                if let Some(Write::TableAt { .. }) = writes.get(at as usize) {
                    *table = Table::load(storage, account, &table.table_name)?;
                }
            }
            Err(Failure::Storage(e)) => return Err(e.into()),
        }
    }
    Err(hot_item())
}

/// A write that lost its race to other writers this many times in a row gives up, so no request
/// loops without end under contention.
const MAX_DECISIONS: usize = 64;

/// What an item too hot to win gets: DynamoDB's answer to a hot partition of an on-demand table,
/// which the SDKs retry by themselves, with backoff.
fn hot_item() -> ApiError {
    ApiError::new(
        ErrorKind::Throttling,
        "Throughput exceeds the current capacity of your table or index. DynamoDB is automatically scaling your \
         table or index so please try again shortly. If exceptions persist, check if you have a hot key: \
         https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-partition-key-design.html",
    )
}

/// Every write that leaving `new` at `key` in place of `old` takes, for one atomic group: the item
/// itself (a put with its expiry under the table's time to live, or a delete) guarded by `expect`,
/// its index entries and the guard on the table's version, then its history entry, if the table
/// keeps history (point-in-time recovery), and last its stream record, if the table's stream
/// records one.
pub(super) fn item_writes(
    table: &Table,
    key: &ItemKey,
    old: Option<&Item>,
    new: Option<&Item>,
    expect: Expect,
    origin: Origin,
) -> ApiResult<Vec<Write>> {
    let (keyspace, key_bytes) = (table.keyspace(), key.clone());
    let item = match new {
        Some(item) => {
            let document = serde_json::to_vec(&item_to_json(item)).map_err(|e| ApiError::internal(e.to_string()))?;
            let expires_at = expiry(table, item);
            Write::Put { keyspace, key: key_bytes, document, expect, expires_at }
        }
        None => Write::Delete { keyspace, key: key_bytes, expect },
    };
    let mut writes = vec![item];
    writes.extend(index::maintenance(table, key, old, new)?);
    if table.point_in_time_recovery.is_some() {
        writes.push(Write::AppendHistory { table: table.table_name.clone(), key: key.clone() });
    }
    writes.extend(stream::change_record(table, old, new, origin)?);
    Ok(writes)
}

/// When `item` expires under the table's time to live: its TTL attribute's whole epoch seconds,
/// if the attribute is a Number not more than five years in the past.
pub(super) fn expiry(table: &Table, item: &Item) -> Option<u64> {
    let Some(AttributeValue::N(number)) = item.get(table.time_to_live_attribute.as_deref()?) else { return None };
    let at = number.whole_part()?;
    let oldest = (now_seconds() as u64).saturating_sub(OLDEST_EXPIRY_SECONDS);
    (at >= oldest).then_some(at)
}

/// An item to put must fit DynamoDB's 400 KB.
pub(super) fn check_item_size(item: &Item) -> ApiResult<()> {
    if item_size(item) > MAX_ITEM_BYTES {
        return Err(item_too_large());
    }
    Ok(())
}

/// The item a change produces from the current one.
pub(super) fn new_item(change: &Change, old: Option<&Item>) -> ApiResult<Option<Item>> {
    match change {
        Change::Put(item) => Ok(Some(item.clone())),
        Change::Delete => Ok(None),
        Change::Update { update, key_item, legacy } => {
            let applied = match old {
                Some(old) => {
                    let mut item = old.clone();
                    expr::apply_update(update, &mut item).map(|()| item)
                }
                // Only SET and ADD write attributes: an update of nothing but REMOVE and DELETE
                // actions leaves a missing item missing. One of no action at all creates the item
                // with its key alone, as DynamoDB does (the create-if-absent idiom).
                None if !update.is_empty() && update.set.is_empty() && update.add.is_empty() => return Ok(None),
                // DynamoDB ignores REMOVE actions on an item that does not exist yet.
                None => {
                    let mut item = key_item.clone();
                    let additions = Update { remove: Vec::new(), ..update.clone() };
                    expr::apply_update(&additions, &mut item).map(|()| item)
                }
            };
            let item = applied.map_err(|e| if *legacy { legacy::legacy_update_error(e) } else { e })?;
            if item_size(&item) > MAX_ITEM_BYTES {
                return Err(ApiError::validation("Item size to update has exceeded the maximum allowed size"));
            }
            check_nesting(&item)?;
            Ok(Some(item))
        }
    }
}

fn condition_failed(old: Option<Item>) -> ApiError {
    let mut error = ApiError::new(ErrorKind::ConditionalCheckFailed, "The conditional request failed");
    error.item = old.map(|item| match item_to_json(&item) {
        Value::Object(map) => map,
        _ => Map::new(),
    });
    error
}

pub fn stored_item(stored: &StoredItem) -> ApiResult<Item> {
    item_from_json(&Value::Object(stored_document(stored)?))
}

/// A stored document as response JSON. Parsing it again puts attributes in name order, whatever
/// order the store kept (PostgreSQL's jsonb reorders keys).
pub fn stored_document(stored: &StoredItem) -> ApiResult<Map<String, Value>> {
    match serde_json::from_slice(&stored.document) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(ApiError::internal("stored document is not a JSON object")),
    }
}
