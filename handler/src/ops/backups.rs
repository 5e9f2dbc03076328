//! On-demand backups: CreateBackup, DescribeBackup, ListBackups, DeleteBackup and
//! RestoreTableFromBackup. A backup is the table's items at one moment, copied by the store, with
//! the table's catalog record of that moment (key schema and indexes; tags, time to live, streams
//! and point-in-time recovery are not part of it, as in DynamoDB). It outlives its table. A
//! restore makes a new table with the backup's items; its indexes are then filled by the
//! backfill, and the table is CREATING (its `RestoreSummary` in progress) until they are.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{Context, arn_member, table_name};
use crate::catalog::{IndexStatus, Placement, RestoreSummary, Stats, Table, table_from_create_request};
use crate::error::{ApiError, ApiResult, ErrorKind};
use crate::input::{Input, Violations, mismatch};
use crate::storage::{Request, Storage, StorageError, StoredBackup};

/// How often CreateBackup tries again when the table changed between reading it and copying it.
const COPY_ATTEMPTS: usize = 5;

/// What the store keeps of a backup besides its items.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct BackupRecord {
    backup_name: String,
    backup_arn: String,
    /// Seconds since the epoch.
    created: f64,
    item_count: u64,
    size_bytes: u64,
    /// USER (CreateBackup) or SYSTEM (kept when a table with point-in-time recovery is deleted).
    backup_type: String,
    /// Seconds since the epoch when a SYSTEM backup is deleted by the host's worker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires: Option<f64>,
    /// The table's catalog record at the backup's moment.
    table: Table,
}

impl BackupRecord {
    fn read(stored: &StoredBackup) -> ApiResult<BackupRecord> {
        serde_json::from_slice(&stored.record)
            .map_err(|e| ApiError::internal(format!("corrupt backup record {}: {e}", stored.arn)))
    }

    /// DynamoDB's `BackupDetails`.
    fn details(&self, status: &str) -> Value {
        let mut details = json!({
            "BackupArn": self.backup_arn,
            "BackupName": self.backup_name,
            "BackupSizeBytes": self.size_bytes,
            "BackupStatus": status,
            "BackupType": self.backup_type,
            "BackupCreationDateTime": self.created,
        });
        if let Some(expires) = self.expires {
            details["BackupExpiryDateTime"] = json!(expires);
        }
        details
    }

    /// A backup of `table` as it is at `now` (ms), named `name`.
    fn new(table: &Table, name: &str, backup_type: &str, now: u128, (item_count, size_bytes): (u64, u64)) -> Self {
        let arn = format!("{}/backup/{now:014}-{}", table.table_arn, &crate::random::uuid().replace('-', "")[..8]);
        BackupRecord {
            backup_name: name.to_string(),
            backup_arn: arn,
            created: now as f64 / 1000.0,
            item_count,
            size_bytes,
            backup_type: backup_type.into(),
            expires: None,
            table: Table { restore: None, importing: None, point_in_time_recovery: None, ..table.clone() },
        }
    }

    /// DynamoDB's `BackupDescription`: the backup, and its table as it was.
    fn description(&self, status: &str) -> Value {
        let table = &self.table;
        let described = table.description(&Stats::empty(table));
        let (billing_mode, throughput) = match &table.provisioned {
            Some(t) => (
                "PROVISIONED",
                json!({"ReadCapacityUnits": t.read_capacity_units, "WriteCapacityUnits": t.write_capacity_units}),
            ),
            None => ("PAY_PER_REQUEST", json!({"ReadCapacityUnits": 0, "WriteCapacityUnits": 0})),
        };
        let mut features = Map::new();
        for member in ["LocalSecondaryIndexes", "GlobalSecondaryIndexes"] {
            if let Some(indexes) = described.get(member).and_then(Value::as_array) {
                features.insert(member.into(), indexes.iter().map(index_definition).collect());
            }
        }
        if let Some(view_type) = described.pointer("/StreamSpecification/StreamViewType") {
            features.insert("StreamDescription".into(), json!({"StreamEnabled": true, "StreamViewType": view_type}));
        }
        if let Some(attribute) = &table.time_to_live_attribute {
            features.insert(
                "TimeToLiveDescription".into(),
                json!({"AttributeName": attribute, "TimeToLiveStatus": "ENABLED"}),
            );
        }
        json!({
            "BackupDetails": self.details(status),
            "SourceTableDetails": {
                "TableName": table.table_name,
                "TableId": table.table_id,
                "TableArn": table.table_arn,
                "TableSizeBytes": self.size_bytes,
                "KeySchema": described["KeySchema"],
                "TableCreationDateTime": table.creation_date_time,
                "ProvisionedThroughput": throughput,
                "ItemCount": self.item_count,
                "BillingMode": billing_mode,
            },
            "SourceTableFeatureDetails": features,
        })
    }

