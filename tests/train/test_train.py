"""Training loop: it learns, resumes exactly, ships, and the GPU round supervisor gives every run
the same steps (two-process DDP runs: test_distributed.py)."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pytest
import torch
from helpers import TINY_CONFIG, random_image
from safetensors.torch import load_file

from gabic.train import cli, runfolder, trainer

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    base = tmp_path_factory.mktemp("data")
    for split, count in (("train", 4), ("val", 2)):
        (base / split).mkdir()
        for i in range(count):
            random_image(80, 96, seed=i + (10 if split == "val" else 0)).save(base / split / f"{i}.png")
    config = base / "tiny.json"
    config.write_text(json.dumps(TINY_CONFIG.to_dict()))
    return base / "train", base / "val", config


def _args(data: tuple[Path, Path, Path], out: Path, steps: int, **extra: object) -> list[str]:
    train_dir, val_dir, config = data
    args = ["--arch", str(extra.pop("arch", "gabic")), "--config", str(config), "--lmbda", "0.01",
            "--train-dir", str(train_dir), "--val-dir", str(val_dir), "--out", str(out),
            "--steps", str(steps), "--batch-size", "2", "--patch-size", "64", "--val-crop", "64",
            "--val-every", "4", "--warmup", "2", "--no-progress", "--threads", "1", "--seed", "3"]  # fmt: skip
    for key, value in extra.items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    return args


def _run(argv: list[str]) -> None:
    assert cli.main(argv) == 0


@pytest.fixture(scope="module")
def four_steps(tiny_data, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 4-step GABIC run with the default arguments (seed 3), shared read-only by the tests
    that start from such a run (resuming, shipping, fine-tuning, lineage)."""
    out = tmp_path_factory.mktemp("four-steps") / "run"
    _run(_args(tiny_data, out, 4))
    return out


@pytest.mark.parametrize("arch", ["gabic", pytest.param("zou2022", marks=pytest.mark.slow)])  # same loop
def test_training_writes_logs_checkpoints_and_lowers_the_loss(tiny_data, tmp_path, arch):
    out = tmp_path / "run"
    _run(_args(tiny_data, out, 12, arch=arch, lr=1e-3))
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == list(range(1, 13))
    assert all(k in log[0] for k in ("loss", "bpp", "mse", "psnr", "aux", "lr"))
    assert sum(r["loss"] for r in log[-3:]) < sum(r["loss"] for r in log[:3])
    val = [json.loads(line) for line in (out / "val.jsonl").read_text().splitlines()]
    assert [v["step"] for v in val] == [4, 8, 12]
    for name in ("last.pt", "weights.safetensors", "best.safetensors", "state.json"):
        assert (out / name).is_file(), name
    assert json.loads((out / "state.json").read_text())["state"]["step"] == 12


@pytest.mark.slow  # a training run
def test_resume_is_exact(tiny_data, four_steps, tmp_path):
    straight, resumed = four_steps, tmp_path / "resumed"
    _run(_args(tiny_data, resumed, 2))
    _run(_args(tiny_data, resumed, 4))
    a = load_file(str(straight / "weights.safetensors"))
    b = load_file(str(resumed / "weights.safetensors"))
    assert a.keys() == b.keys()
    assert all((a[k] == b[k]).all() for k in a)


def test_fine_tuning_starts_from_given_weights(tiny_data, four_steps, tmp_path):
    base = four_steps  # seed 3: a different initialisation than the tuned run's seed 7
    tuned = tmp_path / "tuned"
    _run(_args(tiny_data, tuned, 1, init_from=base / "weights.safetensors", warmup=1000000, seed=7))
    # with an almost-zero learning rate (long warm-up) the first step barely moves the weights
    a = load_file(str(base / "weights.safetensors"))
    b = load_file(str(tuned / "weights.safetensors"))
    key = "g_a.0.weight"
    assert (a[key] - b[key]).abs().max() < 1e-3


