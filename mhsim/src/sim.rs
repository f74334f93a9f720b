// SPDX-License-Identifier: GPL-2.0

//! Building tables with the core and turning them into reports.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use maglev::{
    build_table, count_slots, lookup, lookup_fallback, slot_of, turns_for, weight_gcd,
    weight_rshift, Addr, BuildStats, DestSetup, Order, Scratch, Server, TableSize, EMPTY,
};
use serde_json::{json, Value};

use crate::spec::{addr_text, HostPort};

/// A server set to build a table for.
#[derive(Clone, Debug)]
pub(crate) struct Input {
    /// The ipvsadm service it came from, if any.
    pub(crate) service: Option<String>,
    /// The servers as given (what reports show).
    pub(crate) servers: Vec<Server>,
    /// The servers as the core sees them (differs only for mixed-family
    /// ipvsadm services, see `ipvsadm::Service::hashed_dests`).
    pub(crate) hashed: Vec<Server>,
    /// The service hashes client ports (`mh-port`).
    pub(crate) mh_port: bool,
    /// The service uses the fallback walk (`mh-fallback`).
    pub(crate) mh_fallback: bool,
}

/// A built table and what is needed to report on it.
pub(crate) struct Built<'a> {
    pub(crate) input: &'a Input,
    pub(crate) size: TableSize,
    pub(crate) order: Order,
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

pub(crate) fn build(input: &Input, size: TableSize, order: Order) -> Result<Built<'_>, String> {
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
    let mut table = vec![EMPTY; m as usize];
    let mut bitmap = vec![0u64; size.bitmap_words()];
    let mut setup = vec![DestSetup::default(); n];
    let mut perm = vec![0u16; n];
    let stats = build_table(
        size,
        &input.hashed,
        order,
        &mut table,
        Scratch {
            bitmap: &mut bitmap,
            setup: &mut setup,
            order: &mut perm,
        },
    )
    .map_err(|e| e.to_string())?;
    let g = weight_gcd(&input.hashed);
    let s = weight_rshift(size, &input.hashed, g);
    let turns = input
        .hashed
        .iter()
        .map(|x| turns_for(x.weight, g, s))
        .collect();
    let mut slots = vec![0u32; n];
    count_slots(&table, &mut slots);
    Ok(Built {
        input,
        size,
        order,
        table,
        stats,
        turns,
        slots,
    })
}

/// Slot share / weight share for each server with a positive weight.
fn ratios(b: &Built<'_>) -> Vec<f64> {
    let total_w: f64 = b
        .input
        .servers
        .iter()
        .filter(|s| s.weight > 0)
        .map(|s| f64::from(s.weight))
        .sum();
    let m = f64::from(b.size.slots());
    b.input
        .servers
        .iter()
        .zip(&b.slots)
        .filter(|(s, _)| s.weight > 0)
        .map(|(s, &c)| (f64::from(c) / m) / (f64::from(s.weight) / total_w))
        .collect()
}

fn shares(b: &Built<'_>, i: usize) -> (f64, f64) {
    let total_w: f64 = b
        .input
        .servers
        .iter()
        .filter(|s| s.weight > 0)
        .map(|s| f64::from(s.weight))
        .sum();
    let s = &b.input.servers[i];
    let ws = if s.weight > 0 && total_w > 0.0 {
        f64::from(s.weight) / total_w
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
    o.insert("order".into(), json!(order_name(b.order)));
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
        "table size {}, order {}, {} servers ({} with slots), gcd {}, rshift {}",
        b.size.slots(),
        order_name(b.order),
        b.input.servers.len(),
        b.stats.servers,
        b.stats.gcd,
        b.stats.rshift
    );
}

