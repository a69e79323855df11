//! The pod worker: one task per pod that feeds events into the pure lifecycle
//! (`lifecycle.rs`) and carries out its effects — creating containers, timers,
//! stopping — then publishes the pod's status.
//!
//! As in the kubelet's pod workers, one task owns a pod, a pending kill is never
//! overwritten, and a terminating pod never comes back.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use capstan_core::env::{ConfigObjects, PodFacts, expand_command, resolve_env};
use capstan_core::k8s_openapi::api::core::v1::{Container, Pod};
use capstan_core::quantity;
use tokio::sync::{mpsc, watch};

use crate::container::{HttpServer, KILLED_EXIT_CODE, Program, run_pod_command};
use crate::lifecycle::{Effect, Event, Exit, PodLifecycle};
use crate::logs::ContainerLog;
use crate::net::{Cluster, PodNet};
use crate::network::PodNetwork;
use crate::outgoing::{ALLOW_HOSTS_ANNOTATION, OutgoingPolicy, parse_grants};
use crate::probe::{Handler, ProbeSpec};
use crate::prober::{HandlerCtx, Verdicts, spawn_probes};
use crate::runtime::RuntimeInner;
use crate::sandbox::{ContainerPlan, fresh_rootfs, root_dirs, termination_message};
use crate::status::{PodRunInfo, pod_status};
use crate::usage::PodUsageCounters;
use crate::volumes::PodVolumes;

/// What the worker tells a container's task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Signal {
    Run,
    /// Stop gracefully (stop serving, finish in-flight work).
    Term,
    /// Stop now: interrupt and drop the instance.
    Kill,
}

/// Control of a running pod.
pub struct PodHandle {
    status: watch::Receiver<Pod>,
    finished: watch::Receiver<bool>,
    events: mpsc::UnboundedSender<Event>,
    network: PodNetwork,
    net: PodNet,
}

impl PodHandle {
    /// The pod with its current status; changes are signalled.
    pub fn status(&self) -> watch::Receiver<Pod> {
        self.status.clone()
    }

    /// The pod's ports (for `--publish`).
    pub fn network(&self) -> PodNetwork {
        self.network.clone()
    }

    /// The pod's in-memory TCP network (host-side connections to guest listeners).
    pub fn net(&self) -> PodNet {
        self.net.clone()
    }

    /// Asks the pod to stop: routing stops, containers get `grace` to exit, then
    /// they are interrupted. `None` uses the pod's `terminationGracePeriodSeconds`.
    pub fn stop(&self, grace: Option<Duration>) {
        let grace = grace.unwrap_or_else(|| {
            let pod = self.status.borrow();
            let secs = pod
                .spec
                .as_ref()
                .and_then(|s| s.termination_grace_period_seconds)
                .unwrap_or(30);
            Duration::from_secs(secs.max(0) as u64)
        });
        let _ = self.events.send(Event::Stop { grace });
    }

    /// Resolves when nothing in the pod runs any more; unlike [`PodHandle::wait`] it does not
    /// borrow the handle, so a task can await it while the handle stays with its owner.
    pub fn done(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut finished = self.finished.clone();
        async move {
            let _ = finished.wait_for(|f| *f).await;
        }
    }

    /// Resolves when nothing in the pod runs any more, with its final state.
    pub async fn wait(&self) -> Pod {
        let mut finished = self.finished.clone();
        let _ = finished.wait_for(|f| *f).await;
        self.status.borrow().clone()
    }
}

struct Running {
    signal: Arc<watch::Sender<Signal>>,
}

pub(crate) struct Worker {
    rt: Arc<RuntimeInner>,
    pod: Pod,
    config: Arc<ConfigObjects>,
    facts: PodFacts,
    dir: PathBuf,
    volumes: Option<PodVolumes>,
    lc: PodLifecycle,
    begun: Instant,
    info: PodRunInfo,
    tx: mpsc::UnboundedSender<Event>,
    running: HashMap<String, Running>,
    network: PodNetwork,
    net: PodNet,
    status_tx: watch::Sender<Pod>,
    finished_tx: watch::Sender<bool>,
    /// The pod's usage counters, handed to every container it starts.
    usage: Arc<PodUsageCounters>,
}

