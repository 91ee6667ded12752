"""What the exploration app computes, as plain functions a notebook or a test can call.

:mod:`gabic.inspect` runs one image through one model. This module adds what an
interactive comparison of GABIC and Zou2022 needs on top of it:

- :class:`WeightsSource`: where the two models come from (the shipped weights
  found by :func:`gabic.zoo.load`, or a folder of the authors' checkpoints laid
  out as ``DIR/gabic/q{1..4}-model.pth.tar`` and ``DIR/zou2022/q{1..4}-model.pth.tar``).
- :func:`prepare_image`: the input policy of :func:`gabic.images.load_image` plus
  a downscale to :data:`DEFAULT_MAX_SIDE` and notes saying what was converted.
- :class:`Explorer`: analyses cached per (image, model, quality, k), computed
  once even when several sessions ask at the same time; RD points and the k sweep.
- Data for every view: bit maps on a shared scale (:func:`bit_maps`), the
  neighbour table (:func:`neighbour_rows`), score anatomy (:func:`score_anatomy`),
  the block × head grid (:func:`all_heads`).
- Plotly figures and the inspector overlay for those data, and
  :func:`html_report`, one self-contained HTML file (plotly.js inline, images as
  base64) that opens offline.

Coordinates are ``(x, y)`` pixels of the prepared (possibly downscaled) image.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw

from gabic import zoo
from gabic.codec.images import ImageInputError, load_image
from gabic.inspect import Analysis, BlockInspection, analyze
from gabic.models import BLOCK_NAMES, GABIC, ChannelwiseAttentionCodec

#: Longest side, in pixels, of the images the explorer works on; larger inputs are
#: downscaled (Lanczos) so an analysis stays interactive on a CPU.
DEFAULT_MAX_SIDE = 512
#: The two architectures compared, in display order, and their names in the UI.
ARCHS: tuple[str, str] = ("gabic", "zou2022")
DISPLAY_NAMES = {"gabic": "GABIC", "zou2022": "Zou2022"}
#: Shipped model used for each architecture when no checkpoint folder provides it.
SHIPPED_NAMES = {"gabic": "gabic-small", "zou2022": "zou2022-small"}
#: Where the authors' checkpoints are looked up inside a ``--checkpoints`` folder.
CHECKPOINT_PATTERN = "{arch}/q{quality}-model.pth.tar"
BLOCKS: tuple[str, ...] = tuple(BLOCK_NAMES)
CLASSIC_CODECS = ("jpeg", "webp", "avif")
#: Sample photos bundled with scikit-image (no download needed).
SAMPLES = ("astronaut", "coffee", "chelsea", "rocket")

Progress = Callable[[float, str], None]


def _no_progress(fraction: float, message: str) -> None:
    return None


# --------------------------------------------------------------------------- images
@dataclass
class PreparedImage:
    """An input image after the input policy.

    Attributes:
        image: 8-bit RGB PIL image the models see.
        key: content hash of ``image`` (cache key; same pixels, same key).
        original_size: ``(width, height)`` as read, after EXIF rotation.
        notes: human-readable conversions (grayscale, transparency, 16-bit, EXIF, resize).
    """

    image: Image.Image
    key: str
    original_size: tuple[int, int]
    notes: list[str] = field(default_factory=list)

    @property
    def size(self) -> tuple[int, int]:
        return self.image.size

    @property
    def resized(self) -> bool:
        return self.image.size != self.original_size

    def describe(self) -> str:
        width, height = self.size
        text = f"{width}×{height} px"
        if self.resized:
            text += f" (downscaled from {self.original_size[0]}×{self.original_size[1]})"
        return text


def image_key(image: Image.Image) -> str:
    """16 hex digits of SHA-256 over the size and RGB pixels of ``image``."""
    rgb = image.convert("RGB")
    digest = hashlib.sha256(f"{rgb.width}x{rgb.height}".encode())
    digest.update(rgb.tobytes())
    return digest.hexdigest()[:16]


def _conversion_notes(source: object) -> list[str]:
    """What :func:`load_image` will convert in ``source`` (mode, EXIF rotation), as notes."""
    try:
        if isinstance(source, Image.Image):
            opened = source
        elif isinstance(source, (bytes, bytearray)):
            opened = Image.open(io.BytesIO(source))
        elif isinstance(source, (str, Path)):
            opened = Image.open(source)
        else:
            return []
        mode = opened.mode
        orientation = opened.getexif().get(0x0112, 1) if hasattr(opened, "getexif") else 1
    except Exception:  # load_image reports unreadable input with a proper message
        return []
    notes = []
    if orientation not in (None, 1):
        notes.append(f"rotated as its EXIF orientation ({orientation}) says")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in opened.info):
        notes.append("transparency composited on white")
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        notes.append(f"{mode} samples scaled to 8 bits")
    if mode in ("L", "1", "I;16", "I;16B", "I;16L", "I", "F", "LA"):
        notes.append("grayscale converted to RGB")
    elif mode not in ("RGB", "RGBA"):
        notes.append(f"{mode} converted to RGB")
    return notes


def prepare_image(source: object, max_side: int | None = DEFAULT_MAX_SIDE) -> PreparedImage:
    """Read ``source`` (path, bytes, PIL image or array) under the project's input policy
    and downscale it so its longer side is at most ``max_side``.

    Raises:
        gabic.images.ImageInputError: not an image, damaged, empty or too large.
    """
    notes = _conversion_notes(source)
    full = load_image(source)
    image = load_image(full, max_side=max_side) if max_side else full
    if image.size != full.size:
        notes.append(f"downscaled to at most {max_side} px per side for interactive use")
    return PreparedImage(image=image, key=image_key(image), original_size=full.size, notes=notes)


def sample_image(name: str) -> Image.Image:
    """One of :data:`SAMPLES` from scikit-image as an RGB PIL image."""
    if name not in SAMPLES:
        raise KeyError(f"unknown sample {name!r}; choose from {SAMPLES}")
    from skimage import data

    return Image.fromarray(getattr(data, name)()).convert("RGB")


# -------------------------------------------------------------------------- weights
class WeightsSource:
    """Where GABIC and Zou2022 weights come from.

    With ``checkpoints`` set, an architecture whose folder
    ``checkpoints/{arch}/`` holds ``q{1..4}-model.pth.tar`` files is loaded from
    there (:func:`gabic.zoo.load_checkpoint`, paper configuration); otherwise
    from the shipped weights (:func:`gabic.zoo.load`).
    """

    def __init__(self, checkpoints: str | Path | None = None, device: str | torch.device | None = None):
        self.checkpoints = Path(checkpoints) if checkpoints else None
        self.device = torch.device(device) if device else zoo.default_device()
        self._models: dict[tuple[str, int], ChannelwiseAttentionCodec] = {}
        self._lock = threading.Lock()

    def checkpoint_path(self, arch: str, quality: int) -> Path | None:
        if self.checkpoints is None:
            return None
        return self.checkpoints / CHECKPOINT_PATTERN.format(arch=arch, quality=quality)

    def origin(self, arch: str) -> str:
        """``"checkpoints"`` when the folder holds this architecture, else ``"shipped"``."""
        if self.checkpoints is not None and any(
            self.checkpoint_path(arch, q).is_file()  # type: ignore[union-attr]
            for q in zoo.QUALITIES
        ):
            return "checkpoints"
        return "shipped"

    def qualities(self, arch: str) -> list[int]:
        """Qualities available for ``arch``, from its origin."""
        if self.origin(arch) == "checkpoints":
            return [q for q in zoo.QUALITIES if self.checkpoint_path(arch, q).is_file()]  # type: ignore[union-attr]
        return zoo.available(SHIPPED_NAMES[arch])

    def common_qualities(self) -> list[int]:
        """Qualities available for both architectures."""
        return sorted(set(self.qualities(ARCHS[0])) & set(self.qualities(ARCHS[1])))

    def problem(self) -> str | None:
        """Why the explorer cannot run (no usable weights), or ``None``."""
        if self.common_qualities():
            return None
        where = [f"shipped weights in {zoo.weights_dir()}"]
        if self.checkpoints is not None:
            where.insert(0, f"checkpoints in {self.checkpoints}/{{gabic,zou2022}}/q1..q4-model.pth.tar")
        missing = [DISPLAY_NAMES[a] for a in ARCHS if not self.qualities(a)]
        return (
            "No weights found for " + " and ".join(missing or ["a common quality of both models"])
            + " (looked for " + "; ".join(where) + "). Train or download them, set GABIC_WEIGHTS_DIR, "
            "or start the app with --checkpoints DIR."
        )  # fmt: skip

    def load(self, arch: str, quality: int) -> ChannelwiseAttentionCodec:
        """The eval-mode model of ``arch`` at ``quality`` (loaded once, then reused)."""
        with self._lock:
            if (arch, quality) not in self._models:
                if self.origin(arch) == "checkpoints":
                    model = zoo.load_checkpoint(self.checkpoint_path(arch, quality), arch, self.device)  # type: ignore[arg-type]
                    model.quality = quality  # type: ignore[attr-defined]
                else:
                    model = zoo.load(SHIPPED_NAMES[arch], quality, self.device)
                self._models[(arch, quality)] = model
            return self._models[(arch, quality)]

    def description(self) -> dict[str, str]:
        """One line per architecture saying which weights are in use."""
        lines = {}
        for arch in ARCHS:
            qualities = self.qualities(arch)
            listed = ", ".join(f"q{q}" for q in qualities) or "none"
            if self.origin(arch) == "checkpoints":
                where = f"authors' checkpoints (paper configuration) in {self.checkpoints / arch}"
            else:
                where = f"shipped {SHIPPED_NAMES[arch]} weights in {zoo.weights_dir()}"
                card = _card(SHIPPED_NAMES[arch], qualities)
                if card is not None and card.get("trained") is False:
                    where += " (UNTRAINED random weights: pictures will look like noise)"
            lines[arch] = f"{where}; qualities {listed}; device {self.device.type}"
        return lines

    def key(self) -> str:
        return f"{self.checkpoints}|{zoo.weights_dir()}|{self.device}"


def _card(name: str, qualities: list[int]) -> dict[str, Any] | None:
    if not qualities:
        return None
    path = zoo.shipped_path(name, qualities[0]).with_suffix(".json")
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


# ------------------------------------------------------------------------- explorer
@dataclass(frozen=True)
class Pair:
    """GABIC and Zou2022 analyses of one image at one quality."""

    gabic: Analysis
    zou2022: Analysis

    def __getitem__(self, arch: str) -> Analysis:
        return self.gabic if arch == "gabic" else self.zou2022


class Explorer:
    """Cached analyses of images by both models.

    Analyses are cached per ``(image key, arch, quality, k)`` in an LRU of
    ``max_entries`` (each holds the attention of all four blocks, a few MB for
    a 512 px image). Each model runs one analysis at a time (the recording
    hooks live on the shared model object); a second request for the same
    key waits for the first instead of computing it again.
    """

    def __init__(self, source: WeightsSource | None = None, max_entries: int = 32):
        self.source = source or WeightsSource()
        self.max_entries = max_entries
        self._cache: OrderedDict[tuple, Analysis] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._key_locks: dict[tuple, threading.Lock] = {}
        self._model_locks: dict[tuple[str, int], threading.Lock] = {}
        self._side_cache: OrderedDict[tuple, Any] = OrderedDict()

    # ---------------------------------------------------------------- analyses
    def trained_k(self) -> int | None:
        """The k GABIC's weights were trained with (from the first available quality)."""
        qualities = self.source.qualities("gabic")
        return self.source.load("gabic", qualities[0]).config.k if qualities else None

    def k_range(self) -> tuple[int, int]:
        """Valid k for GABIC: ``1 .. smallest window² − 1``."""
        qualities = self.source.qualities("gabic")
        if not qualities:
            return 1, 15
        windows = self.source.load("gabic", qualities[0]).config.windows
        return 1, min(w * w for w in windows) - 1

    def heads(self) -> int:
        qualities = self.source.common_qualities()
        return self.source.load("gabic", qualities[0]).config.heads if qualities else 8

    def _key(self, image: PreparedImage, arch: str, quality: int, k: int | None) -> tuple:
        return (self.source.key(), image.key, arch, quality, k if arch == "gabic" else None)

    def _effective_k(self, model: ChannelwiseAttentionCodec, k: int | None) -> int | None:
        if not isinstance(model, GABIC):
            return None
        return int(k) if k is not None else model.config.k

    def cached(self, image: PreparedImage, arch: str, quality: int, k: int | None = None,
               inspect_attention: bool = True) -> Analysis | None:  # fmt: skip
        """The cached analysis, or ``None`` (never computes)."""
        if arch == "gabic" and k is None:
            k = self.trained_k()
        with self._cache_lock:
            found = self._cache.get(self._key(image, arch, quality, k))
        if found is not None and inspect_attention and not found.blocks:
            return None
        return found

    def analysis(self, image: PreparedImage, arch: str, quality: int, k: int | None = None,
                 inspect_attention: bool = True) -> Analysis:  # fmt: skip
        """Analysis of ``image`` by ``arch`` at ``quality`` (GABIC with ``k`` neighbours,
        default the trained k), from the cache or computed now."""
        if arch not in ARCHS:
            raise ValueError(f"unknown architecture {arch!r}")
        if quality not in self.source.qualities(arch):
            raise ValueError(f"{DISPLAY_NAMES[arch]} has no weights for quality q{quality}")
        model = self.source.load(arch, quality)
        k = self._effective_k(model, k)
        key = self._key(image, arch, quality, k)
        with self._cache_lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
            model_lock = self._model_locks.setdefault((arch, quality), threading.Lock())
        with key_lock:
            found = self.cached(image, arch, quality, k, inspect_attention)
            if found is not None:
                with self._cache_lock:
                    self._cache.move_to_end(key)
                return found
            with model_lock, torch.inference_mode():
                result = analyze(model, image.image, k=k, inspect_attention=inspect_attention)
            with self._cache_lock:
                self._cache[key] = result
                self._cache.move_to_end(key)
                while len(self._cache) > self.max_entries:
                    old, _ = self._cache.popitem(last=False)
                    self._key_locks.pop(old, None)
            return result

    def pair(self, image: PreparedImage, quality: int, k: int | None = None,
             progress: Progress | None = None) -> Pair:  # fmt: skip
        """Both models on ``image`` at ``quality``."""
        progress = progress or _no_progress
        progress(0.0, f"GABIC q{quality}")
        gabic = self.analysis(image, "gabic", quality, k)
        progress(0.5, f"Zou2022 q{quality}")
        zou = self.analysis(image, "zou2022", quality)
        progress(1.0, "done")
        return Pair(gabic, zou)

    def is_pair_cached(self, image: PreparedImage, quality: int, k: int | None = None) -> bool:
        return (self.cached(image, "gabic", quality, k) is not None
                and self.cached(image, "zou2022", quality) is not None)  # fmt: skip

    # ------------------------------------------------------------- RD and k
    def rd_points(self, image: PreparedImage, k: int | None = None, classic: bool = True,
                  progress: Progress | None = None) -> list[dict[str, Any]]:  # fmt: skip
        """This image's rate–distortion points: both models at every common quality
        (GABIC with ``k``) and, when :mod:`gabic.classic` is available, JPEG/WebP/AVIF.

        Returns:
            dicts with ``method``, ``quality``, ``bpp``, ``psnr``, ``ms_ssim``.
        """
        progress = progress or _no_progress
        qualities = self.source.common_qualities()
        steps = 2 * len(qualities) + (len(CLASSIC_CODECS) if classic else 0)
        done = 0
        points = []
        for arch in ARCHS:
            for quality in qualities:
                progress(done / steps, f"{DISPLAY_NAMES[arch]} q{quality}")
                a = self.analysis(image, arch, quality, k if arch == "gabic" else None)
                points.append({"method": DISPLAY_NAMES[arch], "quality": quality, "bpp": a.bpp,
                               "psnr": a.psnr, "ms_ssim": a.ms_ssim})  # fmt: skip
                done += 1
        if classic:
            for codec_name in CLASSIC_CODECS:
                progress(done / steps, codec_name.upper())
                points.extend(self.classic_points(image, codec_name))
                done += 1
        progress(1.0, "done")
        return points

    def classic_points(self, image: PreparedImage, codec_name: str) -> list[dict[str, Any]]:
        """JPEG/WebP/AVIF RD points of ``image`` (empty if :mod:`gabic.classic` or the codec is missing)."""
        key = ("classic", image.key, codec_name)
        with self._cache_lock:
            if key in self._side_cache:
                return self._side_cache[key]
        try:
            from . import classic
        except ImportError:
            return []
        try:
            curve = classic.classic_rd_curve(image.image, codec_name)
        except Exception:  # a codec missing from this Pillow build: leave it out of the plot
            return []
        points = [
            {"method": codec_name.upper(), "quality": int(p.get("quality", 0) or 0), "bpp": float(p["bpp"]),
             "psnr": float(p["psnr"]), "ms_ssim": float(p.get("ms_ssim", math.nan))}
            for p in curve
        ]  # fmt: skip
        with self._cache_lock:
            self._side_cache[key] = points
            while len(self._side_cache) > 4 * self.max_entries:
                self._side_cache.popitem(last=False)
        return points

    def known_rd_points(self, image: PreparedImage, k: int | None = None) -> list[dict[str, Any]]:
        """The RD points of :meth:`rd_points` that are already computed (never computes)."""
        points = []
        for arch in ARCHS:
            for quality in self.source.common_qualities():
                a = self.cached(image, arch, quality, k if arch == "gabic" else None, inspect_attention=False)
                if a is not None:
                    points.append({"method": DISPLAY_NAMES[arch], "quality": quality, "bpp": a.bpp,
                                   "psnr": a.psnr, "ms_ssim": a.ms_ssim})  # fmt: skip
        with self._cache_lock:
            for codec_name in CLASSIC_CODECS:
                points.extend(self._side_cache.get(("classic", image.key, codec_name), []))
        return points

    def k_sweep(self, image: PreparedImage, quality: int, ks: Sequence[int] | None = None,
                progress: Progress | None = None) -> list[dict[str, Any]]:  # fmt: skip
        """GABIC at ``quality`` with each k in ``ks`` (default all valid k): bpp, PSNR, MS-SSIM.
        Attention is not recorded (faster); values other than the trained k are out of distribution."""
        progress = progress or _no_progress
        low, high = self.k_range()
        ks = list(ks) if ks is not None else list(range(low, high + 1))
        rows = []
        for i, k in enumerate(ks):
            progress(i / len(ks), f"k = {k}")
            a = self.analysis(image, "gabic", quality, k, inspect_attention=False)
            rows.append({"k": k, "bpp": a.bpp, "bpp_estimated": a.bpp_estimated, "psnr": a.psnr,
                         "ms_ssim": a.ms_ssim})  # fmt: skip
        progress(1.0, "done")
        return rows


