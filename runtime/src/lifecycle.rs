//! The pod lifecycle as data: a pure `step(event, now) -> effects` over the state
//! of a pod's init and app containers. No clocks, tasks or wasmtime here: the pod
//! worker (`pod.rs`) feeds events in and carries effects out, and the tests below
//! are tables of transitions.
//!
//! Semantics follow the kubelet: init containers one at a time, in order, each to
//! success, before any app container; restarts per `restartPolicy` with the
//! crash-loop back-off (first restart at once, then 10 s doubling to 5 min, reset
//! after 10 min of running); a pod that is terminating never comes back.

use std::time::Duration;

use capstan_core::backoff;
use capstan_core::restart::{self, ContainerSummary, InitProgress};

/// How a container run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exit {
    pub code: i32,
    /// `Completed`, `Error`, `OOMKilled`, ...
    pub reason: String,
    pub message: String,
}

impl Exit {
    pub fn new(code: i32, reason: &str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason: reason.to_string(),
            message: message.into(),
        }
    }
}

/// A container's current state, as in `ContainerStatus.state`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    Waiting {
        reason: String,
        message: String,
    },
    Running {
        since: Duration,
    },
    Terminated {
        exit: Exit,
        started: Duration,
        finished: Duration,
    },
}

/// One container as the lifecycle tracks it.
#[derive(Clone, Debug)]
pub struct Track {
    pub name: String,
    pub state: State,
    /// The previous termination (`lastState`), kept across restarts.
    pub last: Option<State>,
    pub restarts: u32,
    /// Failed runs since the back-off was last reset; sets the next delay.
    streak: u32,
    /// Failed attempts to create the container (config, image); sets their retry delay.
    start_failures: u32,
    pub ready: bool,
    /// Digest of the image the current (or last) run uses.
    pub image_id: String,
    /// A stop of this run was asked for (failed liveness); asked once per run.
    stopping: bool,
}

impl Track {
    fn new(name: &str, reason: &str) -> Self {
        Self {
            name: name.to_string(),
            state: State::Waiting {
                reason: reason.to_string(),
                message: String::new(),
            },
            last: None,
            restarts: 0,
            streak: 0,
            start_failures: 0,
            ready: false,
            image_id: String::new(),
            stopping: false,
        }
    }

    fn is_running(&self) -> bool {
        matches!(self.state, State::Running { .. })
    }
}

/// Where the pod as a whole is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Init container `index` is being run (or waits to be retried).
    Initializing { index: usize },
    /// All init containers succeeded; app containers are managed.
    Running,
    /// Stop requested: no new starts; containers get until `deadline` to exit.
    Terminating { deadline: Duration },
    /// Nothing runs and nothing will be started again.
    Finished,
}

/// What happened, as the worker reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The container could not be created (missing ConfigMap key, unknown image...).
    StartFailed {
        container: String,
        reason: String,
        message: String,
    },
    Started {
        container: String,
        image_id: String,
    },
    /// Readiness changed (an HTTP container began serving; later: probes).
    Ready {
        container: String,
        ready: bool,
    },
    Exited {
        container: String,
        exit: Exit,
    },
    /// A back-off timer set by [`Effect::StartAfter`] fired.
    BackoffDone {
        container: String,
    },
    Stop {
        grace: Duration,
    },
    /// A liveness or startup probe failed: the container is stopped (with the
    /// pod's grace period) and restarted per `restartPolicy`.
    Unhealthy {
        container: String,
        message: String,
    },
    /// The node evicts the pod (e.g. an emptyDir past its `sizeLimit`): it stops
    /// at once and ends `Failed` with reason `Evicted`.
    Evict {
        message: String,
    },
    GraceExpired,
}

/// What the worker must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Create and run this container now.
    Start { container: String },
    /// Send `BackoffDone` for this container after the delay.
    StartAfter { container: String, delay: Duration },
    /// Stop routing to the pod and ask every running container to exit; send
    /// `GraceExpired` after the grace period.
    StopAll { grace: Duration },
    /// Interrupt and drop every container still running.
    KillAll,
    /// Stop one container: like `StopAll`, for a single container.
    StopContainer { container: String, grace: Duration },
}

