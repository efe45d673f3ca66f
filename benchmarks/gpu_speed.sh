#!/usr/bin/env bash
# Every GPU figure of the issue "Training and sampling at GPU speed", for a session that is lent the device, in two
# device commands (each under the device's 10 minutes):
#
#   bash benchmarks/gpu_speed.sh OUT [tiny]                 # the figures the issue asks for: about 8 to 10 minutes
#   PART=compile bash benchmarks/gpu_speed.sh OUT [tiny]    # then, while the device is warm: torch.compile, ≤ 8 min
#
# The first (PART=main):
# 1. paper.yaml at B = 64 and B = 8, S = 130: training step in float32 and bf16-mixed, 5-step sampling in
#    float32 and bf16 (paired, speed.py), with torch.profiler's tables at B = 64;
# 2. one live sentence, B = 1, S = 125, L = 8, sampling in float32 and bf16;
# 3. synth.yaml at B = 16, S = 65, the same pairs;
# 4. `fgdm train configs/synth.yaml` end to end (validation, EMA and logging included): steps per second,
#    over 3,000 steps or 3 minutes of training, whichever comes first;
# 5. bf16-mixed against float32, training loss over the same steps: synth.yaml, seeds 0 and 1, four runs at
#    once on the one GPU;
# 6. a diagnostic, cut at 90 s: step 4 again with every width near zero, so its steps per second are what the
#    host can issue (is the GPU's training host-bound?).
# The second (PART=compile), each part cut at COMPILE_LIMIT seconds (180):
# 7. step 4 with `training.compile: true` (torch.compile of the training loss), 2.5 minutes of training: the
#    steps per second over the fit loop's last half of the steps, after compiling, and how many times the loss
#    compiled (once, with dynamic shapes, for batches of every size and length);
# 8. the live sentence again, eager against torch.compile with CUDA graphs (speed.py --compile sample), both
#    precisions;
# 9. step 7 with `training.compile: reduce-overhead` (CUDA graphs as well: each batch padded to one of a few frame
#    counts, each recording its graph).
# OUT/summary.md gathers the figures of both. It is rewritten after every step, so a run cut short keeps those of
# the steps that finished. Runs from the repository root with PYTHONPATH=src (nothing installed).
# `tiny` runs the same on the CPU with small sizes: the smoke test before spending device time.
set -uo pipefail
OUT=$1 MODE=${2:-} PART=${PART:-main}
export PYTHONPATH=src PYTHONWARNINGS=ignore
mkdir -p "$OUT/logs"
DEV=cuda REPEATS=10 LIVE_REPEATS=20 B64=64 S=130 TRAIN_STEPS=3000 TRAIN_LIMIT=240 LOSS_STEPS=1500 LOSS_LIMIT=300 LOG=10
HOST_STEPS=1500
# the training run stops itself after TRAIN_MINUTES of its fit loop (training.max_minutes), so that a slow GPU
# still reports its rate; TRAIN_LIMIT only guards against a hang
TRAIN_MINUTES=3
COMPILE_LIMIT=${COMPILE_LIMIT:-180}
COMPILED_MINUTES=2.5
SYNTH_SIZES=(--num-train 1000 --num-dev 100 --num-test 100)  # the demo's data
if [ "$MODE" = tiny ]; then
    DEV=cpu REPEATS=1 LIVE_REPEATS=2 B64=2 S=16 TRAIN_STEPS=6 TRAIN_LIMIT=300 LOSS_STEPS=6 LOSS_LIMIT=300 LOG=1
    HOST_STEPS=6
    COMPILE_LIMIT=400 COMPILED_MINUTES=3  # compiling on a 2-core CPU takes minutes: 6 steps in all
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
# no figures of an earlier run in this one's summary
if [ "$PART" = compile ]; then rm -rf "$W"/train-compiled*; else rm -rf "$W"/loss-* "$W/train" "$W/train-host"; fi
summarize() {  # OUT/summary.md from what has finished so far: a run cut short by the device's limits keeps it
    for d in "$W"/loss-* "$W"/train*; do  # each run's last metrics.csv, where it got far enough to write one
        csv=$(ls -d "$d"/logs/version_*/metrics.csv 2> /dev/null | tail -1)
        [ -n "$csv" ] && cp "$csv" "$OUT/$(basename "$d").csv"
    done
    python benchmarks/gpu_speed_summary.py "$OUT" > "$OUT/summary.md"
}
synth_data() {  # [fresh]: the demo's data; the compile part reuses what the first part made
    [ "${1:-}" != fresh ] && [ -f "$W/synth/train.files" ] && return
    python -m fgdm.cli synth --out "$W/synth" "${SYNTH_SIZES[@]}" --seed 0 --workers 8 --overwrite --quiet > /dev/null
}
train() {  # NAME LIMIT fgdm-train-options…: one timed `fgdm train configs/synth.yaml` on the demo's data
    local name=$1 limit=$2
    shift 2
    local start
    start=$(date +%s%N)
    timeout "$limit" python -m fgdm.cli train configs/synth.yaml --set data.path="$W/synth" \
        --set training.output_dir="$W/$name" --overwrite --quiet "$@" > "$OUT/logs/$name.log" 2>&1
    local rc=$?
    echo "{\"wall_ms\": $(( ($(date +%s%N) - start) / 1000000 )), \"rc\": $rc}" > "$OUT/$name.json"
    summarize
}
# the host's share: the same training with every width near zero, so that the arithmetic is negligible and the
# steps per second are what the host can issue (the CPU proxy of speed.md's "The host's share of a small training
# step")
HOST=(--set model.width=8 --set model.focal.width=2 --set model.gloss_encoder.ff=8 --set model.general.ff=8
      --set model.scg.conv_width=8 --set model.scg.lstm_hidden=4 --set model.focal.chunk_frames=0
      --set model.focal.kernel=torch --set data.skip_frames=20 --set training.batch_size=2 --set testing.batch_size=2)
