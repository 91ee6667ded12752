#!/usr/bin/env bash
# The recipe of the shipped gabic-small / zou2022-small weights, stage by stage, both architectures in
# parallel (one CPU thread each) with the same arguments, seed and step budget.
#
#   training/train_shipped.sh q4              # q4 (λ=0.0483) from scratch, or resumed from runs/
#   training/train_shipped.sh finetune STEPS  # q3 <- q4 best, q2 <- q3 best, q1 <- q2 best, STEPS each
#   training/train_shipped.sh gpu SECONDS     # on a GPU machine: all eight from the q4 parents, one budget
#   training/train_shipped.sh cpu3            # q4 only, 1400 more steps on the CPU from GPU round 2
#   training/train_shipped.sh cpu4            # q3, q4: more steps from the shipped files (bf16 transforms)
#   training/train_shipped.sh cpu5            # q1..q4: 1300 more steps from the shipped files (bf16, 8 runs)
#   training/train_shipped.sh cpu6            # q1..q4: 900 more steps from round 5's shipped files
#   training/train_shipped.sh vr7             # one variable-rate model per architecture from the q3 files
#   training/train_shipped.sh vr8|vr9|vr10…    # rounds 8, 9, …: the variable-rate models again, from the shipped -vr files
#   training/train_shipped.sh ship-vr         # assets/weights/{gabic,zou2022}-small-vr + run records (RESULTS=1: quote Kodak)
#   training/train_shipped.sh ship            # assets/weights + model cards, run records in training/runs/
#   training/train_shipped.sh kodak           # Kodak eval of both, BD numbers, RD plot, cards quote Kodak
#   training/train_shipped.sh kodak-vr        # Kodak eval of the two variable-rate models, BD numbers, RD plot
#
# q4 runs until its --steps or until stopped (a session ends); the model card records the steps done and
# the step selected on BSDS500 val. Kodak is only evaluated, never used to choose anything.
# Live runs write to runs/ (ignored by git); `python training/record_run.py runs/RUN` commits what audits a
# run as one file, training/runs/RUN.json (arguments, machine, lineage, every validation, a thinned loss
# curve); `--card CARD` makes a shipped card name its runs by those records. The history: training/ROUNDS.md.
# The shipped weights of round 1 on a GPU: CPU q4 to step 10 000 (batch 8x128^2), then `gpu 440` on one
# H200 (all eight runs at once, batch 8x256^2, 1682 steps each, lr x0.1 for the last quarter), shipped
# from runs/*-h200 (see run_suffix). The `gpu` stage writes fp16 parents of the q4 runs first.
# Round 2 (q3, q4 only, 170 s on the same H200): training/gpu_round.py train --qualities 3 4 --parent
# "runs/{arch}-small-q{quality}-h200/best.safetensors" --seconds 170 -- <same data> --batch-size 8
# --patch-size 256 --lr 1e-4 --warmup 50 --val-every 200 --val-images 24 --final-decay 0.4 --threads 4
# Round 3 (`cpu3`, q4 only) and round 4 (`cpu4`, q3 and q4 from the shipped files, 2600 steps, --bf16) ran
# on the 2-core CPU; `QUALITIES="3 4" training/train_shipped.sh ship` shipped round 4. Round 5 (`cpu5`: all
# four qualities from the shipped files, 1300 steps, --bf16, eight runs at once) and round 6 (`cpu6`: the
# same from round 5's files, 900 steps) also ran on the CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p runs
PY=${PY:-.venv/bin/python}
DATA=${DATA:-../shared/data}
ARCHS=(gabic zou2022)
COMMON=(--train-dir "$DATA/bsds500/train" --val-dir "$DATA/bsds500/val" --threads 1 --no-progress)

# Which run folder ships each quality: all four from CPU round 6 (*-cpu6: `cpu6` below), whose validation
# loss beat the files it started from (round 5's, *-cpu5) for every quality of both architectures; the
# model cards record each file's whole chain of runs.
run_suffix() { echo -cpu6; }

# --bf16 where the CPU computes bfloat16 natively (gabic.train.trainer.cpu_has_native_bf16), --no-bf16
# elsewhere: on an AVX2-only AMD EPYC a bf16 step took 113 s against 6.0 s in float32 (round 11).
# BF16=--bf16 / --no-bf16 overrides.
bf16_flag() {
    if [ -n "${BF16:-}" ]; then echo "$BF16"; return; fi
    $PY -W ignore -c 'from gabic.train.trainer import cpu_has_native_bf16; print("--bf16" if cpu_has_native_bf16() else "--no-bf16")'
}

