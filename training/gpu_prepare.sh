#!/usr/bin/env bash
# Get this checkout ready for one call of the device tool that runs training/gpu_session.sh, and
# put it back afterwards.
#
#   training/gpu_prepare.sh            # before the call
#   training/gpu_prepare.sh check      # what would travel, in MiB (the tool's limit is 64 MiB)
#   training/gpu_prepare.sh restore    # after the call: the index and .git/info/exclude as before
#
# The device machine gets a copy of the working tree (tracked files and untracked files that git
# does not ignore, plus the paths named in `carry`), at most 64 MiB, and has no network. So:
# - .gpu/ (ignored by .gitignore; name it in `carry`) holds BSDS500 train (200 photos),
#   the first 24 val photos (the ones `train --val-images 24` validates on) and the wheels of the
#   two packages the device's image lacks, CompressAI and pytorch-msssim, for CPython 3.12;
# - the eight one-rate weight files (~88 MB, not needed there) leave the index and are ignored for
#   the call; `restore` puts them back. The variable-rate files the session trains from stay.
# The wheels come from the package registry (pip download); nothing else is fetched.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data}
PY=${PY:-.venv/bin/python}
EXCLUDE=.git/info/exclude
ONE_RATE=(assets/weights/gabic-small-q{1,2,3,4}.safetensors assets/weights/zou2022-small-q{1,2,3,4}.safetensors)
MARK="# gpu_prepare.sh"

travelling_mib() {
    { git ls-files -z; git ls-files -z --others --exclude-standard; find .gpu -type f -print0; } |
        xargs -0 du -cb 2>/dev/null | tail -1 | awk '{printf "%.1f\n", $1 / 1048576}'
}

case "${1:-prepare}" in
prepare)
    mkdir -p "$(dirname "$EXCLUDE")"
    touch "$EXCLUDE"
    if ! grep -q "^$MARK" "$EXCLUDE"; then
        { echo "$MARK: the lines up to its end mark are removed by training/gpu_prepare.sh restore"
          printf '/%s\n' "${ONE_RATE[@]}"
          echo "$MARK end"; } >> "$EXCLUDE"
    fi
    git rm -q --cached --ignore-unmatch "${ONE_RATE[@]}"
    rm -rf .gpu
    mkdir -p .gpu/data/bsds500/val .gpu/whl
    cp -r "$DATA/bsds500/train" .gpu/data/bsds500/
    find "$DATA/bsds500/val" -maxdepth 1 -type f -printf '%f\n' | LC_ALL=C sort | head -24 |
        while read -r name; do cp "$DATA/bsds500/val/$name" .gpu/data/bsds500/val/; done
    $PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_34_x86_64 --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
        -d .gpu/whl compressai==1.2.8 pytorch-msssim==1.0.0
    echo "ready: $(travelling_mib) MiB would travel with carry=[\".gpu\"]"
    echo "then: run(command='bash training/gpu_session.sh 540', carry=['.gpu'], timeout_s=600)"
    ;;
check)
    echo "$(travelling_mib) MiB would travel"
    ;;
restore)
    git reset -q -- "${ONE_RATE[@]}"
    if [ -f "$EXCLUDE" ]; then
        sed -i "/^$MARK:/,/^$MARK end\$/d" "$EXCLUDE"
    fi
    git status --short -- assets/weights
    echo "restored (.gpu/ is kept until you delete it)"
    ;;
*)
    echo "usage: $0 [prepare|check|restore]" >&2
    exit 2
    ;;
esac
