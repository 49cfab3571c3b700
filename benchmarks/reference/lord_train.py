#!/usr/bin/env python3
"""Trains LORD in PyTorch on an untangle data set file, as `untangle train lord` does, to hold
untangle's losses against.

What is the same as untangle (models/lord.c, lord_train.c, lord_config.c, lord_net.c):
- the networks, initialisation ranges, losses, Adam groups and betas (lord_nets.py, shared with
  lord_step.py), the preset's widths, batch and learning rates;
- the schedule: cosine from each group's rate to lr_min over the stage's steps, the rate of
  step t set from progress t / steps before the step (CosineAnnealingLR stepped every step);
- the data: images v / 255 as CHW floats, the held-out classes and the training list
  (ut_dataset_split_compute), and by default the very batches of every epoch (the loader's
  splitmix64 Fisher-Yates permutation seeded by seed + stage and the epoch), drop_last;
- what is logged: one line per step, the loss of the step's forward pass, in RUN/losses.tsv's
  columns (stage, epoch, step, loss; models/kit_trainer.c).

What cannot be the same: initial weights, embeddings and content noise come from torch's
generator (seeded with --seed), not untangle's Philox streams, so single runs differ by seed
noise; compare several seeds of each (compare_lord.py takes lists). Two modes take the seed
noise out, to tell a real difference from chance:
- --eval-checkpoint FILE: untangle's trained weights in PyTorch's networks, the loss over one
  epoch's batches beside the loss untangle logged (the forward passes agree or not);
- --resume-from FILE: continue from an untangle stage-1 checkpoint (weights, Adam moments,
  step count); with --content-noise 0 on both sides (untangle: train, then --resume with more
  --epochs1) the per-step losses must agree to rounding (backward, Adam groups, schedule, data
  order). Give the same preset and settings as the checkpoint's.

  /usr/bin/python3 benchmarks/reference/lord_train.py --data /tmp/synth.dat --out /tmp/t-run \\
      --preset small --epochs1 20 --epochs2 0 --recon l1
  /usr/bin/python3 benchmarks/reference/compare_lord.py /tmp/u-run /tmp/t-run

Writes OUT/losses.tsv and OUT/summary.json (settings, split sizes, per-epoch mean losses of each
stage, wall time). --export DIR also writes DIR/checkpoint.safetensors in untangle's checkpoint
format (tensors, Adam moments, metadata), so `untangle eval DIR --data FILE` evaluates the
PyTorch-trained model as it would an untangle run.
"""
import argparse
import json
import math
import os
import struct
import sys
import time

import numpy as np
import torch

import lord_nets  # the networks and losses, shared with lord_step.py

MASK64 = (1 << 64) - 1
# The loader's and the split's stream constants (engine/data/loader.c).
SPLIT_STREAM = 0x73706C6974
EPOCH_STREAM = 0x65706F6368


# ---- the data set file (engine/data/dataset.c) ----------------------------------------------