# ------------------------------------------------------------------------ view data
def metrics_rows(pair: Pair) -> list[list[Any]]:
    """Table rows ``[model, real bpp, estimated bpp, PSNR dB, MS-SSIM, encode ms, decode ms]``."""
    rows = []
    for arch in ARCHS:
        a = pair[arch]
        name = DISPLAY_NAMES[arch] + (f" (k={a.k})" if a.k is not None else "")
        rows.append([name, round(a.bpp, 4), round(a.bpp_estimated, 4), round(a.psnr, 2),
                     None if math.isnan(a.ms_ssim) else round(a.ms_ssim, 4),
                     round(a.encode_ms, 1), round(a.decode_ms, 1)])  # fmt: skip
    return rows


METRIC_HEADERS = ["model", "bpp (real)", "bpp (estimated)", "PSNR dB", "MS-SSIM", "encode ms", "decode ms"]


@dataclass
class BitMaps:
    """Bits per pixel of both models on one scale, and their difference.

    Attributes:
        gabic, zou2022: ``(H, W)`` bits per pixel; ``difference``: GABIC − Zou2022.
        vmax: shared upper end of the colour scale of the two maps.
        dmax: symmetric limit of the difference scale.
        part: ``"total"``, ``"y"`` or ``"z"``.
        totals: bits (estimated) spent by each model and their difference.
    """

    gabic: np.ndarray
    zou2022: np.ndarray
    difference: np.ndarray
    vmax: float
    dmax: float
    part: str
    totals: dict[str, float]