@pytest.mark.slow  # a training run
def test_resume_from_committed_weights_warms_the_fresh_optimizer_up_again(tiny_data, tmp_path):
    out = tmp_path / "run"
    _run(_args(tiny_data, out, 4, lr=1e-3))
    (out / "last.pt").unlink()  # what a new session has: weights.safetensors + state.json only
    _run(_args(tiny_data, out, 8, lr=1e-3))
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == list(range(1, 9))
    lrs = [r["lr"] for r in log]
    assert lrs[:2] == pytest.approx([5e-4, 1e-3]) and lrs[4:6] == pytest.approx([5e-4, 1e-3])
    assert json.loads((out / "state.json").read_text())["state"]["warmup_start"] == 4


def test_ship_writes_weights_and_a_card_quoting_the_evaluation(tiny_data, four_steps, tmp_path, monkeypatch):
    from gabic import zoo
    from gabic.eval import rd as evaluate
    from gabic.train import ship

    run = four_steps
    shipped = tmp_path / "shipped"
    path = ship.ship(run, "gabic-small", 2, out_dir=shipped)
    card = json.loads(path.with_suffix(".json").read_text())
    assert card["lambda"] == 0.01 and card["trained_k"] == TINY_CONFIG.k and card["trained"] is True
    assert card["training"]["steps"] == 4 and card["training"]["recipe"]["batch_size"] == 2
    assert card["validation"]["step"] == card["training"]["selected_step"]
    assert "kodak" not in card

    monkeypatch.setenv("GABIC_WEIGHTS_DIR", str(shipped))
    model = zoo.load("gabic-small", quality=2, device="cpu")
    assert model.quality == 2 and model.config == TINY_CONFIG
    results = tmp_path / "eval.json"
    args = evaluate.build_argument_parser().parse_args(
        [
            str(tiny_data[1]),
            "--model",
            "gabic-small",
            "--output",
            str(results),
            "--no-progress",
            "--threads",
            "1",
        ]
    )
    assert evaluate.run(args) == 0
    ship.ship(run, "gabic-small", 2, results=results, out_dir=shipped)
    card = json.loads(path.with_suffix(".json").read_text())
    point = json.loads(results.read_text())["details"]["points"][0]
    assert card["kodak"]["bpp"] == point["bpp"] and card["kodak"]["psnr"] == point["psnr"]
    assert card["kodak"]["images"] == 2 and card["kodak"]["decode_matches_forward"] is True
    with pytest.raises(ValueError, match=r"no evaluation of gabic-small at qualities \[3\]"):
        ship.ship(run, "gabic-small", 3, results=results, out_dir=shipped)


@pytest.mark.slow  # a training run
def test_steps_file_sets_the_budget_and_final_decay_lowers_the_lr(tiny_data, tmp_path):
    out, steps_file = tmp_path / "run", tmp_path / "budget"
    steps_file.write_text("5\n")
    _run(_args(tiny_data, out, 1000, lr=1e-3, warmup=1, steps_file=steps_file, final_decay=0.4,
               final_decay_factor=0.1))  # fmt: skip
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3, 4, 5]
    # the last 40 % of the 5 steps (from step index 3 on, i.e. logged steps 4 and 5) run at lr / 10
    assert [r["lr"] for r in log] == pytest.approx([1e-3, 1e-3, 1e-3, 1e-4, 1e-4])
    state = json.loads((out / "state.json").read_text())
    assert state["state"]["step"] == 5 and state["state"]["final_decay_done"] is True
    assert state["args"]["steps"] == 5  # the budget that was used is what the run records
    assert json.loads((out / "val.jsonl").read_text().splitlines()[-1])["step"] == 5


class _ShortWaits:
    """The ``time`` module as training/gpu_round.py sees it in this test: the same clock, but its
    waits (the calibration delay, 5 s while it calibrates, 10 s between checks of the runs) last at
    most a second, so the round ends about a second after its runs do."""

    def __getattr__(self, name: str) -> object:
        return getattr(time, name)

    @staticmethod
    def sleep(seconds: float) -> None:
        time.sleep(min(seconds, 1.0))


