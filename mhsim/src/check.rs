// SPDX-License-Identifier: GPL-2.0

//! `mhsim check`: does the kernel's `/proc/net/ip_vs_mh` agree with the
//! ipvsadm configuration and with the model?
//!
//! For each `S` service of the proc file the same mh service is looked up in
//! the ipvsadm input; its table is recomputed with the proc file's size and
//! order from the ipvsadm servers and weights (for `list` order in the order
//! of the `D` lines, which is the kernel's list order) and compared server
//! by server: weight (ipvsadm against the `D` line), slots (model against
//! the `D` line) and the set of servers.

use std::collections::HashSet;
use std::fmt::Write as _;

use maglev::{Addr, Order, TableSize};
use serde_json::{json, Value};

use crate::ipvsadm;
use crate::sim::{self, Input};
use crate::spec::{parse_host_port, HostPort};

/// The proc file format versions this reads: 2 added `bytes` to `S` lines.
pub(crate) const PROC_VERSIONS: [&str; 2] = ["1", "2"];

/// The packet-path and rebuild counters of an `S` line (reported, not
/// compared).
#[derive(Clone, Copy, Debug)]
struct Counters {
    rebuilds: u64,
    last_rebuild: i64,
    moved: u64,
    decisions: u64,
    fallbacks: u64,
    refusals: u64,
    /// The memory the module holds for the service (version 2 on).
    bytes: Option<u64>,
}

/// A `D` line.
#[derive(Clone, Debug)]
struct ProcDest {
    addr: Addr,
    port: u16,
    weight: i32,
    slots: u32,
}

/// An `S` line and its `D` lines.
#[derive(Clone, Debug)]
pub(crate) struct ProcService {
    /// Same form as [`ipvsadm::Service::id`], e.g. `tcp:10.0.1.1:80`.
    key: String,
    size: TableSize,
    order: Order,
    counters: Counters,
    dests: Vec<ProcDest>,
}

/// `tcp:10.0.1.1:80` -> (`TCP`, `10.0.1.1:80`); `fwm6:7` -> (`FWM6`, `7`).
fn display(key: &str) -> (String, &str) {
    let (kind, rest) = key.split_once(':').unwrap_or((key, ""));
    (kind.to_ascii_uppercase(), rest)
}

/// A share column: `N.NN`.
fn check_percent(s: &str) -> bool {
    matches!(s.split_once('.'), Some((i, f))
        if !i.is_empty()
            && i.bytes().all(|b| b.is_ascii_digit())
            && f.len() == 2
            && f.bytes().all(|b| b.is_ascii_digit()))
}

fn number<T: std::str::FromStr>(s: &str, what: &str) -> Result<T, String> {
    if s.starts_with('+') {
        return Err(format!("bad {what} '{s}'"));
    }
    s.parse().map_err(|_| format!("bad {what} '{s}'"))
}

fn parse_s(tokens: &[&str], version: &str) -> Result<ProcService, String> {
    let (fields, bytes) = if version == "1" {
        (11, "")
    } else {
        (12, " bytes")
    };
    if tokens.len() != fields {
        return Err(format!(
            "an 'S' line has {fields} fields (S proto address size order rebuilds last_rebuild \
             moved decisions fallbacks refusals{bytes}), this one {}",
            tokens.len()
        ));
    }
    let key = match tokens[1] {
        "TCP" | "UDP" | "SCTP" => {
            let (a, p) = parse_host_port(tokens[2])?;
            format!("{}:{}", tokens[1].to_ascii_lowercase(), HostPort(&a, p))
        }
        "FWM" | "FWM6" => {
            let mark: u32 = number(tokens[2], "fwmark")?;
            format!("{}:{mark}", tokens[1].to_ascii_lowercase())
        }
        p => {
            return Err(format!(
                "unknown protocol '{p}' (expected TCP, UDP, SCTP, FWM or FWM6)"
            ))
        }
    };
    let size = number::<u32>(tokens[3], "table size")
        .ok()
        .and_then(TableSize::new)
        .ok_or_else(|| format!("bad table size '{}'", tokens[3]))?;
    let order = match tokens[4] {
        "sorted" => Order::Sorted,
        "list" => Order::List,
        o => return Err(format!("bad order '{o}' (expected sorted or list)")),
    };
    let counters = Counters {
        rebuilds: number(tokens[5], "rebuilds")?,
        last_rebuild: number(tokens[6], "last_rebuild")?,
        moved: number(tokens[7], "moved")?,
        decisions: number(tokens[8], "decisions")?,
        fallbacks: number(tokens[9], "fallbacks")?,
        refusals: number(tokens[10], "refusals")?,
        bytes: match tokens.get(11) {
            Some(t) => Some(number(t, "bytes")?),
            None => None,
        },
    };
    Ok(ProcService {
        key,
        size,
        order,
        counters,
        dests: Vec::new(),
    })
}

