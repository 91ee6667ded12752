"""Streaming training data: a nested tree, the cached file list, small and unreadable images,
epochs and shards, resuming inside an epoch, the throughput measurement, and memory that does
not grow with the data set."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import TINY_CONFIG, random_image
from PIL import Image

from gabic.train import cli, throughput
from gabic.train.data import (
    FILE_LIST,
    RandomCropDataset,
    cached_file_list,
    epoch_loader,
    fit_to_crop,
    list_tree,
    shard_sampler,
    steps_per_epoch,
)

ROOT = Path(__file__).resolve().parents[2]


def solid(index: int, size: tuple[int, int] = (72, 80)) -> Image.Image:
    """A one-colour image whose red value is ``index``: any crop of it tells which file it was."""
    return Image.new("RGB", size, (index, 255 - index, 128))


def write_tree(root: Path, count: int, size: tuple[int, int] = (72, 80)) -> list[str]:
    """``count`` one-colour PNGs at three nesting depths, listed in the order of their colour
    (file ``i`` of the sorted list has red value ``i``); returns their relative paths."""
    names = []
    for i in range(count):
        relative = Path(f"{i:03d}{['', '/a', '/a/b'][i % 3]}") / "img.png"
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        solid(i, size).save(root / relative)
        names.append(relative.as_posix())
    assert names == sorted(names)
    return names


def test_list_tree_finds_images_at_every_depth_and_skips_hidden_and_other_files(tmp_path):
    names = write_tree(tmp_path, 6)
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / ".hidden").mkdir()
    solid(0).save(tmp_path / ".hidden" / "x.png")
    solid(0).save(tmp_path / "001" / "a" / ".x.png")
    solid(0).save(tmp_path / "002" / "a" / "b" / "UPPER.JPG")
    assert list_tree(tmp_path) == sorted([*names, "002/a/b/UPPER.JPG"])


def test_file_list_is_cached_in_the_run_folder_and_kept_on_resume(tmp_path):
    data, cache = tmp_path / "data", tmp_path / FILE_LIST
    names = write_tree(data, 4)
    assert cached_file_list(data, cache, keep_existing=False) == names
    assert json.loads(cache.read_text())["files"] == names
    solid(9).save(data / "new.png")  # the top-level listing changes
    assert cached_file_list(data, cache, keep_existing=True) == names  # a resumed run keeps its list
    assert cached_file_list(data, cache, keep_existing=False) == sorted(
        [*names, "new.png"]
    )  # a new run lists again
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    with pytest.raises(ValueError, match="no image files"):
        cached_file_list(empty, tmp_path / "other.json", keep_existing=False)


def test_images_smaller_than_the_crop_are_enlarged_to_it(tmp_path):
    image = solid(7, (40, 100))
    fitted = fit_to_crop(image, 64)
    assert fitted.size == (64, 160)
    assert fit_to_crop(solid(7, (64, 64)), 64).size == (64, 64)
    solid(7, (40, 100)).save(tmp_path / "small.png")
    crop, skipped = RandomCropDataset(tmp_path, ["small.png"], 64, seed=0)[(0, 0)]
    assert crop.shape == (3, 64, 64) and crop.dtype == torch.uint8 and skipped == []
    assert crop[0].unique().tolist() == [7]


def test_an_unreadable_file_is_replaced_and_reported(tmp_path):
    names = write_tree(tmp_path, 3)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    dataset = RandomCropDataset(tmp_path, ["broken.png", *names], 64, seed=0)
    crop, skipped = dataset[(0, 0)]
    assert skipped == [str(tmp_path / "broken.png")]
    assert crop.shape == (3, 64, 64) and int(crop[0, 0, 0]) in (0, 1, 2)
    again, _ = dataset[(0, 0)]
    assert torch.equal(crop, again)  # the replacement is fixed by (seed, epoch, index) too
    (tmp_path / "junk").mkdir()
    for i in range(20):
        (tmp_path / "junk" / f"{i}.png").write_bytes(b"nothing")
    junk = RandomCropDataset(tmp_path / "junk", [f"{i}.png" for i in range(20)], 64, seed=0)
    with pytest.raises(RuntimeError, match="unreadable training images in a row"):
        junk[(0, 0)]


def _batches(dataset, epoch, **kwargs):
    return [images for images, _ in epoch_loader(dataset, epoch, batch=2, **kwargs)]


def test_epochs_are_fixed_permutations_and_a_late_start_gives_the_same_remaining_batches(tmp_path):
    dataset = RandomCropDataset(tmp_path, write_tree(tmp_path, 10), 64, seed=5)
    assert steps_per_epoch(dataset, 2, 1) == 5
    full = _batches(dataset, 3, world=1, rank=0)
    assert len(full) == 5
    late = _batches(dataset, 3, world=1, rank=0, start_batch=2, workers=2)
    assert len(late) == 3 and all(torch.equal(a, b) for a, b in zip(full[2:], late, strict=True))
    files = [int(b[i, 0, 0, 0]) for b in full for i in range(2)]
    assert sorted(files) == list(range(10))  # one epoch visits every file once
    other = [int(b[i, 0, 0, 0]) for b in _batches(dataset, 4, world=1, rank=0) for i in range(2)]
    assert other != files


def test_shards_of_two_processes_are_disjoint_and_cover_the_epoch(tmp_path):
    dataset = RandomCropDataset(tmp_path, write_tree(tmp_path, 9), 64, seed=1)
    assert steps_per_epoch(dataset, 2, 2) == 2  # 9 files: 4 per process, 2 batches of 2
    shards = [{int(b[i, 0, 0, 0]) for b in _batches(dataset, 0, world=2, rank=rank) for i in range(2)}
              for rank in (0, 1)]  # fmt: skip
    assert len(shards[0]) == len(shards[1]) == 4 and not shards[0] & shards[1]
    assert shards[0] | shards[1] == {i for i in shard_sampler(dataset, 2, 0, 1, 0)} | {
        i for i in shard_sampler(dataset, 2, 1, 1, 0)
    }


@pytest.mark.slow  # a training run
def test_a_nested_tree_trains_and_an_unreadable_file_is_counted(tmp_path):
    data, val = tmp_path / "data", tmp_path / "val"
    for i in range(3):
        (data / ["", "x", "x/y"][i]).mkdir(parents=True, exist_ok=True)
        random_image(80, 96, seed=i).save(data / ["", "x", "x/y"][i] / f"{i}.png")
    (data / "x" / "y" / "truncated.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\0" * 30)
    val.mkdir()
    random_image(64, 64, seed=9).save(val / "v.png")
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY_CONFIG.to_dict()))
    out = tmp_path / "run"
    argv = ["--arch", "zou2022", "--config", str(config), "--lmbda", "0.01", "--train-dir", str(data),
            "--val-dir", str(val), "--out", str(out), "--epochs", "2", "--batch-size", "2", "--patch-size", "64",
            "--val-crop", "64", "--val-every", "0", "--warmup", "1", "--no-progress", "--threads", "1"]  # fmt: skip
    assert cli.main(argv) == 0
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3, 4]  # 4 files, batch 2: 2 steps per epoch, 2 epochs
    skipped = [path for r in log for path in r.get("skipped", [])]
    assert skipped == [str(data / "x" / "y" / "truncated.jpg")] * 2  # met once per epoch
    state = json.loads((out / "state.json").read_text())
    assert state["state"]["skipped_images"] == 2 and state["train_files"] == 4
    assert (state["state"]["epoch"], state["state"]["batch"]) == (2, 0)
    assert [v["epoch"] for v in map(json.loads, (out / "val.jsonl").read_text().splitlines())] == [1, 2]
    for r in log:
        assert 0 <= r["data_share"] <= 1 and r["images_per_s"] == pytest.approx(2 / r["seconds"], rel=0.01)


def test_throughput_reports_images_per_second_and_the_data_wait(tmp_path):
    throughput.synthetic_photos(tmp_path, 12, width=96, height=80)
    assert len(list_tree(tmp_path)) == 12
    results = throughput.sweep(tmp_path, [0, 1], batch=4, patch=64, step_ms=20, steps=4, warmup=1)
    assert [r["workers"] for r in results] == [0, 1]
    for r in results:
        assert r["files"] == 12 and r["images_per_s_limit"] == pytest.approx(200)
        assert r["images_per_s"] < r["images_per_s_limit"]  # every step sleeps 20 ms after its batch
        assert 0 < r["data_wait_share"] < 1


MEMORY_PROBE = textwrap.dedent(
    """
    import json, resource, sys
    from gabic.train import cli
    from gabic.train.data import RandomCropDataset, epoch_loader, list_tree
    data, val, config, out = sys.argv[1:5]
    assert cli.main(["--arch", "gabic", "--config", config, "--lmbda", "0.01", "--train-dir", data,
                     "--val-dir", val, "--out", out, "--steps", "2", "--batch-size", "2", "--patch-size", "64",
                     "--val-crop", "64", "--val-every", "1000", "--warmup", "1", "--no-progress",
                     "--threads", "1"]) == 0
    dataset = RandomCropDataset(data, list_tree(data), 64, seed=0)
    seen = sum(len(images) for images, _ in epoch_loader(dataset, 0, batch=16, world=1, rank=0))
    print(json.dumps({"images": seen, "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
    """
)


@pytest.mark.slow
def test_peak_memory_does_not_grow_with_the_data_set(tmp_path):
    """Training and one full epoch of the loader over 200 and over 2 000 photos of 160×160: the
    peak resident memory differs by less than 40 MB. The pixels of the larger set alone are
    154 MB (2 000 × 160 × 160 × 3 bytes), so a loader holding the data set in memory fails."""
    rng = np.random.default_rng(0)
    photos = []  # 20 different JPEG files, written over and over
    for _ in range(20):
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (160, 160, 3), dtype=np.uint8)).save(buffer, "JPEG", quality=90)
        photos.append(buffer.getvalue())
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY_CONFIG.to_dict()))
    val = tmp_path / "val"
    val.mkdir()
    (val / "v.jpg").write_bytes(photos[0])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    probes = {}
    for count in (200, 2000):
        data = tmp_path / f"data{count}"
        for i in range(count):
            (data / f"{i // 100:02d}").mkdir(parents=True, exist_ok=True)
            (data / f"{i // 100:02d}" / f"{i:05d}.jpg").write_bytes(photos[i % 20])
        command = [
            sys.executable,
            "-c",
            MEMORY_PROBE,
            str(data),
            str(val),
            str(config),
            str(tmp_path / f"run{count}"),
        ]
        # both at once: each process measures its own peak
        probes[count] = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                         text=True, cwd=ROOT)  # fmt: skip
    peaks = {}
    for count, probe in probes.items():
        stdout, stderr = probe.communicate(timeout=600)
        assert probe.returncode == 0, stderr[-3000:]
        report = json.loads(stdout.strip().splitlines()[-1])
        assert report["images"] == count // 16 * 16
        peaks[count] = report["maxrss_kb"] / 1024
    assert abs(peaks[2000] - peaks[200]) < 40, peaks
