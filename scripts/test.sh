#!/usr/bin/env bash
# Builds untangle (scripts/setup.sh) and runs every test suite. Exits non-zero when any test
# fails. BUILD_DIR, BUILD_TYPE and JOBS are passed on to setup.sh; UNTANGLE_TEST_DEVICE picks
# the OpenCL device the tests run on (default: the best one, see README.md).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${BUILD_DIR:-build}

"$root/scripts/setup.sh"
cd "$root"
echo "test: running the test suites in $build_dir" >&2
ctest --test-dir "$build_dir" --output-on-failure
