// SPDX-License-Identifier: GPL-2.0

//! `mhsim proc`: `/proc/net/ip_vs_mh` as a readable summary or as JSON, so
//! that scripts read the kernel's figures by name rather than by column
//! position (the parser, [`crate::check::parse_proc`], goes by the file's
//! column headers).

use std::fmt::Write as _;

use serde_json::{json, Value};

use crate::check::{ProcDest, ProcFile, ProcService};
use crate::ipvsadm;
use crate::spec::HostPort;

/// Normalises a `--service` selector to a [`ProcService::key`]: as for
/// ipvsadm input, plus `ip:ADDR:PORT` for a service of another protocol.
fn normalise(sel: &str) -> Result<String, String> {
    if let Some(rest) = sel.strip_prefix("ip:") {
        let tcp = ipvsadm::normalise_selector(&format!("tcp:{rest}"))
            .map_err(|_| format!("bad --service '{sel}' (use ip:ADDR:PORT)"))?;
        return Ok(format!("ip:{}", &tcp["tcp:".len()..]));
    }
    ipvsadm::normalise_selector(sel)
}

/// The service `sel` picks (`tcp:ADDR:PORT`, ..., `fwm:MARK`, `fwm6:MARK`,
/// or N for the N-th); `name` names the file in messages.
pub(crate) fn select(file: &ProcFile, sel: &str, name: &str) -> Result<ProcService, String> {
    let hit = if let Ok(n) = sel.parse::<usize>() {
        n.checked_sub(1).and_then(|i| file.services.get(i))
    } else {
        let key = normalise(sel)?;
        file.services.iter().find(|s| s.key == key)
    };
    hit.cloned().ok_or_else(|| {
        let have: Vec<&str> = file.services.iter().map(|s| s.key.as_str()).collect();
        let have = if have.is_empty() {
            "it lists none".to_string()
        } else {
            format!("it lists: {}", have.join(", "))
        };
        format!("--service {sel}: no such mh service in {name} ({have})")
    })
}

fn dest_json(d: &ProcDest) -> Value {
    json!({
        "address": HostPort(&d.addr, d.port).to_string(),
        "weight": d.weight,
        "table_weight": d.table_weight,
        "slots": d.slots,
        "slot_share": d.slot_share,
        "weight_share": d.weight_share,
    })
}

fn service_json(s: &ProcService) -> Value {
    let c = &s.counters;
    let mut o = serde_json::Map::new();
    o.insert("service".into(), json!(s.key));
    o.insert("proto".into(), json!(s.proto));
    o.insert("address".into(), json!(s.address));
    if let Some(mark) = s.fwmark {
        o.insert("fwmark".into(), json!(mark));
    }
    o.insert("size".into(), json!(s.size.slots()));
    o.insert("mode".into(), json!(s.mode.name()));
    o.insert("rebuilds".into(), json!(c.rebuilds));
    o.insert("last_rebuild".into(), json!(c.last_rebuild));
    o.insert("moved".into(), json!(c.moved));
    o.insert("decisions".into(), json!(c.decisions));
    o.insert("fallbacks".into(), json!(c.fallbacks));
    o.insert("refusals".into(), json!(c.refusals));
    o.insert("bytes".into(), json!(c.bytes));
    o.insert("stale".into(), json!(s.stale));
    o.insert(
        "dests".into(),
        Value::Array(s.dests.iter().map(dest_json).collect()),
    );
    Value::Object(o)
}

/// `{"version": N, "services": [...]}`.
pub(crate) fn json(file: &ProcFile) -> Value {
    json!({
        "version": file.version,
        "services": file.services.iter().map(service_json).collect::<Vec<_>>(),
    })
}

/// One line per service, one indented line per real server.
pub(crate) fn text(file: &ProcFile) -> String {
    let mut out = String::new();
    for s in &file.services {
        let c = &s.counters;
        let bytes = c.bytes.map(|b| format!(" bytes={b}")).unwrap_or_default();
        let _ = writeln!(
            out,
            "{} {} size={} mode={} servers={} rebuilds={} last_rebuild={} moved={} \
             decisions={} fallbacks={} refusals={}{bytes} stale={}",
            s.proto,
            s.address,
            s.size.slots(),
            s.mode.name(),
            s.dests.len(),
            c.rebuilds,
            c.last_rebuild,
            c.moved,
            c.decisions,
            c.fallbacks,
            c.refusals,
            if s.stale { "yes" } else { "no" },
        );
        let names: Vec<String> = s
            .dests
            .iter()
            .map(|d| HostPort(&d.addr, d.port).to_string())
            .collect();
        let width = names.iter().map(String::len).max().unwrap_or(0);
        for (d, n) in s.dests.iter().zip(&names) {
            let _ = writeln!(
                out,
                "  {n:<width$}  weight={} table_weight={} slots={} slot_share={}% weight_share={}%",
                d.weight, d.table_weight, d.slots, d.slot_share, d.weight_share
            );
        }
    }
    out
}