def _part_map(a: Analysis, part: str) -> np.ndarray:
    if part == "y":
        return a.y_bits_per_pixel_map
    if part == "z":
        return a.z_bits_per_pixel_map
    if part == "total":
        return a.bits_per_pixel_map
    raise ValueError(f"part must be 'total', 'y' or 'z', got {part!r}")


def bit_maps(pair: Pair, part: str = "total") -> BitMaps:
    """Per-pixel bits of both models (``part`` = total, y or z) and GABIC − Zou2022."""
    gabic, zou = _part_map(pair.gabic, part), _part_map(pair.zou2022, part)
    if gabic.shape != zou.shape:
        raise ValueError("the two analyses are of images of different sizes")
    difference = gabic - zou
    vmax = float(max(np.percentile(gabic, 99.5), np.percentile(zou, 99.5), 1e-6))
    dmax = float(max(np.percentile(np.abs(difference), 99.5), 1e-6))
    totals = {"gabic": float(gabic.sum(dtype=np.float64)), "zou2022": float(zou.sum(dtype=np.float64))}
    totals["difference"] = totals["gabic"] - totals["zou2022"]
    totals["more_pixels"] = float((difference > 0).mean())
    return BitMaps(gabic, zou, difference, vmax, dmax, part, totals)


def bit_summary(maps: BitMaps) -> str:
    """One sentence (Markdown) with the totals of :func:`bit_maps`."""
    t = maps.totals
    sign = "more" if t["difference"] > 0 else "fewer"
    part = {"total": "y + z", "y": "y only", "z": "z only"}[maps.part]
    return (f"**{part}** — GABIC {t['gabic']:,.0f} bits, Zou2022 {t['zou2022']:,.0f} bits: GABIC spends "
            f"{abs(t['difference']):,.0f} bits {sign} ({t['difference'] / max(t['zou2022'], 1e-9):+.1%}); "
            f"it spends more on {t['more_pixels']:.0%} of the pixels (red).")  # fmt: skip


