//! The sandbox: one engine and one pre-instantiated handler component; every request gets a
//! fresh store and instance from the pooling allocator, with a memory cap and a budget of sandbox
//! time (time spent running guest code; waits on storage do not count). A trap ends that request
//! alone, answered as DynamoDB's `InternalServerError`.

mod admission;
mod code;
mod imports;
mod keyed;
mod memory_budget;
mod write_turns;

use std::sync::Arc;
use std::time::{Duration, Instant};

use dynabox_handler::auth::Principal;
use dynabox_handler::error::{ApiError, ErrorKind};
use dynabox_handler::http as native;
use dynabox_handler::protocol::error_response;
use dynabox_handler::report as native_report;
use dynabox_handler::time::now_millis;
use tokio::sync::Semaphore;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, StoreContextMut,
    UpdateDeadline,
};

use crate::auth::Authenticator;
use crate::metrics::{Metrics, Purpose, TrapCause};
use crate::storage::remembered::{Remembered, RequestStorage, Stale};
use admission::Admission;
use memory_budget::SandboxMemory;
pub use memory_budget::{MemoryBudget, Reservation};
use write_turns::{Turn, WriteTurns};

wasmtime::component::bindgen!({
    world: "handler",
    path: "../wit",
    imports: { default: async | trappable },
    exports: { default: async },
});

/// The handler component as machine code, compiled by `build.rs` (see `code.rs`).
const HANDLER_CODE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/handler.cwasm"));

/// How often the epoch ticks; sandbox-time deadlines are checked at whole ticks.
const EPOCH_TICK: Duration = Duration::from_millis(5);

/// What the trap of a request that spent its sandbox time says.
const OUT_OF_TIME: &str = "the request ran out of sandbox time";

#[derive(Debug, Clone)]
pub struct Limits {
    /// Linear memory one request may use.
    pub memory_bytes: usize,
    /// Memory all requests in flight may hold at once: bodies and sandbox memory.
    pub memory_budget_bytes: usize,
    /// Time one request may spend running guest code. Waits on storage do not count, so a slow
    /// store can never turn a committed write into a trap; storage calls have their own timeout.
    pub sandbox_time: Duration,
    /// Requests running at once; more wait for a free slot.
    pub concurrency: u32,
    /// Requests of one access key running at once; as many more may wait, and beyond that the
    /// key's requests get `ThrottlingException`.
    pub key_concurrency: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 256 << 20,
            memory_budget_bytes: 1 << 30,
            sandbox_time: Duration::from_secs(10),
            concurrency: 64,
            key_concurrency: 32,
        }
    }
}

pub struct Runtime {
    engine: Engine,
    pre: HandlerPre<RequestState>,
    storage: Arc<Remembered>,
    auth: Arc<Authenticator>,
    limits: Limits,
    slots: Semaphore,
    admission: Admission,
    write_turns: Arc<WriteTurns>,
    memory: MemoryBudget,
}

/// Everything one request's store holds.
pub struct RequestState {
    /// The store as this request sees it: see `storage::remembered`.
    storage: RequestStorage,
    auth: Arc<Authenticator>,
    clock: SandboxClock,
    /// The account `auth` returned for this request: the only one its storage calls may name.
    account: Option<String>,
    write_turns: Arc<WriteTurns>,
    /// The turn at the key this request announced with `get-for-write`, until its next write.
    turn: Option<Turn>,
    /// The sandbox's memory, taken from the server's budget as it grows.
    memory: SandboxMemory,
}

// The report's types only: the interface has no functions.
impl dynabox::service::report::Host for RequestState {}

/// Measures a request's sandbox time: wall time since the store was made, minus the time its host
/// calls spent waiting on storage.
struct SandboxClock {
    started: Instant,
    waited: Duration,
    budget: Duration,
}

impl SandboxClock {
    fn used(&self) -> Duration {
        self.started.elapsed().saturating_sub(self.waited)
    }
}

impl Runtime {
    /// Loads the handler's machine code and links it against the store.
    pub fn new(
        store: Arc<dyn crate::storage::Store>,
        auth: Arc<Authenticator>,
        limits: Limits,
    ) -> anyhow::Result<Self> {
        let engine = Engine::new(&engine_config(&limits)).map_err(anyhow::Error::from)?;
        // SAFETY: the bytes are what `Engine::precompile_component` of this wasmtime (one
        // lockfile builds both) made at build time under the settings of `code.rs`, which this
        // engine applies too; wasmtime checks version, settings and CPU features, and refuses
        // code that does not fit.
        let component = unsafe { Component::deserialize(&engine, HANDLER_CODE) }?;
        let mut linker = Linker::<RequestState>::new(&engine);
        Handler::add_to_linker::<RequestState, HasSelf<RequestState>>(&mut linker, |state| state)?;
        let pre = HandlerPre::new(linker.instantiate_pre(&component)?)?;
        start_epoch_ticker(&engine);
        let slots = Semaphore::new(limits.concurrency as usize);
        let key_concurrency = limits.key_concurrency as usize;
        let admission = Admission::new(key_concurrency, key_concurrency);
        let memory = MemoryBudget::new(limits.memory_budget_bytes);
        let storage = Arc::new(Remembered::new(store));
        Ok(Runtime { engine, pre, storage, auth, limits, slots, admission, write_turns: Arc::default(), memory })
    }

