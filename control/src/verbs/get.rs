//! `capstan get TYPE[,TYPE] [NAME...] | TYPE/NAME...`: the server renders each kind's columns
//! as a `meta.k8s.io/v1` Table (what kubectl asks for too), and this prints them in kubectl's
//! layout; `-o json|yaml|name` print objects; `-w` follows a Table watch.

use std::io::Write;
use std::process::ExitCode;

use capstan_control::api::resources::ResourceInfo;
use capstan_control::client::Client;
use serde_json::Value;

use super::Failure;
use super::printing::{self, GET_LAYOUT, TableOptions};
use super::target::{self, ConnectArgs, Selection};
use super::watch::TABLE_ACCEPT;

#[derive(clap::Args, Debug)]
pub struct GetArgs {
    /// `TYPE[,TYPE...] [NAME...]` or `TYPE/NAME...` (types by plural, singular, short name or
    /// `kind.group`; `all` for the common workload types).
    pub args: Vec<String>,
    /// Output format: wide, yaml, json or name.
    #[arg(short, long)]
    pub output: Option<String>,
    /// A label selector (`app=web,tier!=db`).
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// A field selector (`status.phase=Running`).
    #[arg(long)]
    pub field_selector: Option<String>,
    /// After listing, print each change until interrupted.
    #[arg(short, long)]
    pub watch: bool,
    /// Print only the changes, not the current objects.
    #[arg(long)]
    pub watch_only: bool,
    /// Every namespace.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// A LABELS column.
    #[arg(long)]
    pub show_labels: bool,
    /// No header line.
    #[arg(long)]
    pub no_headers: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// The `-o` formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Table { wide: bool },
    Json,
    Yaml,
    Name,
}

impl Format {
    pub fn parse(s: Option<&str>) -> Result<Format, Failure> {
        match s.unwrap_or("") {
            "" => Ok(Format::Table { wide: false }),
            "wide" => Ok(Format::Table { wide: true }),
            "json" => Ok(Format::Json),
            "yaml" => Ok(Format::Yaml),
            "name" => Ok(Format::Name),
            other => Err(Failure::User(format!(
                "unable to match a printer suitable for the output format {other:?}, allowed formats are: \
                 json,name,wide,yaml"
            ))),
        }
    }
}

