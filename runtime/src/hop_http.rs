//! A guest's `wasi:http` request to a pod of this process, answered without a task.
//!
//! wasi-http's `outgoing-handler.handle` spawns a task that awaits the response (and,
//! once it has it, a second for the connection's I/O), and the guest's
//! `future-incoming-response` waits on the first task's `JoinHandle`. For a hop
//! (`hops.rs`: the callee runs on the caller's own task) that puts two spawns and a
//! cross-task wake into every in-process request, and on tokio's multi-thread scheduler
//! such a wake, arriving while the LIFO slot holds the other task, wakes an idle worker
//! that then steals one of them: the request moves to the other core and back (see
//! `hops::QuietWaker` for the figures).
//!
//! So for a request whose destination is a pod of this process, Capstan shadows four
//! functions of wasi-http in the linker: `outgoing-handler.handle`, and the
//! `future-incoming-response` methods `get` and `subscribe` and its destructor. Such a
//! request's future is then a [`HopResponse`] in the guest's resource table (in place of
//! wasi-http's `HostFutureIncomingResponse`), fed by a channel the hop answers on; the
//! guest waits on that channel in its own task. Every other request, and every future
//! wasi-http made, goes to wasi-http's own implementation unchanged.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use tokio::sync::oneshot;
use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource, ResourceType};
use wasmtime_wasi::p2::{DynPollable, Pollable};
use wasmtime_wasi_http::p2::bindings::http::outgoing_handler::Host as _;
use wasmtime_wasi_http::p2::bindings::http::types::{
    ErrorCode, Host as _, HostFutureIncomingResponse as _, Method, Scheme,
};
use wasmtime_wasi_http::p2::body::HostIncomingBody;
use wasmtime_wasi_http::p2::types::{HostFutureIncomingResponse, HostIncomingResponse, HostOutgoingRequest};
use wasmtime_wasi_http::{FieldMap, RequestOptions, WasiHttpHooks, WasiHttpView};

use crate::container::Response;
use crate::store::ContainerData;

/// The `wasi:http` version whose functions are shadowed (wasmtime-wasi-http 48's); a
/// guest built against an earlier 0.2 release links to it all the same.
const TYPES: &str = "wasi:http/types@0.2.12";
const OUTGOING_HANDLER: &str = "wasi:http/outgoing-handler@0.2.12";

/// What a hop answers: the callee's response, or why there is none.
pub(crate) type HopResult = Result<Response, ErrorCode>;

/// The `future-incoming-response` of a request sent as a hop.
pub struct HopResponse {
    answer: oneshot::Receiver<HopResult>,
    state: Answer,
}

enum Answer {
    Waiting,
    Ready(HopResult),
    Taken,
}

