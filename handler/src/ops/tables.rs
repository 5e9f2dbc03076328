//! CreateTable, DescribeTable, UpdateTable, ListTables, DeleteTable.

use serde_json::{Value, json};

use super::{Context, reject_unsupported, table_name};
use crate::catalog::{
    IndexRequest, IndexStatus, KeyAttribute, Pairs, Placement, Specification, Stats, TABLE_CLASSES, Table, Throughput,
    ThroughputRequest, check_defined, check_definitions, check_global_count, check_throughput, index_name_violations,
    read_pairs, read_throughput, table_from_create_request,
};
use crate::error::{ApiError, ApiResult, ErrorKind};
use crate::input::{Input, Violations, as_object};
use crate::storage::{HistoryChange, Request, Storage, TableChange};

/// How many items UpdateTable backfills itself into an index it creates on a table it found
/// empty: items written meanwhile are few, and then the index is ACTIVE at once.
const INLINE_BACKFILL: u32 = 100;

pub fn create_table<S: Storage>(input: Input<'_>, cx: &mut Context<'_, S>) -> ApiResult<Value> {
    let placement = Placement {
        region: cx.region,
        account_id: &cx.principal.account_id,
        table_id: crate::random::uuid(),
        now: crate::time::now_seconds(),
    };
    let table = table_from_create_request(input, placement)?;
    let record = serde_json::to_vec(&table).map_err(|e| ApiError::internal(e.to_string()))?;
    let account = &cx.principal.account_id;
    let indexes: Vec<String> = table.indexes.iter().map(|i| i.index_name.clone()).collect();
    if !cx.storage.ask(account, Request::create_table(&table.table_name, &record, &indexes))? {
        return Err(ApiError::new(ErrorKind::ResourceInUse, format!("Table already exists: {}", table.table_name)));
    }
    Ok(json!({"TableDescription": table.description(&Stats::empty(&table))}))
}

pub fn describe_table<S: Storage>(input: Input<'_>, cx: &mut Context<'_, S>) -> ApiResult<Value> {
    let name = table_name(input, true)?;
    let account = &cx.principal.account_id;
    let table = Table::load(cx.storage, account, name).map_err(|e| not_found_named(e, name))?;
    let stats = Stats::load(cx.storage, account, &table).map_err(|e| not_found_named(e, name))?;
    Ok(json!({"Table": table.description(&stats)}))
}

/// One entry of UpdateTable's GlobalSecondaryIndexUpdates: it should hold exactly one action.
struct GsiUpdate {
    create: Option<IndexRequest>,
    /// IndexName and ProvisionedThroughput.
    update: Option<(Option<String>, ThroughputRequest)>,
    /// IndexName.
    delete: Option<Option<String>>,
}

impl GsiUpdate {
    fn read(element: &Value) -> ApiResult<GsiUpdate> {
        let entry = Input::new(as_object(element)?);
        let update = match entry.structure("Update")? {
            Some(u) => Some((u.string("IndexName")?.map(str::to_string), read_throughput(u)?)),
            None => None,
        };
        let delete = match entry.structure("Delete")? {
            Some(d) => Some(d.string("IndexName")?.map(str::to_string)),
            None => None,
        };
        Ok(GsiUpdate {
            create: entry.structure("Create")?.map(|create| IndexRequest::read(create, true)).transpose()?,
            update,
            delete,
        })
    }

    fn check(&self, v: &mut Violations, path: &str) {
        if let Some(create) = &self.create {
            create.check(v, &format!("{path}.create"));
        }
        if let Some((name, throughput)) = &self.update {
            index_name_violations(v, name.as_deref(), &format!("{path}.update.indexName"));
            let throughput_path = format!("{path}.update.provisionedThroughput");
            if v.not_null(throughput.as_ref(), &throughput_path).is_some() {
                check_throughput(v, *throughput, &throughput_path);
            }
        }
        if let Some(name) = &self.delete {
            index_name_violations(v, name.as_deref(), &format!("{path}.delete.indexName"));
        }
    }

