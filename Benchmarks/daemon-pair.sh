# Sourced by the benchmark scripts that run two Replica daemons on loopback.

# stop_daemons WORK NODE...: stops each node's daemon, by the PID in its run directory.
stop_daemons() {
    local work=$1 node pid
    shift
    for node in "$@"; do
        pid=$(cat "$work/run-$node/replctl.pid" 2>/dev/null || true)
        [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
    done
}

# pair_resource WORK PORT: resource r0 replicated under protocol C between alpha
# (127.0.0.1) and beta (127.0.0.2), on WORK/alpha.img and WORK/beta.img.
pair_resource() {
    cat <<CONF
resource r0 {
  net { protocol C; connect-int 1; max-buffers 8000; }
  disk { md-flushes no; }
  device minor 0; meta-disk internal;
  on alpha { disk $1/alpha.img; address 127.0.0.1:$2; }
  on beta  { disk $1/beta.img;  address 127.0.0.2:$2; }
}
CONF
}

# R NODE COMMAND ARGS...: replctl COMMAND for NODE, with WORK/r.conf and WORK/run-NODE (the
# caller's $REPLCTL and $work).
R() { "$REPLCTL" "$1" -c "$work/r.conf" --node "$2" --run-dir "$work/run-$2" "${@:3}"; }

# primary_pair PORT: r0 (pair_resource in $work) up on alpha and beta, connected, the blank
# disks declared in sync, alpha Primary.
primary_pair() {
    pair_resource "$work" "$1" > "$work/r.conf"
    R create-md alpha r0 >/dev/null; R create-md beta r0 >/dev/null
    R up alpha r0; R up beta r0
    R wait-connect alpha --timeout 30 r0
    R new-current-uuid alpha --clear-bitmap r0
    R wait-sync beta --timeout 30 r0
    R primary alpha r0
}

# require_tools TOOL...: stops with a hint when a tool is missing, or $REPLCTL is not built.
require_tools() {
    local tool
    for tool in "$@"; do command -v "$tool" >/dev/null || { echo "$tool missing: scripts/install-deps.sh" >&2; exit 1; }; done
    [ -x "$REPLCTL" ] || { echo "no replctl at $REPLCTL (swift build -c release --product replctl)" >&2; exit 1; }
}

# pair_workspace NAME: $work (a fresh folder on /dev/shm) and $port (random) for a pair of
# daemons, both nodes' daemons stopped and $work removed when the script exits.
pair_workspace() {
    work=$(mktemp -d "/dev/shm/replica-$1.XXXXXX")
    port=$((22000 + RANDOM % 20000))
    trap 'stop_daemons "$work" alpha beta; sleep 0.3; rm -rf "$work"' EXIT
}
