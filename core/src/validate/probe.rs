//! Probes and lifecycle hooks: each names exactly one handler, with sane numbers.

use k8s_openapi::api::core::v1::{
    Container, ExecAction, GRPCAction, HTTPGetAction, LifecycleHandler, Probe, SleepAction, TCPSocketAction,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{FieldError, check_enum};
use crate::names;

pub(super) fn validate_probes(c: &Container, path: &str, grace: Option<i64>, errs: &mut Vec<FieldError>) {
    let probes = [
        ("livenessProbe", &c.liveness_probe, true),
        ("readinessProbe", &c.readiness_probe, false),
        ("startupProbe", &c.startup_probe, true),
    ];
    for (field, probe, single_success) in probes {
        let Some(probe) = probe else { continue };
        let p = format!("{path}.{field}");
        validate_probe(probe, &p, errs);
        if let Some(s) = probe.success_threshold.filter(|s| single_success && *s != 0 && *s != 1) {
            errs.push(FieldError::invalid_number(
                format!("{p}.successThreshold"),
                s.into(),
                "must be 1",
            ));
        }
    }
    if let Some(lifecycle) = &c.lifecycle {
        for (field, handler) in [("postStart", &lifecycle.post_start), ("preStop", &lifecycle.pre_stop)] {
            if let Some(h) = handler {
                validate_lifecycle_handler(h, &format!("{path}.lifecycle.{field}"), grace, errs);
            }
        }
    }
}

fn validate_probe(probe: &Probe, path: &str, errs: &mut Vec<FieldError>) {
    let handlers = Handlers {
        exec: probe.exec.as_ref(),
        http_get: probe.http_get.as_ref(),
        tcp_socket: probe.tcp_socket.as_ref(),
        grpc: probe.grpc.as_ref(),
        sleep: None,
    };
    handlers.validate(path, None, errs);
    let numbers = [
        ("initialDelaySeconds", probe.initial_delay_seconds),
        ("timeoutSeconds", probe.timeout_seconds),
        ("periodSeconds", probe.period_seconds),
        ("successThreshold", probe.success_threshold),
        ("failureThreshold", probe.failure_threshold),
    ];
    for (field, value) in numbers {
        if let Some(v) = value.filter(|v| *v < 0) {
            errs.push(FieldError::invalid_number(
                format!("{path}.{field}"),
                v.into(),
                "must be greater than or equal to 0",
            ));
        }
    }
    if let Some(g) = probe.termination_grace_period_seconds.filter(|g| *g <= 0) {
        errs.push(FieldError::invalid_number(
            format!("{path}.terminationGracePeriodSeconds"),
            g,
            "must be greater than 0",
        ));
    }
}

fn validate_lifecycle_handler(h: &LifecycleHandler, path: &str, grace: Option<i64>, errs: &mut Vec<FieldError>) {
    let handlers = Handlers {
        exec: h.exec.as_ref(),
        http_get: h.http_get.as_ref(),
        tcp_socket: h.tcp_socket.as_ref(),
        grpc: None,
        sleep: h.sleep.as_ref(),
    };
    handlers.validate(path, grace, errs);
}

/// The handler fields of a probe or hook; exactly one must be set.
struct Handlers<'a> {
    exec: Option<&'a ExecAction>,
    http_get: Option<&'a HTTPGetAction>,
    tcp_socket: Option<&'a TCPSocketAction>,
    grpc: Option<&'a GRPCAction>,
    sleep: Option<&'a SleepAction>,
}

impl Handlers<'_> {
    fn validate(&self, path: &str, grace: Option<i64>, errs: &mut Vec<FieldError>) {
        let mut count = 0;
        let mut claim = |field: &str, errs: &mut Vec<FieldError>| {
            count += 1;
            if count > 1 {
                errs.push(FieldError::forbidden(
                    format!("{path}.{field}"),
                    "may not specify more than 1 handler type",
                ));
            }
            count == 1
        };
        if let Some(exec) = self.exec
            && claim("exec", errs)
            && exec.command.as_ref().is_none_or(Vec::is_empty)
        {
            errs.push(FieldError::required(format!("{path}.exec.command"), ""));
        }
        if let Some(http) = self.http_get
            && claim("httpGet", errs)
        {
            let p = format!("{path}.httpGet");
            if http.path.as_deref() == Some("") {
                errs.push(FieldError::required(format!("{p}.path"), ""));
            }
            check_port(&format!("{p}.port"), &http.port, errs);
            check_enum(&format!("{p}.scheme"), http.scheme.as_deref(), &["HTTP", "HTTPS"], errs);
            for header in http.http_headers.iter().flatten() {
                let valid =
                    !header.name.is_empty() && header.name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
                if !valid {
                    let detail = "a valid HTTP header must consist of alphanumeric characters or '-' (e.g. 'X-Header-Name', regex used for validation is '[-A-Za-z0-9]+')";
                    errs.push(FieldError::invalid(format!("{p}.httpHeaders"), &header.name, detail));
                }
            }
        }
        if let Some(tcp) = self.tcp_socket
            && claim("tcpSocket", errs)
        {
            check_port(&format!("{path}.tcpSocket.port"), &tcp.port, errs);
        }
        if let Some(grpc) = self.grpc
            && claim("grpc", errs)
        {
            for msg in names::port_number(grpc.port.into()) {
                errs.push(FieldError::invalid_number(
                    format!("{path}.grpc.port"),
                    grpc.port.into(),
                    &msg,
                ));
            }
        }
        if let Some(sleep) = self.sleep
            && claim("sleep", errs)
        {
            let limit = grace.unwrap_or(crate::defaults::DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS);
            if sleep.seconds < 0 || sleep.seconds > limit {
                let detail = format!("must be non-negative and less than terminationGracePeriodSeconds ({limit})");
                errs.push(FieldError::invalid_number(
                    format!("{path}.sleep.seconds"),
                    sleep.seconds,
                    &detail,
                ));
            }
        }
        if count == 0 {
            errs.push(FieldError::required(path, "must specify a handler type"));
        }
    }
}

/// A port given as a number (1–65535) or a container port name (IANA_SVC_NAME).
fn check_port(path: &str, port: &IntOrString, errs: &mut Vec<FieldError>) {
    match port {
        IntOrString::Int(n) => {
            for msg in names::port_number((*n).into()) {
                errs.push(FieldError::invalid_number(path, (*n).into(), &msg));
            }
        }
        IntOrString::String(name) => {
            errs.extend(
                names::port_name(name)
                    .iter()
                    .map(|m| FieldError::invalid(path, name, m)),
            );
        }
    }
}
