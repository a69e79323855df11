//! What a verb talks to and about: the API server and namespace (flags, else the kubeconfig's
//! current context, as kubectl resolves them), and resource types named the ways kubectl
//! accepts (`pods`, `pod`, `po`, `Pod`, `deployments.apps`, `deploy/NAME`, `all`).
//!
//! Types are resolved against the table this binary serves ([`RESOURCES`]) rather than by
//! discovery: `capstan` and its API server are one program, so the table is the server's.

use std::path::PathBuf;

use capstan_control::api::resources::{RESOURCES, ResourceInfo};
use capstan_control::client::Client;
use capstan_control::kubeconfig;
use serde_json::Value;

use super::Failure;

/// The flags every verb that talks to the API server takes.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ConnectArgs {
    /// The API server (`http://host:port`); default: the kubeconfig's current context.
    #[arg(short = 's', long)]
    pub server: Option<String>,
    /// The kubeconfig to read (default: $KUBECONFIG, else ~/.kube/config).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// The namespace (default: the current context's, else `default`).
    #[arg(short, long)]
    pub namespace: Option<String>,
}

/// A client and the namespace requests go to.
pub struct Conn {
    pub client: Client,
    pub namespace: String,
    /// Whether `-n` was given (a manifest in another namespace is then an error, as in kubectl).
    pub explicit_namespace: bool,
}

/// Where the kubeconfig's current context points.
#[derive(Debug, PartialEq, Eq)]
pub struct Context {
    pub server: String,
    pub namespace: Option<String>,
}

/// The current context of a parsed kubeconfig.
pub fn current_context(config: &Value) -> Result<Context, String> {
    let name = config["current-context"].as_str().filter(|s| !s.is_empty());
    let Some(name) = name else {
        return Err("the kubeconfig has no current context".into());
    };
    let entry = |list: &str, wanted: &str| {
        config[list]
            .as_array()
            .into_iter()
            .flatten()
            .find(|e| e["name"] == wanted)
            .cloned()
    };
    let context = entry("contexts", name).ok_or_else(|| format!("context {name:?} does not exist"))?;
    let cluster_name = context["context"]["cluster"].as_str().unwrap_or_default();
    let cluster = entry("clusters", cluster_name)
        .ok_or_else(|| format!("cluster {cluster_name:?} of context {name:?} does not exist"))?;
    let server = cluster["cluster"]["server"]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| format!("cluster {cluster_name:?} has no server"))?;
    Ok(Context {
        server: server.to_owned(),
        namespace: context["context"]["namespace"]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
    })
}

