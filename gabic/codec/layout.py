"""Where the image sits in the padded canvas, and which latent cells the y stream carries.

The transforms need sides that are multiples of 64 (``z`` is at 1/64), so the codec pads the
image. Two layouts:

- ``"compact"`` (the default, container versions 3 and 4): the image sits in the top-left
  corner, all the padding goes to the right and the bottom, and the latent cells of ``y``
  (16×16 pixels each) more than one cell beyond the image are left out of the y stream
  (:func:`coded_cells`). Both sides give those cells the value of the nearest coded cell
  (:meth:`~gabic.models.ChannelwiseAttentionCodec.compress`). The one ring of padding cells
  that *is* coded keeps the synthesis transform's view of the image's border as it was: on
  three BSDS500 val photos, leaving that ring out too cost 0.2–0.5 dB, keeping it cost
  nothing measurable;
- ``"reference"`` (versions 1 and 2): the padding is split evenly between the two sides
  (CompressAI's ``compute_padding``) and every cell is coded, as in the reference codecs and
  in every container before version 3.

An image whose sides are already multiples of 64 (Kodak's 768×512) has no padding: both layouts
are the same, and the codec writes version 1 or 2.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from compressai.ops import compute_padding
from torch import Tensor

from .container import PAD_MULTIPLE

#: Padding rules: name -> ``torch.nn.functional.pad`` mode. ``"edge"`` is the default.
PAD_MODES: dict[str, str] = {"edge": "replicate", "zero": "constant"}
DEFAULT_PAD = "edge"
#: Where the image sits in the padded canvas (see the module's docstring).
LAYOUTS = ("compact", "reference")
DEFAULT_LAYOUT = "compact"
#: Pixels per latent cell of ``y``.
LATENT_STRIDE = 16
#: Cells of padding beyond the image that the compact layout still codes.
CODED_RING = 1


def _check_layout(layout: str) -> None:
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")


def padding(height: int, width: int, layout: str = DEFAULT_LAYOUT) -> tuple[int, int, int, int]:
    """``(left, right, top, bottom)`` pixels that pad ``height × width`` to multiples of 64."""
    _check_layout(layout)
    if layout == "reference":
        pad, _ = compute_padding(height, width, min_div=PAD_MULTIPLE)
        return tuple(int(p) for p in pad)  # type: ignore[return-value]
    return 0, -width % PAD_MULTIPLE, 0, -height % PAD_MULTIPLE


def pad_image(x: Tensor, mode: str = DEFAULT_PAD, layout: str = DEFAULT_LAYOUT
              ) -> tuple[Tensor, tuple[int, int, int, int]]:  # fmt: skip
    """Pad ``(B, 3, H, W)`` to multiples of 64 where ``layout`` puts the image, by repeating the
    edge pixels (``mode="edge"``) or with zeros (``"zero"``); returns ``(padded, unpad)``."""
    if mode not in PAD_MODES:
        raise ValueError(f"padding must be one of {sorted(PAD_MODES)}, got {mode!r}")
    pad = padding(x.shape[-2], x.shape[-1], layout)
    unpad = tuple(-p for p in pad)
    if not any(pad):
        return x, unpad  # type: ignore[return-value]
    return F.pad(x, pad, mode=PAD_MODES[mode]), unpad  # type: ignore[return-value]


def crop_image(x: Tensor, unpad: tuple[int, int, int, int]) -> Tensor:
    """Undo :func:`pad_image` (``unpad`` is its second result)."""
    return F.pad(x, unpad)


def coded_cells(height: int, width: int, layout: str = DEFAULT_LAYOUT,
                device: torch.device | str = "cpu") -> Tensor | None:  # fmt: skip
    """``(H'/16, W'/16)`` bool: the latent cells of the padded ``H' × W'`` canvas the y stream
    carries for a ``height × width`` image; ``None`` when it carries all of them (always in the
    reference layout).

    In the compact layout cell ``(r, c)`` (padded pixels ``[16 r, 16 r + 16)`` down, likewise
    across) is coded when it starts less than one cell past the image's last row and column:
    the image's own cells and one ring of padding cells around them.
    """
    _check_layout(layout)
    if layout == "reference":
        return None
    _, right, _, bottom = padding(height, width, layout)
    reach = LATENT_STRIDE * CODED_RING
    rows = torch.arange((height + bottom) // LATENT_STRIDE) * LATENT_STRIDE < height + reach
    cols = torch.arange((width + right) // LATENT_STRIDE) * LATENT_STRIDE < width + reach
    if bool(rows.all()) and bool(cols.all()):
        return None
    return (rows[:, None] & cols[None, :]).to(device)


def written_layout(height: int, width: int, layout: str = DEFAULT_LAYOUT) -> str:
    """The layout a container records: ``"reference"`` for an image without padding (both
    layouts are the same there, and versions 1 and 2 keep their bytes), else ``layout``."""
    _check_layout(layout)
    return layout if any(padding(height, width, layout)) else "reference"
