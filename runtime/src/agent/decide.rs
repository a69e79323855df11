//! What the node agent does about one pod: a pure function of the pod as the API has it and
//! what this node is doing with it, as the kubelet's pod workers decide (a pod being deleted
//! is stopped, then removed from the API; a finished pod is never run again; a pod the API
//! no longer has is killed).

use std::time::Duration;

use capstan_core::k8s_openapi::api::core::v1::Pod;

/// What this node is doing with a pod.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Local {
    /// A stop was asked for.
    pub stopping: bool,
    /// Nothing of the pod runs any more.
    pub finished: bool,
}

/// The agent's next step for a pod.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Run the pod here.
    Start,
    /// Stop it with this grace period.
    Stop {
        grace: Duration,
    },
    /// Remove the pod from the API (grace period 0): it is stopped and may go.
    Remove,
    Nothing,
}

/// The step for a pod the API has bound to this node; `local` is `None` when it does not
/// run here.
pub fn decide(pod: &Pod, local: Option<Local>) -> Action {
    let deleting = pod.metadata.deletion_timestamp.is_some();
    let terminal = matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    );
    match (deleting, local) {
        (true, None) => Action::Remove,
        (true, Some(l)) if l.finished => Action::Remove,
        (true, Some(l)) if !l.stopping => Action::Stop {
            grace: Duration::from_secs(pod.metadata.deletion_grace_period_seconds.unwrap_or(0).max(0) as u64),
        },
        (true, Some(_)) => Action::Nothing,
        // A pod that finished (here before a restart, or elsewhere) is not run again.
        (false, None) if terminal => Action::Nothing,
        (false, None) => Action::Start,
        (false, Some(_)) => Action::Nothing,
    }
}

/// The step for a pod running here that the API no longer has: kill it now.
pub fn orphaned() -> Action {
    Action::Stop { grace: Duration::ZERO }
}

#[cfg(test)]
mod tests {
    use capstan_core::k8s_openapi::api::core::v1::PodStatus;
    use capstan_core::k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use capstan_core::k8s_openapi::jiff::Timestamp;

    use super::*;

    fn pod(deleting: Option<i64>, phase: &str) -> Pod {
        let mut pod = Pod::default();
        if let Some(grace) = deleting {
            pod.metadata.deletion_timestamp = Some(Time(Timestamp::UNIX_EPOCH));
            pod.metadata.deletion_grace_period_seconds = Some(grace);
        }
        pod.status = Some(PodStatus {
            phase: Some(phase.into()),
            ..Default::default()
        });
        pod
    }

    #[test]
    fn pods_are_started_stopped_and_removed_like_the_kubelet_does() {
        let running = Local::default();
        let stopping = Local {
            stopping: true,
            finished: false,
        };
        let finished = Local {
            stopping: true,
            finished: true,
        };
        let table = [
            (pod(None, "Pending"), None, Action::Start),
            (pod(None, "Running"), None, Action::Start),
            (pod(None, "Succeeded"), None, Action::Nothing),
            (pod(None, "Failed"), None, Action::Nothing),
            (pod(None, "Running"), Some(running), Action::Nothing),
            (
                pod(Some(30), "Running"),
                Some(running),
                Action::Stop {
                    grace: Duration::from_secs(30),
                },
            ),
            (pod(Some(30), "Running"), Some(stopping), Action::Nothing),
            (pod(Some(30), "Running"), Some(finished), Action::Remove),
            (pod(Some(30), "Running"), None, Action::Remove),
            (
                pod(Some(0), "Succeeded"),
                Some(running),
                Action::Stop { grace: Duration::ZERO },
            ),
        ];
        for (i, (pod, local, want)) in table.into_iter().enumerate() {
            assert_eq!(decide(&pod, local), want, "row {i}");
        }
        assert_eq!(orphaned(), Action::Stop { grace: Duration::ZERO });
    }
}