/// The state of one pod's containers.
#[derive(Clone, Debug)]
pub struct PodLifecycle {
    pub restart_policy: String,
    pub init: Vec<Track>,
    pub apps: Vec<Track>,
    pub stage: Stage,
    /// Why the node evicted the pod, if it did.
    pub evicted: Option<String>,
    /// `terminationGracePeriodSeconds`, for containers stopped one at a time.
    pub grace: Duration,
}

impl PodLifecycle {
    /// A new pod and the effects that start it.
    pub fn new(restart_policy: &str, init: &[String], apps: &[String]) -> (Self, Vec<Effect>) {
        let mut lc = Self {
            restart_policy: restart_policy.to_string(),
            init: init.iter().map(|n| Track::new(n, "PodInitializing")).collect(),
            apps: apps.iter().map(|n| Track::new(n, "PodInitializing")).collect(),
            stage: Stage::Running,
            evicted: None,
            grace: Duration::from_secs(30),
        };
        let effects = if lc.init.is_empty() {
            lc.start_apps()
        } else {
            lc.stage = Stage::Initializing { index: 0 };
            vec![Effect::Start {
                container: lc.init[0].name.clone(),
            }]
        };
        (lc, effects)
    }

    fn start_apps(&mut self) -> Vec<Effect> {
        self.stage = Stage::Running;
        self.apps
            .iter_mut()
            .map(|t| {
                t.state = State::Waiting {
                    reason: "ContainerCreating".into(),
                    message: String::new(),
                };
                Effect::Start {
                    container: t.name.clone(),
                }
            })
            .collect()
    }

    fn find(&mut self, name: &str) -> Option<(bool, usize)> {
        if let Some(i) = self.init.iter().position(|t| t.name == name) {
            return Some((true, i));
        }
        self.apps.iter().position(|t| t.name == name).map(|i| (false, i))
    }

    fn track(&mut self, is_init: bool, i: usize) -> &mut Track {
        if is_init { &mut self.init[i] } else { &mut self.apps[i] }
    }

    pub fn is_finished(&self) -> bool {
        self.stage == Stage::Finished
    }

    /// Applies one event at time `now` (since the pod started).
    pub fn step(&mut self, event: Event, now: Duration) -> Vec<Effect> {
        match event {
            Event::StartFailed {
                container,
                reason,
                message,
            } => {
                let Some((is_init, i)) = self.find(&container) else {
                    return vec![];
                };
                if matches!(self.stage, Stage::Terminating { .. } | Stage::Finished) {
                    return self.finish_if_idle();
                }
                let t = self.track(is_init, i);
                t.state = State::Waiting { reason, message };
                let delay = backoff::delay_for(t.start_failures);
                t.start_failures += 1;
                vec![Effect::StartAfter { container, delay }]
            }
            Event::Started { container, image_id } => {
                let Some((is_init, i)) = self.find(&container) else {
                    return vec![];
                };
                let t = self.track(is_init, i);
                t.state = State::Running { since: now };
                t.image_id = image_id;
                t.stopping = false;
                t.start_failures = 0;
                vec![]
            }
            Event::Ready { container, ready } => {
                if let Some((is_init, i)) = self.find(&container) {
                    let t = self.track(is_init, i);
                    t.ready = ready && t.is_running();
                }
                vec![]
            }
            Event::Exited { container, exit } => self.exited(&container, exit, now),
            Event::BackoffDone { container } => match self.stage {
                Stage::Terminating { .. } | Stage::Finished => vec![],
                _ => vec![Effect::Start { container }],
            },
            Event::Stop { grace } => match self.stage {
                Stage::Terminating { .. } | Stage::Finished => vec![],
                _ => {
                    self.stage = Stage::Terminating { deadline: now + grace };
                    let mut effects = vec![Effect::StopAll { grace }];
                    effects.extend(self.finish_if_idle());
                    effects
                }
            },
            Event::Unhealthy { container, message: _ } => {
                if !matches!(self.stage, Stage::Running | Stage::Initializing { .. }) {
                    return vec![];
                }
                let grace = self.grace;
                let Some((is_init, i)) = self.find(&container) else {
                    return vec![];
                };
                let t = self.track(is_init, i);
                if !t.is_running() || t.stopping {
                    return vec![];
                }
                t.stopping = true;
                t.ready = false;
                vec![Effect::StopContainer { container, grace }]
            }
            Event::Evict { message } => {
                if self.stage == Stage::Finished || self.evicted.is_some() {
                    return vec![];
                }
                self.evicted = Some(message);
                self.stage = Stage::Terminating { deadline: now };
                let mut effects = vec![Effect::StopAll { grace: Duration::ZERO }];
                effects.extend(self.finish_if_idle());
                effects
            }
            Event::GraceExpired => match self.stage {
                Stage::Terminating { .. } => vec![Effect::KillAll],
                _ => vec![],
            },
        }
    }

