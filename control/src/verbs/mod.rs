//! The kubectl-like verbs of `capstan` (`apply`, `get`, `describe`, `delete`, `scale`,
//! `rollout`; `logs` lives in `crate::logs`), talking to Capstan's API server over HTTP with
//! [`capstan_control::client::Client`]. Each verb is a module with its flags, a thin async shell
//! and the pure parts (merge patches, tables, messages) as plain functions tested beside it.
//!
//! Messages and output formats are kubectl's, so scripts and habits carry over.

pub mod apply;
pub mod delete;
pub mod describe;
pub mod get;
pub mod manifests;
pub mod printing;
pub mod rollout;
pub mod scale;
pub mod target;
pub mod watch;

use capstan_control::client::ClientError;

/// Why a verb failed, displayed as kubectl displays it (the process then exits 1).
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// Bad arguments, unknown types, unreadable manifests, an unreachable server.
    #[error("error: {0}")]
    User(String),
    /// The API server refused a request with a `Status`.
    #[error("Error from server{}: {message}", reason_suffix(.reason))]
    Server { reason: String, message: String },
}

fn reason_suffix(reason: &str) -> String {
    if reason.is_empty() {
        String::new()
    } else {
        format!(" ({reason})")
    }
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Status { reason, message, .. } => Failure::Server { reason, message },
            other => Failure::User(other.to_string()),
        }
    }
}

impl Failure {
    /// A server error about one object of a file: `error when creating "f.yaml": ...`.
    pub fn about(e: ClientError, what: &str) -> Self {
        match e {
            ClientError::Status { reason, message, .. } => Failure::Server {
                reason,
                message: format!("{what}: {message}"),
            },
            other => Failure::User(other.to_string()),
        }
    }
}

/// Reads a Go-style duration (`90s`, `5m`, `1h30m`, `250ms`, `0`), as kubectl's `--timeout`.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let bad = || format!("invalid duration {s:?}: use a number with a unit, like 90s, 5m or 1h30m");
    if s == "0" {
        return Ok(std::time::Duration::ZERO);
    }
    let mut rest = s;
    let mut total = 0f64;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(bad)?;
        if digits == 0 {
            return Err(bad());
        }
        let number: f64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += number * seconds;
        rest = &rest[unit_len..];
    }
    Ok(std::time::Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn durations_read_like_go() {
        for (s, want) in [
            ("90s", Duration::from_secs(90)),
            ("5m", Duration::from_secs(300)),
            ("1h30m", Duration::from_secs(5400)),
            ("250ms", Duration::from_millis(250)),
            ("0", Duration::ZERO),
            ("1.5s", Duration::from_millis(1500)),
        ] {
            assert_eq!(parse_duration(s), Ok(want), "{s}");
        }
        for bad in ["", "5", "s", "5x", "-1s", "1h-"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn failures_print_like_kubectl() {
        let e = ClientError::Status {
            code: 404,
            reason: "NotFound".into(),
            message: "deployments.apps \"x\" not found".into(),
        };
        assert_eq!(
            Failure::from(e).to_string(),
            "Error from server (NotFound): deployments.apps \"x\" not found"
        );
        let e = ClientError::Status {
            code: 400,
            reason: String::new(),
            message: "bad".into(),
        };
        assert_eq!(
            Failure::about(e, "error when creating \"f.yaml\"").to_string(),
            "Error from server: error when creating \"f.yaml\": bad"
        );
    }
}
