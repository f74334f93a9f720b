// SPDX-License-Identifier: GPL-2.0
//! `mhnet probe`: one short flow per client source address, recording which
//! real server answered it.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use crate::args;
use crate::sys;
use crate::util;

const MAX_CLIENTS: usize = 1 << 20;
const MAX_LINE: usize = 256;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Proto {
    Tcp,
    Udp,
}

struct Cfg {
    proto: Proto,
    target: SocketAddr,
    timeout: Duration,
    retries: u32,
}

pub fn main(argv: &[String]) -> Result<i32, String> {
    let o = args::parse(
        argv,
        &[
            "proto",
            "target",
            "clients",
            "timeout-ms",
            "retries",
            "parallel",
        ],
        &[],
    )?;
    let proto = match o.required("proto")? {
        "tcp" => Proto::Tcp,
        "udp" => Proto::Udp,
        p => return Err(format!("--proto '{p}': tcp or udp")),
    };
    let target = args::sock_addr(o.required("target")?, "--target")?;
    let timeout_ms: u64 = o.num("timeout-ms", 2000, 1, 600_000)?;
    let retries: u32 = o.num("retries", 2, 0, 100)?;
    let parallel: usize = o.num("parallel", 8, 1, 1024)?;
    let clients = args::clients(o.required("clients")?, &target, MAX_CLIENTS)?;

    let cfg = Arc::new(Cfg {
        proto,
        target,
        timeout: Duration::from_millis(timeout_ms),
        retries,
    });
    let clients = Arc::new(clients);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let (tx, rx) = mpsc::channel::<(usize, Result<String, String>)>();
    let mut workers = Vec::new();
    for _ in 0..parallel.min(clients.len()) {
        let (cfg, clients, next, tx) = (cfg.clone(), clients.clone(), next.clone(), tx.clone());
        let w = thread::Builder::new()
            .stack_size(128 << 10)
            .spawn(move || loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(src) = clients.get(i) else { break };
                if tx.send((i, flow(&cfg, &src.addr))).is_err() {
                    break;
                }
            })
            .map_err(|e| format!("spawning a worker: {e}"))?;
        workers.push(w);
    }
    drop(tx);

    // Print in input order as results arrive.
    let mut out = io::BufWriter::new(io::stdout().lock());
    let mut pending = BTreeMap::new();
    let (mut printed, mut answered, mut errors) = (0usize, 0usize, 0usize);
    for (i, res) in rx {
        pending.insert(i, res);
        while let Some(res) = pending.remove(&printed) {
            let c = &clients[printed].text;
            let _ = match res {
                Ok(name) => {
                    answered += 1;
                    writeln!(out, "{c} {name}")
                }
                Err(why) => {
                    errors += 1;
                    writeln!(out, "{c} ERROR {why}")
                }
            };
            printed += 1;
        }
        if pending.is_empty() {
            let _ = out.flush();
        }
    }
    let _ = out.flush();
    for w in workers {
        let _ = w.join();
    }
    eprintln!(
        "probed {} flows: {answered} answered, {errors} errors, {} ms",
        clients.len(),
        start.elapsed().as_millis()
    );
    Ok(0)
}

/// One flow from `src`; the answering server's name, or a one-word reason.
/// Only timeouts are retried: a refusal or reset is an answer too.
fn flow(cfg: &Cfg, src: &SocketAddr) -> Result<String, String> {
    let mut last = String::new();
    for _ in 0..=cfg.retries {
        let res = match cfg.proto {
            Proto::Tcp => tcp_flow(cfg, src),
            Proto::Udp => udp_flow(cfg, src),
        };
        match res {
            Ok(name) => return Ok(name),
            Err(e) => {
                last = util::reason(&e);
                if last != "timeout" {
                    break;
                }
            }
        }
    }
    Err(last)
}

fn tcp_flow(cfg: &Cfg, src: &SocketAddr) -> io::Result<String> {
    tcp_name(src, &cfg.target, cfg.timeout)
}

/// One short TCP connection from `src` (port 0: any) to `target`: the name
/// the server sends, within `timeout`; closed with an RST.
pub fn tcp_name(src: &SocketAddr, target: &SocketAddr, timeout: Duration) -> io::Result<String> {
    let deadline = Instant::now() + timeout;
    let mut s = sys::tcp_connect_from(src, target, timeout)?;
    // Whatever happens next, close with an RST: no TIME_WAIT, and the same
    // 4-tuple can be used again at once.
    sys::set_linger_zero(&s)?;
    let mut line = Vec::with_capacity(64);
    let mut buf = [0u8; MAX_LINE];
    while !line.contains(&b'\n') {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(sys::timed_out());
        }
        s.set_read_timeout(Some(left))?;
        let n = match s.read(&mut buf) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        line.extend_from_slice(&buf[..n]);
        if line.len() > MAX_LINE {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "long line"));
        }
    }
    let end = line.iter().position(|&b| b == b'\n').unwrap_or(line.len());
    name_of(&line[..end])
}

fn udp_flow(cfg: &Cfg, src: &SocketAddr) -> io::Result<String> {
    let s = sys::udp_connect_from(src, &cfg.target)?;
    let token = util::rand_hex(16);
    s.send(token.as_bytes())?;
    let deadline = Instant::now() + cfg.timeout;
    let mut buf = [0u8; 2048];
    // Bounded: each read consumes a datagram or waits out the deadline.
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(sys::timed_out());
        }
        s.set_read_timeout(Some(left))?;
        let n = match s.recv(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        // `NAME token`; another token is a late reply to an earlier try
        // (or someone else's flow): ignore it.
        let reply = &buf[..n];
        if let Some(name) = reply
            .strip_suffix(token.as_bytes())
            .and_then(|r| r.strip_suffix(b" "))
        {
            return name_of(name);
        }
    }
}

fn name_of(raw: &[u8]) -> io::Result<String> {
    let name = String::from_utf8_lossy(raw).trim().to_string();
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "bad name"));
    }
    Ok(name)
}
