#!/usr/bin/env python3
"""Times one UNIT training iteration in PyTorch, for a side-by-side ratio with `untangle bench`.

The networks, losses and optimiser settings are those of models/unit_net.c and models/unit.c
(the NIPS-paper code, branch version_02: /work/shared/MODELS.md section 3a):
  - per-domain encoders (conv 7x7 s1 -> ch, two conv 3x3 s2 to 2 ch and 4 ch, each with
    LeakyReLU 0.01, then res_blocks INSResBlocks), a shared encoder block and unit-variance
    Gaussian noise on the shared code; a shared decoder block, then per-domain decoders
    (res_blocks INSResBlocks, two transposed convs 3x3 s2 p1 with output_padding 1 and
    LeakyReLU, a transposed conv 1x1 to the image, tanh). INSResBlock: conv 3x3, instance norm
    without affine, ReLU, conv 3x3, instance norm, plus the input;
  - per-domain discriminator fronts (conv 7x7 s2 -> dis_ch, conv 3x3 s2 -> 2 dis_ch, LeakyReLU
    0.01) and shared layers (dis_shared convs 3x3 s2 from 4 dis_ch, doubling, LeakyReLU), then a
    1x1 conv to one logit map;
  - every conv and transposed conv weight from N(0, 0.02), biases PyTorch's default.
One iteration is what unit_train_step runs:
  - the discriminator update: each image encoded (with noise) and decoded into the other
    domain, no gradient into the generator; both discriminators on real images (target 1) and
    on the translations into their domain (target 0), BCE with logits (means) times w_gan;
  - the generator update: each image encoded (noise) and decoded into its own domain and the
    other; the translations encoded again (noise) and decoded back (the cycle); loss w_gan x
    BCE(D(translation), 1) for both + w_recon x L1 within the domain + w_cycle x L1 of the cycle
    + w_kl x (mean(z_a^2) + mean(z_b^2)) + w_kl_cycle x the same of the cycle codes, the codes
    taken after the noise; gradients into the generator only;
  - Adam lr 1e-4 (small preset 2e-4), betas (0.5, 0.999), weight_decay 1e-4, one per network.
The discriminator is frozen (requires_grad False) during the generator's update and the
generator runs under no_grad during the discriminator's, as untangle differentiates only the
updated network; the official code computes (and zeroes) the other gradients too.

Strict FP32: TF32 is disabled for matmuls and cuDNN convolutions. Each figure is the median of
the timed iterations after warm-up (wall clock, synchronised, including reading the six losses,
as untangle's models suite times a step). Output: JSON lines in the harness's schema, so
`untangle bench report untangle.jsonl this.jsonl` prints untangle / PyTorch per case. Case names
are the harness's: "unit.PRESET", with ".bN" when --batch differs from the preset's batch.

  /usr/bin/python3 benchmarks/reference/unit_step.py --preset small -o ref.jsonl
  /usr/bin/python3 benchmarks/reference/unit_step.py --preset default --batch 1,8 -o ref.jsonl
  python3 benchmarks/reference/unit_step.py --device cuda --preset default -o ref.jsonl
"""
import argparse
import json
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

import timing  # benchmarks/reference/timing.py, beside this script

# unit_preset() in models/unit_config.c.
PRESETS = {
    "default": dict(size=128, ch=64, res_blocks=3, shared_blocks=1, dis_ch=64, dis_shared=4, batch=1, lr=1e-4),
    "small": dict(size=32, ch=16, res_blocks=1, shared_blocks=1, dis_ch=16, dis_shared=2, batch=8, lr=2e-4),
}
WEIGHTS = dict(gan=10.0, recon=100.0, cycle=100.0, kl=0.1, kl_cycle=0.1)
NOISE_STD = 1.0
LEAK = 0.01
INIT_STD = 0.02


def lrelu(x):
    return F.leaky_relu(x, LEAK)


