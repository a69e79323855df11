//! One in-memory hop against the same hop over host loopback TCP, in one run.
//!
//! The random generator POSTs every number to its log ambassador (`LOG_URL`). In
//! pod `mem` the ambassador is a container of the same pod at `localhost:9009`,
//! reached in memory; in pod `tcp` the same ambassador runs in another pod published
//! on a host loopback port, granted to the generator, so the POST crosses a real TCP
//! connection (a new one per request, as wasi:http's default client does). Pod
//! `none` has no `LOG_URL`: the hop's cost is a pod's latency minus `none`'s.
//! Target (DESIGN.md): in-memory hop ≤ 0.3 × the loopback TCP hop.
//!
//! Run: `cargo bench -p capstan-runtime --bench sidecar_hop`

use std::time::{Duration, Instant};

use bytes::Bytes;
use capstan_core::env::ConfigObjects;
use capstan_core::manifest::{Object, parse_manifests};
use capstan_core::{defaults, validate};
use capstan_runtime::{PodHandle, Runtime, RuntimeConfig};
use http_body_util::{BodyExt, Full};

const SEQUENTIAL: usize = 2000;
const CONCURRENT: usize = 4000;
const CONCURRENCY: usize = 16;

fn pod(rt: &Runtime, yaml: &str) -> PodHandle {
    let objects = parse_manifests(yaml).expect("manifest");
    let Object::Pod(p) = &objects[0] else { unreachable!() };
    let mut p = (**p).clone();
    defaults::default_pod(&mut p);
    assert!(validate::validate_pod(&p).is_empty());
    rt.start_pod(p, ConfigObjects::from_objects(&objects))
}

async fn ready(h: &PodHandle) {
    let mut rx = h.status();
    let all_ready = |p: &capstan_core::k8s_openapi::api::core::v1::Pod| {
        p.status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .is_some_and(|cs| cs.iter().all(|c| c.ready))
    };
    tokio::time::timeout(Duration::from_secs(60), rx.wait_for(all_ready))
        .await
        .expect("ready")
        .expect("status");
}

async fn get(h: &capstan_runtime::network::PodNetwork) {
    let server = h.route(8080).expect("port 8080 served");
    let req = http::Request::get("http://localhost:8080/")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = server.handle(req).await;
    assert_eq!(resp.status(), 200);
    resp.into_body().collect().await.expect("body");
}

struct Figures {
    p50: Duration,
    p99: Duration,
    rps: f64,
}

/// Measures from a task on the runtime's worker threads, where a request arrives in
/// Capstan (a Service proxy's or a published port's connection task); `block_on`'s own
/// thread is not one of them and would add a thread hand-off to every variant.
async fn measure(h: &PodHandle) -> Figures {
    let net = h.network();
    tokio::spawn(measure_from_worker(net)).await.expect("measuring task")
}

async fn measure_from_worker(h: capstan_runtime::network::PodNetwork) -> Figures {
    for _ in 0..100 {
        get(&h).await;
    }
    let mut lat = Vec::with_capacity(SEQUENTIAL);
    for _ in 0..SEQUENTIAL {
        let t = Instant::now();
        get(&h).await;
        lat.push(t.elapsed());
    }
    lat.sort();
    let begun = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..CONCURRENCY {
        let h = h.clone();
        tasks.spawn(async move {
            for _ in 0..CONCURRENT / CONCURRENCY {
                let server = h.route(8080).expect("served");
                let req = http::Request::get("http://localhost:8080/")
                    .body(Full::new(Bytes::new()))
                    .unwrap();
                server.handle(req).await.into_body().collect().await.expect("body");
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let rps = CONCURRENT as f64 / begun.elapsed().as_secs_f64();
    Figures {
        p50: lat[lat.len() / 2],
        p99: lat[lat.len() * 99 / 100],
        rps,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let dir = std::env::temp_dir().join(format!("capstan-hop-bench-{}", std::process::id()));
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio");
    tokio.block_on(async {
        let rt = Runtime::new(RuntimeConfig::new(&dir)).expect("runtime");
        let mem = pod(
            &rt,
            "apiVersion: v1\nkind: Pod\nmetadata: {name: mem}\nspec:\n  containers:\n  - name: main\n    image: k8spatterns/random-generator:1.0\n    env: [{name: LOG_URL, value: \"http://localhost:9009\"}]\n  - {name: ambassador, image: k8spatterns/random-generator-log-ambassador}\n",
        );
        let amb = pod(&rt, "apiVersion: v1\nkind: Pod\nmetadata: {name: amb}\nspec:\n  containers:\n  - {name: ambassador, image: k8spatterns/random-generator-log-ambassador}\n");
        ready(&amb).await;
        let published = capstan_runtime::publish::publish("127.0.0.1:0".parse().unwrap(), amb.network(), 9009).await.expect("publish");
        let port = published.addr.port();
        let tcp = pod(
            &rt,
            &format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: tcp\n  annotations: {{capstan.dev/allow-hosts: \"127.0.0.1:{port}\"}}\nspec:\n  containers:\n  - name: main\n    image: k8spatterns/random-generator:1.0\n    env: [{{name: LOG_URL, value: \"http://127.0.0.1:{port}\"}}]\n"),
        );
        // The same hop to a component that does nothing but answer: the platform's part.
        let bare = pod(
            &rt,
            "apiVersion: v1\nkind: Pod\nmetadata: {name: bare}\nspec:\n  containers:\n  - name: main\n    image: k8spatterns/random-generator:1.0\n    env: [{name: LOG_URL, value: \"http://localhost:9009\"}]\n  - {name: hello, image: capstan/hello-http, ports: [{containerPort: 9009}]}\n",
        );
        let none = pod(&rt, "apiVersion: v1\nkind: Pod\nmetadata: {name: none}\nspec:\n  containers:\n  - {name: main, image: k8spatterns/random-generator:1.0}\n");
        for h in [&mem, &tcp, &none, &bare] {
            ready(h).await;
        }
        let f_none = measure(&none).await;
        let f_mem = measure(&mem).await;
        let f_tcp = measure(&tcp).await;
        let f_bare = measure(&bare).await;
        let hop_mem = f_mem.p50.saturating_sub(f_none.p50);
        let hop_tcp = f_tcp.p50.saturating_sub(f_none.p50);
        println!("request through the random generator, {SEQUENTIAL} sequential (latency) and {CONCURRENT} at concurrency {CONCURRENCY} (req/s)");
        for (name, f) in [
            ("no hop", &f_none),
            ("in-memory hop", &f_mem),
            ("loopback TCP hop", &f_tcp),
            ("in-memory to hello", &f_bare),
        ] {
            println!("  {name:<18} p50 {:>8.3} ms  p99 {:>8.3} ms  {:>8.0} req/s", ms(f.p50), ms(f.p99), f.rps);
        }
        println!(
            "  hop cost (p50 minus no-hop p50): in-memory {:.3} ms, loopback TCP {:.3} ms, in-memory to a bare answer {:.3} ms",
            ms(hop_mem),
            ms(hop_tcp),
            ms(f_bare.p50.saturating_sub(f_none.p50))
        );
        let ratio = hop_mem.as_secs_f64() / hop_tcp.as_secs_f64().max(1e-9);
        println!("  ratio in-memory / TCP hop: {ratio:.2} (target <= 0.30: {})", if ratio <= 0.30 { "met" } else { "NOT met" });
        drop(published);
    });
    let _ = std::fs::remove_dir_all(&dir);
}