    /// DynamoDB's `BackupSummary` (ListBackups).
    fn summary(&self) -> Value {
        let mut summary = self.details("AVAILABLE");
        summary["TableName"] = json!(self.table.table_name);
        summary["TableId"] = json!(self.table.table_id);
        summary["TableArn"] = json!(self.table.table_arn);
        summary
    }
}

/// An index of a table's description as CreateTable takes it (and as backups describe it).
fn index_definition(described: &Value) -> Value {
    let mut definition = json!({
        "IndexName": described["IndexName"],
        "KeySchema": described["KeySchema"],
        "Projection": described["Projection"],
    });
    if let Some(throughput) = described.get("ProvisionedThroughput") {
        definition["ProvisionedThroughput"] = json!({
            "ReadCapacityUnits": throughput["ReadCapacityUnits"],
            "WriteCapacityUnits": throughput["WriteCapacityUnits"],
        });
    }
    definition
}

/// The table a backup or recovery operation names: DynamoDB calls a missing one
/// `TableNotFoundException` here, not `ResourceNotFoundException`.
pub(super) fn load_table<S: Storage>(cx: &mut Context<'_, S>, name: &str) -> ApiResult<Table> {
    Table::load(cx.storage, &cx.principal.account_id, name).map_err(|e| match e.kind {
        ErrorKind::ResourceNotFound => ApiError::new(ErrorKind::TableNotFound, format!("Table not found: {name}")),
        _ => e,
    })
}

fn backup_not_found(arn: &str) -> ApiError {
    ApiError::new(ErrorKind::BackupNotFound, format!("Backup not found: {arn}"))
}

/// The request's BackupArn, checked as DynamoDB checks it.
fn backup_arn<'a>(input: Input<'a>) -> ApiResult<&'a str> {
    arn_member(input, "BackupArn", "backupArn")
}

fn load_backup<S: Storage>(cx: &mut Context<'_, S>, arn: &str) -> ApiResult<BackupRecord> {
    let stored = cx.storage.ask(&cx.principal.account_id, Request::describe_backup(arn))?;
    BackupRecord::read(&stored.ok_or_else(|| backup_not_found(arn))?)
}

pub fn create_backup<S: Storage>(input: Input<'_>, cx: &mut Context<'_, S>) -> ApiResult<Value> {
    let name = table_name(input, true)?;
    let backup_name = input.string("BackupName")?;
    let mut violations = Violations::default();
    if let Some(backup_name) = violations.not_null(backup_name, "backupName") {
        if !backup_name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b)) {
            violations.add(Some(backup_name), "backupName", "satisfy regular expression pattern: [a-zA-Z0-9_.-]+");
        }
        violations.length(backup_name, "backupName", 3, 255);
    }
    violations.finish()?;
    let backup_name = backup_name.expect("a null name is a violation");
    let account = cx.principal.account_id.clone();
    for _ in 0..COPY_ATTEMPTS {
        let table = load_table(cx, name)?;
        let stats = cx.storage.ask(&account, Request::keyspace_stats(&table.keyspace()))?;
        let record = BackupRecord::new(&table, backup_name, "USER", crate::time::now_millis(), stats);
        let stored = serde_json::to_vec(&record).map_err(|e| ApiError::internal(e.to_string()))?;
        if cx.storage.ask(&account, Request::create_backup(name, table.version, &record.backup_arn, &stored))? {
            return Ok(json!({"BackupDetails": record.details("AVAILABLE")}));
        }
    }
    Err(ApiError::new(
        ErrorKind::TableInUse,
        format!("Table is being changed while the backup is taken; try again: {name}"),
    ))
}

pub fn describe_backup<S: Storage>(input: Input<'_>, cx: &mut Context<'_, S>) -> ApiResult<Value> {
    let arn = backup_arn(input)?;
    let backup = load_backup(cx, arn)?;
    Ok(json!({"BackupDescription": backup.description("AVAILABLE")}))
}

pub fn delete_backup<S: Storage>(input: Input<'_>, cx: &mut Context<'_, S>) -> ApiResult<Value> {
    let arn = backup_arn(input)?;
    let deleted = cx.storage.ask(&cx.principal.account_id, Request::delete_backup(arn))?;
    let backup = BackupRecord::read(&deleted.ok_or_else(|| backup_not_found(arn))?)?;
    Ok(json!({"BackupDescription": backup.description("DELETED")}))
}

/// A timestamp member: epoch seconds, as the JSON protocol sends them.
pub(super) fn timestamp(input: Input<'_>, name: &str) -> ApiResult<Option<f64>> {
    match input.members().get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(other) => Err(mismatch(other, "Timestamp")),
    }
}