class ResBlock(nn.Module):
    """INSResBlock: conv 3x3, IN, ReLU, conv 3x3, IN, + x (IN without affine, eps 1e-5)."""

    def __init__(self, c):
        super().__init__()
        self.c0, self.c1 = nn.Conv2d(c, c, 3, 1, 1), nn.Conv2d(c, c, 3, 1, 1)

    def forward(self, x):
        h = F.relu(F.instance_norm(self.c0(x), eps=1e-5))
        return x + F.instance_norm(self.c1(h), eps=1e-5)


def res_blocks(c, n):
    return nn.Sequential(*[ResBlock(c) for _ in range(n)])


class Encoder(nn.Module):
    def __init__(self, p, channels):
        super().__init__()
        ch = p["ch"]
        self.convs = nn.ModuleList([nn.Conv2d(channels, ch, 7, 1, 3), nn.Conv2d(ch, 2 * ch, 3, 2, 1),
                                    nn.Conv2d(2 * ch, 4 * ch, 3, 2, 1)])
        self.res = res_blocks(4 * ch, p["res_blocks"])

    def forward(self, x):
        for conv in self.convs:
            x = lrelu(conv(x))
        return self.res(x)


class Decoder(nn.Module):
    def __init__(self, p, channels):
        super().__init__()
        ch = p["ch"]
        self.res = res_blocks(4 * ch, p["res_blocks"])
        self.up = nn.ModuleList([nn.ConvTranspose2d(4 * ch, 2 * ch, 3, 2, 1, output_padding=1),
                                 nn.ConvTranspose2d(2 * ch, ch, 3, 2, 1, output_padding=1)])
        self.out = nn.ConvTranspose2d(ch, channels, 1, 1, 0)

    def forward(self, h):
        h = self.res(h)
        for up in self.up:
            h = lrelu(up(h))
        return torch.tanh(self.out(h))


class Generator(nn.Module):
    """COCOResGen2: encoders and decoders per domain around the shared blocks."""

    def __init__(self, p, channels):
        super().__init__()
        self.enc = nn.ModuleList([Encoder(p, channels) for _ in range(2)])
        self.dec = nn.ModuleList([Decoder(p, channels) for _ in range(2)])
        self.enc_shared = res_blocks(4 * p["ch"], p["shared_blocks"])
        self.dec_shared = res_blocks(4 * p["ch"], p["shared_blocks"])

    def encode(self, x, d):
        h = self.enc_shared(self.enc[d](x))
        return h + NOISE_STD * torch.randn_like(h)  # GaussianNoiseLayer while training

    def decode_shared(self, code):
        return self.dec_shared(code)

    def decode(self, shared, d):
        return self.dec[d](shared)


class Discriminator(nn.Module):
    """COCOSharedDis: two front layers per domain, the deeper layers and the logit shared."""

    def __init__(self, p, channels):
        super().__init__()
        c = p["dis_ch"]
        self.front = nn.ModuleList([nn.ModuleList([nn.Conv2d(channels, c, 7, 2, 3), nn.Conv2d(c, 2 * c, 3, 2, 1)])
                                    for _ in range(2)])
        shared, cin, cout = [], 2 * c, 4 * c
        for _ in range(p["dis_shared"]):
            shared.append(nn.Conv2d(cin, cout, 3, 2, 1))
            cin, cout = cout, 2 * cout
        self.shared = nn.ModuleList(shared)
        self.logit = nn.Conv2d(cin, 1, 1, 1, 0)

    def forward(self, x, d):
        for conv in self.front[d]:
            x = lrelu(conv(x))
        for conv in self.shared:
            x = lrelu(conv(x))
        return self.logit(x)


def init_weights(m):
    # init.py of version_02: N(0, 0.02) on modules whose class name starts with "Conv".
    if type(m).__name__.startswith("Conv"):
        nn.init.normal_(m.weight, 0.0, INIT_STD)


