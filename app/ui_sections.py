"""The sections computed when opened (:mod:`app.sections`): their layout and wiring.

Each section is a closed ``gr.Accordion``; opening it computes its views, closing it stops its
updates. The names of the open sections are one ``gr.State`` (:attr:`Sections.open_names`). An
event of the main views that finds a section open sets :attr:`Sections.due` to a new value,
whose change redraws the open sections; with every section closed no second event runs, so
closed sections cost nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr

from . import sections, texts
from .handlers import BITS_OPACITY, App
from .messages import guarded

#: Section name -> its views (without "status": a section never overwrites the page's status line).
SECTION_VIEWS: dict[str, tuple[str, ...]] = {
    "all_heads": ("all_heads",),
    "anatomy": ("anatomy", "edge_choice"),
    "numbers": ("summary",),
    "rd": ("rd",),
    "entropy": tuple(v for v in sections.ENTROPY_VIEWS if v != "status"),
    "progressive": tuple(v for v in sections.PROGRESSIVE_VIEWS if v != "status"),
    "graph": tuple(v for v in sections.GRAPH_VIEWS if v != "status"),
    "same_size": tuple(v for v in sections.SAME_SIZE_VIEWS if v != "status"),
    "equal_rate": tuple(v for v in sections.EQUAL_RATE_VIEWS if v != "status"),
    "search": tuple(v for v in sections.SEARCH_VIEWS if v != "status"),
}


@dataclass
class Sections:
    """The components of the on-request sections, their accordions, the names of the open ones
    (``open_names``: a ``gr.State`` holding a tuple) and ``due`` (a ``gr.State`` whose change
    redraws the open sections)."""

    components: dict[str, Any]
    accordions: dict[str, gr.Accordion]
    open_names: gr.State
    due: gr.State

    def add(self, name: str, accordion: gr.Accordion, **components: Any) -> None:
        """A section laid out elsewhere: its accordion and its views by name."""
        self.accordions[name] = accordion
        self.components.update(components)


def refresh_due(open_names: tuple[str, ...] | None) -> Any:
    """The value for :attr:`Sections.due` after a change of the main views: a new one when a
    section is open (its change redraws them), else ``gr.skip()`` (nothing more runs)."""
    return time.monotonic_ns() if open_names else gr.skip()


def build_sections(equal_rate_title: str) -> Sections:
    """Lay out the sections (inside the current ``gr.Blocks``)."""
    c: dict[str, Any] = {}
    accordions: dict[str, gr.Accordion] = {}
    with gr.Accordion("All heads", open=False, elem_id="sec_all_heads") as acc:
        accordions["all_heads"] = acc
        c["all_heads"] = gr.Plot(elem_id="all_heads")
        gr.Markdown(texts.HEADS, elem_classes="explain")
    with gr.Accordion("Entropy model: channels, μ, σ, −log₂ p", open=False, elem_id="sec_entropy") as acc:
        accordions["entropy"] = acc
        with gr.Row():
            c["entropy_model"] = gr.Radio(
                ["GABIC", "Zou2022"], value="GABIC", label="Model", elem_id="entropy_model"
            )
            c["channel"] = gr.Slider(0, 1, value=0, step=1, label="Latent channel (starts at the max-entropy one)",
                                     elem_id="channel")  # fmt: skip
        c["channel_bits"] = gr.Plot(elem_id="channel_bits")
        c["channel_maps"] = gr.Plot(elem_id="channel_maps")
        c["max_entropy"] = gr.Plot(elem_id="max_entropy")
        c["slice_bits"] = gr.Plot(elem_id="slice_bits")
        c["entropy_note"] = gr.Markdown(elem_id="entropy_note")
        gr.Markdown(texts.ENTROPY, elem_classes="explain")
    with gr.Accordion(
        "Progressive decoding: the first s slices", open=False, elem_id="sec_progressive"
    ) as acc:
        accordions["progressive"] = acc
        c["slices"] = gr.Slider(0, 1, value=1, step=1, label="s — slices decoded", elem_id="slices")
        with gr.Row():
            c["progressive_gabic"] = gr.Image(label="GABIC", type="pil", format="png", interactive=False, elem_id="progressive_gabic",
                                              height=300)  # fmt: skip
            c["progressive_zou"] = gr.Image(label="Zou2022", type="pil", format="png", interactive=False, elem_id="progressive_zou",
                                            height=300)  # fmt: skip
        c["progressive_note"] = gr.Markdown(elem_id="progressive_note")
        c["progressive_curve"] = gr.Plot(elem_id="progressive_curve")
        gr.Markdown(texts.PROGRESSIVE, elem_classes="explain")
    with gr.Accordion("The window as a graph", open=False, elem_id="sec_graph") as acc:
        accordions["graph"] = acc
        c["all_nodes"] = gr.Checkbox(False, label="Edges of every node of the window", elem_id="all_nodes")
        with gr.Row():
            c["window_graph"] = gr.Plot(elem_id="window_graph")
            c["window_zou"] = gr.Image(label="Zou2022 over the same window", type="pil", format="png",
                                       interactive=False, elem_id="window_zou")  # fmt: skip
        c["adjacency"] = gr.Dataframe(
            interactive=False, elem_id="adjacency", label="Does the graph follow the image?"
        )
        c["adjacency_note"] = gr.Markdown(elem_classes="explain")
        gr.Markdown(texts.GRAPH, elem_classes="explain")
    with gr.Accordion("Classic codecs at the same size", open=False, elem_id="sec_same_size") as acc:
        accordions["same_size"] = acc
        with gr.Row():
            for codec in sections.CLASSIC:
                c[f"same_{codec}"] = gr.ImageSlider(label=f"GABIC | {codec.upper()}", type="pil", format="png", max_height=360,
                                                    elem_id=f"same_{codec}")  # fmt: skip
        c["same_size_table"] = gr.Dataframe(interactive=False, elem_id="same_size_table")
        c["same_size_note"] = gr.Markdown(elem_id="same_size_note")
    with gr.Accordion(equal_rate_title, open=False, elem_id="sec_equal_rate") as acc:
        accordions["equal_rate"] = acc
        c["equal_rate_note"] = gr.Markdown(elem_id="equal_rate_note")
        c["equal_rate_table"] = gr.Dataframe(interactive=False, elem_id="equal_rate_table")
        with gr.Row():
            for name in ("eq_bits_gabic", "eq_bits_zou", "eq_bits_diff"):
                c[name] = gr.Image(
                    type="pil", format="jpeg", interactive=False, show_label=False, elem_id=name
                )
        gr.Markdown(texts.EQUAL_RATE, elem_classes="explain")
    with gr.Accordion(
        "Encoder search: search harder for this photo", open=False, elem_id="sec_search"
    ) as acc:
        accordions["search"] = acc
        with gr.Row():
            low, high = sections.EFFORT_RANGE
            c["effort"] = gr.Slider(low, high, value=sections.DEFAULT_EFFORT, step=10, elem_id="effort",
                                    label="Effort: steps of search per model")  # fmt: skip
            c["search_button"] = gr.Button("Search harder", variant="primary", elem_id="search_button")
        c["search_note"] = gr.Markdown(elem_id="search_note")
        c["search_table"] = gr.Dataframe(interactive=False, elem_id="search_table")
        with gr.Row():
            for name, label in (("search_gabic", "GABIC"), ("search_zou", "Zou2022")):
                c[name] = gr.ImageSlider(label=f"{label}: plain | searched", type="pil", format="png",
                                         max_height=360, elem_id=name)  # fmt: skip
        gr.Markdown(texts.SEARCH, elem_classes="explain")
    return Sections(c, accordions, gr.State(()), gr.State(0))


def section_handlers(app: App) -> dict[str, Callable[..., dict[str, Any]]]:
    """Section name -> ``handler(session, quality, k, block, head, opacity, entropy_model, channel,
    slices, all_nodes, effort)`` giving that section's views (the encoder search's from the cache
    only: its button computes them)."""
    explorer = app.explorer
    return {
        "all_heads": lambda s, q, kk, b, h, o, m, ch, sl, al, ef: sections.all_heads(explorer, s, q, kk),
        "anatomy": lambda s, q, kk, b, h, o, m, ch, sl, al, ef: app.anatomy(s, q, kk, b, h),
        "numbers": lambda s, q, kk, b, h, o, m, ch, sl, al, ef: app.numbers(s, q, kk),
        "rd": lambda s, q, kk, b, h, o, m, ch, sl, al, ef: app.known_rd(s, q, kk),
        "entropy": lambda s, q, kk, b, h, o, m, ch, sl, al, ef: sections.entropy(explorer, s, q, kk, m, ch),
        "progressive": lambda s, q, kk, b, h, o, m, ch, sl, al, ef: sections.progressive(
            explorer, s, q, kk, sl
        ),
        "graph": lambda s, q, kk, b, h, o, m, ch, sl, al, ef: sections.graph(explorer, s, q, kk, b, h, al),
        "same_size": lambda s, q, kk, b, h, o, m, ch, sl, al, ef: sections.same_size(explorer, s, q, kk),
        "equal_rate": lambda s, q, kk, b, h, o, m, ch, sl, al, ef: sections.equal_rate(explorer, s, q, o),
        "search": lambda s, q, kk, b, h, o, m, ch, sl, al, ef: sections.search_harder(
            explorer, s, q, kk, ef, compute=False
        ),
    }


def _for_gradio(handler: Callable[..., dict[str, Any]], views: tuple[str, ...]) -> Callable[..., Any]:
    """:func:`app.messages.guarded` for Gradio: a tuple of the views, or the value itself when
    there is one view (Gradio takes a one-output event's return value as that output's value)."""
    run = guarded(views, state=False)(handler)

    def call(*args: Any) -> Any:
        values = run(*args, flat=True)
        return values[0] if len(views) == 1 else values

    return call


def wire_sections(
    app: App, parts: Sections, session: gr.State, inputs: list[Any], status: gr.Markdown
) -> None:
    """Connect open/close, the sections' own widgets, and the redraw of the open sections when
    :attr:`Sections.due` changes (``inputs``: quality, k, block, head, opacity; ``status``: the
    page's status line, which the encoder search's button writes)."""
    c = parts.components
    handlers = section_handlers(app)
    extra = [c["entropy_model"], c["channel"], c["slices"], c["all_nodes"], c["effort"]]
    section_inputs = [session, *inputs, *extra]

    def opener(name: str) -> Callable[[tuple[str, ...]], tuple[str, ...]]:
        return lambda names: tuple(sorted({*(names or ()), name}))

    def closer(name: str) -> Callable[[tuple[str, ...]], tuple[str, ...]]:
        return lambda names: tuple(n for n in names or () if n != name)

    for name, views in SECTION_VIEWS.items():
        outputs = [c[v] for v in views]
        accordion = parts.accordions[name]
        accordion.expand(opener(name), parts.open_names, parts.open_names, queue=False, api_name=False).then(
            _for_gradio(handlers[name], views), section_inputs, outputs, api_name=False
        )
        accordion.collapse(closer(name), parts.open_names, parts.open_names, queue=False, api_name=False)
    # the sections' own widgets
    entropy_channel = _for_gradio(
        lambda s, q, kk, m, ch: sections.entropy_channel(app.explorer, s, q, kk, m, ch), ("channel_maps",)
    )
    c["channel"].release(entropy_channel,
                         [session, inputs[0], inputs[1], c["entropy_model"], c["channel"]], [c["channel_maps"]],
                         api_name=False, trigger_mode="always_last")  # fmt: skip
    entropy_all = guarded(SECTION_VIEWS["entropy"], state=False)(handlers["entropy"])
    c["entropy_model"].input(lambda *a: entropy_all(*a[:7], -1, *a[8:], flat=True), section_inputs,
                             [c[v] for v in SECTION_VIEWS["entropy"]], api_name=False)  # fmt: skip
    for name, widget, event in (("progressive", c["slices"], "input"), ("graph", c["all_nodes"], "input")):
        getattr(widget, event)(_for_gradio(handlers[name], SECTION_VIEWS[name]), section_inputs,
                               [c[v] for v in SECTION_VIEWS[name]], api_name=False,
                               trigger_mode="always_last")  # fmt: skip

    # encoder search: the button computes (one search at a time on the server), the effort slider
    # shows what is cached for its value
    search = guarded(sections.SEARCH_VIEWS, state=False)(
        lambda s, q, kk, ef, progress=None: sections.search_harder(app.explorer, s, q, kk, ef, progress)
    )

    def on_search(state: Any, q: float, kk: int, ef: float, progress=gr.Progress()) -> Any:  # noqa: B008
        return search(state, q, kk, ef, progress=progress, flat=True)

    search_inputs = [session, inputs[0], inputs[1], c["effort"]]
    c["search_button"].click(on_search, search_inputs, [status, *(c[v] for v in SECTION_VIEWS["search"])],
                             api_name=False, concurrency_limit=1, concurrency_id="encoder_search")  # fmt: skip
    c["effort"].input(_for_gradio(handlers["search"], SECTION_VIEWS["search"]), section_inputs,
                      [c[v] for v in SECTION_VIEWS["search"]], api_name=False, trigger_mode="always_last")  # fmt: skip

    names = list(SECTION_VIEWS)
    refresh_outputs = [c[v] for name in names for v in SECTION_VIEWS[name]]

    def refresh_open_sections(open_names: tuple[str, ...] | None, *rest: Any) -> tuple[Any, ...]:
        values: list[Any] = []
        for name in names:
            views = SECTION_VIEWS[name]
            if name in (open_names or ()) and rest[0] is not None:
                values.extend(guarded(views, state=False)(handlers[name])(*rest, flat=True))
            else:
                values.extend(gr.skip() for _ in views)
        return tuple(values)

    parts.due.change(refresh_open_sections, [parts.open_names, *section_inputs], refresh_outputs,
                     api_name=False, queue=False)  # fmt: skip


__all__ = [
    "BITS_OPACITY",
    "SECTION_VIEWS",
    "Sections",
    "build_sections",
    "refresh_due",
    "section_handlers",
    "wire_sections",
]
