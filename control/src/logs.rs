//! `capstan logs POD [-c CONTAINER] [-f] [--tail N]`: through the API server
//! (`pods/{name}/log`) when one is configured, else from the node's data directory, so it
//! works while `capstan play` runs and after.
//!
//! A server is configured by `--server`, or by a kubeconfig whose current context answers.
//! Without `--server`, an unreachable server or one that has no such pod falls back to the
//! local reader: `capstan play` users need no cluster.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use capstan_control::client::{Client, ClientError};
use tokio::task::JoinSet;

use crate::verbs::Failure;
use crate::verbs::target::{self, ConnectArgs};

#[derive(clap::Args, Debug)]
pub struct LogsArgs {
    /// The pod's name (`pod/NAME`; `deployment/NAME` or `replicaset/NAME` picks one of its pods).
    pub pod: Option<String>,
    /// The container (needed when the pod has more than one).
    #[arg(short, long)]
    pub container: Option<String>,
    /// Keep printing what the container writes.
    #[arg(short, long)]
    pub follow: bool,
    /// Only the last N lines (-1: all).
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub tail: i64,
    /// The log of the container's previous run.
    #[arg(short, long)]
    pub previous: bool,
    /// The logs of every pod matching a label selector (through the API server).
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// The local reader's view of the request.
struct Local<'a> {
    namespace: &'a str,
    pod: &'a str,
    container: Option<&'a str>,
    follow: bool,
    tail: Option<usize>,
}

pub async fn logs(data_dir: &Path, args: LogsArgs) -> Result<ExitCode> {
    if args.tail < -1 {
        return Err(Failure::User(format!("--tail must be -1 or more, got {}", args.tail)).into());
    }
    if args.pod.is_none() && args.selector.is_none() {
        return Err(Failure::User("expected POD or -l SELECTOR: capstan logs POD [-c CONTAINER]".into()).into());
    }
    let explicit = args.connect.server.is_some();
    let conn = if explicit || args.connect.context().is_ok() {
        Some(args.connect.connect()?)
    } else {
        None
    };
    let local_ok = !explicit && args.selector.is_none() && !args.previous;
    let namespace = conn
        .as_ref()
        .map(|c| c.namespace.clone())
        .or_else(|| args.connect.namespace.clone())
        .unwrap_or_else(|| "default".into());
    if let Some(conn) = &conn {
        match through_api(&conn.client, &namespace, &args).await {
            Ok(code) => return Ok(code),
            // No server there, or a server without this pod: the pod may be `capstan play`'s.
            Err(Fallback::Try(e)) if local_ok => {
                let pod = bare_pod_name(args.pod.as_deref().unwrap_or_default());
                if let Some(pod) = pod
                    && find_pod(data_dir, &namespace, pod).is_ok()
                {
                    return local(data_dir, &local_args(&args, &namespace, pod)).await;
                }
                if let (ClientError::Unreachable { .. }, Some(pod)) = (&e, pod) {
                    return Err(Failure::User(format!(
                        "{e}; and no `capstan play` pod {pod:?} in namespace {namespace:?} under {}",
                        data_dir.display()
                    ))
                    .into());
                }
                return Err(Failure::from(e).into());
            }
            Err(Fallback::Try(e)) => return Err(Failure::from(e).into()),
            Err(Fallback::Fail(e)) => return Err(e.into()),
        }
    }
    let Some(pod) = args.pod.as_deref().and_then(bare_pod_name) else {
        return Err(Failure::User(
            "no API server answers (start one with `capstan up`, or pass --server): -l SELECTOR and TYPE/NAME \
             need one"
                .into(),
        )
        .into());
    };
    local(data_dir, &local_args(&args, &namespace, pod)).await
}

fn local_args<'a>(args: &'a LogsArgs, namespace: &'a str, pod: &'a str) -> Local<'a> {
    Local {
        namespace,
        pod,
        container: args.container.as_deref(),
        follow: args.follow,
        tail: usize::try_from(args.tail).ok(),
    }
}

/// `NAME` or `pod/NAME`: a name the local reader can look up.
fn bare_pod_name(arg: &str) -> Option<&str> {
    match arg.split_once('/') {
        None => Some(arg),
        Some(("pod" | "pods" | "po", name)) => Some(name),
        Some(_) => None,
    }
}

