#!/usr/bin/env bash
# Sets up the machine, builds alignpro and runs every test: unit, MPI (1, 2 and 4 ranks),
# end-to-end, formatting, and the analysis suite.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
bash scripts/build.sh
jobs=$(nproc 2>/dev/null || echo 2)
ctest --test-dir build --output-on-failure -j "$jobs"
