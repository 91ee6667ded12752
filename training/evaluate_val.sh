#!/usr/bin/env bash
# BSDS500 val (the first IMAGES of its 100 photos), real bitstreams: the shipped one-rate models with both padding rules,
# the variable-rate runs at the paper's four qualities, and the classic codecs (issue 17).
#   training/evaluate_val.sh fixed            # gabic-small, zou2022-small q1..q4, --pad zero and edge
#   training/evaluate_val.sh classic          # JPEG, WebP, AVIF (Pillow)
#   training/evaluate_val.sh vr DIR SUFFIX    # DIR/{arch}-small{SUFFIX}.safetensors at q1..q4, --pad edge
#                                             # (LAYOUT=reference: that layout, results named *-reference.json)
#   training/evaluate_val.sh search           # encoder search (EFFORT steps, default 30) against none
#                                             # (SKIP=N IMAGES=M EFFORTS=30: photos N+1..N+M, search only)
#   training/evaluate_val.sh search-join      # the search's parts in OUT joined with the first photos' files
#   training/evaluate_val.sh bd               # BD-rate tables of whatever results exist
# One thread per run; results in results/bsds500-val/. Selection never looks at Kodak.
# IMAGES (default 24) limits each run to the first photos of val by name: the session that made the
# committed results had the machine for about 15 minutes of evaluation (a full pass of 100 photos
# takes about 17 CPU-minutes per model and padding). IMAGES=100 evaluates all of val.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DATA=${DATA:-../shared/data}
OUT=${OUT:-results/bsds500-val}
IMAGES=${IMAGES:-24}
mkdir -p "$OUT"
case "${1:-}" in
fixed)
    for pad in zero edge; do
        for name in gabic-small zou2022-small; do
            # the decode check (decoded == forward) runs with the default edge padding
            check=$([ "$pad" = zero ] && echo --no-check || true)
            $PY -W ignore -m gabic eval "$DATA/bsds500/val" --max-images "$IMAGES" --model "$name" --pad "$pad" \
                --threads 1 --no-progress $check --output "$OUT/$name-pad-$pad.json" > "$OUT/$name-pad-$pad.log" 2>&1 &
        done
        wait
    done
    ;;
classic)
    for codec in ${CODECS:-jpeg webp avif}; do
        $PY -W ignore -m gabic eval "$DATA/bsds500/val" --max-images "$IMAGES" --codec "$codec" --no-progress \
            --output "$OUT/$codec.json" > "$OUT/$codec.log" 2>&1
    done
    ;;
vr)
    dir=${2:?folder of the variable-rate files}
    suffix=${3:-}
    layout=${LAYOUT:-compact}
    tag=$([ "$layout" = reference ] && echo -reference || true)
    for arch in gabic zou2022; do
        $PY -W ignore -m gabic eval "$DATA/bsds500/val" --max-images "$IMAGES" --layout "$layout" \
            --model "$dir/$arch-small$suffix.safetensors" --quality 1 2 3 4 --name "$arch-small$suffix" --threads 1 --no-progress \
            --output "$OUT/$arch-small$suffix$tag.json" > "$OUT/$arch-small$suffix$tag.log" 2>&1 &
    done
    wait
    ;;
search)
    # encoder search (gabic.codec.search) against none: the shipped variable-rate models at q1..q4,
    # compact layout, EFFORT steps (default 30) and 0 on the first IMAGES photos, then the BD-rate
    # of the search against none (results/bsds500-val/{arch}-small-vr-effort{0,EFFORT}.json,
    # bd-{arch}-vr-effort{EFFORT}-vs-0.json); one thread per model, both models side by side.
    # In parts: SKIP=N leaves out the first N photos (files named *-from{N}.json, with WebP on the
    # same photos; search-join joins them), EFFORTS="30" runs the search only (no effort-0 run).
    effort=${EFFORT:-30}
    efforts=${EFFORTS:-0 $effort}
    skip=${SKIP:-0}
    part=$([ "$skip" -gt 0 ] && echo "-from$skip" || true)
    for arch in gabic zou2022; do
        (
            for e in $efforts; do
                $PY -W ignore -m gabic eval "$DATA/bsds500/val" --skip-images "$skip" --max-images "$IMAGES" \
                    --model "$arch-small-vr" --quality 1 2 3 4 --effort "$e" --name "$arch-small-vr effort $e" \
                    --threads 1 --no-progress --output "$OUT/$arch-small-vr-effort$e$part.json" \
                    > "$OUT/$arch-small-vr-effort$e$part.log" 2>&1
            done
            if [ -f "$OUT/$arch-small-vr-effort0$part.json" ] && [ -f "$OUT/$arch-small-vr-effort$effort$part.json" ]; then
                $PY -m gabic bdrate "$OUT/$arch-small-vr-effort0$part.json" "$OUT/$arch-small-vr-effort$effort$part.json" \
                    --output "$OUT/bd-$arch-vr-effort$effort-vs-0$part.json" > /dev/null
            fi
        ) &
    done
    if [ "$skip" -gt 0 ] && [ ! -f "$OUT/webp$part.json" ]; then  # WebP on the same photos, for search-join
        $PY -W ignore -m gabic eval "$DATA/bsds500/val" --skip-images "$skip" --max-images "$IMAGES" --codec webp \
            --no-progress --output "$OUT/webp$part.json" > "$OUT/webp$part.log" 2>&1 &
    fi
    wait
    ;;
