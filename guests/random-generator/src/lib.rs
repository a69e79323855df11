//! Shared code of the `random-generator-1` / `random-generator-2` components: a re-implementation
//! of the k8spatterns/random-generator service ("Kubernetes Patterns") as one WASI 0.2 component.
//!
//! * `main` (exported as `wasi:cli/run`) is the startup task, or the `RandomRunner` batch job
//!   when argv contains `RandomRunner`.
//! * `handle` (exported as `wasi:http/incoming-handler`) serves one HTTP request. Every request
//!   gets a fresh instance, so all state lives in files under /tmp.

mod json;

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::io::{self, Write as _};
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use wasi::http::types::{IncomingRequest, Method, ResponseOutparam, Scheme};

use json::Obj;

pub const ID_FILE: &str = "/tmp/random-generator-id";
pub const READY_FILE: &str = "/tmp/random-generator-ready";
/// The book's Example 4-2 checks this path (`stat /var/run/random-generator-ready`);
/// it mirrors READY_FILE where the filesystem has a /var/run.
pub const READY_FILE_VAR_RUN: &str = "/var/run/random-generator-ready";
/// The book's Example 3-1 (Declarative Deployment) checks this one (`stat /random-generator-ready`).
pub const READY_FILE_ROOT: &str = "/random-generator-ready";
pub const DEAD_FILE: &str = "/tmp/random-generator-dead";
pub const COUNTER_FILE: &str = "/tmp/random-generator-counter";
pub const POST_START_FILE: &str = "/tmp/postStart_done";

const MIB: usize = 1 << 20;
const PAGE: usize = 4096;

// ---------------------------------------------------------------------------------------------
// wasi:cli/run
// ---------------------------------------------------------------------------------------------

/// Entry point of `wasi:cli/run`.
pub fn main(version: &str) -> ExitCode {
    let args: Vec<String> = env::args().collect();
    match args.iter().position(|a| a == "RandomRunner") {
        Some(pos) => random_runner(&args[pos + 1..]),
        None => startup(version),
    }
}