impl Worker {
    pub(crate) fn spawn(
        rt: Arc<RuntimeInner>,
        pod: Pod,
        config: Arc<ConfigObjects>,
        facts: PodFacts,
        dir: PathBuf,
        usage: Arc<PodUsageCounters>,
    ) -> PodHandle {
        let spec = pod.spec.clone().unwrap_or_default();
        let names = |cs: &[Container]| cs.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
        let policy = spec.restart_policy.clone().unwrap_or_else(|| "Always".into());
        let (mut lc, effects) = PodLifecycle::new(
            &policy,
            &names(spec.init_containers.as_deref().unwrap_or_default()),
            &names(&spec.containers),
        );
        lc.grace = Duration::from_secs(spec.termination_grace_period_seconds.unwrap_or(30).max(0) as u64);
        let info = PodRunInfo {
            pod_ip: facts.pod_ip.clone(),
            host_ip: facts.host_ip.clone(),
            started: crate::status::now(),
            qos_class: capstan_core::defaults::qos_class(&pod).to_string(),
        };
        let (tx, mut rx) = mpsc::unbounded_channel();
        let (status_tx, status) = watch::channel(pod.clone());
        let (finished_tx, finished) = watch::channel(false);
        let cluster = Cluster::new(
            pod.metadata.namespace.clone().unwrap_or_else(|| "default".into()),
            &rt.directory,
            Arc::clone(&rt.services),
        );
        let net = PodNet::with_cluster(facts.pod_ip.parse().ok(), cluster);
        let network = PodNetwork::new(net.clone());
        let handle = PodHandle {
            status,
            finished,
            events: tx.clone(),
            network: network.clone(),
            net: net.clone(),
        };
        let mut w = Worker {
            rt,
            pod,
            config,
            facts,
            dir,
            volumes: None,
            lc,
            begun: Instant::now(),
            info,
            tx,
            running: HashMap::new(),
            network,
            net,
            status_tx,
            finished_tx,
            usage,
        };
        tokio::spawn(async move {
            w.apply(effects);
            w.publish();
            while let Some(event) = rx.recv().await {
                if let Event::Exited { container, .. } | Event::StartFailed { container, .. } = &event {
                    w.running.remove(container);
                }
                let effects = w.lc.step(event, w.begun.elapsed());
                w.apply(effects);
                w.publish();
                if w.lc.is_finished() && w.running.is_empty() {
                    break;
                }
            }
            w.network.close();
            let _ = w.finished_tx.send(true);
        });
        handle
    }

    fn publish(&mut self) {
        let mut pod = self.pod.clone();
        pod.status = Some(pod_status(&self.lc, &self.pod, &self.info));
        self.status_tx.send_replace(pod);
        self.rt.directory.status_changed();
    }

