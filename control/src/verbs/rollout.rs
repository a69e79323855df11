//! `capstan rollout status|history|undo|pause|resume|restart deployment/NAME`, as kubectl's
//! deployment status viewer, history viewer and rollbacker do them: revisions are the
//! `deployment.kubernetes.io/revision` annotations of the ReplicaSets the Deployment controls.

use std::process::ExitCode;
use std::time::Duration;

use capstan_control::api::resources::ResourceInfo;
use capstan_control::client::Client;
use http::Method;
use serde_json::{Map, Value, json};

use super::Failure;
use super::describe::{owned_by, same_template, template_text};
use super::printing::{DESCRIBE_LAYOUT, tabwrite};
use super::target::{self, Conn, ConnectArgs};

/// A ReplicaSet's revision annotation.
pub const REVISION: &str = "deployment.kubernetes.io/revision";
/// Why a revision was made (`kubectl annotate ... kubernetes.io/change-cause=...`).
pub const CHANGE_CAUSE: &str = "kubernetes.io/change-cause";
/// The Progressing condition's reason once `progressDeadlineSeconds` passed.
const TIMED_OUT: &str = "ProgressDeadlineExceeded";

/// Deployment annotations a rollback keeps from the Deployment rather than copying from the
/// ReplicaSet (kubectl's `annotationsToSkip`).
const KEPT_ANNOTATIONS: &[&str] = &[
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    "deployment.kubernetes.io/revision-history",
    "deployment.kubernetes.io/desired-replicas",
    "deployment.kubernetes.io/max-replicas",
    "deprecated.deployment.rollback.to",
];

#[derive(clap::Subcommand, Debug)]
pub enum RolloutCommand {
    /// Follow a rollout until it completes (or fails, or --timeout passes).
    Status(StatusArgs),
    /// List the revisions (or show one with --revision).
    History(HistoryArgs),
    /// Roll back to the previous revision (or --to-revision).
    Undo(UndoArgs),
    /// Stop rolling out template changes.
    Pause(Target),
    /// Roll out template changes again.
    Resume(Target),
    /// Replace every pod, by stamping the template with the time.
    Restart(Target),
}

/// The deployment a rollout verb is about.
#[derive(clap::Args, Debug)]
pub struct Target {
    /// `deployment/NAME`, or `deployment NAME`.
    #[arg(required = true, num_args = 1..=2)]
    pub args: Vec<String>,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    #[command(flatten)]
    pub target: Target,
    /// Give up after this long (`90s`, `5m`; `0`: never).
    #[arg(long, default_value = "0")]
    pub timeout: String,
    /// Follow the rollout (`--watch=false` prints the current state once).
    #[arg(short, long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub watch: bool,
}

#[derive(clap::Args, Debug)]
pub struct HistoryArgs {
    #[command(flatten)]
    pub target: Target,
    /// Show the pod template of this revision.
    #[arg(long, default_value_t = 0)]
    pub revision: i64,
}

#[derive(clap::Args, Debug)]
pub struct UndoArgs {
    #[command(flatten)]
    pub target: Target,
    /// The revision to go back to (0: the previous one).
    #[arg(long, default_value_t = 0)]
    pub to_revision: i64,
}

pub async fn run(command: RolloutCommand) -> anyhow::Result<ExitCode> {
    match command {
        RolloutCommand::Status(args) => status(args).await,
        RolloutCommand::History(args) => history(args).await,
        RolloutCommand::Undo(args) => undo(args).await,
        RolloutCommand::Pause(t) => pause(t, true).await,
        RolloutCommand::Resume(t) => pause(t, false).await,
        RolloutCommand::Restart(t) => restart(t).await,
    }
}

/// The connection, the resource and the deployment's name; only Deployments roll out here.
fn resolve(target: &Target, verb: &str) -> Result<(Conn, &'static ResourceInfo, String), Failure> {
    let selection = target::select(&target.args)?;
    let [(info, names)] = selection.as_slice() else {
        return Err(Failure::User("rollout takes one deployment: deployment/NAME".into()));
    };
    let [name] = names.as_slice() else {
        return Err(Failure::User("rollout takes one deployment: deployment/NAME".into()));
    };
    if info.kind != "Deployment" {
        return Err(Failure::User(format!(
            "no {verb} has been implemented for {:?}",
            info.kind
        )));
    }
    Ok((target.connect.connect()?, info, name.clone()))
}

