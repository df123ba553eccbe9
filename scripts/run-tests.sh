#!/usr/bin/env bash
# Runs every test with the RDMA trait on and ends with one line: "N passed, N failed".
set -uo pipefail
build="${1:-.build-rdma}"
log=$(mktemp)
trap 'rm -f "$log"' EXIT

export REPLCTL="$PWD/$build/debug/replctl"
swift test --traits RDMA --scratch-path "$build" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}

# Swift Testing's summary: "Test run with N tests in M suites passed|failed after ..."
summary=$(grep -E "Test run with [0-9]+ tests?" "$log" | tail -n 1)
total=$(echo "$summary" | sed -E 's/.*Test run with ([0-9]+) tests?.*/\1/')
failed=$(grep -E "^✘ Test .* failed after" "$log" | grep -vc "^✘ Test run with" || true)
if [ -z "$total" ]; then
    echo "run-tests: no test summary found" >&2
    exit 1
fi
passed=$((total - failed))
echo
echo "make test: $passed passed, $failed failed"
exit "$status"
