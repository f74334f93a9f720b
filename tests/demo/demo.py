#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
# The demo's bookkeeping (run inside the VM by tests/demo/guest.sh): table
# fingerprints, and which director and real server carried each stream.
#
#   demo.py tables MHSIM MODE SERVICE DIR TAG [FIRST LAST N]
#       DIR/TAG.dN.list: `ipvsadm -Ln --nosort` of director dN (d1..d3),
#       DIR/TAG.dN.proc: its /proc/net/ip_vs_mh. Prints the IPVS list orders
#       and each director's table fingerprint (mhsim's table for the
#       module's MODE, sorted or upstream: slot -> server address, hashed).
#       Exit 0 if the three are identical, 1 if not, 2 if the module's
#       per-server slot counts (or mode) differ from mhsim's. Directors named
#       in $DEMO_C_DIRECTORS run the in-tree C module, which has no
#       /proc/net/ip_vs_mh: their tables are mhsim's alone. A scheduler named
#       "mhrs" (the module's test build beside C) reads as "mh". With FIRST LAST N: also picks 2N client sources
#       10.0.1.2:PORT, FIRST <= PORT <= LAST, whose flows hash into the slots
#       where the list-order tables (upstream's order) disagree: N to
#       DIR/clients.1, N to DIR/clients.2 (filled up with other ports if too
#       few).
#   demo.py after DIR TAG DOWN MODE
#       DIR/TAG.clients: the streams' sources; DIR/TAG.before.dN and
#       DIR/TAG.after.dN: `ipvsadm -Lnc` of d1..d3 before and after director
#       DOWN was lost; DIR/TAG.out and .rc: mhnet streams' report and exit
#       status. Prints where the streams went and how they fared. MODE
#       "expect-ok": exit 1 unless every stream survived on its real server;
#       "contrast": report only, exit 0.
#   demo.py leave DIR TAG GONE
#       The same files for streams open while real server GONE (10.0.2.1x:80)
#       was removed from every director. Prints how the streams fared; exit 1
#       unless every stream on another server survived on it with no data
#       lost, every stream on GONE was affected (reset or timed out), and at
#       least one was.
#   demo.py switch DIR TAG
#       DIR/TAG.before.got and DIR/TAG.after.got: mhnet probe's answers
#       (CLIENT SERVER) for the same clients before and after the fleet left
#       upstream mode; DIR/TAG.want: `mhsim diff --json` of that change with
#       those clients. Prints how many flows moved and how many mhsim
#       predicted; exit 1 unless the flows that moved are exactly those mhsim
#       names, each to the server it names.
#   demo.py spread DIR TAG GONE
#       DIR/TAG.got: mhnet probe's answers (CLIENT SERVER), DIR/TAG.want:
#       mhsim lookup's (CLIENT -> slot S -> server I ADDR). Prints the new
#       flows per real server; exit 1 unless every answer is mhsim's and none
#       is GONE.
import hashlib
import json
import os
import subprocess
import sys

DIRECTORS = ["d1", "d2", "d3"]


def short(server):
    """10.0.2.13:80 -> r3 (the demo's real servers are 10.0.2.(10+i))."""
    try:
        return "r%d" % (int(server.split(":")[0].split(".")[3]) - 10)
    except (IndexError, ValueError):
        return server


def mhsim_table(mhsim, mode, service, listing):
    """mhsim's table for a director in the module's MODE (sorted or upstream,
    the C module's): (slot -> server address list, json)."""
    with open(listing) as f:
        text = f.read().replace(" mhrs ", " mh ")
    out = subprocess.run(
        [mhsim, "table", "--json", "--mode", mode, "--service", service, "-"],
        input=text, capture_output=True, text=True, check=True).stdout
    j = json.loads(out)
    names = {s["index"]: "%s:%d" % (s["addr"], s["port"]) for s in j["servers"]}
    return [names[t] for t in j["table"]], j, names


