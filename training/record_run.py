"""Keep what audits a training run, small enough to commit.

    python training/record_run.py runs/gabic-small-q4-cpu7 [RUN ...] [--to training/runs]

For each run folder, ``--to/<run name>/`` receives:

- ``state.json`` (step, best validation loss, wall time, arguments, machine) and every
  ``*val.jsonl`` (one line per validation), copied as they are;
- ``log-thinned.jsonl``: the step log ``log.jsonl`` (one line per optimizer step) thinned to at
  most ``--limit`` bytes (100 kB) by this rule: keep the first and the last line, every line
  within ``--around`` (2) steps of a validation step, and every N-th line (steps N, 2N, ...
  when the log counts from step 1) with the smallest N for which the result fits.

The weights (``weights.safetensors``, ``best.safetensors``, ``last.pt``) and the console output
are not kept: the shipped files and their model cards in ``assets/weights/`` carry the result.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Iterable
from pathlib import Path

LIMIT_BYTES = 100_000
AROUND_STEPS = 2
THINNED_LOG = "log-thinned.jsonl"


def _step(line: str) -> int | None:
    try:
        step = json.loads(line).get("step")
    except (json.JSONDecodeError, AttributeError):
        return None
    return step if isinstance(step, int) else None


def thin_log_lines(lines: list[str], validation_steps: Iterable[int], limit_bytes: int = LIMIT_BYTES,
                   around: int = AROUND_STEPS) -> tuple[list[str], int]:  # fmt: skip
    """The lines of a step log kept by the rule of this module, and the N used.

    Args:
        lines: the log's lines, each ending in a newline.
        validation_steps: steps at which the run validated (``step`` of its ``val.jsonl``).
        limit_bytes: the most bytes (UTF-8) the kept lines may take.
        around: lines whose step is within this many steps of a validation step are kept.

    Raises:
        ValueError: when the first, last and validation lines alone exceed ``limit_bytes``.
    """
    validations = set(validation_steps)
    sizes = [len(line.encode()) for line in lines]
    required = {0, len(lines) - 1} if lines else set()
    for index, line in enumerate(lines):
        step = _step(line)
        if step is not None and any(abs(step - v) <= around for v in validations):
            required.add(index)
    base = sum(sizes[i] for i in required)
    if base > limit_bytes:
        raise ValueError(
            f"first, last and validation lines take {base} bytes, over the limit of {limit_bytes}"
        )
    for every in range(1, max(len(lines), 1) + 1):
        kept = required | set(range(every - 1, len(lines), every))
        if sum(sizes[i] for i in kept) <= limit_bytes:
            return [lines[i] for i in sorted(kept)], every
    raise AssertionError("unreachable: N = len(lines) keeps only the required lines")


def record_run(run: Path, target: Path, limit_bytes: int = LIMIT_BYTES, around: int = AROUND_STEPS) -> int:
    """Write the record of ``run`` into ``target`` (see the module docstring); returns the N used."""
    target.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(run / "state.json", target / "state.json")
    validation_steps = []
    for val in sorted(run.glob("*val.jsonl")):
        shutil.copyfile(val, target / val.name)
    if (run / "val.jsonl").is_file():
        validation_steps = [
            s for s in map(_step, (run / "val.jsonl").read_text().splitlines()) if s is not None
        ]
    lines = (run / "log.jsonl").read_text().splitlines(keepends=True)
    kept, every = thin_log_lines(lines, validation_steps, limit_bytes, around)
    (target / THINNED_LOG).write_text("".join(kept))
    return every


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("runs", nargs="+", type=Path, help="run folders (state.json, val.jsonl, log.jsonl)")
    parser.add_argument("--to", type=Path, default=Path(__file__).resolve().parent / "runs")
    parser.add_argument("--limit", type=int, default=LIMIT_BYTES, help="bytes of the thinned step log")
    parser.add_argument("--around", type=int, default=AROUND_STEPS, help="steps kept around each validation")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    for run in args.runs:
        if not (run / "state.json").is_file() or not (run / "log.jsonl").is_file():
            print(f"error: {run} has no state.json and log.jsonl", file=sys.stderr)
            return 1
        every = record_run(run, args.to / run.name, args.limit, args.around)
        print(f"{run} -> {args.to / run.name} (step log: every {every}. line kept)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
