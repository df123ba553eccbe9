#!/usr/bin/env bash
# User-space instructions per replicated 4 KiB write (protocol C, QD 1, both nodes in one
# process on loopback), from valgrind's callgrind: replication-bench runs twice, with 4 MiB and
# 12 MiB of writes, and the difference of the totals is divided by the 2 048 writes between
# them, so that set-up and tear-down cancel out. Unlike wall-clock figures on this machine,
# the count holds still from run to run.
# Usage: bash Benchmarks/instructions-per-write.sh [replication-bench binary]
set -euo pipefail
bench=${1:+$(realpath "$1")}
cd "$(dirname "$0")"
command -v valgrind >/dev/null || { echo "valgrind missing: apt-get install valgrind" >&2; exit 1; }
if [ -z "$bench" ]; then
    log=$(mktemp)
    swift build -c release --product replication-bench >"$log" 2>&1 || { cat "$log" >&2; exit 1; }
    rm -f "$log"
    bench=.build/release/replication-bench
fi
work=$(mktemp -d /dev/shm/replica-callgrind.XXXXXX)
trap 'rm -rf "$work"' EXIT
# Debian 12's valgrind cannot read Swift 6.3's DWARF 5: symbols are kept, debug info dropped.
strip -g -o "$work/bench" "$bench"
total() {
    valgrind --tool=callgrind --callgrind-out-file="$work/cg.$1" "$work/bench" --dir "$work" --only writes \
        --write-size 4096 --depth 1 --write-mib "$1" >/dev/null 2>&1
    # (awk reads to the end: leaving early would fail the pipe under pipefail)
    callgrind_annotate "$work/cg.$1" 2>/dev/null | awk '/PROGRAM TOTALS/ && !found { gsub(",", "", $1); print $1; found = 1 }'
}
small=$(total 4)
large=$(total 12)
echo "instructions per write: $(( (large - small) / 2048 ))"
