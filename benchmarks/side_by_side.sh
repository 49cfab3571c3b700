#!/usr/bin/env bash
# Times the models suite of two untangle builds and PyTorch's reference steps side by side in
# one run, so that a change to the engine is judged against the engine before it and against
# PyTorch under the same conditions. The order is BEFORE, AFTER, PyTorch (L1, VGG, UNIT),
# AFTER, BEFORE: each engine is measured once early and once late, bracketing PyTorch, and the
# load average is printed before every part (a figure taken while other work loads the
# machine is not evidence).
#
#   benchmarks/side_by_side.sh BEFORE_BINARY AFTER_BINARY [OUT_DIR] [REPEATS]
#
# OUT_DIR (default: a new temporary folder) keeps the JSON lines of every part; REPEATS (default
# 5) is the timed steps per case, after 2 warm-up steps. Prints a markdown table: each engine's
# two medians, PyTorch's median and AFTER / PyTorch for both of AFTER's runs.
set -euo pipefail

usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; }
if [[ ${1:-} == -h || ${1:-} == --help ]]; then
  usage
  exit 0
fi
if [[ $# -lt 2 ]]; then
  usage >&2
  exit 2
fi
before=$1 after=$2
out=${3:-$(mktemp -d "${TMPDIR:-/tmp}/side-by-side-XXXXXX")}
repeats=${4:-5}
for b in "$before" "$after"; do
  [[ -x $b ]] || { echo "side_by_side: $b is not an executable untangle binary" >&2; exit 2; }
done
reference=$(cd "$(dirname "${BASH_SOURCE[0]}")/reference" && pwd)
python=/usr/bin/python3 # Debian's python3-torch installs for this interpreter
mkdir -p "$out"

load() { cut -d' ' -f1-3 /proc/loadavg; }
engine() { # NAME BINARY
  echo "side_by_side: $1 (load $(load))" >&2
  "$2" bench --devices cpu --suite models --quick --repeats "$repeats" --warmup 2 -o "$out/$1.jsonl" >/dev/null
}
torch_step() { # NAME SCRIPT ARGS...
  local name=$1 script=$2
  shift 2
  echo "side_by_side: $name (load $(load))" >&2
  "$python" "$reference/$script" "$@" --repeats "$repeats" --warmup 2 -o "$out/$name.jsonl" >/dev/null
}

engine before1 "$before"
engine after1 "$after"
torch_step torch_l1 lord_step.py --preset small --stage 1,2 --recon l1
torch_step torch_vgg lord_step.py --preset small --stage 1,2 --recon vgg
torch_step torch_unit unit_step.py --preset small
engine after2 "$after"
engine before2 "$before"
echo "side_by_side: done (load $(load)); JSON lines in $out" >&2

"$python" - "$out" <<'EOF'
import json, math, sys

out = sys.argv[1]

def medians(*names):
    found = {}
    for name in names:
        for line in open(f"{out}/{name}.jsonl"):
            row = json.loads(line)
            found[row["case"]] = row["ms"]["median"]
    return found

before1, before2, after1, after2 = (medians(n) for n in ("before1", "before2", "after1", "after2"))
torch = medians("torch_l1", "torch_vgg", "torch_unit")
nan = math.nan
print("| case | before ms (early, late) | after ms (early, late) | PyTorch ms | after / PyTorch |")
print("|---|---|---|---|---|")
for case in after1:
    t = torch.get(case, nan)
    a1, a2 = after1[case], after2.get(case, nan)
    print(f"| {case} | {before1.get(case, nan):.0f}, {before2.get(case, nan):.0f} | {a1:.0f}, {a2:.0f} | {t:.0f} | "
          f"{a1 / t:.2f}, {a2 / t:.2f} |")
EOF
