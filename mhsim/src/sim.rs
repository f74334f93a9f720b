// SPDX-License-Identifier: GPL-2.0

//! Building tables with the core and turning them into reports.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use maglev::{
    build_table_keyed, count_slots, lookup, lookup_fallback, slot_of, turns_for, weight_gcd,
    weight_rshift, Addr, BuildStats, DestSetup, Order, Scratch, Server, SortKey, TableSize, EMPTY,
};
use serde_json::{json, Value};

use crate::ipvsadm;
use crate::spec::{addr_text, default_last_weight, HostPort};

/// A server set to build a table for.
#[derive(Clone, Debug)]
pub(crate) struct Input {
    /// The ipvsadm service it came from, if any.
    pub(crate) service: Option<String>,
    /// The servers as given (what reports show), with their current
    /// weights.
    pub(crate) servers: Vec<Server>,
    /// The servers as the core sees them (differs only for mixed-family
    /// ipvsadm services, see `ipvsadm::Service::hashed_dests`).
    pub(crate) hashed: Vec<Server>,
    /// Each server's last weight (IPVS's `last_weight`: its latest
    /// non-zero weight, or the weight it was added with), in the order of
    /// `servers`. Upstream mode builds the table with these.
    pub(crate) last_weights: Vec<i32>,
    /// The service hashes client ports (`mh-port`).
    pub(crate) mh_port: bool,
    /// The service uses the fallback walk (`mh-fallback`).
    pub(crate) mh_fallback: bool,
    /// The service has `flag-3` (upstream mode in ip_vs_mh_rs).
    pub(crate) flag3: bool,
    /// The servers came sorted by ipvsadm (`ipvsadm -Sn`), not in the
    /// kernel's list order.
    pub(crate) sorted: bool,
}

impl Input {
    /// Servers from the command line, each with its last weight.
    pub(crate) fn from_servers(servers: Vec<(Server, i32)>) -> Input {
        let (servers, last_weights): (Vec<Server>, Vec<i32>) = servers.into_iter().unzip();
        Input {
            service: None,
            hashed: servers.clone(),
            servers,
            last_weights,
            mh_port: false,
            mh_fallback: false,
            flag3: false,
            sorted: false,
        }
    }

    /// An ipvsadm service. ipvsadm does not show last weights: each is
    /// the server's weight if positive, else 0 (see `--last-weight`).
    pub(crate) fn from_service(s: &ipvsadm::Service) -> Input {
        Input {
            service: Some(s.id.clone()),
            hashed: s.hashed_dests(),
            servers: s.dests.clone(),
            last_weights: s
                .dests
                .iter()
                .map(|d| default_last_weight(d.weight))
                .collect(),
            mh_port: s.mh_port,
            mh_fallback: s.mh_fallback,
            flag3: s.flag3(),
            sorted: s.sorted,
        }
    }
}

/// How the kernel module builds and looks up a service's table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// ip_vs_mh_rs's default: current weights (weight 0 takes no slots),
    /// sorted population order and every client port hashed, unless
    /// `--order` or `--port-hash` say otherwise.
    Sorted,
    /// The in-tree C ip_vs_mh, bit for bit: IPVS list order, last weights
    /// (a server drained to weight 0 keeps its slots), the port hashed only
    /// with `mh-port`, a server at weight 0 unavailable at lookup.
    Upstream,
}

impl Mode {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Mode::Sorted => "sorted",
            Mode::Upstream => "upstream",
        }
    }

    /// `--mode`, `--before-mode` or `--after-mode` (named `opt`).
    pub(crate) fn parse(v: &str, opt: &str) -> Result<Mode, String> {
        match v {
            "sorted" => Ok(Mode::Sorted),
            "upstream" => Ok(Mode::Upstream),
            _ => Err(format!("{opt} '{v}' is not 'sorted' or 'upstream'")),
        }
    }
}

/// Everything that decides a service's table and lookups besides its
/// servers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Model {
    pub(crate) mode: Mode,
    /// Population order.
    pub(crate) order: Order,
    /// Every client port is hashed (otherwise only with `mh_port`).
    pub(crate) always_port: bool,
    /// The service has `mh-port` (its flags or `--mh-port`).
    pub(crate) mh_port: bool,
    /// The fallback walk (`mh-fallback` or `--fallback`).
    pub(crate) fallback: bool,
}