def fingerprint(mhsim, mode, service, listing, proc, c_module=False):
    """(fingerprint, None) or (fingerprint, why the module disagrees)."""
    slots, j, names = mhsim_table(mhsim, mode, service, listing)
    fp = hashlib.sha256(("\n".join(slots) + "\n").encode()).hexdigest()[:8]
    model = {names[s["index"]]: s["slots"] for s in j["servers"]}
    if c_module:
        return fp, None

    # The module's own view of the same service (mhsim reads its file).
    out = subprocess.run([mhsim, "proc", "--json", "--proc", proc, "--service", service],
                         capture_output=True, text=True)
    if out.returncode != 0:
        return fp, out.stderr.strip() or "no such service in /proc/net/ip_vs_mh"
    svc = json.loads(out.stdout)["services"][0]
    morder = svc["mode"]
    module = {d["address"]: d["slots"] for d in svc["dests"]}
    if morder is None:
        return fp, "no such service in /proc/net/ip_vs_mh"
    if morder != mode:
        return fp, "the module's service is in %s mode, not %s" % (morder, mode)
    if module != model:
        return fp, "slot counts differ: " + ", ".join(
            "%s mhsim %s module %s" % (short(s), model.get(s), module.get(s))
            for s in sorted(set(model) | set(module)) if model.get(s) != module.get(s))
    return fp, None


def list_order(listing):
    """The real servers of the listing's first service, in its order."""
    servers, services = [], 0
    with open(listing) as f:
        for w in (line.split() for line in f):
            if w and w[0] in ("TCP", "UDP", "SCTP", "FWM"):
                services += 1
            elif services == 1 and len(w) > 1 and w[0] == "->" and w[1][0].isdigit():
                servers.append(w[1])
    return servers


def cmd_tables(mhsim, mode, service, d, tag, *ports):
    fps, why, orders = [], [], []
    c_dirs = os.environ.get("DEMO_C_DIRECTORS", "").split()
    for dn in DIRECTORS:
        listing = "%s/%s.%s.list" % (d, tag, dn)
        fp, problem = fingerprint(mhsim, mode, service, listing, "%s/%s.%s.proc" % (d, tag, dn),
                                  dn in c_dirs)
        fps.append(fp)
        if problem:
            why.append("%s: %s" % (dn, problem))
        orders.append("%s %s" % (dn, " ".join(short(s) for s in list_order(listing))))
    same = len(set(fps)) == 1
    print("IPVS list order (newest first): " + " | ".join(orders))
    print("table fingerprints (mhsim, checked against /proc/net/ip_vs_mh): %s   identical: %s" % (
        "  ".join("%s %s" % x for x in zip(DIRECTORS, fps)), "yes" if same else "no"))
    for w in why:
        print("  problem: the module and mhsim disagree, " + w)
    if ports:
        first, last, n = ports
        cmd_ports(mhsim, service, first, last, n, "%s/clients.1" % d, "%s/clients.2" % d,
                  *("%s/%s.%s.list" % (d, tag, dn) for dn in DIRECTORS))
    return 2 if why else 0 if same else 1


def cmd_ports(mhsim, service, first, last, n, out1, out2, *listings):
    # The contrast phase's tables (upstream mode; its lookups with mh-port).
    tables = [mhsim_table(mhsim, "upstream", service, l)[0] for l in listings]
    risky_slots = {i for i in range(len(tables[0])) if len({t[i] for t in tables}) > 1}
    first, last, n = int(first), int(last), int(n)
    clients = ["10.0.1.2:%d" % p for p in range(first, last + 1)]
    with open(out1 + ".all", "w") as f:
        f.write("\n".join(clients) + "\n")
    with open(listings[0]) as f:
        text = f.read()
    out = subprocess.run(
        [mhsim, "lookup", "--json", "--mode", "upstream", "--mh-port", "--service", service,
         "--clients-file", out1 + ".all", "-"],
        input=text, capture_output=True, text=True, check=True).stdout
    risky = [x["input"] for x in json.loads(out)["lookups"] if x["slot"] in risky_slots]
    pick = risky[:2 * n]
    taken = set(pick)
    others = [c for c in clients if c not in taken]
    pick += others[:2 * n - len(pick)]
    with open(out1, "w") as f:
        f.write("\n".join(pick[:n]) + "\n")
    with open(out2, "w") as f:
        f.write("\n".join(pick[n:2 * n]) + "\n")
    print("(in upstream's list order these histories give tables that differ in %d of %d "
          "slots; the streams come from client ports whose flows hash into those slots: %d of "
          "the ports %d-%d, the worst case for list order)" % (
              len(risky_slots), len(tables[0]), len(risky), first, last))
    return 0


def hexaddr(a, p):
    return "%s:%d" % (".".join(str(int(a[i:i + 2], 16)) for i in (0, 2, 4, 6)), int(p, 16))