    fn exited(&mut self, container: &str, exit: Exit, now: Duration) -> Vec<Effect> {
        let Some((is_init, i)) = self.find(container) else {
            return vec![];
        };
        let terminating = matches!(self.stage, Stage::Terminating { .. } | Stage::Finished);
        let policy = self.restart_policy.clone();
        let t = self.track(is_init, i);
        let started = match t.state {
            State::Running { since } => since,
            _ => now,
        };
        let terminated = State::Terminated {
            exit: exit.clone(),
            started,
            finished: now,
        };
        t.ready = false;
        t.state = terminated.clone();
        if terminating {
            return self.finish_if_idle();
        }
        let failed = exit.code != 0;
        // Init containers restart on failure unless the policy is Never.
        let restart = if is_init {
            failed && policy != "Never"
        } else {
            restart::should_restart(&policy, exit.code)
        };
        if is_init && !failed {
            let next = i + 1;
            if next < self.init.len() {
                self.stage = Stage::Initializing { index: next };
                return vec![Effect::Start {
                    container: self.init[next].name.clone(),
                }];
            }
            return self.start_apps();
        }
        if !restart {
            if is_init {
                // A failed init container with restartPolicy Never fails the pod.
                self.stage = Stage::Finished;
                return vec![];
            }
            return self.finish_if_idle();
        }
        let t = self.track(is_init, i);
        if backoff::should_reset(now.saturating_sub(started)) {
            t.streak = 0;
        }
        let delay = if t.streak == 0 {
            Duration::ZERO
        } else {
            backoff::delay_for(t.streak - 1)
        };
        t.streak += 1;
        t.restarts += 1;
        t.last = Some(terminated);
        if !delay.is_zero() {
            t.state = State::Waiting {
                reason: "CrashLoopBackOff".into(),
                message: format!("back-off {}s restarting failed container={}", delay.as_secs(), t.name),
            };
        }
        vec![Effect::StartAfter {
            container: container.to_string(),
            delay,
        }]
    }

    /// Ends the pod when no container runs and none will be started again.
    fn finish_if_idle(&mut self) -> Vec<Effect> {
        let any_running = self.init.iter().chain(&self.apps).any(Track::is_running);
        let all_done = self.apps.iter().all(|t| matches!(t.state, State::Terminated { .. }));
        let terminating = matches!(self.stage, Stage::Terminating { .. });
        if !any_running && (terminating || all_done) {
            self.stage = Stage::Finished;
        }
        vec![]
    }

    /// The pod phase, computed as the kubelet's `getPhase` does.
    pub fn phase(&self) -> &'static str {
        if self.evicted.is_some() {
            return "Failed";
        }
        let init = match self.stage {
            Stage::Initializing { index } => match (&self.init[index].state, &self.init[index].last) {
                (State::Terminated { exit, .. }, _) if exit.code != 0 => InitProgress::Failed,
                (State::Waiting { .. }, Some(State::Terminated { exit, .. })) if exit.code != 0 => InitProgress::Failed,
                _ => InitProgress::Pending,
            },
            _ if self
                .init
                .iter()
                .any(|t| matches!(&t.state, State::Terminated { exit, .. } if exit.code != 0)) =>
            {
                InitProgress::Failed
            }
            _ => InitProgress::Done,
        };
        let summaries: Vec<ContainerSummary> = self
            .apps
            .iter()
            .map(|t| match (&t.state, &t.last) {
                (State::Running { .. }, _) => ContainerSummary::Running,
                (State::Terminated { exit, .. }, _) => ContainerSummary::Terminated { exit_code: exit.code },
                (State::Waiting { .. }, Some(State::Terminated { exit, .. })) => ContainerSummary::Restarting {
                    last_exit_code: exit.code,
                },
                (State::Waiting { .. }, _) => ContainerSummary::Waiting,
            })
            .collect();
        let terminal = matches!(self.stage, Stage::Terminating { .. } | Stage::Finished);
        restart::pod_phase(&self.restart_policy, init, &[], &summaries, terminal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }
    fn start(c: &str) -> Effect {
        Effect::Start { container: c.into() }
    }
    fn exited(c: &str, code: i32) -> Event {
        Event::Exited {
            container: c.into(),
            exit: Exit::new(code, if code == 0 { "Completed" } else { "Error" }, ""),
        }
    }
    fn started(c: &str) -> Event {
        Event::Started {
            container: c.into(),
            image_id: "sha256:x".into(),
        }
    }
    const T: Duration = Duration::from_secs(1);

