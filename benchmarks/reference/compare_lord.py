#!/usr/bin/env python3
"""Puts the per-epoch losses of untangle's LORD and of lord_train.py side by side.

Each side is a run folder or its losses.tsv (the columns of models/kit_trainer.c: stage,
epoch, step, loss; one line per step), or several separated by commas (runs with different
seeds): then each epoch shows the mean over the runs and their range, since one run of either
framework carries its own seed's noise. The relative difference is (untangle - torch) / torch.

  /usr/bin/python3 benchmarks/reference/compare_lord.py /tmp/u-run /tmp/t-run
  /usr/bin/python3 benchmarks/reference/compare_lord.py /tmp/u1,/tmp/u2,/tmp/u3 /tmp/t1,/tmp/t2,/tmp/t3

The last lines give the final epoch's gap, the gap of the mean of the last three epochs (less
noisy), and whether the final gap is within --tolerance percent (the issue's goal: 5).
"""
import argparse
import json
import os
import sys


def epoch_means(path, stage):
    """{epoch: mean loss} of one stage of one losses.tsv (or run folder holding one)."""
    if os.path.isdir(path):
        path = os.path.join(path, "losses.tsv")
    sums, counts = {}, {}
    with open(path) as f:
        header = f.readline().rstrip("\n").split("\t")
        if header[:3] != ["stage", "epoch", "step"] or len(header) < 4:
            sys.exit(f"{path}: header {header}, expected stage, epoch, step, loss")
        for line in f:
            cols = line.split("\t")
            if cols[0] != str(stage):
                continue
            e = int(cols[1])
            sums[e] = sums.get(e, 0.0) + float(cols[3])
            counts[e] = counts.get(e, 0) + 1
    if not sums:
        sys.exit(f"{path}: no stage-{stage} lines")
    return {e: sums[e] / counts[e] for e in sums}


def side(paths, stage):
    """Per epoch present in every run: (mean, min, max) over the runs."""
    runs = [epoch_means(p, stage) for p in paths.split(",") if p]
    epochs = sorted(set.intersection(*(set(r) for r in runs)))
    return {e: (sum(r[e] for r in runs) / len(runs), min(r[e] for r in runs), max(r[e] for r in runs))
            for e in epochs}, len(runs)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("untangle", help="untangle run folder(s) or losses.tsv, comma-separated")
    ap.add_argument("torch", help="lord_train.py run folder(s) or losses.tsv, comma-separated")
    ap.add_argument("--stage", type=int, default=1)
    ap.add_argument("--tolerance", type=float, default=5.0, help="percent (default 5)")
    ap.add_argument("--json", help="also write the table and gaps to this file")
    a = ap.parse_args()
    u, nu = side(a.untangle, a.stage)
    t, nt = side(a.torch, a.stage)
    epochs = sorted(set(u) & set(t))
    if not epochs:
        sys.exit("the two sides share no epoch")
    ranged = nu > 1 or nt > 1
    print(f"stage {a.stage}: per-epoch mean loss, untangle ({nu} run{'s' * (nu > 1)}) vs PyTorch "
          f"({nt} run{'s' * (nt > 1)})" + (", mean [min, max] over runs" if ranged else ""))
    w = 26 if ranged else 10
    print(f"{'epoch':>5}  {'untangle':>{w}}  {'pytorch':>{w}}  {'diff %':>7}")
    rows = []

    def cell(v):
        return f"{v[0]:.5f} [{v[1]:.5f}, {v[2]:.5f}]" if ranged else f"{v[0]:.5f}"

    for e in epochs:
        diff = 100.0 * (u[e][0] - t[e][0]) / t[e][0]
        rows.append({"epoch": e + 1, "untangle": u[e], "torch": t[e], "diff_pct": diff})
        print(f"{e + 1:>5}  {cell(u[e]):>{w}}  {cell(t[e]):>{w}}  {diff:>+7.2f}")
    last = epochs[-1]
    final = 100.0 * (u[last][0] - t[last][0]) / t[last][0]
    tail = epochs[-3:]
    tail_u = sum(u[e][0] for e in tail) / len(tail)
    tail_t = sum(t[e][0] for e in tail) / len(tail)
    tail_gap = 100.0 * (tail_u - tail_t) / tail_t
    print(f"final epoch {last + 1}: untangle {u[last][0]:.5f}, PyTorch {t[last][0]:.5f}, gap {final:+.2f}%")
    print(f"last {len(tail)} epochs: untangle {tail_u:.5f}, PyTorch {tail_t:.5f}, gap {tail_gap:+.2f}%")
    ok = abs(final) <= a.tolerance
    print(f"within {a.tolerance:g}%: {'yes' if ok else 'no'}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"stage": a.stage, "untangle_runs": nu, "torch_runs": nt, "epochs": rows,
                       "final_gap_pct": final, "tail_gap_pct": tail_gap, "within_tolerance": ok}, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
