//! Container logs: a guest's stdout and stderr, kept on disk per container,
//! bounded and rotated, readable while the container runs (`capstan logs -f`).
//!
//! Writes land synchronously in the file: streams built on wasmtime-wasi's
//! `AsyncWriteStream` lose data when the writer's store is dropped right after a
//! write (ENGINE-NOTES), and a log that drops a crashing guest's last line is no log.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};

/// A log file rotates when it passes this size; one rotated file is kept, so a
/// container's logs take at most twice this on disk (the kubelet's
/// `containerLogMaxSize` defaults to 10 MiB as well).
pub const MAX_LOG_BYTES: u64 = 10 << 20;

/// The log of one container, shared by its stdout and stderr and by every
/// instance of it (an HTTP container has one instance per request).
#[derive(Clone)]
pub struct ContainerLog {
    inner: Arc<Mutex<LogFile>>,
}

struct LogFile {
    path: PathBuf,
    file: Option<File>,
    written: u64,
}

impl ContainerLog {
    /// Opens (appending) the log at `path`, creating its directory.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let written = file.metadata()?.len();
        Ok(Self {
            inner: Arc::new(Mutex::new(LogFile {
                path: path.to_path_buf(),
                file: Some(file),
                written,
            })),
        })
    }

    /// Appends bytes; a full file is rotated to `<name>.1` first.
    pub fn write(&self, bytes: &[u8]) {
        let Ok(mut log) = self.inner.lock() else { return };
        if log.written + bytes.len() as u64 > MAX_LOG_BYTES && log.written > 0 {
            log.rotate();
        }
        if let Some(file) = log.file.as_mut()
            && file.write_all(bytes).is_ok()
        {
            log.written += bytes.len() as u64;
        }
    }

    /// Writes a line from the node itself (not the guest), e.g. why it was killed.
    pub fn note(&self, line: &str) {
        self.write(format!("{line}\n").as_bytes());
    }

    pub fn path(&self) -> PathBuf {
        self.inner.lock().map(|l| l.path.clone()).unwrap_or_default()
    }

    /// The last `max` bytes of the current log (for `FallbackToLogsOnError`).
    pub fn tail(&self, max: usize) -> String {
        let path = self.path();
        let data = std::fs::read(&path).unwrap_or_default();
        let start = data.len().saturating_sub(max);
        String::from_utf8_lossy(&data[start..]).into_owned()
    }
}

impl LogFile {
    fn rotate(&mut self) {
        self.file = None;
        let rotated = rotated_path(&self.path);
        let _ = std::fs::rename(&self.path, rotated);
        self.file = OpenOptions::new().create(true).append(true).open(&self.path).ok();
        self.written = 0;
    }
}

/// Where the previous (rotated) part of a log lives.
pub fn rotated_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".1");
    path.with_file_name(name)
}

impl IsTerminal for ContainerLog {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for ContainerLog {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for ContainerLog {
    async fn ready(&mut self) {}
}

impl OutputStream for ContainerLog {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        ContainerLog::write(self, &bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(64 * 1024)
    }
}

impl tokio::io::AsyncWrite for ContainerLog {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        ContainerLog::write(&self, buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_past_the_limit_and_keeps_one_old_file() {
        let dir = std::env::temp_dir().join(format!("capstan-logs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let log = ContainerLog::open(&dir.join("c.log")).unwrap();
        let chunk = vec![b'x'; (MAX_LOG_BYTES / 2) as usize + 1];
        log.write(&chunk);
        log.write(&chunk);
        log.write(b"last\n");
        assert_eq!(
            std::fs::metadata(dir.join("c.log.1")).unwrap().len(),
            chunk.len() as u64
        );
        assert!(log.tail(5).ends_with("last\n"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
