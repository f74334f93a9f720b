// SPDX-License-Identifier: GPL-2.0

//! Parsing and printing of addresses, servers and clients.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use maglev::{Addr, Server};

/// Parses an IPv4 or IPv6 address (no brackets, no port).
pub(crate) fn parse_addr(s: &str) -> Result<Addr, String> {
    if let Ok(a) = s.parse::<Ipv4Addr>() {
        return Ok(Addr::V4(a.octets()));
    }
    if let Ok(a) = s.parse::<Ipv6Addr>() {
        return Ok(Addr::V6(a.octets()));
    }
    Err(format!("bad address '{s}'"))
}

/// An address as text: dotted quad, or RFC 5952 IPv6 (no brackets).
pub(crate) fn addr_text(a: &Addr) -> String {
    match a {
        Addr::V4(b) => Ipv4Addr::from(*b).to_string(),
        Addr::V6(b) => Ipv6Addr::from(*b).to_string(),
    }
}

/// `ADDR:PORT`, with brackets around IPv6 addresses.
pub(crate) struct HostPort<'a>(pub(crate) &'a Addr, pub(crate) u16);

impl fmt::Display for HostPort<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Addr::V4(_) => write!(f, "{}:{}", addr_text(self.0), self.1),
            Addr::V6(_) => write!(f, "[{}]:{}", addr_text(self.0), self.1),
        }
    }
}

fn parse_port(s: &str, what: &str) -> Result<u16, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("bad port '{s}' in '{what}'"));
    }
    match s.parse::<u32>() {
        Ok(p) if p <= 65535 => Ok(p as u16),
        _ => Err(format!("port {s} out of range (0..65535) in '{what}'")),
    }
}

fn parse_weight(s: &str, what: &str) -> Result<i32, String> {
    if let Some(rest) = s.strip_prefix('-') {
        if !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("negative weight {s} in '{what}'"));
        }
    }
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("bad weight '{s}' in '{what}'"));
    }
    s.parse::<i32>()
        .map_err(|_| format!("weight {s} too large (max {}) in '{what}'", i32::MAX))
}

/// Splits `ADDR:REST` or `[V6ADDR]:REST` into the address and the text
/// after the colon (`None` if there is no port part).
fn split_host(s: &str) -> Result<(Addr, Option<&str>), String> {
    if let Some(rest) = s.strip_prefix('[') {
        let Some(end) = rest.find(']') else {
            return Err(format!("missing ']' in '{s}'"));
        };
        let a = rest[..end]
            .parse::<Ipv6Addr>()
            .map_err(|_| format!("bad IPv6 address '{}' in '{s}'", &rest[..end]))?;
        let tail = &rest[end + 1..];
        if tail.is_empty() {
            return Ok((Addr::V6(a.octets()), None));
        }
        let Some(tail) = tail.strip_prefix(':') else {
            return Err(format!("expected ':' after ']' in '{s}'"));
        };
        return Ok((Addr::V6(a.octets()), Some(tail)));
    }
    let v6_hint = || format!("bad address in '{s}': write IPv6 addresses as [ADDR]:PORT");
    let colons = s.matches(':').count();
    if colons > 3 {
        // More colons than ADDR:PORT:WEIGHT:LASTWEIGHT allows: an
        // unbracketed IPv6.
        return Err(v6_hint());
    }
    match s.split_once(':') {
        // `::1:80` and the like: not an IPv4 address, and too many colons
        // for one.
        Some((a, _)) if colons >= 2 && a.parse::<Ipv4Addr>().is_err() => Err(v6_hint()),
        Some((a, tail)) => Ok((parse_v4(a, s)?, Some(tail))),
        None => Ok((parse_v4(s, s)?, None)),
    }
}

fn parse_v4(a: &str, whole: &str) -> Result<Addr, String> {
    a.parse::<Ipv4Addr>()
        .map(|a| Addr::V4(a.octets()))
        .map_err(|_| format!("bad address '{a}' in '{whole}'"))
}

/// The last weight IPVS keeps for a server shown at `weight` when nothing
/// else is known: the weight itself if it is positive (IPVS sets the last
/// weight on every change to a non-zero weight), else 0 (added at weight 0).
pub(crate) const fn default_last_weight(weight: i32) -> i32 {
    if weight > 0 {
        weight
    } else {
        0
    }
}

/// Checks a last weight given for a server at `weight`: with a positive
/// weight it can only be that weight. `what` names the server in messages.
pub(crate) fn check_last_weight(weight: i32, last: i32, what: &str) -> Result<(), String> {
    if weight > 0 && last != weight {
        return Err(format!(
            "last weight {last} of {what} is not its weight {weight} (IPVS sets the last \
             weight to every non-zero weight; a last weight of its own is for a server at \
             weight 0)"
        ));
    }
    Ok(())
}

/// A server on the command line and its last weight:
/// `ADDR:PORT[:WEIGHT[:LASTWEIGHT]]` or `[V6ADDR]:PORT[:WEIGHT[:LASTWEIGHT]]`,
/// weight 1 by default, last weight by [`default_last_weight`].
pub(crate) fn parse_server(s: &str) -> Result<(Server, i32), String> {
    let (addr, tail) = split_host(s)?;
    let Some(tail) = tail else {
        return Err(format!(
            "missing port in server '{s}' (ADDR:PORT[:WEIGHT[:LASTWEIGHT]])"
        ));
    };
    let mut parts = tail.splitn(3, ':');
    let port = parse_port(parts.next().unwrap_or(""), s)?;
    let weight = match parts.next() {
        Some(w) => parse_weight(w, s)?,
        None => 1,
    };
    let last = match parts.next() {
        Some(l) => {
            let l = parse_weight(l, s).map_err(|e| e.replacen("weight", "last weight", 1))?;
            check_last_weight(weight, l, &format!("'{s}'"))?;
            l
        }
        None => default_last_weight(weight),
    };
    Ok((Server { addr, port, weight }, last))
}

