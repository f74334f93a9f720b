// SPDX-License-Identifier: GPL-2.0
//! `mhnet rate`: new TCP connections as fast as K workers can open them (or
//! each worker one per `--interval-ms`), for a bounded time and count (the
//! benchmarks' load generator, and the soak's steady trickle).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::args;
use crate::probe;
use crate::util;

pub fn main(argv: &[String]) -> Result<i32, String> {
    let o = args::parse(
        argv,
        &[
            "target",
            "source",
            "duration-ms",
            "max",
            "parallel",
            "timeout-ms",
            "interval-ms",
        ],
        &[],
    )?;
    let target = args::sock_addr(o.required("target")?, "--target")?;
    let source: std::net::IpAddr = o
        .required("source")?
        .parse()
        .map_err(|_| "--source: an IPv4 or IPv6 address".to_string())?;
    let duration_ms: u64 = o.num("duration-ms", 5000, 1, 600_000)?;
    let max: usize = o.num("max", 1_000_000, 1, 100_000_000)?;
    let parallel: usize = o.num("parallel", 4, 1, 256)?;
    let timeout_ms: u64 = o.num("timeout-ms", 2000, 1, 60_000)?;
    let interval = Duration::from_millis(o.num("interval-ms", 0, 0, 60_000)?);
    if source.is_ipv4() != target.is_ipv4() {
        return Err("--source and --target must be of the same family".into());
    }
    let src = SocketAddr::new(source, 0);
    let timeout = Duration::from_millis(timeout_ms);

    let started = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let first_error = Arc::new(Mutex::new(None::<String>));
    let start = Instant::now();
    let deadline = start + Duration::from_millis(duration_ms);
    let mut workers = Vec::new();
    for _ in 0..parallel {
        let (started, done, errors, stop, first_error) = (
            started.clone(),
            done.clone(),
            errors.clone(),
            stop.clone(),
            first_error.clone(),
        );
        let w = thread::Builder::new()
            .stack_size(128 << 10)
            .spawn(move || {
                let mut next = Instant::now();
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    if !interval.is_zero() {
                        let now = Instant::now();
                        if next > now {
                            thread::sleep((next - now).min(deadline - now));
                            continue;
                        }
                        next = now + interval;
                    }
                    if started.fetch_add(1, Ordering::Relaxed) >= max {
                        break;
                    }
                    match probe::tcp_name(&src, &target, timeout) {
                        Ok(_) => {
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => {
                            // The reason first, so that a counted error
                            // always has one to show.
                            if let Ok(mut f) = first_error.lock() {
                                f.get_or_insert_with(|| util::reason(&e));
                            }
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
            .map_err(|e| format!("spawning a worker: {e}"))?;
        workers.push(w);
    }
    // Bounded: the workers stop at the deadline; a connection in progress
    // ends within its own timeout.
    while Instant::now() < deadline && workers.iter().any(|w| !w.is_finished()) {
        thread::sleep(Duration::from_millis(20));
    }
    // The rate counts what finished by now; connections still in progress
    // end within their timeout while the workers are joined.
    let ms = start.elapsed().as_millis().max(1);
    let (n, e) = (done.load(Ordering::Relaxed), errors.load(Ordering::Relaxed));
    // Errors after this point do not count, so neither do their reasons.
    let why = if e == 0 {
        "none".into()
    } else {
        first_error
            .lock()
            .ok()
            .and_then(|f| f.clone())
            .unwrap_or_else(|| "unknown".into())
    };
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.join();
    }
    println!(
        "rate: conns={n} errors={e} ms={ms} per_s={:.1} first_error={why}",
        n as f64 * 1000.0 / ms as f64
    );
    Ok(if e == 0 { 0 } else { 1 })
}
