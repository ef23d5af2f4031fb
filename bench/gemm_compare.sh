#!/usr/bin/env bash
# gemm_compare.sh: the engine's sgemm (ncsn.bench.GemmPeak, Vector API kernel) against numpy's
# OpenBLAS (bench/openblas_gemm.py) on square float32 products, run interleaved R times, then a
# table per size: best GFLOP/s of each (median over the R rounds of each round's best) at 1 and at
# 2 threads, the ratio engine/OpenBLAS (median and min-max over the rounds) and the engine's share
# of the FMA peak GemmPeak measures. A benchmark, not a test: CI never runs it.
#
# Usage: bench/gemm_compare.sh [R]     (default 3; sizes: SIZES, default 512,1024,2048)
# Needs: target/benchmarks.jar (mvn -B -q -Pbench package -DskipTests), python3-numpy and
# libopenblas0-pthread (apt); numpy must resolve libblas.so.3 to OpenBLAS (update-alternatives).
set -euo pipefail
here="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)"
root="$(cd "$here/.." && pwd)"
rounds="${1:-3}"
sizes="${SIZES:-512,1024,2048}"
jar="${BENCH_JAR:-$root/target/benchmarks.jar}"
py="${PY:-/usr/bin/python3}"
[[ -f "$jar" ]] || { echo "gemm_compare.sh: $jar not found: mvn -B -q -Pbench package -DskipTests" >&2; exit 2; }
out="$(mktemp -d /tmp/ncsn-gemm.XXXXXX)"
for r in $(seq 1 "$rounds"); do
  java --add-modules jdk.incubator.vector -Xms2g -Xmx2g -XX:+AlwaysPreTouch -cp "$jar" ncsn.bench.GemmPeak "$sizes" \
    > "$out/engine_$r.txt" 2>/dev/null
  for t in 1 2; do
    OPENBLAS_NUM_THREADS=$t OMP_NUM_THREADS=$t "$py" "$here/openblas_gemm.py" "$sizes" > "$out/blas_${t}_$r.txt"
  done
  echo "  round $r/$rounds done" >&2
done
"$py" - "$out" "$rounds" <<'PY'
import glob, os, re, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
eng = {}   # (n, threads) -> [best per round]
peak = {}
blas = {}
lib = "?"
for r in range(1, rounds + 1):
    for line in open(os.path.join(out, f"engine_{r}.txt")):
        m = re.match(r"FMA peak .*1 thread ([\d.]+) GFLOP/s, 2 threads ([\d.]+)", line)
        if m:
            peak.setdefault(1, []).append(float(m.group(1)))
            peak.setdefault(2, []).append(float(m.group(2)))
            continue
        tok = line.split()
        if len(tok) == 13 and tok[0].isdigit():  # n, then (best (median) pct) x scalar t1, t2, vector t1, t2
            n = int(tok[0])
            eng.setdefault((n, 1), []).append(float(tok[7]))
            eng.setdefault((n, 2), []).append(float(tok[10]))
    for t in (1, 2):
        for line in open(os.path.join(out, f"blas_{t}_{r}.txt")):
            tok = line.split()
            if tok[0] == "blas":
                lib = tok[1]
            else:
                blas.setdefault((int(tok[0]), t), []).append(float(tok[1]))
print(f"engine (Vector API sgemm) vs numpy BLAS ({lib}), {rounds} interleaved rounds; GFLOP/s = best of 5 samples")
print(f"FMA peak: 1 thread {statistics.median(peak[1]):.1f}, 2 threads {statistics.median(peak[2]):.1f} GFLOP/s")
print(f"{'n':>6} {'threads':>7} {'engine':>8} {'%peak':>6} {'openblas':>9} {'ratio median':>13} {'ratio min-max':>14}")
for (n, t) in sorted(eng):
    e, b = eng[(n, t)], blas.get((n, t), [])
    if not b:
        continue
    ratios = [x / y for x, y in zip(e, b)]
    pk = statistics.median(peak[t])
    print(f"{n:>6} {t:>7} {statistics.median(e):8.1f} {100 * statistics.median(e) / pk:5.0f}% {statistics.median(b):9.1f}"
          f" {statistics.median(ratios):13.2f} {min(ratios):6.2f}-{max(ratios):.2f}")
PY
echo "(raw output in $out)"
