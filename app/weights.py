"""Where the app's two models come from, and a pool that lends each analysis a model of its own.

The shipped weights are found by :mod:`gabic.zoo`: the variable-rate families (one file per
architecture, any quality in 1..4) when both are present, else the one-rate families (four
files each); ``family=`` picks one kind explicitly. With ``--checkpoints DIR`` an architecture
whose folder ``DIR/{arch}/`` holds the authors' ``q{1..4}-model.pth.tar`` files is loaded from
there instead (paper configuration).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from gabic import codec, zoo
from gabic.models import ChannelwiseAttentionCodec, ModelConfig

#: The two architectures compared, in display order, and their names in the UI.
ARCHS: tuple[str, str] = ("gabic", "zou2022")
DISPLAY_NAMES = {"gabic": "GABIC", "zou2022": "Zou2022"}
#: Shipped model used for each architecture when no checkpoint folder provides it (one-rate kind).
SHIPPED_NAMES = dict(zoo.ONE_RATE_FAMILIES)
#: Which shipped families to show: variable-rate when both files exist, or one kind.
FAMILY_CHOICES = ("auto", "variable-rate", "one-rate")
#: Most idle models kept (a variable-rate family has one pool per quality shown).
MAX_IDLE_MODELS = 12
#: Where the authors' checkpoints are looked up inside a ``--checkpoints`` folder.
CHECKPOINT_PATTERN = "{arch}/q{quality}-model.pth.tar"


class WeightsSource:
    """Where GABIC and Zou2022 weights come from, and the models loaded from them.

    :meth:`borrow` lends a model for the length of one analysis and never to two analyses at
    once, so concurrent analyses share nothing and need no lock (:func:`gabic.zoo.load` and
    :func:`gabic.zoo.load_checkpoint` build an independent model per call). Returned models
    are reused: there are at most as many per (architecture, quality) as analyses that ever
    ran at the same time.
    """

    def __init__(self, checkpoints: str | Path | None = None, device: str | torch.device | None = None,
                 family: str = "auto"):  # fmt: skip
        if family not in FAMILY_CHOICES:
            raise ValueError(f"family must be one of {FAMILY_CHOICES}, got {family!r}")
        self.checkpoints = Path(checkpoints) if checkpoints else None
        self.device = torch.device(device) if device else zoo.default_device()
        self.family = family
        self._idle: dict[tuple[str, str, int], list[ChannelwiseAttentionCodec]] = {}
        self._configs: dict[tuple[str, str, int], ModelConfig] = {}
        self._lock = threading.Lock()

    def checkpoint_path(self, arch: str, quality: int) -> Path | None:
        if self.checkpoints is None:
            return None
        return self.checkpoints / CHECKPOINT_PATTERN.format(arch=arch, quality=quality)

    def _checkpoint_file(self, arch: str, quality: int) -> Path | None:
        path = self.checkpoint_path(arch, quality)
        return path if path is not None and path.is_file() else None

    def shipped_name(self, arch: str) -> str:
        """The shipped family shown for ``arch`` (see :data:`FAMILY_CHOICES`)."""
        variable = zoo.VARIABLE_RATE_FAMILIES
        if self.family == "variable-rate" or (
            self.family == "auto" and all(zoo.is_variable_rate(variable[a]) for a in ARCHS)
        ):
            return variable[arch]
        return SHIPPED_NAMES[arch]

    def variable_rate(self, arch: str | None = None) -> bool:
        """True when ``arch`` (default: both) comes from a variable-rate file: quality is continuous."""
        archs = ARCHS if arch is None else (arch,)
        return all(self.origin(a) == "shipped" and zoo.is_variable_rate(self.shipped_name(a)) for a in archs)

    def check_quality(self, arch: str, quality: float) -> float | int:
        """``quality`` as the model of ``arch`` takes it: rounded to hundredths in 1..4 for a
        variable-rate file, else one of :meth:`qualities` (``ValueError`` otherwise)."""
        if self.variable_rate(arch):
            value = round(float(quality) * 100) / 100
            if not zoo.QUALITIES[0] <= value <= zoo.QUALITIES[-1]:
                raise ValueError(f"quality must be in 1..4, got {quality}")
            return int(value) if value.is_integer() else value
        if float(quality) not in self.qualities(arch):
            raise ValueError(f"{DISPLAY_NAMES[arch]} has no weights for quality q{quality:g}")
        return int(quality)

    def origin(self, arch: str) -> str:
        """``"checkpoints"`` when the folder holds this architecture, else ``"shipped"``."""
        found = any(self._checkpoint_file(arch, q) for q in zoo.QUALITIES)
        return "checkpoints" if found else "shipped"

    def qualities(self, arch: str) -> list[int]:
        """Qualities available for ``arch``, from its origin."""
        if self.origin(arch) == "checkpoints":
            return [q for q in zoo.QUALITIES if self._checkpoint_file(arch, q)]
        return zoo.available(self.shipped_name(arch))

    def common_qualities(self) -> list[int]:
        """Qualities available for both architectures."""
        return sorted(set(self.qualities(ARCHS[0])) & set(self.qualities(ARCHS[1])))

    def problem(self) -> str | None:
        """Why the explorer cannot run (no usable weights), or ``None``. Shown on the page, so it
        names no folder of the server (:meth:`folder` does, for the log)."""
        if self.common_qualities():
            return None
        where = ["shipped weights in the weights folder (assets/weights or $GABIC_WEIGHTS_DIR)"]
        if self.checkpoints is not None:
            where.insert(0, "checkpoints in the --checkpoints folder ({gabic,zou2022}/q1..q4-model.pth.tar)")
        missing = [DISPLAY_NAMES[a] for a in ARCHS if not self.qualities(a)]
        return (
            "No weights found for " + " and ".join(missing or ["a common quality of both models"])
            + " (looked for " + "; ".join(where) + "). Train or download them, set GABIC_WEIGHTS_DIR, "
            "or start the app with --checkpoints DIR."
        )  # fmt: skip

    # ------------------------------------------------------------------ models
    def load(self, arch: str, quality: int) -> ChannelwiseAttentionCodec:
        """A new eval-mode model of ``arch`` at ``quality``, owned by the caller."""
        checkpoint = self._checkpoint_file(arch, quality) if self.origin(arch) == "checkpoints" else None
        if checkpoint is not None:
            return zoo.load_checkpoint(checkpoint, arch, self.device)
        return zoo.load(self.shipped_name(arch), quality, self.device)

    @contextlib.contextmanager
    def borrow(self, arch: str, quality: float) -> Iterator[ChannelwiseAttentionCodec]:
        """A model of ``arch`` at ``quality`` that no one else uses until the block ends.

        A variable-rate file codes every quality with the same weights: its models are pooled
        once for all qualities and lent at the quality asked for (:func:`gabic.codec.with_quality`),
        so a new quality costs no model build (~0.25 s on a 2-core CPU) and no memory."""
        shared = self.variable_rate(arch)
        pool = (self.key(), arch, None if shared else quality)
        with self._lock:
            idle = self._idle.setdefault(pool, [])
            model = idle.pop() if idle else None
            self._idle[pool] = self._idle.pop(pool)  # most recently used last
        if model is None:
            model = self.load(arch, quality)
        try:
            yield codec.with_quality(model, quality) if shared else model
        finally:
            with self._lock:
                self._idle.setdefault(pool, []).append(model)
                while sum(len(idle) for idle in self._idle.values()) > MAX_IDLE_MODELS:
                    oldest = next(key for key, idle in self._idle.items() if idle)
                    self._idle[oldest].pop(0)

    def config(self, arch: str, quality: int) -> ModelConfig:
        """The configuration (k, windows, heads...) of ``arch`` at ``quality``."""
        pool = (self.key(), arch, quality)
        with self._lock:
            known = self._configs.get(pool)
        if known is None:
            with self.borrow(arch, quality) as model:
                known = model.config
            with self._lock:
                self._configs[pool] = known
        return known

    # ------------------------------------------------------------- describing
    def description(self) -> dict[str, str]:
        """One line per architecture saying which weights are in use: the family (or the authors'
        checkpoints), each file's name and fingerprint (:func:`fingerprint`), the qualities and the
        device. Shown to every visitor, so it names no folder (:meth:`folder` does, for the log)."""
        lines = {}
        for arch in ARCHS:
            qualities = self.qualities(arch)
            listed = ", ".join(f"q{q}" for q in qualities) or "none"
            files = self.files(arch)
            if self.origin(arch) == "checkpoints":
                named = ", ".join(f"{arch}/{path.name} ({fingerprint(path)})" for path in files)
                where = f"authors' checkpoints (paper configuration): {named}"
            else:
                name = self.shipped_name(arch)
                if zoo.is_variable_rate(name):
                    listed = "any quality in 1..4 (variable rate)"
                named = ", ".join(f"{path.name} ({fingerprint(path)})" for path in files) or "no files"
                where = f"shipped family {name}: {named}"
                card = _card(name, qualities)
                if card is not None and card.get("trained") is False:
                    where += " (UNTRAINED random weights: pictures will look like noise)"
            lines[arch] = f"{where}; qualities {listed}; device {self.device.type}"
        return lines

    def files(self, arch: str) -> list[Path]:
        """The weight files in use for ``arch`` (one for a variable-rate family)."""
        if self.origin(arch) == "checkpoints":
            return [path for q in zoo.QUALITIES if (path := self._checkpoint_file(arch, q)) is not None]
        name = self.shipped_name(arch)
        return sorted({zoo.shipped_path(name, q) for q in self.qualities(arch)})

    def folder(self, arch: str) -> Path:
        """The folder the weights of ``arch`` come from (for the server's log, never the page)."""
        if self.origin(arch) == "checkpoints":
            return self.checkpoints / arch  # type: ignore[operator]
        return zoo.weights_dir()

    def key(self) -> str:
        """What identifies these weights in a cache key (results differ when it changes)."""
        return f"{self.checkpoints}|{zoo.weights_dir()}|{self.device}|{self.family}"


#: (path, size, modification time) -> fingerprint: each file is hashed once.
_FINGERPRINTS: dict[tuple[str, int, int], str] = {}


def fingerprint(path: Path) -> str:
    """``sha256:`` and the first 12 hex digits of the SHA-256 of the file at ``path`` (what tells
    two weight files apart, whatever their folder)."""
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    known = _FINGERPRINTS.get(key)
    if known is None:
        digest = hashlib.sha256()
        with open(path, "rb") as file:
            for block in iter(lambda: file.read(1 << 20), b""):
                digest.update(block)
        known = _FINGERPRINTS[key] = f"sha256:{digest.hexdigest()[:12]}"
    return known


def _card(name: str, qualities: list[int]) -> dict[str, Any] | None:
    if not qualities:
        return None
    path = zoo.shipped_path(name, qualities[0]).with_suffix(".json")
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