impl Model {
    /// Sorted mode's table (current weights) in `order`; lookup settings
    /// at their defaults.
    pub(crate) fn table_only(order: Order) -> Model {
        Model {
            mode: Mode::Sorted,
            order,
            always_port: true,
            mh_port: false,
            fallback: false,
        }
    }

    /// Whether client ports are hashed (port 0 otherwise).
    pub(crate) fn ports_hashed(&self) -> bool {
        self.always_port || self.mh_port
    }

    /// The weight server `i` of `input` has in the table: its last weight
    /// in upstream mode, its current weight in sorted mode.
    fn table_weight(&self, input: &Input, i: usize) -> i32 {
        match self.mode {
            Mode::Sorted => input.servers.get(i).map_or(0, |s| s.weight),
            Mode::Upstream => input.last_weights.get(i).copied().unwrap_or(0),
        }
    }
}

/// A built table and what is needed to report on it.
pub(crate) struct Built<'a> {
    pub(crate) input: &'a Input,
    pub(crate) size: TableSize,
    pub(crate) model: Model,
    /// Each server's weight in the table (see [`Model::table_weight`]).
    pub(crate) weights: Vec<i32>,
    pub(crate) table: Vec<u16>,
    pub(crate) stats: BuildStats,
    pub(crate) turns: Vec<u32>,
    pub(crate) slots: Vec<u32>,
}

pub(crate) fn order_name(o: Order) -> &'static str {
    match o {
        Order::Sorted => "sorted",
        Order::List => "list",
    }
}

/// Rounds to 6 decimals for printing.
fn r6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

pub(crate) fn build(input: &Input, size: TableSize, model: Model) -> Result<Built<'_>, String> {
    let n = input.hashed.len();
    let m = size.slots();
    if n > m as usize {
        return Err(format!(
            "{n} servers but the table has only {m} slots{}",
            input
                .service
                .as_ref()
                .map(|s| format!(" (service {s})"))
                .unwrap_or_default()
        ));
    }
    let weights: Vec<i32> = (0..n).map(|i| model.table_weight(input, i)).collect();
    let hashed: Vec<Server> = input
        .hashed
        .iter()
        .zip(&weights)
        .map(|(s, &weight)| Server { weight, ..*s })
        .collect();
    let mut table = vec![EMPTY; m as usize];
    let mut setup = vec![DestSetup::default(); n];
    let mut perm = vec![SortKey::default(); n];
    // Sorted mode orders the servers by their own addresses, as the module
    // does (a tunnel server's hashed address can equal another's).
    let keys: Vec<Addr> = input.servers.iter().map(|s| s.addr).collect();
    let stats = build_table_keyed(
        size,
        &hashed,
        Some(&keys),
        model.order,
        &mut table,
        Scratch {
            setup: &mut setup,
            order: &mut perm,
        },
    )
    .map_err(|e| e.to_string())?;
    let g = weight_gcd(&hashed);
    let s = weight_rshift(size, &hashed, g);
    let turns = hashed.iter().map(|x| turns_for(x.weight, g, s)).collect();
    let mut slots = vec![0u32; n];
    count_slots(&table, &mut slots);
    Ok(Built {
        input,
        size,
        model,
        weights,
        table,
        stats,
        turns,
        slots,
    })
}

/// Sum of the positive table weights.
fn total_weight(b: &Built<'_>) -> f64 {
    b.weights
        .iter()
        .filter(|&&w| w > 0)
        .map(|&w| f64::from(w))
        .sum()
}

/// Slot share / weight share for each server with a positive table
/// weight.
fn ratios(b: &Built<'_>) -> Vec<f64> {
    let total_w = total_weight(b);
    let m = f64::from(b.size.slots());
    b.weights
        .iter()
        .zip(&b.slots)
        .filter(|(&w, _)| w > 0)
        .map(|(&w, &c)| (f64::from(c) / m) / (f64::from(w) / total_w))
        .collect()
}

/// Server `i`'s share of the slots and of the table weights.
fn shares(b: &Built<'_>, i: usize) -> (f64, f64) {
    let total_w = total_weight(b);
    let w = b.weights[i];
    let ws = if w > 0 && total_w > 0.0 {
        f64::from(w) / total_w
    } else {
        0.0
    };
    (f64::from(b.slots[i]) / f64::from(b.size.slots()), ws)
}

