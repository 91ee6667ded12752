#!/usr/bin/env bash
# One call of the device tool, prepared: on the lent GPU machine, (1) the paper-configuration
# benchmark, then (2) a round of the two variable-rate models (GABIC and Zou2022, from the shipped
# -vr files, same recipe and seed) until the call's time is nearly spent, then (3) their weights and
# compact logs written to $OUT to come back.
#
#   (here)   training/gpu_prepare.sh
#   (device) run(command="bash training/gpu_session.sh 540", carry=[".gpu"], timeout_s=600)
#   (here)   training/gpu_prepare.sh restore
#            python training/gpu_round.py unpack FILES_AT --suffix gpuN   # → runs/<arch>-small-vr-gpuN/
#
# SECONDS_TOTAL (first argument, default 540) is the wall time this script may take; keep the
# call's timeout_s about 60 s above it. SEED (default 11) is the round's seed; BENCH=0 skips the
# benchmark; BATCH, PATCH (16, 256), PY (python3) and ROOT (/tmp/gpu, the run folders) are for a
# trial run on a CPU. What comes back ($OUT, at most 8 files): bench-gpu.json, bench.log,
# gabic-small-vr.safetensors, zou2022-small-vr.safetensors (fp16, validation-selected), logs.tar.gz
# (each run's log.jsonl, val.jsonl, state.json, parent card, file list, console output), session.log.
set -uo pipefail
cd "$(dirname "$0")/.."
TOTAL=${1:-540}
SEED=${SEED:-11}
ROOT=${ROOT:-/tmp/gpu}
OUT=${OUT:?run this through the device tool, which sets OUT}
START=$(date +%s)
export PYTHONUNBUFFERED=1
exec > >(tee "$OUT/session.log") 2>&1

elapsed() { echo $(($(date +%s) - START)); }

PY=${PY:-python3}
# the image has PyTorch and PyTorch Geometric; CompressAI and pytorch-msssim come as wheels
if ! $PY -c "import compressai, pytorch_msssim" 2>/dev/null; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
        .gpu/whl/*.whl || exit 3
    export PYTHONPATH="/tmp/site:$PWD"
fi
nvidia-smi -L
$PY -c "import torch, compressai, torch_geometric; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), \
'compressai', compressai.__version__, 'pyg', torch_geometric.__version__)" || exit 3

# (1) paper Table 1 on the GPU (the paper and the shipped configuration), at most 150 s
if [ "${BENCH:-1}" != 0 ]; then
    timeout 150 $PY -W ignore -m gabic bench --devices cuda --configs paper,small \
        --only model,flops,forward,codec,memory,blocks,core,train --train-bf16 --repeats 5 \
        --note "device tool, $(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)" \
        --output "$OUT/bench-gpu.json" > "$OUT/bench.log" 2>&1
    echo "bench: exit $?, $(elapsed) s"
fi

# (2) the variable-rate round: what is left, less the supervisor's grace (45 s), packing and margin
SECONDS_TRAIN=$((TOTAL - $(elapsed) - 45 - 40))
if [ "$SECONDS_TRAIN" -lt 120 ]; then
    echo "only $SECONDS_TRAIN s left for training: skipped"
    exit 4
fi
echo "training for $SECONDS_TRAIN s"
$PY training/gpu_round.py train --variable-rate --root "$ROOT" --seconds "$SECONDS_TRAIN" \
    --parent "assets/weights/{arch}-small-vr.safetensors" --calibrate-after 45 --calibrate-window 30 -- \
    --train-dir .gpu/data/bsds500/train --val-dir .gpu/data/bsds500/val --batch-size "${BATCH:-16}" --patch-size "${PATCH:-256}" \
    --lr 1e-4 --gain-lr 1e-3 --warmup 50 --val-every 250 --val-images 24 --final-decay 0.3 --bf16 \
    --seed "$SEED" --threads 2 --checkpoint-minutes 2
echo "round: exit $?, $(elapsed) s"

# (3) pack
$PY training/gpu_round.py pack --root "$ROOT" --arch gabic --to "$OUT" --logs
$PY training/gpu_round.py pack --root "$ROOT" --arch zou2022 --to "$OUT"
ls -la "$OUT"
echo "done: $(elapsed) s"
