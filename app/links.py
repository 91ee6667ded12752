"""Shareable views: the page URL's query parameters say which sample photo, quality, k, block,
head and clicked point to show (``?sample=coffee&q=2.5&k=9&block=encoder+1%2F16&head=3&x=120&y=80``).

:func:`parse_link` reads them leniently (a value that does not fit is left out, with a note);
:func:`link_query` writes them. Uploads cannot travel in a URL: only the bundled samples can.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlencode

#: Query parameter names, in the order links write them.
KEYS = ("sample", "q", "k", "block", "head", "x", "y")


@dataclass(frozen=True)
class Link:
    """What a page URL asks to show; ``None`` where it says nothing (or nothing valid).

    Attributes:
        notes: one line per parameter that was given but could not be used.
    """

    sample: str | None = None
    quality: float | None = None
    k: int | None = None
    block: str | None = None
    head: str | None = None
    point: tuple[float, float] | None = None
    notes: list[str] = field(default_factory=list)


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def parse_link(params: Mapping[str, str], samples: Sequence[str], blocks: Sequence[str], heads: Sequence[str],
               quality_range: tuple[float, float], k_range: tuple[int, int],
               continuous: bool = False) -> Link:  # fmt: skip
    """A :class:`Link` from query parameters (``request.query_params``). A quality is rounded to
    hundredths when ``continuous`` (a variable-rate family), else to a whole number."""
    notes: list[str] = []

    def bad(key: str, why: str) -> None:
        notes.append(f"link parameter {key}={params.get(key)!r} ignored: {why}")

    sample = params.get("sample")
    if sample is not None and sample not in samples:
        bad("sample", f"choose one of {', '.join(samples)}")
        sample = None
    quality = None
    if "q" in params:
        quality = _number(params["q"])
        if quality is not None:
            quality = round(quality * 100) / 100 if continuous else float(round(quality))
        if quality is None or not quality_range[0] <= quality <= quality_range[1]:
            bad("q", f"quality must be in {quality_range[0]:g}..{quality_range[1]:g}")
            quality = None
        elif quality.is_integer():
            quality = int(quality)
    k = None
    if "k" in params:
        value = _number(params["k"])
        if value is None or not value.is_integer() or not k_range[0] <= value <= k_range[1]:
            bad("k", f"k must be a whole number in {k_range[0]}..{k_range[1]}")
        else:
            k = int(value)
    block = params.get("block")
    if block is not None and block not in blocks:
        bad("block", f"choose one of {', '.join(blocks)}")
        block = None
    head = params.get("head")
    if head is not None and head not in heads:
        bad("head", f"choose one of {', '.join(heads)}")
        head = None
    point = None
    if "x" in params or "y" in params:
        x, y = _number(params.get("x", "")), _number(params.get("y", ""))
        if x is None or y is None or x < 0 or y < 0:
            bad("x" if x is None or x < 0 else "y", "a point needs both x and y, pixels ≥ 0")
        else:
            point = (x, y)
    return Link(sample, quality, k, block, head, point, notes)


def link_query(sample: str, quality: float, k: int, block: str, head: str,
               point: tuple[float, float] | None) -> str:  # fmt: skip
    """``"?sample=…&q=…&k=…&block=…&head=…&x=…&y=…"`` for a view of a bundled sample."""
    values: dict[str, str] = {"sample": sample, "q": f"{round(float(quality) * 100) / 100:g}", "k": str(int(k)),
                              "block": block, "head": str(head)}  # fmt: skip
    if point is not None:
        values.update(x=str(int(round(point[0]))), y=str(int(round(point[1]))))
    return "?" + urlencode(values)
