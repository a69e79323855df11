//! `centos/httpd`, `httpd`, `nginx`: a static file server as a `wasi:http/proxy` component.
//!
//! Document root: `DOCUMENT_ROOT`, else the first existing of `/var/www/html`,
//! `/usr/share/nginx/html`, `/usr/local/apache2/htdocs` (chosen per request, so a directory a
//! sidecar creates later is picked up). `main` (`wasi:cli/run`, the startup task) only prints the
//! root it would use now.

use std::io::{self, Write as _};
use std::path::Path;

use httpd::{Body, Reply};
use wasi::http::types::{Fields, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam};

fn root() -> std::path::PathBuf {
    httpd::document_root(std::env::var("DOCUMENT_ROOT").ok().as_deref(), Path::exists)
}

struct Httpd;

impl wasi::exports::http::incoming_handler::Guest for Httpd {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let method = match request.method() {
            Method::Get => "GET".to_string(),
            Method::Head => "HEAD".to_string(),
            Method::Post => "POST".to_string(),
            Method::Put => "PUT".to_string(),
            Method::Delete => "DELETE".to_string(),
            Method::Connect => "CONNECT".to_string(),
            Method::Options => "OPTIONS".to_string(),
            Method::Trace => "TRACE".to_string(),
            Method::Patch => "PATCH".to_string(),
            Method::Other(m) => m,
        };
        let target = request.path_with_query().unwrap_or_else(|| "/".into());
        let reply = httpd::respond(&root(), &method, &target);
        send(response_out, reply, method == "HEAD");
    }
}

wasi::http::proxy::export!(Httpd);

/// Writes `reply`. For HEAD no body and no `content-length` (wasi:http checks a declared length
/// against the bytes written).
fn send(out: ResponseOutparam, reply: Reply, head: bool) {
    let mut headers = vec![("content-type".to_string(), reply.content_type.as_bytes().to_vec())];
    if !head {
        headers.push((
            "content-length".to_string(),
            reply.content_length.to_string().into_bytes(),
        ));
    }
    for (name, value) in &reply.headers {
        headers.push((name.to_string(), value.clone().into_bytes()));
    }
    let fields = match Fields::from_list(&headers) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("httpd: invalid response headers: {e:?}");
            Fields::new()
        }
    };
    let response = OutgoingResponse::new(fields);
    response.set_status_code(reply.status).expect("valid status code");
    let body = response.body().expect("response body taken once");
    ResponseOutparam::set(out, Ok(response));
    if !head {
        let mut stream = body.write().expect("body stream taken once");
        let written = match reply.body {
            Body::Bytes(bytes) => stream.write_all(&bytes),
            Body::File(mut file) => io::copy(&mut file, &mut stream).map(|_| ()),
        };
        if let Err(e) = written {
            eprintln!("httpd: writing the response body failed: {e}");
        }
        // The host may close the stream once content-length bytes arrived.
        let _ = io::Write::flush(&mut stream);
    }
    if let Err(e) = OutgoingBody::finish(body, None) {
        eprintln!("httpd: finishing the response body failed: {e:?}");
    }
}

fn main() {
    println!("httpd: serving {}", root().display());
}
