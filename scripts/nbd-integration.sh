#!/usr/bin/env bash
# Real NBD clients against the exports of two real daemons (alpha on 127.0.0.1, beta on
# 127.0.0.2, protocol C, file-backed disks in a temporary folder). Needs root for the
# filesystem test (FUSE, loop devices, mount).
# Usage: nbd-integration.sh REPLCTL TEST   (TEST: clients | filesystem | badrequests | map | multiconn | down | tcp | tls)
# Prints "PASS name" or "FAIL name: why"; kills only the daemons it started, by PID.
set -euo pipefail
REPLCTL="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
TEST="$2"
work=$(mktemp -d /tmp/replica-nbd.XXXXXX)
port=$((21000 + RANDOM % 20000))
nbdport=$((port + 1))
loopdev=""

# shellcheck source=stop-daemons.sh
source "$(dirname "${BASH_SOURCE[0]}")/stop-daemons.sh"

cleanup() {
    mountpoint -q "$work/mnt" 2>/dev/null && umount "$work/mnt" || true
    [ -n "$loopdev" ] && losetup -d "$loopdev" 2>/dev/null || true
    mountpoint -q "$work/fuse" 2>/dev/null && fusermount3 -u "$work/fuse" 2>/dev/null || true
    stop_daemons "$work" alpha beta
    rm -rf "$work"
}
trap cleanup EXIT

fail() { echo "FAIL $TEST: $*"; for n in alpha beta; do echo "--- $n log"; tail -15 "$work/run-$n/replctl.log" 2>/dev/null || true; done; exit 1; }

A() { "$REPLCTL" "$1" -c "$work/r.conf" --node alpha --run-dir "$work/run-alpha" "${@:2}"; }
B() { "$REPLCTL" "$1" -c "$work/r.conf" --node beta --run-dir "$work/run-beta" "${@:2}"; }
uriA="nbd+unix:///?socket=$work/run-alpha/replica0"
uriB="nbd+unix:///?socket=$work/run-beta/replica0"

# The tls test: alpha's TCP export requires TLS, with certificates made by the openssl CLI.
alpha_nbd_tls=""
if [ "$TEST" = tls ]; then
    bash "$(dirname "${BASH_SOURCE[0]}")/make-test-pki.sh" "$work/pki" || fail "making the test certificates"
    alpha_nbd_tls="nbd-tls require; nbd-tls-certificates $work/pki/nbd-server;"
fi

# Two nodes, 300 MiB disks, connected, initial sync skipped (blank disks), alpha Primary.
truncate -s 300M "$work/alpha.img" "$work/beta.img"
cat > "$work/r.conf" <<CONF
resource r0 {
  net { protocol C; connect-int 1; max-buffers 8000; }
  disk { c-plan-ahead 0; resync-rate 1G; }
  device minor 0; meta-disk internal;
  on alpha { disk $work/alpha.img; address 127.0.0.1:$port; nbd-address 127.0.0.1:$nbdport; $alpha_nbd_tls }
  on beta  { disk $work/beta.img;  address 127.0.0.2:$port; nbd-address 127.0.0.2:$nbdport; }
}
CONF
A create-md r0 >/dev/null; B create-md r0 >/dev/null
A up r0 || fail "up alpha"; B up r0 || fail "up beta"
A wait-connect --timeout 30 r0 || fail "no connection"
A new-current-uuid --clear-bitmap r0 || fail "new-current-uuid --clear-bitmap"
B wait-sync --timeout 30 r0 || fail "beta did not take the skipped sync"
A primary r0 || fail "primary"
size=$(( $(A status --json | python3 -c "import json,sys; print(json.load(sys.stdin)[0]['devices'][0]['size'])") * 1024 ))

same_disks() {  # both backing files' data areas equal (the last MiB holds the meta-data)
    local bytes=$(( 299 << 20 ))
    cmp -s <(head -c "$bytes" "$work/alpha.img") <(head -c "$bytes" "$work/beta.img")
}

release_fuse() {  # unmount, detach the loop device, and unmount nbdfuse once the loop lets go
    umount "$work/mnt" 2>/dev/null || true
    if [ -n "$loopdev" ]; then losetup -d "$loopdev" 2>/dev/null || true; loopdev=""; fi
    for _ in $(seq 100); do fusermount3 -u "$work/fuse" 2>/dev/null && return 0; sleep 0.1; done
    fail "nbdfuse could not be unmounted (the loop device still holds it)"
}

