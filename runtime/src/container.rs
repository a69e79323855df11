//! Running one container: a `wasi:cli/command` instance run to exit, or a
//! `wasi:http/proxy` component served with a fresh instance per request.
//!
//! A guest's end is classified here into a Kubernetes termination: exit code and
//! reason. A trap is the Wasm analogue of a fatal signal: exit code 134 (as for
//! SIGABRT), reason `Error`, the trap as message. Growth past the memory limit is
//! `OOMKilled` with 137, as the kernel's OOM killer reports.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use http_body_util::BodyExt;
use tokio::sync::{Notify, mpsc};
use wasmtime::Store;
use wasmtime::component::{Component, ResourceTable};
use wasmtime_wasi::p2::bindings::CommandPre;
use wasmtime_wasi_http::WasiHttpCtx;
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::engine::WasmEngine;
use crate::error::RuntimeError;
use crate::hops::{Driven, Hops, QuietWaker};
use crate::lifecycle::Exit;
use crate::outgoing::OutgoingHttp;
use crate::sandbox::ContainerPlan;
use crate::store::{ContainerData, CpuBudget, MemoryLimiter, apply_limits};
use crate::usage::{PodUsageCounters, metered};

/// Exit code reported for a trap (128 + SIGABRT).
pub const TRAP_EXIT_CODE: i32 = 134;
/// Exit code reported for a container killed for memory or after its grace period.
pub const KILLED_EXIT_CODE: i32 = 137;

/// A component linked and pre-instantiated: what it can be run as.
pub struct Program {
    pub command: Option<CommandPre<ContainerData>>,
    pub proxy: Option<ProxyPre<ContainerData>>,
}

impl Program {
    pub fn new(engine: &WasmEngine, component: &Component, image: &str) -> Result<Self, RuntimeError> {
        let pre = engine
            .linker()
            .instantiate_pre(component)
            .map_err(|e| RuntimeError::Link {
                image: image.to_string(),
                reason: format!("{e:#}"),
            })?;
        let command = CommandPre::new(pre.clone()).ok();
        let proxy = ProxyPre::new(pre).ok();
        if command.is_none() && proxy.is_none() {
            return Err(RuntimeError::NotRunnable(image.to_string()));
        }
        Ok(Self { command, proxy })
    }
}

/// A new store for one instance of the container, with its limits applied; its memory is
/// charged to `usage`, the pod's counters, if given.
fn new_store(
    engine: &WasmEngine,
    plan: &ContainerPlan,
    cpu: CpuBudget,
    oom: &Arc<AtomicBool>,
    usage: Option<&Arc<PodUsageCounters>>,
) -> Result<Store<ContainerData>, RuntimeError> {
    let data = ContainerData {
        wasi: plan.wasi_ctx()?,
        http: WasiHttpCtx::new(),
        table: ResourceTable::new(),
        limits: MemoryLimiter::new(plan.memory_limit, oom.clone()).charging(usage.cloned()),
        hooks: OutgoingHttp::new(plan.outgoing.clone(), Hops::default()),
        cpu,
        net: plan.net.clone(),
    };
    let mut store = Store::new(engine.engine(), data);
    apply_limits(&mut store);
    Ok(store)
}

/// Classifies how a guest call ended.
pub fn classify(result: wasmtime::Result<Result<(), ()>>, oom: bool) -> Exit {
    match result {
        Ok(Ok(())) => Exit::new(0, "Completed", ""),
        Ok(Err(())) => Exit::new(1, "Error", ""),
        Err(e) => {
            if oom {
                return Exit::new(KILLED_EXIT_CODE, "OOMKilled", format!("{e}"));
            }
            if let Some(exit) = e.downcast_ref::<wasmtime_wasi::I32Exit>() {
                return if exit.0 == 0 {
                    Exit::new(0, "Completed", "")
                } else {
                    Exit::new(exit.0, "Error", "")
                };
            }
            if let Some(trap) = e.downcast_ref::<wasmtime::Trap>() {
                return Exit::new(TRAP_EXIT_CODE, "Error", format!("wasm trap: {trap}"));
            }
            Exit::new(TRAP_EXIT_CODE, "Error", format!("{e:#}"))
        }
    }
}

