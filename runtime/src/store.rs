//! What one container instance's wasmtime `Store` holds, and the per-store policy
//! hooks: the memory limiter (Kubernetes `limits.memory`), the CPU budget
//! (`limits.cpu`). What the guest's outgoing HTTP may reach is `outgoing.rs`.
//!
//! Why here and not in wasmtime-wasi: these are Kubernetes semantics. A guest that
//! grows past its memory limit is `OOMKilled`, which the runtime tells apart from any
//! other trap by the typed [`MemoryLimitExceeded`] error, never by a message.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, Store, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::engine::EPOCH_TICK;
use crate::usage::PodUsageCounters;

/// The data of one container instance's store.
pub struct ContainerData {
    pub wasi: WasiCtx,
    pub http: WasiHttpCtx,
    pub table: ResourceTable,
    pub limits: MemoryLimiter,
    pub hooks: crate::outgoing::OutgoingHttp,
    pub cpu: CpuBudget,
    /// The pod's in-memory network (`wasi:sockets/tcp` lands here).
    pub net: crate::net::PodNet,
}

impl WasiView for ContainerData {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for ContainerData {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// Trap payload when a guest's memory would grow past its container's limit.
#[derive(Debug, thiserror::Error)]
#[error("memory limit of {limit} bytes exceeded (wanted {wanted} bytes)")]
pub struct MemoryLimitExceeded {
    pub limit: u64,
    pub wanted: u64,
}

/// Enforces `limits.memory` over all linear memories of one instance.
///
/// Growth past the limit traps (rather than returning -1 to `memory.grow`): a Rust
/// guest would turn the failure into an opaque `unreachable` trap anyway, and the
/// container is to end `OOMKilled` like a process the kernel's OOM killer took.
///
/// It also keeps the pod's memory figure (`usage.rs`): every growth it allows is added to the
/// pod's counters, and the instance's total is given back when the store (and so the limiter)
/// is dropped, so the figure is what the pod's live instances hold.
pub struct MemoryLimiter {
    limit: Option<u64>,
    used: u64,
    /// Set when the limit stopped a growth; shared so the shell sees it after the
    /// store is gone.
    pub oom: Arc<AtomicBool>,
    /// The pod's usage counters; `None` for an instance not charged to its pod (exec probes).
    pod: Option<Arc<PodUsageCounters>>,
}

/// Bound on table elements per instance: tables are small in practice and an
/// unbounded table is a way around the memory limit.
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

impl MemoryLimiter {
    pub fn new(limit: Option<u64>, oom: Arc<AtomicBool>) -> Self {
        Self {
            limit,
            used: 0,
            oom,
            pod: None,
        }
    }

