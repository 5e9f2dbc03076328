//! Prometheus metrics, served at `GET /metrics` in the text exposition format (0.0.4) by
//! `prometheus-client`. The request metrics follow DynamoDB's CloudWatch metrics, with the
//! dimensions CloudWatch gives them as labels (`table` for TableName, `operation` for Operation);
//! they are counted from the handler's report of each request (`dynabox_handler::report`), the
//! same report the request log shows. The service's own metrics (admission, the sandbox, write
//! turns, background work, the store's readiness) are counted where they happen.
//!
//! Table names are user input, so the `table` label is capped: the first `--metrics-max-tables`
//! names of tables a request succeeded on (or failed a condition or a transaction conflict on:
//! the table exists) get a series of their own, every other name counts as `table="_other"`. A
//! name of a table that does not exist takes no place. Requests that name no table (ListTables,
//! or refused before their body was read) have `table=""`. Names are not qualified by account:
//! under `--auth sigv4` two accounts' tables of one name add up in one series.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, PoisonError, RwLock};
use std::time::Duration;

use dynabox_handler::report::Report;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use crate::storage::PoolUse;

pub use prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// The label value of every table past the cap.
const OTHER: &str = "_other";

/// Latency buckets, in seconds: a GetItem takes well under a millisecond in memory, a scan of a
/// large table seconds.
const LATENCY_BUCKETS: [f64; 14] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// DynamoDB's type names of the errors that count as throttling.
const THROTTLING: [&str; 3] = ["ThrottlingException", "ProvisionedThroughputExceededException", "RequestLimitExceeded"];