    fn apply(&mut self, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::Start { container } => self.start(&container),
                Effect::StartAfter { container, delay } => {
                    let tx = self.tx.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(delay).await;
                        let _ = tx.send(Event::BackoffDone { container });
                    });
                }
                Effect::StopAll { grace } => {
                    for r in self.running.values() {
                        let _ = r.signal.send(Signal::Term);
                    }
                    let tx = self.tx.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(grace).await;
                        let _ = tx.send(Event::GraceExpired);
                    });
                }
                Effect::KillAll => {
                    for r in self.running.values() {
                        let _ = r.signal.send(Signal::Kill);
                    }
                }
                Effect::StopContainer { container, grace } => {
                    if let Some(r) = self.running.get(&container) {
                        let _ = r.signal.send(Signal::Term);
                        let signal = r.signal.clone();
                        tokio::spawn(async move {
                            tokio::time::sleep(grace).await;
                            // A later run has a channel of its own; this reaches only the old one.
                            let _ = signal.send(Signal::Kill);
                        });
                    }
                }
            }
        }
    }

    /// Evicts the pod when an emptyDir grows past its `sizeLimit`, as the kubelet's
    /// eviction manager does.
    fn watch_size_limits(&self, volumes: &PodVolumes) {
        let limited = volumes.size_limited(&self.pod);
        if limited.is_empty() {
            return;
        }
        let tx = self.tx.clone();
        tokio::spawn(async move {
            while !tx.is_closed() {
                for (name, dir, limit) in &limited {
                    let used = crate::volumes::dir_size(dir);
                    if used > *limit {
                        let message = format!(
                            "Usage of EmptyDir volume {name:?} exceeds the limit of {limit} bytes (uses {used})."
                        );
                        let _ = tx.send(Event::Evict { message });
                        return;
                    }
                }
                tokio::time::sleep(SIZE_CHECK_PERIOD).await;
            }
        });
    }

    fn container_spec(&self, name: &str) -> Option<(Container, String)> {
        let spec = self.pod.spec.as_ref()?;
        if let Some(i) = spec
            .init_containers
            .as_deref()
            .unwrap_or_default()
            .iter()
            .position(|c| c.name == name)
        {
            return Some((
                spec.init_containers.as_ref()?[i].clone(),
                format!("spec.initContainers[{i}]"),
            ));
        }
        let i = spec.containers.iter().position(|c| c.name == name)?;
        Some((spec.containers[i].clone(), format!("spec.containers[{i}]")))
    }

    fn fail_start(&self, container: &str, reason: &str, message: String) {
        let _ = self.tx.send(Event::StartFailed {
            container: container.to_string(),
            reason: reason.to_string(),
            message,
        });
    }

    /// Creates a container and runs it in its own task.
    fn start(&mut self, name: &str) {
        let Some((c, field)) = self.container_spec(name) else {
            return;
        };
        if self.volumes.is_none() {
            match PodVolumes::prepare(
                &self.pod,
                &self.dir,
                &self.facts,
                self.config.as_ref(),
                &self.rt.volume_policy,
            ) {
                Ok(v) => {
                    self.watch_size_limits(&v);
                    self.volumes = Some(v);
                }
                Err(e) => return self.fail_start(name, "ContainerCreating", format!("MountVolume.SetUp failed: {e}")),
            }
        }
        let Some(volumes) = self.volumes.as_ref() else { return };
        let mounts = match volumes.mounts(&c, &field) {
            Ok(m) => m,
            Err(e) => return self.fail_start(name, "CreateContainerConfigError", e.to_string()),
        };
        let env = match resolve_env(&self.pod, &c, &self.facts, self.config.as_ref()) {
            Ok(env) => env,
            Err(e) => return self.fail_start(name, "CreateContainerConfigError", e.to_string()),
        };
        let image = c.image.clone().unwrap_or_default();
        let (command, args) = expand_command(&c, &env);
        let has_command = !command.is_empty();
        let program_name = image
            .rsplit('/')
            .next()
            .unwrap_or(&image)
            .split(':')
            .next()
            .unwrap_or("main")
            .to_string();
        let argv: Vec<String> = if has_command {
            command.into_iter().chain(args).collect()
        } else {
            std::iter::once(program_name).chain(args).collect()
        };
        let limits = c.resources.as_ref().and_then(|r| r.limits.as_ref());
        let memory_limit = limits
            .and_then(|l| l.get("memory"))
            .and_then(|q| quantity::parse(&q.0).ok())
            .map(|q| q.as_bytes_ceil().max(0) as u64);
        let cpu_millis = limits
            .and_then(|l| l.get("cpu"))
            .and_then(|q| quantity::parse(&q.0).ok())
            .map(|q| q.as_millis_ceil().max(1) as u64);
        let annotation = self
            .pod
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(ALLOW_HOSTS_ANNOTATION));
        let grants = match annotation.map(|v| parse_grants(v)).transpose() {
            Ok(g) => Arc::new(g.unwrap_or_default()),
            Err(e) => {
                let msg = format!("metadata.annotations[{ALLOW_HOSTS_ANNOTATION}]: {e}");
                return self.fail_start(name, "CreateContainerConfigError", msg);
            }
        };
        let cdir = self.dir.join("containers").join(name);
        // A container's first start takes a spare directory, made ahead, with a fresh root.
        let first = !cdir.exists();
        let placed = first && self.rt.spares.place(&cdir);
        if first {
            self.rt.spares.refill(true);
        }
        let log = match ContainerLog::open(&cdir.join(crate::spares::LOG_FILE)) {
            Ok(l) => l,
            Err(e) => return self.fail_start(name, "CreateContainerError", format!("log file: {e}")),
        };
        let rootfs = cdir.join(crate::spares::ROOTFS);
        let mount_points: Vec<String> = mounts.iter().map(|m| m.guest.clone()).collect();
        let made = match placed {
            true => root_dirs(&rootfs, &mount_points),
            false => fresh_rootfs(&rootfs, &mount_points),
        };
        if let Err(e) = made {
            return self.fail_start(name, "CreateContainerError", e.to_string());
        }
        let plan = ContainerPlan {
            name: name.to_string(),
            argv,
            env,
            cwd: c.working_dir.clone(),
            rootfs,
            mounts,
            memory_limit,
            cpu_millis,
            log,
            net: self.net.clone(),
            outgoing: OutgoingPolicy {
                network: self.network.clone(),
                pod_ip: self.facts.pod_ip.clone(),
                grants: grants.clone(),
                namespace: self.pod.metadata.namespace.clone().unwrap_or_else(|| "default".into()),
                pods: Arc::clone(&self.rt.directory),
                services: Arc::clone(&self.rt.services),
                next_endpoint: Default::default(),
            },
        };
        let port = c
            .ports
            .as_deref()
            .and_then(|p| p.first())
            .and_then(|p| u16::try_from(p.container_port).ok());
        let probes = match ProbeSpec::for_container(&c, &field) {
            Ok(p) => p,
            Err(e) => return self.fail_start(name, "CreateContainerConfigError", e),
        };
        let lifecycle = c.lifecycle.clone().unwrap_or_default();
        let hook = |h: Option<&capstan_core::k8s_openapi::api::core::v1::LifecycleHandler>, which: &str| {
            h.map(|h| crate::probe::hook(&c, h, &format!("{field}.lifecycle.{which}")))
                .transpose()
        };
        let (post_start, pre_stop) = match (
            hook(lifecycle.post_start.as_ref(), "postStart"),
            hook(lifecycle.pre_stop.as_ref(), "preStop"),
        ) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) | (_, Err(e)) => return self.fail_start(name, "CreateContainerConfigError", e),
        };
        // Output of exec probes and hooks; a container with neither never execs.
        let exec_log = if probes.is_empty() && post_start.is_none() && pre_stop.is_none() {
            plan.log.clone()
        } else {
            match ContainerLog::open(&cdir.join("exec.log")) {
                Ok(l) => l,
                Err(e) => return self.fail_start(name, "CreateContainerError", format!("log file: {e}")),
            }
        };
        let (signal, signal_rx) = watch::channel(Signal::Run);
        self.running.insert(
            name.to_string(),
            Running {
                signal: Arc::new(signal),
            },
        );
        let run = ContainerRun {
            rt: self.rt.clone(),
            tx: self.tx.clone(),
            plan,
            image,
            http: !has_command,
            port,
            network: self.network.clone(),
            message_path: c
                .termination_message_path
                .clone()
                .unwrap_or_else(|| "/dev/termination-log".into()),
            fallback_to_logs: c.termination_message_policy.as_deref() == Some("FallbackToLogsOnError"),
            probes,
            post_start,
            pre_stop,
            exec_log,
            usage: Arc::clone(&self.usage),
        };
        tokio::spawn(run.run(signal_rx));
    }
}