search-join)
    # the search's parts joined (python -m gabic combine): the first photos' files in FIRST (default
    # results/bsds500-val: webp.json, {arch}-small-vr-effort{0,EFFORT}.json) and the parts
    # *-from{N}.json in OUT, as *-joined.json in OUT; then the BD-rates of both efforts against WebP
    # (bd-effort-vs-webp-joined.json) and of the search against none (bd-{arch}-vr-effort{EFFORT}-vs-0-joined.json)
    effort=${EFFORT:-30}
    first=${FIRST:-results/bsds500-val}
    join() {
        local parts=("$OUT/$1"-from*.json)  # any order: combine sorts the photos by name
        $PY -m gabic combine "$first/$1.json" "${parts[@]}" --output "$OUT/$1-joined.json"
    }
    join webp
    for arch in gabic zou2022; do
        join "$arch-small-vr-effort0"
        join "$arch-small-vr-effort$effort"
        $PY -m gabic bdrate "$OUT/$arch-small-vr-effort0-joined.json" "$OUT/$arch-small-vr-effort$effort-joined.json" \
            --output "$OUT/bd-$arch-vr-effort$effort-vs-0-joined.json"
    done
    $PY -m gabic bdrate "$OUT/webp-joined.json" "$OUT"/{gabic,zou2022}-small-vr-effort{0,"$effort"}-joined.json \
        --output "$OUT/bd-effort-vs-webp-joined.json"
    ;;
bd)
    # only the comparisons whose result files exist (a full-val folder may hold the variable-rate
    # models and the classic codecs only)
    shopt -s nullglob
    have() { for f in "$@"; do [ -f "$OUT/$f" ] || return 1; done; }
    bd() { $PY -m gabic bdrate "$OUT/$1" "$OUT/$2" --output "$OUT/$3"; }
    for arch in gabic zou2022; do
        # edge against zero padding (anchor: zero), and the variable-rate model against the one-rate
        # models at the four λ, both with edge padding and in the same layout (anchor: one-rate; the
        # one-rate results are of the reference layout)
        have "$arch-small-pad-zero.json" "$arch-small-pad-edge.json" &&
            bd "$arch-small-pad-zero.json" "$arch-small-pad-edge.json" "bd-$arch-edge-vs-zero.json"
        vr=$([ -f "$OUT/$arch-small-vr-reference.json" ] && echo "$arch-small-vr-reference.json" || echo "$arch-small-vr.json")
        have "$arch-small-pad-edge.json" "$vr" &&
            bd "$arch-small-pad-edge.json" "$vr" "bd-$arch-vr-vs-one-rate.json"
        # the compact layout against the reference layout, same model (anchor: reference)
        have "$arch-small-vr-reference.json" "$arch-small-vr.json" &&
            bd "$arch-small-vr-reference.json" "$arch-small-vr.json" "bd-$arch-vr-compact-vs-reference.json"
    done
    have zou2022-small-pad-edge.json gabic-small-pad-edge.json &&
        bd zou2022-small-pad-edge.json gabic-small-pad-edge.json bd-gabic-vs-zou2022.json
    have zou2022-small-vr.json gabic-small-vr.json &&
        bd zou2022-small-vr.json gabic-small-vr.json bd-gabic-vs-zou2022-vr.json
    have jpeg.json webp.json && bd jpeg.json webp.json bd-webp-vs-jpeg.json
    for anchor in jpeg webp; do
        have "$anchor.json" || continue
        $PY -m gabic bdrate "$OUT/$anchor.json" "$OUT"/gabic-small-pad-*.json "$OUT"/zou2022-small-pad-*.json \
            "$OUT"/*-small-vr.json "$OUT"/*-small-vr-reference.json --output "$OUT/bd-vs-$anchor.json" $([ "$anchor" = jpeg ] && echo --plot "$OUT/rd")
    done
    ;;
*)
    sed -n '2,9p' "$0"
    exit 2
    ;;
esac
