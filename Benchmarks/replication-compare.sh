#!/usr/bin/env bash
# Replicated writes and full sync through the library API over loopback, against iperf3's
# single-stream loopback throughput measured in the same run (before and after). Prints each
# figure and its ratio. Traffic stays on 127.0.0.0/8; iperf3 runs 5 s twice; the server is
# stopped by its PID.
set -euo pipefail
cd "$(dirname "$0")"
command -v iperf3 >/dev/null || { echo "iperf3 missing: apt-get install iperf3" >&2; exit 1; }
dir=${BENCH_DIR:-/dev/shm}
log=$(mktemp)
swift build -c release --product replication-bench >"$log" 2>&1 || { cat "$log" >&2; exit 1; }
rm -f "$log"

# iperf3 runs before and after Replica's measurements; the baseline is their mean (this
# machine's loopback throughput drifts by up to 30 % within minutes).
iperf() {
    local port=$((40000 + RANDOM % 10000))
    iperf3 -s -1 -B 127.0.0.1 -p "$port" >/dev/null 2>&1 &
    local server=$!
    sleep 0.5
    iperf3 -c 127.0.0.1 -p "$port" -t 5 -J | python3 -c 'import json,sys; print(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/8e6)'
    kill "$server" 2>/dev/null || true
}
before=$(iperf)
results=$(.build/release/replication-bench --dir "$dir" "$@" 2>/dev/null)
after=$(iperf)
baseline=$(python3 -c "print(($before + $after) / 2)")
printf 'iperf3 single stream loopback: %.1f MB/s before, %.1f MB/s after, baseline (mean) %.1f MB/s\n' "$before" "$after" "$baseline"

while read -r name value unit rest; do
    ratio=$(python3 -c "print(f'{$value / $baseline:.3f}')")
    printf '%-28s %10s %s  ratio to iperf3: %s  %s\n' "$name" "$value" "$unit" "$ratio" "$rest"
done <<<"$results"