/// Runs a command component to exit, charging nothing to its pod's usage: what an `exec`
/// probe or hook runs (`prober.rs`, which has no hold of the pod's counters).
pub async fn run_command(
    engine: &WasmEngine,
    pre: &CommandPre<ContainerData>,
    plan: &ContainerPlan,
) -> Result<Exit, RuntimeError> {
    run_to_exit(engine, pre, plan, None).await
}

/// Runs a container's command component to exit, charging its CPU time and memory to the
/// pod's `usage`.
pub async fn run_pod_command(
    engine: &WasmEngine,
    pre: &CommandPre<ContainerData>,
    plan: &ContainerPlan,
    usage: &Arc<PodUsageCounters>,
) -> Result<Exit, RuntimeError> {
    run_to_exit(engine, pre, plan, Some(usage)).await
}

async fn run_to_exit(
    engine: &WasmEngine,
    pre: &CommandPre<ContainerData>,
    plan: &ContainerPlan,
    usage: Option<&Arc<PodUsageCounters>>,
) -> Result<Exit, RuntimeError> {
    let oom = Arc::new(AtomicBool::new(false));
    let mut store = new_store(engine, plan, CpuBudget::new(plan.cpu_millis), &oom, usage)?;
    let hops = store.data().hooks.hops().clone();
    let run = async {
        match pre.instantiate_async(&mut store).await {
            Ok(cmd) => cmd.wasi_cli_run().call_run(&mut store).await,
            Err(e) => Err(e),
        }
    };
    // The guest's hops are polled outside `metered`: each callee charges its own pod.
    let result = match usage {
        Some(usage) => Driven::new(metered(usage, run), hops).await,
        None => Driven::new(run, hops).await,
    };
    drop(store);
    Ok(classify(result, oom.load(Ordering::SeqCst)))
}

/// Response to a request that reached the pod but no container serving the port.
pub type Response = hyper::Response<HyperOutgoingBody>;

/// A served HTTP container: makes a fresh instance per request and reports the
/// container's end (a trap, an OOM, the guest calling `exit`) once.
pub struct HttpServer {
    engine: WasmEngine,
    pre: ProxyPre<ContainerData>,
    plan: ContainerPlan,
    cpu: CpuBudget,
    /// The pod's usage: requests, and each instance's CPU time and memory.
    usage: Arc<PodUsageCounters>,
    ended: mpsc::Sender<Exit>,
    in_flight: AtomicUsize,
    drained: Notify,
    stopping: AtomicBool,
}

impl HttpServer {
    pub fn new(
        engine: WasmEngine,
        pre: ProxyPre<ContainerData>,
        plan: ContainerPlan,
        usage: Arc<PodUsageCounters>,
        ended: mpsc::Sender<Exit>,
    ) -> Self {
        let cpu = CpuBudget::new(plan.cpu_millis);
        Self {
            engine,
            pre,
            plan,
            cpu,
            usage,
            ended,
            in_flight: AtomicUsize::new(0),
            drained: Notify::new(),
            stopping: AtomicBool::new(false),
        }
    }

    pub fn container(&self) -> &str {
        &self.plan.name
    }

    /// Stops accepting requests; resolves when those in flight are done.
    pub async fn drain(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        loop {
            let notified = self.drained.notified();
            if self.in_flight.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }

    /// Serves one request with a fresh instance.
    pub async fn handle<B>(self: &Arc<Self>, req: hyper::Request<B>) -> Response
    where
        B: hyper::body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        if self.stopping.load(Ordering::SeqCst) {
            return plain(503, "container is terminating\n");
        }
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        self.usage.request_started();
        let guard = InFlight(self.clone());
        let response = self.serve(req).await;
        drop(guard);
        response
    }

