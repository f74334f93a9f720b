// SPDX-License-Identifier: GPL-2.0
//! Small helpers shared by the subcommands.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};

/// A random 64-bit number (std's per-process random SipHash keys, mixed
/// with a counter so that successive calls differ).
pub fn rand_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.finish()
}

/// `n` random lowercase hex digits.
pub fn rand_hex(n: usize) -> String {
    let mut s = String::with_capacity(n + 16);
    while s.len() < n {
        s.push_str(&format!("{:016x}", rand_u64()));
    }
    s.truncate(n);
    s
}

/// A one-word reason for a failed flow: `refused`, `timeout`, `reset`, ...
pub fn reason(err: &io::Error) -> String {
    use io::ErrorKind as K;
    match err.kind() {
        K::ConnectionRefused => return "refused".into(),
        K::TimedOut | K::WouldBlock => return "timeout".into(),
        K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe => return "reset".into(),
        K::UnexpectedEof => return "eof".into(),
        K::AddrInUse => return "addr-in-use".into(),
        K::AddrNotAvailable => return "addr-not-available".into(),
        K::InvalidData => return "bad-reply".into(),
        _ => {}
    }
    match err.raw_os_error() {
        Some(101) => "net-unreachable".into(),  // ENETUNREACH
        Some(113) => "host-unreachable".into(), // EHOSTUNREACH
        Some(1) | Some(13) => "denied".into(),  // EPERM, EACCES (a firewall)
        Some(n) => format!("errno-{n}"),
        None => "io".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random() {
        assert_ne!(rand_u64(), rand_u64());
        let h = rand_hex(20);
        assert_eq!(h.len(), 20);
        assert!(h.bytes().all(|b| b.is_ascii_hexdigit()));
    }

    #[test]
    fn reasons() {
        assert_eq!(reason(&io::Error::from_raw_os_error(111)), "refused");
        assert_eq!(reason(&io::Error::from_raw_os_error(104)), "reset");
        assert_eq!(reason(&io::Error::from_raw_os_error(110)), "timeout");
        assert_eq!(
            reason(&io::Error::from_raw_os_error(113)),
            "host-unreachable"
        );
        assert_eq!(reason(&io::Error::from_raw_os_error(98)), "addr-in-use");
    }
}
