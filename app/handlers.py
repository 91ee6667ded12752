"""Event handlers of the app: thin glue between widgets and :mod:`gabic.explore`.

Every handler is a plain function (testable without a browser). Per-user data
lives in a session dict (a ``gr.State``): ``{"image": PreparedImage, "point": (x, y),
"edge": int}``; nothing about a user's image is kept in globals (the explorer's
cache is keyed by image content, so two users only share results for identical pixels).

View handlers return a dict ``{view name: value}``; :data:`VIEWS` fixes their order
for the Gradio wiring.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import tempfile
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import gradio as gr

from app import service as explore
from gabic.codec.images import ImageInputError
from gabic.zoo import CheckpointError

log = logging.getLogger("gabic.app")

#: Outputs of :func:`render`, in the order the UI wires them.
VIEWS = (
    "status", "image_info", "slider_gabic", "slider_zou", "metrics", "bits_gabic", "bits_zou",
    "bits_diff", "bits_summary", "inspector", "window_attention", "node_info", "neighbours",
    "edge_choice", "anatomy", "all_heads", "rd", "summary",
)  # fmt: skip

#: Errors whose message is meant for the user (bad input, missing weights).
USER_ERRORS = (ImageInputError, CheckpointError, ValueError, FileNotFoundError, KeyError)


class Controls:
    """The widget values every view depends on."""

    def __init__(self, quality: int, k: int, block: str, head: str, part: str = "total"):
        self.quality = int(quality)
        self.k = int(k)
        self.block = block if block in explore.BLOCKS else explore.BLOCKS[0]
        self.head = explore.head_index(head)
        self.part = part if part in ("total", "y", "z") else "total"


def _progress_adapter(progress: Any) -> explore.Progress:
    def report(fraction: float, message: str) -> None:
        if progress is None:
            return
        with contextlib.suppress(Exception):  # progress outside a request (tests) is best effort
            progress(fraction, desc=message)

    return report


def _notify(message: str) -> None:
    try:
        gr.Warning(message)
    except Exception:
        log.warning(message)


def failure_message(error: BaseException) -> str:
    if isinstance(error, USER_ERRORS):
        text = str(error).strip("'\"") or type(error).__name__
        return f"Problem: {text}"
    log.error("unexpected error in a handler:\n%s", "".join(traceback.format_exception(error)))
    return f"Problem: something went wrong ({type(error).__name__}: {error}). The server log has details."


def guarded(outputs: tuple[str, ...] | None = VIEWS, state: bool = True) -> Callable:
    """Turn exceptions into a warning toast and a status message; other outputs keep their value.

    The wrapped handler returns a dict of views (and, when ``state``, a new session
    first: ``(session, views)``); the wrapper flattens it for Gradio when called
    with ``flat=True`` and passes it through otherwise (tests).
    """

    def decorate(handler: Callable) -> Callable:
        @functools.wraps(handler)
        def wrapper(*args: Any, flat: bool = False, **kwargs: Any) -> Any:
            try:
                result = handler(*args, **kwargs)
            except Exception as error:
                message = failure_message(error)
                _notify(message.removeprefix("Problem: "))
                if not flat:
                    raise
                views = {name: gr.skip() for name in outputs or ()}
                if "status" in views:
                    views["status"] = message
                values = [views[name] for name in outputs or ()]
                return tuple([gr.skip(), *values]) if state else tuple(values)
            if not flat:
                return result
            if state:
                session, views = result
                return tuple([session, *(views.get(name, gr.skip()) for name in outputs or ())])
            return tuple(result.get(name, gr.skip()) for name in outputs or ())

        return wrapper

    return decorate


class App:
    """Handlers bound to one :class:`gabic.explore.Explorer` (shared by all sessions)."""

    def __init__(self, explorer: explore.Explorer, max_side: int = explore.DEFAULT_MAX_SIDE,
                 export_dir: str | Path | None = None, prefetch: bool = False):  # fmt: skip
        self.explorer = explorer
        self.max_side = max_side
        self.export_dir = Path(export_dir or tempfile.mkdtemp(prefix="gabic-reports-"))
        self.export_dir.mkdir(parents=True, exist_ok=True)
        #: Analyse the other qualities of a new image in the background (one worker, few pending).
        self.prefetch = prefetch
        self._prefetcher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gabic-prefetch")
        self._pending = 0
        self._pending_lock = threading.Lock()

    def prefetch_qualities(self, image: explore.PreparedImage, k: int) -> None:
        """Queue the analyses of ``image`` at every other quality (skipped when 4 are pending)."""
        if not self.prefetch:
            return
        for quality in self.explorer.source.common_qualities():
            with self._pending_lock:
                if self._pending >= 4:
                    return
                self._pending += 1
            self._prefetcher.submit(self._prefetch_one, image, quality, k)

    def _prefetch_one(self, image: explore.PreparedImage, quality: int, k: int) -> None:
        try:
            self.explorer.pair(image, quality, k)
        except Exception as error:  # prefetching is best effort; the request path reports errors
            log.info("prefetch of q%s failed: %s", quality, error)
        finally:
            with self._pending_lock:
                self._pending -= 1

    # ----------------------------------------------------------------- input
    def new_session(self, source: Any) -> dict[str, Any]:
        """A session for ``source`` (path, bytes, PIL image): the prepared image and the
        clicked point (the image centre until the user clicks)."""
        if source is None:
            raise ImageInputError("no image given")
        image = explore.prepare_image(source, self.max_side)
        width, height = image.size
        return {"image": image, "point": (width / 2, height / 2), "edge": 0}

    def load_image(self, source: Any, quality: int, k: int, block: str, head: str, part: str,
                   progress: Any = None) -> tuple[dict[str, Any], dict[str, Any]]:  # fmt: skip
        """Upload / paste / sample: prepare the image, analyse it with both models, render."""
        problem = self.explorer.source.problem()
        if problem:
            raise FileNotFoundError(problem)
        session = self.new_session(source)
        views = self.render(session, quality, k, block, head, part, progress)
        self.prefetch_qualities(session["image"], int(k))
        return session, views

    def load_sample(self, name: str, quality: int, k: int, block: str, head: str, part: str,
                    progress: Any = None) -> tuple[dict[str, Any], dict[str, Any]]:  # fmt: skip
        return self.load_image(explore.sample_image(name), quality, k, block, head, part, progress)

    # ---------------------------------------------------------------- views
    def _pair(self, session: dict[str, Any] | None, controls: Controls, progress: Any) -> explore.Pair:
        if not session or "image" not in session:
            raise ImageInputError("upload an image first")
        return self.explorer.pair(session["image"], controls.quality, controls.k, _progress_adapter(progress))

    def render(self, session: dict[str, Any] | None, quality: int, k: int, block: str, head: str,
               part: str = "total", progress: Any = None) -> dict[str, Any]:  # fmt: skip
        """All views for the session's image at the current controls (analyses come from the
        cache once computed, so scrubbing quality back and forth is instant)."""
        controls = Controls(quality, k, block, head, part)
        pair = self._pair(session, controls, progress)
        image: explore.PreparedImage = session["image"]  # type: ignore[index]
        views = {
            "status": self._status(pair, image, controls),
            "image_info": image.describe() + "".join(f" · {note}" for note in image.notes),
            "slider_gabic": (image.image, pair.gabic.reconstruction),
            "slider_zou": (image.image, pair.zou2022.reconstruction),
            "metrics": explore.metrics_rows(pair),
        }
        maps = explore.bit_maps(pair, controls.part)
        views.update({
            "bits_gabic": explore.bits_figure(maps, "gabic"),
            "bits_zou": explore.bits_figure(maps, "zou2022"),
            "bits_diff": explore.bits_figure(maps, "difference"),
            "bits_summary": explore.bit_summary(maps),
            "rd": explore.rd_figure(self.explorer.known_rd_points(image, controls.k), {"quality": controls.quality}),
            "summary": self.summary(pair, image, controls),
        })  # fmt: skip
        views.update(self.inspector_views(session, pair, controls))  # type: ignore[arg-type]
        return views

    def inspector_views(
        self, session: dict[str, Any], pair: explore.Pair, controls: Controls
    ) -> dict[str, Any]:
        """Inspector image, window heatmaps, neighbour table, edge choices, anatomy, all heads."""
        image: explore.PreparedImage = session["image"]
        x, y = explore.clamp_point(image.size, *session["point"])
        block = pair.gabic.blocks[controls.block]
        rows = explore.neighbour_rows(block, x, y)
        headers, values = explore.neighbour_table(rows, block.heads)
        edge = session.get("edge", 0)
        if edge not in [r["slot"] for r in rows]:
            edge = rows[0]["slot"]
            session["edge"] = edge
        node = explore.node_summary(block, x, y)
        choices = [(f"#{r['rank']}: to ({r['x']:.0f}, {r['y']:.0f}), α mean {r['alpha_mean']:.3f}", r["slot"])
                   for r in rows]  # fmt: skip
        edge_label = next(label for label, slot in choices if slot == edge)
        return {
            "inspector": explore.inspector_image(
                pair.gabic, controls.block, x, y, controls.head, explore.display_scale(image.size)
            ),  # fmt: skip
            "window_attention": explore.window_attention_figure(pair, controls.block, x, y, controls.head),
            "node_info": (
                f"Clicked ({x:.0f}, {y:.0f}) → {controls.block}: window {node['window']}, node "
                f"{node['node']} (grid cell {node['cell']}), k = {block.k} neighbours."
            ),  # fmt: skip
            "neighbours": {"headers": headers, "data": values},
            "edge_choice": gr.update(choices=choices, value=edge),
            "anatomy": explore.anatomy_figure(explore.score_anatomy(block, x, y, edge), edge_label),
            "all_heads": explore.all_heads_figure(explore.all_heads(pair.gabic, x, y)),
        }

    def _status(self, pair: explore.Pair, image: explore.PreparedImage, controls: Controls) -> str:
        trained = pair.gabic.trained_k
        note = (
            ""
            if controls.k == trained
            else f" — k={controls.k} is out of distribution (trained with k={trained})"
        )
        return f"Analysed {image.describe()} at q{controls.quality}{note}."

    @staticmethod
    def summary(pair: explore.Pair, image: explore.PreparedImage, controls: Controls) -> dict[str, Any]:
        """Plain numbers of the current analysis (also what the ``analyze``/``metrics`` APIs return)."""

        def clean(value: float) -> float | None:
            return None if isinstance(value, float) and not math.isfinite(value) else value

        return {
            "image": {"key": image.key, "width": image.size[0], "height": image.size[1],
                      "original_size": list(image.original_size), "notes": image.notes},
            "quality": controls.quality, "k": controls.k,
            "models": {arch: {name: clean(v) for name, v in pair[arch].metrics().items()} for arch in explore.ARCHS},
        }  # fmt: skip

    def click(self, session: dict[str, Any] | None, index: Any, quality: int, k: int, block: str, head: str,
              part: str = "total") -> tuple[dict[str, Any], dict[str, Any]]:  # fmt: skip
        """A click on the inspector image at displayed pixel ``index = (x, y)``."""
        if not session or "image" not in session:
            raise ImageInputError("upload an image first")
        if not isinstance(index, (list, tuple)) or len(index) != 2:
            raise ValueError("click on the image to pick a point")
        scale = explore.display_scale(session["image"].size)
        session = {**session, "point": explore.clamp_point(session["image"].size, index[0] / scale, index[1] / scale),
                   "edge": -1}  # fmt: skip
        controls = Controls(quality, k, block, head, part)
        pair = self._pair(session, controls, None)
        return session, self.inspector_views(session, pair, controls)

    def choose_edge(self, session: dict[str, Any] | None, edge: int | None, quality: int, k: int, block: str,
                    head: str) -> tuple[dict[str, Any], dict[str, Any]]:  # fmt: skip
        if not session or "image" not in session:
            raise ImageInputError("upload an image first")
        session = {**session, "edge": int(edge) if edge is not None else 0}
        controls = Controls(quality, k, block, head)
        pair = self._pair(session, controls, None)
        views = self.inspector_views(session, pair, controls)
        return session, {"anatomy": views["anatomy"]}

    # -------------------------------------------------------------- on request
    def rate_distortion(self, session: dict[str, Any] | None, quality: int, k: int,
                        progress: Any = None) -> dict[str, Any]:  # fmt: skip
        """Compute every RD point of this image (both models q1..q4, JPEG/WebP/AVIF) and plot them."""
        if not session or "image" not in session:
            raise ImageInputError("upload an image first")
        points = self.explorer.rd_points(session["image"], int(k), progress=_progress_adapter(progress))
        return {"rd": explore.rd_figure(points, {"quality": int(quality)})}

    def k_sweep(self, session: dict[str, Any] | None, quality: int, progress: Any = None) -> dict[str, Any]:
        """GABIC at this quality for every valid k."""
        if not session or "image" not in session:
            raise ImageInputError("upload an image first")
        rows = self.explorer.k_sweep(session["image"], int(quality), progress=_progress_adapter(progress))
        return {"k_sweep": explore.k_sweep_figure(rows, self.explorer.trained_k())}

    def export(self, session: dict[str, Any] | None, quality: int, k: int, block: str, head: str,
               part: str = "total") -> dict[str, Any]:  # fmt: skip
        """Write the current analysis as one self-contained HTML file; returns its path."""
        views = self.render(session, quality, k, block, head, part)
        controls = Controls(quality, k, block, head, part)
        image: explore.PreparedImage = session["image"]  # type: ignore[index]
        pair = self._pair(session, controls, None)
        x, y = explore.clamp_point(image.size, *session["point"])  # type: ignore[index]
        settings = {"quality": f"q{controls.quality}", "k": controls.k, "trained k": pair.gabic.trained_k,
                    "block": controls.block, "head": "mean" if controls.head is None else controls.head + 1,
                    "bit map part": controls.part, "clicked point": f"({x:.0f}, {y:.0f})"}  # fmt: skip
        neighbours = views["neighbours"]
        figures = {"Bits per pixel: GABIC": views["bits_gabic"], "Bits per pixel: Zou2022": views["bits_zou"],
                   "Bit difference (red: GABIC spends more)": views["bits_diff"],
                   "Attention over the window": views["window_attention"], "All blocks × heads": views["all_heads"],
                   "Score anatomy": views["anatomy"], "Rate–distortion": views["rd"]}  # fmt: skip
        page = explore.html_report(
            pair, image, settings, figures, images={"Graph inspector": views["inspector"]},
            tables={"Neighbours of the clicked node": (neighbours["headers"], neighbours["data"])},
            weights=self.explorer.source.description(),
        )  # fmt: skip
        path = self.export_dir / f"gabic-report-{image.key}-q{controls.quality}-k{controls.k}.html"
        path.write_text(page, encoding="utf-8")
        return {"report": str(path)}

    def api_metrics(self, source: Any, quality: int, k: int | None = None) -> dict[str, Any]:
        """API: analyse ``source`` (a file path) at ``quality`` and return :meth:`summary`."""
        problem = self.explorer.source.problem()
        if problem:
            raise FileNotFoundError(problem)
        session = self.new_session(source)
        trained = self.explorer.trained_k()
        controls = Controls(quality, int(k) if k else trained, explore.BLOCKS[0], "mean")
        pair = self._pair(session, controls, None)
        return self.summary(pair, session["image"], controls)
