#!/usr/bin/env bash
# Times the models suite of two untangle builds and PyTorch's reference steps side by side, in
# ROUNDS rounds of BEFORE, AFTER and PyTorch (L1, VGG, UNIT), the order reversed every other
# round, and prints the load average before every part.
#
#   benchmarks/side_by_side.sh BEFORE_BINARY AFTER_BINARY [OUT_DIR] [REPEATS] [ROUNDS]
#
# OUT_DIR (default: a new temporary folder) keeps the JSON lines of every part; REPEATS
# (default 5) is the timed steps per case, after 2 warm-up steps; ROUNDS (default 4). Prints a
# markdown table: each engine's median over the rounds (of its per-round medians), and the
# median, range and count below 1 of the per-round ratios AFTER / BEFORE and AFTER / PyTorch.
# Ratios are taken within a round because on a shared or virtual machine whole processes run
# fast or slow by a third for minutes at a time; parts measured a minute apart are compared,
# not whole runs.
set -euo pipefail

usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; }
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
rounds=${5:-4}
for b in "$before" "$after"; do
  [[ -x $b ]] || { echo "side_by_side: $b is not an executable untangle binary" >&2; exit 2; }
done
[[ $rounds =~ ^[1-9][0-9]*$ ]] || { echo "side_by_side: ROUNDS must be a positive whole number, got '$rounds'" >&2; exit 2; }
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
torch_all() { # ROUND
  torch_step "torch_l1.$1" lord_step.py --preset small --stage 1,2 --recon l1
  torch_step "torch_vgg.$1" lord_step.py --preset small --stage 1,2 --recon vgg
  torch_step "torch_unit.$1" unit_step.py --preset small
}

for ((r = 1; r <= rounds; r++)); do
  if ((r % 2)); then
    engine "before.$r" "$before"
    engine "after.$r" "$after"
    torch_all "$r"
  else
    torch_all "$r"
    engine "after.$r" "$after"
    engine "before.$r" "$before"
  fi
done
echo "side_by_side: done (load $(load)); JSON lines in $out" >&2

"$python" - "$out" "$rounds" <<'EOF'
import json, math, statistics, sys

out, rounds = sys.argv[1], int(sys.argv[2])

def medians(*names):
    found = {}
    for name in names:
        for line in open(f"{out}/{name}.jsonl"):
            row = json.loads(line)
            found[row["case"]] = row["ms"]["median"]
    return found

per_round = [{"before": medians(f"before.{r}"), "after": medians(f"after.{r}"),
              "torch": medians(f"torch_l1.{r}", f"torch_vgg.{r}", f"torch_unit.{r}")} for r in range(1, rounds + 1)]

def median_of(values):
    return statistics.median(values) if values else math.nan

def ratio_text(values):
    if not values:
        return "-"
    below = sum(v < 1 for v in values)
    return f"{median_of(values):.2f} ({min(values):.2f}-{max(values):.2f}; below 1 in {below} of {len(values)})"

print(f"| case | before ms | after ms | PyTorch ms | after / before | after / PyTorch |")
print("|---|---|---|---|---|---|")
for case in per_round[0]["after"]:
    got = {who: [r[who][case] for r in per_round if case in r[who]] for who in ("before", "after", "torch")}
    vs_before = [r["after"][case] / r["before"][case] for r in per_round if case in r["before"]]
    vs_torch = [r["after"][case] / r["torch"][case] for r in per_round if case in r["torch"]]
    print(f"| {case} | {median_of(got['before']):.0f} | {median_of(got['after']):.0f} | {median_of(got['torch']):.0f} | "
          f"{ratio_text(vs_before)} | {ratio_text(vs_torch)} |")
print(f"\nMedians over {rounds} rounds of each part's median step; ratios per round, median (min-max; the rounds\n"
      "where AFTER was the faster): a change that helps is below 1 in most rounds, not only in its median.")
EOF
