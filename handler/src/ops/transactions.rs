//! TransactWriteItems and TransactGetItems: up to 100 actions across tables, all or nothing.
//!
//! A write transaction is optimistic, like every single-item write: every item it touches is read
//! with its version, every condition decided and every new item computed from exactly those
//! versions, and one atomic group writes the new items (with their index entries) guarded by the
//! versions read, a ConditionCheck by a `Check` guard. A lost race decides the whole transaction
//! again, a bounded number of times, then cancels it as `TransactionConflict`.
//!
//! A `ClientRequestToken` is remembered for 10 minutes with a digest of its request, written in
//! the same atomic group as the transaction, in a table of the account's own that no request can
//! name (`catalog::CLIENT_TOKENS_TABLE`): the same token and request again succeed without
//! writing, the same token with another request is refused.
//!
//! A read transaction's snapshot is optimistic too: the items are read with their versions, then one
//! group of `Check` guards confirms each item is still at the version read (or still absent).
//! Versions never repeat, so an item that passes its check was unchanged from its read to its
//! check; all reads come before all checks, so at the moment between the last read and the first
//! check every item was as read: a transaction that changed two of them cannot have committed
//! halfway through what we return. A failed check reads again, a bounded number of times.

use std::collections::HashSet;

use serde_json::{Map, Value, json};

use super::items::{self, Change, KEY_MISMATCH};
use super::jobs::digest;
use super::{Context, keys};
use crate::capacity::{ReturnConsumedCapacity, read_units, write_units};
use crate::catalog::{CLIENT_TOKENS_TABLE, Table};
use crate::error::{ApiError, ApiResult, ErrorKind};
use crate::expr::{self, Condition, Path};
use crate::index;
use crate::input::{Input, Violations, as_object, java_string};
use crate::model::{Item, item_from_json, item_to_json, size::item_size};
use crate::storage::{Expect, Failure, ItemKey, Keyspace, Request, Storage, StorageError, StoredItem, Write};
use crate::stream::Origin;
use crate::time::now_seconds;

/// Actions in one transaction, at most.
const MAX_ACTIONS: usize = 100;
/// Decisions (or snapshots) tried before a transaction is cancelled as conflicting: each failed
/// one means another writer changed an item between our read and our write (or check).
const ATTEMPTS: usize = 16;
/// A write transaction's items may total 4 MB.
const MAX_TRANSACTION_BYTES: usize = 4 * 1024 * 1024;
const CONFLICT: &str = "Transaction is ongoing for the item";
/// How long a ClientRequestToken is remembered.
const TOKEN_SECONDS: f64 = 600.0;

/// `TransactItems`' own constraints: 1 to 100 actions.
fn transact_items_violations(items: &[Value], violations: &mut Violations) {
    // DynamoDB shows the whole list; rendered only when it breaks a rule.
    let shown = || java_string(&Value::Array(items.to_vec()));
    if items.is_empty() {
        violations.add(Some("[]"), "transactItems", "have length greater than or equal to 1");
    } else if items.len() > MAX_ACTIONS {
        violations.add(Some(&shown()), "transactItems", &format!("have length less than or equal to {MAX_ACTIONS}"));
    }
}

/// One Get of a TransactGetItems, as requested.
struct Get<'a> {
    table_name: &'a str,
    key: &'a Map<String, Value>,
    projection: Option<Vec<Path>>,
}