type FloatCounter = Counter<f64, AtomicU64>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TableLabel {
    table: Arc<str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TableOperation {
    table: Arc<str>,
    operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabel {
    operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TableIndex {
    table: Arc<str>,
    index: Arc<str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PurposeLabel {
    purpose: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StorageOperationLabel {
    operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CauseLabel {
    cause: &'static str,
}

/// What a sandbox instance is made for.
#[derive(Debug, Clone, Copy)]
pub enum Purpose {
    Request,
    Backfill,
    Expire,
}

/// Why a sandbox trapped.
#[derive(Debug, Clone, Copy)]
pub enum TrapCause {
    /// A description given from memory proved stale: the request runs again (not a failure).
    StaleDescription,
    /// The request spent its sandbox time.
    OutOfTime,
    /// Anything else: out of memory, a panic, a refused storage call.
    Other,
}

pub struct Metrics {
    registry: Registry,
    tables: TableLabels,
    consumed_read: Family<TableLabel, FloatCounter>,
    consumed_write: Family<TableLabel, FloatCounter>,
    latency: Family<TableOperation, Histogram>,
    user_errors: Family<OperationLabel, Counter>,
    system_errors: Family<TableOperation, Counter>,
    throttled: Family<TableOperation, Counter>,
    conditional_check_failed: Family<TableLabel, Counter>,
    transaction_conflicts: Family<TableLabel, Counter>,
    returned_items: Family<TableOperation, Counter>,
    time_to_live_deleted: Family<TableLabel, Counter>,
    index_progress: Family<TableIndex, Gauge<f64, AtomicU64>>,
    in_flight: Gauge,
    waiting: Gauge,
    instantiations: Family<PurposeLabel, Counter>,
    traps: Family<CauseLabel, Counter>,
    write_turn_wait: Histogram,
    write_turn_timeouts: Counter,
    storage_calls: Family<StorageOperationLabel, Histogram>,
    pool_connections: Family<StateLabel, Gauge>,
    pool_waiting: Gauge,
    stream_records_trimmed: Counter,
    stream_records_waiting_trim: Gauge,
    ready: Gauge,
}

impl Metrics {
    /// The process's metrics.
    pub fn global() -> &'static Metrics {
        static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);
        &METRICS
    }

    fn new() -> Metrics {
        let metrics = Metrics {
            registry: Registry::default(),
            tables: TableLabels::default(),
            consumed_read: Family::default(),
            consumed_write: Family::default(),
            latency: Family::new_with_constructor(|| Histogram::new(LATENCY_BUCKETS)),
            user_errors: Family::default(),
            system_errors: Family::default(),
            throttled: Family::default(),
            conditional_check_failed: Family::default(),
            transaction_conflicts: Family::default(),
            returned_items: Family::default(),
            time_to_live_deleted: Family::default(),
            index_progress: Family::default(),
            in_flight: Gauge::default(),
            waiting: Gauge::default(),
            instantiations: Family::default(),
            traps: Family::default(),
            write_turn_wait: Histogram::new(LATENCY_BUCKETS),
            write_turn_timeouts: Counter::default(),
            storage_calls: Family::new_with_constructor(|| Histogram::new(LATENCY_BUCKETS)),
            pool_connections: Family::default(),
            pool_waiting: Gauge::default(),
            stream_records_trimmed: Counter::default(),
            stream_records_waiting_trim: Gauge::default(),
            ready: Gauge::default(),
        };
        metrics.registered()
    }

    fn registered(mut self) -> Metrics {
        let r = &mut self.registry;
        let d = "dynabox";
        let name = |n: &str| format!("{d}_{n}");
        r.register(
            name("consumed_read_capacity_units"),
            "Read capacity units consumed (CloudWatch ConsumedReadCapacityUnits)",
            self.consumed_read.clone(),
        );
        r.register(
            name("consumed_write_capacity_units"),
            "Write capacity units consumed (CloudWatch ConsumedWriteCapacityUnits)",
            self.consumed_write.clone(),
        );
        r.register_with_unit(
            name("successful_request_latency"),
            "Time from a successful request's body read to its answer (CloudWatch SuccessfulRequestLatency)",
            Unit::Seconds,
            self.latency.clone(),
        );
        r.register(
            name("user_errors"),
            "HTTP 400 refusals but failed conditions, conflicts and throttling (CloudWatch UserErrors)",
            self.user_errors.clone(),
        );
        r.register(
            name("system_errors"),
            "Requests answered with an HTTP 500 error (CloudWatch SystemErrors)",
            self.system_errors.clone(),
        );
        r.register(
            name("throttled_requests"),
            "Requests refused with a throttling error (CloudWatch ThrottledRequests)",
            self.throttled.clone(),
        );
        r.register(
            name("conditional_check_failed_requests"),
            "Conditional writes whose condition failed (CloudWatch ConditionalCheckFailedRequests)",
            self.conditional_check_failed.clone(),
        );
        r.register(
            name("transaction_conflicts"),
            "Transactions cancelled for a conflict, per table named (CloudWatch TransactionConflict)",
            self.transaction_conflicts.clone(),
        );
        r.register(
            name("returned_items"),
            "Items returned by Query and Scan (CloudWatch ReturnedItemCount)",
            self.returned_items.clone(),
        );
        r.register(
            name("time_to_live_deleted_items"),
            "Items deleted because their time to live ended (CloudWatch TimeToLiveDeletedItemCount)",
            self.time_to_live_deleted.clone(),
        );
        r.register(
            name("online_index_percentage_progress"),
            "Progress of filling a new global index (CloudWatch OnlineIndexPercentageProgress)",
            self.index_progress.clone(),
        );
        r.register(name("requests_in_flight"), "Requests running in a sandbox now", self.in_flight.clone());
        r.register(
            name("requests_waiting"),
            "Requests waiting now for their access key's share or a sandbox slot",
            self.waiting.clone(),
        );
        r.register(name("sandbox_instantiations"), "Sandbox instances made, by purpose", self.instantiations.clone());
        r.register(name("sandbox_traps"), "Sandbox runs that ended in a trap, by cause", self.traps.clone());
        r.register_with_unit(
            name("write_turn_wait"),
            "Time a single-item write waited for its turn at the key",
            Unit::Seconds,
            self.write_turn_wait.clone(),
        );
        r.register_with_unit(
            name("storage_call"),
            "Time of one storage call of a request, by storage operation",
            Unit::Seconds,
            self.storage_calls.clone(),
        );
        r.register(
            name("postgres_pool_connections"),
            "PostgreSQL connections of the pool, by state (in_use, idle)",
            self.pool_connections.clone(),
        );
        r.register(
            name("postgres_pool_waiting"),
            "Storage calls waiting for a PostgreSQL connection of the pool",
            self.pool_waiting.clone(),
        );
        r.register(
            name("write_turn_timeouts"),
            "Writes that gave up waiting for their turn at a key and went ahead without it",
            self.write_turn_timeouts.clone(),
        );
        r.register(
            name("stream_records_trimmed"),
            "Stream records deleted past their 24 hours",
            self.stream_records_trimmed.clone(),
        );
        r.register(
            name("stream_records_waiting_trim"),
            "Stream records past their 24 hours that the last trimming batch left for the next",
            self.stream_records_waiting_trim.clone(),
        );
        r.register(
            name("ready"),
            "1 while the store answers and the server is not shutting down (what GET /ready says)",
            self.ready.clone(),
        );
        self
    }

    /// Caps the `table` label at `tables` distinct names.
    pub fn cap_tables(&self, tables: usize) {
        self.tables.cap.store(tables, Ordering::Relaxed);
    }

    /// The text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry)
            .expect("writing to a String does not fail");
        text
    }

    /// Counts one request the API answered: `operation` ("" when it names none this version
    /// answers), the handler's report (or the host's, for the answers it gives itself), its HTTP
    /// status and how long it took.
    pub fn request(&self, operation: &'static str, report: &Report, status: u16, elapsed: Duration) {
        let error = report.error.as_deref();
        let conditional = error == Some("ConditionalCheckFailedException");
        // A failed condition or a transaction conflict found the table there too.
        let admit = error.is_none() || conditional || report.transaction_conflict;
        let mut tables: Vec<Arc<str>> = report.tables.iter().map(|t| self.tables.label(&t.name, admit)).collect();
        for (table, usage) in tables.iter().zip(&report.tables) {
            let label = TableLabel { table: table.clone() };
            if usage.read_units > 0.0 {
                self.consumed_read.get_or_create(&label).inc_by(usage.read_units);
            }
            if usage.write_units > 0.0 {
                self.consumed_write.get_or_create(&label).inc_by(usage.write_units);
            }
        }
        if tables.is_empty() {
            tables.push(Arc::from(""));
        }
        let per_table = |family: &Family<TableOperation, Counter>| {
            for table in &tables {
                family.get_or_create(&TableOperation { table: table.clone(), operation }).inc();
            }
        };
        let per_table_only = |family: &Family<TableLabel, Counter>| {
            for table in &tables {
                family.get_or_create(&TableLabel { table: table.clone() }).inc();
            }
        };
        match error {
            None => {
                for table in &tables {
                    let labels = TableOperation { table: table.clone(), operation };
                    self.latency.get_or_create(&labels).observe(elapsed.as_secs_f64());
                    if report.returned_items > 0 {
                        self.returned_items.get_or_create(&labels).inc_by(u64::from(report.returned_items));
                    }
                }
            }
            Some(_) if conditional => per_table_only(&self.conditional_check_failed),
            Some(_) if report.transaction_conflict => per_table_only(&self.transaction_conflicts),
            Some(kind) if THROTTLING.contains(&kind) => per_table(&self.throttled),
            Some(_) if status >= 500 => per_table(&self.system_errors),
            Some(_) => {
                self.user_errors.get_or_create(&OperationLabel { operation }).inc();
            }
        }
    }

    /// A request waits for admission until the guard drops.
    pub fn waiting(&self) -> GaugeGuard<'_> {
        GaugeGuard::new(&self.waiting)
    }

    /// A request runs in a sandbox until the guard drops.
    pub fn in_flight(&self) -> GaugeGuard<'_> {
        GaugeGuard::new(&self.in_flight)
    }

    pub fn instantiated(&self, purpose: Purpose) {
        let purpose = match purpose {
            Purpose::Request => "request",
            Purpose::Backfill => "backfill",
            Purpose::Expire => "expire",
        };
        self.instantiations.get_or_create(&PurposeLabel { purpose }).inc();
    }

    pub fn trapped(&self, cause: TrapCause) {
        let cause = match cause {
            TrapCause::StaleDescription => "stale_description",
            TrapCause::OutOfTime => "out_of_time",
            TrapCause::Other => "other",
        };
        self.traps.get_or_create(&CauseLabel { cause }).inc();
    }

    /// A writer waited `waited` for its turn at a key; `took` it, or went ahead without.
    pub fn write_turn(&self, waited: Duration, took: bool) {
        self.write_turn_wait.observe(waited.as_secs_f64());
        if !took {
            self.write_turn_timeouts.inc();
        }
    }

    /// A storage call of `operation` (`Request::name`) took `took`, confirmations included.
    pub fn storage_call(&self, operation: &'static str, took: Duration) {
        self.storage_calls.get_or_create(&StorageOperationLabel { operation }).observe(took.as_secs_f64());
    }

    /// The store's pool as it is now (sampled with the readiness check, once a second).
    pub fn pool(&self, pool: PoolUse) {
        let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.pool_connections.get_or_create(&StateLabel { state: "in_use" }).set(count(pool.in_use));
        self.pool_connections.get_or_create(&StateLabel { state: "idle" }).set(count(pool.idle));
        self.pool_waiting.set(count(pool.waiting));
    }

    pub fn time_to_live_deleted(&self, table: &str, items: u32) {
        if items > 0 {
            let table = self.tables.label(table, true);
            self.time_to_live_deleted.get_or_create(&TableLabel { table }).inc_by(u64::from(items));
        }
    }

    /// The progress of filling `index` of `table`, in percent; `None` once it is done (the
    /// series goes: DescribeTable shows the index ACTIVE).
    pub fn index_progress(&self, table: &str, index: &str, percent: Option<f64>) {
        let labels = TableIndex { table: self.tables.label(table, true), index: Arc::from(index) };
        match percent {
            Some(percent) => {
                self.index_progress.get_or_create(&labels).set(percent);
            }
            None => {
                self.index_progress.remove(&labels);
            }
        }
    }

    /// A trimming batch deleted `deleted` stream records and left `left` past their time.
    pub fn stream_records_trimmed(&self, deleted: u64, left: u64) {
        self.stream_records_trimmed.inc_by(deleted);
        self.stream_records_waiting_trim.set(i64::try_from(left).unwrap_or(i64::MAX));
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.set(i64::from(ready));
    }
}

/// A gauge raised while the guard lives.
pub struct GaugeGuard<'a>(&'a Gauge);