def clamp_point(image_size: tuple[int, int], x: float, y: float) -> tuple[float, float]:
    """Clamp ``(x, y)`` into the image."""
    width, height = image_size
    return min(max(float(x), 0.0), width - 1.0), min(max(float(y), 0.0), height - 1.0)


def node_summary(block: BlockInspection, x: float, y: float) -> dict[str, Any]:
    """Window, node, grid cell and pixel centre of the node under ``(x, y)``."""
    window, node = block.node_at(x, y)
    cell = block.node_to_cell(window, node)
    return {"block": block.name, "window": window, "node": node, "cell": cell,
            "centre": block.cell_centre(*cell)}  # fmt: skip


def neighbour_rows(block: BlockInspection, x: float, y: float) -> list[dict[str, Any]]:
    """One row per graph neighbour of the node under ``(x, y)``, strongest mean α first:
    ``rank``, ``slot`` (edge index), ``x``, ``y`` (pixel centre), ``offset`` (dr, dc),
    ``feature_distance``, ``edge_attribute``, ``alpha_mean``, ``alpha`` (per head)."""
    rows = []
    for slot, edge in enumerate(block.neighbours_of(x, y)):
        rows.append({"slot": slot, "x": edge["centre"][0], "y": edge["centre"][1],
                     "offset": tuple(edge["offset"]), "feature_distance": edge["feature_distance"],
                     "edge_attribute": edge["edge_attribute"], "alpha": edge["alpha"],
                     "alpha_mean": float(np.mean(edge["alpha"]))})  # fmt: skip
    rows.sort(key=lambda r: -r["alpha_mean"])
    for rank, row in enumerate(rows, 1):
        row["rank"] = rank
    return rows