/// Why the API path did not print the logs.
enum Fallback {
    /// The server is unreachable or lacks the pod: the local reader may have it.
    Try(ClientError),
    /// Anything else: reported as is.
    Fail(Failure),
}

impl From<Failure> for Fallback {
    fn from(f: Failure) -> Self {
        Fallback::Fail(f)
    }
}

/// Whether an API error leaves room for the local reader.
fn fallback(e: ClientError) -> Fallback {
    match e {
        ClientError::Unreachable { .. } => Fallback::Try(e),
        e if e.is_not_found() => Fallback::Try(e),
        e => Fallback::Fail(e.into()),
    }
}

/// The log query kubectl sends.
pub fn log_query(container: Option<&str>, follow: bool, tail: i64, previous: bool) -> String {
    let tail = (tail >= 0).then(|| tail.to_string());
    target::query(&[
        ("container", container),
        ("follow", follow.then_some("true")),
        ("previous", previous.then_some("true")),
        ("tailLines", tail.as_deref()),
    ])
}

async fn through_api(client: &Client, namespace: &str, args: &LogsArgs) -> Result<ExitCode, Fallback> {
    let pods = pods_to_read(client, namespace, args).await?;
    let query = log_query(args.container.as_deref(), args.follow, args.tail, args.previous);
    let paths: Vec<String> = pods
        .iter()
        .map(|pod| format!("/api/v1/namespaces/{namespace}/pods/{pod}/log{query}"))
        .collect();
    if let [path] = paths.as_slice() {
        let chunks = client.stream(path).await.map_err(fallback)?;
        copy_out(chunks).await;
        return Ok(ExitCode::SUCCESS);
    }
    // Several pods: one after the other, or side by side when following (as kubectl).
    let mut failed = false;
    if args.follow {
        let mut tasks = JoinSet::new();
        for path in paths {
            let client = client.clone();
            tasks.spawn(async move {
                match client.stream(&path).await {
                    Ok(chunks) => copy_out(chunks).await,
                    Err(e) => eprintln!("{}", Failure::from(e)),
                }
            });
        }
        while tasks.join_next().await.is_some() {}
    } else {
        for path in paths {
            match client.stream(&path).await {
                Ok(chunks) => copy_out(chunks).await,
                Err(e) => {
                    eprintln!("{}", Failure::from(e));
                    failed = true;
                }
            }
        }
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

async fn copy_out(mut chunks: tokio::sync::mpsc::Receiver<bytes::Bytes>) {
    while let Some(chunk) = chunks.recv().await {
        let mut out = std::io::stdout().lock();
        if out.write_all(&chunk).and_then(|()| out.flush()).is_err() {
            return;
        }
    }
}

/// The pods whose logs to print: the named one, one of a workload's, or a selector's.
async fn pods_to_read(client: &Client, namespace: &str, args: &LogsArgs) -> Result<Vec<String>, Fallback> {
    let names = |list: &serde_json::Value| -> Vec<String> {
        let mut names: Vec<String> = list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_owned))
            .collect();
        names.sort();
        names
    };
    let pods_path = format!("/api/v1/namespaces/{namespace}/pods");
    if let Some(selector) = &args.selector {
        if args.pod.is_some() {
            return Err(Failure::User("only one of POD or -l SELECTOR can be used".into()).into());
        }
        let list = client
            .get(&format!(
                "{pods_path}{}",
                target::query(&[("labelSelector", Some(selector))])
            ))
            .await
            .map_err(fallback)?;
        let found = names(&list);
        if found.is_empty() {
            eprintln!("No resources found in {namespace} namespace.");
        }
        return Ok(found);
    }
    let arg = args.pod.as_deref().unwrap_or_default();
    let Some((type_name, name)) = arg.split_once('/') else {
        return Ok(vec![arg.to_owned()]);
    };
    let infos = target::resolve(type_name)?;
    let info = infos[0];
    if info.kind == "Pod" {
        return Ok(vec![name.to_owned()]);
    }
    let object = client
        .get(&target::path(info, Some(namespace), Some(name)))
        .await
        .map_err(|e| Fallback::Fail(e.into()))?;
    let Some(labels) = object["spec"]["selector"]["matchLabels"].as_object() else {
        return Err(Failure::User(format!("cannot find the pods of {arg}: it has no label selector")).into());
    };
    let selector: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    let list = client
        .get(&format!(
            "{pods_path}{}",
            target::query(&[("labelSelector", Some(&selector.join(",")))])
        ))
        .await
        .map_err(|e| Fallback::Fail(e.into()))?;
    let found = names(&list);
    match found.as_slice() {
        [] => Err(Failure::User(format!("no pods of {arg} found")).into()),
        [one] => Ok(vec![one.clone()]),
        [first, ..] => {
            eprintln!("Found {} pods, using pod/{first}", found.len());
            Ok(vec![first.clone()])
        }
    }
}

