#!/usr/bin/env bash
# The node daemon's life cycle and bounds, with real daemons on loopback addresses
# (127.0.0.1 and 127.0.0.2, ports chosen per run) and file-backed disks in a temporary folder.
# Usage: daemon-integration.sh REPLCTL TEST
#   (TEST: install | metrics | strangers | auth | tlscheck | updown | concurrentup | twovolumes | frozenpeer | metadatafull)
# Prints "PASS name" or "FAIL name: why" and exits non-zero on failure. Kills only the
# daemons it started, by PID; unmounts what it mounted.
set -euo pipefail
REPLCTL="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
TEST="$2"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work=$(mktemp -d /tmp/replica-daemon.XXXXXX)
port=$((21000 + RANDOM % 20000))
writer=""

# shellcheck source=stop-daemons.sh
source "$(dirname "${BASH_SOURCE[0]}")/stop-daemons.sh"

cleanup() {
    [ -n "$writer" ] && kill "$writer" 2>/dev/null || true
    for node in alpha beta; do
        pid=$(cat "$work/run-$node/replctl.pid" 2>/dev/null || true)
        [ -n "$pid" ] && kill -CONT "$pid" 2>/dev/null || true
    done
    stop_daemons "$work" alpha beta
    mountpoint -q "$work/mdfs" 2>/dev/null && umount "$work/mdfs" || true
    rm -rf "$work"
}
trap cleanup EXIT

fail() { echo "FAIL $TEST: $*"; for n in alpha beta; do echo "--- $n log"; tail -20 "$work/run-$n/replctl.log" 2>/dev/null || true; done; exit 1; }

# ALPHA_CONF / BETA_CONF: a node's own copy of the file (where the two must differ).
A() { "$REPLCTL" "$1" -c "${ALPHA_CONF:-$work/r.conf}" --node alpha --run-dir "$work/run-alpha" "${@:2}"; }
B() { "$REPLCTL" "$1" -c "${BETA_CONF:-$work/r.conf}" --node beta --run-dir "$work/run-beta" "${@:2}"; }
pid_of() { cat "$work/run-$1/replctl.pid"; }

config() {  # extra net options, extra disk options, [volumes block instead of the single volume]
    local volumes="${3:-device minor 0; meta-disk internal;}"
    cat > "$work/r.conf" <<CONF
resource r0 {
  net { protocol C; connect-int 1; ${1:-} }
  disk { c-plan-ahead 0; resync-rate 1G; ${2:-} }
  $volumes
  on alpha { ${ALPHA_DISK:-disk $work/alpha.img;} address 127.0.0.1:$port; }
  on beta  { ${BETA_DISK:-disk $work/beta.img;}  address 127.0.0.2:$port; }
}
CONF
}

# Two daemons connected, blank disks declared in sync, alpha Primary.
primary_pair() {
    A up r0 || fail "up alpha"; B up r0 || fail "up beta"
    A wait-connect --timeout 30 r0 || fail "no connection"
    A new-current-uuid --clear-bitmap r0 || fail "new-current-uuid --clear-bitmap"
    B wait-sync --timeout 30 r0 || fail "beta did not take the skipped sync"
    A primary r0 || fail "primary"
}

