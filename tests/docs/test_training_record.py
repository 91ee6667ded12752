"""training/: the run records (``record_run.py``), the committed ``training/runs/<run>.json``, the
model cards that name them, and ``learning_curve.py``."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNS = ROOT / "training" / "runs"
FORMAT = "gabic-explorer/run-record/1"
#: Bytes one record may take, and all of training/runs together (62 records took 723 kB after round
#: 19; each variable-rate round adds two of about 13 kB: room for about ten more rounds).
RECORD_LIMIT = 32_000
RUNS_LIMIT = 1_000_000
#: Points of a curve, at most (record_run.CURVE_POINTS may only be lowered below this).
CURVE_LIMIT = 200


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "training" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


record_run = _load("record_run")
learning_curve = _load("learning_curve")


def _steps(count: int) -> list[int]:
    return list(range(1, count + 1))


def test_thinning_keeps_first_last_and_validation_steps_within_the_limit():
    steps = _steps(5000)
    validations = [1000, 2000, 4999]
    kept, every = record_run.thin_indices(steps, validations, limit=150)
    kept_steps = [steps[i] for i in kept]
    assert len(kept) <= 150 and kept_steps == sorted(set(kept_steps))
    assert kept_steps[0] == 1 and kept_steps[-1] == 5000 and set(validations) <= set(kept_steps)
    assert every > 1 and all(s in kept_steps for s in range(every, 5001, every))
    # N is the smallest that fits: N - 1 would keep more than the limit
    required = {1, 5000, *validations}
    assert len(required | set(range(every - 1, 5001, every - 1))) > 150


def test_a_short_log_is_kept_whole_and_too_many_validations_are_refused():
    assert record_run.thin_indices(_steps(50), [25], limit=150) == (list(range(50)), 1)
    with pytest.raises(ValueError, match="over the limit"):
        record_run.thin_indices(_steps(1000), range(1, 1001, 5), limit=150)


def test_a_long_tail_is_thinned_back_from_the_last_step():
    log = [{"step": s, "loss": 1.0} for s in range(1, 10_001)]
    tail = record_run.tail_of(log, 10_000)
    assert tail["from_step"] == 9001 and tail["every"] == 3 and len(tail["step"]) <= record_run.TAIL_POINTS
    assert tail["step"][-1] == 10_000 and tail["step"][:2] == [9001, 9004] and "quality" not in tail


def test_a_restart_replaces_the_lines_it_runs_again():
    log = [{"step": s, "loss": 1.0} for s in range(1, 11)] + [{"step": s, "loss": 2.0} for s in range(7, 13)]
    kept, restarts = record_run.drop_replaced(log)
    assert [line["step"] for line in kept] == list(range(1, 13))
    assert [line["loss"] for line in kept] == [1.0] * 6 + [2.0] * 6
    assert restarts == [{"at_step": 7, "dropped_lines": 4}]


def _qualities(step: int) -> float:
    return [1.0, 2.0, 3.0, 4.0, 2.5, 1.25][step % 6]


def _live_run(tmp_path: Path, steps: int = 3000) -> Path:
    run = tmp_path / "runs" / "gabic-small-vr-cpu99"
    run.mkdir(parents=True)
    (tmp_path / "runs" / "vr99-steps").write_text("3000\n")
    args = {"arch": "gabic", "variable_rate": True, "out": "runs/gabic-small-vr-cpu99", "steps": 3000,
            "steps_file": str(tmp_path / "runs" / "vr99-steps"), "lr": 1e-4, "seed": 99,
            "init_from": "assets/weights/gabic-small-vr.safetensors"}  # fmt: skip
    state = {"state": {"step": steps, "best_val": 2.4, "elapsed": 7200.0}, "lr": 1e-5, "arch": "gabic",
             "config": {"N": 64}, "lmbda": None, "args": args, "machine": {"cpu": "test", "cpu_count": 2}}  # fmt: skip
    (run / "state.json").write_text(json.dumps(state, indent=1))
    validations = [
        {
            "loss": 2.5 - step / 1e4,
            "qualities": {
                str(q): {"bpp": 0.1 * q, "psnr": 28.0 + q, "loss": 0.6 * q + 0.1234567891}
                for q in (1, 2, 3, 4)
            },
            "step": step,
            "lr": 1e-4,
        }  # fmt: skip
        for step in range(500, steps + 1, 500)
    ]
    (run / "val.jsonl").write_text("".join(json.dumps(v) + "\n" for v in validations))
    (run / "log.jsonl").write_text("".join(
        json.dumps({"step": s, "loss": 1.0 + 1.0 / s + 0.001 * (s % 7), "bpp": 0.5, "mse": 0.001, "psnr": 30.0,
                    "aux": 9.0, "lr": 1e-4, "quality": _qualities(s), "seconds": 4.123456, "data_seconds": 0.01}) + "\n"
        for s in range(1, steps + 1)))  # fmt: skip
    parent = {"model_id": "gabic-small-vr", "training": {"steps": 1100, "selected_step": 1100, "total_steps": 27872,
              "recipe": {"out": "training/runs/gabic-small-vr-cpu12"}}, "validation": {"loss": 2.415}}  # fmt: skip
    (run / "parent_card.json").write_text(json.dumps(parent, indent=2))
    (run / "train_files.json").write_text(
        json.dumps({"root": "/data/train", "key": "abc", "files": ["1.jpg", "2.jpg"]})
    )
    (run / "weights.safetensors").write_bytes(b"not kept")
    (run / "last.pt").write_bytes(b"not kept")
    return run


def test_record_run_writes_one_compact_file(tmp_path):
    run = _live_run(tmp_path)
    records = tmp_path / "records"
    assert record_run.main([str(run), "--to", str(records)]) == 0
    assert [p.name for p in records.iterdir()] == ["gabic-small-vr-cpu99.json"]
    path = records / "gabic-small-vr-cpu99.json"
    assert path.stat().st_size <= RECORD_LIMIT
    record = json.loads(path.read_text())
    state = json.loads((run / "state.json").read_text())
    assert record["record"] == FORMAT and record["run"] == run.name and record["final_step"] == 3000
    assert {**record["state"], "args": record["args"], "machine": record["machine"]} == state
    assert record["wall_time_hours"] == 2.0 and record["steps_budget"]["budget"] == 3000
    assert record["best_validation"] == {"step": 3000, "loss": 2.2}
    # validation: every line, floats to 6 significant digits
    lines = [json.loads(line) for line in (run / "val.jsonl").read_text().splitlines()]
    assert [v["step"] for v in record["validation"]] == [v["step"] for v in lines]
    assert record["validation"][0]["qualities"]["1"]["loss"] == 0.723457
    lineage = record["lineage"]
    assert lineage["parent_record"] == "training/runs/gabic-small-vr-cpu12.json"
    assert (
        lineage["parent_card"]["sha256"]
        == hashlib.sha256((run / "parent_card.json").read_bytes()).hexdigest()
    )
    assert lineage["train_files"] == {
        "root": "/data/train",
        "key": "abc",
        "count": 2,
        "files": ["1.jpg", "2.jpg"],
    }
    curve = record["curve"]
    columns = ["step", "loss", "loss_mean", "bpp", "psnr", "lr", "seconds", "quality"]
    assert [k for k in curve if k not in ("every", "points")] == columns
    assert all(len(curve[c]) == curve["points"] <= record_run.CURVE_POINTS for c in columns)
    assert curve["step"][0] == 1 and curve["step"][-1] == 3000
    assert {v["step"] for v in lines} <= set(curve["step"])
    assert curve["seconds"][0] == 4.12 and curve["quality"] == [_qualities(s) for s in curve["step"]]
    # loss_mean: the mean of the logged losses since the point before
    second = curve["step"][1]
    expected = sum(1.0 + 1.0 / s + 0.001 * (s % 7) for s in range(2, second + 1)) / (second - 1)
    assert math.isclose(curve["loss_mean"][1], expected, rel_tol=1e-3)
    tail = record["tail"]
    assert tail["step"] == list(range(2701, 3001)) and tail["every"] == 1
    assert tail["quality"] == [_qualities(s) for s in range(2701, 3001)]
    assert record["restarts"] == []


def test_from_record_converts_a_former_record_folder(tmp_path):
    folder = tmp_path / "old" / "gabic-small-q4"
    folder.mkdir(parents=True)
    state = {"state": {"step": 900, "elapsed": 3600.0}, "arch": "gabic", "lmbda": 0.0483,
             "args": {"out": "checkpoints/gabic-small-q4", "init_from": None}, "machine": {"cpu": "test"}}  # fmt: skip
    (folder / "state.json").write_text(json.dumps(state))
    (folder / "val.jsonl").write_text(
        "".join(json.dumps({"loss": 5.0 - s / 1e3, "step": s}) + "\n" for s in (300, 600, 900))
    )
    (folder / "abandoned-patch64-val.jsonl").write_text(
        json.dumps({"loss": 14.3878007567, "step": 4000}) + "\n"
    )
    kept = [s for s in range(1, 901) if s % 2 == 0 or s in (1, 299, 301)]
    (folder / "log-thinned.jsonl").write_text(
        "".join(json.dumps({"step": s, "loss": 5.0, "lr": 2e-4}) + "\n" for s in kept)
    )
    target = record_run.record_from_folder(folder, tmp_path / "new", parents={"gabic-small-q4": None})
    record = json.loads(target.read_text())
    assert target.name == "gabic-small-q4.json" and record["run"] == "gabic-small-q4"
    assert "converted from" in record["source"] and record["lineage"]["parent_record"] is None
    assert record["other_validation"] == {"abandoned-patch64-val.jsonl": [{"loss": 14.3878, "step": 4000}]}
    assert record["curve"]["step"][0] == 1 and record["curve"]["step"][-1] == 900
    assert {300, 600, 900} <= set(record["curve"]["step"]) and "quality" not in record["curve"]
    assert record["tail"]["step"] == [s for s in kept if s >= 811]


def test_cards_name_runs_by_their_records():
    card = {"training": {"recipe": {"out": "runs/gabic-small-vr-cpu13", "steps_file": "runs/vr13-steps",
                                    "init_from": "assets/weights/gabic-small-vr.safetensors"},
                         "started_from": [{"weights": "assets/weights/gabic-small-vr.safetensors",
                                           "run": "training/runs/gabic-small-vr-cpu12"},
                                          {"run": "training/runs/gabic-small-vr-cpu11.json"},
                                          {"weights": "assets/weights/gabic-small-q3.safetensors", "run": "/tmp/gpu/gabic-small-q3"},
                                          {"weights": "runs/gabic-small-q3-h200/best.safetensors"}]}}  # fmt: skip
    named = record_run.name_records(card)
    assert named["training"]["recipe"] == {"out": "training/runs/gabic-small-vr-cpu13.json",
                                           "steps_file": "training/runs/vr13-steps",
                                           "init_from": "assets/weights/gabic-small-vr.safetensors"}  # fmt: skip
    assert [e.get("run") for e in named["training"]["started_from"]] == [
        "training/runs/gabic-small-vr-cpu12.json",
        "training/runs/gabic-small-vr-cpu11.json",
        "/tmp/gpu/gabic-small-q3",
        None,
    ]
    assert (
        named["training"]["started_from"][3]["weights"]
        == "training/runs/gabic-small-q3-h200/best.safetensors"
    )
    assert record_run.name_records(named) == named


def _records() -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(RUNS.glob("*.json"))}


def test_training_runs_holds_records_and_stays_small():
    assert not [p.name for p in RUNS.iterdir() if p.is_dir()], "record folders of the former format are left"
    assert len(_records()) >= 48
    assert sum(p.stat().st_size for p in RUNS.iterdir()) <= RUNS_LIMIT


def test_committed_records_are_well_formed():
    for name, record in _records().items():
        size = (RUNS / f"{name}.json").stat().st_size
        assert size <= RECORD_LIMIT, f"{name}: {size} bytes"
        assert record["record"] == FORMAT and record["run"] == name, name
        final = record["final_step"]
        assert final == record["state"]["state"]["step"] and record["args"] and record["machine"], name
        validations = record["validation"]
        best = min(validations, key=lambda v: v["loss"])
        assert record["best_validation"] == {"step": best["step"], "loss": best["loss"]}, name
        curve = record["curve"]
        columns = [k for k in curve if k not in ("every", "points")]
        assert {"step", "loss", "loss_mean", "bpp", "psnr", "lr"} <= set(columns), name
        assert all(len(curve[c]) == curve["points"] <= CURVE_LIMIT for c in columns), name
        steps = curve["step"]
        assert steps == sorted(set(steps)) and steps[0] == 1 and steps[-1] == final, name
        assert {v["step"] for v in validations} <= set(steps), name  # every validation step is kept
        tail = record["tail"]
        assert tail["to_step"] == final and tail["step"] and tail["step"][-1] == final, name
        assert all(tail["from_step"] <= s <= final for s in tail["step"]), name
        assert len(tail["loss"]) == len(tail["step"]), name
        parent = record["lineage"]["parent_record"]
        assert parent is None or (ROOT / parent).is_file(), f"{name}: {parent}"


def _named_record(run: str, steps: int | None) -> str | None:
    """The record a card's run reference names (None: not a run inside the repository)."""
    if run.startswith("/tmp/gpu/"):
        # a GPU run, named by its folder on the lent machine: its record has its steps
        matches = [f"training/runs/{p.name}" for p in RUNS.glob(f"{Path(run).name}-h200*.json")
                   if json.loads(p.read_text())["final_step"] == steps]  # fmt: skip
        assert len(matches) == 1, f"{run} ({steps} steps): {matches}"
        return matches[0]
    return run