/// The newest directory of a pod with this namespace and name.
fn find_pod(data_dir: &Path, namespace: &str, name: &str) -> Result<PathBuf> {
    let prefix = format!("{namespace}_{name}_");
    let pods = data_dir.join("pods");
    let newest = std::fs::read_dir(&pods)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok());
    match newest {
        Some(e) => Ok(e.path()),
        None => bail!("pods {name:?} not found in namespace {namespace:?}"),
    }
}

/// The last `n` lines of `buf` (all of it for `None`).
pub fn tail_lines(buf: &[u8], n: Option<usize>) -> &[u8] {
    let Some(n) = n else { return buf };
    if n == 0 {
        return &buf[buf.len()..];
    }
    let body = buf.strip_suffix(b"\n").unwrap_or(buf);
    match body.iter().rev().enumerate().filter(|(_, b)| **b == b'\n').nth(n - 1) {
        Some((from_end, _)) => &buf[body.len() - from_end..],
        None => buf,
    }
}

/// Reads a `capstan play` pod's container log from the data directory.
async fn local(data_dir: &Path, args: &Local<'_>) -> Result<ExitCode> {
    let pod = find_pod(data_dir, args.namespace, args.pod)?;
    let mut names: Vec<String> = std::fs::read_dir(pod.join("containers"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let container = match (args.container, names.as_slice()) {
        (Some(c), _) if names.iter().any(|n| n == c) => c.to_owned(),
        (Some(c), _) => bail!(
            "container {c:?} is not valid for pod {:?}; choose one of: [{}]",
            args.pod,
            names.join(" ")
        ),
        (None, [one]) => one.clone(),
        (None, []) => bail!("pod {:?} has no container that has started", args.pod),
        (None, _) => bail!(
            "a container name must be specified for pod {:?}, choose one of: [{}]",
            args.pod,
            names.join(" ")
        ),
    };
    let path = pod.join("containers").join(&container).join("current.log");
    let rotated = capstan_runtime::logs::rotated_path(&path);
    let mut all = std::fs::read(&rotated).unwrap_or_default();
    let mut file = std::fs::File::open(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut buf = vec![];
    file.read_to_end(&mut buf)?;
    let old_len = all.len();
    all.extend_from_slice(&buf);
    let mut out = std::io::stdout().lock();
    out.write_all(tail_lines(&all, args.tail))?;
    out.flush()?;
    if !args.follow {
        return Ok(ExitCode::SUCCESS);
    }
    let mut pos = (all.len() - old_len) as u64;
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        if len < pos {
            // Rotated: start over on the new file.
            file = std::fs::File::open(&path)?;
            pos = 0;
        }
        if len > pos {
            file.seek(SeekFrom::Start(pos))?;
            let mut chunk = vec![];
            file.read_to_end(&mut chunk)?;
            pos += chunk.len() as u64;
            out.write_all(&chunk)?;
            out.flush()?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tails_count_lines_from_the_end() {
        let text = b"a\nb\nc\n";
        for (n, want) in [
            (None, "a\nb\nc\n"),
            (Some(0), ""),
            (Some(1), "c\n"),
            (Some(2), "b\nc\n"),
            (Some(5), "a\nb\nc\n"),
        ] {
            assert_eq!(std::str::from_utf8(tail_lines(text, n)).unwrap(), want, "{n:?}");
        }
        // An unfinished last line counts as a line.
        assert_eq!(tail_lines(b"a\nb", Some(1)), b"b");
    }

    #[test]
    fn queries_and_names() {
        assert_eq!(
            log_query(Some("c"), true, 10, false),
            "?container=c&follow=true&tailLines=10"
        );
        assert_eq!(log_query(None, false, -1, false), "");
        assert_eq!(bare_pod_name("pod/web"), Some("web"));
        assert_eq!(bare_pod_name("web"), Some("web"));
        assert_eq!(bare_pod_name("deploy/web"), None);
    }
}
