#!/usr/bin/env bash
# BSDS500 val (100 photos), real bitstreams: the shipped one-rate models with both padding rules,
# the variable-rate runs at the paper's four qualities, and the classic codecs (issue 17).
#   training/evaluate_val.sh fixed            # gabic-small, zou2022-small q1..q4, --pad zero and edge
#   training/evaluate_val.sh classic          # JPEG, WebP, AVIF (Pillow)
#   training/evaluate_val.sh vr DIR SUFFIX    # DIR/{arch}-small{SUFFIX}.safetensors at q1..q4, --pad edge
#   training/evaluate_val.sh bd               # BD-rate tables of whatever results exist
# One thread per run; results in results/bsds500-val/. Selection never looks at Kodak.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DATA=${DATA:-../shared/data}
OUT=results/bsds500-val
mkdir -p "$OUT"
case "${1:-}" in
fixed)
    for pad in zero edge; do
        for name in gabic-small zou2022-small; do
            $PY -W ignore -m gabic eval "$DATA/bsds500/val" --model "$name" --pad "$pad" --threads 1 \
                --no-progress --output "$OUT/$name-pad-$pad.json" > "$OUT/$name-pad-$pad.log" 2>&1
        done
    done
    ;;
classic)
    for codec in jpeg webp avif; do
        $PY -W ignore -m gabic eval "$DATA/bsds500/val" --codec "$codec" --no-progress \
            --output "$OUT/$codec.json" > "$OUT/$codec.log" 2>&1
    done
    ;;
vr)
    dir=${2:?folder of the variable-rate files}
    suffix=${3:-}
    for arch in gabic zou2022; do
        $PY -W ignore -m gabic eval "$DATA/bsds500/val" --model "$dir/$arch-small$suffix.safetensors" \
            --quality 1 2 3 4 --name "$arch-small$suffix" --threads 1 --no-progress \
            --output "$OUT/$arch-small$suffix.json" > "$OUT/$arch-small$suffix.log" 2>&1 &
    done
    wait
    ;;
bd)
    for arch in gabic zou2022; do
        $PY -m gabic bdrate "$OUT/$arch-small-pad-zero.json" "$OUT/$arch-small-pad-edge.json" \
            --output "$OUT/bd-$arch-edge-vs-zero.json"
    done
    $PY -m gabic bdrate "$OUT/jpeg.json" "$OUT"/gabic-small*.json "$OUT"/zou2022-small*.json "$OUT/webp.json" \
        "$OUT/avif.json" --output "$OUT/bd-vs-jpeg.json" --plot "$OUT/rd"
    ;;
*)
    sed -n '2,9p' "$0"
    exit 2
    ;;
esac
