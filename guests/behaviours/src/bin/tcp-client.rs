//! `capstan/tcp-client HOST PORT MESSAGE`: connects to HOST:PORT (retrying every 100 ms for up
//! to 10 s while the connection is refused), writes MESSAGE, shuts down its write half, reads
//! everything back and prints "echoed: <text>". Any error is printed (stderr) and exits 1.

use std::io::{self, Read as _, Write as _};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpStream, ToSocketAddrs as _};
use std::process::ExitCode;
use std::time::{Duration, Instant};

const RETRY_EVERY: Duration = Duration::from_millis(100);
const RETRY_FOR: Duration = Duration::from_secs(10);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [host, port, message] = args.as_slice() else {
        eprintln!("tcp-client: usage: tcp-client HOST PORT MESSAGE (got {args:?})");
        return ExitCode::FAILURE;
    };
    match run(host, port, message) {
        Ok(text) => {
            println!("echoed: {text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tcp-client: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(host: &str, port: &str, message: &str) -> Result<String, String> {
    let port: u16 = port.trim().parse().map_err(|_| format!("invalid PORT {port:?}"))?;
    let addrs = resolve(host, port).map_err(|e| format!("cannot resolve {host}: {e}"))?;
    let mut stream = connect(&addrs).map_err(|e| format!("cannot connect to {host}:{port}: {e}"))?;

    stream
        .write_all(message.as_bytes())
        .and_then(|()| stream.flush())
        .map_err(|e| format!("write failed: {e}"))?;
    stream
        .shutdown(Shutdown::Write)
        .map_err(|e| format!("shutdown failed: {e}"))?;
    let mut back = Vec::new();
    stream.read_to_end(&mut back).map_err(|e| format!("read failed: {e}"))?;
    Ok(String::from_utf8_lossy(&back).into_owned())
}

/// An IP literal needs no name lookup; anything else goes through `wasi:sockets/ip-name-lookup`.
fn resolve(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let addrs: Vec<SocketAddr> = (host, port).to_socket_addrs()?.collect();
    if addrs.is_empty() {
        return Err(io::Error::new(io::ErrorKind::NotFound, "no addresses"));
    }
    Ok(addrs)
}

fn connect(addrs: &[SocketAddr]) -> io::Result<TcpStream> {
    let start = Instant::now();
    loop {
        match TcpStream::connect(addrs) {
            Ok(s) => return Ok(s),
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused && start.elapsed() < RETRY_FOR => {
                std::thread::sleep(RETRY_EVERY);
            }
            Err(e) => return Err(e),
        }
    }
}
