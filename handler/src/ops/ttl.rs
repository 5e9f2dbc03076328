//! Time to live: UpdateTimeToLive and DescribeTimeToLive, and the sweep that deletes expired
//! items. The setting lives in the table's catalog record, changed under the same version guard
//! as UpdateTable's changes.
//!
//! Every put stores the item's expiry (its TTL attribute, a Number of epoch seconds, as
//! `items::expiry` reads it) beside it, on an index of the store, so the host's sweep finds
//! expired items without a scan ([`expire_step`], run in the sandbox like any request). Items
//! written before time to live was enabled have no stored expiry: the sweep first visits them
//! once, in key order.

use serde_json::{Value, json};

use super::items::{expiry, item_writes, stored_item};
use super::tables::{not_found_named, save_record};
use super::{Context, table_name};
use crate::catalog::{ExpiryBackfill, Table};
use crate::error::{ApiError, ApiResult, ErrorKind};
use crate::input::{Input, Violations};
use crate::report::Step;
use crate::storage::{Expect, Failure, ItemKey, Request, ScanRequest, Storage, StorageError, StoredItem, Write};
use crate::stream::Origin;

const MAX_ATTRIBUTE_NAME_CHARS: usize = 255;

pub fn update_time_to_live<S: Storage>(input: Input<'_>, cx: &mut Context<'_, S>) -> ApiResult<Value> {
    let name = input.string("TableName")?;
    let specification = input.structure("TimeToLiveSpecification")?;
    let enabled = specification.map(|s| s.boolean("Enabled")).transpose()?.flatten();
    let attribute = specification.map(|s| s.string("AttributeName")).transpose()?.flatten();
    let mut violations = Violations::default();
    violations.table_name(name, "tableName");
    if violations.not_null(specification, "timeToLiveSpecification").is_some() {
        violations.not_null(enabled, "timeToLiveSpecification.enabled");
        let path = "timeToLiveSpecification.attributeName";
        if let Some(attribute) = violations.not_null(attribute, path) {
            violations.length(attribute, path, 1, MAX_ATTRIBUTE_NAME_CHARS);
        }
    }
    violations.finish()?;
    let (name, enabled, attribute) = (name.expect("checked"), enabled.expect("checked"), attribute.expect("checked"));
    let account = &cx.principal.account_id;
    loop {
        let mut table = Table::load(cx.storage, account, name).map_err(|e| not_found_named(e, name))?;
        table.time_to_live_attribute = match (&table.time_to_live_attribute, enabled) {
            (Some(_), true) => return Err(ApiError::validation("TimeToLive is already enabled")),
            (None, false) => return Err(ApiError::validation("TimeToLive is already disabled")),
            (Some(current), false) if current != attribute => {
                return Err(ApiError::validation(format!(
                    "TimeToLive is active on a different AttributeName: current AttributeName is {current}"
                )));
            }
            (_, true) => Some(attribute.to_string()),
            (_, false) => None,
        };
        // Items already there were stored without an expiry under this attribute.
        table.time_to_live_backfill = enabled.then(ExpiryBackfill::default);
        if save_record(cx.storage, account, &table)? {
            return Ok(json!({"TimeToLiveSpecification": {"Enabled": enabled, "AttributeName": attribute}}));
        }
    }
}

pub fn describe_time_to_live<S: Storage>(input: Input<'_>, cx: &mut Context<'_, S>) -> ApiResult<Value> {
    let name = table_name(input, true)?;
    let table = Table::load(cx.storage, &cx.principal.account_id, name).map_err(|e| not_found_named(e, name))?;
    Ok(json!({"TimeToLiveDescription": match &table.time_to_live_attribute {
        Some(attribute) => json!({"TimeToLiveStatus": "ENABLED", "AttributeName": attribute}),
        None => json!({"TimeToLiveStatus": "DISABLED"}),
    }}))
}