@pytest.mark.slow
def test_gpu_round_supervisor_gives_every_run_the_same_steps(tiny_data, tmp_path, monkeypatch, capsys):
    """training/gpu_round.py (here on the CPU, tiny models; the supervisor in this process, its
    runs in their own): calibrates, writes one step budget, every run stops exactly there;
    ``pack`` writes fp16 weights with fp32 bounds and the logs. A short round: calibration from
    1 s to 2 s after the start, the budget for a 4 s deadline but at least 10 steps beyond the runs'
    position then (runs still starting get 10 steps)."""
    import importlib.util

    from safetensors.torch import save_file

    from gabic.models import build_model

    spec = importlib.util.spec_from_file_location("gpu_round", ROOT / "training" / "gpu_round.py")
    gpu_round = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_round)
    monkeypatch.setattr(gpu_round, "time", _ShortWaits())
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the runs' environment
    monkeypatch.chdir(ROOT)
    train_dir, val_dir, config = tiny_data
    parents = tmp_path / "parents"
    parents.mkdir()
    for arch in ("gabic", "zou2022"):
        save_file(build_model(arch, TINY_CONFIG).state_dict(), str(parents / f"{arch}-q4.safetensors"))
    root = tmp_path / "round"
    code = gpu_round.main(
        ["train", "--root", str(root), "--qualities", "4", "--parent", str(parents / "{arch}-q{quality}.safetensors"),
         "--seconds", "4", "--calibrate-after", "1", "--calibrate-window", "1", "--grace", "120", "--",
         "--config", str(config), "--train-dir", str(train_dir), "--val-dir", str(val_dir),
         "--batch-size", "1", "--patch-size", "64", "--val-crop", "64", "--val-every", "1000",
         "--threads", "1", "--device", "cpu"]
    )  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0, printed[-3000:]
    assert '"calibration_s"' in printed  # the budget came from the calibration
    summary = json.loads([line for line in printed.splitlines() if line.startswith('{"wall_s"')][0])
    assert summary["budget"] > 0 and set(summary["steps"].values()) == {summary["budget"]}
    assert (root / "steps").read_text().strip() == str(summary["budget"])
    for arch in ("gabic", "zou2022"):
        packed = tmp_path / f"packed-{arch}"
        assert (
            gpu_round.main(["pack", "--root", str(root), "--arch", arch, "--to", str(packed), "--logs"]) == 0
        )
        weights = load_file(str(packed / f"{arch}-small-q4.safetensors"))
        assert weights["g_a.0.weight"].dtype.itemsize == 2
        assert weights["gaussian_conditional.likelihood_lower_bound.bound"].item() > 0
        assert (packed / "logs.tar.gz").stat().st_size > 0