    async fn serve<B>(self: &Arc<Self>, req: hyper::Request<B>) -> Response
    where
        B: hyper::body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let oom = Arc::new(AtomicBool::new(false));
        let cpu = self.cpu.clone();
        let mut store = match new_store(&self.engine, &self.plan, cpu, &oom, Some(&self.usage)) {
            Ok(s) => s,
            Err(e) => return plain(500, &format!("{e}\n")),
        };
        let req = req.map(|b| {
            b.map_err(|e| {
                wasmtime_wasi_http::p2::bindings::http::types::ErrorCode::InternalError(Some(e.into().to_string()))
            })
            .boxed_unsync()
        });
        let (tx, rx) = tokio::sync::oneshot::channel();
        let req = match store.data_mut().http().new_incoming_request(Scheme::Http, req) {
            Ok(r) => r,
            Err(e) => return plain(500, &format!("{e:#}\n")),
        };
        let out = match store.data_mut().http().new_response_outparam(tx) {
            Ok(o) => o,
            Err(e) => return plain(500, &format!("{e:#}\n")),
        };
        let pre = self.pre.clone();
        let server = self.clone();
        let hops = store.data().hooks.hops().clone();
        // The guest runs only inside this future's polls, which are charged to the pod.
        let run = async move {
            let run = async {
                match pre.instantiate_async(&mut store).await {
                    Ok(proxy) => proxy
                        .wasi_http_incoming_handler()
                        .call_handle(&mut store, req, out)
                        .await
                        .map(Ok::<(), ()>),
                    Err(e) => Err(e),
                }
            };
            let result = metered(&server.usage, run).await;
            drop(store);
            if let Err(e) = result {
                let exit = classify(Err(e), oom.load(Ordering::SeqCst));
                server.plan.log.note(&format!(
                    "capstan: container {} ended: {} {}",
                    server.plan.name, exit.reason, exit.message
                ));
                let _ = server.ended.try_send(exit);
            }
        };
        // The guest runs on this task until it has set its response: most guests finish
        // within that poll, so a request costs no hand-off to another task or thread. A
        // guest still running then (streaming a body, waiting on its own requests), or
        // whose caller went away first, goes on in a task of its own, as it would in a
        // container whose client disconnected.
        // The guest sets its response inside its own run, so the response's wake comes
        // while this task is polling the run, and the response is read right after it:
        // that wake is only noted (see `QuietWaker`).
        let mut run = RunOn(Some(Driven::new(run, hops)));
        let mut rx = rx;
        let rx_wake = QuietWaker::new();
        let answer = std::future::poll_fn(|cx| {
            rx_wake.set_task(cx.waker());
            if let Some(guest) = &mut run.0
                && rx_wake.quiet(|| std::pin::Pin::new(guest).poll(cx).is_ready()).0
            {
                run.0 = None;
            }
            match std::pin::Pin::new(&mut rx).poll(&mut std::task::Context::from_waker(rx_wake.waker())) {
                // No response will come: answer once the guest has ended (and its end,
                // a trap or an OOM, has been reported), not while it may still run.
                std::task::Poll::Ready(Err(_)) if run.0.is_some() => std::task::Poll::Pending,
                other => other,
            }
        })
        .await;
        drop(run);
        match answer {
            Ok(Ok(resp)) => resp,
            Ok(Err(e)) => plain(500, &format!("guest error: {e:?}\n")),
            Err(_) => plain(500, "the guest ended without a response\n"),
        }
    }
}

/// A served guest's run: if it is dropped before the guest is done (the response is
/// set, or the caller went away), the guest goes on in a task of its own.
struct RunOn<F: Future<Output = ()> + Send + 'static>(Option<Driven<F>>);

impl<F: Future<Output = ()> + Send + 'static> Drop for RunOn<F> {
    fn drop(&mut self) {
        if let Some(run) = self.0.take() {
            crate::hops::detach(run);
        }
    }
}

struct InFlight(Arc<HttpServer>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.usage.request_finished();
        if self.0.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.drained.notify_waiters();
        }
    }
}

/// A short text response from the node itself.
pub fn plain(status: u16, text: &str) -> Response {
    let body = http_body_util::Full::new(bytes::Bytes::from(text.to_string()))
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut resp = hyper::Response::new(body);
    *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain"),
    );
    resp
}

/// Serves HTTP/1 on an accepted host connection, routing to `route(port)`.
pub fn serve_connection<S>(io: tokio::net::TcpStream, server: S)
where
    S: Fn(
            hyper::Request<hyper::body::Incoming>,
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Response> + Send>>
        + Send
        + Sync
        + 'static,
{
    let server = Arc::new(server);
    tokio::spawn(async move {
        let service = hyper::service::service_fn(move |req| {
            let server = server.clone();
            async move { Ok::<_, std::convert::Infallible>(server(req).await) }
        });
        // Upgrades are served so that a handler may take a `CONNECT` (a node endpoint's
        // tunnels); a handler that does not ask for one answers it as any request.
        let _ = hyper::server::conn::http1::Builder::new()
            .keep_alive(true)
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades()
            .await;
    });
}
