//! `capstan delete TYPE NAME... | TYPE/NAME... | -f FILE | TYPE -l SELECTOR | TYPE --all`:
//! one DELETE per object with kubectl's options (background cascading, grace period), then,
//! as kubectl does, waiting until each object is gone.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use capstan_control::api::resources::{self, ResourceInfo};
use capstan_control::client::{Client, ClientError};
use http::Method;
use serde_json::{Value, json};

use super::Failure;
use super::apply::namespace_for;
use super::manifests;
use super::target::{self, Conn, ConnectArgs};

/// How often a waited-for deletion is checked.
const WAIT_POLL: Duration = Duration::from_millis(250);

#[derive(clap::Args, Debug)]
pub struct DeleteArgs {
    /// `TYPE NAME...` or `TYPE/NAME...`.
    pub args: Vec<String>,
    /// Delete the objects of these manifests (files, folders or `-`).
    #[arg(short = 'f', long = "filename")]
    pub files: Vec<PathBuf>,
    /// Delete the objects of TYPE matching a label selector.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Delete every object of TYPE in the namespace.
    #[arg(long)]
    pub all: bool,
    /// Seconds a pod gets to stop (-1: the pod's own terminationGracePeriodSeconds).
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub grace_period: i64,
    /// Stop at once (a grace period of 1 second).
    #[arg(long)]
    pub now: bool,
    /// Remove the object without waiting for its pods to confirm they stopped.
    #[arg(long)]
    pub force: bool,
    /// A missing object is not an error.
    #[arg(long)]
    pub ignore_not_found: bool,
    /// Wait until the objects are gone (`--wait=false` returns at once).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub wait: bool,
    /// How long to wait (`0`: as long as it takes).
    #[arg(long, default_value = "0")]
    pub timeout: String,
    /// `background` (default), `foreground` or `orphan` for what the object owns.
    #[arg(long, default_value = "background", value_parser = ["background", "foreground", "orphan"])]
    pub cascade: String,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// One object to delete: its resource, namespace, name, and the file it came from.
struct Doomed {
    info: &'static ResourceInfo,
    namespace: Option<String>,
    name: String,
    source: Option<String>,
}

/// kubectl's grace period rules: `--now` is 1 second; `0` without `--force` becomes 1 (to
/// avoid accidental data loss); `--force` without a period is 0. `None`: the object's own.
pub fn grace_period(period: i64, now: bool, force: bool) -> Result<Option<i64>, String> {
    if now && period >= 0 {
        return Err("--now and --grace-period cannot be specified together".into());
    }
    let period = if now { 1 } else { period };
    Ok(match period {
        0 if !force => Some(1),
        p if p < 0 && force => Some(0),
        p if p < 0 => None,
        p => Some(p),
    })
}

/// The `DeleteOptions` body.
pub fn delete_options(grace: Option<i64>, cascade: &str) -> Value {
    let policy = match cascade {
        "foreground" => "Foreground",
        "orphan" => "Orphan",
        _ => "Background",
    };
    let mut body = json!({"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": policy});
    if let Some(g) = grace {
        body["gracePeriodSeconds"] = json!(g);
    }
    body
}

/// `pod "web" deleted from default namespace`, as kubectl 1.37 words it.
pub fn deleted_message(info: &ResourceInfo, name: &str, namespace: Option<&str>, force: bool) -> String {
    let verb = if force { "force deleted" } else { "deleted" };
    match namespace {
        Some(ns) => format!("{} {name:?} {verb} from {ns} namespace", target::kind_group(info)),
        None => format!("{} {name:?} {verb}", target::kind_group(info)),
    }
}

pub async fn run(args: DeleteArgs) -> anyhow::Result<ExitCode> {
    let grace = grace_period(args.grace_period, args.now, args.force).map_err(Failure::User)?;
    let timeout = super::parse_duration(&args.timeout).map_err(Failure::User)?;
    if !args.files.is_empty() && !args.args.is_empty() {
        return Err(Failure::User("use either -f FILE or TYPE NAME arguments, not both".into()).into());
    }
    let conn = args.connect.connect()?;
    let mut failed = false;
    let doomed = if args.files.is_empty() {
        from_arguments(&conn, &args).await?
    } else {
        let (found, errors) = from_files(&conn, &args.files);
        for e in &errors {
            eprintln!("{e}");
        }
        failed |= !errors.is_empty();
        found
    };
    if args.force {
        eprintln!(
            "Warning: Immediate deletion does not wait for confirmation that the running resource has been \
             terminated. The resource may continue to run on the cluster indefinitely."
        );
    }
    let body = delete_options(grace, &args.cascade);
    let mut waiting = Vec::new();
    for d in &doomed {
        let path = target::path(d.info, d.namespace.as_deref(), Some(&d.name));
        let uid = match conn
            .client
            .request(Method::DELETE, &path, "application/json", Some(&body))
            .await
        {
            Ok(answer) => answer["metadata"]["uid"].as_str().map(str::to_owned),
            Err(e) if e.is_not_found() && args.ignore_not_found => continue,
            Err(e) => {
                eprintln!("{}", deletion_failure(e, d.source.as_deref()));
                failed = true;
                continue;
            }
        };
        println!(
            "{}",
            deleted_message(d.info, &d.name, d.namespace.as_deref(), args.force)
        );
        waiting.push((path, uid));
    }
    if args.wait && !args.force {
        let deadline = (!timeout.is_zero()).then(|| Instant::now() + timeout);
        for (path, uid) in waiting {
            if let Err(e) = wait_gone(&conn.client, &path, uid.as_deref(), deadline).await {
                eprintln!("{e}");
                failed = true;
            }
        }
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

fn deletion_failure(e: ClientError, source: Option<&str>) -> Failure {
    match source {
        Some(file) => Failure::about(e, &format!("error when deleting {file:?}")),
        None => e.into(),
    }
}

/// The objects named on the command line, or those a selector or `--all` picks.
async fn from_arguments(conn: &Conn, args: &DeleteArgs) -> Result<Vec<Doomed>, Failure> {
    let selection = target::select(&args.args)?;
    let named = selection.iter().any(|(_, names)| !names.is_empty());
    let picking = args.all || args.selector.is_some();
    if named && picking {
        return Err(Failure::User(
            "name cannot be provided when a selector or --all is specified".into(),
        ));
    }
    if !named && !picking {
        return Err(Failure::User(
            "resource(s) were provided, but no name was specified".into(),
        ));
    }
    let mut out = Vec::new();
    for (info, names) in selection {
        let namespace = info.namespaced.then(|| conn.namespace.clone());
        let names = if picking {
            let path = format!(
                "{}{}",
                target::path(info, namespace.as_deref(), None),
                target::query(&[("labelSelector", args.selector.as_deref())])
            );
            let list = conn.client.get(&path).await?;
            list["items"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|o| o["metadata"]["name"].as_str().map(str::to_owned))
                .collect()
        } else {
            names
        };
        out.extend(names.into_iter().map(|name| Doomed {
            info,
            namespace: namespace.clone(),
            name,
            source: None,
        }));
    }
    if out.is_empty() {
        eprintln!("No resources found");
    }
    Ok(out)
}

/// The objects of manifests, or why one cannot be deleted.
fn from_files(conn: &Conn, files: &[PathBuf]) -> (Vec<Doomed>, Vec<Failure>) {
    let (objects, errors) = manifests::read(files);
    let mut failures: Vec<Failure> = errors.into_iter().map(Failure::User).collect();
    let mut out = Vec::new();
    for m in objects {
        let o = &m.object;
        if let Some(missing) = manifests::missing_identity(o) {
            failures.push(Failure::User(format!("error validating {:?}: [{missing}]", m.source)));
            continue;
        }
        let (api_version, kind) = (
            o["apiVersion"].as_str().unwrap_or_default(),
            o["kind"].as_str().unwrap_or_default(),
        );
        let Some(info) = resources::find_kind(api_version, kind) else {
            failures.push(Failure::User(format!(
                "resource mapping not found from {:?}: no matches for kind {kind:?} in version {api_version:?}",
                m.source
            )));
            continue;
        };
        let name = o["metadata"]["name"].as_str().unwrap_or_default();
        if name.is_empty() {
            failures.push(Failure::User(format!("{:?}: resource name may not be empty", m.source)));
            continue;
        }
        let namespace = if info.namespaced {
            match namespace_for(
                o["metadata"]["namespace"].as_str(),
                &conn.namespace,
                conn.explicit_namespace,
            ) {
                Ok(ns) => Some(ns),
                Err(e) => {
                    failures.push(Failure::User(e));
                    continue;
                }
            }
        } else {
            None
        };
        out.push(Doomed {
            info,
            namespace,
            name: name.to_owned(),
            source: Some(m.source.clone()),
        });
    }
    (out, failures)
}

/// Polls until the object is gone (or replaced by a new one of the same name).
async fn wait_gone(client: &Client, path: &str, uid: Option<&str>, deadline: Option<Instant>) -> Result<(), Failure> {
    loop {
        match client.get(path).await {
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => return Err(e.into()),
            Ok(object) if uid.is_some() && object["metadata"]["uid"].as_str() != uid => return Ok(()),
            Ok(_) => {}
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(Failure::User(format!("timed out waiting for the deletion of {path}")));
        }
        tokio::time::sleep(WAIT_POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grace_periods_follow_kubectl() {
        // (--grace-period, --now, --force) → gracePeriodSeconds
        for (period, now, force, want) in [
            (-1, false, false, Ok(None)),
            (-1, true, false, Ok(Some(1))),
            (0, false, false, Ok(Some(1))),
            (0, false, true, Ok(Some(0))),
            (-1, false, true, Ok(Some(0))),
            (30, false, false, Ok(Some(30))),
        ] {
            assert_eq!(grace_period(period, now, force), want, "{period} {now} {force}");
        }
        assert!(grace_period(5, true, false).is_err());
    }

    #[test]
    fn options_and_messages() {
        assert_eq!(
            delete_options(Some(0), "foreground"),
            json!({"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Foreground", "gracePeriodSeconds": 0})
        );
        assert!(delete_options(None, "background").get("gracePeriodSeconds").is_none());
        let pod = target::resolve("pod").unwrap()[0];
        let ns = target::resolve("ns").unwrap()[0];
        assert_eq!(
            deleted_message(pod, "x", Some("default"), false),
            "pod \"x\" deleted from default namespace"
        );
        assert_eq!(
            deleted_message(ns, "team", None, true),
            "namespace \"team\" force deleted"
        );
    }
}
