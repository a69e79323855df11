//! Runs the guests' own unit tests (busybox's shell parser and interpreter, the
//! random generator's helpers) on the host, so `cargo test --workspace` covers the
//! separate guests workspace too.

use std::path::Path;
use std::process::Command;

#[test]
fn guest_unit_tests_pass_on_the_host() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root.join("guests"))
        .args([
            "test",
            "--locked",
            "--workspace",
            "--target",
            env!("CAPSTAN_HOST_TARGET"),
            "--target-dir",
        ])
        .arg(root.join("target").join("guests-host"));
    for var in [
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
    ] {
        cmd.env_remove(var);
    }
    let out = cmd.output().expect("cargo runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "guest unit tests failed:\n{text}");
    assert!(text.contains("test result: ok"), "no guest test ran:\n{text}");
}