def conns(path, clients):
    """A director's IPVS connections: {client: real server}, for the
    demo's clients. PATH holds /proc/net/ip_vs_conn (hex) or ipvsadm -Lnc."""
    got = {}
    try:
        with open(path) as f:
            for line in f:
                w = line.split()
                if len(w) < 6 or w[0] != "TCP":
                    continue
                if len(w) >= 8 and len(w[1]) == 8 and len(w[2]) == 4:  # /proc/net/ip_vs_conn
                    c, s = hexaddr(w[1], w[2]), hexaddr(w[5], w[6])
                else:  # ipvsadm -Lnc
                    c, s = w[3], w[5]
                if c in clients:
                    got[c] = s
    except FileNotFoundError:
        pass
    return got


def load_clients(d, tag):
    with open("%s/%s.clients" % (d, tag)) as f:
        return [l.strip() for l in f if l.strip()]


def read_streams(d, tag):
    """mhnet streams' report: {client: (start, end, sent, verified, status)}."""
    res = {}
    with open("%s/%s.out" % (d, tag)) as f:
        for line in f:
            w = line.split()
            if len(w) >= 6:
                kv = dict(x.split("=", 1) for x in w[3:] if "=" in x)
                res[w[0]] = (w[1], w[2], int(kv.get("sent", 0)), int(kv.get("verified", 0)),
                             kv.get("status", "?"))
    return res


def report(problems, limit=12):
    """Prints the first LIMIT problems; 1 if there are any, else 0."""
    for p in problems[:limit]:
        print("  problem: " + p)
    if len(problems) > limit:
        print("  ... %d problems in all" % len(problems))
    return 1 if problems else 0


def before(d, tag, clients, down):
    """{client: (director, server)} before the failover; the clients in no
    director's table; those in two or more (a TCP retransmission timeout
    re-randomises the socket's hash, and the router may pick another next
    hop: harmless when the directors agree), with their servers."""
    seen = {c: [] for c in clients}
    for dn in DIRECTORS:
        for c, s in conns("%s/%s.before.%s" % (d, tag, dn), set(clients)).items():
            seen[c].append((dn, s))
    where, none, several = {}, [], {}
    for c, v in seen.items():
        if not v:
            none.append(c)
            continue
        where[c] = next((x for x in v if x[0] == down), v[0])
        if len(v) > 1:
            several[c] = v
    return where, none, several


def count(items, keys):
    n = {k: 0 for k in keys}
    for i in items:
        n[i] = n.get(i, 0) + 1
    return n


def fmt(n):
    return ", ".join("%s %d" % (k, v) for k, v in n.items())


