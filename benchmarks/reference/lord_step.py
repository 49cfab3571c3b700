#!/usr/bin/env python3
"""Times one LORD training step in PyTorch, for a side-by-side ratio with `untangle bench`.

The networks, losses and optimiser settings are those of models/lord_net.c and models/lord.c
(lord-pytorch's, /work/shared/MODELS.md section 1): the AdaIN generator with its modulation
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
import torch.nn as nn
import torch.nn.functional as F

import timing  # benchmarks/reference/timing.py, beside this script

# lord_preset() in models/lord_config.c: (size, content, class, generator, head, encoder, hidden, batch).
PRESETS = {
    "default": dict(size=64, content_dim=128, class_dim=256, gen=256, head=64, enc=64, hidden=256, batch=128),
    "small": dict(size=32, content_dim=32, class_dim=64, gen=32, head=16, enc=16, hidden=128, batch=32),
}
LEAK = 0.01
ADAIN_LAYERS = 4
N_IMAGES, N_CLASSES = 10000, 100  # as the models suite (benchmarks/bench_models.c)


def lrelu(x):
    return F.leaky_relu(x, LEAK)


class Generator(nn.Module):
    def __init__(self, p, channels):
        super().__init__()
        self.p, start = p, p["size"] // 16
        area, c = start * start, p["gen"]
        self.fc = nn.ModuleList([nn.Linear(p["content_dim"], area * c // 8), nn.Linear(area * c // 8, area * c // 4),
                                 nn.Linear(area * c // 4, area * c)])
        self.convs = nn.ModuleList([nn.Conv2d(c, c, 3, padding=1) for _ in range(ADAIN_LAYERS)])
        # lord-pytorch's Modulation: one Linear(class_dim, 2 C) per AdaIN layer.
        self.mod = nn.ModuleList([nn.Linear(p["class_dim"], 2 * c) for _ in range(ADAIN_LAYERS)])
        self.c1 = nn.Conv2d(c, p["head"], 5, padding=2)
        self.c2 = nn.Conv2d(p["head"], channels, 7, padding=3)

    def forward(self, content, class_code):
        b, c, start = content.shape[0], self.p["gen"], self.p["size"] // 16
        h = content
        for fc in self.fc:
            h = lrelu(fc(h))
        h = h.view(b, c, start, start)
        for conv, mod in zip(self.convs, self.mod):
            h = lrelu(conv(F.interpolate(h, scale_factor=2, mode="nearest")))
            bias, scale = mod(class_code).view(b, c, 2).unbind(-1)
            # AdaIN as lord-pytorch: batch_norm over the (1, B*C, H, W) view, then per sample.
            n = F.batch_norm(h.reshape(1, b * c, *h.shape[2:]), None, None, training=True, eps=1e-5)
            h = n.view_as(h) * scale[:, :, None, None] + bias[:, :, None, None]
        h = lrelu(self.c1(h))
        return torch.sigmoid(self.c2(h))


class Encoder(nn.Module):
    def __init__(self, p, channels, code_dim):
        super().__init__()
        e, widths = p["enc"], [1, 2, 4, 4, 4]
        self.stem = nn.Conv2d(channels, e, 7, padding=3)
        self.down = nn.ModuleList([nn.Conv2d(e * widths[i], e * widths[i + 1], 4, stride=2, padding=1) for i in range(4)])
        side = p["size"] // 16
        self.fc = nn.ModuleList([nn.Linear(e * 4 * side * side, p["hidden"]), nn.Linear(p["hidden"], p["hidden"]),
                                 nn.Linear(p["hidden"], code_dim)])

    def forward(self, x):
        h = lrelu(self.stem(x))
        for d in self.down:
            h = lrelu(d(h))
        h = h.flatten(1)
        h = lrelu(self.fc[0](h))
        h = lrelu(self.fc[1](h))
        return self.fc[2](h)


class VGGDistance(nn.Module):
    """torchvision's vgg16().features (random weights), taps after layers 3, 8, 13, 22 (ReLUs) and 30 (pool5)."""

    CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
    TAPS = {3, 8, 13, 22, 30}

    def __init__(self):
        super().__init__()
        layers, c = [], 3
        for v in self.CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU(inplace=False)]
                c = v
        self.features = nn.Sequential(*layers)
        self.requires_grad_(False)

    def taps(self, x):
        out = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.TAPS:
                out.append(x)
        return out

    def forward(self, a, b):
        if a.shape[1] == 1:
            a, b = a.repeat(1, 3, 1, 1), b.repeat(1, 3, 1, 1)
        loss = (a - b).abs().mean()
        for fa, fb in zip(self.taps(a), self.taps(b)):
            loss = loss + (fa - fb).abs().mean()
        return loss


def pixel_l1(a, b):
    """lord_reconstruction_loss() with LORD_RECON_L1: ut_l1_loss, the mean of |a - b|."""
    return (a - b).abs().mean()


def make_step(stage, p, batch, channels, device, recon):
    gen = Generator(p, channels).to(device)
    # Built only when used, so the L1 step neither allocates nor initialises VGG's weights.
    recon_loss = VGGDistance().to(device) if recon == "vgg" else pixel_l1
    content_emb = nn.Embedding(N_IMAGES, p["content_dim"]).to(device)
    class_emb = nn.Embedding(N_CLASSES, p["class_dim"]).to(device)
    for e in (content_emb, class_emb):
        nn.init.uniform_(e.weight, -0.05, 0.05)
    lr = {"small": (1e-3, 1e-2, 3e-4), "default": (3e-4, 3e-3, 1e-4)}[p["name"]]
    images = torch.rand(batch, channels, p["size"], p["size"], device=device)
    ids = torch.tensor([(i * 7919) % N_IMAGES for i in range(batch)], device=device)
    classes = torch.tensor([i % N_CLASSES for i in range(batch)], device=device)
    if stage == 1:
        opt = torch.optim.Adam([{"params": gen.parameters(), "lr": lr[0]},
                                {"params": list(content_emb.parameters()) + list(class_emb.parameters()), "lr": lr[1]}],
                               betas=(0.5, 0.999))

        def step():
            opt.zero_grad(set_to_none=True)
            content = content_emb(ids)
            content = content + torch.randn_like(content)  # content_std 1
            loss = recon_loss(gen(content, class_emb(classes)), images) + 1e-4 * (content ** 2).sum(1).mean()
            loss.backward()
            opt.step()
            return loss.item()
    else:
        enc_content = Encoder(p, channels, p["content_dim"]).to(device)
        enc_class = Encoder(p, channels, p["class_dim"]).to(device)
        content_emb.requires_grad_(False)
        class_emb.requires_grad_(False)
        params = list(enc_content.parameters()) + list(enc_class.parameters()) + list(gen.parameters())
        opt = torch.optim.Adam(params, lr=lr[2], betas=(0.5, 0.999))

        def step():
            opt.zero_grad(set_to_none=True)
            c, k = enc_content(images), enc_class(images)
            codes = F.mse_loss(c, content_emb(ids)) + F.mse_loss(k, class_emb(classes))
            loss = recon_loss(gen(c, k), images) + 10 * codes
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
        p = dict(PRESETS[preset], name=preset)
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
