"""The Gradio layout and event wiring (no computation here: see :mod:`app.handlers`)."""

from __future__ import annotations

from typing import Any

import gradio as gr

from gabic.viz import METRIC_HEADERS

from . import texts
from .diagram import codec_diagram
from .handlers import BITS_OPACITY, INSPECTOR_PART, VIEWS, App
from .inputs import MAX_UPLOAD_BYTES, SAMPLES, PreparedImage, sample_image
from .links import link_query, parse_link
from .messages import failure_message, guarded, previous_photo_note
from .prefetch import QUALITY_STEP
from .service import BLOCKS
from .session import Session
from .ui_sections import build_sections, refresh_due, wire_sections
from .uploads import PhotoInput
from .weights import DISPLAY_NAMES

#: The views a change of the controls redraws (the photo's description stays).
CONTROL_VIEWS = tuple(name for name in VIEWS if name != "image_info")
INSPECTOR_VIEWS = ("status", "inspector", "window_attention", "node_info", "neighbours")
#: Events run at the same time. Each analysis has a model of its own, so this bounds CPU load and
#: working memory, not correctness.
CONCURRENCY_LIMIT = 2
QUEUE_SIZE = 32
#: Gradio's own copies of uploads, samples and reports: every 30 min, delete those older than 1 h.
DELETE_CACHE = (1800, 3600)
#: Largest upload Gradio accepts, in bytes (decoding is refused above 40 MP anyway: gabic.codec.images);
#: the handlers refuse a larger file that reaches them another way (the API) with the same limit.
MAX_FILE_SIZE = MAX_UPLOAD_BYTES

CSS = """
#status {font-size: 15px}
#codec_diagram {overflow-x: auto}
.hidden-link {display: none !important}
.explain {font-size: 13px; color: var(--body-text-color-subdued)}
"""


#: Keyboard use of the quality and k sliders ends like a drag (Gradio sends "release" on pointer
#: up and when the number box loses focus): Enter in a number box leaves it, and a key that moved
#: the range sends the pointer-up the range listens for. Runs once per page (``launch(js=...)``).
SLIDER_KEYS_JS = """() => {
  const boxes = "#quality input[type=number], #k input[type=number]";
  const ranges = "#quality input[type=range], #k input[type=range]";
  const moves = ["ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown", "PageUp", "PageDown", "Home", "End"];
  document.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && event.target.matches && event.target.matches(boxes)) { event.target.blur(); }
  });
  document.addEventListener("keyup", (event) => {
    if (moves.includes(event.key) && event.target.matches && event.target.matches(ranges)) {
      event.target.dispatchEvent(new PointerEvent("pointerup", {bubbles: true}));
    }
  });
}"""


#: The link's query (from the server, with the views) -> the address bar and the "Link to this
#: view" box (runs in the browser; no server call).
UPLOAD_NOTE = "This view shows an uploaded photo: uploads cannot travel in a URL (pick a sample to share)."
URL_JS = (
    "(query) => { if (!query) { return '" + UPLOAD_NOTE + "'; }"
    " const url = window.location.origin + window.location.pathname + query;"
    " window.history.replaceState(null, '', url); return url; }"
)


