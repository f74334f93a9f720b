#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Soak under churn, inside the debug VM.

Run in the director's namespace by tests/reliability/suite.sh, with real
servers r1..r8 serving TCP and UDP port 80, before ip_vs_mh_rs is loaded.

    soak.py DURATION_S [SEGMENTS] [SEED]

The run is cut into SEGMENTS, one per table size (4093, 251, 1021, 8191,
65521); between segments every service is deleted and the module is reloaded
with the next size. In each segment:
  - mh services (see Churn): r1..r4 are never removed (their weights
    change), r5..r8 come and go; extra mh services come and go;
  - long TCP streams (mhnet streams) run through the whole segment, and
    short TCP connections (mhnet rate) are opened all the time;
  - churn bursts make server adds, deletes and weight edits and service
    adds and deletes, one IPVS socket option call each (the kernel functions
    ipvsadm's netlink commands reach; ipvsadm itself spends most of a change
    in user space and generic netlink under TCG), as fast as the VM allows
    (the rate is reported, see MIN_RATE);
  - after each burst, with the configuration then in force: every mh table
    agrees with the model (mhsim check), and new TCP and UDP flows land
    where the model says.
At the end of a segment every stream on a server that was never removed
is intact, and no short connection failed or was refused (the service's
servers are drained to weight 0 and back, never deleted).
Kernel reports (KASAN, lockdep, RCU, WARN) are judged by the VM runner,
leaks by suite.sh with kmemleak.
"""

import os
import random
import subprocess
import sys
import time

from mhvm import (CLIENT, MHNET, MODULE, SET_ADD, SET_ADDDEST, SET_DEL, SET_DELDEST,
                  SET_EDITDEST, VIP, Ipvs, Ports, agree, check, config_text, dest_arg, finish,
                  flows_follow, kmsg_mark, kmsg_since, proc_service, run, say, service_arg)

STABLE = [f"10.0.2.{10 + i}" for i in range(1, 5)]
CHURN = [f"10.0.2.{10 + i}" for i in range(5, 9)]
EXTRA_PORTS = list(range(81, 89))
DRAIN_PORT = 90
PROTO = {"t": "tcp", "u": "udp"}
SIZES = [4093, 251, 1021, 8191, 65521]
# The churn runs as fast as the VM allows. Under TCG in the debug kernel
# (KASAN and lockdep slow every IPVS change) that is near 50 changes/s, so
# the rate is reported; MH_SOAK_MIN_RATE=50 (suite.sh --min-rate 50) makes
# it a check, for table sizes up to RATE_UP_TO (a 65521-slot rebuild alone
# is long).
#
# The soak's own traffic keeps both vCPUs busy under TCG: its packets cross
# the bridge and IPVS in the system time of the clients and servers that send
# them. Measured per process in one run, three segments with the same table
# size gave the churn 94, 26 and 93 changes/s, with the traffic's share of
# the CPU moving between them. The churn rate is part of what the soak asks
# for, the traffic's is not, so the churn (one process, so at most one of
# the two vCPUs) runs at nice -10, the traffic's clients and servers at 0.
# The checks' own probes and mhsim run at the churn's priority.
CHURN_NICE = -10
# Prefix for the traffic clients soak.py starts: back to nice 0.
TRAFFIC_NICE = ["nice", "-n", str(-CHURN_NICE)]
MIN_RATE = int(os.environ.get("MH_SOAK_MIN_RATE", "0"))
RATE_UP_TO = 8191
BURST_S = 5.0
STREAMS = 16
OUT = "/tmp/soak"


class Churn:
    """The configuration the churn keeps, and the next batch of changes.

    Three mh services: TCP and UDP VIP:80, whose churn servers are added and
    deleted, and TCP VIP:90 for the short connections, whose servers are
    added and drained (weight 0) but never deleted: IPVS drops the packets of
    a connection whose server was deleted, so only there must every short
    connection succeed. r1 always keeps a weight, so every service always
    has a destination. Extra TCP services come and go on ports 81..88."""

    MAIN = (("t", 80), ("u", 80), ("t", DRAIN_PORT))

    def __init__(self, rng):
        self.rng = rng
        self.main = {key: {a: 1 + i for i, a in enumerate(STABLE)} for key in self.MAIN}
        self.extra = {}

    def setup_lines(self):
        lines = []
        for (p, port), servers in self.main.items():
            lines.append(f"-A -{p} {VIP}:{port} -s mh")
            lines += [f"-a -{p} {VIP}:{port} -r {a}:80 -m -w {w}" for a, w in servers.items()]
        return lines

    def one(self):
        """One change (or three, for a new service), as (what, socket
        option, argument) in the words of ipvsadm."""
        r = self.rng.random()
        key = self.rng.choice(self.MAIN)
        servers = self.main[key]
        proto = PROTO[key[0]]
        svc = service_arg(key[1], proto=proto)
        what = f"-{key[0]} {VIP}:{key[1]}"
        if r < 0.40:
            a = self.rng.choice(sorted(servers))
            w = self.rng.randint(1 if a == STABLE[0] else 0, 5)
            servers[a] = w
            return [(f"-e {what} -r {a}:80 -w {w}", SET_EDITDEST, svc + dest_arg(a, w))]
        if r < 0.85:
            absent = [a for a in CHURN if a not in servers]
            present = [a for a in CHURN if a in servers]
            if absent and (not present or self.rng.random() < 0.5):
                a = self.rng.choice(absent)
                w = servers[a] = self.rng.randint(0, 5)
                return [(f"-a {what} -r {a}:80 -w {w}", SET_ADDDEST, svc + dest_arg(a, w))]
            a = self.rng.choice(present)
            if key[1] == DRAIN_PORT:
                servers[a] = 0
                return [(f"-e {what} -r {a}:80 -w 0", SET_EDITDEST, svc + dest_arg(a, 0))]
            del servers[a]
            return [(f"-d {what} -r {a}:80", SET_DELDEST, svc + dest_arg(a, 0))]
        port = self.rng.choice(EXTRA_PORTS)
        svc = service_arg(port)
        if port in self.extra:
            del self.extra[port]
            return [(f"-D -t {VIP}:{port}", SET_DEL, svc)]
        self.extra[port] = True
        return [(f"-A -t {VIP}:{port} -s mh", SET_ADD, svc),
                (f"-a -t {VIP}:{port} -r {CHURN[0]}:80 -w 2", SET_ADDDEST,
                 svc + dest_arg(CHURN[0], 2)),
                (f"-a -t {VIP}:{port} -r {STABLE[1]}:80 -w 3", SET_ADDDEST,
                 svc + dest_arg(STABLE[1], 3))]


def restore(lines):
    r = run("ipvsadm", "-R", input="\n".join(lines) + "\n")
    return r.returncode == 0 and not r.stderr.strip(), r.stderr.strip()


def reload(size):
    run("ipvsadm", "-C")
    for _ in range(50):
        if run("rmmod", MODULE).returncode == 0 or not os.path.isdir(f"/sys/module/{MODULE}"):
            break
        time.sleep(0.1)
    r = run("modprobe", MODULE, f"table_size={size}")
    return r.returncode == 0, r.stderr.strip()


def start_background(tag, seconds):
    """Long streams and short connections for the segment; returns the
    processes and the stop file."""
    clients = f"{OUT}/{tag}.clients"
    with open(clients, "w") as f:
        f.write("".join(f"{CLIENT}:{30000 + tag_no(tag) * 100 + i}\n" for i in range(STREAMS)))
    stop = f"{OUT}/{tag}.stop"
    ready = f"{OUT}/{tag}.ready"
    streams = subprocess.Popen(
        TRAFFIC_NICE + ["ip", "netns", "exec", "c", MHNET, "streams", "--target",
                        f"{VIP}:80", "--clients", clients, "--interval-ms", "500",
                        "--ready-file", ready, "--stop-file", stop],
        stdout=open(f"{OUT}/{tag}.streams", "w"), stderr=open(f"{OUT}/{tag}.streams.err", "w"))
    rate = subprocess.Popen(
        TRAFFIC_NICE + ["ip", "netns", "exec", "c", MHNET, "rate", "--target",
                        f"{VIP}:{DRAIN_PORT}", "--source", CLIENT, "--duration-ms",
                        str(int(seconds * 1000)), "--parallel", "2", "--interval-ms", "200",
                        "--timeout-ms", "5000"],
        stdout=open(f"{OUT}/{tag}.rate", "w"), stderr=open(f"{OUT}/{tag}.rate.err", "w"))
    for _ in range(600):
        if os.path.exists(ready):
            break
        time.sleep(0.1)
    return streams, rate, stop


def refusals(port):
    """The module's refusal count for TCP VIP:port (mhsim proc --json)."""
    s = proc_service("tcp", port)
    return s["refusals"] if s else 0


