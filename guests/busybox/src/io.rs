//! Streams and context handed to applets. Applets never touch the process's stdio directly:
//! they read and write the streams the caller (the process entry point or the shell, after
//! redirections) gives them, so everything also runs in-process in unit tests.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;

/// A shared output stream (several file descriptors may point at the same one: `2>&1`).
#[derive(Clone)]
pub struct Output(Rc<RefCell<dyn Write>>);

impl Output {
    pub fn new(w: impl Write + 'static) -> Self {
        Output(Rc::new(RefCell::new(w)))
    }

    pub fn from_shared(w: Rc<RefCell<dyn Write>>) -> Self {
        Output(w)
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.borrow_mut().write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.borrow_mut().flush()
    }
}

/// A shared input stream.
#[derive(Clone)]
pub struct Input(Rc<RefCell<dyn Read>>);

impl Input {
    pub fn new(r: impl Read + 'static) -> Self {
        Input(Rc::new(RefCell::new(r)))
    }
}

impl Read for Input {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.borrow_mut().read(buf)
    }
}

/// The three standard streams of one command.
#[derive(Clone)]
pub struct Io {
    pub stdin: Input,
    pub stdout: Output,
    pub stderr: Output,
}

impl Io {
    /// The process's own stdio.
    pub fn process() -> Self {
        Io {
            stdin: Input::new(io::stdin()),
            stdout: Output::new(io::stdout()),
            stderr: Output::new(io::stderr()),
        }
    }
}

/// What an applet gets: its streams, the environment and the working directory.
pub struct Ctx<'a> {
    pub io: Io,
    pub vars: &'a BTreeMap<String, String>,
    pub cwd: &'a Path,
}

impl Ctx<'_> {
    /// Resolves `p` against the working directory.
    pub fn path(&self, p: &str) -> PathBuf {
        resolve(self.cwd, p)
    }

    /// Prints `applet: message` to stderr.
    pub fn error(&mut self, applet: &str, message: impl std::fmt::Display) {
        let _ = writeln!(self.io.stderr, "{applet}: {message}");
    }
}

/// Joins `p` onto `cwd` (unless absolute) and normalises `.` and `..` lexically.
pub fn resolve(cwd: &Path, p: &str) -> PathBuf {
    let joined = if Path::new(p).is_absolute() {
        PathBuf::from(p)
    } else {
        cwd.join(p)
    };
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    if out.as_os_str().is_empty() {
        out.push("/");
    }
    out
}

/// An `io::Error` as a short message, without the trailing "(os error N)".
pub fn describe(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_normalises() {
        let cwd = Path::new("/a/b");
        assert_eq!(resolve(cwd, "c"), PathBuf::from("/a/b/c"));
        assert_eq!(resolve(cwd, "../c/./d"), PathBuf::from("/a/c/d"));
        assert_eq!(resolve(cwd, "/x/../y"), PathBuf::from("/y"));
        assert_eq!(resolve(cwd, "../../.."), PathBuf::from("/"));
    }

    #[test]
    fn describe_strips_os_error() {
        let e = io::Error::from(io::ErrorKind::NotFound);
        assert!(!describe(&e).contains("os error"));
        let e = std::fs::File::open("/definitely/not/here").unwrap_err();
        assert_eq!(describe(&e), "No such file or directory");
    }
}