# A CPU round from the shipped files: from_shipped ROUND QUALITY..., both architectures, one thread each,
# one step budget through runs/ROUND-steps; each run writes runs/{arch}-small-q{q}-ROUND/ (its console
# output in stdout.txt there).
from_shipped() {
    local round=$1 quality arch out
    shift
    # glibc hands each large activation buffer back to the kernel (munmap) and faults fresh pages in on the
    # next step: with eight runs that was 10-20 % of the CPU as system time. Keeping freed memory in the
    # heap removes it (round 6: stime/utime in /proc/PID/stat; the numbers computed are the same).
    export GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=17179869184:glibc.malloc.top_pad=268435456
    for quality in "$@"; do
        for arch in "${ARCHS[@]}"; do
            out="runs/$arch-small-q$quality-$round"
            mkdir -p "$out"
            $PY -W ignore -m gabic train --arch "$arch" --quality "$quality" \
                --init-from "assets/weights/$arch-small-q$quality.safetensors" --out "$out" \
                --steps 3000 --steps-file "runs/$round-steps" --batch-size 8 --patch-size 256 --lr 5e-5 --warmup 20 \
                --val-every 200 --val-images 24 --final-decay 0.3 --bf16 "${COMMON[@]}" > "$out/stdout.txt" 2>&1 &
        done
    done
    wait
}

case "${1:-}" in
q4)
    for arch in "${ARCHS[@]}"; do
        $PY -W ignore -m gabic train --arch "$arch" --quality 4 --out "runs/$arch-small-q4" \
            --steps "${2:-60000}" "${COMMON[@]}" > "runs/$arch-small-q4.stdout" 2>&1 &
    done
    wait
    ;;
finetune)
    steps=${2:?steps per fine-tune}
    for arch in "${ARCHS[@]}"; do
        (
            for quality in 3 2 1; do
                parent="runs/$arch-small-q$((quality + 1))/best.safetensors"
                $PY -W ignore -m gabic train --arch "$arch" --quality "$quality" --init-from "$parent" \
                    --out "runs/$arch-small-q$quality" --steps "$steps" --lr 2e-4 --warmup 50 \
                    --val-every 150 --val-images 12 "${COMMON[@]}"
            done
        ) > "runs/$arch-small-finetune.stdout" 2>&1 &
    done
    wait
    ;;
gpu)
    for arch in "${ARCHS[@]}"; do
        $PY -c "import sys; from safetensors.torch import load_file, save_file; from gabic.zoo import half_storage; \
save_file(half_storage(load_file(sys.argv[1])), sys.argv[2])" \
            "runs/$arch-small-q4/weights.safetensors" "runs/$arch-small-q4/parent-fp16.safetensors"
    done
    $PY training/gpu_round.py train --root "${GPU_ROOT:-/tmp/gpu}" --seconds "${2:?seconds}" -- \
        --train-dir "$DATA/bsds500/train" --val-dir "$DATA/bsds500/val" --batch-size 8 --patch-size 256 \
        --lr 2e-4 --warmup 100 --val-every 250 --val-images 24 --final-decay 0.25 --threads 2 --checkpoint-minutes 2
    ;;
cpu3)
    # q4 only, from round 2, on the 2-core CPU (one thread each); the budget was lowered to 1400 steps while
    # running by writing runs/cpu3-steps (both runs read it), so the decay began at step 980.
    for arch in "${ARCHS[@]}"; do
        $PY -W ignore -m gabic train --arch "$arch" --quality 4 --init-from "runs/$arch-small-q4-h200r2/best.safetensors" \
            --out "runs/$arch-small-q4-cpu3" --steps 1500 --steps-file runs/cpu3-steps --batch-size 8 \
            --patch-size 256 --lr 5e-5 --warmup 20 --val-every 150 --val-images 24 --final-decay 0.3 \
            "${COMMON[@]}" > "runs/$arch-small-q4-cpu3.stdout" 2>&1 &
    done
    wait
    ;;
cpu4)
    # q3 and q4, from the shipped files, on the 2-core CPU: four runs at once (one thread each), the
    # transforms under bfloat16 autocast (--bf16; entropy models and validation in float32). One step
    # budget for all four through runs/cpu4-steps, set from their measured rates.
    from_shipped cpu4 3 4
    ;;
cpu5)
    # all four qualities, from the shipped files, same recipe as cpu4: eight runs at once on the 2-core CPU
    # (one thread each). One step budget for all eight through runs/cpu5-steps (1300 steps).
    from_shipped cpu5 1 2 3 4
    ;;
