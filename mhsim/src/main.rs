// SPDX-License-Identifier: GPL-2.0

//! `mhsim`: what the IPVS `mh` scheduler's Maglev table looks like for a set
//! of real servers, where clients go, and what changes when the set
//! changes. Built on `maglev`, the same core the kernel module compiles.

mod check;
mod ipvsadm;
mod procfile;
mod sim;
mod spec;

use std::collections::HashSet;
use std::io::{IsTerminal, Read, Write};
use std::process::ExitCode;

use maglev::{Addr, Order, TableSize, DEFAULT_TABLE_SIZE, TABLE_SIZES};
use serde_json::{json, Value};

use crate::sim::{Client, Input, Mode, Model};

const USAGE: &str = "\
usage:
  mhsim table  [OPTIONS] SERVER...|-
  mhsim lookup [OPTIONS] SERVER...|- (--client ADDR[:PORT] ... | --clients-file FILE)
  mhsim diff   [OPTIONS] --before SERVER...|- --after SERVER...|-
  mhsim check  [--proc FILE] [--ipvsadm FILE] [--json] < IPVSADM-OUTPUT
  mhsim proc   [--proc FILE|-] [--service SEL] [--json]
  mhsim help

SERVER is ADDR:PORT[:WEIGHT[:LASTWEIGHT]] or [V6ADDR]:PORT[:WEIGHT[:LASTWEIGHT]]
(weight 1 by default), in the order of the scheduler's list. LASTWEIGHT is
IPVS's last_weight, what upstream mode builds the table with: the weight the
server was added with, then its latest non-zero weight. It defaults to WEIGHT
if WEIGHT > 0 (and can only be WEIGHT then), else to 0, meaning added at
weight 0 (no slots); give it for a server drained to 0, e.g. 10.0.0.2:80:0:3.
'-' reads ipvsadm output from standard input and reports on each mh service
in it; either format is detected:
  ipvsadm -Sn            real servers sorted: enough for sorted mode with
                         the default --order sorted (upstream mode and
                         --order list refuse it)
  ipvsadm -Ln --nosort   the kernel's list order (newest first): needed for
                         upstream mode and --order list
Scheduler flags are read from either (-b mh-fallback,mh-port,flag-3, or
'(mh-fallback,mh-port,flag-3)'; flag-1 and flag-2 are mh-fallback and
mh-port).

