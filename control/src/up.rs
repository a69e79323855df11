//! `capstan up`: the all-in-one cluster in the foreground, until Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use capstan_control::cluster::{self, ClusterConfig, NodeConfig};
use capstan_control::kubeconfig;

#[derive(clap::Args, Debug)]
pub struct UpArgs {
    /// Where the API server listens (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:6443")]
    pub listen: SocketAddr,
    /// Where the Ingress gateway listens (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8081")]
    pub ingress_listen: SocketAddr,
    /// How many identical nodes to run in this process (0: none, the control plane only; nodes
    /// join with `capstan node --server URL`).
    #[arg(long, default_value_t = 1, conflicts_with = "node_config")]
    pub nodes: usize,
    /// A YAML list of nodes (name, labels, taints, cpu, memory, maxPods), in place of --nodes.
    #[arg(long)]
    pub node_config: Option<PathBuf>,
    /// The kubeconfig to write the `capstan` context into (default: $KUBECONFIG or
    /// ~/.kube/config).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Allow `hostPath` volumes (they expose this machine's files to the guests).
    #[arg(long)]
    pub allow_host_path: bool,
    /// Manifests to create once the cluster is up (files; objects that exist are left alone).
    #[arg(short = 'f', long = "filename")]
    pub files: Vec<PathBuf>,
    /// How often the HorizontalPodAutoscalers are synced, as a Go duration (`15s`, `1m`):
    /// kube-controller-manager's flag of the same name.
    #[arg(long, value_parser = go_duration, default_value = "15s")]
    pub horizontal_pod_autoscaler_sync_period: std::time::Duration,
}

/// A flag's Go duration (`500ms`, `15s`, `1m30s`), which must not be zero.
fn go_duration(text: &str) -> Result<std::time::Duration, String> {
    let d = capstan_control::controllers::scale_to_zero::parse_duration(text)?;
    if d.is_zero() {
        return Err("must be more than zero".into());
    }
    Ok(d)
}

/// Creates the objects of `files` through the API (with its admission), as `kubectl create`
/// would; an object that already exists (a restart on the same data) is left as it is.
async fn create_from(api: &std::sync::Arc<capstan_control::api::Api>, files: &[PathBuf]) -> Result<()> {
    use capstan_control::api::ApiError;
    use capstan_control::api::registry::WriteOptions;
    use capstan_control::api::resources::find_kind;
    for file in files {
        let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let options = serde_saphyr::options! { legacy_octal_numbers: true };
        let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple_with_options(&text, options)
            .with_context(|| format!("{}: invalid YAML", file.display()))?;
        for doc in docs.into_iter().filter(|d| !d.is_null()) {
            let api_version = doc["apiVersion"].as_str().unwrap_or_default().to_owned();
            let kind = doc["kind"].as_str().unwrap_or_default().to_owned();
            let info = find_kind(&api_version, &kind)
                .with_context(|| format!("{}: no resource for {api_version} {kind}", file.display()))?;
            let ns = doc["metadata"]["namespace"].as_str().unwrap_or("default").to_owned();
            let name = doc["metadata"]["name"].as_str().unwrap_or_default().to_owned();
            let created = api
                .call(move |a| a.create(info, Some(&ns), doc, &WriteOptions::default()))
                .await;
            // kubectl's `deployment.apps/NAME` form.
            let shown = match info.group {
                "" => format!("{}/{name}", info.singular),
                group => format!("{}.{group}/{name}", info.singular),
            };
            match created {
                Ok(_) => eprintln!("capstan: {shown} created"),
                Err(ApiError::AlreadyExists { .. }) => eprintln!("capstan: {shown} exists"),
                Err(e) => anyhow::bail!("{}: {e}", file.display()),
            }
        }
    }
    Ok(())
}

pub async fn up(data_dir: PathBuf, args: UpArgs) -> Result<ExitCode> {
    let nodes = match &args.node_config {
        Some(path) => NodeConfig::from_file(path)?,
        None => NodeConfig::numbered(args.nodes),
    };
    let names: Vec<String> = nodes.iter().map(|n| n.name.clone()).collect();
    let cluster = cluster::up(ClusterConfig {
        data_dir: data_dir.clone(),
        listen: args.listen,
        ingress_listen: Some(args.ingress_listen),
        nodes,
        allow_host_path: args.allow_host_path,
    })
    .await?;
    cluster
        .autoscaler
        .set_sync_period(args.horizontal_pod_autoscaler_sync_period);
    let server = format!("http://{}", cluster.addr);
    let path = args.kubeconfig.unwrap_or_else(kubeconfig::default_path);
    kubeconfig::write(&path, &server).with_context(|| "writing the kubeconfig")?;
    let names = if names.is_empty() {
        "none in this process".to_owned()
    } else {
        names.join(", ")
    };
    eprintln!("capstan: API server at {server}; nodes: {names}");
    if let Some(addr) = cluster.ingress_addr {
        eprintln!("capstan: ingress gateway at http://{addr}");
    }
    eprintln!("capstan: kubeconfig context \"capstan\" written to {}", path.display());
    eprintln!("capstan: data in {}; Ctrl-C stops the cluster", data_dir.display());
    create_from(&cluster.api, &args.files).await?;
    tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
    eprintln!("capstan: stopping");
    drop(cluster);
    Ok(ExitCode::SUCCESS)
}
