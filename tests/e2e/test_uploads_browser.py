"""Bad uploads in Debian's Chromium (headless), as a new user tries them (issue 20's table): random
bytes named .jpg, a 900-megapixel PNG of 0.1 MB, the first 20 kB of a JPEG, a 31.5 MB PNG and a
24-megapixel JPEG. Each bad file gets its sentence, the views are marked as the previous photo's,
no absolute path of the server appears anywhere on the page, and the next good upload works.

A page of the run's shared app server (the files are generated here, in about 3 s)."""

from __future__ import annotations

import os
import re
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from app_server import CHROMIUM, ROOT  # noqa: E402
from upload_files import PREVIOUS_NOTE, SENTENCES, Uploads, make_uploads  # noqa: E402

TIMEOUT_MS = 120_000
#: What Gradio's page says, before sending anything, for a file over the server's max_file_size.
GRADIO_SIZE_LIMIT = 'File(s) exceed the maximum allowed size of 25.0 Mb: "large.png"'
#: An absolute path as text (after a space, quote, bracket or colon, or at a line's start).
ABSOLUTE_PATH = re.compile(r"""(?:^|[\s'"(\[:=])(/[\w.~-]+){2,}""", re.MULTILINE)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists() and os.environ.get("GABIC_REQUIRE_BROWSER") != "1",
        reason="/usr/bin/chromium is missing (apt-get install chromium; CI sets GABIC_REQUIRE_BROWSER=1)",
    ),
]


@pytest.fixture(scope="module")
def uploads(tmp_path_factory: pytest.TempPathFactory) -> Uploads:
    return make_uploads(tmp_path_factory.mktemp("uploads"))


def server_paths(page: object, server_folders: list[str]) -> list[str]:
    """Absolute paths, and any folder of the server, in the page's text and its fields' values."""
    text = page.evaluate(
        "() => [document.body.innerText, ...Array.from(document.querySelectorAll('input, textarea'),"
        " field => field.value)].join('\\n')"
    )
    found = [match[0].strip() for match in ABSOLUTE_PATH.finditer(text)]
    return found + [folder for folder in server_folders if folder in text]


def upload(page: object, path: Path) -> None:
    page.locator("#upload input[type=file]").set_input_files(str(path))


def test_bad_uploads_get_a_sentence_and_no_server_path(
    app_page: object, uploads: Uploads, app_server_log: object, random_weights_dir: Path
) -> None:
    page = app_page  # a page of the run's shared app server (tests/conftest.py)
    from playwright.sync_api import expect

    folders = [str(ROOT), str(random_weights_dir), str(uploads.photo.parent), tempfile.gettempdir() + "/"]
    status, info, preview = page.locator("#status"), page.locator("#image_info"), page.locator("#upload img")
    assert server_paths(page, folders) == []  # the weights line names files, not their folder

    def good_upload() -> None:
        upload(page, uploads.photo)
        expect(status).to_contain_text("Analysed 160×120 px", timeout=TIMEOUT_MS)
        expect(info).to_have_text("160×120 px")
        expect(preview).to_be_visible()  # the photo box shows the photo

    good_upload()
    for name in ("random", "bomb", "truncated"):
        upload(page, uploads.bad[name])
        expect(status).to_have_text(f"Problem: {SENTENCES[name]} {PREVIOUS_NOTE}", timeout=TIMEOUT_MS)
        expect(info).to_have_text("The results below are still those of the previous photo: 160×120 px.")
        expect(page.locator("[data-testid=toast-body]", has_text=SENTENCES[name]).first).to_be_visible()
        expect(preview).to_have_count(0)  # no broken preview: the photo box is empty again
        assert server_paths(page, folders) == [], name
        good_upload()  # the next good upload works

    # over the server's upload limit: Gradio's page refuses it before sending it, in its own words
    upload(page, uploads.bad["large"])
    expect(page.locator("[data-testid=toast-body].error", has_text=GRADIO_SIZE_LIMIT)).to_be_visible()
    expect(info).to_have_text("The results below are still those of the previous photo: 160×120 px.")
    expect(preview).to_have_count(0)
    assert server_paths(page, folders) == []

    upload(page, uploads.big_photo)  # 24 megapixels: analysed after a downscale
    expect(status).to_contain_text("Analysed 160×107 px (downscaled from 6000×4000)", timeout=TIMEOUT_MS)
    expect(preview).to_be_visible()
    errors = page.locator("[data-testid=toast-body].error").all_inner_texts()
    assert all("exceed the maximum allowed size" in text for text in errors), errors
    assert server_paths(page, folders) == []
    log = app_server_log()
    assert "Traceback" not in log, log[-3000:]
    assert log.count("upload refused: ") == 3
