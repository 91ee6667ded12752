"""Keep what audits a training run in one small JSON file: ``training/runs/<run>.json``.

    python training/record_run.py runs/gabic-small-vr-cpu13 [RUN ...] [--to training/runs]
                                  [--card assets/weights/gabic-small-vr.json]
    python training/record_run.py --from-record training/runs/gabic-small-q4/ [...]   # one-off

A live run folder (``runs/<run>/``: ``state.json``, ``val.jsonl``, ``log.jsonl``, and where the
trainer wrote them ``parent_card.json`` and ``train_files.json``) becomes ``<to>/<run>.json``::

    record            the format, "gabic-explorer/run-record/1"
    run, source       the run's name; what the record was written from (and how many log lines)
    final_step, wall_time_hours, best_validation {step, loss}
    args              every argument of ``python -m gabic train``, as recorded (paths of the time)
    machine           CPU, cores, threads, torch, python, device (GPU)
    state             the rest of ``state.json`` as written (counters, lr, plateau, config, λ, ...)
    steps_budget      the ``--steps-file`` and the budget it held when the record was written
    lineage           init_from; the record of the run that made it (parent_record); a summary
                      of ``parent_card.json`` with its SHA-256; ``train_files.json`` (root, key,
                      the file names)
    validation        every line of ``val.jsonl`` (floats to 6 significant digits); other
                      ``*val.jsonl`` files of the folder under other_validation
    curve             the step log thinned to at most CURVE_POINTS (150) points, one array per
                      column (step, loss, loss_mean, bpp, psnr, lr, seconds, quality when logged):
                      the first and the last logged step, every validation step, and every N-th
                      logged line with the smallest N that fits. loss_mean is the mean loss of
                      the logged lines since the point before (this one included).
    tail              step, loss (and quality) of every logged line in the last TAIL_FRACTION
                      (10 %) of the run's steps, for ``learning_curve.py``
    restarts          where the log starts again at an earlier step (a resume from ``last.pt``):
                      the lines it replaces are left out of curve and tail

Weights, resume checkpoints and console output are not kept: the shipped files and their model
cards in ``assets/weights/`` carry the result. ``--card`` rewrites a freshly shipped card so that
it names runs by their records (``"out"`` / ``"run"``: ``training/runs/<run>.json``) and other
``runs/`` paths by ``training/runs/``.

``--from-record`` converts a record folder of the former format (``state.json``, ``val.jsonl``,
``log-thinned.jsonl``) into the same file; its parent_record comes from the model cards' chains
and its curve and tail from the thinned log (as many steps as that log kept).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RECORDS = Path(__file__).resolve().parent / "runs"
CARDS = ROOT / "assets" / "weights"
FORMAT = "gabic-explorer/run-record/1"
CURVE_POINTS = 150
TAIL_FRACTION = 0.1
#: Columns of the curve, with the significant digits kept.
CURVE_DIGITS = {"loss": 4, "loss_mean": 4, "bpp": 4, "psnr": 4, "lr": 3, "seconds": 3, "quality": 4}
TAIL_DIGITS = 5
TAIL_POINTS = 400
VALIDATION_DIGITS = 6
THINNED_LOG = "log-thinned.jsonl"  # the former format's step log
_RECORD_PATH = re.compile(r"^(?:training/)?runs/([^/]+?)(?:\.json)?$")


def significant(value: Any, digits: int) -> Any:
    """``value`` rounded to ``digits`` significant digits (ints, None and non-finite floats as they are)."""
    if isinstance(value, bool) or not isinstance(value, float) or not math.isfinite(value) or value == 0:
        return value
    return float(f"{value:.{digits}g}")


def _round_floats(value: Any, digits: int) -> Any:
    if isinstance(value, dict):
        return {k: _round_floats(v, digits) for k, v in value.items()}
    if isinstance(value, list):
        return [_round_floats(v, digits) for v in value]
    return significant(value, digits)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def drop_replaced(log: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, int]]]:
    """The log without the lines a restart replaced: where a line's step is not above the step of
    the line before (the run resumed from an earlier checkpoint), the earlier lines from that step
    on are dropped. Returns the kept lines and one ``{at_step, dropped_lines}`` per restart."""
    kept: list[dict[str, Any]] = []
    restarts = []
    for line in log:
        if kept and line["step"] <= kept[-1]["step"]:
            before = len(kept)
            while kept and kept[-1]["step"] >= line["step"]:
                kept.pop()
            restarts.append({"at_step": line["step"], "dropped_lines": before - len(kept)})
        kept.append(line)
    return kept, restarts


def thin_indices(
    steps: list[int], validation_steps: Iterable[int], limit: int = CURVE_POINTS
) -> tuple[list[int], int]:
    """Indices of ``steps`` (a log's steps, increasing) kept in the curve, and the N used: the
    first and the last, every index whose step is a validation step, and every N-th index
    (N-1, 2N-1, ...: steps N, 2N, ... of a log counting from step 1) with the smallest N for
    which at most ``limit`` indices are kept.

    Raises:
        ValueError: when the first, last and validation indices alone are more than ``limit``.
    """
    validations = set(validation_steps)
    required = {0, len(steps) - 1} if steps else set()
    required |= {i for i, step in enumerate(steps) if step in validations}
    if len(required) > limit:
        raise ValueError(
            f"first, last and validation steps are {len(required)} points, over the limit of {limit}"
        )
    for every in range(1, max(len(steps), 1) + 1):
        kept = required | set(range(every - 1, len(steps), every))
        if len(kept) <= limit:
            return sorted(kept), every
    raise AssertionError("unreachable: N = len(steps) keeps only the required indices")


def curve_of(
    log: list[dict[str, Any]], validation_steps: Iterable[int], limit: int = CURVE_POINTS
) -> dict[str, Any]:
    """The thinned curve of a step log (lines increasing in step) as columns (see the module docstring)."""
    indices, every = thin_indices([line["step"] for line in log], validation_steps, limit)
    columns = [c for c in ("step", "loss", "loss_mean", "bpp", "psnr", "lr", "seconds", "quality")
               if c == "loss_mean" or any(c in line for line in log)]  # fmt: skip
    curve: dict[str, Any] = {"every": every, "points": len(indices)}
    curve.update({c: [] for c in columns})
    previous = -1
    for index in indices:
        line = log[index]
        window = [entry["loss"] for entry in log[previous + 1 : index + 1]]
        previous = index
        for column in columns:
            value = sum(window) / len(window) if column == "loss_mean" else line.get(column)
            curve[column].append(value if column == "step" else significant(value, CURVE_DIGITS[column]))
    return curve


def tail_of(log: list[dict[str, Any]], final_step: int, fraction: float = TAIL_FRACTION,
            limit: int = TAIL_POINTS) -> dict[str, Any]:  # fmt: skip
    """Step, loss (and quality) of every logged line in the last ``fraction`` of ``final_step``
    steps; in a longer tail, of every k-th of them back from the last (the smallest k that keeps
    at most ``limit``)."""
    first = final_step - round(final_step * fraction) + 1
    lines = [line for line in log if first <= line["step"] <= final_step]
    every = max(1, math.ceil(len(lines) / limit))
    lines = lines[::-1][::every][::-1]  # counted from the last, which stays
    tail: dict[str, Any] = {"fraction": fraction, "from_step": first, "to_step": final_step, "every": every,
                            "step": [line["step"] for line in lines],
                            "loss": [significant(line["loss"], TAIL_DIGITS) for line in lines]}  # fmt: skip
    if any("quality" in line for line in lines):
        tail["quality"] = [line.get("quality") for line in lines]
    return tail


def record_name(path: str | None) -> str | None:
    """``training/runs/<run>.json`` for a run named ``runs/<run>``, ``training/runs/<run>`` or already
    ``training/runs/<run>.json``, and for a file inside such a run folder; else ``None``."""
    if not path:
        return None
    match = _RECORD_PATH.match(path) or _RECORD_PATH.match(str(Path(path).parent))
    return f"training/runs/{match.group(1)}.json" if match else None


def _parent_card_summary(text: str, init_from: str | None) -> dict[str, Any]:
    card = json.loads(text)
    training = card.get("training") or {}
    return {"weights": init_from, "model_id": card.get("model_id"), "quality": card.get("quality"),
            "steps": training.get("steps"), "selected_step": training.get("selected_step"),
            "total_steps": training.get("total_steps"), "run": (training.get("recipe") or {}).get("out"),
            "validation_loss": (card.get("validation") or {}).get("loss"),
            "sha256": hashlib.sha256(text.encode()).hexdigest()}  # fmt: skip


def _steps_budget(steps_file: str | None, *folders: Path) -> dict[str, Any] | None:
    if not steps_file:
        return None
    for candidate in (Path(steps_file), *(folder / Path(steps_file).name for folder in folders)):
        if candidate.is_file():
            text = candidate.read_text().strip()
            return {"file": steps_file, "budget": int(text) if text.isdigit() else text}
    return {"file": steps_file, "budget": None}


def build_record(name: str, state: dict[str, Any], validations: list[dict[str, Any]], log: list[dict[str, Any]],
                 *, source: str, lineage: dict[str, Any], steps_budget: dict[str, Any] | None,
                 other_validation: dict[str, list[dict[str, Any]]] | None = None,
                 limit: int = CURVE_POINTS) -> dict[str, Any]:  # fmt: skip
    """The record of run ``name`` (see the module docstring) from its parts."""
    log, restarts = drop_replaced(log)
    final_step = state["state"]["step"]
    best = min(validations, key=lambda v: v["loss"]) if validations else None
    record: dict[str, Any] = {
        "record": FORMAT,
        "run": name,
        "source": f"{source}; {len(log)} log lines kept of the run's {final_step} steps",
        "final_step": final_step,
        "wall_time_hours": round(state["state"]["elapsed"] / 3600, 3),
        "best_validation": {"step": best["step"], "loss": significant(best["loss"], VALIDATION_DIGITS)}
        if best
        else None,
        "args": state.get("args"),
        "machine": state.get("machine"),
        "state": {k: v for k, v in state.items() if k not in ("args", "machine")},
        "steps_budget": steps_budget,
        "lineage": lineage,
        "validation": _round_floats(validations, VALIDATION_DIGITS),
    }
    if other_validation:
        record["other_validation"] = {
            k: _round_floats(v, VALIDATION_DIGITS) for k, v in other_validation.items()
        }
    record["curve"] = curve_of(log, [v["step"] for v in validations], limit)
    record["tail"] = tail_of(log, final_step)
    record["restarts"] = restarts
    return record


def dump_record(record: dict[str, Any]) -> str:
    """The record as JSON text: one line per top-level entry, per validation and per column of the
    curve and the tail (those without spaces)."""

    def one(value: Any) -> str:
        return json.dumps(value)

    lines = []
    for key, value in record.items():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            body = ",\n".join(f"  {one(v)}" for v in value)
            lines.append(f" {one(key)}: [\n{body}\n ]")
        elif key in ("curve", "tail") and isinstance(value, dict):  # columns of numbers, no spaces
            body = ",\n".join(f"  {one(k)}: {json.dumps(v, separators=(',', ':'))}" for k, v in value.items())
            lines.append(f" {one(key)}: {{\n{body}\n }}")
        elif key == "other_validation" and isinstance(value, dict):
            body = ",\n".join(f"  {one(k)}: {one(v)}" for k, v in value.items())
            lines.append(f" {one(key)}: {{\n{body}\n }}")
        else:
            lines.append(f" {one(key)}: {one(value)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def record_run(run: Path, to: Path = RECORDS, limit: int = CURVE_POINTS) -> Path:
    """Write ``to/<run name>.json`` from the live run folder ``run``; returns its path."""
    state = json.loads((run / "state.json").read_text())
    args = state.get("args") or {}
    validations = read_jsonl(run / "val.jsonl") if (run / "val.jsonl").is_file() else []
    others = {p.name: read_jsonl(p) for p in sorted(run.glob("*val.jsonl")) if p.name != "val.jsonl"}
    init_from = args.get("init_from")
    lineage: dict[str, Any] = {
        "init_from": init_from,
        "parent_record": None,
        "parent_card": None,
        "train_files": None,
    }
    if (run / "parent_card.json").is_file():
        summary = _parent_card_summary((run / "parent_card.json").read_text(), init_from)
        lineage["parent_card"] = summary
        lineage["parent_record"] = record_name(summary["run"])
    elif init_from:
        lineage["parent_record"] = record_name(init_from)
    if (run / "train_files.json").is_file():
        files = json.loads((run / "train_files.json").read_text())
        lineage["train_files"] = {"root": files.get("root"), "key": files.get("key"),
                                  "count": len(files.get("files", [])), "files": files.get("files")}  # fmt: skip
    record = build_record(run.name, state, validations, read_jsonl(run / "log.jsonl"),
                          source=f"run folder {args.get('out') or run.as_posix()}: state.json, val.jsonl, log.jsonl",
                          lineage=lineage, steps_budget=_steps_budget(args.get("steps_file"), run.parent),
                          other_validation=others, limit=limit)  # fmt: skip
    to.mkdir(parents=True, exist_ok=True)
    target = to / f"{run.name}.json"
    target.write_text(dump_record(record))
    return target


def card_chains(cards: Path = CARDS) -> dict[str, str | None]:
    """Run name -> the record of its parent run, from the chains of the model cards in ``cards``
    (``recipe.out``, then ``started_from``, nearest first). A GPU run named by its folder on the lent
    machine (``/tmp/gpu/<arch>-small-q<q>``) is the record ``<that name>-h200*`` with its steps; an
    entry without ``run`` names its run by the folder of its weights file."""
    parents: dict[str, str | None] = {}
    for card_path in sorted(cards.glob("*.json")):
        training = json.loads(card_path.read_text()).get("training") or {}
        chain = [training.get("recipe", {}).get("out")]
        for entry in training.get("started_from") or []:
            run = entry.get("run")
            if run and run.startswith("/tmp/gpu/"):
                run = gpu_record(Path(run).name, entry.get("steps"))
            chain.append(run or str(Path(entry.get("weights", "")).parent))
        names = [record_name(run) for run in chain]
        for child, parent in zip(names, [*names[1:], None], strict=True):
            if child:
                parents.setdefault(Path(child).stem, parent)
    return parents


def gpu_record(name: str, steps: int | None, records: Path = RECORDS) -> str | None:
    """The record of GPU run ``name`` (``<arch>-small-q<q>``) that ran ``steps`` steps, where it is
    recorded (as a former record folder or as a record)."""
    for candidate in sorted(records.glob(f"{name}-h200*")):
        state = candidate / "state.json"
        if state.is_file():
            final = json.loads(state.read_text())["state"]["step"]
        elif candidate.suffix == ".json":
            final = json.loads(candidate.read_text())["final_step"]
        else:
            continue
        if final == steps:
            return f"training/runs/{candidate.name.removesuffix('.json')}"
    return None


def record_from_folder(folder: Path, to: Path = RECORDS, parents: dict[str, str | None] | None = None,
                       limit: int = CURVE_POINTS) -> Path:  # fmt: skip
    """Convert a record folder of the former format into ``to/<folder name>.json``; returns its path."""
    state = json.loads((folder / "state.json").read_text())
    args = state.get("args") or {}
    validations = read_jsonl(folder / "val.jsonl")
    others = {p.name: read_jsonl(p) for p in sorted(folder.glob("*val.jsonl")) if p.name != "val.jsonl"}
    parents = card_chains() if parents is None else parents
    lineage = {"init_from": args.get("init_from"), "parent_record": parents.get(folder.name),
               "parent_card": None, "train_files": None,
               "note": "converted record: parent_record from the model cards' chains; the run folder kept "
                       "no parent_card.json or train_files.json"}  # fmt: skip
    log = read_jsonl(folder / THINNED_LOG)
    source = (f"converted from training/runs/{folder.name}/ (state.json, val.jsonl, {THINNED_LOG}: "
              f"the step log as that record had thinned it)")  # fmt: skip
    record = build_record(folder.name, state, validations, log, source=source, lineage=lineage,
                          steps_budget=_steps_budget(args.get("steps_file"), folder.parent),
                          other_validation=others, limit=limit)  # fmt: skip
    to.mkdir(parents=True, exist_ok=True)
    target = to / f"{folder.name}.json"
    target.write_text(dump_record(record))
    return target


def name_records(value: Any, key: str | None = None) -> Any:
    """A model card (or part of one) naming runs by their records: every string starting with
    ``runs/`` gets ``training/`` in front, and the values of ``out`` and ``run`` that name a run
    (``training/runs/<run>``) end in ``.json``."""
    if isinstance(value, dict):
        return {k: name_records(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [name_records(v, key) for v in value]
    if isinstance(value, str):
        if value.startswith("runs/"):
            value = "training/" + value
        if key in ("out", "run") and _RECORD_PATH.match(value):
            value = record_name(value)
    return value


def rewrite_card(path: Path) -> bool:
    """Rewrite the model card ``path`` with :func:`name_records` (as ``gabic ship`` writes cards:
    indent 2, a final newline); returns whether it changed."""
    text = path.read_text()
    new = json.dumps(name_records(json.loads(text)), indent=2) + "\n"
    if new != text:
        path.write_text(new)
    return new != text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "runs", nargs="*", type=Path, help="live run folders (state.json, val.jsonl, log.jsonl)"
    )
    parser.add_argument("--from-record", nargs="+", type=Path, default=[], metavar="FOLDER",
                        help="record folders of the former format to convert")  # fmt: skip
    parser.add_argument("--to", type=Path, default=RECORDS, help="where the records go (training/runs)")
    parser.add_argument("--limit", type=int, default=CURVE_POINTS, help="points of the thinned curve")
    parser.add_argument(
        "--card", nargs="+", type=Path, default=[], help="model cards to name runs by their records"
    )
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if not (args.runs or args.from_record or args.card):
        parser.error("name run folders, --from-record folders or --card files")
    for run in args.runs:
        if not (run / "state.json").is_file() or not (run / "log.jsonl").is_file():
            print(f"error: {run} has no state.json and log.jsonl", file=sys.stderr)
            return 1
        target = record_run(run, args.to, args.limit)
        print(f"{run} -> {target} ({target.stat().st_size} bytes)")
    parents = card_chains() if args.from_record else {}
    for folder in args.from_record:
        if not (folder / "state.json").is_file() or not (folder / THINNED_LOG).is_file():
            print(f"error: {folder} has no state.json and {THINNED_LOG}", file=sys.stderr)
            return 1
        target = record_from_folder(folder, args.to, parents, args.limit)
        print(f"{folder} -> {target} ({target.stat().st_size} bytes)")
    for card in args.card:
        print(f"{card}: {'runs named by their records' if rewrite_card(card) else 'unchanged'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
