//! Flags and subcommands of `capstan`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use capstan_runtime::{Runtime, RuntimeConfig};
use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "capstan",
    version,
    about = "Run Kubernetes workloads as WebAssembly components"
)]
pub struct Cli {
    /// Where images, compiled code, pod logs and volumes are kept.
    #[arg(long, global = true, env = "CAPSTAN_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Start an all-in-one cluster (API server, scheduler, controllers, nodes) until Ctrl-C.
    Up(crate::up::UpArgs),
    /// Run a node that joins a cluster served by another process, until Ctrl-C.
    Node(crate::join::NodeArgs),
    /// Run the Pods of Kubernetes manifests on this machine until they finish or Ctrl-C.
    Play(crate::play::PlayArgs),
    /// Manage the components that serve image names.
    Image {
        #[command(subcommand)]
        command: ImageCommand,
    },
    /// Print the logs of a pod's container.
    Logs(crate::logs::LogsArgs),
    /// Create or update objects from manifests (client-side apply, as kubectl's).
    Apply(crate::verbs::apply::ApplyArgs),
    /// List objects, or print them as JSON, YAML or names; -w follows changes.
    Get(crate::verbs::get::GetArgs),
    /// Show an object in detail, with its events.
    Describe(crate::verbs::describe::DescribeArgs),
    /// Delete objects by type and name, by selector, or from manifests.
    Delete(crate::verbs::delete::DeleteArgs),
    /// Set the number of replicas of a deployment or replica set.
    Scale(crate::verbs::scale::ScaleArgs),
    /// Follow, list, undo, pause, resume or restart the rollouts of a deployment.
    Rollout {
        #[command(subcommand)]
        command: crate::verbs::rollout::RolloutCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum ImageCommand {
    /// Store a component file under an image name.
    Import {
        file: PathBuf,
        #[arg(long)]
        tag: String,
    },
    /// List the images this node can run.
    Ls {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// The data directory: the flag, else `$XDG_DATA_HOME/capstan`, else `~/.local/share/capstan`.
pub fn data_dir(flag: Option<PathBuf>) -> PathBuf {
    flag.or_else(|| std::env::var_os("XDG_DATA_HOME").map(|d| PathBuf::from(d).join("capstan")))
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share/capstan")))
        .unwrap_or_else(|| PathBuf::from(".capstan"))
}

pub async fn run(cli: Cli) -> Result<ExitCode> {
    let data_dir = data_dir(cli.data_dir);
    match cli.command {
        Command::Up(args) => crate::up::up(data_dir, args).await,
        Command::Node(args) => crate::join::node(data_dir, args).await,
        Command::Play(args) => crate::play::play(data_dir, args).await,
        Command::Logs(args) => crate::logs::logs(&data_dir, args).await,
        Command::Apply(args) => crate::verbs::apply::run(args).await,
        Command::Get(args) => crate::verbs::get::run(args).await,
        Command::Describe(args) => crate::verbs::describe::run(args).await,
        Command::Delete(args) => crate::verbs::delete::run(args).await,
        Command::Scale(args) => crate::verbs::scale::run(args).await,
        Command::Rollout { command } => crate::verbs::rollout::run(command).await,
        Command::Image { command } => {
            let runtime = Runtime::new(RuntimeConfig::new(&data_dir))?;
            match command {
                ImageCommand::Import { file, tag } => {
                    let bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
                    let img = runtime.images().import(bytes, &tag).await?;
                    println!("{}\t{}", img.name, img.digest);
                }
                ImageCommand::Ls { json } => {
                    let list = runtime.images().list();
                    if json {
                        println!("{}", serde_json::to_string_pretty(&list)?);
                    } else {
                        println!("{:<44} {:<10} {:>9}  DIGEST", "IMAGE", "SOURCE", "SIZE");
                        for i in list {
                            println!(
                                "{:<44} {:<10} {:>9}  {}",
                                i.name,
                                i.source,
                                i.size,
                                &i.digest[..19.min(i.digest.len())]
                            );
                        }
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
