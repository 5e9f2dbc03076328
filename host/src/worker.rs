//! Background work the host schedules and the sandbox does: filling global secondary indexes
//! created on tables that already hold items. The host finds the work (tables whose description,
//! read with the handler's own catalog types, has an index CREATING) and runs `backfill` steps in
//! fresh sandbox instances until each index is ACTIVE. Every step is idempotent and guarded by the
//! table's version, so several servers on one database may work on the same index.

use std::sync::Arc;
use std::time::Duration;

use dynabox_handler::index::creating_indexes;

use crate::runtime::Runtime;
use crate::storage::Backend;

/// How often the catalog is searched for work when there is none.
const IDLE_PAUSE: Duration = Duration::from_millis(250);
/// Items one step reads: small enough that a step stays a few milliseconds of sandbox time.
const ITEMS_PER_STEP: u32 = 256;

/// Runs forever; the server drops it on shutdown.
pub async fn run(runtime: Arc<Runtime>, backend: Arc<Backend>) {
    loop {
        match backend.tables_with_creating_indexes().await {
            Ok(tables) => {
                for (account, description) in tables {
                    fill_indexes(&runtime, &account, &description).await;
                }
            }
            Err(e) => eprintln!("dynabox: looking for indexes to fill failed: {e:?}"),
        }
        tokio::time::sleep(IDLE_PAUSE).await;
    }
}

/// Steps through every CREATING index of one table until it is done or a step fails.
async fn fill_indexes(runtime: &Runtime, account: &str, description: &[u8]) {
    for (table, index) in creating_indexes(description) {
        loop {
            match runtime.backfill(account, &table, &index, ITEMS_PER_STEP).await {
                Ok(true) => break,
                Ok(false) => {}
                Err(e) => {
                    eprintln!("dynabox: filling index {index} of {table} failed: {e:#}");
                    break;
                }
            }
        }
    }
}
