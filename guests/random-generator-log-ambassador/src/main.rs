//! `k8spatterns/random-generator-log-ambassador`: the Ambassador of "Kubernetes Patterns". A
//! `wasi:http/proxy` component (port 9009 in the book) to which the random generator POSTs
//! every number it generates (`LOG_URL=http://localhost:9009`).
//!
//! Per POST, before answering 202 `{"status":"logged"}`: prints `LOG <body as one line>` to
//! stdout; appends that line to `LOG_STORE` if set; POSTs the original body to
//! `LOG_FORWARD_URL` if set (failures go to stderr and do not change the answer). GET `/`
//! answers a short text. `main` (`wasi:cli/run`, the startup task) only prints a line.

use std::fs;
use std::io::{self, Read as _, Write as _};
use std::path::Path;

use random_generator_log_ambassador::{MAX_BODY, Route, Target, one_line, parse_url, route};
use wasi::http::types::{IncomingRequest, ResponseOutparam, Scheme};

const NAME: &str = "random-generator-log-ambassador";
const TEXT: &str = "text/plain; charset=utf-8";

struct Ambassador;

impl wasi::exports::http::incoming_handler::Guest for Ambassador {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let method = guest_http::method_name(request.method());
        let target = request.path_with_query().unwrap_or_else(|| "/".into());
        let head = method == "HEAD";
        let (status, content_type, body) = match route(&method, &target) {
            Route::Info => (200, TEXT, format!("{NAME}: POST data here to have it logged\n")),
            Route::NotFound => (404, TEXT, format!("not found: {target}\n")),
            Route::MethodNotAllowed => (405, TEXT, format!("method not allowed: {method}\n")),
            Route::Log => match read_body(&request) {
                Ok(body) => {
                    log(&request, &body);
                    (202, "application/json", r#"{"status":"logged"}"#.to_string())
                }
                Err((status, message)) => {
                    eprintln!("{NAME}: {message}");
                    (status, TEXT, format!("{message}\n"))
                }
            },
        };
        guest_http::send(response_out, status, content_type, body.as_bytes(), head, NAME);
    }
}

wasi::http::proxy::export!(Ambassador);

fn read_body(request: &IncomingRequest) -> Result<Vec<u8>, (u16, String)> {
    let incoming = request
        .consume()
        .map_err(|()| (500, "request body taken twice".to_string()))?;
    let mut body = Vec::new();
    {
        let stream = incoming
            .stream()
            .map_err(|()| (500, "request body stream taken twice".to_string()))?;
        stream
            .take(MAX_BODY as u64 + 1)
            .read_to_end(&mut body)
            .map_err(|e| (400, format!("reading the request body failed: {e}")))?;
    }
    drop(incoming);
    if body.len() > MAX_BODY {
        return Err((413, format!("request body larger than {MAX_BODY} bytes")));
    }
    Ok(body)
}

fn log(request: &IncomingRequest, body: &[u8]) {
    let line = one_line(body);
    {
        let mut stdout = io::stdout().lock();
        let _ = writeln!(stdout, "LOG {line}");
        let _ = stdout.flush();
    }
    if let Ok(store) = std::env::var("LOG_STORE")
        && let Err(e) = append_line(&store, &line)
    {
        eprintln!("{NAME}: cannot append to LOG_STORE {store}: {e}");
    }
    if let Ok(url) = std::env::var("LOG_FORWARD_URL") {
        let content_type = request
            .headers()
            .get("content-type")
            .into_iter()
            .next()
            .unwrap_or_else(|| b"application/json".to_vec());
        if let Err(e) = parse_url(&url).and_then(|t| forward(&t, &content_type, body)) {
            eprintln!("{NAME}: forwarding to LOG_FORWARD_URL {url} failed: {e}");
        }
    }
}

fn append_line(file: &str, line: &str) -> io::Result<()> {
    if let Some(parent) = Path::new(file).parent()
        && !parent.as_os_str().is_empty()
        && !parent.exists()
    {
        fs::create_dir_all(parent)?;
    }
    // One write per line, so concurrent instances do not interleave within a line.
    let mut f = fs::OpenOptions::new().append(true).create(true).open(file)?;
    f.write_all(format!("{line}\n").as_bytes())
}

/// POSTs `body` to `target` via `wasi:http/outgoing-handler`; Ok on a 2xx answer.
fn forward(target: &Target, content_type: &[u8], body: &[u8]) -> Result<(), String> {
    let scheme = if target.https { Scheme::Https } else { Scheme::Http };
    guest_http::post(&scheme, &target.authority, &target.path_with_query, content_type, body).map_err(|e| e.to_string())
}

fn main() {
    match std::env::var("LOG_FORWARD_URL") {
        Ok(url) => println!("{NAME}: logging to stdout and forwarding to {url}"),
        Err(_) => println!("{NAME}: logging to stdout"),
    }
}
