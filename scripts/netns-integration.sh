#!/usr/bin/env bash
# Integration tests with two real daemons, each in its own network namespace, joined by a veth
# pair (10.99.N.1 / 10.99.N.2, addresses that exist only inside the namespaces). Needs root.
# Usage: netns-integration.sh REPLCTL TEST   (TEST: seed | protocols | garbage)
# Prints "PASS name" or "FAIL name: why" and exits non-zero on failure. Cleans up its
# namespaces and kills only the daemons it started, by PID.
set -euo pipefail
REPLCTL="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
TEST="$2"
id=$$
nsA="replica-a-$id"; nsB="replica-b-$id"
net=$(( (id % 200) + 20 ))
ipA="10.99.$net.1"; ipB="10.99.$net.2"
work=$(mktemp -d /tmp/replica-netns.XXXXXX)

cleanup() {
    for node in alpha beta; do
        pid=$(cat "$work/run-$node/replctl.pid" 2>/dev/null || true)
        if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; fi
    done
    sleep 0.3
    for node in alpha beta; do
        pid=$(cat "$work/run-$node/replctl.pid" 2>/dev/null || true)
        if [ -n "$pid" ]; then kill -9 "$pid" 2>/dev/null || true; fi
    done
    ip netns del "$nsA" 2>/dev/null || true
    ip netns del "$nsB" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

fail() { echo "FAIL $TEST: $*"; for n in alpha beta; do echo "--- $n log"; tail -20 "$work/run-$n/replctl.log" 2>/dev/null || true; done; exit 1; }

ip netns add "$nsA"
ip netns add "$nsB"
ip link add "vra$id" type veth peer name "vrb$id"
ip link set "vra$id" netns "$nsA"
ip link set "vrb$id" netns "$nsB"
ip -n "$nsA" addr add "$ipA/24" dev "vra$id"
ip -n "$nsB" addr add "$ipB/24" dev "vrb$id"
ip -n "$nsA" link set "vra$id" up
ip -n "$nsB" link set "vrb$id" up
ip -n "$nsA" link set lo up
ip -n "$nsB" link set lo up

A() { ip netns exec "$nsA" "$REPLCTL" "$1" -c "$work/r.conf" --node alpha --run-dir "$work/run-alpha" "${@:2}"; }
B() { ip netns exec "$nsB" "$REPLCTL" "$1" -c "$work/r.conf" --node beta --run-dir "$work/run-beta" "${@:2}"; }

setup() {  # protocol, size
    truncate -s "$2" "$work/alpha.img" "$work/beta.img"
    cat > "$work/r.conf" <<CONF
resource r0 {
  net { protocol $1; connect-int 1; ping-int 1; ping-timeout 5; max-buffers 8000; }
  # The dynamic resync controller, tuned for a fast link (DRBD's defaults cap at 100 MiB/s
  # and keep only 50 KiB in flight).
  disk { resync-rate 100M; c-fill-target 16M; c-max-rate 1G; }
  device minor 0; meta-disk internal;
  on alpha { disk $work/alpha.img; address $ipA:7789; }
  on beta  { disk $work/beta.img;  address $ipB:7789; }
}
CONF
    A create-md r0 >/dev/null
    B create-md r0 >/dev/null
}

start() {
    A up r0 || fail "up on alpha"
    B up r0 || fail "up on beta"
    A wait-connect --timeout 30 r0 || fail "no connection"
}

same_data() {  # compare the data areas (all but the last MiB, which holds the meta-data)
    local bytes=$(( $(stat -c %s "$work/alpha.img") - 1048576 ))
    cmp -s <(head -c "$bytes" "$work/alpha.img") <(head -c "$bytes" "$work/beta.img")
}

case "$TEST" in
seed)
    setup C 64M
    start
    A status --proc | grep -q "cs:Connected ro:Secondary/Secondary ds:Inconsistent/Inconsistent" || fail "not Connected Secondary/Secondary Inconsistent/Inconsistent: $(A status --proc)"
    A primary --force r0 || fail "primary --force"
    A wait-sync --timeout 60 r0 || fail "no sync"
    A status --proc | grep -q "cs:Connected ro:Primary/Secondary ds:UpToDate/UpToDate C" || fail "$(A status --proc)"
    B status --proc | grep -q "cs:Connected ro:Secondary/Primary ds:UpToDate/UpToDate C" || fail "$(B status --proc)"
    A down r0; B down r0
    same_data || fail "data differs"
    ;;
protocols)
    for proto in A B C; do
        setup "$proto" 300M
        head -c 256M /dev/urandom > "$work/existing.bin"
        dd if="$work/existing.bin" of="$work/alpha.img" conv=notrunc status=none
        rm -f "$work/existing.bin"
        start
        A primary --force r0 || fail "primary --force ($proto)"
        A wait-sync --timeout 300 r0 || fail "full sync of 256 MiB ($proto)"
        # 256 MiB of writes of mixed sizes at random offsets.
        written=0
        while [ "$written" -lt $((256 << 20)) ]; do
            size=$(( (RANDOM % 2048 + 1) * 4096 ))
            offset=$(( (RANDOM * 32768 + RANDOM) % ((290 << 20) / 4096 - 2048) * 4096 ))
            head -c "$size" /dev/urandom > "$work/chunk.bin"
            A write --offset "$offset" --input "$work/chunk.bin" r0 || fail "write ($proto)"
            written=$((written + size))
        done
        A down r0; B down r0
        same_data || fail "data differs under protocol $proto"
        A shutdown >/dev/null 2>&1 || true; B shutdown >/dev/null 2>&1 || true
        sleep 0.5
        rm -f "$work/alpha.img" "$work/beta.img"
    done
    ;;
