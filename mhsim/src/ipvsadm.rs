// SPDX-License-Identifier: GPL-2.0

//! Reading the mh services out of ipvsadm output, in either of its two
//! numeric formats, told apart by the first line that is not blank or a
//! `#` comment:
//!
//! - save format, `ipvsadm -Sn`: `-A` / `-a` command lines. ipvsadm always
//!   prints the real servers sorted here (it refuses `--nosort` with `-S`),
//!   which is all the default sorted population order needs;
//! - listing format, `ipvsadm -Ln` / `ipvsadm -Ln --nosort`: a `TCP`,
//!   `UDP`, `SCTP` or `FWM` line per service and a `->` line per real
//!   server. With `--nosort` the real servers come in the kernel's list
//!   order (newest first), which `--order list` and upstream mode need.
//!
//! Only what the scheduler needs is read: the service identity, its
//! scheduler, its scheduler flags, and each real server's address, port
//! and weight, in the order printed. Everything else is skipped.

use maglev::{Addr, Server};

use crate::spec::{parse_addr, parse_host_port, HostPort};

/// Scheduler flag 1: `mh-fallback` (ipvsadm prints it so for mh, `flag-1`
/// for other schedulers).
pub(crate) const FLAG1: u8 = 1;
/// Scheduler flag 2: `mh-port`.
pub(crate) const FLAG2: u8 = 2;
/// Scheduler flag 3: `flag-3` (the C mh ignores it; ip_vs_mh_rs switches
/// the service to upstream mode with it).
pub(crate) const FLAG3: u8 = 4;

/// The scheduler flag bits of `-b` words: ipvsadm writes them as
/// `mh-fallback`, `mh-port` and `flag-3` for an mh service (`-Sn`: `-b
/// mh-fallback,mh-port,flag-3`; `-Ln`: `(mh-fallback,mh-port,flag-3)`), and
/// accepts `flag-1`, `flag-2` and `flag-3` for any scheduler. Other words
/// (another scheduler's flags) are not the mh scheduler's.
pub(crate) fn flag_bits(words: &[String]) -> u8 {
    words.iter().fold(0, |acc, w| {
        acc | match w.as_str() {
            "flag-1" | "mh-fallback" => FLAG1,
            "flag-2" | "mh-port" => FLAG2,
            "flag-3" => FLAG3,
            _ => 0,
        }
    })
}

/// One mh virtual service.
#[derive(Clone, Debug)]
pub(crate) struct Service {
    /// Selector, e.g. `tcp:10.0.0.1:80`, `udp:[2001:db8::1]:53`, `fwm:7`
    /// (`fwm6:7` for an IPv6 fwmark service).
    pub(crate) id: String,
    /// Whether the service is IPv6.
    pub(crate) v6: bool,
    /// Scheduler flags 1 to 3 as bits 0 to 2 ([`FLAG1`], [`FLAG2`],
    /// [`FLAG3`]).
    pub(crate) flags: u8,
    /// `-b mh-port` (flag 2): clients are hashed with their port.
    pub(crate) mh_port: bool,
    /// `-b mh-fallback` (flag 1): unavailable servers are skipped.
    pub(crate) mh_fallback: bool,
    /// Real servers, in the order printed.
    pub(crate) dests: Vec<Server>,
    /// Read from the save format, whose real servers ipvsadm always sorts:
    /// their order is not the kernel's list order.
    pub(crate) sorted: bool,
}

impl Service {
    /// `-b flag-3`: ip_vs_mh_rs serves the service in upstream mode.
    pub(crate) fn flag3(&self) -> bool {
        self.flags & FLAG3 != 0
    }

    /// The servers as the kernel hashes them. The C module folds a real
    /// server's address by the *service's* family: for an IPv4 service
    /// with an IPv6 real server (tunnel forwarding) only the first 32 bits
    /// of the IPv6 address count. (For an IPv6 service with an IPv4 server
    /// the fold is the IPv4 address either way.)
    pub(crate) fn hashed_dests(&self) -> Vec<Server> {
        self.dests
            .iter()
            .map(|d| match d.addr {
                Addr::V6(b) if !self.v6 => Server {
                    addr: Addr::V4([b[0], b[1], b[2], b[3]]),
                    ..*d
                },
                _ => *d,
            })
            .collect()
    }
}

