# SPDX-License-Identifier: GPL-2.0
# The tests' PASS/FAIL protocol, for shell (sourced; tests/lib/tally.py is
# the same for Python). Each check prints one line, "PASS name (detail)" or
# "FAIL name" with the reason indented below; finish prints "N passed,
# M failed" and fails if anything did. tests/run counts these lines.

mh_failed=0
mh_passed=0

pass() { echo "PASS $*"; mh_passed=$((mh_passed + 1)); }
fail() { echo "FAIL $*"; mh_failed=$((mh_failed + 1)); }
# check NAME CMD...: one check, passing when CMD succeeds; the last line of
# its output is the detail of a pass, the last 20 the reason of a failure.
check() {
	local name=$1
	shift
	local out
	if out=$("$@" 2>&1); then
		pass "$name${out:+ ($(printf '%s\n' "$out" | tail -n 1))}"
	else
		fail "$name"
		printf '%s\n' "$out" | tail -n 20 | sed 's/^/    /'
	fi
}
finish() {
	echo "$mh_passed passed, $mh_failed failed"
	[ "$mh_failed" = 0 ]
}
