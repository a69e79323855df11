//! Serving HTTP through Capstan against `wasmtime serve` (issue 5), in one process run.
//!
//! Steady state: the same closed-loop load (N keep-alive HTTP/1.1 connections, each sending
//! `GET /` as soon as its previous answer arrived; a warm-up, then a measured window) against
//! two servers of the same two components, `capstan/hello-http` and
//! `k8spatterns/random-generator:1.0`:
//! - the baseline, the `wasmtime serve -S cli=y` CLI (`$WASMTIME`, else `wasmtime` on PATH;
//!   skipped with a message when there is none), given the very bytes Capstan embeds for the
//!   image (resolved through the runtime's image store) and a writable `/tmp` as a pod has. A
//!   CLI built without the pooling allocator (stock `serve` uses it) is rerun with
//!   `-O pooling-allocator=n`, and the output says the baseline is then the weaker one;
//! - Capstan: an all-in-one cluster in this process, a Deployment (1 replica), a ClusterIP
//!   Service and an Ingress per component, loaded through the Ingress gateway with the rule's
//!   `Host` (gateway → Service → pod, a fresh instance per request).
//!
//! The servers run one after the other, never at once, and the load comes from a tokio runtime
//! of its own, as a separate client would. Every answer must be 200 with the component's body
//! (`hello`, JSON with a number `random`); anything else is counted and shown. Prints req/s,
//! p50/p99 latency and errors per (component, server), and Capstan/wasmtime ratios (target:
//! req/s ≥ 1.0, routing costs nothing measurable).
//!
//! Cold start: a third Deployment of `capstan/hello-http`, opted into scale to zero (grace
//! period 1 s), behind its own Service and Ingress host. Each round waits until it has scaled to
//! zero (spec.replicas 0, no pod left), times one request through the gateway (the activator
//! holds it, scales to 1 and forwards it once a pod serves), then at once a warm request on the
//! same connection. Prints p50/p99 of both and of the difference per round (target: ≤ 5 ms
//! added), and the cluster's `capstan_activator_cold_start_seconds` if `/metrics` is served.
//!
//! Run: `cargo bench -p capstan-control --bench serve`. Quick run: set
//! `CAPSTAN_BENCH_CONNECTIONS` (16), `CAPSTAN_BENCH_WARMUP_SECS` (1), `CAPSTAN_BENCH_SECS` (5)
//! and `CAPSTAN_BENCH_COLD_ROUNDS` (20).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use capstan_control::api::Api;
use capstan_control::api::registry::{ListOptions, WriteOptions};
use capstan_control::api::resources::find;
use capstan_control::api::selector::LabelSelector;
use capstan_control::cluster::{self, Cluster, ClusterConfig, NodeConfig};
use capstan_runtime::engine::WasmEngine;
use capstan_runtime::images::ImageStore;
use http::{Request, header};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;

/// How long a server may take to answer its first request (a cluster compiles the component
/// and starts the pod first).
const READY_DEADLINE: Duration = Duration::from_secs(90);
/// Error messages kept per run, to print; the rest are only counted.
const ERRORS_SHOWN: usize = 5;

/// What an answer must carry to count as served.
#[derive(Clone, Copy)]
enum Check {
    /// `hello\n`, as `capstan/hello-http` answers.
    Hello,
    /// A JSON object with a number `random`, as the random generator answers.
    Random,
}

impl Check {
    fn ok(self, body: &[u8]) -> bool {
        match self {
            Check::Hello => body == b"hello\n",
            Check::Random => serde_json::from_slice::<Value>(body).is_ok_and(|v| v["random"].is_number()),
        }
    }
}

/// A component under load: its image, the name of its Deployment, Service and Ingress, and
/// the Ingress host.
struct Subject {
    image: &'static str,
    name: &'static str,
    host: &'static str,
    check: Check,
}