options:
  --size M             table size, one of 251 509 1021 2039 4093 8191 16381
                       32749 65521 131071 (default 4093)
  --mode sorted|upstream  how ip_vs_mh_rs serves the service (default: upstream
                       for an ipvsadm service whose flags show flag-3, as the
                       module does, sorted otherwise; ipvsadm does not name
                       flag-3 for an mh service, except as a bare '-b' in
                       'ipvsadm -Sn' when it is the only flag: for services
                       in upstream mode give --mode upstream, as
                       /proc/net/ip_vs_mh's mode column says):
                       sorted: current weights (weight 0: no slots), --order
                         (default sorted), client ports hashed as --port-hash
                         says (default always);
                       upstream: the in-tree C ip_vs_mh, bit for bit: list
                         order, the client port hashed only with mh-port (the
                         service's flag, or --mh-port), each server's last
                         weight (a server drained to weight 0 keeps its
                         slots), and a server at weight 0 (or --unavailable)
                         takes no flows: refused, or the fallback walk with
                         mh-fallback (or --fallback). '--order sorted' and
                         '--port-hash always' contradict it (an error)
  --order sorted|list  population order in sorted mode (default sorted);
                       'list' is the C module's order when the servers are in
                       list order (as given by 'ipvsadm -Ln --nosort')
  --last-weight ADDR:PORT=W  (repeatable) the last weight of a real server of
                       the ipvsadm input: ipvsadm cannot show it, so a server
                       it shows at weight 0 otherwise has last weight 0, which
                       in upstream mode means no slots (added at weight 0, not
                       drained). For a server at a positive weight W can only
                       be that weight. In 'diff', for both sides
  --json               one JSON object on standard output; table and lookup
                       give 'mode' and 'order', and per server 'weight' (the
                       current one), 'last_weight' and 'table_weight' (the
                       one the table is built with)
  --service SEL        with '-' (or for 'proc'): only this mh service:
                       tcp:ADDR:PORT, udp:ADDR:PORT, sctp:ADDR:PORT,
                       fwm:MARK, fwm6:MARK, or N for the N-th mh service
lookup options:
  --client ADDR[:PORT]   a client (repeatable; a bare address means port 0)
  --clients-file FILE    clients, one ADDR[:PORT] per line ('#' comments)
  --port-hash always|flag  sorted mode: 'always' (default): every client's
                         port is hashed, as ip_vs_mh_rs does; 'flag': only
                         with '-b mh-port' (or --mh-port), port 0 otherwise,
                         as the C ip_vs_mh (and upstream mode)
  --mh-port              the service has '-b mh-port' (for SERVER lists)
  --fallback             skip unavailable servers (as '-b mh-fallback')
  --unavailable ADDR:PORT  treat this server as unavailable (repeatable)
  with --json, each of 'lookups' is {client, input, hashed_port, slot,
  server, dest}: 'client' as ADDR:PORT (port 0 if none was given), 'input'
  the client exactly as given, 'server' the index in 'servers' and 'dest'
  its ADDR:PORT, both null when no server is chosen
diff options:
  --before-file FILE, --after-file FILE   read ipvsadm output from FILE
                         ('ipvsadm -Sn' or 'ipvsadm -Ln --nosort', as for '-')
  --before-mode M, --after-mode M   the mode of each side (sorted or upstream;
                         default --mode, else each service's flag-3), e.g. the
                         one-time reshuffle of leaving upstream mode:
                         --before-mode upstream --after-mode sorted
  --client, --clients-file, --mh-port, --port-hash, --fallback, --unavailable
                         as for lookup, on both sides
  Slot owners are compared when both sides hash clients the same way (both
  hash the port, or neither), so that a client keeps its slot. Otherwise a
  client's slot changes too: the slot figures (changed_slots, gained, lost,
  remaining_*) are null, and 'estimated_moved_fraction' is 1 - the sum over
  servers of (before slots / M) * (after slots / M): the share of clients
  expected to move if a client's slots before and after are independent and
  uniform (slot owners only, unavailable servers and the fallback walk aside).
  Give clients for exact figures: each is looked up on both sides as 'lookup'
  does, and the report says who moves; with --json 'moved', 'clients',
  'fraction' (moved / clients) and 'per_client': [{input, before, after,
  moved}], 'before' and 'after' the server's ADDR:PORT or null (refused).
  Also in the JSON: 'slots_comparable', 'before_mode', 'after_mode', and in
  'before' and 'after' each side's mode, order and lookup settings.

check: compare the kernel's tables with the configuration and the model,
  e.g. 'ipvsadm -Sn | mhsim check'. Each mh service of the proc file is
  matched with the same service of the ipvsadm input; its table is rebuilt
  with the proc file's size and mode (for 'list' and 'upstream', in the
  order of the kernel's D lines) from the ipvsadm servers and weights, and
  each server's weight (ipvsadm vs the weight the kernel's table was built
  with) and slot count (model vs kernel) is compared, as is the set of
  servers. In mode 'upstream' a server drained to weight 0 keeps its slots
  at its table weight (as the C ip_vs_mh), and only a positive ipvsadm
  weight is compared. A service whose flags in the ipvsadm input show
  flag-3 (rarely: see --mode) must be in mode 'upstream' (proc format 3 on;
  without flag-3 the module's 'upstream' parameter may still choose it). The size, mode and table weights come
  from the proc file: --size, --order, --mode and --last-weight are not for
  check. One line per service:
    OK PROTO ADDRESS size=M order=ORDER servers=N
    MISMATCH PROTO ADDRESS: WHAT DIFFERS     (details indented below)
    MISSING PROTO ADDRESS: ...               (in one input only)
  Exit status 0 if every service is OK, 1 otherwise, 2 on bad input.
  --proc FILE          the ip_vs_mh_rs proc file (default /proc/net/ip_vs_mh;
                       '-' for standard input)
  --ipvsadm FILE       read the ipvsadm output ('ipvsadm -Sn' or
                       'ipvsadm -Ln --nosort') from FILE, not standard input
  --json               one JSON object: ok, proc, services (one per service)

proc: the kernel's view, read from /proc/net/ip_vs_mh (format versions 1 to
  3, by its column headers: columns it does not know are skipped). One line
  per service and one per real server; with --json one object:
    {version: N, services: [{service, proto, address, size, mode,
     rebuilds, last_rebuild, moved, decisions, fallbacks, refusals, bytes,
     stale, dests: [{address, weight, table_weight, slots, slot_share,
     weight_share}]}]}
  'address' is ADDR:PORT, or the mark of an fwmark service (which also has
  'fwmark'); 'bytes' is null before format 2; before format 3 'table_weight'
  is the weight and 'stale' false; the shares are strings, e.g. 20.00.
  --proc FILE          the proc file (default /proc/net/ip_vs_mh; '-' for
                       standard input)
  --service SEL        only this service (as above; exit 2 if it is absent)

Bad input: one message on standard error, exit status 2.
";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Cmd {
    Table,
    Lookup,
    Diff,
    Check,
    Proc,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    Servers,
    Before,
    After,
}

