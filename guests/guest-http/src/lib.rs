//! The `wasi:http` plumbing shared by Capstan's HTTP guests (`httpd`,
//! `random-generator-exporter`, `random-generator-log-ambassador`, `random-generator`):
//! writing an outgoing response ([`send`], [`send_fields`]), naming a request method
//! ([`method_name`]) and POSTing a body via `wasi:http/outgoing-handler` ([`post`]).
//!
//! Every function that reports on stderr takes the guest's `name` and prefixes its messages
//! with it, so each guest keeps its own messages.

use std::fmt;
use std::io::{self, Write as _};

use wasi::http::outgoing_handler;
use wasi::http::types::{
    Fields, Method, OutgoingBody, OutgoingRequest, OutgoingResponse, RequestOptions, ResponseOutparam, Scheme,
};
use wasi::io::streams::OutputStream;

/// The name of `method` as it appears on the wire (`GET`, ..., or the extension method).
pub fn method_name(method: Method) -> String {
    match method {
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
    }
}

/// `content-type`, and unless `head` also `content-length` (wasi:http checks a declared length
/// against the bytes written, and a HEAD answer writes none).
pub fn response_headers(content_type: &str, content_length: u64, head: bool) -> Vec<(String, Vec<u8>)> {
    let mut headers = vec![("content-type".to_string(), content_type.as_bytes().to_vec())];
    if !head {
        headers.push(("content-length".to_string(), content_length.to_string().into_bytes()));
    }
    headers
}

/// Answers `status` with `body` of type `content_type`. For HEAD no body and no
/// `content-length`. Write failures go to stderr prefixed with `name`.
pub fn send(out: ResponseOutparam, status: u16, content_type: &str, body: &[u8], head: bool, name: &str) {
    let headers = response_headers(content_type, body.len() as u64, head);
    let fields = Fields::from_list(&headers).expect("valid headers");
    send_fields(out, status, fields, head, name, |stream| stream.write_all(body));
}

/// Answers `status` with the headers `fields`; unless `head`, `write_body` writes the body.
/// Write failures go to stderr prefixed with `name`.
pub fn send_fields(
    out: ResponseOutparam,
    status: u16,
    fields: Fields,
    head: bool,
    name: &str,
    write_body: impl FnOnce(&mut OutputStream) -> io::Result<()>,
) {
    let response = OutgoingResponse::new(fields);
    response.set_status_code(status).expect("valid status code");
    let body = response.body().expect("response body taken once");
    ResponseOutparam::set(out, Ok(response));
    if !head {
        let mut stream = body.write().expect("body stream taken once");
        if let Err(e) = write_body(&mut stream) {
            eprintln!("{name}: writing the response body failed: {e}");
        }
        // Once the declared content-length has arrived the host may already have closed the
        // stream, so a failing flush is not an error here.
        let _ = io::Write::flush(&mut stream);
    }
    if let Err(e) = OutgoingBody::finish(body, None) {
        eprintln!("{name}: finishing the response body failed: {e:?}");
    }
}

/// Why [`post`] failed.
#[derive(Debug)]
pub enum PostError {
    /// The request rejected this part of the target (`method`, `scheme`, `authority`, `path`).
    Invalid(&'static str),
    /// Anything else, described.
    Failed(String),
}

impl fmt::Display for PostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PostError::Invalid(what) => write!(f, "invalid {what}"),
            PostError::Failed(message) => f.write_str(message),
        }
    }
}

impl From<String> for PostError {
    fn from(message: String) -> Self {
        PostError::Failed(message)
    }
}

impl From<&str> for PostError {
    fn from(message: &str) -> Self {
        PostError::Failed(message.to_string())
    }
}

/// POSTs `body` (of type `content_type`) to `scheme://authority/path_with_query` via
/// `wasi:http/outgoing-handler`, waits for the response and drains it; Ok on a 2xx answer.
pub fn post(
    scheme: &Scheme,
    authority: &str,
    path_with_query: &str,
    content_type: &[u8],
    body: &[u8],
) -> Result<(), PostError> {
    let headers = Fields::from_list(&[
        ("content-type".to_string(), content_type.to_vec()),
        ("content-length".to_string(), body.len().to_string().into_bytes()),
    ])
    .map_err(|e| format!("headers: {e:?}"))?;
    let request = OutgoingRequest::new(headers);
    request
        .set_method(&Method::Post)
        .map_err(|()| PostError::Invalid("method"))?;
    request
        .set_scheme(Some(scheme))
        .map_err(|()| PostError::Invalid("scheme"))?;
    request
        .set_authority(Some(authority))
        .map_err(|()| PostError::Invalid("authority"))?;
    request
        .set_path_with_query(Some(path_with_query))
        .map_err(|()| PostError::Invalid("path"))?;
    let outgoing_body = request.body().map_err(|()| "request body taken twice")?;

    let options = RequestOptions::new();
    // Hosts may not support timeouts; that is fine.
    let _ = options.set_connect_timeout(Some(5_000_000_000));
    let _ = options.set_first_byte_timeout(Some(10_000_000_000));
    let future = outgoing_handler::handle(request, Some(options)).map_err(|e| format!("{e:?}"))?;
    {
        let mut stream = outgoing_body.write().map_err(|()| "body stream taken twice")?;
        stream
            .write_all(body)
            .and_then(|()| io::Write::flush(&mut stream))
            .map_err(|e| format!("writing the request body: {e}"))?;
    }
    OutgoingBody::finish(outgoing_body, None).map_err(|e| format!("{e:?}"))?;

    let response = loop {
        match future.get() {
            Some(Ok(Ok(response))) => break response,
            Some(Ok(Err(code))) => return Err(format!("{code:?}").into()),
            Some(Err(())) => return Err("response already taken".into()),
            None => future.subscribe().block(),
        }
    };
    let status = response.status();
    // Drain the answer so the connection can finish cleanly.
    if let Ok(incoming) = response.consume()
        && let Ok(mut stream) = incoming.stream()
    {
        let _ = io::copy(&mut stream, &mut io::sink());
    }
    if (200..300).contains(&status) {
        Ok(())
    } else {
        Err(format!("HTTP status {status}").into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_names() {
        assert_eq!(method_name(Method::Get), "GET");
        assert_eq!(method_name(Method::Head), "HEAD");
        assert_eq!(method_name(Method::Patch), "PATCH");
        assert_eq!(method_name(Method::Other("PURGE".into())), "PURGE");
    }

    #[test]
    fn head_answers_declare_no_length() {
        assert_eq!(
            response_headers("text/plain", 5, false),
            vec![
                ("content-type".to_string(), b"text/plain".to_vec()),
                ("content-length".to_string(), b"5".to_vec()),
            ]
        );
        assert_eq!(
            response_headers("text/plain", 5, true),
            vec![("content-type".to_string(), b"text/plain".to_vec())]
        );
    }
}