threads_named() { cat /proc/"$1"/task/*/comm 2>/dev/null | grep -c "$2" || true; }

case "$TEST" in
install)
    # `make install` into a staging root, then the installed replctl run by name through PATH
    # from another directory: `up` must find its own binary to start the daemon.
    make -C "$ROOT" install DESTDIR="$work/root" PREFIX=/usr CONFIGURATION=debug >"$work/make.log" 2>&1 || fail "make install: $(tail -5 "$work/make.log")"
    [ -x "$work/root/usr/bin/replctl" ] || fail "no replctl installed"
    grep -q "ExecStart=/usr/bin/replctl daemon" "$work/root/etc/systemd/system/replica.service" || fail "systemd unit not installed with the prefix"
    truncate -s 64M "$work/alpha.img"
    config
    mkdir -p "$work/elsewhere"
    (
        cd "$work/elsewhere"
        export PATH="$work/root/usr/bin:$PATH"
        replctl create-md -c "$work/r.conf" --node alpha r0 >/dev/null || exit 11
        replctl up -c "$work/r.conf" --node alpha --run-dir "$work/run-alpha" r0 || exit 12
        replctl status -c "$work/r.conf" --node alpha --run-dir "$work/run-alpha" r0 | grep -q "r0 role:Secondary" || exit 13
        replctl down -c "$work/r.conf" --node alpha --run-dir "$work/run-alpha" r0 || exit 14
        replctl shutdown -c "$work/r.conf" --node alpha --run-dir "$work/run-alpha" || exit 15
    ) || fail "the installed replctl, run by name from another directory, failed at step $?: $(cat "$work/run-alpha/replctl.log" 2>/dev/null | tail -5)"
    ;;
metrics)
    # Prometheus metrics: alpha's daemon serves them at the resource file's metrics-address,
    # beta's at `up --metrics-address`; each scrape is parsed by prometheus_client (the
    # reference Python client) and checked against `status --json` (states as one-hot series,
    # bytes as KiB x 1024); wrong paths and methods get 404/405; a second address is refused
    # with its place in the file; a daemon without an address serves nothing.
    mport=$((port + 1))
    truncate -s 64M "$work/alpha.img" "$work/beta.img"
    ALPHA_DISK="disk $work/alpha.img; metrics-address 127.0.0.1:$mport;" config
    A create-md r0 >/dev/null; B create-md r0 >/dev/null
    A up r0 || fail "up alpha"
    B up --metrics-address "127.0.0.2:$mport" r0 || fail "up beta with --metrics-address"
    A wait-connect --timeout 30 r0 || fail "no connection"
    A new-current-uuid --clear-bitmap r0 || fail "new-current-uuid --clear-bitmap"
    B wait-sync --timeout 30 r0 || fail "beta did not take the skipped sync"
    A primary r0 || fail "primary"
    head -c $((3 << 20)) /dev/urandom > "$work/data"
    A write --offset 1048576 --input "$work/data" r0 || fail "write"
    B disconnect r0 || fail "disconnect beta"
    A write --offset 8388608 --input "$work/data" r0 || fail "write while disconnected"
    sleep 0.5
    for node in alpha beta; do
        ip=127.0.0.1; peer=beta; [ "$node" = beta ] && ip=127.0.0.2 && peer=alpha
        "$REPLCTL" status -c "$work/r.conf" --node "$node" --run-dir "$work/run-$node" --json r0 > "$work/$node.json" || fail "status --json $node"
        # The peer's node-id as drbdadm assigns it (none is written): the label peer_node_id.
        peer_id=$(A dump r0 | awk -v host="on $peer {" 'index($0, host) { found = 1 } found && /node-id/ { sub(";", "", $2); print $2; exit }')
        /usr/bin/python3 - "http://$ip:$mport/metrics" "$work/$node.json" "$peer_id" <<'PY' || fail "$node: metrics do not match status --json"
import json, sys, urllib.request
from prometheus_client.parser import text_string_to_metric_families
url, status = sys.argv[1], json.load(open(sys.argv[2]))[0]
with urllib.request.urlopen(url, timeout=10) as response:
    assert response.status == 200, response.status
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4"), response.headers["Content-Type"]
    text = response.read().decode()
series, types = {}, {}
for family in text_string_to_metric_families(text):
    types[family.name] = family.type
    for sample in family.samples:
        series[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
def value(metric, **labels):
    key = (metric, tuple(sorted(labels.items())))
    assert key in series, f"no series {metric} {labels}"
    return series[key]
def one_hot(metric, current, **labels):
    ones = [dict(k[1]).get(metric) for k, v in series.items() if k[0] == metric and v == 1 and all(dict(k[1]).get(l) == w for l, w in labels.items())]
    assert ones == [current], f"{metric}: {ones} set, expected {current}"
res = {"name": "r0"}
device = status["devices"][0]
connection = status["connections"][0]
peer = connection["peer_devices"][0]
dev = dict(res, volume="0", minor=str(device["minor"]))
conn = dict(res, conn_name=connection["name"], peer_node_id=sys.argv[3])
pd = dict(conn, volume="0")
assert value("drbd_resource_resources") == 1
one_hot("drbd_resource_role", status["role"], **res)
one_hot("drbd_device_state", device["disk-state"], **dev)
one_hot("replica_peerdevice_disk_state", peer["peer-disk-state"], **pd)
one_hot("replica_connection_replication_state", connection["connection-state"], **conn)
dr9 = {"StandAlone": "StandAlone", "WFConnection": "Connecting", "Connected": "Connected"}[connection["connection-state"]]
one_hot("drbd_connection_state", dr9, **conn)
assert value("drbd_device_size_bytes", **dev) == device["size"] * 1024
assert value("drbd_device_written_bytes_total", **dev) == device["written"] * 1024
assert value("drbd_device_read_bytes_total", **dev) == device["read"] * 1024
assert value("drbd_device_alwrites_total", **dev) == device["al-writes"]
assert value("drbd_device_bmwrites_total", **dev) == device["bm-writes"]
assert value("drbd_device_upperpending", **dev) == device["upper-pending"]
assert value("drbd_device_lowerpending", **dev) == device["lower-pending"]
assert value("drbd_peerdevice_outofsync_bytes", **pd) == peer["out-of-sync"] * 1024
# (drbd-reactor's names for these counters have no _total; the parser adds it to the samples.)
assert value("drbd_peerdevice_sent_bytes_total", **pd) == peer["sent"] * 1024
assert value("drbd_peerdevice_received_bytes_total", **pd) == peer["received"] * 1024
assert value("replica_peerdevice_resync_bytes_total", **pd) == peer["resync-bytes"]
assert value("drbd_connection_congested", **conn) == (1 if connection["congested"] else 0)
assert value("replica_connection_state_changes_total", **conn) >= 3, "connecting, connected, disconnecting at least"
assert types["drbd_device_written_bytes"] == "counter" and types["drbd_device_state"] == "gauge", types
if status["role"] == "Primary":
    assert device["written"] >= 6 * 1024 and peer["out-of-sync"] == 3 * 1024, (device, peer)
print(f"{url}: {len(series)} series match status --json")
PY
    done
    # Only GET/HEAD of /metrics.
    /usr/bin/python3 - "127.0.0.1:$mport" <<'PY' || fail "HTTP errors"
import http.client, sys
host, port = sys.argv[1].split(":")
def ask(method, path):
    c = http.client.HTTPConnection(host, int(port), timeout=10); c.request(method, path); r = c.getresponse(); body = r.read(); c.close(); return r.status, r.headers, body
status, headers, body = ask("HEAD", "/metrics"); assert status == 200 and body == b"" and int(headers["Content-Length"]) > 0, (status, body)
assert ask("GET", "/nope")[0] == 404
status, headers, _ = ask("POST", "/metrics"); assert status == 405 and headers["Allow"] == "GET, HEAD", (status, headers)
import socket
s = socket.create_connection((host, int(port)), timeout=10); s.sendall(b"garbage\r\n\r\n"); assert s.recv(100).startswith(b"HTTP/1.1 400"), "malformed request line"
s = socket.create_connection((host, int(port)), timeout=10); s.sendall(b"GET /metrics HTTP/1.1\r\n" + b"X: " + b"y" * 9000); assert s.recv(100).startswith(b"HTTP/1.1 400"), "an endless header"
print("HTTP errors as expected")
PY
    # One address per node: a second resource naming another is refused with its place.
    cat >> "$work/r.conf" <<CONF
resource r1 {
  device minor 1; meta-disk internal;
  on alpha { disk $work/alpha1.img; address 127.0.0.1:$((port + 2)); metrics-address 127.0.0.1:$((port + 3)); }
  on beta  { disk $work/beta1.img;  address 127.0.0.2:$((port + 2)); }
}
CONF
    truncate -s 16M "$work/alpha1.img"; A create-md r1 >/dev/null
    refused=$(A up r1 2>&1) && fail "a second metrics-address was accepted"
    grep -q "r.conf:[0-9]*:[0-9]*: metrics-address 127.0.0.1:$((port + 3)): this node's daemon already serves its metrics on 127.0.0.1:$mport" <<<"$refused" || fail "refusal: $refused"
    A status r1 2>/dev/null | grep -q "r1 role" && fail "r1 came up after the refusal"
    # Off by default: nothing listens where no address was given.
    B down r0; B shutdown
    B up r0 || fail "beta up again"
    python3 -c "import socket,sys; s=socket.socket(); sys.exit(0 if s.connect_ex(('127.0.0.2', $mport)) != 0 else 1)" || fail "beta serves metrics without an address"
    ;;
strangers)
    # Only the configured peer: a connection to the replication port from any other address is
    # closed before anything is read, and logged once a minute per address; the peer's own
    # connections (from its configured address) work as before.
    truncate -s 64M "$work/alpha.img" "$work/beta.img"
    config
    A create-md r0 >/dev/null; B create-md r0 >/dev/null
    # Alpha alone: it accepts (127.0.0.1 sorts below 127.0.0.2, so beta dials).
    A up r0 || fail "up alpha"
    /usr/bin/python3 - "$port" <<'PY' || fail "a stranger was not turned away"
import socket, sys, time
port = int(sys.argv[1])
for attempt in range(3):
    s = socket.socket(); s.bind(("127.0.0.3", 0)); s.settimeout(5)
    s.connect(("127.0.0.1", port))
    start = time.monotonic()
    try:
        data = s.recv(1)
    except ConnectionResetError:
        data = b""
    assert data == b"" and time.monotonic() - start < 2, f"attempt {attempt}: the connection stayed open ({data!r})"
    s.close()
print("strangers turned away")
PY
    sleep 0.3
    lines=$(grep -c "closing unexpected connection from 127.0.0.3: the peer's configured address is 127.0.0.2" "$work/run-alpha/replctl.log" || true)
    [ "$lines" = 1 ] || fail "expected one log line for three attempts from 127.0.0.3, found $lines"
    # The peer connects and replicates as always.
    B up r0 || fail "up beta"
    A wait-connect --timeout 30 r0 || fail "the peer could not connect"
    A new-current-uuid --clear-bitmap r0 || fail "new-current-uuid"
    B wait-sync --timeout 30 r0 || fail "no sync"
    A primary r0 || fail "primary"
    head -c 1M /dev/urandom > "$work/data"
    A write --offset 0 --input "$work/data" r0 || fail "write"
    A down r0; B down r0
    cmp -s "$work/data" <(head -c 1M "$work/beta.img") || fail "beta did not get the write"
    ;;
auth)
    # DRBD 8.4's peer authentication (cram-hmac-alg, shared-secret): with the same secret the
    # pair connects and replicates; a wrong secret, or a secret on one side only, leaves both
    # nodes StandAlone with the reason in both logs and nothing replicated; a hash OpenSSL does
    # not provide, or one option without the other, is refused at `up` at its place in the file.
    truncate -s 64M "$work/alpha.img" "$work/beta.img"
    config 'cram-hmac-alg sha256; shared-secret "two words & more";'
    A create-md r0 >/dev/null; B create-md r0 >/dev/null
    primary_pair
    head -c 1M /dev/urandom > "$work/data"
    A write --offset 0 --input "$work/data" r0 || fail "write with authentication"
    A down r0; B down r0
    cmp -s "$work/data" <(head -c 1M "$work/beta.img") || fail "beta did not get the write over an authenticated link"

    # Each refusal: both nodes end StandAlone, both logs say why, beta's disk is untouched by
    # what alpha writes meanwhile.
    refused() {  # what, alpha's net options, beta's net options, text expected in both logs
        config "$2"; cp "$work/r.conf" "$work/alpha.conf"
        config "$3"; cp "$work/r.conf" "$work/beta.conf"
        local seen_alpha seen_beta
        seen_alpha=$(cat "$work/run-alpha/replctl.log" 2>/dev/null | wc -l); seen_beta=$(cat "$work/run-beta/replctl.log" 2>/dev/null | wc -l)
        ALPHA_CONF="$work/alpha.conf" A up r0 || fail "$1: up alpha"
        BETA_CONF="$work/beta.conf" B up r0 || fail "$1: up beta"
        for _ in $(seq 100); do
            a=$(ALPHA_CONF="$work/alpha.conf" A cstate r0); b=$(BETA_CONF="$work/beta.conf" B cstate r0)
            [ "$a" = StandAlone ] && [ "$b" = StandAlone ] && break
            sleep 0.2
        done
        [ "$a" = StandAlone ] && [ "$b" = StandAlone ] || fail "$1: alpha $a, beta $b (both should be StandAlone)"
        tail -n +$((seen_alpha + 1)) "$work/run-alpha/replctl.log" | grep -q "$4" || fail "$1: alpha's log does not say '$4'"
        # status --json keeps the reason (the volumes' follow-on disconnects do not replace it).
        ALPHA_CONF="$work/alpha.conf" A status --json r0 | grep -q "last-close-reason.*$4" || fail "$1: alpha's status does not say '$4'"
        BETA_CONF="$work/beta.conf" B status --json r0 | grep -q "last-close-reason.*$4" || fail "$1: beta's status does not say '$4'"
        tail -n +$((seen_beta + 1)) "$work/run-beta/replctl.log" | grep -q "$4" || fail "$1: beta's log does not say '$4'"
        ALPHA_CONF="$work/alpha.conf" A primary r0 || fail "$1: primary"
        head -c 64K /dev/urandom > "$work/pattern"
        ALPHA_CONF="$work/alpha.conf" A write --offset 4194304 --input "$work/pattern" r0 || fail "$1: write on alpha"
        ALPHA_CONF="$work/alpha.conf" A down r0; BETA_CONF="$work/beta.conf" B down r0
        cmp -s "$work/pattern" <(tail -c +$((4 * 1048576 + 1)) "$work/beta.img" | head -c 64K) && fail "$1: alpha's write reached beta"
        echo "refused: $1"; tail -n +$((seen_alpha + 1)) "$work/run-alpha/replctl.log" | grep -m1 "Authentication"; tail -n +$((seen_beta + 1)) "$work/run-beta/replctl.log" | grep -m1 "Authentication"
    }
    refused "wrong secret" 'cram-hmac-alg sha1; shared-secret alpha-secret;' 'cram-hmac-alg sha1; shared-secret beta-secret;' "Authentication of peer failed"
    refused "secret on alpha only" 'cram-hmac-alg sha512; shared-secret only-here;' '' "Authentication of peer failed"
    refused "secret on beta only" '' 'cram-hmac-alg md5; shared-secret only-there;' "Authentication of peer failed"
    refused "different hashes" 'cram-hmac-alg sha256; shared-secret same;' 'cram-hmac-alg sha384; shared-secret same;' "Authentication of peer failed"

    # Refused at up, at the option's place.
    config 'cram-hmac-alg whirlpool-9; shared-secret x;'
    out=$(A up r0 2>&1) && fail "an unknown hash was accepted"
    echo "$out" | grep -q "r.conf:2:[0-9]*: cram-hmac-alg whirlpool-9: unknown hash" || fail "unknown hash: $out"
    config 'cram-hmac-alg sha256;'
    out=$(A up r0 2>&1) && fail "cram-hmac-alg without a secret was accepted"
    echo "$out" | grep -q "r.conf:2:[0-9]*: cram-hmac-alg sha256 without a shared-secret" || fail "no secret: $out"
    config 'shared-secret lonely;'
    out=$(A up r0 2>&1) && fail "shared-secret without cram-hmac-alg was accepted"
    echo "$out" | grep -q "r.conf:2:[0-9]*: shared-secret without cram-hmac-alg" || fail "no hash: $out"
    ;;
tlscheck)
    # `replctl tls-check`: what this node presents and expects, with OpenSSL's facts (the
    # fingerprint as `openssl x509 -fingerprint -sha256` prints it); exit 10 and the reason
    # for a certificate of another host, an expired one, a key that is not the certificate's.
    pki="$work/pki"
    bash "$ROOT/scripts/make-test-pki.sh" "$pki" || fail "making the test certificates"
    tls_net() { echo "tls yes; tls-certificate $pki/$1.pem; tls-privkey $pki/$2.key; tls-ca $pki/ca.pem;"; }
    config "$(tls_net beta beta)"
    out=$(B tls-check r0) || fail "tls-check of a good set-up failed: $out"
    fingerprint=$(openssl x509 -in "$pki/beta.pem" -noout -fingerprint -sha256 | cut -d= -f2)
    echo "$out" | grep -q "SHA-256 fingerprint: $fingerprint" || fail "tls-check does not print beta's fingerprint $fingerprint: $out"
    echo "$out" | grep -q "expects from alpha: a certificate naming 'alpha'" || fail "tls-check does not say what it expects: $out"
    echo "$out" | grep -q "verifies against tls-ca $pki/ca.pem" || fail "tls-check did not verify the chain: $out"
    check_refused() {  # what, net options, expected problem
        config "$2"
        local out code=0
        out=$(B tls-check r0 2>&1) || code=$?
        [ "$code" = 10 ] || fail "$1: tls-check exited $code: $out"
        echo "$out" | grep -q "$3" || fail "$1: tls-check does not say '$3': $out"
        echo "tls-check refuses: $1"
    }
    check_refused "another host's certificate" "$(tls_net gamma gamma)" "does not name this node 'beta'"
    check_refused "an expired certificate" "$(tls_net beta-expired beta-expired)" "beta-expired.pem expired on"
    check_refused "a key that is not the certificate's" "$(tls_net beta alpha)" "is not the key of the certificate"
    check_refused "a missing certificate" "$(tls_net none beta)" "tls-certificate: $pki/none.pem"
    ;;
updown)
    # `up`/`down` 200 times against a connected peer: the daemon's descriptors and threads
    # are the same before and after, and no Replica thread is left once the resource is down.
    truncate -s 64M "$work/alpha.img" "$work/beta.img"
    config
    A create-md r0 >/dev/null; B create-md r0 >/dev/null
    B up r0 || fail "up beta"
    A up r0 || fail "up alpha"
    A wait-connect --timeout 30 r0 || fail "no connection"
    A down r0 || fail "down"
    sleep 1.5
    pid=$(pid_of alpha)
    fds_before=$(ls /proc/"$pid"/fd | wc -l)
    threads_before=$(ls /proc/"$pid"/task | wc -l)
    for i in $(seq "${CYCLES:-200}"); do
        A up r0 >/dev/null || fail "up $i"
        A wait-connect --timeout 30 r0 || fail "no connection at cycle $i"
        A down r0 >/dev/null || fail "down $i"
    done
    sleep 1.5
    fds_after=$(ls /proc/"$pid"/fd | wc -l)
    threads_after=$(ls /proc/"$pid"/task | wc -l)
    replica_threads=$(threads_named "$pid" "replica-")
    [ "$fds_after" -eq "$fds_before" ] || fail "descriptors: $fds_before before, $fds_after after 200 up/down cycles ($(ls -l /proc/"$pid"/fd | tail -8))"
    [ "$replica_threads" -eq 0 ] || fail "$replica_threads Replica threads left after down: $(cat /proc/"$pid"/task/*/comm | sort | uniq -c)"
    # Dispatch's worker pool may keep a few idle threads of its own; ours are all gone.
    [ "$threads_after" -le $((threads_before + 4)) ] || fail "threads: $threads_before before, $threads_after after"
    echo "descriptors $fds_before -> $fds_after, threads $threads_before -> $threads_after"
    ;;