def neighbour_table(rows: list[dict[str, Any]], heads: int) -> tuple[list[str], list[list[Any]]]:
    """Headers and values of the neighbour table for display."""
    headers = ["#", "edge", "x", "y", "offset (dr, dc)", "feature dist.", "α mean"]
    headers += [f"α h{h + 1}" for h in range(heads)]
    values = [
        [r["rank"], r["slot"], round(r["x"], 1), round(r["y"], 1), f"{r['offset'][0]:+d}, {r['offset'][1]:+d}",
         round(r["feature_distance"], 4), round(r["alpha_mean"], 4)] + [round(a, 4) for a in r["alpha"]]
        for r in rows
    ]  # fmt: skip
    return headers, values


def score_anatomy(block: BlockInspection, x: float, y: float, slot: int) -> list[dict[str, float]]:
    """How the score of edge ``slot`` of the node under ``(x, y)`` splits, per head:
    ``qk`` (query·key part), ``edge`` (edge-attribute part), ``score`` (their sum) and
    ``alpha`` (after the softmax over the node's k edges)."""
    edges = block.neighbours_of(x, y)
    if not 0 <= slot < len(edges):
        raise ValueError(f"edge {slot} does not exist (the node has {len(edges)} edges)")
    edge = edges[slot]
    return [{"head": h + 1, "qk": qk, "edge": e, "score": qk + e, "alpha": a}
            for h, (qk, e, a) in enumerate(zip(edge["qk_score"], edge["edge_score"], edge["alpha"], strict=False))]  # fmt: skip


def all_heads(analysis: Analysis, x: float, y: float) -> dict[str, np.ndarray]:
    """For the node under ``(x, y)`` in every block: ``(heads + 1, window, window)`` attention
    over its window, one map per head and the mean last."""
    grid = {}
    for name, block in analysis.blocks.items():
        maps = [block.attention_map(x, y, head) for head in range(block.heads)]
        maps.append(block.attention_map(x, y, None))
        grid[name] = np.stack(maps)
    return grid


def head_index(head: str | int | None) -> int | None:
    """UI head choice (``"mean"`` or ``"1".."8"``) -> 0-based head or ``None`` for the mean."""
    if head is None or head == "mean":
        return None
    return int(head) - 1


# -------------------------------------------------------------------------- figures
def _plotly():
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    return go, make_subplots


