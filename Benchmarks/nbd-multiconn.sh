#!/usr/bin/env bash
# What NBD_FLAG_CAN_MULTI_CONN buys: nbdcopy --connections=N (1, 2, 4) copying a file of random
# data on tmpfs into an export, with a FLUSH at the end (--flush): Replica Connected to a peer on
# loopback under protocol C, and nbdkit's file plugin as the baseline, one after the other in
# each round (ROUNDS, default 3). Prints MB/s per run and each median with its ratio to N=1.
# Traffic stays on 127.0.0.0/8 and Unix sockets; every process is stopped by its PID.
# Usage: [ROUNDS=n] bash Benchmarks/nbd-multiconn.sh [MiB to copy, default 512]
set -euo pipefail
cd "$(dirname "$0")/.."
source Benchmarks/daemon-pair.sh
mib=${1:-512}
rounds=${ROUNDS:-3}
for tool in nbdcopy nbdkit python3; do command -v "$tool" >/dev/null || { echo "$tool missing: scripts/install-deps.sh" >&2; exit 1; }; done
log=$(mktemp)
swift build -c release --product replctl >"$log" 2>&1 || { cat "$log" >&2; exit 1; }
rm -f "$log"
REPLCTL=$PWD/.build/release/replctl
work=$(mktemp -d /dev/shm/replica-multiconn.XXXXXX)
port=$((22000 + RANDOM % 20000))
nbdkit_pid=""

cleanup() {
    [ -n "$nbdkit_pid" ] && kill "$nbdkit_pid" 2>/dev/null || true
    stop_daemons "$work" alpha beta
    sleep 0.3
    rm -rf "$work"
}
trap cleanup EXIT

for name in base alpha beta; do dd if=/dev/zero of="$work/$name.img" bs=1M count=$((mib + 64)) status=none; done
head -c $((mib << 20)) /dev/urandom > "$work/source.img"

nbdkit -f -U "$work/nbdkit.sock" file "$work/base.img" &
nbdkit_pid=$!
for _ in $(seq 50); do [ -S "$work/nbdkit.sock" ] && break; sleep 0.1; done

primary_pair "$port"

declare -A uri=(
    [nbdkit]="nbd+unix:///?socket=$work/nbdkit.sock"
    [replica]="nbd+unix:///?socket=$work/run-alpha/replica0"
)
results=$work/results
for round in $(seq "$rounds"); do
    for connections in 1 2 4; do
        for target in nbdkit replica; do
            start=$(date +%s.%N)
            nbdcopy --flush --connections="$connections" "$work/source.img" "${uri[$target]}"
            end=$(date +%s.%N)
            echo "$round $target $connections $(python3 -c "print($mib * 1048576 / ($end - $start) / 1e6)")" >>"$results"
        done
    done
done
cmp -s "$work/source.img" <(head -c $((mib << 20)) "$work/alpha.img") || { echo "alpha's disk differs from the source" >&2; exit 1; }
cmp -s "$work/source.img" <(head -c $((mib << 20)) "$work/beta.img") || { echo "beta's disk differs from the source" >&2; exit 1; }
R down alpha r0; R down beta r0

python3 - "$results" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    _, target, connections, rate = line.split()
    runs.setdefault((target, int(connections)), []).append(float(rate))
for target in ("nbdkit", "replica"):
    single = statistics.median(runs[(target, 1)])
    for connections in (1, 2, 4):
        values = runs[(target, connections)]
        median = statistics.median(values)
        print(f"{target:8} --connections={connections}  median {median:8.1f} MB/s  x{median / single:.2f} of one connection  (runs: {' '.join(f'{v:.1f}' for v in values)})")
PY
