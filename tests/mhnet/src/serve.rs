// SPDX-License-Identifier: GPL-2.0
//! `mhnet serve`: a real server answering with its identity.
//!
//! TCP: each connection gets `NAME\n`, then an echo of every byte it sends
//! until EOF. UDP: each datagram gets `NAME <its bytes>`, sent from the
//! address the datagram was sent to.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crate::args;
use crate::sys;

/// Connections served at once; more are closed at once.
const MAX_CONNS: usize = 4096;
/// A connection silent for this long is closed (streams last 600 s at most).
const IDLE: Duration = Duration::from_secs(900);
const STACK: usize = 128 << 10;

pub fn main(argv: &[String]) -> Result<i32, String> {
    let o = args::parse(argv, &["id"], &["tcp", "udp"])?;
    let id = o.required("id")?.to_string();
    if id.is_empty() || id.len() > 64 || id.bytes().any(|b| !b.is_ascii_graphic()) {
        return Err(format!(
            "--id '{id}': 1 to 64 printable characters, no spaces"
        ));
    }
    let tcp = o
        .all("tcp")
        .iter()
        .map(|s| args::sock_addr(s, "--tcp"))
        .collect::<Result<Vec<_>, _>>()?;
    let udp = o
        .all("udp")
        .iter()
        .map(|s| args::sock_addr(s, "--udp"))
        .collect::<Result<Vec<_>, _>>()?;
    if tcp.is_empty() && udp.is_empty() {
        return Err("serve needs at least one --tcp or --udp".into());
    }

    // Bind everything first: `ready` means every socket is listening.
    let mut listeners = Vec::new();
    for a in &tcp {
        match sys::tcp_listen(a) {
            Ok(l) => listeners.push(l),
            Err(e) => {
                eprintln!("mhnet serve: tcp {a}: {e}");
                return Ok(1);
            }
        }
    }
    let mut sockets = Vec::new();
    for a in &udp {
        match sys::udp_bind_server(a) {
            Ok(s) => sockets.push((s, *a)),
            Err(e) => {
                eprintln!("mhnet serve: udp {a}: {e}");
                return Ok(1);
            }
        }
    }

    let id = Arc::new(id);
    let active = Arc::new(AtomicUsize::new(0));
    let mut threads = Vec::new();
    for l in listeners {
        let (id, active) = (id.clone(), active.clone());
        threads.push(spawn(move || accept_loop(l, id, active)).map_err(|e| e.to_string())?);
    }
    for (s, a) in sockets {
        let id = id.clone();
        threads.push(spawn(move || udp_loop(s, a, id)).map_err(|e| e.to_string())?);
    }

    let mut out = io::stdout().lock();
    let _ = writeln!(out, "ready");
    let _ = out.flush();
    drop(out);

    // The loops only end on a fatal error of their socket.
    for t in threads {
        let _ = t.join();
    }
    Ok(1)
}

fn spawn<F: FnOnce() + Send + 'static>(f: F) -> io::Result<thread::JoinHandle<()>> {
    thread::Builder::new().stack_size(STACK).spawn(f)
}

fn accept_loop(l: TcpListener, id: Arc<String>, active: Arc<AtomicUsize>) {
    loop {
        let (conn, _) = match l.accept() {
            Ok(c) => c,
            Err(e) => {
                // EMFILE and the like: back off instead of spinning.
                if e.kind() != io::ErrorKind::Interrupted {
                    eprintln!("mhnet serve: accept: {e}");
                    thread::sleep(Duration::from_millis(20));
                }
                continue;
            }
        };
        if active.fetch_add(1, Ordering::AcqRel) >= MAX_CONNS {
            active.fetch_sub(1, Ordering::AcqRel);
            continue; // dropped: closed at once
        }
        let (id, act) = (id.clone(), active.clone());
        let spawned = spawn(move || {
            let _ = echo(conn, &id);
            act.fetch_sub(1, Ordering::AcqRel);
        });
        if spawned.is_err() {
            active.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

fn echo(mut conn: TcpStream, id: &str) -> io::Result<()> {
    let _ = conn.set_nodelay(true);
    conn.set_read_timeout(Some(IDLE))?;
    conn.set_write_timeout(Some(IDLE))?;
    conn.write_all(format!("{id}\n").as_bytes())?;
    let mut buf = vec![0u8; 16 << 10];
    loop {
        let n = match conn.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        conn.write_all(&buf[..n])?;
    }
    // Orderly close: FIN after the last echoed byte.
    let _ = conn.shutdown(std::net::Shutdown::Write);
    Ok(())
}

fn udp_loop(s: UdpSocket, addr: SocketAddr, id: Arc<String>) {
    let mut buf = vec![0u8; 65536];
    let mut reply = Vec::with_capacity(65536 + 80);
    let mut errors = 0u32;
    loop {
        let rx = match sys::udp_recv(&s, &mut buf) {
            Ok(rx) => rx,
            Err(e) => {
                // ECONNREFUSED and the like are left by ICMP errors about
                // earlier replies: not fatal.
                errors += 1;
                if errors <= 10 {
                    eprintln!("mhnet serve: udp {addr}: recv: {e}");
                }
                thread::sleep(Duration::from_millis(1));
                continue;
            }
        };
        reply.clear();
        reply.extend_from_slice(id.as_bytes());
        reply.push(b' ');
        reply.extend_from_slice(&buf[..rx.len]);
        if let Err(e) = sys::udp_reply(&s, &rx, &reply) {
            errors += 1;
            if errors <= 10 {
                eprintln!("mhnet serve: udp {addr}: reply to {}: {e}", rx.peer);
            }
        }
    }
}
