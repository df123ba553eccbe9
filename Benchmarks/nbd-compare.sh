#!/usr/bin/env bash
# The same fio jobs (ioengine=nbd) against three exports of a file on tmpfs, in one run:
#   nbdkit's file plugin (the baseline), Replica StandAlone, and Replica Connected to a peer on
#   loopback under protocol C. Prints each figure and its ratio to nbdkit.
#   Jobs: 1 MiB sequential writes at QD 8; 4 KiB random writes at QD 32; 4 KiB writes at QD 1.
# Traffic stays on 127.0.0.0/8 and Unix sockets; every process is stopped by its PID.
# Usage: bash Benchmarks/nbd-compare.sh [seconds per job, default 5]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-5}
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
    for node in alpha beta solo; do
        pid=$(cat "$work/run-$node/replctl.pid" 2>/dev/null || true)
        [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
    done
    sleep 0.3
    rm -rf "$work"
}
trap cleanup EXIT

# Disk files fully written (a disk's blocks exist; a sparse tmpfs file would allocate on first write).
for name in base solo alpha beta; do dd if=/dev/zero of="$work/$name.img" bs=1M count=1024 status=none; done

jobs() {  # uri -> "bw_1m_qd8 bw_4k_qd32 bw_4k_qd1 p50_4k_qd1_us"
    local uri=$1 out=""
    for job in "write 1m 8" "randwrite 4k 32" "write 4k 1"; do
        set -- $job
        fio --name=bench --ioengine=nbd --uri="$uri" --rw="$1" --bs="$2" --iodepth="$3" --size=900m \
            --time_based --runtime="$seconds" --output-format=json --output="$work/fio.json" >/dev/null 2>&1
        out+=" $(python3 -c "import json; j=json.load(open('$work/fio.json'))['jobs'][0]['write']; print(f\"{j['bw_bytes']/1e6:.1f}:{j['clat_ns']['percentile']['50.000000']/1000:.1f}\")")"
    done
    echo "$out"
}

# 1. nbdkit file plugin.
nbdkit -f -U "$work/nbdkit.sock" file "$work/base.img" &
nbdkit_pid=$!
for _ in $(seq 50); do [ -S "$work/nbdkit.sock" ] && break; sleep 0.1; done
baseline=$(jobs "nbd+unix:///?socket=$work/nbdkit.sock")
kill "$nbdkit_pid"; nbdkit_pid=""

# 2. Replica StandAlone (attached, not connected, Primary).
cat > "$work/r.conf" <<CONF
resource r0 {
  net { protocol C; connect-int 1; max-buffers 8000; }
  disk { md-flushes no; }
  device minor 0; meta-disk internal;
  on alpha { disk $work/alpha.img; address 127.0.0.1:$port; }
  on beta  { disk $work/beta.img;  address 127.0.0.2:$port; }
}
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
standalone=$(jobs "nbd+unix:///?socket=$work/run-solo/replica1")
R down alpha solo solo

# 3. Replica Connected, protocol C, peer on loopback.
R create-md alpha alpha r0 >/dev/null; R create-md beta beta r0 >/dev/null
R up alpha alpha r0; R up beta beta r0
R wait-connect alpha alpha --timeout 30 r0
R new-current-uuid alpha alpha --clear-bitmap r0
R wait-sync beta beta --timeout 30 r0
R primary alpha alpha r0
connected=$(jobs "nbd+unix:///?socket=$work/run-alpha/replica0")
R down alpha alpha r0; R down beta beta r0

python3 - "$baseline" "$standalone" "$connected" <<'PY'
import sys
names = ["1 MiB seq write QD8 (MB/s)", "4 KiB rand write QD32 (MB/s)", "4 KiB write QD1 (MB/s)"]
rows = [[tuple(map(float, cell.split(":"))) for cell in arg.split()] for arg in sys.argv[1:4]]
base, solo, conn = rows
print(f"{'job':32} {'nbdkit file':>12} {'StandAlone':>12} {'ratio':>6} {'protocol C':>12} {'ratio':>6}")
for i, name in enumerate(names):
    print(f"{name:32} {base[i][0]:12.1f} {solo[i][0]:12.1f} {solo[i][0]/base[i][0]:6.2f} {conn[i][0]:12.1f} {conn[i][0]/base[i][0]:6.2f}")
print(f"{'4 KiB QD1 p50 latency (us)':32} {base[2][1]:12.1f} {solo[2][1]:12.1f} {solo[2][1]/base[2][1]:6.2f} {conn[2][1]:12.1f} {conn[2][1]/base[2][1]:6.2f}")
print("goals: StandAlone >= 1.0 x nbdkit; protocol C >= 0.8 x (1 MiB), >= 0.5 x (4 KiB QD32); QD1 p50 latency <= 2 x nbdkit's")
PY
