//! Point-in-time recovery: DescribeContinuousBackups, UpdateContinuousBackups and
//! RestoreTableToPointInTime. While it is enabled, every item write of the table also appends the
//! item as the write leaves it to the table's history, in the same atomic group
//! (`ops::items::item_writes`), stamped by the store in commit order; enabling starts the history
//! with the table's items. A restore to a moment is the latest entry of each key stamped at or
//! before it. The host's worker folds what is older than the recovery period.

use serde_json::{Value, json};

use super::backups::{load_table, restore_answer, restored_table, target_table_name, timestamp};
use super::tables::save_change;
use super::{Context, table_name};
use crate::catalog::{PointInTimeRecovery, RestoreSummary, Table};
use crate::error::{ApiError, ApiResult, ErrorKind};
use crate::input::{Input, Violations};
use crate::storage::{HistoryChange, Request, Storage, StorageError};

/// DynamoDB's recovery period when none is given, and its bounds.
const DEFAULT_RECOVERY_DAYS: i64 = 35;
const MAX_RECOVERY_DAYS: i64 = 35;

fn now_millis() -> u64 {
    crate::time::now_millis() as u64
}

pub(super) fn seconds(millis: u64) -> f64 {
    millis as f64 / 1000.0
}

/// DynamoDB's `ContinuousBackupsDescription` of `table` at `now` (ms).
fn continuous_backups(table: &Table, now: u64) -> Value {
    let recovery = match &table.point_in_time_recovery {
        None => json!({"PointInTimeRecoveryStatus": "DISABLED"}),
        Some(recovery) => json!({
            "PointInTimeRecoveryStatus": "ENABLED",
            "RecoveryPeriodInDays": recovery.recovery_period_in_days,
            "EarliestRestorableDateTime": seconds(recovery.earliest(now)),
            "LatestRestorableDateTime": seconds(now),
        }),
    };
    json!({"ContinuousBackupsDescription": {
        "ContinuousBackupsStatus": "ENABLED",
        "PointInTimeRecoveryDescription": recovery,
    }})
}

pub fn describe_continuous_backups<S: Storage>(input: Input<'_>, cx: &mut Context<'_, S>) -> ApiResult<Value> {
    let name = table_name(input, true)?;
    let table = load_table(cx, name)?;
    Ok(continuous_backups(&table, now_millis()))
}

pub fn update_continuous_backups<S: Storage>(input: Input<'_>, cx: &mut Context<'_, S>) -> ApiResult<Value> {
    let name = table_name(input, true)?;
    let specification = input.structure("PointInTimeRecoverySpecification")?;
    let enabled = specification.map(|s| s.boolean("PointInTimeRecoveryEnabled")).transpose()?.flatten();
    let days = specification.map(|s| s.integer("RecoveryPeriodInDays")).transpose()?.flatten();
    let mut violations = Violations::default();
    match specification {
        None => violations.add_unvalued("pointInTimeRecoverySpecification", "Member must not be null"),
        Some(_) => {
            let path = "pointInTimeRecoverySpecification.pointInTimeRecoveryEnabled";
            violations.not_null(enabled, path);
        }
    }
    if let Some(days) = days {
        violations.range(days, "pointInTimeRecoverySpecification.recoveryPeriodInDays", 1, MAX_RECOVERY_DAYS);
    }
    violations.finish()?;
    let enabled = enabled.expect("a null member is a violation");
    if !enabled && days.is_some() {
        return Err(ApiError::validation(
            "RecoveryPeriodInDays can only be specified when PointInTimeRecoveryEnabled is true",
        ));
    }
    let account = cx.principal.account_id.clone();
    loop {
        let mut table = load_table(cx, name)?;
        let now = now_millis();
        let (setting, history) = match (&table.point_in_time_recovery, enabled) {
            (None, false) => return Ok(continuous_backups(&table, now)),
            (Some(_), false) => (None, HistoryChange::Stop),
            (None, true) => {
                let days = days.unwrap_or(DEFAULT_RECOVERY_DAYS) as u32;
                (
                    Some(PointInTimeRecovery { recovery_period_in_days: days, restorable_since: now }),
                    HistoryChange::Start,
                )
            }
            (Some(current), true) => {
                let days = days.map_or(current.recovery_period_in_days, |d| d as u32);
                // History older than the current period may be folded already: a longer period
                // does not bring it back.
                let restorable_since = current.earliest(now);
                (Some(PointInTimeRecovery { recovery_period_in_days: days, restorable_since }), HistoryChange::Keep)
            }
        };
        table.point_in_time_recovery = setting;
        if save_change(cx.storage, &account, &table, history)? {
            return Ok(continuous_backups(&table, now));
        }
    }
}

