// SPDX-License-Identifier: GPL-2.0
//! `mhnet streams`: long-lived TCP connections, one per client source
//! address, each checking that its server keeps echoing it byte for byte
//! while a test changes the configuration or fails a director.

use std::fs;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::args;
use crate::sys;
use crate::util;

const MAX_STREAMS: usize = 4096;
/// Whatever the options, streams stop this long after the start.
const HARD_CAP: Duration = Duration::from_secs(600);
/// Connecting and reading the name, and each echo, must take less.
const STEP_TIMEOUT: Duration = Duration::from_secs(5);
/// Default --duration-s without --stop-file.
const DEFAULT_DURATION_S: u64 = 10;
const PAYLOAD_HEX: usize = 32;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Status {
    Ok,
    Reset,
    Timeout,
    Mismatch,
    ConnectFailed,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Reset => "reset",
            Status::Timeout => "timeout",
            Status::Mismatch => "mismatch",
            Status::ConnectFailed => "connect-failed",
        }
    }

    fn of(err: &io::Error) -> Status {
        if util::reason(err) == "timeout" {
            Status::Timeout
        } else {
            Status::Reset
        }
    }
}

struct Report {
    name_start: String,
    name_end: String,
    sent: u64,
    verified: u64,
    status: Status,
}

struct Shared {
    target: SocketAddr,
    interval: Duration,
    stop: AtomicBool,
    /// Streams that have read the server's name, or failed to.
    settled: AtomicUsize,
    /// Streams whose loop has ended.
    finished: AtomicUsize,
}

pub fn main(argv: &[String]) -> Result<i32, String> {
    let o = args::parse(
        argv,
        &[
            "target",
            "clients",
            "duration-s",
            "interval-ms",
            "ready-file",
            "stop-file",
        ],
        &[],
    )?;
    let target = args::sock_addr(o.required("target")?, "--target")?;
    let stop_file = o.get("stop-file").map(Path::new);
    let default_s = if stop_file.is_some() {
        HARD_CAP.as_secs()
    } else {
        DEFAULT_DURATION_S
    };
    let duration_s: u64 = o.num("duration-s", default_s, 0, HARD_CAP.as_secs())?;
    let interval_ms: u64 = o.num("interval-ms", 100, 1, 60_000)?;
    let ready_file = o.get("ready-file").map(Path::new);
    let clients = args::clients(o.required("clients")?, &target, MAX_STREAMS)?;

    let start = Instant::now();
    let hard_deadline = start + HARD_CAP;
    let shared = Arc::new(Shared {
        target,
        interval: Duration::from_millis(interval_ms),
        stop: AtomicBool::new(false),
        settled: AtomicUsize::new(0),
        finished: AtomicUsize::new(0),
    });
    let mut threads = Vec::with_capacity(clients.len());
    for (i, src) in clients.iter().enumerate() {
        let (sh, src) = (shared.clone(), src.addr);
        let t = thread::Builder::new().stack_size(128 << 10).spawn(move || {
            let r = stream(&sh, &src);
            sh.finished.fetch_add(1, Ordering::AcqRel);
            r
        });
        match t {
            Ok(t) => threads.push(t),
            Err(e) => {
                shared.stop.store(true, Ordering::Release);
                for t in threads {
                    let _ = t.join();
                }
                return Err(format!("spawning stream {i}: {e}"));
            }
        }
    }

    // Connect phase: each stream settles within 2 * STEP_TIMEOUT.
    let n = clients.len();
    while shared.settled.load(Ordering::Acquire) < n && Instant::now() < hard_deadline {
        thread::sleep(Duration::from_millis(10));
    }
    if let Some(p) = ready_file {
        if let Err(e) = write_ready(p) {
            eprintln!("mhnet streams: writing {}: {e}", p.display());
        }
    }

    // Run phase, from the moment all streams are up.
    let run_deadline = (Instant::now() + Duration::from_secs(duration_s)).min(hard_deadline);
    loop {
        let now = Instant::now();
        if now >= run_deadline
            || stop_file.is_some_and(|p| p.exists())
            || shared.finished.load(Ordering::Acquire) == n
        {
            break;
        }
        thread::sleep(shared.interval.min(run_deadline - now));
    }
    shared.stop.store(true, Ordering::Release);

    let mut out = io::BufWriter::new(io::stdout().lock());
    let mut ok = 0;
    for (c, t) in clients.iter().zip(threads) {
        let r = t.join().unwrap_or(Report {
            name_start: "-".into(),
            name_end: "-".into(),
            sent: 0,
            verified: 0,
            status: Status::Reset,
        });
        if r.status == Status::Ok {
            ok += 1;
        }
        let _ = writeln!(
            out,
            "{} {} {} sent={} verified={} status={}",
            c.text,
            r.name_start,
            r.name_end,
            r.sent,
            r.verified,
            r.status.as_str()
        );
    }
    let _ = out.flush();
    eprintln!(
        "streams: {n} streams, {ok} ok, {} failed, {} ms",
        n - ok,
        start.elapsed().as_millis()
    );
    Ok(if ok == n { 0 } else { 1 })
}

