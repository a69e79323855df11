//! `services/{[scheme:]name[:port]}/proxy/{path}` and `pods/{...}/proxy/{path}`: the apiserver
//! passes a request to a Service or a pod, as Kubernetes' does for `kubectl proxy` and
//! `kubectl get --raw`, and answers with what a ready endpoint (or the pod) answers. The process that runs the Service proxy registers itself
//! ([`ServiceProxy`]); it sends the request as its ingress would, so a Service whose workload
//! scaled to zero is woken and the request held until a pod serves. That is also how a guest
//! on a node in another process, which has no activator, reaches a Service at zero.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use capstan_runtime::container::Response;
use hyper::body::Incoming;

use super::error::ApiError;
use super::path::ProxyKind;
use super::registry::Api;
use serde_json::Value;

/// Which port of the Service a proxied request goes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServicePort {
    /// The Service's only port (or its unnamed one): the path named none.
    Default,
    Number(u16),
    Name(String),
}

impl std::fmt::Display for ServicePort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServicePort::Default => f.write_str("(unnamed)"),
            ServicePort::Number(n) => write!(f, "{n}"),
            ServicePort::Name(name) => f.write_str(name),
        }
    }
}

/// The `[scheme:]name[:port]` segment of the path, as apimachinery's `SplitSchemeNamePort`
/// reads it. Only `http` (or no scheme) is served: the pod network carries no TLS.
pub fn parse_segment(segment: &str) -> Result<(String, ServicePort), ApiError> {
    let parts: Vec<&str> = segment.split(':').collect();
    let (scheme, name, port) = match parts.as_slice() {
        [name] => ("", *name, ""),
        [name, port] => ("", *name, *port),
        [scheme, name, port] => (*scheme, *name, *port),
        _ => return Err(ApiError::BadRequest(format!("invalid service request {segment:?}"))),
    };
    if !matches!(scheme, "" | "http") {
        return Err(ApiError::BadRequest(format!(
            "service proxy: scheme {scheme:?} is not served (only http)"
        )));
    }
    if name.is_empty() {
        return Err(ApiError::BadRequest(format!("invalid service request {segment:?}")));
    }
    let port = match port {
        "" => ServicePort::Default,
        p => match p.parse::<u16>() {
            Ok(n) => ServicePort::Number(n),
            Err(_) => ServicePort::Name(p.to_owned()),
        },
    };
    Ok((name.to_owned(), port))
}

/// A proxied request on its way, answered with the Service's (or the pod's) response.
pub type Proxied = Pin<Box<dyn Future<Output = Result<Response, ApiError>> + Send>>;

/// Sends requests to Services and pods: the service proxy of the API server's process.
pub trait ServiceProxy: Send + Sync {
    /// Sends `request` (its URI already the path and query the Service is to get) to `port`
    /// of Service `namespace/name`. A Service or port that does not exist is `NotFound`.
    fn proxy(&self, namespace: &str, name: &str, port: ServicePort, request: hyper::Request<Incoming>) -> Proxied;

    /// Sends `request` to port `port` of pod `namespace/name` at `ip` (in this process or on a
    /// node of another), as a Service's endpoint would get it.
    fn to_pod(&self, namespace: &str, name: &str, ip: String, port: u16, request: hyper::Request<Incoming>) -> Proxied;
}

/// The port of `pod` a proxied request goes to: the one named or numbered, or with none
/// named, its first container port (80 without any), as kube-apiserver's pod proxy picks.
pub fn pod_port(pod: &Value, port: &ServicePort) -> Result<u16, ApiError> {
    let ports = || {
        pod["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|c| c["ports"].as_array().into_iter().flatten())
    };
    let number = |p: &Value| p["containerPort"].as_u64().and_then(|n| u16::try_from(n).ok());
    match port {
        ServicePort::Number(n) => Ok(*n),
        ServicePort::Default => Ok(ports().next().and_then(number).unwrap_or(80)),
        ServicePort::Name(name) => ports()
            .find(|p| p["name"].as_str() == Some(name.as_str()))
            .and_then(number)
            .ok_or_else(|| ApiError::BadRequest(format!("the pod has no container port named {name:?}"))),
    }
}

impl Api {
    /// Registers the service proxy of this process (once; a later one is ignored).
    pub fn register_service_proxy(&self, proxy: Arc<dyn ServiceProxy>) {
        let _ = self.service_proxy.set(proxy);
    }

    /// Passes `request` to the Service or pod the path names (see the module doc).
    pub async fn proxy(
        self: &Arc<Self>,
        namespace: &str,
        kind: ProxyKind,
        segment: &str,
        path: &str,
        mut request: hyper::Request<Incoming>,
    ) -> Result<Response, ApiError> {
        let (name, port) = parse_segment(segment)?;
        let Some(proxy) = self.service_proxy.get().cloned() else {
            return Err(ApiError::Internal("this server runs no service proxy".into()));
        };
        let uri = match request.uri().query() {
            Some(query) => format!("{path}?{query}"),
            None => path.to_owned(),
        };
        *request.uri_mut() = uri
            .parse()
            .map_err(|e| ApiError::BadRequest(format!("proxy path {uri:?}: {e}")))?;
        match kind {
            ProxyKind::Service => proxy.proxy(namespace, &name, port, request).await,
            ProxyKind::Pod => {
                let (ns, pod_name) = (namespace.to_owned(), name.clone());
                let pods = super::resources::find("", "v1", "pods")
                    .ok_or_else(|| ApiError::Internal("pods are not served".into()))?;
                let pod = self.call(move |a| a.get(pods, Some(&ns), &pod_name)).await?;
                let ip = pod["status"]["podIP"].as_str().unwrap_or_default().to_owned();
                if ip.is_empty() {
                    return Err(ApiError::ServiceUnavailable(format!("pod {name:?} has no IP yet")));
                }
                let port = pod_port(&pod, &port)?;
                proxy.to_pod(namespace, &name, ip, port, request).await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_name_the_service_and_its_port() {
        let ok = |s: &str| parse_segment(s).unwrap();
        assert_eq!(ok("web"), ("web".into(), ServicePort::Default));
        assert_eq!(ok("web:80"), ("web".into(), ServicePort::Number(80)));
        assert_eq!(ok("web:http"), ("web".into(), ServicePort::Name("http".into())));
        assert_eq!(ok("http:web:8080"), ("web".into(), ServicePort::Number(8080)));
        assert_eq!(ok(":web:"), ("web".into(), ServicePort::Default));
        for bad in ["https:web:443", "a:b:c:d", ":80", "ftp:web:21"] {
            assert!(matches!(parse_segment(bad), Err(ApiError::BadRequest(_))), "{bad}");
        }
    }

    #[test]
    fn a_pod_proxy_goes_to_the_port_named_numbered_or_first() {
        let pod = serde_json::json!({"spec": {"containers": [
            {"name": "a"},
            {"name": "b", "ports": [{"containerPort": 8080, "name": "http"}, {"containerPort": 9889, "name": "metrics"}]},
        ]}});
        assert_eq!(pod_port(&pod, &ServicePort::Default).unwrap(), 8080);
        assert_eq!(pod_port(&pod, &ServicePort::Name("metrics".into())).unwrap(), 9889);
        assert_eq!(pod_port(&pod, &ServicePort::Number(7000)).unwrap(), 7000);
        assert!(matches!(
            pod_port(&pod, &ServicePort::Name("nope".into())),
            Err(ApiError::BadRequest(_))
        ));
        assert_eq!(pod_port(&serde_json::json!({}), &ServicePort::Default).unwrap(), 80);
    }
}
