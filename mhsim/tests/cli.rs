// SPDX-License-Identifier: GPL-2.0

//! End-to-end tests of the `mhsim` binary: JSON shapes, ipvsadm input and
//! every kind of bad input.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn mhsim(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mhsim"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn mhsim");
    {
        let mut input = child.stdin.take().expect("stdin");
        if let Some(s) = stdin {
            // mhsim may refuse its arguments and exit before reading.
            if let Err(e) = input.write_all(s.as_bytes()) {
                assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "write stdin: {e}");
            }
        }
    }
    child.wait_with_output().expect("wait")
}

fn ok_json(args: &[&str], stdin: Option<&str>) -> Value {
    let out = mhsim(args, stdin);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Notes (e.g. on last weights ipvsadm cannot show) may go to stderr,
    // nothing else.
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.lines().all(|l| l.starts_with("mhsim: note: ")),
        "{args:?}: {err}"
    );
    serde_json::from_slice(&out.stdout).expect("valid JSON")
}

/// Bad input: exit status 2, nothing on stdout, one line on stderr.
fn bad(args: &[&str], stdin: Option<&str>, needle: &str) {
    let out = mhsim(args, stdin);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert!(out.stdout.is_empty(), "{args:?} printed to stdout");
    assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    assert!(
        err.to_lowercase().contains(&needle.to_lowercase()),
        "{args:?}: '{err}' lacks '{needle}'"
    );
}

fn temp_file(name: &str, text: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("mhsim-cli-{name}"));
    std::fs::write(&p, text).expect("write temp file");
    p
}

const IPVSADM: &str = "\
-A -t 10.0.0.1:80 -s mh -b mh-port,mh-fallback
-a -t 10.0.0.1:80 -r 10.1.0.2:8080 -m -w 3
-a -t 10.0.0.1:80 -r 10.1.0.1:8080 -m -w 1
-A -t 10.0.0.1:443 -s wrr
-a -t 10.0.0.1:443 -r 10.1.0.9:443 -g -w 1
-A -u [2001:db8::1]:53 -s mh
-a -u [2001:db8::1]:53 -r [2001:db8::2]:53 -g -w 1
-a -u [2001:db8::1]:53 -r [2001:db8::3]:53 -g -w 2
-A -f 7 -s mh
-a -f 7 -r 10.1.0.2:0 -g -w 1
";

#[test]
fn table_json_shape() {
    let v = ok_json(
        &[
            "table",
            "--json",
            "--size",
            "251",
            "10.0.0.1:80",
            "[2001:db8::1]:443:3",
            "10.0.0.2:80:0",
        ],
        None,
    );
    assert_eq!(v["size"], 251);
    assert_eq!(v["order"], "sorted");
    let servers = v["servers"].as_array().expect("servers");
    assert_eq!(servers.len(), 3);
    assert_eq!(servers[0]["addr"], "10.0.0.1");
    assert_eq!(servers[0]["port"], 80);
    assert_eq!(servers[0]["weight"], 1);
    assert_eq!(servers[1]["addr"], "2001:db8::1");
    assert_eq!(servers[1]["weight"], 3);
    assert_eq!(servers[2]["slots"], 0);
    let table = v["table"].as_array().expect("table");
    assert_eq!(table.len(), 251);
    let mut counts = [0u64; 3];
    for e in table {
        let i = e.as_u64().expect("index (no empty slot here)") as usize;
        counts[i] += 1;
    }
    for (i, s) in servers.iter().enumerate() {
        assert_eq!(s["slots"].as_u64(), Some(counts[i]));
    }
    assert_eq!(counts[0] + counts[1], 251);
    assert!(v["imbalance"]["max_over_avg"].as_f64().expect("imbalance") >= 1.0);
}

#[test]
fn table_list_order_matches_known_answer() {
    // The first pinned vector of the core, through the CLI.
    let ka = &maglev::KNOWN_ANSWERS[0];
    assert_eq!(ka.name, "three-equal-4093-list");
    let v = ok_json(
        &[
            "table",
            "--json",
            "--order",
            "list",
            "10.1.0.1:80",
            "10.1.0.2:80",
            "10.1.0.3:80",
        ],
        None,
    );
    let table: Vec<u16> = v["table"]
        .as_array()
        .expect("table")
        .iter()
        .map(|x| x.as_u64().expect("index") as u16)
        .collect();
    assert_eq!(maglev::table_fingerprint(&table), ka.fingerprint);
    assert_eq!(v["order"], "list");
}

#[test]
fn empty_slots_are_null() {
    let v = ok_json(&["table", "--json", "--size", "251", "10.0.0.1:80:0"], None);
    let table = v["table"].as_array().expect("table");
    assert_eq!(table.len(), 251);
    assert!(table.iter().all(Value::is_null));
    assert!(v["imbalance"].is_null());
}

#[test]
fn table_text_report() {
    let out = mhsim(&["table", "10.0.0.1:80", "10.0.0.2:80:3"], None);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).expect("utf8");
    assert!(text.contains("10.0.0.2:80"));
    assert!(text.contains("imbalance"));
    assert!(text.contains("75.000%"));
}

#[test]
fn lookup_json_shape_and_consistency() {
    let servers = ["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80:2"];
    let mut args = vec!["table", "--json", "--order", "list"];
    args.extend(servers);
    let t = ok_json(&args, None);
    let table = t["table"].as_array().expect("table").clone();
    let mut args = vec!["lookup", "--json", "--order", "list", "--mh-port"];
    args.extend(servers);
    args.extend(["--client", "192.0.2.1:1234", "--client", "192.0.2.2"]);
    let v = ok_json(&args, None);
    let lookups = v["lookups"].as_array().expect("lookups");
    assert_eq!(lookups.len(), 2);
    assert_eq!(lookups[0]["client"], "192.0.2.1:1234");
    assert_eq!(lookups[1]["client"], "192.0.2.2:0");
    for l in lookups {
        let slot = l["slot"].as_u64().expect("slot") as usize;
        assert_eq!(l["server"], table[slot]);
        assert!(l["dest"].is_string());
    }
    assert_eq!(v["mh_port"], true);
    // By default every client port is hashed (as ip_vs_mh_rs does).
    let v = ok_json(
        &["lookup", "--json", "10.0.0.1:80", "--client", "192.0.2.9:7"],
        None,
    );
    assert_eq!(v["port_hash"], "always");
    assert_eq!(v["ports_hashed"], true);
    assert_eq!(v["lookups"][0]["hashed_port"], 7);
    // The C module's rule: port 0 unless the service has mh-port.
    let flag = |port: &str, extra: &[&str]| {
        let client = format!("192.0.2.9:{port}");
        let mut args = vec!["lookup", "--json", "--port-hash", "flag", "10.0.0.1:80"];
        args.extend(extra);
        args.extend(["--client", client.as_str()]);
        ok_json(&args, None)
    };
    let (a, b) = (flag("1", &[]), flag("2", &[]));
    assert_eq!(a["lookups"][0]["slot"], b["lookups"][0]["slot"]);
    assert_eq!(a["lookups"][0]["hashed_port"], 0);
    assert_eq!(a["ports_hashed"], false);
    let c = flag("2", &["--mh-port"]);
    assert_eq!(c["lookups"][0]["hashed_port"], 2);
    assert_eq!(c["ports_hashed"], true);
}

#[test]
fn lookup_matches_core() {
    let size = maglev::TableSize::new(4093).expect("size");
    let client = maglev::Addr::V4([203, 0, 113, 7]);
    let v = ok_json(
        &[
            "lookup",
            "--json",
            "--mh-port",
            "10.0.0.1:80",
            "10.0.0.2:80",
            "--client",
            "203.0.113.7:4321",
        ],
        None,
    );
    assert_eq!(
        v["lookups"][0]["slot"].as_u64(),
        Some(u64::from(maglev::slot_of(size, &client, 4321)))
    );
}

#[test]
fn lookup_many_clients_from_file() {
    let mut text = String::from("# clients\n\n");
    for i in 0..2500u32 {
        let a = 0xc633_6400u32 + i; // 198.51.100.0 onwards
        let b = a.to_be_bytes();
        text.push_str(&format!(
            "{}.{}.{}.{}:{}\n",
            b[0],
            b[1],
            b[2],
            b[3],
            1024 + i
        ));
    }
    text.push_str("[2001:db8::77]:53\n2001:db8::78\n");
    let f = temp_file("clients.txt", &text);
    let v = ok_json(
        &[
            "lookup",
            "--json",
            "10.0.0.1:80",
            "10.0.0.2:80",
            "10.0.0.3:80",
            "--clients-file",
            f.to_str().expect("path"),
        ],
        None,
    );
    let l = v["lookups"].as_array().expect("lookups");
    assert_eq!(l.len(), 2502);
    assert!(l.iter().all(|x| x["server"].is_u64()));
    assert_eq!(l[2501]["client"], "[2001:db8::78]:0");
}

#[test]
fn lookup_fallback_and_unavailable() {
    let servers = ["10.0.0.1:80", "10.0.0.2:80"];
    let mut args = vec!["lookup", "--json", "--unavailable", "10.0.0.1:80"];
    args.extend(servers);
    let clients: Vec<String> = (1..=40).map(|i| format!("192.0.2.{i}")).collect();
    let mut with_clients = args.clone();
    for c in &clients {
        with_clients.extend(["--client", c.as_str()]);
    }
    // Without fallback: clients of the unavailable server get nothing.
    let v = ok_json(&with_clients, None);
    let l = v["lookups"].as_array().expect("lookups");
    assert!(l.iter().all(|x| x["server"] == 1 || x["server"].is_null()));
    assert!(l.iter().any(|x| x["server"].is_null()));
    // With fallback: everybody lands on the available one.
    with_clients.push("--fallback");
    let v = ok_json(&with_clients, None);
    let l = v["lookups"].as_array().expect("lookups");
    assert!(l.iter().all(|x| x["server"] == 1));
    assert_eq!(v["fallback"], true);
}

#[test]
fn diff_json_shape() {
    let v = ok_json(
        &[
            "diff",
            "--json",
            "--before",
            "10.0.0.1:80",
            "10.0.0.2:80",
            "10.0.0.3:80",
            "--after",
            "10.0.0.1:80",
            "10.0.0.2:80",
        ],
        None,
    );
    assert_eq!(v["size"], 4093);
    let changed = v["changed_slots"].as_u64().expect("changed");
    let frac = v["changed_fraction"].as_f64().expect("fraction");
    assert!((frac - changed as f64 / 4093.0).abs() < 1e-6);
    let servers = v["servers"].as_array().expect("servers");
    assert_eq!(servers.len(), 3);
    let gone = &servers[2];
    assert_eq!(gone["addr"], "10.0.0.3");
    assert_eq!(gone["after_slots"], 0);
    assert_eq!(gone["lost"], gone["before_slots"]);
    let gained: u64 = servers
        .iter()
        .map(|s| s["gained"].as_u64().expect("g"))
        .sum();
    let lost: u64 = servers.iter().map(|s| s["lost"].as_u64().expect("l")).sum();
    assert_eq!(gained, changed);
    assert_eq!(lost, changed);
    assert!(v["remaining_moved_fraction"].as_f64().expect("f") < 0.25);
    // Identical sets: nothing changes.
    let v = ok_json(
        &[
            "diff",
            "--json",
            "--before",
            "10.0.0.1:80",
            "--after",
            "10.0.0.1:80",
        ],
        None,
    );
    assert_eq!(v["changed_slots"], 0);
}

