"""Two gloo processes on the CPU: disjoint shards of every epoch, identical weights, and resuming
in the middle of an epoch (also in one process: the same batches as a run that never stopped)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from helpers import TINY_CONFIG, random_image
from PIL import Image
from safetensors.torch import load_file

from gabic.train import cli

ROOT = Path(__file__).resolve().parents[2]

#: Run under torchrun: the trainer's own setup (file list from rank 0, DistributedSampler), then
#: two epochs of this process's batches; every file is one colour whose red value is its index.
SHARD_PROBE = textwrap.dedent(
    """
    import json, sys
    import torch.distributed as dist
    from gabic.train import cli
    from gabic.train.data import epoch_loader
    from gabic.train.trainer import setup
    args = cli.apply_recipe(cli.build_argument_parser().parse_args(sys.argv[2:]))
    t = setup(args)
    seen = {}
    for epoch in (0, 1):
        batches = epoch_loader(t.dataset, epoch, batch=args.batch_size, world=t.world, rank=t.rank)
        seen[epoch] = [int(images[i, 0, 0, 0]) for images, _ in batches for i in range(len(images))]
    everyone = [None] * t.world
    dist.all_gather_object(everyone, seen)
    if t.rank == 0:
        with open(sys.argv[1], "w") as f:
            json.dump(everyone, f)
    dist.destroy_process_group()
    """
)


def _colour_tree(tmp_path: Path, count: int) -> tuple[Path, Path, Path]:
    """``count`` one-colour training images (red = index in sorted order) at three depths, one
    validation photo, the tiny configuration."""
    data = tmp_path / "data"
    for i in range(count):
        folder = data / f"{i:02d}" / ["", "a", "a/b"][i % 3]
        folder.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (72, 64 + i), (i, 40, 200)).save(folder / "img.png")
    val = tmp_path / "val"
    val.mkdir()
    random_image(64, 64, seed=3).save(val / "v.png")
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY_CONFIG.to_dict()))
    return data, val, config


@pytest.fixture()
def colour_tree(tmp_path: Path) -> tuple[Path, Path, Path]:
    """12 one-colour images: with batch 2, 6 steps per epoch in one process, 3 in each of two."""
    return _colour_tree(tmp_path, 12)


def _argv(tree: tuple[Path, Path, Path], out: Path, steps: int, *extra: str) -> list[str]:
    data, val, config = tree
    return ["--arch", "gabic", "--config", str(config), "--lmbda", "0.01", "--train-dir", str(data),
            "--val-dir", str(val), "--out", str(out), "--steps", str(steps), "--batch-size", "2",
            "--patch-size", "64", "--val-crop", "64", "--val-every", "4", "--warmup", "2", "--lr", "1e-3",
            "--no-progress", "--threads", "1", "--seed", "4", *extra]  # fmt: skip


def _torchrun(*args: str) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *args]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.slow
def test_two_processes_get_disjoint_shards_of_every_epoch(colour_tree, tmp_path):
    probe, seen = tmp_path / "probe.py", tmp_path / "seen.json"
    probe.write_text(SHARD_PROBE)
    _torchrun(str(probe), str(seen), *_argv(colour_tree, tmp_path / "run", 1))
    ranks = json.loads(seen.read_text())
    for epoch in ("0", "1"):
        first, second = ranks[0][epoch], ranks[1][epoch]
        assert len(first) == len(second) == 6  # 12 files: 6 per process, 3 batches of 2
        assert not set(first) & set(second) and sorted(first + second) == list(range(12))
    assert ranks[0]["0"] != ranks[0]["1"]  # each epoch is a new permutation
    # the list of files was written once, by rank 0, in the run folder
    assert len(json.loads((tmp_path / "run" / "train_files.json").read_text())["files"]) == 12


@pytest.mark.slow
def test_two_processes_keep_identical_weights_through_a_resume_inside_an_epoch(colour_tree, tmp_path):
    """Two processes (gloo): 2 steps, which stops inside epoch 0, then a resume with a budget of 5
    steps from a --steps-file (and decoding workers): both replicas stop at step 5 with identical
    weights, the global batch is twice the per-process one."""
    out, budget = tmp_path / "ddp", tmp_path / "budget"
    _torchrun("-m", "gabic", "train", *_argv(colour_tree, out, 2), "--device", "cpu")
    state = json.loads((out / "state.json").read_text())
    assert (state["steps_per_epoch"], state["processes"], state["batch_size"]) == (3, 2, 4)
    assert (state["state"]["epoch"], state["state"]["batch"]) == (0, 2)  # stopped inside epoch 0
    checksums = state["replica_checksums"]
    assert len(checksums) == 2 and checksums[0] == checksums[1]
    budget.write_text("5\n")
    _torchrun("-m", "gabic", "train", *_argv(colour_tree, out, 1000, "--steps-file", str(budget)), "--device", "cpu",
              "--workers", "1")  # fmt: skip
    state = json.loads((out / "state.json").read_text())
    assert state["state"]["step"] == 5 and (state["state"]["epoch"], state["state"]["batch"]) == (1, 2)
    assert state["batch_size"] == 4
    checksums = state["replica_checksums"]
    assert len(checksums) == 2 and checksums[0] == checksums[1]


@pytest.mark.slow  # a training run
def test_a_resume_inside_an_epoch_continues_with_the_same_batches(tmp_path):
    """6 files, batch 2: 3 steps per epoch. Stopping after step 2 (inside epoch 0) and resuming
    to step 5 (into epoch 1, with decoding workers this time) gives the weights of a run that
    never stopped."""
    tree = _colour_tree(tmp_path, 6)
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert cli.main(_argv(tree, straight, 5)) == 0
    assert cli.main(_argv(tree, resumed, 2)) == 0
    checkpoint = torch.load(resumed / "last.pt", weights_only=True)
    assert (checkpoint["state"]["epoch"], checkpoint["state"]["batch"]) == (0, 2)
    assert cli.main(_argv(tree, resumed, 5, "--workers", "2")) == 0
    assert json.loads((resumed / "state.json").read_text())["steps_per_epoch"] == 3
    a, b = load_file(str(straight / "weights.safetensors")), load_file(str(resumed / "weights.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    log = [json.loads(line) for line in (resumed / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == list(range(1, 6))
    straight_log = [json.loads(line) for line in (straight / "log.jsonl").read_text().splitlines()]
    assert [r["loss"] for r in log] == [r["loss"] for r in straight_log]


@pytest.mark.slow  # three bf16 runs (emulated, and slow, on a CPU without native bf16)
def test_variable_rate_resume_draws_the_same_qualities(colour_tree, tmp_path):
    """A variable-rate run warm-started from a one-rate parent: qualities drawn per step come
    back the same after a resume."""
    from safetensors.torch import save_file

    from gabic.models import build_model

    parent = tmp_path / "parent.safetensors"
    save_file(build_model("gabic", TINY_CONFIG).state_dict(), str(parent))

    def argv(out: Path, steps: int) -> list[str]:
        args = _argv(colour_tree, out, steps, "--init-from", str(parent), "--gain-reference", "3", "--bf16")
        return [a if a != "--lmbda" else "--variable-rate" for a in args if a != "0.01"]

    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert cli.main(argv(straight, 4)) == 0
    assert cli.main(argv(resumed, 2)) == 0
    assert cli.main(argv(resumed, 4)) == 0
    qualities = [[json.loads(line)["quality"] for line in (run / "log.jsonl").read_text().splitlines()]
                 for run in (straight, resumed)]  # fmt: skip
    assert qualities[0] == qualities[1] and len(set(qualities[0])) > 1
    assert all(1 <= q <= 4 for q in qualities[0])
    a, b = load_file(str(straight / "weights.safetensors")), load_file(str(resumed / "weights.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a) and "y_gain.log_gain" in a


@pytest.mark.slow  # a training run
def test_a_run_folder_written_before_epochs_and_this_schedule_still_resumes(colour_tree, tmp_path):
    """last.pt of the earlier trainer: a ReduceLROnPlateau state, no epoch counters, generator
    states for crops. The plateau's scale comes from the optimizer's lr, the position in the
    epochs from the step."""
    out = tmp_path / "run"
    assert cli.main(_argv(colour_tree, out, 4)) == 0
    checkpoint = torch.load(out / "last.pt", weights_only=True)
    for key in ("epoch", "batch", "skipped_images"):
        del checkpoint["state"][key]
    for group in checkpoint["optimizer"]["param_groups"]:
        group["lr"] = 5e-4  # the old scheduler had halved it
    parameter = torch.nn.Parameter(torch.zeros(1))
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(torch.optim.Adam([parameter]), factor=0.5)
    scheduler.step(9.0)
    checkpoint["scheduler"] = scheduler.state_dict()
    checkpoint["rng"].update(crops0=torch.Generator().get_state(), quality=torch.Generator().get_state())
    torch.save(checkpoint, out / "last.pt")
    assert cli.main(_argv(colour_tree, out, 6)) == 0
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == list(range(1, 7))
    assert [r["lr"] for r in log[4:]] == pytest.approx([5e-4, 5e-4])
    state = json.loads((out / "state.json").read_text())
    assert (state["state"]["epoch"], state["state"]["batch"]) == (1, 0)  # step 6 = 6 steps of epoch 0
    assert state["scheduler"]["scale"] == pytest.approx(0.5)