fn parse_d(tokens: &[&str]) -> Result<ProcDest, String> {
    if tokens.len() != 6 {
        return Err(format!(
            "a 'D' line has 6 fields (D address weight slots slot_share weight_share), \
             this one {}",
            tokens.len()
        ));
    }
    let (addr, port) = parse_host_port(tokens[1])?;
    let weight = number(tokens[2], "weight")?;
    let slots = number(tokens[3], "slot count")?;
    for (s, what) in [(tokens[4], "slot_share"), (tokens[5], "weight_share")] {
        if !check_percent(s) {
            return Err(format!("bad {what} '{s}' (expected N.NN)"));
        }
    }
    Ok(ProcDest {
        addr,
        port,
        weight,
        slots,
    })
}

/// The services of a `/proc/net/ip_vs_mh` file; `name` names it in
/// messages.
pub(crate) fn parse_proc(text: &str, name: &str) -> Result<Vec<ProcService>, String> {
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(n, l)| (n + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty());
    let not_proc = || {
        format!("{name}: not /proc/net/ip_vs_mh output (its first line is '# ip_vs_mh_rs VERSION')")
    };
    let (_, first) = lines.next().ok_or_else(|| format!("{name} is empty"))?;
    let version = first
        .strip_prefix('#')
        .map(str::split_whitespace)
        .and_then(|mut w| match (w.next(), w.next(), w.next()) {
            (Some("ip_vs_mh_rs"), Some(v), None) => Some(v),
            _ => None,
        })
        .ok_or_else(not_proc)?;
    if !PROC_VERSIONS.contains(&version) {
        return Err(format!(
            "{name}: format version {version} is not supported (mhsim reads versions {})",
            PROC_VERSIONS.join(" and ")
        ));
    }
    let mut services: Vec<ProcService> = Vec::new();
    for (lineno, line) in lines {
        if line.starts_with('#') {
            continue;
        }
        let at = |e: String| format!("{name} line {lineno}: {e}");
        let tokens: Vec<&str> = line.split_whitespace().collect();
        match tokens[0] {
            "S" => {
                let s = parse_s(&tokens, version).map_err(at)?;
                if services.iter().any(|o| o.key == s.key) {
                    let (p, a) = display(&s.key);
                    return Err(at(format!("service {p} {a} listed twice")));
                }
                services.push(s);
            }
            "D" => {
                let d = parse_d(&tokens).map_err(at)?;
                let Some(s) = services.last_mut() else {
                    return Err(at("a 'D' line before any 'S' line".into()));
                };
                if s.dests.iter().any(|o| (o.addr, o.port) == (d.addr, d.port)) {
                    return Err(at(format!(
                        "real server {} listed twice",
                        HostPort(&d.addr, d.port)
                    )));
                }
                s.dests.push(d);
            }
            _ => {
                return Err(at(format!(
                    "expected an 'S' or 'D' line or a '#' comment: {line}"
                )))
            }
        }
    }
    Ok(services)
}

