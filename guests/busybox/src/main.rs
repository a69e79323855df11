//! `busybox` component: dispatches on argv[0] (`sh`, `/bin/stat`...), `busybox APPLET ...`, or
//! the first argument.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;

use busybox::io::{Ctx, Io};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let vars: BTreeMap<String, String> = std::env::vars().collect();
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let mut ctx = Ctx {
        io: Io::process(),
        vars: &vars,
        cwd: &cwd,
    };
    let code = busybox::run_multicall(&args, &mut ctx);
    let _ = ctx.io.stdout.flush();
    let _ = ctx.io.stderr.flush();
    // Note: Rust std on wasm32-wasip2 reports every non-zero code to the host as 1.
    std::process::exit(code);
}
