#!/usr/bin/env bash
# Replica demo: a two-node resource with file-backed disks on this machine. Shows the
# configuration (checked against drbdadm), meta-data (checked against drbdmeta) and the
# state rules that the replication engine obeys. Unattended; each step says what it shows.
set -euo pipefail
REPLCTL="${1:-.build/debug/replctl}"
REPLCTL="$(cd "$(dirname "$REPLCTL")" && pwd)/$(basename "$REPLCTL")"
work=$(mktemp -d /tmp/replica-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
say() { printf '   %s\n' "$*"; }
run() { printf '\033[2m$ %s\033[0m\n' "$*"; "$@"; }

step "1. Two nodes, two 256 MiB sparse disk files, one resource in DRBD syntax"
truncate -s 256M "$work/alpha.img" "$work/beta.img"
cat > "$work/replica.conf" <<CONF
global { usage-count no; }
common { net { protocol C; } disk { resync-rate 100M; } }
resource r0 {
  device /dev/drbd0;
  meta-disk internal;
  on alpha { disk $work/alpha.img; address 127.0.0.1:7789; }
  on beta  { disk $work/beta.img;  address 127.0.0.2:7789; }
  net { after-sb-0pri discard-zero-changes; after-sb-1pri discard-secondary; }
}
CONF
say "The file $work/replica.conf, as replctl normalizes it (drbdadm dump's form):"
run "$REPLCTL" dump -c "$work/replica.conf" --node alpha
if command -v drbdadm >/dev/null; then
    if diff <(drbdadm -c "$work/replica.conf" dump 2>/dev/null | grep -v '^#') \
            <("$REPLCTL" dump -c "$work/replica.conf" --node alpha | grep -v '^#') >/dev/null; then
        say "drbdadm dump prints the same text (comment lines aside)."
    else
        say "NOTE: drbdadm dump differs:"; diff <(drbdadm -c "$work/replica.conf" dump 2>/dev/null | grep -v '^#') \
            <("$REPLCTL" dump -c "$work/replica.conf" --node alpha | grep -v '^#') || true
    fi
fi

step "2. A mistake in the file is reported with file:line:column"
sed 's/protocol C;/protocol D;/' "$work/replica.conf" > "$work/broken.conf"
run "$REPLCTL" dump -c "$work/broken.conf" --node alpha || say "(exit code $? = configuration error)"

step "3. create-md on both nodes: DRBD's v08 meta-data at the end of each disk"
run "$REPLCTL" create-md -c "$work/replica.conf" --node alpha r0
run "$REPLCTL" create-md -c "$work/replica.conf" --node beta r0
say "Creating it again is refused, so existing meta-data is never lost by accident:"
run "$REPLCTL" create-md -c "$work/replica.conf" --node alpha r0 || say "(exit code $? = meta-data error)"

step "4. dump-md: the meta-data as drbdmeta prints it"
run "$REPLCTL" dump-md -c "$work/replica.conf" --node alpha r0
if command -v drbdmeta >/dev/null; then
    if diff <(drbdmeta --force 0 v08 "$work/alpha.img" internal dump-md 2>/dev/null | grep -v '^#\|flags') \
            <("$REPLCTL" dump-md -c "$work/replica.conf" --node alpha r0 | grep -v '^#\|flags') >/dev/null; then
        say "drbdmeta reads the same meta-data from the disk (drbdmeta 9.22 prints v08 flags as 0)."
    fi
fi

step "5. The generation identifiers and what they say"
run "$REPLCTL" show-gi -c "$work/replica.conf" --node alpha r0
say "Attached, this disk is:"
run "$REPLCTL" dstate -c "$work/replica.conf" --node alpha r0

step "6. The state rules: promotion needs UpToDate data"
run "$REPLCTL" state-check --promote --role Secondary --conn StandAlone --disk Inconsistent || true
say "primary --force makes this node's data the truth:"
run "$REPLCTL" state-check --promote --force --role Secondary --conn StandAlone --disk Inconsistent
say "Two Primaries are refused unless allow-two-primaries is set:"
run "$REPLCTL" state-check --role Primary --peer-role Primary --conn Connected --disk UpToDate --peer-disk UpToDate || true
run "$REPLCTL" state-check --role Primary --peer-role Primary --conn Connected --disk UpToDate --peer-disk UpToDate --allow-two-primaries
say "A Secondary cannot be made while the device is open:"
run "$REPLCTL" state-check --role Secondary --conn Connected --peer-role Secondary --disk UpToDate --peer-disk UpToDate --device-open || true

step "7. What the connect handshake decides from the UUIDs"
say "alpha after 'primary --force' (new current UUID, the old one kept as bitmap UUID) meets blank beta:"
run "$REPLCTL" set-gi -c "$work/replica.conf" --node alpha r0 5D3A1E2F4B6C7D81:4:0:0:1:1:1:0:0:0:0
run "$REPLCTL" uuid-compare 5D3A1E2F4B6C7D81:4:0:0 4:0:0:0
say "Both wrote while apart after diverging from the same generation: split brain."
run "$REPLCTL" uuid-compare 6E00000000000000:5D3A1E2F4B6C7D80:0:0 7F00000000000000:5D3A1E2F4B6C7D80:0:0
say "Disks that share no generation at all are refused:"
run "$REPLCTL" uuid-compare 6E00000000000000:1200000000000000:3400000000000000:0 7F00000000000000:5600000000000000:7800000000000000:0

step "Done with the offline part; next: live replication between two daemons"
