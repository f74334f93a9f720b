# SPDX-License-Identifier: GPL-2.0
"""The tests' PASS/FAIL protocol, for Python (tests/lib/tally.sh is the same
for shell): one line per check, "PASS name (detail)" or "FAIL name: reason",
then "N passed, M failed"; tests/run counts these lines."""

passed = 0
failed = 0


def say(*args):
    print(*args, flush=True)


def check(name, ok, detail=""):
    """One check's line; returns OK."""
    global passed, failed
    if ok:
        passed += 1
        say(f"PASS {name}{' (' + detail + ')' if detail else ''}")
    else:
        failed += 1
        say(f"FAIL {name}{': ' + detail if detail else ''}")
    return ok


def finish():
    """The totals line; the exit status: 0 if nothing failed."""
    say(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1