garbage)
    setup C 64M
    start
    A primary --force r0 || fail "primary --force"
    A wait-sync --timeout 60 r0 || fail "no sync"
    # Garbage, truncated and oversized frames to both listeners from raw sockets.
    for target in "$nsA $ipA" "$nsB $ipB"; do
        set -- $target
        ip netns exec "$1" python3 - "$2" <<'PY'
import socket, struct, sys, os
host = sys.argv[1]
def send(payload):
    try:
        s = socket.create_connection((host, 7789), timeout=2)
        s.sendall(payload)
        s.close()
    except OSError:
        pass
send(os.urandom(4096))                                         # garbage
send(struct.pack(">IBBHHHI", 0x52504C43, 1, 27, 0, 0, 0, 0)[:7])  # truncated header
send(struct.pack(">IBBHHHI", 0x52504C43, 1, 9, 0, 0, 0, 0x7FFFFFFF) + b"x" * 100)  # oversized data frame
send(struct.pack(">IBBHHHI", 0x52504C43, 1, 200, 0, 0, 0, 0))  # unknown type
send(struct.pack(">IBBHHHI", 0xDEADBEEF, 1, 27, 0, 0, 0, 0))   # wrong magic
PY
    done
    sleep 0.5
    A status --proc | grep -q "cs:Connected" || fail "connection lost after garbage: $(A status --proc)"
    head -c 1M /dev/urandom > "$work/after.bin"
    A write --offset 4194304 --input "$work/after.bin" r0 || fail "write after garbage"
    A down r0; B down r0
    same_data || fail "data differs after garbage"
    ;;
cut)
    # The veth cut during writes; writes go on; on reconnect only what changed is resent.
    setup C 128M
    start
    A primary --force r0 || fail "primary --force"
    A wait-sync --timeout 60 r0 || fail "no sync"
    json() { A status --json | python3 -c "import json,sys; d=json.load(sys.stdin)[0]; print(d['connections'][0]['peer_devices'][0]['$1'])"; }
    before=$(json resync-bytes)
    ip -n "$nsA" link set "vra$id" down
    for i in $(seq 24); do
        head -c $(( (RANDOM % 64 + 1) * 4096 )) /dev/urandom > "$work/chunk.bin"
        A write --offset $(( (RANDOM % 28000) * 4096 )) --input "$work/chunk.bin" r0 || fail "write during the cut"
    done
    for _ in $(seq 100); do A status --proc | grep -q "cs:Connected" || break; sleep 0.1; done
    A status --proc | grep -q "cs:Connected" && fail "the cut was not noticed"
    dirtied=$(( $(json out-of-sync) * 1024 ))
    [ "$dirtied" -gt 0 ] || fail "no block marked out of sync during the cut"
    ip -n "$nsA" link set "vra$id" up
    A wait-sync --timeout 60 r0 || fail "no resync after the link came back: $(A status --proc)"
    resent=$(( $(json resync-bytes) - before ))
    echo "dirtied ${dirtied} bytes during the cut, resent ${resent} bytes on reconnect"
    [ "$resent" -le $(( dirtied * 105 / 100 )) ] || fail "resent $resent bytes for $dirtied dirtied (more than 1.05x)"
    [ "$resent" -ge "$dirtied" ] || fail "resent $resent bytes, fewer than the $dirtied dirtied"
    A down r0; B down r0
    same_data || fail "data differs after the cut"
    ;;
freeze)
    setup C 64M
    start
    A primary --force r0 || fail "primary --force"
    A wait-sync --timeout 60 r0 || fail "no sync"
    beta=$(cat "$work/run-beta/replctl.pid")
    kill -STOP "$beta"
    started=$(date +%s%N)
    lost=""
    for _ in $(seq 100); do
        if ! A status --proc | grep -q "cs:Connected"; then lost=$(( ($(date +%s%N) - started) / 1000000 )); break; fi
        sleep 0.1
    done
    [ -n "$lost" ] || { kill -CONT "$beta"; fail "frozen peer not declared lost within 10 s"; }
    echo "frozen peer declared lost after ${lost} ms (ping-int 1 s, ping-timeout 0.5 s)"
    [ "$lost" -le 3000 ] || { kill -CONT "$beta"; fail "declared lost after ${lost} ms, more than ping-int + ping-timeout + 1.5 s"; }
    head -c 2M /dev/urandom > "$work/during.bin"
    A write --offset 2097152 --input "$work/during.bin" r0 || { kill -CONT "$beta"; fail "the Primary stopped serving writes"; }
    kill -CONT "$beta"
    A wait-sync --timeout 60 r0 || fail "no resync after the peer woke up: $(A status --proc)"
    A down r0; B down r0
    same_data || fail "data differs after the freeze"
    ;;
*)
    echo "unknown test $TEST"; exit 2 ;;
esac
echo "PASS $TEST"
