#!/usr/bin/env bash
# Many learning curves at once on one GPU machine (issue "Intelligible signing", item 4), within a
# fixed wall-clock budget; every curve is cut by time and evaluated where it stopped.
#
#   bash benchmarks/gpu_curves.sh CARRY OUT MINUTES [tiny|candidates]
#
# The default set: phoenix-synth's main ablation rows (2 seeds), dgs-pt, and the embedded language's
# today-vs-default pair. `candidates` instead runs one curve per candidate change of the default on the
# embedded language, each switched back alone (the learning-curve table's missing single-factor rows).
#
# CARRY holds what the machine cannot make itself: phoenix14t-annotations/ (the CSVs), dgs-pt/ (PT
# files) and synth-bt.ckpt, the embedded language's frozen back-translator (configs/backtranslator.yaml,
# 1,500 steps). The back-translators of phoenix-synth (2,000 steps) and dgs-pt (600) are trained here,
# beside the generators. Curve JSONs and logs go to OUT.
# Runs from the repository root with PYTHONPATH=src (nothing installed). `tiny` shrinks everything
# for a smoke test on a CPU.
set -uo pipefail
if [ $# -lt 3 ] || [ $# -gt 4 ] || [[ $1 == -* ]] || ! [[ $3 =~ ^[1-9][0-9]*$ ]] || [[ ${4:-tiny} != @(tiny|candidates) ]]; then
    echo "usage: bash benchmarks/gpu_curves.sh CARRY OUT MINUTES [tiny|candidates]   (MINUTES a whole number; the comments at its top say more)" >&2
    exit 2
fi
CARRY=$1 OUT=$2 MINUTES=$3 MODE=${4:-}
NEED=(synth-bt.ckpt)
[ "$MODE" != candidates ] && NEED+=(phoenix14t-annotations dgs-pt)
for item in "${NEED[@]}"; do  # before any device time goes to curves that would wait for what is not there
    [ -e "$CARRY/$item" ] || { echo "gpu_curves.sh: error: $CARRY/$item not found (CARRY holds ${NEED[*]})" >&2; exit 2; }
done
STOP_NAME=gpu; source "$(dirname "${BASH_SOURCE[0]}")/stop_runs.sh"  # Ctrl-C stops every run it started
TINY=""
[ "$MODE" = tiny ] && TINY=1
export PYTHONPATH=src OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} PYTHONWARNINGS=ignore
W=runs/gpu
mkdir -p "$W" "$OUT/logs"
START=$(date +%s)
left() { echo $(( MINUTES * 60 - ($(date +%s) - START) )); }
fgdm() { python -m fgdm.cli "$@"; }

SYNTH_SIZES=(--num-train 1000 --num-dev 100 --num-test 100)
PHOENIX_CAP=()
FAST=(--set model.focal.chunk_frames=0)  # no frame chunks on a GPU: one batched ASGCN
AT=500,1000,1500,2000,3000,4000,5000,6000,8000,10000
BT_PHOENIX=2000 BT_DGS=600
AT_END=1000000  # evaluated only where time stops training
if [ -n "$TINY" ]; then
    SYNTH_SIZES=(--num-train 24 --num-dev 6 --num-test 6)
    PHOENIX_CAP=(--num-train 24 --num-dev 6 --num-test 6)
    AT=2,4 AT_END=4 BT_PHOENIX=4 BT_DGS=4
fi

echo "[gpu] data (made afresh: an earlier run's, a tiny one's say, is replaced)"
fgdm synth --out "$W/synth" "${SYNTH_SIZES[@]}" --seed 0 --workers 6 --overwrite --quiet > "$OUT/logs/synth.json" &
made=($!)
if [ "$MODE" != candidates ]; then
    fgdm synth --out "$W/phoenix" --glosses "$CARRY/phoenix14t-annotations" "${PHOENIX_CAP[@]}" --workers 10 \
        --overwrite --quiet > "$OUT/logs/phoenix.json" &
    made+=($!)
fi
for job in "${made[@]}"; do
    wait "$job" || { echo "gpu_curves.sh: error: making the data failed (its error above)" >&2; exit 1; }
done
nvidia-smi --query-gpu=name,memory.used --format=csv > "$OUT/logs/gpu.txt" 2>&1

