//! Running probes and lifecycle hooks: `httpGet` and `tcpSocket` through the pod's
//! routing table (no host socket), `exec` as a command component in the
//! container's sandbox (same root filesystem, mounts and env).
//!
//! Which component runs an `exec`: a command whose program is one of the
//! utilities (`sh`, `stat`, `cat`, ...) runs the built-in busybox component, as
//! those binaries would be found in a container image; any other command runs
//! the container's own component with that argv.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use tokio::sync::{mpsc, watch};

use crate::container::run_command;
use crate::lifecycle::Event;
use crate::logs::ContainerLog;
use crate::network::PodNetwork;
use crate::probe::{Handler, ProbeKind, ProbeSpec, ProbeState};
use crate::runtime::RuntimeInner;
use crate::sandbox::ContainerPlan;

/// Programs the built-in utilities component provides.
pub const UTILITIES: &[&str] = &[
    "sh", "stat", "cat", "ls", "echo", "sleep", "test", "[", "true", "false", "mkdir", "cp", "date", "env", "rm",
    "touch", "wc", "pwd", "busybox",
];

/// The image that provides the utilities.
pub const UTILITIES_IMAGE: &str = "busybox";

/// What a handler needs to run against one container.
#[derive(Clone)]
pub struct HandlerCtx {
    pub(crate) rt: Arc<RuntimeInner>,
    pub network: PodNetwork,
    pub plan: ContainerPlan,
    /// The container's own image, for `exec` commands that are not utilities.
    pub image: String,
    /// Where `exec` output goes (not the container's log, as in Kubernetes).
    pub exec_log: ContainerLog,
}

impl HandlerCtx {
    /// Runs the handler once; `Err` says why it failed.
    pub async fn run(&self, handler: &Handler, timeout: Duration) -> Result<(), String> {
        match tokio::time::timeout(timeout, self.run_inner(handler)).await {
            Ok(r) => r,
            Err(_) => Err(format!("timed out after {}s", timeout.as_secs_f64())),
        }
    }

    async fn run_inner(&self, handler: &Handler) -> Result<(), String> {
        match handler {
            Handler::HttpGet { port, path } => {
                let server = self
                    .network
                    .route(*port)
                    .ok_or_else(|| format!("dial tcp port {port}: connection refused"))?;
                let req = http::Request::get(format!("http://localhost:{port}{path}"))
                    .header("user-agent", "kube-probe/1.34")
                    .body(Full::new(Bytes::new()))
                    .map_err(|e| e.to_string())?;
                let status = server.handle(req).await.status().as_u16();
                if (200..400).contains(&status) {
                    Ok(())
                } else {
                    Err(format!("HTTP probe failed with statuscode: {status}"))
                }
            }
            Handler::TcpSocket { port } => match self.network.is_served(*port) {
                true => Ok(()),
                false => Err(format!("dial tcp port {port}: connection refused")),
            },
            Handler::Exec { command } => {
                let program = command.first().ok_or("exec: empty command")?;
                let base = program.rsplit('/').next().unwrap_or(program);
                let image = if UTILITIES.contains(&base) {
                    UTILITIES_IMAGE
                } else {
                    self.image.as_str()
                };
                let prog = self.rt.program(image).await.map_err(|e| e.to_string())?.program;
                let pre = prog
                    .command
                    .as_ref()
                    .ok_or_else(|| format!("exec {program:?}: image {image:?} cannot run commands"))?;
                let mut plan = self.plan.clone();
                plan.argv = command.clone();
                plan.log = self.exec_log.clone();
                let exit = run_command(&self.rt.engine, pre, &plan)
                    .await
                    .map_err(|e| e.to_string())?;
                if exit.code == 0 {
                    Ok(())
                } else {
                    Err(format!(
                        "command {command:?} exited with {}{}",
                        exit.code,
                        if exit.message.is_empty() {
                            String::new()
                        } else {
                            format!(": {}", exit.message)
                        }
                    ))
                }
            }
        }
    }
}

/// The verdicts the container's readiness depends on.
pub struct Verdicts {
    /// The startup probe succeeded (true when there is none).
    pub started: watch::Receiver<bool>,
    /// The readiness probe's verdict (true when there is none).
    pub ready: watch::Receiver<bool>,
}

/// Runs a container's probes until the returned task is aborted. Liveness and
/// startup failures are sent to the pod worker as `Unhealthy`.
pub fn spawn_probes(
    ctx: HandlerCtx,
    specs: Vec<ProbeSpec>,
    events: mpsc::UnboundedSender<Event>,
) -> (tokio::task::JoinHandle<()>, Verdicts) {
    let has = |k| specs.iter().any(|s| s.kind == k);
    let (started_tx, started) = watch::channel(!has(ProbeKind::Startup));
    let (ready_tx, ready) = watch::channel(!has(ProbeKind::Readiness));
    let task = tokio::spawn(async move {
        // Aborting this task drops the set, which aborts every probe loop.
        let mut set = tokio::task::JoinSet::new();
        for spec in specs {
            let ctx = ctx.clone();
            let events = events.clone();
            let started_tx = started_tx.clone();
            let ready_tx = ready_tx.clone();
            let mut started_rx = started_tx.subscribe();
            set.spawn(async move {
                let mut state = ProbeState::new(spec.kind);
                if spec.kind != ProbeKind::Startup {
                    let _ = started_rx.wait_for(|s| *s).await;
                }
                tokio::time::sleep(spec.initial_delay).await;
                let mut ticker = tokio::time::interval(spec.period);
                loop {
                    ticker.tick().await;
                    let result = ctx.run(&spec.handler, spec.timeout).await;
                    let ok = result.is_ok();
                    match (spec.kind, state.record(&spec, ok)) {
                        (ProbeKind::Readiness, Some(v)) => {
                            let _ = ready_tx.send(v);
                        }
                        (ProbeKind::Startup, Some(true)) => {
                            let _ = started_tx.send(true);
                            return;
                        }
                        (ProbeKind::Startup | ProbeKind::Liveness, Some(false)) => {
                            let kind = if spec.kind == ProbeKind::Startup {
                                "Startup"
                            } else {
                                "Liveness"
                            };
                            let message = format!("{kind} probe failed: {}", result.err().unwrap_or_default());
                            ctx.plan
                                .log
                                .note(&format!("capstan: {message}; the container will be restarted"));
                            let _ = events.send(Event::Unhealthy {
                                container: ctx.plan.name.clone(),
                                message,
                            });
                            return;
                        }
                        _ => {}
                    }
                }
            });
        }
        while set.join_next().await.is_some() {}
    });
    (task, Verdicts { started, ready })
}