/// Stdout, flushed per write so `get -w` lines show at once through a pipe.
fn emit(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

pub async fn run(args: GetArgs) -> anyhow::Result<ExitCode> {
    let format = Format::parse(args.output.as_deref())?;
    let selection = target::select(&args.args)?;
    let named = selection.iter().any(|(_, names)| !names.is_empty());
    if named && args.selector.is_some() {
        return Err(Failure::User("name cannot be provided when a selector is specified".into()).into());
    }
    if named && args.all_namespaces {
        return Err(Failure::User("a resource cannot be retrieved by name across all namespaces".into()).into());
    }
    let watching = args.watch || args.watch_only;
    if watching && selection.len() > 1 {
        return Err(Failure::User("you may only specify a single resource type".into()).into());
    }
    if watching && selection[0].1.len() > 1 {
        return Err(Failure::User(format!(
            "watch is only supported on individual resources and resource collections, but {} resources were found",
            selection[0].1.len()
        ))
        .into());
    }
    let conn = args.connect.connect()?;
    let namespace = (!args.all_namespaces).then_some(conn.namespace.as_str());
    let query = Query {
        labels: args.selector.as_deref(),
        fields: args.field_selector.as_deref(),
    };
    let mut failed = false;
    let mut widths = Vec::new();
    let listed = match format {
        Format::Table { wide } => {
            let opts = |info: &ResourceInfo| TableOptions {
                wide,
                namespace_column: args.all_namespaces && info.namespaced,
                kind_prefix: (selection.len() > 1).then(|| target::kind_group(info)),
                show_labels: args.show_labels,
            };
            let mut printed_any = false;
            let mut rv = None;
            for (info, names) in &selection {
                let (table, errors) = tables(&conn.client, info, namespace, names, &query).await;
                failed |= report(errors);
                rv = table["metadata"]["resourceVersion"]
                    .as_str()
                    .or_else(|| table["rows"][0]["object"]["metadata"]["resourceVersion"].as_str())
                    .map(str::to_owned);
                let (header, rows) = printing::table_lines(&table, &opts(info));
                if rows.is_empty() || args.watch_only {
                    continue;
                }
                // Each type's table is sized on its own, as kubectl resets its widths.
                widths.clear();
                let mut text = String::new();
                if printed_any {
                    text.push('\n');
                }
                if !args.no_headers {
                    text.push_str(&header);
                    text.push('\n');
                }
                for row in rows {
                    text.push_str(&row);
                    text.push('\n');
                }
                emit(&printing::tabwrite(&text, GET_LAYOUT, Some(&mut widths)));
                printed_any = true;
            }
            if watching {
                let (info, names) = &selection[0];
                let printed_header = printed_any || args.no_headers;
                let opts = opts(info);
                let code = follow_tables(
                    &conn.client,
                    info,
                    namespace,
                    names.first(),
                    &query,
                    rv,
                    &opts,
                    printed_header,
                    widths,
                )
                .await?;
                return Ok(code);
            }
            printed_any
        }
        Format::Json | Format::Yaml | Format::Name => {
            let mut objects = Vec::new();
            let mut rv = None;
            for (info, names) in &selection {
                let (found, list_rv, errors) = objects_of(&conn.client, info, namespace, names, &query).await;
                failed |= report(errors);
                rv = list_rv;
                objects.extend(found.into_iter().map(|o| (*info, o)));
            }
            let single = selection.len() == 1 && selection[0].1.len() == 1;
            if !args.watch_only {
                print_objects(format, &objects, single);
            }
            if watching {
                let (info, names) = &selection[0];
                return follow_objects(&conn.client, info, namespace, names.first(), &query, rv, format).await;
            }
            // kubectl says "No resources found" only in tables.
            true
        }
    };
    if !listed && !named && !failed {
        eprintln!("{}", no_resources(&selection, namespace));
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// The selectors of a list or watch.
struct Query<'a> {
    labels: Option<&'a str>,
    fields: Option<&'a str>,
}

fn report(errors: Vec<Failure>) -> bool {
    for e in &errors {
        eprintln!("{e}");
    }
    !errors.is_empty()
}

/// kubectl's message for an empty result.
pub fn no_resources(selection: &Selection, namespace: Option<&str>) -> String {
    match namespace {
        Some(ns) if selection.iter().any(|(info, _)| info.namespaced) => {
            format!("No resources found in {ns} namespace.")
        }
        _ => "No resources found".into(),
    }
}

/// The Table of a type's objects: the collection, or the named objects' rows together.
async fn tables(
    client: &Client,
    info: &ResourceInfo,
    namespace: Option<&str>,
    names: &[String],
    query: &Query<'_>,
) -> (Value, Vec<Failure>) {
    let mut errors = Vec::new();
    if names.is_empty() {
        let path = format!(
            "{}{}",
            target::path(info, namespace, None),
            target::query(&[("labelSelector", query.labels), ("fieldSelector", query.fields)])
        );
        return match table_get(client, &path).await {
            Ok(table) => (table, errors),
            Err(e) => {
                errors.push(e.into());
                (Value::Null, errors)
            }
        };
    }
    let ns = namespace.or(Some("default"));
    let mut merged = Value::Null;
    for name in names {
        match table_get(client, &target::path(info, ns, Some(name))).await {
            Ok(table) if merged.is_null() => merged = table,
            Ok(table) => {
                if let (Some(rows), Some(more)) = (merged["rows"].as_array_mut(), table["rows"].as_array()) {
                    rows.extend(more.iter().cloned());
                }
            }
            Err(e) => errors.push(e.into()),
        }
    }
    (merged, errors)
}

async fn table_get(client: &Client, path: &str) -> Result<Value, capstan_control::client::ClientError> {
    client
        .request_raw(
            http::Method::GET,
            path,
            "application/json",
            TABLE_ACCEPT,
            bytes::Bytes::new(),
        )
        .await
}

/// The objects of a type (each with `apiVersion` and `kind`, which list items lack) and the
/// list's resourceVersion.
async fn objects_of(
    client: &Client,
    info: &ResourceInfo,
    namespace: Option<&str>,
    names: &[String],
    query: &Query<'_>,
) -> (Vec<Value>, Option<String>, Vec<Failure>) {
    let mut errors = Vec::new();
    let mut objects = Vec::new();
    let mut rv = None;
    if names.is_empty() {
        let path = format!(
            "{}{}",
            target::path(info, namespace, None),
            target::query(&[("labelSelector", query.labels), ("fieldSelector", query.fields)])
        );
        match client.get(&path).await {
            Ok(list) => {
                rv = list["metadata"]["resourceVersion"].as_str().map(str::to_owned);
                objects.extend(list["items"].as_array().into_iter().flatten().cloned());
            }
            Err(e) => errors.push(e.into()),
        }
    } else {
        let ns = namespace.or(Some("default"));
        for name in names {
            match client.get(&target::path(info, ns, Some(name))).await {
                Ok(object) => {
                    rv = object["metadata"]["resourceVersion"].as_str().map(str::to_owned);
                    objects.push(object);
                }
                Err(e) => errors.push(e.into()),
            }
        }
    }
    for object in &mut objects {
        with_type(object, info);
    }
    (objects, rv, errors)
}

fn with_type(object: &mut Value, info: &ResourceInfo) {
    if let Some(map) = object.as_object_mut() {
        map.entry("apiVersion").or_insert_with(|| info.api_version().into());
        map.entry("kind").or_insert_with(|| info.kind.into());
    }
}

fn print_objects(format: Format, objects: &[(&ResourceInfo, Value)], single: bool) {
    match format {
        Format::Name => {
            let text: String = objects
                .iter()
                .map(|(info, o)| format!("{}\n", object_name(info, o)))
                .collect();
            emit(&text);
        }
        Format::Json | Format::Yaml => {
            let value = match objects {
                [(_, one)] if single => one.clone(),
                _ => printing::list(objects.iter().map(|(_, o)| o.clone()).collect()),
            };
            emit(&if format == Format::Json {
                printing::to_json(&value)
            } else {
                printing::to_yaml(&value)
            });
        }
        Format::Table { .. } => {}
    }
}

/// `pod/web`, `deployment.apps/web`.
pub fn object_name(info: &ResourceInfo, object: &Value) -> String {
    format!(
        "{}/{}",
        target::kind_group(info),
        object["metadata"]["name"].as_str().unwrap_or_default()
    )
}

/// The watch path: the collection, narrowed to one name when one was given.
fn watch_path(
    info: &ResourceInfo,
    namespace: Option<&str>,
    name: Option<&String>,
    query: &Query<'_>,
    rv: Option<&str>,
) -> String {
    let fields = match (name, query.fields) {
        (Some(n), Some(f)) => Some(format!("metadata.name={n},{f}")),
        (Some(n), None) => Some(format!("metadata.name={n}")),
        (None, f) => f.map(str::to_owned),
    };
    let namespace = if name.is_some() {
        namespace.or(Some("default"))
    } else {
        namespace
    };
    format!(
        "{}{}",
        target::path(info, namespace, None),
        target::query(&[
            ("watch", Some("true")),
            ("resourceVersion", rv),
            ("labelSelector", query.labels),
            ("fieldSelector", fields.as_deref()),
        ])
    )
}

/// Prints one row per Table watch event until the watch ends.
#[expect(
    clippy::too_many_arguments,
    reason = "a watch carries every option of the get it follows"
)]
async fn follow_tables(
    client: &Client,
    info: &ResourceInfo,
    namespace: Option<&str>,
    name: Option<&String>,
    query: &Query<'_>,
    rv: Option<String>,
    opts: &TableOptions,
    mut printed_header: bool,
    mut widths: Vec<usize>,
) -> Result<ExitCode, Failure> {
    let path = watch_path(info, namespace, name, query, rv.as_deref());
    let events = client.watch_accepting(&path, TABLE_ACCEPT).await?;
    Ok(each_change(events, |object| {
        let (header, rows) = printing::table_lines(object, opts);
        let mut text = String::new();
        if !printed_header {
            text.push_str(&header);
            text.push('\n');
            printed_header = true;
        }
        for row in rows {
            text.push_str(&row);
            text.push('\n');
        }
        emit(&printing::tabwrite(&text, GET_LAYOUT, Some(&mut widths)));
    })
    .await)
}

