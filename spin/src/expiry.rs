//! The host worker's time-to-live sweep and stream trimming under Spin, which keeps no process to
//! run them: requests that read items do a bounded share of them afterwards, with the same
//! idempotent step the host's worker runs (`dynabox_handler::expire_step`).

use dynabox_handler::background::{epoch_seconds, trim_before};
use dynabox_handler::expire_step;
use dynabox_sql::{Connection, Synchronous};

/// Expired items one request deletes at most, per table with time to live.
const ITEMS_PER_REQUEST: u32 = 64;
/// Stream records past their 24 hours one request deletes at most.
const TRIMMED_PER_REQUEST: u64 = 256;

/// Whether a request to `operation` sweeps afterwards: the reads a client polls while it waits
/// for expired items to go.
pub fn sweeps_after(operation: &str) -> bool {
    matches!(operation, "GetItem" | "BatchGetItem" | "Query" | "Scan" | "DescribeTimeToLive" | "GetRecords")
}

/// Deletes up to [`ITEMS_PER_REQUEST`] expired items of every table with time to live, and up to
/// [`TRIMMED_PER_REQUEST`] stream records past their 24 hours.
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
}