    #[test]
    fn init_containers_run_in_order_before_apps() {
        let (mut lc, fx) = PodLifecycle::new("Always", &names(&["i1", "i2"]), &names(&["a", "b"]));
        assert_eq!(fx, vec![start("i1")]);
        assert_eq!(lc.phase(), "Pending");
        assert_eq!(lc.step(started("i1"), T), vec![]);
        assert_eq!(lc.step(exited("i1", 0), T), vec![start("i2")]);
        lc.step(started("i2"), T);
        assert_eq!(lc.step(exited("i2", 0), T), vec![start("a"), start("b")]);
        lc.step(started("a"), T);
        lc.step(started("b"), T);
        assert_eq!(lc.phase(), "Running");
    }

    #[test]
    fn failing_init_container_is_retried_with_backoff_and_apps_never_start() {
        let (mut lc, _) = PodLifecycle::new("Always", &names(&["init"]), &names(&["app"]));
        lc.step(started("init"), T);
        assert_eq!(
            lc.step(exited("init", 1), T),
            vec![Effect::StartAfter {
                container: "init".into(),
                delay: Duration::ZERO
            }]
        );
        assert_eq!(
            lc.step(
                Event::BackoffDone {
                    container: "init".into()
                },
                T
            ),
            vec![start("init")]
        );
        lc.step(started("init"), T);
        assert_eq!(
            lc.step(exited("init", 1), T),
            vec![Effect::StartAfter {
                container: "init".into(),
                delay: Duration::from_secs(10)
            }]
        );
        assert!(matches!(&lc.init[0].state, State::Waiting { reason, .. } if reason == "CrashLoopBackOff"));
        assert_eq!(lc.init[0].restarts, 2);
        assert!(matches!(&lc.apps[0].state, State::Waiting { reason, .. } if reason == "PodInitializing"));
        assert_eq!(lc.phase(), "Pending");
    }

    #[test]
    fn failing_init_container_with_never_fails_the_pod() {
        let (mut lc, _) = PodLifecycle::new("Never", &names(&["init"]), &names(&["app"]));
        lc.step(started("init"), T);
        assert_eq!(lc.step(exited("init", 1), T), vec![]);
        assert!(lc.is_finished());
        assert_eq!(lc.phase(), "Failed");
    }

    #[test]
    fn restart_policies_decide_what_restarts() {
        let cases = [
            ("Always", 0, true, "Running"),
            ("Always", 1, true, "Running"),
            ("OnFailure", 0, false, "Succeeded"),
            ("OnFailure", 2, true, "Running"),
            ("Never", 0, false, "Succeeded"),
            ("Never", 1, false, "Failed"),
        ];
        for (policy, code, restarts, phase) in cases {
            let (mut lc, _) = PodLifecycle::new(policy, &[], &names(&["a"]));
            lc.step(started("a"), T);
            let fx = lc.step(exited("a", code), T * 2);
            assert_eq!(!fx.is_empty(), restarts, "{policy} exit {code}");
            assert_eq!(lc.is_finished(), !restarts, "{policy} exit {code}");
            assert_eq!(lc.phase(), phase, "{policy} exit {code}");
        }
    }