fn header_json(b: &Built<'_>) -> serde_json::Map<String, Value> {
    let mut o = serde_json::Map::new();
    if let Some(s) = &b.input.service {
        o.insert("service".into(), json!(s));
    }
    o.insert("size".into(), json!(b.size.slots()));
    o.insert("mode".into(), json!(b.model.mode.name()));
    o.insert("order".into(), json!(order_name(b.model.order)));
    o.insert("gcd".into(), json!(b.stats.gcd));
    o.insert("rshift".into(), json!(b.stats.rshift));
    o.insert("servers_with_slots".into(), json!(b.stats.servers));
    o
}

fn servers_json(b: &Built<'_>) -> Value {
    Value::Array(
        b.input
            .servers
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let (ss, ws) = shares(b, i);
                json!({
                    "index": i,
                    "addr": addr_text(&s.addr),
                    "port": s.port,
                    "weight": s.weight,
                    "last_weight": b.input.last_weights[i],
                    "table_weight": b.weights[i],
                    "turns": b.turns[i],
                    "slots": b.slots[i],
                    "slot_share": r6(ss),
                    "weight_share": r6(ws),
                })
            })
            .collect(),
    )
}

fn imbalance_json(b: &Built<'_>) -> Value {
    let r = ratios(b);
    if r.is_empty() {
        return Value::Null;
    }
    let max = r.iter().cloned().fold(f64::MIN, f64::max);
    let min = r.iter().cloned().fold(f64::MAX, f64::min);
    json!({ "max_over_avg": r6(max), "min_over_avg": r6(min) })
}

pub(crate) fn table_json(b: &Built<'_>) -> Value {
    let mut o = header_json(b);
    o.insert("servers".into(), servers_json(b));
    o.insert("imbalance".into(), imbalance_json(b));
    o.insert(
        "table".into(),
        Value::Array(
            b.table
                .iter()
                .map(|&v| if v == EMPTY { Value::Null } else { json!(v) })
                .collect(),
        ),
    );
    Value::Object(o)
}

fn header_text(out: &mut String, b: &Built<'_>) {
    if let Some(s) = &b.input.service {
        let _ = writeln!(out, "service {s}");
    }
    let _ = writeln!(
        out,
        "table size {}, mode {}, order {}, {} servers ({} with slots), gcd {}, rshift {}",
        b.size.slots(),
        b.model.mode.name(),
        order_name(b.model.order),
        b.input.servers.len(),
        b.stats.servers,
        b.stats.gcd,
        b.stats.rshift
    );
}

pub(crate) fn table_text(b: &Built<'_>) -> String {
    let mut out = String::new();
    header_text(&mut out, b);
    let upstream = b.model.mode == Mode::Upstream;
    let width = b
        .input
        .servers
        .iter()
        .map(|s| HostPort(&s.addr, s.port).to_string().len())
        .max()
        .unwrap_or(6)
        .max(6);
    // Upstream mode shows each server's last weight, which the table is
    // built with.
    let last_col = |v: &dyn std::fmt::Display| {
        if upstream {
            format!("  {v:>10}")
        } else {
            String::new()
        }
    };
    let _ = writeln!(
        out,
        "{:>5}  {:<width$}  {:>10}{}  {:>5}  {:>6}  {:>8}  {:>8}",
        "index",
        "server",
        "weight",
        last_col(&"last"),
        "turns",
        "slots",
        "slots%",
        "weight%"
    );
    for (i, s) in b.input.servers.iter().enumerate() {
        let (ss, ws) = shares(b, i);
        let _ = writeln!(
            out,
            "{:>5}  {:<width$}  {:>10}{}  {:>5}  {:>6}  {:>7.3}%  {:>7.3}%",
            i,
            HostPort(&s.addr, s.port).to_string(),
            s.weight,
            last_col(&b.input.last_weights[i]),
            b.turns[i],
            b.slots[i],
            ss * 100.0,
            ws * 100.0
        );
    }
    let r = ratios(b);
    if r.is_empty() {
        let _ = writeln!(out, "no server has a positive weight: every slot is empty");
    } else {
        let max = r.iter().cloned().fold(f64::MIN, f64::max);
        let min = r.iter().cloned().fold(f64::MAX, f64::min);
        let _ = writeln!(
            out,
            "imbalance (slot share / weight share): max/avg {max:.4}, min/avg {min:.4}"
        );
    }
    if upstream {
        upstream_notes(&mut out, b);
    }
    out
}

