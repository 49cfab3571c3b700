#!/usr/bin/env python3
"""Each convolution of the ops suite as a share of the device's measured SGEMM peak.

The bench report's "% of peak" compares with the FMA micro-kernel's peak; issue 11 asks for
the convolutions against what SGEMM itself reaches on the device. This takes the fastest square
SGEMM of the gemm suite (the highest median GFLOP/s among the sgemm.square cases) per device
and prints, for every conv.* case of the ops suite on that device, its median GFLOP/s and that
figure over the SGEMM peak, as a markdown table. Standard library only.

  python3 benchmarks/conv_share.py untangle.jsonl [more.jsonl ...]
"""
import json
import sys


def read(paths):
    rows = []
    for path in paths:
        with open(path) as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as e:
                    sys.exit(f"conv_share: {path}:{number}: not a JSON line ({e.msg})")
    return rows


def main():
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if len(sys.argv) >= 2 else 2
    rows = [r for r in read(sys.argv[1:]) if r.get("framework") == "untangle"]
    peak = {}
    for r in rows:
        if r.get("suite") == "gemm" and r.get("case") == "sgemm.square" and r.get("gflops"):
            peak[r["device"]] = max(peak.get(r["device"], 0.0), r["gflops"])
    convs = [r for r in rows if r.get("suite") == "ops" and r.get("case", "").startswith("conv.") and r.get("gflops")]
    if not peak or not convs:
        print("conv_share: need the gemm suite's sgemm.square cases and the ops suite's conv.* cases "
              f"(found {len(peak)} devices with SGEMM figures, {len(convs)} convolution figures)", file=sys.stderr)
        return 1
    print("| device | case | shape | GFLOP/s | SGEMM peak GFLOP/s | share of SGEMM peak |")
    print("|---|---|---|---|---|---|")
    for r in convs:
        p = peak.get(r["device"])
        peak_text = f"{p:.1f}" if p else "-"
        share = f"{100 * r['gflops'] / p:.0f}%" if p else "no SGEMM figure"
        print(f"| {r['device']} | {r['case']} | {r.get('shape', '')} | {r['gflops']:.1f} | {peak_text} | {share} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
