"""The Gradio layout and event wiring (no computation here: see :mod:`app.handlers`)."""

from __future__ import annotations

from typing import Any

import gradio as gr

from gabic.viz import METRIC_HEADERS

from . import texts
from .handlers import VIEWS, App, failure_message, guarded
from .inputs import SAMPLES, PreparedImage, sample_image
from .service import BLOCKS
from .session import Session
from .weights import DISPLAY_NAMES

INSPECTOR_VIEWS = ("status", "inspector", "window_attention", "node_info", "neighbours", "edge_choice", "anatomy",
                   "all_heads")  # fmt: skip
#: Events run at the same time. Each analysis has a model of its own, so this bounds CPU load and
#: working memory, not correctness.
CONCURRENCY_LIMIT = 2
QUEUE_SIZE = 32
#: Gradio's own copies of uploads, samples and reports: every 30 min, delete those older than 1 h.
DELETE_CACHE = (1800, 3600)
#: Largest upload Gradio accepts, in bytes (decoding is refused above 40 MP anyway: gabic.codec.images).
MAX_FILE_SIZE = 25 * 1024 * 1024

CSS = """
#status {font-size: 15px}
.explain {font-size: 13px; color: var(--body-text-color-subdued)}
"""


def build_demo(app: App, initial: PreparedImage | None = None) -> gr.Blocks:
    """The whole UI. ``initial`` (analysed already) is shown to every new session."""
    explorer = app.explorer
    problem = explorer.source.problem()
    qualities = explorer.source.common_qualities() or [1, 2, 3, 4]
    low_k, high_k = explorer.k_range()
    trained_k = explorer.trained_k() if not problem else None
    heads = explorer.heads() if not problem else 8
    start_quality = qualities[min(1, len(qualities) - 1)]

    with gr.Blocks(title="GABIC explorer", fill_width=True, delete_cache=DELETE_CACHE) as demo:
        session = gr.State(None)
        gr.Markdown(texts.INTRO)
        weights_lines = explorer.source.description()
        gr.Markdown("**Weights in use** — " + " · ".join(
            f"{DISPLAY_NAMES[a]}: {w}" for a, w in weights_lines.items()), elem_classes="explain")  # fmt: skip
        status = gr.Markdown(
            f"Problem: {problem}" if problem else "Loading the sample photo…", elem_id="status"
        )

        with gr.Row():
            with gr.Column(scale=1, min_width=300):
                upload = gr.Image(label="Your photo (drop, paste or click)", type="filepath", image_mode=None,
                                  sources=["upload", "clipboard"], height=260, elem_id="upload")  # fmt: skip
                image_info = gr.Markdown(elem_id="image_info")
                samples = gr.Gallery(
                    value=[(sample_image(name), name) for name in SAMPLES], label="Samples",
                    columns=4, height=110, allow_preview=False, elem_id="samples",
                )  # fmt: skip
                gr.Markdown(texts.INPUT, elem_classes="explain")
            with gr.Column(scale=1, min_width=300):
                # A slider needs two ends: with a single quality available it shows q1…q4, fixed.
                single = len(qualities) == 1
                quality = gr.Slider(1 if single else min(qualities), 4 if single else max(qualities),
                                    value=start_quality, step=1, interactive=not single, elem_id="quality",
                                    label=f"Quality (only q{qualities[0]} available)" if single
                                    else "Quality (q1 … q4)")  # fmt: skip
                k = gr.Slider(low_k, high_k, value=trained_k or low_k, step=1, elem_id="k",
                              label=f"k — neighbours per node in GABIC (trained value: {trained_k})",
                              info=f"k ≠ {trained_k} is evaluated out of distribution")  # fmt: skip
                block = gr.Radio(list(BLOCKS), value=BLOCKS[0], label="Attention block",
                                 elem_id="block")  # fmt: skip
                head = gr.Radio(["mean", *[str(h) for h in range(1, heads + 1)]], value="mean", label="Head",
                                elem_id="head")  # fmt: skip
                gr.Markdown(texts.CONTROLS, elem_classes="explain")

        with gr.Accordion("Reconstructions and metrics", open=True):
            with gr.Row():
                slider_gabic = gr.ImageSlider(label="Original | GABIC", type="pil", max_height=420)
                slider_zou = gr.ImageSlider(label="Original | Zou2022", type="pil", max_height=420)
            metrics = gr.Dataframe(headers=METRIC_HEADERS, interactive=False, elem_id="metrics",
                                   label="Metrics (real bitstream)")  # fmt: skip
            gr.Markdown(texts.RECONSTRUCTION, elem_classes="explain")

        with gr.Accordion("Bit allocation", open=True):
            part = gr.Radio(["total", "y", "z"], value="total", label="Bits of", elem_id="part")
            with gr.Row():
                bits_gabic = gr.Plot(label="GABIC bits", elem_id="bits_gabic")
                bits_zou = gr.Plot(label="Zou2022 bits", elem_id="bits_zou")
                bits_diff = gr.Plot(label="Difference", elem_id="bits_diff")
            bits_summary = gr.Markdown(elem_id="bits_summary")
            gr.Markdown(texts.BITS, elem_classes="explain")

        with gr.Accordion("Graph inspector", open=True):
            with gr.Row():
                with gr.Column(scale=1):
                    inspector = gr.Image(label="Click a point", type="pil", interactive=False, elem_id="inspector",
                                         height=520)  # fmt: skip
                with gr.Column(scale=1):
                    window_attention = gr.Plot(label="Attention over the window", elem_id="window_attention")
                    node_info = gr.Markdown(elem_id="node_info")
            gr.Markdown(texts.INSPECTOR, elem_classes="explain")
            neighbours = gr.Dataframe(
                interactive=False, elem_id="neighbours", label="Neighbours of the clicked node"
            )
            gr.Markdown(texts.TABLE, elem_classes="explain")

        with gr.Accordion("All heads", open=False):
            all_heads = gr.Plot(elem_id="all_heads")
            gr.Markdown(texts.HEADS, elem_classes="explain")

        with gr.Accordion("Score anatomy", open=False):
            edge_choice = gr.Dropdown(label="Edge", choices=[], elem_id="edge_choice")
            anatomy = gr.Plot(elem_id="anatomy")
            gr.Markdown(texts.ANATOMY, elem_classes="explain")

        with gr.Accordion("Rate–distortion and k sweep", open=False):
            with gr.Row():
                rd_button = gr.Button("Compute all RD points (q1…q4, JPEG, WebP, AVIF)")
                sweep_button = gr.Button("Run the k sweep")
            rd = gr.Plot(elem_id="rd")
            k_sweep = gr.Plot(elem_id="k_sweep")
            gr.Markdown(texts.RD, elem_classes="explain")

        with gr.Accordion("Export and numbers", open=False):
            export_button = gr.Button("Export HTML report")
            report = gr.File(label="Report", elem_id="report")
            gr.Markdown(texts.EXPORT, elem_classes="explain")
            summary = gr.JSON(label="Numbers", elem_id="summary")

        components = {
            "status": status, "image_info": image_info, "slider_gabic": slider_gabic, "slider_zou": slider_zou,
            "metrics": metrics, "bits_gabic": bits_gabic, "bits_zou": bits_zou, "bits_diff": bits_diff,
            "bits_summary": bits_summary, "inspector": inspector, "window_attention": window_attention,
            "node_info": node_info, "neighbours": neighbours, "edge_choice": edge_choice, "anatomy": anatomy,
            "all_heads": all_heads, "rd": rd, "summary": summary, "k_sweep": k_sweep, "report": report,
        }  # fmt: skip
        controls = [quality, k, block, head, part]
        full_outputs = [session, *(components[name] for name in VIEWS)]
        inspector_outputs = [session, *(components[name] for name in INSPECTOR_VIEWS)]

        load_image = guarded(VIEWS)(app.load_image)
        render = guarded(VIEWS, state=False)(app.render)
        click = guarded(INSPECTOR_VIEWS)(app.click)
        choose_edge = guarded(("status", "anatomy"))(app.choose_edge)
        rate_distortion = guarded(("status", "rd"), state=False)(app.rate_distortion)
        sweep = guarded(("status", "k_sweep"), state=False)(app.k_sweep)
        export = guarded(("status", "report"), state=False)(app.export)

        def on_upload(
            path: str | None,
            q: int,
            kk: int,
            b: str,
            h: str,
            p: str,
            progress=gr.Progress(),  # noqa: B008
        ) -> Any:
            if path is None:
                return tuple(gr.skip() for _ in full_outputs)
            return load_image(path, q, kk, b, h, p, progress=progress, flat=True)

        def on_sample(
            q: int,
            kk: int,
            b: str,
            h: str,
            p: str,
            evt: gr.SelectData,
            progress=gr.Progress(),  # noqa: B008
        ) -> Any:
            name = SAMPLES[evt.index if isinstance(evt.index, int) else 0]
            return guarded(VIEWS)(app.load_sample)(name, q, kk, b, h, p, progress=progress, flat=True)

        def on_controls(state: Any, q: int, kk: int, b: str, h: str, p: str, progress=gr.Progress()) -> Any:  # noqa: B008
            if state is None:
                return tuple(gr.skip() for _ in full_outputs)
            return (state, *render(state, q, kk, b, h, p, progress=progress, flat=True))

        def on_click(state: Any, q: int, kk: int, b: str, h: str, p: str, evt: gr.SelectData) -> Any:
            return click(state, evt.index, q, kk, b, h, p, flat=True)

        def on_edge(state: Any, edge: Any, q: int, kk: int, b: str, h: str) -> Any:
            return choose_edge(state, edge, q, kk, b, h, flat=True)

        def on_rd(state: Any, q: int, kk: int, progress=gr.Progress()) -> Any:  # noqa: B008
            return rate_distortion(state, q, kk, progress=progress, flat=True)

        def on_sweep(state: Any, q: int, progress=gr.Progress()) -> Any:  # noqa: B008
            return sweep(state, q, progress=progress, flat=True)

        def on_export(state: Any, q: int, kk: int, b: str, h: str, p: str) -> Any:
            return export(state, q, kk, b, h, p, flat=True)

        def on_load(state: Any, q: int, kk: int, b: str, h: str, p: str, progress=gr.Progress()) -> Any:  # noqa: B008
            if initial is None or problem:
                return tuple(gr.skip() for _ in full_outputs)
            fresh = Session.start(initial)
            return (fresh, *render(fresh, q, kk, b, h, p, progress=progress, flat=True))

        def api_analyze(path: str, q: float, kk: float) -> Any:
            """Analyse an image file with both models; returns image key, size and metrics."""
            try:
                return app.api_metrics(path, int(q), int(kk))
            except Exception as error:
                raise gr.Error(failure_message(error).removeprefix("Problem: ")) from None

        upload.input(on_upload, [upload, *controls], full_outputs, api_name="upload", show_progress="full")
        samples.select(on_sample, controls, full_outputs, api_name=False)
        quality.input(
            on_controls, [session, *controls], full_outputs, api_name=False, trigger_mode="always_last"
        )
        k.release(on_controls, [session, *controls], full_outputs, api_name=False, trigger_mode="always_last")
        for widget in (block, head, part):
            widget.input(on_controls, [session, *controls], full_outputs, api_name=False,
                         trigger_mode="always_last")  # fmt: skip
        inspector.select(on_click, [session, *controls], inspector_outputs, api_name=False,
                         trigger_mode="always_last")  # fmt: skip
        edge_choice.input(on_edge, [session, edge_choice, quality, k, block, head],
                          [session, status, anatomy], api_name=False)  # fmt: skip
        rd_button.click(on_rd, [session, quality, k], [status, rd], api_name=False)
        sweep_button.click(on_sweep, [session, quality], [status, k_sweep], api_name=False)
        export_button.click(on_export, [session, *controls], [status, report], api_name=False)
        demo.load(on_load, [session, *controls], full_outputs, api_name=False)
        api_inputs = [
            gr.Image(type="filepath", visible=False),
            gr.Number(visible=False),
            gr.Number(visible=False),
        ]
        api_output = gr.JSON(visible=False)
        trigger = gr.Button(visible=False)
        trigger.click(api_analyze, api_inputs, api_output, api_name="analyze")
    return demo


def launch_queue(demo: gr.Blocks) -> gr.Blocks:
    """Enable the queue with the app's concurrency limits."""
    return demo.queue(default_concurrency_limit=CONCURRENCY_LIMIT, max_size=QUEUE_SIZE)
