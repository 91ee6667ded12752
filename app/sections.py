"""Handlers of the sections computed when they are opened (issue 16, 17): the entropy model,
progressive decoding, the window as a graph, classic codecs at the same size, the equal-rate
comparison. Each is a plain function of the explorer, the session and widget values that returns
``{view name: value}`` (the same convention as :mod:`app.handlers`); the data comes from
:mod:`gabic.inspect` / :mod:`gabic.eval` through :class:`app.service.Explorer`'s cache and is drawn
by :mod:`gabic.viz`.
"""

from __future__ import annotations

import math
from typing import Any

import gradio as gr

from gabic import viz

from .handlers import BITS_OPACITY, _progress_adapter, _require
from .service import Explorer
from .session import Controls, Session, quality_label
from .weights import ARCHS, DISPLAY_NAMES

#: Outputs of each section, in the order the UI wires them.
ENTROPY_VIEWS = (
    "status",
    "channel",
    "channel_bits",
    "channel_maps",
    "max_entropy",
    "slice_bits",
    "entropy_note",
)
PROGRESSIVE_VIEWS = ("status", "slices", "progressive_gabic", "progressive_zou", "progressive_curve",
                     "progressive_note")  # fmt: skip
GRAPH_VIEWS = ("status", "window_graph", "window_zou", "adjacency", "adjacency_note")
SAME_SIZE_VIEWS = ("status", "same_jpeg", "same_webp", "same_avif", "same_size_table", "same_size_note")
EQUAL_RATE_VIEWS = ("status", "equal_rate_table", "equal_rate_note", "eq_bits_gabic", "eq_bits_zou",
                    "eq_bits_diff")  # fmt: skip
SEARCH_VIEWS = ("status", "search_table", "search_gabic", "search_zou", "search_note")
CLASSIC = ("jpeg", "webp", "avif")
#: The effort slider of "search harder": steps of encoder search per model (about half a second of
#: two AVX2 EPYC cores per step at 481×321: ``python -m gabic bench --only search``).
EFFORT_RANGE, DEFAULT_EFFORT = (10, 100), 30


def arch_of(label: str) -> str:
    """``"GABIC"``/``"Zou2022"`` (a radio's value) -> the architecture key."""
    return next((arch for arch in ARCHS if DISPLAY_NAMES[arch] == label), ARCHS[0])


def _k_for(arch: str, controls: Controls) -> int | None:
    return controls.k if arch == "gabic" else None


def all_heads(explorer: Explorer, session: Session | None, quality: float, k: int) -> dict[str, Any]:
    """The clicked point seen by every GABIC block and head (a grid of window maps)."""
    session = _require(session)
    controls = Controls.read(quality, k, "", "mean")
    pair = explorer.pair(session.image, controls.quality, controls.k)
    return {"all_heads": viz.all_heads_figure(viz.all_heads(pair.gabic, *session.point))}


# -------------------------------------------------------------- entropy model
def entropy(explorer: Explorer, session: Session | None, quality: float, k: int, model: str,
            channel: float | None = None) -> dict[str, Any]:  # fmt: skip
    """Bits per channel (sorted) and one channel's y/ŷ/μ/σ/−log₂ p maps of ``model``; the
    max-entropy channel of both models; bits per slice and y against z. ``channel``: ``None`` or
    < 0 picks the max-entropy channel."""
    session = _require(session)
    controls = Controls.read(quality, k, "", "mean")
    views = {
        arch: explorer.entropy(session.image, arch, controls.quality, _k_for(arch, controls))
        for arch in ARCHS
    }
    shown = views[arch_of(model)]
    chosen = (
        shown.max_entropy_channel if channel is None or channel < 0 else min(int(channel), shown.channels - 1)
    )
    labelled = {DISPLAY_NAMES[arch]: view for arch, view in views.items()}
    padding = {DISPLAY_NAMES[a]: v.padding_bits / max(v.bits_total, 1e-9) for a, v in views.items()}
    note = (f"{DISPLAY_NAMES[arch_of(model)]}: {shown.channels} channels in {shown.num_slices} slices; "
            f"channel {chosen} of slice {shown.slice_of(chosen)}. Bits spent on the codec's padding: "
            + ", ".join(f"{name} {share:.1%}" for name, share in padding.items())
            + ". Maps show the latent cells inside the photo (padding cropped); colours end at the "
            "99th percentile.")  # fmt: skip
    return {
        "status": f"Entropy model at {quality_label(controls.quality)}.",
        "channel": gr.update(maximum=shown.channels - 1, value=chosen),
        "channel_bits": viz.channel_bits_figure(shown),
        "channel_maps": viz.channel_maps_figure(shown, chosen),
        "max_entropy": viz.max_entropy_figure(labelled),
        "slice_bits": viz.slice_bits_figure(labelled),
        "entropy_note": note,
    }


