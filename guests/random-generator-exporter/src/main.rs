//! `k8spatterns/random-generator-exporter`: the Adapter of "Kubernetes Patterns". A
//! `wasi:http/proxy` component that answers GET `/metrics` (and `/`) with the random generator's
//! `LOG_FILE` turned into Prometheus metrics, re-read on every request. A missing file (or no
//! `LOG_FILE`) gives zero counts. `main` (`wasi:cli/run`, the startup task) only prints what it
//! will read.

use std::fs::File;
use std::io::{self, BufReader};

use random_generator_exporter::{CONTENT_TYPE, Stats, render};
use wasi::http::types::{IncomingRequest, Method, ResponseOutparam};

const NAME: &str = "random-generator-exporter";

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
                    eprintln!("{NAME}: {e}");
                    (500, "text/plain; charset=utf-8", format!("{e}\n"))
                }
            }
        };
        guest_http::send(response_out, status, content_type, body.as_bytes(), head, NAME);
    }
}

wasi::http::proxy::export!(Exporter);

fn main() {
    match std::env::var("LOG_FILE") {
        Ok(path) => println!("random-generator-exporter: exporting metrics of {path}"),
        Err(_) => eprintln!("random-generator-exporter: LOG_FILE is not set; all metrics are 0"),
    }
}
