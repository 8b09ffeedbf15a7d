//! The cold-start baseline: std only, no runtime, no clients. It connects to
//! `AWS_LAMBDA_RUNTIME_API`, asks for the next invocation and waits for it, so the time to its
//! first `GET next` is what any process costs on this machine before doing anything of its own.

use std::io::{Read, Write};
use std::net::TcpStream;

fn main() -> std::process::ExitCode {
    let Ok(api) = std::env::var("AWS_LAMBDA_RUNTIME_API") else {
        return std::process::ExitCode::from(2);
    };
    let Ok(mut conn) = TcpStream::connect(&api) else {
        return std::process::ExitCode::from(1);
    };
    let request =
        format!("GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nhost: {api}\r\n\r\n");
    if conn.write_all(request.as_bytes()).is_err() {
        return std::process::ExitCode::from(1);
    }
    let mut buf = [0u8; 4096];
    let _ = conn.read(&mut buf);
    std::process::ExitCode::SUCCESS
}