concurrentup)
    # Two `up` of the same resource at once: one brings it up, the other finds it up; one
    # resource, one export, no error.
    truncate -s 64M "$work/alpha.img"
    config
    A create-md r0 >/dev/null
    A status >/dev/null 2>&1 || true
    A up r0 >/dev/null 2>"$work/first.err" & first=$!
    A up r0 >/dev/null 2>"$work/second.err" & second=$!
    A up r0 >/dev/null 2>"$work/third.err" & third=$!
    wait $first || fail "first up: $(cat "$work/first.err")"
    wait $second || fail "second up: $(cat "$work/second.err")"
    wait $third || fail "third up: $(cat "$work/third.err")"
    [ "$(A status --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 1 ] || fail "not one resource: $(A status)"
    A primary --force r0 || fail "primary"
    qemu-io -f raw -c "write -P 0x3c 0 64k" -c "read -P 0x3c 0 64k" "nbd+unix:///?socket=$work/run-alpha/replica0" >"$work/io.out" 2>&1 || fail "I/O on the export: $(cat "$work/io.out")"
    grep -qi "error\|fail" "$work/io.out" && fail "I/O: $(cat "$work/io.out")"
    grep -i "error" "$work/run-alpha/replctl.log" && fail "errors in the daemon's log"
    A down r0 || fail "down"
    ;;
twovolumes)
    # A resource with two volumes (minors 0 and 1): each replicates its own data.
    truncate -s 64M "$work/a0.img" "$work/a1.img" "$work/b0.img" "$work/b1.img"
    ALPHA_DISK="volume 0 { disk $work/a0.img; } volume 1 { disk $work/a1.img; }"
    BETA_DISK="volume 0 { disk $work/b0.img; } volume 1 { disk $work/b1.img; }"
    config "" "" "volume 0 { device minor 0; meta-disk internal; } volume 1 { device minor 1; meta-disk internal; }"
    A create-md r0 >/dev/null || fail "create-md alpha"; B create-md r0 >/dev/null || fail "create-md beta"
    primary_pair
    A status | grep -q "volume:1 disk:UpToDate" || fail "status does not show volume 1: $(A status)"
    head -c 16M /dev/urandom > "$work/v0.bin"; head -c 16M /dev/urandom > "$work/v1.bin"
    nbdcopy "$work/v0.bin" "nbd+unix:///?socket=$work/run-alpha/replica0" || fail "nbdcopy into volume 0"
    nbdcopy "$work/v1.bin" "nbd+unix:///?socket=$work/run-alpha/replica1" || fail "nbdcopy into volume 1"
    A down r0; B down r0
    for pair in "v0 a0 b0" "v1 a1 b1"; do
        set -- $pair
        cmp -s "$work/$1.bin" <(head -c 16M "$work/$2.img") || fail "alpha's volume ${1#v} does not hold what was written to it"
        cmp -s "$work/$1.bin" <(head -c 16M "$work/$3.img") || fail "beta's volume ${1#v} does not hold what was written to it"
    done
    ;;
