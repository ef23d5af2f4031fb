#!/usr/bin/python3
"""Writes src/test/resources/fixtures/model_*.safetensors: tiny CondRefineNetDilated score networks
built from ../shared/ncsn-spec.md sections 3-5 (our own functional PyTorch code, not the authors'),
their weights under the reference state_dict names, one batch, the scores, the annealed DSM loss
and every gradient, computed by torch both in float32 and in float64. Run once with Debian's
python3-torch:

    /usr/bin/python3 src/test/python/make_model_fixtures.py

CI never runs this; ModelFixtureTest and ScoreCommandTest read the committed output.

When the authors' repository is mirrored on this machine (/work/.mirror/ermongroup+ncsn/repo, a
bare git dir), the script also loads their models/cond_refinenet_dilated.py straight from git
(nothing of it is copied into this project), builds their module for the same configuration, and
asserts that its state_dict has exactly our names, order and shapes, and that after loading our
weights its scores equal ours. That ties the spec and this script to the reference code itself.

File layout (one file per configuration; all tensors little-endian):
    <reference parameter name>   F32   the weights (state_dict order, no `module.` prefix)
    x [N,C,H,W] F32, labels [N] I64, noise [N,C,H,W] F32, sigmas [L] F32
    f32.score, f32.loss [1], f32.grad.x, f32.grad.<name>     torch in float32   (F32)
    f64.score, f64.loss [1], f64.grad.x, f64.grad.<name>     torch in float64   (F64), from the
                                                             same float32 values widened exactly
                                                             (f64.grad.<name> only in the first file)
    __metadata__: channels, ngf, num_classes, height, width, logit_transform, state_dict (JSON list
    of [name, shape] in state_dict order), flops_per_image (2 * conv MACs for one image),
    reference_checked ("true" when the reference module check above ran), torch, generator.
score = s(x, labels) at the unperturbed x; loss = annealed DSM (spec section 2) with
perturbed = x + sigmas[labels] * noise, target = -1/sigma^2 (perturbed - x), anneal power 2;
gradients are d loss / d parameter and d loss / d x.
"""
import json
import math
import os
import struct
import subprocess
import types
from collections import OrderedDict

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_DIR = os.path.join(HERE, "..", "resources", "fixtures")
MIRROR = "/work/.mirror/ermongroup+ncsn/repo"


# ---- parameters, in the reference's state_dict order (spec section 5) -------------------------

class Builder:
    """Creates every parameter in registration order with PyTorch's default init (spec section 5)."""

    def __init__(self, classes, gen):
        self.p = OrderedDict()
        self.classes = classes
        self.gen = gen

    def conv(self, name, ci, co, k=3, bias=True):
        bound = 1.0 / math.sqrt(ci * k * k)  # kaiming_uniform(a=sqrt(5)) == U(-1/sqrt(fan_in), +)
        self.p[name + ".weight"] = (torch.rand(co, ci, k, k, generator=self.gen) * 2 - 1) * bound
        if bias:
            self.p[name + ".bias"] = (torch.rand(co, generator=self.gen) * 2 - 1) * bound

    def norm(self, name, c):
        e = torch.zeros(self.classes, 3 * c)
        e[:, :2 * c] = 1 + 0.02 * torch.randn(self.classes, 2 * c, generator=self.gen)
        self.p[name + ".embed.weight"] = e

    def resblock(self, name, ci, co, down, dil):
        # Registration order of the reference block: conv1, normalize2, conv2, shortcut, normalize1.
        if down and dil:
            self.conv(name + ".conv1", ci, ci)
            self.norm(name + ".normalize2", ci)
            self.conv(name + ".conv2", ci, co)
            self.conv(name + ".shortcut", ci, co)
        elif down:
            self.conv(name + ".conv1", ci, ci)
            self.norm(name + ".normalize2", ci)
            self.conv(name + ".conv2.conv", ci, co)            # ConvMeanPool 3x3
            self.conv(name + ".shortcut.conv", ci, co, k=1)    # ConvMeanPool 1x1
        else:
            self.conv(name + ".conv1", ci, co)
            self.norm(name + ".normalize2", co)
            self.conv(name + ".conv2", co, co)
            assert ci == co  # a plain block with a shortcut never occurs in this network
        self.norm(name + ".normalize1", ci)

    def rcu(self, name, f, blocks):
        for b in range(1, blocks + 1):
            for s in (1, 2):
                self.norm(f"{name}.{b}_{s}_norm", f)
                self.conv(f"{name}.{b}_{s}_conv", f, f, bias=False)

    def refine(self, name, planes, f, start=False, end=False):
        for i, c in enumerate(planes):
            self.rcu(f"{name}.adapt_convs.{i}", c, 2)
        self.rcu(f"{name}.output_convs", f, 3 if end else 1)
        if not start:
            for i, c in enumerate(planes):
                self.conv(f"{name}.msf.convs.{i}", c, f)
            for i, c in enumerate(planes):
                self.norm(f"{name}.msf.norms.{i}", c)
        for s in range(2):
            self.conv(f"{name}.crp.convs.{s}", f, f, bias=False)
        for s in range(2):
            self.norm(f"{name}.crp.norms.{s}", f)


