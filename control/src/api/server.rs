//! The HTTP shell of the API: hyper connections, query parsing, content negotiation (JSON or
//! a `meta.k8s.io` Table), streaming watch and log responses, and `Status` bodies for errors.
//! Every verb's logic is in [`Api`]; this file only translates HTTP to calls and back.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::discovery;
use super::error::ApiError;
use super::logs::LogOptions;
use super::node_proxy::PROXIED_PATHS;
use super::patch::PatchType;
use super::path::{Route, Target, route};
use super::registry::{Api, DeleteOptions, FieldValidation, ListOptions, WriteOptions};
use super::selector::{FieldSelector, LabelSelector};
use super::table::{self, IncludeObject};
use super::watch::{Event, WatchOptions};
use crate::metrics::{CONTENT_TYPE as METRICS_CONTENT_TYPE, RequestKind};
use crate::proxy::remote::UNSERVED_HEADER;

/// The largest request body accepted, as kube-apiserver's 3 MiB.
const MAX_BODY: usize = 3 * 1024 * 1024;

/// A response body; only a proxied one can fail (its server broke off), which ends the
/// connection as an upstream failure should.
type Body = UnsyncBoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;

/// A body that is complete in memory.
fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed_unsync()
}

/// Serves the API on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, api: Arc<Api>) {
    let local = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    let local: Arc<str> = local.into();
    loop {
        let Ok((stream, _peer)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let api = Arc::clone(&api);
        let local = Arc::clone(&local);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let api = Arc::clone(&api);
                let local = Arc::clone(&local);
                async move { Ok::<_, Infallible>(handle(api, req, &local).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Binds the API's listener.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Answers one request and records it in the API's metrics (verb, resource, code and, unless
/// long-running, how long the answer took to start).
async fn handle(api: Arc<Api>, req: Request<Incoming>, local: &str) -> Response<Body> {
    let started = Instant::now();
    let routed = route(req.uri().path());
    let kind = RequestKind::of(req.method(), &routed, req.uri().query());
    let resp = match dispatch(Arc::clone(&api), req, routed, local).await {
        Ok(resp) => resp,
        Err(err) => {
            let mut resp = json_response(
                StatusCode::from_u16(err.code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                &err.status(),
                &[],
            );
            if matches!(err, ApiError::ServiceUnavailable(_)) {
                // Nothing of the request reached a guest: a node that relayed its guest's
                // request here refuses it as it would a Service without endpoints.
                resp.headers_mut()
                    .insert(UNSERVED_HEADER, HeaderValue::from_static("true"));
            }
            resp
        }
    };
    api.metrics()
        .observe_request(kind, resp.status().as_u16(), started.elapsed());
    resp
}

/// The parsed parts of a request the verbs need.
struct Call {
    method: Method,
    query: HashMap<String, String>,
    accept: String,
    content_type: String,
    body: Bytes,
}

impl Call {
    fn param(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(String::as_str)
    }

    fn flag(&self, name: &str) -> bool {
        matches!(self.param(name), Some("true" | "1"))
    }

    fn wants_table(&self) -> bool {
        self.accept
            .split(',')
            .next()
            .is_some_and(|first| first.contains("as=Table"))
    }

    fn write_options(&self) -> Result<WriteOptions, ApiError> {
        Ok(WriteOptions {
            dry_run: self.param("dryRun") == Some("All"),
            field_validation: FieldValidation::parse(self.param("fieldValidation").unwrap_or(""))?,
        })
    }

    fn list_options(&self, kind: &str) -> Result<ListOptions, ApiError> {
        let bad = |e: super::selector::SelectorError| ApiError::BadRequest(e.to_string());
        Ok(ListOptions {
            labels: match self.param("labelSelector").filter(|s| !s.is_empty()) {
                Some(s) => Some(LabelSelector::parse(s).map_err(bad)?),
                None => None,
            },
            fields: match self.param("fieldSelector").filter(|s| !s.is_empty()) {
                Some(s) => Some(FieldSelector::parse(kind, s).map_err(bad)?),
                None => None,
            },
        })
    }

    /// The body as JSON (or YAML, which some clients send).
    fn json_body(&self) -> Result<Value, ApiError> {
        if self.content_type.contains("yaml") {
            let text = std::str::from_utf8(&self.body).map_err(|e| ApiError::BadRequest(e.to_string()))?;
            return serde_saphyr::from_str(text).map_err(|e| ApiError::BadRequest(format!("invalid YAML body: {e}")));
        }
        if self.content_type.contains("protobuf") {
            return Err(ApiError::UnsupportedMediaType(format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml; got {}",
                self.content_type
            )));
        }
        serde_json::from_slice(&self.body).map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
    }
}

async fn dispatch(
    api: Arc<Api>,
    req: Request<Incoming>,
    routed: Result<Route, ApiError>,
    local: &str,
) -> Result<Response<Body>, ApiError> {
    let route = routed?;
    if let Route::Proxy {
        namespace,
        kind,
        target,
        path,
    } = &route
    {
        // Passed on as it comes, its body streamed: no API body limit applies.
        let resp = api.proxy(namespace, *kind, target, path, req).await?;
        if resp.headers().contains_key(UNSERVED_HEADER) {
            // The proxy's own refusal (no ready endpoint, none to wake), not a pod's answer:
            // a Status, as Kubernetes answers it.
            let text = resp
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let message = String::from_utf8_lossy(&text).trim().to_owned();
            return Err(ApiError::ServiceUnavailable(message));
        }
        return Ok(resp.map(|b| {
            b.map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)
                .boxed_unsync()
        }));
    }
    let query: HashMap<String, String> = req
        .uri()
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let header_str = |name: header::HeaderName| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let accept = header_str(header::ACCEPT);
    let content_type = header_str(header::CONTENT_TYPE);
    let method = req.method().clone();
    let body = Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| ApiError::BadRequest(format!("reading the request body: {e}")))?
        .to_bytes();
    let call = Call {
        method,
        query,
        accept,
        content_type,
        body,
    };
    let ok = |v: &Value| Ok(json_response(StatusCode::OK, v, &[]));
    match route {
        Route::Version => ok(&discovery::version()),
        Route::Health => Ok(Response::new(full(Bytes::from_static(b"ok")))),
        Route::Metrics if call.method == Method::GET => {
            let text = api.call(|a| Ok(a.metrics().encode())).await?;
            Ok(text_response(METRICS_CONTENT_TYPE, text))
        }
        Route::Metrics => Err(ApiError::MethodNotAllowed),
        Route::NodeProxy { node, path } if PROXIED_PATHS.contains(&path.as_str()) => {
            if call.method != Method::GET {
                return Err(ApiError::MethodNotAllowed);
            }
            let text = api.node_metrics(&node).await?;
            Ok(text_response(METRICS_CONTENT_TYPE, text))
        }
        Route::NodeProxy { .. } => Err(ApiError::NoSuchPath),
        Route::Proxy { .. } => Err(ApiError::NoSuchPath),
        Route::CoreVersions => ok(&discovery::core_versions(local)),
        Route::Groups => ok(&discovery::groups()),
        Route::Group(g) => ok(&discovery::group(g)),
        Route::ResourceList { group, version } => ok(&discovery::resource_list(group, version)),
        Route::OpenApiV3Index => ok(&discovery::openapi_index()),
        Route::OpenApiV3 { group, version } => match discovery::openapi_group_version(&group, &version) {
            Some(doc) => ok(&doc),
            None => Err(ApiError::NoSuchPath),
        },
        Route::OpenApiV2 => Err(ApiError::NoSuchPath),
        Route::Resource(target) => resource(api, target, call).await,
    }
}

async fn resource(api: Arc<Api>, target: Target, call: Call) -> Result<Response<Body>, ApiError> {
    let info = target.info;
    let ns = target.namespace.clone();
    let sub = target.subresource.as_deref();
    let name = target.name.clone();
    match (&call.method, name, sub) {
        (&Method::GET, None, None) if target.watch_path || call.flag("watch") => watch(api, &target, &call).await,
        (&Method::GET, None, None) => {
            let opts = call.list_options(info.kind)?;
            if call.wants_table() {
                let (items, rev) = api.call(move |a| a.list_items(info, ns.as_deref(), &opts)).await?;
                let include = IncludeObject::parse(call.param("includeObject")).map_err(ApiError::BadRequest)?;
                let t = table::table(info.kind, &items, Some(&rev.to_string()), include, unix_now());
                return Ok(json_response(StatusCode::OK, &t, &[]));
            }
            let list = api.call(move |a| a.list(info, ns.as_deref(), &opts)).await?;
            Ok(json_response(StatusCode::OK, &list, &[]))
        }
        (&Method::POST, None, None) => {
            let object = call.json_body()?;
            let opts = call.write_options()?;
            let written = api.call(move |a| a.create(info, ns.as_deref(), object, &opts)).await?;
            Ok(json_response(StatusCode::CREATED, &written.object, &written.warnings))
        }
        (&Method::DELETE, None, None) => {
            let list = call.list_options(info.kind)?;
            let opts = delete_options(&call)?;
            let body = api
                .call(move |a| a.delete_collection(info, ns.as_deref(), &list, &opts))
                .await?;
            Ok(json_response(StatusCode::OK, &body, &[]))
        }
        (&Method::GET, Some(name), None | Some("status")) => {
            let object = api.call(move |a| a.get(info, ns.as_deref(), &name)).await?;
            if call.wants_table() {
                let include = IncludeObject::parse(call.param("includeObject")).map_err(ApiError::BadRequest)?;
                let t = table::table(info.kind, std::slice::from_ref(&object), None, include, unix_now());
                return Ok(json_response(StatusCode::OK, &t, &[]));
            }
            Ok(json_response(StatusCode::OK, &object, &[]))
        }
        (&Method::PUT, Some(name), None | Some("status")) => {
            let status_only = sub == Some("status");
            let object = call.json_body()?;
            let opts = call.write_options()?;
            let written = api
                .call(move |a| a.update(info, ns.as_deref(), &name, object, status_only, &opts))
                .await?;
            Ok(json_response(StatusCode::OK, &written.object, &written.warnings))
        }
        (&Method::PATCH, Some(name), None | Some("status")) => {
            let status_only = sub == Some("status");
            let patch_type = PatchType::from_content_type(&call.content_type).ok_or_else(|| {
                ApiError::UnsupportedMediaType(format!(
                    "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json; got {:?}",
                    call.content_type
                ))
            })?;
            let opts = call.write_options()?;
            let body = call.body.clone();
            let written = api
                .call(move |a| a.patch(info, ns.as_deref(), &name, patch_type, &body, status_only, &opts))
                .await?;
            Ok(json_response(StatusCode::OK, &written.object, &written.warnings))
        }
        (&Method::DELETE, Some(name), None) => {
            let opts = delete_options(&call)?;
            let deleted = api.call(move |a| a.delete(info, ns.as_deref(), &name, &opts)).await?;
            // kube-apiserver answers 200 even for a deletion still pending (a graceful pod, a
            // finalizer, a namespace), and 202 only when such a request set
            // `orphanDependents: false`: changing that would break clients, its handler says.
            let code = if !deleted.gone && orphan_dependents_false(&call) {
                StatusCode::ACCEPTED
            } else {
                StatusCode::OK
            };
            Ok(json_response(code, &deleted.body, &[]))
        }
        (&Method::GET, Some(name), Some("scale")) => {
            let ns = ns.unwrap_or_default();
            let scale = api.call(move |a| a.get_scale(info, &ns, &name)).await?;
            Ok(json_response(StatusCode::OK, &scale, &[]))
        }
        (&Method::PUT | &Method::PATCH, Some(name), Some("scale")) => {
            let ns = ns.unwrap_or_default();
            let (replicas, rv) = if call.method == Method::PUT {
                let body = call.json_body()?;
                (
                    body["spec"]["replicas"].as_i64().unwrap_or(0),
                    body["metadata"]["resourceVersion"].as_str().map(str::to_owned),
                )
            } else {
                let patch_type = PatchType::from_content_type(&call.content_type).ok_or_else(|| {
                    ApiError::UnsupportedMediaType(format!("unsupported patch type {:?}", call.content_type))
                })?;
                let (ns2, name2) = (ns.clone(), name.clone());
                let current = api.call(move |a| a.get_scale(info, &ns2, &name2)).await?;
                let patched = super::patch::apply_patch("Scale", patch_type, &current, &call.body)
                    .map_err(|e| ApiError::BadRequest(e.to_string()))?;
                (patched["spec"]["replicas"].as_i64().unwrap_or(0), None)
            };
            let scale = api
                .call(move |a| a.set_scale(info, &ns, &name, replicas, rv.as_deref()))
                .await?;
            Ok(json_response(StatusCode::OK, &scale, &[]))
        }
        (&Method::POST, Some(name), Some("binding")) => {
            let binding = call.json_body()?;
            let ns = ns.unwrap_or_default();
            let status = api.call(move |a| a.bind(&ns, &name, &binding)).await?;
            Ok(json_response(StatusCode::CREATED, &status, &[]))
        }
        (&Method::GET, Some(name), Some("log")) => {
            let ns = ns.unwrap_or_default();
            let opts = LogOptions::from_query(&call.query)?;
            let (ns2, name2) = (ns.clone(), name.clone());
            let pod = api.call(move |a| a.get(info, Some(&ns2), &name2)).await?;
            match api.logs(&pod, opts)? {
                Some(rx) => Ok(stream_response("text/plain", rx)),
                None => {
                    let mut resp = Response::new(full(Bytes::new()));
                    *resp.status_mut() = StatusCode::NO_CONTENT;
                    Ok(resp)
                }
            }
        }
        _ => Err(ApiError::MethodNotAllowed),
    }
}

async fn watch(api: Arc<Api>, target: &Target, call: &Call) -> Result<Response<Body>, ApiError> {
    let info = target.info;
    let ns = target.namespace.clone();
    let opts = WatchOptions {
        list: call.list_options(info.kind)?,
        resource_version: call.param("resourceVersion").map(str::to_owned),
        resource_version_match: call.param("resourceVersionMatch").map(str::to_owned),
        send_initial_events: call.param("sendInitialEvents").map(|v| v == "true"),
        allow_bookmarks: call.flag("allowWatchBookmarks"),
    };
    let timeout = call
        .param("timeoutSeconds")
        .and_then(|s| s.parse::<u64>().ok())
        .map(Duration::from_secs)
        // The apiserver ends watches after a randomised 30-60 minutes; clients re-watch.
        .unwrap_or(Duration::from_secs(1800));
    let table = call.wants_table();
    let include = IncludeObject::parse(call.param("includeObject")).map_err(ApiError::BadRequest)?;
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    let started = api.call(move |a| a.watch(info, ns.as_deref(), opts)).await;
    let mut watch = match started {
        Ok(w) => w,
        // Too old: the apiserver answers 200 with one ERROR event carrying the 410 Status.
        Err(e @ ApiError::Gone { .. }) => {
            let line = Event {
                kind: "ERROR",
                object: e.status(),
            }
            .to_line();
            let _ = tx.send(Bytes::from(line)).await;
            drop(tx);
            return Ok(stream_response("application/json", rx));
        }
        Err(e) => return Err(e),
    };
    tokio::spawn(async move {
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        loop {
            let event = tokio::select! {
                e = watch.next() => e,
                () = &mut deadline => None,
                () = tx.closed() => None,
            };
            let Some(mut event) = event else { break };
            if table && matches!(event.kind, "ADDED" | "MODIFIED" | "DELETED") {
                event.object = table::table(
                    info.kind,
                    std::slice::from_ref(&event.object),
                    None,
                    include,
                    unix_now(),
                );
            }
            if tx.send(Bytes::from(event.to_line())).await.is_err() {
                break;
            }
        }
    });
    Ok(stream_response("application/json", rx))
}

fn delete_options(call: &Call) -> Result<DeleteOptions, ApiError> {
    let body: Value = if call.body.is_empty() {
        Value::Null
    } else {
        call.json_body()?
    };
    let grace = body["gracePeriodSeconds"]
        .as_i64()
        .or_else(|| call.param("gracePeriodSeconds").and_then(|s| s.parse().ok()));
    let propagation = body["propagationPolicy"]
        .as_str()
        .map(str::to_owned)
        .or_else(|| call.param("propagationPolicy").map(str::to_owned))
        .or_else(|| match body["orphanDependents"].as_bool() {
            Some(true) => Some("Orphan".into()),
            _ => None,
        });
    let dry_run =
        body["dryRun"].as_array().is_some_and(|a| a.iter().any(|v| v == "All")) || call.param("dryRun") == Some("All");
    Ok(DeleteOptions {
        grace_period_seconds: grace,
        propagation_policy: propagation,
        precondition_uid: body["preconditions"]["uid"].as_str().map(str::to_owned),
        precondition_resource_version: body["preconditions"]["resourceVersion"].as_str().map(str::to_owned),
        dry_run,
    })
}

/// Whether the DELETE asked, in its body or query, for `orphanDependents=false`.
fn orphan_dependents_false(call: &Call) -> bool {
    let body: Value = serde_json::from_slice(&call.body).unwrap_or(Value::Null);
    body["orphanDependents"] == Value::Bool(false) || call.param("orphanDependents") == Some("false")
}

fn json_response(code: StatusCode, body: &Value, warnings: &[String]) -> Response<Body> {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut resp = Response::new(full(bytes));
    *resp.status_mut() = code;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    for w in warnings {
        let text = format!("299 - {}", serde_json::to_string(w).unwrap_or_default());
        if let Ok(v) = HeaderValue::from_str(&text) {
            resp.headers_mut().append("Warning", v);
        }
    }
    resp
}

/// A whole text body of the given media type.
fn text_response(content_type: &'static str, text: String) -> Response<Body> {
    let mut resp = Response::new(full(text));
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// A chunked response fed by a channel: watch events or log lines as they come.
fn stream_response(content_type: &'static str, mut rx: mpsc::Receiver<Bytes>) -> Response<Body> {
    let (mut sender, body) = http_body_util::channel::Channel::<Bytes, Infallible>::new(8);
    tokio::spawn(async move {
        while let Some(chunk) = rx.recv().await {
            if sender.send(Frame::data(chunk)).await.is_err() {
                break;
            }
        }
    });
    let mut resp = Response::new(body.map_err(|never| match never {}).boxed_unsync());
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache, private"));
    resp
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
