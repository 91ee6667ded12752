"""The app's "search harder" section: both models coded without and with encoder search at the
current controls, shown from the cache once computed, with refusals as one sentence (random weights)."""

from __future__ import annotations

from pathlib import Path

import gradio  # noqa: F401  (a missing gradio fails the tests instead of skipping them)
import pytest
from helpers import random_image

from app import sections
from app.handlers import App
from app.messages import guarded
from app.service import BLOCKS, Explorer
from app.ui import build_demo
from app.weights import WeightsSource

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:gradio.helpers")


@pytest.fixture(scope="module")
def loaded(weights_env: Path, tmp_path_factory: pytest.TempPathFactory):
    app = App(
        Explorer(WeightsSource(device="cpu")), max_side=160, export_dir=tmp_path_factory.mktemp("reports")
    )
    session, _ = app.load_image(random_image(96, 160, seed=7), 2.5, 9, BLOCKS[0], "mean", "total")
    return app, session


def test_search_harder_codes_both_models_and_is_cached(loaded) -> None:
    app, session = loaded
    before = sections.search_harder(app.explorer, session, 2.5, 9, 10, compute=False)
    assert before["search_table"]["data"] == [] and before["search_gabic"] is None
    assert "Press **Search harder**" in before["search_note"] and "q2.5" in before["search_note"]

    calls: list[tuple[float, str]] = []
    views = sections.search_harder(app.explorer, session, 2.5, 9, 10,
                                   progress=lambda fraction, desc=None: calls.append((fraction, desc)))  # fmt: skip
    fractions = [fraction for fraction, _ in calls]
    assert len(calls) == 20 and fractions == sorted(fractions) and fractions[-1] == 1.0
    assert calls[9][1] == "GABIC: search step 10 of 10" and calls[-1][1] == "Zou2022: search step 10 of 10"
    rows = views["search_table"]["data"]
    assert [row[:2] for row in rows[:4]] == [["GABIC", "none"], ["GABIC", "10 steps"], ["Zou2022", "none"],
                                             ["Zou2022", "10 steps"]]  # fmt: skip
    pair = app.explorer.pair(session.image, 2.5, 9)
    assert rows[0][2] == round(pair.gabic.bpp, 4) and rows[2][2] == round(
        pair.zou2022.bpp, 4
    )  # the app's own codec
    assert rows[0][3] == round(pair.gabic.psnr, 2)
    searched_bpp = rows[1][2]
    for row in rows[4:]:  # classic codecs that fit the searched GABIC's size
        assert row[1] == "at searched GABIC's size" and row[2] <= searched_bpp + 1e-4
    assert "Same decoder, same container" in views["search_note"] and "GABIC" in views["search_note"]
    plain, searched = views["search_gabic"]["value"]
    assert plain.size == searched.size == session.image.size
    assert views["search_zou"]["label"].startswith("Zou2022: plain")
    assert views["status"] == "Encoder search at q2.5: 10 steps per model."

    # the same controls again (the effort slider, a section refresh): from the cache, no computing
    again = sections.search_harder(app.explorer, session, 2.5, 9, 10, compute=False)
    assert again["search_table"] == views["search_table"]
    other_effort = sections.search_harder(app.explorer, session, 2.5, 9, 20, compute=False)
    assert other_effort["search_table"]["data"] == []


def test_search_harder_refusals_are_one_sentence(loaded) -> None:
    app, session = loaded
    search = guarded(sections.SEARCH_VIEWS, state=False)(
        lambda s, q, kk, ef: sections.search_harder(app.explorer, s, q, kk, ef)
    )
    for effort in (0, 5, 101, 1000):
        status = search(session, 2.5, 9, effort, flat=True)[0]
        assert status.startswith("Problem: the effort must be 10 to 100 steps"), status
    status = search(None, 2.5, 9, 30, flat=True)[0]
    assert status.startswith("Problem:") and "/" not in status.removeprefix("Problem:")
    with pytest.raises(ValueError, match="1..4"):
        sections.search_harder(app.explorer, session, 4.5, 9, 30)


def test_demo_has_the_search_section(loaded) -> None:
    app, session = loaded
    demo = build_demo(app, session.image, "astronaut")
    ids = {getattr(block, "elem_id", None) for block in demo.blocks.values()}
    assert {"sec_search", "effort", "search_button", "search_table", "search_gabic", "search_zou"} <= ids