pub fn list_backups<S: Storage>(input: Input<'_>, cx: &mut Context<'_, S>) -> ApiResult<Value> {
    let table = input.string("TableName")?;
    let limit = input.integer("Limit")?;
    let start = input.string("ExclusiveStartBackupArn")?;
    let backup_type = input.string("BackupType")?;
    let (after, before) = (timestamp(input, "TimeRangeLowerBound")?, timestamp(input, "TimeRangeUpperBound")?);
    let mut violations = Violations::default();
    if table.is_some() {
        violations.table_name(table, "tableName");
    }
    if let Some(limit) = limit {
        violations.range(limit, "limit", 1, 100);
    }
    if let Some(start) = start {
        violations.length(start, "exclusiveStartBackupArn", 37, 1024);
    }
    violations.one_of(backup_type, "backupType", &["USER", "SYSTEM", "AWS_BACKUP", "ALL"]);
    violations.finish()?;
    let limit = limit.unwrap_or(100) as usize;
    let wanted = |backup: &BackupRecord| {
        table.is_none_or(|t| backup.table.table_name == t)
            && after.is_none_or(|at| backup.created >= at)
            && before.is_none_or(|at| backup.created < at)
            && match backup_type.unwrap_or("USER") {
                "ALL" => true,
                kind => backup.backup_type == kind,
            }
    };
    let mut summaries = Vec::new();
    let mut position = start.map(str::to_string);
    let mut more = false;
    // The store lists every backup of the account in ARN order; the filters pick among them.
    'pages: loop {
        let page = cx.storage.ask(&cx.principal.account_id, Request::list_backups(position.as_deref(), 100))?;
        let last_page = page.len() < 100;
        for stored in page {
            position = Some(stored.arn.clone());
            let backup = BackupRecord::read(&stored)?;
            if !wanted(&backup) {
                continue;
            }
            if summaries.len() == limit {
                more = true;
                break 'pages;
            }
            summaries.push(backup.summary());
        }
        if last_page {
            break;
        }
    }
    let mut response = json!({"BackupSummaries": summaries});
    if more {
        response["LastEvaluatedBackupArn"] = summaries.last().map_or(Value::Null, |s| s["BackupArn"].clone());
    }
    Ok(response)
}

pub fn restore_table_from_backup<S: Storage>(input: Input<'_>, cx: &mut Context<'_, S>) -> ApiResult<Value> {
    let target = target_table_name(input)?;
    let arn = backup_arn(input)?;
    let backup = load_backup(cx, arn)?;
    let summary = |restore_date_time| RestoreSummary {
        source_backup_arn: Some(backup.backup_arn.clone()),
        source_table_arn: backup.table.table_arn.clone(),
        restore_date_time,
        restore_in_progress: true,
    };
    let table = restored_table(&backup.table, target, input, cx, summary)?;
    let record = serde_json::to_vec(&table).map_err(|e| ApiError::internal(e.to_string()))?;
    let indexes: Vec<String> = table.indexes.iter().map(|i| i.index_name.clone()).collect();
    match cx.storage.ask(&cx.principal.account_id, Request::restore_backup(arn, target, &record, &indexes)) {
        Err(StorageError::NoSuchKeyspace) => Err(backup_not_found(arn)),
        restored => restore_answer(&table, restored),
    }
}

/// Deletes `table` (described at `stats`), keeping its items as a SYSTEM backup for its recovery
/// period, as DynamoDB does for a table with point-in-time recovery: whether it was there.
pub(super) fn delete_keeping_backup<S: Storage>(
    table: &Table,
    stats: (u64, u64),
    cx: &mut Context<'_, S>,
) -> ApiResult<bool> {
    let now = crate::time::now_millis();
    let name = format!("{}$DeletedTableBackup", table.table_name);
    let mut record = BackupRecord::new(table, &name, "SYSTEM", now, stats);
    let period = table.point_in_time_recovery.as_ref().map_or(35, |p| p.recovery_period_in_days);
    record.expires = Some(record.created + f64::from(period) * 86_400.0);
    let stored = serde_json::to_vec(&record).map_err(|e| ApiError::internal(e.to_string()))?;
    let keeping = Request::delete_table_keeping(&table.table_name, &record.backup_arn, &stored);
    Ok(cx.storage.ask(&cx.principal.account_id, keeping)?)
}

/// When a SYSTEM backup's recovery period ends (seconds since the epoch), from its stored record;
/// none for any other backup.
pub fn system_backup_expiry(record: &[u8]) -> Option<f64> {
    let record: BackupRecord = serde_json::from_slice(record).ok()?;
    record.expires.filter(|_| record.backup_type == "SYSTEM")
}