pub(crate) fn table_text(b: &Built<'_>) -> String {
    let mut out = String::new();
    header_text(&mut out, b);
    let width = b
        .input
        .servers
        .iter()
        .map(|s| HostPort(&s.addr, s.port).to_string().len())
        .max()
        .unwrap_or(6)
        .max(6);
    let _ = writeln!(
        out,
        "{:>5}  {:<width$}  {:>10}  {:>5}  {:>6}  {:>8}  {:>8}",
        "index", "server", "weight", "turns", "slots", "slots%", "weight%"
    );
    for (i, s) in b.input.servers.iter().enumerate() {
        let (ss, ws) = shares(b, i);
        let _ = writeln!(
            out,
            "{:>5}  {:<width$}  {:>10}  {:>5}  {:>6}  {:>7.3}%  {:>7.3}%",
            i,
            HostPort(&s.addr, s.port).to_string(),
            s.weight,
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
    out
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

/// Lookup options.
pub(crate) struct LookupOpts<'a> {
    pub(crate) clients: &'a [Client],
    /// Hash client ports even if the service does not say `mh-port`.
    pub(crate) mh_port: bool,
    /// Hash every client's port, as ip_vs_mh_rs does (otherwise only with
    /// `mh-port`, as the C ip_vs_mh does, and port 0 without).
    pub(crate) always_port: bool,
    /// Use the fallback walk even if the service does not say so.
    pub(crate) fallback: bool,
    /// Servers (by address and port) to treat as unavailable (overloaded).
    pub(crate) unavailable: &'a [(Addr, u16)],
}

/// Whether client ports are hashed for this table.
fn ports_hashed(b: &Built<'_>, o: &LookupOpts<'_>) -> bool {
    o.always_port || o.mh_port || b.input.mh_port
}

pub(crate) struct LookupResult {
    client: (Addr, u16),
    /// The client as given.
    text: String,
    hashed_port: u16,
    slot: u32,
    server: Option<u16>,
}

pub(crate) fn run_lookups(b: &Built<'_>, o: &LookupOpts<'_>) -> Result<Vec<LookupResult>, String> {
    let down: HashSet<usize> = o
        .unavailable
        .iter()
        .map(|(a, p)| {
            b.input
                .servers
                .iter()
                .position(|s| s.addr == *a && s.port == *p)
                .ok_or_else(|| {
                    format!(
                        "--unavailable {} is not one of the servers",
                        HostPort(a, *p)
                    )
                })
        })
        .collect::<Result<_, _>>()?;
    let hash_port = ports_hashed(b, o);
    let fallback = o.fallback || b.input.mh_fallback;
    let available = |i: u16| {
        let i = usize::from(i);
        b.input.servers.get(i).is_some_and(|s| s.weight > 0) && !down.contains(&i)
    };
    Ok(o.clients
        .iter()
        .map(|c| {
            let (addr, port) = (c.addr, c.port);
            let hp = if hash_port { port } else { 0 };
            let server = if fallback {
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
            }
        })
        .collect())
}

pub(crate) fn lookup_json(b: &Built<'_>, o: &LookupOpts<'_>, res: &[LookupResult]) -> Value {
    let mut h = header_json(b);
    h.insert(
        "port_hash".into(),
        json!(if o.always_port { "always" } else { "flag" }),
    );
    h.insert("mh_port".into(), json!(o.mh_port || b.input.mh_port));
    h.insert("ports_hashed".into(), json!(ports_hashed(b, o)));
    h.insert("fallback".into(), json!(o.fallback || b.input.mh_fallback));
    h.insert("servers".into(), servers_json(b));
    h.insert(
        "lookups".into(),
        Value::Array(
            res.iter()
                .map(|r| {
                    let dest = r.server.and_then(|i| b.input.servers.get(usize::from(i)));
                    json!({
                        "client": HostPort(&r.client.0, r.client.1).to_string(),
                        "input": r.text,
                        "hashed_port": r.hashed_port,
                        "slot": r.slot,
                        "server": r.server,
                        "dest": dest.map(|s| HostPort(&s.addr, s.port).to_string()),
                    })
                })
                .collect(),
        ),
    );
    Value::Object(h)
}

pub(crate) fn lookup_text(b: &Built<'_>, o: &LookupOpts<'_>, res: &[LookupResult]) -> String {
    let mut out = String::new();
    header_text(&mut out, b);
    let _ = writeln!(
        out,
        "client ports hashed: {}, fallback: {}",
        if ports_hashed(b, o) { "yes" } else { "no" },
        if o.fallback || b.input.mh_fallback {
            "yes"
        } else {
            "no"
        }
    );
    for r in res {
        let dest = match r.server {
            Some(i) => {
                let s = &b.input.servers[usize::from(i)];
                format!("server {i} {}", HostPort(&s.addr, s.port))
            }
            None => "no server".to_string(),
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

/// Slot changes between two tables of the same size and order.
pub(crate) struct Diff {
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

fn frac(a: u32, b: u32) -> f64 {
    if b == 0 {
        0.0
    } else {
        f64::from(a) / f64::from(b)
    }
}

pub(crate) fn diff_json(before: &Built<'_>, after: &Built<'_>, d: &Diff) -> Value {
    let m = before.size.slots();
    let mut o = serde_json::Map::new();
    if let Some(s) = &after.input.service.clone().or(before.input.service.clone()) {
        o.insert("service".into(), json!(s));
    }
    o.insert("size".into(), json!(m));
    o.insert("order".into(), json!(order_name(before.order)));
    o.insert("changed_slots".into(), json!(d.changed));
    o.insert("changed_fraction".into(), json!(r6(frac(d.changed, m))));
    o.insert("remaining_slots".into(), json!(d.kept_owner_slots));
    o.insert("remaining_moved".into(), json!(d.kept_owner_moved));
    o.insert(
        "remaining_moved_fraction".into(),
        json!(r6(frac(d.kept_owner_moved, d.kept_owner_slots))),
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
                        "gained": r.gained,
                        "lost": r.lost,
                    })
                })
                .collect(),
        ),
    );
    o.insert("before".into(), table_summary(before));
    o.insert("after".into(), table_summary(after));
    Value::Object(o)
}

fn table_summary(b: &Built<'_>) -> Value {
    json!({
        "servers": servers_json(b),
        "gcd": b.stats.gcd,
        "rshift": b.stats.rshift,
    })
}

pub(crate) fn diff_text(before: &Built<'_>, after: &Built<'_>, d: &Diff) -> String {
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
    let _ = writeln!(out, "table size {m}, order {}", order_name(before.order));
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
        let _ = writeln!(
            out,
            "{:<width$}  {:>6}  {:>6}  {:>6}  {:>6}",
            HostPort(&r.id.0, r.id.1).to_string(),
            r.before,
            r.after,
            r.gained,
            r.lost
        );
    }
    out
}
