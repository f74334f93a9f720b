// SPDX-License-Identifier: GPL-2.0

//! `mhsim check`: does the kernel's `/proc/net/ip_vs_mh` agree with the
//! ipvsadm configuration and with the model?
//!
//! For each `S` service of the proc file the same mh service is looked up in
//! the ipvsadm input; its table is recomputed with the proc file's size and
//! mode from the ipvsadm servers and weights (for `list` and `upstream` in
//! the order of the `D` lines, which is the kernel's list order) and
//! compared server by server: weight (ipvsadm against the `D` line's
//! `table_weight`, or `weight` before format 3), slots (model against the
//! `D` line) and the set of servers. From format 3 on, a service with
//! `flag-3` in the ipvsadm input must also be in mode `upstream`.
//!
//! The proc file is read by its column headers (`# S ...`, `# D ...`), not
//! by position: each format version has columns it must have, and any other
//! column is skipped, so a newer module's additions do not break it.

use std::collections::HashSet;
use std::fmt::Write as _;

use maglev::{Addr, Order, Server, TableSize};
use serde_json::{json, Value};

use crate::ipvsadm;
use crate::sim::{self, Input, Model};
use crate::spec::{parse_host_port, HostPort};

/// The proc file format versions this reads: 2 added `bytes` to `S`
/// lines; 3 renamed `order` to `mode` (which adds `upstream`), added
/// `stale` to `S` lines and `table_weight` to `D` lines.
pub(crate) const PROC_VERSIONS: [u32; 3] = [1, 2, 3];

/// The two record types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    S,
    D,
}

impl Kind {
    fn letter(self) -> &'static str {
        match self {
            Kind::S => "S",
            Kind::D => "D",
        }
    }

    /// `an 'S' line`, `a 'D' line`.
    fn line(self) -> &'static str {
        match self {
            Kind::S => "an 'S' line",
            Kind::D => "a 'D' line",
        }
    }
}

/// The columns a version's records must have, as the module writes them
/// (also the layout of a version 1 or 2 file without column headers).
fn required(version: u32, kind: Kind) -> &'static [&'static str] {
    const S1: &[&str] = &[
        "S",
        "proto",
        "address",
        "size",
        "order",
        "rebuilds",
        "last_rebuild",
        "moved",
        "decisions",
        "fallbacks",
        "refusals",
    ];
    const S2: &[&str] = &[
        "S",
        "proto",
        "address",
        "size",
        "order",
        "rebuilds",
        "last_rebuild",
        "moved",
        "decisions",
        "fallbacks",
        "refusals",
        "bytes",
    ];
    const S3: &[&str] = &[
        "S",
        "proto",
        "address",
        "size",
        "mode",
        "rebuilds",
        "last_rebuild",
        "moved",
        "decisions",
        "fallbacks",
        "refusals",
        "bytes",
        "stale",
    ];
    const D1: &[&str] = &[
        "D",
        "address",
        "weight",
        "slots",
        "slot_share",
        "weight_share",
    ];
    const D3: &[&str] = &[
        "D",
        "address",
        "weight",
        "table_weight",
        "slots",
        "slot_share",
        "weight_share",
    ];
    match (version, kind) {
        (1, Kind::S) => S1,
        (2, Kind::S) => S2,
        (_, Kind::S) => S3,
        (1 | 2, Kind::D) => D1,
        (_, Kind::D) => D3,
    }
}

/// The column that says how the table is filled: `order` before version 3.
fn mode_column(version: u32) -> &'static str {
    if version >= 3 {
        "mode"
    } else {
        "order"
    }
}

/// The columns of one record type.
#[derive(Debug)]
struct Columns {
    names: Vec<String>,
    /// The line of the `# S ...` / `# D ...` header, `None` for a version
    /// 1 or 2 file without one.
    header: Option<usize>,
}

impl Columns {
    /// A header line's words (`S proto address ...`, without the `#`).
    fn from_header(words: &[&str], version: u32, kind: Kind, line: usize) -> Result<Self, String> {
        let k = kind.letter();
        let mut seen = HashSet::new();
        for w in words {
            if !seen.insert(*w) {
                return Err(format!("the '# {k}' column header names '{w}' twice"));
            }
        }
        let need = required(version, kind);
        if let Some(missing) = need.iter().find(|c| !words.contains(c)) {
            return Err(format!(
                "the '# {k}' column header lacks the column '{missing}' \
                 (format version {version} has: {})",
                need[1..].join(" ")
            ));
        }
        Ok(Columns {
            names: words.iter().map(|w| w.to_string()).collect(),
            header: Some(line),
        })
    }

