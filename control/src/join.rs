//! `capstan node --server URL`: a node that joins a cluster served by another process.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use capstan_control::cluster::{self, NodeConfig};

#[derive(clap::Args, Debug)]
pub struct NodeArgs {
    /// The API server (`http://host:port`, as `capstan up` prints it).
    #[arg(long)]
    pub server: String,
    /// This node's name (default: the machine's host name).
    #[arg(long)]
    pub name: Option<String>,
    /// A label for the node, `key=value` (repeatable).
    #[arg(long = "label", value_parser = parse_label)]
    pub labels: Vec<(String, String)>,
    /// CPU capacity to report (`4`, `2500m`; default: this machine's).
    #[arg(long)]
    pub cpu: Option<String>,
    /// Memory capacity to report (`8Gi`; default: this machine's).
    #[arg(long)]
    pub memory: Option<String>,
    /// The first address of this node's pod block (a /16; default: derived from the name).
    #[arg(long)]
    pub pod_network: Option<std::net::Ipv4Addr>,
    /// Allow `hostPath` volumes.
    #[arg(long)]
    pub allow_host_path: bool,
    /// The node's own endpoint (container logs and metrics for the API server, pod traffic
    /// from the other processes of the cluster): the address they reach this node at, and the
    /// port (0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:10250")]
    pub endpoint: std::net::SocketAddr,
}

fn parse_label(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("{s:?}: expected key=value"))
}

pub async fn node(data_dir: PathBuf, args: NodeArgs) -> Result<ExitCode> {
    let name = match args.name {
        Some(n) => n,
        None => std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_lowercase())
            .context("reading the host name; pass --name")?,
    };
    let config = NodeConfig {
        name: name.clone(),
        labels: args.labels.into_iter().collect(),
        cpu: args.cpu,
        memory: args.memory,
        ..Default::default()
    };
    let network = args.pod_network.unwrap_or_else(|| cluster::pod_network_for(&name));
    let task = cluster::join(
        &args.server,
        config,
        &data_dir,
        args.allow_host_path,
        network,
        args.endpoint,
    )
    .await?;
    eprintln!("capstan: node {name} joining {}; Ctrl-C stops it", args.server);
    tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
    task.abort();
    Ok(ExitCode::SUCCESS)
}