policy_refused() {  # the export at a Unix socket path or HOST:PORT answers NBD_OPT_GO with ERR_POLICY naming the Secondary
    python3 - "$1" <<'PY'
import socket, struct, sys
where = sys.argv[1]
if where.startswith("/"):
    s = socket.socket(socket.AF_UNIX); s.connect(where)
else:
    host, port = where.rsplit(":", 1); s = socket.create_connection((host, int(port)))
def rx(n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b)); assert c, "closed"; b += c
    return b
rx(18); s.sendall(struct.pack(">I", 3))
s.sendall(struct.pack(">QII", 0x49484156454F5054, 7, 6) + struct.pack(">IH", 0, 0))
m, o, t, l = struct.unpack(">QIII", rx(20)); msg = rx(l)
assert t == 0x80000002 and b"Secondary" in msg, (hex(t), msg)
PY
}

case "$TEST" in
tls)
    # NBD over TLS (NBD_OPT_STARTTLS, TLS required, client certificates from the export's CA):
    # a plain client gets NBD_REP_ERR_TLS_REQD for everything but STARTTLS and ABORT; nbdinfo,
    # nbdcopy, qemu-img and qemu-io work over nbds:// / tls-creds-x509; the data arrives on
    # both nodes; a client certificate from another CA is refused; the Unix socket stays plain.
    python3 - "$nbdport" <<'PY' || fail "a plain client was not held to TLS"
import socket, struct, sys
port = int(sys.argv[1])
def session():
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    head = s.recv(18, socket.MSG_WAITALL)
    assert head[:8] == b"NBDMAGIC" and head[8:16] == b"IHAVEOPT", head
    s.sendall(struct.pack(">I", 3))  # FIXED_NEWSTYLE | NO_ZEROES
    return s
def option(s, number, data=b""):
    s.sendall(b"IHAVEOPT" + struct.pack(">II", number, len(data)) + data)
    magic, opt, reply, length = struct.unpack(">QIII", s.recv(20, socket.MSG_WAITALL))
    body = s.recv(length, socket.MSG_WAITALL) if length else b""
    assert magic == 0x3e889045565a9 and opt == number, (hex(magic), opt)
    return reply, body
s = session()
go = struct.pack(">I", 0) + struct.pack(">H", 0)
for number, data in [(7, go), (6, go), (8, b""), (3, b""), (10, b""), (99, b"")]:  # GO, INFO, STRUCTURED_REPLY, LIST, LIST_META_CONTEXT, unknown
    reply, body = option(s, number, data)
    assert reply == 0x80000005, f"option {number}: reply {reply:#x} {body!r}, expected NBD_REP_ERR_TLS_REQD"
reply, _ = option(s, 2)  # ABORT
assert reply == 1, f"ABORT: {reply:#x}"
s.close()
s = session()  # EXPORT_NAME has no error reply: the server closes
s.sendall(b"IHAVEOPT" + struct.pack(">II", 1, 0))
assert s.recv(1) == b"", "EXPORT_NAME without TLS got an answer"
print("plain client held to TLS")
PY
    certs="tls-certificates=$work/pki/nbd-client"
    nbdinfo "nbds://127.0.0.1:$nbdport/?$certs" > "$work/info" 2>&1 || fail "nbdinfo over TLS: $(cat "$work/info")"
    grep -q "newstyle-fixed with TLS" "$work/info" || fail "nbdinfo did not use TLS: $(cat "$work/info")"
    grep -q "export-size: $size" "$work/info" || fail "nbdinfo over TLS: wrong size: $(cat "$work/info")"
    head -c 8M /dev/urandom > "$work/data"
    nbdcopy "$work/data" "nbds://127.0.0.1:$nbdport/?$certs" || fail "nbdcopy over TLS"
    creds="tls-creds-x509,id=tls0,dir=$work/pki/nbd-client,endpoint=client"
    image="driver=nbd,host=127.0.0.1,port=$nbdport,tls-creds=tls0"
    qemu-io --object "$creds" --image-opts "$image" -c "write -P 0xa5 16M 4M" >/dev/null || fail "qemu-io write over TLS"
    qemu-io --object "$creds" --image-opts "$image" -c "read -P 0xa5 16M 4M" | grep -q "read 4194304" || fail "qemu-io read over TLS"
    qemu-img info --object "$creds" --image-opts "$image" | grep -q "virtual size" || fail "qemu-img info over TLS"
    /usr/bin/python3 - "nbds://127.0.0.1:$nbdport/?$certs" "$work/data" <<'PY' || fail "libnbd's read back over TLS differs"