def entropy_channel(explorer: Explorer, session: Session | None, quality: float, k: int, model: str,
                    channel: float) -> dict[str, Any]:  # fmt: skip
    """The channel picker: one channel's maps only."""
    session = _require(session)
    controls = Controls.read(quality, k, "", "mean")
    arch = arch_of(model)
    view = explorer.entropy(session.image, arch, controls.quality, _k_for(arch, controls))
    return {"channel_maps": viz.channel_maps_figure(view, min(max(int(channel), 0), view.channels - 1))}


# --------------------------------------------------------- progressive decoding
def progressive(explorer: Explorer, session: Session | None, quality: float, k: int,
                slices: float | None = None) -> dict[str, Any]:  # fmt: skip
    """Both models decoded from their first ``slices`` slices (default all), and the PSNR against
    cumulative bits curve for s = 0…S."""
    session = _require(session)
    controls = Controls.read(quality, k, "", "mean")
    decodings = {arch: explorer.progressive(session.image, arch, controls.quality, _k_for(arch, controls))
                 for arch in ARCHS}  # fmt: skip
    total = min(d.num_slices for d in decodings.values())
    s = total if slices is None or slices < 0 else min(int(slices), total)
    views: dict[str, Any] = {"status": f"Progressive decoding at {quality_label(controls.quality)}.",
                             "slices": gr.update(maximum=total, value=s)}  # fmt: skip
    lines = []
    for arch, decoding in decodings.items():
        i = decoding.steps.index(s)
        name = DISPLAY_NAMES[arch]
        views[f"progressive_{'gabic' if arch == 'gabic' else 'zou'}"] = gr.update(
            value=decoding.reconstructions[i], label=f"{name}: {s}/{decoding.num_slices} slices, "
            f"{decoding.bpp[i]:.3f} bpp, {decoding.psnr[i]:.2f} dB")  # fmt: skip
        lines.append(f"{name}: {decoding.psnr[i]:.2f} dB from {decoding.bpp[i]:.3f} bpp "
                     f"({decoding.bpp[i] / max(decoding.bpp[-1], 1e-9):.0%} of the bits)")  # fmt: skip
    views["progressive_curve"] = viz.progressive_curve_figure(
        {DISPLAY_NAMES[arch]: d for arch, d in decodings.items()}
    )
    views["progressive_note"] = f"**{s} of {total} slices** — " + " · ".join(lines)
    return views


# ------------------------------------------------------------- window as a graph
def graph(explorer: Explorer, session: Session | None, quality: float, k: int, block: str, head: str,
          all_nodes: bool = False) -> dict[str, Any]:  # fmt: skip
    """The clicked node's window as a graph (GABIC), Zou2022's attention of the same node, and
    the adjacent-edge share of every graph block on this photo against a random choice of k."""
    from gabic.inspect import adjacency_shares

    session = _require(session)
    controls = Controls.read(quality, k, block, head)
    pair = explorer.pair(session.image, controls.quality, controls.k)
    x, y = session.point
    shares = adjacency_shares(pair.gabic)
    rows = [[name, s.k, round(s.share, 3), round(s.random_share, 3),
             None if not math.isfinite(s.ratio) else round(s.ratio, 2), s.edges] for name, s in shares.items()]  # fmt: skip
    return {
        "status": f"Graph of the window around ({x:.0f}, {y:.0f}) in {controls.block}.",
        "window_graph": viz.window_graph_figure(
            pair.gabic, controls.block, x, y, controls.head, bool(all_nodes)
        ),
        "window_zou": viz.window_attention_picture([pair.zou2022], controls.block, x, y, controls.head),
        "adjacency": {
            "headers": ["block", "k", "adjacent share", "random k", "× chance", "edges"],
            "data": rows,
        },
        "adjacency_note": "Share of kNN edges that join 8-adjacent cells, over the nodes inside the photo, "
        "against the share a random choice of k neighbours in the window would give (× chance > 1: the "
        "graph prefers neighbouring cells).",
    }


