#!/usr/bin/env bash
# Integration tests with two real daemons, each in its own network namespace, joined by a veth
# pair (10.99.N.1 / 10.99.N.2, addresses that exist only inside the namespaces). Needs root.
# Usage: netns-integration.sh REPLCTL TEST
#   (TEST: seed | tls | tlsrefusals | protocols | garbage | cut | freeze | splitbrain | sbpolicies | unrelated | crashprimary | crashsecondary | diskless | disknone)
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

# shellcheck source=stop-daemons.sh
source "$(dirname "${BASH_SOURCE[0]}")/stop-daemons.sh"

cleanup() {
    stop_daemons "$work" alpha beta
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

# ALPHA_CONF / BETA_CONF: a node's own copy of the file (where the two must differ: TLS files).
A() { ip netns exec "$nsA" "$REPLCTL" "$1" -c "${ALPHA_CONF:-$work/r.conf}" --node alpha --run-dir "$work/run-alpha" "${@:2}"; }
B() { ip netns exec "$nsB" "$REPLCTL" "$1" -c "${BETA_CONF:-$work/r.conf}" --node beta --run-dir "$work/run-beta" "${@:2}"; }

setup() {  # protocol, size, [handlers], [extra net options]
    truncate -s "$2" "$work/alpha.img" "$work/beta.img"
    local handlers=""
    if [ "${3:-}" = handlers ]; then
        handlers="handlers { split-brain \"echo split-brain \$DRBD_RESOURCE >> $work/handlers.log\"; pri-lost-after-sb \"echo pri-lost-after-sb \$DRBD_RESOURCE >> $work/handlers.log\"; }"
    fi
    cat > "$work/r.conf" <<CONF
resource r0 {
  $handlers
  net { protocol $1; connect-int 1; ping-int 1; ping-timeout 5; max-buffers 8000; ${4:-} }
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

synced_pair() {
    start
    A primary --force r0 || fail "primary --force"
    A wait-sync --timeout 60 r0 || fail "no sync"
}

connected() { "$1" status --proc | grep -q "cs:Connected\|cs:Sync\|cs:WFBitMap\|cs:WFSyncUUID"; }

write_chunk() {  # node (A|B), offset in MiB: 1 MiB of random data, kept as chunk-NODE-MIB
    head -c 1M /dev/urandom > "$work/chunk-$1-$2"
    "$1" write --offset $(( $2 << 20 )) --input "$work/chunk-$1-$2" r0 || fail "write on $1 at $2 MiB"
}

split_apart() {  # A's writes, B's writes, A's role and B's role when the link comes back
    ip -n "$nsA" link set "vra$id" down
    for _ in $(seq 100); do connected A || connected B || break; sleep 0.1; done
    connected A && fail "the cut was not noticed"
    for i in $(seq "$1"); do write_chunk A $(( i * 4 )); done
    if [ "$(B role r0 | cut -d/ -f1)" != Primary ]; then B primary r0 || fail "primary on beta while apart: $(B status --proc)"; fi
    for i in $(seq "$2"); do write_chunk B $(( i * 4 + 2 )); done
    [ "$3" = Secondary ] && { A secondary r0 || fail "secondary on alpha"; }
    [ "$4" = Secondary ] && { B secondary r0 || fail "secondary on beta"; }
    ip -n "$nsA" link set "vra$id" up
}

wait_both() {  # both nodes in this connection state within 20 s
    for _ in $(seq 200); do
        A status --proc | grep -q "cs:$1" && B status --proc | grep -q "cs:$1" && return 0
        sleep 0.1
    done
    return 1
}

wait_synced_after_split() {
    for _ in $(seq 200); do
        A status --proc | grep -q "cs:Connected .* ds:UpToDate/UpToDate" && B status --proc | grep -q "cs:Connected .* ds:UpToDate/UpToDate" && return 0
        A status --proc | grep -q "cs:StandAlone" && return 1
        sleep 0.1
    done
    return 1
}

survivor_won() {  # survivor, victim: the survivor's chunks are on disk, the victim's are gone
    local survivor=$1 victim=$2 img="$work/alpha.img" s v
    s=$([ "$survivor" = alpha ] && echo A || echo B); v=$([ "$victim" = alpha ] && echo A || echo B)
    for f in "$work"/chunk-$s-*; do
        [ -e "$f" ] || continue
        cmp -s "$f" <(dd if="$img" bs=1M skip="${f##*-}" count=1 status=none) || fail "$survivor's write at ${f##*-} MiB lost"
    done
    for f in "$work"/chunk-$v-*; do
        [ -e "$f" ] || continue
        cmp -s "$f" <(dd if="$img" bs=1M skip="${f##*-}" count=1 status=none) && fail "$victim's write at ${f##*-} MiB survived; it should be discarded"
    done
    return 0
}

# send_raw NAMESPACE HOST SOURCE PAYLOADS: each payload (a Python list expression; os and struct
# imported) on its own connection to HOST:7789 from SOURCE, then closed.
send_raw() {
    ip netns exec "$1" python3 - "$2" "$3" "$4" <<'PY'
import os, socket, struct, sys
host, source, payloads = sys.argv[1], sys.argv[2], eval(sys.argv[3])
for payload in payloads:
    try:
        s = socket.create_connection((host, 7789), timeout=2, source_address=(source, 0))
        s.sendall(payload)
        s.close()
    except OSError:
        pass
PY
}

# TLS: certificates made by the openssl CLI (make-test-pki.sh), one resource file per node.
pki="$work/pki"
tls_conf() {  # node, net options: $work/NODE.conf
    cat > "$work/$1.conf" <<CONF
resource r0 {
  net { protocol C; connect-int 1; ping-int 1; ping-timeout 5; max-buffers 8000; $2 }
  disk { resync-rate 100M; c-fill-target 16M; c-max-rate 1G; }
  device minor 0; meta-disk internal;
  on alpha { disk $work/alpha.img; address $ipA:7789; }
  on beta  { disk $work/beta.img;  address $ipB:7789; }
}
CONF
}
tls_opts() { echo "tls yes; tls-certificate $pki/$1.pem; tls-privkey $pki/$1.key; tls-ca $pki/${2:-ca}.pem;"; }
tls_pair() {  # alpha's net options, beta's: fresh disks and meta-data, both files written
    ALPHA_CONF="$work/alpha.conf"; BETA_CONF="$work/beta.conf"
    rm -f "$work/alpha.img" "$work/beta.img"
    truncate -s 64M "$work/alpha.img" "$work/beta.img"
    tls_conf alpha "$1"; tls_conf beta "$2"
    A create-md r0 >/dev/null || fail "create-md on alpha"
    B create-md r0 >/dev/null || fail "create-md on beta"
}
capture_start() {  # the replication link as seen in alpha's namespace, into FILE
    ip netns exec "$nsA" tcpdump -i "vra$id" -U -s 0 -w "$1" tcp port 7789 2>"$1.log" &
    capture=$!
    for _ in $(seq 50); do grep -q "listening on" "$1.log" 2>/dev/null && return 0; sleep 0.1; done
    fail "tcpdump did not start: $(cat "$1.log")"
}
capture_stop() { sleep 0.5; kill -KILL "$capture" 2>/dev/null || true; wait "$capture" 2>/dev/null || true; capture=""; }
capture=""
trap 'kill -KILL $capture 2>/dev/null || true; cleanup' EXIT
# A known pattern: 1 MiB of one 32-byte marker over and over.
marker="REPLICA-CLEARTEXT-MARKER-7f3a9c1"
pattern() { /usr/bin/python3 -c "import sys; sys.stdout.buffer.write(b'$marker' * 32768)" > "$1"; }
nothing_on_beta() {  # beta's data area is still all zeroes
    local bytes=$(( $(stat -c %s "$work/beta.img") - 1048576 ))
    cmp -s -n "$bytes" "$work/beta.img" /dev/zero
}

case "$TEST" in
tls)
    # Mutual TLS 1.3 replication: a full sync and writes arrive byte for byte, and a capture of
    # the link never shows a written pattern in clear — which the same capture without TLS does
    # (so the check can fail).
    bash "$(dirname "${BASH_SOURCE[0]}")/make-test-pki.sh" "$pki" || fail "making the test certificates"
    for mode in plain tls pinned; do
        case $mode in
            plain) tls_pair "" "" ;;
            # Shared-secret authentication inside TLS, both configured.
            tls) tls_pair "$(tls_opts alpha) cram-hmac-alg sha256; shared-secret \"in tls\";" "$(tls_opts beta) cram-hmac-alg sha256; shared-secret \"in tls\";" ;;
            pinned)
                # Alpha pins beta's self-signed certificate (no CA for it); beta checks alpha
                # against the CA and the pin of alpha's certificate, both.
                pin_beta=$(openssl x509 -in "$pki/beta-self.pem" -noout -fingerprint -sha256 | cut -d= -f2)
                pin_alpha=$(openssl x509 -in "$pki/alpha.pem" -noout -fingerprint -sha256 | cut -d= -f2)
                tls_pair "tls yes; tls-certificate $pki/alpha.pem; tls-privkey $pki/alpha.key; tls-peer-fingerprint \"$pin_beta\";" \
                         "tls yes; tls-certificate $pki/beta-self.pem; tls-privkey $pki/beta-self.key; tls-ca $pki/ca.pem; tls-peer-fingerprint \"$pin_alpha\";" ;;
        esac
        head -c 60M /dev/urandom > "$work/existing.bin"
        dd if="$work/existing.bin" of="$work/alpha.img" conv=notrunc status=none
        capture_start "$work/$mode.pcap"
        start
        A primary --force r0 || fail "$mode: primary --force"
        A wait-sync --timeout 120 r0 || fail "$mode: no full sync"
        pattern "$work/pattern.bin"
        A write --offset 8388608 --input "$work/pattern.bin" r0 || fail "$mode: write"
        head -c 4M /dev/urandom > "$work/random.bin"
        A write --offset 20971520 --input "$work/random.bin" r0 || fail "$mode: write"
        # DRBD 9.2's status field: tls:yes shown whenever on, tls:no with --verbose.
        if [ $mode = plain ]; then
            A status --verbose | grep -q " tls:no" || fail "plain: status --verbose does not say tls:no: $(A status --verbose)"
        else
            A status | grep -q " tls:yes" || fail "$mode: status does not say tls:yes: $(A status)"
        fi
        A down r0; B down r0
        capture_stop
        same_data || fail "$mode: data differs"
        seen=$( { grep -a -o "$marker" "$work/$mode.pcap" || true; } | wc -l)
        packets=$(tcpdump -r "$work/$mode.pcap" 2>/dev/null | wc -l)
        echo "$mode: $packets packets captured, the marker seen $seen times"
        [ "$packets" -gt 100 ] || fail "$mode: the capture holds $packets packets; it did not see the link"
        if [ $mode = plain ]; then
            [ "$seen" -gt 1000 ] || fail "plain: the marker should be visible without TLS (seen $seen times)"
        else
            [ "$seen" = 0 ] || fail "$mode: the marker crossed the link in clear $seen times"
        fi
        A shutdown >/dev/null 2>&1 || true; B shutdown >/dev/null 2>&1 || true
        sleep 0.5
    done
    ;;