#[test]
fn ipvsadm_input_reports_each_mh_service() {
    let v = ok_json(&["table", "--json", "-"], Some(IPVSADM));
    let s = v["services"].as_array().expect("services");
    let ids: Vec<_> = s
        .iter()
        .map(|x| x["service"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, ["tcp:10.0.0.1:80", "udp:[2001:db8::1]:53", "fwm:7"]);
    assert_eq!(s[0]["servers"][0]["addr"], "10.1.0.2");
    assert_eq!(s[0]["servers"][0]["weight"], 3);
    assert_eq!(s[1]["servers"].as_array().expect("v6").len(), 2);
    assert_eq!(s[2]["servers"][0]["port"], 0);
    for x in s {
        assert_eq!(x["table"].as_array().expect("table").len(), 4093);
    }
}

#[test]
fn ipvsadm_service_selection_and_flags() {
    let v = ok_json(
        &[
            "lookup",
            "--json",
            "--service",
            "tcp:10.0.0.1:80",
            "-",
            "--client",
            "192.0.2.1:99",
        ],
        Some(IPVSADM),
    );
    assert_eq!(v["service"], "tcp:10.0.0.1:80");
    assert_eq!(v["mh_port"], true);
    assert_eq!(v["fallback"], true);
    assert_eq!(v["lookups"][0]["hashed_port"], 99);
    let v = ok_json(
        &["table", "--json", "--service", "udp:[2001:db8::1]:53", "-"],
        Some(IPVSADM),
    );
    assert_eq!(v["service"], "udp:[2001:db8::1]:53");
    let v = ok_json(&["table", "--json", "--service", "3", "-"], Some(IPVSADM));
    assert_eq!(v["service"], "fwm:7");
    // Several services, no selector: each is reported.
    let v = ok_json(
        &["lookup", "--json", "-", "--client", "192.0.2.1"],
        Some(IPVSADM),
    );
    assert_eq!(v["services"].as_array().expect("services").len(), 3);
}

#[test]
fn ipvsadm_list_order_is_kept() {
    // Same servers, two list orders (`ipvsadm -Ln --nosort`): list order
    // tables differ, sorted agree.
    let a =
        "TCP  10.0.0.1:80 mh\n  -> 10.1.0.1:80  Masq  1  0  0\n  -> 10.1.0.2:80  Masq  2  0  0\n";
    let b =
        "TCP  10.0.0.1:80 mh\n  -> 10.1.0.2:80  Masq  2  0  0\n  -> 10.1.0.1:80  Masq  1  0  0\n";
    let ta = ok_json(&["table", "--json", "--order", "list", "-"], Some(a));
    let tb = ok_json(&["table", "--json", "--order", "list", "-"], Some(b));
    let direct = ok_json(
        &[
            "table",
            "--json",
            "--order",
            "list",
            "10.1.0.1:80:1",
            "10.1.0.2:80:2",
        ],
        None,
    );
    assert_eq!(ta["table"], direct["table"]);
    assert_ne!(ta["table"], tb["table"]);
    let d = ok_json(
        &[
            "diff",
            "--json",
            "--order",
            "sorted",
            "--before",
            "-",
            "--after",
            "10.1.0.2:80:2",
            "10.1.0.1:80:1",
        ],
        Some(a),
    );
    assert_eq!(d["changed_slots"], 0);
    // The save format's real servers are sorted by ipvsadm, not in list
    // order: list order from it is refused.
    let save = "-A -t 10.0.0.1:80 -s mh\n-a -t 10.0.0.1:80 -r 10.1.0.2:80 -m -w 2\n-a -t 10.0.0.1:80 -r 10.1.0.1:80 -m -w 1\n";
    bad(
        &["table", "--order", "list", "-"],
        Some(save),
        "give 'ipvsadm -Ln --nosort' output",
    );
}

#[test]
fn diff_from_ipvsadm_files() {
    let before = temp_file("before.txt", IPVSADM);
    let after_text = IPVSADM.replace("-a -t 10.0.0.1:80 -r 10.1.0.1:8080 -m -w 1\n", "");
    let after = temp_file("after.txt", &after_text);
    let v = ok_json(
        &[
            "diff",
            "--json",
            "--before-file",
            before.to_str().expect("p"),
            "--after-file",
            after.to_str().expect("p"),
        ],
        None,
    );
    let s = v["services"]
        .as_array()
        .expect("one diff per common service");
    assert_eq!(s.len(), 3);
    assert!(s[0]["changed_slots"].as_u64().expect("c") > 0);
    assert_eq!(s[1]["changed_slots"], 0);
    assert_eq!(s[2]["changed_slots"], 0);
}

#[test]
fn help_goes_to_stdout() {
    for args in [&["--help"][..], &["help"], &["table", "--help"]] {
        let out = mhsim(args, None);
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("usage:"));
        // ipvsadm refuses '-S --nosort'; the list order comes from '-L'.
        assert!(text.contains("ipvsadm -Sn "));
        assert!(text.contains("ipvsadm -Ln --nosort"));
        assert!(!text.contains("-Sn --nosort"));
    }
}

/// `ipvsadm -Ln --nosort` output (the listing format): TCP, UDP over IPv6,
/// fwmark services (IPv4 and IPv6), scheduler flags, persistence, and a
/// service of another scheduler.
const LISTING: &str = "\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  10.0.1.1:80 mh
  -> 10.0.2.14:80                 Masq    2      0          0
  -> 10.0.2.11:80                 Masq    1      0          0
UDP  [fd00:1::1]:53 mh (mh-fallback,mh-port)
  -> [fd00:2::12]:53              Masq    1      0          0
FWM  7 mh
  -> 10.0.2.11:0                  Route   1      3          1
TCP  10.0.1.1:81 rr
  -> 10.0.2.11:81                 Masq    1      0          0
TCP  10.0.1.1:443 mh (mh-port) persistent 300 mask 255.255.255.0
  -> 10.0.2.12:443                Local   0      0          0
  -> 10.0.2.11:443                Route   5      0          0
FWM  8 IPv6 mh (mh-fallback) persistent 60
  -> [fd00:2::13]:0               Tunnel  3      0          0
";

fn service_flags(input: &str, sel: &str) -> (Value, Value, Value) {
    let v = ok_json(
        &[
            "lookup",
            "--json",
            "--port-hash",
            "flag",
            "--service",
            sel,
            "-",
            "--client",
            "192.0.2.1:99",
        ],
        Some(input),
    );
    (
        v["service"].clone(),
        v["mh_port"].clone(),
        v["fallback"].clone(),
    )
}

#[test]
fn listing_input_services_and_flags() {
    let v = ok_json(&["table", "--json", "-"], Some(LISTING));
    let s = v["services"].as_array().expect("services");
    let ids: Vec<_> = s
        .iter()
        .map(|x| x["service"].as_str().expect("id"))
        .collect();
    assert_eq!(
        ids,
        [
            "tcp:10.0.1.1:80",
            "udp:[fd00:1::1]:53",
            "fwm:7",
            "tcp:10.0.1.1:443",
            "fwm6:8"
        ]
    );
    let servers = |i: usize| -> Vec<(String, u64, u64)> {
        s[i]["servers"]
            .as_array()
            .expect("servers")
            .iter()
            .map(|x| {
                (
                    x["addr"].as_str().expect("addr").to_string(),
                    x["port"].as_u64().expect("port"),
                    x["weight"].as_u64().expect("weight"),
                )
            })
            .collect()
    };
    let sv = |a: &str, p: u64, w: u64| (a.to_string(), p, w);
    // Real servers in the order listed.
    assert_eq!(servers(0), [sv("10.0.2.14", 80, 2), sv("10.0.2.11", 80, 1)]);
    assert_eq!(servers(1), [sv("fd00:2::12", 53, 1)]);
    assert_eq!(servers(2), [sv("10.0.2.11", 0, 1)]);
    assert_eq!(
        servers(3),
        [sv("10.0.2.12", 443, 0), sv("10.0.2.11", 443, 5)]
    );
    assert_eq!(servers(4), [sv("fd00:2::13", 0, 3)]);
    for x in s {
        assert_eq!(x["table"].as_array().expect("table").len(), 4093);
    }
    // Scheduler flags, as the save format's -b gives them.
    let f = |sel: &str| service_flags(LISTING, sel);
    assert_eq!(
        f("tcp:10.0.1.1:80"),
        (
            Value::from("tcp:10.0.1.1:80"),
            Value::from(false),
            Value::from(false)
        )
    );
    assert_eq!(
        f("udp:fd00:1::1:53"),
        (
            Value::from("udp:[fd00:1::1]:53"),
            Value::from(true),
            Value::from(true)
        )
    );
    assert_eq!(
        f("fwm:7"),
        (Value::from("fwm:7"), Value::from(false), Value::from(false))
    );
    assert_eq!(
        f("4"),
        (
            Value::from("tcp:10.0.1.1:443"),
            Value::from(true),
            Value::from(false)
        )
    );
    assert_eq!(
        f("fwm6:8"),
        (Value::from("fwm6:8"), Value::from(false), Value::from(true))
    );
    // A non-mh service is not one of them.
    bad(
        &["table", "--service", "tcp:10.0.1.1:81", "-"],
        Some(LISTING),
        "no mh service",
    );
    // The header lines are optional.
    let body: String = LISTING.lines().skip(3).map(|l| format!("{l}\n")).collect();
    assert_eq!(ok_json(&["table", "--json", "-"], Some(&body)), v);
}

#[test]
fn listing_nosort_gives_the_list_order() {
    // The kernel lists real servers newest first; '-Ln --nosort' prints
    // them so, and '--order list' must then match the servers given in
    // that order on the command line.
    let listing = "\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  10.0.1.1:80 mh
  -> 10.0.2.14:80                 Masq    2      0          0
  -> 10.0.2.11:80                 Masq    1      0          0
  -> 10.0.2.12:80                 Tunnel  3      0          0
  -> 10.0.2.13:80                 Masq    1      0          0
";
    let direct = [
        "10.0.2.14:80:2",
        "10.0.2.11:80:1",
        "10.0.2.12:80:3",
        "10.0.2.13:80:1",
    ];
    for size in ["251", "4093"] {
        let from_listing = ok_json(
            &["table", "--json", "--order", "list", "--size", size, "-"],
            Some(listing),
        );
        let mut args = vec!["table", "--json", "--order", "list", "--size", size];
        args.extend(direct);
        let given = ok_json(&args, None);
        assert_eq!(from_listing["table"], given["table"]);
        assert_eq!(from_listing["servers"], given["servers"]);
        assert_eq!(from_listing["service"], "tcp:10.0.1.1:80");
        // The order matters: reversed, the list-order table differs.
        let mut args = vec!["table", "--json", "--order", "list", "--size", size];
        args.extend(direct.iter().rev());
        let reversed = ok_json(&args, None);
        assert_ne!(from_listing["table"], reversed["table"]);
    }
    // The core's first pinned vector, from a listing.
    let ka = &maglev::KNOWN_ANSWERS[0];
    assert_eq!(ka.name, "three-equal-4093-list");
    let v = ok_json(
        &["table", "--json", "--order", "list", "-"],
        Some(
            "TCP  10.0.0.1:80 mh\n  -> 10.1.0.1:80 Masq 1 0 0\n  -> 10.1.0.2:80 Masq 1 0 0\n  -> 10.1.0.3:80 Masq 1 0 0\n",
        ),
    );
    let table: Vec<u16> = v["table"]
        .as_array()
        .expect("table")
        .iter()
        .map(|x| x.as_u64().expect("index") as u16)
        .collect();
    assert_eq!(maglev::table_fingerprint(&table), ka.fingerprint);
}

/// One configuration, real servers sorted, as `ipvsadm -Sn` and as
/// `ipvsadm -Ln` print it.
const SORTED_SAVE: &str = "\
-A -t 10.0.1.1:80 -s mh -b mh-fallback,mh-port
-a -t 10.0.1.1:80 -r 10.0.2.11:80 -m -w 1
-a -t 10.0.1.1:80 -r 10.0.2.12:80 -m -w 3
-a -t 10.0.1.1:80 -r 10.0.2.14:80 -m -w 2
-A -u [fd00:1::1]:53 -s mh
-a -u [fd00:1::1]:53 -r [fd00:2::11]:53 -g -w 1
-a -u [fd00:1::1]:53 -r [fd00:2::12]:53 -g -w 1
-A -f 7 -s mh -p 300
-a -f 7 -r 10.0.2.11:0 -g -w 1
-a -f 7 -r 10.0.2.12:0 -g -w 4
-A -t 10.0.1.1:81 -s rr
-a -t 10.0.1.1:81 -r 10.0.2.11:81 -m -w 1
";

const SORTED_LISTING: &str = "\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  10.0.1.1:80 mh (mh-fallback,mh-port)
  -> 10.0.2.11:80                 Masq    1      0          0
  -> 10.0.2.12:80                 Masq    3      0          0
  -> 10.0.2.14:80                 Masq    2      0          0
UDP  [fd00:1::1]:53 mh
  -> [fd00:2::11]:53              Route   1      0          0
  -> [fd00:2::12]:53              Route   1      0          0
FWM  7 mh persistent 300
  -> 10.0.2.11:0                  Route   1      0          0
  -> 10.0.2.12:0                  Route   4      0          0
TCP  10.0.1.1:81 rr
  -> 10.0.2.11:81                 Masq    1      0          0
";

#[test]
fn save_and_listing_formats_agree() {
    for extra in [&[][..], &["--size", "251"]] {
        let mut args = vec!["table", "--json"];
        args.extend(extra);
        args.push("-");
        let a = ok_json(&args, Some(SORTED_SAVE));
        let b = ok_json(&args, Some(SORTED_LISTING));
        assert_eq!(a["services"].as_array().expect("services").len(), 3);
        assert_eq!(a, b, "{extra:?}");
    }
    let mut args = vec!["lookup", "--json", "-", "--port-hash", "flag"];
    let clients: Vec<String> = (1..=20)
        .map(|i| format!("192.0.2.{i}:{}", 1000 + i))
        .collect();
    for c in &clients {
        args.extend(["--client", c.as_str()]);
    }
    assert_eq!(
        ok_json(&args, Some(SORTED_SAVE)),
        ok_json(&args, Some(SORTED_LISTING))
    );
    // Files: save format before, listing format after, nothing changes.
    let save = temp_file("sorted-save.txt", SORTED_SAVE);
    let listing = temp_file("sorted-listing.txt", SORTED_LISTING);
    let v = ok_json(
        &[
            "diff",
            "--json",
            "--before-file",
            save.to_str().expect("p"),
            "--after-file",
            listing.to_str().expect("p"),
        ],
        None,
    );
    let s = v["services"].as_array().expect("services");
    assert_eq!(s.len(), 3);
    assert!(s.iter().all(|d| d["changed_slots"] == 0));
    // A server removed in the listing: that service changes only.
    let fewer = SORTED_LISTING.replace(
        "  -> 10.0.2.12:80                 Masq    3      0          0\n",
        "",
    );
    let after = temp_file("sorted-listing-fewer.txt", &fewer);
    let v = ok_json(
        &[
            "diff",
            "--json",
            "--before-file",
            save.to_str().expect("p"),
            "--after-file",
            after.to_str().expect("p"),
        ],
        None,
    );
    let s = v["services"].as_array().expect("services");
    assert!(s[0]["changed_slots"].as_u64().expect("c") > 0);
    assert_eq!(s[1]["changed_slots"], 0);
    assert_eq!(s[2]["changed_slots"], 0);
}

