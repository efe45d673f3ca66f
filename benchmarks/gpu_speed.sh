#!/usr/bin/env bash
# Every GPU figure of the issue "Training and sampling at GPU speed" in one run of about 8 to 10 minutes on one
# GPU, for a session that is lent the device:
#
#   bash benchmarks/gpu_speed.sh OUT [tiny]
#
# 1. paper.yaml at B = 64 and B = 8, S = 130: training step in float32 and bf16-mixed, 5-step sampling in
#    float32 and bf16 (paired, speed.py), with torch.profiler's tables at B = 64;
# 2. one live sentence, B = 1, S = 125, L = 8, sampling in float32 and bf16;
# 3. synth.yaml at B = 16, S = 65, the same pairs;
# 4. `fgdm train configs/synth.yaml` end to end (validation, EMA and logging included): steps per second,
#    over 3,000 steps or 3 minutes of training, whichever comes first;
# 5. bf16-mixed against float32, training loss over the same steps: synth.yaml, seeds 0 and 1, four runs at
#    once on the one GPU;
# 6. last, cut at COMPILE_LIMIT seconds (150; 0 skips it): the live sentence again, eager against
#    torch.compile with CUDA graphs (speed.py --compile sample), both precisions;
# 7. a diagnostic, cut at 90 s: step 4 again with every width near zero, so its steps per second are what the
#    host can issue (is the GPU's training host-bound?).
# OUT/summary.md gathers the figures. It is rewritten after every step, so a run cut short (a device command
# may last 10 minutes) keeps those of the steps that finished. Runs from the repository root with
# PYTHONPATH=src (nothing installed).
# `tiny` runs the same on the CPU with small sizes: the smoke test before spending device time.
set -uo pipefail
OUT=$1 MODE=${2:-}
export PYTHONPATH=src PYTHONWARNINGS=ignore
mkdir -p "$OUT/logs"
DEV=cuda REPEATS=10 LIVE_REPEATS=20 B64=64 S=130 TRAIN_STEPS=3000 TRAIN_LIMIT=240 LOSS_STEPS=1500 LOSS_LIMIT=300 LOG=10
HOST_STEPS=1500
# the training run stops itself after TRAIN_MINUTES of its fit loop (training.max_minutes), so that a slow GPU
# still reports its rate; TRAIN_LIMIT only guards against a hang
TRAIN_MINUTES=3
COMPILE_LIMIT=${COMPILE_LIMIT:-150}  # 0 skips step 6
SYNTH_SIZES=(--num-train 1000 --num-dev 100 --num-test 100)  # the demo's data
if [ "$MODE" = tiny ]; then
    DEV=cpu REPEATS=1 LIVE_REPEATS=2 B64=2 S=16 TRAIN_STEPS=6 TRAIN_LIMIT=300 LOSS_STEPS=6 LOSS_LIMIT=300 LOG=1
    HOST_STEPS=6
    [ "$COMPILE_LIMIT" -gt 0 ] && COMPILE_LIMIT=300
    SYNTH_SIZES=(--num-train 24 --num-dev 6 --num-test 6)
fi
SIZE=(--set model.focal.chunk_frames=0)  # as a GPU runs it anyway (no frame chunks off the CPU)
[ "$MODE" = tiny ] && SIZE=(--set model.width=32 --set model.scg.conv_width=32 --set model.scg.lstm_hidden=16)
speed() {  # NAME speed.py-options…
    local name=$1
    shift
    echo "[gpu_speed] $name"
    python benchmarks/speed.py --device "$DEV" "$@" > "$OUT/$name.json" 2> "$OUT/logs/$name.err" || echo "[gpu_speed] $name failed"
    summarize
}
W=runs/gpu-speed
rm -rf "$W"/loss-* "$W/train" "$W/train-host"  # no figures of an earlier run in this one's summary
summarize() {  # OUT/summary.md from what has finished so far: a run cut short by the device's limits keeps it
    for d in "$W"/loss-* "$W/train" "$W/train-host"; do  # each run's last metrics.csv, where it got far enough to write one
        csv=$(ls -d "$d"/logs/version_*/metrics.csv 2> /dev/null | tail -1)
        [ -n "$csv" ] && cp "$csv" "$OUT/$(basename "$d").csv"
    done
    python benchmarks/gpu_speed_summary.py "$OUT" > "$OUT/summary.md"
}
PAIRS=(--train-precision 32-true bf16-mixed --precision 32 bf16)
speed paper-b64 --batch "$B64" --frames "$S" --repeats "$REPEATS" "${PAIRS[@]}" "${SIZE[@]}" --profile "$OUT/profile-paper-b64.txt"
speed paper-b8 --batch 8 --frames "$S" --repeats "$REPEATS" "${PAIRS[@]}" "${SIZE[@]}"
speed live --batch 1 --frames 125 --glosses 8 --repeats "$LIVE_REPEATS" --precision 32 bf16 "${SIZE[@]}"
speed synth --config configs/synth.yaml --batch 16 --frames 65 --repeats "$REPEATS" "${PAIRS[@]}"

