//! `k8spatterns/random-generator:2.0`: startup task (`wasi:cli/run`) and HTTP service
//! (`wasi:http/incoming-handler`) in one component.

use wasi::http::types::{IncomingRequest, ResponseOutparam};

const VERSION: &str = "2.0";

struct Component;

impl wasi::exports::http::incoming_handler::Guest for Component {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        random_generator::handle(VERSION, request, response_out);
    }
}

wasi::http::proxy::export!(Component);

fn main() -> std::process::ExitCode {
    random_generator::main(VERSION)
}
