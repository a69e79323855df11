//! `capstan scale TYPE/NAME... --replicas N` (or `TYPE NAME...`): a merge patch of the
//! object's `/scale` subresource, as kubectl sends it.

use std::process::ExitCode;

use http::Method;
use serde_json::json;

use super::Failure;
use super::target::{self, ConnectArgs};

#[derive(clap::Args, Debug)]
pub struct ScaleArgs {
    /// `TYPE/NAME...` or `TYPE NAME...` (deployments, replicasets).
    #[arg(required = true)]
    pub args: Vec<String>,
    /// The new number of replicas.
    #[arg(long, allow_negative_numbers = true)]
    pub replicas: Option<i64>,
    /// Only scale when the current number of replicas is this (a precondition).
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub current_replicas: i64,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

pub async fn run(args: ScaleArgs) -> anyhow::Result<ExitCode> {
    let replicas = match args.replicas {
        Some(n) if n >= 0 => n,
        _ => {
            return Err(Failure::User(
                "The --replicas=COUNT flag is required, and COUNT must be greater than or equal to 0".into(),
            )
            .into());
        }
    };
    let selection = target::select(&args.args)?;
    if selection.iter().any(|(_, names)| names.is_empty()) {
        return Err(Failure::User("resource(s) were provided, but no name was specified".into()).into());
    }
    if let Some((info, _)) = selection.iter().find(|(info, _)| !info.has_subresource("scale")) {
        return Err(Failure::User(format!(
            "{} cannot be scaled: they have no scale subresource",
            info.plural
        ))
        .into());
    }
    let conn = args.connect.connect()?;
    let mut failed = false;
    let patch = json!({"spec": {"replicas": replicas}});
    for (info, names) in &selection {
        for name in names {
            let path = format!("{}/scale", target::path(info, Some(&conn.namespace), Some(name)));
            if args.current_replicas >= 0 {
                match conn.client.get(&path).await {
                    Ok(scale) if scale["spec"]["replicas"].as_i64().unwrap_or(0) != args.current_replicas => {
                        eprintln!(
                            "error: Expected replicas to be {}, was {}",
                            args.current_replicas,
                            scale["spec"]["replicas"].as_i64().unwrap_or(0)
                        );
                        failed = true;
                        continue;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        eprintln!("{}", Failure::from(e));
                        failed = true;
                        continue;
                    }
                }
            }
            match conn
                .client
                .request(Method::PATCH, &path, "application/merge-patch+json", Some(&patch))
                .await
            {
                Ok(_) => println!("{}/{name} scaled", target::kind_group(info)),
                Err(e) => {
                    eprintln!("{}", Failure::from(e));
                    failed = true;
                }
            }
        }
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}
