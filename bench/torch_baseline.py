#!/usr/bin/python3
"""PyTorch baseline for `ncsn bench`: the same network, steps, arguments and JSON keys, timed in
Debian's python3-torch (run it with /usr/bin/python3). A benchmark, not a test: CI never runs or
imports it.

    /usr/bin/python3 bench/torch_baseline.py train|sample [--ngf 64 --channels 1 --image-size 28
        --batch 128 --steps 5 --warmup 2 --threads N --device cpu] [--json FILE]

Network: CondRefineNetDilated built from ../shared/ncsn-spec.md by our own functional code in
src/test/python/make_model_fixtures.py (parameters under the reference names with PyTorch's
default init; forward reads them by name). Only its CIN++ is replaced here by the reference's
formulation on top of the fused F.instance_norm, so PyTorch runs its fastest kernel for the norm,
as the authors' module does. L = 10 levels, sigmas 1 .. 0.01, float32.

Steps (as in ncsn.cli.BenchCommand):
    train   y [B] ~ U{0..9}, z [B,C,H,W] ~ N(0,1), loss = annealed DSM (anneal power 2) of
            score(x + sigma[y] z, y), zero_grad, backward, torch.optim.Adam(lr 1e-3) step;
            x [B,C,H,W] is one fixed U[0,1) batch
    sample  under torch.no_grad(): s = score(x, level 9); x += eps s + sqrt(2 eps) z in place (eps 2e-5)

Output keys: seconds_per_step_median, seconds_per_step_min, images_per_second,
forward_gflop_per_image (2 x conv multiply-adds of one forward), achieved_gflops (train: 3 forwards
per image per step, sample: 1), peak_heap_bytes, plus the settings. peak_heap_bytes here is the
process's peak resident set size (resource.getrusage ru_maxrss, KiB -> bytes): everything the
process ever held in RAM (Python, libtorch, allocator caches), measured over the whole run, while the
engine reports the JVM heap pools' peak usage during the timed steps only. Compare them loosely.

--device cuda (the engine's `ncsn bench ... --device cuda` counterpart): the weights and x are built
on the CPU with the same generator, then moved to the GPU; labels and noise are drawn there (a CUDA
generator seeded with SEED); torch.backends.cudnn.benchmark = True (cuDNN picks its fastest
convolution algorithms during the warm-up). Each step is timed with a pair of torch.cuda.Event
after a synchronize, as the engine times its steps with CUDA events. Extra keys: device, gpu,
peak_device_bytes (torch.cuda.max_memory_allocated over the timed steps), achieved_tflops.
"""
import argparse
import json
import math
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "src", "test", "python"))
import make_model_fixtures as fx  # noqa: E402  (our own spec-built network)

LEVELS = 10
LR = 1e-3
EPS = 2e-5
SEED = 1234
KEYS = ["seconds_per_step_median", "seconds_per_step_min", "images_per_second", "forward_gflop_per_image",
        "achieved_gflops", "peak_heap_bytes"]


class FastNet(fx.Net):
    """make_model_fixtures.Net with CIN++ on F.instance_norm and no FLOP counting in the timed path."""

    def conv(self, name, x, pad=1, dil=1):
        return F.conv2d(x, self.p[name + ".weight"], self.p.get(name + ".bias"), padding=pad, dilation=dil)

    def norm(self, name, x, y):
        c = x.shape[1]
        mu = x.mean(dim=(2, 3))                                     # [N, C] channel means
        m = mu.mean(dim=1, keepdim=True)
        v = mu.var(dim=1, keepdim=True, unbiased=True)              # across channels, unbiased
        mhat = (mu - m) / torch.sqrt(v + 1e-5)
        gamma, alpha, beta = self.p[name + ".embed.weight"][y].split(c, dim=1)
        h = F.instance_norm(x, eps=1e-5) + (alpha * mhat)[:, :, None, None]
        return gamma[:, :, None, None] * h + beta[:, :, None, None]


def fail(msg):
    print("torch_baseline: " + msg, file=sys.stderr)
    sys.exit(2)


