#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Injected allocation failures, inside the debug VM.

Run in the director's namespace by tests/reliability/suite.sh, after the
topology and the real servers are up and before ip_vs_mh_rs is loaded.

Every allocation the module makes during a change is failed once, in turn:
for n = 1, 2, ... the change is made by this process through the IPVS
socket options, with n written to /proc/thread-self/fail-nth, so the kernel
fails the n-th allocation of the call. failslab and fail_page_alloc count
only allocations with the module's code on the stack (their stack filter is
set to the module's text), and the module has its own fault point for its
per-CPU counters. Reading fail-nth back says whether a failure was injected;
the walk ends at the first n the change no longer reaches.

After each injected failure:
  - a change IPVS reports (service add, module load) fails with ENOMEM and
    leaves nothing behind;
  - a change IPVS does not report (server add, edit, delete) keeps the
    previous table until the module's retry (10 s later in the debug
    kernel's build): same records in /proc/net/ip_vs_mh, same rebuild count,
    and new flows land where the model says for the previous configuration;
    the failure is logged once per service with its errno, even when a
    second change fails too;
  - with no further change, the retry rebuilds the table: it is logged as
    rebuilt again, and the table agrees with the model (mhsim check and real
    flows).
Leaks are judged by kmemleak in suite.sh, after this script.
"""

import ctypes
import errno
import os
import sys
import time

from mhvm import (MODULE, SET_ADD, SET_ADDDEST, SET_DEL, SET_DELDEST, SET_EDIT, SET_EDITDEST,
                  VIP, Ipvs, Ports, agree, check, config_text, dest_arg, finish, flows_follow,
                  kmsg_mark, kmsg_since, proc_service, run, service_arg)

SERVERS = ["10.0.2.11", "10.0.2.12", "10.0.2.13", "10.0.2.14"]
DEBUGFS = "/sys/kernel/debug"
# x86_64 module mapping space (arch/x86/include/asm/pgtable_64_types.h).
MODULES_AREA = (0xFFFFFFFFA0000000, 0xFFFFFFFFFF000000)
MAX_STEPS = 400
# The module retries a failed rebuild after 10 s in the debug kernel's build,
# then after twice as long each time.
HEAL_TIMEOUT = 40

IPVS = None

# --- fault injection ----------------------------------------------------------

def write(path, value):
    with open(path, "w") as f:
        f.write(str(value))


def set_range(start, end):
    for attr in ("failslab", "fail_page_alloc"):
        write(f"{DEBUGFS}/{attr}/require-start", start)
        write(f"{DEBUGFS}/{attr}/require-end", end)


def setup_faults():
    # `ip netns exec` gives this process its own /sys, without the debugfs
    # suite.sh mounted.
    if not os.path.isdir(f"{DEBUGFS}/failslab"):
        run("mount", "-t", "debugfs", "none", DEBUGFS)
    for attr in ("failslab", "fail_page_alloc"):
        d = f"{DEBUGFS}/{attr}"
        write(f"{d}/ignore-gfp-wait", "N")
        write(f"{d}/stacktrace-depth", 32)
        write(f"{d}/verbose", 1)
        write(f"{d}/probability", 0)
    write(f"{DEBUGFS}/fail_page_alloc/min-order", 0)
    write(f"{DEBUGFS}/fail_page_alloc/ignore-gfp-highmem", "N")


def module_text():
    """[start, end) of the loaded module's executable sections."""
    ko = run("modinfo", "-n", MODULE).stdout.strip()
    out = run("readelf", "-SW", ko).stdout
    sizes = {}
    for line in out.splitlines():
        parts = line.replace("[ ", "[").split()
        if len(parts) > 7 and parts[0].startswith("[") and "X" in parts[7]:
            sizes[parts[1]] = int(parts[5], 16)
    lo, hi = None, None
    for name, size in sizes.items():
        path = f"/sys/module/{MODULE}/sections/{name}"
        if not os.path.exists(path) or name.startswith(".init") or name.startswith(".exit"):
            continue
        addr = int(open(path).read(), 16)
        lo = addr if lo is None else min(lo, addr)
        hi = addr + size if hi is None else max(hi, addr + size)
    return lo, hi


