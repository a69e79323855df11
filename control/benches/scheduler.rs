//! Scheduler throughput (issue 4): pods bound per second over 1,000 simulated nodes with
//! varied labels and taints, 10,000 pods with requests, a share with nodeSelector, node
//! affinity, pod anti-affinity and tolerations. Pods are scheduled one by one and the snapshot
//! is updated incrementally as each binds; target ≥ 10,000 pods/s. As in the running
//! scheduler (and kube-scheduler), each pod's search starts where the last one stopped and
//! ends once `feasible_nodes_to_find` nodes fit (42% of 1,000 nodes, at least 100).
//!
//! The baseline in the same run is a naive scheduler that rebuilds the snapshot from all
//! nodes and bound pods for every pod. It is quadratic, so it runs over the first
//! `BASELINE_PODS` pods only, and the ratio compares it with the incremental scheduler over the
//! same pods.
//!
//! Run: `cargo bench -p capstan-control --bench scheduler`.

use std::hint::black_box;
use std::time::Instant;

use capstan_control::scheduler::{Snapshot, feasible_nodes_to_find, schedule_from};
use capstan_core::k8s_openapi::api::core::v1::{Node, Pod};
use serde_json::{Value, json};

const NODES: usize = 1_000;
const PODS: usize = 10_000;
const BASELINE_PODS: usize = 1_000;
const TARGET_PODS_PER_SEC: f64 = 10_000.0;

/// A small deterministic generator (xorshift64*), so every run places the same pods.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn nodes(rng: &mut Rng) -> Vec<Node> {
    (0..NODES)
        .map(|i| {
            let name = format!("node-{i:04}");
            let cores = [8, 16, 32, 64][rng.below(4) as usize];
            let mut taints = Vec::new();
            match rng.below(10) {
                0 => taints.push(json!({"key": "dedicated", "value": "gpu", "effect": "NoSchedule"})),
                1 => taints.push(json!({"key": "spot", "value": "true", "effect": "PreferNoSchedule"})),
                _ => {}
            }
            let node: Value = json!({
                "metadata": {"name": name, "labels": {
                    "kubernetes.io/hostname": name,
                    "topology.kubernetes.io/zone": format!("zone-{}", rng.below(5)),
                    "disktype": if rng.below(3) == 0 { "ssd" } else { "hdd" },
                    "numberCores": cores.to_string(),
                    "kubernetes.io/arch": if rng.below(4) == 0 { "arm64" } else { "amd64" },
                }},
                "spec": {"taints": taints},
                "status": {"allocatable": {"cpu": cores.to_string(), "memory": format!("{}Gi", cores * 4), "pods": "110"}},
            });
            serde_json::from_value(node).expect("node")
        })
        .collect()
}

fn pods(rng: &mut Rng) -> Vec<Pod> {
    (0..PODS)
        .map(|i| {
            let app = format!("app-{}", rng.below(200));
            let cpu = format!("{}m", 100 + 100 * rng.below(5));
            let memory = format!("{}Mi", 128 * (1 + rng.below(4)));
            let mut spec = json!({"containers": [{"name": "main", "image": "k8spatterns/random-generator:1.0",
                "resources": {"requests": {"cpu": cpu, "memory": memory}}}]});
            match rng.below(10) {
                0 | 1 => spec["nodeSelector"] = json!({"disktype": "ssd"}),
                2 => {
                    spec["affinity"] = json!({"nodeAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [{"key": "numberCores", "operator": "Gt", "values": ["15"]}]}]},
                        "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 50, "preference": {"matchExpressions": [{"key": "kubernetes.io/arch", "operator": "In", "values": ["arm64"]}]}}],
                    }})
                }
                3 => spec["tolerations"] = json!([{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]),
                4 if rng.below(5) == 0 => {
                    // 2% of pods: spread their app across hosts.
                    spec["affinity"] = json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                        {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"app": app}}}]}})
                }
                _ => {}
            }
            let pod: Value = json!({"metadata": {"name": format!("pod-{i:05}"), "namespace": "default", "labels": {"app": app}}, "spec": spec});
            serde_json::from_value(pod).expect("pod")
        })
        .collect()
}

/// Schedules `pods` one by one on one snapshot, adding each as it binds. Returns (bound, secs).
fn incremental(nodes: &[Node], pods: &[Pod]) -> (usize, f64) {
    let start = Instant::now();
    let mut snapshot = Snapshot::new(nodes, &[]);
    let mut bound = 0;
    let (want, mut next) = (feasible_nodes_to_find(nodes.len()), 0);
    for pod in pods {
        if let Ok((node, examined)) = schedule_from(pod, &snapshot, next, want) {
            next = (next + examined) % nodes.len();
            snapshot.add_pod(pod, &node);
            bound += 1;
        }
    }
    (bound, start.elapsed().as_secs_f64())
}

/// The naive scheduler: rebuilds the snapshot from every node and bound pod for each pod.
fn naive(nodes: &[Node], pods: &[Pod]) -> (usize, f64) {
    let start = Instant::now();
    let mut bound_pods: Vec<Pod> = Vec::new();
    let (want, mut next) = (feasible_nodes_to_find(nodes.len()), 0);
    for pod in pods {
        let snapshot = Snapshot::new(nodes, &bound_pods);
        if let Ok((node, examined)) = schedule_from(pod, &snapshot, next, want) {
            next = (next + examined) % nodes.len();
            let mut placed = pod.clone();
            placed.spec.as_mut().expect("spec").node_name = Some(node);
            bound_pods.push(placed);
        }
    }
    (bound_pods.len(), start.elapsed().as_secs_f64())
}

fn main() {
    let mut rng = Rng(0x5EED_CA95_7A11);
    let nodes = nodes(&mut rng);
    let pods = pods(&mut rng);
    println!("scheduler benchmark: {NODES} nodes (10% NoSchedule-tainted, 10% PreferNoSchedule), {PODS} pods");
    println!(
        "  pods: 20% nodeSelector disktype=ssd, 10% node affinity (Gt + preferred), 10% tolerations, 2% pod anti-affinity"
    );

    let (bound, secs) = black_box(incremental(&nodes, &pods));
    let rate = bound as f64 / secs;
    let met = if rate >= TARGET_PODS_PER_SEC { "met" } else { "NOT met" };
    println!(
        "incremental snapshot: {bound}/{PODS} pods bound in {secs:.3} s = {rate:.0} pods/s (target >= {TARGET_PODS_PER_SEC:.0}/s: {met})"
    );

    if std::env::var_os("SCHEDULER_BENCH_NO_BASELINE").is_some() {
        return; // for profiling the incremental path alone
    }
    let prefix = &pods[..BASELINE_PODS];
    let (inc_bound, inc_secs) = black_box(incremental(&nodes, prefix));
    let (naive_bound, naive_secs) = black_box(naive(&nodes, prefix));
    assert_eq!(inc_bound, naive_bound, "both schedulers bind the same pods");
    let inc_rate = inc_bound as f64 / inc_secs;
    let naive_rate = naive_bound as f64 / naive_secs;
    println!(
        "first {BASELINE_PODS} pods: incremental {inc_rate:.0} pods/s, naive rebuild-per-pod {naive_rate:.0} pods/s, ratio {:.1}x",
        inc_rate / naive_rate
    );
}