def main(argv=None):
    ap = argparse.ArgumentParser(description="PyTorch baseline of `ncsn bench`.")
    ap.add_argument("mode", choices=["train", "sample"])
    ap.add_argument("--ngf", type=int, default=64)
    ap.add_argument("--channels", type=int, default=1)
    ap.add_argument("--image-size", type=int, default=28)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--json", default=None)
    ap.add_argument("--tf32", choices=["default", "on", "off"], default="default",
                    help="CUDA only: TF32 tensor cores for cuDNN convolutions and matmuls. 'default' keeps "
                         "PyTorch's (on for cuDNN convolutions, off for matmuls); 'off' is float32 throughout, "
                         "like the engine's kernels.")
    a = ap.parse_args(argv)
    if a.device == "cuda":
        if not torch.cuda.is_available():
            fail("--device cuda: torch.cuda.is_available() is False (no GPU, or a CPU-only torch build); use --device cpu.")
        torch.backends.cudnn.benchmark = True
        if a.tf32 != "default":
            torch.backends.cudnn.allow_tf32 = a.tf32 == "on"
            torch.backends.cuda.matmul.allow_tf32 = a.tf32 == "on"
    dev = torch.device(a.device)
    if a.ngf < 2 or a.channels < 1 or a.batch < 1 or a.steps < 1 or a.warmup < 0:
        fail("--ngf >= 2, --channels >= 1, --batch >= 1, --steps >= 1 and --warmup >= 0 are required.")
    if a.image_size < 2 or a.image_size % 2:
        fail(f"--image-size must be even and at least 2, got {a.image_size}.")
    cpus = os.cpu_count() or 1
    threads = cpus if a.threads is None else a.threads
    if threads < 1:
        fail(f"--threads must be at least 1, got {threads}.")
    if threads > cpus:
        print(f"torch_baseline: --threads {threads} is more than the {cpus} available processors; using {cpus}.",
              file=sys.stderr)
        threads = cpus
    torch.set_num_threads(threads)

    gen = torch.Generator().manual_seed(SEED)
    params = fx.build(a.channels, a.ngf, LEVELS, gen)
    gflop = fx.flops_per_image(params, a.channels, a.image_size, a.image_size, False) / 1e9
    params = {k: v.detach().to(dev) for k, v in params.items()}
    for v in params.values():
        v.requires_grad_(a.mode == "train")
    net = FastNet(params, False)
    sigmas = fx.sigmas_for(LEVELS).to(dev)
    x = torch.rand(a.batch, a.channels, a.image_size, a.image_size, generator=gen).to(dev)
    if a.device == "cuda":
        gen = torch.Generator(device=dev).manual_seed(SEED)  # labels and noise drawn on the GPU

    if a.mode == "train":
        opt = torch.optim.Adam(list(params.values()), lr=LR)

        def step():
            labels = torch.randint(0, LEVELS, (a.batch,), generator=gen, device=dev)
            z = torch.randn(x.shape, generator=gen, device=dev)
            perturbed, target, used = fx.dsm(x, z, labels, sigmas)
            s = net(perturbed, labels)
            loss = (0.5 * ((s - target) ** 2).sum(dim=(1, 2, 3)) * used.view(-1) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss.item()
    else:
        labels = torch.full((a.batch,), LEVELS - 1, dtype=torch.int64, device=dev)
        noise = math.sqrt(2 * EPS)

        def step():
            with torch.no_grad():
                s = net(x, labels)
                x.add_(s, alpha=EPS).add_(torch.randn(x.shape, generator=gen, device=dev), alpha=noise)

    for _ in range(a.warmup):
        step()
    seconds = []
    if a.device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        for _ in range(a.steps):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            step()
            end.record()
            end.synchronize()
            seconds.append(start.elapsed_time(end) * 1e-3)
    else:
        for _ in range(a.steps):
            t0 = time.perf_counter()
            step()
            seconds.append(time.perf_counter() - t0)
    med = statistics.median(seconds)
    fwd = 3 if a.mode == "train" else 1
    r = {
        "seconds_per_step_median": med,
        "seconds_per_step_min": min(seconds),
        "images_per_second": a.batch / med,
        "forward_gflop_per_image": gflop,
        "achieved_gflops": fwd * gflop * a.batch / med,
        "peak_heap_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "mode": a.mode, "engine": "pytorch " + torch.__version__, "ngf": a.ngf, "channels": a.channels,
        "image_size": a.image_size, "batch": a.batch, "steps": a.steps, "warmup": a.warmup, "threads": threads,
        "seconds_per_step": seconds,
        "device": a.device,
    }
    if a.device == "cuda":
        r["gpu"] = torch.cuda.get_device_name()
        r["peak_device_bytes"] = torch.cuda.max_memory_allocated()
        r["achieved_tflops"] = fwd * gflop * a.batch / med / 1e3
        r["timing"] = "cuda events"
        r["tf32_conv"] = torch.backends.cudnn.allow_tf32
        r["tf32_matmul"] = torch.backends.cuda.matmul.allow_tf32
    text = json.dumps(r)
    print(text)
    if a.json:
        tmp = a.json + ".tmp"
        with open(tmp, "w") as f:
            f.write(text + "\n")
        os.replace(tmp, a.json)


if __name__ == "__main__":
    main()