pub fn transact_get_items<S: Storage>(input: Input<'_>, cx: &mut Context<'_, S>) -> ApiResult<Value> {
    let mut violations = Violations::default();
    let capacity = ReturnConsumedCapacity::gather(input, &mut violations)?;
    let actions = violations.not_null(input.list("TransactItems")?, "transactItems").unwrap_or_default();
    transact_items_violations(actions, &mut violations);
    let mut requested = Vec::new();
    for (i, action) in actions.iter().enumerate() {
        let path = format!("transactItems.{}.member.get", i + 1);
        let Some(get) = violations.not_null(Input::new(as_object(action)?).structure("Get")?, &path) else {
            continue;
        };
        let table_name = get.string("TableName")?;
        violations.table_name(table_name, &format!("{path}.tableName"));
        let key = violations.not_null(get.object("Key")?, &format!("{path}.key"));
        get.string("ProjectionExpression")?;
        requested.push((get, table_name.unwrap_or_default(), key));
    }
    violations.finish()?;

    let mut gets = Vec::with_capacity(requested.len());
    for (get, table_name, key) in requested {
        let projection = items::projection(get)?;
        gets.push(Get { table_name, key: key.expect("checked"), projection });
    }
    let account = &cx.principal.account_id;
    let mut tables = Vec::with_capacity(gets.len());
    for get in &gets {
        tables.push(Table::load(cx.storage, account, get.table_name)?);
    }
    // A key that does not fit its table cancels the transaction, reported per action.
    let keys: Vec<ApiResult<ItemKey>> = gets
        .iter()
        .zip(&tables)
        .map(|(get, table)| {
            let key_item = item_from_json(&Value::Object(get.key.clone()))?;
            keys::of_request(table, &key_item, KEY_MISMATCH)
        })
        .collect();
    if keys.iter().any(Result::is_err) {
        let reasons = keys.iter().map(|key| match key {
            Ok(_) => json!({"Code": "None"}),
            Err(e) => json!({"Code": "ValidationError", "Message": e.message}),
        });
        return Err(ApiError::transaction_canceled(reasons.collect()));
    }
    let keys: Vec<ItemKey> = keys.into_iter().map(|key| key.expect("checked")).collect();
    check_distinct(tables.iter().map(|table| table.table_name.as_str()).zip(&keys))?;

    let found = snapshot(cx.storage, account, &tables, &keys)?;
    let mut responses = Vec::with_capacity(found.len());
    let mut units: Vec<(&str, f64)> = Vec::new();
    for ((get, table), stored) in gets.iter().zip(&tables).zip(found) {
        let item = stored.as_ref().map(items::stored_item).transpose()?;
        // A transactional read costs twice a consistent one.
        add_units(&mut units, &table.table_name, 2.0 * read_units(item.as_ref().map(item_size), true));
        responses.push(match (item, &get.projection) {
            (None, _) => json!({}),
            (Some(item), None) => json!({"Item": item_to_json(&item)}),
            (Some(item), Some(paths)) => json!({"Item": item_to_json(&expr::project(&item, paths))}),
        });
    }
    for (name, units) in &units {
        cx.report.consumed_read(name, *units);
    }
    let mut response = json!({"Responses": responses});
    if capacity != ReturnConsumedCapacity::None {
        let consumed = units.into_iter().filter_map(|(name, units)| capacity.consumed(name, units));
        response["ConsumedCapacity"] = Value::Array(consumed.collect());
    }
    Ok(response)
}

/// The stored items at `keys`, as they all were at one moment (see the module comment).
fn snapshot(
    storage: &mut impl Storage,
    account: &str,
    tables: &[Table],
    keys: &[ItemKey],
) -> ApiResult<Vec<Option<StoredItem>>> {
    for _ in 0..ATTEMPTS {
        let mut found = Vec::with_capacity(keys.len());
        for (table, key) in tables.iter().zip(keys) {
            found.push(storage.ask(account, Request::get(&table.keyspace(), key))?);
        }
        if found.len() == 1 {
            return Ok(found);
        }
        let mut checks: Vec<Write> = tables
            .iter()
            .zip(keys)
            .zip(&found)
            .map(|((table, key), stored)| Write::Check {
                keyspace: table.keyspace(),
                key: key.clone(),
                expect: Expect::matching(stored.as_ref()),
            })
            .collect();
        // In one global order, as writers lock (see `write_all`).
        checks.sort_by(|a, b| write_target(a).cmp(&write_target(b)));
        match storage.ask(account, Request::write(&checks)) {
            Ok(_) => return Ok(found),
            Err(Failure::GuardFailed(_)) => {}
            Err(Failure::Storage(e)) => return Err(e.into()),
        }
    }
    Err(conflict(keys.len()))
}

/// The (keyspace, key) a check guards, for ordering.
fn write_target(write: &Write) -> Option<(&Keyspace, &ItemKey)> {
    match write {
        Write::Check { keyspace, key, .. } => Some((keyspace, key)),
        _ => None,
    }
}

/// The table whose history or change log a write appends to.
fn appended_table(write: &Write) -> Option<&str> {
    match write {
        Write::AppendChange { table, .. } | Write::AppendHistory { table, .. } => Some(table),
        _ => None,
    }
}

fn conflict(actions: usize) -> ApiError {
    ApiError::transaction_canceled(vec![json!({"Code": "TransactionConflict", "Message": CONFLICT}); actions])
}

/// Adds `cost` to the units of `table`, tables in first-seen order (one ConsumedCapacity entry
/// each).
fn add_units<'a>(units: &mut Vec<(&'a str, f64)>, table: &'a str, cost: f64) {
    match units.iter_mut().find(|(name, _)| *name == table) {
        Some((_, total)) => *total += cost,
        None => units.push((table, cost)),
    }
}

