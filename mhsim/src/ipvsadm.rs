// SPDX-License-Identifier: GPL-2.0

//! Reading the mh services out of `ipvsadm -Sn` (save, numeric) output.
//!
//! Only what the scheduler needs is read: the service identity, its `-s`
//! scheduler, its `-b` scheduler flags, and each real server's address,
//! port and weight, in the order printed. Other options are skipped.

use maglev::{Addr, Server};

use crate::spec::{parse_addr, parse_host_port, HostPort};

/// One mh virtual service.
#[derive(Clone, Debug)]
pub(crate) struct Service {
    /// Selector, e.g. `tcp:10.0.0.1:80`, `udp:[2001:db8::1]:53`, `fwm:7`
    /// (`fwm6:7` for an IPv6 fwmark service).
    pub(crate) id: String,
    /// Whether the service is IPv6.
    pub(crate) v6: bool,
    /// `-b mh-port`: clients are hashed with their port.
    pub(crate) mh_port: bool,
    /// `-b mh-fallback`: unavailable servers are skipped.
    pub(crate) mh_fallback: bool,
    /// Real servers, in the order printed.
    pub(crate) dests: Vec<Server>,
}

impl Service {
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
                l.flags = arg(i)?.split(',').map(str::to_string).collect();
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

/// The mh services in `text`, in the order they appear.
pub(crate) fn parse(text: &str) -> Result<Vec<Service>, String> {
    // Every service, mh or not, so that real servers of other services can
    // be told apart from real servers of unknown ones.
    let mut all: Vec<(String, Option<usize>)> = Vec::new();
    let mut mh: Vec<Service> = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let lineno = n + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
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
            if all.iter().any(|(k, _)| *k == key) {
                return Err(format!(
                    "ipvsadm input line {lineno}: service {key} defined twice"
                ));
            }
            let is_mh = l.sched.as_deref() == Some("mh");
            let idx = if is_mh {
                let has = |names: &[&str]| l.flags.iter().any(|f| names.contains(&f.as_str()));
                mh.push(Service {
                    id: key.clone(),
                    v6,
                    mh_port: has(&["mh-port", "flag-2"]),
                    mh_fallback: has(&["mh-fallback", "flag-1"]),
                    dests: Vec::new(),
                });
                Some(mh.len() - 1)
            } else {
                None
            };
            all.push((key, idx));
        } else {
            let Some((_, idx)) = all.iter().find(|(k, _)| *k == key) else {
                return Err(format!(
                    "ipvsadm input line {lineno}: real server for unknown service {key}"
                ));
            };
            let Some((addr, port)) = l.real else {
                return Err(format!("ipvsadm input line {lineno}: no -r real server"));
            };
            if let Some(i) = *idx {
                mh[i].dests.push(Server {
                    addr,
                    port,
                    weight: l.weight.unwrap_or(1),
                });
            }
        }
    }
    Ok(mh)
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
        assert!(!s[1].mh_port && !s[1].mh_fallback);
        assert_eq!(s[0].dests.len(), 2);
        assert_eq!(s[0].dests[0].weight, 3);
        assert_eq!(s[0].dests[0].port, 8080);
        assert_eq!(s[1].dests[0].weight, 0);
        assert!(s[1].v6 && !s[2].v6 && s[3].v6);
        assert_eq!(s[3].dests[0].weight, 2);
    }

    #[test]
    fn errors() {
        assert!(parse("TCP  10.0.0.1:80 mh\n").is_err());
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