def cmd_after(d, tag, down, mode):
    clients = load_clients(d, tag)
    where, none, several = before(d, tag, clients, down)
    alive = [dn for dn in DIRECTORS if dn != down]
    # A stream that moved shows up, after the failover, in the table of a
    # director that did not hold it before (IPVS created the entry on its
    # first mid-stream segment: sloppy_tcp).
    after = {}
    for dn in alive:
        for c, s in conns("%s/%s.after.%s" % (d, tag, dn), set(clients)).items():
            if c in where and where[c][0] != dn:
                after[c] = (dn, s)
    res = read_streams(d, tag)
    try:
        with open("%s/%s.rc" % (d, tag)) as f:
            rc = f.read().strip()
    except FileNotFoundError:
        rc = "none"

    moved = [c for c in clients if c in where and where[c][0] == down]
    spread = count((after[c][0] for c in moved if c in after), alive)
    servers = sorted({s for _, s in where.values()})
    print("%d streams were open: via %s; per real server: %s" % (
        len(clients), fmt(count((v[0] for v in where.values()), DIRECTORS)),
        fmt({short(s): n for s, n in count((v[1] for v in where.values()), servers).items()})))
    if several:
        print("(%d streams had gone through two directors before the failover (a TCP "
              "retransmission rehashed them), to %s)" % (
                  len(several), "the same real server" if all(
                      len({x[1] for x in v}) == 1 for v in several.values())
                  else "different real servers"))
    print("%s taken down: its %d streams were taken over by %s (new entries in their "
          "connection tables)" % (down, len(moved), fmt(spread) or "nobody"))
    problems, broke, changed, srv = [], [], [], {}
    sent = verified = 0
    for c in clients:
        start, end, s, v, status = res.get(c, ("-", "-", 0, 0, "missing"))
        sent, verified = sent + s, verified + v
        srv_before = where.get(c, (None, start))[1]
        srv_after = after[c][1] if c in after else srv_before
        if end != start:
            srv_after = end
        srv[c] = (srv_before, srv_after)
        if start != "-" and srv_before != start:
            problems.append("%s: the director sent it to %s, %s answered" %
                            (c, short(srv_before), short(start)))
        if srv_after != srv_before:
            changed.append(c)
        if status != "ok" or s != v:
            broke.append(c)
    resets = sum(1 for c in clients if res.get(c, ("",) * 5)[4] == "reset")
    not_taken = [c for c in moved if c not in after]

    if mode == "contrast":
        bad = sorted(set(broke) | set(changed))
        bad_moved = [c for c in bad if c in moved]
        print("after failover: %d of %d moved streams broke (%d reset, %d sent to another "
              "real server); %d of the %d that stayed on their director" % (
                  len(bad_moved), len(moved), sum(1 for c in bad_moved if c in broke),
                  sum(1 for c in bad_moved if c in changed),
                  len(bad) - len(bad_moved), len(clients) - len(moved)))
        return 0

    print("after failover: %d/%d streams ok, %d resets, %d changed server; %s" % (
        len(clients) - len(broke), len(clients), resets, len(changed),
        "no data lost (%d lines sent, every one echoed back intact)" % sent
        if sent == verified else "%d of %d lines not echoed back" % (sent - verified, sent)))

    def per_server(cs):
        b = count((short(srv[c][0]) for c in cs), [])
        a = count((short(srv[c][1]) for c in cs), [])
        return ", ".join("%s %d->%d" % (k, b.get(k, 0), a.get(k, 0))
                         for k in sorted(set(b) | set(a)))
    print("real server per stream, before->after: %s; the %d moved ones: %s" % (
        per_server(clients), len(moved), per_server(moved) or "none"))

    # Direct routing: the real servers' replies never cross a director.
    stats = {}
    for dn in DIRECTORS:
        try:
            with open("%s/%s.after.stats.%s" % (d, tag, dn)) as f:
                w = f.read().splitlines()[2].split()
            stats[dn] = (int(w[1], 16), int(w[2], 16))
        except (OSError, IndexError, ValueError):
            stats[dn] = (0, -1)
    print("replies bypassed the directors (direct routing): packets in/out %s" % ", ".join(
        "%s %d/%d" % (dn, i, o) for dn, (i, o) in stats.items()))
    for dn, (i, o) in stats.items():
        if i == 0 or o != 0:
            problems.append("%s's IPVS counted %d packets in, %d out" % (dn, i, o))

    for c in none:
        problems.append("%s: in no director's connection table before the failover" % c)
    for c, v in several.items():
        if len({x[1] for x in v}) > 1:
            problems.append("%s: sent to different real servers by %s" % (
                c, ", ".join("%s %s" % (dn, short(s)) for dn, s in v)))
    for c in not_taken:
        problems.append("%s: no surviving director took it over" % c)
    if not moved:
        problems.append("no stream went through %s: the failover proves nothing" % down)
    for c in (c for c in clients if c in broke or c in changed):
        start, end, s, v, status = res.get(c, ("-", "-", 0, 0, "missing"))
        problems.append("%s: %s, %d of %d lines echoed; %s via %s%s" % (
            c, status, v, s, short(start), where.get(c, ("?",))[0],
            ", then via %s to %s" % (after[c][0], short(after[c][1])) if c in after else ""))
    if rc != "0" and not broke:
        problems.append("mhnet streams exited %s" % rc)
    return report(problems)


