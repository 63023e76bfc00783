#!/usr/bin/env bash
# The GPU measurements of docs/benchmarks.md ("Measuring on a GPU"), in one go.
#
#   bash benchmarks/gpu.sh [OUT_DIR] [--tiny]        (OUT_DIR: default benchmarks/results)
#
# Appends rows to OUT_DIR/run.jsonl, every one tagged "gpu.sh <date>" (field
# "tag"), then prints the targets read off them. Measures, on ResNet-20 (N = 16,
# B = 32, NAG, synthetic data on the device):
#   1. execution blocks (K = 16), R = 1, with the synchronous limit (a plain
#      training step at B and at K·B, Python loop and lax.scan) and the PyTorch
#      eager reference simulator (on CUDA when torch sees a GPU; skipped
#      when torch is absent);
#   2. execution steps, R = 1;
#   3. blocks, R = 4 replicas batched (replica execution vmap, the GPU default);
#   4. steps, R = 4, vmap;  5. blocks, R = 4, loop;  6. steps, R = 4, loop (the
#      replicas one after another: the CPU default, measured to choose GPU's);
#   7. the environment (docs/spec.md §8): every part on against every part off,
#      steps and blocks, to OUT_DIR/environment.jsonl (benchmarks/environment.py).
# The most important rows come first: a run cut short keeps what it measured.
# Meant to take under 8 minutes on one H200, mostly compilation (not yet run
# on a GPU: no GPU was lent to the session that wrote it).
#
# Environment: PYTHON (default python), DANA_BENCH_TINY=1 (same as --tiny: a
# 4.8k-parameter MLP, N = 4, 3 steps, one timed call, on any backend: 1.5 min
# on the loaded 2-core development CPU, nearly all compilation; for
# tests/test_benchmarks.py), DANA_BENCH_STEPS (master steps per timed call,
# default 256), DANA_BENCH_ALLOW_CPU=1 (run the full measurement although jax
# sees no GPU). Installs nothing but `pip install -e .`, and only when
# dana_jax's dependencies do not import.
set -euo pipefail

usage() { sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; }

OUT_DIR=benchmarks/results
TINY=${DANA_BENCH_TINY:-0}
for arg in "$@"; do
  case "$arg" in
    --tiny) TINY=1 ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "gpu.sh: unknown option $arg" >&2; usage >&2; exit 2 ;;
    *) OUT_DIR=$arg ;;
  esac
done
mkdir -p "$OUT_DIR"
OUT_DIR=$(cd "$OUT_DIR" && pwd)
OUT="$OUT_DIR/run.jsonl"
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}

if [[ "$TINY" == 1 ]]; then
  MODEL=digits_mlp WORKERS=4 BLOCK=4 STEPS=3 REPEATS=1
else
  MODEL=resnet20 WORKERS=16 BLOCK=16 STEPS=${DANA_BENCH_STEPS:-256} REPEATS=3
fi
TAG="gpu.sh $(date '+%Y-%m-%d %H:%M:%S')"
# One compilation cache for the four runs (they share e.g. the initialisation's
# program); fresh per invocation, so that compile_seconds stays a real compile.
CACHE=$(mktemp -d "${TMPDIR:-/tmp}/dana_gpu_sh.XXXXXX")
trap 'rm -rf "$CACHE"' EXIT

echo "== device"
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi -L || echo "nvidia-smi -L failed"
else
  echo "nvidia-smi: not found"
fi
if ! "$PY" -c "import dana_jax" 2>/dev/null; then
  echo "dana_jax does not import: pip install -e ."
  "$PY" -m pip install -e .
fi
BACKEND=$("$PY" -c "import jax; print(jax.default_backend())")
"$PY" -c "import jax; print('jax', jax.__version__, jax.default_backend(), jax.devices())"
if [[ "$BACKEND" != gpu && "$TINY" != 1 && "${DANA_BENCH_ALLOW_CPU:-0}" != 1 ]]; then
  echo "gpu.sh: jax sees no GPU (backend $BACKEND): install a CUDA jax (e.g." \
       "pip install -U 'jax[cuda13]'), or run with --tiny / DANA_BENCH_ALLOW_CPU=1" >&2
  exit 1
