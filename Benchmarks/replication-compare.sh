#!/usr/bin/env bash
# Replicated writes and full sync through the library API over loopback, against iperf3's
# single-stream loopback throughput measured in the same run. Traffic stays on 127.0.0.0/8;
# each iperf3 server is stopped by its PID.
#
# This machine's loopback throughput drifts by up to 40 % within a minute, so the run
# alternates: iperf3, Replica's measurements, iperf3, Replica's measurements, ... iperf3
# (ROUNDS rounds, default 3). Each round's figures are divided by the mean of the iperf3 runs
# just before and just after them; the summary gives each ratio's median over the rounds.
# Usage: [ROUNDS=n] bash Benchmarks/replication-compare.sh [replication-bench options]
set -euo pipefail
cd "$(dirname "$0")"
command -v iperf3 >/dev/null || { echo "iperf3 missing: apt-get install iperf3" >&2; exit 1; }
dir=${BENCH_DIR:-/dev/shm}
rounds=${ROUNDS:-3}
log=$(mktemp)
swift build -c release --product replication-bench >"$log" 2>&1 || { cat "$log" >&2; exit 1; }
rm -f "$log"

iperf() {
    local port=$((40000 + RANDOM % 10000))
    iperf3 -s -1 -B 127.0.0.1 -p "$port" >/dev/null 2>&1 &
    local server=$!
    sleep 0.5
    iperf3 -c 127.0.0.1 -p "$port" -t 5 -J | python3 -c 'import json,sys; print(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/8e6)'
    kill "$server" 2>/dev/null || true
}

results=$(mktemp)
trap 'rm -f "$results"' EXIT
echo "iperf $(iperf)" >>"$results"
for round in $(seq "$rounds"); do
    .build/release/replication-bench --dir "$dir" "$@" 2>/dev/null | sed "s/^/round$round /" >>"$results"
    echo "iperf $(iperf)" >>"$results"
done

python3 - "$results" <<'PY'
import statistics, sys
iperf, rounds = [], {}
for line in open(sys.argv[1]):
    words = line.split()
    if words[0] == "iperf":
        iperf.append(float(words[1]))
    else:
        rounds.setdefault(len(iperf), []).append(words[1:])
ratios = {}
for index, lines in sorted(rounds.items()):
    baseline = (iperf[index - 1] + iperf[index]) / 2
    print(f"round {index}: iperf3 {iperf[index - 1]:.1f} MB/s before, {iperf[index]:.1f} MB/s after, baseline (mean) {baseline:.1f} MB/s")
    for name, value, unit, *rest in lines:
        if name.startswith("resync_scattered"):
            # Per-block work on a large bitmap, not link speed: reported as measured.
            print(f"  {name:28} {value:>10} {unit}  {' '.join(rest)}")
            continue
        ratio = float(value) / baseline
        ratios.setdefault(name, []).append(ratio)
        print(f"  {name:28} {value:>10} {unit}  ratio to iperf3: {ratio:.3f}  {' '.join(rest)}")
print(f"median over {len(rounds)} rounds:")
for name, values in ratios.items():
    print(f"  {name:28} ratio to iperf3: {statistics.median(values):.3f}  (rounds: {' '.join(f'{v:.3f}' for v in values)})")
PY