def _pooled(array: np.ndarray, factor: int) -> np.ndarray:
    """Mean-pool ``(H, W)`` by ``factor`` (edges padded by replication)."""
    if factor <= 1:
        return array
    h, w = array.shape
    ph, pw = -h % factor, -w % factor
    padded = np.pad(array, ((0, ph), (0, pw)), mode="edge")
    return padded.reshape(padded.shape[0] // factor, factor, padded.shape[1] // factor, factor).mean((1, 3))


def bits_figure(maps: BitMaps, which: str, max_cells: int = 160):
    """Heatmap of one bit map: ``which`` = ``"gabic"``, ``"zou2022"`` (shared scale 0..vmax)
    or ``"difference"`` (red: GABIC spends more, blue: less). Pooled to ≤ ``max_cells`` per side."""
    go, _ = _plotly()
    array = getattr(maps, which)
    factor = max(1, math.ceil(max(array.shape) / max_cells))
    pooled = _pooled(array, factor)
    xs = (np.arange(pooled.shape[1]) + 0.5) * factor
    ys = (np.arange(pooled.shape[0]) + 0.5) * factor
    if which == "difference":
        colour = dict(colorscale="RdBu_r", zmin=-maps.dmax, zmax=maps.dmax, zmid=0)
        title = "GABIC − Zou2022 (bits/pixel)"
    else:
        colour = dict(colorscale="Viridis", zmin=0, zmax=maps.vmax)
        title = f"{DISPLAY_NAMES[which]}: {maps.totals[which]:,.0f} bits"
    fig = go.Figure(go.Heatmap(z=pooled, x=xs, y=ys, colorbar=dict(title="bits/px", thickness=12),
                               hovertemplate="x %{x:.0f}, y %{y:.0f}: %{z:.3f} bits/px<extra></extra>",
                               **colour))  # fmt: skip
    _image_axes(fig, array.shape[1], array.shape[0])
    fig.update_layout(
        title=dict(text=title, font=dict(size=13)), margin=dict(l=10, r=10, t=36, b=10), height=320
    )
    return fig


def _image_axes(
    fig: Any, width: float, height: float, row: int | None = None, col: int | None = None
) -> None:
    kwargs = {} if row is None else {"row": row, "col": col}
    fig.update_xaxes(
        range=[0, width], showticklabels=False, showgrid=False, zeroline=False, constrain="domain", **kwargs
    )
    fig.update_yaxes(range=[height, 0], showticklabels=False, showgrid=False, zeroline=False,
                     scaleanchor="x" if row is None else None, **kwargs)  # fmt: skip


def window_attention_figure(pair: Pair, block_name: str, x: float, y: float, head: int | None):
    """Two heatmaps over the clicked node's window: GABIC's k weights (zero elsewhere)
    and Zou2022's full window attention of the same pixel (its window may be shifted)."""
    go, make_subplots = _plotly()
    fig = make_subplots(rows=1, cols=2, subplot_titles=("GABIC: k neighbours", "Zou2022: whole window"),
                        horizontal_spacing=0.12)  # fmt: skip
    for col, arch in enumerate(ARCHS, 1):
        block = pair[arch].blocks[block_name]
        weights = block.attention_map(x, y, head)
        _, node = block.node_at(x, y)
        fig.add_trace(go.Heatmap(z=weights, colorscale="Magma", zmin=0, coloraxis="coloraxis",
                                 hovertemplate="row %{y}, col %{x}: α %{z:.4f}<extra></extra>"), row=1, col=col)  # fmt: skip
        fig.add_trace(go.Scatter(x=[node % block.window], y=[node // block.window], mode="markers",
                                 marker=dict(symbol="x", size=12, color="#00e5ff"), name="clicked node",
                                 showlegend=col == 1), row=1, col=col)  # fmt: skip
        fig.update_yaxes(autorange="reversed", scaleanchor=f"x{'' if col == 1 else col}", row=1, col=col)
    head_text = "mean of heads" if head is None else f"head {head + 1}"
    fig.update_layout(coloraxis=dict(colorscale="Magma", cmin=0, colorbar=dict(title="α", thickness=12)),
                      title=dict(text=f"{block_name}, {head_text}", font=dict(size=13)), height=330,
                      margin=dict(l=10, r=10, t=60, b=10), legend=dict(orientation="h", y=-0.05))  # fmt: skip
    return fig


def all_heads_figure(grid: dict[str, np.ndarray], title: str = "GABIC"):
    """Grid of small heatmaps: one row per block, one column per head (mean last)."""
    go, make_subplots = _plotly()
    names = list(grid)
    columns = next(iter(grid.values())).shape[0] if grid else 1
    titles = [f"h{c + 1}" if c < columns - 1 else "mean" for c in range(columns)] + [""] * (
        columns * (len(names) - 1)
    )
    fig = make_subplots(rows=max(1, len(names)), cols=columns, subplot_titles=titles,
                        horizontal_spacing=0.01, vertical_spacing=0.04)  # fmt: skip
    for r, name in enumerate(names, 1):
        for c in range(columns):
            fig.add_trace(go.Heatmap(z=grid[name][c], coloraxis="coloraxis",
                                     hovertemplate=f"{name} {titles[c]}: α %{{z:.3f}}<extra></extra>"),
                          row=r, col=c + 1)  # fmt: skip
            fig.update_xaxes(showticklabels=False, row=r, col=c + 1)
            fig.update_yaxes(showticklabels=False, autorange="reversed", row=r, col=c + 1,
                             title=dict(text=name, font=dict(size=10)) if c == 0 else None)  # fmt: skip
    fig.update_layout(coloraxis=dict(colorscale="Magma", cmin=0, colorbar=dict(title="α", thickness=10)),
                      title=dict(text=f"{title}: every block × head for the clicked point", font=dict(size=13)),
                      height=110 * max(1, len(names)) + 80, margin=dict(l=40, r=10, t=70, b=10))  # fmt: skip
    return fig


def anatomy_figure(rows: list[dict[str, float]], edge_label: str = ""):
    """Per head: the q·k part and the edge-attribute part of one edge's score (stacked bars),
    with the resulting α written above."""
    go, _ = _plotly()
    heads = [f"h{r['head']}" for r in rows]
    fig = go.Figure()
    fig.add_bar(x=heads, y=[r["qk"] for r in rows], name="q·k part", marker_color="#4c78a8")
    fig.add_bar(x=heads, y=[r["edge"] for r in rows], name="edge-attribute part", marker_color="#f58518")
    fig.add_scatter(x=heads, y=[r["score"] for r in rows], mode="markers+text", name="score (sum)",
                    text=[f"α={r['alpha']:.2f}" for r in rows], textposition="top center",
                    marker=dict(color="black", symbol="diamond"))  # fmt: skip
    fig.update_layout(barmode="relative", height=320, margin=dict(l=10, r=10, t=40, b=10),
                      title=dict(text=f"Score anatomy {edge_label}", font=dict(size=13)),
                      legend=dict(orientation="h", y=-0.15))  # fmt: skip
    return fig


RD_COLOURS = {
    "GABIC": "#d62728",
    "Zou2022": "#1f77b4",
    "JPEG": "#7f7f7f",
    "WEBP": "#2ca02c",
    "AVIF": "#9467bd",
}


def rd_figure(points: list[dict[str, Any]], current: dict[str, Any] | None = None, metric: str = "psnr"):
    """Rate–distortion curves of this image (one line per method); ``current`` =
    ``{"quality": q}`` rings the two models' points at that quality."""
    go, _ = _plotly()
    fig = go.Figure()
    methods = list(dict.fromkeys(p["method"] for p in points))
    for method in methods:
        pts = sorted((p for p in points if p["method"] == method), key=lambda p: p["bpp"])
        fig.add_scatter(x=[p["bpp"] for p in pts], y=[p[metric] for p in pts], mode="lines+markers", name=method,
                        line=dict(color=RD_COLOURS.get(method), dash="solid" if method in ("GABIC", "Zou2022") else "dot"),
                        text=[f"q{p['quality']}" for p in pts],
                        hovertemplate=f"{method} %{{text}}: %{{x:.3f}} bpp, %{{y:.2f}}<extra></extra>")  # fmt: skip
    if current is not None:
        now = [
            p
            for p in points
            if p["method"] in ("GABIC", "Zou2022") and p["quality"] == current.get("quality")
        ]
        fig.add_scatter(x=[p["bpp"] for p in now], y=[p[metric] for p in now], mode="markers", name="current",
                        marker=dict(size=16, color="rgba(0,0,0,0)", line=dict(color="black", width=2)))  # fmt: skip
    fig.update_layout(xaxis_title="bits per pixel", yaxis_title="PSNR (dB)" if metric == "psnr" else "MS-SSIM",
                      height=380, margin=dict(l=10, r=10, t=40, b=10),
                      title=dict(text="Rate–distortion on this image", font=dict(size=13)))  # fmt: skip
    return fig


def k_sweep_figure(rows: list[dict[str, Any]], trained_k: int | None):
    """bpp and PSNR of GABIC against k (the trained k marked)."""
    go, make_subplots = _plotly()
    fig = make_subplots(rows=1, cols=2, subplot_titles=("bits per pixel", "PSNR (dB)"))
    ks = [r["k"] for r in rows]
    fig.add_scatter(x=ks, y=[r["bpp"] for r in rows], mode="lines+markers", name="bpp", row=1, col=1)
    fig.add_scatter(x=ks, y=[r["psnr"] for r in rows], mode="lines+markers", name="PSNR", row=1, col=2)
    if trained_k is not None:
        for col in (1, 2):
            fig.add_vline(x=trained_k, line_dash="dash", line_color="grey", row=1, col=col)
        fig.add_annotation(x=trained_k, y=1.0, yref="paper", text=f"trained k={trained_k}", showarrow=False,
                           xref="x", yanchor="bottom")  # fmt: skip
    fig.update_xaxes(title="k")
    fig.update_layout(height=330, showlegend=False, margin=dict(l=10, r=10, t=50, b=10),
                      title=dict(text="GABIC k sweep (k ≠ trained k is out of distribution)", font=dict(size=13)))  # fmt: skip
    return fig


def display_scale(image_size: tuple[int, int], target: int = 512) -> int:
    """Integer upscaling (1..4) that makes the inspector image at least ``target`` px on its long
    side (so it fills its panel: browsers only scale it down), pixels kept sharp."""
    return int(min(4, max(1, math.ceil(target / max(image_size)))))


def _rgb(colour: str) -> tuple[int, int, int]:
    inner = colour[colour.index("(") + 1 : colour.index(")")]
    r, g, b = (int(round(float(v))) for v in inner.split(",")[:3])
    return r, g, b


def inspector_image(analysis: Analysis, block_name: str, x: float, y: float, head: int | None,
                    scale: int = 1) -> Image.Image:  # fmt: skip
    """The image (upscaled ``scale`` times) with the block's window grid, the clicked
    node's window highlighted, the node and its k neighbours, edges coloured (Viridis)
    and widened by α of ``head`` (or the mean)."""
    from plotly.colors import sample_colorscale

    block = analysis.blocks[block_name]
    base = analysis.original.convert("RGB")
    canvas = base.resize((base.width * scale, base.height * scale), Image.Resampling.NEAREST)
    canvas = Image.blend(canvas, Image.new("RGB", canvas.size, (0, 0, 0)), 0.25)
    draw = ImageDraw.Draw(canvas, "RGBA")
    size_px = block.window * block.stride
    for col in range(block.windows_per_row + 1):
        gx = (col * size_px + block.shift * block.stride - block.pad_left) * scale
        if 0 <= gx <= canvas.width:
            draw.line([(gx, 0), (gx, canvas.height)], fill=(255, 255, 255, 90), width=1)
    for row in range(block.padded_grid_height // block.window + 1):
        gy = (row * size_px + block.shift * block.stride - block.pad_top) * scale
        if 0 <= gy <= canvas.height:
            draw.line([(0, gy), (canvas.width, gy)], fill=(255, 255, 255, 90), width=1)
    window, node = block.node_at(x, y)
    for x0, y0, x1, y1 in block.window_outline(window):
        draw.rectangle([x0 * scale, y0 * scale, x1 * scale - 1, y1 * scale - 1], outline=(255, 215, 0, 255),
                       width=max(2, scale))  # fmt: skip
    cx, cy = block.cell_centre(*block.node_to_cell(window, node))
    radius = max(3, scale * 2)
    if block.kind == "graph":
        edges = block.neighbours_of(x, y)
        weights = [float(np.mean(e["alpha"])) if head is None else e["alpha"][head] for e in edges]
        top = max(max(weights), 1e-9)
        colours = sample_colorscale("Viridis", [w / top for w in weights])
        for edge, weight, colour in sorted(zip(edges, weights, colours, strict=False), key=lambda t: t[1]):
            ex, ey = edge["centre"]
            width = max(1, round((1 + 5 * weight / top) * scale / 2 + 0.5))
            draw.line(
                [(cx * scale, cy * scale), (ex * scale, ey * scale)], fill=(*_rgb(colour), 255), width=width
            )
            draw.ellipse([ex * scale - radius, ey * scale - radius, ex * scale + radius, ey * scale + radius],
                         fill=(*_rgb(colour), 255), outline=(0, 0, 0, 255))  # fmt: skip
    r2 = radius + 2
    draw.ellipse([cx * scale - r2, cy * scale - r2, cx * scale + r2, cy * scale + r2], fill=(255, 40, 40, 255),
                 outline=(255, 255, 255, 255), width=2)  # fmt: skip
    return canvas


# ---------------------------------------------------------------------------- report
def _image_data_uri(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def html_report(pair: Pair, image: PreparedImage, settings: dict[str, Any], figures: dict[str, Any],
                images: dict[str, Image.Image] | None = None, tables: dict[str, tuple[list[str], list[list[Any]]]] | None = None,
                weights: dict[str, str] | None = None) -> str:  # fmt: skip
    """One self-contained HTML page (no network needed): settings, metrics, images as
    base64 PNG, Plotly figures with plotly.js inlined once.

    Args:
        pair: the two analyses shown.
        image: the prepared input.
        settings: what the user chose (quality, k, block, head, point...).
        figures: title -> Plotly figure.
        images: title -> PIL image (the original and reconstructions are always included).
        tables: title -> (headers, rows).
        weights: which weights were used (see :meth:`WeightsSource.description`).
    """
    from plotly.offline import get_plotlyjs

    esc = html.escape
    all_images = {"Original": image.image, "GABIC reconstruction": pair.gabic.reconstruction,
                  "Zou2022 reconstruction": pair.zou2022.reconstruction, **(images or {})}  # fmt: skip
    all_tables = {"Metrics": (METRIC_HEADERS, metrics_rows(pair)), **(tables or {})}
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>GABIC explorer report</title>",
        "<style>body{font-family:sans-serif;max-width:1200px;margin:auto;padding:1em}"
        "table{border-collapse:collapse;margin:0.5em 0}td,th{border:1px solid #ccc;padding:2px 6px;font-size:13px}"
        ".imgs{display:flex;flex-wrap:wrap;gap:12px}.imgs figure{margin:0}.imgs img{max-width:380px}</style>",
        f"<script type='text/javascript'>{get_plotlyjs()}</script></head><body>",
        "<h1>GABIC vs Zou2022 on one image</h1>",
        f"<p>Image {esc(image.describe())}, key <code>{esc(image.key)}</code>; generated {esc(time.strftime('%Y-%m-%d %H:%M'))}."
        + "".join(f"<br>{esc(n)}" for n in image.notes) + "</p>",
        "<h2>Settings</h2><ul>" + "".join(f"<li>{esc(str(k))}: {esc(str(v))}</li>" for k, v in settings.items()) + "</ul>",
    ]  # fmt: skip
    if weights:
        parts.append("<h2>Weights</h2><ul>" + "".join(
            f"<li>{esc(DISPLAY_NAMES.get(a, a))}: {esc(w)}</li>" for a, w in weights.items()) + "</ul>")  # fmt: skip
    for title, (headers, rows) in all_tables.items():
        parts.append(
            f"<h2>{esc(title)}</h2><table><tr>"
            + "".join(f"<th>{esc(str(h))}</th>" for h in headers)
            + "</tr>"
        )
        parts.extend("<tr>" + "".join(f"<td>{esc(str(v))}</td>" for v in row) + "</tr>" for row in rows)
        parts.append("</table>")
    parts.append("<h2>Images</h2><div class='imgs'>")
    for title, picture in all_images.items():
        parts.append(f"<figure><img src='{_image_data_uri(picture)}' alt='{esc(title)}'>"
                     f"<figcaption>{esc(title)}</figcaption></figure>")  # fmt: skip
    parts.append("</div>")
    for title, fig in figures.items():
        if fig is None:
            continue
        parts.append(f"<h2>{esc(title)}</h2>")
        parts.append(fig.to_html(full_html=False, include_plotlyjs=False))
    parts.append("</body></html>")
    return "\n".join(parts)


__all__ = [
    "ARCHS",
    "BLOCKS",
    "CHECKPOINT_PATTERN",
    "DEFAULT_MAX_SIDE",
    "METRIC_HEADERS",
    "SAMPLES",
    "BitMaps",
    "Explorer",
    "ImageInputError",
    "Pair",
    "PreparedImage",
    "WeightsSource",
    "all_heads",
    "all_heads_figure",
    "anatomy_figure",
    "bit_maps",
    "bit_summary",
    "bits_figure",
    "clamp_point",
    "display_scale",
    "head_index",
    "html_report",
    "image_key",
    "inspector_image",
    "k_sweep_figure",
    "metrics_rows",
    "neighbour_rows",
    "neighbour_table",
    "node_summary",
    "prepare_image",
    "rd_figure",
    "sample_image",
    "score_anatomy",
    "window_attention_figure",
]