impl HopResponse {
    /// Takes in what the hop has answered by now, without waiting.
    fn check(&mut self) {
        if let Answer::Waiting = self.state {
            match self.answer.try_recv() {
                Ok(answer) => self.state = Answer::Ready(answer),
                Err(oneshot::error::TryRecvError::Empty) => {}
                Err(oneshot::error::TryRecvError::Closed) => {
                    self.state = Answer::Ready(Err(ErrorCode::ConnectionTerminated))
                }
            }
        }
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for HopResponse {
    async fn ready(&mut self) {
        if let Answer::Waiting = self.state {
            let answer = (&mut self.answer).await.unwrap_or(Err(ErrorCode::ConnectionTerminated));
            self.state = Answer::Ready(answer);
        }
    }
}

/// Shadows wasi-http's `handle` and `future-incoming-response` in `linker`, which must
/// already hold wasi-http's own (see the module's comment).
pub fn add_to_linker(linker: &mut Linker<ContainerData>) -> wasmtime::Result<()> {
    linker.instance(OUTGOING_HANDLER)?.func_wrap(
        "handle",
        |mut store: StoreContextMut<'_, ContainerData>,
         (request, options): (Resource<HostOutgoingRequest>, Option<Resource<RequestOptions>>)| {
            Ok((handle(store.data_mut(), request, options)?,))
        },
    )?;
    let mut types = linker.instance(TYPES)?;
    types.resource(
        "future-incoming-response",
        ResourceType::host::<HostFutureIncomingResponse>(),
        |mut store, rep| {
            let data = store.data_mut();
            if data.table.get_any_mut(rep)?.is::<HopResponse>() {
                data.table.delete(Resource::<HopResponse>::new_own(rep))?;
                return Ok(());
            }
            wasmtime_wasi_http::p2::bindings::http::types::HostFutureIncomingResponse::drop(
                &mut data.http(),
                Resource::new_own(rep),
            )
        },
    )?;
    types.func_wrap(
        "[method]future-incoming-response.get",
        |mut store: StoreContextMut<'_, ContainerData>, (future,): (Resource<HostFutureIncomingResponse>,)| {
            Ok((get(store.data_mut(), future)?,))
        },
    )?;
    types.func_wrap(
        "[method]future-incoming-response.subscribe",
        |mut store: StoreContextMut<'_, ContainerData>, (future,): (Resource<HostFutureIncomingResponse>,)| {
            let data = store.data_mut();
            let rep = future.rep();
            if data.table.get_any_mut(rep)?.is::<HopResponse>() {
                let pollable: Resource<DynPollable> =
                    wasmtime_wasi::p2::subscribe(&mut data.table, Resource::<HopResponse>::new_borrow(rep))?;
                return Ok((pollable,));
            }
            Ok((data.http().subscribe(future)?,))
        },
    )?;
    Ok(())
}

type Handled = Result<Resource<HostFutureIncomingResponse>, ErrorCode>;

/// `outgoing-handler.handle`: a request to a pod of this process goes as a hop; any
/// other to wasi-http (and so through [`crate::outgoing::OutgoingHttp`]'s hooks).
fn handle(
    data: &mut ContainerData,
    request: Resource<HostOutgoingRequest>,
    options: Option<Resource<RequestOptions>>,
) -> wasmtime::Result<Handled> {
    let destination = {
        let req = data.table.get(&request)?;
        destination(req, &data.hooks)
    };
    let Some((network, port)) = destination else {
        let mut http = data.http();
        return match http.handle(request, options) {
            Ok(future) => Ok(Ok(future)),
            Err(e) => Ok(Err(http.convert_error_code(e)?)),
        };
    };
    if let Some(options) = options {
        // Timeouts bound waits on a network; a hop has none. The resource is the
        // guest's to drop all the same.
        let _ = data.table.delete(options);
    }
    let req = data.table.delete(request)?;
    let request = match to_http(req, &mut data.hooks) {
        Ok(request) => request,
        Err(code) => return Ok(Err(code)),
    };
    let (tx, answer) = oneshot::channel();
    data.hooks.hops().start(Box::pin(async move {
        let response = network
            .http(port, request)
            .await
            .map_err(|_| ErrorCode::ConnectionRefused);
        let _ = tx.send(response);
    }));
    let future = data.table.push(HopResponse {
        answer,
        state: Answer::Waiting,
    })?;
    Ok(Ok(Resource::new_own(future.rep())))
}

/// The pod of this process and the port a request goes to, if it goes to one.
fn destination(
    req: &HostOutgoingRequest,
    hooks: &crate::outgoing::OutgoingHttp,
) -> Option<(crate::network::PodNetwork, u16)> {
    let https = match &req.scheme {
        None | Some(Scheme::Http) => false,
        Some(Scheme::Https) => true,
        Some(Scheme::Other(_)) => return None,
    };
    let authority: http::uri::Authority = req.authority.as_deref()?.parse().ok()?;
    let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
    hooks.hop_to(authority.host(), port)
}

