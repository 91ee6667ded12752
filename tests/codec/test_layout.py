"""Where the image sits in the padded canvas and which latent cells the y stream carries
(``gabic.codec.layout``), and the container versions that record it."""

from __future__ import annotations

import struct
import zlib

import pytest
import torch
from helpers import random_image, tiny_codecs

from gabic import codec
from gabic.models import fill_uncoded_cells


@pytest.fixture(scope="module")
def models() -> dict[str, torch.nn.Module]:
    return tiny_codecs(8)


def test_padding_of_a_bsds500_photo():
    assert codec.padding(321, 481) == (0, 31, 0, 63)  # compact: right and bottom
    assert codec.padding(321, 481, "reference") == (15, 16, 31, 32)  # split evenly
    assert codec.padding(512, 768) == codec.padding(512, 768, "reference") == (0, 0, 0, 0)
    with pytest.raises(ValueError, match="layout"):
        codec.padding(10, 10, "centre")


def test_coded_cells_are_the_image_and_one_ring():
    cells = codec.coded_cells(321, 481)  # canvas 384×512: 24×32 cells
    assert cells.shape == (24, 32) and cells.dtype == torch.bool
    # rows: the image ends in cell 20 (320 px), cell 21 is the ring, 22 and 23 are left out;
    # columns: the image ends in cell 30 (480 px), cell 31 is the ring
    assert cells[:22].all() and not cells[22:].any()
    assert int((~cells).sum()) == 64
    tiny = codec.coded_cells(1, 1)  # canvas 64×64: the image's cell and the ring
    assert tiny.tolist() == [[True, True, False, False]] * 2 + [[False] * 4] * 2
    assert codec.coded_cells(321, 481, "reference") is None
    assert codec.coded_cells(512, 768) is None  # no padding
    assert codec.coded_cells(40, 40) is None  # 24 px of padding: only the ring


def test_written_layout():
    assert codec.written_layout(321, 481) == "compact"
    assert codec.written_layout(512, 768) == "reference"  # both layouts are the same there
    assert codec.written_layout(321, 481, "reference") == "reference"


def test_fill_uncoded_cells_replicates_the_coded_rectangle():
    values = torch.arange(16.0).view(1, 1, 4, 4)
    cells = torch.zeros(4, 4, dtype=torch.bool)
    cells[:2, :3] = True
    filled = fill_uncoded_cells(values, cells)
    assert filled[0, 0].tolist() == [[0, 1, 2, 2], [4, 5, 6, 6], [4, 5, 6, 6], [4, 5, 6, 6]]


@pytest.mark.parametrize("arch", ["gabic", "zou2022"])
def test_compact_containers_carry_fewer_symbols_and_decode_exactly(models, arch):
    model = models[arch]
    x = codec.image_to_tensor(random_image(70, 100, seed=2))
    compact = codec.compress_tensor(model, x)
    reference = codec.compress_tensor(model, x, layout="reference")
    assert compact[4] == 3 and codec.read_header(compact).layout == "compact"
    assert reference[4] == 1 and codec.read_header(reference).layout == "reference"
    for data, layout in ((compact, "compact"), (reference, "reference")):
        decoded = codec.decompress_tensor(data, model)
        assert decoded.shape == x.shape
        assert torch.equal(decoded, codec.forward_reconstruction(model, x, layout=layout))
    # an image without padding gives the same bytes in both layouts
    square = codec.image_to_tensor(random_image(64, 128, seed=2))
    assert codec.compress_tensor(model, square) == codec.compress_tensor(model, square, layout="reference")
    assert codec.compress_tensor(model, square)[4] == 1


def _relabel(data: bytes, version: int) -> bytes:
    """The container with another version byte and a valid checksum (as a forger would)."""
    header = codec.read_header(data)
    changed = bytearray(data)
    changed[4] = version
    crc_at = header.header_size - 4
    body = bytes(changed[:crc_at]) + bytes(changed[header.header_size :])
    changed[crc_at : header.header_size] = struct.pack(">I", zlib.crc32(body))
    return bytes(changed)


def test_a_compact_version_for_an_image_without_padding_is_refused(models):
    data = codec.compress(models["gabic"], random_image(64, 64, seed=1))
    assert data[4] == 1
    with pytest.raises(codec.BitstreamError, match="without padding"):
        codec.decompress(_relabel(data, 3), models["gabic"])


def test_a_layout_relabelled_container_never_crashes(models):
    """Version 1 <-> 3 on a padded image: the decoder reads another number of symbols from the
    y stream; it must give an image or a clear error, never crash."""
    for layout, other in (("compact", 1), ("reference", 3)):
        data = codec.compress(models["zou2022"], random_image(70, 100, seed=3), layout=layout)
        try:
            image = codec.decompress(_relabel(data, other), models["zou2022"])
        except codec.BitstreamError:
            continue
        assert image.size == (100, 70)
