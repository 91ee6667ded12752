"""End to end in Debian's Chromium (headless, offline flags): upload, bit maps, quality slider,
click in the inspector, neighbour table has k rows, every section computed on request opens and
draws, a deep link restores its view, no error toast. Screenshots go to
artifacts/screenshots/ (ignored by git).

By default the app runs on tiny random weights and a synthetic photo. With
``GABIC_E2E_WEIGHTS_DIR`` set (``make screenshot`` sets it to ``assets/weights``) the same test runs
on those weights and a scikit-image photo; its last screenshot is the README's.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from app_server import CHROMIUM, CHROMIUM_ARGS, ROOT, handler_times, running_app  # noqa: E402,F401 (bench_app imports them)
from helpers import random_image  # noqa: E402

SCREENSHOTS = ROOT / "artifacts" / "screenshots"
TIMEOUT_MS = 180_000
#: Weights for the app under test: tiny random ones unless this variable names a folder.
E2E_WEIGHTS_DIR = os.environ.get("GABIC_E2E_WEIGHTS_DIR")

pytestmark = pytest.mark.browser  # no Chromium: the ``chromium`` fixture skips (or fails in CI)


@pytest.fixture()
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, int, Callable[[], str]]]:
    """(address, max side, this test's server log): the shared app server on tiny random weights,
    or, with ``GABIC_E2E_WEIGHTS_DIR``, a server of its own on those weights at 384 px."""
    if not E2E_WEIGHTS_DIR:
        server = request.getfixturevalue("app_server")
        yield server.url, server.max_side, request.getfixturevalue("app_server_log")
        return
    log = tmp_path / "server.log"
    with running_app(Path(E2E_WEIGHTS_DIR).resolve(), log, max_side=384) as (url, _):
        yield url, 384, log.read_text


def picture_point(page: object, image: object, fx: float, fy: float) -> tuple[float, float]:
    """The page coordinates of fraction ``(fx, fy)`` of the picture as drawn: Gradio shrinks an
    image to fit its box (never enlarges it) and centres it, and ignores clicks on the margin."""
    image.wait_for(state="visible")
    page.wait_for_function("el => el.complete && el.naturalWidth > 0", arg=image.element_handle())
    left, top, box_w, box_h, natural_w, natural_h = image.evaluate(
        "img => { const r = img.getBoundingClientRect();"
        " return [r.left, r.top, r.width, r.height, img.naturalWidth, img.naturalHeight]; }"
    )
    ratio = min(box_w / natural_w, box_h / natural_h, 1.0)
    x0, y0 = left + (box_w - natural_w * ratio) / 2, top + (box_h - natural_h * ratio) / 2
    return x0 + natural_w * ratio * fx, y0 + natural_h * ratio * fy


def click_in_picture(page: object, image: object, fx: float, fy: float) -> None:
    """Click at fraction ``(fx, fy)`` of the picture as drawn (:func:`picture_point`)."""
    page.mouse.click(*picture_point(page, image, fx, fy))


def test_upload_scrub_and_click(chromium: object, served: tuple[str, int, Callable[[], str]],
                                tmp_path: Path) -> None:  # fmt: skip
    import playwright.sync_api as playwright

    url, max_side, server_log = served
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    photo = tmp_path / "photo.png"
    if E2E_WEIGHTS_DIR:
        from app.inputs import sample_image

        image = sample_image("chelsea")  # 451×300
        image.resize((max_side, round(image.height * max_side / image.width))).save(photo)
    else:
        random_image(120, 160, seed=21).save(photo)  # 160×120
    width, height = Image.open(photo).size

    context = chromium.new_context(viewport={"width": 1400, "height": 1800})
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(url)
        status = page.locator("#status")
        playwright.expect(status).to_contain_text("Analysed", timeout=TIMEOUT_MS)  # the sample

        page.locator("#upload input[type=file]").set_input_files(str(photo))
        playwright.expect(status).to_contain_text(f"Analysed {width}×{height}", timeout=TIMEOUT_MS)
        for plot in ("#bits_gabic", "#bits_zou", "#bits_diff"):
            page.locator(f"{plot} img").wait_for(state="visible")
        page.screenshot(path=str(SCREENSHOTS / "01-uploaded.png"), full_page=True)
        # the log line the upload probe times the handler by (tests/e2e/probe_upload.py)
        handled = handler_times(server_log())
        assert handled and 0 < handled[-1][1] - handled[-1][0] < TIMEOUT_MS / 1000

        slider = page.locator("#quality input[type=range]")
        step = float(slider.get_attribute("step") or 1)
        slider.focus()
        slider.press("ArrowRight")  # a key moves the slider by one step: q2 -> q3, or q2.25 (variable rate)
        playwright.expect(status).to_contain_text(f"at q{2 + step:g}.", timeout=TIMEOUT_MS)
        share = page.locator("#share textarea")
        playwright.expect(share).to_have_value(re.compile("uploads cannot travel"), timeout=TIMEOUT_MS)

        inspector = page.locator("#inspector img")
        inspector.scroll_into_view_if_needed()
        click_in_picture(page, inspector, 0.2, 0.7)
        node_info = page.locator("#node_info")
        playwright.expect(node_info).not_to_contain_text(
            f"Clicked ({width / 2:.0f}, {height / 2:.0f})", timeout=TIMEOUT_MS
        )
        playwright.expect(node_info).to_contain_text("Clicked", timeout=TIMEOUT_MS)
        clicked = re.search(r"Clicked \((\d+), (\d+)\)", node_info.inner_text())
        assert clicked is not None
        # the point the app received is where the picture was clicked (within a pixel or two)
        assert abs(int(clicked[1]) - 0.2 * width) <= 2 and abs(int(clicked[2]) - 0.7 * height) <= 2
        k_box = page.locator("#k input[type=number]")
        k = int(k_box.input_value())
        table = page.locator("#neighbours [role=grid]")
        playwright.expect(table).to_have_attribute("aria-rowcount", str(k + 1))  # header + k rows
        assert page.locator("#neighbours tbody tr").count() >= 1
        # a k typed into the number box counts when Enter is pressed (the box keeps the focus)
        for typed, note in ((k - 1, f"k={k - 1} is out of distribution"), (k, "")):
            k_box.fill(str(typed))
            k_box.press("Enter")
            if note:
                playwright.expect(status).to_contain_text(note, timeout=TIMEOUT_MS)
            else:
                playwright.expect(status).not_to_contain_text("out of distribution", timeout=TIMEOUT_MS)
            playwright.expect(table).to_have_attribute("aria-rowcount", str(typed + 1), timeout=TIMEOUT_MS)
        page.locator("#inspector").screenshot(path=str(SCREENSHOTS / "02-inspector.png"))
        page.screenshot(path=str(SCREENSHOTS / "03-after-click.png"), full_page=True)

        open_section_follows_the_controls(page, playwright, slider)
        open_sections(page, playwright)
        search_harder(page, playwright)
        page.screenshot(path=str(SCREENSHOTS / "04-sections.png"), full_page=True)
        readme_picture(page, SCREENSHOTS / "05-readme.png")

        errors = page.locator("[data-testid=toast-body].error")
        assert errors.count() == 0, errors.all_inner_texts()
        assert "Problem" not in status.inner_text()

        # a deep link restores its view
        link = page.goto(url + "?sample=coffee&q=3&k=7&block=encoder+1%2F16&head=2&x=50&y=40")
        assert link is not None and link.ok
        playwright.expect(status).to_contain_text("at q3", timeout=TIMEOUT_MS)
        playwright.expect(page.locator("#node_info")).to_contain_text("Clicked (50, 40) → encoder 1/16")
        assert page.locator("#k input[type=number]").input_value() == "7"
        assert page.locator("#head input[value='2']").is_checked()
        playwright.expect(page.locator("#share textarea")).to_have_value(re.compile(r"sample=coffee&q=3&k=7"))
        assert "sample=coffee" in page.url
        assert page.locator("[data-testid=toast-body].error").count() == 0
    finally:
        context.close()
    log = server_log()
    assert "Traceback" not in log, log[-3000:]
    shutil.copy(SCREENSHOTS / "05-readme.png", SCREENSHOTS / "latest.png")


def readme_picture(page: object, path: Path) -> None:
    """The README's picture: the top of the page (diagram, controls, reconstructions, bit maps over
    the photo) above the window graph, the entropy model and progressive decoding sections."""
    box = page.locator("#bits_summary").bounding_box()
    top = page.locator("body").evaluate("b => window.scrollY") + box["y"] + box["height"] + 10
    parts = [path.with_name("part-top.png")]
    page.screenshot(path=str(parts[0]), full_page=True, clip={"x": 0, "y": 0, "width": 1400, "height": top})
    for section in ("sec_graph", "sec_entropy", "sec_progressive"):
        parts.append(path.with_name(f"part-{section}.png"))
        page.locator(f"#{section}").screenshot(path=str(parts[-1]))
    pictures = [Image.open(part).convert("RGB") for part in parts]
    sheet = Image.new("RGB", (max(p.width for p in pictures), sum(p.height for p in pictures)), "white")
    y = 0
    for picture in pictures:
        sheet.paste(picture, (0, y))
        y += picture.height
    sheet.save(path)


#: Section id -> an element that is drawn once the section has computed its views.
SECTIONS = {
    "sec_all_heads": "#all_heads .js-plotly-plot",
    "sec_anatomy": "#anatomy .js-plotly-plot",
    "sec_entropy": "#max_entropy .js-plotly-plot",
    "sec_progressive": "#progressive_curve .js-plotly-plot",
    "sec_graph": "#window_graph .js-plotly-plot",
    "sec_same_size": "#same_size_table [role=grid]",
    "sec_equal_rate": "#equal_rate_note p",
    "sec_search": "#search_note p",
}


def open_section_follows_the_controls(page: object, playwright: object, slider: object) -> None:
    """An open section is redrawn after a change of the controls; a closed one is not. Read from the
    numbers' quality field: the rest of the component's text holds Gradio's changing timer."""
    header = page.locator("#sec_numbers .label-wrap").first
    header.scroll_into_view_if_needed()
    header.click()
    summary = page.locator("#summary")
    playwright.expect(summary).to_contain_text('"quality"', timeout=TIMEOUT_MS)

    def shown_quality() -> str:
        found = re.search(r'"quality"\s*:\s*([0-9.]+)', summary.text_content())
        assert found is not None, summary.text_content()
        return found[1]

    before = shown_quality()
    slider.focus()
    slider.press("ArrowRight")
    page.wait_for_function(
        "([old]) => { const m = document.querySelector('#summary').textContent"
        ".match(/\"quality\"\\s*:\\s*([0-9.]+)/); return m !== null && m[1] !== old; }",
        arg=[before], timeout=TIMEOUT_MS,
    )  # fmt: skip
    assert shown_quality() != before
    header.click()  # closed
    shown = shown_quality()
    status = page.locator("#status").inner_text()
    slider.focus()
    slider.press("ArrowLeft")
    page.wait_for_function("([old]) => document.querySelector('#status').innerText !== old", arg=[status],
                           timeout=TIMEOUT_MS)  # fmt: skip
    page.wait_for_timeout(1000)  # time for a (wrong) redraw of the closed section to arrive
    assert shown_quality() == shown