/// One step of the expiry sweep of a table (the host's worker calls it through the component's
/// `expire` export): deletes at most `budget` items whose time to live ended at or before `now`,
/// each through the same writes as DeleteItem (index entries, a stream record marked as the
/// service's), guarded by the version read, so an item changed meanwhile is decided again on the
/// next sweep. While the table has a backfill, the step visits the next `budget` items instead.
///
/// `done`: nothing is left for now; otherwise call again. `count`: the items it deleted.
pub fn expire_step(storage: &mut impl Storage, account: &str, name: &str, now: u64, budget: u32) -> ApiResult<Step> {
    let table = match Table::load(storage, account, name) {
        Err(e) if e.kind == ErrorKind::ResourceNotFound => return Ok(Step::DONE),
        table => table?,
    };
    if table.time_to_live_attribute.is_none() {
        return Ok(Step::DONE);
    }
    let budget = budget.max(1);
    if let Some(backfill) = &table.time_to_live_backfill {
        return visit_unswept(storage, account, &table, backfill, now, budget);
    }
    let keys = match storage.ask(account, Request::expired(&table.keyspace(), now, budget)) {
        Err(StorageError::NoSuchKeyspace) => return Ok(Step::DONE),
        keys => keys?,
    };
    let mut deleted = 0;
    for key in &keys {
        match storage.ask(account, Request::get(&table.keyspace(), key)) {
            Ok(Some(stored)) => deleted += u32::from(settle(storage, account, &table, &stored, now, true)?),
            Ok(None) | Err(StorageError::NoSuchKeyspace) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Step { done: keys.len() < budget as usize, count: deleted })
}

/// Visits the next items of a backfill, then saves how far it got (or ends it) on the table's
/// record, unless another step moved it on meanwhile.
fn visit_unswept(
    storage: &mut impl Storage,
    account: &str,
    table: &Table,
    backfill: &ExpiryBackfill,
    now: u64,
    budget: u32,
) -> ApiResult<Step> {
    let request = ScanRequest {
        keyspace: table.keyspace(),
        segment: 0,
        total_segments: 1,
        after: backfill.after.clone().map(|(partition, sort)| ItemKey { partition, sort }),
        limit: budget,
        byte_budget: u32::MAX,
    };
    let page = match storage.ask(account, Request::scan(&request)) {
        Err(StorageError::NoSuchKeyspace) => return Ok(Step::DONE),
        page => page?,
    };
    let mut deleted = 0;
    for stored in &page.items {
        deleted += u32::from(settle(storage, account, table, stored, now, false)?);
    }
    let reached = page.items.last().map(|item| (item.key.partition.clone(), item.key.sort.clone()));
    loop {
        let mut current = match Table::load(storage, account, &table.table_name) {
            Err(e) if e.kind == ErrorKind::ResourceNotFound => return Ok(Step { done: true, count: deleted }),
            current => current?,
        };
        if current.time_to_live_backfill.as_ref() != Some(backfill) {
            return Ok(Step { done: false, count: deleted });
        }
        current.time_to_live_backfill = page.more.then(|| ExpiryBackfill { after: reached.clone() });
        match save_record(storage, account, &current) {
            Ok(true) => return Ok(Step { done: false, count: deleted }),
            Ok(false) => continue,
            Err(e) if e.kind == ErrorKind::ResourceNotFound => return Ok(Step { done: true, count: deleted }),
            Err(e) => return Err(e),
        }
    }
}

/// Deletes a stored item if it has expired; otherwise stores its expiry as the table's time to
/// live now sees it (one written before time to live was enabled, or under another attribute).
/// `has_stored_expiry`: the store's expiry index named the item, so even no expiry is news.
/// True when it deleted the item.
fn settle(
    storage: &mut impl Storage,
    account: &str,
    table: &Table,
    stored: &StoredItem,
    now: u64,
    has_stored_expiry: bool,
) -> ApiResult<bool> {
    let item = stored_item(stored)?;
    let expiry = expiry(table, &item);
    if expiry.is_none() && !has_stored_expiry {
        return Ok(false);
    }
    let deletes = expiry.is_some_and(|at| at <= now);
    let expect = Expect::Version(stored.version);
    let writes = match expiry {
        Some(at) if at <= now => item_writes(table, &stored.key, Some(&item), None, expect, Origin::TimeToLive)?,
        expires_at => vec![
            Write::Put {
                keyspace: table.keyspace(),
                key: stored.key.clone(),
                document: stored.document.clone(),
                expect,
                expires_at,
            },
            Write::TableAt { table: table.table_name.clone(), version: table.version },
        ],
    };
    match storage.ask(account, Request::write(&writes)) {
        Ok(_) => Ok(deletes),
        // A guard that failed: the item (or the table) changed, and its writer stored the expiry.
        Err(Failure::GuardFailed(_)) | Err(Failure::Storage(StorageError::NoSuchKeyspace)) => Ok(false),
        Err(Failure::Storage(e)) => Err(e.into()),
    }
}
