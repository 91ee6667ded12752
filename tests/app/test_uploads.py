"""Bad uploads (the table of issue 20): each gets one sentence that says what is wrong and what to
do, from the input policy of :mod:`gabic.codec.images`, in the handlers and through the API
(gradio_client); the views stay marked as the previous photo's; no server path reaches the
visitor. The browser side is tests/e2e/test_uploads_browser.py."""

from __future__ import annotations

import base64
import hashlib
import pickle
from pathlib import Path

import gradio as gr
import gradio_client  # noqa: F401  (a missing gradio_client fails instead of skipping)
import pytest
from gradio.data_classes import ImageData
from upload_files import PREVIOUS_NOTE, SENTENCES, Uploads, make_uploads

from app import uploads as uploads_module
from app.handlers import VIEWS, App
from app.inputs import MAX_UPLOAD_BYTES
from app.messages import failure_message, guarded, user_message
from app.service import Explorer
from app.session import Session
from app.ui import MAX_FILE_SIZE, build_demo
from app.uploads import PhotoInput, unread_upload
from app.weights import WeightsSource
from gabic.codec.images import ImageInputError, load_image

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:gradio.helpers")
CONTROLS = dict(quality=2, k=9, block="encoder 1/4", head="mean", part="total")


@pytest.fixture(scope="module")
def uploads(tmp_path_factory: pytest.TempPathFactory) -> Uploads:
    return make_uploads(tmp_path_factory.mktemp("uploads"))


@pytest.fixture(scope="module")
def app(weights_env: Path, tmp_path_factory: pytest.TempPathFactory) -> App:
    return App(
        Explorer(WeightsSource(device="cpu")), max_side=160, export_dir=tmp_path_factory.mktemp("reports")
    )


@pytest.fixture(scope="module")
def shown(app: App, uploads: Uploads) -> Session:
    """The session of a good photo analysed before the bad uploads."""
    session, views = app.load_image(str(uploads.photo), **CONTROLS)
    assert views["status"].startswith("Analysed 160×120 px")
    return session


def test_the_policy_gives_a_reason_without_the_file(uploads: Uploads) -> None:
    """The library's reason names no file; ``str(error)`` still does (the CLI names the user's file)."""
    for name, path in uploads.bad.items():
        with pytest.raises(ImageInputError) as caught:
            load_image(path, max_bytes=MAX_UPLOAD_BYTES)
        error = caught.value
        assert user_message(error) == SENTENCES[name]
        assert str(path) not in error.reason and str(error).startswith(f"{path}: {error.reason}")
        copy = pickle.loads(pickle.dumps(error))
        assert (copy.reason, str(copy)) == (error.reason, str(error))
    assert MAX_FILE_SIZE == MAX_UPLOAD_BYTES == 25 * 2**20


def test_a_refused_upload_says_why_and_marks_the_previous_photo(
    app: App, uploads: Uploads, shown: Session
) -> None:
    wrapped = guarded(VIEWS)(app.load_upload)
    for name, path in uploads.bad.items():
        session, views = app.load_upload(str(path), shown, **CONTROLS)
        assert not isinstance(session, Session)  # no new session: the views keep their values
        assert views == {
            "status": f"Problem: {SENTENCES[name]} {PREVIOUS_NOTE}",
            "image_info": "The results below are still those of the previous photo: 160×120 px.",
        }
        values = wrapped(str(path), shown, *CONTROLS.values(), flat=True)  # what Gradio gets
        assert values[1 + VIEWS.index("status")] == views["status"]
        assert all(v == {"__type__": "update"} for i, v in enumerate(values) if VIEWS[i - 1 : i] != ("status",)
                   and VIEWS[i - 1 : i] != ("image_info",))  # fmt: skip
        # with nothing shown before: the sentence alone
        _, first = app.load_upload(str(path), None, **CONTROLS)
        assert first == {"status": f"Problem: {SENTENCES[name]}"}
        assert str(path.parent) not in str(views) + str(first)


def test_the_next_good_upload_works(app: App, uploads: Uploads, shown: Session) -> None:
    """After a refusal a good upload is analysed; a 24-megapixel JPEG is downscaled."""
    app.load_upload(str(uploads.bad["bomb"]), shown, **CONTROLS)
    session, views = app.load_upload(str(uploads.big_photo), shown, **CONTROLS)
    assert isinstance(session, Session)
    assert views["status"].startswith("Analysed 160×107 px (downscaled from 6000×4000)")


