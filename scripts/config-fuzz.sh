#!/usr/bin/env bash
# A campaign of the grammar-based differential test of `replctl dump` against `drbdadm dump`
# on a seed range of your choosing (ConfigGrammarFuzzTests; each difference is minimized).
# Usage: scripts/config-fuzz.sh FIRST COUNT   (needs drbd-utils and a debug build with tests)
set -euo pipefail
cd "$(dirname "$0")/.."
export CONFIG_FUZZ_FIRST="${1:?first seed}" CONFIG_FUZZ_COUNT="${2:?count}"
export REPLCTL="$PWD/.build/debug/replctl"
swift build --build-tests >/dev/null
swift test --skip-build --filter ConfigGrammarFuzzTests 2>&1 | grep -E "^✘ Test .*recorded|seed [0-9]+:|^(--- |resource|    |})|Test run with" || true
