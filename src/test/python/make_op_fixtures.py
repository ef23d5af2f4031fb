#!/usr/bin/python3
"""Writes src/test/resources/fixtures/ops_torch.safetensors: inputs, outputs and autograd
gradients of each engine op computed by PyTorch in float64 (and Adam trajectories in float32
and float64), so the engine's float64 references are checked against an independent
implementation. Run once with Debian's python3-torch:

    /usr/bin/python3 src/test/python/make_op_fixtures.py

CI never runs this; it reads the committed output. Written without the safetensors package
(not in Debian): the format is an 8-byte header length, a JSON header and raw little-endian data.
"""
import json
import math
import os
import struct

import torch
import torch.nn.functional as F

torch.manual_seed(20191112)
torch.set_default_dtype(torch.float64)
OUT = os.path.join(os.path.dirname(__file__), "..", "resources", "fixtures", "ops_torch.safetensors")
tensors = {}


def put(name, t):
    tensors[name] = t.detach().clone().contiguous()  # a copy: optimisers update parameters in place


def leaf(*shape, scale=1.0, shift=0.0):
    return (torch.randn(*shape) * scale + shift).requires_grad_(True)


def record(prefix, out, inputs):
    """Stores inputs, out, a random upstream gradient and d(sum(out*gout))/d(input) for each."""
    gout = torch.randn_like(out)
    grads = torch.autograd.grad(out, [t for t in inputs.values() if t.requires_grad], gout)
    put(prefix + ".out", out)
    put(prefix + ".gout", gout)
    it = iter(grads)
    for k, t in inputs.items():
        put(prefix + "." + k, t)
        if t.requires_grad:
            put(prefix + ".grad." + k, next(it))


# conv2d, stride 1: (name, N, Ci, Co, H, W, k, padding, dilation, bias)
for name, n, ci, co, h, w, k, p, d, bias in [
    ("conv_d1", 2, 3, 4, 6, 7, 3, 1, 1, True),
    ("conv_d2", 1, 5, 3, 9, 8, 3, 2, 2, True),
    ("conv_d4", 2, 2, 3, 11, 9, 3, 4, 4, False),
    ("conv_1x1", 3, 5, 7, 4, 5, 1, 0, 1, True),
    ("conv_valid", 1, 3, 2, 6, 5, 3, 0, 1, True),
]:
    ins = {"x": leaf(n, ci, h, w), "w": leaf(co, ci, k, k, scale=0.3)}
    if bias:
        ins["b"] = leaf(co)
    out = F.conv2d(ins["x"], ins["w"], ins.get("b"), padding=p, dilation=d)
    record(name, out, ins)

# CondInstanceNorm2d++ exactly as the reference computes it (instance norm + across-channel term).
def cin_pp(x, embed, y):
    c = x.shape[1]
    means = x.mean(dim=(2, 3))
    m = means.mean(dim=-1, keepdim=True)
    v = means.var(dim=-1, keepdim=True)  # unbiased, as torch.var's default
    means = (means - m) / torch.sqrt(v + 1e-5)
    hn = F.instance_norm(x, eps=1e-5)
    gamma, alpha, beta = embed[y].chunk(3, dim=-1)
    hn = hn + means[..., None, None] * alpha[..., None, None]
    return gamma.view(-1, c, 1, 1) * hn + beta.view(-1, c, 1, 1)


for name, n, c, h, w, classes, labels in [
    ("cin_a", 3, 5, 4, 6, 4, [2, 0, 2]),
    ("cin_b", 1, 2, 3, 3, 3, [1]),
    ("cin_c", 2, 7, 5, 1, 10, [9, 9]),
]:
    x = leaf(n, c, h, w, scale=2.0, shift=0.5)
    embed = torch.cat([torch.randn(classes, c) * 0.2 + 1, torch.randn(classes, c) * 0.2 + 1,
                       torch.randn(classes, c) * 0.2], dim=1).requires_grad_(True)
    y = torch.tensor(labels, dtype=torch.int64)
    record(name, cin_pp(x, embed, y), {"x": x, "embed": embed})
    put(name + ".labels", y)