/// How often emptyDir usage is measured against `sizeLimit`.
const SIZE_CHECK_PERIOD: Duration = Duration::from_millis(500);

/// The port an HTTP component serves when its container declares none (the port
/// of the book's examples).
pub const DEFAULT_HTTP_PORT: u16 = 8080;

/// One start of one container, run in its own task.
struct ContainerRun {
    rt: Arc<RuntimeInner>,
    tx: mpsc::UnboundedSender<Event>,
    plan: ContainerPlan,
    image: String,
    /// No `command` given: an HTTP component is served rather than run.
    http: bool,
    /// The first declared `containerPort`, if any.
    port: Option<u16>,
    network: PodNetwork,
    message_path: String,
    fallback_to_logs: bool,
    probes: Vec<ProbeSpec>,
    post_start: Option<Handler>,
    pre_stop: Option<Handler>,
    exec_log: ContainerLog,
    usage: Arc<PodUsageCounters>,
}

impl ContainerRun {
    fn handler_ctx(&self) -> HandlerCtx {
        HandlerCtx {
            rt: self.rt.clone(),
            network: self.network.clone(),
            plan: self.plan.clone(),
            image: self.image.clone(),
            exec_log: self.exec_log.clone(),
        }
    }

    /// One start of the container: the guest, its postStart hook (the container
    /// counts as started once the hook succeeds), its probes, and on stop its
    /// preStop hook before the guest is told to stop.
    async fn run(self, signal: watch::Receiver<Signal>) {
        let name = self.plan.name.clone();
        let (image_id, program, port) = match self.rt.program(&self.image).await {
            // The declared port, else the image's own, else the book's 8080.
            Ok(r) => (
                r.digest,
                r.program,
                self.port.or(r.exposed_port).unwrap_or(DEFAULT_HTTP_PORT),
            ),
            Err(e) => {
                let reason = match e {
                    crate::error::RuntimeError::ImageNotFound(_) => "ErrImagePull",
                    _ => "CreateContainerError",
                };
                let _ = self.tx.send(Event::StartFailed {
                    container: name,
                    reason: reason.into(),
                    message: e.to_string(),
                });
                return;
            }
        };
        let (inner_tx, mut inner_rx) = watch::channel(Signal::Run);
        let (serving_tx, mut serving) = watch::channel(false);
        let ctx = self.handler_ctx();
        let main = self.run_program(&program, port, &mut inner_rx, &serving_tx);
        let forward = forward_signals(signal, inner_tx, ctx.clone(), self.pre_stop.clone());
        let post_start = async {
            match &self.post_start {
                Some(h) => ctx.run(h, POST_START_TIMEOUT).await,
                None => Ok(()),
            }
        };
        tokio::pin!(main, forward, post_start);
        let mut started = false;
        let mut probes: Option<(tokio::task::JoinHandle<()>, Verdicts)> = None;
        let mut ready = false;
        let exit = loop {
            tokio::select! {
                exit = &mut main => break exit,
                hook = &mut post_start, if !started => {
                    self.send(Event::Started { container: name.clone(), image_id: image_id.clone() });
                    started = true;
                    if let Err(e) = hook {
                        self.plan.log.note(&format!("capstan: postStart hook failed: {e}"));
                        break Exit::new(KILLED_EXIT_CODE, "Error", format!("FailedPostStartHook: {e}"));
                    }
                    probes = Some(spawn_probes(ctx.clone(), self.probes.clone(), self.tx.clone()));
                }
                _ = &mut forward => {}
                _ = serving.changed() => {}
                _ = verdict_changed(&mut probes) => {}
            }
            // Ready: serving, started (startup probe) and the readiness probe agree.
            if started {
                let now = *serving.borrow()
                    && probes
                        .as_ref()
                        .is_some_and(|(_, v)| *v.started.borrow() && *v.ready.borrow());
                if now != ready {
                    ready = now;
                    self.send(Event::Ready {
                        container: name.clone(),
                        ready,
                    });
                }
            }
        };
        if let Some((task, _)) = probes {
            task.abort();
        }
        if !started {
            self.send(Event::Started {
                container: name.clone(),
                image_id,
            });
        }
        let exit = self.with_message(exit);
        self.send(Event::Exited { container: name, exit });
    }

