//! Background work the host schedules and the sandbox does: filling global secondary indexes
//! created on tables that already hold items, deleting items whose time to live has ended,
//! trimming stream records older than their 24 hours, folding tables' history (point-in-time
//! recovery) older than their recovery period, deleting SYSTEM backups past theirs, and taking up
//! exports and imports (`crate::transfers`, each job in a task of its own). The host finds the work (tables whose
//! description, read with the handler's own catalog types, has an index CREATING; tables with
//! time to live) and runs `backfill` and `expire` steps in fresh sandbox instances. Every step is
//! idempotent and guarded by versions, so several servers on one database may do the same work.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dynabox_handler::background::{self, Backfill, ITEMS_PER_STEP, epoch_seconds};
use dynabox_handler::report::Step;
use dynabox_handler::storage::{Keyspace, Request};
use dynabox_sql::store::TrimmedChanges;
use tracing::Instrument;

use crate::metrics::Metrics;
use crate::runtime::Runtime;
use crate::storage::{Ask, Store};
use crate::transfers::Transfers;

/// How often the catalog is searched for indexes to fill when there are none.
const IDLE_PAUSE: Duration = Duration::from_millis(250);
/// How often the jobs tables are searched for exports and imports to take up.
const JOBS_INTERVAL: Duration = Duration::from_secs(1);
/// How often stream records past their retention are deleted.
const TRIM_INTERVAL: Duration = Duration::from_secs(60);
/// Stream records one trimming transaction deletes at most: a backlog is worked off in batches
/// that hold no lock long.
const TRIM_BATCH: u64 = 10_000;
/// Batches one pass runs at most before the other background work has its turn.
const TRIM_BATCHES_PER_PASS: usize = 50;
/// History entries one folding statement forgets at most, and statements per table and pass.
const FOLD_BATCH: u64 = 10_000;
const FOLD_BATCHES_PER_PASS: usize = 10;

/// Runs forever; the server drops it on shutdown. `ttl_interval`: how often expired items are
/// looked for.
pub async fn run(runtime: Arc<Runtime>, backend: Arc<dyn Store>, transfers: Arc<Transfers>, ttl_interval: Duration) {
    let (mut last_sweep, mut last_trim, mut last_jobs): (Option<Instant>, Option<Instant>, Option<Instant>) =
        (None, None, None);
    loop {
        if last_jobs.is_none_or(|at| at.elapsed() >= JOBS_INTERVAL) {
            last_jobs = Some(Instant::now());
            transfers.look().await;
        }
        match backend.tables_with_creating_indexes().await {
            Ok(tables) => fill_indexes(&runtime, backend.as_ref(), background::backfills(tables)).await,
            Err(e) => tracing::warn!("looking for indexes to fill failed: {e:?}"),
        }
        if last_sweep.is_none_or(|at| at.elapsed() >= ttl_interval) {
            last_sweep = Some(Instant::now());
            sweep_expired(&runtime, backend.as_ref()).await;
        }
        if last_trim.is_none_or(|at| at.elapsed() >= TRIM_INTERVAL) {
            last_trim = Some(Instant::now());
            trim_changes(backend.as_ref()).await;
            fold_history(backend.as_ref()).await;
            delete_expired_system_backups(backend.as_ref()).await;
        }
        tokio::time::sleep(IDLE_PAUSE.min(ttl_interval)).await;
    }
}

/// Deletes the stream records past their retention, batch by batch, and reports those a full
/// pass left behind.
async fn trim_changes(backend: &dyn Store) {
    let before = background::trim_before(epoch_seconds());
    for _ in 0..TRIM_BATCHES_PER_PASS {
        match backend.trim_changes(before, TRIM_BATCH).await {
            Ok(TrimmedChanges { deleted, left }) => {
                Metrics::global().stream_records_trimmed(deleted, left);
                if left == 0 {
                    return;
                }
            }
            Err(e) => return tracing::warn!("trimming stream records failed: {e:?}"),
        }
    }
}

/// Folds every history older than its table's recovery period, batch by batch.
async fn fold_history(backend: &dyn Store) {
    let tables = match backend.tables_with_history().await {
        Ok(tables) => tables,
        Err(e) => return tracing::warn!("looking for tables with point-in-time recovery failed: {e:?}"),
    };
    let now = dynabox_handler::time::now_millis() as u64;
    for fold in background::history_folds(tables, now) {
        for _ in 0..FOLD_BATCHES_PER_PASS {
            match backend.fold_history(&fold.account, &fold.table, fold.before, FOLD_BATCH).await {
                Ok(folded) if folded < FOLD_BATCH => break,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(table = %fold.table, "folding history failed: {e:?}");
                    break;
                }
            }
        }
    }
}

/// Deletes the SYSTEM backups (kept of deleted tables) whose recovery period is over.
async fn delete_expired_system_backups(backend: &dyn Store) {
    let backups = match backend.system_backups().await {
        Ok(backups) => backups,
        Err(e) => return tracing::warn!("looking for system backups failed: {e:?}"),
    };
    let now = dynabox_handler::time::now_seconds();
    for (account, backup) in backups.into_iter().filter(|(_, b)| background::system_backup_expired(&b.record, now)) {
        if let Err(e) = backend.ask(&account, Request::delete_backup(&backup.arn)).await {
            tracing::warn!(arn = %backup.arn, "deleting an expired system backup failed: {e:?}");
        }
    }
}

/// Steps through every index being created until it is done or a step fails. Its progress is
/// the items the steps read against the table's items when this server began on it.
async fn fill_indexes(runtime: &Runtime, backend: &dyn Store, backfills: Vec<Backfill>) {
    let metrics = Metrics::global();
    for Backfill { account, table, index } in backfills {
        let span = tracing::info_span!("backfill", %table, %index);
        let items = backend
            .ask(&account, Request::keyspace_stats(&Keyspace::table(&table)))
            .await
            .map_or(0, |(items, _)| items);
        let mut read = 0u64;
        let progress = |step: Step| {
            read += u64::from(step.count);
            let percent = (!step.done).then(|| (100.0 * read as f64 / items.max(1) as f64).min(99.0));
            metrics.index_progress(&table, &index, percent);
        };
        let steps = until_done(|| runtime.backfill(&account, &table, &index, ITEMS_PER_STEP), progress);
        steps.instrument(span).await;
    }
}

/// Deletes the expired items of every table with time to live, step by step.
async fn sweep_expired(runtime: &Runtime, backend: &dyn Store) {
    let tables = match backend.tables_with_time_to_live().await {
        Ok(tables) => tables,
        Err(e) => return tracing::warn!("looking for tables with time to live failed: {e:?}"),
    };
    let now = epoch_seconds();
    for (account, table) in tables {
        let span = tracing::info_span!("expire", %table);
        let deleted = |step: Step| Metrics::global().time_to_live_deleted(&table, step.count);
        until_done(|| runtime.expire(&account, &table, now, ITEMS_PER_STEP), deleted).instrument(span).await;
    }
}

/// Runs a background step again until it says nothing is left, or fails (logged in the span),
/// telling `done` of every step.
async fn until_done<Next: Future<Output = anyhow::Result<Step>>>(
    mut step: impl FnMut() -> Next,
    mut done: impl FnMut(Step),
) {
    loop {
        match step().await {
            Ok(finished) => {
                done(finished);
                if finished.done {
                    return;
                }
            }
            Err(e) => return tracing::warn!("background step failed: {e:#}"),
        }
    }
}