struct Opts {
    cmd: Cmd,
    size: TableSize,
    /// `--order`, if given.
    order: Option<Order>,
    /// `--mode`, if given (else each service's flag-3 decides).
    mode: Option<Mode>,
    before_mode: Option<Mode>,
    after_mode: Option<Mode>,
    json: bool,
    service: Option<String>,
    servers: Vec<String>,
    before: Vec<String>,
    after: Vec<String>,
    before_file: Option<String>,
    after_file: Option<String>,
    clients: Vec<String>,
    clients_file: Option<String>,
    mh_port: bool,
    /// `--port-hash`, if given: `always` is true.
    always_port: Option<bool>,
    fallback: bool,
    unavailable: Vec<String>,
    /// `--last-weight ADDR:PORT=W`, as given.
    last_weights: Vec<String>,
    proc_file: Option<String>,
    ipvsadm_file: Option<String>,
}

fn parse_size(v: &str) -> Result<TableSize, String> {
    let list = TABLE_SIZES
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    v.parse::<u32>()
        .ok()
        .and_then(TableSize::new)
        .ok_or_else(|| format!("table size '{v}' is not one of {list}"))
}

fn parse_args(args: &[String]) -> Result<Option<Opts>, String> {
    let Some(cmd) = args.first() else {
        return Err(
            "no command given (table, lookup, diff, check or proc; see mhsim --help)".into(),
        );
    };
    let cmd = match cmd.as_str() {
        "table" => Cmd::Table,
        "lookup" => Cmd::Lookup,
        "diff" => Cmd::Diff,
        "check" => Cmd::Check,
        "proc" => Cmd::Proc,
        "help" | "--help" | "-h" => return Ok(None),
        other => {
            return Err(format!(
                "unknown command '{other}' (table, lookup, diff, check or proc; see mhsim --help)"
            ))
        }
    };
    let mut o = Opts {
        cmd,
        size: TableSize::new(DEFAULT_TABLE_SIZE).expect("default size"),
        order: None,
        mode: None,
        before_mode: None,
        after_mode: None,
        json: false,
        service: None,
        servers: Vec::new(),
        before: Vec::new(),
        after: Vec::new(),
        before_file: None,
        after_file: None,
        clients: Vec::new(),
        clients_file: None,
        mh_port: false,
        always_port: None,
        fallback: false,
        unavailable: Vec::new(),
        last_weights: Vec::new(),
        proc_file: None,
        ipvsadm_file: None,
    };
    let mut target = Target::Servers;
    let mut i = 1;
    while i < args.len() {
        let a = args[i].as_str();
        i += 1;
        if a == "-" || !a.starts_with('-') {
            let list = match target {
                Target::Servers => &mut o.servers,
                Target::Before => &mut o.before,
                Target::After => &mut o.after,
            };
            list.push(a.to_string());
            continue;
        }
        if a == "--help" || a == "-h" {
            return Ok(None);
        }
        let (name, inline) = match a.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
            _ => (a, None),
        };
        let takes_value = matches!(
            name,
            "--size"
                | "--order"
                | "--mode"
                | "--before-mode"
                | "--after-mode"
                | "--last-weight"
                | "--service"
                | "--client"
                | "--clients-file"
                | "--unavailable"
                | "--port-hash"
                | "--before-file"
                | "--after-file"
                | "--proc"
                | "--ipvsadm"
        );
        let value = if takes_value {
            match inline {
                Some(v) => Some(v),
                None => {
                    let v = args
                        .get(i)
                        .ok_or_else(|| format!("option {name} needs a value"))?;
                    i += 1;
                    Some(v.clone())
                }
            }
        } else {
            if inline.is_some() {
                return Err(format!("option {name} takes no value"));
            }
            None
        };
        let only = |want: Cmd, what: &str| -> Result<(), String> {
            if cmd == want {
                Ok(())
            } else {
                Err(format!("option {name} is only for '{what}'"))
            }
        };
        // Options of 'lookup' that 'diff' has too (for its clients).
        let lookup_or_diff = || -> Result<(), String> {
            if matches!(cmd, Cmd::Lookup | Cmd::Diff) {
                Ok(())
            } else {
                Err(format!("option {name} is only for 'lookup' and 'diff'"))
            }
        };
        let model_opt = matches!(name, "--size" | "--order" | "--mode" | "--last-weight");
        if cmd == Cmd::Check && (model_opt || name == "--service") {
            return Err(format!(
                "option {name} is not for 'check' (the size, mode and table weights come \
                 from the proc file)"
            ));
        }
        if cmd == Cmd::Proc && model_opt {
            return Err(format!(
                "option {name} is not for 'proc' (the size and mode come from the proc file)"
            ));
        }
        let v = value.unwrap_or_default();
        match name {
            "--size" => o.size = parse_size(&v)?,
            "--proc" => {
                if cmd != Cmd::Proc {
                    only(Cmd::Check, "check' and 'proc")?;
                }
                o.proc_file = Some(v);
            }
            "--ipvsadm" => {
                only(Cmd::Check, "check")?;
                o.ipvsadm_file = Some(v);
            }
            "--order" => {
                o.order = Some(match v.as_str() {
                    "sorted" => Order::Sorted,
                    "list" => Order::List,
                    _ => return Err(format!("order '{v}' is not 'sorted' or 'list'")),
                })
            }
            "--mode" => o.mode = Some(Mode::parse(&v, name)?),
            "--before-mode" => {
                only(Cmd::Diff, "diff")?;
                o.before_mode = Some(Mode::parse(&v, name)?);
            }
            "--after-mode" => {
                only(Cmd::Diff, "diff")?;
                o.after_mode = Some(Mode::parse(&v, name)?);
            }
            "--last-weight" => o.last_weights.push(v),
            "--json" => o.json = true,
            "--service" => o.service = Some(v),
            "--client" => {
                lookup_or_diff()?;
                o.clients.push(v);
            }
            "--clients-file" => {
                lookup_or_diff()?;
                o.clients_file = Some(v);
            }
            "--mh-port" => {
                lookup_or_diff()?;
                o.mh_port = true;
            }
            "--port-hash" => {
                lookup_or_diff()?;
                o.always_port = Some(match v.as_str() {
                    "always" => true,
                    "flag" => false,
                    _ => return Err(format!("--port-hash '{v}' is not 'always' or 'flag'")),
                });
            }
            "--fallback" => {
                lookup_or_diff()?;
                o.fallback = true;
            }
            "--unavailable" => {
                lookup_or_diff()?;
                o.unavailable.push(v);
            }
            "--before" => {
                only(Cmd::Diff, "diff")?;
                target = Target::Before;
            }
            "--after" => {
                only(Cmd::Diff, "diff")?;
                target = Target::After;
            }
            "--before-file" => {
                only(Cmd::Diff, "diff")?;
                o.before_file = Some(v);
            }
            "--after-file" => {
                only(Cmd::Diff, "diff")?;
                o.after_file = Some(v);
            }
            _ => return Err(format!("unknown option '{a}' (see mhsim --help)")),
        }
    }
    Ok(Some(o))
}