const SUBJECTS: [Subject; 2] = [
    Subject {
        image: "capstan/hello-http",
        name: "hello",
        host: "hello.bench",
        check: Check::Hello,
    },
    Subject {
        image: "k8spatterns/random-generator:1.0",
        name: "random",
        host: "random.bench",
        check: Check::Random,
    },
];

/// The scale-to-zero workload of the cold-start part.
const COLD: Subject = Subject {
    image: "capstan/hello-http",
    name: "cold",
    host: "cold.bench",
    check: Check::Hello,
};

/// The load's shape, from the environment.
struct Settings {
    connections: usize,
    warmup: Duration,
    measure: Duration,
    cold_rounds: usize,
}

impl Settings {
    fn from_env() -> Settings {
        Settings {
            connections: env_or("CAPSTAN_BENCH_CONNECTIONS", 16usize).max(1),
            warmup: Duration::from_secs_f64(env_or("CAPSTAN_BENCH_WARMUP_SECS", 1.0f64).max(0.0)),
            measure: Duration::from_secs_f64(env_or("CAPSTAN_BENCH_SECS", 5.0f64).max(0.1)),
            cold_rounds: env_or("CAPSTAN_BENCH_COLD_ROUNDS", 20usize).max(1),
        }
    }
}

fn env_or<T: FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Err(_) => default,
        Ok(v) => v.trim().parse().unwrap_or_else(|_| {
            eprintln!("{name}={v:?} is not a valid value");
            std::process::exit(2)
        }),
    }
}

// ---------------------------------------------------------------------------------------------
// The client
// ---------------------------------------------------------------------------------------------

type Sender = SendRequest<Empty<Bytes>>;

/// Opens a keep-alive HTTP/1.1 connection to `addr`.
async fn connect(addr: SocketAddr) -> Result<Sender, String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake {addr}: {e}"))?;
    tokio::spawn(conn);
    Ok(sender)
}

/// `GET /` with `Host: host` on `sender`: the status and body.
async fn get(sender: &mut Sender, host: &str) -> Result<(u16, Bytes), String> {
    get_path(sender, host, "/").await
}

/// `GET path` on `sender`'s connection: the status and body.
async fn get_path(sender: &mut Sender, host: &str, path: &str) -> Result<(u16, Bytes), String> {
    let req = Request::get(path)
        .header(header::HOST, host)
        .body(Empty::new())
        .map_err(|e| e.to_string())?;
    sender.ready().await.map_err(|e| format!("connection: {e}"))?;
    let resp = sender.send_request(req).await.map_err(|e| format!("request: {e}"))?;
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("body: {e}"))?
        .to_bytes();
    Ok((status, body))
}

/// One request on a connection of its own: whether it was served as `check` wants.
async fn answers(addr: SocketAddr, host: &str, check: Check) -> Result<(), String> {
    let mut sender = connect(addr).await?;
    match get(&mut sender, host).await? {
        (200, body) if check.ok(&body) => Ok(()),
        (status, body) => Err(format!("{status}: {}", String::from_utf8_lossy(&body).trim())),
    }
}