def armed(n, fn):
    """Calls fn with the n-th allocation failing; returns (result, injected)."""
    with open("/proc/thread-self/fail-nth", "w") as f:
        f.write(str(n))
    result = fn()
    with open("/proc/thread-self/fail-nth") as f:
        left = int(f.read().strip() or 0)
    with open("/proc/thread-self/fail-nth", "w") as f:
        f.write("0")
    return result, left == 0


# --- what the kernel shows ----------------------------------------------------

def records(port):
    """This TCP service's figures (mhsim proc --json, without its servers)
    and what its table holds of each server (address, weight it was built
    with, slots), or (None, [])."""
    s = proc_service("tcp", port)
    if s is None:
        return None, []
    return ({k: v for k, v in s.items() if k != "dests"},
            [(d["address"], d["table_weight"], d["slots"]) for d in s["dests"]])


def rebuilds(port):
    s, _ = records(port)
    return s["rebuilds"] if s else None


PORTS = Ports(20000, 49999)


def flows_ok(config, port, removed=()):
    return flows_follow(config, "tcp", port, PORTS.take(16), removed)


# --- the walks ----------------------------------------------------------------

def walk_load():
    """Module load: every allocation of the module's init fails once."""
    ko = run("modinfo", "-n", MODULE).stdout.strip()
    libc = ctypes.CDLL(None, use_errno=True)
    set_range(*MODULES_AREA)

    def load():
        fd = os.open(ko, os.O_RDONLY)
        try:
            ret = libc.syscall(313, fd, b"", 0)  # finit_module
            return 0 if ret == 0 else ctypes.get_errno()
        finally:
            os.close(fd)

    injected_steps = 0
    for n in range(1, MAX_STEPS):
        mark = kmsg_mark()
        err, injected = armed(n, load)
        if not injected:
            check("module load: walk ends, the load succeeds", err == 0,
                  f"{injected_steps} injected failures")
            return err == 0
        injected_steps += 1
        loaded = os.path.isdir(f"/sys/module/{MODULE}")
        log = [line for line in kmsg_since(mark)
               if "cannot register" in line or "cannot set up /proc/net/ip_vs_mh" in line]
        if err == 0 and loaded and not log:
            # Absorbed below the module (kmemleak's or KASAN's own metadata
            # has a fallback): the load went through; unload for the next n.
            run("rmmod", MODULE)
            continue
        ok = (err == errno.ENOMEM and not loaded and len(log) == 1
              and not os.path.exists("/proc/net/ip_vs_mh"))
        if not ok:
            check(f"module load, allocation {n} fails: ENOMEM, nothing left, one message",
                  False, f"errno {err}, loaded {loaded}, messages {log}")
            if loaded:
                run("rmmod", MODULE)
    check("module load walk ends", False, f"more than {MAX_STEPS} allocations")
    return False


def walk_service_add(port):
    """Service add (init_service): ENOMEM, no service left behind, one message."""
    ok_all = True
    injected_steps = 0
    for n in range(1, MAX_STEPS):
        mark = kmsg_mark()
        err, injected = armed(n, lambda: IPVS.set(SET_ADD, service_arg(port)))
        if not injected:
            return check("service add: every allocation failed once, then it succeeds",
                         ok_all and err == 0, f"{injected_steps} injected failures")
        injected_steps += 1
        listed = f"{VIP}:{port}" in run("ipvsadm", "-Ln").stdout
        s, _ = records(port)
        log = [line for line in kmsg_since(mark) if f"TCP {VIP}:{port}: cannot set up" in line]
        if err == 0 and listed and s is not None and not log:
            # Absorbed below the module: the service is there; again.
            IPVS.set(SET_DEL, service_arg(port))
            continue
        ok = err == errno.ENOMEM and not listed and s is None and len(log) == 1
        if not ok:
            ok_all = check(f"service add, allocation {n} fails: ENOMEM, no service, one message",
                           False, f"errno {err}, listed {listed}, record {s}, messages {log}")
            if listed:
                IPVS.set(SET_DEL, service_arg(port))
    return check("service add walk ends", False, f"more than {MAX_STEPS} allocations")