/// Reads standard input at most once.
struct Stdin {
    used: bool,
}

impl Stdin {
    fn read(&mut self) -> Result<String, String> {
        if self.used {
            return Err("standard input ('-') can be read only once".into());
        }
        self.used = true;
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| format!("cannot read standard input: {e}"))?;
        Ok(s)
    }
}

fn read_file(path: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))
}

/// The inputs named by `tokens` (servers, or '-') or `file` (ipvsadm).
/// `what` names the set in messages.
fn resolve(
    tokens: &[String],
    file: Option<&str>,
    stdin: &mut Stdin,
    service: Option<&str>,
    what: &str,
) -> Result<(Vec<Input>, bool), String> {
    let from_ipvsadm = tokens.iter().any(|t| t == "-") || file.is_some();
    if from_ipvsadm {
        if tokens.len() > 1 || (file.is_some() && !tokens.is_empty()) {
            return Err(format!(
                "{what}: '-' (or a file) cannot be combined with other servers"
            ));
        }
        let text = match file {
            Some(f) => read_file(f)?,
            None => stdin.read()?,
        };
        let services = ipvsadm::parse(&text)?;
        if services.is_empty() {
            return Err(format!("{what}: no mh service in the ipvsadm input"));
        }
        let picked: Vec<_> = match service {
            None => services,
            Some(sel) => {
                let hit = if let Ok(n) = sel.parse::<usize>() {
                    n.checked_sub(1).and_then(|i| services.get(i)).cloned()
                } else {
                    let id = ipvsadm::normalise_selector(sel)?;
                    services.iter().find(|s| s.id == id).cloned()
                };
                let Some(s) = hit else {
                    let have: Vec<_> = services.iter().map(|s| s.id.as_str()).collect();
                    return Err(format!(
                        "{what}: no mh service '{sel}' in the ipvsadm input (there is: {})",
                        have.join(", ")
                    ));
                };
                vec![s]
            }
        };
        let inputs = picked.iter().map(Input::from_service).collect();
        return Ok((inputs, true));
    }
    if tokens.is_empty() {
        return Err(format!("{what}: no servers given"));
    }
    if service.is_some() && what == "servers" {
        return Err("--service needs '-' (ipvsadm input)".into());
    }
    let mut servers = Vec::new();
    let mut seen = HashSet::new();
    for t in tokens {
        let (s, last) = spec::parse_server(t)?;
        if !seen.insert((s.addr, s.port)) {
            return Err(format!(
                "{what}: server {} given twice",
                spec::HostPort(&s.addr, s.port)
            ));
        }
        servers.push((s, last));
    }
    Ok((vec![Input::from_servers(servers)], false))
}