/// `--last-weight ADDR:PORT=W`: the server and its last weight.
pub(crate) fn parse_last_weight(s: &str) -> Result<(Addr, u16, i32), String> {
    let Some((hp, w)) = s.rsplit_once('=') else {
        return Err(format!("--last-weight '{s}' is not ADDR:PORT=WEIGHT"));
    };
    let (addr, port) = parse_host_port(hp).map_err(|e| format!("--last-weight: {e}"))?;
    let w = parse_weight(w, s).map_err(|e| format!("--last-weight: {e}"))?;
    Ok((addr, port, w))
}

/// `ADDR:PORT` / `[V6ADDR]:PORT` with a mandatory port (ipvsadm output).
pub(crate) fn parse_host_port(s: &str) -> Result<(Addr, u16), String> {
    let (addr, tail) = split_host(s)?;
    match tail {
        Some(p) if !p.contains(':') => Ok((addr, parse_port(p, s)?)),
        _ => Err(format!("expected ADDR:PORT, got '{s}'")),
    }
}

/// A client: `ADDR:PORT`, `[V6ADDR]:PORT`, or a bare address (port 0).
pub(crate) fn parse_client(s: &str) -> Result<(Addr, u16), String> {
    if !s.starts_with('[') && s.matches(':').count() > 1 {
        // A bare IPv6 address.
        return s
            .parse::<Ipv6Addr>()
            .map(|a| (Addr::V6(a.octets()), 0))
            .map_err(|_| format!("bad client address '{s}'"));
    }
    let (addr, tail) = split_host(s)?;
    match tail {
        None => Ok((addr, 0)),
        Some(p) if !p.contains(':') => Ok((addr, parse_port(p, s)?)),
        Some(_) => Err(format!("bad client '{s}' (ADDR:PORT)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers() {
        let (s, l) = parse_server("10.0.0.1:80").unwrap();
        assert_eq!((s.addr, s.port, s.weight), (Addr::V4([10, 0, 0, 1]), 80, 1));
        assert_eq!(l, 1);
        let (s, l) = parse_server("10.0.0.1:80:0").unwrap();
        assert_eq!((s.weight, l), (0, 0));
        let (s, l) = parse_server("10.0.0.1:80:0:5").unwrap();
        assert_eq!((s.weight, l), (0, 5));
        let (s, l) = parse_server("10.0.0.1:80:4:4").unwrap();
        assert_eq!((s.weight, l), (4, 4));
        let (s, l) = parse_server("[2001:db8::1]:443:7").unwrap();
        assert!(s.addr.is_v6());
        assert_eq!((s.port, s.weight, l), (443, 7, 7));
        let (_, l) = parse_server("[2001:db8::1]:443:0:3").unwrap();
        assert_eq!(l, 3);
        assert!(parse_server("10.0.0.1:80:4:3")
            .unwrap_err()
            .contains("not its weight"));
        assert!(parse_server("10.0.0.1:80:0:-1")
            .unwrap_err()
            .contains("negative last weight"));
        assert!(parse_server("::1:80").unwrap_err().contains("[ADDR]:PORT"));
        for bad in [
            "10.0.0.1:80:0:1:2",
            "10.0.0.1:80:0:x",
            "10.0.0.1:80::1",
            "10.0.0.1",
            "10.0.0.1:",
            "10.0.0.1:65536",
            "10.0.0.1:80:-1",
            "10.0.0.256:80",
            "2001:db8::1:80",
            "[2001:db8::1]",
            "[2001:db8::1]80",
            "[zz]:80",
            "10.0.0.1:80:x",
            "10.0.0.1:80:99999999999",
            "host:80",
        ] {
            assert!(parse_server(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn last_weights() {
        assert_eq!(
            parse_last_weight("10.0.0.1:80=3").unwrap(),
            (Addr::V4([10, 0, 0, 1]), 80, 3)
        );
        assert_eq!(parse_last_weight("[::1]:80=0").unwrap().2, 0);
        for bad in [
            "10.0.0.1:80",
            "10.0.0.1=3",
            "10.0.0.1:80=x",
            "10.0.0.1:80=-2",
        ] {
            assert!(parse_last_weight(bad).is_err(), "{bad}");
        }
        assert_eq!(default_last_weight(0), 0);
        assert_eq!(default_last_weight(7), 7);
    }

    #[test]
    fn clients() {
        assert_eq!(
            parse_client("1.2.3.4:5").unwrap(),
            (Addr::V4([1, 2, 3, 4]), 5)
        );
        assert_eq!(
            parse_client("1.2.3.4").unwrap(),
            (Addr::V4([1, 2, 3, 4]), 0)
        );
        assert_eq!(parse_client("::1").unwrap().1, 0);
        assert_eq!(parse_client("[::1]:9").unwrap().1, 9);
        assert!(parse_client("1.2.3.4:70000").is_err());
        assert!(parse_client("nope").is_err());
    }

    #[test]
    fn display() {
        let a = Addr::V6([0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(HostPort(&a, 53).to_string(), "[2001:db8::1]:53");
        assert_eq!(
            HostPort(&Addr::V4([1, 2, 3, 4]), 0).to_string(),
            "1.2.3.4:0"
        );
    }
}
