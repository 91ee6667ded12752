"""The codec at a glance (issue 16.7): an inline SVG of GABIC's parts — ``g_a`` with its two
attention modules, the hyperprior, the channel slices, ``g_s`` — each naming the section of the
page that shows it. Drawn from a list of boxes and arrows; nothing is downloaded."""

from __future__ import annotations

from html import escape

#: (x, y, width, label, the view that shows it, fill colour); coordinates in SVG units.
BOXES: tuple[tuple[int, int, int, str, str, str], ...] = (
    (10, 40, 60, "x", "your photo", "#eeeeee"),
    (90, 40, 120, "g_a: conv ×2", "", "#dbe9f6"),
    (220, 40, 140, "attention 1/4", "Graph inspector · Window as a graph", "#ffe2b8"),
    (370, 40, 110, "g_a: conv ×2", "", "#dbe9f6"),
    (490, 40, 140, "attention 1/16", "Graph inspector · All heads", "#ffe2b8"),
    (640, 40, 60, "y", "Entropy model (y, μ, σ)", "#e6dcf5"),
    (640, 150, 150, "h_a → z → h_s", "Entropy model: y vs z", "#e6dcf5"),
    (470, 150, 160, "slices 1…S: μ, σ, LRP", "Entropy model · Progressive decoding", "#d9f0d3"),
    (350, 150, 110, "bitstream", "Bit allocation · Classic codecs at the same size", "#f6d5d5"),
    (220, 150, 120, "ŷ → g_s", "decoder attention 1/16, 1/4: Graph inspector", "#dbe9f6"),
    (90, 150, 120, "x̂", "Reconstructions · Equal rate", "#eeeeee"),
)
#: Arrows between box centres (indices into :data:`BOXES`).
ARROWS = ((0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (5, 6), (6, 7), (5, 7), (7, 8), (8, 9), (9, 10))
BOX_HEIGHT = 40


def _centre(index: int) -> tuple[float, float]:
    x, y, width, *_ = BOXES[index]
    return x + width / 2, y + BOX_HEIGHT / 2


def _edge_point(index: int, towards: tuple[float, float]) -> tuple[float, float]:
    """Where the line from box ``index``'s centre towards ``towards`` leaves the box."""
    x, y, width, *_ = BOXES[index]
    cx, cy = _centre(index)
    dx, dy = towards[0] - cx, towards[1] - cy
    scale = min(width / 2 / abs(dx) if dx else float("inf"), BOX_HEIGHT / 2 / abs(dy) if dy else float("inf"))
    return cx + dx * scale, cy + dy * scale


def codec_diagram() -> str:
    """The diagram as HTML (an inline SVG with a title per box for hover)."""
    parts = [
        '<svg viewBox="0 0 800 230" width="100%" style="max-width:900px" role="img" '
        'aria-label="GABIC codec diagram" xmlns="http://www.w3.org/2000/svg" font-family="sans-serif">',
        '<defs><marker id="arrow" markerWidth="8" markerHeight="8" refX="7" refY="4" orient="auto">'
        '<path d="M0,0 L8,4 L0,8 z" fill="#555"/></marker></defs>',
        '<text x="10" y="22" font-size="13" font-weight="bold">The codec: encoder (top, left to right), '
        "entropy model (right), decoder (bottom, right to left)</text>",
    ]
    for a, b in ARROWS:
        (x1, y1), (x2, y2) = _edge_point(a, _centre(b)), _edge_point(b, _centre(a))
        parts.append(f'<line x1="{x1:.0f}" y1="{y1:.0f}" x2="{x2:.0f}" y2="{y2:.0f}" stroke="#555" '
                     'stroke-width="1.5" marker-end="url(#arrow)"/>')  # fmt: skip
    for index, (x, y, width, label, view, fill) in enumerate(BOXES):
        parts.append(
            f'<g><title>{escape(view or label)}</title><rect x="{x}" y="{y}" width="{width}" height="{BOX_HEIGHT}" '
            f'rx="6" fill="{fill}" stroke="#666"/><text x="{x + width / 2:.0f}" y="{y + 25}" font-size="12" '
            f'text-anchor="middle">{escape(label)}</text>'
        )  # fmt: skip
        if view:
            below = y + BOX_HEIGHT + 13 + 12 * (index % 2) if y > 100 else y - 5
            parts.append(f'<text x="{x + width / 2:.0f}" y="{below}" font-size="9" fill="#1f5fa8" '
                         f'text-anchor="middle">▸ {escape(view)}</text>')  # fmt: skip
        parts.append("</g>")
    parts.append("</svg>")
    return '<div id="codec_diagram">' + "".join(parts) + "</div>"
