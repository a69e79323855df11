//! `capstan/hello-http`: a minimal `wasi:http/proxy` component answering 200 "hello\n".
//!
//! A Rust `bin` for wasm32-wasip2 always links wasi-libc's `crt1-command.o`, which exports
//! `wasi:cli/run` (stable Rust has no per-bin way to drop it; `#![no_main]` leaves a `run` that
//! traps). So `main` is a no-op that succeeds at once: a host that runs `wasi:cli/run` as the
//! startup task goes straight to serving HTTP.

use std::io::Write as _;

use wasi::http::types::{Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam};

const BODY: &[u8] = b"hello\n";

struct HelloHttp;

impl wasi::exports::http::incoming_handler::Guest for HelloHttp {
    fn handle(_request: IncomingRequest, response_out: ResponseOutparam) {
        let headers = Fields::from_list(&[
            ("content-type".to_string(), b"text/plain".to_vec()),
            ("content-length".to_string(), BODY.len().to_string().into_bytes()),
        ])
        .expect("valid headers");
        let response = OutgoingResponse::new(headers);
        let body = response.body().expect("body taken once");
        ResponseOutparam::set(response_out, Ok(response));
        let mut stream = body.write().expect("stream taken once");
        stream.write_all(BODY).expect("write body");
        drop(stream);
        OutgoingBody::finish(body, None).expect("finish body");
    }
}

wasi::http::proxy::export!(HelloHttp);

fn main() {}