impl<'a> GaugeGuard<'a> {
    fn new(gauge: &'a Gauge) -> GaugeGuard<'a> {
        gauge.inc();
        GaugeGuard(gauge)
    }
}

impl Drop for GaugeGuard<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The `table` label's values: the names admitted so far, up to the cap.
struct TableLabels {
    cap: AtomicUsize,
    known: RwLock<HashSet<Arc<str>>>,
    other: Arc<str>,
}

impl Default for TableLabels {
    fn default() -> Self {
        TableLabels { cap: AtomicUsize::new(DEFAULT_TABLE_LABELS), known: RwLock::default(), other: Arc::from(OTHER) }
    }
}

/// How many table names get a label of their own unless `--metrics-max-tables` says otherwise.
pub const DEFAULT_TABLE_LABELS: usize = 100;

impl TableLabels {
    /// The label of `name`: its own if it has one or (`admit`) may take a free place, else
    /// [`OTHER`].
    fn label(&self, name: &str, admit: bool) -> Arc<str> {
        if let Some(known) = self.known.read().unwrap_or_else(PoisonError::into_inner).get(name) {
            return known.clone();
        }
        if !admit {
            return self.other.clone();
        }
        let mut known = self.known.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(known) = known.get(name) {
            return known.clone();
        }
        if known.len() >= self.cap.load(Ordering::Relaxed) {
            return self.other.clone();
        }
        let label: Arc<str> = Arc::from(name);
        known.insert(label.clone());
        label
    }
}

#[cfg(test)]
mod tests {
    use dynabox_handler::report::TableUsage;

