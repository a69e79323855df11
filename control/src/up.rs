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
        nodes,
        allow_host_path: args.allow_host_path,
    })
    .await?;
    let server = format!("http://{}", cluster.addr);
    let path = args.kubeconfig.unwrap_or_else(kubeconfig::default_path);
    kubeconfig::write(&path, &server).with_context(|| "writing the kubeconfig")?;
    let names = if names.is_empty() {
        "none in this process".to_owned()
    } else {
        names.join(", ")
    };
    eprintln!("capstan: API server at {server}; nodes: {names}");
    eprintln!("capstan: kubeconfig context \"capstan\" written to {}", path.display());
    eprintln!("capstan: data in {}; Ctrl-C stops the cluster", data_dir.display());
    tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
    eprintln!("capstan: stopping");
    drop(cluster);
    Ok(ExitCode::SUCCESS)
}