def read_dataset(path):
    """The header (a dict), images as uint8 [N, H, W, C], classes, contents and domains (int32;
    domains None for a version 1 file). Checks the magic, the version and that the stored
    offsets agree with the layout, as ut_dataset_open does, so a wrong file fails loudly."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:8] != b"UTDATAST":
        sys.exit(f"{path}: not an untangle data set (magic {raw[:8]!r})")
    version, hlen = struct.unpack_from("<II", raw, 8)
    if version not in (1, 2):
        sys.exit(f"{path}: format version {version}, this reader knows 1 and 2")
    h = json.loads(raw[16:16 + hlen].decode("utf-8"))
    n, hh, ww, cc = h["count"], h["height"], h["width"], h["channels"]

    def align64(x):
        return (x + 63) & ~63

    images_at = 16 + hlen
    classes_at = align64(images_at + n * hh * ww * cc)
    contents_at = align64(classes_at + 4 * n)
    domains_at = align64(contents_at + 4 * n) if version == 2 else None
    expect = {"images_offset": images_at, "classes_offset": classes_at, "contents_offset": contents_at}
    if version == 2:
        expect["domains_offset"] = domains_at
    for key, at in expect.items():
        if h.get(key) != at:
            sys.exit(f"{path}: header {key} {h.get(key)} but the layout puts it at {at}")
    end = (domains_at if version == 2 else contents_at) + 4 * n
    if len(raw) != end:
        sys.exit(f"{path}: {len(raw)} bytes, the layout says {end}")
    images = np.frombuffer(raw, np.uint8, n * hh * ww * cc, images_at).reshape(n, hh, ww, cc)
    classes = np.frombuffer(raw, "<i4", n, classes_at).astype(np.int64)
    contents = np.frombuffer(raw, "<i4", n, contents_at).astype(np.int64)
    domains = np.frombuffer(raw, "<i4", n, domains_at).astype(np.int64) if version == 2 else None
    if classes.min() < 0 or classes.max() >= h["n_classes"]:
        sys.exit(f"{path}: class ids outside 0 .. {h['n_classes'] - 1}")
    return h, images, classes, contents, domains


# ---- untangle's random streams (engine/data/data_internal.h) ---------------------------------

def splitmix64(state):
    """(new state, output) of one splitmix64 draw."""
    state = (state + 0x9E3779B97F4A7C15) & MASK64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return state, z ^ (z >> 31)


def below(state, n):
    """(new state, uniform in [0, n)) by Lemire's multiply-and-reject, as ut_splitmix_below."""
    state, x = splitmix64(state)
    m = (x >> 32) * n
    if (m & 0xFFFFFFFF) < n:
        floor = ((1 << 32) - n) % n
        while (m & 0xFFFFFFFF) < floor:
            state, x = splitmix64(state)
            m = (x >> 32) * n
    return state, m >> 32


def default_test_classes(n_classes):
    """apps/train_lord.c: a tenth of the classes, one below 20, none below 5."""
    return 0 if n_classes < 5 else 1 if n_classes < 20 else n_classes // 10


def split_train(classes, n_classes, test_classes, seed):
    """The training list of ut_dataset_split_compute with test_ratio 0 (what `untangle train
    lord` uses): the held-out classes by a partial Fisher-Yates, the rest sorted by index."""
    state = (seed ^ SPLIT_STREAM) & MASK64
    order = list(range(n_classes))
    for i in range(test_classes):
        state, j = below(state, n_classes - i)
        j += i
        order[i], order[j] = order[j], order[i]
    held = set(order[:test_classes])
    return sorted(held), [i for i in range(len(classes)) if int(classes[i]) not in held]


def epoch_order(train, seed, epoch):
    """The loader's order of one epoch (make_permutation in engine/data/loader.c)."""
    state = (seed ^ EPOCH_STREAM) & MASK64
    state, z = splitmix64(state)
    state = z ^ epoch
    perm = list(train)
    for i in range(len(perm) - 1, 0, -1):
        state, j = below(state, i + 1)
        perm[i], perm[j] = perm[j], perm[i]
    return perm


# ---- untangle's checkpoints -------------------------------------------------------------------

