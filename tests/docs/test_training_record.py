"""training/: the step-log thinning of ``record_run.py`` and the committed run records."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNS = ROOT / "training" / "runs"


def _load_record_run():
    spec = importlib.util.spec_from_file_location("record_run", ROOT / "training" / "record_run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


record_run = _load_record_run()


def _log(steps: int) -> list[str]:
    return [
        json.dumps({"step": s, "loss": 1.0 / s, "bpp": 0.5, "seconds": 1.25}) + "\n"
        for s in range(1, steps + 1)
    ]


def _steps(lines: list[str]) -> list[int]:
    return [json.loads(line)["step"] for line in lines]


def test_thinning_fits_the_limit_and_keeps_first_last_and_validations():
    lines = _log(5000)
    limit = 20_000
    kept, every = record_run.thin_log_lines(lines, [1000, 2000, 4999], limit_bytes=limit, around=2)
    steps = _steps(kept)
    assert sum(len(line.encode()) for line in kept) <= limit < sum(len(line.encode()) for line in lines)
    assert steps[0] == 1 and steps[-1] == 5000 and steps == sorted(steps)
    assert {998, 999, 1000, 1001, 1002, 1998, 2002, 4997, 4998, 4999} <= set(steps)
    assert every > 1 and all(s in steps for s in range(every, 5001, every))
    # N is the smallest that fits: with N - 1 the same rule would not
    required = {1, 5000} | {s for v in (1000, 2000, 4999) for s in range(v - 2, v + 3) if s <= 5000}
    smaller = required | set(range(every - 1, 5001, every - 1))
    assert sum(len(lines[s - 1].encode()) for s in smaller) > limit


def test_a_log_under_the_limit_is_kept_whole():
    lines = _log(50)
    kept, every = record_run.thin_log_lines(lines, [25])
    assert kept == lines and every == 1


def test_validation_lines_over_the_limit_are_refused():
    with pytest.raises(ValueError, match="over the limit"):
        record_run.thin_log_lines(_log(1000), range(1, 1001, 5), limit_bytes=5_000)


def test_record_run_writes_state_validations_and_thinned_log(tmp_path):
    run = tmp_path / "gabic-small-q9-test"
    run.mkdir()
    (run / "state.json").write_text('{"state": {"step": 3000}}\n')
    (run / "val.jsonl").write_text("".join(json.dumps({"step": s, "loss": 1.0}) + "\n" for s in (1500, 3000)))
    (run / "log.jsonl").write_text("".join(_log(3000)))
    (run / "weights.safetensors").write_bytes(b"not copied")
    assert record_run.main([str(run), "--to", str(tmp_path / "records"), "--limit", "30000"]) == 0
    target = tmp_path / "records" / run.name
    assert sorted(p.name for p in target.iterdir()) == ["log-thinned.jsonl", "state.json", "val.jsonl"]
    assert (target / "val.jsonl").read_text() == (run / "val.jsonl").read_text()
    thinned = (target / "log-thinned.jsonl").read_text().splitlines(keepends=True)
    assert len("".join(thinned).encode()) <= 30_000 and {1, 1500, 3000} <= set(_steps(thinned))


def test_committed_run_records_audit_each_run():
    runs = sorted(p for p in RUNS.iterdir() if p.is_dir())
    assert len(runs) >= 30
    for run in runs:
        names = {p.name for p in run.iterdir()}
        assert {"state.json", "val.jsonl", "log-thinned.jsonl"} <= names, run.name
        assert not {n for n in names if n.endswith((".safetensors", ".pt"))}, run.name
        log = run / "log-thinned.jsonl"
        assert log.stat().st_size <= record_run.LIMIT_BYTES, run.name
        steps = set(_steps(log.read_text().splitlines()))
        state = json.loads((run / "state.json").read_text())
        assert state["state"]["step"] in steps, run.name  # the last step is kept
        for line in (run / "val.jsonl").read_text().splitlines():
            assert json.loads(line)["step"] in steps, run.name


def test_model_cards_name_runs_that_are_recorded():
    for card_path in sorted((ROOT / "assets" / "weights").glob("*.json")):
        text = card_path.read_text()
        assert '"checkpoints/' not in text, card_path.name
        card = json.loads(text)
        out = card["training"]["recipe"]["out"]
        chain = [entry["run"] for entry in card["training"].get("started_from", []) if "run" in entry]
        # runs of the GPU rounds are named by their folder on the lent machine (/tmp/gpu/...); every
        # run named inside the repository has its record there
        local = [run for run in [out, *chain] if not Path(run).is_absolute()]
        assert out in local and len(local) >= 2, card_path.name
        for run in local:
            assert (ROOT / run / "state.json").is_file(), f"{card_path.name}: {run}"