import nbd, sys
h = nbd.NBD()
h.set_uri_allow_local_file(True)
h.connect_uri(sys.argv[1])
assert h.get_tls_negotiated(), "TLS was not negotiated"
assert h.pread(8 << 20, 0) == open(sys.argv[2], "rb").read(), "the data read over TLS differs"
h.shutdown()
PY
    # A client certificate from another CA: refused, and the export serves on.
    nbdinfo "nbds://127.0.0.1:$nbdport/?tls-certificates=$work/pki/nbd-client-other" >/dev/null 2>&1 && fail "a client certificate from another CA was accepted"
    grep -q "certificate verify failed" "$work/run-alpha/replctl.log" || fail "the refused client certificate is not logged"
    # The Unix socket export is plain, as before (file permissions guard it).
    nbdinfo "$uriA" | grep -q "without TLS" || fail "the Unix socket export changed"
    A down r0; B down r0
    same_disks || fail "the nodes differ after writes over TLS"
    cmp -s "$work/data" <(head -c 8M "$work/beta.img") || fail "beta does not hold what nbdcopy wrote over TLS"
    cmp -s <(head -c 4M /dev/zero | tr '\0' '\245') <(tail -c +$((16 * 1048576 + 1)) "$work/beta.img" | head -c 4M) || fail "beta does not hold what qemu-io wrote over TLS"

    # TLS-PSK (nbd-tls-psk, psktool's identity:hexkey lines), TLS offered (nbd-tls on): libnbd
    # and qemu with the key get in and write; a wrong key and an unknown identity are refused; a
    # plain client is served in clear.
    mkdir -p "$work/psk"
    echo "alice:$(head -c 32 /dev/urandom | od -An -tx1 -v | tr -d ' \n')" > "$work/psk/keys.psk"
    echo "alice:$(head -c 32 /dev/urandom | od -An -tx1 -v | tr -d ' \n')" > "$work/wrong.psk"
    echo "mallory:$(head -c 32 /dev/urandom | od -An -tx1 -v | tr -d ' \n')" > "$work/mallory.psk"
    sed -i "s|$alpha_nbd_tls|nbd-tls on; nbd-tls-psk $work/psk/keys.psk;|" "$work/r.conf"
    A up r0 || fail "up alpha with PSK"; B up r0 || fail "up beta"
    A wait-connect --timeout 30 r0 || fail "no connection after the restart"
    A primary r0 || fail "primary after the restart"
    psk="nbds://alice@127.0.0.1:$nbdport/?tls-psk-file=$work/psk/keys.psk"
    nbdinfo "$psk" | grep -q "newstyle-fixed with TLS" || fail "nbdinfo with the pre-shared key"
    head -c 4M /dev/urandom > "$work/data-psk"
    nbdcopy "$work/data-psk" "$psk" || fail "nbdcopy with the pre-shared key"
    qemu-io --object "tls-creds-psk,id=tls0,dir=$work/psk,endpoint=client,username=alice" \
        --image-opts "driver=nbd,host=127.0.0.1,port=$nbdport,tls-creds=tls0" -c "write -P 0x3c 24M 1M" >/dev/null || fail "qemu-io with tls-creds-psk"
    nbdinfo "nbds://alice@127.0.0.1:$nbdport/?tls-psk-file=$work/wrong.psk" >/dev/null 2>&1 && fail "a wrong pre-shared key was accepted"
    nbdinfo "nbds://mallory@127.0.0.1:$nbdport/?tls-psk-file=$work/mallory.psk" >/dev/null 2>&1 && fail "an unknown identity was accepted"
    nbdinfo "nbd://127.0.0.1:$nbdport" | grep -q "newstyle-fixed without TLS" || fail "nbd-tls on: a plain client was not served"
    A down r0; B down r0
    same_disks || fail "the nodes differ after writes over TLS-PSK"
    cmp -s "$work/data-psk" <(head -c 4M "$work/beta.img") || fail "beta does not hold what nbdcopy wrote over TLS-PSK"
    cmp -s <(head -c 1M /dev/zero | tr '\0' '\074') <(tail -c +$((24 * 1048576 + 1)) "$work/beta.img" | head -c 1M) || fail "beta does not hold what qemu-io wrote over TLS-PSK"
    ;;
