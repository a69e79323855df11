//! `centos/httpd`, `httpd`, `nginx`: a static file server as a `wasi:http/proxy` component.
//!
//! Document root: `DOCUMENT_ROOT`, else the first existing of `/var/www/html`,
//! `/usr/share/nginx/html`, `/usr/local/apache2/htdocs` (chosen per request, so a directory a
//! sidecar creates later is picked up). `main` (`wasi:cli/run`, the startup task) only prints the
//! root it would use now.

use std::io::{self, Write as _};
use std::path::Path;

use httpd::{Body, Reply};
use wasi::http::types::{Fields, IncomingRequest, ResponseOutparam};

fn root() -> std::path::PathBuf {
    httpd::document_root(std::env::var("DOCUMENT_ROOT").ok().as_deref(), Path::exists)
}

struct Httpd;

impl wasi::exports::http::incoming_handler::Guest for Httpd {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let method = guest_http::method_name(request.method());
        let target = request.path_with_query().unwrap_or_else(|| "/".into());
        let reply = httpd::respond(&root(), &method, &target);
        send(response_out, reply, method == "HEAD");
    }
}

wasi::http::proxy::export!(Httpd);

/// Writes `reply`. For HEAD no body and no `content-length` (wasi:http checks a declared length
/// against the bytes written).
fn send(out: ResponseOutparam, reply: Reply, head: bool) {
    let mut headers = guest_http::response_headers(reply.content_type, reply.content_length, head);
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
    guest_http::send_fields(out, reply.status, fields, head, "httpd", |stream| match reply.body {
        Body::Bytes(bytes) => stream.write_all(&bytes),
        Body::File(mut file) => io::copy(&mut file, stream).map(|_| ()),
    });
}

fn main() {
    println!("httpd: serving {}", root().display());
}
