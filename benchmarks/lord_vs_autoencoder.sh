#!/usr/bin/env bash
# The main job (scripts/main-job.sh) once per seed, then LORD against the plain autoencoder over
# the seeds (benchmarks/lord_vs_autoencoder.py): each seed's LORD and autoencoder share the data,
# split and evaluation pairs, so their difference is paired by seed, and one seed's difference is
# judged against how much the seeds move either model.
#
#   benchmarks/lord_vs_autoencoder.sh OUT SEED...      e.g. OUT 1 2 3 4 5 6
#
#   UNTANGLE_EXE     the untangle program (default: build/apps/untangle of this checkout)
#   UNTANGLE_DEVICE, MAIN_JOB_SCALE are passed on to main-job.sh. A seed whose OUT/seed-N/eval.json
#   exists is not run again, so an interrupted comparison continues where it stopped.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[[ $# -ge 2 ]] || { echo "usage: $0 OUT SEED..." >&2; exit 2; }
out=$1; shift
export UNTANGLE_EXE=${UNTANGLE_EXE:-$root/build/apps/untangle}
[[ -x $UNTANGLE_EXE ]] || { echo "lord_vs_autoencoder: $UNTANGLE_EXE is not built (set UNTANGLE_EXE)" >&2; exit 1; }
mkdir -p "$out"
runs=()
for seed in "$@"; do
  [[ $seed =~ ^[0-9]+$ ]] || { echo "lord_vs_autoencoder: seed '$seed' is not a whole number" >&2; exit 2; }
  dir=$out/seed-$seed
  if [[ ! -f $dir/eval.json ]]; then
    echo "lord_vs_autoencoder: seed $seed, load average $(cut -d' ' -f1-3 /proc/loadavg), $(date +%T)" >&2
    MAIN_JOB_SEED=$seed bash "$root/scripts/main-job.sh" "$dir" > "$dir.log" 2>&1 ||
      { echo "lord_vs_autoencoder: seed $seed failed, see $dir.log" >&2; exit 1; }
  fi
  runs+=("$dir/lord")
done
python3 "$root/benchmarks/lord_vs_autoencoder.py" "${runs[@]}" --json "$out/summary.json" | tee "$out/summary.txt"
