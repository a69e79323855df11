//! `capstan describe TYPE [NAME...]`: kubectl's readable summaries. Pods and Deployments get
//! kubectl's own layouts (`pkg/describe/describe.go`: node, status, containers, conditions;
//! replicas, strategy, pod template, old and new ReplicaSets), ReplicaSets a short one, other
//! kinds a generic one; each ends with the object's Events.
//!
//! Rendering is pure ([`describe`]): the object, what it relates to, and `now` in, text out.

use std::process::ExitCode;

use capstan_control::api::resources::ResourceInfo;
use capstan_control::api::table::human_duration;
use capstan_control::client::Client;
use capstan_core::k8s_openapi::jiff::Timestamp;
use serde_json::Value;

use super::Failure;
use super::printing::{DESCRIBE_LAYOUT, tabwrite};
use super::target::{self, ConnectArgs};

mod pod;
#[cfg(test)]
mod tests;
mod workloads;

pub use pod::template_text;
pub use workloads::{owned_by, same_template};

#[derive(clap::Args, Debug)]
pub struct DescribeArgs {
    /// `TYPE [NAME_PREFIX...]` or `TYPE/NAME...`; no name describes every object of the type.
    pub args: Vec<String>,
    /// A label selector, in place of names.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Every namespace.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// What a description shows besides the object.
#[derive(Debug, Default)]
pub struct Related {
    /// The object's Events.
    pub events: Vec<Value>,
    /// For a Deployment: the ReplicaSets of its namespace (those it owns are picked out).
    pub replica_sets: Vec<Value>,
    /// For a ReplicaSet: the pods of its namespace (those it owns are counted).
    pub pods: Vec<Value>,
}

pub async fn run(args: DescribeArgs) -> anyhow::Result<ExitCode> {
    let selection = target::select(&args.args)?;
    let conn = args.connect.connect()?;
    let namespace = (!args.all_namespaces).then_some(conn.namespace.as_str());
    let client = &conn.client;
    let mut failed = false;
    let mut first = true;
    for (info, names) in &selection {
        let mut objects = Vec::new();
        if names.is_empty() {
            let path = format!(
                "{}{}",
                target::path(info, namespace, None),
                target::query(&[("labelSelector", args.selector.as_deref())])
            );
            let list = client.get(&path).await.map_err(Failure::from)?;
            objects.extend(list["items"].as_array().into_iter().flatten().cloned());
        }
        for name in names {
            match find(client, info, &conn.namespace, name).await {
                Ok(found) => objects.extend(found),
                Err(e) => {
                    eprintln!("{e}");
                    failed = true;
                }
            }
        }
        for object in objects {
            let related = related(client, info, &object).await;
            let text = describe(info.kind, &object, &related, wall_clock());
            print!("{}{text}", if first { "" } else { "\n\n" });
            first = false;
        }
    }
    if first && !failed && selection.iter().all(|(_, names)| names.is_empty()) {
        eprintln!("{}", super::get::no_resources(&selection, namespace));
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// The current time (this crate's jiff has no clock of its own).
pub fn wall_clock() -> Timestamp {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    Timestamp::from_second(secs).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// The object called `name`, else (as kubectl) every object whose name starts with it.
async fn find(client: &Client, info: &ResourceInfo, namespace: &str, name: &str) -> Result<Vec<Value>, Failure> {
    let ns = Some(namespace);
    match client.get(&target::path(info, ns, Some(name))).await {
        Ok(object) => Ok(vec![object]),
        Err(e) if e.is_not_found() => {
            let list = client.get(&target::path(info, ns, None)).await.map_err(Failure::from)?;
            let matching: Vec<Value> = list["items"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|o| o["metadata"]["name"].as_str().is_some_and(|n| n.starts_with(name)))
                .cloned()
                .collect();
            if matching.is_empty() {
                Err(e.into())
            } else {
                Ok(matching)
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// Events about the object (and a Deployment's ReplicaSets). A failure to read them leaves
/// them out: the description is still worth printing.
async fn related(client: &Client, info: &ResourceInfo, object: &Value) -> Related {
    let meta = &object["metadata"];
    let name = meta["name"].as_str().unwrap_or_default();
    let namespace = meta["namespace"].as_str();
    let mut fields = vec![
        format!("involvedObject.name={name}"),
        format!("involvedObject.kind={}", info.kind),
    ];
    if let Some(ns) = namespace {
        fields.push(format!("involvedObject.namespace={ns}"));
    }
    if let Some(uid) = meta["uid"].as_str() {
        fields.push(format!("involvedObject.uid={uid}"));
    }
    let events_path = match namespace {
        Some(ns) => format!("/api/v1/namespaces/{ns}/events"),
        None => "/api/v1/events".into(),
    };
    let query = target::query(&[("fieldSelector", Some(&fields.join(",")))]);
    let items =
        |v: Result<Value, _>| -> Vec<Value> { v.ok().and_then(|l| l["items"].as_array().cloned()).unwrap_or_default() };
    let events = items(client.get(&format!("{events_path}{query}")).await);
    let replica_sets = match (info.kind, namespace) {
        ("Deployment", Some(ns)) => items(client.get(&format!("/apis/apps/v1/namespaces/{ns}/replicasets")).await),
        _ => Vec::new(),
    };
    let pods = match (info.kind, namespace) {
        ("ReplicaSet", Some(ns)) => items(client.get(&format!("/api/v1/namespaces/{ns}/pods")).await),
        _ => Vec::new(),
    };
    Related {
        events,
        replica_sets,
        pods,
    }
}

/// The description of `object` (of `kind`), with its events, as of `now`.
pub fn describe(kind: &str, object: &Value, related: &Related, now: Timestamp) -> String {
    let mut w = Out::default();
    match kind {
        "Pod" => pod::pod(&mut w, object, now),
        "Deployment" => workloads::deployment(&mut w, object, &related.replica_sets),
        "ReplicaSet" => workloads::replica_set(&mut w, object, &related.pods),
        _ => generic(&mut w, object),
    }
    // kubectl flushes its tabwriter before a table of events, but not before `<none>`.
    if related.events.is_empty() {
        w.0.push_str(&events(&related.events, now));
        return tabwrite(&w.0, DESCRIBE_LAYOUT, None);
    }
    let mut text = tabwrite(&w.0, DESCRIBE_LAYOUT, None);
    text.push_str(&tabwrite(&events(&related.events, now), DESCRIBE_LAYOUT, None));
    text
}

/// Text with kubectl's indentation levels (two spaces each); cells end with tabs.
#[derive(Default)]
struct Out(String);

impl Out {
    fn w(&mut self, level: usize, text: &str) {
        for _ in 0..level {
            self.0.push_str("  ");
        }
        self.0.push_str(text);
    }
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

/// A scalar as Go's `%v` prints it; `<none>` when absent.
fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "<none>".into(),
        Value::Bool(b) => b.to_string(),
        other => other.to_string(),
    }
}

/// RFC 1123 with a numeric zone, as kubectl prints times.
fn time(v: &Value) -> String {
    match v.as_str().and_then(|t| t.parse::<Timestamp>().ok()) {
        Some(t) => t.strftime("%a, %d %b %Y %H:%M:%S +0000").to_string(),
        None => "<unknown>".into(),
    }
}

/// `translateTimestampSince`.
fn since(v: &Value, now: Timestamp) -> String {
    match v.as_str().and_then(|t| t.parse::<Timestamp>().ok()) {
        Some(t) => human_duration(now.as_second() - t.as_second()),
        None => "<unknown>".into(),
    }
}

/// `printLabelsMultilineWithIndent`: sorted `k=v`, one a line, or `<none>`.
fn labels(w: &mut Out, indent: &str, title: &str, labels: &Value) {
    w.w(0, &format!("{indent}{title}:\t"));
    match labels.as_object().filter(|m| !m.is_empty()) {
        None => w.w(0, "<none>\n"),
        Some(map) => {
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    w.w(0, &format!("{indent}\t"));
                }
                w.w(0, &format!("{k}={}\n", s(v)));
            }
        }
    }
}

/// kubectl's longest annotation on one line.
const MAX_ANNOTATION_LEN: usize = 140;

/// `printAnnotationsMultilineWithIndent`: long or multi-line values go below their key, cut
/// at 140 characters.
fn annotations(w: &mut Out, indent: &str, title: &str, annotations: &Value) {
    w.w(0, &format!("{indent}{title}:\t"));
    // kubectl leaves out the last applied manifest: it repeats the object.
    let shown: Vec<(&String, &Value)> = annotations
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| *k != super::apply::LAST_APPLIED)
        .collect();
    if shown.is_empty() {
        w.w(0, "<none>\n");
        return;
    }
    for (i, (k, v)) in shown.into_iter().enumerate() {
        if i > 0 {
            w.w(0, &format!("{indent}\t"));
        }
        let value = s(v).trim_end_matches('\n');
        if value.len() + k.len() + 2 > MAX_ANNOTATION_LEN || value.contains('\n') {
            w.w(0, &format!("{k}:\n"));
            for line in value.split('\n') {
                let short: String = if line.chars().count() > MAX_ANNOTATION_LEN - 2 {
                    format!("{}...", line.chars().take(MAX_ANNOTATION_LEN - 2).collect::<String>())
                } else {
                    line.to_owned()
                };
                w.w(0, &format!("{indent}\t  {short}\n"));
            }
        } else {
            w.w(0, &format!("{k}: {value}\n"));
        }
    }
}

fn header(w: &mut Out, meta: &Value) {
    w.w(0, &format!("Name:\t{}\n", s(&meta["name"])));
    if let Some(ns) = meta["namespace"].as_str() {
        w.w(0, &format!("Namespace:\t{ns}\n"));
    }
}

/// `metav1.FormatLabelSelector`: requirements sorted by key; `<none>` when empty.
pub fn selector_text(selector: &Value) -> String {
    let mut requirements: Vec<(String, String)> = Vec::new();
    for (k, v) in selector["matchLabels"].as_object().into_iter().flatten() {
        requirements.push((k.clone(), format!("{k}={}", s(v))));
    }
    for e in selector["matchExpressions"].as_array().into_iter().flatten() {
        let k = s(&e["key"]);
        let mut values: Vec<&str> = e["values"].as_array().into_iter().flatten().map(s).collect();
        values.sort_unstable();
        let set = values.join(",");
        let text = match s(&e["operator"]) {
            "In" => format!("{k} in ({set})"),
            "NotIn" => format!("{k} notin ({set})"),
            "Exists" => k.to_owned(),
            "DoesNotExist" => format!("!{k}"),
            other => format!("{k} {other} ({set})"),
        };
        requirements.push((k.to_owned(), text));
    }
    requirements.sort_by(|a, b| a.0.cmp(&b.0));
    if requirements.is_empty() {
        "<none>".into()
    } else {
        requirements.into_iter().map(|(_, r)| r).collect::<Vec<_>>().join(",")
    }
}

/// Any other kind: its metadata, then every other field, nested, with kubectl's generic
/// describer's `Title Case` names.
fn generic(w: &mut Out, object: &Value) {
    let meta = &object["metadata"];
    header(w, meta);
    labels(w, "", "Labels", &meta["labels"]);
    annotations(w, "", "Annotations", &meta["annotations"]);
    if let Some(map) = object.as_object() {
        for (k, v) in map
            .iter()
            .filter(|(k, _)| !["apiVersion", "kind", "metadata"].contains(&k.as_str()))
        {
            field(w, 0, k, v);
        }
    }
}

fn field(w: &mut Out, level: usize, key: &str, value: &Value) {
    let title = title_case(key);
    match value {
        Value::Object(map) if map.is_empty() => w.w(level, &format!("{title}:\t<none>\n")),
        Value::Object(map) => {
            w.w(level, &format!("{title}:\n"));
            for (k, v) in map {
                field(w, level + 1, k, v);
            }
        }
        Value::Array(items) if items.is_empty() => w.w(level, &format!("{title}:\t<none>\n")),
        Value::Array(items) => {
            w.w(level, &format!("{title}:\n"));
            for item in items {
                match item.as_object() {
                    Some(map) => {
                        for (k, v) in map {
                            field(w, level + 1, k, v);
                        }
                    }
                    None => w.w(level + 1, &format!("{}\n", scalar(item))),
                }
            }
        }
        other => w.w(level, &format!("{title}:\t{}\n", scalar(other))),
    }
}

/// `creationTimestamp` → `Creation Timestamp`; map keys that are not identifiers (labels,
/// data keys) are kept as they are.
fn title_case(key: &str) -> String {
    if !key.chars().all(|c| c.is_ascii_alphanumeric()) {
        return key.to_owned();
    }
    let mut out = String::new();
    let mut previous_upper = true;
    for (i, c) in key.chars().enumerate() {
        let upper = c.is_ascii_uppercase();
        if i == 0 {
            out.push(c.to_ascii_uppercase());
        } else if upper && !previous_upper {
            out.push(' ');
            out.push(c);
        } else {
            out.push(c);
        }
        previous_upper = upper;
    }
    out
}

/// `DescribeEvents`: sorted by last time seen; `<none>` when there are none.
pub fn events(list: &[Value], now: Timestamp) -> String {
    if list.is_empty() {
        return "Events:\t<none>\n".into();
    }
    let mut sorted: Vec<&Value> = list.iter().collect();
    let last_seen = |e: &Value| e["lastTimestamp"].as_str().and_then(|t| t.parse::<Timestamp>().ok());
    sorted.sort_by_key(|e| last_seen(e));
    let mut out = String::from("Events:\n  Type\tReason\tAge\tFrom\tMessage\n  ----\t------\t----\t----\t-------\n");
    for e in sorted {
        let first = if e["eventTime"].is_string() {
            since(&e["eventTime"], now)
        } else {
            since(&e["firstTimestamp"], now)
        };
        let count = e["count"].as_i64().unwrap_or(0);
        let age = if e["series"].is_object() {
            format!(
                "{} (x{} over {first})",
                since(&e["series"]["lastObservedTime"], now),
                e["series"]["count"].as_i64().unwrap_or(0)
            )
        } else if count > 1 {
            format!("{} (x{count} over {first})", since(&e["lastTimestamp"], now))
        } else {
            first
        };
        let from = e["source"]["component"]
            .as_str()
            .filter(|c| !c.is_empty())
            .or_else(|| e["reportingComponent"].as_str())
            .unwrap_or_default();
        out.push_str(&format!(
            "  {}\t{}\t{age}\t{from}\t{}\n",
            s(&e["type"]),
            s(&e["reason"]),
            s(&e["message"]).trim()
        ));
    }
    out
}