    /// The server's memory budget, which request bodies are read within too.
    pub fn memory_budget(&self) -> &MemoryBudget {
        &self.memory
    }

    /// Runs one request in a fresh instance, once its access key's share and a slot allow;
    /// `request_id` is the id its response carries.
    pub async fn handle(&self, request: native::Request, request_id: String) -> Handled {
        self.handle_with(request, request_id, &self.auth).await
    }

    /// Runs a request the host made for a principal it authenticated itself (the console's
    /// signed-in account) exactly as an API request, bound to that principal's account: as for
    /// a signed request, the host decides the account, never the sandbox.
    pub async fn handle_as(&self, request: native::Request, principal: Principal) -> native::Response {
        let auth = Arc::new(Authenticator::SignedIn(principal));
        self.handle_with(request, dynabox_handler::protocol::request_id(), &auth).await.response
    }

    async fn handle_with(&self, request: native::Request, request_id: String, auth: &Arc<Authenticator>) -> Handled {
        let metrics = Metrics::global();
        let waiting = metrics.waiting();
        let Some(_admitted) = self.admission.admit(&request).await else {
            let throttled = ApiError::new(ErrorKind::Throttling, "Rate of requests exceeds the allowed throughput.");
            return Handled::refused(&throttled, request_id);
        };
        let _slot = self.slots.acquire().await.expect("the semaphore is never closed");
        drop(waiting);
        let _running = metrics.in_flight();
        match self.run(request, &request_id, auth).await {
            Ok(handled) => handled,
            Err(trap) => {
                let trap = one_line(&trap);
                metrics.trapped(if trap.contains(OUT_OF_TIME) { TrapCause::OutOfTime } else { TrapCause::Other });
                tracing::error!("the request failed in the sandbox: {trap}");
                Handled::refused(&ApiError::new(ErrorKind::InternalServerError, "Internal server error"), request_id)
            }
        }
    }

    /// Runs one step of filling a global index, in a fresh instance bound to `account` (the host
    /// chose the work, so no request authenticates it); the step says whether the index needs more.
    pub async fn backfill(
        &self,
        account: &str,
        table: &str,
        index: &str,
        budget: u32,
    ) -> anyhow::Result<native_report::Step> {
        let _slot = self.slots.acquire().await.expect("the semaphore is never closed");
        let mut store = self.new_store(true);
        store.data_mut().account = Some(account.to_string());
        Metrics::global().instantiated(Purpose::Backfill);
        let handler = self.pre.instantiate_async(&mut store).await?;
        let context = self.context(now_millis() as u64, String::new());
        let step = handler.call_backfill(&mut store, &context, account, table, index, budget).await?;
        step.map(native_step).map_err(anyhow::Error::msg)
    }

    /// Runs one step of the expiry sweep of a table, in a fresh instance bound to `account`: deletes
    /// at most `budget` items whose time to live ended by `now` (seconds since the epoch); the
    /// step says how many, and whether anything expired is left.
    pub async fn expire(
        &self,
        account: &str,
        table: &str,
        now: u64,
        budget: u32,
    ) -> anyhow::Result<native_report::Step> {
        let _slot = self.slots.acquire().await.expect("the semaphore is never closed");
        let mut store = self.new_store(true);
        store.data_mut().account = Some(account.to_string());
        Metrics::global().instantiated(Purpose::Expire);
        let handler = self.pre.instantiate_async(&mut store).await?;
        let context = self.context(now.saturating_mul(1000), String::new());
        let step = handler.call_expire(&mut store, &context, account, table, budget).await?;
        step.map(native_step).map_err(anyhow::Error::msg)
    }

