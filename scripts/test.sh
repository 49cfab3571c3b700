#!/usr/bin/env bash
# Builds untangle (scripts/setup.sh) and runs every test suite. Exits non-zero when any test
# fails. BUILD_DIR, BUILD_TYPE and JOBS are passed on to setup.sh (JOBS is also how many suites
# run at a time); UNTANGLE_TEST_DEVICE picks the OpenCL device the tests run on (default: the
# best one, see README.md).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${BUILD_DIR:-build}
# Suites run side by side, one per core: much of a suite's time is single-threaded (kernel
# builds, the host side of plans, files), so on 2 cores the suites take about 0.55 of their
# one-at-a-time wall clock (205 s against 372 s). Every suite keeps its own temporary folder.
jobs=${JOBS:-$(nproc 2>/dev/null || echo 2)}

"$root/scripts/setup.sh"
cd "$root"
echo "test: running the test suites in $build_dir, $jobs at a time" >&2
ctest --test-dir "$build_dir" --output-on-failure -j "$jobs"

# Hardening (UNTANGLE_CI_HARDENING=0 skips it): the suites under ASan + UBSan, then every fuzz
# target for 30 s. See scripts/test-sanitized.sh and scripts/fuzz.sh. Left out: the suites
# that train whole models for tens of seconds (their host code is the model kit's and the
# engine's, which the op, kit and UNIT suites run under the sanitizers), the benchmark
# harness's, and the MPI suite (Open MPI 4.1 itself leaks some 3000 allocations per rank,
# partly from components it has unloaded by then, which no suppression can name). Under ASan
# these take 23-93 s each, one at a time; the rest take about 5 minutes one at a time.
# ASAN_SKIP= runs all (the MPI suite then fails on Open MPI's leaks).
sanitizer_skipped='^test_(lord_eval|bench|overlord|overlord_train|cmivae_train|main_job|mpi_train)$'
if [[ ${UNTANGLE_CI_HARDENING:-1} != 0 ]]; then
  UNTANGLE_HARDENING_TOOLS=1 BUILD_DIR="$build_dir" "$root/scripts/setup.sh"
  ASAN_SKIP=${ASAN_SKIP-$sanitizer_skipped} "$root/scripts/test-sanitized.sh"
  "$root/scripts/fuzz.sh" 30
fi