struct Line {
    key: Option<(String, bool)>,
    sched: Option<String>,
    flags: Vec<String>,
    real: Option<(Addr, u16)>,
    weight: Option<i32>,
}

fn service_key(kind: &str, hostport: &str) -> Result<(String, bool), String> {
    let (a, p) = parse_host_port(hostport)?;
    Ok((format!("{kind}:{}", HostPort(&a, p)), a.is_v6()))
}

fn parse_line(tokens: &[&str]) -> Result<Line, String> {
    let mut l = Line {
        key: None,
        sched: None,
        flags: Vec::new(),
        real: None,
        weight: None,
    };
    let mut fwmark: Option<u32> = None;
    let mut v6_flag = false;
    let mut i = 1;
    let arg = |i: usize| -> Result<&str, String> {
        tokens
            .get(i + 1)
            .copied()
            .ok_or_else(|| format!("'{}' needs a value", tokens[i]))
    };
    while i < tokens.len() {
        let t = tokens[i];
        match t {
            "-t" | "--tcp-service" => l.key = Some(service_key("tcp", arg(i)?)?),
            "-u" | "--udp-service" => l.key = Some(service_key("udp", arg(i)?)?),
            "--sctp-service" => l.key = Some(service_key("sctp", arg(i)?)?),
            "-f" | "--fwmark-service" => {
                let v = arg(i)?;
                fwmark = Some(v.parse().map_err(|_| format!("bad fwmark '{v}'"))?);
            }
            "-6" | "--ipv6" => {
                v6_flag = true;
                i += 1;
                continue;
            }
            "-s" | "--scheduler" => l.sched = Some(arg(i)?.to_string()),
            "-b" | "--sched-flags" => {
                // ipvsadm prints "-b " with nothing after it when the only
                // flags are ones it has no name for: for mh, whose flags 1
                // and 2 it names mh-fallback and mh-port, that is flag-3
                // alone (other schedulers get all three named).
                match tokens.get(i + 1) {
                    Some(v) if !v.starts_with('-') => {
                        l.flags = v.split(',').map(str::to_string).collect();
                    }
                    _ => {
                        l.flags = vec!["flag-3".to_string()];
                        i += 1;
                        continue;
                    }
                }
            }
            "-r" | "--real-server" => l.real = Some(parse_host_port(arg(i)?)?),
            "-w" | "--weight" => {
                let v = arg(i)?;
                let w: i32 = v.parse().map_err(|_| format!("bad weight '{v}'"))?;
                if w < 0 {
                    return Err(format!("negative weight {w}"));
                }
                l.weight = Some(w);
            }
            // Options with a value that the scheduler does not use.
            "-M" | "--netmask" | "--pe" | "-x" | "--u-threshold" | "-y" | "--l-threshold"
            | "--tun-type" | "--tun-port" => {
                arg(i)?;
            }
            "-p" | "--persistent" => {
                // The timeout is optional.
                if tokens
                    .get(i + 1)
                    .is_some_and(|v| v.bytes().all(|b| b.is_ascii_digit()))
                {
                    i += 2;
                    continue;
                }
                i += 1;
                continue;
            }
            _ => {
                // Forwarding switches (-g, -i, -m), -o, tunnel flags and
                // anything newer: no value, not needed.
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    if let Some(mark) = fwmark {
        let kind = if v6_flag { "fwm6" } else { "fwm" };
        l.key = Some((format!("{kind}:{mark}"), v6_flag));
    }
    Ok(l)
}

/// Every service of an input, mh or not, so that real servers of other
/// services can be told apart from real servers of unknown ones.
#[derive(Default)]
struct Services {
    /// Each service's key and, for an mh service, its index in `mh`.
    all: Vec<(String, Option<usize>)>,
    mh: Vec<Service>,
}

impl Services {
    /// Records a service; returns its index in `mh` if it is an mh one.
    fn add(
        &mut self,
        key: String,
        v6: bool,
        sched: Option<&str>,
        flags: &[String],
    ) -> Result<Option<usize>, String> {
        if self.all.iter().any(|(k, _)| *k == key) {
            return Err(format!("service {key} defined twice"));
        }
        let idx = if sched == Some("mh") {
            let bits = flag_bits(flags);
            self.mh.push(Service {
                id: key.clone(),
                v6,
                flags: bits,
                mh_port: bits & FLAG2 != 0,
                mh_fallback: bits & FLAG1 != 0,
                dests: Vec::new(),
                sorted: false,
            });
            Some(self.mh.len() - 1)
        } else {
            None
        };
        self.all.push((key, idx));
        Ok(idx)
    }

    /// Adds a real server to the service `idx` (`None`: not an mh one).
    fn add_dest(&mut self, idx: Option<usize>, dest: Server) {
        if let Some(i) = idx {
            self.mh[i].dests.push(dest);
        }
    }
}

/// The significant lines of `text`: line number (from 1) and trimmed text,
/// without blank lines and `#` comments.
fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(n, l)| (n + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
}

/// The mh services in `text` (either format), in the order they appear.
pub(crate) fn parse(text: &str) -> Result<Vec<Service>, String> {
    match lines(text).next() {
        None => Ok(Vec::new()),
        Some((_, first)) if first.starts_with('-') && !first.starts_with("->") => {
            let mut services = parse_save(text)?;
            for s in &mut services {
                s.sorted = true;
            }
            Ok(services)
        }
        Some(_) => parse_listing(text),
    }
}

/// The save format (`ipvsadm -Sn`).
fn parse_save(text: &str) -> Result<Vec<Service>, String> {
    let mut services = Services::default();
    for (lineno, line) in lines(text) {
        let tokens: Vec<&str> = line.split_whitespace().collect();
        let add_service = matches!(tokens[0], "-A" | "--add-service");
        let add_server = matches!(tokens[0], "-a" | "--add-server");
        if !add_service && !add_server {
            return Err(format!(
                "ipvsadm input line {lineno}: expected '-A' or '-a' (is this 'ipvsadm -Sn' output?): {line}"
            ));
        }
        let l = parse_line(&tokens).map_err(|e| format!("ipvsadm input line {lineno}: {e}"))?;
        let Some((key, v6)) = l.key else {
            return Err(format!(
                "ipvsadm input line {lineno}: no -t, -u, --sctp-service or -f service: {line}"
            ));
        };
        if add_service {
            services
                .add(key, v6, l.sched.as_deref(), &l.flags)
                .map_err(|e| format!("ipvsadm input line {lineno}: {e}"))?;
        } else {
            let Some(&(_, idx)) = services.all.iter().find(|(k, _)| *k == key) else {
                return Err(format!(
                    "ipvsadm input line {lineno}: real server for unknown service {key}"
                ));
            };
            let Some((addr, port)) = l.real else {
                return Err(format!("ipvsadm input line {lineno}: no -r real server"));
            };
            services.add_dest(
                idx,
                Server {
                    addr,
                    port,
                    weight: l.weight.unwrap_or(1),
                },
            );
        }
    }
    Ok(services.mh)
}

/// Forwarding methods as `ipvsadm -L` names them.
const FORWARD_NAMES: [&str; 4] = ["Masq", "Local", "Tunnel", "Route"];

/// `ADDR:PORT` of a listing, with a hint for non-numeric listings.
fn listing_host_port(s: &str) -> Result<(Addr, u16), String> {
    parse_host_port(s).map_err(|e| format!("{e} (list with -n for numeric addresses)"))
}

/// A service line of the listing format, e.g. `TCP  10.0.0.1:80 mh
/// (mh-fallback,mh-port) persistent 300`, `FWM  7 IPv6 mh`: the key, the
/// family, the scheduler and its flags. Words after the flags are skipped.
fn listing_service<'a>(tokens: &[&'a str]) -> Result<(String, bool, &'a str, Vec<String>), String> {
    let (key, v6, rest) = if tokens[0] == "FWM" {
        let v = tokens.get(1).ok_or("'FWM' without a mark")?;
        let mark: u32 = v.parse().map_err(|_| format!("bad fwmark '{v}'"))?;
        if tokens.get(2) == Some(&"IPv6") {
            (format!("fwm6:{mark}"), true, &tokens[3..])
        } else {
            (format!("fwm:{mark}"), false, &tokens[2..])
        }
    } else {
        let hp = tokens
            .get(1)
            .ok_or_else(|| format!("'{}' without an address", tokens[0]))?;
        let (a, p) = listing_host_port(hp)?;
        let kind = tokens[0].to_ascii_lowercase();
        (
            format!("{kind}:{}", HostPort(&a, p)),
            a.is_v6(),
            &tokens[2..],
        )
    };
    let sched = *rest
        .first()
        .ok_or_else(|| format!("no scheduler for service {key}"))?;
    let flags = match rest.get(1) {
        Some(f) if f.starts_with('(') => f
            .strip_prefix('(')
            .and_then(|f| f.strip_suffix(')'))
            .ok_or_else(|| format!("bad scheduler flags '{f}'"))?
            .split(',')
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    };
    Ok((key, v6, sched, flags))
}

/// A real server line of the listing format, e.g.
/// `-> 10.0.0.2:80  Masq  1  0  0` (the connection counts are skipped).
fn listing_dest(tokens: &[&str]) -> Result<Server, String> {
    let hp = tokens.get(1).ok_or("'->' without an address")?;
    let (addr, port) = listing_host_port(hp)?;
    let fwd = tokens
        .get(2)
        .ok_or_else(|| format!("no forwarding method for real server {hp}"))?;
    if !FORWARD_NAMES.contains(fwd) {
        return Err(format!(
            "unknown forwarding method '{fwd}' for real server {hp} (expected {})",
            FORWARD_NAMES.join(", ")
        ));
    }
    let v = tokens
        .get(3)
        .ok_or_else(|| format!("no weight for real server {hp}"))?;
    let weight: i32 = v.parse().map_err(|_| format!("bad weight '{v}'"))?;
    if weight < 0 {
        return Err(format!("negative weight {weight}"));
    }
    Ok(Server { addr, port, weight })
}

/// The listing format (`ipvsadm -Ln [--nosort]`). The header lines are
/// optional, but if present they must be those of the plain listing, so
/// that the columns read are the scheduler and the weight.
fn parse_listing(text: &str) -> Result<Vec<Service>, String> {
    let columns = |lineno: usize, line: &str| {
        format!(
            "ipvsadm input line {lineno}: not the columns of a plain 'ipvsadm -Ln' \
             (without --stats, --rate, --thresholds, --persistent-conn or --tun-info): {line}"
        )
    };
    let mut services = Services::default();
    // The service the next '->' lines belong to: `None` before the first
    // service, `Some(None)` for a service that is not mh.
    let mut current: Option<Option<usize>> = None;
    let mut seen_any = false;
    for (lineno, line) in lines(text) {
        let tokens: Vec<&str> = line.split_whitespace().collect();
        let at = |e: String| format!("ipvsadm input line {lineno}: {e}");
        match tokens[0] {
            "IP" if line.starts_with("IP Virtual Server") => {}
            "Prot" => {
                if tokens[1..] != ["LocalAddress:Port", "Scheduler", "Flags"] {
                    return Err(columns(lineno, line));
                }
            }
            "->" if tokens.get(1) == Some(&"RemoteAddress:Port") => {
                if tokens.get(2..4) != Some(&["Forward", "Weight"][..]) {
                    return Err(columns(lineno, line));
                }
            }
            "->" => {
                let Some(idx) = current else {
                    return Err(at(format!("real server before any service: {line}")));
                };
                services.add_dest(idx, listing_dest(&tokens).map_err(at)?);
            }
            "TCP" | "UDP" | "SCTP" | "FWM" => {
                let (key, v6, sched, flags) = listing_service(&tokens).map_err(at)?;
                current = Some(services.add(key, v6, Some(sched), &flags).map_err(at)?);
            }
            _ if !seen_any => {
                return Err(at(format!(
                    "neither 'ipvsadm -Sn' nor 'ipvsadm -Ln --nosort' output: {line}"
                )))
            }
            _ => {
                return Err(at(format!(
                    "expected a service (TCP, UDP, SCTP or FWM) or a '->' real server \
                     (is this 'ipvsadm -Ln' output?): {line}"
                )))
            }
        }
        seen_any = true;
    }
    Ok(services.mh)
}

/// Normalises a `--service` selector so it compares equal to
/// [`Service::id`]: `tcp:ADDR:PORT`, `udp:...`, `sctp:...`, `fwm:N`,
/// `fwm6:N`. IPv6 addresses may be written with or without brackets.
pub(crate) fn normalise_selector(sel: &str) -> Result<String, String> {
    let bad = || {
        format!(
            "bad --service '{sel}' (use tcp:ADDR:PORT, udp:ADDR:PORT, sctp:ADDR:PORT, fwm:MARK, fwm6:MARK or a number)"
        )
    };
    let (kind, rest) = sel.split_once(':').ok_or_else(bad)?;
    match kind {
        "tcp" | "udp" | "sctp" => {
            let (a, p) = match parse_host_port(rest) {
                Ok(v) => v,
                Err(_) => {
                    // Unbracketed IPv6: the last colon starts the port.
                    let (a, p) = rest.rsplit_once(':').ok_or_else(bad)?;
                    let addr = parse_addr(a).map_err(|_| bad())?;
                    (addr, p.parse::<u16>().map_err(|_| bad())?)
                }
            };
            Ok(format!("{kind}:{}", HostPort(&a, p)))
        }
        "fwm" | "fwm6" => {
            let mark: u32 = rest.parse().map_err(|_| bad())?;
            Ok(format!("{kind}:{mark}"))
        }
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
-A -t 10.0.0.1:80 -s mh -b mh-port,mh-fallback
-a -t 10.0.0.1:80 -r 10.1.0.2:8080 -m -w 3
-a -t 10.0.0.1:80 -r 10.1.0.1:8080 -m -w 1
-A -t 10.0.0.1:443 -s rr
-a -t 10.0.0.1:443 -r 10.1.0.9:443 -g -w 1
-A -u [2001:db8::1]:53 -s mh
-a -u [2001:db8::1]:53 -r [2001:db8::2]:53 -g -w 0
-A -f 7 -s mh -p 300
-a -f 7 -r 10.1.0.2:0 -g -w 1
-A -f 7 -6 -s mh
-a -f 7 -6 -r [2001:db8::5]:0 -i -w 2 --tun-type gue --tun-port 6080 --tun-nocsum
";

    #[test]
    fn sample() {
        let s = parse(SAMPLE).unwrap();
        let ids: Vec<_> = s.iter().map(|x| x.id.as_str()).collect();
        assert_eq!(
            ids,
            ["tcp:10.0.0.1:80", "udp:[2001:db8::1]:53", "fwm:7", "fwm6:7"]
        );
        assert!(s[0].mh_port && s[0].mh_fallback);
        assert_eq!(s[0].flags, FLAG1 | FLAG2);
        assert!(!s[0].flag3());
        assert!(!s[1].mh_port && !s[1].mh_fallback);
        assert_eq!(s[1].flags, 0);
        assert_eq!(s[0].dests.len(), 2);
        assert_eq!(s[0].dests[0].weight, 3);
        assert_eq!(s[0].dests[0].port, 8080);
        assert_eq!(s[1].dests[0].weight, 0);
        assert!(s[1].v6 && !s[2].v6 && s[3].v6);
        assert_eq!(s[3].dests[0].weight, 2);
    }

    const LISTING: &str = "\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  10.0.0.1:80 mh (mh-fallback,mh-port) persistent 300 mask 255.255.255.0
  -> 10.1.0.2:8080                Masq    3      0          0
  -> 10.1.0.1:8080                Masq    1      0          0
TCP  10.0.0.1:443 rr
  -> 10.1.0.9:443                 Route   1      0          0
UDP  [2001:db8::1]:53 mh
  -> [2001:db8::2]:53             Route   0      0          0
FWM  7 mh persistent 300
  -> 10.1.0.2:0                   Route   1      0          0
FWM  7 IPv6 mh (flag-2)
  -> [2001:db8::5]:0              Tunnel  2      0          0
SCTP  10.0.0.1:9 mh
TCP  10.0.0.1:81 mh
  -> [2001:db8::7]:81             Tunnel  1      0          0
";

    #[test]
    fn listing() {
        let s = parse(LISTING).unwrap();
        let ids: Vec<_> = s.iter().map(|x| x.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "tcp:10.0.0.1:80",
                "udp:[2001:db8::1]:53",
                "fwm:7",
                "fwm6:7",
                "sctp:10.0.0.1:9",
                "tcp:10.0.0.1:81"
            ]
        );
        assert!(s[0].mh_port && s[0].mh_fallback);
        assert!(!s[1].mh_port && !s[1].mh_fallback);
        assert!(s[3].mh_port && !s[3].mh_fallback);
        let first: Vec<_> = s[0].dests.iter().map(|d| (d.port, d.weight)).collect();
        assert_eq!(first, [(8080, 3), (8080, 1)]);
        assert_eq!(s[0].dests[0].addr, Addr::V4([10, 1, 0, 2]));
        assert_eq!(s[1].dests[0].weight, 0);
        assert!(s[1].v6 && !s[2].v6 && s[3].v6 && !s[5].v6);
        assert_eq!(s[3].dests[0].weight, 2);
        assert!(s[4].dests.is_empty());
        assert_eq!(
            s[5].hashed_dests()[0].addr,
            Addr::V4([0x20, 0x01, 0x0d, 0xb8])
        );
        // Without the header lines, and as the save format gives it.
        let body: String = LISTING.lines().skip(3).map(|l| format!("{l}\n")).collect();
        let t = parse(&body).unwrap();
        assert_eq!(t.len(), s.len());
        let u = parse(SAMPLE).unwrap();
        for (a, b) in s.iter().zip(&u) {
            assert_eq!(a.id, b.id);
            assert_eq!((a.v6, a.mh_fallback), (b.v6, b.mh_fallback));
            assert_eq!(a.dests, b.dests);
        }
    }

    #[test]
    fn scheduler_flags() {
        // As ipvsadm prints them for mh (flag-3 alone as a bare -b, with
        // other flags not at all), and the generic names ipvsadm accepts
        // (which hand-written input may have).
        for (input, bits) in [
            ("-A -t 10.0.0.1:80 -s mh -b \n", FLAG3),
            ("-A -t 10.0.0.1:80 -s mh -b -p 300\n", FLAG3),
            ("-A -t 10.0.0.1:80 -s mh -b mh-port\n", FLAG2),
            ("-A -t 10.0.0.1:80 -s mh -b mh-fallback,mh-port,flag-3\n", 7),
            ("-A -t 10.0.0.1:80 -s mh -b flag-3\n", FLAG3),
            ("-A -t 10.0.0.1:80 -s mh -b flag-1,flag-2\n", FLAG1 | FLAG2),
            ("-A -t 10.0.0.1:80 -s mh --sched-flags flag-3,mh-port\n", 6),
            ("TCP  10.0.0.1:80 mh (mh-fallback,mh-port,flag-3)\n", 7),
            ("TCP  10.0.0.1:80 mh (flag-3) persistent 300\n", FLAG3),
            ("TCP  10.0.0.1:80 mh (mh-port)\n", FLAG2),
            ("TCP  10.0.0.1:80 mh\n", 0),
        ] {
            let s = parse(input).unwrap();
            assert_eq!(s[0].flags, bits, "{input}");
            assert_eq!(s[0].flag3(), bits & FLAG3 != 0, "{input}");
            assert_eq!(s[0].mh_port, bits & FLAG2 != 0, "{input}");
            assert_eq!(s[0].mh_fallback, bits & FLAG1 != 0, "{input}");
        }
    }

    #[test]
    fn listing_errors() {
        for bad in [
            "hello\n",
            "  -> 10.1.0.1:80  Masq 1 0 0\n",
            "TCP  10.0.0.1:80\n",
            "TCP  10.0.0.1:80 mh (mh-port\n",
            "TCP  web:http mh\n",
            "FWM  x mh\n",
            "FWM\n",
            "TCP  10.0.0.1:80 mh\n  -> 10.1.0.1:80  Bypass 1 0 0\n",
            "TCP  10.0.0.1:80 mh\n  -> 10.1.0.1:80  Masq\n",
            "TCP  10.0.0.1:80 mh\n  -> 10.1.0.1:80  Masq -1 0 0\n",
            "TCP  10.0.0.1:80 mh\n  -> 10.1.0.1:80  Masq x 0 0\n",
            "TCP  10.0.0.1:80 mh\n  -> 10.1.0.300:80  Masq 1 0 0\n",
            "TCP  10.0.0.1:80 mh\nTCP  10.0.0.1:80 rr\n",
            "TCP  10.0.0.1:80 mh\n-a -t 10.0.0.1:80 -r 10.1.0.1:80 -m -w 1\n",
            "-A -t 10.0.0.1:80 -s mh\n  -> 10.1.0.1:80  Masq 1 0 0\n",
            "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n",
            "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port\n",
            "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port  Forward TunnelInfo    Weight ActiveConn InActConn\n",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        // The numeric hint for a listing without -n.
        let e = parse("TCP  web:http mh\n").unwrap_err();
        assert!(e.contains("-n"), "{e}");
    }

    #[test]
    fn errors() {
        assert!(parse("hello world\n").is_err());
        assert!(parse("-a -t 10.0.0.1:80 -r 10.1.0.2:80 -m -w 1\n").is_err());
        assert!(
            parse("-A -t 10.0.0.1:80 -s mh\n-a -t 10.0.0.1:80 -r 10.1.0.300:80 -w 1\n").is_err()
        );
        assert!(
            parse("-A -t 10.0.0.1:80 -s mh\n-a -t 10.0.0.1:80 -r 10.1.0.3:80 -w -1\n").is_err()
        );
        assert!(parse("-A -s mh\n").is_err());
        assert!(parse("").unwrap().is_empty());
    }

    #[test]
    fn mixed_family_hashing() {
        let s = parse("-A -t 10.0.0.1:80 -s mh\n-a -t 10.0.0.1:80 -r [2001:db8::7]:80 -i -w 1\n")
            .unwrap();
        assert_eq!(
            s[0].hashed_dests()[0].addr,
            Addr::V4([0x20, 0x01, 0x0d, 0xb8])
        );
    }

    #[test]
    fn selectors() {
        assert_eq!(
            normalise_selector("tcp:10.0.0.1:80").unwrap(),
            "tcp:10.0.0.1:80"
        );
        assert_eq!(
            normalise_selector("udp:2001:db8:0::1:53").unwrap(),
            "udp:[2001:db8::1]:53"
        );
        assert_eq!(
            normalise_selector("udp:[2001:db8::1]:53").unwrap(),
            "udp:[2001:db8::1]:53"
        );
        assert_eq!(normalise_selector("fwm:7").unwrap(), "fwm:7");
        assert!(normalise_selector("icmp:1").is_err());
        assert!(normalise_selector("tcp").is_err());
    }
}