# --------------------------------------------------------- classic codecs, same size
def same_size(explorer: Explorer, session: Session | None, quality: float, k: int) -> dict[str, Any]:
    """JPEG, WebP and AVIF at the real bpp of GABIC's reconstruction, each as an image slider
    against GABIC, with their PSNR."""
    session = _require(session)
    controls = Controls.read(quality, k, "", "mean")
    pair = explorer.pair(session.image, controls.quality, controls.k)
    target = pair.gabic.bpp
    found = explorer.classic_same_size(session.image, target)
    views: dict[str, Any] = {
        "status": f"Classic codecs at GABIC's {target:.3f} bpp ({quality_label(controls.quality)})."
    }
    rows = [
        ["GABIC", quality_label(controls.quality), round(pair.gabic.bpp, 4), round(pair.gabic.psnr, 2), "—"]
    ]
    for codec in CLASSIC:
        result = found.get(codec)
        if result is None:
            views[f"same_{codec}"] = gr.update(value=None, label=f"{codec.upper()}: not in this Pillow build")
            continue
        label = (f"GABIC {pair.gabic.psnr:.2f} dB | {codec.upper()} q{result['quality']}: {result['bpp']:.3f} bpp, "
                 f"{result['psnr']:.2f} dB")  # fmt: skip
        views[f"same_{codec}"] = gr.update(
            value=(pair.gabic.reconstruction, result["reconstruction"]), label=label
        )
        rows.append([codec.upper(), f"q{result['quality']}", round(result["bpp"], 4), round(result["psnr"], 2),
                     "yes" if result["fits"] else "no: smallest file is larger"])  # fmt: skip
    views["same_size_table"] = {
        "headers": ["codec", "setting", "bpp", "PSNR (dB)", "fits the size"],
        "data": rows,
    }
    views["same_size_note"] = (f"Each codec's quality setting was searched for the largest file not above "
                               f"GABIC's {target:.3f} bpp (real bitstream).")  # fmt: skip
    return views


# ----------------------------------------------------------------- equal rate
def equal_rate(explorer: Explorer, session: Session | None, quality: float,
               opacity: float = BITS_OPACITY) -> dict[str, Any]:  # fmt: skip
    """GABIC's variable-rate model at ``quality`` and Zou2022's at the quality that gives the same
    real bpp: both PSNRs, the matched qualities and bpp, both bit maps and their difference."""
    session = _require(session)
    controls = Controls.read(quality, 1, "", "mean")
    try:
        result = explorer.equal_rate(session.image, controls.quality)
    except FileNotFoundError as error:
        note = (f"The equal-rate comparison needs the variable-rate models: {error}. It appears here once "
                "they are shipped.")  # fmt: skip
        return {"status": gr.skip(), "equal_rate_note": note, "equal_rate_table": {"headers": [], "data": []}}
    reference, matched = result.reference, result.matched
    rows = [["GABIC", f"q{reference.quality:g}" if reference.quality else quality_label(controls.quality),
             round(reference.bpp, 4), round(reference.psnr, 2), round(reference.ms_ssim, 4)],
            ["Zou2022", f"q{result.search.quality:g}", round(matched.bpp, 4), round(matched.psnr, 2),
             round(matched.ms_ssim, 4)]]  # fmt: skip
    maps = viz.bit_maps(reference, matched)
    photo = session.image.image
    opacity = min(max(float(opacity), 0.0), 1.0)
    better = "GABIC" if result.psnr_difference < 0 else "Zou2022"
    note = (f"At {reference.bpp:.3f} bpp (GABIC {quality_label(controls.quality)}), Zou2022 needs quality "
            f"{result.search.quality:g} for {matched.bpp:.3f} bpp ({result.search.relative_error:+.1%} off). "
            f"PSNR: GABIC {reference.psnr:.2f} dB, Zou2022 {matched.psnr:.2f} dB — **{better}** is "
            f"{abs(result.psnr_difference):.2f} dB better at the same rate.")  # fmt: skip
    return {
        "status": f"Equal-rate comparison at {quality_label(controls.quality)}.",
        "equal_rate_table": {
            "headers": ["model", "quality", "bpp (real)", "PSNR (dB)", "MS-SSIM"],
            "data": rows,
        },
        "equal_rate_note": note,
        "eq_bits_gabic": viz.bits_picture(maps, "first", photo, opacity),
        "eq_bits_zou": viz.bits_picture(maps, "second", photo, opacity),
        "eq_bits_diff": viz.bits_picture(maps, "difference", photo, opacity),
    }


