//! `capstan/tcp-echo PORT [ADDR]`: binds ADDR:PORT (default 127.0.0.1, the pod only; `0.0.0.0`
//! to be reachable from other pods) through `wasi:sockets` via Rust std, prints "listening on
//! PORT", then accepts connections forever, one at a time, echoing each one's bytes back until it
//! closes its write half.

use std::io::{self, Read as _, Write as _};
use std::net::{IpAddr, Ipv4Addr, TcpListener, TcpStream};
use std::process::ExitCode;

fn main() -> ExitCode {
    let arg = std::env::args().nth(1);
    let Some(port) = arg.as_deref().and_then(|s| s.trim().parse::<u16>().ok()) else {
        eprintln!("tcp-echo: usage: tcp-echo PORT [ADDR] (got {arg:?})");
        return ExitCode::FAILURE;
    };
    let addr = std::env::args().nth(2);
    let ip = match addr.as_deref().map(|a| a.trim().parse::<IpAddr>()) {
        None => IpAddr::V4(Ipv4Addr::LOCALHOST),
        Some(Ok(ip)) => ip,
        Some(Err(_)) => {
            eprintln!("tcp-echo: usage: tcp-echo PORT [ADDR] (ADDR {addr:?} is not an IP address)");
            return ExitCode::FAILURE;
        }
    };
    let listener = match TcpListener::bind((ip, port)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("tcp-echo: cannot listen on {ip}:{port}: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("listening on {port}");
    let _ = io::stdout().flush();
    loop {
        match listener.accept() {
            Ok((stream, peer)) => match echo(stream) {
                Ok(n) => println!("echoed {n} bytes to {peer}"),
                Err(e) => eprintln!("tcp-echo: connection from {peer}: {e}"),
            },
            Err(e) => eprintln!("tcp-echo: accept failed: {e}"),
        }
    }
}

/// Echoes until the peer shuts down its sending side; returns the bytes echoed.
fn echo(mut stream: TcpStream) -> io::Result<usize> {
    let mut buf = [0u8; 16 * 1024];
    let mut total = 0;
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            stream.flush()?;
            return Ok(total);
        }
        stream.write_all(&buf[..n])?;
        total += n;
    }
}