/// The guest's request as wasi-http's `handle` makes it, checked as it checks it.
fn to_http(
    req: HostOutgoingRequest,
    hooks: &mut crate::outgoing::OutgoingHttp,
) -> Result<http::Request<wasmtime_wasi_http::WasiBody>, ErrorCode> {
    let invalid = |e: &dyn std::fmt::Display| ErrorCode::InternalError(Some(e.to_string()));
    let content_length = match req.headers.get(http::header::CONTENT_LENGTH) {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| invalid(&format!("invalid `content-length` header value: {v:?}")))?,
        ),
    };
    if req.body.is_none() && content_length.is_some_and(|n| n != 0) {
        return Err(ErrorCode::HttpRequestBodySize(Some(0)));
    }
    let method = match req.method {
        Method::Get => http::Method::GET,
        Method::Head => http::Method::HEAD,
        Method::Post => http::Method::POST,
        Method::Put => http::Method::PUT,
        Method::Delete => http::Method::DELETE,
        Method::Connect => http::Method::CONNECT,
        Method::Options => http::Method::OPTIONS,
        Method::Trace => http::Method::TRACE,
        Method::Patch => http::Method::PATCH,
        Method::Other(m) => http::Method::from_bytes(m.as_bytes()).map_err(|_| ErrorCode::HttpRequestMethodInvalid)?,
    };
    let scheme = match req.scheme {
        Some(Scheme::Https) => http::uri::Scheme::HTTPS,
        _ => http::uri::Scheme::HTTP,
    };
    let authority = req.authority.unwrap_or_default();
    let mut uri = http::Uri::builder().scheme(scheme).authority(authority.as_str());
    if let Some(path) = req.path_with_query {
        uri = uri.path_and_query(path);
    }
    let uri = uri.build().map_err(wasmtime_wasi_http::p2::http_request_error)?;
    let mut builder = http::Request::builder().method(method).uri(uri);
    if hooks.set_host_header() {
        builder = builder.header(http::header::HOST, authority.as_str());
    }
    for (name, value) in req.headers.iter() {
        builder = builder.header(name, value);
    }
    let body = req
        .body
        .unwrap_or_else(|| Empty::<Bytes>::new().map_err(|never| match never {}).boxed_unsync());
    builder.body(body).map_err(|e| invalid(&e))
}

type Got = Option<Result<Result<Resource<HostIncomingResponse>, ErrorCode>, ()>>;

