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
