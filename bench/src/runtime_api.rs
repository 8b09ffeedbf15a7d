//! A loopback stand-in for the Lambda Runtime API (the 2018-06-01 protocol the `lambda_runtime`
//! crate speaks): `GET /runtime/invocation/next` hands out queued events with the
//! `Lambda-Runtime-*` headers, `POST /runtime/invocation/{id}/response|error` and
//! `POST /runtime/init/error` are recorded with the instant they arrived.
//!
//! Plain std threads and blocking sockets: the server must not share a scheduler with anything
//! it times, and one connection per function process is all Lambda's own API sees either.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const PREFIX: &str = "/2018-06-01/runtime";
/// Largest request body accepted (Lambda's own response limit is 6 MB).
const MAX_BODY: usize = 6 * 1024 * 1024;

/// What a function posted back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutcomeKind {
    Response,
    Error,
    InitError,
}

#[derive(Debug, Clone)]
pub struct Outcome {
    pub request_id: Option<String>,
    pub kind: OutcomeKind,
    pub at: Instant,
    pub body: Vec<u8>,
}

#[derive(Default)]
struct State {
    /// Bumped by `reset`: connections parked on an older generation are closed.
    generation: u64,
    counter: u64,
    queue: VecDeque<(String, Vec<u8>)>,
    /// When each `GET next` of this generation arrived.
    nexts: Vec<Instant>,
    /// When each event of this generation was written to the function.
    delivered: Vec<(String, Instant)>,
    outcomes: Vec<Outcome>,
    stopped: bool,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The running stand-in. Dropping it stops accepting and releases parked connections.
pub struct RuntimeApi {
    addr: SocketAddr,
    function_arn: String,
    shared: Arc<Shared>,
}

impl RuntimeApi {
    /// Serve on a free loopback port. `function_arn` is sent as `Lambda-Runtime-Invoked-Function-Arn`.
    pub fn start(function_arn: &str) -> std::io::Result<RuntimeApi> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        });
        let accept_shared = shared.clone();
        let arn = function_arn.to_string();
        std::thread::Builder::new()
            .name("runtime-api".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if accept_shared.lock().stopped {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let shared = accept_shared.clone();
                    let arn = arn.clone();
                    let _ = std::thread::Builder::new()
                        .name("runtime-api-conn".into())
                        .spawn(move || {
                            let _ = serve_connection(conn, &shared, &arn);
                        });
                }
            })?;
        Ok(RuntimeApi {
            addr,
            function_arn: function_arn.to_string(),
            shared,
        })
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    pub fn function_arn(&self) -> &str {
        &self.function_arn
    }

    /// Forget everything recorded and drop parked connections (before the next process).
    pub fn reset(&self) {
        let mut s = self.shared.lock();
        s.generation += 1;
        s.queue.clear();
        s.nexts.clear();
        s.delivered.clear();
        s.outcomes.clear();
        drop(s);
        self.shared.changed.notify_all();
    }

    /// Queue an event; returns its request id.
    pub fn push_event(&self, payload: &serde_json::Value) -> String {
        let mut s = self.shared.lock();
        s.counter += 1;
        let id = format!("bench-{}-{}", s.generation, s.counter);
        s.queue
            .push_back((id.clone(), payload.to_string().into_bytes()));
        drop(s);
        self.shared.changed.notify_all();
        id
    }

    /// Waits until the `n`-th `GET next` (1-based) of this generation, or an init error.
    pub fn wait_next(&self, n: usize, timeout: Duration) -> Result<Instant, Option<Outcome>> {
        let s = self.wait(timeout, |s| {
            s.nexts.len() >= n || s.outcomes.iter().any(|o| o.kind == OutcomeKind::InitError)
        });
        match s.nexts.get(n - 1) {
            Some(at) => Ok(*at),
            None => Err(s
                .outcomes
                .iter()
                .find(|o| o.kind == OutcomeKind::InitError)
                .cloned()),
        }
    }

    /// Waits for the response or error to `request_id`; returns it with when it was delivered.
    pub fn wait_outcome(&self, request_id: &str, timeout: Duration) -> Option<(Instant, Outcome)> {
        let s = self.wait(timeout, |s| {
            s.outcomes
                .iter()
                .any(|o| o.request_id.as_deref() == Some(request_id))
        });
        let delivered = s
            .delivered
            .iter()
            .find(|(id, _)| id == request_id)
            .map(|(_, at)| *at)?;
        let outcome = s
            .outcomes
            .iter()
            .find(|o| o.request_id.as_deref() == Some(request_id))
            .cloned()?;
        Some((delivered, outcome))
    }

    fn wait(&self, timeout: Duration, done: impl Fn(&State) -> bool) -> MutexGuard<'_, State> {
        let deadline = Instant::now() + timeout;
        let mut s = self.shared.lock();
        while !done(&s) {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            s = match self.shared.changed.wait_timeout(s, deadline - now) {
                Ok((guard, _)) => guard,
                Err(p) => p.into_inner().0,
            };
        }
        s
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.shared.lock().stopped = true;
        self.shared.changed.notify_all();
        // Wake the accept loop so it sees `stopped`.
        let _ = TcpStream::connect(self.addr);
    }
}

