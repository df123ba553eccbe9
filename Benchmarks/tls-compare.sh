#!/usr/bin/env bash
# Replication over TLS 1.3 against plain TCP, in alternating rounds of the same run: a full sync
# of SIZE (default 1 GiB) and GIB GiB (default 2) of 1 MiB protocol C writes at QD 8 through
# the Primary's NBD export (fio). For each: throughput (MB/s) and the CPU time of both daemons
# per GiB (user + system, from /proc/PID/stat), and the ratios to plain TCP of the same round.
# Modes: plain, tls-aes256 (TLS_AES_256_GCM_SHA384), tls-aes128 (TLS_AES_128_GCM_SHA256),
# tls-chacha (TLS_CHACHA20_POLY1305_SHA256).
# Usage: [REPLCTL=path] [ROUNDS=n] [GIB=n] [SIZE=MiB] bash Benchmarks/tls-compare.sh
# Disks on /dev/shm, traffic on 127.0.0.1/127.0.0.2; every process stopped by its PID.
set -euo pipefail
cd "$(dirname "$0")/.."
source Benchmarks/daemon-pair.sh
REPLCTL=${REPLCTL:-$PWD/.build/release/replctl}
rounds=${ROUNDS:-3}
gib=${GIB:-2}
size=${SIZE:-1024}
require_tools fio python3 openssl
pair_workspace tls-bench
bash scripts/make-test-pki.sh "$work/pki" >/dev/null

conf() {  # node, extra net options
    cat > "$work/$1.conf" <<CONF
resource r0 {
  net { protocol C; connect-int 1; max-buffers 8000; $2 }
  disk { md-flushes no; c-plan-ahead 0; resync-rate 4G; }
  device minor 0; meta-disk internal;
  on alpha { disk $work/alpha.img; address 127.0.0.1:$port; }
  on beta  { disk $work/beta.img;  address 127.0.0.2:$port; }
}
CONF
}
N() { "$REPLCTL" "$1" -c "$work/$2.conf" --node "$2" --run-dir "$work/run-$2" "${@:3}"; }
tls() { echo "tls yes; tls-certificate $work/pki/$1.pem; tls-privkey $work/pki/$1.key; tls-ca $work/pki/ca.pem; tls-ciphersuites $2;"; }
ticks=$(getconf CLK_TCK)
cpu() { sed -E 's/^.*\) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
now() { date +%s.%N; }

run_mode() {  # mode → prints "mode sync_MBps sync_cpu_ms_per_GiB write_MBps write_cpu_ms_per_GiB"
    local suite=""
    case $1 in
        tls-aes256) suite=TLS_AES_256_GCM_SHA384 ;;
        tls-aes128) suite=TLS_AES_128_GCM_SHA256 ;;
        tls-chacha) suite=TLS_CHACHA20_POLY1305_SHA256 ;;
    esac
    if [ -n "$suite" ]; then conf alpha "$(tls alpha $suite)"; conf beta "$(tls beta $suite)"; else conf alpha ""; conf beta ""; fi
    rm -f "$work/alpha.img" "$work/beta.img"
    truncate -s "$((size + 64))M" "$work/alpha.img" "$work/beta.img"
    N create-md alpha r0 >/dev/null; N create-md beta r0 >/dev/null
    N up alpha r0; N up beta r0
    N wait-connect alpha --timeout 30 r0
    local a b a0 b0 t0 a1 b1 t1 a2 b2 t2
    a=$(cat "$work/run-alpha/replctl.pid"); b=$(cat "$work/run-beta/replctl.pid")
    a0=$(cpu "$a"); b0=$(cpu "$b"); t0=$(now)
    N primary alpha --force r0
    N wait-sync alpha --timeout 600 r0
    a1=$(cpu "$a"); b1=$(cpu "$b"); t1=$(now)
    fio --name=tls --ioengine=nbd --uri="nbd+unix:///?socket=$work/run-alpha/replica0" --rw=write --bs=1m --iodepth=8 \
        --size="${size}m" --io_size="${gib}g" >/dev/null 2>&1
    a2=$(cpu "$a"); b2=$(cpu "$b"); t2=$(now)
    N down alpha r0; N down beta r0
    N shutdown alpha >/dev/null 2>&1 || true; N shutdown beta >/dev/null 2>&1 || true
    sleep 0.5
    python3 - "$1" "$size" "$gib" "$ticks" "$a0" "$b0" "$t0" "$a1" "$b1" "$t1" "$a2" "$b2" "$t2" <<'PY'
import sys
mode = sys.argv[1]; size, gib, ticks = float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
a0, b0, t0, a1, b1, t1, a2, b2, t2 = map(float, sys.argv[5:14])
sync_gib = size / 1024
print(mode, f"{size * 1.048576 / (t1 - t0):.0f}", f"{((a1 - a0) + (b1 - b0)) / ticks / sync_gib * 1000:.0f}",
      f"{gib * 1073.741824 / (t2 - t1):.0f}", f"{((a2 - a1) + (b2 - b1)) / ticks / gib * 1000:.0f}")
PY
}

echo "# $(nproc) cores; OpenSSL $(openssl version | cut -d' ' -f2); sync ${size} MiB, writes ${gib} GiB of 1 MiB at QD 8"
printf '%-11s %10s %14s %10s %14s %8s %8s %8s %8s\n' mode sync-MB/s sync-cpu-ms/GiB write-MB/s write-cpu-ms/GiB sync-x cpu-x write-x cpu-x
for round in $(seq "$rounds"); do
    plain=""
    for mode in plain tls-aes256 tls-aes128 tls-chacha; do
        line=$(run_mode "$mode")
        [ "$mode" = plain ] && plain="$line"
        python3 - "$line" "$plain" <<'PY'
import sys
m, s, sc, w, wc = sys.argv[1].split(); _, ps, psc, pw, pwc = sys.argv[2].split()
print(f"{m:11} {s:>10} {sc:>14} {w:>10} {wc:>14} {float(s)/float(ps):8.2f} {float(sc)/float(psc):8.2f} {float(w)/float(pw):8.2f} {float(wc)/float(pwc):8.2f}")
PY
    done
done
