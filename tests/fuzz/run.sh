#!/usr/bin/env bash
# Fuzzes the GraphQL API with schemathesis (tests/fuzz/fuzz.py): installs the pinned schemathesis
# into a virtualenv outside the clone (scripts/lib.sh, ensure_fuzz_tools), then runs fuzz.py with
# these arguments. Uses the debug draftr binary ($DRAFTR_BIN, else $CARGO_TARGET_DIR/debug/draftr).
#   tests/fuzz/run.sh                    # a few examples per operation, as scripts/test runs it
#   tests/fuzz/run.sh --examples 200     # a longer run by hand; --help for the rest
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh
ensure_fuzz_tools
exec "$FUZZ_VENV/bin/python" tests/fuzz/fuzz.py "$@"
