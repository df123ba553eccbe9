#!/usr/bin/env bash
# Fuzzes Replica's parsers with libFuzzer (`make fuzz`): builds the Fuzz/ package with
# -sanitize=fuzzer,address and runs each target (frames, engine, authentication, nbd, config)
# for RUNS inputs (default 1 000 000) on its corpus Fuzz/Corpus/TARGET, which grows by what
# libFuzzer finds interesting (commit it). A crash, a hang (-timeout, seconds per input) or an
# allocation beyond -malloc_limit_mb stops the run and leaves the input in Fuzz/crashes/;
# give it a unit test (FuzzCorpusTests replays the corpus in `make test`).
# Usage: [RUNS=n] [TARGETS="frames nbd"] bash scripts/fuzz.sh
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-1000000}
targets=${TARGETS:-frames engine authentication nbd config}
(cd Fuzz && swift build -c release -Xswiftc -sanitize=fuzzer,address)
binary="Fuzz/.build/release/replica-fuzz"
mkdir -p Fuzz/crashes
for target in $targets; do
    mkdir -p "Fuzz/Corpus/$target"
    before=$(ls "Fuzz/Corpus/$target" | wc -l)
    start=$(date +%s)
    # The NBD session's backend work is asynchronous (libdispatch) and may outlive the session
    # that asked for it; LeakSanitizer reports those blocks (and libdispatch's per-thread
    # continuation cache) as leaks. Unbounded growth is still caught by -rss_limit_mb.
    leaks=1
    [ "$target" = nbd ] && leaks=0
    REPLICA_FUZZ_TARGET=$target "$binary" -runs="$runs" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=512 -max_len=65536 -detect_leaks=$leaks \
        -artifact_prefix="Fuzz/crashes/$target-" -print_final_stats=1 "Fuzz/Corpus/$target" > "Fuzz/crashes/$target.log" 2>&1 \
        || { echo "FAIL $target: see Fuzz/crashes/$target.log"; tail -30 "Fuzz/crashes/$target.log"; exit 1; }
    after=$(ls "Fuzz/Corpus/$target" | wc -l)
    done_runs=$(grep -o 'Done [0-9]* runs' "Fuzz/crashes/$target.log" | grep -o '[0-9]*' || echo "?")
    echo "PASS $target: $done_runs inputs in $(( $(date +%s) - start )) s, no crash, no hang; corpus $before -> $after"
done
