//! Helpers the end-to-end tests share: the binary, the repository, temporary data
//! directories, line readers and a plain HTTP client (no client library, so the tests see
//! exactly what goes over the wire).

#![allow(dead_code, reason = "each test target uses its own subset")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

pub const DEADLINE: Duration = Duration::from_secs(90);

pub fn capstan() -> Command {
    Command::new(env!("CARGO_BIN_EXE_capstan"))
}

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// A data dir of this test's own, removed when it ends.
pub struct DataDir(pub PathBuf);

impl DataDir {
    pub fn new(name: &str) -> Self {
        let d = std::env::temp_dir().join(format!("capstan-e2e-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Self(d)
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn lines(r: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// Gathers lines from `rx` until `done` holds for all gathered so far, the stream ends, or
/// the deadline passes. Reading with `try_iter` after a child exits races the reader thread;
/// this waits for what the test needs instead.
pub fn lines_until(rx: &mpsc::Receiver<String>, done: impl Fn(&[String]) -> bool) -> Vec<String> {
    let deadline = Instant::now() + DEADLINE;
    let mut got = Vec::new();
    while !done(&got) {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(l) => got.push(l),
            Err(_) => break,
        }
    }
    got
}

/// A plain HTTP/1.1 GET; retries until the port answers or the deadline passes.
pub fn http_get(port: u16, path: &str) -> (u16, String) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
            write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
            let mut resp = String::new();
            if s.read_to_string(&mut resp).is_ok() && !resp.is_empty() {
                let status = resp.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
                let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
                let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
                    dechunk(body)
                } else {
                    body.to_string()
                };
                if status != 503 {
                    return (status, body);
                }
            }
        }
        assert!(Instant::now() < deadline, "port {port} never answered");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Decodes a chunked HTTP/1.1 body.
pub fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// One HTTP/1.1 request to `addr` (`host:port`); the status and the (de-chunked) body.
pub fn http(addr: &str, method: &str, path: &str, content_type: &str, body: &str) -> std::io::Result<(u16, String)> {
    http_to_host(addr, addr, method, path, content_type, body)
}

/// [`http`] with another `Host` header (for name-based routing).
pub fn http_to_host(
    addr: &str,
    host: &str,
    method: &str,
    path: &str,
    content_type: &str,
    body: &str,
) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)?;
    let status = resp.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let (head, rest) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
    let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    Ok((status, body))
}

/// Polls `check` until it gives a value or the deadline passes (then panics naming `what`).
pub fn eventually<T>(what: &str, deadline: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + deadline;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A running `capstan up`, killed when dropped.
pub struct Up {
    pub child: Child,
    /// `127.0.0.1:PORT` of the API server.
    pub addr: String,
    /// `127.0.0.1:PORT` of the Ingress gateway.
    pub ingress: String,
    pub kubeconfig: PathBuf,
    _stderr: mpsc::Receiver<String>,
}

impl Up {
    pub fn start(data: &DataDir, args: &[&str]) -> Up {
        let kubeconfig = data.0.join("kubeconfig");
        let store = data.0.join("cluster");
        let mut child = capstan()
            .arg("--data-dir")
            .arg(&store)
            .args([
                "up",
                "--listen",
                "127.0.0.1:0",
                "--ingress-listen",
                "127.0.0.1:0",
                "--kubeconfig",
            ])
            .arg(&kubeconfig)
            .args(args)
            .current_dir(repo())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("capstan up starts");
        let stderr = lines(child.stderr.take().unwrap());
        let (mut addr, mut ingress) = (None, None);
        while addr.is_none() || ingress.is_none() {
            match stderr.recv_timeout(DEADLINE) {
                Ok(line) => {
                    if let Some(rest) = line.split("API server at http://").nth(1) {
                        addr = Some(rest.split(';').next().unwrap().trim().to_owned());
                    }
                    if let Some(rest) = line.split("ingress gateway at http://").nth(1) {
                        ingress = Some(rest.trim().to_owned());
                    }
                }
                Err(_) => panic!("capstan up did not report its addresses"),
            }
        }
        let (addr, ingress) = (addr.unwrap(), ingress.unwrap());
        Up {
            child,
            addr,
            ingress,
            kubeconfig,
            _stderr: stderr,
        }
    }

    /// A `capstan` command against this cluster (through its kubeconfig).
    pub fn capstan_command(&self, args: &[&str]) -> Command {
        let mut command = capstan();
        command
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .current_dir(repo());
        command
    }

    /// Runs a `capstan` verb against this cluster.
    pub fn capstan(&self, args: &[&str]) -> Output {
        self.capstan_command(args).output().expect("capstan runs")
    }

    /// Runs a `capstan` verb, asserts success, returns stdout.
    pub fn capstan_ok(&self, args: &[&str]) -> String {
        let out = self.capstan(args);
        assert!(
            out.status.success(),
            "capstan {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn get(&self, path: &str) -> Value {
        let (status, body) = http(&self.addr, "GET", path, "application/json", "").expect("API answers");
        assert_eq!(status, 200, "GET {path}: {body}");
        serde_json::from_str(&body).expect("JSON body")
    }

    pub fn pods(&self, selector: &str) -> Vec<Value> {
        let list = self.get(&format!("/api/v1/namespaces/default/pods?labelSelector={selector}"));
        list["items"].as_array().cloned().unwrap_or_default()
    }

    /// SIGKILL, as a crash.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn ready(pod: &Value) -> bool {
    pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

pub fn deleting(pod: &Value) -> bool {
    pod["metadata"].get("deletionTimestamp").is_some_and(|t| !t.is_null())
}

pub fn image(pod: &Value) -> &str {
    pod["spec"]["containers"][0]["image"].as_str().unwrap_or_default()
}
