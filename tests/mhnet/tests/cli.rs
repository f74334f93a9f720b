// SPDX-License-Identifier: GPL-2.0
//! End-to-end tests of the mhnet binary on loopback (no root, no netns):
//! a real `mhnet serve`, and `probe` / `streams` flows from chosen source
//! ports to it.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_mhnet");

/// A port free for both TCP and UDP on `ip` (the kernel's pick).
fn free_port(ip: &str) -> u16 {
    for _ in 0..100 {
        let t = TcpListener::bind((ip, 0)).unwrap();
        let port = t.local_addr().unwrap().port();
        if UdpSocket::bind((ip, port)).is_ok() {
            return port;
        }
    }
    panic!("no free port");
}

fn has_ipv6() -> bool {
    TcpListener::bind("[::1]:0").is_ok()
}

/// A scratch directory removed on drop.
struct Tmp(PathBuf);

impl Tmp {
    fn new(name: &str) -> Tmp {
        let p = std::env::temp_dir().join(format!("mhnet-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        Tmp(p)
    }

    fn file(&self, name: &str, text: &str) -> String {
        let p = self.0.join(name);
        fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_string()
    }

    fn path(&self, name: &str) -> String {
        self.0.join(name).to_str().unwrap().to_string()
    }
}

impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A running `mhnet serve`, killed on drop.
struct Server(Child);

impl Server {
    fn start(args: &[&str]) -> Server {
        let mut child = Command::new(BIN)
            .arg("serve")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let mut s = Server(child);
        match rx.recv_timeout(Duration::from_secs(5)) {
            Ok(l) if l == "ready\n" => s,
            other => {
                let _ = s.0.kill();
                panic!("serve {args:?} not ready: {other:?}");
            }
        }
    }

    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }
}

/// Runs mhnet to completion (15 s at most), `stdin` fed to it.
fn run(args: &[&str], stdin: &str) -> Out {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let text = stdin.to_string();
    let feeder = thread::spawn(move || {
        let _ = input.write_all(text.as_bytes());
    });
    let deadline = Instant::now() + Duration::from_secs(15);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("mhnet {args:?} ran over 15 s");
        }
        thread::sleep(Duration::from_millis(10));
    }
    let _ = feeder.join();
    let out = child.wait_with_output().unwrap();
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn probe(proto: &str, target: &str, clients: &str, extra: &[&str]) -> Out {
    let mut args = vec![
        "probe",
        "--proto",
        proto,
        "--target",
        target,
        "--clients",
        clients,
    ];
    args.extend_from_slice(extra);
    run(&args, "")
}