/// kubectl's `DeploymentStatusViewer.Status`: the message to print and whether the rollout is
/// done, or an error once the progress deadline passed.
pub fn status_message(d: &Value) -> Result<(String, bool), String> {
    let name = d["metadata"]["name"].as_str().unwrap_or_default();
    let generation = d["metadata"]["generation"].as_i64().unwrap_or(0);
    let status = &d["status"];
    if generation > status["observedGeneration"].as_i64().unwrap_or(0) {
        return Ok(("Waiting for deployment spec update to be observed...".into(), false));
    }
    let progressing = status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Progressing");
    if progressing.is_some_and(|c| c["reason"] == TIMED_OUT) {
        return Err(format!("deployment {name:?} exceeded its progress deadline"));
    }
    let n = |field: &str| status[field].as_i64().unwrap_or(0);
    let (updated, replicas, available) = (n("updatedReplicas"), n("replicas"), n("availableReplicas"));
    if let Some(wanted) = d["spec"]["replicas"].as_i64()
        && updated < wanted
    {
        return Ok((
            format!(
                "Waiting for deployment {name:?} rollout to finish: {updated} out of {wanted} new replicas have been updated..."
            ),
            false,
        ));
    }
    if replicas > updated {
        return Ok((
            format!(
                "Waiting for deployment {name:?} rollout to finish: {} old replicas are pending termination...",
                replicas - updated
            ),
            false,
        ));
    }
    if available < updated {
        return Ok((
            format!(
                "Waiting for deployment {name:?} rollout to finish: {available} of {updated} updated replicas are available..."
            ),
            false,
        ));
    }
    Ok((format!("deployment {name:?} successfully rolled out"), true))
}

async fn status(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let timeout = super::parse_duration(&args.timeout).map_err(Failure::User)?;
    let (conn, info, name) = resolve(&args.target, "status viewer")?;
    let follow = follow_status(&conn.client, info, &conn.namespace, &name, args.watch);
    if timeout.is_zero() {
        return follow.await;
    }
    match tokio::time::timeout(timeout, follow).await {
        Ok(result) => result,
        Err(_) => Err(Failure::User("timed out waiting for the condition".into()).into()),
    }
}