/// What upstream mode does with servers at weight 0.
fn upstream_notes(out: &mut String, b: &Built<'_>) {
    let zero = |keeps: bool| -> Vec<String> {
        b.input
            .servers
            .iter()
            .zip(&b.input.last_weights)
            .filter(|(s, &l)| s.weight <= 0 && (l > 0) == keeps)
            .map(|(s, _)| HostPort(&s.addr, s.port).to_string())
            .collect()
    };
    let drained = zero(true);
    if !drained.is_empty() {
        let _ = writeln!(
            out,
            "at weight 0, keeping their slots at their last weight (unavailable at lookup): {}",
            drained.join(" ")
        );
    }
    if let Some(note) = unknown_last_weights(b.input) {
        let _ = writeln!(out, "{note}");
    }
}

/// The servers at weight 0 with last weight 0, which upstream mode gives
/// no slots: right for a server added at weight 0, wrong for one drained
/// to 0 (ipvsadm does not show last weights). `None` if there are none.
pub(crate) fn unknown_last_weights(input: &Input) -> Option<String> {
    let unknown: Vec<String> = input
        .servers
        .iter()
        .zip(&input.last_weights)
        .filter(|(s, &l)| s.weight <= 0 && l <= 0)
        .map(|(s, _)| HostPort(&s.addr, s.port).to_string())
        .collect();
    (!unknown.is_empty()).then(|| {
        format!(
            "at weight 0 with last weight 0 (added at weight 0: no slots; if drained, give \
             ADDR:PORT:0:LASTWEIGHT or --last-weight ADDR:PORT=W): {}",
            unknown.join(" ")
        )
    })
}

/// A client to look up.
#[derive(Clone, Debug)]
pub(crate) struct Client {
    /// As given on the command line or in the clients file (trimmed).
    pub(crate) text: String,
    pub(crate) addr: Addr,
    /// 0 when not given.
    pub(crate) port: u16,
}

/// The first of `unavailable` (servers by address and port) that is not a
/// server of `b`, as an error.
pub(crate) fn check_unavailable(b: &Built<'_>, unavailable: &[(Addr, u16)]) -> Result<(), String> {
    match unavailable
        .iter()
        .find(|(a, p)| !b.input.servers.iter().any(|s| s.addr == *a && s.port == *p))
    {
        Some((a, p)) => Err(format!(
            "--unavailable {} is not one of the servers",
            HostPort(a, *p)
        )),
        None => Ok(()),
    }
}

pub(crate) struct LookupResult {
    client: (Addr, u16),
    /// The client as given.
    text: String,
    hashed_port: u16,
    slot: u32,
    /// Index of the chosen server, if any.
    server: Option<u16>,
    /// Its address and port.
    dest: Option<(Addr, u16)>,
}

/// Where each client goes. A server is unavailable if its current weight
/// is not positive or it is in `unavailable` (overloaded); its clients are
/// refused, or take the fallback walk if the model has it. (In sorted mode
/// a server at weight 0 has no slots, so the weight rule never matters.)
pub(crate) fn run_lookups(
    b: &Built<'_>,
    clients: &[Client],
    unavailable: &[(Addr, u16)],
) -> Vec<LookupResult> {
    let down: HashSet<usize> = b
        .input
        .servers
        .iter()
        .enumerate()
        .filter(|(_, s)| unavailable.contains(&(s.addr, s.port)))
        .map(|(i, _)| i)
        .collect();
    let hash_port = b.model.ports_hashed();
    let available = |i: u16| {
        let i = usize::from(i);
        b.input.servers.get(i).is_some_and(|s| s.weight > 0) && !down.contains(&i)
    };
    clients
        .iter()
        .map(|c| {
            let (addr, port) = (c.addr, c.port);
            let hp = if hash_port { port } else { 0 };
            let server = if b.model.fallback {
                lookup_fallback(b.size, &b.table, &addr, hp, available)
            } else {
                lookup(b.size, &b.table, &addr, hp).filter(|&i| available(i))
            };
            LookupResult {
                client: (addr, port),
                text: c.text.clone(),
                hashed_port: hp,
                slot: slot_of(b.size, &addr, hp),
                server,
                dest: server
                    .and_then(|i| b.input.servers.get(usize::from(i)))
                    .map(|s| (s.addr, s.port)),
            }
        })
        .collect()
}