tlsrefusals)
    # Each wrong set-up is refused with the reason in both logs; nothing reaches beta's disk
    # while alpha writes; garbage during a TLS handshake does not stop the daemon.
    bash "$(dirname "${BASH_SOURCE[0]}")/make-test-pki.sh" "$pki" || fail "making the test certificates"
    refused() {  # what, alpha's net options, beta's, alpha's log must say, beta's log must say
        tls_pair "$2" "$3"
        A up r0 || fail "$1: up alpha"; B up r0 || fail "$1: up beta"
        sleep 3
        A status --proc | grep -q "cs:Connected" && fail "$1: alpha connected"
        B status --proc | grep -q "cs:Connected" && fail "$1: beta connected"
        grep -q "$4" "$work/run-alpha/replctl.log" || fail "$1: alpha's log does not say '$4'"
        grep -q "$5" "$work/run-beta/replctl.log" || fail "$1: beta's log does not say '$5'"
        A primary --force r0 || fail "$1: primary --force"
        pattern "$work/pattern.bin"
        A write --offset 4194304 --input "$work/pattern.bin" r0 || fail "$1: write on alpha"
        A down r0; B down r0
        A shutdown >/dev/null 2>&1 || true; B shutdown >/dev/null 2>&1 || true
        sleep 0.5
        nothing_on_beta || fail "$1: something was written on beta"
        echo "refused: $1: $(grep -m1 "$4" "$work/run-alpha/replctl.log" | sed 's/.*\] //') / $(grep -m1 "$5" "$work/run-beta/replctl.log" | sed 's/.*\] //')"
        rm -f "$work/run-alpha/replctl.log" "$work/run-beta/replctl.log"
    }
    refused "wrong CA" "$(tls_opts alpha)" "$(tls_opts beta-other)" "unable to get local issuer certificate" "refused this node's certificate.*unknown ca"
    refused "expired certificate" "$(tls_opts alpha)" "$(tls_opts beta-expired)" "certificate has expired" "refused this node's certificate.*certificate expired"
    refused "certificate for another host" "$(tls_opts alpha)" "$(tls_opts gamma)" "hostname mismatch" "refused this node's certificate.*bad certificate"
    refused "CA the peer's is not from" "$(tls_opts alpha other-ca)" "$(tls_opts beta)" "certificate verify failed" "refused this node's certificate.*unknown ca"
    pin_gamma=$(openssl x509 -in "$pki/gamma.pem" -noout -fingerprint -sha256 | cut -d= -f2)
    refused "pinned fingerprint differs" "tls yes; tls-certificate $pki/alpha.pem; tls-privkey $pki/alpha.key; tls-peer-fingerprint \"$pin_gamma\";" \
        "$(tls_opts beta)" "certificate rejected" "refused this node's certificate"
    # tls-ciphersuites takes effect: two nodes without a suite in common cannot connect.
    refused "no cipher suite in common" "$(tls_opts alpha) tls-ciphersuites TLS_AES_128_GCM_SHA256;" \
        "$(tls_opts beta) tls-ciphersuites TLS_CHACHA20_POLY1305_SHA256;" "no shared cipher" "alert handshake failure"
    refused "plain peer to a TLS node" "$(tls_opts alpha)" "" "plain Replica frames" "a TLS record, the peer has .tls yes."
    refused "TLS peer to a plain node" "" "$(tls_opts beta)" "the peer started a TLS handshake" "closed the connection during the handshake"

    # A key that is not the certificate's: refused at up, at the option's place.
    tls_pair "$(tls_opts alpha)" "tls yes; tls-certificate $pki/beta.pem; tls-privkey $pki/alpha.key; tls-ca $pki/ca.pem;"
    out=$(B up r0 2>&1) && fail "beta came up with alpha's key"
    echo "$out" | grep -q "beta.conf:2:[0-9]*: tls-privkey: .*is not the key of the certificate" || fail "wrong key: $out"
    # Missing files and missing verification: refused at up too.
    tls_conf beta "tls yes; tls-certificate $pki/none.pem; tls-privkey $pki/beta.key; tls-ca $pki/ca.pem;"
    out=$(B up r0 2>&1) && fail "beta came up without its certificate file"
    echo "$out" | grep -q "beta.conf:2:[0-9]*: tls-certificate: $pki/none.pem" || fail "missing certificate: $out"
    tls_conf beta "tls yes; tls-certificate $pki/beta.pem; tls-privkey $pki/beta.key;"
    out=$(B up r0 2>&1) && fail "beta came up without a way to verify alpha"
    echo "$out" | grep -q "tls yes without tls-ca or tls-peer-fingerprint" || fail "no verification: $out"
    tls_conf beta "tls-ca $pki/ca.pem;"
    out=$(B up r0 2>&1) && fail "tls-ca without tls yes was accepted"
    echo "$out" | grep -q "tls-ca without tls yes: the connection would not be encrypted" || fail "tls-ca alone: $out"
    tls_conf beta "$(tls_opts beta) tls-ciphersuites TLS_NO_SUCH_SUITE;"
    out=$(B up r0 2>&1) && fail "beta came up with an unknown cipher suite"
    echo "$out" | grep -q "beta.conf:2:[0-9]*: tls-ciphersuites: 'TLS_NO_SUCH_SUITE' names no TLS 1.3 cipher suite" || fail "unknown suite: $out"
    echo "refused at up: a wrong key, a missing file, no verification, tls-ca without tls, an unknown cipher suite"

    # Garbage during the TLS handshake (from beta's address, so that it reaches the handshake)
    # leaves alpha serving: the real peer connects and replicates afterwards.
    tls_pair "$(tls_opts alpha)" "$(tls_opts beta)"
    A up r0 || fail "up alpha"
    send_raw "$nsB" "$ipA" "$ipB" '[os.urandom(3000), b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(600),
                                    b"\x16\x03\x03\xff\xff" + os.urandom(100), b"\x16"]'
    B up r0 || fail "up beta after the garbage"
    A wait-connect --timeout 30 r0 || fail "no connection after garbage during the handshake"
    A primary --force r0 || fail "primary --force"
    A wait-sync --timeout 60 r0 || fail "no sync after garbage"
    A down r0; B down r0
    same_data || fail "data differs after garbage during the handshake"
    ;;
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
    # Garbage, truncated and oversized frames to both listeners from raw sockets — from the
    # peer's address (a listener turns any other away before reading: daemon-integration.sh
    # strangers), so that they reach the frame parser.
    for target in "$nsB $ipA $ipB" "$nsA $ipB $ipA"; do
        set -- $target
        send_raw "$1" "$2" "$3" '[
            os.urandom(4096),                                                  # garbage
            struct.pack(">IBBHHHI", 0x52504C43, 1, 27, 0, 0, 0, 0)[:7],        # truncated header
            struct.pack(">IBBHHHI", 0x52504C43, 1, 9, 0, 0, 0, 0x7FFFFFFF) + b"x" * 100,  # oversized data frame
            struct.pack(">IBBHHHI", 0x52504C43, 1, 200, 0, 0, 0, 0),           # unknown type
            struct.pack(">IBBHHHI", 0xDEADBEEF, 1, 27, 0, 0, 0, 0),            # wrong magic
        ]'
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
splitbrain)
    # The seed's split brain: the link cut, both nodes Primary and writing, the link back:
    # both StandAlone with the split-brain handler run; then the seed's manual recovery.
    setup C 64M handlers
    synced_pair
    split_apart 2 3 Primary Primary
    wait_both StandAlone || fail "split brain not detected: $(A status --proc) / $(B status --proc)"
    for n in alpha beta; do
        grep -q "Split-Brain detected but unresolved, dropping connection!" "$work/run-$n/replctl.log" || fail "no split-brain log line on $n"
    done
    [ "$(grep -c "^split-brain r0" "$work/handlers.log" 2>/dev/null)" = 2 ] || fail "split-brain handler not run on both nodes: $(cat "$work/handlers.log" 2>/dev/null)"
    echo "both StandAlone: $(A status --proc | grep cs:) / $(B status --proc | grep cs:)"
    # Recovery as the seed shows it: the victim (beta) Secondary and connect --discard-my-data,
    # then connect on the survivor.
    B secondary r0 || fail "secondary on the victim"
    B connect --discard-my-data r0 || fail "connect --discard-my-data"
    A connect r0 || fail "connect on the survivor"
    A wait-sync --timeout 60 r0 || fail "no resync after the recovery: $(A status --proc)"
    A status --proc | grep -q "cs:Connected ro:Primary/Secondary ds:UpToDate/UpToDate" || fail "$(A status --proc)"
    A down r0; B down r0
    same_data || fail "data differs after the recovery"
    survivor_won alpha beta
    ;;