/// The startup task: the host serves HTTP only after this returned success.
fn startup(version: &str) -> ExitCode {
    if env::var("WAIT_FOR_POST_START").is_ok_and(|v| v == "true") {
        while !Path::new(POST_START_FILE).exists() {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    if let Ok(delay) = env::var("DELAY_STARTUP") {
        match delay.trim().parse::<u64>() {
            Ok(secs) => std::thread::sleep(Duration::from_secs(secs)),
            Err(_) => eprintln!("random-generator: ignoring invalid DELAY_STARTUP={delay:?}"),
        }
    }
    let id = match read_or_create_id() {
        Ok(id) => id,
        Err(e) => {
            eprintln!("random-generator: cannot create {ID_FILE}: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = fs::write(READY_FILE, b"") {
        eprintln!("random-generator: cannot create {READY_FILE}: {e}");
        return ExitCode::FAILURE;
    }
    mirror_ready(true);
    println!("random-generator {version} started (id {id})");
    ExitCode::SUCCESS
}

/// `RandomRunner FILE COUNT [INTERVAL_SECONDS]`: append COUNT random numbers to FILE (again
/// every INTERVAL_SECONDS, forever, when an interval is given).
fn random_runner(args: &[String]) -> ExitCode {
    const USAGE: &str = "usage: RandomRunner FILE COUNT [INTERVAL_SECONDS]";
    if args.len() < 2 || args.len() > 3 {
        eprintln!("RandomRunner: wrong number of arguments; {USAGE}");
        return ExitCode::FAILURE;
    }
    let file = &args[0];
    let Ok(count) = args[1].parse::<u64>() else {
        eprintln!("RandomRunner: invalid COUNT {:?}; {USAGE}", args[1]);
        return ExitCode::FAILURE;
    };
    let interval = match args.get(2) {
        None => None,
        Some(s) => match s.parse::<f64>() {
            Ok(v) if v.is_finite() && v >= 0.0 => Some(Duration::from_secs_f64(v)),
            _ => {
                eprintln!("RandomRunner: invalid INTERVAL_SECONDS {s:?}; {USAGE}");
                return ExitCode::FAILURE;
            }
        },
    };
    loop {
        if let Err(e) = append_random_numbers(file, count) {
            eprintln!("RandomRunner: cannot write {file}: {e}");
            return ExitCode::FAILURE;
        }
        println!("Wrote {count} random numbers to {file}");
        match interval {
            None => return ExitCode::SUCCESS,
            Some(d) => std::thread::sleep(d),
        }
    }
}

fn append_random_numbers(file: &str, count: u64) -> io::Result<()> {
    create_parent_dirs(file)?;
    let mut f = fs::OpenOptions::new().append(true).create(true).open(file)?;
    let mut remaining = count;
    let mut text = String::new();
    while remaining > 0 {
        let batch = remaining.min(4096);
        let bytes = wasi::random::random::get_random_bytes(batch * 4);
        text.clear();
        for chunk in bytes.chunks_exact(4) {
            let n = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]) >> 1;
            let _ = writeln!(text, "{n}");
        }
        f.write_all(text.as_bytes())?;
        remaining -= batch;
    }
    f.flush()
}

// ---------------------------------------------------------------------------------------------
// wasi:http/incoming-handler
// ---------------------------------------------------------------------------------------------

struct Response {
    status: u16,
    content_type: &'static str,
    body: Vec<u8>,
}

fn json(status: u16, body: String) -> Response {
    Response {
        status,
        content_type: "application/json",
        body: body.into_bytes(),
    }
}

fn error(status: u16, message: &str) -> Response {
    json(status, Obj::new().str("error", message).finish())
}

/// Entry point of `wasi:http/incoming-handler`.
pub fn handle(version: &str, request: IncomingRequest, out: ResponseOutparam) {
    let method = request.method();
    let path_with_query = request.path_with_query().unwrap_or_else(|| "/".into());
    let (path, query) = match path_with_query.split_once('?') {
        Some((p, q)) => (p, q),
        None => (path_with_query.as_str(), ""),
    };
    let get = matches!(method, Method::Get);
    match path {
        "/shutdown" if get || matches!(method, Method::Post) => {
            send(out, json(200, Obj::new().str("status", "shutting down").finish()));
            // The host treats exit(0) as the container exiting with code 0.
            std::process::exit(0);
        }
        "/memory-eater" if get => {
            let Some(mb) = query_param(query, "mb").and_then(|v| v.parse::<usize>().ok()) else {
                return send(out, error(400, "expected query parameter mb=<MiB>"));
            };
            // Keep the memory until the response has been written.
            let held = eat_memory(mb);
            send(out, json(200, Obj::new().raw("allocated_mb", mb).finish()));
            drop(std::hint::black_box(held));
        }
        _ if !get => send(out, error(405, "method not allowed")),
        _ => send(out, route(version, path)),
    }
}

fn route(version: &str, path: &str) -> Response {
    match path {
        "/" => random(version),
        "/info" => info(version),
        "/actuator/health" => {
            if Path::new(DEAD_FILE).exists() {
                json(503, Obj::new().str("status", "DOWN").finish())
            } else {
                json(200, Obj::new().str("status", "UP").finish())
            }
        }
        "/toggle-live" => match toggle(DEAD_FILE) {
            // The dead file now exists <=> not live.
            Ok(dead) => json(200, Obj::new().raw("live", !dead).finish()),
            Err(e) => error(500, &format!("cannot toggle {DEAD_FILE}: {e}")),
        },
        "/toggle-ready" => match toggle(READY_FILE) {
            Ok(ready) => {
                mirror_ready(ready);
                json(200, Obj::new().raw("ready", ready).finish())
            }
            Err(e) => error(500, &format!("cannot toggle {READY_FILE}: {e}")),
        },
        "/logs" => match env::var("LOG_FILE") {
            Err(_) => error(404, "LOG_FILE is not set"),
            Ok(file) => match fs::read(&file) {
                Ok(body) => Response {
                    status: 200,
                    content_type: "text/plain; charset=utf-8",
                    body,
                },
                Err(e) => error(404, &format!("cannot read {file}: {e}")),
            },
        },
        _ => json(
            404,
            Obj::new()
                .str("error", "not found")
                .str("path", path)
                .finish(),
        ),
    }
}

/// `GET /`: a random number, logged to LOG_FILE and/or LOG_URL.
fn random(version: &str) -> Response {
    let id = current_id();
    let start = Instant::now();
    let value = next_random();
    let duration = start.elapsed().as_micros();
    let time = unix_millis();

    if let Ok(file) = env::var("LOG_FILE")
        && let Err(e) = append_log(&file, &format!("{time} {duration} {value}\n")) {
            eprintln!("random-generator: cannot append to LOG_FILE {file}: {e}");
        }
    if let Ok(url) = env::var("LOG_URL") {
        let body = Obj::new()
            .raw("random", value)
            .str("id", &id)
            .raw("duration", duration)
            .raw("time", time)
            .finish();
        if let Err(e) = post_json(&url, &body) {
            eprintln!("random-generator: POST to LOG_URL {url} failed: {e}");
        }
    }

    let mut obj = Obj::new()
        .raw("random", value)
        .str("id", &id)
        .str("version", version);
    if let Ok(pattern) = env::var("PATTERN") {
        obj = obj.str("pattern", &pattern);
    }
    json(200, obj.finish())
}

/// `GET /info`.
fn info(version: &str) -> Response {
    let mut vars: Vec<(String, String)> = env::vars()
        .filter(|(k, _)| {
            let k = k.to_ascii_uppercase();
            !["SECRET", "PASSWORD", "TOKEN"].iter().any(|s| k.contains(s))
        })
        .collect();
    vars.sort();
    let args: Vec<String> = env::args().collect();
    let mut obj = Obj::new().str("id", &current_id()).str("version", version);
    if let Ok(pattern) = env::var("PATTERN") {
        obj = obj.str("pattern", &pattern);
    }
    let obj = obj
        .raw(
            "env",
            json::str_map(vars.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
        )
        .raw("args", json::str_array(args.iter().map(String::as_str)))
        .raw("ready", Path::new(READY_FILE).exists())
        .raw("live", !Path::new(DEAD_FILE).exists());
    json(200, obj.finish())
}

fn send(out: ResponseOutparam, response: Response) {
    guest_http::send(
        out,
        response.status,
        response.content_type,
        &response.body,
        false,
        "random-generator",
    );
}

fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Allocates `mb` MiB in 1 MiB chunks and touches every page. There is deliberately no
/// fallback: if the host's memory limit stops the growth, the instance traps.
fn eat_memory(mb: usize) -> Vec<Box<[u8]>> {
    let mut held = Vec::with_capacity(mb);
    for _ in 0..mb {
        let mut chunk = vec![0u8; MIB].into_boxed_slice();
        for i in (0..MIB).step_by(PAGE) {
            chunk[i] = 1;
        }
        held.push(std::hint::black_box(chunk));
    }
    held
}

/// Toggles the existence of `file`; returns whether it exists afterwards.
/// Keeps the /var/run copy of the readiness file in step (best effort: a sandbox
/// without /var/run simply has no copy).
/// Mirrors the readiness file where the book's examples look for it, where the filesystem
/// allows (a read-only or missing directory is skipped).
fn mirror_ready(ready: bool) {
    for (dir, file) in [("/var/run", READY_FILE_VAR_RUN), ("/", READY_FILE_ROOT)] {
        if Path::new(dir).is_dir() {
            let _ = if ready { fs::write(file, b"") } else { fs::remove_file(file) };
        }
    }
}

fn toggle(file: &str) -> io::Result<bool> {
    match fs::remove_file(file) {
        Ok(()) => Ok(false),
        Err(e) if e.kind() == io::ErrorKind::NotFound => fs::write(file, b"").map(|()| true),
        Err(e) => Err(e),
    }
}

// ---------------------------------------------------------------------------------------------
// id, random numbers, logging
// ---------------------------------------------------------------------------------------------

/// The instance id from ID_FILE, created lazily (so the component also works under
/// `wasmtime serve`); a per-request id if /tmp is not writable.
fn current_id() -> String {
    read_or_create_id().unwrap_or_else(|e| {
        eprintln!("random-generator: cannot create {ID_FILE}: {e}");
        uuid_v4()
    })
}

fn read_or_create_id() -> io::Result<String> {
    let read = || -> io::Result<Option<String>> {
        match fs::read_to_string(ID_FILE) {
            Ok(s) if !s.trim().is_empty() => Ok(Some(s.trim().to_string())),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    };
    if let Some(id) = read()? {
        return Ok(id);
    }
    let id = uuid_v4();
    match fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(ID_FILE)
    {
        Ok(mut f) => {
            f.write_all(id.as_bytes())?;
            Ok(id)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            // A concurrent instance created it: wait briefly for its content.
            for _ in 0..50 {
                if let Some(existing) = read()? {
                    return Ok(existing);
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            Ok(id)
        }
        Err(e) => Err(e),
    }
}

/// A random (version 4) UUID from `wasi:random`.
fn uuid_v4() -> String {
    let mut b = wasi::random::random::get_random_bytes(16);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let mut s = String::with_capacity(36);
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        let _ = write!(s, "{byte:02x}");
    }
    s
}

/// A non-negative i32: deterministic per request when SEED is set, else from `wasi:random`.
fn next_random() -> i32 {
    let bits = match env::var("SEED") {
        Ok(seed) => {
            let seed = seed.trim().parse::<u64>().unwrap_or_else(|_| fnv1a(seed.as_bytes()));
            let counter = next_counter();
            splitmix64(splitmix64(seed) ^ counter)
        }
        Err(_) => wasi::random::random::get_random_u64(),
    };
    (bits >> 33) as i32
}

/// Increments the request counter in COUNTER_FILE and returns the new value.
fn next_counter() -> u64 {
    let current = fs::read_to_string(COUNTER_FILE)
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(0);
    let next = current.wrapping_add(1);
    if let Err(e) = fs::write(COUNTER_FILE, next.to_string()) {
        eprintln!("random-generator: cannot write {COUNTER_FILE}: {e}");
    }
    next
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn unix_millis() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

fn create_parent_dirs(file: &str) -> io::Result<()> {
    match Path::new(file).parent() {
        Some(parent) if !parent.as_os_str().is_empty() && !parent.exists() => {
            fs::create_dir_all(parent)
        }
        _ => Ok(()),
    }
}

fn append_log(file: &str, line: &str) -> io::Result<()> {
    create_parent_dirs(file)?;
    fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(file)?
        .write_all(line.as_bytes())
}

/// POSTs `body` (application/json) to `url` via `wasi:http/outgoing-handler` and waits for
/// the response.
fn post_json(url: &str, body: &str) -> Result<(), String> {
    let (scheme, rest) = if let Some(rest) = url.strip_prefix("http://") {
        (Scheme::Http, rest)
    } else if let Some(rest) = url.strip_prefix("https://") {
        (Scheme::Https, rest)
    } else {
        return Err("LOG_URL must start with http:// or https://".into());
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return Err("LOG_URL has no host".into());
    }

    guest_http::post(&scheme, authority, path, b"application/json", body.as_bytes()).map_err(|e| match e {
        guest_http::PostError::Invalid(what) => format!("invalid {what} in LOG_URL"),
        e => e.to_string(),
    })
}
