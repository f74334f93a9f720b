#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""The scheduler benchmark's table (bench/sched): reads the BENCH lines of
bench/sched-guest.sh's output and prints Markdown, medians of the rounds,
with Rust/C where both were measured.

    sched-report.py LOG [--kernel RELEASE] [--commit ID]
"""

import argparse
import json
import statistics
import sys
from collections import defaultdict


def load(path):
    rows = []
    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith("BENCH {"):
                rows.append(json.loads(line[len("BENCH "):]))
    return rows


def per_call(row):
    return row["ns"] / row["calls"] if row["calls"] else float("nan")


def medians(rows, key):
    groups = defaultdict(list)
    for r in rows:
        groups[key(r)].append(per_call(r))
    return {k: (statistics.median(v), len(v)) for k, v in groups.items()}


def ratio(a, b):
    return f"{a / b:.2f}" if a and b else "-"


def main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("log")
    ap.add_argument("--kernel", default="?")
    ap.add_argument("--commit", default="?")
    args = ap.parse_args(argv)
    rows = load(args.log)
    if not rows:
        print(f"sched-report.py: no BENCH lines in {args.log}", file=sys.stderr)
        return 1

    print(f"# Scheduler benchmark: kernel {args.kernel}, commit {args.commit}")
    print()
    print("Median of the rounds (n: rounds); ns per call, under the VM's emulation.")
    print()
    dec = medians([r for r in rows if r["phase"] == "decision"],
                  lambda r: (r["sched"], r["mode"], r["servers"], r["family"], r["fallback"]))
    print("## Decisions (ns per schedule call)")
    print()
    print("| servers | family | fallback | C | Rust | Rust/C | Rust flag-3 | flag-3/C | n |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for key in sorted({k[2:] for k in dec}):
        c, n = dec.get(("mh", "sorted") + key, (None, 0))
        rs, _ = dec.get(("mhrs", "sorted") + key, (None, 0))
        up, _ = dec.get(("mhrs", "upstream") + key, (None, 0))
        cell = lambda v: f"{v:.0f}" if v else "-"
        print(f"| {key[0]} | IPv{key[1]} | {'yes' if key[2] else 'no'} | {cell(c)} | {cell(rs)} | "
              f"{ratio(rs, c)} | {cell(up)} | {ratio(up, c)} | {n} |")
    print()
    reb = medians([r for r in rows if r["phase"] == "rebuild"],
                  lambda r: (r["sched"], r["op"], r["slots"], r["servers"]))
    print("## Rebuilds (µs per callback, time in the scheduler's hook)")
    print()
    print("| operation | slots | servers | C | Rust | Rust/C | n |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for key in sorted({k[1:] for k in reb}, key=lambda k: (k[1], k[2], k[0])):
        c, n = reb.get(("mh",) + key, (None, 0))
        rs, nr = reb.get(("mhrs",) + key, (None, 0))
        cell = lambda v: f"{v / 1000:.1f}" if v else "-"
        print(f"| {key[0]} | {key[1]} | {key[2]} | {cell(c)} | {cell(rs)} | {ratio(rs, c)} | {max(n, nr)} |")
    refused = sum(r.get("refused", 0) for r in rows if r["phase"] == "decision")
    print()
    print(f"Refused decisions in all: {refused} (0 expected: every server is available).")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