/// The lookup settings of a model, for JSON reports.
fn lookup_settings_json(m: &Model, o: &mut serde_json::Map<String, Value>) {
    o.insert(
        "port_hash".into(),
        json!(if m.always_port { "always" } else { "flag" }),
    );
    o.insert("mh_port".into(), json!(m.mh_port));
    o.insert("ports_hashed".into(), json!(m.ports_hashed()));
    o.insert("fallback".into(), json!(m.fallback));
}

fn dest_text(d: Option<(Addr, u16)>) -> Option<String> {
    d.map(|(a, p)| HostPort(&a, p).to_string())
}

pub(crate) fn lookup_json(b: &Built<'_>, res: &[LookupResult]) -> Value {
    let mut h = header_json(b);
    lookup_settings_json(&b.model, &mut h);
    h.insert("servers".into(), servers_json(b));
    h.insert(
        "lookups".into(),
        Value::Array(
            res.iter()
                .map(|r| {
                    json!({
                        "client": HostPort(&r.client.0, r.client.1).to_string(),
                        "input": r.text,
                        "hashed_port": r.hashed_port,
                        "slot": r.slot,
                        "server": r.server,
                        "dest": dest_text(r.dest),
                    })
                })
                .collect(),
        ),
    );
    Value::Object(h)
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

pub(crate) fn lookup_text(b: &Built<'_>, res: &[LookupResult]) -> String {
    let mut out = String::new();
    header_text(&mut out, b);
    let _ = writeln!(
        out,
        "client ports hashed: {}, fallback: {}",
        yes_no(b.model.ports_hashed()),
        yes_no(b.model.fallback)
    );
    for r in res {
        let dest = match (r.server, r.dest) {
            (Some(i), Some((a, p))) => format!("server {i} {}", HostPort(&a, p)),
            _ => "no server".to_string(),
        };
        let _ = writeln!(
            out,
            "{} -> slot {} -> {}",
            HostPort(&r.client.0, r.client.1),
            r.slot,
            dest
        );
    }
    out
}

/// Slot changes between two tables of the same size.
pub(crate) struct Diff {
    /// Both sides hash clients the same way (both hash the port, or
    /// neither does), so a client keeps its slot and comparing slot owners
    /// tells which clients move. Otherwise the counts below are not
    /// reported.
    comparable: bool,
    changed: u32,
    /// Slots whose old owner is still present.
    kept_owner_slots: u32,
    /// Of those, the ones that now belong to someone else.
    kept_owner_moved: u32,
    /// Per server, over both sets (before's order, then new servers).
    rows: Vec<DiffRow>,
}

/// One server's slot counts in a [`Diff`].
#[derive(Clone, Copy)]
struct DiffRow {
    id: (Addr, u16),
    before: u32,
    after: u32,
    gained: u32,
    lost: u32,
}

pub(crate) fn diff(before: &Built<'_>, after: &Built<'_>) -> Diff {
    let ident = |b: &Built<'_>, v: u16| -> Option<(Addr, u16)> {
        b.input
            .servers
            .get(usize::from(v))
            .map(|s| (s.addr, s.port))
    };
    let mut keys: Vec<(Addr, u16)> = Vec::new();
    for s in before.input.servers.iter().chain(&after.input.servers) {
        if !keys.contains(&(s.addr, s.port)) {
            keys.push((s.addr, s.port));
        }
    }
    let pos: HashMap<(Addr, u16), usize> = keys.iter().enumerate().map(|(i, k)| (*k, i)).collect();
    let in_after: HashSet<(Addr, u16)> = after
        .input
        .servers
        .iter()
        .map(|s| (s.addr, s.port))
        .collect();
    let mut rows: Vec<DiffRow> = keys
        .iter()
        .map(|&id| DiffRow {
            id,
            before: 0,
            after: 0,
            gained: 0,
            lost: 0,
        })
        .collect();
    let mut d = Diff {
        comparable: before.model.ports_hashed() == after.model.ports_hashed(),
        changed: 0,
        kept_owner_slots: 0,
        kept_owner_moved: 0,
        rows: Vec::new(),
    };
    for (&x, &y) in before.table.iter().zip(&after.table) {
        let (a, b) = (ident(before, x), ident(after, y));
        if let Some(k) = a {
            rows[pos[&k]].before += 1;
            if in_after.contains(&k) {
                d.kept_owner_slots += 1;
                if a != b {
                    d.kept_owner_moved += 1;
                }
            }
        }
        if let Some(k) = b {
            rows[pos[&k]].after += 1;
        }
        if a != b {
            d.changed += 1;
            if let Some(k) = a {
                rows[pos[&k]].lost += 1;
            }
            if let Some(k) = b {
                rows[pos[&k]].gained += 1;
            }
        }
    }
    d.rows = rows;
    d
}