def walk_switch_to_mh(port):
    """ipvsadm -E from rr to mh on a service with servers: init_service builds
    the first table. A failure leaves the service without a scheduler (IPVS
    unbinds the old one first); switching again recovers."""
    IPVS.set(SET_DEL, service_arg(port))
    if IPVS.set(SET_ADD, service_arg(port, "rr")):
        return check("switch to mh: set up an rr service", False)
    for a in SERVERS[:3]:
        IPVS.set(SET_ADDDEST, service_arg(port, "rr") + dest_arg(a, 1))
    ok_all, injected_steps = True, 0
    for n in range(1, MAX_STEPS):
        err, injected = armed(n, lambda: IPVS.set(SET_EDIT, service_arg(port)))
        if not injected:
            ok, why = agree()
            ok2, why2 = flows_ok(config_text(), port)
            IPVS.set(SET_DEL, service_arg(port))
            return check("switch rr -> mh: every allocation failed once, then the table "
                         "agrees with the model (mhsim check, real flows)",
                         ok_all and err == 0 and ok and ok2,
                         f"{injected_steps} injected failures; {why2}; {why}")
        injected_steps += 1
        s, _ = records(port)
        if err == 0 and s is not None:
            # Absorbed below the module: switched; back to rr and again.
            IPVS.set(SET_EDIT, service_arg(port, "rr"))
            continue
        if err != errno.ENOMEM or s is not None:
            ok_all = check(f"switch to mh, allocation {n} fails: ENOMEM, no mh state", False,
                           f"errno {err}, record {s}")
        # Back to rr for the next step.
        IPVS.set(SET_EDIT, service_arg(port, "rr"))
    return check("switch to mh walk ends", False, f"more than {MAX_STEPS} allocations")


def healed(port, count, mark):
    """Waits for the module to rebuild the table of PORT by itself (its
    rebuild count goes past COUNT); returns the "rebuilt again" messages
    logged since MARK."""
    end = time.monotonic() + HEAL_TIMEOUT
    while time.monotonic() < end:
        now = rebuilds(port)
        if now is not None and now > count:
            break
        time.sleep(0.2)
    return [line for line in kmsg_since(mark) if "table rebuilt again" in line]


def walk_change(what, port, prepare, change, second, undo, removed=()):
    """A server change IPVS does not report back: on failure the previous
    table serves; the failure is logged once (SECOND, a change armed to fail
    too, is not logged again); with no further change, the module's retry
    rebuilds the table."""
    prepare()
    name = f"TCP {VIP}:{port}"
    ok_all, injected_steps, once_checked, healed_steps = True, 0, False, 0
    for n in range(1, MAX_STEPS):
        before_cfg = config_text()
        before_s, before_d = records(port)
        mark = kmsg_mark()
        err, injected = armed(n, change)
        if not injected:
            ok, why = agree()
            undo()
            # The table's own node cannot fall back to another allocator:
            # at least that failure reaches the module.
            return check(f"{what}: every allocation failed once, the module healed every "
                         "failure it saw; without a failure the change applies",
                         ok_all and err == 0 and ok and healed_steps > 0 and once_checked,
                         f"{injected_steps} injected failures, {healed_steps} seen and healed"
                         f"{'' if once_checked else ', no second failure in a row seen'}; {why}")
        injected_steps += 1
        after_s, after_d = records(port)
        failed_log = [line for line in kmsg_since(mark)
                      if f"{name}: cannot rebuild the lookup table (error -12)" in line]
        if err != 0:
            ok_all = check(f"{what}, allocation {n} fails: IPVS accepts the change", False,
                           f"errno {err}")
        if failed_log:
            # The previous table keeps serving.
            same = after_d == before_d and after_s["rebuilds"] == before_s["rebuilds"]
            flows, why = flows_ok(before_cfg, port, removed)
            if not (same and flows and len(failed_log) == 1):
                ok_all = check(f"{what}, allocation {n} fails: the previous table serves",
                               False, f"same records {same}; {why}; log {failed_log}")
            healed_by_change = False
            if not once_checked:
                # A second change that fails too, at its first allocation
                # (the table's node, which has no fallback; the workspace is
                # already as large as it needs): not logged again, nothing
                # rebuilt.
                for k in (1,):
                    mark2 = kmsg_mark()
                    _, injected2 = armed(k, second)
                    if rebuilds(port) != before_s["rebuilds"] or not injected2:
                        # Absorbed, or past the last allocation: the change
                        # rebuilt the table; no second failure this time.
                        healed_by_change = True
                        break
                    again = [line for line in kmsg_since(mark2) if "cannot rebuild" in line]
                    once_checked = True
                    check(f"{what}: a second failure in a row is not logged again",
                          not again, f"{len(again)} more messages (allocation {k} of it failed)")
                    break
            if healed_by_change:
                ok, why = agree()
                if not ok:
                    ok_all = check(f"{what}, allocation {n} fails, then a change: table as "
                                   "the model says", False, why)
                undo()
                prepare()
                continue
            # No further change: the module's retry rebuilds the table.
            good = healed(port, before_s["rebuilds"], mark)
            ok, why = agree()
            flows, why2 = flows_ok(config_text(), port)
            if not (good and ok and flows and rebuilds(port) == before_s["rebuilds"] + 1):
                ok_all = check(f"{what}, allocation {n} fails: the module rebuilds the "
                               "table by itself", False, f"logged {good}; {why}; {why2}")
            else:
                healed_steps += 1
        else:
            # A failure the allocator absorbed (kvmalloc falls back to
            # vmalloc): the change applied.
            ok, why = agree()
            if not ok:
                ok_all = check(f"{what}, allocation {n} absorbed: table as the model says",
                               False, why)
        undo()
        prepare()
    return check(f"{what} walk ends", False, f"more than {MAX_STEPS} allocations")


