#!/usr/bin/env bash
# gpu-check.sh: everything the GPU backend must show on a machine with an NVIDIA GPU, in one run
# (the device machines here have no Java or Maven: build and pack first, see README "GPU").
#
#   mvn -B -q package -DskipTests && bench/gpu-pack.sh          # here: jar, test classes, JUnit console -> .device/
#   bash bench/gpu-check.sh [OUT]                              # there: logs and JSON under OUT
#
# Steps (each time-boxed; a failing step is recorded and the rest still run):
#   info, selftest --gpu, the JUnit GPU tests, compute-sanitizer memcheck on selftest --gpu --quick,
#   kernel benchmarks, train/sample step benchmarks against PyTorch on the same GPU, and (when
#   FM_DATA is set) the default Fashion-MNIST training run on the GPU followed by sampling.
# Prints a summary table last; full logs are in OUT/logs.tgz.
set -uo pipefail
cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."
out="${1:-${OUT:-/tmp/ncsn-gpu-check}}"
mkdir -p "$out/logs"
java=(bash .device/java.sh -Xss8m -XX:+UseParallelGC)
jar=.device/ncsn-engine.jar
ncsn=("${java[@]}" -Xmx48g -jar "$jar")
summary="$out/summary.txt"
: > "$summary"
t0=$SECONDS

step() { # name timeout cmd... : runs cmd, logs to logs/name.log, records rc and seconds
  local name=$1 limit=$2; shift 2
  local s=$SECONDS
  echo "==> [$((SECONDS - t0))s] $name" >&2
  timeout --signal=KILL "$limit" "$@" > "$out/logs/$name.log" 2>&1
  local rc=$?
  printf '%-22s rc=%-4s %4ss  %s\n' "$name" "$rc" "$((SECONDS - s))" "$(tail -n 1 "$out/logs/$name.log" | cut -c1-90)" >> "$summary"
  return 0
}

nvidia-smi > "$out/logs/nvidia-smi.log" 2>&1
step info            60  "${ncsn[@]}" info
step selftest       240  "${ncsn[@]}" selftest --gpu --json "$out/selftest.json"
step junit-gpu      240  "${java[@]}" -jar .device/junit-console.jar execute \
        --class-path ".device/test-classes:$jar" --scan-class-path --include-classname '.*Gpu.*Test' \
        --details=tree --disable-banner
if command -v compute-sanitizer >/dev/null 2>&1; then
  step memcheck     180  compute-sanitizer --tool memcheck --error-exitcode 9 --target-processes all \
        "${ncsn[@]}" selftest --gpu --quick
fi
step bench-kernels  180  "${ncsn[@]}" bench kernels --device cuda --json "$out/bench_kernels.json"
for mode in train sample; do
  if [[ $mode == train ]]; then args="--ngf 64 --channels 1 --image-size 28 --batch 128 --steps 10 --warmup 3"
  else args="--ngf 64 --channels 1 --image-size 28 --batch 25 --steps 20 --warmup 5"; fi
  # shellcheck disable=SC2086
  step "engine-$mode"  150 "${ncsn[@]}" bench $mode $args --device cuda --json "$out/engine_$mode.json"
  # shellcheck disable=SC2086
  step "torch-$mode"   150 python3 bench/torch_baseline.py $mode $args --device cuda --json "$out/torch_$mode.json"
done
if [[ -n "${FM_DATA:-}" ]]; then
  step train-fm      240 "${ncsn[@]}" train --device cuda --run "$out/fm" --set "data.path=$FM_DATA" --quiet
  ck=$(ls -1 "$out"/fm/checkpoints/*.safetensors 2>/dev/null | sort -V | tail -n 1)
  if [[ -n "$ck" ]]; then
    step sample-fm   120 "${ncsn[@]}" sample --device cuda --checkpoint "$ck" --out "$out/fm_samples" --n 100 --denoise
    cp "$out/fm_samples/samples.png" "$out/fm_samples.png" 2>/dev/null
    cp "$out/fm/metrics.csv" "$out/logs/fm_metrics.csv" 2>/dev/null
  fi
fi

# Ratios engine/torch of images per second, when both JSON files exist.
python3 - "$out" >> "$summary" 2>&1 <<'PY'
import json, os, sys
out = sys.argv[1]
for mode in ("train", "sample"):
    try:
        e = json.load(open(os.path.join(out, f"engine_{mode}.json")))
        t = json.load(open(os.path.join(out, f"torch_{mode}.json")))
        print(f"{mode:7s} engine {e['seconds_per_step_median']*1e3:9.2f} ms/step  torch {t['seconds_per_step_median']*1e3:9.2f} ms/step"
              f"  engine/torch images/s = {e['images_per_second']/t['images_per_second']:.3f}")
    except Exception as ex:
        print(f"{mode:7s} no ratio ({ex})")
PY
tar -C "$out" -czf "$out/logs.tgz" logs fm/metrics.csv 2>/dev/null || tar -C "$out" -czf "$out/logs.tgz" logs
echo "total $((SECONDS - t0)) s" >> "$summary"
grep -E '^(FAIL|.*FAIL)|passed, .* failed' "$out/logs/selftest.log" 2>/dev/null | tail -n 40
echo "----- summary -----"
cat "$summary"