impl Diff {
    /// For sides that hash clients differently: the expected fraction of
    /// clients whose slot owner changes if a client's slot before and its
    /// slot after are independent and uniform (as two different hashes
    /// make them): `1 - sum over servers of (before slots / M) * (after
    /// slots / M)`. Slot owners only: unavailable servers and the
    /// fallback walk are not taken into account.
    fn estimated_moved_fraction(&self, m: u32) -> f64 {
        if self.rows.iter().all(|r| r.before == 0 && r.after == 0) {
            // Every slot empty on both sides: nobody is served, nobody moves.
            return 0.0;
        }
        let m = f64::from(m);
        let same: f64 = self
            .rows
            .iter()
            .map(|r| (f64::from(r.before) / m) * (f64::from(r.after) / m))
            .sum();
        1.0 - same
    }
}

/// One client's server before and after.
pub(crate) struct ClientMove {
    client: (Addr, u16),
    text: String,
    before: Option<(Addr, u16)>,
    after: Option<(Addr, u16)>,
}

impl ClientMove {
    fn moved(&self) -> bool {
        self.before != self.after
    }
}

/// Pairs the lookups of the same clients before and after (same order).
pub(crate) fn client_moves(before: &[LookupResult], after: &[LookupResult]) -> Vec<ClientMove> {
    before
        .iter()
        .zip(after)
        .map(|(b, a)| ClientMove {
            client: b.client,
            text: b.text.clone(),
            before: b.dest,
            after: a.dest,
        })
        .collect()
}

fn frac(a: u32, b: u32) -> f64 {
    if b == 0 {
        0.0
    } else {
        f64::from(a) / f64::from(b)
    }
}

