#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz, UNTANGLE_FUZZ=ON, clang) in build-fuzz and runs
# each one for SECONDS (default 180) on its seeds, two at a time. Exits non-zero when a target
# crashes, leaks or times out; the input that did it is left in build-fuzz/fuzz-crashes/TARGET/
# (reproduce with: build-fuzz/tests/fuzz/fuzz_TARGET FILE). New inputs the fuzzer finds are
# kept in build-fuzz/fuzz-corpus/TARGET/, so a later run goes on from there.
#
#   scripts/fuzz.sh [SECONDS]
#   FUZZ_BUILD_DIR   build folder (default: build-fuzz)
#   FUZZ_TARGETS     the targets to run (default: all of them)
#   FUZZ_JOBS        targets run at once (default: 2)
#   JOBS             parallel build jobs (default: every core)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
seconds=${1:-180}
build_dir=${FUZZ_BUILD_DIR:-build-fuzz}
targets=(${FUZZ_TARGETS:-safetensors dataset jpeg idx program_cache pocl_binary cli})
fuzz_jobs=${FUZZ_JOBS:-2}
jobs=${JOBS:-$(nproc 2>/dev/null || echo 2)}

say() { printf 'fuzz: %s\n' "$*" >&2; }
[[ $seconds =~ ^[1-9][0-9]*$ ]] || { say "SECONDS must be a whole number above 0, not '$seconds'"; exit 2; }
command -v clang >/dev/null 2>&1 || { say "clang is not installed (Debian: apt-get install clang libclang-rt-dev)"; exit 1; }

cd "$root"
say "configuring $build_dir (clang, UNTANGLE_FUZZ=ON)"
CC=clang cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DUNTANGLE_FUZZ=ON -DUNTANGLE_TESTS=OFF >/dev/null
say "building ${targets[*]} with $jobs jobs"
cmake --build "$build_dir" -j "$jobs" --target "${targets[@]/#/fuzz_}" >/dev/null

# The targets write their scratch files under here, never elsewhere.
export TMPDIR="$root/$build_dir/fuzz-tmp"
mkdir -p "$TMPDIR"
# Leaks count as crashes; UBSan stops at the first report as in the sanitized test build.
export ASAN_OPTIONS="detect_leaks=1:intercept_tls_get_addr=0:${ASAN_OPTIONS:-}" # why: scripts/test-sanitized.sh
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"

run_target() {
  local t=$1 corpus="$build_dir/fuzz-corpus/$1" crashes="$build_dir/fuzz-crashes/$1"
  mkdir -p "$corpus" "$crashes"
  # -close_fd_mask=3: the CLI target prints usage errors on every input; libFuzzer and the
  # sanitizers keep their own copy of stderr for their reports.
  "$build_dir/tests/fuzz/fuzz_$t" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 -close_fd_mask=3 \
    -print_final_stats=1 -artifact_prefix="$crashes/" "$corpus" "tests/fuzz/corpus/$t" >"$build_dir/fuzz-$t.log" 2>&1
}

say "running each target for $seconds s, $fuzz_jobs at a time"
declare -A pid_of
failed=()
for t in "${targets[@]}"; do
  while (($(jobs -rp | wc -l) >= fuzz_jobs)); do wait -n || true; done
  run_target "$t" &
  pid_of[$t]=$!
done
for t in "${targets[@]}"; do
  if ! wait "${pid_of[$t]}"; then failed+=("$t"); fi
  log="$build_dir/fuzz-$t.log"
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 || true)
  say "$(printf '%-14s %6s runs in %s s, %s, %s inputs in its corpus' "$t" "${runs:-?}" "$seconds" "${cov:-cov: ?}" \
    "$(find "$build_dir/fuzz-corpus/$t" -type f | wc -l)")"
done
if ((${#failed[@]} > 0)); then
  for t in "${failed[@]}"; do
    say "FAILED: $t (log: $build_dir/fuzz-$t.log, input: $(ls "$build_dir/fuzz-crashes/$t" | head -1))"
    grep -m 3 -E 'ERROR|SUMMARY|fuzz check failed' "$build_dir/fuzz-$t.log" >&2 || true
  done
  exit 1
fi
say "no crash, leak or timeout in ${targets[*]}"