    /// Charges this instance's memory to its pod's usage counters.
    pub fn charging(mut self, pod: Option<Arc<PodUsageCounters>>) -> Self {
        self.pod = pod;
        self
    }
}

impl Drop for MemoryLimiter {
    fn drop(&mut self) {
        if let Some(pod) = &self.pod {
            pod.memory_released(self.used);
        }
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let grow = (desired - current) as u64;
        if let Some(limit) = self.limit
            && self.used + grow > limit
        {
            self.oom.store(true, Ordering::SeqCst);
            return Err(wasmtime::Error::new(MemoryLimitExceeded {
                limit,
                wanted: self.used + grow,
            }));
        }
        self.used += grow;
        if let Some(pod) = &self.pod {
            pod.memory_grown(grow);
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

/// CPU accounting for `limits.cpu`, CFS-style: in every period the container may run
/// `quota` of CPU time; past it, it sleeps to the end of the period.
///
/// Wasm code checks the epoch at function entries and loop heads, so a guest is
/// charged one tick per deadline it reaches; a guest blocked in the host reaches
/// none and is charged nothing. Cloning shares the account, so every instance of an
/// HTTP container draws on the container's one budget.
#[derive(Clone)]
pub struct CpuBudget(Arc<Mutex<CpuAccount>>);

struct CpuAccount {
    quota: Option<Duration>,
    period_start: Instant,
    used: Duration,
}

/// The accounting period (the kernel's CFS default, `cpu.cfs_period_us` = 100 ms).
pub const CPU_PERIOD: Duration = Duration::from_millis(100);

impl CpuBudget {
    /// `millicores` of None means no limit: the guest still yields every tick so a
    /// busy guest never holds a worker thread.
    pub fn new(millicores: Option<u64>) -> Self {
        let quota = millicores.map(|m| CPU_PERIOD.mul_f64(m as f64 / 1000.0).max(EPOCH_TICK));
        Self(Arc::new(Mutex::new(CpuAccount {
            quota,
            period_start: Instant::now(),
            used: Duration::ZERO,
        })))
    }

    /// Charges one tick and says how long the guest must sleep, if at all.
    fn charge(&self, now: Instant) -> Option<Duration> {
        let mut a = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let quota = a.quota?;
        if now.duration_since(a.period_start) >= CPU_PERIOD {
            a.period_start = now;
            a.used = Duration::ZERO;
        }
        a.used += EPOCH_TICK;
        if a.used >= quota {
            let resume = a.period_start + CPU_PERIOD;
            a.period_start = resume;
            a.used = Duration::ZERO;
            Some(resume.saturating_duration_since(now))
        } else {
            None
        }
    }
}

/// Installs the limiter and the time-slicing callback on a fresh store.
pub fn apply_limits(store: &mut Store<ContainerData>) {
    store.limiter(|data| &mut data.limits);
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|mut ctx| {
        let sleep = ctx.data_mut().cpu.charge(Instant::now());
        Ok(match sleep {
            Some(d) => UpdateDeadline::YieldCustom(1, Box::pin(tokio::time::sleep(d))),
            None => UpdateDeadline::Yield(1),
        })
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_quota_throttles_at_the_budget_and_resets_each_period() {
        // 10 ms quota per 100 ms period = 5 ticks of 2 ms.
        let b = CpuBudget::new(Some(100));
        let t0 = b.0.lock().unwrap().period_start;
        for _ in 0..4 {
            assert_eq!(b.charge(t0), None);
        }
        let sleep = b.charge(t0).expect("fifth tick exhausts the quota");
        assert_eq!(sleep, CPU_PERIOD);
    }

    #[test]
    fn no_limit_never_throttles() {
        let b = CpuBudget::new(None);
        let t0 = Instant::now();
        assert!((0..10_000).all(|_| b.charge(t0).is_none()));
    }

    #[test]
    fn memory_limit_traps_and_flags_oom() {
        let oom = Arc::new(AtomicBool::new(false));
        let mut l = MemoryLimiter::new(Some(1 << 20), oom.clone());
        assert!(l.memory_growing(0, 512 << 10, None).unwrap());
        let err = l.memory_growing(512 << 10, 2 << 20, None).unwrap_err();
        assert!(err.downcast_ref::<MemoryLimitExceeded>().is_some());
        assert!(oom.load(Ordering::SeqCst));
    }

    #[test]
    fn memory_is_charged_to_the_pod_while_the_instance_lives() {
        let pod = Arc::new(PodUsageCounters::default());
        let oom = Arc::new(AtomicBool::new(false));
        let mut a = MemoryLimiter::new(Some(1 << 20), oom.clone()).charging(Some(pod.clone()));
        let mut b = MemoryLimiter::new(None, oom).charging(Some(pod.clone()));
        assert!(a.memory_growing(0, 64 << 10, None).unwrap());
        assert!(a.memory_growing(64 << 10, 128 << 10, None).unwrap());
        assert!(b.memory_growing(0, 64 << 10, None).unwrap());
        // A refused growth is not charged.
        assert!(a.memory_growing(128 << 10, 4 << 20, None).is_err());
        assert_eq!(pod.sample().memory_bytes, 192 << 10);
        drop(a);
        assert_eq!(pod.sample().memory_bytes, 64 << 10);
        drop(b);
        assert_eq!(pod.sample().memory_bytes, 0);
    }
}