/// Prints each new status message until the rollout completes; re-reads and re-watches when
/// the server ends a watch.
async fn follow_status(
    client: &Client,
    info: &ResourceInfo,
    namespace: &str,
    name: &str,
    watch: bool,
) -> anyhow::Result<ExitCode> {
    let path = target::path(info, Some(namespace), Some(name));
    let mut last = String::new();
    let mut show = |d: &Value| -> Result<bool, Failure> {
        let (message, done) = status_message(d).map_err(Failure::User)?;
        if message != last {
            println!("{message}");
            last = message;
        }
        Ok(done)
    };
    loop {
        let d = client.get(&path).await.map_err(Failure::from)?;
        if show(&d)? || !watch {
            return Ok(ExitCode::SUCCESS);
        }
        let watch_path = format!(
            "{}{}",
            target::path(info, Some(namespace), None),
            target::query(&[
                ("watch", Some("true")),
                ("fieldSelector", Some(&format!("metadata.name={name}"))),
                ("resourceVersion", d["metadata"]["resourceVersion"].as_str()),
            ])
        );
        let mut events = client.watch(&watch_path).await.map_err(Failure::from)?;
        while let Some(event) = events.recv().await {
            match event["type"].as_str() {
                Some("ADDED" | "MODIFIED") if show(&event["object"])? => return Ok(ExitCode::SUCCESS),
                Some("DELETED") => return Err(Failure::User("object has been deleted".into()).into()),
                _ => {}
            }
        }
        // The server ended the watch: read again after a breath.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The revision of a ReplicaSet, when it has a valid one.
fn revision(rs: &Value) -> Option<i64> {
    rs["metadata"]["annotations"][REVISION].as_str()?.parse().ok()
}

/// The deployment and the ReplicaSets it controls.
async fn deployment_and_sets(
    client: &Client,
    info: &ResourceInfo,
    ns: &str,
    name: &str,
) -> Result<(Value, Vec<Value>), Failure> {
    let d = client.get(&target::path(info, Some(ns), Some(name))).await?;
    let list = client
        .get(&format!("/apis/apps/v1/namespaces/{ns}/replicasets"))
        .await?;
    let all: Vec<Value> = list["items"].as_array().cloned().unwrap_or_default();
    let owned = owned_by(&d, &all).into_iter().cloned().collect();
    Ok((d, owned))
}

/// `REVISION  CHANGE-CAUSE` lines, oldest first, or kubectl's message when there are none.
pub fn history_table(owned: &[Value]) -> String {
    let mut revisions: Vec<(i64, String)> = owned
        .iter()
        .filter_map(|rs| {
            let cause = rs["metadata"]["annotations"][CHANGE_CAUSE]
                .as_str()
                .filter(|c| !c.is_empty())
                .unwrap_or("<none>");
            Some((revision(rs)?, cause.to_owned()))
        })
        .collect();
    if revisions.is_empty() {
        return "No rollout history found.\n".into();
    }
    revisions.sort();
    revisions.dedup_by_key(|(r, _)| *r);
    let mut text = String::from("REVISION\tCHANGE-CAUSE\n");
    for (r, cause) in revisions {
        text.push_str(&format!("{r}\t{cause}\n"));
    }
    tabwrite(&text, DESCRIBE_LAYOUT, None)
}

async fn history(args: HistoryArgs) -> anyhow::Result<ExitCode> {
    let (conn, info, name) = resolve(&args.target, "history viewer")?;
    let (_, owned) = deployment_and_sets(&conn.client, info, &conn.namespace, &name).await?;
    let display = format!("{}/{name}", target::kind_group(info));
    if args.revision > 0 {
        let Some(rs) = owned.iter().find(|rs| revision(rs) == Some(args.revision)) else {
            return Err(Failure::User(format!("unable to find the specified revision {}", args.revision)).into());
        };
        print!(
            "{display} with revision #{}\n{}\n",
            args.revision,
            template_text(&rs["spec"]["template"])
        );
        return Ok(ExitCode::SUCCESS);
    }
    print!("{display} \n{}\n", history_table(&owned));
    Ok(ExitCode::SUCCESS)
}

/// kubectl's `deploymentRevision`: the ReplicaSet of `to_revision`, or (0) of the revision
/// before the latest.
pub fn rollback_target<'a>(name: &str, owned: &'a [Value], to_revision: i64) -> Result<&'a Value, String> {
    if to_revision > 0 {
        return owned
            .iter()
            .find(|rs| revision(rs) == Some(to_revision))
            .ok_or_else(|| format!("unable to find specified revision {to_revision} in history"));
    }
    let mut numbered: Vec<(i64, &Value)> = owned.iter().filter_map(|rs| Some((revision(rs)?, rs))).collect();
    numbered.sort_by_key(|(r, _)| std::cmp::Reverse(*r));
    numbered
        .get(1)
        .map(|(_, rs)| *rs)
        .ok_or_else(|| format!("no rollout history found for deployment {name:?}"))
}

/// The JSON patch that rolls `d` back to `rs`'s template (without its `pod-template-hash`
/// label) and annotations, or `None` when the template already is that one.
pub fn rollback_patch(d: &Value, rs: &Value) -> Option<Value> {
    if same_template(&rs["spec"]["template"], &d["spec"]["template"]) {
        return None;
    }
    let mut template = rs["spec"]["template"].clone();
    if let Some(labels) = template["metadata"]["labels"].as_object_mut() {
        labels.remove("pod-template-hash");
    }
    let mut annotations = Map::new();
    for (k, v) in d["metadata"]["annotations"].as_object().into_iter().flatten() {
        if KEPT_ANNOTATIONS.contains(&k.as_str()) {
            annotations.insert(k.clone(), v.clone());
        }
    }
    for (k, v) in rs["metadata"]["annotations"].as_object().into_iter().flatten() {
        if !KEPT_ANNOTATIONS.contains(&k.as_str()) {
            annotations.insert(k.clone(), v.clone());
        }
    }
    Some(json!([
        {"op": "replace", "path": "/spec/template", "value": template},
        {"op": "add", "path": "/metadata/annotations", "value": annotations},
    ]))
}