def build(channels, ngf, classes, gen):
    b = Builder(classes, gen)
    g2 = 2 * ngf
    b.conv("begin_conv", channels, ngf)
    b.norm("normalizer", ngf)
    b.conv("end_conv", ngf, channels)
    b.resblock("res1.0", ngf, ngf, False, None)
    b.resblock("res1.1", ngf, ngf, False, None)
    b.resblock("res2.0", ngf, g2, True, None)
    b.resblock("res2.1", g2, g2, False, None)
    b.resblock("res3.0", g2, g2, True, 2)
    b.resblock("res3.1", g2, g2, False, 2)
    b.resblock("res4.0", g2, g2, True, 4)
    b.resblock("res4.1", g2, g2, False, 4)
    b.refine("refine1", [g2], g2, start=True)
    b.refine("refine2", [g2, g2], g2)
    b.refine("refine3", [g2, g2], ngf)
    b.refine("refine4", [ngf, ngf], ngf, end=True)
    return b.p


# ---- forward (spec sections 3 and 4), reading the parameters by name ---------------------------

class Net:
    def __init__(self, p, logit_transform):
        self.p = p
        self.logit = logit_transform
        self.flops = 0  # 2 * MACs of every conv, summed over the batch

    def conv(self, name, x, pad=1, dil=1):
        w = self.p[name + ".weight"]
        y = F.conv2d(x, w, self.p.get(name + ".bias"), padding=pad, dilation=dil)
        self.flops += 2 * y.numel() * w.shape[1] * w.shape[2] * w.shape[3]
        return y

    def norm(self, name, x, y):
        # CIN++: instance norm plus the across-channel term of the channel means (unbiased var).
        c = x.shape[1]
        mu = x.mean(dim=(2, 3))
        var = x.var(dim=(2, 3), unbiased=False)
        m = mu.mean(dim=1, keepdim=True)
        v = mu.var(dim=1, keepdim=True, unbiased=True)
        gamma, alpha, beta = self.p[name + ".embed.weight"][y].split(c, dim=1)
        xhat = (x - mu[:, :, None, None]) / torch.sqrt(var[:, :, None, None] + 1e-5)
        mhat = (mu - m) / torch.sqrt(v + 1e-5)
        return gamma[:, :, None, None] * (xhat + (alpha * mhat)[:, :, None, None]) + beta[:, :, None, None]

    @staticmethod
    def meanpool(x):
        return (x[:, :, 0::2, 0::2] + x[:, :, 1::2, 0::2] + x[:, :, 0::2, 1::2] + x[:, :, 1::2, 1::2]) / 4

    def resblock(self, name, x, y, down, dil):
        d = dil or 1
        h = self.conv(name + ".conv1", F.elu(self.norm(name + ".normalize1", x, y)), d, d)
        h = F.elu(self.norm(name + ".normalize2", h, y))
        if down and not dil:
            h = self.meanpool(self.conv(name + ".conv2.conv", h))
            sc = self.meanpool(self.conv(name + ".shortcut.conv", x, pad=0))
        else:
            h = self.conv(name + ".conv2", h, d, d)
            sc = self.conv(name + ".shortcut", x, d, d) if name + ".shortcut.weight" in self.p else x
        return sc + h

    def rcu(self, name, x, y, blocks):
        for b in range(1, blocks + 1):
            r = x
            for s in (1, 2):
                x = self.conv(f"{name}.{b}_{s}_conv", F.elu(self.norm(f"{name}.{b}_{s}_norm", x, y)))
            x = x + r
        return x

    def refine(self, name, xs, y, size, end=False):
        hs = [self.rcu(f"{name}.adapt_convs.{i}", x, y, 2) for i, x in enumerate(xs)]
        if len(hs) > 1:
            h = 0
            for i, t in enumerate(hs):
                t = self.conv(f"{name}.msf.convs.{i}", self.norm(f"{name}.msf.norms.{i}", t, y))
                h = h + F.interpolate(t, size=size, mode="bilinear", align_corners=True)
        else:
            h = hs[0]
        h = F.elu(h)
        path = h
        for s in range(2):
            path = self.conv(f"{name}.crp.convs.{s}", F.avg_pool2d(self.norm(f"{name}.crp.norms.{s}", path, y), 5, 1, 2))
            h = h + path
        return self.rcu(f"{name}.output_convs", h, y, 3 if end else 1)

    def __call__(self, x, y):
        if not self.logit:
            x = 2 * x - 1
        h = self.conv("begin_conv", x)
        l1 = self.resblock("res1.1", self.resblock("res1.0", h, y, False, None), y, False, None)
        l2 = self.resblock("res2.1", self.resblock("res2.0", l1, y, True, None), y, False, None)
        l3 = self.resblock("res3.1", self.resblock("res3.0", l2, y, True, 2), y, False, 2)
        l4 = self.resblock("res4.1", self.resblock("res4.0", l3, y, True, 4), y, False, 4)
        r1 = self.refine("refine1", [l4], y, l4.shape[2:])
        r2 = self.refine("refine2", [l3, r1], y, l3.shape[2:])
        r3 = self.refine("refine3", [l2, r2], y, l2.shape[2:])
        out = self.refine("refine4", [l1, r3], y, l1.shape[2:], end=True)
        return self.conv("end_conv", F.elu(self.norm("normalizer", out, y)))