sbpolicies)
    # Each automatic policy on a produced split brain: who is discarded, data equal after.
    run_policy() {  # name, net options, A's writes, B's writes, A's role, B's role, victim, [handler expected]
        setup C 64M handlers "$2"
        synced_pair
        split_apart "$3" "$4" "$5" "$6"
        wait_synced_after_split || fail "$1: not resolved: $(A status --proc) / $(B status --proc)"
        if [ -n "${8:-}" ]; then grep -q "^$8 r0" "$work/handlers.log" 2>/dev/null || fail "$1: handler $8 not run"; fi
        A status --proc | grep -q "ro:Secondary/Secondary\|ro:Primary/Secondary\|ro:Secondary/Primary" || fail "$1: two Primaries after the resolution: $(A status --proc)"
        A down r0; B down r0
        same_data || fail "$1: data differs"
        if [ "$7" = beta ]; then survivor_won alpha beta; else survivor_won beta alpha; fi
        echo "policy $1: $7 discarded as expected"
        A shutdown >/dev/null 2>&1 || true; B shutdown >/dev/null 2>&1 || true
        sleep 0.3
        rm -rf "$work"/*.img "$work"/chunk-* "$work/handlers.log" "$work/run-alpha" "$work/run-beta"
    }
    run_policy "after-sb-0pri discard-least-changes" "after-sb-0pri discard-least-changes;" 1 3 Secondary Secondary alpha
    run_policy "after-sb-0pri discard-younger-primary" "after-sb-0pri discard-younger-primary;" 2 2 Secondary Secondary beta
    run_policy "after-sb-0pri discard-older-primary" "after-sb-0pri discard-older-primary;" 2 2 Secondary Secondary alpha
    run_policy "after-sb-1pri discard-secondary" "after-sb-1pri discard-secondary;" 2 2 Primary Secondary beta
    run_policy "after-sb-1pri consensus" "after-sb-0pri discard-younger-primary; after-sb-1pri consensus;" 2 2 Primary Secondary beta
    run_policy "after-sb-1pri call-pri-lost-after-sb" "after-sb-0pri discard-younger-primary; after-sb-1pri call-pri-lost-after-sb;" \
        2 2 Secondary Primary beta pri-lost-after-sb
    run_policy "after-sb-2pri call-pri-lost-after-sb" "after-sb-0pri discard-least-changes; after-sb-2pri call-pri-lost-after-sb;" \
        3 1 Primary Primary beta pri-lost-after-sb
    ;;
crashprimary|crashsecondary)
    # kill -9 of a daemon during protocol C writes, restart, reconnect: every acknowledged
    # write is on both disks; a crashed Primary resyncs only its activity log's extents.
    setup C 128M
    synced_pair
    json() { "$1" status --json | python3 -c "import json,sys; d=json.load(sys.stdin)[0]; print(d['connections'][0]['peer_devices'][0]['$2'])"; }
    writer() {  # 64 KiB writes at distinct offsets in the first 24 MiB (6 AL extents)
        for i in $(seq 0 383); do
            head -c 65536 /dev/urandom > "$work/w-$i"
            if A write --offset $(( i * 65536 )) --input "$work/w-$i" r0 2>/dev/null; then echo "$i" >> "$work/acked"; fi
        done
    }
    writer &
    writer_pid=$!
    sleep 2
    if [ "$TEST" = crashprimary ]; then victim=alpha; else victim=beta; fi
    kill -9 "$(cat "$work/run-$victim/replctl.pid")"
    if [ "$TEST" = crashsecondary ]; then sleep 1.5; fi   # the Primary goes on writing alone
    kill "$writer_pid" 2>/dev/null || true
    wait "$writer_pid" 2>/dev/null || true
    acked=$(wc -l < "$work/acked" 2>/dev/null || echo 0)
    [ "$acked" -gt 0 ] || fail "no write was acknowledged before the crash"
    if [ "$TEST" = crashprimary ]; then
        A up r0 || fail "restart of the crashed Primary"
        A wait-connect --timeout 30 r0 || fail "no reconnect after the restart"
        A wait-sync --timeout 60 r0 || fail "no resync after the restart: $(A status --proc)"
        resent=$(json A resync-bytes)
        echo "acknowledged writes before the crash: $acked; resynced after restart: $resent bytes"
        [ "$resent" -gt 0 ] || fail "the crashed Primary's activity-log extents were not resynced"
        # The writes (and the one in flight at the crash) cover this many 4 MiB extents.
        extents=$(( ((acked + 1) * 65536 + (4 << 20) - 1) / (4 << 20) ))
        [ "$resent" -le $(( extents * (4 << 20) )) ] || fail "resynced $resent bytes: more than the $extents activity-log extents written"
    else
        dirtied=$(( $(json A out-of-sync) * 1024 ))
        B up r0 || fail "restart of the crashed Secondary"
        A wait-sync --timeout 60 r0 || fail "no resync after the restart: $(A status --proc)"
        echo "acknowledged writes: $acked; dirtied while the Secondary was down: $dirtied bytes"
        [ "$dirtied" -gt 0 ] || fail "nothing marked out of sync while the Secondary was down"
    fi
    A status --proc | grep -q "ds:UpToDate/UpToDate" || fail "$(A status --proc)"
    A down r0; B down r0
    same_data || fail "data differs after the crash and resync"
    while read -r i; do
        for img in alpha beta; do
            cmp -s "$work/w-$i" <(dd if="$work/$img.img" bs=64K skip="$i" count=1 status=none) || fail "acknowledged write $i missing on $img"
        done
    done < "$work/acked"
    ;;
diskless)
    # detach while connected: the Secondary's disk goes, the Primary writes on (marked), the
    # disk comes back with attach and only what it missed is resynced. Then the Primary
    # detaches: it reads and writes through its peer, and its data is the peer's.
    setup C 64M
    synced_pair
    write_chunk A 1
    B detach r0 || fail "detach on the connected Secondary"
    B status --proc | grep -q "ds:Diskless/UpToDate" || fail "beta not Diskless: $(B status --proc)"
    for _ in $(seq 50); do A status --proc | grep -q "ds:UpToDate/Diskless" && break; sleep 0.1; done
    A status --proc | grep -q "cs:Connected ro:Primary/Secondary ds:UpToDate/Diskless" || fail "alpha does not see the Diskless peer: $(A status --proc)"
    write_chunk A 8
    write_chunk A 9
    B attach r0 || fail "attach on beta"
    A wait-sync --timeout 60 r0 || fail "no resync after attach: $(A status --proc)"
    grep -q "uuid_compare()=-1 by rule 50" "$work/run-beta/replctl.log" || fail "not a bitmap resync"
    grep -q "Resync done as SyncTarget (2048 KB)" "$work/run-beta/replctl.log" || fail "resync of more than the 2 MiB written while detached: $(grep 'Resync done' "$work/run-beta/replctl.log")"
    # A detached Primary: reads come from the peer, writes go only there.
    A detach r0 || fail "detach on the connected Primary"
    A status --proc | grep -q "ro:Primary/Secondary ds:Diskless/UpToDate" || fail "$(A status --proc)"
    A read --offset $(( 8 << 20 )) --length 1048576 --output "$work/read-back" r0 || fail "read on the Diskless Primary"
    cmp -s "$work/read-back" "$work/chunk-A-8" || fail "the Diskless Primary read other data"
    write_chunk A 12
    cmp -s "$work/chunk-A-12" <(dd if="$work/beta.img" bs=1M skip=12 count=1 status=none) || fail "the Diskless Primary's write is not on beta"
    cmp -s "$work/chunk-A-12" <(dd if="$work/alpha.img" bs=1M skip=12 count=1 status=none) && fail "the detached disk was written"
    # attach of the Diskless Primary in place: alpha stays Primary and Connected, an NBD client
    # on one connection writes before, across and after the attach (qemu-io sleeps 3 s between
    # its writes), and beta resyncs alpha's disk while alpha serves.
    write_chunk A 60
    head -c 48M /dev/urandom > "$work/stream"
    nbdcopy "$work/stream" "nbd+unix:///?socket=$work/run-alpha/replica0" || fail "nbdcopy to the Diskless Primary"
    qemu-io -f raw -c 'write -P 0x5a 0 8M' -c 'sleep 3000' -c 'write -P 0xa5 8M 8M' -c 'flush' \
        "nbd+unix:///?socket=$work/run-alpha/replica0" > "$work/qemu-io.log" 2>&1 &
    client=$!
    sleep 1
    A attach r0 || { kill "$client" 2>/dev/null; fail "attach of the Diskless Primary: $(A status --proc)"; }
    wait "$client" || fail "the NBD client's writes failed across the attach: $(cat "$work/qemu-io.log")"
    grep -q "error\|failed" "$work/qemu-io.log" && fail "qemu-io: $(cat "$work/qemu-io.log")"
    A wait-sync --timeout 60 r0 || fail "no resync after the attach on alpha: $(A status --proc)"
    A status --proc | grep -q "cs:Connected ro:Primary/Secondary ds:UpToDate/UpToDate" || fail "after the attach: $(A status --proc)"
    grep -q "attaching the disk while Primary" "$work/run-alpha/replctl.log" || fail "the Primary did not attach in place"
    # An NBD client was in transmission when the disk was attached (it connected before and
    # left after).
    awk '/: transmission/ { open++ } /client disconnected/ { open-- } /attaching the disk while Primary/ { seen = open } END { exit !(seen > 0) }' \
        "$work/run-alpha/replctl.log" || fail "no NBD client was connected across the attach"
    grep -q "Resync done as SyncTarget" "$work/run-alpha/replctl.log" || fail "alpha was not resynced as a Primary SyncTarget"
    A read --offset $(( 60 << 20 )) --length 1048576 --output "$work/read-back-60" r0 || fail "read after the attach"
    cmp -s "$work/read-back-60" "$work/chunk-A-60" || fail "alpha reads other data than it wrote while Diskless"
    cmp -s "$work/chunk-A-60" <(dd if="$work/alpha.img" bs=1M skip=60 count=1 status=none) || fail "the resync did not bring alpha's disk what it wrote while Diskless"
    # The meta-data of an attached disk is the daemon's: create-md is refused.
    A create-md --force r0 >/dev/null 2>&1 && fail "create-md accepted on an attached disk"
    # A disk replacement under the running Primary: detach, a blank disk with new meta-data,
    # attach: a full sync from beta while alpha serves.
    A detach r0 || fail "second detach on alpha"
    dd if=/dev/zero of="$work/alpha.img" bs=1M count=64 conv=notrunc status=none
    A create-md --force r0 >/dev/null || fail "create-md on the replaced (Diskless) disk"
    write_chunk A 61
    A attach r0 || fail "attach of the replaced disk: $(A status --proc)"
    A wait-sync --timeout 60 r0 || fail "no full sync to the replaced disk: $(A status --proc)"
    grep -q "attaching the disk while Primary (uuid_compare()=-2 by rule 20)" "$work/run-alpha/replctl.log" || fail "not a full sync to the new disk"
    A status --proc | grep -q "cs:Connected ro:Primary/Secondary ds:UpToDate/UpToDate" || fail "after the replacement: $(A status --proc)"
    A down r0; B down r0
    same_data || fail "data differs after detach and attach"
    cp "$work/stream" "$work/expected"
    python3 -c 'import sys; sys.stdout.buffer.write(b"\x5a" * (8 << 20) + b"\xa5" * (8 << 20))' | dd of="$work/expected" conv=notrunc status=none
    cmp -s "$work/expected" <(head -c 48M "$work/alpha.img") || fail "the NBD clients' data is not on alpha's disk"
    ;;
disknone)
    # beta is configured 'disk none' (a diskless client): it has no meta-data, connects
    # Diskless, takes alpha's size, and as Primary reads and writes through alpha.
    truncate -s 64M "$work/alpha.img"
    cat > "$work/r.conf" <<CONF
resource r0 {
  net { protocol C; connect-int 1; ping-int 1; ping-timeout 5; }
  device minor 0; meta-disk internal;
  on alpha { disk $work/alpha.img; address $ipA:7789; }
  on beta  { disk none; address $ipB:7789; }
}
CONF
    A create-md r0 >/dev/null
    B create-md r0 >/dev/null 2>&1 && fail "create-md accepted for 'disk none'"
    start
    A primary --force r0 || fail "primary --force on alpha"
    for _ in $(seq 50); do A status --proc | grep -q "ds:UpToDate/Diskless" && break; sleep 0.1; done
    A status --proc | grep -q "cs:Connected ro:Primary/Secondary ds:UpToDate/Diskless" || fail "alpha: $(A status --proc)"
    B status --proc | grep -q "cs:Connected ro:Secondary/Primary ds:Diskless/UpToDate" || fail "beta: $(B status --proc)"
    write_chunk A 1
    B primary r0 2>/dev/null && fail "a second Primary was accepted"
    A secondary r0 || fail "secondary on alpha"
    B primary r0 || fail "primary on the diskless beta: $(B status --proc)"
    B read --offset $(( 1 << 20 )) --length 1048576 --output "$work/read-back" r0 || fail "read on beta"
    cmp -s "$work/read-back" "$work/chunk-A-1" || fail "beta read other data than alpha wrote"
    write_chunk B 5
    cmp -s "$work/chunk-B-5" <(dd if="$work/alpha.img" bs=1M skip=5 count=1 status=none) || fail "beta's write is not on alpha's disk"
    B attach r0 2>/dev/null && fail "attach accepted for 'disk none'"
    B status --verbose r0 | grep -q "backing_dev:none" || fail "status: $(B status --verbose r0)"
    B secondary r0 || fail "secondary on beta"
    A primary r0 || fail "primary on alpha again"
    A read --offset $(( 5 << 20 )) --length 1048576 --output "$work/read-back-a" r0 || fail "read on alpha"
    cmp -s "$work/read-back-a" "$work/chunk-B-5" || fail "alpha does not read beta's write"
    A down r0; B down r0
    ;;
unrelated)
    # Two disks that were initialised apart (each UpToDate with its own generation, no shared
    # history, as after each was synced in another cluster): unrelated data is refused.
    setup C 64M
    A set-gi r0 1A2B3C4D5E6F7080:0:0:0:1:1:0:0:0:0:0 >/dev/null || fail "set-gi on alpha"
    B set-gi r0 2B3C4D5E6F708190:0:0:0:1:1:0:0:0:0:0 >/dev/null || fail "set-gi on beta"
    A up r0 || fail "up"; B up r0 || fail "up"
    wait_both StandAlone || fail "unrelated data not refused: $(A status --proc) / $(B status --proc)"
    grep -q "Unrelated data, aborting!" "$work/run-alpha/replctl.log" || fail "no 'Unrelated data' log line"
    A down r0; B down r0
    ;;
*)
    echo "unknown test $TEST"; exit 2 ;;
esac
echo "PASS $TEST"