# -------------------------------------------------------------- encoder search
def _rounded(ms_ssim: float | None) -> float | str:
    """MS-SSIM for a table: four decimals, or a dash where it is undefined (below 161 px)."""
    return "—" if ms_ssim is None or not math.isfinite(ms_ssim) else round(ms_ssim, 4)


def search_harder(explorer: Explorer, session: Session | None, quality: float, k: int, effort: float,
                  progress: Any = None, compute: bool = True) -> dict[str, Any]:  # fmt: skip
    """Both models coded at ``quality`` without and with ``effort`` steps of encoder search
    (:func:`gabic.eval.search_gain`): a table of both containers of each and of JPEG/WebP/AVIF at
    the searched GABIC's size, and each model's plain and searched pictures as an image slider.
    ``compute=False`` shows what is cached for these controls, or says to press the button."""
    session = _require(session)
    controls = Controls.read(quality, k, "", "mean")
    steps = int(round(float(effort)))
    low, high = EFFORT_RANGE
    if not low <= steps <= high:
        raise ValueError(f"the effort must be {low} to {high} steps, got {effort}")
    report = _progress_adapter(progress)
    gains = {}
    for index, arch in enumerate(ARCHS):
        name = DISPLAY_NAMES[arch]

        def on_step(step: int, index: int = index, name: str = name) -> None:
            report((index * steps + step) / (2 * steps), f"{name}: search step {step} of {steps}")

        gains[arch] = explorer.search_gain(session.image, arch, controls.quality, _k_for(arch, controls), steps,
                                           on_step, compute)  # fmt: skip
    if any(gain is None for gain in gains.values()):
        return {"search_table": {"headers": [], "data": []}, "search_gabic": None, "search_zou": None,
                "search_note": f"Press **Search harder** to code this photo at {quality_label(controls.quality)} "
                f"with {steps} steps of encoder search per model (about {steps // 2} s for each on two cores "
                "for a 481×321 photo)."}  # fmt: skip
    rows = []
    for arch, gain in gains.items():
        for coding in (gain.plain, gain.searched):
            rows.append([DISPLAY_NAMES[arch], f"{coding.effort} steps" if coding.effort else "none",
                         round(coding.bpp, 4), round(coding.psnr, 2),
                         _rounded(coding.ms_ssim), round(coding.seconds, 1)])  # fmt: skip
    target = gains["gabic"].searched.bpp
    for codec, result in explorer.classic_same_size(session.image, target).items():
        if result is not None and result["fits"]:
            rows.append([f"{codec.upper()} q{result['quality']}", "at searched GABIC's size", round(result["bpp"], 4),
                         round(result["psnr"], 2), _rounded(result["ms_ssim"]), "—"])  # fmt: skip
    lines = [f"**{DISPLAY_NAMES[arch]}**: {gain.bits_change:+.1%} bits, {gain.psnr_change:+.2f} dB with {steps} "
             f"steps ({gain.searched.seconds:.0f} s)" for arch, gain in gains.items()]  # fmt: skip
    views = {
        "status": f"Encoder search at {quality_label(controls.quality)}: {steps} steps per model.",
        "search_table": {
            "headers": ["codec", "search", "bpp (real)", "PSNR (dB)", "MS-SSIM", "encode (s)"],
            "data": rows,
        },  # fmt: skip
        "search_note": " · ".join(lines) + ". Same decoder, same container: only the encoder worked longer.",
    }
    for arch, view in (("gabic", "search_gabic"), ("zou2022", "search_zou")):
        gain = gains[arch]
        label = (f"{DISPLAY_NAMES[arch]}: plain {gain.plain.bpp:.3f} bpp, {gain.plain.psnr:.2f} dB | "
                 f"searched {gain.searched.bpp:.3f} bpp, {gain.searched.psnr:.2f} dB")  # fmt: skip
        views[view] = gr.update(value=(gain.plain.reconstruction, gain.searched.reconstruction), label=label)
    return views
