//! Probes as data: what a `livenessProbe`/`readinessProbe`/`startupProbe` checks
//! and how results turn into a verdict (`successThreshold`, `failureThreshold`).
//! Pure: the prober (`prober.rs`) runs the checks and feeds results in.
//!
//! Kubelet semantics: readiness starts as failure and liveness as success;
//! neither runs before the startup probe has succeeded; a verdict changes only
//! after `successThreshold` consecutive successes or `failureThreshold` failures.

use std::time::Duration;

use capstan_core::k8s_openapi::api::core::v1::{Container, LifecycleHandler, Probe};
use capstan_core::k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// Which probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeKind {
    Startup,
    Liveness,
    Readiness,
}

/// What a probe or a lifecycle hook does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Handler {
    /// GET `path` on a pod port; 200–399 is success.
    HttpGet { port: u16, path: String },
    /// Success if something serves the pod port.
    TcpSocket { port: u16 },
    /// Run a command in the container's sandbox; exit 0 is success.
    Exec { command: Vec<String> },
}

/// A probe of one container, resolved from the spec.
#[derive(Clone, Debug, PartialEq)]
pub struct ProbeSpec {
    pub kind: ProbeKind,
    pub handler: Handler,
    pub initial_delay: Duration,
    pub period: Duration,
    pub timeout: Duration,
    pub success_threshold: u32,
    pub failure_threshold: u32,
}

/// Resolves a port given by number or by the name of a container port.
fn port(container: &Container, p: &IntOrString, field: &str) -> Result<u16, String> {
    match p {
        IntOrString::Int(n) => u16::try_from(*n)
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("{field}.port: invalid port {n}")),
        IntOrString::String(name) => container
            .ports
            .iter()
            .flatten()
            .find(|cp| cp.name.as_deref() == Some(name))
            .and_then(|cp| u16::try_from(cp.container_port).ok())
            .ok_or_else(|| format!("{field}.port: no container port named {name:?}")),
    }
}

/// The handler of a probe or hook, from its three possible forms.
fn handler(
    container: &Container,
    exec: Option<&Vec<String>>,
    http: Option<(&IntOrString, Option<&String>)>,
    tcp: Option<&IntOrString>,
    field: &str,
) -> Result<Handler, String> {
    if let Some(command) = exec {
        return Ok(Handler::Exec {
            command: command.clone(),
        });
    }
    if let Some((p, path)) = http {
        let path = path.cloned().unwrap_or_else(|| "/".into());
        return Ok(Handler::HttpGet {
            port: port(container, p, &format!("{field}.httpGet"))?,
            path,
        });
    }
    if let Some(p) = tcp {
        return Ok(Handler::TcpSocket {
            port: port(container, p, &format!("{field}.tcpSocket"))?,
        });
    }
    Err(format!(
        "{field}: no handler (exec, httpGet or tcpSocket) that this node supports"
    ))
}

fn secs(v: Option<i32>, default: i32) -> Duration {
    Duration::from_secs(v.unwrap_or(default).max(0) as u64)
}

impl ProbeSpec {
    pub fn from_probe(container: &Container, kind: ProbeKind, p: &Probe, field: &str) -> Result<Self, String> {
        let h = handler(
            container,
            p.exec.as_ref().and_then(|e| e.command.as_ref()),
            p.http_get.as_ref().map(|h| (&h.port, h.path.as_ref())),
            p.tcp_socket.as_ref().map(|t| &t.port),
            field,
        )?;
        Ok(Self {
            kind,
            handler: h,
            initial_delay: secs(p.initial_delay_seconds, 0),
            period: secs(p.period_seconds, 10).max(Duration::from_secs(1)),
            timeout: secs(p.timeout_seconds, 1).max(Duration::from_secs(1)),
            success_threshold: p.success_threshold.unwrap_or(1).max(1) as u32,
            failure_threshold: p.failure_threshold.unwrap_or(3).max(1) as u32,
        })
    }

    /// The probes of a container, startup first.
    pub fn for_container(c: &Container, field: &str) -> Result<Vec<Self>, String> {
        let mut out = vec![];
        for (kind, probe, name) in [
            (ProbeKind::Startup, &c.startup_probe, "startupProbe"),
            (ProbeKind::Liveness, &c.liveness_probe, "livenessProbe"),
            (ProbeKind::Readiness, &c.readiness_probe, "readinessProbe"),
        ] {
            if let Some(p) = probe {
                out.push(Self::from_probe(c, kind, p, &format!("{field}.{name}"))?);
            }
        }
        Ok(out)
    }
}

