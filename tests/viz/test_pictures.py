"""Bit maps drawn into the photo as pictures (gabic.viz.pictures): the map, the photo, the scale."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from gabic import viz
from gabic.viz.maps import BitMaps
from gabic.viz.pictures import BAR_LABELS_PX, BAR_PX, TITLE_PX, colour_indices, colour_table


def _maps(height: int = 40, width: int = 60, interior: tuple[int, int, int, int] | None = None) -> BitMaps:
    rng = np.random.default_rng(0)
    first, second = rng.gamma(2.0, 0.3, (2, height, width))
    totals = {"first": float(first.sum()), "second": float(second.sum())}
    totals |= {"difference": totals["first"] - totals["second"], "more_pixels": 0.5}
    return BitMaps(("GABIC", "Zou2022"), first, second, first - second, 1.2, 0.5, "total", totals, interior)


def _photo(height: int = 40, width: int = 60) -> Image.Image:
    return Image.fromarray(np.random.default_rng(1).integers(0, 256, (height, width, 3), dtype=np.uint8))


def test_colour_indices_follow_the_scale() -> None:
    values = np.array([[-1.0, 0.0, 0.5, 1.0, 3.0]])
    assert colour_indices(values, 1.0, diverging=False).tolist() == [[0, 0, 128, 255, 255]]
    assert colour_indices(values, 1.0, diverging=True).tolist() == [[0, 128, 191, 255, 255]]
    viridis = colour_table("Viridis")
    assert (
        viridis.shape == (256, 3)
        and viridis[0].tolist() == [68, 1, 84]
        and viridis[-1].tolist() == [253, 231, 37]
    )
    # the diverging scale is white-ish in the middle, blue at the low end, red at the high end
    rdbu = colour_table("RdBu_r").astype(int)
    assert rdbu[128].min() > 230 and rdbu[0, 2] > rdbu[0, 0] and rdbu[-1, 0] > rdbu[-1, 2]


def test_opacity_blends_the_map_into_the_photo() -> None:
    maps, photo = _maps(), _photo()
    only_photo = viz.bits_picture(maps, "first", photo, opacity=0.0)
    only_map = viz.bits_picture(maps, "first", photo, opacity=1.0)
    assert only_photo.size == (60, TITLE_PX + 40 + BAR_PX + BAR_LABELS_PX)
    region = (slice(TITLE_PX, TITLE_PX + 40), slice(None))
    assert np.array_equal(np.asarray(only_photo)[region], np.asarray(photo))
    expected = colour_table("Viridis")[colour_indices(maps.first, maps.limit, diverging=False)]
    assert np.array_equal(np.asarray(only_map)[region], expected)
    half = np.asarray(viz.bits_picture(maps, "first", photo, opacity=0.5))[region].astype(int)
    assert np.abs(half - (expected.astype(int) + np.asarray(photo, dtype=int)) / 2).max() <= 1


def test_difference_and_second_use_their_scales() -> None:
    maps, photo = _maps(), _photo()
    difference = np.asarray(viz.bits_picture(maps, "difference", photo, opacity=1.0))
    expected = colour_table("RdBu_r")[colour_indices(maps.difference, maps.difference_limit, diverging=True)]
    assert np.array_equal(difference[TITLE_PX : TITLE_PX + 40], expected)
    second = np.asarray(viz.bits_picture(maps, "second", photo, opacity=1.0))
    assert np.array_equal(
        second[TITLE_PX : TITLE_PX + 40],
        colour_table("Viridis")[colour_indices(maps.second, maps.limit, False)],
    )
    # the colour bar runs from the low end of the scale on the left to the high end on the right
    bar = second[TITLE_PX + 40 + 2 + 1]
    assert bar[0].tolist() == colour_table("Viridis")[0].tolist()
    assert bar[-1].tolist() == colour_table("Viridis")[-1].tolist()


def test_padding_box_is_dotted_and_bad_calls_are_refused() -> None:
    maps = _maps(interior=(4, 3, 56, 37))
    picture = np.asarray(viz.bits_picture(maps, "first", _photo(), opacity=1.0))
    top_edge = picture[TITLE_PX + 3, 4:56]
    white = (top_edge == 255).all(axis=1)
    assert 0.3 < white.mean() < 0.7  # dashes: about half of the edge
    with pytest.raises(ValueError, match="which"):
        viz.bits_picture(maps, "gabic", _photo())
    with pytest.raises(ValueError, match="photo"):
        viz.bits_picture(maps, "first", _photo(20, 30))