async fn undo(args: UndoArgs) -> anyhow::Result<ExitCode> {
    let (conn, info, name) = resolve(&args.target, "rollbacker")?;
    let (d, owned) = deployment_and_sets(&conn.client, info, &conn.namespace, &name).await?;
    let display = format!("{}/{name}", target::kind_group(info));
    if d["spec"]["paused"] == true {
        return Err(Failure::User(
            "you cannot rollback a paused deployment; resume it first with 'capstan rollout resume' and try again"
                .into(),
        )
        .into());
    }
    let rs = rollback_target(&name, &owned, args.to_revision).map_err(Failure::User)?;
    let Some(patch) = rollback_patch(&d, rs) else {
        println!(
            "{display} skipped rollback (current template already matches revision {})",
            revision(rs).unwrap_or(0)
        );
        return Ok(ExitCode::SUCCESS);
    };
    if d["metadata"]["annotations"][super::apply::LAST_APPLIED].is_string() {
        eprintln!(
            "Warning: resource {}/{name} was previously managed with 'capstan apply'. Rolling back will not update \
             the {} annotation, which may cause unexpected behavior on future 'capstan apply' operations. Consider \
             using 'capstan apply' with your previous configuration file instead.",
            info.plural,
            super::apply::LAST_APPLIED
        );
    }
    let path = target::path(info, Some(&conn.namespace), Some(&name));
    conn.client
        .request(Method::PATCH, &path, "application/json-patch+json", Some(&patch))
        .await
        .map_err(Failure::from)?;
    println!("{display} rolled back");
    Ok(ExitCode::SUCCESS)
}

async fn pause(t: Target, paused: bool) -> anyhow::Result<ExitCode> {
    let (verb, done) = if paused {
        ("pauser", "paused")
    } else {
        ("resumer", "resumed")
    };
    let (conn, info, name) = resolve(&t, verb)?;
    let path = target::path(info, Some(&conn.namespace), Some(&name));
    let d = conn.client.get(&path).await.map_err(Failure::from)?;
    if (d["spec"]["paused"] == true) == paused {
        let state = if paused { "already paused" } else { "not paused" };
        return Err(Failure::User(format!("{} {name:?} is {state}", info.qualified())).into());
    }
    // Resuming removes the field, as kubectl's patch does.
    let patch = json!({"spec": {"paused": if paused { json!(true) } else { Value::Null }}});
    conn.client
        .request(Method::PATCH, &path, "application/merge-patch+json", Some(&patch))
        .await
        .map_err(Failure::from)?;
    println!("{}/{name} {done}", target::kind_group(info));
    Ok(ExitCode::SUCCESS)
}

