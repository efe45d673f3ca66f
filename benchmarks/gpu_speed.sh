#!/usr/bin/env bash
# Every GPU figure of the issue "Training and sampling at GPU speed", in one device command:
#
#   bash benchmarks/gpu_speed.sh OUT [tiny]     # BUDGET seconds in all (540); give the device a timeout_s of 600
#
# A session's device time is 15 minutes, the machine's start included, and one command may run 10. So the steps run
# in the order of what the issue asks, each given at most what is left of BUDGET; a step that no longer fits is
# skipped, and the summary says so. The "Must show" figures come first (1-4), torch.compile's after (6-8):
# 1. paper.yaml, B = 64, S = 130: training step in float32 and bf16-mixed, 5-step sampling in float32 and bf16
#    (paired, speed.py), with torch.profiler's tables;
# 2. one live sentence, B = 1, S = 125, L = 8, sampling in float32 and bf16;
# 3. `fgdm train configs/synth.yaml` on the demo's data, end to end (validation, EMA and logging included): steps
#    per second over 3,000 steps or 1.5 minutes of its fit loop, whichever comes first;
# 4. bf16-mixed against float32, the training loss over the same steps: synth.yaml, seeds 0 and 1, four runs at once
#    on the one GPU, 1,500 steps or what the budget leaves;
# 5. paper.yaml at B = 8 and synth.yaml at B = 16, S = 65, as in 1;
# 6. step 3 with `training.compile: true`: the steps per second over its last half of the steps, after compiling;
#    how many times the loss compiled (once, with dynamic shapes, for batches of every size and length), how many
#    times other frames compiled again, and where the graph breaks (the SCG branch's two eager parts);
# 7. the live sentence, eager against torch.compile with CUDA graphs (speed.py --compile sample --api: through
#    load_for_sampling(compile="reduce-overhead") and generate_poses, as a program using fgdm samples), both precisions;
# 8. step 6 with `training.compile: reduce-overhead` (CUDA graphs as well: each batch padded to one of a few frame
#    counts, each recording its graph);
# 9. a diagnostic: step 3 with every width near zero, so its steps per second are what the host can issue (is the
#    GPU's training host-bound?).
# PART=main runs 1-5 and 9, PART=compile 6-8 (a second command, while the device is still warm).
# OUT/summary.md gathers the figures. It is rewritten after every step, so a run cut short keeps those of the steps
# that finished. Runs from the repository root with PYTHONPATH=src (nothing installed).
# `tiny` runs the same on the CPU with small sizes: the smoke test before spending device time.
set -uo pipefail
if [ $# -lt 1 ] || [ $# -gt 2 ] || [[ $1 == -* ]] || [[ ${2:-tiny} != tiny ]] || [[ ${PART:-all} != @(all|main|compile) ]]; then
    echo "usage: [PART=all|main|compile] bash benchmarks/gpu_speed.sh OUT [tiny]   (what it runs: the comments at its top)" >&2
    exit 2
fi
OUT=$1 MODE=${2:-} PART=${PART:-all}
STOP_NAME=gpu_speed; source "$(dirname "${BASH_SOURCE[0]}")/stop_runs.sh"  # Ctrl-C stops every run it started
export PYTHONPATH=src PYTHONWARNINGS=ignore
if [ -d "$OUT" ] && [ ! -d "$OUT/logs" ] && [ -n "$(ls -A "$OUT")" ]; then  # a folder of something else
    echo "gpu_speed: $OUT holds files and is no earlier run's (no logs/): give a new or empty folder" >&2
    exit 2
fi
mkdir -p "$OUT/logs"
: > "$OUT/skipped.txt"
START=$(date +%s)
DEV=cuda REPEATS=10 LIVE_REPEATS=20 B64=64 S=130 TRAIN_STEPS=3000 LOSS_STEPS=1500 LOG=10 HOST_STEPS=1500
TRAIN_MINUTES=1.5 COMPILED_MINUTES=2.5 HOST_MINUTES=0.5
BUDGET_DEFAULT=540
SYNTH_SIZES=(--num-train 1000 --num-dev 100 --num-test 100)  # the demo's data
SLOW=1  # tiny: compiling on a 2-core CPU takes minutes, so every step is given SLOW times as long
if [ "$MODE" = tiny ]; then
    DEV=cpu REPEATS=1 LIVE_REPEATS=2 B64=2 S=16 TRAIN_STEPS=6 LOSS_STEPS=6 LOG=1 HOST_STEPS=6
    TRAIN_MINUTES=3 COMPILED_MINUTES=6 HOST_MINUTES=3
    BUDGET_DEFAULT=3000 SLOW=3
    SYNTH_SIZES=(--num-train 24 --num-dev 6 --num-test 6)
fi
SIZE=(--set model.focal.chunk_frames=0)  # as a GPU runs it anyway (no frame chunks off the CPU)
[ "$MODE" = tiny ] && SIZE=(--set model.width=32 --set model.scg.conv_width=32 --set model.scg.lstm_hidden=16)
# tiny: every step computes ASGCN as a GPU does, through PyTorch, so that the smoke test runs the device's code
# (under bf16-mixed the Focal stage then follows autocast, as on a GPU; in the compiled trainings the C library's
# calls would break the graph)
GPU_PATH=()
[ "$MODE" = tiny ] && GPU_PATH=(--set model.focal.kernel=torch)
BUDGET=${BUDGET:-$BUDGET_DEFAULT}
W=runs/gpu-speed

left() { echo $((BUDGET - $(date +%s) + START)); }
# allow NAME WANT LEAST: the seconds step NAME may take, WANT at most, what is left of the budget at least; prints
# nothing and fails, noting NAME in OUT/skipped.txt, where fewer than LEAST seconds are left
allow() {
    local want=$(($2 * SLOW)) least=$(($3 * SLOW)) rest
    rest=$(left)
    if [ "$rest" -lt "$least" ]; then
        echo "$1 ${rest}s" >> "$OUT/skipped.txt"
        echo "[gpu_speed] $1 skipped: ${rest} s of the budget left, it needs ${least}" >&2
        summarize
        return 1
    fi
    echo $((rest < want ? rest : want))
}
minutes() { python -c "print(round(min($1, ($2) / 60), 2))"; }  # minutes() MAX SECONDS: the smaller, in minutes
summarize() {  # OUT/summary.md from what has finished so far: a run cut short by the device's limits keeps it
    for d in "$W"/loss-* "$W"/train*; do  # each run's last metrics.csv, where it got far enough to write one
        csv=$(ls -d "$d"/logs/version_*/metrics.csv 2> /dev/null | tail -1)
        [ -n "$csv" ] && cp "$csv" "$OUT/$(basename "$d").csv"
    done
    python benchmarks/gpu_speed_summary.py "$OUT" > "$OUT/summary.md"
}
speed() {  # NAME WANT LEAST speed.py-options…
    local name=$1 limit
    limit=$(allow "$name" "$2" "$3") || return 0
    shift 3
    echo "[gpu_speed] $name (cut at $limit s)"
    timeout "$limit" python benchmarks/speed.py --device "$DEV" "$@" "${GPU_PATH[@]}" > "$OUT/$name.json" \
        2> "$OUT/logs/$name.err" &
    wait $! || echo "[gpu_speed] $name failed or was cut"  # (waited for in the background: Ctrl-C stops it at once)
    summarize
}
synth_data() {  # the demo's data, made once per run directory
    [ -f "$W/synth/train.files" ] && return 0
    python -m fgdm.cli synth --out "$W/synth" "${SYNTH_SIZES[@]}" --seed 0 --workers 8 --overwrite --quiet > /dev/null
}
# fit NAME LIMIT MINUTES fgdm-train-options…: `fgdm train configs/synth.yaml` on the demo's data into W/NAME, its
# fit loop stopping itself after MINUTES (training.max_minutes), killed at LIMIT seconds (against a hang)
fit() {
    timeout "$2" python -m fgdm.cli train configs/synth.yaml --set data.path="$W/synth" \
        --set training.output_dir="$W/$1" --set training.max_minutes="$3" --overwrite --quiet "${@:4}" \
        "${GPU_PATH[@]}" > "$OUT/logs/$1.log" 2>&1 &
    wait $!
}
# train NAME WANT LEAST MINUTES fgdm-train-options…: one timed fit, its minutes cut to what the budget leaves, so
# that its rate is reported
train() {
    local name=$1 limit start
    limit=$(allow "$name" "$2" "$3") || return 0
    local mins
    mins=$(minutes "$4" "$limit - 30 * $SLOW")  # the process's start and end: about 30 s
    shift 4
    echo "[gpu_speed] fgdm train configs/synth.yaml: $name, $mins minutes of fit loop (cut at $limit s)"
    start=$(date +%s%N)
    fit "$name" "$limit" "$mins" "$@"
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
PAIRS=(--train-precision 32-true bf16-mixed --precision 32 bf16)

main_first() {  # 1-4
    # no figures of an earlier run in this one's summary (its runs, and what it left in OUT)
    rm -rf "$W"/loss-* "$W/train" "$W/train-host" "$W/synth"
    rm -f "$OUT"/loss-*.csv "$OUT"/train.csv "$OUT"/train-host.csv "$OUT"/profile-paper-b64.txt \
        "$OUT"/{paper-b64,live,train,train-host,paper-b8,synth}.json
    speed paper-b64 150 30 --batch "$B64" --frames "$S" --repeats "$REPEATS" "${PAIRS[@]}" "${SIZE[@]}" \
        --profile "$OUT/profile-paper-b64.txt"
    speed live 60 30 "${LIVE[@]}" --repeats "$LIVE_REPEATS" --precision 32 bf16 "${SIZE[@]}"
    synth_data
    train train 150 60 "$TRAIN_MINUTES" --set training.max_steps="$TRAIN_STEPS"
    local limit mins
    if limit=$(allow loss 180 90); then
        mins=$(minutes 100 "$limit - 30 * $SLOW")
        echo "[gpu_speed] bf16-mixed against float32: 4 runs of $LOSS_STEPS steps or $mins minutes at once"
        for seed in 0 1; do
            for precision in 32-true bf16-mixed; do
                # each of the four runs gets a quarter of the device's 16 cores (not 16 threads each)
                OMP_NUM_THREADS=4 fit "loss-$precision-s$seed" "$limit" "$mins" --set training.precision=$precision \
                    --set training.seed=$seed --set training.max_steps="$LOSS_STEPS" \
                    --set training.val_every=1000000 --set training.log_every=$LOG &
            done
        done
        wait
        summarize
    fi
}
main_rest() {  # 5
    speed paper-b8 60 30 --batch 8 --frames "$S" --repeats "$REPEATS" "${PAIRS[@]}" "${SIZE[@]}"
    speed synth 60 30 --config configs/synth.yaml --batch 16 --frames 65 --repeats "$REPEATS" "${PAIRS[@]}"
}
compiled() {  # 6-8
    rm -rf "$W"/train-compiled*
    rm -f "$OUT"/train-compiled* "$OUT"/live-compile.json
    synth_data
    TORCH_LOGS=recompiles,graph_breaks,cudagraphs,perf_hints train train-compiled 200 120 "$COMPILED_MINUTES" \
        --set training.compile=true --set training.max_steps="$TRAIN_STEPS"
    speed live-compile 120 60 "${LIVE[@]}" --repeats "$LIVE_REPEATS" --precision 32 bf16 --compile sample --api \
        "${SIZE[@]}"
    TORCH_LOGS=recompiles,graph_breaks,cudagraphs,perf_hints train train-compiled-graphs 200 120 "$COMPILED_MINUTES" \
        --set training.compile=reduce-overhead --set training.max_steps="$TRAIN_STEPS"
}
host() {  # 9
    train train-host 90 45 "$HOST_MINUTES" "${HOST[@]}" --set training.max_steps="$HOST_STEPS"
}

case "$PART" in
    all) main_first; main_rest; compiled; host ;;
    main) main_first; main_rest; host ;;
    compile) compiled ;;
esac
summarize
echo "[gpu_speed] $(( $(date +%s) - START )) s of the budget's $BUDGET"
cat "$OUT/summary.md"