/// The `--last-weight ADDR:PORT=W` options, each with whether it named a
/// server of the ipvsadm input yet.
struct LastWeights {
    given: Vec<(Addr, u16, i32)>,
    used: Vec<bool>,
}

impl LastWeights {
    fn parse(o: &Opts) -> Result<LastWeights, String> {
        let mut given: Vec<(Addr, u16, i32)> = Vec::new();
        for t in &o.last_weights {
            let (a, p, w) = spec::parse_last_weight(t)?;
            if given.iter().any(|g| (g.0, g.1) == (a, p)) {
                return Err(format!(
                    "--last-weight: server {} given twice",
                    spec::HostPort(&a, p)
                ));
            }
            given.push((a, p, w));
        }
        let used = vec![false; given.len()];
        Ok(LastWeights { given, used })
    }

    /// Sets the last weights of the servers of ipvsadm `inputs`.
    fn apply(&mut self, inputs: &mut [Input]) -> Result<(), String> {
        for input in inputs {
            for (i, s) in input.servers.iter().enumerate() {
                let Some(k) = self
                    .given
                    .iter()
                    .position(|g| (g.0, g.1) == (s.addr, s.port))
                else {
                    continue;
                };
                let w = self.given[k].2;
                let what = format!("--last-weight {}", spec::HostPort(&s.addr, s.port));
                spec::check_last_weight(s.weight, w, &what)?;
                input.last_weights[i] = w;
                self.used[k] = true;
            }
        }
        Ok(())
    }

    /// Refuses a `--last-weight` that named no server; `any_ipvsadm`: some
    /// servers came from ipvsadm input.
    fn all_used(&self, any_ipvsadm: bool) -> Result<(), String> {
        if !self.given.is_empty() && !any_ipvsadm {
            return Err(
                "--last-weight is for ipvsadm input ('-'); in a SERVER list write \
                 ADDR:PORT:0:LASTWEIGHT"
                    .into(),
            );
        }
        match self.given.iter().zip(&self.used).find(|(_, &u)| !u) {
            Some((g, _)) => Err(format!(
                "--last-weight {}: not a real server of the mh services read",
                spec::HostPort(&g.0, g.1)
            )),
            None => Ok(()),
        }
    }
}

/// The inputs named by `tokens` or `file` (as [`resolve`]), with the
/// `--last-weight` options applied to ipvsadm input.
fn resolve_with(
    tokens: &[String],
    file: Option<&str>,
    stdin: &mut Stdin,
    service: Option<&str>,
    what: &str,
    last: &mut LastWeights,
) -> Result<(Vec<Input>, bool), String> {
    let (mut inputs, ipvs) = resolve(tokens, file, stdin, service, what)?;
    if ipvs {
        last.apply(&mut inputs)?;
    }
    Ok((inputs, ipvs))
}