LIVE=(--batch 1 --frames 125 --glosses 8)
[ "$MODE" = tiny ] && LIVE=(--batch 1 --frames 16 --glosses 4)

if [ "$PART" = compile ]; then
    synth_data
    echo "[gpu_speed] fgdm train configs/synth.yaml compiled, $COMPILED_MINUTES minutes (cut at $COMPILE_LIMIT s)"
    TORCH_LOGS=recompiles train train-compiled "$COMPILE_LIMIT" --set training.compile=true \
        --set training.max_steps="$TRAIN_STEPS" --set training.max_minutes="$COMPILED_MINUTES"
    echo "[gpu_speed] the live sentence compiled (cut at $COMPILE_LIMIT s)"
    timeout "$COMPILE_LIMIT" python benchmarks/speed.py --device "$DEV" "${LIVE[@]}" --repeats "$LIVE_REPEATS" \
        --precision 32 bf16 --compile sample "${SIZE[@]}" > "$OUT/live-compile.json" 2> "$OUT/logs/live-compile.err" \
        || echo "[gpu_speed] live-compile failed or was cut"
    summarize
    echo "[gpu_speed] fgdm train configs/synth.yaml compiled with CUDA graphs (cut at $COMPILE_LIMIT s)"
    TORCH_LOGS=recompiles train train-compiled-graphs "$COMPILE_LIMIT" --set training.compile=reduce-overhead \
        --set training.max_steps="$TRAIN_STEPS" --set training.max_minutes="$COMPILED_MINUTES"
    cat "$OUT/summary.md"
    exit 0
fi

PAIRS=(--train-precision 32-true bf16-mixed --precision 32 bf16)
speed paper-b64 --batch "$B64" --frames "$S" --repeats "$REPEATS" "${PAIRS[@]}" "${SIZE[@]}" --profile "$OUT/profile-paper-b64.txt"
speed paper-b8 --batch 8 --frames "$S" --repeats "$REPEATS" "${PAIRS[@]}" "${SIZE[@]}"
speed live --batch 1 --frames 125 --glosses 8 --repeats "$LIVE_REPEATS" --precision 32 bf16 "${SIZE[@]}"
speed synth --config configs/synth.yaml --batch 16 --frames 65 --repeats "$REPEATS" "${PAIRS[@]}"

synth_data fresh
echo "[gpu_speed] fgdm train configs/synth.yaml, $TRAIN_STEPS steps or $TRAIN_MINUTES minutes (killed at $TRAIN_LIMIT s)"
train train "$TRAIN_LIMIT" --set training.max_steps="$TRAIN_STEPS" --set training.max_minutes="$TRAIN_MINUTES"

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

echo "[gpu_speed] fgdm train configs/synth.yaml, widths near zero: the host's share (cut at 90 s)"
train train-host 90 "${HOST[@]}" --set training.max_steps="$HOST_STEPS" --set training.max_minutes=0.5
cat "$OUT/summary.md"