    fn default_for(version: u32, kind: Kind) -> Self {
        Columns {
            names: required(version, kind)
                .iter()
                .map(|w| w.to_string())
                .collect(),
            header: None,
        }
    }
}

/// The columns for the next record of `kind`: its header's, or for a
/// version 1 or 2 file without one the version's own.
fn layout(slot: &mut Option<Columns>, version: u32, kind: Kind) -> Result<&Columns, String> {
    if slot.is_none() && version >= 3 {
        return Err(format!(
            "{} before the '# {} ...' column header (format version {version} names its columns)",
            kind.line(),
            kind.letter()
        ));
    }
    Ok(slot.get_or_insert_with(|| Columns::default_for(version, kind)))
}

/// A record's fields, by column name.
struct Record<'a> {
    cols: &'a Columns,
    tokens: &'a [&'a str],
}

impl<'a> Record<'a> {
    fn new(kind: Kind, cols: &'a Columns, tokens: &'a [&'a str]) -> Result<Self, String> {
        if tokens.len() != cols.names.len() {
            let per = match cols.header {
                Some(l) => format!(" as the header on line {l} says"),
                None => String::new(),
            };
            return Err(format!(
                "{} has {} fields{per} ({}), this one {}",
                kind.line(),
                cols.names.len(),
                cols.names.join(" "),
                tokens.len()
            ));
        }
        Ok(Record { cols, tokens })
    }

    /// The field of a column the header may lack.
    fn get(&self, name: &str) -> Option<&'a str> {
        let i = self.cols.names.iter().position(|n| n == name)?;
        self.tokens.get(i).copied()
    }

    /// The field of a required column.
    fn req(&self, name: &str) -> Result<&'a str, String> {
        self.get(name).ok_or_else(|| format!("no column '{name}'"))
    }
}

/// How the kernel fills a service's table: `mode` in format 3, `order`
/// (sorted or list) before.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Servers sorted by address and port (ip_vs_mh_rs's default).
    Sorted,
    /// Servers in IPVS list order (`list_order=1`).
    List,
    /// As the C ip_vs_mh: list order, a server drained to weight 0 keeps
    /// its slots at its last non-zero weight, and client ports are hashed
    /// only with `mh-port`.
    Upstream,
}

impl Mode {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Mode::Sorted => "sorted",
            Mode::List => "list",
            Mode::Upstream => "upstream",
        }
    }

    /// The population order of the model's table.
    fn order(self) -> Order {
        match self {
            Mode::Sorted => Order::Sorted,
            Mode::List | Mode::Upstream => Order::List,
        }
    }
}

/// The packet-path and rebuild counters of an `S` line (reported, not
/// compared).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Counters {
    pub(crate) rebuilds: u64,
    pub(crate) last_rebuild: i64,
    pub(crate) moved: u64,
    pub(crate) decisions: u64,
    pub(crate) fallbacks: u64,
    pub(crate) refusals: u64,
    /// The memory the module holds for the service (version 2 on).
    pub(crate) bytes: Option<u64>,
}

/// A `D` line.
#[derive(Clone, Debug)]
pub(crate) struct ProcDest {
    pub(crate) addr: Addr,
    pub(crate) port: u16,
    /// The server's current weight.
    pub(crate) weight: i32,
    /// The weight the serving table was built with (version 3; `weight`
    /// before).
    pub(crate) table_weight: i32,
    pub(crate) slots: u32,
    /// `N.NN` percent, as printed.
    pub(crate) slot_share: String,
    pub(crate) weight_share: String,
}

/// An `S` line and its `D` lines.
#[derive(Clone, Debug)]
pub(crate) struct ProcService {
    /// Same form as [`ipvsadm::Service::id`], e.g. `tcp:10.0.1.1:80`
    /// (`ip:...` for another protocol).
    pub(crate) key: String,
    /// `TCP`, `UDP`, `SCTP`, `IP`, `FWM` or `FWM6`.
    pub(crate) proto: String,
    /// `ADDR:PORT` (IPv6 in brackets), or the mark of an fwmark service.
    pub(crate) address: String,
    pub(crate) fwmark: Option<u32>,
    pub(crate) size: TableSize,
    pub(crate) mode: Mode,
    /// The format version of the file it came from.
    pub(crate) version: u32,
    pub(crate) counters: Counters,
    /// The last rebuild failed: the previous table serves (version 3).
    pub(crate) stale: bool,
    pub(crate) dests: Vec<ProcDest>,
}

