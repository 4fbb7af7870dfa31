#!/usr/bin/env bash
# sessionflow's GPU figures in one run, on the same GPU (training and scoring each
# against sentence-transformers, as a ratio; the hierarchy has no such peer):
#
#   1. session training: sentence-transformers' MNRL against `sessionflow train session`
#      (minilm-local, bf16 autocast, global batch 256, max length 32), pairs/s per GPU
#      (benchmarks/train_session.py --gpu);
#   2. hierarchy training: `sessionflow train hierarchy` on the WordNet mammals (the text
#      model, minilm-local, dim 10) with its defaults (5 epochs; fp32: --amp is off by
#      default), its steps/s and reconstruction MAP;
#   3. scoring: sentence-transformers `encode()` of every row against `sessionflow score
#      --engine ray --gpus-per-worker 0.25` (four encoding actors share each GPU: 1.8x the
#      encoding rate of one actor a GPU on an H200, docs/scoring.md) end to end on a
#      2,000,000-row AOL-shaped log, rows/s per GPU (benchmarks/score.py --gpu).
#
# Usage, from the repository root of a GPU machine after `make setup` and
# `scripts/install-wordnet.sh` (7.8 minutes on one H200 with 16 CPUs, the scoring step at
# one actor a GPU; docs/scoring.md has its output):
#
#   bash benchmarks/gpu.sh                 # prints every figure; logs under $WORK (default /tmp/sessionflow-gpu)
#   bash benchmarks/gpu.sh --cpu-check     # the same steps at a toy size on CPU (about 4 minutes on 2 idle cores):
#                                          # checks the script itself on a machine without a GPU
#
# The training data are synthetic (`sessionflow synth`: no data of ../shared is needed),
# the store a SQLite file in $WORK. Nothing here is a pass/fail on time: it prints ratios.
# A step that fails is reported with the end of its log, and the steps after it still
# run (each gives its own figures); the script then exits 1.
set -uo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-.venv/bin/python}
WORK=${WORK:-/tmp/sessionflow-gpu}
GPU=(--gpu)
ROWS=2000000 PEER_ROWS=200000 TRAIN_STEPS=400 WARMUP=10 BATCH=256 SYNTH_ROWS=200000 SYNTH_USERS=500
HIERARCHY=()  # the defaults of `train hierarchy` (5 epochs of the mammals: 510 steps)
SCORE_GPU=(--gpus-per-worker 0.25)  # benchmarks/score.py's default with --gpu, said here
if [[ "${1:-}" == "--cpu-check" ]]; then
    GPU=() SCORE_GPU=()
    ROWS=20000 PEER_ROWS=2000 TRAIN_STEPS=6 WARMUP=2 BATCH=16 SYNTH_ROWS=20000 SYNTH_USERS=100
    HIERARCHY=(--max-steps 20 --eval-every 20 --head-epochs 2)
    WORK=${WORK}-cpu-check
fi
if (( $# > 1 )) || [[ -n "${1:-}" && "$1" != "--cpu-check" ]]; then
    echo "usage: bash benchmarks/gpu.sh [--cpu-check]" >&2
    exit 2
elif (( ${#GPU[@]} )) && ! "$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "error: no GPU visible to torch; on a machine without one, run: bash benchmarks/gpu.sh --cpu-check" >&2
    exit 2
fi
"$PYTHON" -c "from hierarchies.datasets import noun_graph; noun_graph()" 2>/dev/null || {
    echo "error: WordNet 3.0 is not readable by nltk; run scripts/install-wordnet.sh first" >&2
    exit 2
}

mkdir -p "$WORK"
export RAY_AUTH_MODE=disabled RAY_TRAIN_HEALTH_CHECK_INTERVAL_S=0.2 HF_HUB_OFFLINE=1 HF_HUB_DISABLE_PROGRESS_BARS=1
export MLFLOW_TRACKING_URI="sqlite:///$WORK/mlflow.db" PYTHONUNBUFFERED=1
SF=("$PYTHON" -m workflows)
"$PYTHON" -c "import torch; print('device:', torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'CPU only',
      '| torch', torch.__version__)"
start=$(date +%s)
failed=()
step_failed() {  # step_failed NAME LOG: report a failed step with the end of its log; the next steps still run
    failed+=("$1")
    echo "!! $1 failed; the end of $2:"
    tail -n 15 "$2" | sed 's/^/   /'
}

echo "[$(( $(date +%s) - start )) s] == 0. training pairs: a synthetic log ($SYNTH_ROWS rows), segmented and mined"
if [[ ! -f "$WORK/pairs/report.json" ]]; then
    { "${SF[@]}" synth --users "$SYNTH_USERS" --rows "$SYNTH_ROWS" -o "$WORK/log.tsv" \
        && "${SF[@]}" segment "$WORK/log.tsv" -f aol --engine local -o "$WORK/sessions" --overwrite \
        && "${SF[@]}" mine "$WORK/sessions" --engine local -o "$WORK/pairs" --overwrite; } >"$WORK/pairs.log" 2>&1 \
        || step_failed "0. training pairs" "$WORK/pairs.log"
fi

echo "[$(( $(date +%s) - start )) s] == 1. session training, minilm-local, batch $BATCH, $TRAIN_STEPS steps${GPU:+ (bf16 autocast)}"
"$PYTHON" benchmarks/train_session.py --pairs "$WORK/pairs" --batch-size "$BATCH" --steps "$TRAIN_STEPS" \
    --warmup "$WARMUP" "${GPU[@]}" 2>"$WORK/train_session.err" | tee "$WORK/train_session.txt" \
    || step_failed "1. session training" "$WORK/train_session.err"

echo "[$(( $(date +%s) - start )) s] == 2. hierarchy training, WordNet mammals, minilm-local, dim 10 ${HIERARCHY[*]}"
t0=$(date +%s.%N)
if "${SF[@]}" train hierarchy --data wordnet-mammals --model minilm-local --dim 10 "${HIERARCHY[@]}" \
    --experiment benchmark-gpu --no-register "${GPU[@]}" \
    >"$WORK/hierarchy.out" 2>"$WORK/hierarchy.err"; then
t1=$(date +%s.%N)
"$PYTHON" - "$t0" "$t1" <<'EOF'
import sys
from mlflow.tracking import MlflowClient
client = MlflowClient()
(run,) = client.search_runs([client.get_experiment_by_name("benchmark-gpu").experiment_id],
                            order_by=["attributes.start_time DESC"], max_results=1)
metrics, seconds = run.data.metrics, float(sys.argv[2]) - float(sys.argv[1])
steps = int(metrics["steps"])
print(f"sessionflow train hierarchy: {steps} steps in {seconds:.0f} s end to end ({steps / seconds:.1f} steps/s with "
      f"the start), reconstruction MAP {metrics['map']:.3f}, mean rank {metrics['mean_rank']:.1f}")
EOF
else
    step_failed "2. hierarchy training" "$WORK/hierarchy.err"
fi

echo "[$(( $(date +%s) - start )) s] == 3. scoring $ROWS AOL-shaped rows against sentence-transformers on the same device"
"$PYTHON" benchmarks/score.py --work "$WORK/score" --rows "$ROWS" --peer-rows "$PEER_ROWS" --peers torch \
    --backends torch --engine ray "${GPU[@]}" "${SCORE_GPU[@]}" 2>"$WORK/score.err" | tee "$WORK/score.txt" \
    || step_failed "3. scoring" "$WORK/score.err"

echo "== done in $(( $(date +%s) - start )) s; logs in $WORK"
if (( ${#failed[@]} )); then
    echo "failed: ${failed[*]}" >&2
    exit 1
fi
