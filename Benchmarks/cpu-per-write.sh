#!/usr/bin/env bash
# CPU time of each node's daemon per replicated write, user and system separately, read from
# /proc/PID/stat before and after a bounded fio job over the Primary's NBD export (protocol C,
# peer on loopback, disks on tmpfs). CPU time holds still where throughput on this 2-core
# machine does not: compare two builds by running this with each, in alternating rounds.
#   4 KiB writes at QD 1 (COUNT writes, default 20000): µs per write.
#   1 MiB writes at QD 8 (GIB GiB, default 2): ms per GiB.
# Usage: [REPLCTL=path] [ROUNDS=n] [COUNT=n] [GIB=n] bash Benchmarks/cpu-per-write.sh
# Every process is stopped by its PID; traffic stays on 127.0.0.0/8 and Unix sockets.
set -euo pipefail
cd "$(dirname "$0")/.."
source Benchmarks/daemon-pair.sh
REPLCTL=${REPLCTL:-$PWD/.build/release/replctl}
rounds=${ROUNDS:-1}
count=${COUNT:-20000}
gib=${GIB:-2}
require_tools fio python3
pair_workspace cpu-bench

for name in alpha beta; do dd if=/dev/zero of="$work/$name.img" bs=1M count=1024 status=none; done
primary_pair "$port"
primary=$(cat "$work/run-alpha/replctl.pid"); secondary=$(cat "$work/run-beta/replctl.pid")
ticks=$(getconf CLK_TCK)

# utime and stime (fields 14 and 15 of /proc/PID/stat; the name in field 2 may hold spaces).
cpu() { sed -E 's/^.*\) //' "/proc/$1/stat" | awk '{print $12, $13}'; }

measure() { # label, per (divisor), unit scale, fio options...
    local label=$1 per=$2 scale=$3; shift 3
    local p0 s0 p1 s1
    p0=$(cpu "$primary"); s0=$(cpu "$secondary")
    fio --name=cpu --ioengine=nbd --uri="nbd+unix:///?socket=$work/run-alpha/replica0" "$@" >/dev/null 2>&1
    p1=$(cpu "$primary"); s1=$(cpu "$secondary")
    python3 - "$label" "$per" "$scale" "$ticks" "$p0" "$p1" "$s0" "$s1" <<'PY'
import sys
label, per, scale, ticks = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
p0, p1, s0, s1 = ([int(x) for x in a.split()] for a in sys.argv[5:9])
f = lambda a, b, i: (b[i] - a[i]) / ticks / per * scale
print(f"{label:18} primary user {f(p0, p1, 0):8.1f} sys {f(p0, p1, 1):8.1f}   secondary user {f(s0, s1, 0):8.1f} sys {f(s0, s1, 1):8.1f}")
PY
}

for round in $(seq "$rounds"); do
    measure "4KiB-qd1 us/write" "$count" 1e6 --rw=write --bs=4k --iodepth=1 --size=900m --number_ios="$count"
    measure "1MiB-qd8 ms/GiB" "$gib" 1e3 --rw=write --bs=1m --iodepth=8 --size=900m --io_size="${gib}g"
done
R down alpha r0; R down beta r0