    /// What the handler knows of the world besides its imports: the time, fresh randomness from
    /// the system for its ids (it imports no WASI), whether `auth` checks signatures, and the id
    /// of the call.
    fn context(&self, now_ms: u64, request_id: String) -> Context {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).expect("the system has randomness");
        let word = |i: usize| u64::from_le_bytes(seed[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
        let seed = (word(0), word(1), word(2), word(3));
        Context { now_ms, seed, checks_signatures: self.auth.checks_signatures(), request_id }
    }

    /// Runs the request, and once more with every description read from the store if one it was
    /// given from memory proved stale (see `storage::remembered`): no write commits on a stale
    /// description, so the first run changed nothing.
    async fn run(
        &self,
        request: native::Request,
        request_id: &str,
        auth: &Arc<Authenticator>,
    ) -> anyhow::Result<Handled> {
        let request =
            Request { method: request.method, path: request.path, headers: request.headers, body: request.body };
        let mut fresh_descriptions = false;
        loop {
            let mut store = self.new_store(fresh_descriptions);
            Metrics::global().instantiated(Purpose::Request);
            store.data_mut().auth = auth.clone();
            let handler = self.pre.instantiate_async(&mut store).await?;
            let context = self.context(now_millis() as u64, request_id.to_string());
            let context = Context { checks_signatures: auth.checks_signatures(), ..context };
            let outcome = call(&handler, &mut store, context, &request).await;
            let state = store.data_mut();
            let account = state.account.clone();
            let stale = match (&outcome, &account) {
                (Err(trap), _) => trap.chain().any(|e| e.is::<Stale>()),
                (Ok(_), Some(account)) => state.storage.finish(account).await.is_err(),
                (Ok(_), None) => false,
            };
            if !stale || fresh_descriptions {
                return outcome.map(|(response, report)| Handled { response, report, account });
            }
            if outcome.is_err() {
                Metrics::global().trapped(TrapCause::StaleDescription);
            }
            fresh_descriptions = true;
        }
    }

    /// A fresh store for one request, with the sandbox-time deadline; `fresh_descriptions` for
    /// calls that take no description from memory.
    fn new_store(&self, fresh_descriptions: bool) -> Store<RequestState> {
        let budget = self.limits.sandbox_time;
        let state = RequestState {
            storage: self.storage.request(fresh_descriptions),
            auth: self.auth.clone(),
            clock: SandboxClock { started: Instant::now(), waited: Duration::ZERO, budget },
            account: None,
            write_turns: self.write_turns.clone(),
            turn: None,
            memory: self.memory.sandbox(),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter_async(|state| &mut state.memory);
        // At every epoch tick a running guest yields to the executor, so a long request (a large
        // filtered scan) never holds a worker thread from the small ones queued behind it, and
        // its sandbox time is checked: wall time minus the time spent waiting on storage.
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|store: StoreContextMut<'_, RequestState>| {
            let clock = &store.data().clock;
            match clock.budget.checked_sub(clock.used()) {
                Some(left) if !left.is_zero() => Ok(UpdateDeadline::Yield(1)),
                _ => Err(wasmtime::format_err!("{OUT_OF_TIME} ({:?})", clock.budget)),
            }
        });
        store
    }

    /// Runs one request like [`Runtime::handle`] (without the concurrency slot) and times its
    /// phases; for `dynabox-bench` only.
    #[doc(hidden)]
    pub async fn handle_phases(&self, request: native::Request) -> anyhow::Result<(native::Response, Phases)> {
        let started = Instant::now();
        let mut store = self.new_store(true);
        let stored = Instant::now();
        let handler = self.pre.instantiate_async(&mut store).await?;
        let instantiated = Instant::now();
        let request =
            Request { method: request.method, path: request.path, headers: request.headers, body: request.body };
        let context = self.context(now_millis() as u64, String::new());
        let (response, _) = call(&handler, &mut store, context, &request).await?;
        let called = Instant::now();
        // The instance lives in the store: dropping the store resets and returns its pool slots.
        drop(store);
        let dropped = Instant::now();
        let phases = Phases {
            store: stored - started,
            instantiate: instantiated - stored,
            call: called - instantiated,
            drop: dropped - called,
        };
        Ok((response, phases))
    }
}

/// A trap as one log line: what failed and its root cause, without the wasm backtrace.
fn one_line(trap: &anyhow::Error) -> String {
    let first_line = |text: String| text.lines().next().unwrap_or_default().to_string();
    let (what, cause) = (first_line(trap.to_string()), first_line(trap.root_cause().to_string()));
    if what == cause { what } else { format!("{what}: {cause}") }
}

/// Where the time of one sandboxed request goes (see [`Runtime::handle_phases`]).
#[doc(hidden)]
#[derive(Debug, Default, Clone, Copy)]
pub struct Phases {
    /// `Store::new` with the request's state.
    pub store: Duration,
    /// Instantiating the component from the pool.
    pub instantiate: Duration,
    /// The `handle` export, storage calls included.
    pub call: Duration,
    /// Dropping the instance and store: the pool slots are reset and returned.
    pub drop: Duration,
}

/// A request answered: its response, what it did (the handler's report, or the host's for the
/// answers the host gives itself) and the account it was authenticated for.
#[derive(Debug)]
pub struct Handled {
    pub response: native::Response,
    pub report: native_report::Report,
    pub account: Option<String>,
}