/// One difference between the kernel and the ipvsadm input or the model.
enum Difference {
    /// A real server in the proc file only.
    OnlyInKernel {
        server: String,
        weight: i32,
        slots: u32,
    },
    /// A real server in the ipvsadm input only.
    OnlyInIpvsadm { server: String, weight: i32 },
    /// The proc file's weight is not the ipvsadm input's.
    Weight {
        server: String,
        kernel: i32,
        ipvsadm: i32,
    },
    /// The proc file's slot count is not the model's.
    Slots {
        server: String,
        kernel: u32,
        model: u32,
    },
    /// The model could not be built.
    Model(String),
}

enum Status {
    Ok,
    Mismatch,
    /// In the proc file only.
    NotInIpvsadm,
    /// In the ipvsadm input only.
    NotInProc,
}

/// The verdict on one service.
struct Entry {
    key: String,
    status: Status,
    /// From the proc file (absent for a service it lacks).
    proc: Option<ProcService>,
    /// Real servers compared (the proc file's), or the ipvsadm input's for
    /// a service the proc file lacks.
    servers: usize,
    /// Whether slot counts were compared (not when the server sets differ).
    slots_compared: bool,
    diffs: Vec<Difference>,
}

/// The verdict on every service.
pub(crate) struct Report {
    entries: Vec<Entry>,
    proc_name: String,
}

impl Report {
    /// Every service is OK.
    pub(crate) fn ok(&self) -> bool {
        self.entries.iter().all(|e| matches!(e.status, Status::Ok))
    }
}

/// Compares one service present in both inputs.
fn compare(p: &ProcService, s: &ipvsadm::Service) -> Entry {
    let mut diffs = Vec::new();
    let id = |a: &Addr, port: u16| HostPort(a, port).to_string();
    let conf = |d: &ProcDest| {
        s.dests
            .iter()
            .find(|x| (x.addr, x.port) == (d.addr, d.port))
    };
    for d in &p.dests {
        match conf(d) {
            None => diffs.push(Difference::OnlyInKernel {
                server: id(&d.addr, d.port),
                weight: d.weight,
                slots: d.slots,
            }),
            Some(x) if x.weight != d.weight => diffs.push(Difference::Weight {
                server: id(&d.addr, d.port),
                kernel: d.weight,
                ipvsadm: x.weight,
            }),
            Some(_) => {}
        }
    }
    for x in &s.dests {
        if !p.dests.iter().any(|d| (d.addr, d.port) == (x.addr, x.port)) {
            diffs.push(Difference::OnlyInIpvsadm {
                server: id(&x.addr, x.port),
                weight: x.weight,
            });
        }
    }
    let same_set = !diffs.iter().any(|d| {
        matches!(
            d,
            Difference::OnlyInKernel { .. } | Difference::OnlyInIpvsadm { .. }
        )
    });
    if same_set {
        // The ipvsadm servers and weights, in the kernel's list order for
        // 'list' (any order does for 'sorted').
        let mut svc = s.clone();
        if p.order == Order::List {
            svc.dests = p.dests.iter().filter_map(|d| conf(d).copied()).collect();
        }
        let input = Input {
            service: Some(svc.id.clone()),
            hashed: svc.hashed_dests(),
            servers: svc.dests.clone(),
            mh_port: svc.mh_port,
            mh_fallback: svc.mh_fallback,
        };
        match sim::build(&input, p.size, p.order) {
            Ok(b) => {
                // Per server in the proc file's order.
                for d in &p.dests {
                    let Some(i) = input
                        .servers
                        .iter()
                        .position(|x| (x.addr, x.port) == (d.addr, d.port))
                    else {
                        continue;
                    };
                    if b.slots[i] != d.slots {
                        diffs.push(Difference::Slots {
                            server: id(&d.addr, d.port),
                            kernel: d.slots,
                            model: b.slots[i],
                        });
                    }
                }
            }
            Err(e) => diffs.push(Difference::Model(e)),
        }
    }
    // Weights first, then slots, then servers of one side only, each in
    // the proc file's order.
    diffs.sort_by_key(|d| match d {
        Difference::Weight { .. } => 0,
        Difference::Slots { .. } => 1,
        Difference::OnlyInKernel { .. } => 2,
        Difference::OnlyInIpvsadm { .. } => 3,
        Difference::Model(_) => 4,
    });
    Entry {
        key: p.key.clone(),
        status: if diffs.is_empty() {
            Status::Ok
        } else {
            Status::Mismatch
        },
        proc: Some(p.clone()),
        servers: p.dests.len(),
        slots_compared: same_set,
        diffs,
    }
}

