//! `capstan logs POD [-c CONTAINER] [-f]`: reads a pod's container log from the
//! node's data directory (it works while `capstan play` runs and after).

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};

#[derive(clap::Args, Debug)]
pub struct LogsArgs {
    /// The pod's name.
    pub pod: String,
    /// The container (needed when the pod has more than one).
    #[arg(short, long)]
    pub container: Option<String>,
    /// Keep printing what the container writes.
    #[arg(short, long)]
    pub follow: bool,
    #[arg(short, long, default_value = "default")]
    pub namespace: String,
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

pub async fn logs(data_dir: &Path, args: LogsArgs) -> Result<ExitCode> {
    let pod = find_pod(data_dir, &args.namespace, &args.pod)?;
    let mut names: Vec<String> = std::fs::read_dir(pod.join("containers"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let container = match (args.container, names.as_slice()) {
        (Some(c), _) if names.contains(&c) => c,
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
    let mut out = std::io::stdout().lock();
    if let Ok(old) = std::fs::read(&rotated) {
        out.write_all(&old)?;
    }
    let mut file = std::fs::File::open(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut buf = vec![];
    file.read_to_end(&mut buf)?;
    out.write_all(&buf)?;
    out.flush()?;
    if !args.follow {
        return Ok(ExitCode::SUCCESS);
    }
    let mut pos = buf.len() as u64;
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