def build_demo(
    app: App, initial: PreparedImage | None = None, initial_sample: str | None = None
) -> gr.Blocks:
    """The whole UI. ``initial`` (analysed already; the sample ``initial_sample``) is shown to
    every new session unless the page's link names another view."""
    explorer = app.explorer
    problem = explorer.source.problem()
    qualities = explorer.source.common_qualities() or [1, 2, 3, 4]
    low_k, high_k = explorer.k_range()
    trained_k = explorer.trained_k() if not problem else None
    heads = explorer.heads() if not problem else 8
    start_quality = qualities[min(1, len(qualities) - 1)]
    continuous = not problem and explorer.source.variable_rate()
    head_choices = ["mean", *[str(h) for h in range(1, heads + 1)]]

    with gr.Blocks(title="GABIC explorer", fill_width=True, delete_cache=DELETE_CACHE) as demo:
        session = gr.State(None)
        gr.Markdown(texts.INTRO)
        with gr.Accordion("The codec at a glance", open=True):
            gr.HTML(codec_diagram())
        weights_lines = explorer.source.description()
        gr.Markdown("**Weights in use** — " + " · ".join(
            f"{DISPLAY_NAMES[a]}: {w}" for a, w in weights_lines.items()), elem_classes="explain")  # fmt: skip
        status = gr.Markdown(
            f"Problem: {problem}" if problem else "Loading the sample photo…", elem_id="status"
        )

        with gr.Row():
            with gr.Column(scale=1, min_width=300):
                # the file reaches the handler unread: the input policy decides what it is (app.uploads)
                upload = PhotoInput(label="Your photo (drop, paste or click)", type="filepath", image_mode=None,
                                    sources=["upload", "clipboard"], height=260, elem_id="upload")  # fmt: skip
                image_info = gr.Markdown(elem_id="image_info")
                samples = gr.Gallery(
                    value=[(sample_image(name), name) for name in SAMPLES], label="Samples",
                    columns=4, height=110, allow_preview=False, elem_id="samples",
                )  # fmt: skip
                gr.Markdown(texts.INPUT, elem_classes="explain")
            with gr.Column(scale=1, min_width=300):
                # A slider needs two ends: with a single quality available it shows q1…q4, fixed.
                single = len(qualities) == 1 and not continuous
                if continuous:
                    quality = gr.Slider(1, 4, value=start_quality, step=QUALITY_STEP, elem_id="quality",
                                        label="Quality (1 … 4: one variable-rate model each, the paper's λ "
                                        f"at 1, 2, 3, 4; the slider moves in steps of {QUALITY_STEP:g}, the "
                                        "box takes any hundredth)")  # fmt: skip
                else:
                    quality = gr.Slider(1 if single else min(qualities), 4 if single else max(qualities),
                                        value=start_quality, step=1, interactive=not single, elem_id="quality",
                                        label=f"Quality (only q{qualities[0]} available)" if single
                                        else "Quality (q1 … q4)")  # fmt: skip
                k = gr.Slider(low_k, high_k, value=trained_k or low_k, step=1, elem_id="k",
                              label=f"k — neighbours per node in GABIC (trained value: {trained_k})",
                              info=f"k ≠ {trained_k} is evaluated out of distribution")  # fmt: skip
                block = gr.Radio(list(BLOCKS), value=BLOCKS[0], label="Attention block",
                                 elem_id="block")  # fmt: skip
                head = gr.Radio(head_choices, value="mean", label="Head", elem_id="head")
                gr.Markdown(texts.CONTROLS, elem_classes="explain")
                share = gr.Textbox(label="Link to this view", interactive=False, elem_id="share",
                                   buttons=["copy"])  # fmt: skip
                share_query = gr.Textbox(elem_id="share_query", elem_classes="hidden-link", show_label=False,
                                         container=False)  # fmt: skip
                gr.Markdown(texts.LINKS, elem_classes="explain")

        with gr.Accordion("Reconstructions and metrics", open=True):
            with gr.Row():
                slider_gabic = gr.ImageSlider(
                    label="Original | GABIC", type="pil", format="png", max_height=420
                )
                slider_zou = gr.ImageSlider(
                    label="Original | Zou2022", type="pil", format="png", max_height=420
                )
            metrics = gr.Dataframe(headers=METRIC_HEADERS, interactive=False, elem_id="metrics",
                                   label="Metrics (real bitstream)")  # fmt: skip
            gr.Markdown(texts.RECONSTRUCTION, elem_classes="explain")

        with gr.Accordion("Bit allocation", open=True):
            with gr.Row():
                part = gr.Radio(["total", "y", "z"], value="total", label="Bits of", elem_id="part")
                opacity = gr.Slider(0, 1, value=BITS_OPACITY, step=0.05, label="Map opacity over the photo",
                                    elem_id="opacity")  # fmt: skip
            with gr.Row():
                bits_gabic = gr.Image(
                    label="GABIC bits", type="filepath", interactive=False, elem_id="bits_gabic"
                )
                bits_zou = gr.Image(
                    label="Zou2022 bits", type="filepath", interactive=False, elem_id="bits_zou"
                )
                bits_diff = gr.Image(
                    label="Difference", type="filepath", interactive=False, elem_id="bits_diff"
                )
            bits_summary = gr.Markdown(elem_id="bits_summary")
            gr.Markdown(texts.BITS, elem_classes="explain")
            gr.Markdown(texts.BITS_READABLE, elem_classes="explain")

        with gr.Accordion("Graph inspector", open=True):
            with gr.Row():
                with gr.Column(scale=1):
                    inspector = gr.Image(label="Click a point", type="pil", format="png", interactive=False, elem_id="inspector",
                                         height=520)  # fmt: skip
                with gr.Column(scale=1):
                    window_attention = gr.Image(label="Attention over the window", type="filepath", interactive=False,
                                                elem_id="window_attention")  # fmt: skip
                    node_info = gr.Markdown(elem_id="node_info")
            gr.Markdown(texts.INSPECTOR, elem_classes="explain")
            neighbours = gr.Dataframe(
                interactive=False, elem_id="neighbours", label="Neighbours of the clicked node"
            )
            gr.Markdown(texts.TABLE, elem_classes="explain")

        with gr.Accordion("Score anatomy", open=False, elem_id="sec_anatomy") as anatomy_section:
            edge_choice = gr.Dropdown(label="Edge", choices=[], elem_id="edge_choice")
            anatomy = gr.Plot(elem_id="anatomy")
            gr.Markdown(texts.ANATOMY, elem_classes="explain")

        equal_title = "Equal rate: GABIC and Zou2022 at the same file size"
        parts = build_sections(equal_title)

        with gr.Accordion("Rate–distortion and k sweep", open=False, elem_id="sec_rd") as rd_section:
            with gr.Row():
                rd_button = gr.Button("Compute all RD points (q1…q4, JPEG, WebP, AVIF)")
                sweep_button = gr.Button("Run the k sweep")
            rd = gr.Plot(elem_id="rd")
            k_sweep = gr.Plot(elem_id="k_sweep")
            gr.Markdown(texts.RD, elem_classes="explain")
        parts.add("anatomy", anatomy_section, anatomy=anatomy, edge_choice=edge_choice)
        parts.add("rd", rd_section, rd=rd)

        with gr.Accordion("Export and numbers", open=False, elem_id="sec_numbers") as numbers_section:
            export_button = gr.Button("Export HTML report")
            report = gr.File(label="Report", elem_id="report")
            gr.Markdown(texts.EXPORT, elem_classes="explain")
            summary = gr.JSON(label="Numbers", elem_id="summary")
        parts.add("numbers", numbers_section, summary=summary)

        components = {
            "status": status, "image_info": image_info, "slider_gabic": slider_gabic, "slider_zou": slider_zou,
            "metrics": metrics, "bits_gabic": bits_gabic, "bits_zou": bits_zou, "bits_diff": bits_diff,
            "bits_summary": bits_summary, "inspector": inspector, "window_attention": window_attention,
            "node_info": node_info, "neighbours": neighbours, "edge_choice": edge_choice, "anatomy": anatomy,
            "rd": rd, "summary": summary, "k_sweep": k_sweep, "report": report,
        }  # fmt: skip
        controls = [quality, k, block, head, part, opacity]
        # every event of the main views also names the link of the view it shows and, when a
        # section is open, a new value of parts.due (which redraws the open sections)
        link_outputs = [share_query, parts.due]
        full_outputs = [session, *(components[name] for name in VIEWS)]
        linked_outputs = [*full_outputs, *link_outputs]
        upload_outputs = [upload, *linked_outputs]
        control_outputs = [session, *(components[name] for name in CONTROL_VIEWS), *link_outputs]
        inspector_outputs = [session, *(components[name] for name in INSPECTOR_VIEWS), *link_outputs]
        bit_outputs = [bits_gabic, bits_zou, bits_diff, bits_summary]
        opened = parts.open_names

        load_upload = guarded(VIEWS)(app.load_upload)
        render_all = guarded(VIEWS, state=False)(app.render)
        render = guarded(CONTROL_VIEWS, state=False)(app.render)
        click = guarded(INSPECTOR_VIEWS)(app.click)
        inspect = guarded(INSPECTOR_PART, state=False)(app.inspect)
        choose_edge = guarded(("status", "anatomy"))(app.choose_edge)
        redraw_bits = guarded(("bits_gabic", "bits_zou", "bits_diff", "bits_summary"), state=False)(
            app.redraw_bits
        )
        rate_distortion = guarded(("status", "rd"), state=False)(app.rate_distortion)
        sweep = guarded(("status", "k_sweep"), state=False)(app.k_sweep)
        export = guarded(("status", "report"), state=False)(app.export)

        def on_upload(path: str | bytes | None, state: Any, q: float, kk: int, b: str, h: str, p: str,
                      o: float, names: tuple[str, ...], progress=gr.Progress()) -> Any:  # noqa: B008  # fmt: skip
            """An upload or paste (the inspector follows: :func:`on_inspector`); a refused file also
            leaves the photo box empty (a preview would be broken) and the views marked as old."""
            if path is None:
                return tuple(gr.skip() for _ in upload_outputs)
            result = load_upload(path, state, q, kk, b, h, p, progress=progress, flat=True, inspector=False)
            refused = not isinstance(result[0], Session)
            return (None if refused else gr.skip(), *with_link(result, q, kk, b, h, names))

        def on_inspector(state: Any, q: float, kk: int, b: str, h: str, p: str) -> Any:
            """The inspector's views, right after an upload or a slider move showed the numbers."""
            if state is None:
                return tuple(gr.skip() for _ in INSPECTOR_PART)
            return inspect(state, q, kk, b, h, p, flat=True)

        def on_emptied(path: str | bytes | None, state: Any) -> Any:
            """The photo box became empty (a refused file, one over the size limit, or its ×): the
            photo description says the views still show the previous photo."""
            if path is not None or not isinstance(state, Session):
                return gr.skip()
            return previous_photo_note(state)

        def on_sample(q: float, kk: int, b: str, h: str, p: str, o: float, names: tuple[str, ...],
                      evt: gr.SelectData, progress=gr.Progress()) -> Any:  # noqa: B008  # fmt: skip
            name = SAMPLES[evt.index if isinstance(evt.index, int) else 0]
            result = guarded(VIEWS)(app.load_sample)(name, q, kk, b, h, p, progress=progress, flat=True)
            return with_link(result, q, kk, b, h, names)

        def on_controls(state: Any, q: float, kk: int, b: str, h: str, p: str, o: float,
                        names: tuple[str, ...], progress=gr.Progress()) -> Any:  # noqa: B008  # fmt: skip
            """A slider or choice moved (the inspector follows: :func:`on_inspector`)."""
            if state is None:
                return tuple(gr.skip() for _ in control_outputs)
            views = render(state, q, kk, b, h, p, progress=progress, opacity=o, flat=True, inspector=False)
            return with_link((state, *views), q, kk, b, h, names)

        def on_opacity(state: Any, q: float, kk: int, p: str, o: float) -> Any:
            if state is None:
                return tuple(gr.skip() for _ in bit_outputs)
            return redraw_bits(state, q, kk, p, o, flat=True)

        def on_click(state: Any, q: float, kk: int, b: str, h: str, p: str, o: float, names: tuple[str, ...],
                     evt: gr.SelectData) -> Any:  # fmt: skip
            return with_link(click(state, evt.index, q, kk, b, h, p, flat=True), q, kk, b, h, names)

        def on_edge(state: Any, edge: Any, q: float, kk: int, b: str, h: str) -> Any:
            return choose_edge(state, edge, q, kk, b, h, flat=True)

        def on_rd(state: Any, q: float, kk: int, progress=gr.Progress()) -> Any:  # noqa: B008
            return rate_distortion(state, q, kk, progress=progress, flat=True)

        def on_sweep(state: Any, q: float, progress=gr.Progress()) -> Any:  # noqa: B008
            return sweep(state, q, progress=progress, flat=True)

        def on_export(state: Any, q: float, kk: int, b: str, h: str, p: str, o: float) -> Any:
            return export(state, q, kk, b, h, p, flat=True)

        def with_link(result: tuple, q: float, kk: int, b: str, h: str, names: tuple[str, ...]) -> tuple:
            """``result`` (new session first), the link query of the view it shows and the
            redraw of the open sections (:func:`refresh_due`)."""
            state = result[0]
            if not isinstance(state, Session):
                return (*result, gr.skip(), gr.skip())
            query = "" if state.sample is None else link_query(state.sample, q, kk, b, h, state.point)
            return (*result, query, refresh_due(names))

        def on_load(state: Any, q: float, kk: int, b: str, h: str, p: str, o: float, names: tuple[str, ...],
                    request: gr.Request, progress=gr.Progress()) -> Any:  # noqa: B008  # fmt: skip
            """A new page: the view its link names (sample, quality, k, block, head, point), else
            the initial sample."""
            controls_out = [gr.skip()] * 4
            if problem:
                return (*(gr.skip() for _ in linked_outputs), *controls_out)
            params = dict(request.query_params) if request is not None else {}
            low_q, high_q = (1, 4) if continuous else (min(qualities), max(qualities))
            link = parse_link(
                params, SAMPLES, BLOCKS, head_choices, (low_q, high_q), (low_k, high_k), continuous
            )
            q = link.quality if link.quality is not None else q
            kk = link.k if link.k is not None else kk
            b, h = link.block or b, link.head or h
            try:
                if link.sample is not None and link.sample != initial_sample:
                    fresh = app.new_session(sample_image(link.sample), link.sample)
                elif initial is not None:
                    fresh = Session.start(initial, initial_sample)
                else:
                    return (*(gr.skip() for _ in linked_outputs), *controls_out)
            except Exception as error:
                views = [gr.skip() for _ in VIEWS]
                views[VIEWS.index("status")] = failure_message(error)
                return (gr.skip(), *views, gr.skip(), gr.skip(), *controls_out)
            if link.point is not None:
                fresh = fresh.clicked(*link.point)
            values = list(render_all(fresh, q, kk, b, h, p, progress=progress, opacity=o, flat=True))
            if link.notes:
                index = VIEWS.index("status")
                values[index] = f"{values[index]} ({'; '.join(link.notes)})"
            return (*with_link((fresh, *values), q, kk, b, h, names), q, kk, b, h)

        def api_analyze(path: str | bytes | None, q: float, kk: float) -> Any:
            """Analyse an image file with both models; returns image key, size and metrics. A file
            the input policy refuses raises an error whose message is the page's sentence."""
            try:
                return app.api_metrics(path, q, int(kk))
            except Exception as error:
                # a user error is logged by the handler, an unexpected one with its trace by failure_message
                raise gr.Error(
                    failure_message(error).removeprefix("Problem: "), print_exception=False
                ) from None

        wire_sections(app, parts, session, [quality, k, block, head, opacity], status)
        # Every change of the main views shows its progress on the status line only: a loading overlay
        # on each output cost ~70 ms of the browser's time per cached scrub, and its animation took
        # CPU time from the analysis of an upload.
        quiet = {"api_name": False, "trigger_mode": "always_last", "show_progress_on": [status]}
        # the inspector's views follow each upload and slider move as an event of their own: drawing
        # them (about 0.1 s of the server) no longer delays the numbers, bit maps and reconstructions
        inspector_part = [components[name] for name in INSPECTOR_PART]
        follow = {"api_name": False, "show_progress": "hidden"}
        upload.input(on_upload, [upload, session, *controls, opened], upload_outputs, api_name="upload",
                     show_progress_on=[status]).then(on_inspector, [session, *controls[:5]], inspector_part,
                                                     **follow)  # fmt: skip
        upload.change(on_emptied, [upload, session], [image_info], api_name=False, queue=False,
                      show_progress="hidden")  # fmt: skip
        samples.select(
            on_sample, [*controls, opened], linked_outputs, api_name=False, show_progress_on=[status]
        )
        # a slider answers when it is let go (a drag computes only where it ends), when its number
        # box is left or Enter is pressed in it, and after a key moved it (SLIDER_KEYS_JS)
        for moved in (quality.release, k.release, block.input, head.input, part.input):
            moved(on_controls, [session, *controls, opened], control_outputs, **quiet).then(
                on_inspector, [session, *controls[:5]], inspector_part, **follow
            )
        opacity.release(on_opacity, [session, quality, k, part, opacity], bit_outputs, api_name=False,
                        trigger_mode="always_last")  # fmt: skip
        inspector.select(on_click, [session, *controls, opened], inspector_outputs, **quiet)
        edge_choice.input(on_edge, [session, edge_choice, quality, k, block, head],
                          [session, status, anatomy], api_name=False)  # fmt: skip
        rd_button.click(on_rd, [session, quality, k], [status, rd], api_name=False)
        sweep_button.click(on_sweep, [session, quality], [status, k_sweep], api_name=False)
        export_button.click(on_export, [session, *controls], [status, report], api_name=False)
        demo.load(on_load, [session, *controls, opened], [*linked_outputs, quality, k, block, head],
                  api_name=False)  # fmt: skip
        share_query.change(None, [share_query], [share], js=URL_JS, api_name=False)
        api_inputs = [
            PhotoInput(type="filepath", visible=False),
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