def test_model_cards_name_runs_that_are_recorded():
    for card_path in sorted((ROOT / "assets" / "weights").glob("*.json")):
        text = card_path.read_text()
        assert '"checkpoints/' not in text and '"runs/' not in text, card_path.name
        training = json.loads(text)["training"]
        chain = [(training["recipe"]["out"], training["steps"])]
        for entry in training.get("started_from", []):
            weights = entry.get("weights", "")
            if weights.startswith("training/runs/"):  # a file of a run that was never committed
                assert (ROOT / f"{Path(weights).parent}.json").is_file(), f"{card_path.name}: {weights}"
            run = entry.get("run") or (
                f"{Path(weights).parent}.json" if weights.startswith("training/runs/") else None
            )
            if run:
                chain.append((run, entry.get("steps")))
        assert len(chain) >= 2, card_path.name
        names = []
        for run, steps in chain:
            name = _named_record(run, steps)
            assert name.startswith("training/runs/") and name.endswith(".json"), f"{card_path.name}: {run}"
            record = json.loads((ROOT / name).read_text())
            assert record["final_step"] == steps, f"{card_path.name}: {name}"
            names.append(name)
        # each record's parent is the next run of the card's chain
        for child, parent in zip(names, names[1:], strict=False):
            assert json.loads((ROOT / child).read_text())["lineage"]["parent_record"] == parent, child
        steps_file = training["recipe"].get("steps_file")
        if steps_file and steps_file.startswith("training/runs/"):
            assert (ROOT / steps_file).is_file(), f"{card_path.name}: {steps_file}"


