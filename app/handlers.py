"""Event handlers of the app: thin glue between widgets, :mod:`app.service` and :mod:`gabic.viz`.

Every handler is a plain function (testable without a browser). Per-user data lives in a
:class:`app.session.Session` (a ``gr.State``); nothing about a user's image is kept in globals
(the explorer's cache is keyed by image content, so two users only share results for identical
pixels).

View handlers return a dict ``{view name: value}``; :data:`VIEWS` fixes their order for the
Gradio wiring.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from pathlib import Path
from typing import Any

import gradio as gr
from PIL import Image

from gabic import viz
from gabic.codec.images import ImageInputError

from .exports import ExportFolder, ImageFiles
from .inputs import DEFAULT_MAX_SIDE, MAX_UPLOAD_BYTES, PreparedImage, prepare_image, sample_image
from .messages import notify, refused_views, user_message
from .prefetch import Prefetcher
from .service import Explorer, Pair, Progress
from .session import Controls, Session, quality_label, quality_value
from .weights import ARCHS

log = logging.getLogger("gabic.app")

#: Outputs of :meth:`App.render`, in the order the UI wires them.
#: The score anatomy's edge list and the numbers are drawn by their sections (:meth:`App.anatomy`,
#: :meth:`App.numbers`).
VIEWS = (
    "status", "image_info", "slider_gabic", "slider_zou", "metrics", "bits_gabic", "bits_zou",
    "bits_diff", "bits_summary", "inspector", "window_attention", "node_info", "neighbours",
)  # fmt: skip

#: The inspector's views: :meth:`App.render` draws them last, or leaves them to :meth:`App.inspect`.
INSPECTOR_PART = ("inspector", "window_attention", "node_info", "neighbours")
#: Default opacity of the bit maps drawn over the photo.
BITS_OPACITY = 0.75


def _progress_adapter(progress: Any) -> Progress:
    def report(fraction: float, message: str) -> None:
        if progress is None:
            return
        with contextlib.suppress(Exception):  # progress outside a request (tests) is best effort
            progress(fraction, desc=message)

    return report


def _edge_choices(rows: list[dict[str, Any]], edge: int) -> tuple[list[tuple[str, int]], int]:
    """The edges of the clicked node as dropdown choices (label, slot), and the chosen slot:
    ``edge`` if it is one of them, else the strongest (``-1`` or a stale slot)."""
    choices = [(f"#{r['rank']}: to ({r['x']:.0f}, {r['y']:.0f}), α mean {r['alpha_mean']:.3f}", r["slot"])
               for r in rows]  # fmt: skip
    slots = [slot for _, slot in choices]
    return choices, edge if edge in slots else slots[0]


def _require(session: Session | None) -> Session:
    if not isinstance(session, Session):
        raise ImageInputError("upload an image first")
    return session


class App:
    """Handlers bound to one :class:`app.service.Explorer` (shared by all sessions)."""

    def __init__(self, explorer: Explorer, max_side: int = DEFAULT_MAX_SIDE,
                 export_dir: str | Path | None = None, prefetch: bool = False):  # fmt: skip
        self.explorer = explorer
        self.max_side = max_side
        self.exports = ExportFolder(export_dir)
        #: PNG files of the pictures shown (written once per image).
        self.image_files = ImageFiles(self.exports.path)
        #: Analyses of a new image at the other qualities, in the background (low priority).
        self.prefetcher = Prefetcher(explorer, enabled=prefetch)

    @property
    def export_dir(self) -> Path:
        return self.exports.path

    # ----------------------------------------------------------------- input
    def new_session(self, source: Any, sample: str | None = None) -> Session:
        """A session for ``source`` (path, bytes, PIL image): the prepared image and the
        clicked point (the image centre until the user clicks); ``sample``: its sample name."""
        if source is None:
            raise ImageInputError("no image given")
        return Session.start(prepare_image(source, self.max_side, MAX_UPLOAD_BYTES), sample)

    def load_image(self, source: Any, quality: int, k: int, block: str, head: str, part: str,
                   progress: Any = None, sample: str | None = None,
                   inspector: bool = True) -> tuple[Session, dict[str, Any]]:  # fmt: skip
        """Upload / paste / sample: prepare the image, analyse it with both models, render."""
        problem = self.explorer.source.problem()
        if problem:
            raise FileNotFoundError(problem)
        start = time.perf_counter()
        session = self.new_session(source, sample)
        views = self.render(session, quality, k, block, head, part, progress, inspector=inspector)
        # for the operator, and for tests/e2e/probe_upload.py (where an upload's time goes)
        log.info("new image %s: views ready in %.3f s", session.image.describe(), time.perf_counter() - start)
        return session, views

    def load_upload(self, source: Any, previous: Any, quality: int, k: int, block: str, head: str, part: str,
                    progress: Any = None, inspector: bool = True) -> tuple[Any, dict[str, Any]]:  # fmt: skip
        """An upload or paste (``previous``: the session shown so far): :meth:`load_image`; a file
        the input policy refuses gives no new session (``gr.skip()``), a toast and a status with
        the reason, and marks the views below as the previous photo's."""
        try:
            return self.load_image(source, quality, k, block, head, part, progress, inspector=inspector)
        except ImageInputError as error:
            log.info("upload refused: %s", error)  # with the server's path, for the operator
            sentence = user_message(error)
            notify(sentence)
            return gr.skip(), refused_views(sentence, previous)

    def load_sample(self, name: str, quality: int, k: int, block: str, head: str, part: str,
                    progress: Any = None) -> tuple[Session, dict[str, Any]]:  # fmt: skip
        return self.load_image(sample_image(name), quality, k, block, head, part, progress, sample=name)

    # ---------------------------------------------------------------- views
    def _pair(self, session: Session, controls: Controls, progress: Any = None) -> Pair:
        return self.explorer.pair(session.image, controls.quality, controls.k, _progress_adapter(progress))

    def render(self, session: Session | None, quality: int, k: int, block: str, head: str,
               part: str = "total", progress: Any = None, opacity: float = BITS_OPACITY,
               inspector: bool = True) -> dict[str, Any]:  # fmt: skip
        """All views for the session's image at the current controls (analyses come from the
        cache once computed, so scrubbing quality back and forth is instant); ``inspector=False``
        leaves out the inspector's views (:data:`INSPECTOR_PART`; :meth:`inspect` draws them), so
        that a page can show the numbers first. The background prefetch waits until the views are
        drawn, then analyses around this view."""
        session = _require(session)
        controls = Controls.read(quality, k, block, head, part)
        with self.explorer.serving():
            pair = self._pair(session, controls, progress)
            image = session.image
            views = {
                "status": self._status(pair, image, controls),
                "image_info": image.describe() + "".join(f" · {note}" for note in image.notes),
                "slider_gabic": (self.image_files(image.image), self.image_files(pair.gabic.reconstruction)),
                "slider_zou": (self.image_files(image.image), self.image_files(pair.zou2022.reconstruction)),
                "metrics": viz.metrics_rows(pair.both),
            }
            views.update(self.bit_views(pair, image, controls.part, opacity))
            if inspector:
                views.update(self.inspector_views(session, pair, controls))
        self.prefetcher.around(session.image, controls.quality, controls.k)
        return views

    def inspect(self, session: Session | None, quality: int, k: int, block: str, head: str,
                part: str = "total") -> dict[str, Any]:  # fmt: skip
        """The inspector's views (:data:`INSPECTOR_PART`) at the current controls: what
        :meth:`render` left out with ``inspector=False``."""
        session = _require(session)
        controls = Controls.read(quality, k, block, head, part)
        with self.explorer.serving():
            return self.inspector_views(session, self._pair(session, controls), controls)

    def bit_views(self, pair: Pair, image: PreparedImage, part: str, opacity: float) -> dict[str, Any]:
        """The two bit maps and their difference drawn into the photo (map ``opacity`` 0..1) as
        pictures (:func:`gabic.viz.bits_picture`: a browser shows a picture at once, where three
        interactive heat maps took it ~200 ms per quality scrub)."""
        maps = viz.bit_maps(pair.gabic, pair.zou2022, part if part in ("total", "y", "z") else "total")
        opacity = min(max(float(opacity), 0.0), 1.0)
        sources = (pair.gabic, pair.zou2022, image.image)

        def picture(which: str) -> str:
            def draw() -> Image.Image:
                return viz.bits_picture(maps, which, image.image, opacity)

            return self.image_files.drawn(("bits", which, maps.part, opacity), sources, draw, lossy=True)

        pictures = {name: picture(which) for name, which in
                    (("bits_gabic", "first"), ("bits_zou", "second"), ("bits_diff", "difference"))}  # fmt: skip
        return pictures | {"bits_summary": viz.bit_summary(maps)}

    def redraw_bits(self, session: Session | None, quality: float, k: int, part: str,
                    opacity: float) -> dict[str, Any]:  # fmt: skip
        """The bit maps alone (the transparency slider)."""
        session = _require(session)
        controls = Controls.read(quality, k, "", "mean", part)
        return self.bit_views(self._pair(session, controls), session.image, controls.part, opacity)

    def known_rd(self, session: Session | None, quality: float, k: int) -> dict[str, Any]:
        """The RD figure of the points of this image computed so far (never computes)."""
        session = _require(session)
        controls = Controls.read(quality, k, "", "mean")
        curves = viz.points_to_curves(self.explorer.known_rd_points(session.image, controls.k))
        return {"rd": self._rd_figure(curves, controls.quality)}

    def anatomy(
        self, session: Session | None, quality: float, k: int, block: str, head: str
    ) -> dict[str, Any]:
        """The score anatomy of the chosen edge of the clicked node (default: its strongest)."""
        session = _require(session)
        controls = Controls.read(quality, k, block, head)
        block_data = self._pair(session, controls).gabic.blocks[controls.block]
        x, y = session.point
        rows = viz.neighbour_rows(block_data, x, y)
        choices, edge = _edge_choices(rows, session.edge)
        label = next(text for text, slot in choices if slot == edge)
        return {
            "anatomy": viz.anatomy_figure(viz.score_anatomy(block_data, x, y, edge), label),
            "edge_choice": gr.update(choices=choices, value=edge),
        }

    def numbers(self, session: Session | None, quality: float, k: int) -> dict[str, Any]:
        """The plain numbers of the current analysis (the "Numbers" view: :meth:`summary`)."""
        session = _require(session)
        controls = Controls.read(quality, k, "", "mean")
        return {"summary": self.summary(self._pair(session, controls), session.image, controls)}

    @staticmethod
    def _rd_figure(curves: dict[str, Any], quality: int) -> Any:
        marked = {name: quality_label(quality) for name in ("GABIC", "Zou2022")}
        return viz.rd_figure(curves, title="Rate–distortion on this image", marked=marked, height=380)

    def inspector_views(self, session: Session, pair: Pair, controls: Controls) -> dict[str, Any]:
        """Inspector image, the attention over the window, the note on the clicked node, the neighbour table."""
        image = session.image
        x, y = session.point
        block = pair.gabic.blocks[controls.block]
        rows = viz.neighbour_rows(block, x, y)
        headers, values = viz.neighbour_table(rows, block.heads)
        node = viz.node_summary(block, x, y)
        scale = viz.display_scale(image.size)
        view = (controls.block, x, y, controls.head)
        return {
            "inspector": self.image_files.drawn(
                ("inspector", *view, scale),
                (pair.gabic,),
                lambda: viz.inspector_image(pair.gabic, controls.block, x, y, controls.head, scale),
                lossy=True,  # JPEG: a photo under a drawing (a PNG was 70 % of a click's time)
            ),
            "window_attention": self.image_files.drawn(
                ("window attention", *view),
                pair.both,
                lambda: viz.window_attention_picture(pair.both, controls.block, x, y, controls.head),
                lossy=True,
            ),
            "node_info": (
                f"Clicked ({x:.0f}, {y:.0f}) → {controls.block}: window {node['window']}, node "
                f"{node['node']} (grid cell {node['cell']}), k = {block.k} neighbours. "
                f"Bits per pixel here (y + z): {viz.bits_at(pair.both, x, y)}."
            ),  # fmt: skip
            "neighbours": {"headers": headers, "data": values},
        }

    def _status(self, pair: Pair, image: PreparedImage, controls: Controls) -> str:
        trained = pair.gabic.trained_k
        note = (
            ""
            if controls.k == trained
            else f" — k={controls.k} is out of distribution (trained with k={trained})"
        )
        return f"Analysed {image.describe()} at {quality_label(controls.quality)}{note}."

    @staticmethod
    def summary(pair: Pair, image: PreparedImage, controls: Controls) -> dict[str, Any]:
        """Plain numbers of the current analysis (also what the ``analyze``/``metrics`` APIs return)."""

        def clean(value: float) -> float | None:
            return None if isinstance(value, float) and not math.isfinite(value) else value

        return {
            "image": {"key": image.key, "width": image.size[0], "height": image.size[1],
                      "original_size": list(image.original_size), "notes": image.notes},
            "quality": controls.quality, "k": controls.k,
            "models": {arch: {name: clean(v) for name, v in pair[arch].metrics().items()} for arch in ARCHS},
        }  # fmt: skip

    def click(self, session: Session | None, index: Any, quality: int, k: int, block: str, head: str,
              part: str = "total") -> tuple[Session, dict[str, Any]]:  # fmt: skip
        """A click on the inspector image at displayed pixel ``index = (x, y)``."""
        session = _require(session)
        if not isinstance(index, (list, tuple)) or len(index) != 2:
            raise ValueError("click on the image to pick a point")
        scale = viz.display_scale(session.image.size)
        session = session.clicked(index[0] / scale, index[1] / scale)
        controls = Controls.read(quality, k, block, head, part)
        return session, self.inspector_views(session, self._pair(session, controls), controls)

    def choose_edge(self, session: Session | None, edge: int | None, quality: int, k: int, block: str,
                    head: str) -> tuple[Session, dict[str, Any]]:  # fmt: skip
        session = _require(session).with_edge(edge if edge is not None else -1)
        return session, self.anatomy(session, quality, k, block, head)

    # -------------------------------------------------------------- on request
    def rate_distortion(self, session: Session | None, quality: int, k: int,
                        progress: Any = None) -> dict[str, Any]:  # fmt: skip
        """Compute every RD point of this image (both models q1..q4, JPEG/WebP/AVIF) and plot them."""
        session = _require(session)
        points = self.explorer.rd_points(session.image, int(k), progress=_progress_adapter(progress))
        return {"rd": self._rd_figure(viz.points_to_curves(points), quality_value(quality))}

    def k_sweep(self, session: Session | None, quality: int, progress: Any = None) -> dict[str, Any]:
        """GABIC at this quality for every valid k."""
        session = _require(session)
        rows = self.explorer.k_sweep(
            session.image, quality_value(quality), progress=_progress_adapter(progress)
        )
        return {"k_sweep": viz.k_sweep_figure(rows, self.explorer.trained_k())}

    def export(self, session: Session | None, quality: int, k: int, block: str, head: str,
               part: str = "total") -> dict[str, Any]:  # fmt: skip
        """Write the current analysis as one self-contained HTML file; returns its path."""
        session = _require(session)
        views = self.render(session, quality, k, block, head, part)
        controls = Controls.read(quality, k, block, head, part)
        pair = self._pair(session, controls)
        image = session.image
        x, y = session.point
        settings = {"quality": quality_label(controls.quality), "k": controls.k, "trained k": pair.gabic.trained_k,
                    "block": controls.block, "head": "mean" if controls.head is None else controls.head + 1,
                    "bit map part": controls.part, "clicked point": f"({x:.0f}, {y:.0f})"}  # fmt: skip
        neighbours = views["neighbours"]
        figures = {"All blocks × heads": viz.all_heads_figure(viz.all_heads(pair.gabic, x, y)),
                   "Score anatomy": self.anatomy(session, quality, k, block, head)["anatomy"],
                   "Rate–distortion": self.known_rd(session, quality, k)["rd"]}  # fmt: skip
        pictures = {"Graph inspector": Image.open(views["inspector"]),
                    "Attention over the window": Image.open(views["window_attention"]),
                    "Bits per pixel: GABIC": Image.open(views["bits_gabic"]),
                    "Bits per pixel: Zou2022": Image.open(views["bits_zou"]),
                    "Bit difference (red: GABIC spends more)": Image.open(views["bits_diff"])}  # fmt: skip
        weights = {viz.ARCH_NAMES[arch]: line for arch, line in self.explorer.source.description().items()}
        page = viz.html_report(
            pair.both, settings, figures, images=pictures,
            tables={"Neighbours of the clicked node": (neighbours["headers"], neighbours["data"])},
            weights=weights, about=[f"Image {image.describe()}, key {image.key}", *image.notes],
        )  # fmt: skip
        path = self.exports.write(
            f"gabic-report-{image.key}-{quality_label(controls.quality)}-k{controls.k}.html", page
        )
        return {"report": str(path)}

    def api_metrics(self, source: Any, quality: int, k: int | None = None) -> dict[str, Any]:
        """API: analyse ``source`` (a file path) at ``quality`` and return :meth:`summary`."""
        problem = self.explorer.source.problem()
        if problem:
            raise FileNotFoundError(problem)
        try:
            session = self.new_session(source)
        except ImageInputError as error:
            log.info("API request refused: %s", error)  # with the server's path, for the operator
            raise
        controls = Controls.read(quality, int(k) if k else self.explorer.trained_k(), "", "mean")
        # numbers only: no block inputs kept for attention views no one will open
        pair = self.explorer.pair(session.image, controls.quality, controls.k, inspect_attention=False)
        return self.summary(pair, session.image, controls)