struct Request {
    method: String,
    path: String,
    body: Vec<u8>,
}

fn read_request(reader: &mut BufReader<TcpStream>) -> std::io::Result<Option<Request>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 {
            return Ok(None);
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.trim().eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    if length > MAX_BODY {
        return Err(std::io::Error::other("request body too large"));
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    Ok(Some(Request { method, path, body }))
}

fn write_response(
    out: &mut TcpStream,
    status: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {status}\r\ncontent-length: {}\r\n", body.len());
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())?;
    out.write_all(body)?;
    out.flush()
}

fn serve_connection(conn: TcpStream, shared: &Shared, function_arn: &str) -> std::io::Result<()> {
    conn.set_nodelay(true)?;
    let mut out = conn.try_clone()?;
    let mut reader = BufReader::new(conn);
    let generation = shared.lock().generation;
    while let Some(req) = read_request(&mut reader)? {
        let arrived = Instant::now();
        let Some(rest) = req.path.strip_prefix(PREFIX) else {
            write_response(&mut out, "404 Not Found", &[], b"")?;
            continue;
        };
        if req.method == "GET" && rest == "/invocation/next" {
            let mut s = shared.lock();
            if s.generation != generation {
                return Ok(());
            }
            s.nexts.push(arrived);
            shared.changed.notify_all();
            // Park until an event is queued; a reset or stop closes the connection instead.
            loop {
                if s.stopped || s.generation != generation {
                    return Ok(());
                }
                if let Some((id, body)) = s.queue.pop_front() {
                    drop(s);
                    let deadline_ms = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map(|d| d.as_millis() + 60_000)
                        .unwrap_or(0);
                    let headers = [
                        ("content-type", "application/json".to_string()),
                        ("lambda-runtime-aws-request-id", id.clone()),
                        ("lambda-runtime-deadline-ms", deadline_ms.to_string()),
                        ("lambda-runtime-invoked-function-arn", function_arn.to_string()),
                        (
                            "lambda-runtime-trace-id",
                            "Root=1-00000000-000000000000000000000000;Parent=0000000000000000;Sampled=0"
                                .to_string(),
                        ),
                    ];
                    write_response(&mut out, "200 OK", &headers, &body)?;
                    let mut s = shared.lock();
                    s.delivered.push((id, Instant::now()));
                    break;
                }
                s = match shared.changed.wait(s) {
                    Ok(guard) => guard,
                    Err(p) => p.into_inner(),
                };
            }
            continue;
        }
        let recorded = if req.method != "POST" {
            None
        } else if rest == "/init/error" {
            Some((None, OutcomeKind::InitError))
        } else if let Some(tail) = rest.strip_prefix("/invocation/") {
            match tail.rsplit_once('/') {
                Some((id, "response")) => Some((Some(id.to_string()), OutcomeKind::Response)),
                Some((id, "error")) => Some((Some(id.to_string()), OutcomeKind::Error)),
                _ => None,
            }
        } else {
            None
        };
        match recorded {
            Some((request_id, kind)) => {
                let mut s = shared.lock();
                s.outcomes.push(Outcome {
                    request_id,
                    kind,
                    at: arrived,
                    body: req.body,
                });
                drop(s);
                shared.changed.notify_all();
                write_response(
                    &mut out,
                    "202 Accepted",
                    &[("content-type", "application/json".to_string())],
                    br#"{"status":"OK"}"#,
                )?;
            }
            None => write_response(&mut out, "404 Not Found", &[], b"")?,
        }
    }
    Ok(())
}
