//! `busybox` component: dispatches on argv[0] (`sh`, `/bin/stat`...), `busybox APPLET ...`, or
//! the first argument.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;

use busybox::io::{Ctx, Io};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let vars: BTreeMap<String, String> = std::env::vars().collect();
    let cwd = initial_cwd().unwrap_or_else(|| std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")));
    // Relative paths in std::fs resolve against wasi-libc's cwd, which starts at "/".
    let _ = std::env::set_current_dir(&cwd);
    let mut ctx = Ctx {
        io: Io::process(),
        vars: &vars,
        cwd: &cwd,
    };
    let code = busybox::run_multicall(&args, &mut ctx);
    let _ = ctx.io.stdout.flush();
    let _ = ctx.io.stderr.flush();
    exit(code);
}

/// The container's `workingDir`: WASI's `initial-cwd`, which Rust std does not apply.
#[cfg(target_os = "wasi")]
fn initial_cwd() -> Option<PathBuf> {
    wasip2::cli::environment::initial_cwd().map(PathBuf::from)
}

#[cfg(not(target_os = "wasi"))]
fn initial_cwd() -> Option<PathBuf> {
    None
}

/// Exits with the real code: Rust std on wasm32-wasip2 reports every non-zero code
/// as 1, so use WASI 0.2.12's `exit-with-code`.
#[cfg(target_os = "wasi")]
fn exit(code: i32) -> ! {
    if code != 0 {
        wasip2::cli::exit::exit_with_code(code.clamp(0, 255) as u8);
    }
    std::process::exit(code)
}

#[cfg(not(target_os = "wasi"))]
fn exit(code: i32) -> ! {
    std::process::exit(code)
}
