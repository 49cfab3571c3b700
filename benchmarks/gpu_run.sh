#!/usr/bin/env bash
# Every figure issue 11 asks of a GPU, in one run on a lent device machine: untangle's peak,
# GEMM, ops and models suites on the GPU (the official LORD step at batch 128 included), the
# PyTorch reference steps on CUDA with TF32 off, and the report that pairs them.
#
#   benchmarks/gpu_run.sh OUT_DIR [SECONDS]
#
# Runs in the project's root with untangle on PATH (on the device machine: stage a build with
# ../shared/device/stage.sh, carry .device and start the command with `. .device/env.sh;`).
# SECONDS (default 420) bounds the whole run: each part gets a share and is stopped with what it
# has written when its share is spent, so a slow part costs its own figures only. OUT_DIR gets
# machine.txt (GPU, driver, load average before each part), untangle.jsonl and torch.jsonl (the
# figures), report.md and report.html (`untangle bench report`; its '% of SGEMM' column gives
# each convolution against the fastest square SGEMM the device measured) and a log per part.
#
# Environment: DEVICES (default gpu) and TORCH_DEVICE (default cuda) select where each side
# runs; PYTHON (default python3) is an interpreter with PyTorch; QUICK=1 passes --quick and
# times only the small presets, which is how the script is checked on a machine without a GPU
# (DEVICES=cpu TORCH_DEVICE=cpu QUICK=1 PYTHON=/usr/bin/python3).
set -uo pipefail

usage() { sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; }
if [[ ${1:-} == -h || ${1:-} == --help ]]; then
  usage
  exit 0
fi
[[ $# -ge 1 ]] || { usage >&2; exit 2; }
out=$1
budget=${2:-420}
[[ $budget =~ ^[1-9][0-9]*$ ]] || { echo "gpu_run: SECONDS must be a positive whole number, got '$budget'" >&2; exit 2; }
devices=${DEVICES:-gpu} torch_device=${TORCH_DEVICE:-cuda} quick=${QUICK:-0}
command -v untangle >/dev/null || { echo "gpu_run: untangle is not on PATH (source .device/env.sh first)" >&2; exit 2; }
reference=$(cd "$(dirname "${BASH_SOURCE[0]}")/reference" && pwd)
python=${PYTHON:-python3}
mkdir -p "$out"
start=$SECONDS

note() { echo "gpu_run: $* (at $((SECONDS - start)) s, load $(cut -d' ' -f1-3 /proc/loadavg))" | tee -a "$out/machine.txt" >&2; }
# part SHARE_PERCENT NAME COMMAND...: runs COMMAND for at most its share of the budget left
# when it starts, its output in NAME.log; a part that fails or times out is noted, not fatal.
part() {
  local share=$1 name=$2
  shift 2
  local left=$((budget - (SECONDS - start)))
  local limit=$((left * share / 100))
  if ((limit < 5)); then
    note "$name skipped: the budget is spent"
    return
  fi
  note "$name (up to $limit s)"
  timeout --signal=INT --kill-after=10 "$limit" "$@" > "$out/$name.log" 2>&1
  local rc=$?
  ((rc == 0)) || note "$name ended with status $rc$( ((rc == 124)) && echo ': stopped at its share of the time')"
}

{
  date -u
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>/dev/null || echo "(no nvidia-smi)"
  untangle devices 2>&1
} > "$out/machine.txt"

size_flag=()
torch_presets=small,default
if [[ $quick == 1 ]]; then
  size_flag=(--quick)
  torch_presets=small
fi
# The device's own figures first: they are what the issue asks for, the reference only pairs.
# gemm before ops in one run, so that the convolutions get their share of the SGEMM peak.
part 30 untangle-kernels untangle bench --devices "$devices" --suite peak,gemm,ops "${size_flag[@]}" -o "$out/untangle-kernels.jsonl"
part 45 untangle-models untangle bench --devices "$devices" --suite models "${size_flag[@]}" -o "$out/untangle-models.jsonl"
# PyTorch: each preset at its harness batch (32), the official batch 128, pixel L1, UNIT.
part 30 torch-lord "$python" "$reference/lord_step.py" --device "$torch_device" --preset "$torch_presets" --stage 1,2 -o "$out/torch-lord.jsonl"
part 25 torch-lord-l1 "$python" "$reference/lord_step.py" --device "$torch_device" --preset small --stage 1,2 --recon l1 -o "$out/torch-lord-l1.jsonl"
[[ $quick == 1 ]] || part 40 torch-lord-b128 "$python" "$reference/lord_step.py" --device "$torch_device" --preset default --batch 128 --stage 1,2 -o "$out/torch-lord-b128.jsonl"
part 30 torch-unit "$python" "$reference/unit_step.py" --device "$torch_device" --preset small -o "$out/torch-unit.jsonl"
[[ $quick == 1 ]] || part 100 torch-unit-default "$python" "$reference/unit_step.py" --device "$torch_device" --preset default --batch 1,8 -o "$out/torch-unit-default.jsonl"

cat "$out"/untangle-*.jsonl > "$out/untangle.jsonl" 2>/dev/null
cat "$out"/torch-*.jsonl > "$out/torch.jsonl" 2>/dev/null
note "report"
reports=()
for f in "$out/untangle.jsonl" "$out/torch.jsonl"; do [[ -s $f ]] && reports+=("$f"); done
((${#reports[@]})) && untangle bench report "${reports[@]}" -o "$out/report.html" --markdown "$out/report.md" \
  > "$out/report.log" 2>&1 || note "the report failed (report.log)"
note "done"
