//! The host's background work under Spin, which keeps no process to run it: requests do it. A new
//! global index on a table with items is filled by the requests that wait for it (DescribeTable,
//! which clients poll until the index is ACTIVE) and by the UpdateTable that created it, a bounded
//! number of items per request, with the same idempotent steps the host's worker runs.

use dynabox_handler::background::{Backfill, ITEMS_PER_STEP, backfills};
use dynabox_handler::index::backfill_step;
use dynabox_sql::{Connection, Synchronous};

/// Steps one request runs at most: a table of up to this many times [`ITEMS_PER_STEP`] items gets
/// its index within the request that creates it.
const STEPS_PER_REQUEST: u32 = 16;

/// Runs backfill steps for the indexes being created, up to this request's share.
pub fn step<C: Connection>(store: &mut Synchronous<C>) {
    let tables = match store.tables_with_creating_indexes() {
        Ok(tables) => tables,
        Err(e) => return eprintln!("dynabox: looking for indexes to fill failed: {e:?}"),
    };
    let mut steps = STEPS_PER_REQUEST;
    for Backfill { account, table, index } in backfills(tables) {
        while steps > 0 {
            steps -= 1;
            match backfill_step(store, &account, &table, &index, ITEMS_PER_STEP) {
                Ok(step) if step.done => break,
                Ok(_) => {}
                Err(e) => {
                    eprintln!("dynabox: filling index {index} of {table} failed: {e}");
                    break;
                }
            }
        }
    }
}
