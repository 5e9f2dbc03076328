//! The sandbox: one engine and one pre-instantiated handler component; every request gets a
//! fresh store and instance from the pooling allocator, with a memory cap and a CPU deadline.
//! A trap ends that request alone, answered as DynamoDB's `InternalServerError`.

mod imports;

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use dynabox_handler::error::{ApiError, ErrorKind};
use dynabox_handler::http as native;
use dynabox_handler::protocol::{error_response, request_id};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::auth::Authenticator;
use crate::storage::Backend;

wasmtime::component::bindgen!({
    world: "handler",
    path: "../wit",
    imports: { default: async | trappable },
    exports: { default: async },
});

/// The handler component, built by `build.rs`.
const HANDLER_WASM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/handler.wasm"));

/// How often the epoch ticks; CPU deadlines are whole ticks.
const EPOCH_TICK: Duration = Duration::from_millis(5);

#[derive(Debug, Clone)]
pub struct Limits {
    /// Linear memory one request may use.
    pub memory_bytes: usize,
    /// CPU time one request may spend inside the sandbox (time waiting on storage not counted).
    pub cpu_time: Duration,
    /// Requests running at once; more wait for a free slot.
    pub concurrency: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { memory_bytes: 256 << 20, cpu_time: Duration::from_secs(10), concurrency: 64 }
    }
}

pub struct Runtime {
    engine: Engine,
    pre: HandlerPre<RequestState>,
    backend: Arc<Backend>,
    auth: Arc<Authenticator>,
    limits: Limits,
    slots: Semaphore,
}

/// Everything one request's store holds.
pub struct RequestState {
    backend: Arc<Backend>,
    auth: Arc<Authenticator>,
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for RequestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl Runtime {
    /// Compiles (or loads from `cache_dir`) the handler and links it against the backend.
    pub fn new(backend: Arc<Backend>, auth: Arc<Authenticator>, limits: Limits, cache_dir: Option<&Path>) -> anyhow::Result<Self> {
        let engine = Engine::new(&engine_config(&limits)).map_err(anyhow::Error::from)?;
        let component = load_component(&engine, cache_dir)?;
        let mut linker = Linker::<RequestState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        Handler::add_to_linker::<RequestState, HasSelf<RequestState>>(&mut linker, |state| state)?;
        let pre = HandlerPre::new(linker.instantiate_pre(&component)?)?;
        start_epoch_ticker(&engine);
        let slots = Semaphore::new(limits.concurrency as usize);
        Ok(Runtime { engine, pre, backend, auth, limits, slots })
    }

    /// Runs one request in a fresh instance.
    pub async fn handle(&self, request: native::Request) -> native::Response {
        let _slot = self.slots.acquire().await.expect("the semaphore is never closed");
        match self.run(request).await {
            Ok(response) => response,
            Err(trap) => {
                let request_id = request_id();
                eprintln!("dynabox: request {request_id} failed in the sandbox: {trap:#}");
                error_response(&ApiError::new(ErrorKind::InternalServerError, "Internal server error"), request_id)
            }
        }
    }

    async fn run(&self, request: native::Request) -> anyhow::Result<native::Response> {
        let state = RequestState {
            backend: self.backend.clone(),
            auth: self.auth.clone(),
            wasi: WasiCtx::builder().inherit_stderr().build(),
            table: ResourceTable::new(),
        };
        let mut store = Store::new(&self.engine, state);
        store.set_epoch_deadline(ticks(self.limits.cpu_time));
        let handler = self.pre.instantiate_async(&mut store).await?;
        let request = Request {
            method: request.method,
            path: request.path,
            headers: request.headers,
            body: request.body,
        };
        let response = handler.call_handle(&mut store, &request).await?;
        Ok(native::Response { status: response.status, headers: response.headers, body: response.body })
    }
}

fn engine_config(limits: &Limits) -> Config {
    let mut pool = PoolingAllocationConfig::default();
    let instances = limits.concurrency;
    // A Rust wasip2 component holds a handful of core instances and tables but one memory.
    pool.total_component_instances(instances)
        .total_core_instances(instances * 8)
        .total_memories(instances * 2)
        .total_tables(instances * 8)
        .total_stacks(instances)
        .max_memory_size(limits.memory_bytes);
    let mut config = Config::new();
    config.epoch_interruption(true).allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    config
}

fn ticks(duration: Duration) -> u64 {
    (duration.as_micros() / EPOCH_TICK.as_micros()).max(1) as u64
}

/// Advances the engine's epoch forever; each store traps once its deadline in ticks passes.
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

/// Loads the compiled handler from the cache, or compiles and caches it. The cache key covers
/// the component's bytes, the wasmtime version and every engine setting that affects code.
fn load_component(engine: &Engine, cache_dir: Option<&Path>) -> anyhow::Result<Component> {
    let Some(path) = cache_dir.map(|dir| cached_component_path(engine, dir)) else {
        return Component::new(engine, HANDLER_WASM).map_err(anyhow::Error::from);
    };
    if path.exists() {
        // SAFETY: the file was written by `Component::serialize` for an engine with this exact
        // compatibility hash (part of its name), in a directory only dynabox writes.
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(component) => return Ok(component),
            Err(e) => eprintln!("dynabox: ignoring unusable compiled-code cache {}: {e}", path.display()),
        }
    }
    let component = Component::new(engine, HANDLER_WASM).map_err(anyhow::Error::from)?;
    if let Err(e) = store_compiled(&component, &path) {
        eprintln!("dynabox: could not cache compiled code at {}: {e:#}", path.display());
    }
    Ok(component)
}

fn cached_component_path(engine: &Engine, dir: &Path) -> PathBuf {
    let mut engine_hash = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut engine_hash);
    let wasm_hash = Sha256::digest(HANDLER_WASM);
    let wasm_hash: String = wasm_hash[..12].iter().map(|b| format!("{b:02x}")).collect();
    dir.join(format!("handler-{wasm_hash}-{:016x}.cwasm", engine_hash.finish()))
}

fn store_compiled(component: &Component, path: &Path) -> anyhow::Result<()> {
    let dir = path.parent().context("cache path has a parent")?;
    std::fs::create_dir_all(dir)?;
    // Write then rename, so a server starting at the same moment never reads half a file.
    let temporary = dir.join(format!(".{}.{}", std::process::id(), path.file_name().unwrap().to_string_lossy()));
    std::fs::write(&temporary, component.serialize()?)?;
    std::fs::rename(&temporary, path)?;
    Ok(())
}
