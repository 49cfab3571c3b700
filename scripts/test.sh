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

# Hardening (UNTANGLE_CI_HARDENING=0 skips it): a subset of the suites under ASan + UBSan, then
# every fuzz target for 30 s. See scripts/test-sanitized.sh and scripts/fuzz.sh. The subset is
# everything that parses files or runs the program, plus the engine's own host code (runtime,
# plan, autograd, a whole MLP); the op suites are left out because under ASan PoCL's kernel
# compiles with a cold cache take most of the time (about 10 minutes for all suites on 2
# cores), and their host code is the same launch path test_mlp exercises; except the
# convolution paths and the fused norms, whose host code (the host convolution, its threads)
# is their own. ASAN_TESTS=. runs all.
hardening_suites='^test_(bad_input|crash_safety|store|dataset|domains|jpeg|data_cli|cli|runtime|plan|autograd|mlp|errors|synth|host_threads|ops_conv_paths|ops_norm_fused|kit_config|kit_trainer|unit_train)$'
if [[ ${UNTANGLE_CI_HARDENING:-1} != 0 ]]; then
  UNTANGLE_HARDENING_TOOLS=1 BUILD_DIR="$build_dir" "$root/scripts/setup.sh"
  ASAN_TESTS=${ASAN_TESTS:-$hardening_suites} "$root/scripts/test-sanitized.sh"
  "$root/scripts/fuzz.sh" 30
fi