clients)
    # nbdinfo: size and flags.
    info=$(nbdinfo "$uriA") || fail "nbdinfo on the Primary"
    grep -q "export-size: $size" <<< "$info" || fail "nbdinfo size: $info"
    for flag in can_flush can_fua can_trim can_zero can_multi_conn; do
        grep -q "$flag: true" <<< "$info" || fail "nbdinfo: $flag not true: $info"
    done
    grep -q "is_read_only: false" <<< "$info" || fail "nbdinfo: read-only or no is_read_only line: $info"
    grep -q "block_size_minimum: 512" <<< "$info" || fail "nbdinfo: minimum block size"
    # The Secondary refuses, with the reason in NBD_REP_ERR_POLICY.
    if nbdinfo "$uriB" >/dev/null 2>&1; then fail "the Secondary exported its volume"; fi
    policy_refused "$work/run-beta/replica0" || fail "no ERR_POLICY naming the Secondary role"    # nbdcopy: 256 MiB in and out, compared; and on both disks.
    head -c 256M /dev/urandom > "$work/in.bin"
    nbdcopy "$work/in.bin" "$uriA" || fail "nbdcopy in"
    nbdcopy "$uriA" "$work/out.bin" || fail "nbdcopy out"
    cmp -s "$work/in.bin" <(head -c 256M "$work/out.bin") || fail "nbdcopy: data read back differs"
    cmp -s "$work/in.bin" <(head -c 256M "$work/beta.img") || fail "nbdcopy: the Secondary's disk differs"
    rm -f "$work/in.bin" "$work/out.bin"
    # qemu-io: pattern writes and reads, zeroes.
    out=$(qemu-io -f raw -c "write -P 0xab 0 1M" -c "read -P 0xab 0 1M" -c "write -P 0x5c 3M 64k" -c "read -P 0x5c 3M 64k" \
        -c "write -z 8M 2M" -c "read -P 0 8M 2M" -c "flush" "$uriA" 2>&1) || fail "qemu-io: $out"
    grep -qi "fail\|error\|mismatch" <<< "$out" && fail "qemu-io: $out"
    # fio's nbd engine with verification.
    cat > "$work/v.fio" <<FIO
[global]
ioengine=nbd
uri=$uriA
rw=randwrite
bs=4k
iodepth=16
size=32m
verify=crc32c
verify_fatal=1
do_verify=1
[verify]
FIO
    fio --aux-path="$work" --output="$work/fio.out" "$work/v.fio" >/dev/null 2>&1 || fail "fio verify: $(tail -5 "$work/fio.out")"
    grep -q "err= 0" "$work/fio.out" || fail "fio: $(cat "$work/fio.out")"
    A down r0; B down r0
    same_disks || fail "the two disks differ after the clients' writes"
    ;;
filesystem)
    # The seed's workflow: mkfs.ext4 and mount on alpha, files written; alpha demoted (refused
    # while the device is open), beta promoted, beta's export mounted: the same files.
    mkdir -p "$work/fuse" "$work/mnt"
    nbdfuse "$work/fuse" "$uriA" &
    for _ in $(seq 50); do [ -e "$work/fuse/nbd" ] && break; sleep 0.1; done
    [ -e "$work/fuse/nbd" ] || fail "nbdfuse did not come up"
    loopdev=$(losetup -f --show "$work/fuse/nbd") || fail "losetup"
    mkfs.ext4 -q "$loopdev" || fail "mkfs.ext4"
    mount "$loopdev" "$work/mnt" || fail "mount on alpha"
    echo "written on alpha" > "$work/mnt/hello.txt"
    head -c 20M /dev/urandom > "$work/mnt/data.bin"
    mkdir "$work/mnt/dir" && seq 100000 > "$work/mnt/dir/numbers.txt"
    (cd "$work/mnt" && find . -type f -exec md5sum {} + | sort -k 2) > "$work/sums.alpha"
    if A secondary r0 2>"$work/err"; then fail "secondary allowed while the filesystem is mounted"; fi
    grep -q "held open" "$work/err" || fail "secondary refusal: $(cat "$work/err")"
    A status r0 | grep -q "open:yes" || fail "status does not show the device open: $(A status r0)"
    release_fuse
    for _ in $(seq 50); do A status --json | grep -q '"nbd-clients":0' && break; sleep 0.1; done
    A secondary r0 || fail "secondary after unmount"
    B primary r0 || fail "primary on beta"
    nbdfuse "$work/fuse" "$uriB" &
    for _ in $(seq 50); do [ -e "$work/fuse/nbd" ] && break; sleep 0.1; done
    loopdev=$(losetup -f --show "$work/fuse/nbd") || fail "losetup on beta"
    mount "$loopdev" "$work/mnt" || fail "mount on beta"
    (cd "$work/mnt" && find . -type f -exec md5sum {} + | sort -k 2) > "$work/sums.beta"
    cmp -s "$work/sums.alpha" "$work/sums.beta" || fail "files differ on beta: $(diff "$work/sums.alpha" "$work/sums.beta")"
    release_fuse
    sleep 0.3
    B down r0; A down r0
    same_disks || fail "the two disks differ"
    ;;
