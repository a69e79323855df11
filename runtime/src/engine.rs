//! The node's one wasmtime [`Engine`]: configuration, the epoch ticker and the
//! linker every container is instantiated through.
//!
//! Why one engine: compiled components are tied to the engine's settings, and the
//! pooling allocator's slots are shared by every instance on the node, so a fresh
//! instance per HTTP request costs microseconds (ENGINE-NOTES, "Serving HTTP").

use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::Linker;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::error::RuntimeError;
use crate::store::ContainerData;

/// How often the epoch advances. A guest runs at most this long before it yields
/// to the scheduler (time-slicing), and CPU limits are accounted in these steps.
pub const EPOCH_TICK: Duration = Duration::from_millis(2);

/// Largest linear memory one guest may have. Memory limits below this are
/// enforced by the store's limiter; this is the pooling slot size.
pub const MAX_MEMORY_BYTES: usize = 4 << 30;

/// Concurrent component instances the pool holds. Each HTTP request in flight and
/// each running command container uses one.
pub const POOL_COMPONENT_INSTANCES: u32 = 1000;

/// A Rust component has several core instances (the guest plus the WASI adapter
/// shims), so the core pool is larger than the component pool.
pub const POOL_CORE_INSTANCES: u32 = 4 * POOL_COMPONENT_INSTANCES;

/// Bytes of each linear memory reset with memset rather than `madvise` when its slot is
/// freed: the first few heap pages every request touches.
pub const LINEAR_MEMORY_KEEP_RESIDENT: usize = 1 << 20;

/// The same for tables (function tables are small).
pub const TABLE_KEEP_RESIDENT: usize = 64 << 10;

/// Slot decommits gathered into one batch of `madvise` calls.
pub const DECOMMIT_BATCH: usize = 32;

/// The wasmtime engine and the linker with all of WASI 0.2 and `wasi:http`.
#[derive(Clone)]
pub struct WasmEngine {
    inner: Arc<EngineInner>,
}

struct EngineInner {
    engine: Engine,
    linker: Linker<ContainerData>,
}

impl WasmEngine {
    /// Builds the engine and starts its epoch ticker: a plain thread, so the engine
    /// outlives any one tokio runtime; it ends when the engine is dropped.
    pub fn new() -> Result<Self, RuntimeError> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        config.parallel_compilation(true);

        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(POOL_COMPONENT_INSTANCES);
        pool.total_core_instances(POOL_CORE_INSTANCES);
        pool.total_memories(2 * POOL_COMPONENT_INSTANCES);
        pool.total_tables(POOL_CORE_INSTANCES);
        pool.total_stacks(POOL_COMPONENT_INSTANCES);
        pool.max_memory_size(MAX_MEMORY_BYTES);
        pool.max_core_instances_per_component(64);
        pool.max_memories_per_component(16);
        pool.max_tables_per_component(64);
        pool.max_component_instance_size(1 << 20);
        pool.max_core_instance_size(1 << 20);
        // Reset slots without syscalls where possible: a fresh instance per HTTP request
        // frees one per request, and each `madvise` of a slot flushes the TLB of every core
        // running the process (an IPI per core), which measured as the largest single cost of
        // an in-memory hop. Pages a guest touched are zeroed with memset (up to the limits
        // below; `pagemap_scan` finds just those pages on kernels that have it) and the
        // remaining decommits are batched.
        pool.linear_memory_keep_resident(LINEAR_MEMORY_KEEP_RESIDENT);
        pool.table_keep_resident(TABLE_KEEP_RESIDENT);
        pool.pagemap_scan(wasmtime::Enabled::Auto);
        pool.decommit_batch_size(DECOMMIT_BATCH);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));

        let engine = Engine::new(&config).map_err(RuntimeError::engine)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(RuntimeError::engine)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).map_err(RuntimeError::engine)?;
        // The pod's in-memory TCP and name lookup replace wasmtime-wasi's host-socket ones.
        linker.allow_shadowing(true);
        crate::net::add_to_linker(&mut linker).map_err(RuntimeError::engine)?;
        // Requests to pods of this process answer on the caller's task (`hop_http`).
        crate::hop_http::add_to_linker(&mut linker).map_err(RuntimeError::engine)?;
        linker.allow_shadowing(false);

        let weak = engine.weak();
        std::thread::Builder::new()
            .name("capstan-epoch".into())
            .spawn(move || {
                while let Some(engine) = weak.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(EPOCH_TICK);
                }
            })
            .map_err(RuntimeError::engine)?;
        Ok(Self {
            inner: Arc::new(EngineInner { engine, linker }),
        })
    }

    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    pub fn linker(&self) -> &Linker<ContainerData> {
        &self.inner.linker
    }
}
