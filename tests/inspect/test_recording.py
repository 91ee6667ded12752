"""Inspection by forward hooks: what is recorded, for whom, and that nothing stays behind."""

from __future__ import annotations

import threading

import pytest
import torch
from helpers import TINY_CONFIG, random_image, tiny_codecs

from gabic.codec.images import image_to_tensor
from gabic.inspect import analyze, record_attention
from gabic.models import BLOCK_NAMES, build_model


@pytest.fixture(scope="module")
def models() -> dict[str, torch.nn.Module]:
    return tiny_codecs(12)


def _hook_count(model: torch.nn.Module) -> int:
    return sum(len(module._forward_hooks) for module in model.modules())


@pytest.mark.parametrize("arch", ["gabic", "zou2022"])
def test_recording_hands_back_each_blocks_last_call_and_removes_its_hooks(models, arch):
    model = models[arch]
    x = torch.rand(1, 3, 64, 128)
    with torch.no_grad(), record_attention(model) as records:
        assert _hook_count(model) == 4
        model(x)
    assert _hook_count(model) == 0
    assert set(records) == set(BLOCK_NAMES)
    for name, block in model.window_blocks():
        record = records[name]
        side = 16 if "1/4" in name else 4
        assert (record.grid.height, record.grid.width) == (side, 2 * side)
        assert record.grid.shift == (block.window // 2 if arch == "zou2022" else 0)
        alpha = record.explanation["alpha"]
        windows = (side // block.window) * (2 * side // block.window)
        assert alpha.shape[:3] == (windows, TINY_CONFIG.heads, block.window**2)
        torch.testing.assert_close(alpha.sum(-1), torch.ones(alpha.shape[:-1]))


def test_hooks_are_removed_after_an_error(models):
    model = models["gabic"]
    with pytest.raises(RuntimeError), record_attention(model):
        model(torch.rand(1, 4, 64, 64))  # wrong channel count
    assert _hook_count(model) == 0


def test_recording_sees_only_its_own_thread(models):
    model = models["gabic"]
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad(), record_attention(model) as records:
        other = threading.Thread(target=model, args=(x,))
        other.start()
        other.join()
        assert records == {}  # the other thread's call is not ours
        model(x)
        assert set(records) == set(BLOCK_NAMES)


def test_two_recordings_on_one_model_are_independent(models):
    model = models["zou2022"]
    a, b = torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 128)
    with torch.no_grad(), record_attention(model) as first:
        with record_attention(model) as second:
            model(b)
        model(a)
    assert first["encoder 1/4"].grid.width == 16  # the last call made while it was open
    assert second["encoder 1/4"].grid.width == 32
    assert _hook_count(model) == 0


def _same_analysis(a, b) -> bool:
    if a.data != b.data or a.blocks.keys() != b.blocks.keys():
        return False
    for name, block in a.blocks.items():
        other = b.blocks[name]
        if not torch.equal(block.alpha, other.alpha):
            return False
        if block.neighbours is not None and not torch.equal(block.neighbours, other.neighbours):
            return False
    return True


def test_threads_analysing_shared_and_separate_models_match_sequential_runs():
    gabic = build_model("gabic", TINY_CONFIG).eval()
    gabic.update(force=True)
    zou = tiny_codecs(3)["zou2022"]
    images = [random_image(64, 80, seed=s) for s in range(3)]
    jobs = [  # (model, image, k): one model shared by threads at different k, and another model
        (gabic, images[0], None), (gabic, images[1], 4), (gabic, images[2], 12), (zou, images[0], None),
        (gabic, images[1], None), (zou, images[2], None),
    ]  # fmt: skip
    expected = [analyze(model, image, k=k) for model, image, k in jobs]
    results: list[object] = [None] * len(jobs)
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(jobs))

    def run(i: int) -> None:
        try:
            model, image, k = jobs[i]
            barrier.wait()
            results[i] = analyze(model, image, k=k)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for i, (want, got) in enumerate(zip(expected, results, strict=True)):
        assert _same_analysis(want, got), f"job {i}"
    assert gabic.k == TINY_CONFIG.k and _hook_count(gabic) == 0 and _hook_count(zou) == 0


def test_recorded_values_are_the_block_explanations(models):
    """What the hooks record is the blocks' pure ``explain`` of the input they were given."""
    model = models["gabic"]
    x = image_to_tensor(random_image(64, 64, seed=1))
    with torch.no_grad(), record_attention(model) as records:
        model(x)
        features = model.g_a[:4](x)
        direct = model.get_submodule(BLOCK_NAMES["encoder 1/4"]).window_block.explain(features)
    for key, value in direct.items():
        assert torch.equal(records["encoder 1/4"].explanation[key], value), key
