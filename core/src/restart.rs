//! Restart policy and pod phase: whether an exited container runs again, and which phase
//! (`Pending`, `Running`, `Succeeded`, `Failed`) the pod reports, following the kubelet's
//! `ShouldContainerBeRestarted` and `getPhase` (without the alpha container restart rules).
//!
//! The phase is a pure function of container summaries so the runtime's state machine can be
//! tested as a table; it never reads a clock or a status store.

/// The pod's restart policy allows restarting a container that exited with `exit_code`.
/// `Never` never does, `OnFailure` only for a non-zero code, and `Always` (or anything
/// unrecognised, as in the kubelet) always does. Sidecars (init containers with
/// `restartPolicy: Always`) are restarted whatever the pod's policy says.
pub fn should_restart(policy: &str, exit_code: i32) -> bool {
    match policy {
        "Never" => false,
        "OnFailure" => exit_code != 0,
        _ => true,
    }
}

/// What a container is doing, as far as the phase is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerSummary {
    /// Not started yet (being created, or waiting for init containers).
    Waiting,
    /// Running now.
    Running,
    /// Exited and will not be started again (its last state).
    Terminated {
        /// The process's exit code.
        exit_code: i32,
    },
    /// Exited and waiting in back-off to be started again (`CrashLoopBackOff`).
    Restarting {
        /// The exit code of the run that ended.
        last_exit_code: i32,
    },
}

/// Where the regular (non-sidecar) init containers are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitProgress {
    /// At least one has not finished successfully yet and none has failed.
    Pending,
    /// All have exited 0 (or there are none).
    Done,
    /// One exited non-zero (it is retried unless the pod's policy is `Never`).
    Failed,
}

/// The pod's phase, as the kubelet's `getPhase` computes it.
///
/// * `restart_policy`: the pod's `spec.restartPolicy`;
/// * `init`: progress of the regular init containers;
/// * `sidecars`: the init containers with `restartPolicy: Always`;
/// * `containers`: the app containers;
/// * `pod_is_terminal`: the pod is being torn down (deleted, or finished for good), so no
///   container will be restarted whatever the policy says.
pub fn pod_phase(
    restart_policy: &str,
    init: InitProgress,
    sidecars: &[ContainerSummary],
    containers: &[ContainerSummary],
    pod_is_terminal: bool,
) -> &'static str {
    let (mut pending_sidecars, mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0, 0);
    for sidecar in sidecars {
        match sidecar {
            ContainerSummary::Running => running += 1,
            ContainerSummary::Waiting => {
                pending_sidecars += 1;
                waiting += 1;
            }
            // Exited sidecars do not count towards the phase.
            ContainerSummary::Terminated { .. } | ContainerSummary::Restarting { .. } => {}
        }
    }
    for container in containers {
        match container {
            ContainerSummary::Running => running += 1,
            ContainerSummary::Waiting => waiting += 1,
            ContainerSummary::Terminated { exit_code } => {
                stopped += 1;
                if *exit_code == 0 {
                    succeeded += 1;
                }
            }
            ContainerSummary::Restarting { .. } => stopped += 1,
        }
    }
    if init == InitProgress::Failed && restart_policy == "Never" {
        return "Failed";
    }
    let initialized = containers.iter().any(|c| *c != ContainerSummary::Waiting);
    if init == InitProgress::Pending || (pending_sidecars > 0 && !initialized) || waiting > 0 {
        return "Pending";
    }
    if running > 0 {
        return "Running";
    }
    if stopped == 0 {
        return "Pending";
    }
    if pod_is_terminal {
        return if stopped == succeeded { "Succeeded" } else { "Failed" };
    }
    match restart_policy {
        "Always" => "Running",
        _ if stopped == succeeded => "Succeeded",
        "Never" => "Failed",
        _ => "Running",
    }
}

#[cfg(test)]
mod tests {
    use super::ContainerSummary::{Restarting, Running, Terminated, Waiting};
    use super::InitProgress::{Done, Failed, Pending};
    use super::*;

    #[test]
    fn restart_decisions() {
        let cases = [
            ("Always", 0, true),
            ("Always", 1, true),
            ("OnFailure", 0, false),
            ("OnFailure", 137, true),
            ("Never", 0, false),
            ("Never", 1, false),
            ("", 0, true),
        ];
        for (policy, code, restart) in cases {
            assert_eq!(should_restart(policy, code), restart, "{policy} {code}");
        }
    }

    #[test]
    fn phase_table() {
        const OK: ContainerSummary = Terminated { exit_code: 0 };
        const BAD: ContainerSummary = Terminated { exit_code: 1 };
        const LOOP: ContainerSummary = Restarting { last_exit_code: 1 };
        type Case<'a> = (
            &'a str,
            InitProgress,
            &'a [ContainerSummary],
            &'a [ContainerSummary],
            bool,
            &'a str,
        );
        let cases: &[Case] = &[
            ("Always", Pending, &[], &[Waiting], false, "Pending"),
            ("Always", Done, &[], &[Waiting], false, "Pending"),
            ("Always", Done, &[], &[Running, Waiting], false, "Pending"),
            ("Always", Done, &[], &[Running], false, "Running"),
            ("Always", Done, &[], &[Running, OK], false, "Running"),
            ("Always", Done, &[], &[OK], false, "Running"),
            ("Always", Done, &[], &[LOOP], false, "Running"),
            ("Always", Done, &[], &[OK, BAD], true, "Failed"),
            ("Always", Done, &[], &[OK], true, "Succeeded"),
            ("OnFailure", Done, &[], &[OK, OK], false, "Succeeded"),
            ("OnFailure", Done, &[], &[OK, LOOP], false, "Running"),
            ("OnFailure", Done, &[], &[BAD], false, "Running"),
            ("Never", Done, &[], &[OK], false, "Succeeded"),
            ("Never", Done, &[], &[OK, BAD], false, "Failed"),
            ("Never", Done, &[], &[Running, BAD], false, "Running"),
            ("Never", Failed, &[], &[Waiting], false, "Failed"),
            ("Always", Failed, &[], &[Waiting], false, "Pending"),
            ("OnFailure", Failed, &[], &[Waiting], false, "Pending"),
            ("Always", Done, &[Waiting], &[Waiting], false, "Pending"),
            ("Always", Done, &[Running], &[Running], false, "Running"),
            ("Never", Done, &[Running], &[OK], false, "Running"),
            ("Never", Done, &[OK], &[OK], false, "Succeeded"),
            ("Always", Done, &[LOOP], &[Running], false, "Running"),
            ("Always", Done, &[], &[], false, "Pending"),
        ];
        for (policy, init, sidecars, containers, terminal, phase) in cases {
            let got = pod_phase(policy, *init, sidecars, containers, *terminal);
            assert_eq!(
                got, *phase,
                "{policy} {init:?} sidecars={sidecars:?} containers={containers:?} terminal={terminal}"
            );
        }
    }
}