/// The model of `input` in `mode` (`None`: upstream if the service has
/// flag-3, sorted otherwise), with the options' order and lookup settings.
/// A model in list order needs the servers in the kernel's list order,
/// which `ipvsadm -Sn` does not give (it sorts them).
fn model_for(o: &Opts, input: &Input, mode: Option<Mode>) -> Result<Model, String> {
    let model = model_in(o, input, mode)?;
    if model.order == Order::List && input.sorted {
        return Err(format!(
            "service {}: {} fills the table in the kernel's list order, but 'ipvsadm -Sn' \
             prints the real servers sorted; give 'ipvsadm -Ln --nosort' output",
            input.service.as_deref().unwrap_or("?"),
            if model.mode == Mode::Upstream {
                "upstream mode"
            } else {
                "--order list"
            }
        ));
    }
    Ok(model)
}

/// For lookup and diff, whose reports have no room for it: the note of
/// [`sim::unknown_last_weights`] on standard error, in upstream mode.
fn note_last_weights(b: &sim::Built<'_>) {
    if b.model.mode == Mode::Upstream {
        if let Some(note) = sim::unknown_last_weights(b.input) {
            eprintln!("mhsim: note: {note}");
        }
    }
}

fn model_in(o: &Opts, input: &Input, mode: Option<Mode>) -> Result<Model, String> {
    let mode = mode.unwrap_or(if input.flag3 {
        Mode::Upstream
    } else {
        Mode::Sorted
    });
    let mh_port = o.mh_port || input.mh_port;
    let fallback = o.fallback || input.mh_fallback;
    match mode {
        Mode::Sorted => Ok(Model {
            mode,
            order: o.order.unwrap_or(Order::Sorted),
            always_port: o.always_port.unwrap_or(true),
            mh_port,
            fallback,
        }),
        Mode::Upstream => {
            let why = || match (&input.service, o.mode.is_none() && input.flag3) {
                (Some(s), true) => format!("service {s} has flag-3, so it is in upstream mode,"),
                _ => "upstream mode".to_string(),
            };
            if o.order == Some(Order::Sorted) {
                return Err(format!(
                    "{} which fills the table in list order: --order sorted contradicts it \
                     (--mode sorted models sorted mode)",
                    why()
                ));
            }
            if o.always_port == Some(true) {
                return Err(format!(
                    "{} which hashes the client port only with mh-port: --port-hash always \
                     contradicts it (--mode sorted models sorted mode)",
                    why()
                ));
            }
            Ok(Model {
                mode,
                order: Order::List,
                always_port: false,
                mh_port,
                fallback,
            })
        }
    }
}

/// One JSON value, or `{"services": [...]}` for several reports.
fn combine_json(mut v: Vec<Value>) -> Value {
    if v.len() == 1 {
        v.remove(0)
    } else {
        json!({ "services": v })
    }
}

fn render(values: Vec<Value>, texts: Vec<String>, as_json: bool) -> String {
    if as_json {
        let mut s = combine_json(values).to_string();
        s.push('\n');
        s
    } else {
        texts.join("\n")
    }
}

/// The inputs of table and lookup: the SERVER list or ipvsadm input, with
/// `--last-weight` applied.
fn server_inputs(o: &Opts, stdin: &mut Stdin) -> Result<Vec<Input>, String> {
    let mut last = LastWeights::parse(o)?;
    let (inputs, ipvs) = resolve_with(
        &o.servers,
        None,
        stdin,
        o.service.as_deref(),
        "servers",
        &mut last,
    )?;
    last.all_used(ipvs)?;
    Ok(inputs)
}

fn cmd_table(o: &Opts, stdin: &mut Stdin) -> Result<String, String> {
    let inputs = server_inputs(o, stdin)?;
    let mut values = Vec::new();
    let mut texts = Vec::new();
    for input in &inputs {
        let b = sim::build(input, o.size, model_for(o, input, o.mode)?)?;
        if o.json {
            values.push(sim::table_json(&b));
        } else {
            texts.push(sim::table_text(&b));
        }
    }
    Ok(render(values, texts, o.json))
}

fn client(text: &str) -> Result<Client, String> {
    let (addr, port) = spec::parse_client(text)?;
    Ok(Client {
        text: text.to_string(),
        addr,
        port,
    })
}

fn read_clients(o: &Opts) -> Result<Vec<Client>, String> {
    let mut out = Vec::new();
    for c in &o.clients {
        out.push(client(c)?);
    }
    if let Some(f) = &o.clients_file {
        let text = read_file(f)?;
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            out.push(client(line).map_err(|e| format!("{f} line {}: {e}", n + 1))?);
        }
    }
    if out.is_empty() {
        return Err("no clients given (--client ADDR[:PORT] or --clients-file FILE)".into());
    }
    Ok(out)
}

