#!/usr/bin/env bash
# The main job: builds untangle (scripts/setup.sh), lists the OpenCL devices, renders the
# built-in data set, trains LORD (both stages) on it and evaluates the run, writing the run, its
# translation grid, the evaluation (eval.json) and logs into one output folder. On a GPU the
# official widths at 64x64; otherwise the small preset at 32x32, sized to finish in about 10
# minutes on 2 CPU cores.
#
#   ./scripts/main-job.sh [OUT_DIR]     (default OUT_DIR: ./untangle-out)
#
#   UNTANGLE_DEVICE  the device to train on (an index, "gpu", "cpu" or part of a name)
#   BUILD_DIR, BUILD_TYPE, JOBS are passed on to setup.sh.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${BUILD_DIR:-build}
out=${1:-./untangle-out}

"$root/scripts/setup.sh"

# Resolve the build folder before the output folder, which is relative to the caller.
case $build_dir in /*) exe=$build_dir/apps/untangle ;; *) exe=$root/$build_dir/apps/untangle ;; esac
[[ -x $exe ]] || { echo "main-job: $exe was not built" >&2; exit 1; }

mkdir -p "$out"
echo "main-job: OpenCL devices" >&2
"$exe" devices | tee "$out/devices.txt"
"$exe" devices --json > "$out/devices.json"

gpu=$("$exe" devices --json | grep -c '"type": *"gpu"' || true)
if [[ ${UNTANGLE_DEVICE:-best} != cpu && $gpu -gt 0 ]]; then
  synth=(--classes 100 --views 96 --size 64); train=(--preset default --batch 32 --epochs1 20 --epochs2 10)
else
  synth=(--classes 24 --views 24 --size 32); train=(--preset small --epochs1 20 --epochs2 10)
fi
echo "main-job: rendering the built-in data set (${synth[*]})" >&2
"$exe" data synth "${synth[@]}" -o "$out/synth.dat"
echo "main-job: training LORD (${train[*]})" >&2
"$exe" train lord --data "$out/synth.dat" --out "$out/lord" --device "${UNTANGLE_DEVICE:-best}" "${train[@]}" |
  tee "$out/train-lord.txt"
cp "$out/lord/grid.jpg" "$out/translation-grid.jpg"
echo "main-job: evaluating the run" >&2
"$exe" eval "$out/lord" --data "$out/synth.dat" --device "${UNTANGLE_DEVICE:-best}" | tee "$out/eval.txt"
cp "$out/lord/eval.json" "$out/eval.json"
echo "main-job: results are in $out: devices.txt, synth.dat, lord/ (checkpoint, losses.tsv, samples),"
echo "          translation-grid.jpg (first row content sources, first column class sources),"
echo "          eval.json and eval.txt (content transfer, leakage probes, reconstruction, class transfer)" >&2