/// `future-incoming-response.get`.
fn get(data: &mut ContainerData, future: Resource<HostFutureIncomingResponse>) -> wasmtime::Result<Got> {
    let Some(hop) = data.table.get_any_mut(future.rep())?.downcast_mut::<HopResponse>() else {
        return data.http().get(future);
    };
    hop.check();
    let answer = match std::mem::replace(&mut hop.state, Answer::Taken) {
        Answer::Waiting => {
            hop.state = Answer::Waiting;
            return Ok(None);
        }
        Answer::Taken => return Ok(Some(Err(()))),
        Answer::Ready(answer) => answer,
    };
    let response = match answer {
        Ok(response) => response,
        Err(code) => return Ok(Some(Ok(Err(code)))),
    };
    let (parts, body) = response.into_parts();
    let headers = FieldMap::new_immutable(&mut data.hooks, parts.headers);
    let response = data.table.push(HostIncomingResponse {
        status: parts.status.as_u16(),
        headers,
        body: Some(HostIncomingBody::new(body)),
    })?;
    Ok(Some(Ok(Ok(response))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outgoing::{OutgoingHttp, OutgoingPolicy};

    fn hooks() -> OutgoingHttp {
        OutgoingHttp::new(OutgoingPolicy::default(), crate::hops::Hops::default())
    }

    fn request(method: Method, headers: &[(&str, &str)], body: Option<&'static str>) -> HostOutgoingRequest {
        let mut fields = FieldMap::new_mutable(usize::MAX);
        for (name, value) in headers {
            fields
                .append_raw(name.parse().unwrap(), value.parse().unwrap())
                .unwrap();
        }
        HostOutgoingRequest {
            method,
            scheme: Some(Scheme::Http),
            authority: Some("localhost:9009".into()),
            path_with_query: Some("/log?x=1".into()),
            headers: fields,
            body: body.map(|b| {
                http_body_util::Full::new(Bytes::from_static(b.as_bytes()))
                    .map_err(|never| match never {})
                    .boxed_unsync()
            }),
        }
    }

    /// The request a hop delivers is the one wasi-http would send: method, URI, a
    /// `Host` header, the guest's headers and its body.
    #[tokio::test]
    async fn a_hop_request_is_the_guests_request() {
        let req = request(
            Method::Post,
            &[("content-type", "application/json"), ("content-length", "2")],
            Some("{}"),
        );
        let sent = to_http(req, &mut hooks()).expect("a valid request");
        assert_eq!(sent.method(), http::Method::POST);
        assert_eq!(sent.uri().to_string(), "http://localhost:9009/log?x=1");
        assert_eq!(sent.headers()[http::header::HOST], "localhost:9009");
        assert_eq!(sent.headers()[http::header::CONTENT_TYPE], "application/json");
        let body = sent.into_body().collect().await.expect("body").to_bytes();
        assert_eq!(&body[..], b"{}");
        let custom = to_http(request(Method::Other("PURGE".into()), &[], None), &mut hooks()).expect("a custom method");
        assert_eq!(custom.method().as_str(), "PURGE");
    }

    /// What wasi-http refuses before a request leaves, a hop refuses the same way.
    #[test]
    fn a_hop_refuses_what_wasi_http_refuses() {
        let refused = |req| to_http(req, &mut hooks()).err();
        assert!(matches!(
            refused(request(Method::Post, &[("content-length", "5")], None)),
            Some(ErrorCode::HttpRequestBodySize(Some(0)))
        ));
        assert!(matches!(
            refused(request(Method::Post, &[("content-length", "+5")], Some("hello"))),
            Some(ErrorCode::InternalError(Some(m))) if m.contains("content-length")
        ));
        assert!(matches!(
            refused(request(Method::Other("BAD METHOD".into()), &[], None)),
            Some(ErrorCode::HttpRequestMethodInvalid)
        ));
    }

    /// Only requests to a pod of this process are hops; other schemes and hosts are
    /// wasi-http's to send.
    #[test]
    fn only_requests_to_this_processs_pods_are_hops() {
        let hooks = hooks();
        let mut req = request(Method::Get, &[], None);
        assert_eq!(destination(&req, &hooks).map(|(_, port)| port), Some(9009));
        req.authority = Some("localhost".into());
        req.scheme = Some(Scheme::Https);
        assert_eq!(destination(&req, &hooks).map(|(_, port)| port), Some(443));
        req.scheme = Some(Scheme::Other("ftp".into()));
        assert!(destination(&req, &hooks).is_none());
        req.scheme = None;
        req.authority = Some("example.com".into());
        assert!(destination(&req, &hooks).is_none(), "no such pod or Service");
        req.authority = None;
        assert!(destination(&req, &hooks).is_none());
    }

    /// The future reads the hop's answer once; a hop that ends without answering is a
    /// terminated connection.
    #[test]
    fn the_future_takes_the_answer_once() {
        let (tx, answer) = oneshot::channel();
        let mut hop = HopResponse {
            answer,
            state: Answer::Waiting,
        };
        hop.check();
        assert!(matches!(hop.state, Answer::Waiting));
        tx.send(Err(ErrorCode::ConnectionRefused)).expect("send");
        hop.check();
        assert!(matches!(hop.state, Answer::Ready(Err(ErrorCode::ConnectionRefused))));
        let (tx, answer) = oneshot::channel::<HopResult>();
        drop(tx);
        let mut gone = HopResponse {
            answer,
            state: Answer::Waiting,
        };
        gone.check();
        assert!(matches!(
            gone.state,
            Answer::Ready(Err(ErrorCode::ConnectionTerminated))
        ));
    }
}