cpu6)
    # round 5's recipe once more, from round 5's shipped files: all eight runs at once, one step budget
    # through runs/cpu6-steps (900 steps: what fitted in one session at ~8 s per step).
    from_shipped cpu6 1 2 3 4
    ;;
vr7)
    # One variable-rate model per architecture (gain units on y and z, issue 17), warm-started from
    # the shipped q3 files (gains spread by sqrt(λ_q/λ_3)), a quality drawn per batch (half the time
    # one of 1..4, else uniform in [1, 4]) with its λ; both runs at once, one thread each, one step
    # budget through runs/vr7-steps (set to 800 while running: what fitted in the session; the
    # decay began at step 630, 70 % of the first budget of 900). Ran from the code of commit ca85b59.
    export GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=17179869184:glibc.malloc.top_pad=268435456
    for arch in "${ARCHS[@]}"; do
        out="runs/$arch-small-vr-cpu7"
        mkdir -p "$out"
        $PY -W ignore -m gabic train --arch "$arch" --variable-rate \
            --init-from "assets/weights/$arch-small-q3.safetensors" --out "$out" --steps 3000 \
            --steps-file runs/vr7-steps --batch-size 8 --patch-size 256 --lr 1e-4 --gain-lr 1e-3 --warmup 50 \
            --val-every 200 --val-images 24 --final-decay 0.3 --bf16 --seed 0 "${COMMON[@]}" > "$out/stdout.txt" 2>&1 &
    done
    wait
    ;;
vr8 | vr9 | vr1[0-9] | vr2[0-9])
    # Rounds 8 and later: both variable-rate models again, from the shipped -vr files (each round starts
    # from the round before's), round 7's recipe with the round's number as the seed (other crops
    # and qualities than the round before); one step budget through runs/vrN-steps (round 8: first 1600,
    # lowered to 1200 before its decay began; round 9: first 2000, raised to 2800 before its decay began;
    # round 10: first 3000, changed to 3500, 3400 and then 3200 before its decay began; round 11: first
    # 1000, raised to 1150 before its decay began at step 805, lowered to 1050 at step ~1040; round 12: first
    # 3000, 1350 when it resumed at step 16, lowered to 1100 before its decay began at step 770; round 14:
    # 3000, lowered to 2800 after its decay began at step 2100, for the session's time; round 15: 3000,
    # lowered to 2800 at step ~800, before its decay began, for the session's time; round 16: 3000, lowered
    # to 2600 at step ~400, 2400 at step ~520 and 2200 at step ~690, before its decay began, for the
    # session's time; round 17: 1300, lowered to 1200, 950 and 800 and raised to 1000 at steps
    # 114–356, before its decay began, for the session's time; round 18: 1200, lowered to 1000 and
    # 900 and raised to 1000 at steps 66–229, before its decay began, for the session's time; round 19:
    # 1500, lowered to 1000, 650 and 500 at steps 29–333, before its decay began, for the session's
    # encoder-search measurements; round 20: 1500, lowered to 500 at step ~122, before its decay began,
    # the steps of round 19; the decay is the last 30 % of the budget). Transforms under bf16 where the CPU has it (bf16_flag;
    # rounds 11 and 17–20 ran in float32 on an AVX2-only CPU).
    # VR_FROM=cpuN starts from round N's selected weights in its run folder instead of the shipped
    # files (meant for round 17: from round 16, which gained -1.7 % / -0.8 % on val, under the 2 %
    # rule for shipping; round 16's folders were gone when round 17 ran, so it started from the
    # shipped round 15 files, which it is compared with; round 18 ran with VR_FROM=cpu17 and is
    # compared with round 17 for the stop rule and with round 15's shipped files for the 2 % rule;
    # round 19 with VR_FROM=cpu18, round 20 with VR_FROM=cpu19, likewise; after round 20 the issue's
    # stop rule holds for Zou2022, two rounds in a row under 0.5 %: training/ROUNDS.md)
    round=${1#vr}
    bf16=$(bf16_flag)
    export GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=17179869184:glibc.malloc.top_pad=268435456
    for arch in "${ARCHS[@]}"; do
        out="runs/$arch-small-vr-cpu$round"
        init="assets/weights/$arch-small-vr.safetensors"
        if [ -n "${VR_FROM:-}" ]; then init="runs/$arch-small-vr-$VR_FROM/best.safetensors"; fi
        mkdir -p "$out"
        $PY -W ignore -m gabic train --arch "$arch" --variable-rate \
            --init-from "$init" --out "$out" --steps 3000 --steps-file "runs/vr$round-steps" \
            --batch-size 8 --patch-size 256 --lr 1e-4 --gain-lr 1e-3 --warmup 50 \
            --val-every 200 --val-images 24 --final-decay 0.3 "$bf16" --seed "$round" "${COMMON[@]}" > "$out/stdout.txt" 2>&1 &
    done
    wait
    ;;
ship-vr)
    # the variable-rate families gabic-small-vr / zou2022-small-vr (one file each, qualities 1..4), from
    # round VR_ROUND (cpu15; rounds 7 to 14 shipped from cpu7 to cpu14)
    vr_round=${VR_ROUND:-cpu15}
    for arch in "${ARCHS[@]}"; do
        $PY -m gabic ship "runs/$arch-small-vr-$vr_round" --name "$arch-small-vr" \
            ${RESULTS:+--results "results/kodak/$arch-small-vr.json"}
        cp "runs/vr${vr_round#cpu}-steps" training/runs/ 2>/dev/null || true
        # training/runs/RUN.json, and the card names its runs by those records (tests/docs/test_training_record.py)
        $PY training/record_run.py "runs/$arch-small-vr-$vr_round" --card "assets/weights/$arch-small-vr.json"
    done
    ;;
