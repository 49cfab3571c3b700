#!/usr/bin/python3
"""LORD against the plain autoencoder over several seeds of the main job.

Reads the eval.json that `untangle eval LORD --baseline AE` wrote in each run folder given (one
per seed: the seed-N/lord folders that benchmarks/lord_vs_autoencoder.sh writes) and prints, per
seed and over the seeds, the foreground content-transfer error of LORD's stage 2 and of the
autoencoder on the same pairs, their paired difference, the best of the four baselines, and
the share of class transfers judged as the target class.

One seed's difference says little: the runs of one model differ between seeds by more than
the two models differ within a seed. The paired differences (LORD - autoencoder, the same
seed, data split and pairs) are summarised by their mean, standard deviation and a two-sided
95% interval from Student's t; "beyond the seed spread" means that interval excludes zero.

    benchmarks/lord_vs_autoencoder.py OUT/seed-*/lord [--json FILE]
"""
import argparse
import json
import math
import os
import struct
import sys

# Two-sided 95% quantiles of Student's t for 1..30 degrees of freedom (standard tables).
T95 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
       2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
       2.060, 2.056, 2.052, 2.048, 2.045, 2.042]
BASELINES = ("class_agnostic", "content_agnostic", "content_copy", "background")


def fail(msg):
    sys.exit(f"lord_vs_autoencoder: {msg}")


def field(d, path, where):
    for key in path:
        if not isinstance(d, dict) or key not in d or d[key] is None:
            fail(f"{where}: no field {'.'.join(path)} (expected the eval.json of "
                 f"'untangle eval RUN --baseline AE' on a LORD run with stage 2)")
        d = d[key]
    return d


def lord_config(run):
    """The lord.config metadata of RUN/checkpoint.safetensors (a safetensors header: 8 bytes of
    length, then JSON)."""
    path = os.path.join(run, "checkpoint.safetensors")
    try:
        with open(path, "rb") as f:
            n = struct.unpack("<Q", f.read(8))[0]
            meta = json.loads(f.read(n)).get("__metadata__", {})
        return json.loads(meta["lord.config"])
    except (OSError, ValueError, KeyError, struct.error) as e:
        fail(f"{path}: cannot read lord.config from the checkpoint's header ({e})")


def baseline_folder(run, recorded_run, recorded_baseline):
    """eval.json records both runs as `untangle eval` was given them, relative to where it ran;
    that folder is the LORD run's real path less the recorded one, so the summary can be made
    from anywhere."""
    if os.path.isabs(recorded_baseline):
        return recorded_baseline
    real, rec = os.path.realpath(run).split(os.sep), os.path.normpath(recorded_run).split(os.sep)
    if os.path.isabs(recorded_run) or real[-len(rec):] != rec:
        fail(f"{run}: eval.json records the run as {recorded_run}, so the baseline's {recorded_baseline} "
             f"cannot be placed (evaluate with absolute paths)")
    return os.path.join(os.sep.join(real[:-len(rec)]) or os.sep, recorded_baseline)


def read_run(run):
    if not os.path.isdir(run):
        fail(f"{run}: not a run folder (expected a LORD run evaluated with 'untangle eval RUN --baseline AE')")
    path = os.path.join(run, "eval.json")
    try:
        with open(path) as f:
            d = json.load(f)
    except (OSError, ValueError) as e:
        fail(f"{path}: {e}")
    config = lord_config(run)
    baseline = lord_config(baseline_folder(run, field(d, ("run",), path), field(d, ("baseline_run", "run"), path)))
    # The comparison is fair only where the two runs differ in the code regularisation alone.
    differ = sorted(k for k in set(config) | set(baseline)
                    if k not in ("content_std", "content_decay") and config.get(k) != baseline.get(k))
    if differ:
        fail(f"{path}: the baseline run differs from LORD's in {', '.join(differ)} (expected only content_std "
             f"and content_decay to differ)")
    row = {"run": run, "seed": config["seed"], "lord_noise": config["content_std"],
           "baseline_noise": baseline["content_std"]}
    for part in ("seen_classes", "unseen_classes"):
        ct = field(d, ("content_transfer", part), path)
        row[part] = {
            "lord": field(ct, ("stage2", "foreground_l1"), path),
            "autoencoder": field(ct, ("baseline_run", "foreground_l1"), path),
            "best_baseline": min(field(ct, ("baselines", b, "foreground_l1"), path) for b in BASELINES),
            "pairs": field(ct, ("pairs",), path),
        }
    row["judged"] = {
        "lord": field(d, ("class_transfer", "stage2", "judged_target_class"), path),
        "autoencoder": field(d, ("class_transfer", "baseline_run", "judged_target_class"), path),
        "judge": field(d, ("class_transfer", "judge_heldout_accuracy"), path),
    }
    return row