/// The table a restore makes of `source` under `target`, with the request's overrides: CREATING,
/// its restore in progress, every index to be filled by the backfill from the copied items.
pub(super) fn restored_table<S: Storage>(
    source: &Table,
    target: &str,
    input: Input<'_>,
    cx: &Context<'_, S>,
    summary: impl FnOnce(f64) -> RestoreSummary,
) -> ApiResult<Table> {
    let request = create_request(source, target, input)?;
    let now = crate::time::now_seconds();
    let placement =
        Placement { region: cx.region, account_id: &cx.principal.account_id, table_id: crate::random::uuid(), now };
    let mut table = table_from_create_request(Input::new(&request), placement)?;
    // Every index is filled by the backfill: the item count read before the copy cannot tell an
    // index that may stay empty.
    for index in &mut table.indexes {
        index.status = IndexStatus::Creating;
    }
    table.restore = Some(summary(now));
    table.finish_restore_when_indexed();
    Ok(table)
}

/// A restore's answer, once the store has been asked to make `table`.
pub(super) fn restore_answer(table: &Table, restored: Result<bool, StorageError>) -> ApiResult<Value> {
    if !restored? {
        let target = &table.table_name;
        return Err(ApiError::new(ErrorKind::TableAlreadyExists, format!("Table already exists: {target}")));
    }
    // DynamoDB answers a restore as CREATING and in progress, whatever is left to do.
    let mut description = table.description(&Stats::empty(table));
    description["TableStatus"] = json!("CREATING");
    description["RestoreSummary"]["RestoreInProgress"] = json!(true);
    Ok(json!({"TableDescription": description}))
}

/// The request's name for a new table, checked as DynamoDB checks it.
pub(super) fn target_table_name<'a>(input: Input<'a>) -> ApiResult<&'a str> {
    let target = input.string("TargetTableName")?;
    let mut violations = Violations::default();
    violations.table_name(target, "targetTableName");
    violations.finish()?;
    Ok(target.expect("a null name is a violation"))
}

/// The CreateTable request that makes `source`'s schema under `target`, with the restore's
/// overrides of billing, throughput and indexes applied.
fn create_request(source: &Table, target: &str, input: Input<'_>) -> ApiResult<Map<String, Value>> {
    let described = source.description(&Stats::empty(source));
    let mut request = Map::new();
    request.insert("TableName".into(), json!(target));
    request.insert("KeySchema".into(), described["KeySchema"].clone());
    let billing = match input.string("BillingModeOverride")? {
        Some(mode) => mode.to_string(),
        None => described["BillingModeSummary"]["BillingMode"].as_str().unwrap_or("PAY_PER_REQUEST").to_string(),
    };
    let provisioned = billing == "PROVISIONED";
    request.insert("BillingMode".into(), json!(billing));
    match input.members().get("ProvisionedThroughputOverride").filter(|v| !v.is_null()) {
        Some(throughput) => {
            request.insert("ProvisionedThroughput".into(), throughput.clone());
        }
        None if provisioned => {
            let throughput = &described["ProvisionedThroughput"];
            request.insert(
                "ProvisionedThroughput".into(),
                json!({"ReadCapacityUnits": throughput["ReadCapacityUnits"], "WriteCapacityUnits": throughput["WriteCapacityUnits"]}),
            );
        }
        None => {}
    }
    for (member, overriding) in [
        ("LocalSecondaryIndexes", "LocalSecondaryIndexOverride"),
        ("GlobalSecondaryIndexes", "GlobalSecondaryIndexOverride"),
    ] {
        let indexes: Vec<Value> = match input.list(overriding)? {
            Some(indexes) => indexes.to_vec(),
            None => described
                .get(member)
                .and_then(Value::as_array)
                .map(|i| i.iter().map(index_definition).collect())
                .unwrap_or_default(),
        };
        let indexes: Vec<Value> = indexes
            .into_iter()
            .map(|mut index| {
                if !provisioned && let Some(index) = index.as_object_mut() {
                    index.remove("ProvisionedThroughput");
                }
                index
            })
            .collect();
        if !indexes.is_empty() {
            request.insert(member.into(), json!(indexes));
        }
    }
    // The definitions of the attributes the table's and its indexes' keys name.
    let mut schemas = vec![&request["KeySchema"]];
    for member in ["LocalSecondaryIndexes", "GlobalSecondaryIndexes"] {
        schemas.extend(request.get(member).and_then(Value::as_array).into_iter().flatten().map(|i| &i["KeySchema"]));
    }
    let keys: Vec<&Value> =
        schemas.into_iter().filter_map(Value::as_array).flatten().map(|k| &k["AttributeName"]).collect();
    let definitions: Vec<&Value> = described["AttributeDefinitions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|definition| keys.contains(&&definition["AttributeName"]))
        .collect();
    request.insert("AttributeDefinitions".into(), json!(definitions));
    Ok(request)
}
