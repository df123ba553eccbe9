#!/usr/bin/env bash
# Live replication between two nodes on this machine: alpha on 127.0.0.1, beta on 127.0.0.2,
# each with its own daemon and run directory, file-backed disks in a temporary folder.
# Follows the seed's walk-through: create-md, up, status, primary --force, full sync, writes
# on the Primary, roles switched, data read back on the other node, a link cut with a resync
# of only what changed, a split brain and its manual recovery. Unattended.
set -euo pipefail
REPLCTL="${1:-.build/debug/replctl}"
REPLCTL="$(cd "$(dirname "$REPLCTL")" && pwd)/$(basename "$REPLCTL")"
work=$(mktemp -d /tmp/replica-live.XXXXXX)
port=$((20000 + RANDOM % 20000))
A=(-c "$work/replica.conf" --node alpha --run-dir "$work/run-alpha")
B=(-c "$work/replica.conf" --node beta --run-dir "$work/run-beta")

cleanup() {
    mountpoint -q "$work/mnt" 2>/dev/null && umount "$work/mnt" || true
    [ -n "${loopdev:-}" ] && losetup -d "$loopdev" 2>/dev/null || true
    mountpoint -q "$work/fuse" 2>/dev/null && fusermount3 -u "$work/fuse" 2>/dev/null || true
    for node in alpha beta; do
        pidfile="$work/run-$node/replctl.pid"
        if [ -f "$pidfile" ]; then
            "$REPLCTL" shutdown --run-dir "$work/run-$node" >/dev/null 2>&1 || true
            sleep 0.3
            pid=$(cat "$pidfile" 2>/dev/null || true)
            [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
        fi
    done
    [ -n "${KEEP_DEMO:-}" ] && echo "kept $work" || rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
say() { printf '   %s\n' "$*"; }
run() { printf '\033[2m$ replctl %s\033[0m\n' "$(echo "$*" | sed "s|$work|\$WORK|g")"; "$REPLCTL" "$@"; }

step "1. Two nodes, 128 MiB disk files, one resource (protocol C)"
truncate -s 128M "$work/alpha.img" "$work/beta.img"
cat > "$work/replica.conf" <<CONF
resource r0 {
  net { protocol C; connect-int 1; }
  # A fixed resync rate (the dynamic controller is off with c-plan-ahead 0), slow enough
  # for the progress bar to show.
  disk { c-plan-ahead 0; resync-rate 48M; }
  device /dev/drbd0;
  meta-disk internal;
  on alpha { disk $work/alpha.img; address 127.0.0.1:$port; }
  on beta  { disk $work/beta.img;  address 127.0.0.2:$port; }
}
CONF
say "Some existing data on alpha's disk, which the first sync must carry to beta:"
head -c 16M /dev/urandom > "$work/existing.bin"
dd if="$work/existing.bin" of="$work/alpha.img" conv=notrunc status=none
run create-md "${A[@]}" r0
run create-md "${B[@]}" r0

step "2. up on both nodes: each starts its daemon, they connect"
run up "${A[@]}" r0
run up "${B[@]}" r0
run wait-connect "${A[@]}" --timeout 30 r0
run status "${A[@]}" --proc
say "Both disks are Inconsistent: nobody has claimed its data is the truth yet."

step "3. primary without UpToDate data is refused; primary --force starts the full sync"
run primary "${A[@]}" r0 || say "(refused, exit code $?)"
run primary --force "${A[@]}" r0
sleep 0.2
run status "${A[@]}" --proc
run wait-sync "${A[@]}" --timeout 120 r0
run status "${A[@]}" --proc
run status "${B[@]}"

step "4. Writes on the Primary are mirrored as they happen (protocol C: on both disks before they complete)"
head -c 4M /dev/urandom > "$work/new.bin"
run write "${A[@]}" --offset 1048576 --input "$work/new.bin" r0
run status "${A[@]}" --proc

step "5. Switch roles and read the data back on beta"
run secondary "${A[@]}" r0
run primary "${B[@]}" r0
run role "${B[@]}" r0
run read "${B[@]}" --offset 1048576 --length 4194304 --output "$work/readback.bin" r0
if cmp -s "$work/new.bin" "$work/readback.bin"; then say "beta returns exactly the 4 MiB written on alpha."; else say "MISMATCH"; exit 1; fi
run read "${B[@]}" --offset 8388608 --length 8388608 --output "$work/readback2.bin" r0
if cmp -s <(tail -c +8388609 "$work/existing.bin") "$work/readback2.bin"; then say "and the data that existed before the first sync."; else say "MISMATCH"; exit 1; fi

json() { "$REPLCTL" status "$@" --json | python3 -c "import json,sys; d=json.load(sys.stdin)[0]; print(d['connections'][0]['peer_devices'][0]['resync-bytes'], d['connections'][0]['peer_devices'][0]['out-of-sync'])"; }

step "6. The replication link is cut while beta (now Primary) keeps writing; on reconnect only what changed is resent"
say "(Both nodes share this machine's loopback, so alpha's disconnect stands in for a pulled cable;"
say " the network-namespace tests cut a real veth link, see scripts/netns-integration.sh.)"
run disconnect "${A[@]}" r0
sleep 0.3
run status "${B[@]}" --proc
for offset in 20 40 60; do
    head -c 1M /dev/urandom > "$work/cut-$offset.bin"
    run write "${B[@]}" --offset $((offset << 20)) --input "$work/cut-$offset.bin" r0
done
run status "${B[@]}" --proc
read -r before dirty_kib < <(json "${B[@]}")
say "beta marked $((dirty_kib / 1024)) MiB out of sync while alone (oos: above, in KiB)."
run connect "${A[@]}" r0
run wait-sync "${B[@]}" --timeout 60 r0
run status "${B[@]}" --proc
read -r after _ < <(json "${B[@]}")
say "The resync sent $(( (after - before) >> 20 )) MiB: exactly the blocks written during the cut, not the whole disk."

step "7. Split brain: the link cut again, and alpha promoted too, both Primary and writing"
run disconnect "${A[@]}" r0
run primary "${A[@]}" r0
head -c 1M /dev/urandom > "$work/sb-alpha.bin"; head -c 1M /dev/urandom > "$work/sb-beta.bin"
run write "${A[@]}" --offset $((30 << 20)) --input "$work/sb-alpha.bin" r0
run write "${B[@]}" --offset $((50 << 20)) --input "$work/sb-beta.bin" r0
run status "${A[@]}" --proc
say "Both Primary (the seed's case 1). When the link returns, the generation identifiers show"
say "that both sides changed the data apart: split brain, and both stay StandAlone."
run connect "${A[@]}" r0
for _ in $(seq 100); do
    grep -q "Split-Brain detected but unresolved" "$work/run-alpha/replctl.log" "$work/run-beta/replctl.log" 2>/dev/null \
        && [ "$(grep -l "Split-Brain detected but unresolved" "$work"/run-*/replctl.log | wc -l)" = 2 ] \
        && "$REPLCTL" status "${A[@]}" --proc | grep -q cs:StandAlone && "$REPLCTL" status "${B[@]}" --proc | grep -q cs:StandAlone && break
    sleep 0.1
done
run status "${A[@]}" --proc
run status "${B[@]}" --proc
grep -h "Split-Brain" "$work/run-alpha/replctl.log" | tail -1 | sed 's/^/   alpha log: /'

step "8. Manual recovery as the seed shows it: alpha is the victim, beta's data is the truth"
run secondary "${A[@]}" r0
run connect --discard-my-data "${A[@]}" r0
run connect "${B[@]}" r0
run wait-sync "${B[@]}" --timeout 60 r0
run status "${B[@]}" --proc
run read "${B[@]}" --offset $((30 << 20)) --length 1048576 --output "$work/sb-check.bin" r0
if cmp -s "$work/sb-check.bin" "$work/sb-alpha.bin"; then say "MISMATCH: the victim's write survived"; exit 1; fi
say "alpha's write made during the split brain is gone (overwritten from beta);"
run read "${B[@]}" --offset $((50 << 20)) --length 1048576 --output "$work/sb-check2.bin" r0
if cmp -s "$work/sb-check2.bin" "$work/sb-beta.bin"; then say "beta's write is kept."; else say "MISMATCH: the survivor's write is lost"; exit 1; fi

if [ "$(id -u)" -eq 0 ] && command -v nbdfuse >/dev/null && command -v losetup >/dev/null && [ -e /dev/fuse ]; then
    step "9. A filesystem on the replicated volume (the seed's mkfs.ext4 and mount), on beta and then on alpha"
    say "Each volume of a Primary is an NBD export on RUN_DIR/replica<minor>, the counterpart of /dev/drbd0."
    say "nbdfuse turns it into a file, losetup into a block device:"
    mkdir -p "$work/fuse" "$work/mnt"
    mount_export() {  # node's run directory
        nbdfuse "$work/fuse" "nbd+unix:///?socket=$1/replica0" &
        for _ in $(seq 50); do [ -e "$work/fuse/nbd" ] && break; sleep 0.1; done
        loopdev=$(losetup -f --show "$work/fuse/nbd")
        printf '\033[2m$ nbdfuse $WORK/fuse nbd+unix:///?socket=%s/replica0; losetup %s $WORK/fuse/nbd\033[0m\n' "$(echo "$1" | sed "s|$work|\$WORK|")" "$loopdev"
    }
    unmount_export() {
        umount "$work/mnt"; losetup -d "$loopdev"
        for _ in $(seq 100); do fusermount3 -u "$work/fuse" 2>/dev/null && break; sleep 0.1; done
        for _ in $(seq 50); do  # until the daemons see nbdfuse's connections end
            "$REPLCTL" status "${A[@]}" --json | grep -q '"nbd-clients":0' && "$REPLCTL" status "${B[@]}" --json | grep -q '"nbd-clients":0' && break
            sleep 0.1
        done
    }
    mount_export "$work/run-beta"
    printf '\033[2m$ mkfs.ext4 %s; mount %s $WORK/mnt\033[0m\n' "$loopdev" "$loopdev"
    mkfs.ext4 -q "$loopdev"; mount "$loopdev" "$work/mnt"
    echo "written on beta at $(date +%T)" > "$work/mnt/hello.txt"
    seq 200000 > "$work/mnt/numbers.txt"
    (cd "$work/mnt" && md5sum hello.txt numbers.txt) > "$work/sums.beta"
    sed 's/^/   /' "$work/sums.beta"
    run secondary "${B[@]}" r0 || say "(refused while the filesystem is mounted, as DRBD refuses while /dev/drbd0 is open)"
    unmount_export
    run secondary "${B[@]}" r0
    run primary "${A[@]}" r0
    mount_export "$work/run-alpha"
    mount "$loopdev" "$work/mnt"
    (cd "$work/mnt" && md5sum hello.txt numbers.txt) > "$work/sums.alpha"
    say "alpha mounts the same filesystem: $(cat "$work/mnt/hello.txt")"
    if cmp -s "$work/sums.beta" "$work/sums.alpha"; then say "Both files have the same checksums on alpha."; else say "MISMATCH"; exit 1; fi
    unmount_export
else
    step "9. (The filesystem step needs root, nbdfuse, losetup and /dev/fuse: skipped here.)"
fi

step "10. down on both nodes"
run down "${B[@]}" r0
run down "${A[@]}" r0
size=$(( (128 << 20) - 4 * 1048576 ))
if cmp -s <(head -c $((100 << 20)) "$work/alpha.img") <(head -c $((100 << 20)) "$work/beta.img"); then
    say "The two disk files hold the same data."
else
    say "MISMATCH between the disk files"; exit 1
fi
step "Done"