def spread(values):
    """The sample standard deviation (0 for one value)."""
    n = len(values)
    mean = sum(values) / n
    return math.sqrt(sum((x - mean) ** 2 for x in values) / (n - 1)) if n > 1 else 0.0


def paired(diffs):
    n = len(diffs)
    mean = sum(diffs) / n
    if n < 2:
        return {"n": n, "mean": mean, "sd": None, "ci95": None}
    sd = spread(diffs)
    half = T95[min(n - 1, len(T95)) - 1] * sd / math.sqrt(n)
    return {"n": n, "mean": mean, "sd": sd, "ci95": [mean - half, mean + half]}


def summarise(rows, key, lower_is_better):
    lord = [r[key]["lord"] for r in rows]
    ae = [r[key]["autoencoder"] for r in rows]
    s = paired([a - b for a, b in zip(lord, ae)])
    s["lord_wins"] = sum((a < b) if lower_is_better else (a > b) for a, b in zip(lord, ae))
    s["lord_mean"], s["autoencoder_mean"] = sum(lord) / len(lord), sum(ae) / len(ae)
    s["lord_seed_sd"], s["autoencoder_seed_sd"] = spread(lord), spread(ae)
    if s["ci95"] is None:
        s["verdict"] = "one seed: no spread to compare with"
    elif s["ci95"][1] < 0 or s["ci95"][0] > 0:
        better = (s["mean"] < 0) == lower_is_better
        s["verdict"] = f"LORD {'better' if better else 'worse'}, beyond the seed spread (95% interval excludes 0)"
    else:
        s["verdict"] = "within the seed spread (95% interval includes 0)"
    return s


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", help="LORD run folders (or eval.json files), one per seed")
    ap.add_argument("--json", help="also write the per-seed rows and the summaries here")
    a = ap.parse_args()
    rows = [read_run(r) for r in a.runs]
    seeds = [r["seed"] for r in rows]
    if len(set(seeds)) != len(seeds):
        fail(f"the runs' seeds repeat ({', '.join(seeds)}): each seed may count once")

    print("foreground content-transfer L1 of stage 2 (lower is better) and class transfer judged as the target")
    print(f"{'run':36s} {'seed':>4s} {'seen: LORD':>10s} {'AE':>8s} {'diff':>8s} {'best bl':>8s}  "
          f"{'unseen: LORD':>12s} {'AE':>8s} {'diff':>8s} {'best bl':>8s}  {'judged: LORD':>12s} {'AE':>6s} {'judge':>6s}")
    for r in rows:
        s, u, j = r["seen_classes"], r["unseen_classes"], r["judged"]
        print(f"{r['run'][-36:]:36s} {r['seed']:>4s} {s['lord']:10.4f} {s['autoencoder']:8.4f} {s['lord'] - s['autoencoder']:+8.4f} "
              f"{s['best_baseline']:8.4f}  {u['lord']:12.4f} {u['autoencoder']:8.4f} {u['lord'] - u['autoencoder']:+8.4f} "
              f"{u['best_baseline']:8.4f}  {j['lord']:12.3f} {j['autoencoder']:6.3f} {j['judge']:6.3f}")

    summary = {"seen_classes": summarise(rows, "seen_classes", True),
               "unseen_classes": summarise(rows, "unseen_classes", True),
               "judged_target_class": summarise(rows, "judged", False)}
    print(f"\nover {len(rows)} seeds: LORD - autoencoder, paired by seed")
    for name, s in summary.items():
        ci = "-" if s["ci95"] is None else f"[{s['ci95'][0]:+.4f}, {s['ci95'][1]:+.4f}]"
        sd = "-" if s["sd"] is None else f"{s['sd']:.4f}"
        print(f"  {name:20s} LORD {s['lord_mean']:.4f} (seed sd {s['lord_seed_sd']:.4f}), "
              f"AE {s['autoencoder_mean']:.4f} (seed sd {s['autoencoder_seed_sd']:.4f}); "
              f"difference {s['mean']:+.4f}, sd {sd}, 95% {ci}; LORD ahead in {s['lord_wins']} of {s['n']}: {s['verdict']}")
    beaten = [r["run"] for r in rows if r["seen_classes"]["lord"] >= r["seen_classes"]["best_baseline"]]
    print(f"  LORD's seen-class error below the best of the four baselines in {len(rows) - len(beaten)} of {len(rows)} seeds")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"rows": rows, "summary": summary}, f, indent=1)


if __name__ == "__main__":
    main()
