"""LORD's networks, losses and presets in PyTorch, as untangle builds them (models/lord_net.c,
models/lord.c, models/lord_config.c; lord-pytorch's, /work/shared/MODELS.md section 1).

Shared by lord_step.py (times one step) and lord_train.py (trains whole runs), so the two can
never disagree about what a LORD step is. Everything here is plain PyTorch defaults unless a
comment says otherwise; where untangle draws its own numbers (Philox initialisation and noise)
only the distributions match, not the values.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

# lord_preset() in models/lord_config.c: widths, batch, epochs, learning rates (generator and
# modulation; the two embeddings; stage 2's encoders), the cosine floor, content noise and decay.
_COMMON = dict(content_std=1.0, content_decay=1e-4, lr_min=1e-5)
PRESETS = {
    "default": dict(_COMMON, size=64, content_dim=128, class_dim=256, gen=256, head=64, enc=64, hidden=256, batch=128,
                    epochs1=200, epochs2=200, lr_gen=3e-4, lr_emb=3e-3, lr_enc=1e-4),
    "small": dict(_COMMON, size=32, content_dim=32, class_dim=64, gen=32, head=16, enc=16, hidden=128, batch=32,
                  epochs1=60, epochs2=30, lr_gen=1e-3, lr_emb=1e-2, lr_enc=3e-4),
}
LEAK = 0.01  # nn.LeakyReLU()'s default slope, which lord-pytorch uses everywhere
ADAIN_LAYERS = 4
ADAM_BETAS = (0.5, 0.999)  # both stages, both repositories
STAGE2_CODE_WEIGHT = 10.0  # lord-pytorch's weight of each code's MSE in stage 2
EMBEDDING_RANGE = 0.05  # LatentModel.weights_init: U(-0.05, 0.05) for both code tables


def preset(name, size=None):
    """The preset's settings as a dict with its name; `size` overrides the image side (untangle
    takes it from the data set)."""
    p = dict(PRESETS[name], name=name)
    if size is not None:
        p["size"] = size
    return p


def lrelu(x):
    return F.leaky_relu(x, LEAK)


class Generator(nn.Module):
    """content code, class code -> image in (0, 1): three Linear layers to a (gen, S/16, S/16)
    map, four times [nearest x2, 3x3 conv, LeakyReLU, AdaIN], a 5x5 conv and a 7x7 conv with a
    sigmoid."""

    def __init__(self, p, channels):
        super().__init__()
        self.p, start = p, p["size"] // 16
        area, c = start * start, p["gen"]
        self.fc = nn.ModuleList([nn.Linear(p["content_dim"], area * c // 8), nn.Linear(area * c // 8, area * c // 4),
                                 nn.Linear(area * c // 4, area * c)])
        self.convs = nn.ModuleList([nn.Conv2d(c, c, 3, padding=1) for _ in range(ADAIN_LAYERS)])
        # lord-pytorch's Modulation: one Linear(class_dim, 2 C) per AdaIN layer. untangle splits
        # it into two Linear(class_dim, C) (kit_adain); same fan-in, so the same initialisation.
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
    """image -> code: a 7x7 stem, four stride-2 4x4 convs (widths x2, x4, x4, x4) and three
    Linear layers."""

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


def reconstruction_loss(recon, device):
    """The loss function for --recon: 'l1' or 'vgg' (random frozen VGG16). VGG is built only
    when used, so an L1 run neither allocates VGG nor draws its weights from the generator."""
    return VGGDistance().to(device) if recon == "vgg" else pixel_l1


def embeddings(p, n_images, n_classes, device):
    """The content table (one row per image of the data set, held-out ones included, as
    untangle's n_images) and the class table, both U(-0.05, 0.05)."""
    content = nn.Embedding(n_images, p["content_dim"]).to(device)
    klass = nn.Embedding(n_classes, p["class_dim"]).to(device)
    for e in (content, klass):
        nn.init.uniform_(e.weight, -EMBEDDING_RANGE, EMBEDDING_RANGE)
    return content, klass


def stage1_optimizer(p, gen, content_emb, class_emb):
    """One Adam, two groups: generator and modulation at lr_gen, both tables at lr_emb."""
    return torch.optim.Adam([{"params": gen.parameters(), "lr": p["lr_gen"]},
                             {"params": list(content_emb.parameters()) + list(class_emb.parameters()),
                              "lr": p["lr_emb"]}], betas=ADAM_BETAS)


def stage1_loss(gen, recon_loss, content, class_code, images, content_std, content_decay):
    """recon(G(c + std z, k), x) + decay * mean_b sum_d (c + std z)^2: the decay acts on the
    noisy code, as lord-pytorch's train_latent (and untangle's build_stage1) compute it."""
    if content_std > 0:
        content = content + content_std * torch.randn_like(content)
    return recon_loss(gen(content, class_code), images) + content_decay * (content ** 2).sum(1).mean()


def stage2_loss(gen, recon_loss, enc_content, enc_class, images, content_target, class_target):
    """recon(G(E_c(x), E_k(x)), x) + 10 (MSE(E_c(x), c) + MSE(E_k(x), k)), the targets the
    noiseless stage-1 codes."""
    c, k = enc_content(images), enc_class(images)
    codes = F.mse_loss(c, content_target) + F.mse_loss(k, class_target)
    return recon_loss(gen(c, k), images) + STAGE2_CODE_WEIGHT * codes