/// The source table's name in a table ARN of this region and account.
pub(super) fn table_of_arn<'a, S: Storage>(arn: &'a str, cx: &Context<'_, S>) -> Option<&'a str> {
    let prefix = format!("arn:aws:dynamodb:{}:{}:table/", cx.region, cx.principal.account_id);
    arn.strip_prefix(&prefix).filter(|name| !name.contains('/'))
}

pub fn restore_table_to_point_in_time<S: Storage>(input: Input<'_>, cx: &mut Context<'_, S>) -> ApiResult<Value> {
    let target = target_table_name(input)?;
    let source_name = input.string("SourceTableName")?;
    let source_arn = input.string("SourceTableArn")?;
    let latest = input.boolean("UseLatestRestorableTime")?.unwrap_or(false);
    let moment = timestamp(input, "RestoreDateTime")?;
    let mut violations = Violations::default();
    if source_name.is_some() {
        violations.table_name(source_name, "sourceTableName");
    }
    if let Some(arn) = source_arn {
        violations.length(arn, "sourceTableArn", 1, 1024);
    }
    violations.finish()?;
    let source = match (source_name, source_arn) {
        (Some(name), None) => name,
        (None, Some(arn)) => table_of_arn(arn, cx).ok_or_else(|| {
            ApiError::validation(format!("Invalid TableArn: Invalid ResourceArn provided as input {arn}"))
        })?,
        (None, None) => return Err(ApiError::validation("Either SourceTableName or SourceTableArn must be specified")),
        (Some(_), Some(_)) => {
            return Err(ApiError::validation("Only one of SourceTableName or SourceTableArn can be specified"));
        }
    };
    if latest && moment.is_some() {
        return Err(ApiError::validation(
            "Only one of RestoreDateTime or UseLatestRestorableTime can be specified, not both",
        ));
    }
    let table = load_table(cx, source)?;
    let Some(recovery) = &table.point_in_time_recovery else {
        return Err(ApiError::new(
            ErrorKind::PointInTimeRecoveryUnavailable,
            format!("Point in time recovery is not enabled for table '{source}'"),
        ));
    };
    let now = now_millis();
    let moment = match moment {
        Some(moment) if !latest => moment_millis(moment, recovery.earliest(now), now)?,
        _ => now,
    };
    let summary = |_| RestoreSummary {
        source_backup_arn: None,
        source_table_arn: table.table_arn.clone(),
        restore_date_time: seconds(moment),
        restore_in_progress: true,
    };
    let restored = restored_table(&table, target, input, cx, summary)?;
    let record = serde_json::to_vec(&restored).map_err(|e| ApiError::internal(e.to_string()))?;
    let indexes: Vec<String> = restored.indexes.iter().map(|i| i.index_name.clone()).collect();
    let asked = Request::restore_moment(source, moment, target, &record, &indexes);
    match cx.storage.ask(&cx.principal.account_id, asked) {
        // The source was deleted, or its recovery disabled, since it was read.
        Err(StorageError::NoSuchKeyspace) => Err(ApiError::new(
            ErrorKind::PointInTimeRecoveryUnavailable,
            format!("Point in time recovery is not enabled for table '{source}'"),
        )),
        asked => restore_answer(&restored, asked),
    }
}

/// A RestoreDateTime (epoch seconds) as milliseconds, if it lies in the recovery window.
fn moment_millis(moment: f64, earliest: u64, latest: u64) -> ApiResult<u64> {
    let millis = (moment * 1000.0).round();
    if !(millis >= earliest as f64 && millis <= latest as f64) {
        return Err(ApiError::new(
            ErrorKind::InvalidRestoreTime,
            format!(
                "Invalid restore time: RestoreDateTime must be between EarliestRestorableDateTime {} and \
                 LatestRestorableDateTime {}",
                seconds(earliest),
                seconds(latest)
            ),
        ));
    }
    Ok(millis as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restore_time_outside_the_window_is_refused() {
        assert_eq!(moment_millis(1.5, 1000, 2000).unwrap(), 1500);
        assert_eq!(moment_millis(1.0, 1000, 2000).unwrap(), 1000);
        assert_eq!(moment_millis(2.0, 1000, 2000).unwrap(), 2000);
        for outside in [0.999, 2.001, f64::NAN] {
            assert_eq!(moment_millis(outside, 1000, 2000).unwrap_err().kind, ErrorKind::InvalidRestoreTime);
        }
    }

    #[test]
    fn the_earliest_moment_moves_with_the_period() {
        let day = 86_400_000;
        let recovery = PointInTimeRecovery { recovery_period_in_days: 1, restorable_since: 10 * day };
        assert_eq!(recovery.earliest(10 * day + 5), 10 * day);
        assert_eq!(recovery.earliest(12 * day), 11 * day);
    }
}