fn frac_usize(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// `value` if the sides are comparable slot by slot, else null.
fn if_comparable(d: &Diff, value: Value) -> Value {
    if d.comparable {
        value
    } else {
        Value::Null
    }
}

pub(crate) fn diff_json(
    before: &Built<'_>,
    after: &Built<'_>,
    d: &Diff,
    moves: Option<&[ClientMove]>,
) -> Value {
    let m = before.size.slots();
    let mut o = serde_json::Map::new();
    if let Some(s) = &after.input.service.clone().or(before.input.service.clone()) {
        o.insert("service".into(), json!(s));
    }
    o.insert("size".into(), json!(m));
    o.insert("order".into(), json!(order_name(before.model.order)));
    o.insert("before_mode".into(), json!(before.model.mode.name()));
    o.insert("after_mode".into(), json!(after.model.mode.name()));
    o.insert("slots_comparable".into(), json!(d.comparable));
    o.insert("changed_slots".into(), if_comparable(d, json!(d.changed)));
    o.insert(
        "changed_fraction".into(),
        if_comparable(d, json!(r6(frac(d.changed, m)))),
    );
    o.insert(
        "remaining_slots".into(),
        if_comparable(d, json!(d.kept_owner_slots)),
    );
    o.insert(
        "remaining_moved".into(),
        if_comparable(d, json!(d.kept_owner_moved)),
    );
    o.insert(
        "remaining_moved_fraction".into(),
        if_comparable(d, json!(r6(frac(d.kept_owner_moved, d.kept_owner_slots)))),
    );
    o.insert(
        "estimated_moved_fraction".into(),
        if d.comparable {
            Value::Null
        } else {
            json!(r6(d.estimated_moved_fraction(m)))
        },
    );
    o.insert(
        "servers".into(),
        Value::Array(
            d.rows
                .iter()
                .map(|r| {
                    json!({
                        "addr": addr_text(&r.id.0),
                        "port": r.id.1,
                        "before_slots": r.before,
                        "after_slots": r.after,
                        "gained": if_comparable(d, json!(r.gained)),
                        "lost": if_comparable(d, json!(r.lost)),
                    })
                })
                .collect(),
        ),
    );
    o.insert("before".into(), table_summary(before));
    o.insert("after".into(), table_summary(after));
    if let Some(moves) = moves {
        let moved = moves.iter().filter(|c| c.moved()).count();
        o.insert("moved".into(), json!(moved));
        o.insert("clients".into(), json!(moves.len()));
        o.insert("fraction".into(), json!(r6(frac_usize(moved, moves.len()))));
        o.insert(
            "per_client".into(),
            Value::Array(
                moves
                    .iter()
                    .map(|c| {
                        json!({
                            "input": c.text,
                            "before": dest_text(c.before),
                            "after": dest_text(c.after),
                            "moved": c.moved(),
                        })
                    })
                    .collect(),
            ),
        );
    }
    Value::Object(o)
}

fn table_summary(b: &Built<'_>) -> Value {
    let mut o = serde_json::Map::new();
    o.insert("mode".into(), json!(b.model.mode.name()));
    o.insert("order".into(), json!(order_name(b.model.order)));
    lookup_settings_json(&b.model, &mut o);
    o.insert("servers".into(), servers_json(b));
    o.insert("gcd".into(), json!(b.stats.gcd));
    o.insert("rshift".into(), json!(b.stats.rshift));
    Value::Object(o)
}

/// `mode sorted, order sorted, ports hashed` and the like.
fn model_text(m: &Model) -> String {
    format!(
        "mode {}, order {}, {}",
        m.mode.name(),
        order_name(m.order),
        if m.ports_hashed() {
            "client ports hashed"
        } else {
            "client ports not hashed"
        }
    )
}

pub(crate) fn diff_text(
    before: &Built<'_>,
    after: &Built<'_>,
    d: &Diff,
    moves: Option<&[ClientMove]>,
) -> String {
    let m = before.size.slots();
    let mut out = String::new();
    if let Some(s) = after
        .input
        .service
        .as_ref()
        .or(before.input.service.as_ref())
    {
        let _ = writeln!(out, "service {s}");
    }
    if before.model == after.model {
        let _ = writeln!(out, "table size {m}, {}", model_text(&before.model));
    } else {
        let _ = writeln!(
            out,
            "table size {m}; before: {}; after: {}",
            model_text(&before.model),
            model_text(&after.model)
        );
    }
    if d.comparable {
        let _ = writeln!(
            out,
            "slots that changed owner: {} of {m} ({:.3}%)",
            d.changed,
            frac(d.changed, m) * 100.0
        );
        let _ = writeln!(
            out,
            "slots of servers still present that moved: {} of {} ({:.3}%)",
            d.kept_owner_moved,
            d.kept_owner_slots,
            frac(d.kept_owner_moved, d.kept_owner_slots) * 100.0
        );
    } else {
        let _ = writeln!(
            out,
            "slots not comparable: client ports are hashed on one side only, so clients \
             change slots too (give --client or --clients-file to count who moves)"
        );
        let _ = writeln!(
            out,
            "estimated clients that move: {:.3}% (a client's slots before and after taken as \
             independent and uniform; slot owners only)",
            d.estimated_moved_fraction(m) * 100.0
        );
    }
    let width = d
        .rows
        .iter()
        .map(|r| HostPort(&r.id.0, r.id.1).to_string().len())
        .max()
        .unwrap_or(6)
        .max(6);
    let _ = writeln!(
        out,
        "{:<width$}  {:>6}  {:>6}  {:>6}  {:>6}",
        "server", "before", "after", "gained", "lost"
    );
    for r in &d.rows {
        let (gained, lost) = if d.comparable {
            (r.gained.to_string(), r.lost.to_string())
        } else {
            ("-".to_string(), "-".to_string())
        };
        let _ = writeln!(
            out,
            "{:<width$}  {:>6}  {:>6}  {:>6}  {:>6}",
            HostPort(&r.id.0, r.id.1).to_string(),
            r.before,
            r.after,
            gained,
            lost
        );
    }
    if let Some(moves) = moves {
        let show = |d: Option<(Addr, u16)>| dest_text(d).unwrap_or_else(|| "none".into());
        for c in moves {
            let _ = writeln!(
                out,
                "{}: {} -> {}{}",
                HostPort(&c.client.0, c.client.1),
                show(c.before),
                show(c.after),
                if c.moved() { "  moved" } else { "" }
            );
        }
        let moved = moves.iter().filter(|c| c.moved()).count();
        let _ = writeln!(
            out,
            "clients that move: {moved} of {} ({:.3}%)",
            moves.len(),
            frac_usize(moved, moves.len()) * 100.0
        );
    }
    out
}