/// Probes the same source ports twice in a row (and one twice within a run)
/// and checks that every flow names the server.
fn probe_twice(proto: &str, ip: &str, bracket: bool, serve_args: &[&str], name: &str, port: u16) {
    let _srv = Server::start(serve_args);
    let fmt = |p: u16| {
        if bracket {
            format!("[{ip}]:{p}")
        } else {
            format!("{ip}:{p}")
        }
    };
    let target = fmt(port);
    let (c1, c2) = (fmt(free_port(ip)), fmt(free_port(ip)));
    let tmp = Tmp::new(&format!("probe-{proto}-{port}"));
    let list = tmp.file("clients", &format!("# sources\n{c1}\n\n{c2}\n{c1}\n"));
    for _ in 0..2 {
        let out = probe(proto, &target, &list, &["--parallel", "1"]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        let want = [
            format!("{c1} {name}"),
            format!("{c2} {name}"),
            format!("{c1} {name}"),
        ];
        assert_eq!(out.lines(), want, "stderr: {}", out.stderr);
        assert!(
            out.stderr.contains("probed 3 flows: 3 answered, 0 errors"),
            "{}",
            out.stderr
        );
    }
}

#[test]
fn tcp_probe_names_server_and_reuses_sources() {
    let port = free_port("127.0.0.1");
    let a = format!("127.0.0.1:{port}");
    probe_twice(
        "tcp",
        "127.0.0.1",
        false,
        &["--id", "rs1", "--tcp", &a],
        "rs1",
        port,
    );
}

#[test]
fn udp_probe_names_server_and_reuses_sources() {
    let port = free_port("127.0.0.1");
    let a = format!("127.0.0.1:{port}");
    probe_twice(
        "udp",
        "127.0.0.1",
        false,
        &["--id", "rs2", "--udp", &a],
        "rs2",
        port,
    );
}

#[test]
fn ipv6_probes() {
    if !has_ipv6() {
        eprintln!("no IPv6 loopback: skipped");
        return;
    }
    let port = free_port("::1");
    let a = format!("[::1]:{port}");
    let args = ["--id", "rs6", "--tcp", &a, "--udp", &a];
    probe_twice("tcp", "::1", true, &args, "rs6", port);
    probe_twice("udp", "::1", true, &args, "rs6", port);
}

#[test]
fn wildcard_listeners_coexist_and_udp_replies_from_the_vip() {
    let port = free_port("127.0.0.1");
    let v4 = format!("0.0.0.0:{port}");
    let mut args = vec!["--id", "rsw", "--tcp", &v4, "--udp", &v4];
    let v6 = format!("[::]:{port}");
    if has_ipv6() {
        args.extend_from_slice(&["--tcp", &v6, "--udp", &v6]);
    }
    let _srv = Server::start(&args);
    // 127.0.0.2 stands for a VIP on lo: the client's socket is connected to
    // it, so a reply from 127.0.0.1 (the socket's default source) would be
    // dropped.
    let c = free_port("127.0.0.1");
    for (proto, target) in [("tcp", "127.0.0.2"), ("udp", "127.0.0.2")] {
        let out = run(
            &[
                "probe",
                "--proto",
                proto,
                "--target",
                &format!("{target}:{port}"),
                "--clients",
                "-",
                "--timeout-ms",
                "1000",
            ],
            &format!("127.0.0.1:{c}\n"),
        );
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert_eq!(
            out.lines(),
            [format!("127.0.0.1:{c} rsw")],
            "{}",
            out.stderr
        );
    }
    if has_ipv6() {
        let list = format!("[::1]:{}\n", free_port("::1"));
        for proto in ["tcp", "udp"] {
            let out = run(
                &[
                    "probe",
                    "--proto",
                    proto,
                    "--target",
                    &format!("[::1]:{port}"),
                    "--clients",
                    "-",
                ],
                &list,
            );
            assert_eq!(out.lines(), [format!("{} rsw", list.trim())]);
        }
    }
}

#[test]
fn probe_errors_are_per_flow() {
    let closed = free_port("127.0.0.1");
    let c = free_port("127.0.0.1");
    let list = format!("127.0.0.1:{c}\n");
    let target = format!("127.0.0.1:{closed}");
    let args = |proto| {
        vec![
            "probe".to_string(),
            "--proto".into(),
            proto,
            "--target".into(),
            target.clone(),
            "--clients".into(),
            "-".into(),
            "--timeout-ms".into(),
            "200".into(),
            "--retries".into(),
            "1".into(),
        ]
    };
    for proto in ["tcp", "udp"] {
        let a = args(proto.to_string());
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        let out = run(&a, &list);
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert_eq!(out.lines(), [format!("127.0.0.1:{c} ERROR refused")]);
        assert!(out.stderr.contains("1 flows: 0 answered, 1 errors"));
    }
    // A UDP "server" that never answers: every try times out.
    let mute = UdpSocket::bind("127.0.0.1:0").unwrap();
    let target = mute.local_addr().unwrap().to_string();
    let t0 = Instant::now();
    let out = run(
        &[
            "probe",
            "--proto",
            "udp",
            "--target",
            &target,
            "--clients",
            "-",
            "--timeout-ms",
            "200",
            "--retries",
            "1",
        ],
        &list,
    );
    assert_eq!(out.lines(), [format!("127.0.0.1:{c} ERROR timeout")]);
    assert!(t0.elapsed() >= Duration::from_millis(400));
    let mut buf = [0u8; 64];
    mute.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let (n, from) = mute.recv_from(&mut buf).unwrap();
    assert_eq!(n, 16, "a 16-hex-digit token");
    assert_eq!(from.to_string(), format!("127.0.0.1:{c}"));
}

#[test]
fn probe_parallel_keeps_input_order() {
    let port = free_port("127.0.0.1");
    let a = format!("127.0.0.1:{port}");
    let _srv = Server::start(&["--id", "rsp", "--tcp", &a, "--udp", &a]);
    let clients: Vec<String> = (0..40)
        .map(|_| format!("127.0.0.1:{}", free_port("127.0.0.1")))
        .collect();
    let mut uniq = clients.clone();
    uniq.sort();
    uniq.dedup();
    let list = uniq.join("\n") + "\n";
    for proto in ["tcp", "udp"] {
        let out = run(
            &[
                "probe",
                "--proto",
                proto,
                "--target",
                &a,
                "--clients",
                "-",
                "--parallel",
                "8",
            ],
            &list,
        );
        let want: Vec<String> = uniq.iter().map(|c| format!("{c} rsp")).collect();
        assert_eq!(out.lines(), want, "{}", out.stderr);
    }
}

fn streams(target: &str, list: &str, extra: &[&str]) -> Out {
    let mut args = vec!["streams", "--target", target, "--clients", list];
    args.extend_from_slice(extra);
    run(&args, "")
}

fn stream_clients(tmp: &Tmp, n: usize) -> (String, Vec<String>) {
    let c: Vec<String> = (0..n)
        .map(|_| format!("127.0.0.1:{}", free_port("127.0.0.1")))
        .collect();
    (tmp.file("clients", &(c.join("\n") + "\n")), c)
}

/// Parses `CLIENT START END sent=N verified=N status=S`.
fn stream_line(line: &str) -> (String, String, String, u64, u64, String) {
    let f: Vec<&str> = line.split(' ').collect();
    assert_eq!(f.len(), 6, "{line}");
    let num = |s: &str, k: &str| s.strip_prefix(k).unwrap().parse::<u64>().unwrap();
    (
        f[0].into(),
        f[1].into(),
        f[2].into(),
        num(f[3], "sent="),
        num(f[4], "verified="),
        f[5].strip_prefix("status=").unwrap().into(),
    )
}

#[test]
fn streams_run_and_verify_echo() {
    let port = free_port("127.0.0.1");
    let a = format!("127.0.0.1:{port}");
    let _srv = Server::start(&["--id", "rss", "--tcp", &a]);
    let tmp = Tmp::new("streams-ok");
    let (list, clients) = stream_clients(&tmp, 3);
    let ready = tmp.path("ready");
    let t0 = Instant::now();
    let out = streams(
        &a,
        &list,
        &[
            "--duration-s",
            "1",
            "--interval-ms",
            "50",
            "--ready-file",
            &ready,
        ],
    );
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert_eq!(fs::read_to_string(&ready).unwrap(), "ready\n");
    let lines = out.lines();
    assert_eq!(lines.len(), 3, "{}", out.stdout);
    for (line, c) in lines.iter().zip(&clients) {
        let (client, start, end, sent, verified, status) = stream_line(line);
        assert_eq!(&client, c);
        assert_eq!((start.as_str(), end.as_str()), ("rss", "rss"));
        assert_eq!(status, "ok");
        assert!(sent >= 5, "{line}");
        assert_eq!(sent, verified, "{line}");
    }
}

#[test]
fn streams_stop_on_stop_file() {
    let port = free_port("127.0.0.1");
    let a = format!("127.0.0.1:{port}");
    let _srv = Server::start(&["--id", "rsf", "--tcp", &a]);
    let tmp = Tmp::new("streams-stop");
    let (list, _) = stream_clients(&tmp, 2);
    let (ready, stop) = (tmp.path("ready"), tmp.path("stop"));
    let stop2 = stop.clone();
    let ready2 = ready.clone();
    // Create the stop file once the streams are up.
    let stopper = thread::spawn(move || {
        for _ in 0..500 {
            if Path::new(&ready2).exists() {
                thread::sleep(Duration::from_millis(300));
                fs::write(&stop2, "").unwrap();
                return;
            }
            thread::sleep(Duration::from_millis(10));
        }
    });
    let t0 = Instant::now();
    let out = streams(
        &a,
        &list,
        &[
            "--duration-s",
            "60",
            "--ready-file",
            &ready,
            "--stop-file",
            &stop,
        ],
    );
    stopper.join().unwrap();
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(out.lines().len(), 2);
    assert!(out.lines().iter().all(|l| l.ends_with("status=ok")));
}

#[test]
fn streams_report_a_dead_server() {
    let port = free_port("127.0.0.1");
    let a = format!("127.0.0.1:{port}");
    let mut srv = Server::start(&["--id", "rsd", "--tcp", &a]);
    let tmp = Tmp::new("streams-dead");
    let (list, _) = stream_clients(&tmp, 2);
    let ready = tmp.path("ready");
    let ready2 = ready.clone();
    let killer = thread::spawn(move || {
        for _ in 0..500 {
            if Path::new(&ready2).exists() {
                thread::sleep(Duration::from_millis(200));
                srv.kill();
                return;
            }
            thread::sleep(Duration::from_millis(10));
        }
    });
    let out = streams(
        &a,
        &list,
        &[
            "--duration-s",
            "2",
            "--interval-ms",
            "20",
            "--ready-file",
            &ready,
        ],
    );
    killer.join().unwrap();
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    for line in out.lines() {
        let (_, start, end, sent, verified, status) = stream_line(line);
        assert_eq!((start.as_str(), end.as_str()), ("rsd", "rsd"));
        assert_eq!(status, "reset", "{line}");
        assert!(verified >= 1 && sent >= verified, "{line}");
    }
}

#[test]
fn streams_connect_failed() {
    let closed = format!("127.0.0.1:{}", free_port("127.0.0.1"));
    let tmp = Tmp::new("streams-refused");
    let (list, clients) = stream_clients(&tmp, 2);
    let ready = tmp.path("ready");
    let out = streams(
        &closed,
        &list,
        &["--duration-s", "1", "--ready-file", &ready],
    );
    assert_eq!(out.code, 1);
    assert!(Path::new(&ready).exists(), "ready even when streams failed");
    let want: Vec<String> = clients
        .iter()
        .map(|c| format!("{c} - - sent=0 verified=0 status=connect-failed"))
        .collect();
    assert_eq!(out.lines(), want);
}

/// `rate` fields as a map, from its one stdout line.
fn rate_fields(out: &Out) -> std::collections::HashMap<String, String> {
    out.stdout
        .trim()
        .strip_prefix("rate: ")
        .unwrap_or_else(|| panic!("not a rate line: {:?}", out.stdout))
        .split(' ')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn rate_counts_connections_and_paces_them() {
    let port = free_port("127.0.0.1");
    let a = format!("127.0.0.1:{port}");
    let _s = Server::start(&["--id", "rs1", "--tcp", &a]);
    let base = ["rate", "--target", &a, "--source", "127.0.0.1"];
    // Unpaced, bounded by --max.
    let out = run(
        &[&base[..], &["--max", "20", "--parallel", "2"]].concat(),
        "",
    );
    let f = rate_fields(&out);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!((f["conns"].as_str(), f["errors"].as_str()), ("20", "0"));
    assert_eq!(f["first_error"], "none");
    // Paced: one worker, one connection per 300 ms for 1 s starts at most 4.
    let paced = [
        "--parallel",
        "1",
        "--interval-ms",
        "300",
        "--duration-ms",
        "1000",
    ];
    let out = run(&[&base[..], &paced[..]].concat(), "");
    let f = rate_fields(&out);
    let conns: u32 = f["conns"].parse().unwrap();
    assert!((1..=4).contains(&conns), "{}", out.stdout);
    // A refused target is counted, with its reason.
    let dead = format!("127.0.0.1:{}", free_port("127.0.0.1"));
    let out = run(
        &[
            "rate",
            "--target",
            &dead,
            "--source",
            "127.0.0.1",
            "--max",
            "3",
        ],
        "",
    );
    let f = rate_fields(&out);
    assert_eq!(out.code, 1);
    assert_eq!(
        (f["errors"].as_str(), f["first_error"].as_str()),
        ("3", "refused")
    );
}

#[test]
fn bad_arguments_exit_2() {
    let tmp = Tmp::new("badargs");
    let good = tmp.file("good", "127.0.0.1:40000\n");
    let bad = tmp.file("bad", "127.0.0.1\n");
    let v6 = tmp.file("v6", "[::1]:40000\n");
    let cases: &[&[&str]] = &[
        &[],
        &["frobnicate"],
        &["serve"],
        &["serve", "--id", "x"],
        &["serve", "--id", "has space", "--tcp", "127.0.0.1:1"],
        &["serve", "--id", "x", "--tcp", "localhost:80"],
        &["serve", "--id", "x", "--tcp"],
        &["probe", "--proto", "tcp", "--clients", &good],
        &[
            "probe",
            "--proto",
            "sctp",
            "--target",
            "127.0.0.1:80",
            "--clients",
            &good,
        ],
        &[
            "probe",
            "--proto",
            "tcp",
            "--target",
            "127.0.0.1:80",
            "--clients",
            &bad,
        ],
        &[
            "probe",
            "--proto",
            "tcp",
            "--target",
            "127.0.0.1:80",
            "--clients",
            &v6,
        ],
        &[
            "probe",
            "--proto",
            "tcp",
            "--target",
            "127.0.0.1:80",
            "--clients",
            "/nonexistent",
        ],
        &[
            "probe",
            "--proto",
            "tcp",
            "--target",
            "127.0.0.1:80",
            "--clients",
            &good,
            "--parallel",
            "0",
        ],
        &[
            "probe",
            "--proto",
            "udp",
            "--target",
            "127.0.0.1:80",
            "--clients",
            &good,
            "--timeout-ms",
            "soon",
        ],
        &[
            "probe",
            "--proto",
            "udp",
            "--proto",
            "tcp",
            "--target",
            "127.0.0.1:80",
            "--clients",
            &good,
        ],
        &[
            "probe",
            "--proto",
            "tcp",
            "--target",
            "127.0.0.1:80",
            "--clients",
            &good,
            "--x",
            "1",
        ],
        &["streams", "--target", "127.0.0.1:80"],
        &[
            "streams",
            "--target",
            "127.0.0.1:80",
            "--clients",
            &good,
            "--duration-s",
            "601",
        ],
        &[
            "streams",
            "--target",
            "127.0.0.1:80",
            "--clients",
            &good,
            "--interval-ms",
            "0",
        ],
        &[
            "streams",
            "--target",
            "127.0.0.1:80",
            "--clients",
            &good,
            "extra",
        ],
    ];
    for args in cases {
        let out = run(args, "");
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "{args:?}: {}", out.stderr);
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn help_lists_subcommands() {
    for args in [&["--help"][..], &["help"], &["probe", "--help"]] {
        let out = run(args, "");
        assert_eq!(out.code, 0);
        for w in ["serve", "probe", "streams", "--ready-file", "status="] {
            assert!(out.stdout.contains(w), "{w}");
        }
    }
}