/// Refuses two actions on one item.
fn check_distinct<'a>(targets: impl Iterator<Item = (&'a str, &'a ItemKey)>) -> ApiResult<()> {
    let mut seen = HashSet::new();
    for target in targets {
        if !seen.insert(target) {
            return Err(ApiError::validation("Transaction request cannot include multiple operations on one item"));
        }
    }
    Ok(())
}

/// One action of a TransactWriteItems, validated.
struct Action {
    table: Table,
    key: ItemKey,
    condition: Option<Condition>,
    /// `None` for a ConditionCheck.
    change: Option<Change>,
    /// ReturnValuesOnConditionCheckFailure is ALL_OLD.
    old_item_on_failure: bool,
}

const ACTION_KINDS: [&str; 4] = ["ConditionCheck", "Put", "Delete", "Update"];

pub fn transact_write_items<S: Storage>(input: Input<'_>, cx: &mut Context<'_, S>) -> ApiResult<Value> {
    let mut violations = Violations::default();
    let capacity = ReturnConsumedCapacity::gather(input, &mut violations)?;
    let metrics = input.string("ReturnItemCollectionMetrics")?;
    violations.one_of(metrics, "returnItemCollectionMetrics", &["SIZE", "NONE"]);
    let token = input.string("ClientRequestToken")?;
    if let Some(token) = token {
        violations.length(token, "clientRequestToken", 1, 36);
    }
    let actions = violations.not_null(input.list("TransactItems")?, "transactItems").unwrap_or_default();
    transact_items_violations(actions, &mut violations);
    let mut requested = Vec::new();
    for (i, action) in actions.iter().enumerate() {
        let action = Input::new(as_object(action)?);
        let kinds: Vec<&str> = ACTION_KINDS.iter().copied().filter(|kind| action.has(kind)).collect();
        let [kind] = kinds[..] else {
            return Err(ApiError::validation("TransactItems can only contain one of Check, Put, Update or Delete"));
        };
        let path = format!("transactItems.{}.member.{}", i + 1, lower_first(kind));
        let members = action.structure(kind)?.expect("present");
        let table_name = members.string("TableName")?;
        violations.table_name(table_name, &format!("{path}.tableName"));
        let on_failure = members.string("ReturnValuesOnConditionCheckFailure")?;
        violations.one_of(on_failure, &format!("{path}.returnValuesOnConditionCheckFailure"), &["ALL_OLD", "NONE"]);
        let target = if kind == "Put" { "Item" } else { "Key" };
        violations.not_null(members.object(target)?, &format!("{path}.{}", target.to_lowercase()));
        let required = match kind {
            "Update" => Some(("UpdateExpression", "updateExpression")),
            "ConditionCheck" => Some(("ConditionExpression", "conditionExpression")),
            _ => None,
        };
        if let Some((member, name)) = required {
            violations.not_null(members.string(member)?, &format!("{path}.{name}"));
        }
        requested.push((kind, members, table_name.unwrap_or_default(), on_failure == Some("ALL_OLD")));
    }
    violations.finish()?;

    let account = &cx.principal.account_id;
    let mut parsed = Vec::with_capacity(requested.len());
    for (kind, members, table_name, old_item_on_failure) in requested {
        let (condition, update) = items::write_expressions(members, kind == "Update")?;
        parsed.push((kind, members, table_name, old_item_on_failure, condition, update));
    }
    let mut plan = Vec::with_capacity(parsed.len());
    let mut bytes = 0;
    for (kind, members, table_name, old_item_on_failure, condition, update) in parsed {
        let table = Table::load(cx.storage, account, table_name)?;
        let target = members.object(if kind == "Put" { "Item" } else { "Key" })?.expect("checked");
        let target = item_from_json(&Value::Object(target.clone()))?;
        let (key, change) = match kind {
            "Put" => {
                let key = keys::of_item(&table, &target)?;
                index::check_item(&table, &target, &key)?;
                items::check_item_size(&target)?;
                bytes += item_size(&target);
                (key, Some(Change::Put(target)))
            }
            "Update" => {
                let key = keys::of_request(&table, &target, KEY_MISMATCH)?;
                let update = update.unwrap_or_default();
                items::check_key_not_updated(&table, &update)?;
                (key, Some(Change::Update { update, key_item: target, legacy: false }))
            }
            "Delete" => (keys::of_request(&table, &target, KEY_MISMATCH)?, Some(Change::Delete)),
            _ => (keys::of_request(&table, &target, KEY_MISMATCH)?, None),
        };
        plan.push(Action { table, key, condition, change, old_item_on_failure });
    }
    check_distinct(plan.iter().map(|action| (action.table.table_name.as_str(), &action.key)))?;
    if bytes > MAX_TRANSACTION_BYTES {
        return Err(ApiError::validation("Transaction request size exceeds the maximum of 4 MB"));
    }

    let token = token.map(|token| Token::new(token, input));
    let Some(images) = write_all(cx.storage, account, &mut plan, token.as_ref())? else {
        // The same request with the same token, within its lifetime: done before.
        return Ok(json!({}));
    };
    let mut units: Vec<(&str, f64)> = Vec::new();
    for (action, (old, new)) in plan.iter().zip(&images) {
        // A transactional write costs twice an ordinary one.
        let cost = 2.0 * write_units(old.as_ref().map(item_size), new.as_ref().map(item_size));
        add_units(&mut units, &action.table.table_name, cost);
    }
    for (name, units) in &units {
        cx.report.consumed_write(name, *units);
    }
    let mut response = json!({});
    if capacity != ReturnConsumedCapacity::None {
        let consumed = units.into_iter().filter_map(|(name, units)| capacity.consumed(name, units));
        response["ConsumedCapacity"] = Value::Array(consumed.collect());
    }
    if metrics == Some("SIZE") {
        let mut collections = Map::new();
        for (action, (old, new)) in plan.iter().zip(&images) {
            let written = action.change.is_some();
            if let Some(metrics) = new
                .as_ref()
                .or(old.as_ref())
                .filter(|_| written)
                .and_then(|item| items::item_collection_metrics(&action.table, item))
            {
                let entry = collections.entry(action.table.table_name.clone()).or_insert_with(|| json!([]));
                entry.as_array_mut().expect("a list").push(metrics);
            }
        }
        response["ItemCollectionMetrics"] = Value::Object(collections);
    }
    Ok(response)
}