def test_learning_curve_puts_training_on_the_validations_footing():
    losses = {1: 1.0, 2: 2.0, 3: 4.0, 4: 8.0}
    assert learning_curve.validation_at(losses, 2.0) == pytest.approx(2.0)
    assert learning_curve.validation_at(losses, 2.5) == pytest.approx(2 * math.sqrt(2))
    assert learning_curve.validation_at(losses, 4.0) == pytest.approx(8.0)
    validation = {"loss": 2**1.5, "step": 100, "qualities": {str(q): {"loss": v} for q, v in losses.items()}}
    qualities = [1.0, 2.5, 4.0, 3.0]
    record = {"final_step": 100, "validation": [validation],
              "tail": {"loss": [0.9 * learning_curve.validation_at(losses, q) for q in qualities], "quality": qualities}}  # fmt: skip
    row = learning_curve.round_numbers(record)
    assert row["train_mix"] == pytest.approx(0.9 * 2**1.5) and row["train_mix_se"] == pytest.approx(
        0.0, abs=1e-12
    )
    assert row["val"] == 2**1.5 and row["selected_step"] == 100


def test_learning_curve_has_a_row_per_variable_rate_round():
    for arch in learning_curve.ARCHS:
        rounds = [number for number, _ in learning_curve.rounds(arch)]
        assert rounds[:6] == [7, 8, 9, 10, 11, 12]
        rows = [line for line in learning_curve.table(arch)[4:] if line.startswith("| ")]
        assert [row.split(" | ")[0] for row in rows] == [f"| {n}" for n in rounds]
        assert learning_curve.table(arch)[-1].startswith("Gap trend")


