//! Background work, decided once for the host's worker and for the Spin component (which does it
//! inside requests): which indexes need filling, how much one step reads, the sweep's clock,
//! which stream records are past their retention, how far a table's history can be folded and
//! when a system backup ends. When and where steps run is each one's own.

use crate::catalog::RETENTION_SECONDS;
use crate::catalog::{IndexStatus, Table};

/// Items one backfill or expiry step reads: small enough that a step stays a few milliseconds of
/// sandbox time.
pub const ITEMS_PER_STEP: u32 = 256;

/// An index being created on a table that held items: `index::backfill_step` fills it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backfill {
    pub account: String,
    pub table: String,
    pub index: String,
}

/// The indexes to fill among the tables found with one being created (each an account and its
/// stored description). A description that does not parse names none.
pub fn backfills(tables: impl IntoIterator<Item = (String, Vec<u8>)>) -> Vec<Backfill> {
    let mut backfills = Vec::new();
    for (account, description) in tables {
        let Ok(table) = serde_json::from_slice::<Table>(&description) else { continue };
        // An import's items come first: an index filled meanwhile would miss those put behind it.
        if table.importing.is_some() {
            continue;
        }
        let creating = table.indexes.iter().filter(|index| index.status == IndexStatus::Creating);
        backfills.extend(creating.map(|index| Backfill {
            account: account.clone(),
            table: table.table_name.clone(),
            index: index.index_name.clone(),
        }));
    }
    backfills
}

/// Now in whole seconds since the epoch, as time-to-live attributes hold it.
pub fn epoch_seconds() -> u64 {
    crate::time::now_seconds() as u64
}

/// Stream records written before this (seconds since the epoch) are past their 24 hours at `now`.
pub fn trim_before(now: u64) -> u64 {
    now.saturating_sub(RETENTION_SECONDS)
}

/// A table whose history (point-in-time recovery) may be folded up to `before` (ms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryFold {
    pub account: String,
    pub table: String,
    pub before: u64,
}

/// The histories to fold among the tables found that may keep one (each an account, its name
/// and its stored description), at `now` (ms): up to each one's recovery period back.
pub fn history_folds(tables: impl IntoIterator<Item = (String, String, Vec<u8>)>, now: u64) -> Vec<HistoryFold> {
    let recovering = tables.into_iter().filter_map(|(account, table, description)| {
        let recovery = serde_json::from_slice::<Table>(&description).ok()?.point_in_time_recovery?;
        Some(HistoryFold { account, table, before: recovery.horizon(now) })
    });
    recovering.collect()
}

/// Whether a stored backup record is a SYSTEM backup whose recovery period is over at `now`
/// (seconds since the epoch): the worker deletes it.
pub fn system_backup_expired(record: &[u8], now: f64) -> bool {
    crate::ops::system_backup_expiry(record).is_some_and(|expires| expires <= now)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn description(indexes: &[(&str, &str)]) -> Vec<u8> {
        let key = serde_json::json!({"Name": "pk", "AttributeType": "S"});
        let indexes: Vec<_> = indexes
            .iter()
            .map(|(name, status)| {
                serde_json::json!({"IndexName": name, "Global": true, "HashKey": key, "RangeKey": null,
                    "Projection": "All", "Status": status, "Provisioned": null})
            })
            .collect();
        let table = serde_json::json!({"TableName": "Music", "TableArn": "arn", "TableId": "id",
            "CreationDateTime": 0.0, "HashKey": key, "RangeKey": null, "Provisioned": null, "Indexes": indexes});
        serde_json::to_vec(&table).unwrap()
    }

    #[test]
    fn only_indexes_being_created_are_filled() {
        let tables = [
            ("a".to_string(), description(&[("Old", "Active"), ("New", "Creating")])),
            ("b".to_string(), b"not a description".to_vec()),
            ("c".to_string(), description(&[("X", "Creating"), ("Y", "Creating")])),
        ];
        let backfill = |account: &str, index: &str| Backfill {
            account: account.into(),
            table: "Music".into(),
            index: index.into(),
        };
        assert_eq!(backfills(tables), [backfill("a", "New"), backfill("c", "X"), backfill("c", "Y")]);
    }

    #[test]
    fn stream_records_are_kept_for_24_hours() {
        assert_eq!(trim_before(100_000), 100_000 - 86_400);
        assert_eq!(trim_before(5), 0);
    }
}