async fn restart(t: Target) -> anyhow::Result<ExitCode> {
    let (conn, info, name) = resolve(&t, "restarter")?;
    let path = target::path(info, Some(&conn.namespace), Some(&name));
    let d = conn.client.get(&path).await.map_err(Failure::from)?;
    if d["spec"]["paused"] == true {
        return Err(Failure::User("can't restart paused deployment (run rollout resume first)".into()).into());
    }
    let now = super::describe::wall_clock().strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    let patch =
        json!({"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": now}}}}});
    conn.client
        .request(Method::PATCH, &path, "application/merge-patch+json", Some(&patch))
        .await
        .map_err(Failure::from)?;
    println!("{}/{name} restarted", target::kind_group(info));
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(generation: i64, observed: i64, replicas: i64, status: Value) -> Value {
        let mut status = status;
        status["observedGeneration"] = json!(observed);
        json!({"metadata": {"name": "web", "generation": generation}, "spec": {"replicas": replicas}, "status": status})
    }

    #[test]
    fn status_messages_are_kubectls() {
        let cases = [
            (
                deployment(2, 1, 3, json!({})),
                Ok(("Waiting for deployment spec update to be observed...", false)),
            ),
            (
                deployment(2, 2, 3, json!({"updatedReplicas": 1, "replicas": 3})),
                Ok((
                    "Waiting for deployment \"web\" rollout to finish: 1 out of 3 new replicas have been updated...",
                    false,
                )),
            ),
            (
                deployment(
                    2,
                    2,
                    3,
                    json!({"updatedReplicas": 3, "replicas": 4, "availableReplicas": 3}),
                ),
                Ok((
                    "Waiting for deployment \"web\" rollout to finish: 1 old replicas are pending termination...",
                    false,
                )),
            ),
            (
                deployment(
                    2,
                    2,
                    3,
                    json!({"updatedReplicas": 3, "replicas": 3, "availableReplicas": 1}),
                ),
                Ok((
                    "Waiting for deployment \"web\" rollout to finish: 1 of 3 updated replicas are available...",
                    false,
                )),
            ),
            (
                deployment(
                    2,
                    2,
                    3,
                    json!({"updatedReplicas": 3, "replicas": 3, "availableReplicas": 3}),
                ),
                Ok(("deployment \"web\" successfully rolled out", true)),
            ),
            (
                deployment(
                    2,
                    2,
                    3,
                    json!({"conditions": [{"type": "Progressing", "reason": "ProgressDeadlineExceeded"}]}),
                ),
                Err("deployment \"web\" exceeded its progress deadline"),
            ),
        ];
        for (d, want) in cases {
            let want = want.map(|(m, done)| (m.to_owned(), done)).map_err(str::to_owned);
            assert_eq!(status_message(&d), want);
        }
    }

    fn rs(revision: &str, image: &str, extra: Value) -> Value {
        let mut annotations = json!({REVISION: revision});
        if let Some(map) = extra.as_object() {
            for (k, v) in map {
                annotations[k] = v.clone();
            }
        }
        json!({"metadata": {"name": format!("web-{revision}"), "annotations": annotations},
               "spec": {"template": {"metadata": {"labels": {"app": "web", "pod-template-hash": format!("h{revision}")}},
                                     "spec": {"containers": [{"name": "web", "image": image}]}}}})
    }

    #[test]
    fn history_lists_revisions_with_their_causes() {
        let owned = [
            rs("3", "c", json!({CHANGE_CAUSE: "set image"})),
            rs("1", "a", json!({})),
            rs("x", "b", json!({})),
        ];
        assert_eq!(
            history_table(&owned),
            "REVISION  CHANGE-CAUSE\n1         <none>\n3         set image\n"
        );
        assert_eq!(history_table(&[]), "No rollout history found.\n");
    }

    #[test]
    fn undo_goes_to_the_previous_or_named_revision() {
        let owned = [
            rs("1", "a", json!({})),
            rs("3", "c", json!({})),
            rs("2", "b", json!({})),
        ];
        let name = |r: Result<&Value, String>| r.map(|rs| rs["metadata"]["name"].as_str().unwrap().to_owned());
        assert_eq!(name(rollback_target("web", &owned, 0)), Ok("web-2".into()));
        assert_eq!(name(rollback_target("web", &owned, 1)), Ok("web-1".into()));
        assert_eq!(
            name(rollback_target("web", &owned, 7)),
            Err("unable to find specified revision 7 in history".into())
        );
        assert_eq!(
            name(rollback_target("web", &owned[..1], 0)),
            Err("no rollout history found for deployment \"web\"".into())
        );
    }

    #[test]
    fn the_rollback_patch_restores_template_and_annotations() {
        let d = json!({
            "metadata": {"annotations": {REVISION: "3", "kubectl.kubernetes.io/last-applied-configuration": "{}", "note": "x"}},
            "spec": {"template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "c"}]}}},
        });
        let target = rs("2", "b", json!({CHANGE_CAUSE: "b please"}));
        let patch = rollback_patch(&d, &target).unwrap();
        assert_eq!(patch[0]["op"], "replace");
        assert_eq!(patch[0]["path"], "/spec/template");
        assert_eq!(patch[0]["value"]["metadata"]["labels"], json!({"app": "web"}));
        assert_eq!(patch[0]["value"]["spec"]["containers"][0]["image"], "b");
        assert_eq!(
            patch[1]["value"],
            json!({REVISION: "3", "kubectl.kubernetes.io/last-applied-configuration": "{}", CHANGE_CAUSE: "b please"})
        );
        // The current template (hash label aside) is no rollback at all.
        assert_eq!(rollback_patch(&d, &rs("3", "c", json!({}))), None);
    }
}