def search_harder(page: object, playwright: object) -> None:
    """The encoder search's section (open): the least effort, the button, then both models' plain
    and searched containers in the table and the sliders."""
    note = page.locator("#search_note")
    playwright.expect(note).to_contain_text("Press Search harder", timeout=TIMEOUT_MS)
    effort = page.locator("#effort input[type=range]")
    effort.focus()
    effort.press("Home")  # 10 steps
    playwright.expect(note).to_contain_text("with 10 steps", timeout=TIMEOUT_MS)
    page.locator("#search_button").click()
    playwright.expect(note).to_contain_text("Same decoder, same container", timeout=TIMEOUT_MS)
    playwright.expect(page.locator("#search_table [role=grid]")).to_contain_text("10 steps")
    playwright.expect(page.locator("#status")).to_contain_text("Encoder search at", timeout=TIMEOUT_MS)
    page.locator("#search_gabic img").first.wait_for(state="visible")


def open_sections(page: object, playwright: object) -> None:
    """Open every section computed on request and wait until it drew."""
    for section, drawn in SECTIONS.items():
        header = page.locator(f"#{section} .label-wrap").first
        header.scroll_into_view_if_needed()
        header.click()
        page.locator(drawn).first.wait_for(state="visible", timeout=TIMEOUT_MS)
    note = page.locator("#equal_rate_note")
    playwright.expect(note).to_contain_text(re.compile("same rate|variable-rate"), timeout=TIMEOUT_MS)
    slices = page.locator("#slices input[type=range]")
    slices.focus()
    slices.press("Home")  # s = 0: the hyperprior alone
    playwright.expect(page.locator("#progressive_note")).to_contain_text("0 of", timeout=TIMEOUT_MS)