ins = {"x": leaf(2, 3, 7, 6)}
record("avgpool5", F.avg_pool2d(ins["x"], 5, stride=1, padding=2), ins)
ins = {"x": leaf(1, 3, 6, 8)}
record("meanpool2", F.avg_pool2d(ins["x"], 2), ins)
ins = {"x": leaf(2, 3, 3, 5)}
record("resize_up", F.interpolate(ins["x"], size=(7, 9), mode="bilinear", align_corners=True), ins)
ins = {"x": leaf(1, 2, 9, 7)}
record("resize_down", F.interpolate(ins["x"], size=(4, 3), mode="bilinear", align_corners=True), ins)
ins = {"x": leaf(3, 4, 5)}
record("elu", F.elu(ins["x"]), ins)
ins = {"x": leaf(4, 9, scale=10.0)}
record("softplus", F.softplus(ins["x"]), ins)
ins = {"x": leaf(5, 3), "w": leaf(4, 3), "b": leaf(4)}
record("linear", F.linear(ins["x"], ins["w"], ins["b"]), ins)

# Annealed DSM loss as the reference writes it (target from the perturbed sample, not -z/sigma).
sigmas = torch.tensor(torch.exp(torch.linspace(math.log(1.0), math.log(0.01), 10)).float().tolist())
x = torch.rand(3, 2, 4, 5)
labels = torch.tensor([0, 9, 4])
noise = torch.randn_like(x)
used = sigmas[labels].view(3, 1, 1, 1)
perturbed = x + noise * used
target = -1 / used ** 2 * (perturbed - x)
score = leaf(3, 2, 4, 5)
loss = (0.5 * ((score - target) ** 2).sum(dim=(1, 2, 3)) * used.squeeze() ** 2.0).mean()
(gscore,) = torch.autograd.grad(loss, score)
for k, t in [("x", x), ("noise", noise), ("labels", labels), ("sigmas", sigmas), ("perturbed", perturbed),
             ("score", score), ("loss", loss.reshape(1)), ("grad.score", gscore)]:
    put("dsm." + k, t)

# Adam trajectories: 6 steps, float32 and float64, plain / weight decay / amsgrad.
for dtype, tag in [(torch.float32, "f32"), (torch.float64, "f64")]:
    for name, kw in [("plain", {}), ("wd", {"weight_decay": 0.1}), ("ams", {"amsgrad": True})]:
        g = torch.Generator().manual_seed(7)
        p = torch.randn(11, generator=g, dtype=torch.float64).to(dtype).requires_grad_(True)
        put(f"adam_{name}_{tag}.p0", p)
        opt = torch.optim.Adam([p], lr=1e-2, betas=(0.9, 0.999), eps=1e-8, **kw)
        for step in range(6):
            grad = torch.randn(11, generator=g, dtype=torch.float64).to(dtype) * (step + 1)
            if step == 3:
                grad[0] = 0.0
            p.grad = grad.clone()
            opt.step()
            put(f"adam_{name}_{tag}.g{step}", grad)
            put(f"adam_{name}_{tag}.p{step + 1}", p)

DT = {torch.float64: ("F64", 8), torch.float32: ("F32", 4), torch.int64: ("I64", 8)}
header, offset, blobs = {"__metadata__": {"generator": "src/test/python/make_op_fixtures.py",
                                          "torch": torch.__version__}}, 0, []
for k, t in tensors.items():
    code, width = DT[t.dtype]
    data = t.numpy().astype("<" + t.numpy().dtype.str[1:]).tobytes()
    header[k] = {"dtype": code, "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
    offset += len(data)
    blobs.append(data)
hj = json.dumps(header).encode()
hj += b" " * (-len(hj) % 8)
os.makedirs(os.path.dirname(OUT), exist_ok=True)
with open(OUT, "wb") as f:
    f.write(struct.pack("<Q", len(hj)) + hj + b"".join(blobs))
print(f"wrote {len(tensors)} tensors, {offset} bytes of data to {os.path.normpath(OUT)}")