@pytest.mark.parametrize("arch", ["gabic", "zou2022"])
def test_bf16_autocast_covers_the_transforms_and_leaves_the_entropy_models_in_float32(arch):
    """--bf16: the training step runs the model under bfloat16 autocast; the transforms compute
    in bfloat16, the entropy models get float32 inputs and give float32 likelihoods, x_hat is
    float32. Nothing is attached to the model: in eval mode, without autocast, it equals a float32
    model with the same weights bit for bit, and its state dict keeps its keys."""
    from gabic.models import build_model

    reference = build_model(arch, TINY_CONFIG).eval()
    model = build_model(arch, TINY_CONFIG)
    model.load_state_dict(reference.state_dict())
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))

    seen = {}

    def record_output(name):
        def hook(module, inputs, output):  # returns None: the output is left as it is
            seen[name] = output.dtype

        return hook

    def record_inputs(name):
        def hook(module, inputs):
            seen[name] = {t.dtype for t in inputs if isinstance(t, torch.Tensor)}

        return hook

    hooks = [model.g_a[0].register_forward_hook(record_output("g_a.0")),
             model.cc_mean_transforms[0].register_forward_hook(record_output("cc_mean.0")),
             model.entropy_bottleneck.register_forward_pre_hook(record_inputs("entropy_bottleneck")),
             model.gaussian_conditional.register_forward_pre_hook(record_inputs("gaussian_conditional"))]  # fmt: skip
    model.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x)
    for hook in hooks:
        hook.remove()
    assert seen["g_a.0"] == torch.bfloat16 and seen["cc_mean.0"] == torch.bfloat16
    assert seen["entropy_bottleneck"] == {torch.float32} and seen["gaussian_conditional"] == {torch.float32}
    assert out["x_hat"].dtype == torch.float32
    assert all(v.dtype == torch.float32 for v in out["likelihoods"].values())
    out["x_hat"].mean().backward()
    assert model.g_a[0].weight.grad is not None and model.g_a[0].weight.grad.dtype == torch.float32
    assert list(model.state_dict()) == list(reference.state_dict())

    model.eval()
    with torch.no_grad():
        got, want = model(x), reference(x)
    assert torch.equal(got["x_hat"], want["x_hat"])
    assert all(torch.equal(got["likelihoods"][k], want["likelihoods"][k]) for k in want["likelihoods"])


@pytest.mark.slow  # a training run
def test_bf16_training_runs_and_records_the_option(tiny_data, tmp_path):
    out = tmp_path / "run"
    _run(_args(tiny_data, out, 4, lr=1e-3) + ["--bf16"])
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3, 4]
    assert all(math.isfinite(r["loss"]) for r in log)
    assert json.loads((out / "state.json").read_text())["args"]["bf16"] is True


def test_native_bf16_is_read_from_the_cpu_flags():
    avx2_only = "processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma\n"
    assert trainer.cpu_has_native_bf16(avx2_only) is False
    assert trainer.cpu_has_native_bf16(avx2_only.replace("avx2", "avx2 avx512f avx512_bf16")) is True
    assert trainer.cpu_has_native_bf16(avx2_only.replace("fma", "fma amx_bf16 amx_tile")) is True
    # "avx512_bf16" as part of another word is no flag
    assert trainer.cpu_has_native_bf16(avx2_only.replace("fma", "fma xavx512_bf16")) is False


@pytest.mark.slow  # a training run
def test_bf16_on_a_cpu_without_native_bf16_warns(tiny_data, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(trainer, "cpu_has_native_bf16", lambda: False)
    _run(_args(tiny_data, tmp_path / "emulated", 1) + ["--bf16"])
    assert "--no-bf16" in capsys.readouterr().err
    monkeypatch.setattr(trainer, "cpu_has_native_bf16", lambda: True)
    _run(_args(tiny_data, tmp_path / "native", 1) + ["--bf16"])
    _run(_args(tiny_data, tmp_path / "float32", 1))
    assert "bf16" not in capsys.readouterr().err


@pytest.mark.slow  # a training run
def test_lineage_survives_shipping_over_the_parent_file(tiny_data, four_steps, tmp_path):
    """A run started from a shipped file keeps that file's card; shipping the run replaces the
    file and card, and its lineage (also when shipped twice) still names the parent's runs."""
    from gabic.train import ship

    first, second, shipped = four_steps, tmp_path / "second", tmp_path / "shipped"
    parent = ship.ship(first, "gabic-small", 2, out_dir=shipped)
    _run(_args(tiny_data, second, 2, init_from=parent))
    assert (second / runfolder.PARENT_CARD).is_file()
    for _ in range(2):  # the second time, the file it started from is its own shipped copy
        card = json.loads(
            ship.ship(second, "gabic-small", 2, out_dir=shipped).with_suffix(".json").read_text()
        )
        lineage = card["training"]["started_from"]
        assert [entry["steps"] for entry in lineage] == [4]
        assert lineage[0]["run"] == str(first) and lineage[0]["weights"] == str(parent)
        assert card["training"]["total_steps"] == 6