    use super::*;

    fn report(tables: &[&str], error: Option<&str>) -> Report {
        let tables = tables
            .iter()
            .map(|name| TableUsage { name: name.to_string(), read_units: 1.0, write_units: 0.0 })
            .collect();
        Report { tables, error: error.map(str::to_owned), ..Report::default() }
    }

    #[test]
    fn table_labels_are_capped_and_only_tables_that_answered_take_a_place() {
        let metrics = Metrics::new();
        metrics.cap_tables(2);
        let ms = Duration::from_millis(1);
        metrics.request("GetItem", &report(&["nope"], Some("ResourceNotFoundException")), 400, ms);
        metrics.request("GetItem", &report(&["first"], None), 200, ms);
        metrics.request("GetItem", &report(&["second"], None), 200, ms);
        metrics.request("GetItem", &report(&["third"], None), 200, ms);
        metrics.request("PutItem", &report(&["first"], Some("ConditionalCheckFailedException")), 400, ms);
        let text = metrics.encode();
        assert!(text.contains(r#"dynabox_consumed_read_capacity_units_total{table="first"} 2"#), "{text}");
        assert!(text.contains(r#"dynabox_consumed_read_capacity_units_total{table="second"} 1"#), "{text}");
        assert!(text.contains(r#"dynabox_consumed_read_capacity_units_total{table="_other"} 2"#), "{text}");
        assert!(!text.contains("third") && !text.contains("nope"), "{text}");
        assert!(text.contains(r#"dynabox_conditional_check_failed_requests_total{table="first"} 1"#), "{text}");
        assert!(text.contains(r#"dynabox_user_errors_total{operation="GetItem"} 1"#), "{text}");
        assert!(
            text.contains(r#"dynabox_successful_request_latency_seconds_count{table="first",operation="GetItem"} 1"#),
            "{text}"
        );
    }

    #[test]
    fn errors_are_counted_as_cloudwatch_counts_them() {
        let metrics = Metrics::new();
        let ms = Duration::from_millis(1);
        metrics.request("Query", &report(&["t1"], None), 200, ms);
        metrics.request("Query", &report(&["t1"], Some("ThrottlingException")), 400, ms);
        metrics.request("Query", &report(&["t1"], Some("InternalServerError")), 500, ms);
        let mut conflict = report(&["t1", "t2"], Some("TransactionCanceledException"));
        conflict.transaction_conflict = true;
        metrics.request("TransactWriteItems", &conflict, 400, ms);
        metrics.request("ListTables", &report(&[], Some("InternalServerError")), 500, ms);
        let text = metrics.encode();
        for line in [
            r#"dynabox_throttled_requests_total{table="t1",operation="Query"} 1"#,
            r#"dynabox_system_errors_total{table="t1",operation="Query"} 1"#,
            r#"dynabox_transaction_conflicts_total{table="t2"} 1"#,
            r#"dynabox_system_errors_total{table="",operation="ListTables"} 1"#,
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
        assert!(!text.contains("dynabox_user_errors_total{"), "{text}");
    }
}