    fn send(&self, event: Event) {
        let _ = self.tx.send(event);
    }

    async fn run_program(
        &self,
        program: &Program,
        port: u16,
        signal: &mut watch::Receiver<Signal>,
        serving: &watch::Sender<bool>,
    ) -> Exit {
        let engine = &self.rt.engine;
        let serve = if self.http { program.proxy.clone() } else { None };
        // A command (or the startup `run` of an HTTP component) runs first. A command
        // container without probes is ready while it runs, as in Kubernetes; an HTTP
        // container becomes ready when it serves its port.
        if let Some(cmd) = &program.command {
            if serve.is_none() {
                let _ = serving.send(true);
            }
            // A stop during an HTTP component's startup ends it (it serves nothing yet);
            // a command runs on until it is killed.
            let stop_at = if serve.is_some() { Signal::Term } else { Signal::Kill };
            let ran = tokio::select! {
                r = run_pod_command(engine, cmd, &self.plan, &self.usage) => r,
                _ = until(signal, stop_at) => {
                    return if *signal.borrow() == Signal::Kill { killed() } else { Exit::new(0, "Completed", "") };
                }
            };
            match ran {
                Err(e) => return Exit::new(128, "ContainerCannotRun", e.to_string()),
                Ok(exit) if serve.is_none() || exit.code != 0 => return exit,
                Ok(_) => {}
            }
            if *signal.borrow() != Signal::Run {
                return Exit::new(0, "Completed", "");
            }
        }
        let Some(pre) = serve else {
            return Exit::new(
                128,
                "ContainerCannotRun",
                format!("image {:?} has no wasi:cli/run to run the given command", self.image),
            );
        };
        let (ended_tx, mut ended_rx) = mpsc::channel(1);
        let server = Arc::new(HttpServer::new(
            engine.clone(),
            pre,
            self.plan.clone(),
            Arc::clone(&self.usage),
            ended_tx,
        ));
        if let Err(e) = self.network.bind(port, server.clone()) {
            self.plan.log.note(&format!("capstan: {e}"));
            return Exit::new(1, "Error", e.to_string());
        }
        // Unbinds however this future ends, including being dropped (postStart failed).
        let _bound = Bound {
            network: &self.network,
            port,
            container: &self.plan.name,
        };
        let _ = serving.send(true);
        tokio::select! {
            Some(exit) = ended_rx.recv() => exit,
            _ = until(signal, Signal::Term) => {
                self.network.unbind(port, &self.plan.name);
                let _ = serving.send(false);
                tokio::select! {
                    _ = server.drain() => Exit::new(0, "Completed", ""),
                    _ = until(signal, Signal::Kill) => killed(),
                }
            }
        }
    }

