"""An analysis's graphs and attention, computed on first read from the blocks' recorded inputs,
are exactly what the hooks record during the real encode and decode."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from helpers import random_image, tiny_codecs

from gabic import codec
from gabic.codec.images import image_to_tensor
from gabic.inspect import analyze, record_attention
from gabic.models import BLOCK_NAMES


@pytest.fixture(scope="module")
def models() -> dict[str, torch.nn.Module]:
    return tiny_codecs(21)


@pytest.mark.parametrize(("arch", "k"), [("gabic", None), ("gabic", 5), ("zou2022", None)])
def test_blocks_read_later_equal_what_the_hooks_record_during_the_pass(models, arch, k):
    model = models[arch]
    image = random_image(72, 100, seed=4)
    result = analyze(model, image, k=k)
    assert result.blocks.computed() == []  # nothing computed until a view reads it
    working = codec.with_k(model, k) if k is not None else model
    with record_attention(working) as records:
        data, _ = codec.encode_tensor(working, image_to_tensor(image))
        codec.decompress_tensor(data, working)
    assert data == result.data
    first = next(iter(BLOCK_NAMES))
    result.blocks[first]
    assert result.blocks.computed() == [first]
    for name in BLOCK_NAMES:
        inspected = result.blocks[name]
        for key, value in records[name].explanation.items():
            got = getattr(inspected, key)
            assert torch.equal(got, value.to(got.dtype)), (name, key)
        grid = records[name].grid
        assert (inspected.grid_height, inspected.grid_width, inspected.shift) == (
            grid.height,
            grid.width,
            grid.shift,
        )
        if arch == "gabic":
            assert inspected.k == (k or model.k)
    assert result.blocks[first] is result.blocks[first]  # computed once


def test_memory_estimate_covers_what_the_inspections_hold(models):
    result = analyze(models["zou2022"], random_image(64, 64, seed=2))
    estimate = result.blocks.nbytes(all_blocks=True)
    before = result.blocks.nbytes()
    assert before < estimate  # nothing computed yet
    result.blocks["encoder 1/4"]
    assert before < result.blocks.nbytes() < estimate
    held = 0
    for inspected in result.blocks.values():
        for field in dataclasses.fields(inspected):
            value = getattr(inspected, field.name)
            if isinstance(value, torch.Tensor):
                held += value.numel() * value.element_size()
    assert held <= estimate and result.blocks.nbytes() == estimate


def test_an_analysis_keeps_no_reference_to_the_model(models):
    model = models["gabic"]
    result = analyze(model, random_image(64, 64, seed=1))
    weights = {p.data_ptr() for p in model.parameters()}
    for block in result.blocks._blocks.values():
        assert not weights & {p.data_ptr() for p in block.parameters()}
