//! `capstan/alloc MB`: allocates MB MiB in 1 MiB chunks (touching every page), printing
//! "allocated K MiB" every 16 MiB, then "done". If the host's memory limit stops the growth,
//! the instance traps.

use std::hint::black_box;
use std::process::ExitCode;

const MIB: usize = 1 << 20;
const PAGE: usize = 4096;

fn main() -> ExitCode {
    let arg = std::env::args().nth(1);
    let Some(mb) = arg.as_deref().and_then(|s| s.trim().parse::<usize>().ok()) else {
        eprintln!("alloc: usage: alloc MB (got {arg:?})");
        return ExitCode::FAILURE;
    };
    let mut held: Vec<Box<[u8]>> = Vec::with_capacity(mb);
    for k in 1..=mb {
        let mut chunk = vec![0u8; MIB].into_boxed_slice();
        for i in (0..MIB).step_by(PAGE) {
            chunk[i] = 1;
        }
        held.push(black_box(chunk));
        if k % 16 == 0 {
            println!("allocated {k} MiB");
        }
    }
    println!("done");
    drop(black_box(held));
    ExitCode::SUCCESS
}
