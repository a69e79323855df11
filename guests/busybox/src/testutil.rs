//! Helpers for unit tests: a temporary directory and captured streams.

use std::cell::RefCell;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::io::{Input, Io, Output};

pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("busybox-test-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// In-memory stdin/stdout/stderr.
pub struct Capture {
    stdin: Vec<u8>,
    stdout: Rc<RefCell<Vec<u8>>>,
    stderr: Rc<RefCell<Vec<u8>>>,
}

impl Capture {
    pub fn new() -> Self {
        Self::with_stdin("")
    }

    pub fn with_stdin(stdin: &str) -> Self {
        Capture {
            stdin: stdin.as_bytes().to_vec(),
            stdout: Rc::default(),
            stderr: Rc::default(),
        }
    }

    pub fn io(&self) -> Io {
        let stdout: Rc<RefCell<dyn Write>> = self.stdout.clone();
        let stderr: Rc<RefCell<dyn Write>> = self.stderr.clone();
        Io {
            stdin: Input::new(std::io::Cursor::new(self.stdin.clone())),
            stdout: Output::from_shared(stdout),
            stderr: Output::from_shared(stderr),
        }
    }

    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout.borrow()).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.borrow()).into_owned()
    }
}