fn write_ready(p: &Path) -> io::Result<()> {
    // Write then rename, so that a reader never sees a partial file.
    let mut tmp = p.as_os_str().to_owned();
    tmp.push(".tmp");
    fs::write(&tmp, "ready\n")?;
    fs::rename(&tmp, p)
}

/// One stream, from connecting to closing.
fn stream(sh: &Shared, src: &SocketAddr) -> Report {
    let mut r = Report {
        name_start: "-".into(),
        name_end: "-".into(),
        sent: 0,
        verified: 0,
        status: Status::ConnectFailed,
    };
    let conn = sys::tcp_connect_from(src, &sh.target, STEP_TIMEOUT).and_then(|mut s| {
        s.set_nodelay(true)?;
        s.set_write_timeout(Some(STEP_TIMEOUT))?;
        let name = read_line(&mut s, Instant::now() + STEP_TIMEOUT)?;
        Ok((s, name))
    });
    sh.settled.fetch_add(1, Ordering::AcqRel);
    let (mut s, name) = match conn {
        Ok(c) => c,
        Err(e) => {
            eprintln!("mhnet streams: {src}: {}", util::reason(&e));
            return r;
        }
    };
    r.name_start = name.clone();
    r.name_end = name;
    r.status = run(sh, &mut s, &mut r);
    if r.status == Status::Ok {
        close(s);
    }
    r
}

/// Sends numbered lines every interval and checks their echo, until told
/// to stop or the stream breaks.
fn run(sh: &Shared, s: &mut TcpStream, r: &mut Report) -> Status {
    let max_lines = HARD_CAP.as_millis() / sh.interval.as_millis().max(1) + 2;
    let mut echo = Vec::with_capacity(64);
    for seq in 0..max_lines as u64 {
        if sh.stop.load(Ordering::Acquire) {
            return Status::Ok;
        }
        let tick = Instant::now();
        let line = format!("{seq} {}\n", util::rand_hex(PAYLOAD_HEX));
        if let Err(e) = s.write_all(line.as_bytes()) {
            return Status::of(&e);
        }
        r.sent += 1;
        echo.clear();
        if let Err(e) = read_exact_by(s, &mut echo, line.len(), tick + STEP_TIMEOUT) {
            note_identity(&echo, r);
            return Status::of(&e);
        }
        if echo != line.as_bytes() {
            note_identity(&echo, r);
            return Status::Mismatch;
        }
        r.verified += 1;
        // Sleep out the interval in slices, to stop promptly.
        let next = tick + sh.interval;
        loop {
            let now = Instant::now();
            if now >= next || sh.stop.load(Ordering::Acquire) {
                break;
            }
            thread::sleep((next - now).min(Duration::from_millis(50)));
        }
    }
    Status::Ok
}

/// When the echo is not ours but starts with another name line, that
/// server has taken over: record it as the name at the end.
fn note_identity(echo: &[u8], r: &mut Report) {
    let first = echo.split(|&b| b == b'\n').next().unwrap_or(&[]);
    if echo.contains(&b'\n') && !first.is_empty() && first.iter().all(u8::is_ascii_graphic) {
        r.name_end = String::from_utf8_lossy(first).into_owned();
    }
}

/// Reads exactly `len` bytes into `buf` before `deadline`.
fn read_exact_by(
    s: &mut TcpStream,
    buf: &mut Vec<u8>,
    len: usize,
    deadline: Instant,
) -> io::Result<()> {
    let mut chunk = [0u8; 512];
    while buf.len() < len {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(sys::timed_out());
        }
        s.set_read_timeout(Some(left))?;
        let want = (len - buf.len()).min(chunk.len());
        match s.read(&mut chunk[..want]) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads the server's `NAME\n` (nothing follows it before we send).
fn read_line(s: &mut TcpStream, deadline: Instant) -> io::Result<String> {
    let mut line = Vec::with_capacity(64);
    let mut chunk = [0u8; 128];
    while !line.contains(&b'\n') && line.len() <= 128 {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(sys::timed_out());
        }
        s.set_read_timeout(Some(left))?;
        match s.read(&mut chunk) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => line.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "bad name");
    let (name, rest) = line.split_at(line.iter().position(|&b| b == b'\n').ok_or_else(bad)?);
    let name = String::from_utf8_lossy(name).trim().to_string();
    if rest.len() != 1 || name.is_empty() || name.contains(char::is_whitespace) {
        return Err(bad());
    }
    Ok(name)
}

/// Orderly close: FIN, then wait (briefly) for the server's FIN.
fn close(mut s: TcpStream) {
    if s.shutdown(Shutdown::Write).is_err() {
        return;
    }
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let mut buf = [0u8; 512];
    for _ in 0..64 {
        match s.read(&mut buf) {
            Ok(n) if n > 0 => {}
            _ => break,
        }
    }
}