fn parse_unavailable(o: &Opts) -> Result<Vec<(Addr, u16)>, String> {
    o.unavailable
        .iter()
        .map(|u| spec::parse_host_port(u).map_err(|e| format!("--unavailable: {e}")))
        .collect()
}

fn cmd_lookup(o: &Opts, stdin: &mut Stdin) -> Result<String, String> {
    let clients = read_clients(o)?;
    let unavailable = parse_unavailable(o)?;
    let inputs = server_inputs(o, stdin)?;
    let mut values = Vec::new();
    let mut texts = Vec::new();
    for input in &inputs {
        let b = sim::build(input, o.size, model_for(o, input, o.mode)?)?;
        sim::check_unavailable(&b, &unavailable)?;
        note_last_weights(&b);
        let res = sim::run_lookups(&b, &clients, &unavailable);
        if o.json {
            values.push(sim::lookup_json(&b, &res));
        } else {
            texts.push(sim::lookup_text(&b, &res));
        }
    }
    Ok(render(values, texts, o.json))
}

fn cmd_diff(o: &Opts, stdin: &mut Stdin) -> Result<String, String> {
    if !o.servers.is_empty() {
        return Err("diff: put the servers after --before or --after".into());
    }
    let clients = if o.clients.is_empty() && o.clients_file.is_none() {
        None
    } else {
        Some(read_clients(o)?)
    };
    let unavailable = parse_unavailable(o)?;
    let sel = o.service.as_deref();
    let mut last = LastWeights::parse(o)?;
    let (before, b_ipvs) = resolve_with(
        &o.before,
        o.before_file.as_deref(),
        stdin,
        sel,
        "--before",
        &mut last,
    )?;
    let (after, a_ipvs) = resolve_with(
        &o.after,
        o.after_file.as_deref(),
        stdin,
        sel,
        "--after",
        &mut last,
    )?;
    last.all_used(b_ipvs || a_ipvs)?;
    let pairs: Vec<(&Input, &Input)> = if before.len() == 1 && after.len() == 1 {
        vec![(&before[0], &after[0])]
    } else if b_ipvs && a_ipvs {
        let p: Vec<_> = before
            .iter()
            .filter_map(|b| {
                after
                    .iter()
                    .find(|a| a.service == b.service)
                    .map(|a| (b, a))
            })
            .collect();
        if p.is_empty() {
            return Err("diff: the two ipvsadm inputs have no mh service in common".into());
        }
        p
    } else {
        return Err(
            "diff: several mh services in the ipvsadm input; pick one with --service".into(),
        );
    };
    let mut values = Vec::new();
    let mut texts = Vec::new();
    for (b, a) in pairs {
        let bb = sim::build(b, o.size, model_for(o, b, o.before_mode.or(o.mode))?)?;
        let ab = sim::build(a, o.size, model_for(o, a, o.after_mode.or(o.mode))?)?;
        note_last_weights(&bb);
        note_last_weights(&ab);
        if let Some((x, p)) = unavailable.iter().find(|(x, p)| {
            ![&bb, &ab]
                .iter()
                .any(|t| t.input.servers.iter().any(|s| (s.addr, s.port) == (*x, *p)))
        }) {
            return Err(format!(
                "--unavailable {} is not one of the servers",
                spec::HostPort(x, *p)
            ));
        }
        let d = sim::diff(&bb, &ab);
        let moves = clients.as_ref().map(|c| {
            sim::client_moves(
                &sim::run_lookups(&bb, c, &unavailable),
                &sim::run_lookups(&ab, c, &unavailable),
            )
        });
        if o.json {
            values.push(sim::diff_json(&bb, &ab, &d, moves.as_deref()));
        } else {
            texts.push(sim::diff_text(&bb, &ab, &d, moves.as_deref()));
        }
    }
    Ok(render(values, texts, o.json))
}

/// The default `--proc` file.
const PROC_FILE: &str = "/proc/net/ip_vs_mh";

/// Refuses to wait for a terminal: `what` should come on standard input,
/// as in `example`.
fn stdin_piped(what: &str, example: &str) -> Result<(), String> {
    if std::io::stdin().is_terminal() {
        Err(format!(
            "no {what} on standard input (e.g. '{example}'; see mhsim --help)"
        ))
    } else {
        Ok(())
    }
}