/// A parsed `/proc/net/ip_vs_mh`.
#[derive(Clone, Debug)]
pub(crate) struct ProcFile {
    pub(crate) version: u32,
    pub(crate) services: Vec<ProcService>,
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

fn parse_s(r: &Record<'_>, version: u32) -> Result<ProcService, String> {
    let proto = r.req("proto")?;
    let address = r.req("address")?;
    let (key, address, fwmark) = match proto {
        "TCP" | "UDP" | "SCTP" | "IP" => {
            let (a, p) = parse_host_port(address)?;
            let hp = HostPort(&a, p).to_string();
            (format!("{}:{hp}", proto.to_ascii_lowercase()), hp, None)
        }
        "FWM" | "FWM6" => {
            let mark: u32 = number(address, "fwmark")?;
            (
                format!("{}:{mark}", proto.to_ascii_lowercase()),
                mark.to_string(),
                Some(mark),
            )
        }
        p => {
            return Err(format!(
                "unknown protocol '{p}' (expected TCP, UDP, SCTP, IP, FWM or FWM6)"
            ))
        }
    };
    let size_text = r.req("size")?;
    let size = number::<u32>(size_text, "table size")
        .ok()
        .and_then(TableSize::new)
        .ok_or_else(|| format!("bad table size '{size_text}'"))?;
    let col = mode_column(version);
    let mode = match r.req(col)? {
        "sorted" => Mode::Sorted,
        "list" => Mode::List,
        "upstream" if version >= 3 => Mode::Upstream,
        m if version >= 3 => {
            return Err(format!(
                "bad {col} '{m}' (expected sorted, list or upstream)"
            ))
        }
        m => return Err(format!("bad {col} '{m}' (expected sorted or list)")),
    };
    let num = |c: &str| r.req(c).and_then(|v| number::<u64>(v, c));
    let counters = Counters {
        rebuilds: num("rebuilds")?,
        last_rebuild: number(r.req("last_rebuild")?, "last_rebuild")?,
        moved: num("moved")?,
        decisions: num("decisions")?,
        fallbacks: num("fallbacks")?,
        refusals: num("refusals")?,
        bytes: match r.get("bytes") {
            Some(v) => Some(number(v, "bytes")?),
            None => None,
        },
    };
    let stale = match r.get("stale") {
        None | Some("0") => false,
        Some("1") => true,
        Some(v) => return Err(format!("bad stale '{v}' (expected 0 or 1)")),
    };
    Ok(ProcService {
        key,
        proto: proto.to_string(),
        address,
        fwmark,
        size,
        mode,
        version,
        counters,
        stale,
        dests: Vec::new(),
    })
}

fn parse_d(r: &Record<'_>) -> Result<ProcDest, String> {
    let (addr, port) = parse_host_port(r.req("address")?)?;
    let weight = number(r.req("weight")?, "weight")?;
    let table_weight = match r.get("table_weight") {
        Some(v) => number(v, "table_weight")?,
        None => weight,
    };
    let slots = number(r.req("slots")?, "slots")?;
    let mut shares = [String::new(), String::new()];
    for (out, what) in shares.iter_mut().zip(["slot_share", "weight_share"]) {
        let s = r.req(what)?;
        if !check_percent(s) {
            return Err(format!("bad {what} '{s}' (expected N.NN)"));
        }
        *out = s.to_string();
    }
    let [slot_share, weight_share] = shares;
    Ok(ProcDest {
        addr,
        port,
        weight,
        table_weight,
        slots,
        slot_share,
        weight_share,
    })
}

/// A `/proc/net/ip_vs_mh` file; `name` names it in messages.
pub(crate) fn parse_proc(text: &str, name: &str) -> Result<ProcFile, String> {
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(n, l)| (n + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty());
    let not_proc = || {
        format!("{name}: not /proc/net/ip_vs_mh output (its first line is '# ip_vs_mh_rs VERSION')")
    };
    let (_, first) = lines.next().ok_or_else(|| format!("{name} is empty"))?;
    let version_text = first
        .strip_prefix('#')
        .map(str::split_whitespace)
        .and_then(|mut w| match (w.next(), w.next(), w.next()) {
            (Some("ip_vs_mh_rs"), Some(v), None) => Some(v),
            _ => None,
        })
        .ok_or_else(not_proc)?;
    let Some(version) = PROC_VERSIONS
        .iter()
        .copied()
        .find(|v| v.to_string() == version_text)
    else {
        let known: Vec<String> = PROC_VERSIONS.iter().map(u32::to_string).collect();
        return Err(format!(
            "{name}: format version {version_text} is not supported (mhsim reads versions {})",
            known.join(", ")
        ));
    };
    let mut s_cols: Option<Columns> = None;
    let mut d_cols: Option<Columns> = None;
    let mut services: Vec<ProcService> = Vec::new();
    for (lineno, line) in lines {
        let at = |e: String| format!("{name} line {lineno}: {e}");
        if let Some(comment) = line.strip_prefix('#') {
            // A column header (`# S proto ...`, `# D address ...`), or
            // any other comment.
            let words: Vec<&str> = comment.split_whitespace().collect();
            let (kind, slot) = match words.first() {
                Some(&"S") => (Kind::S, &mut s_cols),
                Some(&"D") => (Kind::D, &mut d_cols),
                _ => continue,
            };
            if let Some(c) = slot {
                let k = kind.letter();
                return Err(at(match c.header {
                    Some(l) => format!("a second '# {k}' column header (the first is on line {l})"),
                    None => format!("the '# {k}' column header comes after the first {k} record"),
                }));
            }
            *slot = Some(Columns::from_header(&words, version, kind, lineno).map_err(at)?);
            continue;
        }
        let tokens: Vec<&str> = line.split_whitespace().collect();
        match tokens[0] {
            "S" => {
                let cols = layout(&mut s_cols, version, Kind::S).map_err(at)?;
                let r = Record::new(Kind::S, cols, &tokens).map_err(at)?;
                let s = parse_s(&r, version).map_err(at)?;
                if services.iter().any(|o| o.key == s.key) {
                    return Err(at(format!(
                        "service {} {} listed twice",
                        s.proto, s.address
                    )));
                }
                services.push(s);
            }
            "D" => {
                let cols = layout(&mut d_cols, version, Kind::D).map_err(at)?;
                let r = Record::new(Kind::D, cols, &tokens).map_err(at)?;
                let d = parse_d(&r).map_err(at)?;
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
    Ok(ProcFile { version, services })
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
    /// The weight the kernel's table was built with is not the ipvsadm
    /// input's.
    Weight {
        server: String,
        /// The `D` line's `table_weight` (`weight` before format 3).
        kernel: i32,
        /// The `D` line's `weight`: the kernel's current weight.
        current: i32,
        ipvsadm: i32,
    },
    /// The proc file's slot count is not the model's.
    Slots {
        server: String,
        kernel: u32,
        model: u32,
    },
    /// The service has `flag-3` in the ipvsadm input, but the kernel's
    /// table is not in upstream mode (format 3 on, where the module
    /// honours the flag).
    Mode { kernel: Mode },
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
    // flag-3 asks for upstream mode; without it the module's 'upstream'
    // parameter may still choose it, so only this way round is wrong.
    if p.version >= 3 && s.flag3() && p.mode != Mode::Upstream {
        diffs.push(Difference::Mode { kernel: p.mode });
    }
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
            // Upstream mode keeps a drained server's slots at its last
            // non-zero weight: only a positive ipvsadm weight must match.
            Some(x) if x.weight != d.table_weight && (p.mode != Mode::Upstream || x.weight > 0) => {
                diffs.push(Difference::Weight {
                    server: id(&d.addr, d.port),
                    kernel: d.table_weight,
                    current: d.weight,
                    ipvsadm: x.weight,
                })
            }
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
        // 'list' and 'upstream' (any order does for 'sorted'). In upstream
        // mode a server drained to weight 0 keeps the weight its table was
        // built with (the C scheduler's last_weight).
        let mut svc = s.clone();
        if p.mode != Mode::Sorted {
            svc.dests = p
                .dests
                .iter()
                .filter_map(|d| {
                    conf(d).map(|x| Server {
                        weight: if p.mode == Mode::Upstream && x.weight <= 0 {
                            d.table_weight
                        } else {
                            x.weight
                        },
                        ..*x
                    })
                })
                .collect();
        }
        let input = Input::from_service(&svc);
        match sim::build(&input, p.size, Model::table_only(p.mode.order())) {
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
        Difference::Mode { .. } => 0,
        Difference::Weight { .. } => 1,
        Difference::Slots { .. } => 2,
        Difference::OnlyInKernel { .. } => 3,
        Difference::OnlyInIpvsadm { .. } => 4,
        Difference::Model(_) => 5,
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
    if count(|d| matches!(d, Difference::Mode { .. })) > 0 {
        parts.push("mode differs".to_string());
    }
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
                    .map_or((0, "?"), |p| (p.size.slots(), p.mode.name()));
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
                        Difference::Mode { kernel } => writeln!(
                            out,
                            "  mode kernel={} ipvsadm=upstream (the service has flag-3)",
                            kernel.name()
                        ),
                        Difference::Weight {
                            server,
                            kernel,
                            current,
                            ipvsadm,
                        } => {
                            let pending = if current == kernel {
                                String::new()
                            } else {
                                format!(
                                    " (the kernel's current weight {current} is not in its table yet)"
                                )
                            };
                            writeln!(
                                out,
                                "  {server} weight kernel={kernel} ipvsadm={ipvsadm}{pending}"
                            )
                        }
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
                if e.proc.as_ref().is_some_and(|p| p.stale) {
                    let _ = writeln!(
                        out,
                        "  stale: the kernel's last rebuild failed, its previous table serves"
                    );
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
        Difference::Mode { kernel } => {
            json!({"what": "mode", "kernel": kernel.name(), "ipvsadm": "upstream"})
        }
        Difference::Weight {
            server,
            kernel,
            current,
            ipvsadm,
        } => json!({
            "what": "weight",
            "server": server,
            "kernel": kernel,
            "kernel_current": current,
            "ipvsadm": ipvsadm,
        }),
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
                o.insert("order".into(), json!(p.mode.name()));
                o.insert("mode".into(), json!(p.mode.name()));
                o.insert("stale".into(), json!(p.stale));
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

    const V3_HEADER: &str = "\
# ip_vs_mh_rs 3
# S proto address size mode rebuilds last_rebuild moved decisions fallbacks refusals bytes stale
# D address weight table_weight slots slot_share weight_share
";

    const EXAMPLE_V3: &str = "\
S TCP 10.0.1.1:80 4093 sorted 3 1234 812 100 0 0 8594 0
D 10.0.2.11:80 1 1 819 20.00 20.00
D 10.0.2.12:80 0 2 1637 39.99 40.00
S FWM 7 251 upstream 1 2 3 4 5 6 700 1
D 10.0.2.13:0 1 1 251 100.00 100.00
S IP [2001:db8::1]:0 509 list 0 0 0 0 0 0 400 0
";

    fn v3(body: &str) -> String {
        format!("{V3_HEADER}{body}")
    }

    #[test]
    fn parses_the_proc_file() {
        let f = parse_proc(EXAMPLE, "x").unwrap();
        assert_eq!(f.version, 2);
        let s = f.services;
        let keys: Vec<_> = s.iter().map(|x| x.key.as_str()).collect();
        assert_eq!(keys, ["tcp:10.0.1.1:80", "fwm6:7", "udp:[2001:db8::1]:53"]);
        assert_eq!(s[0].size.slots(), 4093);
        assert_eq!(s[1].mode, Mode::List);
        assert_eq!(s[0].dests.len(), 2);
        assert_eq!(s[0].dests[0].slots, 2046);
        // Before version 3 the table's weight is the weight.
        assert_eq!(s[0].dests[0].table_weight, 2);
        assert_eq!(s[0].counters.moved, 829);
        assert!(s[1].dests.is_empty());
        assert_eq!(s[2].counters.refusals, 6);
        assert_eq!(s[0].counters.bytes, Some(8714));
        assert!(!s[0].stale);
        assert_eq!(display(&s[2].key), ("UDP".into(), "[2001:db8::1]:53"));
        assert_eq!(s[2].address, "[2001:db8::1]:53");
        assert_eq!((s[1].proto.as_str(), s[1].address.as_str()), ("FWM6", "7"));
        assert_eq!(s[1].fwmark, Some(7));
    }

    #[test]
    fn version_1_has_no_bytes() {
        let s = parse_proc(EXAMPLE_V1, "x").unwrap().services;
        assert_eq!(s[0].counters.bytes, None);
        assert_eq!(s[0].dests.len(), 1);
        // A version 2 line in a version 1 file is one field too many.
        let e = parse_proc(&EXAMPLE_V1.replace("0 0 0\n", "0 0 0 9\n"), "x").unwrap_err();
        assert!(e.contains("11 fields"), "{e}");
        assert!(e.contains("line 4"), "{e}");
    }

    #[test]
    fn versions_1_and_2_need_no_column_headers() {
        let body: String = EXAMPLE.lines().skip(3).map(|l| format!("{l}\n")).collect();
        let f = parse_proc(&format!("# ip_vs_mh_rs 2\n{body}"), "x").unwrap();
        assert_eq!(f.services.len(), 3);
        assert_eq!(f.services[0].counters.bytes, Some(8714));
        // Version 3 does.
        let e = parse_proc(&format!("# ip_vs_mh_rs 3\n{EXAMPLE_V3}"), "x").unwrap_err();
        assert!(e.contains("line 2") && e.contains("column header"), "{e}");
    }

    #[test]
    fn version_3() {
        let f = parse_proc(&v3(EXAMPLE_V3), "x").unwrap();
        assert_eq!(f.version, 3);
        let s = &f.services;
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].mode, Mode::Sorted);
        assert_eq!(s[0].counters.bytes, Some(8594));
        assert_eq!(s[0].counters.last_rebuild, 1234);
        assert!(!s[0].stale);
        let d = &s[0].dests[1];
        assert_eq!((d.weight, d.table_weight, d.slots), (0, 2, 1637));
        assert_eq!(
            (d.slot_share.as_str(), d.weight_share.as_str()),
            ("39.99", "40.00")
        );
        assert_eq!(s[1].mode, Mode::Upstream);
        assert!(s[1].stale);
        assert_eq!(s[1].key, "fwm:7");
        assert_eq!(s[2].key, "ip:[2001:db8::1]:0");
        assert_eq!(s[2].proto, "IP");
        assert_eq!(s[2].mode, Mode::List);
        // 'upstream' is a version 3 mode; 'order' was sorted or list.
        let e = parse_proc(
            &EXAMPLE.replace("S FWM6 7 251 list", "S FWM6 7 251 upstream"),
            "x",
        )
        .unwrap_err();
        assert!(
            e.contains("bad order 'upstream'") && e.contains("line 7"),
            "{e}"
        );
        for (bad, needle) in [
            (
                "sorted 3 1234 812 100 0 0 8594 0",
                "sorted 3 1234 812 100 0 0 8594 2",
            ),
            ("sorted 3 1234", "random 3 1234"),
            ("D 10.0.2.12:80 0 2 ", "D 10.0.2.12:80 0 x "),
            ("0 0 8594 0", "0 0 -1 0"),
        ] {
            let e = parse_proc(&v3(&EXAMPLE_V3.replace(bad, needle)), "x").unwrap_err();
            assert!(e.starts_with("x line "), "{e}");
            assert!(e.contains("bad "), "{e}");
        }
        let e = parse_proc(&v3(&EXAMPLE_V3.replace("8594 0", "8594 2")), "x").unwrap_err();
        assert_eq!(e, "x line 4: bad stale '2' (expected 0 or 1)");
        let e = parse_proc(&v3(&EXAMPLE_V3.replace(" 0 2 1637", " 0 y 1637")), "x").unwrap_err();
        assert_eq!(e, "x line 6: bad table_weight 'y'");
        let e =
            parse_proc(&v3(&EXAMPLE_V3.replace("4093 sorted", "4093 random")), "x").unwrap_err();
        assert!(e.contains("bad mode 'random'"), "{e}");
    }

    #[test]
    fn unknown_columns_are_skipped() {
        // A new column at the end of S lines, and one in the middle of D
        // lines: read by name, the known ones are found where they are.
        let text = V3_HEADER
            .replace(" stale\n", " stale flows\n")
            .replace("table_weight slots", "table_weight colour slots")
            + &EXAMPLE_V3
                .replace(" 8594 0\n", " 8594 0 77\n")
                .replace(" 700 1\n", " 700 1 0\n")
                .replace(" 400 0\n", " 400 0 9\n")
                .replace(" 1 1 819 ", " 1 1 red 819 ")
                .replace(" 0 2 1637 ", " 0 2 blue 1637 ")
                .replace(" 1 1 251 ", " 1 1 green 251 ");
        let f = parse_proc(&text, "x").unwrap();
        let want = parse_proc(&v3(EXAMPLE_V3), "x").unwrap();
        assert_eq!(format!("{:?}", f.services), format!("{:?}", want.services));
        // The columns may come in any order.
        let text = V3_HEADER.replace(
            "# D address weight table_weight slots",
            "# D address table_weight weight slots",
        ) + &EXAMPLE_V3.replace(" 0 2 1637 ", " 2 0 1637 ");
        let f = parse_proc(&text, "x").unwrap();
        assert_eq!(format!("{:?}", f.services), format!("{:?}", want.services));
        // But a record must have the header's fields.
        let e = parse_proc(&text.replace(" 2 0 1637 ", " 2 0 1637 5 "), "x").unwrap_err();
        assert!(e.contains("7 fields as the header on line 3"), "{e}");
    }

    #[test]
    fn missing_columns_are_named() {
        let e = parse_proc(&v3(EXAMPLE_V3).replace(" bytes stale", " bytes"), "x").unwrap_err();
        assert!(
            e.starts_with("x line 2: the '# S' column header lacks the column 'stale'"),
            "{e}"
        );
        let e = parse_proc(&v3(EXAMPLE_V3).replace(" table_weight", ""), "x").unwrap_err();
        assert!(
            e.starts_with("x line 3: the '# D' column header lacks the column 'table_weight'"),
            "{e}"
        );
        // Version 3 says 'mode', not 'order'.
        let e = parse_proc(&v3(EXAMPLE_V3).replace(" mode ", " order "), "x").unwrap_err();
        assert!(e.contains("lacks the column 'mode'"), "{e}");
        // Version 2 needs 'bytes', version 1 does not.
        let e = parse_proc(&EXAMPLE.replace(" bytes", ""), "x").unwrap_err();
        assert!(e.contains("lacks the column 'bytes'"), "{e}");
        let e = parse_proc(&EXAMPLE_V1.replace(" slot_share", ""), "x").unwrap_err();
        assert!(e.contains("lacks the column 'slot_share'"), "{e}");
        let e = parse_proc(&v3(EXAMPLE_V3).replace(" moved ", " moved moved "), "x").unwrap_err();
        assert!(e.contains("names 'moved' twice"), "{e}");
        let twice = V3_HEADER.to_string() + "# S proto\n";
        let e = parse_proc(&twice, "x").unwrap_err();
        assert!(e.contains("line 4") && e.contains("second '# S'"), "{e}");
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
        for v in ["1", "2", "3"] {
            let f = parse_proc(&format!("# ip_vs_mh_rs {v}\n"), "x").unwrap();
            assert!(f.services.is_empty());
            assert_eq!(f.version.to_string(), v);
        }
        let e = parse_proc("# ip_vs_mh_rs 4\n", "x").unwrap_err();
        assert!(e.contains("version 4"), "{e}");
        assert!(parse_proc("# ip_vs_mh_rs\n", "x").is_err());
        assert!(parse_proc("# ip_vs_mh_rs 03\n", "x").is_err());
        assert!(parse_proc("# something else 1\n", "x").is_err());
        assert!(parse_proc("", "x").is_err());
    }

    /// A version 3 service `fwm:7` in mode `mode`, its `D` lines in the
    /// order given, each (address, current weight, table weight), with the
    /// model's slot counts for the table weights.
    fn v3_service(mode: &str, dests: &[(&str, i32, i32)]) -> String {
        let servers: Vec<Server> = dests
            .iter()
            .map(|&(a, _, tw)| {
                let (addr, port) = parse_host_port(a).unwrap();
                Server {
                    addr,
                    port,
                    weight: tw,
                }
            })
            .collect();
        let input = Input::from_servers(servers.into_iter().map(|s| (s, s.weight)).collect());
        let size = TableSize::new(251).unwrap();
        let order = if mode == "sorted" {
            Order::Sorted
        } else {
            Order::List
        };
        let b = sim::build(&input, size, Model::table_only(order)).unwrap();
        let mut out = format!("{V3_HEADER}S FWM 7 251 {mode} 1 1 1 0 0 0 600 0\n");
        for (&(a, w, tw), slots) in dests.iter().zip(&b.slots) {
            // The shares are not compared.
            out.push_str(&format!("D {a} {w} {tw} {slots} 0.00 0.00\n"));
        }
        out
    }

    fn run_check(proc: &str, ipvs: &str) -> (bool, String, Value) {
        let p = parse_proc(proc, "p").unwrap();
        let i = ipvsadm::parse(ipvs).unwrap();
        let r = check(&p.services, &i, "p");
        (r.ok(), text(&r), json(&r))
    }

    #[test]
    fn upstream_drained_server_keeps_its_slots() {
        // 10.0.2.12 was drained to weight 0: upstream keeps its table at
        // weight 2 (the C module's last_weight), so its slots stay.
        let dests = [
            ("10.0.2.13:0", 1, 1),
            ("10.0.2.12:0", 0, 2),
            ("10.0.2.11:0", 1, 1),
        ];
        let proc = v3_service("upstream", &dests);
        let ipvs = "\
-A -f 7 -s mh
-a -f 7 -r 10.0.2.11:0 -g -w 1
-a -f 7 -r 10.0.2.12:0 -g -w 0
-a -f 7 -r 10.0.2.13:0 -g -w 1
";
        let (ok, out, v) = run_check(&proc, ipvs);
        assert!(ok, "{out}");
        assert_eq!(out, "OK FWM 7 size=251 order=upstream servers=3\n");
        assert_eq!(v["services"][0]["mode"], "upstream");
        assert_eq!(v["services"][0]["stale"], false);
        // The model follows the D order, as for 'list': the same lines in
        // another order are another table.
        let mut lines: Vec<&str> = proc.lines().collect();
        let n = lines.len();
        lines[n - 3..].rotate_left(1);
        let swapped = lines.join("\n") + "\n";
        let (ok, out, _) = run_check(&swapped, ipvs);
        assert!(!ok, "{out}");
        assert!(out.starts_with("MISMATCH FWM 7: slots of "), "{out}");
        // A positive ipvsadm weight must match the table's.
        let (ok, out, v) = run_check(
            &proc,
            &ipvs.replace("10.0.2.12:0 -g -w 0", "10.0.2.12:0 -g -w 3"),
        );
        assert!(!ok);
        assert!(
            out.contains("\n  10.0.2.12:0 weight kernel=2 ipvsadm=3 (the kernel's current weight 0 is not in its table yet)\n"),
            "{out}"
        );
        assert_eq!(
            v["services"][0]["differences"][0],
            json!({"what": "weight", "server": "10.0.2.12:0", "kernel": 2, "kernel_current": 0, "ipvsadm": 3})
        );
        // The same drained server in 'list' mode: the table should have
        // been rebuilt without it.
        let (ok, out, _) = run_check(&v3_service("list", &dests), ipvs);
        assert!(!ok);
        assert!(
            out.contains("  10.0.2.12:0 weight kernel=2 ipvsadm=0"),
            "{out}"
        );
        // A stale table says so.
        let stale = v3_service("list", &dests).replace(" 600 0\n", " 600 1\n");
        let (_, out, v) = run_check(&stale, ipvs);
        assert!(
            out.ends_with("  stale: the kernel's last rebuild failed, its previous table serves\n"),
            "{out}"
        );
        assert_eq!(v["services"][0]["stale"], true);
    }

    #[test]
    fn flag3_wants_upstream_mode() {
        let dests = [("10.0.2.12:0", 2, 2), ("10.0.2.11:0", 1, 1)];
        let ipvs = "\
-A -f 7 -s mh -b flag-3
-a -f 7 -r 10.0.2.11:0 -g -w 1
-a -f 7 -r 10.0.2.12:0 -g -w 2
";
        let (ok, out, _) = run_check(&v3_service("upstream", &dests), ipvs);
        assert!(ok, "{out}");
        // Sorted mode with flag-3: the module did not switch.
        let (ok, out, v) = run_check(&v3_service("sorted", &dests), ipvs);
        assert!(!ok);
        assert_eq!(
            out,
            "MISMATCH FWM 7: mode differs\n  mode kernel=sorted ipvsadm=upstream (the service has flag-3)\n"
        );
        assert_eq!(
            v["services"][0]["differences"][0],
            json!({"what": "mode", "kernel": "sorted", "ipvsadm": "upstream"})
        );
        // Upstream without flag-3 is the module's 'upstream' parameter.
        let plain = ipvs.replace(" -b flag-3", "");
        let (ok, out, _) = run_check(&v3_service("upstream", &dests), &plain);
        assert!(ok, "{out}");
        // Before format 3 the module knew no upstream mode: not compared.
        let v2 = "\
# ip_vs_mh_rs 2
# S proto address size order rebuilds last_rebuild moved decisions fallbacks refusals bytes
# D address weight slots slot_share weight_share
S FWM 7 251 sorted 1 1 1 0 0 0 600
";
        let (ok, out, _) = run_check(v2, ipvs);
        assert!(!ok, "{out}");
        assert!(!out.contains("mode"), "{out}");
    }

    #[test]
    fn table_weight_is_compared() {
        // A change the kernel's table does not have yet: the current
        // weight agrees with ipvsadm, the table's does not.
        let dests = [("10.0.2.11:0", 3, 1), ("10.0.2.12:0", 1, 1)];
        let ipvs = "\
-A -f 7 -s mh
-a -f 7 -r 10.0.2.11:0 -g -w 3
-a -f 7 -r 10.0.2.12:0 -g -w 1
";
        let (ok, out, _) = run_check(&v3_service("sorted", &dests), ipvs);
        assert!(!ok);
        assert!(
            out.contains("  10.0.2.11:0 weight kernel=1 ipvsadm=3 ("),
            "{out}"
        );
        let settled = [("10.0.2.11:0", 3, 3), ("10.0.2.12:0", 1, 1)];
        let (ok, out, _) = run_check(&v3_service("sorted", &settled), ipvs);
        assert!(ok, "{out}");
    }
}