fi
REFS=sync
if "$PY" -c "import torch" 2>/dev/null; then
  REFS=sync,torch
  "$PY" -c "import torch; print('torch', torch.__version__, 'cuda:', torch.cuda.is_available())"
else
  echo "torch not installed: the PyTorch reference is skipped"
fi

bench() {  # $1: a label; the rest: arguments of benchmarks.run
  local label=$1 began=$SECONDS
  shift
  echo "== $label"
  "$PY" -m benchmarks.run --model "$MODEL" --workers "$WORKERS" --steps "$STEPS" \
    --repeats "$REPEATS" --algorithm nag --tag "$TAG" --compile-cache "$CACHE" \
    --out "$OUT" "$@"
  echo "   ($label: $((SECONDS - began)) s)"
}

START=$SECONDS
bench "blocks K=$BLOCK, R=1, references $REFS" \
  --execution blocks --block-size "$BLOCK" --replicas 1 --references "$REFS"
bench "steps, R=1" --execution steps --replicas 1 --references ""
for MODE in vmap loop; do
  bench "blocks K=$BLOCK, R=4, $MODE" --execution blocks --block-size "$BLOCK" --replicas 4 \
    --replica-execution "$MODE" --references ""
  bench "steps, R=4, $MODE" --execution steps --replicas 4 --replica-execution "$MODE" \
    --references ""
done
# 7. The environment (docs/spec.md §8) on the same model: every part off, links + master
#    queue + straggler slowdowns, and failures as well; steps and blocks (rows in
#    OUT_DIR/environment.jsonl, "vs off" printed), and the schedule of N = 256.
echo "== environment: every part off / links+queue+slowdowns / +failures"
if [[ "$TINY" == 1 ]]; then ENV_SCHEDULE="--schedule-workers 16 --schedule-steps 1000"
else ENV_SCHEDULE="--schedule-workers 256 --schedule-steps 1000000"; fi
began=$SECONDS
# shellcheck disable=SC2086
"$PY" -m benchmarks.environment --model "$MODEL" --workers "$WORKERS" --steps "$STEPS" \
  --repeats "$REPEATS" --algorithms nag --executions steps,blocks $ENV_SCHEDULE \
  --out "$OUT_DIR/environment.jsonl"
echo "   (environment: $((SECONDS - began)) s)"
echo "== all measured in $((SECONDS - START)) s; rows tagged '$TAG' in $OUT"

"$PY" - "$OUT" "$TAG" <<'EOF'
import json, sys

rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
rows = [r for r in rows if r.get("tag") == sys.argv[2]]
engine = {(r["execution"], r["replicas"], r.get("replica_execution")): r
          for r in rows if r["what"] == "engine"}
blocks, steps = engine.get(("blocks", 1, None)), engine.get(("steps", 1, None))
print(f"== targets ({rows[0]['device']}, {rows[0]['model']}, N = {rows[0]['num_workers']})")
if blocks and steps:
  print(f"blocks over steps, examples/s: "
        f"{blocks['examples_per_second'] / steps['examples_per_second']:.2f} (target >= 3)")
for r in rows:
  if blocks and r["what"] == "sync_scan" and r["batch_size"] > blocks["batch_size"]:
    print(f"blocks over the plain step at K*B = {r['batch_size']} (scan): "
          f"{1 / r['engine_over_this']:.2f} (target >= 0.7)")
  if blocks and r["what"] == "torch":
    print(f"blocks over PyTorch eager ({r['torch_device']}): {1 / r['engine_over_this']:.2f} "
          f"(target >= 5)")
for execution in ("steps", "blocks"):
  one, cost = engine.get((execution, 1, None)), {}
  for mode in ("vmap", "loop"):
    four = engine.get((execution, 4, mode))
    if one and four:
      cost[mode] = four["seconds_per_step_per_replica"]
      print(f"{execution}, {mode}: per-replica cost R=4 / R=1 = "
            f"{cost[mode] / one['seconds_per_step_per_replica']:.2f} (target <= 1.25)")
  if len(cost) == 2:
    print(f"{execution}: the faster replica execution here is {min(cost, key=cost.get)} "
          f"(loop / vmap = {cost['loop'] / cost['vmap']:.2f}; "
          "dana_jax.default_replica_execution picks vmap on GPU)")
EOF
