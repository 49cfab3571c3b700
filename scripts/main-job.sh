#!/usr/bin/env bash
# The main job: builds untangle (scripts/setup.sh), lists the OpenCL devices, renders the
# built-in data set, trains LORD (both stages) on it, trains the plain autoencoder (LORD without
# the content noise and decay) with the same budget, and evaluates LORD beside the autoencoder
# and the baselines on the same pairs, writing the runs, the translation grid, the evaluation
# (eval.json) and logs into one output folder. On a GPU the official widths at 64x64; otherwise
# the small preset at 32x32, sized to finish in about 14 minutes on 2 quiet CPU cores.
#
#   ./scripts/main-job.sh [OUT_DIR]     (default OUT_DIR: ./untangle-out)
#
#   UNTANGLE_DEVICE  the device to train on (an index, "gpu", "cpu" or part of a name)
#   BUILD_DIR, BUILD_TYPE, JOBS are passed on to setup.sh.
#   UNTANGLE_EXE     an untangle program to use instead of building one (skips setup.sh)
#   MAIN_JOB_SEED    the seed of both trainings (default 1); benchmarks/lord_vs_autoencoder.sh
#                    runs the job once per seed to compare LORD and the autoencoder over seeds
#   MAIN_JOB_SCALE   "tiny": the same pipeline in seconds, on 6 classes, one epoch per stage and
#                    a judge that need not be accurate (tests/test_main_job.c runs it so)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${BUILD_DIR:-build}
out=${1:-./untangle-out}

if [[ -n ${UNTANGLE_EXE:-} ]]; then
  exe=$UNTANGLE_EXE
else
  "$root/scripts/setup.sh"
  # Resolve the build folder before the output folder, which is relative to the caller.
  case $build_dir in /*) exe=$build_dir/apps/untangle ;; *) exe=$root/$build_dir/apps/untangle ;; esac
fi
[[ -x $exe ]] || { echo "main-job: $exe was not built" >&2; exit 1; }

mkdir -p "$out"
echo "main-job: OpenCL devices" >&2
"$exe" devices | tee "$out/devices.txt"
"$exe" devices --json > "$out/devices.json"

gpu=$("$exe" devices --json | grep -c '"type": *"gpu"' || true)
# CPU: 100 + 50 epochs of 16 steps; stage 2 needs that many to keep each class's colour in the
# encoders (10 epochs of it turned every class into the same grey blob). Content codes of 128
# (the paper's size, not the small preset's 32) with noise 0.5 (not 1): on this set the stage-1
# content embeddings stay at chance for the class either way, and the lower noise lets the
# generator reconstruct and translate as well as the autoencoder (docs/lord.md, "The main job's
# settings").
judge=()
if [[ ${MAIN_JOB_SCALE:-} == tiny ]]; then
  synth=(--classes 6 --views 8 --size 16); train=(--preset small --content-dim 16 --content-noise 0.5 --batch 8 --epochs1 1 --epochs2 1 --test-classes 1)
  judge=(--pairs 40 --probe-samples 24 --judge-epochs 1 --judge-min-accuracy 0)
elif [[ ${UNTANGLE_DEVICE:-best} != cpu && $gpu -gt 0 ]]; then
  synth=(--classes 100 --views 96 --size 64); train=(--preset default --batch 32 --epochs1 20 --epochs2 10)
else
  synth=(--classes 24 --views 24 --size 32)
  train=(--preset small --content-dim 128 --content-noise 0.5 --epochs1 100 --epochs2 50)
fi
train+=(--seed "${MAIN_JOB_SEED:-1}")
echo "main-job: rendering the built-in data set (${synth[*]})" >&2
"$exe" data synth "${synth[@]}" -o "$out/synth.dat"
echo "main-job: training LORD (${train[*]})" >&2
"$exe" train lord --data "$out/synth.dat" --out "$out/lord" --device "${UNTANGLE_DEVICE:-best}" "${train[@]}" |
  tee "$out/train-lord.txt"
cp "$out/lord/grid.jpg" "$out/translation-grid.jpg"
echo "main-job: training the plain autoencoder with the same budget (no content noise or decay)" >&2
"$exe" train lord --data "$out/synth.dat" --out "$out/autoencoder" --device "${UNTANGLE_DEVICE:-best}" "${train[@]}" \
  --content-noise 0 --content-decay 0 | tee "$out/train-autoencoder.txt"
echo "main-job: evaluating LORD beside the autoencoder and the baselines" >&2
"$exe" eval "$out/lord" --data "$out/synth.dat" --baseline "$out/autoencoder" --device "${UNTANGLE_DEVICE:-best}" \
  "${judge[@]}" | tee "$out/eval.txt"
cp "$out/lord/eval.json" "$out/eval.json"
echo "main-job: results are in $out: devices.txt, synth.dat, lord/ and autoencoder/ (checkpoint,"
echo "          losses.tsv, samples), translation-grid.jpg (first row content sources, first column"
echo "          class sources), eval.json and eval.txt (content transfer beside the autoencoder and the"
echo "          baselines, leakage and informativeness probes, reconstruction, class transfer)" >&2