    /// Fills in the termination message as the kubelet does.
    fn with_message(&self, mut exit: Exit) -> Exit {
        if let Some(msg) = termination_message(&self.plan, &self.message_path) {
            exit.message = msg;
        } else if self.fallback_to_logs && exit.code != 0 {
            exit.message = last_lines(&self.plan.log.tail(FALLBACK_LOG_BYTES), FALLBACK_LOG_LINES);
        }
        exit
    }
}

/// How long a postStart hook may run (the kubelet gives it the grace period; a
/// container that never finishes starting is no use either).
const POST_START_TIMEOUT: Duration = Duration::from_secs(120);
/// The longest a preStop hook runs; the grace period's kill comes first if shorter.
const PRE_STOP_TIMEOUT: Duration = Duration::from_secs(3600);

/// Releases a bound pod port when dropped.
struct Bound<'a> {
    network: &'a PodNetwork,
    port: u16,
    container: &'a str,
}

impl Drop for Bound<'_> {
    fn drop(&mut self) {
        self.network.unbind(self.port, self.container);
    }
}

/// Passes the worker's signals to the guest, running the preStop hook between a
/// stop request and the guest's stop signal. Never completes.
async fn forward_signals(
    mut outer: watch::Receiver<Signal>,
    inner: watch::Sender<Signal>,
    ctx: HandlerCtx,
    pre_stop: Option<Handler>,
) {
    until(&mut outer, Signal::Term).await;
    if let Some(h) = pre_stop
        && *outer.borrow() != Signal::Kill
    {
        tokio::select! {
            r = ctx.run(&h, PRE_STOP_TIMEOUT) => {
                if let Err(e) = r {
                    ctx.plan.log.note(&format!("capstan: preStop hook failed: {e}"));
                }
            }
            _ = until(&mut outer, Signal::Kill) => {}
        }
    }
    if *outer.borrow() == Signal::Term {
        request_termination(&ctx.plan);
    }
    let _ = inner.send(*outer.borrow());
    until(&mut outer, Signal::Kill).await;
    let _ = inner.send(Signal::Kill);
    std::future::pending::<()>().await;
}

/// The file that tells a guest its container is stopping: the Wasm stand-in for
/// SIGTERM. A standard WASI guest may poll for it; one that does not is interrupted
/// when the grace period ends.
pub const TERMINATION_SIGNAL: &str = "/dev/termination-signal";

fn request_termination(plan: &ContainerPlan) {
    if let Some(path) = crate::sandbox::host_path(plan, TERMINATION_SIGNAL) {
        let _ = std::fs::write(path, b"TERM\n");
    }
}

/// Resolves when a probe verdict changes (never, without probes). A verdict whose
/// prober has finished (its sender is gone) only stops counting: it must not keep
/// the other from being seen.
async fn verdict_changed(probes: &mut Option<(tokio::task::JoinHandle<()>, Verdicts)>) {
    let Some((_, v)) = probes else {
        return std::future::pending().await;
    };
    let started = async {
        if v.started.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let ready = async {
        if v.ready.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        _ = started => {}
        _ = ready => {}
    }
}

/// `FallbackToLogsOnError` takes at most the last 80 lines or 2048 bytes of the log.
const FALLBACK_LOG_LINES: usize = 80;
const FALLBACK_LOG_BYTES: usize = 2048;

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn killed() -> Exit {
    Exit::new(KILLED_EXIT_CODE, "Error", "killed after the termination grace period")
}

/// Resolves once the signal is at least `level` (Kill implies Term).
async fn until(signal: &mut watch::Receiver<Signal>, level: Signal) {
    let reached = |s: &Signal| match level {
        Signal::Run => true,
        Signal::Term => *s != Signal::Run,
        Signal::Kill => *s == Signal::Kill,
    };
    if signal.wait_for(reached).await.is_err() {
        std::future::pending::<()>().await;
    }
}