badrequests)
    # Bad requests over a raw socket get the spec's errors; malformed ones end that connection
    # only; the daemon keeps serving.
    python3 - "$work/run-alpha/replica0" "$size" <<'PY' || fail "raw-socket checks"
import socket, struct, sys
path, size = sys.argv[1], int(sys.argv[2])
def connect(client_flags=3):
    s = socket.socket(socket.AF_UNIX); s.connect(path); s.settimeout(5)
    return s
def rx(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c: raise EOFError
        b += c
    return b
def opt(s, o, data=b""):
    s.sendall(struct.pack(">QII", 0x49484156454F5054, o, len(data)) + data)
def reply(s):
    m, o, t, l = struct.unpack(">QIII", rx(s, 20)); return t, rx(s, l)
def go(s):
    rx(s, 18); s.sendall(struct.pack(">I", 3))
    opt(s, 7, struct.pack(">IH", 0, 0))
    while True:
        t, d = reply(s)
        if t == 1: return
        assert t == 3, hex(t)
def req(s, cmd, off, length, flags=0, data=b"", cookie=7):
    s.sendall(struct.pack(">IHHQQI", 0x25609513, flags, cmd, cookie, off, length) + data)
def simple(s):
    m, err, cookie = struct.unpack(">IIQ", rx(s, 16)); assert m == 0x67446698, hex(m); return err
def closed(s):
    try:
        return s.recv(1) == b""
    except (ConnectionResetError, socket.timeout):
        return True
EINVAL, ENOSPC, EPERM, ENOTSUP = 22, 28, 1, 95
s = connect(); go(s)
req(s, 0, 100, 512); assert simple(s) == EINVAL, "misaligned read"
req(s, 0, size, 4096); assert simple(s) == EINVAL, "read past the end"
req(s, 1, size - 4096, 8192, data=b"x" * 8192); assert simple(s) == ENOSPC, "write past the end"
req(s, 4, size, 4096); assert simple(s) == EINVAL, "trim past the end"
req(s, 9, 0, 0); assert simple(s) == EINVAL, "unknown command"
req(s, 0, 0, 4096, flags=0x40); assert simple(s) == EINVAL, "unknown flag"
req(s, 6, 0, 4096, flags=0x10); assert simple(s) == ENOTSUP, "write zeroes with FAST_ZERO"
req(s, 6, size - 4096, 8192); assert simple(s) == ENOSPC, "write zeroes past the end"
req(s, 0, 0, 4096, flags=1, cookie=13); assert simple(s) == 0 and len(rx(s, 4096)) == 4096, "READ with FUA (advertised: accepted)"
req(s, 3, 0, 0, flags=1, cookie=14); assert simple(s) == 0, "FLUSH with FUA (advertised: accepted)"
req(s, 1, 4096, 4096, data=b"\xab" * 4096, cookie=11); assert simple(s) == 0, "good write"
req(s, 0, 4096, 4096, cookie=12); assert simple(s) == 0 and rx(s, 4096) == b"\xab" * 4096, "good read"
req(s, 1, 0, 64 << 20); assert closed(s), "oversized write must end the connection"
s = connect(); go(s)
s.sendall(b"\xde\xad\xbe\xef" + b"\0" * 24); assert closed(s), "bad request magic must end the connection"
s = connect(); rx(s, 18); s.sendall(struct.pack(">I", 0x80)); assert closed(s), "unknown client flags must end the connection"
s = connect(); rx(s, 18); s.sendall(struct.pack(">I", 3))
opt(s, 42, b"abc"); t, _ = reply(s); assert t == 0x80000001, "unknown option: ERR_UNSUP"
opt(s, 6, struct.pack(">I", 4) + b"nope" + struct.pack(">H", 0)); t, _ = reply(s); assert t == 0x80000006, "unknown export: ERR_UNKNOWN"
opt(s, 6, b"\x00\x00"); t, _ = reply(s); assert t == 0x80000003, "malformed INFO: ERR_INVALID"
opt(s, 3); t, d = reply(s); assert t == 2 and b"r0" in d, "LIST"; t, _ = reply(s); assert t == 1
opt(s, 2); t, _ = reply(s); assert t == 1, "ABORT acked"
s = connect(); rx(s, 18); s.sendall(struct.pack(">I", 3))
s.sendall(struct.pack(">QII", 0x49484156454F5054, 7, 1 << 30)); assert closed(s), "huge option must end the connection"
print("raw-socket checks passed")
PY
    # The same rules through libnbd (structured replies negotiated, its own checks off so
    # that the server's answers are what is tested).
    /usr/bin/python3 - "$uriA" "$size" <<'PY' || fail "libnbd probes"
import errno, sys
import nbd
uri, size = sys.argv[1], int(sys.argv[2])
h = nbd.NBD()
h.set_strict_mode(0)
h.connect_uri(uri)
assert h.get_structured_replies_negotiated(), "structured replies not negotiated"
assert h.can_fua(), "FUA not advertised"
assert h.pread(0, 0) == b"", "a zero-length read"
h.pwrite(b"\x5a" * 4096, 8192, nbd.CMD_FLAG_FUA)
assert h.pread(4096, 8192, nbd.CMD_FLAG_FUA) == b"\x5a" * 4096, "READ with FUA"
h.flush(nbd.CMD_FLAG_FUA)
def error_of(call):
    try:
        call()
    except nbd.Error as e:
        # libnbd gives the errno's name ("ENOSPC") or its number, by version.
        return e.errno if isinstance(e.errno, str) else errno.errorcode.get(e.errno, str(e.errno))
    return "no error"
e = error_of(lambda: h.zero(8192, size - 4096)); assert e == "ENOSPC", f"WRITE_ZEROES past the end: ENOSPC, not {e}"
assert error_of(lambda: h.pwrite(b"\0" * 8192, size - 4096)) == "ENOSPC", "WRITE past the end: ENOSPC"
assert error_of(lambda: h.pread(8192, size - 4096)) == "EINVAL", "READ past the end: EINVAL"
assert h.pread(4096, 8192) == b"\x5a" * 4096, "still serving"
h.shutdown()
print("libnbd probes passed")
PY
    nbdinfo "$uriA" | grep -q "export-size: $size" || fail "the daemon stopped serving after bad requests"
    A status --proc | grep -q "cs:Connected ro:Primary/Secondary" || fail "replication disturbed: $(A status --proc)"
    ;;
tcp)
    # The export on TCP (nbd-address): the same volume as on the Unix socket.
    tcpA="nbd://127.0.0.1:$nbdport"
    info=$(nbdinfo "$tcpA") || fail "nbdinfo over TCP"
    grep -q "export-size: $size" <<< "$info" || fail "nbdinfo size over TCP: $info"
    if nbdinfo "nbd://127.0.0.2:$nbdport" >/dev/null 2>&1; then fail "the Secondary exported its volume over TCP"; fi
    policy_refused "127.0.0.2:$nbdport" || fail "no ERR_POLICY naming the Secondary role over TCP"
    head -c 32M /dev/urandom > "$work/in"
    nbdcopy "$work/in" "$tcpA" 2>"$work/err" || fail "nbdcopy into the TCP export: $(cat "$work/err")"
    nbdcopy "$uriA" - | head -c 32M > "$work/out-unix" || true
    cmp -s "$work/in" "$work/out-unix" || fail "data written over TCP differs when read over the Unix socket"
    A status --verbose | grep -q "nbd:$work/run-alpha/replica0,ipv4 127.0.0.1:$nbdport" || fail "status does not show the TCP export: $(A status --verbose)"
    # A client over TCP holds the device open: secondary is refused until it leaves.
    qemu-io -f raw -c "sleep 3000" "$tcpA" >/dev/null 2>&1 &
    client=$!
    for _ in $(seq 50); do A status --json | grep -q '"nbd-clients":1' && break; sleep 0.1; done
    if A secondary r0 2>"$work/err"; then fail "secondary accepted with a TCP client connected"; fi
    grep -q "held open" "$work/err" || fail "secondary refusal: $(cat "$work/err")"
    wait "$client" || fail "the TCP client failed"
    A wait-sync --timeout 30 r0 || fail "not in sync"
    A down r0; B down r0
    same_disks || fail "the disks differ after writes over TCP"
    ;;
