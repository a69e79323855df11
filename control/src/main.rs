//! `capstan`: the command line. Thin: parses flags, calls the runtime and prints.

mod cli;
mod join;
mod logs;
mod play;
mod up;
mod verbs;

use clap::Parser;

fn main() -> std::process::ExitCode {
    // Usage errors exit 1 like every other failure (clap's own convention is 2); help and
    // version still exit 0.
    let args = match cli::Cli::try_parse() {
        Ok(args) => args,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                std::process::ExitCode::FAILURE
            } else {
                std::process::ExitCode::SUCCESS
            };
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("CAPSTAN_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(args)) {
        Ok(code) => code,
        Err(e) => {
            // The verbs' failures are already worded as kubectl words them.
            match e.downcast_ref::<verbs::Failure>() {
                Some(failure) => eprintln!("{failure}"),
                None => eprintln!("error: {e:#}"),
            }
            std::process::ExitCode::FAILURE
        }
    }
}