def read_safetensors(path):
    """{name: float32 tensor} of a safetensors file's F32 tensors (untangle's checkpoints)."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack_from("<Q", raw, 0)
    header, out = json.loads(raw[8:8 + n]), {}
    for name, t in header.items():
        if name == "__metadata__" or t["dtype"] != "F32":
            continue
        lo, hi = t["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(raw, "<f4", (hi - lo) // 4, 8 + n + lo).copy()).view(*t["shape"])
    return out


def untangle_stage1_names(gen, content_emb, class_emb):
    """(PyTorch parameter, row slice or None, untangle's name) for every stage-1 tensor. The
    modulation's two Linear layers per AdaIN layer (kit_adain: .bias, .scale) are the rows of
    lord-pytorch's interleaved Linear(class_dim, 2 C): row 2 c the bias, row 2 c + 1 the scale
    of channel c."""
    out = [(content_emb.weight, None, "lord.content_emb"), (class_emb.weight, None, "lord.class_emb")]
    for i, fc in enumerate(gen.fc):
        out += [(fc.weight, None, f"lord.gen.fc{i + 1}.w"), (fc.bias, None, f"lord.gen.fc{i + 1}.b")]
    for i, (conv, mod) in enumerate(zip(gen.convs, gen.mod)):
        out += [(conv.weight, None, f"lord.gen.up{i}.w"), (conv.bias, None, f"lord.gen.up{i}.b")]
        for part, row in (("scale", 1), ("bias", 0)):  # untangle's order of the tensors
            out += [(mod.weight, slice(row, None, 2), f"lord.mod.{i}.{part}.w"),
                    (mod.bias, slice(row, None, 2), f"lord.mod.{i}.{part}.b")]
    for name in ("c1", "c2"):
        out += [(getattr(gen, name).weight, None, f"lord.gen.{name}.w"),
                (getattr(gen, name).bias, None, f"lord.gen.{name}.b")]
    return out


def load_untangle_stage1(path, gen, content_emb, class_emb, opt=None):
    """Copies the stage-1 tensors of an untangle checkpoint into the PyTorch modules and, with
    `opt` (stage1_optimizer's), its Adam moments and step count into the optimiser's state.
    Returns the checkpoint's stage-1 step count."""
    w = read_safetensors(path)
    with open(path, "rb") as f:
        (n,) = struct.unpack_from("<Q", f.read(8))
        meta = json.loads(f.read(n)).get("__metadata__", {})
    steps = int(meta.get("lord.stage1.step", 0))
    with torch.no_grad():
        for param, rows, name in untangle_stage1_names(gen, content_emb, class_emb):
            (param[rows] if rows else param).copy_(w[name])
            if opt is None:
                continue
            adam = "adam1_codes" if name.endswith("_emb") else "adam1"
            state = opt.state[param]
            if not state:
                state["step"] = torch.tensor(float(meta[f"untangle.counter.lord.{adam}.step"]))
                state["exp_avg"] = torch.zeros_like(param)
                state["exp_avg_sq"] = torch.zeros_like(param)
            for key, suffix in (("exp_avg", "m"), ("exp_avg_sq", "v")):
                (state[key][rows] if rows else state[key]).copy_(w[f"{name}.lord.{adam}.{suffix}"])
    return steps


def untangle_stage2_names(enc_content, enc_class):
    """(PyTorch parameter, None, untangle's name) for the stage-2 encoders' tensors
    (lord.enc_content.*, lord.enc_class.*: stem, down0..3, fc1..3)."""
    out = []
    for tag, enc in (("enc_content", enc_content), ("enc_class", enc_class)):
        layers = [("stem", enc.stem)] + [(f"down{i}", d) for i, d in enumerate(enc.down)] + \
                 [(f"fc{i + 1}", fc) for i, fc in enumerate(enc.fc)]
        for name, layer in layers:
            out += [(layer.weight, None, f"lord.{tag}.{name}.w"), (layer.bias, None, f"lord.{tag}.{name}.b")]
    return out


def _json_number(x):
    """A float as untangle's config JSON writes it: shortest repr, exponent without padding."""
    s = repr(float(x))
    if "e" in s:
        mant, exp = s.split("e")
        s = f"{mant}e{int(exp)}"
    return s


def untangle_config_json(p, channels, n_images, n_classes, recon, seed):
    """lord.config as untangle writes it (models/lord_config.c): sorted keys, no spaces, the seed
    as a string."""
    fields = {"batch": p["batch"], "channels": channels, "class_dim": p["class_dim"],
              "content_decay": _json_number(p["content_decay"]), "content_dim": p["content_dim"],
              "content_std": _json_number(p["content_std"]), "enc_channels": p["enc"], "enc_hidden": p["hidden"],
              "epochs1": p["epochs1"], "epochs2": p["epochs2"], "gen_channels": p["gen"],
              "head_channels": p["head"], "lr_emb": _json_number(p["lr_emb"]), "lr_enc": _json_number(p["lr_enc"]),
              "lr_gen": _json_number(p["lr_gen"]), "lr_min": _json_number(p["lr_min"]), "n_classes": n_classes,
              "n_images": n_images, "recon": json.dumps(recon), "seed": json.dumps(str(seed)), "size": p["size"]}
    return "{" + ",".join(f'"{k}":{v}' for k, v in sorted(fields.items())) + "}"


def write_safetensors(path, tensors, metadata):
    """Writes [(name, float32 tensor)] and a {str: str} metadata map as safetensors, laid out as
    untangle's store writes them: tensors back to back in the given order, "__metadata__" last
    in the header, the header padded with spaces to a multiple of 8. Written to path.tmp, then
    renamed."""
    header, blobs, at = {}, [], 0
    for name, t in tensors:
        b = t.detach().to(torch.float32).contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [at, at + len(b)]}
        blobs.append(b)
        at += len(b)
    header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * (-len(h) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def export_untangle(out_dir, p, recon, seed, channels, n_images, n_classes, test_classes, steps1, gen, content_emb,
                    class_emb, opt1, steps2=0, enc_content=None, enc_class=None, opt2=None):
    """Writes out_dir/checkpoint.safetensors in untangle's checkpoint format (models/lord_train.c):
    the stage-1 tensors, their Adam moments (adam1: generator and modulation, adam1_codes: the two
    tables), and with stage 2 the encoders and adam2's moments (encoders, generator, modulation),
    and the metadata an untangle run has (format, config, split, stage, epoch, per-stage steps,
    optimiser step counters, the content-noise stream's counter). The moments are PyTorch's
    (exp_avg, exp_avg_sq); a moment Adam never made is written as zeros. Returns the path and the
    [(name, tensor)] written, for a read-back check."""
    def rows_of(t, rows):
        return (t[rows] if rows else t).detach().clone()

    def moments(opt, param, rows, key):
        st = opt.state.get(param, {}) if opt is not None else {}
        return rows_of(st[key], rows) if key in st else torch.zeros_like(rows_of(param, rows))

    s1 = untangle_stage1_names(gen, content_emb, class_emb)
    tensors = [(name, rows_of(param, rows)) for param, rows, name in s1]
    # Adam moments in untangle's order: the generator's layers, then the modulation, then the tables.
    gen_names = [e for e in s1 if e[2].startswith("lord.gen.")] + [e for e in s1 if e[2].startswith("lord.mod.")]
    for param, rows, name in gen_names:
        for key, suffix in (("exp_avg", "m"), ("exp_avg_sq", "v")):
            tensors.append((f"{name}.lord.adam1.{suffix}", moments(opt1, param, rows, key)))
    for param, rows, name in s1[:2]:
        for key, suffix in (("exp_avg", "m"), ("exp_avg_sq", "v")):
            tensors.append((f"{name}.lord.adam1_codes.{suffix}", moments(opt1, param, rows, key)))
    stage = 1
    if enc_content is not None:
        stage = 2
        s2 = untangle_stage2_names(enc_content, enc_class)
        tensors += [(name, rows_of(param, rows)) for param, rows, name in s2]
        for param, rows, name in s2 + gen_names:
            for key, suffix in (("exp_avg", "m"), ("exp_avg_sq", "v")):
                tensors.append((f"{name}.lord.adam2.{suffix}", moments(opt2, param, rows, key)))
    per_epoch_epochs = p["epochs2"] if stage == 2 else p["epochs1"]
    meta = {"untangle.format": "1",
            "untangle.counter.rng.lord.content_noise": str(steps1),
            "untangle.counter.lord.adam1.step": str(steps1),
            "untangle.counter.lord.adam1_codes.step": str(steps1)}
    if stage == 2:
        meta["untangle.counter.lord.adam2.step"] = str(steps2)
    meta.update({"lord.split": f"{len(test_classes)} 0", "lord.stage1.step": str(steps1), "lord.stage": str(stage),
                 "lord.epoch": str(per_epoch_epochs), "model": "lord",
                 "lord.config": untangle_config_json(p, channels, n_images, n_classes,
                                                     "vgg-random" if recon == "vgg-random" else "l1", seed)})
    if stage == 2:
        meta["lord.stage2.step"] = str(steps2)
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "checkpoint.safetensors")
    write_safetensors(path, tensors, meta)
    back = read_safetensors(path)
    bad = [n for n, t in tensors if not torch.equal(back[n], t.to(torch.float32))]
    if bad or len(back) != len(tensors):
        sys.exit(f"{path}: read back differs in {bad[:5]} ({len(bad)} tensors)")
    return path, tensors


def stage1_epoch_losses(run, p, gen, content_emb, class_emb, epoch):
    """(loss with content noise, loss without) of the stage-1 objective over one epoch's batches,
    as eval_checkpoint computes it."""
    sums, n = [0.0, 0.0], 0
    with torch.no_grad():
        for e, _, ids in run.batches(1, epoch + 1, p["batch"]):
            if e != epoch:
                continue
            for k, std in enumerate((p["content_std"], 0.0)):
                sums[k] += lord_nets.stage1_loss(gen, lord_nets.pixel_l1, content_emb(ids), class_emb(run.classes[ids]),
                                                 run.images[ids], std, p["content_decay"]).item()
            n += 1
    return sums[0] / n, sums[1] / n


# ---- training --------------------------------------------------------------------------------

def cosine_lr(lr0, lr_min, progress):
    """cosine_lr() in models/lord.c."""
    progress = min(max(progress, 0.0), 1.0)
    return lr_min + (lr0 - lr_min) * 0.5 * (1.0 + math.cos(math.pi * progress))


class Run:
    """The data as tensors, the split and the loss log of one training run."""

    def __init__(self, a, header, images, classes):
        self.a = a
        # v / 255 as CHW floats, as the loader's ut_image_bytes_to_chw (no augmentation in LORD).
        self.images = torch.from_numpy(images.astype(np.float32) / np.float32(255)).permute(0, 3, 1, 2).contiguous()
        self.classes = torch.from_numpy(classes)
        tc = default_test_classes(header["n_classes"]) if a.test_classes < 0 else a.test_classes
        if not 0 <= tc < header["n_classes"]:
            sys.exit(f"cannot hold out {tc} of {header['n_classes']} classes")
        self.test_classes, self.train = split_train(classes, header["n_classes"], tc, a.seed)
        self.log = None
        if a.out:
            self.log = open(os.path.join(a.out, "losses.tsv"), "w")
            self.log.write("stage\tepoch\tstep\tloss\n")
        self.epoch_means = {}

    def batches(self, stage, epochs, batch, start=0):
        """(epoch, step, ids) of every step of a stage from `start`: untangle's order or
        torch.randperm."""
        per_epoch = len(self.train) // batch  # drop_last
        gen = torch.Generator().manual_seed(self.a.seed + stage)
        for epoch in range(epochs):
            if self.a.order == "untangle":
                perm = epoch_order(self.train, self.a.seed + stage, epoch) if (epoch + 1) * per_epoch > start else None
            else:
                perm = [self.train[i] for i in torch.randperm(len(self.train), generator=gen).tolist()]
            for b in range(per_epoch):
                if epoch * per_epoch + b >= start:
                    yield epoch, epoch * per_epoch + b, torch.tensor(perm[b * batch:(b + 1) * batch])

    def train_stage(self, stage, epochs, batch, groups, step_fn, start=0):
        """Runs step_fn(ids) over the stage's batches from step `start`, with every group's rate
        on the cosine schedule; logs each step's loss and keeps the per-epoch means (of the
        epochs trained here)."""
        per_epoch = len(self.train) // batch
        total, t0 = epochs * per_epoch, time.perf_counter()
        sums, counts = [0.0] * epochs, [0] * epochs
        for epoch, step, ids in self.batches(stage, epochs, batch, start):
            for g, lr0 in groups:
                g["lr"] = cosine_lr(lr0, self.a.p["lr_min"], step / total)
            loss = step_fn(ids)
            if not math.isfinite(loss):
                sys.exit(f"stage {stage}: loss {loss} at step {step}")
            self.log.write(f"{stage}\t{epoch}\t{step}\t{loss:.7g}\n")
            sums[epoch] += loss
            counts[epoch] += 1
            if (step + 1) % per_epoch == 0:
                self.log.flush()
                print(f"stage {stage} epoch {epoch + 1}/{epochs} loss {sums[epoch] / counts[epoch]:.5f} "
                      f"({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
        self.epoch_means[stage] = [s / c for s, c in zip(sums, counts) if c]
        return time.perf_counter() - t0, total - start


def eval_checkpoint(a, header, images, classes):
    """The stage-1 loss of an untangle checkpoint's weights as PyTorch computes it, over the
    batches untangle trained on in one epoch. With the weights the same, the two frameworks'
    forward passes (networks, AdaIN, loss, decay) can be compared without seed noise: the
    noiseless figure is deterministic, the noisy one matches untangle's logged epoch mean up
    to noise and the drift of the weights during that epoch."""
    p, run = a.p, Run(a, header, images, classes)
    gen = lord_nets.Generator(p, header["channels"])
    content_emb, class_emb = lord_nets.embeddings(p, header["count"], header["n_classes"], torch.device("cpu"))
    load_untangle_stage1(a.eval_checkpoint, gen, content_emb, class_emb)
    epoch = p["epochs1"] - 1 if a.eval_epoch < 0 else a.eval_epoch
    noisy, clean = stage1_epoch_losses(run, p, gen, content_emb, class_emb, epoch)
    n = len(run.train) // p["batch"]
    logged = os.path.join(os.path.dirname(os.path.abspath(a.eval_checkpoint)), "losses.tsv")
    note = ""
    if os.path.exists(logged):
        vals = [float(c[3]) for c in (l.split("\t") for l in open(logged).readlines()[1:])
                if c[0] == "1" and int(c[1]) == epoch]
        if vals:
            note = f"; untangle logged {sum(vals) / len(vals):.5f} while training through it"
    print(f"epoch {epoch + 1} batches ({n}), untangle's weights in PyTorch: loss {noisy:.6f} with content noise, "
          f"{clean:.6f} without{note}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="an untangle data set file (untangle data synth/import)")
    ap.add_argument("-o", "--out", help="run folder for losses.tsv and summary.json (created; required unless "
                    "--eval-checkpoint)")
    ap.add_argument("--preset", default="small", choices=sorted(lord_nets.PRESETS))
    ap.add_argument("--epochs1", type=int, default=-1, help="stage-1 epochs (default: the preset's)")
    ap.add_argument("--epochs2", type=int, default=-1, help="stage-2 epochs (default: the preset's; 0 skips it)")
    ap.add_argument("-b", "--batch", type=int, default=0, help="images per step (default: the preset's)")
    ap.add_argument("--recon", default="l1", choices=["l1", "vgg-random"],
                    help="l1 (pixel L1, untangle's default) or vgg-random (LORD's VGG distance with random "
                    "weights: its values differ from untangle's, whose random weights are its own)")
    ap.add_argument("--content-noise", type=float, default=-1, help="content noise std (default: the preset's, 1)")
    ap.add_argument("--content-decay", type=float, default=-1, help="content decay (default: the preset's, 1e-4)")
    ap.add_argument("--test-classes", type=int, default=-1, help="held-out classes (default: as untangle)")
    ap.add_argument("-s", "--seed", type=int, default=1, help="torch's seed and untangle's split and batch order")
    ap.add_argument("--order", default="untangle", choices=["untangle", "torch"],
                    help="batches in untangle's order for this seed (default) or a torch.randperm shuffle")
    ap.add_argument("--threads", type=int, default=2, help="CPU threads (default 2)")
    ap.add_argument("--eval-checkpoint", metavar="FILE",
                    help="train nothing: load an untangle stage-1 checkpoint and print the stage-1 loss PyTorch "
                    "computes with its weights over the batches of one epoch (--eval-epoch), with and without the "
                    "content noise, beside the loss untangle logged for that epoch (losses.tsv next to FILE)")
    ap.add_argument("--resume-from", metavar="FILE",
                    help="start stage 1 from an untangle stage-1 checkpoint (weights, Adam moments and step count) "
                    "and train on to --epochs1: with --content-noise 0 both frameworks then take the same steps "
                    "from the same state, a lockstep check of backward and optimiser")
    ap.add_argument("--export", metavar="DIR",
                    help="after training, write DIR/checkpoint.safetensors in untangle's checkpoint format (weights, "
                    "Adam moments, metadata), so `untangle eval DIR --data FILE` evaluates the PyTorch-trained model; "
                    "prints the stage-1 loss of the last stage-1 epoch's batches without content noise, which "
                    "--eval-checkpoint DIR/checkpoint.safetensors must reproduce")
    ap.add_argument("--eval-epoch", type=int, default=-1, help="0-based epoch (default: the last of --epochs1)")
    a = ap.parse_args()
    if not a.out and not a.eval_checkpoint:
        ap.error("needs --out RUN")

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    header, images, classes, _, _ = read_dataset(a.data)
    if header["height"] != header["width"] or header["height"] % 16:
        sys.exit(f"{a.data}: {header['width']}x{header['height']} images; LORD needs square sides, multiples of 16")
    p = lord_nets.preset(a.preset, size=header["height"])
    p["epochs1"] = p["epochs1"] if a.epochs1 < 0 else a.epochs1
    p["epochs2"] = p["epochs2"] if a.epochs2 < 0 else a.epochs2
    p["batch"] = a.batch or p["batch"]
    p["content_std"] = p["content_std"] if a.content_noise < 0 else a.content_noise
    p["content_decay"] = p["content_decay"] if a.content_decay < 0 else a.content_decay
    a.p = p
    if a.eval_checkpoint:
        if a.recon != "l1":
            sys.exit("--eval-checkpoint compares the l1 loss only (the VGG weights differ between frameworks)")
        return eval_checkpoint(a, header, images, classes)
    os.makedirs(a.out, exist_ok=True)
    run = Run(a, header, images, classes)
    if len(run.train) < p["batch"]:
        sys.exit(f"{len(run.train)} training images are fewer than one batch of {p['batch']}")
    n_images, n_classes, channels = header["count"], header["n_classes"], header["channels"]
    print(f"LORD {channels}x{p['size']}x{p['size']}: {n_images} images of {n_classes} classes "
          f"({len(run.test_classes)} held out, {len(run.train)} train), preset {a.preset}, batch {p['batch']}, "
          f"epochs {p['epochs1']} + {p['epochs2']}, noise {p['content_std']:g} decay {p['content_decay']:g}, "
          f"{a.recon}, seed {a.seed}, order {a.order}, torch {torch.__version__} on {a.threads} threads",
          file=sys.stderr)

    device = torch.device("cpu")
    # Same construction order as lord_step.py: generator, loss, tables.
    gen = lord_nets.Generator(p, channels)
    recon_loss = lord_nets.reconstruction_loss("vgg" if a.recon == "vgg-random" else "l1", device)
    content_emb, class_emb = lord_nets.embeddings(p, n_images, n_classes, device)
    summary = {"data": os.path.abspath(a.data), "preset": a.preset, "recon": a.recon, "seed": a.seed,
               "order": a.order, "threads": a.threads, "torch": torch.__version__, "settings": p,
               "n_images": n_images, "n_classes": n_classes, "test_classes": run.test_classes,
               "n_train": len(run.train), "stages": {}}

    opt = opt2 = enc_content = enc_class = None
    steps1 = steps2 = 0
    if p["epochs1"] > 0:
        opt = lord_nets.stage1_optimizer(p, gen, content_emb, class_emb)

        def step1(ids):
            opt.zero_grad(set_to_none=True)
            loss = lord_nets.stage1_loss(gen, recon_loss, content_emb(ids), class_emb(run.classes[ids]),
                                         run.images[ids], p["content_std"], p["content_decay"])
            loss.backward()
            opt.step()
            return loss.item()

        groups = [(g, g["lr"]) for g in opt.param_groups]
        start = load_untangle_stage1(a.resume_from, gen, content_emb, class_emb, opt) if a.resume_from else 0
        secs, steps = run.train_stage(1, p["epochs1"], p["batch"], groups, step1, start)
        steps1 = start + steps
        summary["stages"]["1"] = {"epochs": p["epochs1"], "steps": steps, "first_step": start, "seconds": secs,
                                  "epoch_loss": run.epoch_means[1], "final_loss": run.epoch_means[1][-1]}

    if p["epochs2"] > 0:
        enc_content = lord_nets.Encoder(p, channels, p["content_dim"])
        enc_class = lord_nets.Encoder(p, channels, p["class_dim"])
        content_emb.requires_grad_(False)
        class_emb.requires_grad_(False)
        params = list(enc_content.parameters()) + list(enc_class.parameters()) + list(gen.parameters())
        opt2 = torch.optim.Adam(params, lr=p["lr_enc"], betas=lord_nets.ADAM_BETAS)

        def step2(ids):
            opt2.zero_grad(set_to_none=True)
            loss = lord_nets.stage2_loss(gen, recon_loss, enc_content, enc_class, run.images[ids], content_emb(ids),
                                         class_emb(run.classes[ids]))
            loss.backward()
            opt2.step()
            return loss.item()

        secs, steps = run.train_stage(2, p["epochs2"], p["batch"], [(g, g["lr"]) for g in opt2.param_groups], step2)
        steps2 = steps
        summary["stages"]["2"] = {"epochs": p["epochs2"], "steps": steps, "seconds": secs,
                                  "epoch_loss": run.epoch_means[2], "final_loss": run.epoch_means[2][-1]}

    run.log.close()
    with open(os.path.join(a.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
        f.write("\n")
    for s, v in summary["stages"].items():
        print(f"stage {s}: final epoch loss {v['final_loss']:.5f} after {v['steps']} steps in {v['seconds']:.1f} s",
              file=sys.stderr)
    if a.export:
        if p["epochs1"] <= 0:
            sys.exit("--export needs a stage-1 run (--epochs1 > 0)")
        path, tensors = export_untangle(a.export, p, a.recon, a.seed, channels, n_images, n_classes, run.test_classes,
                                        steps1, gen, content_emb, class_emb, opt, steps2, enc_content, enc_class, opt2)
        _, clean = stage1_epoch_losses(run, p, gen, content_emb, class_emb, p["epochs1"] - 1)
        print(f"exported {len(tensors)} tensors to {path} (read back bit-exact); stage-1 loss of epoch "
              f"{p['epochs1']}'s batches without content noise, these weights in PyTorch: {clean:.6f} "
              f"(--eval-checkpoint {path} must print the same)", file=sys.stderr)


if __name__ == "__main__":
    main()