def main():
    global IPVS
    setup_faults()
    if os.path.isdir(f"/sys/module/{MODULE}"):
        run("rmmod", MODULE)
    if not walk_load():
        return 1
    lo, hi = module_text()
    if not check("module text range found", lo is not None and hi > lo,
                 f"{lo:#x}-{hi:#x}" if lo else ""):
        return 1
    set_range(lo, hi)
    IPVS = Ipvs()
    port = 80
    walk_service_add(port)
    svc = service_arg(port)
    weights = {SERVERS[0]: 1, SERVERS[1]: 2, SERVERS[2]: 3}
    for a, w in weights.items():
        IPVS.set(SET_ADDDEST, svc + dest_arg(a, w))
    check("three servers added without failures", agree()[0])

    x, r2 = SERVERS[3], SERVERS[1]
    walk_change("server add", port,
                prepare=lambda: None,
                change=lambda: IPVS.set(SET_ADDDEST, svc + dest_arg(x, 4)),
                second=lambda: IPVS.set(SET_EDITDEST, svc + dest_arg(x, 4)),
                undo=lambda: IPVS.set(SET_DELDEST, svc + dest_arg(x, 0)))
    walk_change("weight edit", port,
                prepare=lambda: None,
                change=lambda: IPVS.set(SET_EDITDEST, svc + dest_arg(r2, 7)),
                second=lambda: IPVS.set(SET_EDITDEST, svc + dest_arg(r2, 7)),
                undo=lambda: IPVS.set(SET_EDITDEST, svc + dest_arg(r2, 2)))
    # After a failed delete the server is gone from IPVS but named by the
    # serving table: its flows fail, the others land as before. The second
    # change is a weight edit of another server.
    walk_change("server delete", port,
                prepare=lambda: IPVS.set(SET_ADDDEST, svc + dest_arg(x, 4)),
                change=lambda: IPVS.set(SET_DELDEST, svc + dest_arg(x, 0)),
                second=lambda: IPVS.set(SET_EDITDEST, svc + dest_arg(r2, 5)),
                undo=lambda: IPVS.set(SET_EDITDEST, svc + dest_arg(r2, 2)),
                removed=(x,))
    walk_switch_to_mh(8080)
    IPVS.set(SET_DEL, svc)
    return finish()


if __name__ == "__main__":
    sys.exit(main())