frozenpeer)
    # The Secondary stops (SIGSTOP) while the Primary takes writes for 60 s: with ping and
    # ko timeouts at their largest the link stays, the Primary's queue toward it is bounded
    # by max-buffers, new writes wait (congested), and its memory stays flat. Then the peer
    # goes on and everything written reaches both disks.
    truncate -s 256M "$work/alpha.img" "$work/beta.img"
    # max-buffers at its least (32 pages) and small socket buffers: the writers' 16 MiB in
    # flight outgrow them and the link's queue, so the runtime must hold requests back.
    config "ping-int 120; ping-timeout 300; timeout 600; ko-count 0; max-buffers 32; sndbuf-size 128k; rcvbuf-size 128k;"
    A create-md r0 >/dev/null; B create-md r0 >/dev/null
    primary_pair
    cat > "$work/w.fio" <<FIO
[w]
ioengine=nbd
uri=nbd+unix:///?socket=$work/run-alpha/replica0
rw=randwrite
bs=256k
iodepth=16
numjobs=4
size=200m
time_based=1
runtime=75
FIO
    fio --aux-path="$work" --output="$work/fio.out" "$work/w.fio" >/dev/null 2>&1 & writer=$!
    sleep 5
    pid=$(pid_of alpha)
    kill -STOP "$(pid_of beta)"
    sleep 2
    start_rss=$(awk '/VmRSS/ {print $2}' /proc/"$pid"/status)
    max_rss=$start_rss
    congested=no
    for _ in $(seq 12); do
        sleep 5
        rss=$(awk '/VmRSS/ {print $2}' /proc/"$pid"/status)
        [ "$rss" -gt "$max_rss" ] && max_rss=$rss
        A status --verbose r0 | grep -q "congested:yes" && congested=yes
    done
    echo "RSS over 60 s with the peer stopped: $start_rss KiB at the start, at most $max_rss KiB"
    queued=$(A status --json | python3 -c "import json,sys; c=json.load(sys.stdin)[0]['connections'][0]; print(c['queued-bytes'], c['held-requests'], c['ap-in-flight'])")
    echo "queued bytes, requests held, requests in the engine: $queued"
    set -- $queued
    # The queue's bound, 128 KiB, exceeded by one request (256 KiB) at most; the rest is held.
    [ "$1" -le $(( (128 + 256) * 1024 + 4096 )) ] || fail "$1 bytes queued toward the stopped peer (bound 128 KiB)"
    [ "$2" -gt 0 ] || fail "no request held back"
    [ "$congested" = yes ] || fail "status never said congested:yes: $(A status --verbose r0)"
    # 128 KiB of queue (max-buffers 32), the socket buffers and 16 MiB of requests: well
    # under 64 MiB of growth.
    [ "$max_rss" -le $((start_rss + 65536)) ] || fail "RSS grew from $start_rss to $max_rss KiB with the peer stopped"
    A status --proc | grep -q "cs:Connected" || fail "the link did not stay: $(A status --proc)"
    kill -CONT "$(pid_of beta)"
    wait "$writer" || fail "fio: $(tail -5 "$work/fio.out")"
    writer=""
    grep -q "err= 0" "$work/fio.out" || fail "fio saw errors: $(cat "$work/fio.out")"
    A down r0; B down r0
    bytes=$(( 255 << 20 ))
    cmp -s <(head -c "$bytes" "$work/alpha.img") <(head -c "$bytes" "$work/beta.img") || fail "the disks differ after the peer went on"
    ;;