def test_the_photo_box_decodes_nothing(uploads: Uploads, app: App) -> None:
    """Gradio's own preprocessing opened the file with Pillow and failed with a wordless Error; the
    photo box hands the file to the handler unread (a data: URL from the API as its bytes)."""
    bomb = str(uploads.bad["bomb"])
    assert unread_upload(ImageData(path=bomb, orig_name="bomb.png")) == bomb
    data = uploads.photo.read_bytes()
    assert unread_upload(ImageData(url="data:image/png;base64," + base64.b64encode(data).decode())) == data
    assert isinstance(unread_upload(ImageData(url="data:image/png;base64,@@not base64@@")), bytes)
    assert unread_upload(None) is None
    demo = build_demo(app)
    upload = next(block for block in demo.blocks.values() if getattr(block, "elem_id", None) == "upload")
    assert isinstance(upload, PhotoInput) and upload.preprocess(ImageData(path=bomb)) == bomb
    assert upload.get_block_name() == "image"  # drawn by the browser as Gradio's image box
    # after an update to the box Gradio rebuilds it for the session from its class and arguments
    rebuilt = type(upload)(**{**upload.constructor_args, "render": False})
    assert rebuilt.preprocess(ImageData(path=bomb)) == bomb
    assert not Path(uploads_module.__file__).with_suffix(".pyi").exists()  # no stub file written


def test_the_api_function_answers_with_the_sentence(app: App, uploads: Uploads) -> None:
    """The /analyze function refuses each bad file with the page's sentence, the 31.5 MB one too
    (gradio_client refuses that one before sending it: see the test below)."""
    demo = build_demo(app)
    analyze = next(dep.fn for dep in demo.fns.values() if dep.api_name == "analyze")
    for name, path in uploads.bad.items():
        with pytest.raises(gr.Error) as caught:
            analyze(str(path), 2, 9)
        assert caught.value.message == SENTENCES[name]


def test_other_messages_name_no_server_path(tmp_path: Path) -> None:
    missing = tmp_path / "cache" / "x" / "photo.png"
    assert (
        failure_message(FileNotFoundError(f"no such file: {missing}")) == "Problem: no such file: photo.png."
    )
    unexpected = failure_message(RuntimeError(f"cannot write {missing}"))
    assert str(tmp_path) not in unexpected and "cannot write photo.png" in unexpected


def test_the_weights_line_names_files_and_fingerprints_not_the_folder(app: App, weights_env: Path) -> None:
    demo = build_demo(app)
    texts = [str(getattr(block, "value", "")) for block in demo.blocks.values()]
    line = next(text for text in texts if text.startswith("**Weights in use**"))
    for family in ("gabic-small-vr", "zou2022-small-vr"):
        digest = hashlib.sha256((weights_env / f"{family}.safetensors").read_bytes()).hexdigest()[:12]
        assert f"shipped family {family}: {family}.safetensors (sha256:{digest})" in line
    assert str(weights_env) not in line and "/" not in line.replace("1/", "")
    assert not any(str(weights_env) in text for text in texts)


@pytest.mark.slow
def test_the_api_answers_each_bad_file_with_the_sentence(app_server: object, app_server_log: object,
                                                          uploads: Uploads) -> None:  # fmt: skip
    """Through gradio_client, as a script would call the app (the run's shared app server)."""
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    client = Client(app_server.url, verbose=False, download_files=False)
    for name in ("random", "bomb", "truncated"):
        path = uploads.bad[name]
        with pytest.raises(AppError) as caught:
            client.predict(handle_file(str(path)), 2, 9, api_name="/analyze")
        assert str(caught.value) == SENTENCES[name]
        status = client.predict(handle_file(str(path)), 2, 9, api_name="/upload")[1]
        assert status == f"Problem: {SENTENCES[name]}"
    # the client itself refuses a file over the server's limit, before sending it
    with pytest.raises(ValueError, match=f"exceeds the maximum file size of {MAX_FILE_SIZE} bytes"):
        client.predict(handle_file(str(uploads.bad["large"])), 2, 9, api_name="/analyze")
    answer = client.predict(handle_file(str(uploads.big_photo)), 2, 9, api_name="/analyze")
    assert (answer["image"]["width"], answer["image"]["height"]) == (160, 107)
    assert answer["image"]["original_size"] == [6000, 4000]
    log = app_server_log()
    assert "Traceback" not in log, log[-3000:]
    # the operator's log names each refused file
    assert log.count("upload refused: ") == 3 and log.count("API request refused: ") == 3
