#!/usr/bin/env python3
"""Square float32 matrix multiply through numpy's BLAS (Debian: OpenBLAS when libopenblas0 is
installed and selected by update-alternatives), timed like ncsn.bench.GemmPeak: per size, at least
1 s of warm-up, then the best and the median of 5 samples of at least 0.3 s, in GFLOP/s
(2 n^3 per call). The thread count comes from OPENBLAS_NUM_THREADS (set it; bench/gemm_compare.sh
does). Prints one line per size: "n best median" and, first, which BLAS numpy uses.

    OPENBLAS_NUM_THREADS=2 python3 bench/openblas_gemm.py 512,1024,2048
"""
import sys
import time

import numpy as np


def blas_name():
    try:
        cfg = np.__config__.get_info("blas_opt_info")  # numpy < 1.26
        libs = cfg.get("libraries", [])
    except Exception:
        libs = []
    try:
        with open("/proc/self/maps") as f:
            maps = f.read()
        for cand in ("libblas", "openblas", "mkl", "blis"):
            for line in maps.splitlines():
                path = line.split()[-1]
                if cand in path and ".so" in path and "lapack" not in path:
                    return path
    except OSError:
        pass
    return ",".join(libs) or "unknown"


def gflops(n):
    rng = np.random.default_rng(7)
    a = (rng.random((n, n), dtype=np.float32) - 0.5)
    b = (rng.random((n, n), dtype=np.float32) - 0.5)
    c = np.empty((n, n), dtype=np.float32)
    flops = 2.0 * n ** 3
    t0 = time.perf_counter()
    calls = 0
    while calls < 3 or time.perf_counter() - t0 < 1.0:
        np.matmul(a, b, out=c)
        calls += 1
    samples = []
    for _ in range(5):
        calls = 0
        t0 = time.perf_counter()
        while True:
            np.matmul(a, b, out=c)
            calls += 1
            dt = time.perf_counter() - t0
            if dt >= 0.3:
                break
        samples.append(flops * calls / dt / 1e9)
    samples.sort()
    return samples[-1], samples[len(samples) // 2]


def main():
    sizes = [int(s) for s in (sys.argv[1] if len(sys.argv) > 1 else "512,1024,2048").split(",")]
    np.matmul(np.ones((8, 8), np.float32), np.ones((8, 8), np.float32))  # loads the BLAS
    print("blas", blas_name(), flush=True)
    for n in sizes:
        best, med = gflops(n)
        print(f"{n} {best:.1f} {med:.1f}", flush=True)


if __name__ == "__main__":
    main()