def sigmas_for(levels):
    # Spec section 1: geometric 1 -> 0.01, computed in float64, stored as float32.
    return torch.tensor([math.exp(v) for v in torch.linspace(math.log(1.0), math.log(0.01), levels,
                                                               dtype=torch.float64).tolist()]).float()


def dsm(x, noise, labels, sigmas):
    """perturbed = x + sigma_n z, target = -1/sigma_n^2 (perturbed - x), and sigma_n as [N,1,1,1]."""
    used = sigmas[labels].view(-1, 1, 1, 1)
    perturbed = x + used * noise
    target = -1 / used ** 2 * (perturbed - x)
    return perturbed, target, used


# ---- optional check against the authors' module, loaded from the git mirror ---------------------

def reference_module(channels, ngf, classes, image_size, logit_transform):
    if not os.path.isdir(MIRROR):
        return None
    try:
        src = subprocess.run(["git", "-C", MIRROR, "show", "HEAD:models/cond_refinenet_dilated.py"],
                             check=True, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    mod = types.ModuleType("reference_cond_refinenet_dilated")
    exec(compile(src, "cond_refinenet_dilated.py (reference, from git)", "exec"), mod.__dict__)
    cfg = types.SimpleNamespace(
        data=types.SimpleNamespace(logit_transform=logit_transform, channels=channels, image_size=image_size),
        model=types.SimpleNamespace(ngf=ngf, num_classes=classes))
    return mod.CondRefineNetDilated(cfg)


def check_against_reference(params, cfg, x, labels):
    ref = reference_module(cfg["channels"], cfg["ngf"], cfg["classes"], cfg["h"], cfg["logit"])
    if ref is None:
        print("  reference module not available: skipped the state_dict / forward check")
        return False
    sd = ref.state_dict()
    ours = [(k, list(v.shape)) for k, v in params.items()]
    theirs = [(k, list(v.shape)) for k, v in sd.items()]
    assert ours == theirs, "state_dict differs from the reference:\n" + "\n".join(
        f"{a} | {b}" for a, b in zip(ours, theirs) if a != b)
    ref.load_state_dict(params)
    # Compared in float32, the precision the reference runs in: after .double() its MSF block
    # would still sum into a float32 torch.zeros buffer, so a float64 comparison stops at ~1e-7.
    with torch.no_grad():
        want = ref(x, labels)
        got = Net(params, cfg["logit"])(x, labels)
    err = (want - got).abs().max().item() / want.abs().max().item()
    assert err < 2e-6, f"forward differs from the reference module: {err}"
    print(f"  reference module: same {len(theirs)} names/shapes/order, float32 forward rel. diff {err:.1e}")
    return True


# ---- one fixture ---------------------------------------------------------------------------------

def run(params, x, labels, noise, sigmas, logit, dtype):
    """score(x), DSM loss and gradients of loss w.r.t. every parameter and x, all in `dtype`."""
    p = OrderedDict((k, v.to(dtype).clone().requires_grad_(True)) for k, v in params.items())
    net = Net(p, logit)
    xs = x.to(dtype).clone().requires_grad_(True)
    with torch.no_grad():
        score = Net(p, logit)(x.to(dtype), labels)
    perturbed, target, used = dsm(xs, noise.to(dtype), labels, sigmas.to(dtype))
    s = net(perturbed, labels)
    loss = (0.5 * ((s - target) ** 2).sum(dim=(1, 2, 3)) * used.view(-1) ** 2).mean()
    grads = torch.autograd.grad(loss, list(p.values()) + [xs])
    out = OrderedDict()
    out["score"] = score
    out["loss"] = loss.reshape(1)
    out["grad.x"] = grads[-1]
    for k, g in zip(p.keys(), grads[:-1]):
        out["grad." + k] = g
    return out


def flops_per_image(params, c, h, w, logit):
    net = Net(params, logit)
    with torch.no_grad():
        net(torch.rand(1, c, h, w), torch.zeros(1, dtype=torch.int64))
    return net.flops


def make(name, channels, ngf, classes, n, h, w, logit, seed, f64_param_grads=True):
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    params = build(channels, ngf, classes, gen)
    # Randomise the CIN++ tables away from their init so gamma, alpha and beta all matter.
    for k, v in params.items():
        if k.endswith(".embed.weight"):
            c = v.shape[1] // 3
            v[:, :c] = 1 + 0.3 * torch.randn(classes, c, generator=gen)
            v[:, c:2 * c] = 0.5 * torch.randn(classes, c, generator=gen)
            v[:, 2 * c:] = 0.3 * torch.randn(classes, c, generator=gen)
    # 8-bit pixels k/255, dequantised as in spec section 2: x * 255/256 + u/256 = (k + u) / 256.
    k = torch.randint(0, 256, (n, channels, h, w), generator=gen).float()
    x = (k + torch.rand(n, channels, h, w, generator=gen)) / 256
    if logit:
        lam = 1e-6
        x = lam + (1 - 2 * lam) * x.double()
        x = (torch.log(x) - torch.log1p(-x)).float()
    labels = torch.randint(0, classes, (n,), generator=gen)
    # Image 0 takes the smallest noise level, except in logit space: there the reference's float32
    # target -(x~ - x)/sigma^2 loses digits (|x| reaches 13.8, sigma z is ~0.01), so torch's own
    # float32 gradient of x is off by ~1e-3 of its largest value, while the engine computes the
    # exact -z/sigma. A middle level keeps the float32 comparison about the network, not that.
    labels[0] = classes // 2 if logit else classes - 1
    noise = torch.randn(n, channels, h, w, generator=gen)
    sigmas = sigmas_for(classes)

    cfg = {"channels": channels, "ngf": ngf, "classes": classes, "h": h, "logit": logit}
    checked = check_against_reference(params, cfg, x, labels)

    tensors = OrderedDict(params)
    tensors["x"] = x
    tensors["labels"] = labels
    tensors["noise"] = noise
    tensors["sigmas"] = sigmas
    for dtype, tag in [(torch.float32, "f32"), (torch.float64, "f64")]:
        out = run(params, x, labels, noise, sigmas, logit, dtype)
        for k, v in out.items():
            if tag == "f32" or f64_param_grads or k in ("score", "loss", "grad.x"):
                tensors[tag + "." + k] = v
    meta = {
        "channels": str(channels), "ngf": str(ngf), "num_classes": str(classes), "height": str(h), "width": str(w),
        "logit_transform": str(logit).lower(),
        "state_dict": json.dumps([[k, list(v.shape)] for k, v in params.items()]),
        "flops_per_image": str(flops_per_image(params, channels, h, w, logit)),
        "reference_checked": str(checked).lower(),
        "generator": "src/test/python/make_model_fixtures.py", "torch": torch.__version__,
    }
    path = os.path.join(OUT_DIR, name)
    size = write(path, tensors, meta)
    nparams = sum(v.numel() for v in params.values())
    print(f"{os.path.normpath(path)}: {len(params)} parameters ({nparams} values), {size} bytes,"
          f" loss f32 {tensors['f32.loss'].item():.6f} f64 {tensors['f64.loss'].item():.6f}")


def write(path, tensors, meta):
    dt = {torch.float64: "F64", torch.float32: "F32", torch.int64: "I64"}
    header, offset, blobs = {"__metadata__": meta}, 0, []
    for k, t in tensors.items():
        t = t.detach().contiguous()
        data = t.numpy().astype("<" + t.numpy().dtype.str[1:]).tobytes()
        header[k] = {"dtype": dt[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    hj = json.dumps(header).encode()
    hj += b" " * (-len(hj) % 8)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hj)) + hj + b"".join(blobs))
    return 8 + len(hj) + offset


if __name__ == "__main__":
    torch.set_num_threads(1)
    # name, channels, ngf, L, batch, H, W, logit transform, seed
    make("model_c1_ngf4_L3_8x8.safetensors", 1, 4, 3, 2, 8, 8, False, 101)
    # The larger two leave out their float64 parameter gradients to keep all fixtures under 2 MB
    # (the float64 path is the same code for every size; the first file checks it fully).
    make("model_c3_ngf6_L4_10x10.safetensors", 3, 6, 4, 3, 10, 10, False, 202, f64_param_grads=False)
    make("model_c1_ngf4_L10_28x28_logit.safetensors", 1, 4, 10, 1, 28, 28, True, 303, f64_param_grads=False)