map)
    # base:allocation: the Primary's export reports the holes of its sparse disk — written
    # ranges as data, the rest as holes (nbdinfo --map, qemu-img map, libnbd's block_status with
    # and without REQ_ONE); nbdcopy and qemu-img convert copy the volume sparsely, byte for
    # byte. (A trim is replicated as written zeroes, docs/COMPATIBILITY.md: it reads back as
    # zeroes on both nodes but punches no hole.)
    mib=$((1 << 20))
    /usr/bin/python3 - "$uriA" "$size" <<'PY' || fail "writes and block status through libnbd"
import sys
import nbd
uri, size = sys.argv[1], int(sys.argv[2])
mib = 1 << 20
h = nbd.NBD()
h.add_meta_context(nbd.CONTEXT_BASE_ALLOCATION)
h.connect_uri(uri)
assert h.can_meta_context(nbd.CONTEXT_BASE_ALLOCATION), "base:allocation not negotiated"
h.pwrite(b"\x11" * mib, 10 * mib)
h.pwrite(b"\x22" * 65536, 100 * mib)
h.pwrite(b"\x33" * (2 * mib), 200 * mib)
h.flush()
def extents(offset, length, flags=0):
    found = []
    def callback(context, at, entries, error):
        assert context == nbd.CONTEXT_BASE_ALLOCATION, context
        found.extend(zip(entries[0::2], entries[1::2]))
        return 0
    h.block_status(length, offset, callback, flags)
    return found
