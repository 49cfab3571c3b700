#!/usr/bin/env python3
"""Times one LORD training step in PyTorch, for a side-by-side ratio with `untangle bench`.

The networks, losses and optimiser settings (lord_nets.py beside this script, shared with
lord_train.py) are those of models/lord_net.c and models/lord.c (lord-pytorch's,
/work/shared/MODELS.md section 1): the AdaIN generator with its modulation
layers, both encoders, LORD's VGG16 distance (pixel L1 plus relu1_2, relu2_2, relu3_2, relu4_3
and pool5, no input normalisation), the content noise and decay of stage 1, the code MSEs of
stage 2, Adam with betas (0.5, 0.999) and the learning rates of the preset.

--recon vgg (the default) uses that VGG distance; --recon l1 the pixel L1 alone (mean |G - x|, as
ut_l1_loss), the loss the main job trains with, and no VGG network is built. The case names
are the harness's: "lord.stageN.PRESET" for vgg, "lord.stageN.PRESET.l1" for l1.

VGG16 is frozen (requires_grad False) and its weights are random, as untangle's vgg-random:
the cost of a step does not depend on the weights' values. lord-pytorch itself leaves VGG's
requires_grad on, so its step also computes unused VGG weight gradients; this script does not,
to time the same work untangle does.

Strict FP32: TF32 is disabled for matmuls and cuDNN convolutions. Each figure is the median of
the timed steps after warm-up (wall clock, synchronised, including reading the loss, as
untangle's models suite times a step). Output: JSON lines in the harness's schema, so
`untangle bench report untangle.jsonl this.jsonl` prints untangle / PyTorch per case.

  python3 benchmarks/reference/lord_step.py --preset small --stage 1,2 -o ref.jsonl
  python3 benchmarks/reference/lord_step.py --preset small --stage 1,2 --recon l1 -o ref_l1.jsonl
  python3 benchmarks/reference/lord_step.py --device cuda --preset default --batch 128 -o ref.jsonl
"""
import argparse
import json
import os
import sys

import torch

import lord_nets  # the networks and losses, shared with lord_train.py
import timing  # benchmarks/reference/timing.py, beside this script

N_IMAGES, N_CLASSES = 10000, 100  # as the models suite (benchmarks/bench_models.c)


def make_step(stage, p, batch, channels, device, recon):
    gen = lord_nets.Generator(p, channels).to(device)
    recon_loss = lord_nets.reconstruction_loss(recon, device)
    content_emb, class_emb = lord_nets.embeddings(p, N_IMAGES, N_CLASSES, device)
    images = torch.rand(batch, channels, p["size"], p["size"], device=device)
    ids = torch.tensor([(i * 7919) % N_IMAGES for i in range(batch)], device=device)
    classes = torch.tensor([i % N_CLASSES for i in range(batch)], device=device)
    if stage == 1:
        opt = lord_nets.stage1_optimizer(p, gen, content_emb, class_emb)

        def step():
            opt.zero_grad(set_to_none=True)
            loss = lord_nets.stage1_loss(gen, recon_loss, content_emb(ids), class_emb(classes), images,
                                         p["content_std"], p["content_decay"])
            loss.backward()
            opt.step()
            return loss.item()
    else:
        enc_content = lord_nets.Encoder(p, channels, p["content_dim"]).to(device)
        enc_class = lord_nets.Encoder(p, channels, p["class_dim"]).to(device)
        content_emb.requires_grad_(False)
        class_emb.requires_grad_(False)
        params = list(enc_content.parameters()) + list(enc_class.parameters()) + list(gen.parameters())
        opt = torch.optim.Adam(params, lr=p["lr_enc"], betas=lord_nets.ADAM_BETAS)

        def step():
            opt.zero_grad(set_to_none=True)
            loss = lord_nets.stage2_loss(gen, recon_loss, enc_content, enc_class, images, content_emb(ids),
                                         class_emb(classes))
            loss.backward()
            opt.step()
            return loss.item()
    return step


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    ap.add_argument("--preset", default="small", help="small, default or both comma-separated (default small)")
    ap.add_argument("--batch", type=int, default=0, help="images per step (default: the preset's; the harness "
                    "uses 32 for small and 32 and 128 for default)")
    ap.add_argument("--stage", default="1,2", help="1, 2 or 1,2 (default 1,2)")
    ap.add_argument("--recon", default="vgg", choices=["vgg", "l1"],
                    help="reconstruction loss: vgg (pixel L1 + VGG16 taps, random frozen VGG; default) or l1 "
                    "(pixel L1 alone, as the main job trains)")
    ap.add_argument("--channels", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="CPU threads (default: every core)")
    ap.add_argument("-o", "--out", default="-", help="JSON lines file (default: standard output)")
    a = ap.parse_args()
    timing.setup(a.threads)
    device = torch.device(a.device)
    info = timing.device_info(device)
    out = sys.stdout if a.out == "-" else open(a.out, "w")
    for preset in a.preset.split(","):
        p = lord_nets.preset(preset)
        batch = a.batch or (32 if preset == "small" else p["batch"])
        for stage in [int(s) for s in a.stage.split(",")]:
            step = make_step(stage, p, batch, a.channels, device, a.recon)
            times = timing.time_step(step, a.warmup, a.repeats, device)
            line = timing.record(info, f"lord.stage{stage}.{preset}" + (".l1" if a.recon == "l1" else ""),
                                 f"{batch}x{a.channels}x{p['size']}x{p['size']}", times,
                                 images_per_s=batch / (timing.median(times) * 1e-3), batch=batch, preset=preset,
                                 recon="vgg-random" if a.recon == "vgg" else "l1", tf32=False)
            out.write(json.dumps(line) + "\n")
            out.flush()
            print(f"{line['case']} {line['shape']}: {line['ms']['median']:.1f} ms", file=sys.stderr)
    if out is not sys.stdout:
        out.close()


if __name__ == "__main__":
    main()