impl Handled {
    /// The host's own answer with `error`, for a request the handler did not answer.
    fn refused(error: &ApiError, request_id: String) -> Handled {
        let mut report = native_report::Report::default();
        report.failed(error);
        Handled { response: error_response(error, request_id), report, account: None }
    }
}

async fn call(
    handler: &Handler,
    store: &mut Store<RequestState>,
    context: Context,
    request: &Request,
) -> anyhow::Result<(native::Response, native_report::Report)> {
    let (response, report) = handler.call_handle(store, &context, request).await?;
    let response = native::Response { status: response.status, headers: response.headers, body: response.body };
    let tables = report.tables.into_iter().map(|t| native_report::TableUsage {
        name: t.name,
        read_units: t.read_units,
        write_units: t.write_units,
    });
    let report = native_report::Report {
        tables: tables.collect(),
        error: report.error,
        transaction_conflict: report.transaction_conflict,
        returned_items: report.returned_items,
    };
    Ok((response, report))
}

fn native_step(step: Step) -> native_report::Step {
    native_report::Step { done: step.done, count: step.count }
}

fn engine_config(limits: &Limits) -> Config {
    let mut pool = PoolingAllocationConfig::default();
    let instances = limits.concurrency;
    // The handler component holds a few core instances and tables but one memory.
    pool.total_component_instances(instances)
        .total_core_instances(instances * 8)
        .total_memories(instances * 2)
        .total_tables(instances * 8)
        .total_stacks(instances)
        .max_memory_size(limits.memory_bytes);
    // Each request's pool slots are reset when its store drops. By default that is
    // `madvise(MADV_DONTNEED)` per memory and table: a page-table zap with a TLB shootdown (an IPI
    // to every other CPU running one of our threads, i.e. the other tokio workers) and a page fault
    // for every page the next request touches again. Instead:
    //
    // Tables (a few KiB of funcrefs) are zeroed with `memset`. Alone: GetItem 65.2 -> 54.7 µs.
    pool.table_keep_resident(16 << 10);
    // Linear memory: the PAGEMAP_SCAN ioctl (Linux >= 6.7) finds the resident pages and up to this
    // much of them is restored with `memset`/`memcpy` from the image; only beyond it `madvise`.
    // Alone: 65.2 -> 49.9 µs; with the tables: 65.2 -> 32.0 µs per GetItem (drop 9.8 -> 4.0 µs,
    // call 43.4 -> 20.8 µs: no page faults) and 5.7k -> 21.7k PutItem/s, 6.2k -> 27.3k GetItem/s
    // in the server, TLB shootdowns 387k -> ~250 (the epoch ticker is not their source: without it
    // there were 382k). Without userfaultfd write-protection the scan cannot tell pages this
    // request wrote from pages a past one did, so what a slot's traffic has touched (up to this
    // much) is reset on every drop (after one 300 KB PutItem: +2.9 µs per later request at
    // 64 KiB, +5.5 at 128 KiB, +27 at 1 MiB). Yet too little costs more: a slot that has served
    // ddb-bench's setup (CreateTable, BatchWriteItems) and its four operations has touched
    // between 128 and 256 KiB, and at 64 or 128 KiB every later request ended in an `madvise`
    // of the rest, a TLB shootdown (in-memory GetItem under wrk: 8.8k/s at 128 KiB, 11.3k/s and
    // no `madvise` at 256 KiB). Without PAGEMAP_SCAN the `memset` covers the first bytes of
    // memory, the stack's unused bottom (1 MiB: 89.3 µs), so the defaults stay there.
    if PoolingAllocationConfig::is_pagemap_scan_available() {
        pool.pagemap_scan(Enabled::Auto).linear_memory_keep_resident(256 << 10);
    }
    // Measured on top of these and left at their defaults (GetItem, 32.0 µs): `memory_init_cow`
    // off 60.6; `table_lazy_init` off 42.7 (all 168 funcrefs set up front); `memory_reservation`
    // 256 MiB 34.4, `memory_guard_size(0)` 37.6 (bounds checks in the code); `max_unused_warm_slots`
    // 0, `decommit_batch_size` 16, `async_stack_size` 256 KiB, no epoch
    // ticker: all within ±0.3; `async_stack_zeroing` with `async_stack_keep_resident` 38.0.
    let mut config = Config::new();
    code::apply(&mut config);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    config
}

/// Advances the engine's epoch forever: at each tick a running guest yields and its sandbox time
/// is checked.
fn start_epoch_ticker(engine: &Engine) {
    let engine = engine.weak();
    std::thread::Builder::new()
        .name("dynabox-epoch".into())
        .spawn(move || {
            while let Some(engine) = engine.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .expect("a thread starts");
}