# The whole export, asked again where a reply stops short.
got, at = [], 0
while at < size:
    part = extents(at, min(size - at, 1 << 31))
    assert part, "no descriptor"
    got += part
    at += sum(length for length, _ in part)
merged = []
for length, flags in got:
    if merged and merged[-1][1] == flags: merged[-1][0] += length
    else: merged.append([length, flags])
expected = [[10 * mib, 3], [mib, 0], [89 * mib, 3], [65536, 0], [100 * mib - 65536, 3], [2 * mib, 0], [size - 202 * mib, 3]]
assert merged == expected, f"map {merged} != {expected}"
one = extents(5 * mib, 10 * mib, nbd.CMD_FLAG_REQ_ONE)
assert one == [(5 * mib, 3)], f"REQ_ONE: {one}"
h.trim(512 * 1024, 10 * mib)
h.flush()
assert h.pread(512 * 1024, 10 * mib) == b"\0" * (512 * 1024), "a trimmed range reads zeroes"
assert h.pread(512 * 1024, 10 * mib + 512 * 1024) == b"\x11" * (512 * 1024), "the rest of the write is still there"
h.shutdown()
print("block status checks passed")
PY
    map=$(nbdinfo --map "$uriA") || fail "nbdinfo --map"
    grep -Eq "^ +0 +10485760 +3 +hole,zero" <<<"$map" || fail "nbdinfo --map: the first hole is missing: $map"
    grep -Eq "^ +10485760 +1048576 +0 +data" <<<"$map" || fail "nbdinfo --map: the first data is missing: $map"
    grep -Eq "^ +209715200 +2097152 +0 +data" <<<"$map" || fail "nbdinfo --map: the last data is missing: $map"
    qemu-img map --output=json -f raw "$uriA" > "$work/qmap.json" || fail "qemu-img map"
    python3 - "$work/qmap.json" <<'PY' || fail "qemu-img map: $(cat "$work/qmap.json")"
import json, sys
mib = 1 << 20
data = [(e["start"], e["length"]) for e in json.load(open(sys.argv[1])) if e["data"]]
assert data == [(10 * mib, mib), (100 * mib, 65536), (200 * mib, 2 * mib)], data
PY
    # Sparse copies: nbdcopy and qemu-img convert leave the holes unwritten.
    nbdcopy "$uriA" "$work/copy.img" || fail "nbdcopy"
    qemu-img convert -f raw -O raw "$uriA" "$work/convert.img" || fail "qemu-img convert"
    for copy in copy convert; do
        cmp -s <(head -c "$size" "$work/alpha.img") "$work/$copy.img" || fail "$copy.img differs from the volume"
        used=$(( $(stat -c %b "$work/$copy.img") * 512 ))
        [ "$used" -le $((8 * mib)) ] || fail "$copy.img takes $used bytes: not copied sparsely (3.6 MiB of data)"
    done
    B down r0; A down r0
    same_disks || fail "the two disks differ"
    ;;
