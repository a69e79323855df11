//! `capstan/trap`: prints "about to trap", then traps (`unreachable`).

use std::io::Write as _;

fn main() {
    println!("about to trap");
    let _ = std::io::stdout().flush();
    #[cfg(target_arch = "wasm32")]
    core::arch::wasm32::unreachable();
    #[cfg(not(target_arch = "wasm32"))]
    std::process::abort();
}
