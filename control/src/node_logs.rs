//! The endpoint of a node in its own process, as the kubelet's: the API server forwards
//! `pods/{name}/log` and `nodes/{name}/proxy/metrics` here for nodes it does not host itself.
//!
//! `GET /containerLogs/{namespace}/{pod}/{container}?uid=&follow=&tailLines=&limitBytes=&previous=`
//! `GET /metrics`: the node's metrics ([`NodeMetrics`]).

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpListener;

use crate::api::logs::{FileLogs, LogOptions, NodeLogs};
use crate::metrics::{CONTENT_TYPE as METRICS_CONTENT_TYPE, NodeMetrics};

type Body = BoxBody<Bytes, Infallible>;

/// Serves the node's container logs and metrics on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, logs: Arc<FileLogs>, metrics: Arc<NodeMetrics>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let (logs, metrics) = (Arc::clone(&logs), Arc::clone(&metrics));
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: http::Request<Incoming>| {
                let (logs, metrics) = (Arc::clone(&logs), Arc::clone(&metrics));
                async move { Ok::<_, Infallible>(handle(&logs, &metrics, &req)) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn text(code: StatusCode, message: &str) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::from(message.to_owned())).boxed());
    *resp.status_mut() = code;
    resp
}

fn handle(logs: &FileLogs, metrics: &NodeMetrics, req: &http::Request<Incoming>) -> Response<Body> {
    let parts: Vec<&str> = req.uri().path().trim_matches('/').split('/').collect();
    if parts == ["metrics"] {
        let mut resp = text(StatusCode::OK, &metrics.encode());
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static(METRICS_CONTENT_TYPE),
        );
        return resp;
    }
    let ["containerLogs", ns, pod, container] = parts.as_slice() else {
        return text(StatusCode::NOT_FOUND, "not found");
    };
    let query: HashMap<String, String> = req
        .uri()
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let opts = match LogOptions::from_query(&query) {
        Ok(o) => o,
        Err(e) => return text(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let pod_value = json!({"metadata": {"namespace": ns, "name": pod, "uid": query.get("uid")}});
    match logs.open(&pod_value, container, &opts) {
        Ok(rx) => {
            let mut resp = Response::new(body_of(rx).boxed());
            resp.headers_mut()
                .insert(header::CONTENT_TYPE, header::HeaderValue::from_static("text/plain"));
            resp
        }
        Err(e) => text(
            StatusCode::from_u16(e.code()).unwrap_or(StatusCode::BAD_REQUEST),
            &e.to_string(),
        ),
    }
}

/// The receiver as a body stream of data frames.
fn body_of(
    rx: tokio::sync::mpsc::Receiver<Bytes>,
) -> impl hyper::body::Body<Data = Bytes, Error = Infallible> + Send + 'static {
    let (mut sender, body) = http_body_util::channel::Channel::<Bytes, Infallible>::new(8);
    let mut rx = rx;
    tokio::spawn(async move {
        while let Some(chunk) = rx.recv().await {
            if sender.send(Frame::data(chunk)).await.is_err() {
                break;
            }
        }
    });
    body
}