impl ConnectArgs {
    /// The kubeconfig's current context, or why there is none.
    pub fn context(&self) -> Result<Context, String> {
        let path = self.kubeconfig.clone().unwrap_or_else(kubeconfig::default_path);
        let text = std::fs::read_to_string(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
        let config: Value = serde_saphyr::from_str(&text).map_err(|e| format!("reading {}: {e}", path.display()))?;
        current_context(&config).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The client and namespace: `--server`, else the current context; `-n`, else the
    /// context's namespace, else `default`.
    pub fn connect(&self) -> Result<Conn, Failure> {
        let context = self.context();
        let server = match (&self.server, &context) {
            (Some(server), _) => server.clone(),
            (None, Ok(c)) => c.server.clone(),
            (None, Err(why)) => {
                return Err(Failure::User(format!(
                    "no API server: pass --server URL or a kubeconfig with a current context \
                     (`capstan up` writes one): {why}"
                )));
            }
        };
        let client = Client::new(&server).map_err(Failure::from)?;
        let context_ns = context.ok().and_then(|c| c.namespace);
        Ok(Conn {
            client,
            namespace: self
                .namespace
                .clone()
                .or(context_ns)
                .unwrap_or_else(|| "default".into()),
            explicit_namespace: self.namespace.is_some(),
        })
    }
}

/// Resolves a type name to the resources it means: one, or several for a category (`all`).
/// Case-insensitive; `name.group` and `name.version.group` restrict the group.
pub fn resolve(type_name: &str) -> Result<Vec<&'static ResourceInfo>, Failure> {
    let lower = type_name.to_ascii_lowercase();
    let unknown = || Failure::User(format!("the server doesn't have a resource type {type_name:?}"));
    if lower.is_empty() {
        return Err(unknown());
    }
    let (name, group) = match lower.split_once('.') {
        Some((name, rest)) => {
            // `deployments.v1.apps`: a version before the group.
            let group = match rest.split_once('.') {
                Some((version, group)) if RESOURCES.iter().any(|r| r.version == version) => group,
                _ => rest,
            };
            (name, Some(group))
        }
        None => (lower.as_str(), None),
    };
    let group_ok = |r: &ResourceInfo| group.is_none_or(|g| r.group == g);
    let found: Vec<&'static ResourceInfo> = RESOURCES
        .iter()
        .filter(|r| {
            group_ok(r)
                && (r.plural == name
                    || r.singular == name
                    || r.short_names.contains(&name)
                    || r.kind.eq_ignore_ascii_case(name))
        })
        .collect();
    if let Some(first) = found.first() {
        return Ok(vec![first]);
    }
    let category: Vec<&'static ResourceInfo> = RESOURCES
        .iter()
        .filter(|r| group.is_none() && r.categories.contains(&name))
        .collect();
    if category.is_empty() {
        Err(unknown())
    } else {
        Ok(category)
    }
}

/// What a verb's positional arguments select: each type with the names asked for (none: all
/// of them), in the order given.
pub type Selection = Vec<(&'static ResourceInfo, Vec<String>)>;

/// Parses `TYPE[,TYPE...] [NAME...]` or `TYPE/NAME...`, as kubectl's resource builder does.
pub fn select(args: &[String]) -> Result<Selection, Failure> {
    let Some(first) = args.first() else {
        return Err(Failure::User(
            "you must specify the type of resource: one of pods, deployments, replicasets, services, ... \
             or TYPE/NAME"
                .into(),
        ));
    };
    let slashed = args.iter().filter(|a| a.contains('/')).count();
    if slashed == args.len() {
        let mut out: Selection = Vec::new();
        for arg in args {
            let (type_name, name) = arg.split_once('/').unwrap_or((arg, ""));
            if name.is_empty() {
                return Err(Failure::User(format!(
                    "arguments in resource/name form must have a single resource and name: {arg:?}"
                )));
            }
            let infos = resolve(type_name)?;
            if infos.len() != 1 {
                return Err(Failure::User(format!(
                    "{type_name:?} names several resource types; name one of them"
                )));
            }
            match out.last_mut() {
                Some((info, names)) if std::ptr::eq(*info, infos[0]) => names.push(name.to_owned()),
                _ => out.push((infos[0], vec![name.to_owned()])),
            }
        }
        return Ok(out);
    }
    if slashed > 0 {
        return Err(Failure::User(
            "there is no need to specify a resource type as a separate argument when passing arguments in \
             resource/name form (e.g. 'capstan get resource/<resource_name>' instead of 'capstan get resource \
             resource/<resource_name>')"
                .into(),
        ));
    }
    let names: Vec<String> = args[1..].to_vec();
    let mut out: Selection = Vec::new();
    for type_name in first.split(',').filter(|t| !t.is_empty()) {
        for info in resolve(type_name)? {
            if !out.iter().any(|(i, _)| std::ptr::eq(*i, info)) {
                out.push((info, names.clone()));
            }
        }
    }
    if out.is_empty() {
        return Err(Failure::User(format!(
            "the server doesn't have a resource type {first:?}"
        )));
    }
    Ok(out)
}

/// `deployment.apps` or `pod`: how kubectl names a kind in its messages and `-o name`.
pub fn kind_group(info: &ResourceInfo) -> String {
    let kind = info.kind.to_ascii_lowercase();
    if info.group.is_empty() {
        kind
    } else {
        format!("{kind}.{}", info.group)
    }
}

/// The path of a collection (`name` None) or an object; `namespace` None for a namespaced
/// kind lists across every namespace.
pub fn path(info: &ResourceInfo, namespace: Option<&str>, name: Option<&str>) -> String {
    let mut path = if info.group.is_empty() {
        format!("/api/{}", info.version)
    } else {
        format!("/apis/{}/{}", info.group, info.version)
    };
    if let (true, Some(ns)) = (info.namespaced, namespace) {
        path.push_str("/namespaces/");
        path.push_str(&segment(ns));
    }
    path.push('/');
    path.push_str(info.plural);
    if let Some(name) = name {
        path.push('/');
        path.push_str(&segment(name));
    }
    path
}

/// Percent-encodes one path segment (names are DNS-like, but a user may type anything).
fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `?k=v&...` from the pairs whose value is set; empty when none are.
pub fn query(pairs: &[(&str, Option<&str>)]) -> String {
    let mut ser = form_urlencoded::Serializer::new(String::new());
    let mut any = false;
    for (k, v) in pairs {
        if let Some(v) = v {
            ser.append_pair(k, v);
            any = true;
        }
    }
    if any {
        format!("?{}", ser.finish())
    } else {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn plural(s: &str) -> Result<Vec<&'static str>, String> {
        resolve(s)
            .map(|v| v.iter().map(|r| r.plural).collect())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn types_resolve_by_every_name_kubectl_accepts() {
        for (input, want) in [
            ("pods", "pods"),
            ("pod", "pods"),
            ("po", "pods"),
            ("Pod", "pods"),
            ("deploy", "deployments"),
            ("deployments.apps", "deployments"),
            ("deployment.apps", "deployments"),
            ("deployments.v1.apps", "deployments"),
            ("rs", "replicasets"),
            ("ns", "namespaces"),
            ("priorityclasses.scheduling.k8s.io", "priorityclasses"),
            ("ev", "events"),
        ] {
            assert_eq!(plural(input), Ok(vec![want]), "{input}");
        }
        assert_eq!(
            plural("all"),
            Ok(vec![
                "pods",
                "services",
                "deployments",
                "replicasets",
                "horizontalpodautoscalers"
            ])
        );
        for bad in ["widgets", "pods.apps", "", "deployments.v2.apps.x"] {
            assert_eq!(
                plural(bad),
                Err(format!("error: the server doesn't have a resource type {bad:?}")),
                "{bad}"
            );
        }
    }

    #[test]
    fn arguments_select_types_and_names() {
        let args = |s: &str| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
        let names = |sel: Selection| {
            sel.into_iter()
                .map(|(i, n)| format!("{}:{}", i.plural, n.join("+")))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(select(&args("deploy,rs")).unwrap()),
            ["deployments:", "replicasets:"]
        );
        assert_eq!(names(select(&args("po a b")).unwrap()), ["pods:a+b"]);
        assert_eq!(
            names(select(&args("deploy/a deploy/b pod/c")).unwrap()),
            ["deployments:a+b", "pods:c"]
        );
        assert!(select(&args("deploy deploy/a")).is_err());
        assert!(select(&args("deploy/")).is_err());
        assert!(select(&[]).is_err());
        assert!(
            select(&args("widgets x"))
                .unwrap_err()
                .to_string()
                .contains("\"widgets\"")
        );
    }

    #[test]
    fn paths_and_names() {
        let deploy = resolve("deploy").unwrap()[0];
        let node = resolve("node").unwrap()[0];
        assert_eq!(
            path(deploy, Some("default"), Some("web")),
            "/apis/apps/v1/namespaces/default/deployments/web"
        );
        assert_eq!(path(deploy, None, None), "/apis/apps/v1/deployments");
        assert_eq!(path(node, Some("default"), Some("n 1")), "/api/v1/nodes/n%201");
        assert_eq!(kind_group(deploy), "deployment.apps");
        assert_eq!(kind_group(node), "node");
        assert_eq!(
            query(&[("labelSelector", Some("app=x,tier in (a)")), ("watch", None)]),
            "?labelSelector=app%3Dx%2Ctier+in+%28a%29"
        );
        assert_eq!(query(&[("watch", None)]), "");
    }

    #[test]
    fn the_current_context_gives_server_and_namespace() {
        let config = json!({
            "current-context": "capstan",
            "contexts": [{"name": "capstan", "context": {"cluster": "c", "namespace": "team"}}],
            "clusters": [{"name": "c", "cluster": {"server": "http://127.0.0.1:6443"}}],
        });
        assert_eq!(
            current_context(&config),
            Ok(Context {
                server: "http://127.0.0.1:6443".into(),
                namespace: Some("team".into())
            })
        );
        let mut no_cluster = config.clone();
        no_cluster["clusters"] = json!([]);
        assert!(current_context(&no_cluster).unwrap_err().contains("\"c\""));
        assert!(current_context(&json!({})).is_err());
    }
}
