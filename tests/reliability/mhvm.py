# SPDX-License-Identifier: GPL-2.0
"""What the reliability scripts share, inside the VM: results, commands, the
kernel log, and new flows compared with the model.

The topology is tests/lib/guest.sh's (client in ns c, director in ns d, real
servers r1.. at 10.0.2.(10+N) serving port 80); the scripts run in ns d.
"""

import json
import os
import socket
import struct
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from tally import check, finish, say  # noqa: E402,F401  (re-exported to the parts)

MHNET = os.environ.get("MHNET", "/tmp/mh-bin/mhnet")
MHSIM = os.environ.get("MHSIM", "/tmp/mh-bin/mhsim")
MODULE = "ip_vs_mh_rs"
VIP = "10.0.1.1"
CLIENT = "10.0.1.2"


def run(*cmd, input=None, timeout=120):
    return subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout)


# --- IPVS through its socket options (IPv4, NAT), as ipvsadm's older interface.
# The same kernel functions as the netlink one (ip_vs_add_dest and so on),
# without a process and a generic netlink family lookup per change.

IP_VS_BASE_CTL = 64 + 1024 + 64
SET_ADD, SET_EDIT, SET_DEL = IP_VS_BASE_CTL + 2, IP_VS_BASE_CTL + 3, IP_VS_BASE_CTL + 4
SET_ADDDEST, SET_DELDEST, SET_EDITDEST = (IP_VS_BASE_CTL + 7, IP_VS_BASE_CTL + 8,
                                          IP_VS_BASE_CTL + 9)
PROTOCOLS = {"tcp": socket.IPPROTO_TCP, "udp": socket.IPPROTO_UDP}


def service_arg(port, sched="mh", proto="tcp"):
    """struct ip_vs_service_user for VIP:port."""
    return struct.pack("=H2x4sH2xI16sIII", PROTOCOLS[proto], socket.inet_aton(VIP),
                       socket.htons(port), 0, sched.encode(), 0, 0, 0xFFFFFFFF)


def dest_arg(addr, weight, port=80):
    """struct ip_vs_dest_user, masquerading."""
    return struct.pack("=4sH2xIiII", socket.inet_aton(addr), socket.htons(port), 0,
                       weight, 0, 0)


class Ipvs:
    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)

    def set(self, cmd, arg):
        """Returns 0 or the errno of the socket option."""
        try:
            self.sock.setsockopt(socket.IPPROTO_IP, cmd, arg)
            return 0
        except OSError as e:
            return e.errno


def kmsg_records():
    """The kernel log's records still in its buffer, as (sequence number,
    "[seconds] message"), from /dev/kmsg. Sequence numbers, unlike line
    counts, stay right when the buffer wraps (the debug kernel logs a lot)."""
    out = []
    fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
    try:
        while True:
            try:
                rec = os.read(fd, 8192).decode(errors="replace")
            except BlockingIOError:
                break
            except BrokenPipeError:
                # Records overwritten while reading: go on with the next.
                continue
            head, _, msg = rec.partition(";")
            fields = head.split(",")
            if len(fields) < 3:
                continue
            usec = int(fields[2])
            out.append((int(fields[1]),
                        f"[{usec // 1000000:5d}.{usec % 1000000:06d}] {msg.splitlines()[0]}"))
    finally:
        os.close(fd)
    return out


def kmsg_mark():
    """A position in the kernel log, for kmsg_since."""
    recs = kmsg_records()
    return recs[-1][0] if recs else -1


def kmsg_since(mark):
    """The kernel log's lines after MARK."""
    return [line for seq, line in kmsg_records() if seq > mark]


def config_text():
    """The director's configuration, as the model reads it."""
    return run("ipvsadm", "-Sn").stdout


def proc_service(proto, port):
    """This namespace's mh service PROTO VIP:PORT as mhsim reads
    /proc/net/ip_vs_mh (mhsim proc --json), or None."""
    r = run(MHSIM, "proc", "--json", "--service", f"{proto}:{VIP}:{port}")
    return json.loads(r.stdout)["services"][0] if r.returncode == 0 else None


def agree():
    """Every mh table of the namespace equals the model's (mhsim check)."""
    r = run(MHSIM, "check", input=config_text())
    lines = (r.stdout + r.stderr).strip().splitlines()
    bad = [line for line in lines if not line.startswith("OK ")]
    return r.returncode == 0, (bad[0] if bad else f"{len(lines)} services agree")


class Ports:
    """Client source ports, each used once, from a block no other traffic of
    the test uses (the scripts move ns c's ephemeral ports above it)."""

    def __init__(self, first, last):
        self.next, self.last = first, last

    def take(self, n):
        if self.next + n - 1 > self.last:
            raise RuntimeError("out of client source ports")
        first = self.next
        self.next += n
        return range(first, first + n)


def flows_follow(config, proto, port, ports, removed=(), size=None):
    """New flows from CLIENT:PORTS to VIP:port land where `mhsim lookup` says
    for CONFIG (ipvsadm -Sn text) and the table SIZE (default: the
    service's, as the module says). A flow the model sends
    to a server in REMOVED must be refused instead: the serving table still
    names a server IPVS no longer has. Returns (ok, summary)."""
    if size is None:
        svc = proc_service(proto, port)
        size = svc["size"] if svc else 4093
    path = f"/tmp/mhvm-clients.{os.getpid()}"
    with open(path, "w") as f:
        f.write("".join(f"{CLIENT}:{p}\n" for p in ports))
    got = run("ip", "netns", "exec", "c", MHNET, "probe", "--proto", proto, "--target",
              f"{VIP}:{port}", "--clients", path, "--parallel", "4").stdout
    want = run(MHSIM, "lookup", "--json", "--size", str(size), "--service",
               f"{proto}:{VIP}:{port}", "--clients-file", path, "-", input=config).stdout
    os.unlink(path)
    model = {x["input"]: x["dest"] for x in json.loads(want)["lookups"]} if want else {}
    bad, n = [], 0
    for line in got.splitlines():
        f = line.split()
        if len(f) < 2:
            continue
        n += 1
        expect = model.get(f[0])
        if expect and expect.split(":")[0] in removed:
            # Refused at once (the module does not choose a deleted
            # server), not sent to it to hang.
            if f[1:3] != ["ERROR", "refused"]:
                bad.append(f"{f[0]} reached {' '.join(f[1:])}, model {expect} (removed)")
        elif f[1] != expect:
            bad.append(f"{f[0]} reached {' '.join(f[1:])}, model {expect}")
    ok = n == len(ports) and not bad
    return ok, f"{proto} {n} flows, {len(bad)} off" + (f": {bad[0]}" if bad else "")