/// Polls until `addr` serves `host` or the deadline passes; `alive` can give up earlier (a
/// server process that exited).
async fn until_served(
    addr: SocketAddr,
    host: &str,
    check: Check,
    mut alive: impl FnMut() -> Result<(), String>,
) -> Result<(), String> {
    let end = Instant::now() + READY_DEADLINE;
    loop {
        let last = match answers(addr, host, check).await {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        alive()?;
        if Instant::now() > end {
            return Err(format!("{host} at {addr} not served within {READY_DEADLINE:?}: {last}"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What one closed-loop run measured.
#[derive(Default)]
struct Run {
    /// Latencies of the requests started in the measured window and served, sorted.
    latencies: Vec<Duration>,
    measured: Duration,
    errors: usize,
    shown: Vec<String>,
}

impl Run {
    fn per_second(&self) -> f64 {
        self.latencies.len() as f64 / self.measured.as_secs_f64()
    }
}

/// `settings.connections` connections each sending `GET /` one after another: warm-up, then
/// the measured window. Errors count from the first request on.
async fn load(addr: SocketAddr, subject: &Subject, settings: &Settings) -> Run {
    let from = Instant::now() + settings.warmup;
    let end = from + settings.measure;
    let workers: Vec<_> = (0..settings.connections)
        .map(|_| tokio::spawn(connection_loop(addr, subject.host, subject.check, from, end)))
        .collect();
    let mut run = Run {
        measured: settings.measure,
        ..Run::default()
    };
    for worker in workers {
        let part = worker.await.unwrap_or_else(|e| Run {
            errors: 1,
            shown: vec![format!("load task failed: {e}")],
            ..Run::default()
        });
        run.latencies.extend(part.latencies);
        run.errors += part.errors;
        run.shown.extend(
            part.shown
                .into_iter()
                .take(ERRORS_SHOWN - run.shown.len().min(ERRORS_SHOWN)),
        );
    }
    run.latencies.sort();
    run
}

async fn connection_loop(addr: SocketAddr, host: &'static str, check: Check, from: Instant, end: Instant) -> Run {
    let mut run = Run::default();
    let fail = |run: &mut Run, e: String| {
        run.errors += 1;
        if run.shown.len() < ERRORS_SHOWN {
            run.shown.push(e);
        }
    };
    let mut sender = None;
    loop {
        let start = Instant::now();
        if start >= end {
            break;
        }
        let conn = match &mut sender {
            Some(s) => s,
            None => match connect(addr).await {
                Ok(s) => sender.insert(s),
                Err(e) => {
                    fail(&mut run, e);
                    // Do not spin on a server that refuses connections.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        match get(conn, host).await {
            Ok((200, body)) if check.ok(&body) => {
                if start >= from {
                    run.latencies.push(start.elapsed());
                }
            }
            Ok((status, body)) => fail(&mut run, format!("{status}: {}", String::from_utf8_lossy(&body).trim())),
            Err(e) => {
                fail(&mut run, e);
                sender = None;
            }
        }
    }
    run
}

// ---------------------------------------------------------------------------------------------
// Figures
// ---------------------------------------------------------------------------------------------

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn print_row(component: &str, server: &str, run: &Run) {
    let errors = match run.errors {
        0 => "0".to_owned(),
        n => format!("{n}  <- ERRORS, figures not valid"),
    };
    println!(
        "{component:<32} {server:<16} {:>9.0} {:>9.3} {:>9.3}   {errors}",
        run.per_second(),
        ms(percentile(&run.latencies, 0.50)),
        ms(percentile(&run.latencies, 0.99)),
    );
    for e in &run.shown {
        println!("    error: {e}");
    }
}

fn print_ratio(component: &str, capstan: &Run, wasmtime: &Run) {
    let ratio = |a: f64, b: f64| if b > 0.0 { format!("{:.2}x", a / b) } else { "-".into() };
    let (c50, w50) = (
        ms(percentile(&capstan.latencies, 0.5)),
        ms(percentile(&wasmtime.latencies, 0.5)),
    );
    let (c99, w99) = (
        ms(percentile(&capstan.latencies, 0.99)),
        ms(percentile(&wasmtime.latencies, 0.99)),
    );
    println!(
        "{component:<32} capstan/wasmtime: req/s {} (target >= 1.0), p50 {}, p99 {}",
        ratio(capstan.per_second(), wasmtime.per_second()),
        ratio(c50, w50),
        ratio(c99, w99),
    );
}

// ---------------------------------------------------------------------------------------------
// The baseline: `wasmtime serve`
// ---------------------------------------------------------------------------------------------

/// The `wasmtime` CLI and its version, or why there is none.
fn wasmtime_cli() -> Result<(PathBuf, String), String> {
    let bin = std::env::var_os("WASMTIME").map(PathBuf::from).unwrap_or_else(|| {
        std::env::var_os("PATH")
            .iter()
            .flat_map(std::env::split_paths)
            .map(|dir| dir.join("wasmtime"))
            .find(|path| path.is_file())
            .unwrap_or_else(|| PathBuf::from("wasmtime"))
    });
    let out = Command::new(&bin).arg("--version").output().map_err(|e| {
        format!(
            "cannot run {} ({e}); install wasmtime 48 or set WASMTIME to its path",
            bin.display()
        )
    })?;
    if !out.status.success() {
        return Err(format!("{} --version failed", bin.display()));
    }
    Ok((bin, String::from_utf8_lossy(&out.stdout).trim().to_owned()))
}

/// A `wasmtime serve` process, killed when dropped (also when the bench fails).
struct ServeProcess {
    child: std::process::Child,
    stderr: PathBuf,
}

impl ServeProcess {
    /// Starts `wasmtime serve` on a free loopback port with `component`, `/tmp` mapped to
    /// `tmp` (the random generator keeps its instance id there, as it does in a pod), and
    /// `options` (`-O ...`) if any.
    fn start(bin: &Path, options: &[&str], component: &Path, tmp: &Path) -> Result<(ServeProcess, SocketAddr), String> {
        let addr = free_port()?;
        std::fs::create_dir_all(tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
        let stderr = tmp.with_extension("stderr");
        let log = std::fs::File::create(&stderr).map_err(|e| format!("{}: {e}", stderr.display()))?;
        let child = Command::new(bin)
            .arg("serve")
            .arg("--addr")
            .arg(addr.to_string())
            .args(options)
            .args(["-S", "cli=y", "--dir"])
            .arg(format!("{}::/tmp", tmp.display()))
            .arg(component)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", bin.display()))?;
        Ok((ServeProcess { child, stderr }, addr))
    }

    /// Fails once the process has exited, with what it wrote.
    fn alive(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!(
                "wasmtime serve exited ({status}): {}",
                std::fs::read_to_string(&self.stderr).unwrap_or_default().trim()
            )),
            Err(e) => Err(format!("wasmtime serve: {e}")),
        }
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<SocketAddr, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port: {e}"))?;
    listener.local_addr().map_err(|e| e.to_string())
}

/// Writes the component Capstan runs for each subject's image into `dir`, from the runtime's
/// image store, so both servers run the same bytes.
fn write_components(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let engine = WasmEngine::new().map_err(|e| e.to_string())?;
    let store = ImageStore::open(&dir.join("images"), engine).map_err(|e| e.to_string())?;
    SUBJECTS
        .iter()
        .map(|s| {
            let image = store.resolve(s.image).map_err(|e| e.to_string())?;
            let path = dir.join(format!("{}.wasm", s.name));
            std::fs::write(&path, &image.bytes).map_err(|e| format!("{}: {e}", path.display()))?;
            Ok(path)
        })
        .collect()
}

/// The baseline runs, one per subject (`None` where the server could not be started).
fn baseline(client: &tokio::runtime::Runtime, dir: &Path, settings: &Settings) -> Vec<Option<Run>> {
    let skip = || SUBJECTS.iter().map(|_| None).collect();
    let (bin, version) = match wasmtime_cli() {
        Ok(found) => found,
        Err(e) => {
            println!("baseline skipped: {e}");
            return skip();
        }
    };
    println!("baseline: {version} ({})", bin.display());
    let components = match write_components(dir) {
        Ok(c) => c,
        Err(e) => {
            println!("baseline skipped: cannot extract the components: {e}");
            return skip();
        }
    };
    // The stock CLI serves with the pooling allocator; a CLI built without it cannot start
    // that way, so the baseline falls back to the on-demand allocator and says so.
    let mut options: &[&str] = &[];
    let mut runs = Vec::new();
    for (subject, component) in SUBJECTS.iter().zip(components) {
        let tmp = dir.join(format!("{}-tmp", subject.name));
        let mut started = serve(client, &bin, options, &component, &tmp, subject);
        if let Err(e) = &started
            && options.is_empty()
        {
            options = &["-O", "pooling-allocator=n"];
            println!("baseline: {e}");
            println!(
                "baseline: retrying with `-O pooling-allocator=n`; without the pooling allocator the \
                 baseline is slower than a stock `wasmtime serve` and the ratios flatter Capstan"
            );
            started = serve(client, &bin, options, &component, &tmp, subject);
        }
        runs.push(match started {
            Ok((_server, addr)) => Some(client.block_on(load(addr, subject, settings))),
            Err(e) => {
                println!("baseline for {} skipped: {e}", subject.image);
                None
            }
        });
    }
    runs
}

/// `wasmtime serve` of `component`, once it serves `subject`.
fn serve(
    client: &tokio::runtime::Runtime,
    bin: &Path,
    options: &[&str],
    component: &Path,
    tmp: &Path,
    subject: &Subject,
) -> Result<(ServeProcess, SocketAddr), String> {
    let (mut server, addr) = ServeProcess::start(bin, options, component, tmp)?;
    client.block_on(until_served(addr, subject.host, subject.check, || server.alive()))?;
    Ok((server, addr))
}

// ---------------------------------------------------------------------------------------------
// Capstan
// ---------------------------------------------------------------------------------------------

/// The Deployment, Service and Ingress of `subject`, through the API.
fn create_workload(api: &Api, subject: &Subject, annotations: Value) {
    let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": subject.name, "annotations": annotations},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": subject.name}},
            "template": {"metadata": {"labels": {"app": subject.name}},
                "spec": {"terminationGracePeriodSeconds": 0, "containers": [{"name": "web",
                    "image": subject.image, "ports": [{"name": "http", "containerPort": 8080}]}]}}}});
    let service = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": subject.name},
        "spec": {"selector": {"app": subject.name},
            "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}});
    let ingress = json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": subject.name},
        "spec": {"rules": [{"host": subject.host, "http": {"paths": [{"path": "/", "pathType": "Prefix",
            "backend": {"service": {"name": subject.name, "port": {"number": 80}}}}]}}]}});
    let opts = WriteOptions::default();
    for (resource, object) in [
        (find("apps", "v1", "deployments"), deployment),
        (find("", "v1", "services"), service),
        (find("networking.k8s.io", "v1", "ingresses"), ingress),
    ] {
        let resource = resource.expect("a served resource");
        if let Err(e) = api.create(resource, Some("default"), object, &opts) {
            panic!("creating {} {}: {e}", resource.list_kind(), subject.name);
        }
    }
}

/// Whether `name` has scaled to zero: no replica wanted and no pod left.
fn at_zero(api: &Api, name: &str) -> bool {
    let deployments = find("apps", "v1", "deployments").expect("served");
    let replicas = api
        .get(deployments, Some("default"), name)
        .ok()
        .and_then(|d| d["spec"]["replicas"].as_i64());
    let opts = ListOptions {
        labels: Some(LabelSelector::parse(&format!("app={name}")).expect("a valid selector")),
        fields: None,
    };
    let pods = api
        .list(find("", "v1", "pods").expect("served"), Some("default"), &opts)
        .ok()
        .and_then(|l| l["items"].as_array().map(Vec::len));
    replicas == Some(0) && pods == Some(0)
}

/// Waits until the workload is at zero and the cluster has settled there: no write for
/// `QUIET` (the scale-down's status, Endpoints and event writes are over), as a workload that
/// has sat idle at zero is when a request wakes it. False if that takes `READY_DEADLINE`.
async fn settled_at_zero(api: &Api, name: &str) -> bool {
    const QUIET: Duration = Duration::from_millis(200);
    let end = Instant::now() + READY_DEADLINE;
    let revision = || api.store().revision().ok();
    let mut last = (revision(), Instant::now());
    while Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = revision();
        if now != last.0 {
            last = (now, Instant::now());
        } else if last.1.elapsed() >= QUIET && at_zero(api, name) {
            return true;
        }
    }
    false
}

/// Cold and warm latency per round.
struct ColdStarts {
    cold: Vec<Duration>,
    warm: Vec<Duration>,
    errors: Vec<String>,
    /// What the cluster's `/metrics` says about cold starts.
    metric: String,
}

async fn cold_starts(api: Arc<Api>, gateway: SocketAddr, rounds: usize) -> ColdStarts {
    let mut out = ColdStarts {
        cold: Vec::new(),
        warm: Vec::new(),
        errors: Vec::new(),
        metric: String::new(),
    };
    for round in 0..rounds {
        if !settled_at_zero(&api, COLD.name).await {
            out.errors
                .push(format!("round {round}: not settled at zero within {READY_DEADLINE:?}"));
            return out;
        }
        // The connection to the gateway is not part of either figure.
        let mut sender = match connect(gateway).await {
            Ok(s) => s,
            Err(e) => {
                out.errors.push(format!("round {round}: {e}"));
                continue;
            }
        };
        let timed = async |sender: &mut Sender| {
            let start = Instant::now();
            match get(sender, COLD.host).await {
                Ok((200, body)) if COLD.check.ok(&body) => Ok(start.elapsed()),
                Ok((status, body)) => Err(format!("{status}: {}", String::from_utf8_lossy(&body).trim())),
                Err(e) => Err(e),
            }
        };
        match (timed(&mut sender).await, timed(&mut sender).await) {
            (Ok(cold), Ok(warm)) => {
                out.cold.push(cold);
                out.warm.push(warm);
            }
            (Err(e), _) => out.errors.push(format!("round {round}, cold: {e}")),
            (_, Err(e)) => out.errors.push(format!("round {round}, warm: {e}")),
        }
    }
    out
}

fn print_cold(starts: &ColdStarts) {
    let line = |what: &str, samples: &[Duration]| {
        let mut sorted = samples.to_vec();
        sorted.sort();
        println!(
            "{what:<36} p50 {:>8.2} ms   p99 {:>8.2} ms",
            ms(percentile(&sorted, 0.5)),
            ms(percentile(&sorted, 0.99))
        );
    };
    line("first response from zero", &starts.cold);
    line("warm request (same connection)", &starts.warm);
    let added: Vec<Duration> = starts
        .cold
        .iter()
        .zip(&starts.warm)
        .map(|(c, w)| c.saturating_sub(*w))
        .collect();
    line("added (cold - warm, per round)", &added);
    println!("target: added p50 <= 5 ms; {} rounds measured", starts.cold.len());
    for e in &starts.errors {
        println!("    error: {e}");
    }
    println!("{}", starts.metric);
}

/// `GET /metrics` on the API server: a line on the activator's cold-start histogram, or why
/// there is none.
async fn cold_start_metric(api_addr: SocketAddr) -> String {
    let name = "capstan_activator_cold_start_seconds";
    let text = match connect(api_addr).await {
        Ok(mut sender) => match get_path(&mut sender, &api_addr.to_string(), "/metrics").await {
            Ok((200, body)) => String::from_utf8_lossy(&body).into_owned(),
            Ok((status, _)) => return format!("{name}: /metrics answered {status}, skipped"),
            Err(e) => return format!("{name}: /metrics: {e}, skipped"),
        },
        Err(e) => return format!("{name}: {e}, skipped"),
    };
    let sample = |suffix: &str| capstan_control::metrics::sample(&text, &format!("{name}{suffix}"));
    match (sample("_count"), sample("_sum")) {
        (Some(count), Some(sum)) if count > 0.0 => format!(
            "{name} (the activator's own view): {count} cold starts, mean {:.2} ms",
            sum / count * 1000.0
        ),
        _ => format!("{name}: not in /metrics, skipped"),
    }
}

/// Starts the cluster, serves both subjects and the cold workload, loads each subject, then
/// measures cold starts. Returns the runs in `SUBJECTS` order.
fn capstan(
    server: &tokio::runtime::Runtime,
    client: &tokio::runtime::Runtime,
    dir: &Path,
    settings: &Settings,
) -> (Vec<Run>, ColdStarts) {
    let cluster: Cluster = server
        .block_on(cluster::up(ClusterConfig {
            data_dir: dir.join("cluster"),
            listen: "127.0.0.1:0".parse().expect("an address"),
            ingress_listen: Some("127.0.0.1:0".parse().expect("an address")),
            nodes: NodeConfig::numbered(1),
            allow_host_path: false,
        }))
        .expect("cluster starts");
    let gateway = cluster.ingress_addr.expect("the gateway listens");
    server.block_on(async {
        for subject in &SUBJECTS {
            create_workload(&cluster.api, subject, json!({}));
        }
    });
    let runs = SUBJECTS
        .iter()
        .map(|subject| {
            let ready = client.block_on(until_served(gateway, subject.host, subject.check, || Ok(())));
            if let Err(e) = ready {
                panic!("capstan: {e}");
            }
            client.block_on(load(gateway, subject, settings))
        })
        .collect();
    // Created only now, so its start and scale-down fall in no measured window; the
    // steady-state deployments stay up, idle, while it is measured.
    server.block_on(async {
        let annotations = json!({"capstan.dev/scale-to-zero": "true", "capstan.dev/scale-to-zero-grace-period": "1s"});
        create_workload(&cluster.api, &COLD, annotations);
    });
    let mut starts = client.block_on(cold_starts(Arc::clone(&cluster.api), gateway, settings.cold_rounds));
    starts.metric = client.block_on(cold_start_metric(cluster.addr));
    let _inside = server.enter();
    drop(cluster);
    (runs, starts)
}

/// The bench's files, removed when dropped.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn main() {
    let settings = Settings::from_env();
    let dir = TempDir(std::env::temp_dir().join(format!("capstan-bench-serve-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&dir.0);
    std::fs::create_dir_all(&dir.0).expect("a temporary directory");
    let server = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("server")
        .build()
        .expect("a tokio runtime");
    let client = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("client")
        .build()
        .expect("a tokio runtime");
    println!(
        "GET / closed loop: {} keep-alive connections, {:.1} s warm-up, {:.1} s measured, one server at a time",
        settings.connections,
        settings.warmup.as_secs_f64(),
        settings.measure.as_secs_f64()
    );

    let wasmtime = baseline(&client, &dir.0, &settings);
    let (capstan, cold) = capstan(&server, &client, &dir.0, &settings);

    println!();
    println!(
        "{:<32} {:<16} {:>9} {:>9} {:>9}   errors",
        "component", "server", "req/s", "p50 ms", "p99 ms"
    );
    for ((subject, base), ours) in SUBJECTS.iter().zip(&wasmtime).zip(&capstan) {
        match base {
            Some(base) => print_row(subject.image, "wasmtime serve", base),
            None => println!("{:<32} {:<16} (skipped)", subject.image, "wasmtime serve"),
        }
        print_row(subject.image, "capstan ingress", ours);
    }
    if wasmtime.iter().any(Option::is_some) {
        println!();
    }
    for ((subject, base), ours) in SUBJECTS.iter().zip(&wasmtime).zip(&capstan) {
        if let Some(base) = base {
            print_ratio(subject.image, ours, base);
        }
    }
    println!();
    println!(
        "cold start: {} through the gateway, scale to zero after 1 s idle, {} rounds",
        COLD.image, settings.cold_rounds
    );
    print_cold(&cold);
    server.shutdown_timeout(Duration::from_secs(1));
    client.shutdown_timeout(Duration::from_secs(1));
}