def tag_no(tag):
    return int(tag.split("-")[1])


def first_servers(tag):
    """Which server each stream reached first, from its report."""
    out = {}
    for line in open(f"{OUT}/{tag}.streams"):
        f = line.split()
        if len(f) >= 3:
            out[f[0]] = (f[1], f[-1])
    return out


def segment(no, size, seconds, rng, ports):
    tag = f"seg-{no}"
    ok, why = reload(size)
    if not check(f"segment {no}: module loaded with table_size={size}", ok, why):
        return
    churn = Churn(rng)
    ok, why = restore(churn.setup_lines())
    if not check(f"segment {no}: mh services TCP and UDP {VIP}:80, TCP {VIP}:{DRAIN_PORT}, "
                 "with r1..r4", ok, why):
        return
    ipvs = Ipvs()
    refused_before = refusals(DRAIN_PORT)
    streams, rate, stop = start_background(tag, seconds)
    deadline = time.monotonic() + seconds
    rounds = changes = 0
    cost, count = {}, {}
    burst_time = 0.0
    bad_rounds = []
    mark = kmsg_mark()
    for _ in range(10_000):
        if time.monotonic() >= deadline - BURST_S:
            break
        rounds += 1
        start = time.monotonic()
        failed = None
        while failed is None and time.monotonic() - start < BURST_S:
            for what, cmd, arg in churn.one():
                t = time.monotonic()
                err = ipvs.set(cmd, arg)
                kind = what.split()[0]
                cost[kind] = cost.get(kind, 0.0) + time.monotonic() - t
                count[kind] = count.get(kind, 0) + 1
                changes += 1
                if err:
                    failed = f"round {rounds}: {what}: {os.strerror(err)}"
                    bad_rounds.append(failed)
                    break
        burst_time += time.monotonic() - start
        config = config_text()
        ok, why = agree()
        if not ok:
            bad_rounds.append(f"round {rounds}: {why}")
        for proto, port in (("tcp", 80), ("udp", 80), ("tcp", DRAIN_PORT)):
            ok, why = flows_follow(config, proto, port, ports.take(12), size=size)
            if not ok:
                bad_rounds.append(f"round {rounds}: {why}")
    rate_s = changes / burst_time if burst_time else 0
    check(f"segment {no}: {rounds} churn bursts, every table and every new TCP/UDP flow "
          "as the model says after each", rounds > 0 and not bad_rounds,
          "; ".join(bad_rounds[:3]) if bad_rounds else f"{rounds} rounds")
    figure = (f"{changes} changes in {burst_time:.1f} s of bursts, {rate_s:.0f}/s; ms per change: "
              + ", ".join(f"{k} {1000 * cost[k] / count[k]:.0f} ({count[k]})" for k in sorted(count)))
    if MIN_RATE and size <= RATE_UP_TO:
        check(f"segment {no}: churn at {MIN_RATE} changes/s or more", rate_s >= MIN_RATE, figure)
    else:
        say(f"NOTE segment {no}: churn rate at table_size={size}: {figure}")
    open(stop, "w").close()
    try:
        streams.wait(timeout=60)
        rate.wait(timeout=60)
    except Exception:
        streams.kill()
        rate.kill()
    # Streams on servers never removed are intact; the others are reported.
    report = first_servers(tag)
    stable_bad = [f"{c} {s}" for c, (s, st) in report.items()
                  if s.split(":")[0] in STABLE and st != "status=ok"]
    stable_n = sum(1 for s, _ in report.values() if s.split(":")[0] in STABLE)
    churned = [(c, st) for c, (s, st) in report.items() if s.split(":")[0] not in STABLE]
    check(f"segment {no}: every long stream on a server never removed is intact",
          len(report) == STREAMS and not stable_bad and stable_n > 0,
          f"{stable_n} intact; on churned servers {sum(1 for _, st in churned if st == 'status=ok')}"
          f" of {len(churned)} intact" if not stable_bad else "; ".join(stable_bad[:3]))
    line = open(f"{OUT}/{tag}.rate").read().strip()
    fields = dict(kv.split("=", 1) for kv in line.split()[1:] if "=" in kv)
    errors = int(fields.get("errors", -1))
    refused = refusals(DRAIN_PORT) - refused_before
    # A drained server keeps its slots until the table built without it is
    # published (IPVS stores the weight 0 before it tells the scheduler): a
    # drain refuses nobody.
    check(f"segment {no}: short TCP connections to the drained (never deleted) service "
          "during the churn: none failed, none refused",
          int(fields.get("conns", 0)) > 0 and errors == 0 and refused == 0
          and fields.get("first_error") == "none",
          f"{line}; refusals counted {refused}")
    errors = [m for m in kmsg_since(mark) if "ip_vs_mh_rs" in m and "error" in m]
    check(f"segment {no}: no rebuild failed", not errors, errors[0] if errors else "")


def main():
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 60
    segments = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    os.makedirs(OUT, exist_ok=True)
    rng = random.Random(seed)
    ports = Ports(2000, 29999)
    os.nice(CHURN_NICE)
    say(f"soak: {seconds} s in {segments} segments, seed {seed}, churn at nice {CHURN_NICE}")
    for no in range(segments):
        segment(no, SIZES[no % len(SIZES)], seconds / segments, rng, ports)
    run("ipvsadm", "-C")
    return finish()


if __name__ == "__main__":
    sys.exit(main())