/// `ConditionCheck` → `conditionCheck`: member names in DynamoDB's validation paths.
fn lower_first(name: &str) -> String {
    let mut chars = name.chars();
    chars.next().map(|c| c.to_ascii_lowercase().to_string() + chars.as_str()).unwrap_or_default()
}

/// Each action's old and new item.
type Images = Vec<(Option<Item>, Option<Item>)>;

/// A ClientRequestToken, and the digest of the request it came with (its members as parsed, the
/// token aside, so the same request sent again matches whatever its formatting).
struct Token {
    key: ItemKey,
    digest: String,
}

impl Token {
    fn new(token: &str, input: Input<'_>) -> Token {
        let digest = digest(input, "ClientRequestToken");
        Token { key: ItemKey { partition: token.as_bytes().to_vec(), sort: Vec::new() }, digest }
    }

    /// What the store remembers of the token: `None` when nothing (or only an expired record).
    fn remembered(&self, storage: &mut impl Storage, account: &str) -> ApiResult<Option<StoredItem>> {
        let keyspace = Keyspace::table(CLIENT_TOKENS_TABLE);
        match storage.ask(account, Request::get(&keyspace, &self.key)) {
            Ok(stored) => Ok(stored),
            // The account's first token: its table comes now.
            Err(StorageError::NoSuchKeyspace) => {
                storage.ask(account, Request::create_table(CLIENT_TOKENS_TABLE, b"{}", &[]))?;
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Whether this request was applied already under the token; an error when another request
    /// was. `false`: the token is free (or expired), and the request runs and takes it.
    fn applied(&self, stored: Option<&StoredItem>, now: f64) -> ApiResult<bool> {
        let record: Option<Value> = stored.and_then(|stored| serde_json::from_slice(&stored.document).ok());
        match record {
            Some(record) if record["at"].as_f64().is_some_and(|at| now - at < TOKEN_SECONDS) => {
                if record["digest"] == self.digest.as_str() {
                    Ok(true)
                } else {
                    Err(ApiError::new(
                        ErrorKind::IdempotentParameterMismatch,
                        "Specified ClientRequestToken was used with a different request within the last 10 minutes",
                    ))
                }
            }
            _ => Ok(false),
        }
    }

    /// The write that remembers the token, guarded by what was read of it.
    fn write(&self, stored: Option<&StoredItem>, now: f64) -> Write {
        Write::Put {
            keyspace: Keyspace::table(CLIENT_TOKENS_TABLE),
            key: self.key.clone(),
            document: json!({"digest": self.digest, "at": now}).to_string().into_bytes(),
            expect: Expect::matching(stored),
            expires_at: Some((now + TOKEN_SECONDS) as u64),
        }
    }
}

/// Decides and writes every action (see the module comment); each action's old and new item, or
/// `None` when the token says the same request was applied before.
fn write_all(
    storage: &mut impl Storage,
    account: &str,
    plan: &mut [Action],
    token: Option<&Token>,
) -> ApiResult<Option<Images>> {
    for _ in 0..ATTEMPTS {
        let now = now_seconds();
        let remembered = match token {
            Some(token) => {
                let stored = token.remembered(storage, account)?;
                if token.applied(stored.as_ref(), now)? {
                    return Ok(None);
                }
                Some((token, stored))
            }
            None => None,
        };
        let mut stored = Vec::with_capacity(plan.len());
        for action in plan.iter() {
            stored.push(storage.ask(account, Request::get(&action.table.keyspace(), &action.key))?);
        }
        let olds: Vec<Option<Item>> =
            stored.iter().map(|s| s.as_ref().map(items::stored_item).transpose()).collect::<ApiResult<_>>()?;
        let mut reasons = Vec::with_capacity(plan.len());
        for (action, old) in plan.iter().zip(&olds) {
            let held = match &action.condition {
                Some(condition) => expr::evaluate(condition, old.as_ref())?,
                None => true,
            };
            reasons.push(match (held, old) {
                (true, _) => json!({"Code": "None"}),
                (false, Some(old)) if action.old_item_on_failure => json!({
                    "Code": "ConditionalCheckFailed", "Message": "The conditional request failed", "Item": item_to_json(old),
                }),
                (false, _) => json!({"Code": "ConditionalCheckFailed", "Message": "The conditional request failed"}),
            });
        }
        if reasons.iter().any(|r| r["Code"] != "None") {
            return Err(ApiError::transaction_canceled(reasons));
        }
        // Every action's new item, decided on the item as read (a check leaves it as it is).
        let images: Images = plan
            .iter()
            .zip(olds)
            .map(|(action, old)| {
                let new = match &action.change {
                    Some(change) => items::new_item(change, old.as_ref())?,
                    None => old.clone(),
                };
                Ok((old, new))
            })
            .collect::<ApiResult<_>>()?;
        // Items are written (and checked) in one global order, (table, key), whatever the order
        // of the actions: PostgreSQL locks each row as the group reaches it, and two groups that
        // lock in opposite orders would deadlock. An item's index entries are its own.
        let mut order: Vec<usize> = (0..plan.len()).collect();
        order.sort_by_key(|&i| (&plan[i].table.table_name, &plan[i].key));
        let (mut writes, mut records) = (Vec::new(), Vec::new());
        for i in order {
            let (action, (old, new)) = (&plan[i], &images[i]);
            let (keyspace, key, expect) =
                (action.table.keyspace(), action.key.clone(), Expect::matching(stored[i].as_ref()));
            if action.change.is_none() {
                writes.push(Write::Check { keyspace, key, expect });
                continue;
            }
            let (changes, item): (Vec<_>, Vec<_>) =
                items::item_writes(&action.table, &action.key, old.as_ref(), new.as_ref(), expect, Origin::Request)?
                    .into_iter()
                    .partition(|write| appended_table(write).is_some());
            writes.extend(item);
            records.extend(changes);
        }
        // History entries and stream records go last, in table order: appending locks the table's
        // row until the group commits (PostgreSQL), so every group takes item rows before tables'.
        // The sort is stable: an item's history entry stays after its write.
        records.sort_by(|a, b| appended_table(a).cmp(&appended_table(b)));
        writes.append(&mut records);
        if let Some((token, stored)) = &remembered {
            writes.push(token.write(stored.as_ref(), now));
        }
        match storage.ask(account, Request::write(&writes)) {
            Ok(_) => return Ok(Some(images)),
            Err(Failure::GuardFailed(at)) => {
                // A table changed (an index came or went): decide again on its new description.
                if let Some(Write::TableAt { table, .. }) = writes.get(at as usize) {
                    let reloaded = Table::load(storage, account, table)?;
                    for action in plan.iter_mut().filter(|action| &action.table.table_name == table) {
                        action.table = reloaded.clone();
                    }
                }
            }
            Err(Failure::Storage(e)) => return Err(e.into()),
        }
    }
    Err(conflict(plan.len()))
}