def test_gap_trend_is_the_least_squares_slope_with_its_error():
    slope, se = learning_curve.gap_trend([(7, 0.1, 0.05), (8, 0.3, 0.05), (9, 0.5, 0.05)])
    assert slope == pytest.approx(0.2) and se == pytest.approx(0.05 * math.sqrt(2) / 2)
    assert learning_curve.gap_trend([(7, 0.1, 0.05), (8, 0.3, 0.05)]) is None


def test_learning_curve_follows_each_round_to_the_files_it_started_from(tmp_path):
    """A round that started from an older round's files (its own parent's folders were gone)
    counts that line's steps and is compared with that round."""
    validation = [{"loss": 2.0, "step": 100}]
    parents = {
        7: None,
        8: "training/runs/gabic-small-vr-cpu7.json",
        9: "training/runs/gabic-small-vr-cpu7.json",
    }
    for number, parent in parents.items():
        record = {"final_step": 100 * number, "validation": validation, "tail": {"loss": [1.9, 1.8]},
                  "lineage": {"parent_record": parent}}  # fmt: skip
        (tmp_path / f"gabic-small-vr-cpu{number}.json").write_text(json.dumps(record))
    comparison = {"comparisons": [{"bd_rate_psnr": -1.25}]}
    (tmp_path / "bd-gabic-vr-r9-vs-r7.json").write_text(json.dumps(comparison))
    (tmp_path / "bd-gabic-vr-r9-vs-r8.json").write_text(json.dumps({"comparisons": [{"bd_rate_psnr": -9.0}]}))
    assert learning_curve.parent_round({"lineage": {"parent_record": parents[9]}}) == 7
    rows = [
        line.split(" | ")
        for line in learning_curve.table("gabic", tmp_path, tmp_path)
        if line.startswith("| ")
    ]
    by_round = {row[0].strip("| "): row for row in rows[1:]}
    assert by_round["8"][2] == "1 500" and by_round["9"][2] == "1 600"  # 700 + 900, not 700 + 800 + 900
    assert by_round["9"][-1] == "−1.2 % |" and by_round["8"][-1] == "— |"


