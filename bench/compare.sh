#!/usr/bin/env bash
# compare.sh: the engine (bin/ncsn bench) against the PyTorch baseline (bench/torch_baseline.py),
# run interleaved R times for train and sample with the same arguments and thread count, then a
# table: median s/step of each (median over the R runs of each run's median step), and the ratio
# engine/torch of images per second: median and min-max spread over the R pairs (> 1: engine faster).
# A benchmark, not a test: CI never runs it.
#
# Usage: bench/compare.sh [R]          (R rounds, default 3)
# Environment:
#   TRAIN_ARGS   bench arguments for train  (default: --ngf 64 --channels 1 --image-size 28 --batch 128 --steps 5 --warmup 2)
#   SAMPLE_ARGS  bench arguments for sample (default: the same)
#   MODES        which to run (default: "train sample")
#   THREADS      --threads for both (default: nproc)
#   DEVICE       --device for both: cpu (default) or cuda (engine: CUDA-event step times; PyTorch:
#                torch.cuda.Event times, cudnn.benchmark on); PY picks the python with torch (default /usr/bin/python3)
#   NCSN_HEAP    engine heap (default here: 8g; always pre-touched: NCSN_PRETOUCH=1)
#   NCSN_JAR     engine jar (bin/ncsn's default: target/ncsn-engine.jar)
#   OUT          folder for the JSON files (default: a new temporary folder)
#   OMP_WAIT_POLICY  PyTorch's OpenMP idle policy (default here: PASSIVE). With libgomp's default
#                (spin, then sleep) PyTorch's workers spin against any other load on the cores and
#                run several times slower on a shared machine; PASSIVE is its better case there.
#                Set OMP_WAIT_POLICY=ACTIVE to measure spinning on an idle machine.
set -euo pipefail

here="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)"
root="$(cd "$here/.." && pwd)"
rounds="${1:-3}"
if ! [[ "$rounds" =~ ^[1-9][0-9]*$ ]]; then
  echo "compare.sh: R must be a positive integer, got '$rounds'" >&2
  exit 2
fi
defaults="--ngf 64 --channels 1 --image-size 28 --batch 128 --steps 5 --warmup 2"
train_args="${TRAIN_ARGS:-$defaults}"
sample_args="${SAMPLE_ARGS:-$defaults}"
modes="${MODES:-train sample}"
threads="${THREADS:-$(nproc)}"
device="${DEVICE:-cpu}"
py="${PY:-/usr/bin/python3}"
out="${OUT:-$(mktemp -d /tmp/ncsn-compare.XXXXXX)}"
mkdir -p "$out"
export NCSN_HEAP="${NCSN_HEAP:-8g}" NCSN_PRETOUCH=1 OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"

run_engine() { # mode round args...
  local mode=$1 r=$2; shift 2
  "$root/bin/ncsn" bench "$mode" "$@" --threads "$threads" --device "$device" --json "$out/engine_${mode}_$r.json" >/dev/null 2>"$out/engine_${mode}_$r.err" \
    || { echo "compare.sh: engine failed:" >&2; cat "$out/engine_${mode}_$r.err" >&2; exit 1; }
}
run_torch() {
  local mode=$1 r=$2; shift 2
  "$py" "$here/torch_baseline.py" "$mode" "$@" --threads "$threads" --device "$device" --json "$out/torch_${mode}_$r.json" \
    >/dev/null 2>"$out/torch_${mode}_$r.err" \
    || { echo "compare.sh: torch baseline failed:" >&2; cat "$out/torch_${mode}_$r.err" >&2; exit 1; }
}

for mode in $modes; do
  if [[ "$mode" == train ]]; then args=$train_args; else args=$sample_args; fi
  # shellcheck disable=SC2086  # the argument strings are meant to be split
  for r in $(seq 1 "$rounds"); do
    # Alternate who goes first, so a slow drift of the machine does not favour one side.
    if (( r % 2 == 1 )); then
      run_engine "$mode" "$r" $args; run_torch "$mode" "$r" $args
    else
      run_torch "$mode" "$r" $args; run_engine "$mode" "$r" $args
    fi
    echo "  $mode round $r/$rounds done" >&2
  done
done

"$py" - "$out" "$rounds" "$threads" "$OMP_WAIT_POLICY" "$device" $modes <<'EOF'
import json, statistics, sys
out, rounds, threads, omp, device, modes = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6:]
print(f"engine vs PyTorch on {device}, {threads} threads, {rounds} interleaved rounds, OMP_WAIT_POLICY={omp} (JSON in {out})")
print(f"{'mode':7} {'B':>4} {'engine s/step':>14} {'torch s/step':>13} {'engine img/s':>13} {'torch img/s':>12}"
      f" {'ratio median':>13} {'ratio min-max':>16}")
for mode in modes:
    e = [json.load(open(f"{out}/engine_{mode}_{r}.json")) for r in range(1, rounds + 1)]
    t = [json.load(open(f"{out}/torch_{mode}_{r}.json")) for r in range(1, rounds + 1)]
    ratios = [a["images_per_second"] / b["images_per_second"] for a, b in zip(e, t)]
    med = lambda rs, k: statistics.median(x[k] for x in rs)
    print(f"{mode:7} {e[0]['batch']:>4} {med(e, 'seconds_per_step_median'):>14.4f} {med(t, 'seconds_per_step_median'):>13.4f}"
          f" {med(e, 'images_per_second'):>13.1f} {med(t, 'images_per_second'):>12.1f}"
          f" {statistics.median(ratios):>13.2f} {min(ratios):>7.2f}-{max(ratios):<8.2f}")
EOF