/// Hands the object of every ADDED, MODIFIED or DELETED event to `f` until the watch ends;
/// an ERROR event is printed and fails the command, as kubectl's `get -w`.
async fn each_change(mut events: tokio::sync::mpsc::Receiver<Value>, mut f: impl FnMut(&Value)) -> ExitCode {
    while let Some(event) = events.recv().await {
        match event["type"].as_str() {
            Some("ERROR") => {
                eprintln!(
                    "error: {}",
                    event["object"]["message"].as_str().unwrap_or("the watch failed")
                );
                return ExitCode::FAILURE;
            }
            Some("ADDED" | "MODIFIED" | "DELETED") => f(&event["object"]),
            _ => {}
        }
    }
    ExitCode::SUCCESS
}

/// Prints each changed object (`-o json|yaml|name -w`) until the watch ends.
async fn follow_objects(
    client: &Client,
    info: &ResourceInfo,
    namespace: Option<&str>,
    name: Option<&String>,
    query: &Query<'_>,
    rv: Option<String>,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let path = watch_path(info, namespace, name, query, rv.as_deref());
    let events = client.watch(&path).await.map_err(Failure::from)?;
    Ok(each_change(events, |object| {
        let mut object = object.clone();
        with_type(&mut object, info);
        print_objects(format, &[(info, object)], true);
    })
    .await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(Format::parse(None).unwrap(), Format::Table { wide: false });
        assert_eq!(Format::parse(Some("wide")).unwrap(), Format::Table { wide: true });
        assert_eq!(Format::parse(Some("name")).unwrap(), Format::Name);
        assert!(Format::parse(Some("xml")).unwrap_err().to_string().contains("\"xml\""));
    }

    #[test]
    fn empty_results_say_where() {
        let pods = target::select(&["pods".into()]).unwrap();
        let nodes = target::select(&["nodes".into()]).unwrap();
        assert_eq!(
            no_resources(&pods, Some("team")),
            "No resources found in team namespace."
        );
        assert_eq!(no_resources(&pods, None), "No resources found");
        assert_eq!(no_resources(&nodes, Some("default")), "No resources found");
    }

    #[test]
    fn watches_narrow_to_a_name() {
        let pods = target::resolve("pods").unwrap()[0];
        let q = Query {
            labels: Some("app=x"),
            fields: None,
        };
        assert_eq!(
            watch_path(pods, Some("default"), None, &q, Some("7")),
            "/api/v1/namespaces/default/pods?watch=true&resourceVersion=7&labelSelector=app%3Dx"
        );
        let q = Query {
            labels: None,
            fields: Some("status.phase=Running"),
        };
        assert_eq!(
            watch_path(pods, None, Some(&"web".to_owned()), &q, None),
            "/api/v1/namespaces/default/pods?watch=true&fieldSelector=metadata.name%3Dweb%2Cstatus.phase%3DRunning"
        );
    }
}
