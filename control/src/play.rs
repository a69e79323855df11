//! `capstan play`: run the Pods of manifest files on this machine, like
//! `podman kube play` for Wasm components. No control plane: ConfigMaps and
//! Secrets in the same files feed the pods' env and volumes.

use std::collections::BTreeMap;
use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use capstan_core::env::ConfigObjects;
use capstan_core::k8s_openapi::api::core::v1::Pod;
use capstan_core::manifest::{Object, parse_manifests};
use capstan_core::{defaults, validate};
use capstan_runtime::publish::publish;
use capstan_runtime::{PodHandle, Runtime, RuntimeConfig};

#[derive(clap::Args, Debug)]
pub struct PlayArgs {
    /// Manifest files or directories (`-` reads standard input).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Publish a pod port on the host: `[IP:]HOST_PORT:CONTAINER_PORT` (IP defaults to 127.0.0.1).
    #[arg(short, long = "publish")]
    pub publish: Vec<String>,
    /// Allow `hostPath` volumes (they expose this machine's files to the guest).
    #[arg(long)]
    pub allow_host_path: bool,
    /// Status output: `text` (a line per change) or `json` (one watch event per line).
    #[arg(short, long, default_value = "text")]
    pub output: String,
    /// Only parse and validate; start nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// A `--publish` request.
#[derive(Debug, Clone, PartialEq)]
struct PortMapping {
    host: SocketAddr,
    container: u16,
}

fn parse_publish(s: &str) -> Result<PortMapping> {
    let parts: Vec<&str> = s.rsplitn(3, ':').collect();
    let (ip, host, container) = match parts.as_slice() {
        [c, h] => ("127.0.0.1", *h, *c),
        [c, h, ip] => (*ip, *h, *c),
        _ => bail!("--publish {s:?}: expected [IP:]HOST_PORT:CONTAINER_PORT"),
    };
    let container: u16 = container
        .parse()
        .with_context(|| format!("--publish {s:?}: container port {container:?} is not a port number"))?;
    let host: u16 = host
        .parse()
        .with_context(|| format!("--publish {s:?}: host port {host:?} is not a port number"))?;
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    let ip: std::net::IpAddr = ip
        .parse()
        .with_context(|| format!("--publish {s:?}: {ip:?} is not an IP address"))?;
    Ok(PortMapping {
        host: SocketAddr::new(ip, host),
        container,
    })
}

/// Reads every file (folders: their `.yaml`/`.yml`/`.json` files, sorted).
fn read_sources(files: &[PathBuf]) -> Result<Vec<(String, String)>> {
    let mut out = vec![];
    for f in files {
        if f.as_os_str() == "-" {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("reading standard input")?;
            out.push(("<stdin>".to_string(), text));
        } else if f.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(f)
                .with_context(|| format!("reading {}", f.display()))?
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml" || e == "json"))
                .collect();
            entries.sort();
            for p in entries {
                out.push((
                    p.display().to_string(),
                    std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?,
                ));
            }
        } else {
            out.push((
                f.display().to_string(),
                std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?,
            ));
        }
    }
    Ok(out)
}

