"""What one user's page holds between events (:class:`Session`, kept in a ``gr.State``) and the
widget values every view depends on (:class:`Controls`).

Both are frozen: a handler that changes the session returns a new one
(:func:`dataclasses.replace`), so an event that fails leaves the user's session as it was.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .inputs import PreparedImage
from .service import BLOCKS

#: Parts of the bit maps the user can choose.
PARTS = ("total", "y", "z")


def clamp_point(image_size: tuple[int, int], x: float, y: float) -> tuple[float, float]:
    """Clamp ``(x, y)`` into an image of ``(width, height)`` pixels."""
    width, height = image_size
    return min(max(float(x), 0.0), width - 1.0), min(max(float(y), 0.0), height - 1.0)


def head_index(head: str | int | None) -> int | None:
    """UI head choice (``"mean"`` or ``"1".."8"``) -> 0-based head, or ``None`` for the mean."""
    if head is None or head == "mean":
        return None
    return int(head) - 1


def quality_value(quality: float | str) -> float:
    """A quality from a widget, rounded to hundredths; whole numbers come back as ``int``."""
    value = round(float(quality) * 100) / 100
    return int(value) if value.is_integer() else value


def quality_label(quality: float) -> str:
    """``"q3"``, ``"q2.35"``: how the page names a quality."""
    return f"q{quality_value(quality):g}"


@dataclass(frozen=True)
class Session:
    """One user's image, the point clicked on it (pixels of the prepared image), the
    edge chosen for the score anatomy (an edge slot of the clicked node; -1: the strongest) and
    the bundled sample the image is (``None`` for an upload: it cannot go into a link)."""

    image: PreparedImage
    point: tuple[float, float]
    edge: int = -1
    sample: str | None = None

    @classmethod
    def start(cls, image: PreparedImage, sample: str | None = None) -> Session:
        """A session on ``image`` with the point at its centre."""
        width, height = image.size
        return cls(image=image, point=(width / 2, height / 2), sample=sample)

    def clicked(self, x: float, y: float) -> Session:
        """The session with the point moved to ``(x, y)`` (clamped into the image), edge reset."""
        return replace(self, point=clamp_point(self.image.size, x, y), edge=-1)

    def with_edge(self, edge: int) -> Session:
        return replace(self, edge=int(edge))


@dataclass(frozen=True)
class Controls:
    """The widget values every view depends on, checked and converted.

    Attributes:
        quality: 1..4 (hundredths for a variable-rate family; a whole number is an ``int``). k: GABIC's neighbours per node. block: one of :data:`app.service.BLOCKS`.
        head: 0-based head or ``None`` (mean). part: ``"total"``, ``"y"`` or ``"z"``.
    """

    quality: float
    k: int
    block: str
    head: int | None
    part: str = "total"

    @classmethod
    def read(
        cls, quality: float, k: float, block: str, head: str | int | None, part: str = "total"
    ) -> Controls:
        """From raw widget values (numbers may come as floats; unknown choices fall back to the first)."""
        return cls(quality=quality_value(quality), k=int(k), block=block if block in BLOCKS else BLOCKS[0],
                   head=head_index(head), part=part if part in PARTS else "total")  # fmt: skip