/// A lifecycle hook's handler (`postStart`, `preStop`).
pub fn hook(container: &Container, h: &LifecycleHandler, field: &str) -> Result<Handler, String> {
    handler(
        container,
        h.exec.as_ref().and_then(|e| e.command.as_ref()),
        h.http_get.as_ref().map(|g| (&g.port, g.path.as_ref())),
        h.tcp_socket.as_ref().map(|t| &t.port),
        field,
    )
}

/// Consecutive results of one probe and its current verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeState {
    successes: u32,
    failures: u32,
    pub verdict: bool,
}

impl ProbeState {
    /// Liveness starts healthy; readiness and startup start failed.
    pub fn new(kind: ProbeKind) -> Self {
        Self {
            successes: 0,
            failures: 0,
            verdict: kind == ProbeKind::Liveness,
        }
    }

    /// Records one result; returns the new verdict when it changes.
    pub fn record(&mut self, spec: &ProbeSpec, ok: bool) -> Option<bool> {
        if ok {
            self.successes += 1;
            self.failures = 0;
            if !self.verdict && self.successes >= spec.success_threshold {
                self.verdict = true;
                return Some(true);
            }
        } else {
            self.failures += 1;
            self.successes = 0;
            if self.verdict && self.failures >= spec.failure_threshold {
                self.verdict = false;
                return Some(false);
            }
            // A startup probe that never succeeded fails for good at the threshold.
            if spec.kind == ProbeKind::Startup && self.failures == spec.failure_threshold {
                return Some(false);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(kind: ProbeKind, success: u32, failure: u32) -> ProbeSpec {
        ProbeSpec {
            kind,
            handler: Handler::TcpSocket { port: 80 },
            initial_delay: Duration::ZERO,
            period: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            success_threshold: success,
            failure_threshold: failure,
        }
    }

    #[test]
    fn verdicts_change_only_at_the_thresholds() {
        let s = spec(ProbeKind::Readiness, 2, 3);
        let mut st = ProbeState::new(ProbeKind::Readiness);
        let results = [true, false, true, true, false, false, true, false, false, false];
        let got: Vec<Option<bool>> = results.iter().map(|ok| st.record(&s, *ok)).collect();
        assert_eq!(
            got,
            vec![None, None, None, Some(true), None, None, None, None, None, Some(false)]
        );
    }

    #[test]
    fn liveness_starts_healthy_and_fails_after_the_threshold() {
        let s = spec(ProbeKind::Liveness, 1, 3);
        let mut st = ProbeState::new(ProbeKind::Liveness);
        assert!(st.verdict);
        assert_eq!(
            [false, false, false].map(|ok| st.record(&s, ok)),
            [None, None, Some(false)]
        );
    }

    #[test]
    fn a_startup_probe_gives_up_at_its_failure_threshold() {
        let s = spec(ProbeKind::Startup, 1, 2);
        let mut st = ProbeState::new(ProbeKind::Startup);
        assert_eq!([false, false].map(|ok| st.record(&s, ok)), [None, Some(false)]);
        let mut st = ProbeState::new(ProbeKind::Startup);
        assert_eq!(st.record(&s, true), Some(true));
    }

    #[test]
    fn ports_resolve_by_number_or_name() {
        let c: Container = serde_json::from_value(serde_json::json!({
            "name": "c", "ports": [{"name": "http", "containerPort": 8080}]
        }))
        .unwrap();
        let p: Probe =
            serde_json::from_value(serde_json::json!({"httpGet": {"port": "http", "path": "/health"}})).unwrap();
        let s = ProbeSpec::from_probe(&c, ProbeKind::Liveness, &p, "spec.containers[0].livenessProbe").unwrap();
        assert_eq!(
            s.handler,
            Handler::HttpGet {
                port: 8080,
                path: "/health".into()
            }
        );
        assert_eq!((s.period, s.failure_threshold), (Duration::from_secs(10), 3));
        let bad: Probe = serde_json::from_value(serde_json::json!({"tcpSocket": {"port": "nope"}})).unwrap();
        let err = ProbeSpec::from_probe(&c, ProbeKind::Liveness, &bad, "spec.containers[0].livenessProbe").unwrap_err();
        assert!(err.contains("spec.containers[0].livenessProbe.tcpSocket.port"), "{err}");
    }
}