def cmd_leave(d, tag, gone):
    clients = load_clients(d, tag)
    where, none, _ = before(d, tag, clients, None)
    res = read_streams(d, tag)
    missing = ("-", "-", 0, 0, "missing")
    on_gone = [c for c in clients if res.get(c, missing)[0] == gone]
    others = [c for c in clients if c not in on_gone]
    print("%d streams were open; per real server: %s" % (len(clients), fmt(
        {short(s): n for s, n in sorted(count((res.get(c, missing)[0] for c in clients),
                                              []).items())})))
    problems = []
    ok = [c for c in others if res[c][4] == "ok" and res[c][2] == res[c][3] and res[c][1] == res[c][0]]
    sent = sum(res.get(c, missing)[2] for c in others)
    print("%s removed from d1 d2 d3 (expire_nodest_conn=1): its %d streams: %s" % (
        short(gone), len(on_gone), fmt(count((res[c][4] for c in on_gone), [])) or "none"))
    print("the other %d streams: %d ok on the same real server, %d lines sent, all echoed back: %s" % (
        len(others), len(ok), sent, "yes" if len(ok) == len(others) else "no"))
    if not on_gone:
        problems.append("no stream was on %s: the removal proves nothing" % short(gone))
    for c in on_gone:
        if res[c][4] == "ok":
            problems.append("%s: still ok although its real server %s was removed" % (c, short(gone)))
    for c in others:
        if c not in ok:
            start, end, s, v, status = res.get(c, missing)
            problems.append("%s: %s, %d of %d lines echoed, %s -> %s (via %s)" % (
                c, status, v, s, short(start), short(end), where.get(c, ("?",))[0]))
    for c in none:
        problems.append("%s: in no director's connection table before the removal" % c)
    return report(problems)


def probe_answers(path):
    """mhnet probe's answers: client -> server (or the error)."""
    got = {}
    with open(path) as f:
        for line in f:
            w = line.split()
            if len(w) >= 2:
                got[w[0]] = w[1] if len(w) == 2 else " ".join(w[1:])
    return got


def cmd_switch(d, tag):
    before = probe_answers("%s/%s.before.got" % (d, tag))
    after = probe_answers("%s/%s.after.got" % (d, tag))
    with open("%s/%s.want" % (d, tag)) as f:
        j = json.load(f)
    want = {x["input"]: x for x in j["per_client"]}
    moved = {c for c in want if before.get(c) != after.get(c)}
    predicted = {c for c, x in want.items() if x["moved"]}
    print("%d flows probed before and after: %d moved to another real server, mhsim "
          "predicted %d (%.1f%%; estimated for any client %.1f%%)" % (
              len(want), len(moved), len(predicted), 100.0 * len(predicted) / max(len(want), 1),
              100.0 * (j["estimated_moved_fraction"] if j["estimated_moved_fraction"] is not None
                       else j["changed_fraction"])))
    problems = []
    for c, x in sorted(want.items()):
        if before.get(c) != x["before"] or after.get(c) != x["after"]:
            problems.append("%s: %s -> %s, mhsim says %s -> %s" % (
                c, before.get(c, "nobody"), after.get(c, "nobody"), x["before"], x["after"]))
    if not predicted:
        problems.append("mhsim predicted no flow moving: the switch proves nothing")
    return report(problems, 8)


def cmd_spread(d, tag, gone):
    got, want = {}, {}
    with open("%s/%s.got" % (d, tag)) as f:
        for line in f:
            w = line.split()
            if len(w) >= 2:
                got[w[0]] = w[1] if len(w) == 2 else " ".join(w[1:])
    with open("%s/%s.want" % (d, tag)) as f:
        j = json.load(f)
        # One object per service when the input has several, else one.
        for svc in j.get("services", [j]):
            for x in svc["lookups"]:
                want[x["input"]] = x["dest"] or "NONE"
    match = [c for c in want if got.get(c) == want[c]]
    print("%d new flows after the removal: per real server %s; %d of %d where mhsim says" % (
        len(got), fmt({short(s): n for s, n in sorted(count(got.values(), []).items())}),
        len(match), len(want)))
    problems = ["%s: answered by %s, mhsim says %s" % (c, got.get(c, "nobody"), want[c])
                for c in want if got.get(c) != want[c]]
    if not want:
        problems.append("mhsim predicted nothing")
    problems += ["%s: answered by the removed %s" % (c, short(gone))
                 for c, s in got.items() if s == gone]
    return report(problems, 8)


def main(a):
    if a[:1] == ["tables"] and len(a) in (6, 9):
        return cmd_tables(*a[1:])
    if a[:1] == ["after"] and len(a) == 5:
        return cmd_after(*a[1:])
    if a[:1] == ["switch"] and len(a) == 3:
        return cmd_switch(*a[1:])
    if a[:1] in (["leave"], ["spread"]) and len(a) == 4:
        return (cmd_leave if a[0] == "leave" else cmd_spread)(*a[1:])
    print("usage: see the head of demo.py", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
