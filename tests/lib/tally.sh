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

# counted LABEL CMD...: runs CMD, passing its output on and counting its
# PASS and FAIL lines as this script's. CMD exiting non-zero without having
# reported a failure died (a crash, a missing tool, a VM that did not boot):
# that is a failure too, named after LABEL, not a part with nothing to say.
counted() {
	local label=$1 before=$mh_failed status line
	shift
	local fifo
	fifo=$(mktemp -u)
	mkfifo "$fifo"
	"$@" >"$fifo" 2>&1 &
	local pid=$!
	while IFS= read -r line; do
		echo "$line"
		case "$line" in
		"PASS "*) mh_passed=$((mh_passed + 1)) ;;
		"FAIL "*) mh_failed=$((mh_failed + 1)) ;;
		esac
	done <"$fifo"
	wait "$pid"
	status=$?
	rm -f "$fifo"
	if [ "$status" != 0 ] && [ "$mh_failed" = "$before" ]; then
		fail "$label: ended with status $status and reported no failure"
	fi
	return "$status"
}

# step NAME CMD...: one step of a larger run (make check, the package test):
# its output streams under "=== NAME", then "PASS NAME (Ns)" or "FAIL NAME
# (Ns, exit N)" counts as one check. MH_ONLY="name1 name2" runs only those.
step() {
	local name=$1 start rc
	shift
	if [ -n "${MH_ONLY:-}" ] && ! [[ " $MH_ONLY " == *" $name "* ]]; then
		return 0
	fi
	start=$(date +%s)
	echo "=== $name"
	"$@"
	rc=$?
	if [ "$rc" = 0 ]; then
		pass "$name ($(($(date +%s) - start))s)"
	else
		fail "$name ($(($(date +%s) - start))s, exit $rc)"
		mh_failures+=("$name")
	fi
	return "$rc"
}
mh_failures=()