# curve NAME DATA BT AT MINUTES [learning_curve.py options …]
curve() {
    local name=$1 data=$2 bt=$3 at=$4 minutes=$5
    shift 5
    python benchmarks/learning_curve.py run "$name" --data "$data" --bt "$bt" --at "$at" --max-minutes "$minutes" \
        --work "$W" --results "$OUT" --overwrite --quiet "$@" > "$OUT/logs/$name.log" 2>&1 &  # (this run's own)
}

if [ "$MODE" = candidates ]; then
    BUDGET=$(( $(left) / 60 - 2 ))
    run() { curve "synth-$1" "$W/synth" "$CARRY/synth-bt.ckpt" "$AT" "$BUDGET" "${FAST[@]}" "${@:2}"; }
    run default
    run no-counter --set model.counter=false
    run uniform-timesteps --set diffusion.train_timesteps=uniform
    run no-standardise --set diffusion.standardise=false --set diffusion.data_scale=5.0
    run no-hands-relative --set diffusion.hands_relative=false
    run loss-in-pose-units --set loss.joint_space=pose
    run paper-departures --set model.focal.prior_norm=sending --set model.scg.per_gloss=true \
        --set model.length_head_grad=true
    run hand-weight-2 --set loss.hand_weight=2.0
    run lr-0.001 --set training.lr=0.001 --set training.warmup_steps=0
    run batch-32 --set training.batch_size=32
    run ema-0.999 --set training.ema_decay=0.999
    wait
    echo "[gpu] done in $(( $(date +%s) - START )) s"
    exit 0
fi

# the evaluators of phoenix-synth and dgs-pt train beside the generators; each curve waits for its own
echo "[gpu] back-translators"
# (its best dev-WER checkpoint is moved into place only when training has finished)
evaluator() {
    local name=$1 data=$2 steps=$3 every=$4
    { fgdm backtranslator train configs/backtranslator.yaml --set data.path="$data" --set training.output_dir="$W/$name" \
        --set training.max_steps="$steps" --set training.val_every="$every" --overwrite --quiet \
        && { cp "$W/$name/checkpoints/best.ckpt" "$W/$name.tmp" || cp "$W/$name/checkpoints/last.ckpt" "$W/$name.tmp"; } \
        && mv "$W/$name.tmp" "$W/$name.ckpt"; } \
        > "$OUT/logs/$name.log" 2>&1 &
}
evaluator phoenix-bt "$W/phoenix" "$BT_PHOENIX" 500
evaluator dgs-bt "$CARRY/dgs-pt" "$BT_DGS" 200

BUDGET=$(( $(left) / 60 - 3 ))  # minutes of training per curve, leaving time to load data and evaluate
echo "[gpu] curves: $BUDGET minutes each"
# phoenix-synth: the paper's main ablation rows, two seeds each, at batch 64, scored where time stops them
for row in full general_only focal_only scg_only; do
    for seed in 0 1; do
        curve "phoenix-synth-$row-s$seed" "$W/phoenix" "$W/phoenix-bt.ckpt" "$AT_END" "$BUDGET" \
            --config configs/synth.yaml "configs/ablations/$row.yaml" "${FAST[@]}" --wait-bt 5 \
            --set training.seed=$seed --set training.batch_size=64 --set training.val_every=1000000
    done
done
# real DGS motion: the default config, dev split (DTW-MJE against the mean pose), scored where time stops it
curve dgs-default "$CARRY/dgs-pt" "$W/dgs-bt.ckpt" "$AT_END" "$BUDGET" --split dev "${FAST[@]}" \
    --wait-bt 5 --set training.val_every=1000000
# the embedded language: today's model (fgdm 0.1: one global data_scale, the three departures from the
# paper) against the default, same seed; and the default's second seed
curve synth-today "$W/synth" "$CARRY/synth-bt.ckpt" "$AT" "$BUDGET" "${FAST[@]}" \
    --config configs/synth.yaml configs/baselines/synth-0.1.yaml
curve synth-default "$W/synth" "$CARRY/synth-bt.ckpt" "$AT" "$BUDGET" "${FAST[@]}"
curve synth-default-seed43 "$W/synth" "$CARRY/synth-bt.ckpt" "$AT" "$BUDGET" "${FAST[@]}" --set training.seed=43
wait
echo "[gpu] done in $(( $(date +%s) - START )) s"
tail -n 3 "$OUT"/logs/*.log
