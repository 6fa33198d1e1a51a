#!/usr/bin/env bash
# Sets up the machine, builds alignpro and runs the main job.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
bash scripts/build.sh
./build/src/alignpro version