metadatafull)
    # External meta-data on a filesystem that fills up: the bitmap pages were never written
    # there (punched out), so saving them fails with ENOSPC. The Primary lets its disk go
    # (DRBD's rule for meta-data errors), says why, and its superblock asks for a full sync.
    # Attached again by the same daemon, the bits it kept in memory are taken (only the
    # blocks written are out of sync); by a daemon started since, which knows nothing of
    # them, every block is.
    mkdir -p "$work/mdfs"
    mount -t tmpfs -o size=1M tmpfs "$work/mdfs" || fail "mount tmpfs"
    truncate -s 1G "$work/alpha.img"
    truncate -s 512K "$work/mdfs/alpha.md"
    ALPHA_DISK="disk $work/alpha.img; meta-disk $work/mdfs/alpha.md;"
    config "" "al-extents 67; on-io-error detach;"
    A create-md r0 >/dev/null || fail "create-md: $(A create-md r0 2>&1)"
    oos_kib() { A status --json | python3 -c "import json,sys; print(json.load(sys.stdin)[0]['connections'][0]['peer_devices'][0]['out-of-sync'])"; }
    size=0
    fill_until_detached() {  # $1: primary options
        # The bitmap area (after the 4 KiB superblock and the 32 KiB activity log) holds no blocks.
        fallocate --punch-hole --offset 36864 --length $(( 512 * 1024 - 36864 )) "$work/mdfs/alpha.md" || fail "punch hole"
        A up r0 || fail "up"
        # shellcheck disable=SC2086
        A primary $1 r0 || fail "primary $1"
        size=$(A status --json | python3 -c "import json,sys; print(json.load(sys.stdin)[0]['devices'][0]['size'])")
        dd if=/dev/zero of="$work/mdfs/filler" bs=4k 2>/dev/null || true
        # Writes in 100 extents: the activity log (67) evicts, and every eviction saves bitmap pages.
        written=0
        for i in $(seq 0 99); do
            qemu-io -f raw -c "write -P 0x5a $(( i * 4 ))M 4k" "nbd+unix:///?socket=$work/run-alpha/replica0" >/dev/null 2>&1 && written=$((written + 1))
            A status --proc | grep -q "ds:Diskless" && break
        done
        A status --proc | grep -q "ds:Diskless" || fail "the meta-data device filled up, yet the disk was kept: $(A status --proc)"
        A status --verbose r0 | grep -q "last-error:.*meta-data write failed" || fail "status does not say why: $(A status --verbose r0)"
        grep -q "No space left on device\|errno 28" "$work/run-alpha/replctl.log" || fail "the log does not name ENOSPC"
        [ "$written" -gt 0 ] || fail "no write went through before the disk was let go"
        A secondary r0 || fail "secondary"
        A down r0 || fail "down"
        rm -f "$work/mdfs/filler"
        "$REPLCTL" show-gi -c "$work/r.conf" --node alpha r0 | grep -q "need full sync" || fail "the superblock does not ask for a full sync: $("$REPLCTL" show-gi -c "$work/r.conf" --node alpha r0)"
    }
    # 1. The same daemon attaches again: its bits, no full sync.
    fill_until_detached --force
    A up r0 || fail "up again (same daemon)"
    oos=$(oos_kib)
    [ "$oos" -ge $(( written * 4 )) ] || fail "attached again by the same daemon: $oos KiB out of sync, fewer than the $written blocks written ($(( written * 4 )) KiB)"
    [ "$oos" -lt "$size" ] || fail "attached again by the same daemon: a full sync ($oos KiB) although it kept the bits"
    "$REPLCTL" show-gi -c "$work/r.conf" --node alpha r0 | grep -q "need full sync" && fail "the kept bits were not written: the superblock still asks for a full sync"
    A down r0 || fail "down (1)"
    # 2. A daemon started since attaches: every block out of sync.
    fill_until_detached ""
    stop_daemons "$work" alpha
    A up r0 || fail "up again (new daemon)"
    oos=$(oos_kib)
    [ "$oos" -ge "$size" ] || fail "attached by a new daemon: $oos KiB out of sync, expected all $size KiB"
    A down r0
    ;;
*)
    echo "unknown test $TEST"; exit 2
    ;;
esac
echo "PASS $TEST"
