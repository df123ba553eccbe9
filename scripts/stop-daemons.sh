# Sourced by the test scripts: stop_daemons DIR NODE... ends the daemons those scripts started,
# by the PIDs in DIR/run-NODE/replctl.pid (TERM, then KILL after 0.3 s) — never by name.
stop_daemons() {
    local dir=$1 node pid
    shift
    for node in "$@"; do
        pid=$(cat "$dir/run-$node/replctl.pid" 2>/dev/null || true)
        if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; fi
    done
    sleep 0.3
    for node in "$@"; do
        pid=$(cat "$dir/run-$node/replctl.pid" 2>/dev/null || true)
        if [ -n "$pid" ]; then kill -9 "$pid" 2>/dev/null || true; fi
    done
}