python -m fgdm.cli synth --out "$W/synth" "${SYNTH_SIZES[@]}" --seed 0 --workers 8 --overwrite --quiet > /dev/null
echo "[gpu_speed] fgdm train configs/synth.yaml, $TRAIN_STEPS steps or $TRAIN_MINUTES minutes (killed at $TRAIN_LIMIT s)"
START=$(date +%s%N)
timeout "$TRAIN_LIMIT" python -m fgdm.cli train configs/synth.yaml --set data.path="$W/synth" \
    --set training.max_steps="$TRAIN_STEPS" --set training.max_minutes="$TRAIN_MINUTES" \
    --set training.output_dir="$W/train" --overwrite --quiet \
    > "$OUT/logs/train.log" 2>&1
rc=$?
echo "{\"wall_ms\": $(( ($(date +%s%N) - START) / 1000000 )), \"rc\": $rc}" > "$OUT/train.json"
summarize

echo "[gpu_speed] bf16-mixed against float32: 4 runs of $LOSS_STEPS steps at once"
for seed in 0 1; do
    for precision in 32-true bf16-mixed; do
        timeout "$LOSS_LIMIT" python -m fgdm.cli train configs/synth.yaml --set data.path="$W/synth" \
            --set training.precision=$precision \
            --set training.seed=$seed --set training.max_steps="$LOSS_STEPS" --set training.val_every=1000000 \
            --set training.log_every=$LOG --set training.output_dir="$W/loss-$precision-s$seed" --overwrite --quiet \
            > "$OUT/logs/loss-$precision-s$seed.log" 2>&1 &
    done
done
wait
summarize
LIVE=(--batch 1 --frames 125 --glosses 8)
[ "$MODE" = tiny ] && LIVE=(--batch 1 --frames 16 --glosses 4)
if [ "$COMPILE_LIMIT" -gt 0 ]; then
    echo "[gpu_speed] the live sentence compiled (cut at $COMPILE_LIMIT s)"
    timeout "$COMPILE_LIMIT" python benchmarks/speed.py --device "$DEV" "${LIVE[@]}" --repeats "$LIVE_REPEATS" \
        --precision 32 bf16 --compile sample "${SIZE[@]}" > "$OUT/live-compile.json" 2> "$OUT/logs/live-compile.err" \
        || echo "[gpu_speed] live-compile failed or was cut"
fi
summarize

# the host's share: the same training with every width near zero, so that the arithmetic is negligible and the
# steps per second are what the host can issue (the CPU proxy of speed.md's "The host's share of a small training
# step"); last, as a diagnostic, cut at 90 s
HOST=(--set model.width=8 --set model.focal.width=2 --set model.gloss_encoder.ff=8 --set model.general.ff=8
      --set model.scg.conv_width=8 --set model.scg.lstm_hidden=4 --set model.focal.chunk_frames=0
      --set model.focal.kernel=torch --set data.skip_frames=20 --set training.batch_size=2 --set testing.batch_size=2)
echo "[gpu_speed] fgdm train configs/synth.yaml, widths near zero: the host's share (cut at 90 s)"
START=$(date +%s%N)
timeout 90 python -m fgdm.cli train configs/synth.yaml --set data.path="$W/synth" "${HOST[@]}" \
    --set training.max_steps="$HOST_STEPS" --set training.max_minutes=0.5 \
    --set training.output_dir="$W/train-host" --overwrite --quiet > "$OUT/logs/train-host.log" 2>&1
rc=$?
echo "{\"wall_ms\": $(( ($(date +%s%N) - START) / 1000000 )), \"rc\": $rc}" > "$OUT/train-host.json"
summarize
cat "$OUT/summary.md"
