#!/usr/bin/env bash
# gpu-check.sh: everything the GPU backend must show on a machine with an NVIDIA GPU, in one run
# (the device machines here have no Java or Maven: build and pack first, see README "GPU").
#
#   mvn -B -q package -DskipTests && mvn -B -q test-compile && bench/gpu-pack.sh   # here -> .device/
#   bash bench/gpu-check.sh [OUT]                                                # there
#
# Steps, most important first, each time-boxed by its own limit and by BUDGET (seconds for the
# whole script, default 600); a failing step is recorded and the rest still run:
#   info, selftest --gpu, compute-sanitizer memcheck on selftest --gpu --quick, kernel benchmarks,
#   train/sample step benchmarks against PyTorch on the same GPU, the JUnit GPU tests, the JMH GPU
#   benchmarks (when benchmarks.jar is packed), and (when
#   FM_DATA names a Fashion-MNIST folder) the default training run on the GPU followed by sampling.
#   With SAMPLE_CHECKPOINT=FILE: `ncsn sample --device cuda` from that checkpoint (100 samples).
# Output (few files, so all of it can be copied back): OUT/all.log (every step's output, appended
# as it runs, including the step benchmarks' JSON), OUT/summary.txt, OUT/bench_kernels.json,
# OUT/jmh_gpu.json, and the samples' samples.png and timing.json. Scratch goes to a temporary folder.
# The summary table is printed last.
set -uo pipefail
cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."
out="${1:-${OUT:-/tmp/ncsn-gpu-check}}"
budget=${BUDGET:-600}
work=$(mktemp -d "${TMPDIR:-/tmp}/ncsn-gpu-work.XXXXXX")
mkdir -p "$out" "$work"
java=(bash .device/java.sh -Xss8m -XX:+UseParallelGC ${JAVA_OPTS:-})
# benchmarks.jar (-Pbench) holds everything ncsn-engine.jar does plus the JMH benchmarks: pack
# either; with benchmarks.jar the JMH GPU benchmarks run too.
jar=.device/ncsn-engine.jar
[[ -f .device/benchmarks.jar ]] && jar=.device/benchmarks.jar
ncsn=("${java[@]}" -Xmx48g -cp "$jar" ncsn.cli.Main)
log="$out/all.log"
summary="$out/summary.txt"
: > "$summary"
t0=$SECONDS

step() { # name limit cmd... : runs cmd (output appended to all.log), records rc, seconds, last line
  local name=$1 limit=$2; shift 2
  local left=$((budget - (SECONDS - t0)))
  if ((left < 10)); then printf '%-16s skipped: budget spent\n' "$name" >> "$summary"; return 0; fi
  ((limit > left)) && limit=$left
  local s=$SECONDS
  echo "==> [$((SECONDS - t0))s] $name (limit ${limit}s)" | tee -a "$log" >&2
  timeout --signal=KILL "$limit" "$@" > "$out/.step.log" 2>&1
  local rc=$?
  cat "$out/.step.log" >> "$log"
  printf '%-16s rc=%-4s %4ss  %s\n' "$name" "$rc" "$((SECONDS - s))" "$(grep -v '^\s*$' "$out/.step.log" | tail -n 1 | cut -c1-100)" >> "$summary"
  rm -f "$out/.step.log"
  return 0
}

nvidia-smi >> "$log" 2>&1
step info           30  "${ncsn[@]}" info
step selftest      120  "${ncsn[@]}" selftest --gpu
if command -v compute-sanitizer >/dev/null 2>&1; then
  step memcheck    150  compute-sanitizer --tool memcheck --error-exitcode 9 --target-processes all \
        "${ncsn[@]}" selftest --gpu --quick
fi
ck=${SAMPLE_CHECKPOINT:-}
if [[ -n "${FM_DATA:-}" ]]; then
  step train-fm    300  "${ncsn[@]}" train --device cuda --run "$work/fm" --set "data.path=$FM_DATA" --quiet
  ck=$(ls -1 "$work"/fm/checkpoints/*.safetensors 2>/dev/null | sort -V | tail -n 1)
fi
if [[ -n "$ck" ]]; then
  step sample      120  "${ncsn[@]}" sample --device cuda --checkpoint "$ck" --out "$work/samples" --n 100 --denoise
  cp "$work/samples/samples.png" "$work/samples/timing.json" "$out/" 2>/dev/null
fi
step bench-kernels  90  "${ncsn[@]}" bench kernels --device cuda --json "$out/bench_kernels.json"
for mode in train sample; do
  if [[ $mode == train ]]; then args="--ngf 64 --channels 1 --image-size 28 --batch 128 --steps 10 --warmup 3"
  else args="--ngf 64 --channels 1 --image-size 28 --batch 25 --steps 20 --warmup 5"; fi
  # shellcheck disable=SC2086
  step "engine-$mode" 60 "${ncsn[@]}" bench $mode $args --device cuda --json "$work/engine_$mode.json"
  # shellcheck disable=SC2086
  step "torch-$mode"  60 python3 bench/torch_baseline.py $mode $args --device cuda --json "$work/torch_$mode.json"
done
step junit-gpu     180  "${java[@]}" -jar .device/junit-console.jar execute \
        --class-path ".device/test-classes:$jar" --scan-class-path .device/test-classes --include-classname '.*Gpu.*Test' \
        --details=summary --disable-banner
if [[ $jar == *benchmarks.jar ]]; then
  step jmh-gpu     150  "${java[@]}" -jar "$jar" GpuKernelBench -p layer=128ch_32x32_d1 \
        -f 1 -wi 2 -i 3 -w 500ms -r 500ms -rf json -rff "$out/jmh_gpu.json"
fi

# Ratios engine/torch of images per second, when both JSON files exist.
python3 - "$work" >> "$summary" 2>&1 <<'PY'
import json, os, sys
out = sys.argv[1]
for mode in ("train", "sample"):
    try:
        e = json.load(open(os.path.join(out, f"engine_{mode}.json")))
        t = json.load(open(os.path.join(out, f"torch_{mode}.json")))
        print(f"{mode:7s} engine {e['seconds_per_step_median']*1e3:9.2f} ms/step  torch {t['seconds_per_step_median']*1e3:9.2f} ms/step"
              f"  engine/torch images/s = {e['images_per_second']/t['images_per_second']:.3f}")
        if "graph" in e:
            print(f"{mode:7s} CUDA graph: {e['graph']}, graph speedup {e.get('graph_speedup')}")
    except Exception as ex:
        print(f"{mode:7s} no ratio ({ex})")
PY
echo "total $((SECONDS - t0)) s" >> "$summary"
echo "----- selftest failures -----"
grep -E 'FAIL' "$log" | head -n 30
echo "----- summary -----"
cat "$summary"
