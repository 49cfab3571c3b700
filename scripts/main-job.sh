#!/usr/bin/env bash
# The main job: builds untangle (scripts/setup.sh), lists the OpenCL devices and trains the
# two-spirals MLP, writing everything into one output folder.
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

echo "main-job: training the two-spirals MLP" >&2
"$exe" train spirals --out "$out" | tee "$out/train-spirals.txt"

echo "main-job: results are in $out (devices.txt, devices.json, train-spirals.txt, checkpoint.safetensors)" >&2