/// Reads the proc file `name`; `default`: it was not named, so a missing
/// file means the module is not loaded.
fn read_proc_file(name: &str, default: bool) -> Result<String, String> {
    std::fs::read_to_string(name).map_err(|e| {
        let hint = if default && e.kind() == std::io::ErrorKind::NotFound {
            " (is ip_vs_mh_rs loaded?)"
        } else {
            ""
        };
        format!("cannot read {name}: {e}{hint}")
    })
}

/// `mhsim proc`: the proc file, as text or JSON.
fn cmd_proc(o: &Opts, stdin: &mut Stdin) -> Result<String, String> {
    if !o.servers.is_empty() {
        return Err(format!(
            "proc takes no servers (give the proc file with --proc FILE, '--proc -' for \
             standard input; default {PROC_FILE})"
        ));
    }
    let name = o.proc_file.as_deref().unwrap_or(PROC_FILE);
    let text = if name == "-" {
        stdin_piped("proc file", "cat /proc/net/ip_vs_mh | mhsim proc --proc -")?;
        stdin.read()?
    } else {
        read_proc_file(name, o.proc_file.is_none())?
    };
    let mut file = check::parse_proc(&text, name)?;
    if let Some(sel) = &o.service {
        file.services = vec![procfile::select(&file, sel, name)?];
    }
    Ok(if o.json {
        let mut s = procfile::json(&file).to_string();
        s.push('\n');
        s
    } else {
        procfile::text(&file)
    })
}

/// `mhsim check`: the report and whether every service is OK.
fn cmd_check(o: &Opts, stdin: &mut Stdin) -> Result<(String, bool), String> {
    // '--ipvsadm -' is standard input, as is the default.
    let ipvsadm_file = o.ipvsadm_file.as_deref().filter(|f| *f != "-");
    match o.servers.as_slice() {
        [] => {}
        [dash] if dash == "-" && ipvsadm_file.is_none() => {}
        _ => {
            return Err(
                "check takes no servers: the ipvsadm output comes on standard input \
                 or with --ipvsadm FILE"
                    .into(),
            )
        }
    }
    let proc_name = o.proc_file.as_deref().unwrap_or(PROC_FILE);
    let from_stdin = |what: &str| stdin_piped(what, "ipvsadm -Sn | mhsim check");
    if proc_name == "-" && ipvsadm_file.is_none() {
        return Err("with --proc -, give the ipvsadm output with --ipvsadm FILE".into());
    }
    // Standard input first, whichever input it is, so that the command
    // piped in is never cut short by an error about the other one.
    let (ipvs_text, proc_text) = if proc_name == "-" {
        from_stdin("proc file")?;
        let proc_text = stdin.read()?;
        (read_file(ipvsadm_file.unwrap_or_default())?, proc_text)
    } else {
        let ipvs_text = match ipvsadm_file {
            Some(f) => read_file(f)?,
            None => {
                from_stdin("ipvsadm output")?;
                stdin.read()?
            }
        };
        (ipvs_text, read_proc_file(proc_name, o.proc_file.is_none())?)
    };
    let proc = check::parse_proc(&proc_text, proc_name)?;
    let ipvs = ipvsadm::parse(&ipvs_text)?;
    check::validate_ipvsadm(&ipvs)?;
    let report = check::check(&proc.services, &ipvs, proc_name);
    let out = if o.json {
        let mut s = check::json(&report).to_string();
        s.push('\n');
        s
    } else {
        check::text(&report)
    };
    Ok((out, report.ok()))
}

/// Standard output and the exit status (0, or 1 for a failed check).
fn run(args: &[String]) -> Result<(String, u8), String> {
    let Some(o) = parse_args(args)? else {
        return Ok((USAGE.to_string(), 0));
    };
    let mut stdin = Stdin { used: false };
    let out = match o.cmd {
        Cmd::Table => cmd_table(&o, &mut stdin)?,
        Cmd::Lookup => cmd_lookup(&o, &mut stdin)?,
        Cmd::Diff => cmd_diff(&o, &mut stdin)?,
        Cmd::Proc => cmd_proc(&o, &mut stdin)?,
        Cmd::Check => {
            let (out, ok) = cmd_check(&o, &mut stdin)?;
            return Ok((out, if ok { 0 } else { 1 }));
        }
    };
    Ok((out, 0))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok((out, status)) => {
            let mut stdout = std::io::stdout().lock();
            // A closed pipe (e.g. `| head`) is not an error worth reporting.
            let _ = stdout.write_all(out.as_bytes());
            let _ = stdout.flush();
            ExitCode::from(status)
        }
        Err(msg) => {
            eprintln!("mhsim: {msg}");
            ExitCode::from(2)
        }
    }
}