/// Parses, defaults and validates. Every problem is reported, and nothing starts
/// unless there are none.
fn load(files: &[PathBuf]) -> Result<(Vec<Pod>, ConfigObjects)> {
    let mut objects = vec![];
    let mut errors = vec![];
    for (name, text) in read_sources(files)? {
        match parse_manifests(&text) {
            Ok(objs) => objects.extend(objs.into_iter().map(|o| (name.clone(), o))),
            Err(e) => errors.push(format!("{name}: {e}")),
        }
    }
    let mut pods = vec![];
    for (file, obj) in &objects {
        match obj {
            Object::Pod(pod) => {
                let mut pod = (**pod).clone();
                defaults::default_pod(&mut pod);
                let name = pod.metadata.name.clone().unwrap_or_default();
                for e in validate::validate_pod(&pod) {
                    errors.push(format!("{file}: Pod {name:?}: {e}"));
                }
                pods.push(pod);
            }
            Object::ConfigMap(cm) => {
                for e in validate::validate_config_map(cm) {
                    errors.push(format!(
                        "{file}: ConfigMap {:?}: {e}",
                        cm.metadata.name.clone().unwrap_or_default()
                    ));
                }
            }
            Object::Secret(s) => {
                for e in validate::validate_secret(s) {
                    errors.push(format!(
                        "{file}: Secret {:?}: {e}",
                        s.metadata.name.clone().unwrap_or_default()
                    ));
                }
            }
            Object::Other { kind, name, .. } => eprintln!(
                "warning: {file}: skipping {kind} {name:?}: `capstan play` runs Pods (with their ConfigMaps and Secrets)"
            ),
        }
    }
    let mut seen = BTreeMap::new();
    for pod in &pods {
        let key = (
            pod.metadata.namespace.clone().unwrap_or_default(),
            pod.metadata.name.clone().unwrap_or_default(),
        );
        if seen.insert(key.clone(), ()).is_some() {
            errors.push(format!("Pod {:?} in namespace {:?}: defined twice", key.1, key.0));
        }
    }
    if !errors.is_empty() {
        bail!(
            "the manifests are invalid; nothing was started:\n  {}",
            errors.join("\n  ")
        );
    }
    if pods.is_empty() {
        bail!(
            "no Pod in {}",
            files
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let all: Vec<Object> = objects.into_iter().map(|(_, o)| o).collect();
    Ok((pods, ConfigObjects::from_objects(&all)))
}

pub async fn play(data_dir: PathBuf, args: PlayArgs) -> Result<ExitCode> {
    let mappings = args
        .publish
        .iter()
        .map(|p| parse_publish(p))
        .collect::<Result<Vec<_>>>()?;
    let json = match args.output.as_str() {
        "json" => true,
        "text" => false,
        other => bail!("--output {other:?}: expected text or json"),
    };
    let (pods, config) = load(&args.files)?;
    if args.dry_run {
        for p in &pods {
            println!("pod/{} valid", p.metadata.name.clone().unwrap_or_default());
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut rc = RuntimeConfig::new(&data_dir);
    rc.allow_host_path = args.allow_host_path;
    let runtime = Runtime::new(rc)?;

    let handles: Vec<PodHandle> = pods
        .iter()
        .map(|p| runtime.start_pod(p.clone(), config.clone()))
        .collect();
    let mut published = vec![];
    for m in &mappings {
        let i = pods.iter().position(|p| declares_port(p, m.container)).unwrap_or(0);
        let p = publish(m.host, handles[i].network(), m.container).await?;
        eprintln!(
            "publishing {} -> pod/{} port {}",
            p.addr,
            pods[i].metadata.name.clone().unwrap_or_default(),
            m.container
        );
        published.push(p);
    }
    let watchers: Vec<_> = handles.iter().map(|h| tokio::spawn(report(h.status(), json))).collect();
    let all_done = futures_all(&handles);
    tokio::pin!(all_done);
    let finals = tokio::select! {
        finals = &mut all_done => finals,
        _ = shutdown_signal() => {
            eprintln!("stopping pods (Ctrl-C again to kill them now)");
            for h in &handles { h.stop(None); }
            tokio::select! {
                finals = &mut all_done => finals,
                _ = shutdown_signal() => {
                    for h in &handles { h.stop(Some(Duration::ZERO)); }
                    all_done.await
                }
            }
        }
    };
    drop(published);
    for w in watchers {
        w.abort();
    }
    cleanup(&data_dir, &finals);
    let ok = finals
        .iter()
        .all(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Succeeded"));
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn declares_port(pod: &Pod, port: u16) -> bool {
    pod.spec
        .iter()
        .flat_map(|s| &s.containers)
        .flat_map(|c| c.ports.iter().flatten())
        .any(|p| p.container_port == i32::from(port))
}

async fn futures_all(handles: &[PodHandle]) -> Vec<Pod> {
    let mut out = vec![];
    for h in handles {
        out.push(h.wait().await);
    }
    out
}

/// A finished pod's root filesystems and scratch volumes go; its logs stay for
/// `capstan logs`.
fn cleanup(data_dir: &Path, pods: &[Pod]) {
    for p in pods {
        let m = &p.metadata;
        let dir = capstan_runtime::runtime::pod_dir(
            data_dir,
            m.namespace.as_deref().unwrap_or("default"),
            m.name.as_deref().unwrap_or_default(),
            m.uid.as_deref().unwrap_or_default(),
        );
        let _ = std::fs::remove_dir_all(dir.join("volumes"));
        if let Ok(cs) = std::fs::read_dir(dir.join("containers")) {
            for c in cs.flatten() {
                let _ = std::fs::remove_dir_all(c.path().join("rootfs"));
            }
        }
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
            return std::future::pending().await;
        };
        tokio::select! { _ = int.recv() => {}, _ = term.recv() => {} }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Prints each change of a pod's status: one line of text, or a watch event.
async fn report(mut status: tokio::sync::watch::Receiver<Pod>, json: bool) {
    let mut last = String::new();
    loop {
        let line = {
            let pod = status.borrow_and_update();
            if json {
                serde_json::to_string(&serde_json::json!({"type": "MODIFIED", "object": &*pod})).unwrap_or_default()
            } else {
                summary(&pod)
            }
        };
        if line != last {
            println!("{line}");
            last = line;
        }
        if status.changed().await.is_err() {
            return;
        }
    }
}

/// `pod/NAME PHASE ready N/M restarts R  c1: Running  c2: Waiting (CrashLoopBackOff)`
fn summary(pod: &Pod) -> String {
    let st = pod.status.clone().unwrap_or_default();
    let cs = st.container_statuses.unwrap_or_default();
    let ready = cs.iter().filter(|c| c.ready).count();
    let restarts: i32 = cs.iter().map(|c| c.restart_count).sum();
    let mut out = format!(
        "pod/{} {} ready {}/{} restarts {}",
        pod.metadata.name.clone().unwrap_or_default(),
        st.phase.unwrap_or_default(),
        ready,
        cs.len(),
        restarts
    );
    for c in st
        .init_container_statuses
        .unwrap_or_default()
        .iter()
        .map(|c| (c, "init:"))
        .chain(cs.iter().map(|c| (c, "")))
    {
        let (c, prefix) = c;
        let state = c.state.clone().unwrap_or_default();
        let s = if let Some(w) = state.waiting {
            format!("Waiting ({})", w.reason.unwrap_or_default())
        } else if state.running.is_some() {
            "Running".to_string()
        } else if let Some(t) = state.terminated {
            format!("Terminated ({}, exit {})", t.reason.unwrap_or_default(), t.exit_code)
        } else {
            "Unknown".to_string()
        };
        out.push_str(&format!("  {prefix}{}: {s}", c.name));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_flags() {
        assert_eq!(
            parse_publish("8080:80").unwrap(),
            PortMapping {
                host: "127.0.0.1:8080".parse().unwrap(),
                container: 80
            }
        );
        assert_eq!(
            parse_publish("0.0.0.0:9000:8080").unwrap(),
            PortMapping {
                host: "0.0.0.0:9000".parse().unwrap(),
                container: 8080
            }
        );
        assert!(parse_publish("8080").is_err());
        assert!(parse_publish("x:8080").unwrap_err().to_string().contains("host port"));
    }
}
