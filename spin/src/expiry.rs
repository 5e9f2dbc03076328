//! The host worker's time-to-live sweep, stream trimming, history folding and deletion of system
//! backups past their recovery period under Spin, which keeps no process to run them: requests
//! that read items do a bounded share of them afterwards, with the same idempotent steps the
//! host's worker runs (`dynabox_handler::expire_step`, the store's trimming and folding).

use dynabox_handler::background::{epoch_seconds, history_folds, system_backup_expired, trim_before};
use dynabox_handler::expire_step;
use dynabox_handler::storage::{Request, Storage};
use dynabox_sql::{Connection, Synchronous};

/// Expired items one request deletes at most, per table with time to live.
const ITEMS_PER_REQUEST: u32 = 64;
/// Stream records past their 24 hours one request deletes at most, and history entries past
/// their recovery period per table.
const TRIMMED_PER_REQUEST: u64 = 256;

/// Whether a request to `operation` sweeps afterwards: the reads a client polls while it waits
/// for expired items to go.
pub fn sweeps_after(operation: &str) -> bool {
    matches!(operation, "GetItem" | "BatchGetItem" | "Query" | "Scan" | "DescribeTimeToLive" | "GetRecords")
}

/// Deletes up to [`ITEMS_PER_REQUEST`] expired items of every table with time to live, and up to
/// [`TRIMMED_PER_REQUEST`] stream records past their 24 hours, folds as many history entries
/// of every table with point-in-time recovery, and deletes the system backups past their period.
pub fn sweep<C: Connection>(store: &mut Synchronous<C>) {
    let now = epoch_seconds();
    let tables = match store.tables_with_time_to_live() {
        Ok(tables) => tables,
        Err(e) => return eprintln!("dynabox: looking for tables with time to live failed: {e:?}"),
    };
    for (account, table) in tables {
        if let Err(e) = expire_step(store, &account, &table, now, ITEMS_PER_REQUEST) {
            eprintln!("dynabox: deleting expired items of {table} failed: {e}");
        }
    }
    if let Err(e) = store.trim_changes(trim_before(now), TRIMMED_PER_REQUEST) {
        eprintln!("dynabox: trimming stream records failed: {e:?}");
    }
    match store.tables_with_history() {
        Ok(tables) => {
            for fold in history_folds(tables, now * 1000) {
                if let Err(e) = store.fold_history(&fold.account, &fold.table, fold.before, TRIMMED_PER_REQUEST) {
                    eprintln!("dynabox: folding the history of {} failed: {e:?}", fold.table);
                }
            }
        }
        Err(e) => eprintln!("dynabox: looking for tables with point-in-time recovery failed: {e:?}"),
    }
    match store.system_backups() {
        Ok(backups) => {
            for (account, backup) in backups.iter().filter(|(_, b)| system_backup_expired(&b.record, now as f64)) {
                if let Err(e) = store.ask(account, Request::delete_backup(&backup.arn)) {
                    eprintln!("dynabox: deleting the expired system backup {} failed: {e:?}", backup.arn);
                }
            }
        }
        Err(e) => eprintln!("dynabox: looking for system backups failed: {e:?}"),
    }
}