#[test]
fn bad_listing_input() {
    let svc = |rest: &str| format!("TCP  10.0.1.1:80 mh\n{rest}");
    let cases: [(String, &str); 14] = [
        ("hello\n".into(), "ipvsadm -Ln --nosort"),
        (
            "  -> 10.0.2.11:80  Masq  1  0  0\n".into(),
            "before any service",
        ),
        ("TCP  10.0.1.1:80\n".into(), "no scheduler"),
        (
            "UDP  [fd00:1::1]:53 mh (mh-port\n".into(),
            "scheduler flags",
        ),
        ("TCP  www.example.com:http mh\n".into(), "-n"),
        ("FWM  seven mh\n".into(), "bad fwmark"),
        (
            svc("  -> 10.0.2.11:80  Masq  -1  0  0\n"),
            "negative weight",
        ),
        (svc("  -> 10.0.2.11:80  Masq  heavy  0  0\n"), "bad weight"),
        (svc("  -> 10.0.2.11:80  Masq\n"), "no weight"),
        (
            svc("  -> 10.0.2.11:80  Bypass  1  0  0\n"),
            "forwarding method",
        ),
        (svc("  -> 10.0.2.311:80  Masq  1  0  0\n"), "bad address"),
        (svc("TCP  10.0.1.1:80 rr\n"), "twice"),
        (
            svc("-a -t 10.0.1.1:80 -r 10.0.2.11:80 -m -w 1\n"),
            "ipvsadm -Ln",
        ),
        (
            "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n\
             \x20 -> RemoteAddress:Port\n"
                .into(),
            "--stats",
        ),
    ];
    for (input, needle) in &cases {
        bad(&["table", "-"], Some(input), needle);
        bad(
            &["table", "--json", "--order", "list", "-"],
            Some(input),
            needle,
        );
    }
    // The same from files.
    let f = temp_file(
        "bad-listing.txt",
        &svc("  -> 10.0.2.11:80  Masq  -1  0  0\n"),
    );
    let good = temp_file("good-listing.txt", SORTED_LISTING);
    bad(
        &[
            "diff",
            "--before-file",
            good.to_str().expect("p"),
            "--after-file",
            f.to_str().expect("p"),
        ],
        None,
        "negative weight",
    );
    // Other listing columns would put something else where the weight is.
    bad(
        &["table", "-"],
        Some(
            "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n",
        ),
        "plain 'ipvsadm -Ln'",
    );
}

#[test]
fn bad_addresses() {
    bad(&["table", "10.0.0.256:80"], None, "bad address");
    bad(&["table", "example.com:80"], None, "bad address");
    bad(&["table", "2001:db8::1:80"], None, "[ADDR]:PORT");
    bad(&["table", "[2001:db8::zz]:80"], None, "bad IPv6 address");
    bad(&["table", "10.0.0.1"], None, "missing port");
    bad(
        &["lookup", "10.0.0.1:80", "--client", "300.1.1.1:5"],
        None,
        "bad address",
    );
}

#[test]
fn bad_ports() {
    bad(&["table", "10.0.0.1:65536"], None, "out of range");
    bad(&["table", "[::1]:99999:1"], None, "out of range");
    bad(&["table", "10.0.0.1:http"], None, "bad port");
    bad(
        &["lookup", "10.0.0.1:80", "--client", "1.2.3.4:70000"],
        None,
        "out of range",
    );
}

#[test]
fn bad_weights() {
    bad(&["table", "10.0.0.1:80:-1"], None, "negative weight");
    bad(&["table", "10.0.0.1:80:abc"], None, "bad weight");
    bad(&["table", "10.0.0.1:80:4294967296"], None, "too large");
    bad(
        &["table", "-"],
        Some("-A -t 10.0.0.1:80 -s mh\n-a -t 10.0.0.1:80 -r 10.1.0.1:80 -m -w -3\n"),
        "negative weight",
    );
}

#[test]
fn bad_sizes() {
    bad(
        &["table", "--size", "4094", "10.0.0.1:80"],
        None,
        "not one of",
    );
    bad(
        &["table", "--size", "big", "10.0.0.1:80"],
        None,
        "not one of",
    );
    bad(&["table", "--size=0", "10.0.0.1:80"], None, "not one of");
    bad(&["table", "--size"], None, "needs a value");
}

#[test]
fn too_many_servers() {
    let servers: Vec<String> = (0..252)
        .map(|i| format!("10.0.{}.{}:80", i / 256, i % 256))
        .collect();
    let mut args = vec!["table", "--size", "251"];
    args.extend(servers.iter().map(String::as_str));
    bad(&args, None, "only 251 slots");
    // 251 is fine.
    let mut ok = vec!["table", "--json", "--size", "251"];
    ok.extend(servers[..251].iter().map(String::as_str));
    let v = ok_json(&ok, None);
    assert_eq!(v["servers"].as_array().expect("s").len(), 251);
}

#[test]
fn no_servers() {
    bad(&["table"], None, "no servers");
    bad(&["table", "--json"], None, "no servers");
    bad(&["lookup", "--client", "1.2.3.4"], None, "no servers");
    bad(
        &["diff", "--before", "10.0.0.1:80", "--after"],
        None,
        "no servers",
    );
    bad(&["table", "-"], Some(""), "no mh service");
    bad(
        &["table", "-"],
        Some("-A -t 10.0.0.1:80 -s rr\n"),
        "no mh service",
    );
}

#[test]
fn other_bad_input() {
    bad(&[], None, "no command");
    bad(&["frobnicate"], None, "unknown command");
    bad(&["table", "--bogus", "10.0.0.1:80"], None, "unknown option");
    bad(
        &["table", "--order", "random", "10.0.0.1:80"],
        None,
        "order",
    );
    bad(&["table", "10.0.0.1:80", "10.0.0.1:80:2"], None, "twice");
    bad(
        &["table", "--client", "1.2.3.4", "10.0.0.1:80"],
        None,
        "only for 'lookup'",
    );
    bad(&["lookup", "10.0.0.1:80"], None, "no clients");
    bad(
        &[
            "lookup",
            "--port-hash",
            "sometimes",
            "10.0.0.1:80",
            "--client",
            "1.2.3.4",
        ],
        None,
        "--port-hash",
    );
    bad(
        &["lookup", "10.0.0.1:80", "--clients-file", "/nonexistent/x"],
        None,
        "cannot read",
    );
    bad(
        &[
            "lookup",
            "10.0.0.1:80",
            "--client",
            "1.2.3.4",
            "--unavailable",
            "10.9.9.9:80",
        ],
        None,
        "not one of the servers",
    );
    bad(
        &["table", "-", "10.0.0.1:80"],
        Some(IPVSADM),
        "cannot be combined",
    );
    bad(
        &["table", "--service", "tcp:10.9.9.9:80", "-"],
        Some(IPVSADM),
        "no mh service",
    );
    bad(
        &["table", "--service", "icmp:1", "-"],
        Some(IPVSADM),
        "bad --service",
    );
    bad(&["table", "-"], Some("hello world\n"), "ipvsadm -Sn");
    bad(
        &["table", "-"],
        Some("-A -t 10.0.0.1:80 -s mh\nTCP  10.0.0.1:80 mh\n"),
        "ipvsadm -Sn",
    );
    bad(
        &["table", "-"],
        Some("-A -t 10.0.0.1:80 -s mh\n-a -t 10.0.0.9:80 -r 10.1.0.1:80 -w 1\n"),
        "unknown service",
    );
    bad(
        &["diff", "--before", "-", "--after", "-"],
        Some(IPVSADM),
        "only once",
    );
    bad(
        &["diff", "--before", "-", "--after", "10.0.0.1:80"],
        Some(IPVSADM),
        "--service",
    );
    bad(&["diff", "10.0.0.1:80"], None, "--before");
}

// ---------------------------------------------------------------------------
// mhsim check

/// `floor(part * 10000 / whole) / 100` with two decimals, as the module
/// prints shares.
fn percent(part: u64, whole: u64) -> String {
    let h = (part * 10_000).checked_div(whole).unwrap_or(0);
    format!("{}.{:02}", h / 100, h % 100)
}

/// `tcp:10.0.0.1:80` -> `TCP 10.0.0.1:80`, `fwm6:8` -> `FWM6 8`.
fn proc_name(service: &str) -> String {
    let (kind, rest) = service.split_once(':').expect("selector");
    format!("{} {rest}", kind.to_ascii_uppercase())
}

/// The `/proc/net/ip_vs_mh` records of one service, written from the
/// model's own figures (`mhsim table --json`): the table the kernel should
/// have for `config`'s service `sel` at this size and order. The `D` lines
/// come in the order of the ipvsadm input, which is the list order for a
/// `-Ln --nosort` listing.
fn proc_records(config: &str, sel: &str, size: &str, order: &str) -> String {
    let v = ok_json(
        &[
            "table",
            "--json",
            "--size",
            size,
            "--order",
            order,
            "--service",
            sel,
            "-",
        ],
        Some(config),
    );
    let service = v["service"].as_str().expect("service");
    let mut out = format!("S {} {size} {order} 3 42 17 100 2 1\n", proc_name(service));
    let servers = v["servers"].as_array().expect("servers");
    let total_w: u64 = servers
        .iter()
        .map(|s| s["weight"].as_u64().expect("weight"))
        .sum();
    let m: u64 = size.parse().expect("size");
    for s in servers {
        let addr = s["addr"].as_str().expect("addr");
        let addr = if addr.contains(':') {
            format!("[{addr}]")
        } else {
            addr.to_string()
        };
        let (w, slots) = (
            s["weight"].as_u64().expect("w"),
            s["slots"].as_u64().expect("s"),
        );
        out.push_str(&format!(
            "D {addr}:{} {w} {slots} {} {}\n",
            s["port"],
            percent(slots, m),
            percent(w, total_w)
        ));
    }
    out
}

const PROC_HEADER: &str = "\
# ip_vs_mh_rs 1
# S proto address size order rebuilds last_rebuild moved decisions fallbacks refusals
# D address weight slots slot_share weight_share
";

/// Runs `mhsim check --proc FILE` with `ipvsadm` on stdin (plus `extra`
/// arguments): exit status, stdout.
fn check(name: &str, proc: &str, ipvsadm: &str, extra: &[&str]) -> (i32, String) {
    let p = temp_file(name, proc);
    let mut args = vec!["check", "--proc", p.to_str().expect("path")];
    args.extend(extra);
    let out = mhsim(&args, Some(ipvsadm));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.is_empty(), "{name}: {err}");
    (
        out.status.code().expect("exit status"),
        String::from_utf8(out.stdout).expect("utf8"),
    )
}

/// Services of every kind: TCP with flags, IPv6 UDP, IPv4 and IPv6
/// fwmarks, an IPv4 service with an IPv6 (tunnel) real server, a service
/// without real servers and one of another scheduler.
const CHECK_CONFIG: &str = "\
-A -t 10.0.0.1:80 -s mh -b mh-port,mh-fallback
-a -t 10.0.0.1:80 -r 10.1.0.2:8080 -m -w 3
-a -t 10.0.0.1:80 -r 10.1.0.1:8080 -m -w 1
-a -t 10.0.0.1:80 -r 10.1.0.3:8080 -m -w 0
-A -t 10.0.0.1:443 -s wrr
-a -t 10.0.0.1:443 -r 10.1.0.9:443 -g -w 1
-A -u [2001:db8::1]:53 -s mh
-a -u [2001:db8::1]:53 -r [2001:db8::2]:53 -g -w 1
-a -u [2001:db8::1]:53 -r [2001:db8::3]:53 -g -w 2
-A -f 7 -s mh
-a -f 7 -r 10.1.0.2:0 -g -w 1
-a -f 7 -r 10.1.0.5:0 -g -w 4
-A -f 8 -6 -s mh
-a -f 8 -6 -r [2001:db8::5]:0 -i -w 2
-a -f 8 -6 -r [2001:db8::6]:0 -i -w 1
-A -t 10.0.0.2:80 -s mh
-a -t 10.0.0.2:80 -r [2001:db8::7]:80 -i -w 1
-a -t 10.0.0.2:80 -r 10.1.0.7:80 -m -w 1
-a -t 10.0.0.2:80 -r 40.0.0.1:80 -m -w 1
-A -s 10.0.0.3:9 --sctp-service 10.0.0.3:9 -s mh
";

/// The proc file the model expects for [`CHECK_CONFIG`], with several
/// sizes.
fn check_proc() -> String {
    let mut p = PROC_HEADER.to_string();
    for (sel, size) in [
        ("tcp:10.0.0.1:80", "4093"),
        ("udp:[2001:db8::1]:53", "251"),
        ("fwm:7", "509"),
        ("fwm6:8", "1021"),
        ("tcp:10.0.0.2:80", "251"),
    ] {
        p.push_str(&proc_records(CHECK_CONFIG, sel, size, "sorted"));
    }
    // No real servers: no table, no D lines.
    p.push_str("S SCTP 10.0.0.3:9 4093 sorted 0 0 0 0 0 0\n");
    p
}