multiconn)
    # NBD_FLAG_CAN_MULTI_CONN holds: four connections write their own regions; every
    # connection reads every region back at once; a FLUSH on connection 0 alone makes all of it
    # durable on both nodes — both daemons call fdatasync after the writes completed and before
    # the FLUSH is answered (strace on each daemon) — and both disks hold every byte.
    command -v strace >/dev/null || fail "strace missing (scripts/install-deps.sh)"
    tracers=()
    for n in alpha beta; do
        strace -f -tt -e trace=fdatasync,fsync -o "$work/strace-$n.log" -p "$(cat "$work/run-$n/replctl.pid")" 2>/dev/null &
        tracers+=($!)
    done
    sleep 1
    /usr/bin/python3 - "$uriA" "$work/times" <<'PY' || { kill -KILL "${tracers[@]}" 2>/dev/null; fail "multi-connection checks"; }
import sys, time, datetime
import nbd
uri, times = sys.argv[1], sys.argv[2]
mib = 1 << 20
handles = []
for _ in range(4):
    h = nbd.NBD(); h.connect_uri(uri)
    assert h.can_multi_conn(), "NBD_FLAG_CAN_MULTI_CONN not advertised"
    handles.append(h)
for index, h in enumerate(handles):
    h.pwrite(bytes([0x40 + index]) * mib, (16 + index) * mib)
written = datetime.datetime.now()
for reader in handles:
    for index in range(4):
        assert reader.pread(mib, (16 + index) * mib) == bytes([0x40 + index]) * mib, "a connection does not see another's completed write"
time.sleep(0.5)
flush_sent = datetime.datetime.now()
handles[0].flush()
flushed = datetime.datetime.now()
with open(times, "w") as out:
    out.write(f"{flush_sent.strftime('%H:%M:%S.%f')} {flushed.strftime('%H:%M:%S.%f')}\n")
for h in handles: h.shutdown()
print("multi-connection checks passed")
PY
    sleep 0.5
    # SIGKILL: a test runner may start this script with SIGTERM blocked, and strace keeps the
    # mask (a TERM then never arrives); the kernel detaches the daemons when strace dies.
    kill -KILL "${tracers[@]}" 2>/dev/null || true
    wait "${tracers[@]}" 2>/dev/null || true
    read -r sent answered < "$work/times"
    for n in alpha beta; do
        # An fdatasync that returned between the FLUSH leaving connection 0 and its answer.
        calls=$(awk -v from="$sent" -v to="$answered" '$2 >= from && $2 <= to && /fdatasync\(|fsync\(/ { n++ } END { print n + 0 }' "$work/strace-$n.log")
        [ "$calls" -gt 0 ] || fail "$n: no fdatasync while connection 0's FLUSH ran ($sent .. $answered): $(tail -5 "$work/strace-$n.log")"
        echo "$n: $calls fdatasync/fsync calls while connection 0's FLUSH ran"
    done
    for index in 0 1 2 3; do
        for img in alpha beta; do
            want=$(printf '%x' $((0x40 + index)))
            got=$(dd if="$work/$img.img" bs=1M skip=$((16 + index)) count=1 status=none | od -An -v -tx1 | tr -s ' \n' '\n' | sort -u | grep -v '^$')
            [ "$got" = "$want" ] || fail "$img: region $index holds $got, not $want"
        done
    done
    B down r0; A down r0
    same_disks || fail "the two disks differ"
    ;;
down)
    # down closes clients cleanly and removes the socket.
    python3 - "$work/run-alpha/replica0" <<'PY' &
import socket, struct, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.settimeout(20)
def rx(n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c: raise EOFError
        b += c
    return b
rx(18); s.sendall(struct.pack(">I", 3))
s.sendall(struct.pack(">QII", 0x49484156454F5054, 7, 6) + struct.pack(">IH", 0, 0))
while True:
    m, o, t, l = struct.unpack(">QIII", rx(20)); rx(l)
    if t == 1: break
try:
    print("eof" if s.recv(1) == b"" else "data")
except ConnectionResetError:
    print("reset")
PY
    client=$!
    for _ in $(seq 50); do A status --json | grep -q '"nbd-clients":1' && break; sleep 0.1; done
    A status --json | grep -q '"nbd-clients":1' || fail "the client is not counted"
    A down r0 || fail "down with a client connected"
    wait "$client" || fail "the client did not see the connection end"
    [ -e "$work/run-alpha/replica0" ] && fail "the export socket is left behind"
    B down r0
    ;;
*)
    echo "unknown test $TEST"; exit 2 ;;
esac
echo "PASS $TEST"
