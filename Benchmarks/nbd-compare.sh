#!/usr/bin/env bash
# The same fio jobs (ioengine=nbd) against three exports of a file on tmpfs, in one run:
#   nbdkit's file plugin (the baseline), Replica StandAlone, and Replica Connected to a peer on
#   loopback under protocol C. Prints each figure and its ratio to nbdkit.
#   Jobs: 1 MiB sequential writes at QD 8; 4 KiB random writes at QD 32; 4 KiB writes at QD 1.
# The three exports run side by side and each job runs on the three in turn, ROUNDS times
# (default 3): a ratio compares figures taken seconds apart (this machine's speed drifts by
# tens of percent within minutes), and the summary gives each ratio's median over the rounds.
# Traffic stays on 127.0.0.0/8 and Unix sockets; every process is stopped by its PID.
# Usage: [ROUNDS=n] bash Benchmarks/nbd-compare.sh [seconds per job, default 4]
set -euo pipefail
cd "$(dirname "$0")/.."
source Benchmarks/daemon-pair.sh
seconds=${1:-4}
rounds=${ROUNDS:-3}
for tool in fio nbdkit python3; do command -v "$tool" >/dev/null || { echo "$tool missing: scripts/install-deps.sh" >&2; exit 1; }; done
log=$(mktemp)
swift build -c release --product replctl >"$log" 2>&1 || { cat "$log" >&2; exit 1; }
rm -f "$log"
REPLCTL=$PWD/.build/release/replctl
work=$(mktemp -d /dev/shm/replica-nbd-bench.XXXXXX)
port=$((22000 + RANDOM % 20000))
nbdkit_pid=""

cleanup() {
    [ -n "$nbdkit_pid" ] && kill "$nbdkit_pid" 2>/dev/null || true
    stop_daemons "$work" alpha beta solo
    sleep 0.3
    rm -rf "$work"
}
trap cleanup EXIT

# Disk files fully written (a disk's blocks exist; a sparse tmpfs file would allocate on first write).
for name in base solo alpha beta; do dd if=/dev/zero of="$work/$name.img" bs=1M count=1024 status=none; done

# 1. nbdkit file plugin.
nbdkit -f -U "$work/nbdkit.sock" file "$work/base.img" &
nbdkit_pid=$!
for _ in $(seq 50); do [ -S "$work/nbdkit.sock" ] && break; sleep 0.1; done

# 2. Replica StandAlone (attached, not connected, Primary), and 3. Replica Connected, protocol
# C, peer on loopback.
cat > "$work/r.conf" <<CONF
$(pair_resource "$work" "$port")
resource solo {
  device minor 1; meta-disk internal;
  on alpha { disk $work/solo.img; address 127.0.0.1:$((port + 1)); }
  on beta  { disk $work/unused.img; address 127.0.0.2:$((port + 1)); }
}
CONF
R() { "$REPLCTL" "$1" -c "$work/r.conf" --node "$2" --run-dir "$work/run-$3" "${@:4}"; }
R create-md alpha solo solo >/dev/null
R attach alpha solo solo
R primary alpha solo --force solo
R create-md alpha alpha r0 >/dev/null; R create-md beta beta r0 >/dev/null
R up alpha alpha r0; R up beta beta r0
R wait-connect alpha alpha --timeout 30 r0
R new-current-uuid alpha alpha --clear-bitmap r0
R wait-sync beta beta --timeout 30 r0
R primary alpha alpha r0

declare -A uri=(
    [nbdkit]="nbd+unix:///?socket=$work/nbdkit.sock"
    [standalone]="nbd+unix:///?socket=$work/run-solo/replica1"
    [connected]="nbd+unix:///?socket=$work/run-alpha/replica0"
)
results=$work/results
for round in $(seq "$rounds"); do
    for job in "write 1m 8" "randwrite 4k 32" "write 4k 1"; do
        set -- $job
        for target in nbdkit standalone connected; do
            fio --name=bench --ioengine=nbd --uri="${uri[$target]}" --rw="$1" --bs="$2" --iodepth="$3" --size=900m \
                --time_based --runtime="$seconds" --output-format=json --output="$work/fio.json" >/dev/null 2>&1
            echo "$round $2-qd$3 $target $(python3 -c "import json; j=json.load(open('$work/fio.json'))['jobs'][0]['write']; print(j['bw_bytes']/1e6, j['clat_ns']['percentile']['50.000000']/1000)")" >>"$results"
        done
    done
done
R down alpha solo solo; R down alpha alpha r0; R down beta beta r0

python3 - "$results" <<'PY'
import sys
from statistics import median
figures = {}
for line in open(sys.argv[1]):
    round_, job, target, bandwidth, p50 = line.split()
    figures.setdefault((job, target), []).append((float(bandwidth), float(p50)))
rows = [("1 MiB seq write QD8 (MB/s)", "1m-qd8", 0), ("4 KiB rand write QD32 (MB/s)", "4k-qd32", 0),
        ("4 KiB write QD1 (MB/s)", "4k-qd1", 0), ("4 KiB QD1 p50 latency (us)", "4k-qd1", 1)]
print(f"{'job (median of rounds)':32} {'nbdkit file':>12} {'StandAlone':>12} {'ratio':>6} {'protocol C':>12} {'ratio':>6}   ratios per round (StandAlone; C)")
for name, job, field in rows:
    base, solo, conn = (figures[(job, target)] for target in ("nbdkit", "standalone", "connected"))
    solo_ratios = [s[field] / b[field] for s, b in zip(solo, base)]
    conn_ratios = [c[field] / b[field] for c, b in zip(conn, base)]
    print(f"{name:32} {median([b[field] for b in base]):12.1f} {median([s[field] for s in solo]):12.1f} {median(solo_ratios):6.2f}"
          f" {median([c[field] for c in conn]):12.1f} {median(conn_ratios):6.2f}   "
          f"{' '.join(f'{r:.2f}' for r in solo_ratios)}; {' '.join(f'{r:.2f}' for r in conn_ratios)}")
print("ratio: each round's figure over nbdkit's in the same round, median over the rounds")
print("goals: StandAlone >= 1.0 x nbdkit; protocol C >= 0.8 x (1 MiB), >= 0.5 x (4 KiB QD32); QD1 p50 latency <= 2 x nbdkit's")
PY