def bce(logits, target):
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def make_step(p, batch, channels, device):
    gen, dis = Generator(p, channels).to(device), Discriminator(p, channels).to(device)
    gen.apply(init_weights)
    dis.apply(init_weights)
    adam = dict(lr=p["lr"], betas=(0.5, 0.999), weight_decay=1e-4)
    opt_gen, opt_dis = torch.optim.Adam(gen.parameters(), **adam), torch.optim.Adam(dis.parameters(), **adam)
    # As the harness: uniform values in [-1, 1), one batch per domain, the same every step.
    x = [torch.rand(batch, channels, p["size"], p["size"], device=device) * 2 - 1 for _ in range(2)]
    w = WEIGHTS

    def dis_step():
        opt_dis.zero_grad(set_to_none=True)
        with torch.no_grad():
            fake = [None, None]
            for d in range(2):
                fake[1 - d] = gen.decode(gen.decode_shared(gen.encode(x[d], d)), 1 - d)
        loss = 0
        for d in range(2):
            loss = loss + bce(dis(x[d], d), 1.0) + bce(dis(fake[d], d), 0.0)
        loss = w["gan"] * loss
        loss.backward()
        opt_dis.step()
        return loss.detach()

    def gen_step():
        opt_gen.zero_grad(set_to_none=True)
        dis.requires_grad_(False)
        code, own, other, cyc_code, cycle = [None] * 2, [None] * 2, [None] * 2, [None] * 2, [None] * 2
        for d in range(2):
            code[d] = gen.encode(x[d], d)
            h = gen.decode_shared(code[d])
            own[d] = gen.decode(h, d)           # x_aa, x_bb
            other[d] = gen.decode(h, 1 - d)     # x_ab, x_ba
        for d in range(2):
            cyc_code[d] = gen.encode(other[d], 1 - d)
            cycle[d] = gen.decode(gen.decode_shared(cyc_code[d]), d)
        gan = w["gan"] * (bce(dis(other[1], 0), 1.0) + bce(dis(other[0], 1), 1.0))
        recon = w["recon"] * (F.l1_loss(own[0], x[0]) + F.l1_loss(own[1], x[1]))
        cyc = w["cycle"] * (F.l1_loss(cycle[0], x[0]) + F.l1_loss(cycle[1], x[1]))
        kl = (w["kl"] * ((code[0] ** 2).mean() + (code[1] ** 2).mean())
              + w["kl_cycle"] * ((cyc_code[0] ** 2).mean() + (cyc_code[1] ** 2).mean()))
        loss = gan + recon + cyc + kl
        loss.backward()
        opt_gen.step()
        dis.requires_grad_(True)
        return torch.stack([loss.detach(), gan.detach(), recon.detach(), cyc.detach(), kl.detach()])

    def step():
        d = dis_step()
        g = gen_step()
        return [d.item()] + g.tolist()  # the six losses unit_train_step reads back
    return step


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    ap.add_argument("--preset", default="small", help="small, default or both comma-separated (default small)")
    ap.add_argument("--batch", default="0", help="images per domain per step, comma-separated for several "
                    "(default: the preset's, 8 for small and 1 for default; the harness also runs default at 8)")
    ap.add_argument("--channels", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3, help="timed iterations (default 3, as the quick suite)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed iterations first (default 1)")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="CPU threads (default: every core)")
    ap.add_argument("-o", "--out", default="-", help="JSON lines file (default: standard output)")
    a = ap.parse_args()
    timing.setup(a.threads)
    device = torch.device(a.device)
    info = timing.device_info(device)
    out = sys.stdout if a.out == "-" else open(a.out, "w")
    for preset in a.preset.split(","):
        p = PRESETS[preset]
        for batch in [int(b) or p["batch"] for b in a.batch.split(",")]:
            step = make_step(p, batch, a.channels, device)
            times = timing.time_step(step, a.warmup, a.repeats, device)
            case = f"unit.{preset}" + (f".b{batch}" if batch != p["batch"] else "")
            line = timing.record(info, case, f"{batch}x{a.channels}x{p['size']}x{p['size']}", times,
                                 images_per_s=2 * batch / (timing.median(times) * 1e-3), batch=batch, preset=preset,
                                 model="unit", domains=2, width=p["ch"], tf32=False)
            out.write(json.dumps(line) + "\n")
            out.flush()
            print(f"{case} {line['shape']}: {line['ms']['median']:.1f} ms", file=sys.stderr)
    if out is not sys.stdout:
        out.close()


if __name__ == "__main__":
    main()
