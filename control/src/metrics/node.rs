//! A node's metrics, as the kubelet serves its own: the node's pods by phase and each pod's
//! requests, CPU time, memory and requests in flight, read from the runtime's counters
//! (`Runtime::pod_usage`) when scraped. Nothing is recorded on the pods' paths for this: the
//! runtime counts anyway, and a scrape turns its counters into text.

use std::collections::BTreeMap;

use capstan_runtime::Runtime;
use capstan_runtime::usage::PodUsage;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

/// Where a node's figures come from at scrape time: its [`Runtime`] (tests give fixed ones).
pub trait UsageSource: Send + Sync + 'static {
    /// How many of the node's pods are in each phase.
    fn pods_by_phase(&self) -> BTreeMap<String, u64>;
    /// Each of the node's pods with its usage.
    fn pod_usage(&self) -> Vec<PodUsage>;
}

impl UsageSource for Runtime {
    fn pods_by_phase(&self) -> BTreeMap<String, u64> {
        Runtime::pods_by_phase(self)
    }

    fn pod_usage(&self) -> Vec<PodUsage> {
        Runtime::pod_usage(self)
    }
}

/// One node's metrics registry.
pub struct NodeMetrics {
    registry: Registry,
}

impl NodeMetrics {
    /// The metrics of the node `runtime` runs.
    pub fn new(runtime: Runtime) -> Self {
        Self::from_source(runtime)
    }

    pub fn from_source(source: impl UsageSource) -> Self {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(NodeUsage(Box::new(source))));
        NodeMetrics { registry }
    }

    /// Every metric, in the text format of [`super::CONTENT_TYPE`].
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail, and the collector fails only when writing does.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

struct NodeUsage(Box<dyn UsageSource>);

impl std::fmt::Debug for NodeUsage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeUsage").finish_non_exhaustive()
    }
}

/// What a per-pod series is.
#[derive(Clone, Copy)]
enum Kind {
    Counter,
    Gauge,
}

/// A per-pod value: counts stay integers in the text, times are fractional seconds.
enum Figure {
    Count(u64),
    Seconds(f64),
}

/// One series per pod: its name (a counter's without `_total`), help and value.
struct PodSeries {
    name: &'static str,
    help: &'static str,
    kind: Kind,
    figure: fn(&PodUsage) -> Figure,
}

const POD_SERIES: &[PodSeries] = &[
    PodSeries {
        name: "capstan_node_container_requests",
        help: "Requests the pod's HTTP containers have finished serving",
        kind: Kind::Counter,
        figure: |p| Figure::Count(p.sample.requests),
    },
    PodSeries {
        name: "capstan_node_pod_cpu_seconds",
        help: "CPU time the pod's guests have run, in seconds",
        kind: Kind::Counter,
        figure: |p| Figure::Seconds(p.sample.cpu_nanos as f64 / 1e9),
    },
    PodSeries {
        name: "capstan_node_pod_memory_bytes",
        help: "Linear memory the pod's live instances hold, in bytes",
        kind: Kind::Gauge,
        figure: |p| Figure::Count(p.sample.memory_bytes),
    },
    PodSeries {
        name: "capstan_node_pod_in_flight",
        help: "Requests the pod's HTTP containers are serving now",
        kind: Kind::Gauge,
        figure: |p| Figure::Count(p.sample.in_flight),
    },
];

/// Pod phases a node reports, at zero when none of its pods is in one.
const PHASES: &[&str] = &["Pending", "Running", "Succeeded", "Failed"];

impl Collector for NodeUsage {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut phases = self.0.pods_by_phase();
        for p in PHASES {
            phases.entry((*p).to_owned()).or_insert(0);
        }
        let mut family = encoder.encode_descriptor(
            "capstan_node_pods",
            "Number of pods the node runs, by phase",
            None,
            MetricType::Gauge,
        )?;
        for (phase, n) in &phases {
            ConstGauge::new(*n as i64).encode(family.encode_family(&[("phase", phase.as_str())])?)?;
        }

        let pods = self.0.pod_usage();
        for series in POD_SERIES {
            let metric_type = match series.kind {
                Kind::Counter => MetricType::Counter,
                Kind::Gauge => MetricType::Gauge,
            };
            let mut family = encoder.encode_descriptor(series.name, series.help, None, metric_type)?;
            for p in &pods {
                let labels = [("namespace", p.namespace.as_str()), ("pod", p.name.as_str())];
                let sample = family.encode_family(&labels)?;
                match (series.kind, (series.figure)(p)) {
                    (Kind::Counter, Figure::Count(n)) => ConstCounter::new(n).encode(sample)?,
                    (Kind::Counter, Figure::Seconds(s)) => ConstCounter::new(s).encode(sample)?,
                    (Kind::Gauge, Figure::Count(n)) => ConstGauge::new(n).encode(sample)?,
                    (Kind::Gauge, Figure::Seconds(s)) => ConstGauge::new(s).encode(sample)?,
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use capstan_runtime::usage::UsageSample;

    use super::super::sample;
    use super::*;

    struct Fixed;

    impl UsageSource for Fixed {
        fn pods_by_phase(&self) -> BTreeMap<String, u64> {
            BTreeMap::from([("Running".to_owned(), 2)])
        }

        fn pod_usage(&self) -> Vec<PodUsage> {
            let pod = |name: &str, sample| PodUsage {
                namespace: "team".into(),
                name: name.into(),
                uid: format!("uid-{name}"),
                sample,
            };
            vec![
                pod(
                    "web",
                    UsageSample {
                        cpu_nanos: 1_500_000_000,
                        memory_bytes: 1 << 20,
                        requests: 42,
                        in_flight: 3,
                    },
                ),
                pod("idle", UsageSample::default()),
            ]
        }
    }

    #[test]
    fn a_scrape_turns_the_runtime_counters_into_series() {
        let text = NodeMetrics::from_source(Fixed).encode();
        let web = r#"{namespace="team",pod="web"}"#;
        let idle = r#"{namespace="team",pod="idle"}"#;
        assert_eq!(
            sample(&text, r#"capstan_node_pods{phase="Running"}"#),
            Some(2.0),
            "{text}"
        );
        assert_eq!(sample(&text, r#"capstan_node_pods{phase="Pending"}"#), Some(0.0));
        assert_eq!(
            sample(&text, &format!("capstan_node_container_requests_total{web}")),
            Some(42.0)
        );
        assert_eq!(
            sample(&text, &format!("capstan_node_pod_cpu_seconds_total{web}")),
            Some(1.5)
        );
        assert_eq!(
            sample(&text, &format!("capstan_node_pod_memory_bytes{web}")),
            Some(1048576.0)
        );
        assert_eq!(sample(&text, &format!("capstan_node_pod_in_flight{web}")), Some(3.0));
        assert_eq!(
            sample(&text, &format!("capstan_node_container_requests_total{idle}")),
            Some(0.0)
        );
        assert!(text.contains("# TYPE capstan_node_pod_cpu_seconds counter"), "{text}");
        assert!(text.ends_with("# EOF\n"));
    }
}