def _curve(path, bpp: list[float], psnr: list[float], layout: str | None = None) -> None:
    point = {"layout": layout} if layout else {}
    path.write_text(json.dumps({"name": path.stem, "results": {"bpp": bpp, "psnr-rgb": psnr},
                                "details": {"points": [point]}}))  # fmt: skip


def test_learning_curve_puts_each_round_against_jpeg_and_webp(tmp_path):
    """The classic-codec table: BD-rate of each round's result file against JPEG and WebP, and the
    gain over its parent per 1 000 steps."""
    validation = [{"loss": 2.0, "step": 100}]
    for number, parent in ((7, None), (8, "training/runs/gabic-small-vr-cpu7.json")):
        record = {"final_step": 500 * (number - 6), "validation": validation, "tail": {"loss": [1.9]},
                  "lineage": {"parent_record": parent}}  # fmt: skip
        (tmp_path / f"gabic-small-vr-cpu{number}.json").write_text(json.dumps(record))
    rates, quality = [0.2, 0.4, 0.8, 1.6], [28.0, 31.0, 34.0, 37.0]
    _curve(tmp_path / "jpeg.json", rates, quality)
    _curve(tmp_path / "webp.json", [r / 2 for r in rates], quality)  # half JPEG's bits
    _curve(tmp_path / "gabic-small-vr-r8-reference.json", [r * 0.8 for r in rates], quality, "reference")
    _curve(tmp_path / "gabic-small-vr-r8.json", rates, quality)  # the reference layout's file wins
    (tmp_path / "bd-gabic-vr-r8-vs-r7.json").write_text(json.dumps({"comparisons": [{"bd_rate_psnr": -2.0}]}))
    rows = [line.split(" | ") for line in learning_curve.classic_table("gabic", tmp_path, tmp_path)
            if line.startswith("| ") and not line.startswith("| round")]  # fmt: skip
    assert rows[0] == ["| 7", "500", "500", "—", "—", "—", "—", "— |"]  # no result file for round 7
    assert rows[1][:4] == ["| 8", "1 000", "1 500", "reference"]
    assert rows[1][4:] == [
        "−20.0 %",
        "+60.0 %",
        "−2.0 %",
        "−2.0 % |",
    ]  # 0.8 of JPEG, 1.6 of WebP; −2 % in 1 000 steps