/// Refuses an ipvsadm input with a real server twice in one service (the
/// kernel cannot have that, so the comparison would mean nothing).
pub(crate) fn validate_ipvsadm(ipvs: &[ipvsadm::Service]) -> Result<(), String> {
    for s in ipvs {
        let mut seen = HashSet::new();
        for d in &s.dests {
            if !seen.insert((d.addr, d.port)) {
                let (p, a) = display(&s.id);
                return Err(format!(
                    "ipvsadm input: real server {} given twice for service {p} {a}",
                    HostPort(&d.addr, d.port)
                ));
            }
        }
    }
    Ok(())
}

/// Checks every service of the proc file against the ipvsadm input.
pub(crate) fn check(proc: &[ProcService], ipvs: &[ipvsadm::Service], proc_name: &str) -> Report {
    let mut entries: Vec<Entry> = proc
        .iter()
        .map(|p| match ipvs.iter().find(|s| s.id == p.key) {
            Some(s) => compare(p, s),
            None => Entry {
                key: p.key.clone(),
                status: Status::NotInIpvsadm,
                proc: Some(p.clone()),
                servers: p.dests.len(),
                slots_compared: false,
                diffs: Vec::new(),
            },
        })
        .collect();
    let in_proc: HashSet<&str> = proc.iter().map(|p| p.key.as_str()).collect();
    for s in ipvs.iter().filter(|s| !in_proc.contains(s.id.as_str())) {
        entries.push(Entry {
            key: s.id.clone(),
            status: Status::NotInProc,
            proc: None,
            servers: s.dests.len(),
            slots_compared: false,
            diffs: Vec::new(),
        });
    }
    Report {
        entries,
        proc_name: proc_name.to_string(),
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The summary after `MISMATCH ...: `.
fn summary(diffs: &[Difference]) -> String {
    let count = |f: fn(&Difference) -> bool| diffs.iter().filter(|d| f(d)).count();
    let mut parts = Vec::new();
    let w = count(|d| matches!(d, Difference::Weight { .. }));
    if w > 0 {
        parts.push(format!(
            "weight of {} differs",
            plural(w, "server", "servers")
        ));
    }
    let s = count(|d| matches!(d, Difference::Slots { .. }));
    if s > 0 {
        parts.push(format!(
            "slots of {} differ",
            plural(s, "server", "servers")
        ));
    }
    let k = count(|d| matches!(d, Difference::OnlyInKernel { .. }));
    if k > 0 {
        parts.push(format!(
            "{} only in the kernel",
            plural(k, "server", "servers")
        ));
    }
    let i = count(|d| matches!(d, Difference::OnlyInIpvsadm { .. }));
    if i > 0 {
        parts.push(format!(
            "{} only in ipvsadm",
            plural(i, "server", "servers")
        ));
    }
    if count(|d| matches!(d, Difference::Model(_))) > 0 {
        parts.push("no model table".into());
    }
    parts.join(", ")
}

/// One line per service, detail lines indented under a `MISMATCH`.
pub(crate) fn text(r: &Report) -> String {
    let mut out = String::new();
    for e in &r.entries {
        let (proto, addr) = display(&e.key);
        match e.status {
            Status::Ok => {
                let (size, order) = e
                    .proc
                    .as_ref()
                    .map_or((0, "?"), |p| (p.size.slots(), sim::order_name(p.order)));
                let _ = writeln!(
                    out,
                    "OK {proto} {addr} size={size} order={order} servers={}",
                    e.servers
                );
            }
            Status::Mismatch => {
                let _ = writeln!(out, "MISMATCH {proto} {addr}: {}", summary(&e.diffs));
                for d in &e.diffs {
                    let _ = match d {
                        Difference::Weight {
                            server,
                            kernel,
                            ipvsadm,
                        } => writeln!(out, "  {server} weight kernel={kernel} ipvsadm={ipvsadm}"),
                        Difference::Slots {
                            server,
                            kernel,
                            model,
                        } => writeln!(out, "  {server} slots kernel={kernel} model={model}"),
                        Difference::OnlyInKernel {
                            server,
                            weight,
                            slots,
                        } => writeln!(
                            out,
                            "  {server} only in the kernel (weight {weight}, slots {slots})"
                        ),
                        Difference::OnlyInIpvsadm { server, weight } => {
                            writeln!(out, "  {server} only in ipvsadm (weight {weight})")
                        }
                        Difference::Model(m) => writeln!(out, "  model: {m}"),
                    };
                }
                if !e.slots_compared {
                    let _ = writeln!(out, "  slots not compared: the server sets differ");
                }
            }
            Status::NotInIpvsadm => {
                let _ = writeln!(
                    out,
                    "MISSING {proto} {addr}: in {}, not an mh service in the ipvsadm input",
                    r.proc_name
                );
            }
            Status::NotInProc => {
                let _ = writeln!(
                    out,
                    "MISSING {proto} {addr}: mh service in the ipvsadm input, not in {}",
                    r.proc_name
                );
            }
        }
    }
    out
}

fn difference_json(d: &Difference) -> Value {
    match d {
        Difference::Weight {
            server,
            kernel,
            ipvsadm,
        } => json!({"what": "weight", "server": server, "kernel": kernel, "ipvsadm": ipvsadm}),
        Difference::Slots {
            server,
            kernel,
            model,
        } => json!({"what": "slots", "server": server, "kernel": kernel, "model": model}),
        Difference::OnlyInKernel {
            server,
            weight,
            slots,
        } => json!({"what": "only_in_kernel", "server": server, "weight": weight, "slots": slots}),
        Difference::OnlyInIpvsadm { server, weight } => {
            json!({"what": "only_in_ipvsadm", "server": server, "weight": weight})
        }
        Difference::Model(m) => json!({"what": "model", "error": m}),
    }
}

/// `{"ok": ..., "proc": FILE, "services": [...]}`.
pub(crate) fn json(r: &Report) -> Value {
    let services: Vec<Value> = r
        .entries
        .iter()
        .map(|e| {
            let (proto, addr) = display(&e.key);
            let mut o = serde_json::Map::new();
            let status = match e.status {
                Status::Ok => "ok",
                Status::Mismatch => "mismatch",
                Status::NotInIpvsadm | Status::NotInProc => "missing",
            };
            o.insert("status".into(), json!(status));
            o.insert("service".into(), json!(e.key));
            o.insert("proto".into(), json!(proto));
            o.insert("address".into(), json!(addr));
            match e.status {
                Status::NotInIpvsadm => {
                    o.insert("missing_from".into(), json!("ipvsadm"));
                }
                Status::NotInProc => {
                    o.insert("missing_from".into(), json!("proc"));
                }
                _ => {}
            }
            if let Some(p) = &e.proc {
                let c = &p.counters;
                o.insert("size".into(), json!(p.size.slots()));
                o.insert("order".into(), json!(sim::order_name(p.order)));
                o.insert(
                    "counters".into(),
                    json!({
                        "rebuilds": c.rebuilds,
                        "last_rebuild": c.last_rebuild,
                        "moved": c.moved,
                        "decisions": c.decisions,
                        "fallbacks": c.fallbacks,
                        "refusals": c.refusals,
                        "bytes": c.bytes,
                    }),
                );
            }
            o.insert("servers".into(), json!(e.servers));
            if matches!(e.status, Status::Ok | Status::Mismatch) {
                o.insert("slots_compared".into(), json!(e.slots_compared));
                o.insert(
                    "differences".into(),
                    Value::Array(e.diffs.iter().map(difference_json).collect()),
                );
            }
            Value::Object(o)
        })
        .collect();
    json!({ "ok": r.ok(), "proc": r.proc_name, "services": services })
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = "\
# ip_vs_mh_rs 2
# S proto address size order rebuilds last_rebuild moved decisions fallbacks refusals bytes
# D address weight slots slot_share weight_share
S TCP 10.0.1.1:80 4093 sorted 5 23 829 50 0 0 8714
D 10.0.2.14:80 2 2046 49.98 50.00
D 10.0.2.13:80 1 1023 24.99 25.00
S FWM6 7 251 list 0 0 0 0 0 0 300
S UDP [2001:db8:0::1]:53 509 sorted 1 2 3 4 5 6 1500
D [2001:db8::2]:53 1 509 100.00 100.00
";

    const EXAMPLE_V1: &str = "\
# ip_vs_mh_rs 1
# S proto address size order rebuilds last_rebuild moved decisions fallbacks refusals
# D address weight slots slot_share weight_share
S TCP 10.0.1.1:80 4093 sorted 5 23 829 50 0 0
D 10.0.2.14:80 2 2046 49.98 50.00
";

    #[test]
    fn parses_the_proc_file() {
        let s = parse_proc(EXAMPLE, "x").unwrap();
        let keys: Vec<_> = s.iter().map(|x| x.key.as_str()).collect();
        assert_eq!(keys, ["tcp:10.0.1.1:80", "fwm6:7", "udp:[2001:db8::1]:53"]);
        assert_eq!(s[0].size.slots(), 4093);
        assert_eq!(s[1].order, Order::List);
        assert_eq!(s[0].dests.len(), 2);
        assert_eq!(s[0].dests[0].slots, 2046);
        assert_eq!(s[0].counters.moved, 829);
        assert!(s[1].dests.is_empty());
        assert_eq!(s[2].counters.refusals, 6);
        assert_eq!(s[0].counters.bytes, Some(8714));
        assert_eq!(display(&s[2].key), ("UDP".into(), "[2001:db8::1]:53"));
    }

    #[test]
    fn version_1_has_no_bytes() {
        let s = parse_proc(EXAMPLE_V1, "x").unwrap();
        assert_eq!(s[0].counters.bytes, None);
        assert_eq!(s[0].dests.len(), 1);
        // A version 2 line in a version 1 file is one field too many.
        let e = parse_proc(&EXAMPLE_V1.replace("0 0 0\n", "0 0 0 9\n"), "x").unwrap_err();
        assert!(e.contains("11 fields"), "{e}");
    }

    #[test]
    fn shares() {
        for good in ["0.00", "100.00", "49.98"] {
            assert!(check_percent(good), "{good}");
        }
        for bad in ["100", "1.5", ".50", "1.500", "-1.00", "a.bc"] {
            assert!(!check_percent(bad), "{bad}");
        }
    }

    #[test]
    fn versions() {
        assert!(parse_proc("# ip_vs_mh_rs 1\n", "x").unwrap().is_empty());
        assert!(parse_proc("# ip_vs_mh_rs 2\n", "x").unwrap().is_empty());
        let e = parse_proc("# ip_vs_mh_rs 3\n", "x").unwrap_err();
        assert!(e.contains("version 3"), "{e}");
        assert!(parse_proc("# ip_vs_mh_rs\n", "x").is_err());
        assert!(parse_proc("# something else 1\n", "x").is_err());
        assert!(parse_proc("", "x").is_err());
    }
}