kodak-vr)
    # Kodak eval of the shipped variable-rate models at the paper's four qualities (Kodak's 768x512 photos
    # need no padding), BD-rate against JPEG, WebP, AVIF, the one-rate models and each other
    for arch in "${ARCHS[@]}"; do
        $PY -W ignore -m gabic eval "$DATA/kodak" --model "assets/weights/$arch-small-vr.safetensors" \
            --quality 1 2 3 4 --name "$arch-small-vr" --threads 1 --no-progress \
            --output "results/kodak/$arch-small-vr.json" > "results/kodak/$arch-small-vr.log" 2>&1 &
    done
    wait
    for anchor in jpeg webp avif; do
        $PY -m gabic bdrate "results/kodak/$anchor.json" results/kodak/gabic-small-vr.json \
            results/kodak/zou2022-small-vr.json --output "results/kodak/bd-vr-vs-$anchor.json" \
            $([ "$anchor" = jpeg ] && echo --plot results/kodak/rd-vr)
    done
    $PY -m gabic bdrate results/kodak/zou2022-small-vr.json results/kodak/gabic-small-vr.json \
        --output results/kodak/bd-gabic-vs-zou2022-vr.json
    for arch in "${ARCHS[@]}"; do
        $PY -m gabic bdrate "results/kodak/$arch-small.json" "results/kodak/$arch-small-vr.json" \
            --output "results/kodak/bd-$arch-vr-vs-one-rate.json"
    done
    ;;
ship)
    # QUALITIES="3 4" ships only those (the run folders of the others may hold no weights any more)
    for arch in "${ARCHS[@]}"; do
        for quality in ${QUALITIES:-1 2 3 4}; do
            run="runs/$arch-small-q$quality$(run_suffix "$quality")"
            $PY -m gabic ship "$run" --name "$arch-small" --quality "$quality" \
                ${RESULTS:+--results "results/kodak/$arch-small.json"}
            # training/runs/RUN.json; the card names its runs by their records, as in ship-vr
            $PY training/record_run.py "$run" --card "assets/weights/$arch-small-q$quality.json"
        done
    done
    ;;
kodak)
    for arch in "${ARCHS[@]}"; do
        $PY -W ignore -m gabic eval "$DATA/kodak" --model "$arch-small" --threads 1 --no-progress \
            --output "results/kodak/$arch-small.json" > "results/kodak/$arch-small.log" 2>&1 &
    done
    wait
    $PY -m gabic bdrate results/kodak/jpeg.json results/kodak/gabic-small.json results/kodak/zou2022-small.json \
        results/kodak/webp.json results/kodak/avif.json --output results/kodak/bd-vs-jpeg.json --plot results/kodak/rd
    $PY -m gabic bdrate results/kodak/zou2022-small.json results/kodak/gabic-small.json \
        --output results/kodak/bd-gabic-vs-zou2022.json
    for anchor in webp avif; do
        $PY -m gabic bdrate "results/kodak/$anchor.json" results/kodak/gabic-small.json \
            results/kodak/zou2022-small.json --output "results/kodak/bd-vs-$anchor.json"
    done
    RESULTS=1 "$0" ship
    ;;
*)
    sed -n '2,17p' "$0"
    exit 2
    ;;
esac