    fn name(&self) -> &str {
        let update = self.update.as_ref().and_then(|(name, _)| name.as_deref());
        let named =
            self.create.as_ref().map(IndexRequest::name).or(update).or(self.delete.as_ref().and_then(|d| d.as_deref()));
        named.unwrap_or_default()
    }

    /// Creates and deletes are online index actions; updates only change throughput.
    fn online(&self) -> bool {
        self.create.is_some() || self.delete.is_some()
    }
}

/// An UpdateTable request, validated as far as it can be without the table.
struct TableUpdate<'a> {
    definitions: Option<Pairs>,
    billing_mode: Option<String>,
    throughput: ThroughputRequest,
    index_updates: Vec<GsiUpdate>,
    deletion_protection: Option<bool>,
    table_class: Option<String>,
    stream: Option<Specification<'a>>,
}

fn online_index_limit() -> ApiError {
    ApiError::new(
        ErrorKind::LimitExceeded,
        "Subscriber limit exceeded: Only 1 online index can be created or deleted simultaneously per table",
    )
}

fn index_not_found(name: &str) -> ApiError {
    ApiError::resource_not_found(format!("Requested resource not found: Index: {name} not found"))
}

impl<'a> TableUpdate<'a> {
    fn read(input: Input<'a>) -> ApiResult<TableUpdate<'a>> {
        let name = input.string("TableName")?;
        let definitions = read_pairs(input, "AttributeDefinitions", "AttributeType")?;
        let billing_mode = input.string("BillingMode")?;
        let throughput = read_throughput(input)?;
        let index_updates = match input.list("GlobalSecondaryIndexUpdates")? {
            Some(list) => Some(list.iter().map(GsiUpdate::read).collect::<ApiResult<Vec<_>>>()?),
            None => None,
        };
        let deletion_protection = input.boolean("DeletionProtectionEnabled")?;
        let table_class = input.string("TableClass")?;
        let stream = Specification::read(input)?;

        let mut violations = Violations::default();
        violations.table_name(name, "tableName");
        if let Some(definitions) = &definitions {
            check_definitions(&mut violations, Some(definitions), "attributeDefinitions");
        }
        violations.one_of(billing_mode, "billingMode", &["PROVISIONED", "PAY_PER_REQUEST"]);
        check_throughput(&mut violations, throughput, "provisionedThroughput");
        violations.one_of(table_class, "tableClass", TABLE_CLASSES);
        if let Some(stream) = &stream {
            stream.check(&mut violations);
        }
        for (i, update) in index_updates.iter().flatten().enumerate() {
            update.check(&mut violations, &format!("globalSecondaryIndexUpdates.{}.member", i + 1));
        }
        violations.finish()?;

        let has_index_updates = index_updates.as_ref().is_some_and(|u| !u.is_empty());
        if billing_mode.is_none()
            && throughput.is_none()
            && !has_index_updates
            && deletion_protection.is_none()
            && table_class.is_none()
            && stream.is_none()
        {
            return Err(ApiError::validation(
                "At least one of ProvisionedThroughput, BillingMode, UpdateStreamEnabled, GlobalSecondaryIndexUpdates, \
                 SSESpecification, ReplicaUpdates, MultiAccountReplicaReady, ReplicaTransitRoleArn, MultiRegionConsistency, \
                 DeletionProtectionEnabled, OnDemandThroughput, WarmThroughput or TableClass is required",
            ));
        }
        // An empty list counts as none above, but with another change it is refused.
        if !has_index_updates && index_updates.is_some() {
            return Err(ApiError::invalid_parameter("List of GlobalSecondaryIndexUpdates is empty"));
        }
        let index_updates = index_updates.unwrap_or_default();
        for (i, update) in index_updates.iter().enumerate() {
            let actions = [update.create.is_some(), update.update.is_some(), update.delete.is_some()];
            match actions.iter().filter(|a| **a).count() {
                0 => {
                    return Err(ApiError::invalid_parameter(
                        "One of GlobalSecondaryIndexUpdate.Update, GlobalSecondaryIndexUpdate.Create, \
                         GlobalSecondaryIndexUpdate.Delete must not be null",
                    ));
                }
                1 => {}
                _ => {
                    return Err(ApiError::invalid_parameter(
                        "Only one global secondary index action is allowed per GlobalSecondaryIndexUpdate object",
                    ));
                }
            }
            if index_updates[..i].iter().any(|earlier| earlier.name() == update.name()) {
                return Err(ApiError::invalid_parameter(format!(
                    "Only one global secondary index update per index is allowed simultaneously. Index: {}",
                    update.name()
                )));
            }
        }
        let online = index_updates.iter().filter(|u| u.online()).count();
        if online > 1 {
            return Err(online_index_limit());
        }
        if online > 0 && throughput.is_some() {
            return Err(ApiError::validation("You cannot create or delete index while updating table IOPS"));
        }
        if deletion_protection.is_some() && (billing_mode.is_some() || throughput.is_some() || has_index_updates) {
            return Err(ApiError::validation(
                "DeletionProtection modification must be the only operation in the request",
            ));
        }
        if let Some(create) = index_updates.iter().find_map(|u| u.create.as_ref())
            && definitions.is_none()
        {
            return Err(ApiError::invalid_parameter(format!(
                "AttributeDefinitions is not specified for index: {}",
                create.name()
            )));
        }
        Ok(TableUpdate {
            definitions,
            billing_mode: billing_mode.map(str::to_string),
            throughput,
            index_updates,
            deletion_protection,
            table_class: table_class.map(str::to_string),
            stream,
        })
    }

    /// The table after the update; the indexes created and dropped.
    fn apply(&self, table: &Table) -> ApiResult<(Table, Vec<String>, Vec<String>)> {
        let mut new = table.clone();
        let provisioned = match self.billing_mode.as_deref() {
            Some(mode) => mode == "PROVISIONED",
            None => table.provisioned.is_some(),
        };
        match (provisioned, self.throughput) {
            (false, Some(_)) => {
                return Err(ApiError::invalid_parameter(
                    "Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST",
                ));
            }
            (false, None) => {
                new.provisioned = None;
                new.indexes.iter_mut().for_each(|index| index.provisioned = None);
            }
            (true, None) if table.provisioned.is_none() => {
                return Err(ApiError::invalid_parameter(
                    "ProvisionedThroughput must be specified when BillingMode is PROVISIONED",
                ));
            }
            (true, None) => {}
            (true, Some(requested)) => {
                let requested = throughput(requested);
                if let Some(current) = &table.provisioned
                    && *current == requested
                {
                    let (read, write) = (current.read_capacity_units, current.write_capacity_units);
                    return Err(ApiError::validation(format!(
                        "The provisioned throughput for the table will not change. The requested value equals the current value. \
                         Current ReadCapacityUnits provisioned for the table: {read}. Requested ReadCapacityUnits: {read}. \
                         Current WriteCapacityUnits provisioned for the table: {write}. Requested WriteCapacityUnits: {write}. \
                         Refer to the Amazon DynamoDB Developer Guide for current limits and how to request higher limits."
                    )));
                }
                new.provisioned = Some(requested);
            }
        }
        let (mut created, mut dropped) = (Vec::new(), Vec::new());
        for update in &self.index_updates {
            let name = update.name();
            // An index being created blocks other online index actions, not its own deletion.
            let building = table.indexes.iter().any(|i| i.status == IndexStatus::Creating && i.index_name != name);
            if update.online() && building {
                return Err(online_index_limit());
            }
            if let Some((_, requested)) = &update.update {
                let index = new.indexes.iter_mut().find(|i| i.global && i.index_name == name);
                let index = index.ok_or_else(|| index_not_found(name))?;
                if !provisioned {
                    return Err(ApiError::invalid_parameter(format!(
                        "The only Updates for index: {name} when TableThroughputMode is PAY_PER_REQUEST can be to OnDemandThroughput, WarmThroughput"
                    )));
                }
                index.provisioned = Some(throughput(requested.expect("checked")));
            }
            if update.delete.is_some() {
                if !table.indexes.iter().any(|i| i.global && i.index_name == name) {
                    return Err(index_not_found(name));
                }
                new.indexes.retain(|i| i.index_name != name);
                dropped.push(name.to_string());
            }
        }
        if provisioned && table.provisioned.is_none() {
            // Switching to PROVISIONED: every global index needs its throughput in this request.
            if let Some(index) = new.indexes.iter().find(|i| i.global && i.provisioned.is_none()) {
                return Err(ApiError::invalid_parameter(format!(
                    "ProvisionedThroughput must be specified for index: {}",
                    index.index_name
                )));
            }
        }
        if let Some(create) = self.index_updates.iter().find_map(|u| u.create.as_ref()) {
            if new.index(create.name()).is_some() {
                return Err(ApiError::validation("Attempting to create an index which already exists"));
            }
            let definitions = self.definitions.as_deref().unwrap_or_default();
            let names: Vec<&str> = definitions.iter().map(|(n, _)| n.as_str()).collect();
            check_defined(&create.key_names()?, &names)?;
            let attribute = |key: &str| {
                // An attribute the table already keys on keeps its type: DynamoDB ignores a
                // definition that contradicts it.
                let mut existing = table.key_attributes().chain(table.indexes.iter().flat_map(|i| i.key_attributes()));
                existing.find(|k| k.name == key).cloned().unwrap_or_else(|| {
                    let (_, attribute_type) = definitions.iter().find(|(n, _)| n == key).expect("checked above");
                    KeyAttribute { name: key.to_string(), attribute_type: attribute_type.clone() }
                })
            };
            new.indexes.push(create.to_index(&new, true, IndexStatus::Creating, &attribute)?);
            check_global_count(&new)?;
            created.push(create.name().to_string());
        }
        if let Some(protection) = self.deletion_protection {
            new.deletion_protection = protection;
        }
        if let Some(class) = &self.table_class {
            new.table_class = Some(class.clone());
        }
        Ok((new, created, dropped))
    }
}

fn throughput(requested: (Option<i64>, Option<i64>)) -> Throughput {
    let (Some(read), Some(write)) = requested else { unreachable!("null units were reported as violations") };
    Throughput { read_capacity_units: read, write_capacity_units: write }
}

pub fn update_table<S: Storage>(input: Input<'_>, cx: &mut Context<'_, S>) -> ApiResult<Value> {
    let name = input.required_string("TableName")?;
    reject_unsupported(input, &["SSESpecification", "ReplicaUpdates", "OnDemandThroughput", "WarmThroughput"])?;
    let update = TableUpdate::read(input)?;
    let account = &cx.principal.account_id;
    // Decided on the table as loaded and applied only if it is still at that version; else
    // decided again.
    let (table, created, was_empty, deleting) = loop {
        let table = Table::load(cx.storage, account, name).map_err(|e| not_found_named(e, name))?;
        let (mut new, created, dropped) = update.apply(&table)?;
        if let Some(stream) = &update.stream {
            // No record is appended meanwhile: writes decided on this version of the table fail
            // their guard once the update commits.
            let last = cx.storage.ask(account, Request::read_changes(name, u64::MAX, 0))?.last_sequence;
            stream.apply(&mut new, last + 1, crate::time::now_seconds(), false)?;
        }
        let stats = Stats::load(cx.storage, account, &table)?;
        // DynamoDB answers with a dropped index as DELETING, as it was.
        let deleting: Vec<Value> = (table.indexes.iter().zip(&stats.indexes))
            .filter(|(index, _)| dropped.contains(&index.index_name))
            .map(|(index, stats)| {
                let mut description = index.description(&table.table_arn, *stats);
                description["IndexStatus"] = json!("DELETING");
                description
            })
            .collect();
        let description = serde_json::to_vec(&new).map_err(|e| ApiError::internal(e.to_string()))?;
        let change = TableChange {
            description: description.as_slice().into(),
            create_indexes: created.as_slice().into(),
            drop_indexes: dropped.as_slice().into(),
            history: HistoryChange::Keep,
        };
        if let Some(version) = cx.storage.ask(account, Request::update_table(name, table.version, &change))? {
            new.version = version;
            break (new, created, stats.table.0 == 0, deleting);
        }
    };
    let table = match created.first() {
        // On a table that was empty the index needs (almost) no backfill: done here, it is
        // ACTIVE at once. Otherwise the host's worker calls `backfill_step` until it is.
        Some(index) if was_empty => {
            crate::index::backfill_step(cx.storage, account, name, index, INLINE_BACKFILL)?;
            Table::load(cx.storage, account, name)?
        }
        _ => table,
    };
    let stats = Stats::load(cx.storage, account, &table)?;
    let mut description = table.description(&stats);
    if !deleting.is_empty() {
        let mut indexes = description["GlobalSecondaryIndexes"].as_array().cloned().unwrap_or_default();
        indexes.extend(deleting);
        description["GlobalSecondaryIndexes"] = json!(indexes);
    }
    Ok(json!({"TableDescription": description}))
}

pub fn delete_table<S: Storage>(input: Input<'_>, cx: &mut Context<'_, S>) -> ApiResult<Value> {
    let name = table_name(input, true)?;
    let account = &cx.principal.account_id;
    let table = Table::load(cx.storage, account, name).map_err(|e| not_found_named(e, name))?;
    if table.deletion_protection {
        return Err(ApiError::validation(
            "Resource cannot be deleted as it is currently protected against deletion. Disable deletion protection first.",
        ));
    }
    if table.indexes.iter().any(|index| index.status == IndexStatus::Creating) {
        return Err(ApiError::new(
            ErrorKind::ResourceInUse,
            "Attempt to change a resource which is still in use: Cannot delete table while indexes are being created, updated, or deleted.",
        ));
    }
    let (count, bytes) = cx.storage.ask(account, Request::keyspace_stats(&table.keyspace()))?;
    let deleted = match table.point_in_time_recovery {
        Some(_) => super::backups::delete_keeping_backup(&table, (count, bytes), cx)?,
        None => cx.storage.ask(account, Request::delete_table(name))?,
    };
    if !deleted {
        return Err(table_not_found(name));
    }
    Ok(json!({"TableDescription": table.deleting_description(count, bytes)}))
}

pub fn list_tables<S: Storage>(input: Input<'_>, cx: &mut Context<'_, S>) -> ApiResult<Value> {
    let start = input.string("ExclusiveStartTableName")?;
    let limit = input.integer("Limit")?;
    let mut violations = Violations::default();
    if let Some(start) = start {
        violations.table_name(Some(start), "exclusiveStartTableName");
    }
    if let Some(limit) = limit {
        violations.range(limit, "limit", 1, 100);
    }
    violations.finish()?;
    let limit = limit.unwrap_or(100) as u32;
    // One name more than asked for tells whether another page follows.
    let start = start.or(Some(crate::catalog::FIRST_LISTED_NAME_BOUND));
    let mut names = cx.storage.ask(&cx.principal.account_id, Request::list_tables(start, limit + 1))?;
    let more = names.len() > limit as usize;
    names.truncate(limit as usize);
    let mut response = json!({"TableNames": names});
    if more {
        response["LastEvaluatedTableName"] = json!(names.last());
    }
    Ok(response)
}

/// Stores `table` as changed in its record only (tags, time to live, ...), guarded by the version
/// it was loaded at: false when another change came first and the caller must decide again.
pub(super) fn save_record(storage: &mut impl Storage, account: &str, table: &Table) -> ApiResult<bool> {
    save_change(storage, account, table, HistoryChange::Keep)
}

/// [`save_record`], starting or stopping the table's history with the change.
pub(super) fn save_change(
    storage: &mut impl Storage,
    account: &str,
    table: &Table,
    history: HistoryChange,
) -> ApiResult<bool> {
    let description = serde_json::to_vec(table).map_err(|e| ApiError::internal(e.to_string()))?;
    let change = TableChange { history, ..TableChange::record_only(&description) };
    Ok(storage.ask(account, Request::update_table(&table.table_name, table.version, &change))?.is_some())
}

/// Most table operations name the missing table in their message.
pub(super) fn not_found_named(error: ApiError, name: &str) -> ApiError {
    match error.kind {
        ErrorKind::ResourceNotFound => table_not_found(name),
        _ => error,
    }
}

fn table_not_found(name: &str) -> ApiError {
    ApiError::resource_not_found(format!("Requested resource not found: Table: {name} not found"))
}