    #[test]
    fn crash_loop_backoff_doubles_and_resets_after_ten_minutes() {
        let (mut lc, _) = PodLifecycle::new("Always", &[], &names(&["a"]));
        let mut delays = vec![];
        let mut now = T;
        for _ in 0..8 {
            lc.step(started("a"), now);
            now += T;
            match lc.step(exited("a", 1), now).as_slice() {
                [Effect::StartAfter { delay, .. }] => delays.push(delay.as_secs()),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(delays, vec![0, 10, 20, 40, 80, 160, 300, 300]);
        assert_eq!(lc.apps[0].restarts, 8);
        // A run of over ten minutes resets the back-off.
        lc.step(started("a"), now);
        now += Duration::from_secs(601);
        assert_eq!(
            lc.step(exited("a", 1), now),
            vec![Effect::StartAfter {
                container: "a".into(),
                delay: Duration::ZERO
            }]
        );
    }

    #[test]
    fn stop_waits_for_exit_then_kills_and_never_restarts() {
        let (mut lc, _) = PodLifecycle::new("Always", &[], &names(&["a", "b"]));
        lc.step(started("a"), T);
        lc.step(started("b"), T);
        let grace = Duration::from_secs(30);
        assert_eq!(lc.step(Event::Stop { grace }, T), vec![Effect::StopAll { grace }]);
        assert_eq!(
            lc.step(Event::Stop { grace }, T),
            vec![],
            "a second stop changes nothing"
        );
        assert_eq!(lc.step(exited("a", 0), T), vec![], "no restart while terminating");
        assert!(!lc.is_finished());
        assert_eq!(lc.step(Event::GraceExpired, T * 31), vec![Effect::KillAll]);
        lc.step(
            Event::Exited {
                container: "b".into(),
                exit: Exit::new(137, "Error", ""),
            },
            T * 31,
        );
        assert!(lc.is_finished());
        assert_eq!(lc.step(Event::BackoffDone { container: "a".into() }, T * 32), vec![]);
    }

    #[test]
    fn a_failed_liveness_probe_stops_the_container_once_and_it_restarts() {
        let (mut lc, _) = PodLifecycle::new("Always", &[], &names(&["a"]));
        lc.grace = Duration::from_secs(5);
        lc.step(started("a"), T);
        lc.step(
            Event::Ready {
                container: "a".into(),
                ready: true,
            },
            T,
        );
        let unhealthy = Event::Unhealthy {
            container: "a".into(),
            message: "Liveness probe failed".into(),
        };
        assert_eq!(
            lc.step(unhealthy.clone(), T),
            vec![Effect::StopContainer {
                container: "a".into(),
                grace: Duration::from_secs(5)
            }]
        );
        assert!(!lc.apps[0].ready);
        assert_eq!(lc.step(unhealthy, T), vec![], "asked once per run");
        let fx = lc.step(exited("a", 137), T * 2);
        assert_eq!(
            fx,
            vec![Effect::StartAfter {
                container: "a".into(),
                delay: Duration::ZERO
            }]
        );
        assert_eq!(lc.apps[0].restarts, 1);
    }

    #[test]
    fn eviction_stops_the_pod_at_once_and_fails_it() {
        let (mut lc, _) = PodLifecycle::new("Always", &[], &names(&["a"]));
        lc.step(started("a"), T);
        let fx = lc.step(
            Event::Evict {
                message: "too big".into(),
            },
            T,
        );
        assert_eq!(fx, vec![Effect::StopAll { grace: Duration::ZERO }]);
        lc.step(exited("a", 137), T);
        assert!(lc.is_finished());
        assert_eq!(lc.phase(), "Failed");
        assert_eq!(
            lc.step(
                Event::Evict {
                    message: "again".into()
                },
                T
            ),
            vec![]
        );
    }

    #[test]
    fn config_errors_hold_the_container_waiting_and_retry() {
        let (mut lc, _) = PodLifecycle::new("Always", &[], &names(&["a"]));
        let fx = lc.step(
            Event::StartFailed {
                container: "a".into(),
                reason: "CreateContainerConfigError".into(),
                message: "configmap \"cfg\" not found".into(),
            },
            T,
        );
        assert_eq!(
            fx,
            vec![Effect::StartAfter {
                container: "a".into(),
                delay: Duration::from_secs(10)
            }]
        );
        assert!(matches!(&lc.apps[0].state, State::Waiting { reason, .. } if reason == "CreateContainerConfigError"));
        assert_eq!(lc.apps[0].restarts, 0);
        assert_eq!(lc.phase(), "Pending");
    }
}
