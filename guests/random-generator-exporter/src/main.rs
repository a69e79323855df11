//! `k8spatterns/random-generator-exporter`: the Adapter of "Kubernetes Patterns". A
//! `wasi:http/proxy` component that answers GET `/metrics` (and `/`) with the random generator's
//! `LOG_FILE` turned into Prometheus metrics, re-read on every request. A missing file (or no
//! `LOG_FILE`) gives zero counts. `main` (`wasi:cli/run`, the startup task) only prints what it
//! will read.

use std::fs::File;
use std::io::{self, BufReader, Write as _};

use random_generator_exporter::{CONTENT_TYPE, Stats, render};
use wasi::http::types::{Fields, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam};

fn read_stats() -> io::Result<Stats> {
    let Ok(path) = std::env::var("LOG_FILE") else {
        return Ok(Stats::default());
    };
    match File::open(&path) {
        Ok(f) => Stats::read(BufReader::with_capacity(64 * 1024, f)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Stats::default()),
        Err(e) => Err(io::Error::new(e.kind(), format!("cannot read LOG_FILE {path}: {e}"))),
    }
}

struct Exporter;

impl wasi::exports::http::incoming_handler::Guest for Exporter {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let method = request.method();
        let head = matches!(method, Method::Head);
        let target = request.path_with_query().unwrap_or_else(|| "/".into());
        let path = target.split(['?', '#']).next().unwrap_or("/");
        let (status, content_type, body) = if !matches!(method, Method::Get | Method::Head) {
            (405, "text/plain; charset=utf-8", "method not allowed\n".to_string())
        } else if path != "/metrics" && path != "/" {
            (
                404,
                "text/plain; charset=utf-8",
                format!("not found: {path} (metrics are at /metrics)\n"),
            )
        } else {
            match read_stats() {
                Ok(stats) => (200, CONTENT_TYPE, render(&stats)),
                Err(e) => {
                    eprintln!("random-generator-exporter: {e}");
                    (500, "text/plain; charset=utf-8", format!("{e}\n"))
                }
            }
        };
        send(response_out, status, content_type, body.as_bytes(), head);
    }
}

wasi::http::proxy::export!(Exporter);

/// For HEAD no body and no `content-length` (wasi:http checks a declared length against the
/// bytes written).
fn send(out: ResponseOutparam, status: u16, content_type: &str, body: &[u8], head: bool) {
    let mut headers = vec![("content-type".to_string(), content_type.as_bytes().to_vec())];
    if !head {
        headers.push(("content-length".to_string(), body.len().to_string().into_bytes()));
    }
    let response = OutgoingResponse::new(Fields::from_list(&headers).expect("valid headers"));
    response.set_status_code(status).expect("valid status code");
    let outgoing = response.body().expect("response body taken once");
    ResponseOutparam::set(out, Ok(response));
    if !head {
        let mut stream = outgoing.write().expect("body stream taken once");
        if let Err(e) = stream.write_all(body) {
            eprintln!("random-generator-exporter: writing the response body failed: {e}");
        }
        let _ = io::Write::flush(&mut stream);
    }
    if let Err(e) = OutgoingBody::finish(outgoing, None) {
        eprintln!("random-generator-exporter: finishing the response body failed: {e:?}");
    }
}

fn main() {
    match std::env::var("LOG_FILE") {
        Ok(path) => println!("random-generator-exporter: exporting metrics of {path}"),
        Err(_) => eprintln!("random-generator-exporter: LOG_FILE is not set; all metrics are 0"),
    }
}
