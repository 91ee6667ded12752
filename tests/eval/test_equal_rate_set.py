"""``python -m gabic equal-rate``: GABIC against Zou2022 at one real rate over a folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import random_image
from PIL import Image

from gabic import codec, zoo
from gabic.__main__ import main
from gabic.eval.equal_rate_set import compare_at_equal_rate, contact_sheet, difference_picture, summarise


@pytest.fixture()
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for i, (width, height) in enumerate([(96, 64), (80, 72), (64, 64)]):
        random_image(height, width, seed=60 + i).save(folder / f"p{i}.png")
    (folder / "notes.txt").write_text("not an image, not listed")
    return folder


def test_the_command_writes_rows_means_and_a_contact_sheet(use_random_weights, photos, tmp_path, capsys):
    """Every photo at each quality: the rows are those of :func:`compare_at_equal_rate` on the
    same models and the means agree with the rows; the contact sheet holds the first photos'
    difference maps, three to a row."""
    output, figure = tmp_path / "out" / "equal.json", tmp_path / "out" / "equal.png"
    assert main(["equal-rate", str(photos), "--quality", "2", "3.5", "--max-images", "2", "--output", str(output),
                 "--figure", str(figure), "--no-progress"]) == 0  # fmt: skip
    result = json.loads(output.read_text())
    rows = result["rows"]
    assert [(r["image"], r["quality"]) for r in rows] == [
        ("p0.png", 2),
        ("p0.png", 3.5),
        ("p1.png", 2),
        ("p1.png", 3.5),
    ]
    gabic, zou2022 = zoo.load("gabic-small-vr", 2), zoo.load("zou2022-small-vr", 2)
    direct = compare_at_equal_rate(gabic, zou2022, Image.open(photos / "p1.png"), 3.5)
    row = rows[3]
    assert row["gabic_bpp"] == direct.reference.bpp and row["zou2022_quality"] == direct.matched.quality
    assert row["psnr_gain_db"] == pytest.approx(direct.reference.psnr - direct.matched.psnr)
    assert all(0 <= r["gabic_more_bits_share"] <= 1 for r in rows)
    means = result["summary"]["3.5"]
    gains = [r["psnr_gain_db"] for r in rows if r["quality"] == 3.5]
    assert means["photos"] == 2 and means["mean_psnr_gain_db"] == pytest.approx(sum(gains) / 2)
    assert means["gabic_ahead"] == sum(g > 0 for g in gains)
    printed = capsys.readouterr().out
    assert "q3.5: 2 photos, GABIC" in printed and "dB at equal rate" in printed
    pictures = [difference_picture(compare_at_equal_rate(gabic, zou2022, Image.open(photos / name), 2))
                for name in ("p0.png", "p1.png")]  # fmt: skip
    sheet = Image.open(figure)
    assert sheet.size == (2 * 320, max(round(p.height * 320 / p.width) for p in pictures))  # one row of two
    first = pictures[0].resize((320, round(pictures[0].height * 320 / pictures[0].width)))
    assert sheet.convert("RGB").crop((0, 0, *first.size)).tobytes() == first.convert("RGB").tobytes()


def test_rates_come_closer_than_at_the_same_quality(use_random_weights, photos):
    """The search matches the rate: Zou2022's real bpp lies nearer GABIC's than at GABIC's own
    quality (or equally near, when that quality is already the closest)."""
    gabic, zou2022 = zoo.load("gabic-small-vr", 2), zoo.load("zou2022-small-vr", 2)
    photo = Image.open(photos / "p0.png")
    result = compare_at_equal_rate(gabic, zou2022, photo, 2.5)
    same_quality = len(codec.compress(codec.with_quality(zou2022, 2.5), photo)) * 8 / (96 * 64)
    assert abs(result.matched.bpp - result.reference.bpp) <= abs(same_quality - result.reference.bpp)


def test_summary_counts_and_means_per_quality():
    rows = [{"quality": 2.0, "psnr_gain_db": 0.2, "bpp_gap_percent": -1.0},
            {"quality": 2.0, "psnr_gain_db": -0.1, "bpp_gap_percent": 3.0},
            {"quality": 3.0, "psnr_gain_db": 0.5, "bpp_gap_percent": 0.5}]  # fmt: skip
    summary = summarise(rows)
    assert summary["2"] == {"photos": 2, "mean_psnr_gain_db": pytest.approx(0.05), "median_psnr_gain_db":
                            pytest.approx(0.05), "gabic_ahead": 1, "mean_abs_bpp_gap_percent": 2.0}  # fmt: skip
    assert summary["3"]["gabic_ahead"] == 1


def test_a_one_rate_model_or_an_empty_folder_is_one_line_and_status_1(
    use_random_weights, photos, tmp_path, capsys
):
    assert main(["equal-rate", str(photos), "--gabic", "gabic-small", "--quality", "2", "--no-progress"]) == 1
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: gabic-small is a one-rate model: the equal-rate search needs a variable-rate one"
    ]
    assert main(["equal-rate", str(photos), "--gabic", "zou2022-small-vr", "--no-progress"]) == 1
    assert "is a zou2022 model, not gabic" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["equal-rate", str(empty), "--no-progress"]) == 1
    assert "no images found" in capsys.readouterr().err
    assert main(["equal-rate", str(photos), "--quality", "5", "--no-progress"]) == 1
    assert "quality must be in 1..4" in capsys.readouterr().err
    with pytest.raises(ValueError):
        contact_sheet([])