#[test]
fn check_version_2() {
    // Version 2 adds the module's bytes for the service to the S line.
    let proc = "\
# ip_vs_mh_rs 2
# S proto address size order rebuilds last_rebuild moved decisions fallbacks refusals bytes
# D address weight slots slot_share weight_share
S TCP 10.0.1.1:80 251 sorted 1 9 251 0 0 0 1024
D 10.0.2.11:80 1 251 100.00 100.00
";
    let save = "-A -t 10.0.1.1:80 -s mh\n-a -t 10.0.1.1:80 -r 10.0.2.11:80 -m -w 1\n";
    let (code, out) = check("v2.proc", proc, save, &[]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out, "OK TCP 10.0.1.1:80 size=251 order=sorted servers=1\n");
    let (code, out) = check("v2j.proc", proc, save, &["--json"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("\"bytes\":1024"), "{out}");
}

#[test]
fn check_real_example() {
    let proc = "\
# ip_vs_mh_rs 1
# S proto address size order rebuilds last_rebuild moved decisions fallbacks refusals
# D address weight slots slot_share weight_share
S TCP 10.0.1.1:80 4093 sorted 5 23 829 50 0 0
D 10.0.2.14:80 2 2046 49.98 50.00
D 10.0.2.13:80 1 1023 24.99 25.00
D 10.0.2.12:80 0 0 0.00 0.00
D 10.0.2.11:80 1 1024 25.01 25.00
";
    let save = "\
-A -t 10.0.1.1:80 -s mh
-a -t 10.0.1.1:80 -r 10.0.2.11:80 -m -w 1
-a -t 10.0.1.1:80 -r 10.0.2.12:80 -m -w 0
-a -t 10.0.1.1:80 -r 10.0.2.13:80 -m -w 1
-a -t 10.0.1.1:80 -r 10.0.2.14:80 -m -w 2
";
    let (code, out) = check("example.proc", proc, save, &[]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out, "OK TCP 10.0.1.1:80 size=4093 order=sorted servers=4\n");
    // The model writes the same D lines.
    assert_eq!(
        proc_records(save, "1", "4093", "sorted")
            .lines()
            .skip(1)
            .collect::<Vec<_>>()
            .iter()
            .rev()
            .copied()
            .collect::<Vec<_>>(),
        proc.lines().skip(4).collect::<Vec<_>>()
    );
    // The same from a file, and as JSON.
    let f = temp_file("example.save", save);
    let p = temp_file("example2.proc", proc);
    let out = mhsim(
        &[
            "check",
            "--json",
            "--proc",
            p.to_str().expect("p"),
            "--ipvsadm",
            f.to_str().expect("f"),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["ok"], true);
    let s = &v["services"][0];
    assert_eq!(s["status"], "ok");
    assert_eq!(s["service"], "tcp:10.0.1.1:80");
    assert_eq!(s["proto"], "TCP");
    assert_eq!(s["address"], "10.0.1.1:80");
    assert_eq!(s["size"], 4093);
    assert_eq!(s["order"], "sorted");
    assert_eq!(s["servers"], 4);
    assert_eq!(s["counters"]["moved"], 829);
    assert_eq!(s["differences"], serde_json::json!([]));
}

#[test]
fn check_model_proc_is_ok() {
    let (code, out) = check("model.proc", &check_proc(), CHECK_CONFIG, &[]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out,
        "\
OK TCP 10.0.0.1:80 size=4093 order=sorted servers=3
OK UDP [2001:db8::1]:53 size=251 order=sorted servers=2
OK FWM 7 size=509 order=sorted servers=2
OK FWM6 8 size=1021 order=sorted servers=2
OK TCP 10.0.0.2:80 size=251 order=sorted servers=3
OK SCTP 10.0.0.3:9 size=4093 order=sorted servers=0
"
    );
    // The IPv4 service's IPv6 real server is shown with its own address,
    // but hashed by its first 4 bytes (2001:0db8 = 32.1.13.184), as the C
    // module does; sorted mode orders it by its own address, after the IPv4
    // servers (family first), not between them as its hashed address would.
    let listed = |servers: &[&str]| -> Vec<u64> {
        let mut args = vec!["table", "--json", "--size", "251", "--order", "list"];
        args.extend(servers);
        let v = ok_json(&args, None);
        v["servers"]
            .as_array()
            .expect("servers")
            .iter()
            .map(|s| s["slots"].as_u64().expect("slots"))
            .collect()
    };
    // Per server in the proc file's order: the IPv6 one, 10.1.0.7, 40.0.0.1.
    let s = listed(&["10.1.0.7:80:1", "40.0.0.1:80:1", "32.1.13.184:80:1"]);
    let folded = vec![s[2], s[0], s[1]];
    let s = listed(&["10.1.0.7:80:1", "32.1.13.184:80:1", "40.0.0.1:80:1"]);
    let unfolded = vec![s[1], s[0], s[2]];
    assert_ne!(folded, unfolded);
    let d_lines = |c: &[u64]| {
        format!(
            "D [2001:db8::7]:80 1 {} {} 33.33\nD 10.1.0.7:80 1 {} {} 33.33\nD 40.0.0.1:80 1 {} {} 33.33\n",
            c[0],
            percent(c[0], 251),
            c[1],
            percent(c[1], 251),
            c[2],
            percent(c[2], 251)
        )
    };
    assert!(check_proc().contains(&d_lines(&folded)));
    let unfolded_proc = check_proc().replace(&d_lines(&folded), &d_lines(&unfolded));
    let (code, out) = check("unfolded.proc", &unfolded_proc, CHECK_CONFIG, &[]);
    assert_eq!(code, 1);
    assert!(
        out.contains("\nMISMATCH TCP 10.0.0.2:80: slots of 2 servers differ\n"),
        "{out}"
    );
    // As JSON.
    let (code, out) = check("model-json.proc", &check_proc(), CHECK_CONFIG, &["--json"]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(v["ok"], true);
    assert_eq!(v["services"].as_array().expect("services").len(), 6);
    assert_eq!(v["services"][3]["service"], "fwm6:8");
}

#[test]
fn check_sorted_ignores_the_d_order() {
    // For 'sorted' the table does not depend on the order of the servers.
    let proc = format!(
        "{PROC_HEADER}{}",
        proc_records(CHECK_CONFIG, "tcp:10.0.0.1:80", "251", "sorted")
    );
    let mut lines: Vec<&str> = proc.lines().collect();
    let n = lines.len();
    lines[n - 3..].reverse();
    let proc = lines.join("\n") + "\n";
    let config = CHECK_CONFIG
        .lines()
        .take(4)
        .map(|l| format!("{l}\n"))
        .collect::<String>();
    let (code, out) = check("sorted-order.proc", &proc, &config, &[]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn check_altered_slots_mismatch() {
    let good = check_proc();
    // 10.1.0.2:8080 owns the most slots; give one of them to 10.1.0.1:8080.
    let rec = proc_records(CHECK_CONFIG, "tcp:10.0.0.1:80", "4093", "sorted");
    let slots = |addr: &str| -> u64 {
        rec.lines()
            .find(|l| l.starts_with(&format!("D {addr} ")))
            .and_then(|l| l.split(' ').nth(3))
            .and_then(|s| s.parse().ok())
            .expect("slots")
    };
    let (a, b) = (slots("10.1.0.2:8080"), slots("10.1.0.1:8080"));
    let bad = good
        .replace(
            &format!("D 10.1.0.2:8080 3 {a} "),
            &format!("D 10.1.0.2:8080 3 {} ", a - 1),
        )
        .replace(
            &format!("D 10.1.0.1:8080 1 {b} "),
            &format!("D 10.1.0.1:8080 1 {} ", b + 1),
        );
    assert_ne!(bad, good);
    let (code, out) = check("slots.proc", &bad, CHECK_CONFIG, &[]);
    assert_eq!(code, 1, "{out}");
    let expected = format!(
        "MISMATCH TCP 10.0.0.1:80: slots of 2 servers differ\n  10.1.0.2:8080 slots kernel={} model={a}\n  10.1.0.1:8080 slots kernel={} model={b}\n",
        a - 1,
        b + 1
    );
    assert!(out.starts_with(&expected), "{out}");
    // The other services are still OK.
    assert_eq!(out.lines().filter(|l| l.starts_with("OK ")).count(), 5);
    let (code, out) = check("slots-json.proc", &bad, CHECK_CONFIG, &["--json"]);
    assert_eq!(code, 1);
    let v: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(v["ok"], false);
    let s = &v["services"][0];
    assert_eq!(s["status"], "mismatch");
    assert_eq!(s["slots_compared"], true);
    assert_eq!(
        s["differences"][0],
        serde_json::json!({"what": "slots", "server": "10.1.0.2:8080", "kernel": a - 1, "model": a})
    );
}

#[test]
fn check_weight_mismatch() {
    // The configuration says weight 2 for [2001:db8::3]:53, the kernel 1
    // (say, an edit the kernel has not seen): weights and slots differ.
    let config = CHECK_CONFIG.replace(
        "-a -u [2001:db8::1]:53 -r [2001:db8::3]:53 -g -w 2",
        "-a -u [2001:db8::1]:53 -r [2001:db8::3]:53 -g -w 1",
    );
    assert_ne!(config, CHECK_CONFIG);
    let (code, out) = check("weight.proc", &check_proc(), &config, &[]);
    assert_eq!(code, 1, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "OK TCP 10.0.0.1:80 size=4093 order=sorted servers=3"
    );
    assert!(
        lines[1].starts_with(
            "MISMATCH UDP [2001:db8::1]:53: weight of 1 server differs, slots of 2 servers differ"
        ),
        "{out}"
    );
    assert_eq!(lines[2], "  [2001:db8::3]:53 weight kernel=2 ipvsadm=1");
    // Slots in the kernel's order of servers.
    assert!(
        lines[3].starts_with("  [2001:db8::2]:53 slots kernel="),
        "{out}"
    );
    assert!(
        lines[4].starts_with("  [2001:db8::3]:53 slots kernel="),
        "{out}"
    );
    assert!(lines[5].starts_with("OK FWM 7 "), "{out}");
    // A weight that differs is reported even where the slot counts could
    // not tell: the kernel has 10.1.0.3:8080 at weight 0, ipvsadm at 7.
    let proc = format!(
        "{PROC_HEADER}{}",
        proc_records(CHECK_CONFIG, "tcp:10.0.0.1:80", "4093", "sorted")
    );
    let config = CHECK_CONFIG.replace("10.1.0.3:8080 -m -w 0", "10.1.0.3:8080 -m -w 7");
    let (code, out) = check("weight0.proc", &proc, &config, &["--json"]);
    assert_eq!(code, 1);
    let v: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(
        v["services"][0]["differences"][0],
        serde_json::json!({"what": "weight", "server": "10.1.0.3:8080", "kernel": 0, "kernel_current": 0, "ipvsadm": 7})
    );
}

#[test]
fn check_missing_services_both_ways() {
    // The proc file lacks the fwmark services and has one ipvsadm lacks.
    let mut proc = PROC_HEADER.to_string();
    proc.push_str(&proc_records(
        CHECK_CONFIG,
        "tcp:10.0.0.1:80",
        "4093",
        "sorted",
    ));
    proc.push_str("S UDP 10.9.9.9:53 251 list 1 5 251 0 0 0\nD 10.1.0.1:53 1 251 100.00 100.00\n");
    proc.push_str(&proc_records(
        CHECK_CONFIG,
        "udp:[2001:db8::1]:53",
        "251",
        "sorted",
    ));
    let config: String = CHECK_CONFIG
        .lines()
        .filter(|l| !l.contains("10.0.0.2:80") && !l.contains("10.0.0.3:9"))
        .map(|l| format!("{l}\n"))
        .collect();
    let (code, out) = check("missing.proc", &proc, &config, &[]);
    assert_eq!(code, 1, "{out}");
    let name = temp_file("missing.proc", "").display().to_string();
    assert_eq!(
        out,
        format!(
            "\
OK TCP 10.0.0.1:80 size=4093 order=sorted servers=3
MISSING UDP 10.9.9.9:53: in {name}, not an mh service in the ipvsadm input
OK UDP [2001:db8::1]:53 size=251 order=sorted servers=2
MISSING FWM 7: mh service in the ipvsadm input, not in {name}
MISSING FWM6 8: mh service in the ipvsadm input, not in {name}
"
        )
    );
    // A service that ipvsadm has with another scheduler is not an mh one.
    let config = config.replace("-A -t 10.0.0.1:80 -s mh", "-A -t 10.0.0.1:80 -s rr");
    let (code, out) = check("missing-json.proc", &proc, &config, &["--json"]);
    assert_eq!(code, 1);
    let v: Value = serde_json::from_str(&out).expect("JSON");
    let s = v["services"].as_array().expect("services");
    assert_eq!(s[0]["status"], "missing");
    assert_eq!(s[0]["missing_from"], "ipvsadm");
    assert_eq!(s[0]["service"], "tcp:10.0.0.1:80");
    assert_eq!(s[3]["missing_from"], "proc");
    assert_eq!(s[3]["service"], "fwm:7");
    assert!(s[3].get("size").is_none());
    // Nothing anywhere is fine.
    assert_eq!(
        check("empty.proc", PROC_HEADER, "", &[]),
        (0, String::new())
    );
}

#[test]
fn check_server_sets_differ() {
    let proc = format!(
        "{PROC_HEADER}{}",
        proc_records(CHECK_CONFIG, "fwm:7", "509", "sorted")
    );
    let config = "\
-A -f 7 -s mh
-a -f 7 -r 10.1.0.2:0 -g -w 1
-a -f 7 -r 10.1.0.6:0 -g -w 4
";
    let (code, out) = check("sets.proc", &proc, config, &[]);
    assert_eq!(code, 1, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "MISMATCH FWM 7: 1 server only in the kernel, 1 server only in ipvsadm"
    );
    assert!(lines[1].starts_with("  10.1.0.5:0 only in the kernel (weight 4, slots "));
    assert_eq!(lines[2], "  10.1.0.6:0 only in ipvsadm (weight 4)");
    assert_eq!(lines[3], "  slots not compared: the server sets differ");
    assert_eq!(lines.len(), 4);
}

/// `ipvsadm -Ln --nosort`: servers in the kernel's list order.
const CHECK_LISTING: &str = "\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  10.0.1.1:80 mh
  -> 10.0.2.14:80                 Masq    2      0          0
  -> 10.0.2.13:80                 Masq    1      0          0
  -> 10.0.2.12:80                 Masq    3      0          0
  -> 10.0.2.11:80                 Masq    1      0          0
FWM  9 IPv6 mh
  -> [fd00:2::13]:0               Tunnel  3      0          0
  -> [fd00:2::12]:0               Tunnel  1      0          0
";

#[test]
fn check_list_order() {
    let mut proc = PROC_HEADER.to_string();
    proc.push_str(&proc_records(CHECK_LISTING, "1", "251", "list"));
    proc.push_str(&proc_records(CHECK_LISTING, "fwm6:9", "251", "list"));
    let (code, out) = check("list.proc", &proc, CHECK_LISTING, &[]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out,
        "OK TCP 10.0.1.1:80 size=251 order=list servers=4\nOK FWM6 9 size=251 order=list servers=2\n"
    );
    // The table follows the kernel's D order, not the ipvsadm input's: the
    // save format (sorted servers) checks the same.
    let save = "\
-A -t 10.0.1.1:80 -s mh
-a -t 10.0.1.1:80 -r 10.0.2.11:80 -m -w 1
-a -t 10.0.1.1:80 -r 10.0.2.12:80 -m -w 3
-a -t 10.0.1.1:80 -r 10.0.2.13:80 -m -w 1
-a -t 10.0.1.1:80 -r 10.0.2.14:80 -m -w 2
-A -f 9 -6 -s mh
-a -f 9 -6 -r [fd00:2::12]:0 -i -w 1
-a -f 9 -6 -r [fd00:2::13]:0 -i -w 3
";
    let (code, out) = check("list-save.proc", &proc, save, &[]);
    assert_eq!(code, 0, "{out}");
    // The same D lines in another order are another list order, hence
    // another table: the slot counts no longer fit.
    let mut lines: Vec<&str> = proc.lines().collect();
    lines[4..8].reverse();
    let reordered = lines.join("\n") + "\n";
    let (code, out) = check("list-reordered.proc", &reordered, save, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.starts_with("MISMATCH TCP 10.0.1.1:80: slots of "),
        "{out}"
    );
    assert!(out.contains("\n  10.0.2.11:80 slots kernel="), "{out}");
    assert!(
        out.ends_with("OK FWM6 9 size=251 order=list servers=2\n"),
        "{out}"
    );
}

#[test]
fn check_bad_input() {
    let proc = temp_file("bad-good.proc", &check_proc());
    let p = proc.to_str().expect("p");
    let bad_proc = |name: &str, text: &str, needle: &str| {
        let f = temp_file(name, text);
        bad(
            &["check", "--proc", f.to_str().expect("f")],
            Some(CHECK_CONFIG),
            needle,
        );
    };
    bad_proc("v4.proc", &PROC_HEADER.replace("rs 1", "rs 4"), "version 4");
    // Version 3 names the columns 'mode' and 'table_weight'.
    bad_proc(
        "v3-old-header.proc",
        &PROC_HEADER.replace("rs 1", "rs 3"),
        "line 2: the '# S' column header lacks the column 'mode'",
    );
    bad_proc(
        "nover.proc",
        "S TCP 10.0.0.1:80 251 sorted 0 0 0 0 0 0\n",
        "ip_vs_mh_rs",
    );
    bad_proc("empty.proc", "", "empty");
    bad_proc(
        "other.proc",
        "IP Virtual Server version 1.2.1\n",
        "ip_vs_mh_rs",
    );
    let with = |body: &str| format!("{PROC_HEADER}{body}");
    for (name, body, needle) in [
        ("short-s", "S TCP 10.0.0.1:80 251 sorted\n", "11 fields"),
        ("long-d", "S FWM 7 251 sorted 0 0 0 0 0 0\nD 10.0.0.2:0 1 251 100.00 100.00 x\n", "6 fields"),
        ("proto", "S ICMP 10.0.0.1:80 251 sorted 0 0 0 0 0 0\n", "unknown protocol"),
        ("size", "S TCP 10.0.0.1:80 250 sorted 0 0 0 0 0 0\n", "table size"),
        ("order", "S TCP 10.0.0.1:80 251 random 0 0 0 0 0 0\n", "order"),
        ("counter", "S TCP 10.0.0.1:80 251 sorted 0 0 x 0 0 0\n", "moved"),
        ("addr", "S TCP 10.0.0.1 251 sorted 0 0 0 0 0 0\n", "ADDR:PORT"),
        ("mark", "S FWM x 251 sorted 0 0 0 0 0 0\n", "fwmark"),
        ("d-first", "D 10.0.0.2:80 1 251 100.00 100.00\n", "before any 'S'"),
        ("weight", "S FWM 7 251 sorted 0 0 0 0 0 0\nD 10.0.0.2:0 w 251 100.00 100.00\n", "weight"),
        ("share", "S FWM 7 251 sorted 0 0 0 0 0 0\nD 10.0.0.2:0 1 251 100 100.00\n", "slot_share"),
        ("dup-s", "S FWM 7 251 sorted 0 0 0 0 0 0\nS FWM 7 251 sorted 0 0 0 0 0 0\n", "twice"),
        ("dup-d", "S FWM 7 251 sorted 0 0 0 0 0 0\nD 10.0.0.2:0 1 125 49.80 50.00\nD 10.0.0.2:0 1 126 50.19 50.00\n", "twice"),
        ("junk", "X 1 2 3\n", "expected an 'S' or 'D' line"),
    ] {
        bad_proc(&format!("{name}.proc"), &with(body), needle);
    }
    // Line numbers count from the top of the file.
    bad_proc(
        "lineno.proc",
        &with("S TCP 10.0.0.1:80 250 sorted 0 0 0 0 0 0\n"),
        "line 4",
    );
    bad(
        &["check", "--proc", "/nonexistent/ip_vs_mh"],
        Some(CHECK_CONFIG),
        "cannot read /nonexistent/ip_vs_mh",
    );
    bad(
        &["check", "--proc", p, "--ipvsadm", "/nonexistent/x"],
        None,
        "cannot read",
    );
    bad(
        &["check", "--proc", p],
        Some("hello world\n"),
        "ipvsadm -Sn",
    );
    bad(
        &["check", "--proc", p],
        Some("-A -f 7 -s mh\n-a -f 7 -r 10.1.0.2:0 -w 1\n-a -f 7 -r 10.1.0.2:0 -w 2\n"),
        "twice",
    );
    bad(
        &["check", "--proc", p, "--size", "251"],
        Some(CHECK_CONFIG),
        "not for 'check'",
    );
    bad(
        &["check", "--proc", p, "--order", "list"],
        Some(CHECK_CONFIG),
        "not for 'check'",
    );
    bad(
        &["check", "--proc", p, "10.0.0.1:80"],
        Some(CHECK_CONFIG),
        "no servers",
    );
    bad(&["check", "--proc", "-"], Some(CHECK_CONFIG), "--ipvsadm");
    bad(
        &["table", "--proc", p, "10.0.0.1:80"],
        None,
        "only for 'check'",
    );
    // '-' is standard input, as elsewhere.
    let out = mhsim(&["check", "--proc", p, "-"], Some(CHECK_CONFIG));
    assert_eq!(out.status.code(), Some(0));
    // And the proc file can come on standard input instead.
    let conf = temp_file("bad-good.conf", CHECK_CONFIG);
    let out = mhsim(
        &[
            "check",
            "--proc",
            "-",
            "--ipvsadm",
            conf.to_str().expect("c"),
        ],
        Some(&check_proc()),
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("OK TCP 10.0.0.1:80 "));
}

#[test]
fn check_in_help() {
    let out = mhsim(&["help"], None);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("mhsim check"));
    assert!(text.contains("--proc FILE"));
    assert!(text.contains("MISMATCH"));
}

// ---------------------------------------------------------------------------
// proc format 3, mhsim proc

const V3_HEADER: &str = "\
# ip_vs_mh_rs 3
# S proto address size mode rebuilds last_rebuild moved decisions fallbacks refusals bytes stale
# D address weight table_weight slots slot_share weight_share
";

/// Format 3 records: a TCP service with a pending weight change, a stale
/// fwmark service in upstream mode with a drained server, an IPv6 UDP
/// service and an `IP` (other protocol) one without servers.
const V3_BODY: &str = "\
S TCP 10.0.1.1:80 4093 sorted 3 1234 812 100 0 0 8594 0
D 10.0.2.11:80 1 1 819 20.00 20.00
D 10.0.2.12:80 3 2 1637 39.99 40.00
D 10.0.2.13:80 2 2 1637 40.00 40.00
S FWM 7 251 upstream 1 2 3 4 5 6 700 1
D 10.0.2.13:0 1 1 125 49.80 50.00
D 10.0.2.12:0 0 1 126 50.19 50.00
S UDP [fd00:1::1]:53 509 list 0 0 0 0 0 0 400 0
D [fd00:2::11]:53 1 1 509 100.00 100.00
S IP 10.0.1.1:0 251 sorted 0 0 0 0 0 0 300 0
";

fn v3_proc() -> String {
    format!("{V3_HEADER}{V3_BODY}")
}

/// Runs `mhsim proc --proc FILE` with `extra` arguments: exit status,
/// stdout, stderr.
fn proc_cmd(name: &str, text: &str, extra: &[&str]) -> (i32, String, String) {
    let p = temp_file(name, text);
    let mut args = vec!["proc", "--proc", p.to_str().expect("path")];
    args.extend(extra);
    let out = mhsim(&args, None);
    (
        out.status.code().expect("exit status"),
        String::from_utf8(out.stdout).expect("utf8"),
        String::from_utf8(out.stderr).expect("utf8"),
    )
}

fn proc_json(name: &str, text: &str, extra: &[&str]) -> Value {
    let mut args = vec!["--json"];
    args.extend(extra);
    let (code, out, err) = proc_cmd(name, text, &args);
    assert_eq!(code, 0, "{name}: {err}");
    assert!(err.is_empty(), "{name}: {err}");
    serde_json::from_str(&out).expect("valid JSON")
}

#[test]
fn proc_json_shape() {
    let v = proc_json("v3.proc", &v3_proc(), &[]);
    assert_eq!(
        v,
        serde_json::json!({
            "version": 3,
            "services": [
                {
                    "service": "tcp:10.0.1.1:80", "proto": "TCP", "address": "10.0.1.1:80",
                    "size": 4093, "mode": "sorted", "rebuilds": 3, "last_rebuild": 1234,
                    "moved": 812, "decisions": 100, "fallbacks": 0, "refusals": 0,
                    "bytes": 8594, "stale": false,
                    "dests": [
                        {"address": "10.0.2.11:80", "weight": 1, "table_weight": 1,
                         "slots": 819, "slot_share": "20.00", "weight_share": "20.00"},
                        {"address": "10.0.2.12:80", "weight": 3, "table_weight": 2,
                         "slots": 1637, "slot_share": "39.99", "weight_share": "40.00"},
                        {"address": "10.0.2.13:80", "weight": 2, "table_weight": 2,
                         "slots": 1637, "slot_share": "40.00", "weight_share": "40.00"},
                    ],
                },
                {
                    "service": "fwm:7", "proto": "FWM", "address": "7", "fwmark": 7,
                    "size": 251, "mode": "upstream", "rebuilds": 1, "last_rebuild": 2,
                    "moved": 3, "decisions": 4, "fallbacks": 5, "refusals": 6,
                    "bytes": 700, "stale": true,
                    "dests": [
                        {"address": "10.0.2.13:0", "weight": 1, "table_weight": 1,
                         "slots": 125, "slot_share": "49.80", "weight_share": "50.00"},
                        {"address": "10.0.2.12:0", "weight": 0, "table_weight": 1,
                         "slots": 126, "slot_share": "50.19", "weight_share": "50.00"},
                    ],
                },
                {
                    "service": "udp:[fd00:1::1]:53", "proto": "UDP", "address": "[fd00:1::1]:53",
                    "size": 509, "mode": "list", "rebuilds": 0, "last_rebuild": 0,
                    "moved": 0, "decisions": 0, "fallbacks": 0, "refusals": 0,
                    "bytes": 400, "stale": false,
                    "dests": [
                        {"address": "[fd00:2::11]:53", "weight": 1, "table_weight": 1,
                         "slots": 509, "slot_share": "100.00", "weight_share": "100.00"},
                    ],
                },
                {
                    "service": "ip:10.0.1.1:0", "proto": "IP", "address": "10.0.1.1:0",
                    "size": 251, "mode": "sorted", "rebuilds": 0, "last_rebuild": 0,
                    "moved": 0, "decisions": 0, "fallbacks": 0, "refusals": 0,
                    "bytes": 300, "stale": false, "dests": [],
                },
            ],
        })
    );
    // The proc file on standard input, and an empty one.
    let out = mhsim(&["proc", "--json", "--proc", "-"], Some(&v3_proc()));
    assert_eq!(out.status.code(), Some(0));
    let w: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(w, v);
    let e = proc_json("v3-empty.proc", V3_HEADER, &[]);
    assert_eq!(e, serde_json::json!({"version": 3, "services": []}));
}

#[test]
fn proc_older_versions() {
    // Version 1: no bytes (null), table_weight is the weight, not stale.
    let v1 = format!(
        "{PROC_HEADER}S TCP 10.0.1.1:80 251 list 1 2 3 4 5 6\nD 10.0.2.11:80 4 251 100.00 100.00\n"
    );
    let v = proc_json("v1.proc", &v1, &[]);
    assert_eq!(v["version"], 1);
    let s = &v["services"][0];
    assert!(s["bytes"].is_null());
    assert_eq!(s["mode"], "list");
    assert_eq!(s["stale"], false);
    assert_eq!(s["dests"][0]["weight"], 4);
    assert_eq!(s["dests"][0]["table_weight"], 4);
    assert!(s.get("fwmark").is_none());
    // Version 2: bytes.
    let v2 = "\
# ip_vs_mh_rs 2
# S proto address size order rebuilds last_rebuild moved decisions fallbacks refusals bytes
# D address weight slots slot_share weight_share
S FWM6 9 251 sorted 1 9 251 0 0 0 1024
D [fd00:2::13]:0 1 251 100.00 100.00
";
    let v = proc_json("v2.proc", v2, &[]);
    assert_eq!(v["version"], 2);
    assert_eq!(v["services"][0]["bytes"], 1024);
    assert_eq!(v["services"][0]["fwmark"], 9);
    assert_eq!(v["services"][0]["address"], "9");
    assert_eq!(v["services"][0]["dests"][0]["address"], "[fd00:2::13]:0");
}

#[test]
fn proc_extra_columns_are_skipped() {
    // A newer module's columns, at the end and in the middle: the known
    // ones are found by name and the JSON does not change.
    let header = V3_HEADER
        .replace(" stale\n", " stale flows\n")
        .replace(" table_weight ", " table_weight colour ");
    let mut body = String::new();
    for line in V3_BODY.lines() {
        let mut w: Vec<&str> = line.split(' ').collect();
        if w[0] == "S" {
            w.push("42");
        } else {
            w.insert(4, "blue");
        }
        body.push_str(&w.join(" "));
        body.push('\n');
    }
    let v = proc_json("v3-extra.proc", &format!("{header}{body}"), &[]);
    assert_eq!(v, proc_json("v3-plain.proc", &v3_proc(), &[]));
    // 'mhsim check' reads it too.
    let (code, out) = check(
        "v3-extra-check.proc",
        &format!("{header}{body}"),
        "-A -t 10.0.1.1:80 -s mh\n",
        &[],
    );
    assert_eq!(code, 1);
    assert!(
        out.starts_with("MISMATCH TCP 10.0.1.1:80: 3 servers only in the kernel\n"),
        "{out}"
    );
}

#[test]
fn proc_missing_column_is_named() {
    for (name, text, needle) in [
        (
            "no-stale",
            v3_proc().replace(" bytes stale\n", " bytes\n"),
            "line 2: the '# S' column header lacks the column 'stale'",
        ),
        (
            "no-table-weight",
            v3_proc().replace(" table_weight ", " "),
            "line 3: the '# D' column header lacks the column 'table_weight'",
        ),
        (
            "no-header",
            format!("# ip_vs_mh_rs 3\n{V3_BODY}"),
            "line 2: an 'S' line before the '# S ...' column header",
        ),
        (
            "bad-stale",
            v3_proc().replace("8594 0\n", "8594 yes\n"),
            "line 4: bad stale 'yes'",
        ),
        (
            "bad-mode",
            v3_proc().replace("251 upstream", "251 maglev"),
            "line 8: bad mode 'maglev'",
        ),
        (
            "bad-table-weight",
            v3_proc().replace("D 10.0.2.12:80 3 2 ", "D 10.0.2.12:80 3 -x "),
            "line 6: bad table_weight '-x'",
        ),
        (
            "short-d",
            v3_proc().replace("D 10.0.2.11:80 1 1 819 ", "D 10.0.2.11:80 1 819 "),
            "line 5: a 'D' line has 7 fields as the header on line 3 says",
        ),
    ] {
        let f = temp_file(&format!("{name}.proc"), &text);
        let path = f.to_str().expect("path");
        bad(&["proc", "--proc", path], None, needle);
        bad(&["proc", "--json", "--proc", path], None, needle);
    }
}

#[test]
fn proc_text_report() {
    let (code, out, err) = proc_cmd("v3-text.proc", &v3_proc(), &[]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 10);
    assert_eq!(
        lines[0],
        "TCP 10.0.1.1:80 size=4093 mode=sorted servers=3 rebuilds=3 last_rebuild=1234 moved=812 decisions=100 fallbacks=0 refusals=0 bytes=8594 stale=no"
    );
    assert_eq!(
        lines[2],
        "  10.0.2.12:80  weight=3 table_weight=2 slots=1637 slot_share=39.99% weight_share=40.00%"
    );
    assert!(
        lines[4].starts_with("FWM 7 size=251 mode=upstream "),
        "{out}"
    );
    assert!(lines[4].ends_with(" stale=yes"), "{out}");
    assert!(lines[9].starts_with("IP 10.0.1.1:0 "), "{out}");
    // Before version 2 there is no bytes figure.
    let (_, out, _) = proc_cmd(
        "v1-text.proc",
        &format!("{PROC_HEADER}S FWM 7 251 sorted 0 0 0 0 0 0\n"),
        &[],
    );
    assert_eq!(
        out,
        "FWM 7 size=251 mode=sorted servers=0 rebuilds=0 last_rebuild=0 moved=0 decisions=0 fallbacks=0 refusals=0 stale=no\n"
    );
}

#[test]
fn proc_service_selection() {
    let key = |extra: &[&str]| -> Vec<String> {
        let v = proc_json("v3-sel.proc", &v3_proc(), extra);
        assert_eq!(v["version"], 3);
        v["services"]
            .as_array()
            .expect("services")
            .iter()
            .map(|s| s["service"].as_str().expect("service").to_string())
            .collect()
    };
    assert_eq!(key(&["--service", "tcp:10.0.1.1:80"]), ["tcp:10.0.1.1:80"]);
    assert_eq!(key(&["--service", "fwm:7"]), ["fwm:7"]);
    assert_eq!(
        key(&["--service", "udp:fd00:1:0::1:53"]),
        ["udp:[fd00:1::1]:53"]
    );
    assert_eq!(
        key(&["--service", "udp:[fd00:1::1]:53"]),
        ["udp:[fd00:1::1]:53"]
    );
    assert_eq!(key(&["--service", "ip:10.0.1.1:0"]), ["ip:10.0.1.1:0"]);
    assert_eq!(key(&["--service", "2"]), ["fwm:7"]);
    // The text report too.
    let (code, out, _) = proc_cmd("v3-sel.proc", &v3_proc(), &["--service", "fwm:7"]);
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 3);
    assert!(out.starts_with("FWM 7 "));
    let f = temp_file("v3-sel.proc", &v3_proc());
    let path = f.to_str().expect("path");
    for (sel, needle) in [
        ("fwm:8", "--service fwm:8: no such mh service in"),
        (
            "tcp:10.0.1.1:81",
            "it lists: tcp:10.0.1.1:80, fwm:7, udp:[fd00:1::1]:53, ip:10.0.1.1:0",
        ),
        ("fwm6:7", "no such mh service"),
        ("5", "no such mh service"),
        ("0", "no such mh service"),
        ("icmp:1", "bad --service"),
        ("ip:x", "bad --service"),
    ] {
        bad(
            &["proc", "--json", "--proc", path, "--service", sel],
            None,
            needle,
        );
    }
    let empty = temp_file("v3-sel-empty.proc", V3_HEADER);
    bad(
        &[
            "proc",
            "--proc",
            empty.to_str().expect("p"),
            "--service",
            "1",
        ],
        None,
        "it lists none",
    );
}

#[test]
fn proc_bad_arguments() {
    let f = temp_file("v3-args.proc", &v3_proc());
    let p = f.to_str().expect("path");
    bad(
        &["proc", "--proc", p, "--size", "251"],
        None,
        "not for 'proc'",
    );
    bad(
        &["proc", "--proc", p, "--order", "list"],
        None,
        "not for 'proc'",
    );
    bad(&["proc", "--proc", p, "10.0.0.1:80"], None, "no servers");
    bad(&["proc", "--proc", p, "-"], None, "no servers");
    bad(
        &["proc", "--proc", p, "--ipvsadm", p],
        None,
        "only for 'check'",
    );
    bad(
        &["proc", "--proc", p, "--client", "1.2.3.4"],
        None,
        "only for 'lookup'",
    );
    bad(
        &["proc", "--proc", "/nonexistent/ip_vs_mh"],
        None,
        "cannot read /nonexistent/ip_vs_mh",
    );
    bad(
        &["proc", "--proc", "-"],
        Some("hello\n"),
        "ip_vs_mh_rs VERSION",
    );
    bad(
        &["proc", "--proc", "-"],
        Some("# ip_vs_mh_rs 9\n"),
        "version 9",
    );
    let out = mhsim(&["help"], None);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("mhsim proc   [--proc FILE|-] [--service SEL] [--json]"));
    assert!(text.contains("table_weight"));
}

/// The `D` lines of a format 3 service whose table was built with the
/// weights `table` (ADDR:PORT:WEIGHT, in the kernel's list order, mode
/// list or upstream), each server's current weight from `current`.
fn v3_records(sel_line: &str, table: &[&str], current: &[i64]) -> String {
    let mut args = vec!["table", "--json", "--size", "251", "--order", "list"];
    args.extend(table);
    let v = ok_json(&args, None);
    let mut out = format!("{sel_line}\n");
    for (s, cur) in v["servers"]
        .as_array()
        .expect("servers")
        .iter()
        .zip(current)
    {
        let slots = s["slots"].as_u64().expect("slots");
        out.push_str(&format!(
            "D {}:{} {cur} {} {slots} {} 0.00\n",
            s["addr"].as_str().expect("addr"),
            s["port"],
            s["weight"],
            percent(slots, 251)
        ));
    }
    out
}

#[test]
fn check_upstream_drained_server() {
    // 10.0.2.12 was drained with 'ipvsadm -e ... -w 0'. In upstream mode
    // the kernel keeps its slots at its last weight (2): its D line says
    // weight 0, table_weight 2.
    let save = "\
-A -t 10.0.1.1:80 -s mh
-a -t 10.0.1.1:80 -r 10.0.2.11:80 -m -w 1
-a -t 10.0.1.1:80 -r 10.0.2.12:80 -m -w 0
-a -t 10.0.1.1:80 -r 10.0.2.13:80 -m -w 3
";
    let table = ["10.0.2.13:80:3", "10.0.2.12:80:2", "10.0.2.11:80:1"];
    let proc = format!(
        "{V3_HEADER}{}",
        v3_records(
            "S TCP 10.0.1.1:80 251 upstream 2 10 40 0 0 0 900 0",
            &table,
            &[3, 0, 1]
        )
    );
    assert!(proc.contains("\nD 10.0.2.12:80 0 2 "), "{proc}");
    let (code, out) = check("upstream.proc", &proc, save, &[]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out,
        "OK TCP 10.0.1.1:80 size=251 order=upstream servers=3\n"
    );
    let (code, out) = check("upstream-json.proc", &proc, save, &["--json"]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(v["services"][0]["mode"], "upstream");
    assert_eq!(v["services"][0]["order"], "upstream");
    assert_eq!(v["services"][0]["differences"], serde_json::json!([]));
    // In list mode the same kernel figures are wrong: the drained server
    // should have lost its slots.
    let list = proc.replace(" 251 upstream ", " 251 list ");
    let (code, out) = check("upstream-as-list.proc", &list, save, &[]);
    assert_eq!(code, 1);
    assert!(
        out.starts_with("MISMATCH TCP 10.0.1.1:80: weight of 1 server differs, slots of 3 servers differ\n  10.0.2.12:80 weight kernel=2 ipvsadm=0 (the kernel's current weight 0 is not in its table yet)\n"),
        "{out}"
    );
    // A positive weight is still compared in upstream mode.
    let (code, out) = check(
        "upstream-weight.proc",
        &proc,
        &save.replace("10.0.2.13:80 -m -w 3", "10.0.2.13:80 -m -w 4"),
        &[],
    );
    assert_eq!(code, 1);
    assert!(
        out.contains("\n  10.0.2.13:80 weight kernel=3 ipvsadm=4\n"),
        "{out}"
    );
}

#[test]
fn check_compares_the_table_weight() {
    // ipvsadm and the kernel's current weight say 3, but the table was
    // built with 1 (the change is pending, or its rebuild failed).
    let save = "\
-A -f 7 -s mh
-a -f 7 -r 10.0.2.11:0 -g -w 3
-a -f 7 -r 10.0.2.12:0 -g -w 1
";
    let proc = format!(
        "{V3_HEADER}{}",
        v3_records(
            "S FWM 7 251 sorted 2 10 40 0 0 0 900 1",
            &["10.0.2.11:0:1", "10.0.2.12:0:1"],
            &[3, 1]
        )
    );
    let (code, out) = check("pending.proc", &proc, save, &[]);
    assert_eq!(code, 1);
    assert!(
        out.starts_with("MISMATCH FWM 7: weight of 1 server differs, slots of 2 servers differ\n  10.0.2.11:0 weight kernel=1 ipvsadm=3 (the kernel's current weight 3 is not in its table yet)\n"),
        "{out}"
    );
    assert!(
        out.ends_with("  stale: the kernel's last rebuild failed, its previous table serves\n"),
        "{out}"
    );
    let (_, out) = check("pending-json.proc", &proc, save, &["--json"]);
    let v: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(v["services"][0]["stale"], true);
    assert_eq!(
        v["services"][0]["differences"][0],
        serde_json::json!({"what": "weight", "server": "10.0.2.11:0", "kernel": 1, "kernel_current": 3, "ipvsadm": 3})
    );
    // Once rebuilt, all agree.
    let proc = format!(
        "{V3_HEADER}{}",
        v3_records(
            "S FWM 7 251 sorted 3 11 40 0 0 0 900 0",
            &["10.0.2.11:0:3", "10.0.2.12:0:1"],
            &[3, 1]
        )
    );
    let (code, out) = check("settled.proc", &proc, save, &[]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn lookup_json_gives_each_client_as_given() {
    let v = ok_json(
        &[
            "lookup",
            "--json",
            "[fd00:2::11]:80",
            "[fd00:2:0::12]:80:0",
            "--client",
            "[fd00:1:0::2]:41001",
            "--client",
            "[fd00:1::3]:41002",
        ],
        None,
    );
    let l = v["lookups"].as_array().expect("lookups");
    assert_eq!(l[0]["input"], "[fd00:1:0::2]:41001");
    assert_eq!(l[0]["client"], "[fd00:1::2]:41001");
    assert_eq!(l[1]["input"], "[fd00:1::3]:41002");
    // The only server with a weight answers, in RFC 5952 form.
    for x in l {
        assert_eq!(x["server"], 0);
        assert_eq!(x["dest"], "[fd00:2::11]:80");
        assert!(x["slot"].is_u64());
    }
    // From a file: each line as written (trimmed, comments dropped).
    let f = temp_file(
        "clients-as-given.txt",
        "  10.0.1.2:41001  # first\n10.0.1.3\n",
    );
    let v = ok_json(
        &[
            "lookup",
            "--json",
            "10.0.2.11:80",
            "10.0.2.12:80",
            "--clients-file",
            f.to_str().expect("f"),
            "--unavailable",
            "10.0.2.11:80",
        ],
        None,
    );
    let l = v["lookups"].as_array().expect("lookups");
    assert_eq!(l[0]["input"], "10.0.1.2:41001");
    assert_eq!(l[1]["input"], "10.0.1.3");
    assert_eq!(l[1]["client"], "10.0.1.3:0");
    for x in l {
        let keys: Vec<&str> = x
            .as_object()
            .expect("o")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            ["client", "dest", "hashed_port", "input", "server", "slot"]
        );
        // Refused (the unavailable server's clients, no fallback): null.
        if x["server"].is_null() {
            assert!(x["dest"].is_null());
        } else {
            assert_eq!(x["server"], 1);
            assert_eq!(x["dest"], "10.0.2.12:80");
        }
    }
}

// ---------------------------------------------------------------------------
// Modes: sorted (ip_vs_mh_rs's default) and upstream (the C ip_vs_mh)

/// The table of a `table --json` report, empty slots as `maglev::EMPTY`.
fn table_of(v: &Value) -> Vec<u16> {
    v["table"]
        .as_array()
        .expect("table")
        .iter()
        .map(|x| x.as_u64().map_or(maglev::EMPTY, |i| i as u16))
        .collect()
}

/// `ADDR:PORT:WEIGHT` of a core server.
fn server_arg(s: &maglev::Server) -> String {
    let hp = match s.addr {
        maglev::Addr::V4(b) => format!("{}:{}", std::net::Ipv4Addr::from(b), s.port),
        maglev::Addr::V6(b) => format!("[{}]:{}", std::net::Ipv6Addr::from(b), s.port),
    };
    format!("{hp}:{}", s.weight)
}

/// Each lookup's (slot, server, dest).
fn lookups(v: &Value) -> Vec<(u64, Value, Value)> {
    v["lookups"]
        .as_array()
        .expect("lookups")
        .iter()
        .map(|l| {
            (
                l["slot"].as_u64().expect("slot"),
                l["server"].clone(),
                l["dest"].clone(),
            )
        })
        .collect()
}

#[test]
fn upstream_mode_gives_the_c_known_answers() {
    // The core's known answers in list order were checked against the C
    // ip_vs_mh: upstream mode must give exactly those tables, from SERVER
    // lists (--mode upstream) and from a '-Ln --nosort' listing whose
    // service has flag-3 (and mh-port).
    let mut seen = 0;
    for ka in maglev::KNOWN_ANSWERS
        .iter()
        .filter(|k| k.order == maglev::Order::List)
    {
        seen += 1;
        let servers: Vec<maglev::Server> = (0..ka.len())
            .map(|i| ka.server(i).expect("server"))
            .collect();
        assert!(servers.iter().all(|s| s.weight >= 0), "{}", ka.name);
        let args: Vec<String> = servers.iter().map(server_arg).collect();
        let size = ka.size.to_string();
        let mut cmd = vec!["table", "--json", "--mode", "upstream", "--size", &size];
        cmd.extend(args.iter().map(String::as_str));
        let v = ok_json(&cmd, None);
        let mut listing = if servers[0].addr.is_v6() {
            "UDP  [2001:db8::1]:53 mh (mh-port,flag-3)\n".to_string()
        } else {
            "TCP  10.255.0.1:80 mh (mh-port,flag-3)\n".to_string()
        };
        for a in &args {
            let (hp, w) = a.rsplit_once(':').expect("weight");
            listing.push_str(&format!("  -> {hp}  Masq  {w}  0  0\n"));
        }
        let l = ok_json(&["table", "--json", "--size", &size, "-"], Some(&listing));
        for v in [&v, &l] {
            assert_eq!(v["mode"], "upstream", "{}", ka.name);
            assert_eq!(v["order"], "list", "{}", ka.name);
            let table = table_of(v);
            assert_eq!(
                maglev::table_fingerprint(&table),
                ka.fingerprint,
                "{}",
                ka.name
            );
            assert_eq!(table[..8], ka.first, "{}", ka.name);
            assert_eq!(v["servers_with_slots"], ka.stats.servers, "{}", ka.name);
            assert_eq!(v["gcd"], ka.stats.gcd, "{}", ka.name);
            assert_eq!(v["rshift"], ka.stats.rshift, "{}", ka.name);
        }
        assert_eq!(v["servers"], l["servers"], "{}", ka.name);
        // Lookups with mh-port hash the port, as the C module does.
        if ka.stats.filled > 0 && ka.len() < 300 {
            let l = ok_json(
                &[
                    "lookup",
                    "--json",
                    "--size",
                    &size,
                    "-",
                    "--client",
                    "203.0.113.9:40000",
                    "--client",
                    "203.0.113.10:40001",
                ],
                Some(&listing),
            );
            assert_eq!(l["ports_hashed"], true);
            let table = table_of(&v);
            let sz = maglev::TableSize::new(ka.size).expect("size");
            for ((slot, server, _), (last, port)) in
                lookups(&l).into_iter().zip([(9, 40000), (10, 40001)])
            {
                let want = maglev::slot_of(sz, &maglev::Addr::V4([203, 0, 113, last]), port);
                assert_eq!(slot, u64::from(want), "{}", ka.name);
                assert_eq!(server, u64::from(table[slot as usize]), "{}", ka.name);
            }
        }
    }
    assert!(seen >= 8);
    // The sorted known answer is the default mode's.
    let ka = maglev::KNOWN_ANSWERS
        .iter()
        .find(|k| k.order == maglev::Order::Sorted)
        .expect("sorted known answer");
    let args: Vec<String> = (0..ka.len())
        .map(|i| server_arg(&ka.server(i).expect("s")))
        .collect();
    let mut cmd = vec!["table", "--json"];
    cmd.extend(args.iter().map(String::as_str));
    let v = ok_json(&cmd, None);
    assert_eq!(v["mode"], "sorted");
    assert_eq!(maglev::table_fingerprint(&table_of(&v)), ka.fingerprint);
}

#[test]
fn upstream_table_is_list_order_with_last_weights() {
    let upstream = [
        "10.0.0.1:80:3",
        "10.0.0.2:80:0:2",
        "10.0.0.3:80:1",
        "10.0.0.4:80:0",
    ];
    let list = [
        "10.0.0.1:80:3",
        "10.0.0.2:80:2",
        "10.0.0.3:80:1",
        "10.0.0.4:80:0",
    ];
    let mut args = vec!["table", "--json", "--size", "251", "--mode", "upstream"];
    args.extend(upstream);
    let u = ok_json(&args, None);
    let mut args = vec!["table", "--json", "--size", "251", "--order", "list"];
    args.extend(list);
    let l = ok_json(&args, None);
    assert_eq!(u["table"], l["table"]);
    assert_eq!(
        (&u["mode"], &u["order"]),
        (&"upstream".into(), &"list".into())
    );
    let s = &u["servers"];
    // The drained server: weight 0 now, its slots at its last weight.
    assert_eq!(s[1]["weight"], 0);
    assert_eq!(s[1]["last_weight"], 2);
    assert_eq!(s[1]["table_weight"], 2);
    assert_eq!(s[1]["slots"], l["servers"][1]["slots"]);
    assert!(s[1]["slots"].as_u64().expect("slots") > 0);
    // Added at weight 0: no slots in either mode.
    assert_eq!(
        (&s[3]["last_weight"], &s[3]["slots"]),
        (&0.into(), &0.into())
    );
    // Sorted mode: the drained server has no slots.
    let mut args = vec!["table", "--json", "--size", "251"];
    args.extend(upstream);
    let sorted = ok_json(&args, None);
    assert_eq!(sorted["mode"], "sorted");
    assert_eq!(sorted["servers"][1]["slots"], 0);
    assert_eq!(sorted["servers"][1]["table_weight"], 0);
    assert_eq!(sorted["servers"][1]["last_weight"], 2);
    // --order list in sorted mode: list order, current weights.
    let mut args = vec!["table", "--json", "--size", "251", "--order", "list"];
    args.extend(upstream);
    assert_eq!(ok_json(&args, None)["servers"][1]["slots"], 0);
    // The text report shows the last weights and what they mean.
    let mut args = vec!["table", "--size", "251", "--mode", "upstream"];
    args.extend(upstream);
    let out = mhsim(&args, None);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).expect("utf8");
    assert!(text.contains("mode upstream, order list"), "{text}");
    assert!(text.contains(" last "), "{text}");
    assert!(
        text.contains(
            "keeping their slots at their last weight (unavailable at lookup): 10.0.0.2:80"
        ),
        "{text}"
    );
    assert!(text.contains("added at weight 0: no slots"), "{text}");
    // What cannot be.
    bad(
        &[
            "table",
            "--mode",
            "upstream",
            "--order",
            "sorted",
            "10.0.0.1:80",
        ],
        None,
        "--order sorted contradicts",
    );
    bad(
        &[
            "lookup",
            "--mode",
            "upstream",
            "--port-hash",
            "always",
            "10.0.0.1:80",
            "--client",
            "192.0.2.1",
        ],
        None,
        "--port-hash always contradicts",
    );
    bad(&["table", "10.0.0.1:80:3:2"], None, "not its weight 3");
    bad(&["table", "10.0.0.1:80:0:-2"], None, "negative last weight");
    bad(&["table", "10.0.0.1:80:0:x"], None, "bad last weight");
    bad(
        &["table", "--mode", "fast", "10.0.0.1:80"],
        None,
        "'sorted' or 'upstream'",
    );
    bad(
        &["table", "--before-mode", "upstream", "10.0.0.1:80"],
        None,
        "only for 'diff'",
    );
    bad(
        &["check", "--mode", "upstream"],
        Some(CHECK_CONFIG),
        "not for 'check'",
    );
    bad(&["proc", "--mode", "upstream"], None, "not for 'proc'");
}

#[test]
fn upstream_lookup_skips_a_drained_server() {
    let servers = ["10.0.0.1:80", "10.0.0.2:80:0:1", "10.0.0.3:80"];
    let mut args = vec!["table", "--json", "--size", "251", "--mode", "upstream"];
    args.extend(servers);
    let table = table_of(&ok_json(&args, None));
    assert!(table.contains(&1));
    let f = temp_file(
        "drained-clients.txt",
        &(1..=200)
            .map(|i| format!("198.51.100.{}:{}\n", i, 1000 + i))
            .collect::<String>(),
    );
    let run = |extra: &[&str]| {
        let mut args = vec!["lookup", "--json", "--size", "251", "--mh-port"];
        args.extend(extra);
        args.extend(servers);
        args.extend(["--clients-file", f.to_str().expect("f")]);
        ok_json(&args, None)
    };
    // Without fallback: the drained server's clients are refused.
    let v = run(&["--mode", "upstream"]);
    assert_eq!(v["mode"], "upstream");
    let mut refused = 0;
    for (slot, server, dest) in lookups(&v) {
        let owner = table[slot as usize];
        if owner == 1 {
            refused += 1;
            assert!(server.is_null() && dest.is_null());
        } else {
            assert_eq!(server, u64::from(owner));
        }
    }
    assert!(refused > 0);
    // With fallback: the C walk, as the core computes it.
    let v = run(&["--mode", "upstream", "--fallback"]);
    let size = maglev::TableSize::new(251).expect("size");
    for (i, (_, server, _)) in lookups(&v).into_iter().enumerate() {
        let i = i as u8 + 1;
        let want = maglev::lookup_fallback(
            size,
            &table,
            &maglev::Addr::V4([198, 51, 100, i]),
            1000 + u16::from(i),
            |s| s != 1,
        );
        assert_eq!(server, want.map(u64::from).map_or(Value::Null, Value::from));
        assert!(server.is_u64() && server != 1);
    }
    // Sorted mode: the drained server has no slots, so nobody is refused.
    let v = run(&[]);
    assert_eq!(v["mode"], "sorted");
    assert!(lookups(&v).iter().all(|(_, s, _)| s.is_u64() && *s != 1));
}

#[test]
fn upstream_hashes_the_port_only_with_mh_port() {
    let run = |extra: &[&str], stdin: Option<&str>| {
        let mut args = vec!["lookup", "--json"];
        args.extend(extra);
        args.extend(["--client", "192.0.2.7:1111", "--client", "192.0.2.7:2222"]);
        ok_json(&args, stdin)
    };
    let servers = [
        "--mode",
        "upstream",
        "10.0.0.1:80",
        "10.0.0.2:80",
        "10.0.0.3:80",
    ];
    let v = run(&servers, None);
    assert_eq!(v["ports_hashed"], false);
    assert_eq!(v["port_hash"], "flag");
    let l = v["lookups"].as_array().expect("lookups");
    assert_eq!(l[0]["hashed_port"], 0);
    assert_eq!(l[1]["hashed_port"], 0);
    assert_eq!(l[0]["slot"], l[1]["slot"]);
    assert_eq!(l[0]["server"], l[1]["server"]);
    // With mh-port (option or service flag) the port counts.
    let size = maglev::TableSize::new(4093).expect("size");
    let client = maglev::Addr::V4([192, 0, 2, 7]);
    let mut with = servers.to_vec();
    with.push("--mh-port");
    let service = |flags: &str| {
        format!("TCP  10.0.1.1:80 mh ({flags})\n  -> 10.0.0.1:80 Masq 1 0 0\n  -> 10.0.0.2:80 Masq 1 0 0\n")
    };
    let with_flag = service("mh-port,flag-3");
    for v in [run(&with, None), run(&["-"], Some(&with_flag))] {
        assert_eq!(v["mode"], "upstream");
        assert_eq!(v["ports_hashed"], true);
        let l = v["lookups"].as_array().expect("lookups");
        for (x, port) in l.iter().zip([1111u16, 2222]) {
            assert_eq!(x["hashed_port"], port);
            assert_eq!(x["slot"], maglev::slot_of(size, &client, port));
        }
    }
    // flag-3 alone: port 0.
    let v = run(&["-"], Some(&service("flag-3")));
    assert_eq!(v["ports_hashed"], false);
    assert_eq!(v["lookups"][0]["slot"], v["lookups"][1]["slot"]);
    // Sorted mode hashes every port by default.
    let v = run(&["10.0.0.1:80", "10.0.0.2:80"], None);
    assert_eq!(v["ports_hashed"], true);
    assert_eq!(v["lookups"][1]["hashed_port"], 2222);
}

/// A service with flag-3 (and a drained server) and one without, in list
/// order.
const FLAG3_LISTING: &str = "\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  10.0.1.1:80 mh (flag-3)
  -> 10.0.2.13:80                 Masq    2      0          0
  -> 10.0.2.12:80                 Masq    0      0          0
  -> 10.0.2.11:80                 Masq    1      0          0
TCP  10.0.1.1:81 mh (mh-port)
  -> 10.0.2.13:81                 Masq    2      0          0
  -> 10.0.2.11:81                 Masq    1      0          0
";

#[test]
fn flag3_selects_upstream_mode() {
    let v = ok_json(
        &["table", "--json", "--size", "251", "-"],
        Some(FLAG3_LISTING),
    );
    let s = v["services"].as_array().expect("services");
    assert_eq!(
        (&s[0]["mode"], &s[0]["order"]),
        (&"upstream".into(), &"list".into())
    );
    assert_eq!(
        (&s[1]["mode"], &s[1]["order"]),
        (&"sorted".into(), &"sorted".into())
    );
    // ipvsadm shows no last weight: the drained server counts as added at 0.
    assert_eq!(s[0]["servers"][1]["last_weight"], 0);
    assert_eq!(s[0]["servers"][1]["slots"], 0);
    // With its last weight it keeps its slots, as the SERVER list says.
    let v = ok_json(
        &[
            "table",
            "--json",
            "--size",
            "251",
            "--service",
            "1",
            "--last-weight",
            "10.0.2.12:80=4",
            "-",
        ],
        Some(FLAG3_LISTING),
    );
    let direct = ok_json(
        &[
            "table",
            "--json",
            "--size",
            "251",
            "--mode",
            "upstream",
            "10.0.2.13:80:2",
            "10.0.2.12:80:0:4",
            "10.0.2.11:80:1",
        ],
        None,
    );
    assert_eq!(v["table"], direct["table"]);
    assert_eq!(v["servers"], direct["servers"]);
    assert!(v["servers"][1]["slots"].as_u64().expect("slots") > 0);
    // The save format's -b flag-3 as well.
    let save = "\
-A -t 10.0.1.1:80 -s mh -b flag-3
-a -t 10.0.1.1:80 -r 10.0.2.11:80 -m -w 1
-a -t 10.0.1.1:80 -r 10.0.2.13:80 -m -w 2
";
    // (Upstream mode needs the kernel's list order, which the save format
    // does not keep.)
    bad(&["table", "-"], Some(save), "upstream mode fills the table");
    let v = ok_json(&["table", "--json", "--mode", "sorted", "-"], Some(save));
    assert_eq!(v["mode"], "sorted");
    // --mode overrides the flag.
    let v = ok_json(
        &["table", "--json", "--mode", "sorted", "-"],
        Some(FLAG3_LISTING),
    );
    let s = v["services"].as_array().expect("services");
    assert!(s.iter().all(|x| x["mode"] == "sorted"));
    let v = ok_json(
        &["table", "--json", "--mode", "upstream", "-"],
        Some(FLAG3_LISTING),
    );
    let s = v["services"].as_array().expect("services");
    assert!(s.iter().all(|x| x["mode"] == "upstream"));
    // In lookups: list order, last weights, the port hashed only with mh-port.
    let v = ok_json(
        &[
            "lookup",
            "--json",
            "--service",
            "1",
            "-",
            "--client",
            "192.0.2.1:5",
        ],
        Some(FLAG3_LISTING),
    );
    assert_eq!(v["mode"], "upstream");
    assert_eq!(v["ports_hashed"], false);
    // --order sorted contradicts the flag.
    bad(
        &["table", "--order", "sorted", "-"],
        Some(FLAG3_LISTING),
        "service tcp:10.0.1.1:80 has flag-3",
    );
}

#[test]
fn last_weight_option() {
    let f = temp_file("flag3-listing.txt", FLAG3_LISTING);
    let file = f.to_str().expect("f");
    let lw = |extra: &[&str], needle: &str| {
        let mut args = vec!["table", "--service", "1"];
        args.extend(extra);
        args.push("-");
        bad(&args, Some(FLAG3_LISTING), needle);
    };
    lw(&["--last-weight", "10.9.9.9:80=2"], "not a real server");
    lw(&["--last-weight", "10.0.2.11:81=2"], "not a real server");
    lw(&["--last-weight", "10.0.2.11:80=5"], "not its weight 1");
    lw(&["--last-weight", "10.0.2.12:80"], "ADDR:PORT=WEIGHT");
    lw(&["--last-weight", "10.0.2.12:80=x"], "bad weight");
    lw(
        &[
            "--last-weight",
            "10.0.2.12:80=1",
            "--last-weight=10.0.2.12:80=2",
        ],
        "twice",
    );
    bad(
        &["table", "--last-weight", "10.0.0.1:80=2", "10.0.0.1:80:0"],
        None,
        "ADDR:PORT:0:LASTWEIGHT",
    );
    // Equal to a positive weight: allowed, changes nothing.
    let a = ok_json(
        &[
            "table",
            "--json",
            "--service",
            "1",
            "--last-weight",
            "10.0.2.11:80=1",
            "-",
        ],
        Some(FLAG3_LISTING),
    );
    let b = ok_json(
        &["table", "--json", "--service", "1", "-"],
        Some(FLAG3_LISTING),
    );
    assert_eq!(a, b);
    // The text report says what a weight 0 without last weight means.
    let out = mhsim(&["table", "--service", "1", "-"], Some(FLAG3_LISTING));
    let text = String::from_utf8(out.stdout).expect("utf8");
    assert!(
        text.contains("--last-weight ADDR:PORT=W): 10.0.2.12:80"),
        "{text}"
    );
    // In diff, for both sides: draining is no change in upstream mode.
    let drained = FLAG3_LISTING.replace(
        "  -> 10.0.2.12:80                 Masq    0",
        "  -> 10.0.2.12:80                 Masq    4",
    );
    let before = temp_file("flag3-before.txt", &drained);
    let v = ok_json(
        &[
            "diff",
            "--json",
            "--service",
            "1",
            "--last-weight",
            "10.0.2.12:80=4",
            "--before-file",
            before.to_str().expect("b"),
            "--after-file",
            file,
        ],
        None,
    );
    assert_eq!(v["before_mode"], "upstream");
    assert_eq!(v["changed_slots"], 0);
    // Without it the drained server loses its slots, and a note says why.
    let args = [
        "diff",
        "--json",
        "--service",
        "1",
        "--before-file",
        before.to_str().expect("b"),
        "--after-file",
        file,
    ];
    let out = mhsim(&args, None);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("mhsim: note: at weight 0 with last weight 0") && err.contains("10.0.2.12:80"),
        "{err}"
    );
    let v = ok_json(&args, None);
    assert!(v["changed_slots"].as_u64().expect("changed") > 0);
}

#[test]
fn diff_between_modes_counts_moving_clients() {
    // Not in sorted order, so that list order differs.
    let servers = ["10.0.0.3:80", "10.0.0.2:80:2", "10.0.0.1:80"];
    let clients: String = (0..300)
        .map(|i| format!("198.51.{}.{}:{}\n", 100 + i / 200, i % 200 + 1, 20000 + i))
        .collect();
    let f = temp_file("mode-diff-clients.txt", &clients);
    let cf = f.to_str().expect("f");
    let diff = |extra: &[&str]| {
        let mut args = vec!["diff", "--json"];
        args.extend(extra);
        args.push("--before");
        args.extend(servers);
        args.push("--after");
        args.extend(servers);
        ok_json(&args, None)
    };
    let look = |mode: &str, extra: &[&str]| -> Vec<Value> {
        let mut args = vec!["lookup", "--json", "--mode", mode];
        args.extend(extra);
        args.extend(servers);
        args.extend(["--clients-file", cf]);
        lookups(&ok_json(&args, None))
            .into_iter()
            .map(|(_, _, d)| d)
            .collect()
    };
    let leave = ["--before-mode", "upstream", "--after-mode", "sorted"];
    // Leaving upstream mode without mh-port: the port is hashed from now
    // on, so clients change slots; slots cannot be compared.
    let mut args = leave.to_vec();
    args.extend(["--clients-file", cf]);
    let v = diff(&args);
    assert_eq!(v["before_mode"], "upstream");
    assert_eq!(v["after_mode"], "sorted");
    assert_eq!(v["before"]["order"], "list");
    assert_eq!(v["after"]["order"], "sorted");
    assert_eq!(v["before"]["ports_hashed"], false);
    assert_eq!(v["after"]["ports_hashed"], true);
    assert_eq!(v["slots_comparable"], false);
    assert!(v["changed_slots"].is_null());
    assert!(v["servers"][0]["gained"].is_null());
    let est = v["estimated_moved_fraction"].as_f64().expect("estimate");
    assert!(est > 0.3 && est < 0.9, "{est}");
    let (b, a) = (look("upstream", &[]), look("sorted", &[]));
    let per = v["per_client"].as_array().expect("per_client");
    assert_eq!(per.len(), 300);
    let mut moved = 0;
    for (i, ((x, bd), ad)) in per.iter().zip(&b).zip(&a).enumerate() {
        assert_eq!(x["input"], clients.lines().nth(i).expect("line"));
        assert_eq!(&x["before"], bd);
        assert_eq!(&x["after"], ad);
        assert_eq!(x["moved"], bd != ad);
        moved += usize::from(bd != ad);
    }
    assert_eq!(v["moved"], moved);
    assert_eq!(v["clients"], 300);
    let fraction = v["fraction"].as_f64().expect("fraction");
    assert!((fraction - moved as f64 / 300.0).abs() < 1e-6);
    assert!((fraction - est).abs() < 0.15, "{fraction} vs {est}");
    // With mh-port both sides hash the port: slots compare, and the
    // clients agree with the lookups.
    let mut args = leave.to_vec();
    args.extend(["--mh-port", "--clients-file", cf]);
    let v = diff(&args);
    assert_eq!(v["slots_comparable"], true);
    assert!(v["changed_slots"].as_u64().expect("changed") > 0);
    assert!(v["estimated_moved_fraction"].is_null());
    let (b, a) = (look("upstream", &["--mh-port"]), look("sorted", &[]));
    let moved = b.iter().zip(&a).filter(|(x, y)| x != y).count();
    assert_eq!(v["moved"], moved);
    // The same mode on both sides: nobody moves.
    let v = diff(&["--mode", "upstream", "--client", "192.0.2.1:9"]);
    assert_eq!((&v["moved"], &v["clients"]), (&0.into(), &1.into()));
    assert_eq!(v["changed_slots"], 0);
    // Without clients: no per-client figures.
    let v = diff(&leave);
    assert!(v.get("moved").is_none() && v.get("per_client").is_none());
    // The text report.
    let mut args = vec!["diff"];
    args.extend(leave);
    args.extend(["--clients-file", cf, "--before"]);
    args.extend(servers);
    args.push("--after");
    args.extend(servers);
    let out = mhsim(&args, None);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).expect("utf8");
    assert!(text.contains("slots not comparable"), "{text}");
    assert!(text.contains("estimated clients that move: "), "{text}");
    assert!(text.contains("clients that move: "), "{text}");
    assert!(text.contains(" of 300 ("), "{text}");
    // A fleet leaving upstream mode: flag-3 before, not after (the modes
    // follow the flags).
    let before = temp_file(
        "leave-before.txt",
        "TCP  10.0.1.1:80 mh (flag-3)\n  -> 10.0.0.3:80 Masq 1 0 0\n  -> 10.0.0.2:80 Masq 2 0 0\n  -> 10.0.0.1:80 Masq 1 0 0\n",
    );
    let after = temp_file(
        "leave-after.txt",
        "TCP  10.0.1.1:80 mh\n  -> 10.0.0.3:80 Masq 1 0 0\n  -> 10.0.0.2:80 Masq 2 0 0\n  -> 10.0.0.1:80 Masq 1 0 0\n",
    );
    let v = ok_json(
        &[
            "diff",
            "--json",
            "--before-file",
            before.to_str().expect("b"),
            "--after-file",
            after.to_str().expect("a"),
            "--clients-file",
            cf,
        ],
        None,
    );
    assert_eq!(
        (&v["before_mode"], &v["after_mode"]),
        (&"upstream".into(), &"sorted".into())
    );
    assert!(v["moved"].as_u64().expect("moved") > 0);
    // --unavailable must name a server of either side.
    bad(
        &[
            "diff",
            "--unavailable",
            "10.9.9.9:80",
            "--client",
            "192.0.2.1",
            "--before",
            "10.0.0.1:80",
            "--after",
            "10.0.0.2:80",
        ],
        None,
        "not one of the servers",
    );
}
