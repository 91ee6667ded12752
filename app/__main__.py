"""``python -m app [--host H] [--port P] [--device cpu|cuda] [--checkpoints DIR] [--family auto|variable-rate|one-rate]``:
start the explorer.

Weights: the shipped models (``gabic.zoo``; ``$GABIC_WEIGHTS_DIR`` points elsewhere), or with
``--checkpoints DIR`` the authors' files laid out as ``DIR/gabic/q{1..4}-model.pth.tar`` and
``DIR/zou2022/q{1..4}-model.pth.tar`` (an architecture missing there falls back to the shipped weights).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import ctypes.util
import logging
import sys
import threading
import time

from .warmup import WarmupPage

log = logging.getLogger("gabic.app")
#: When this module was imported (the start of ``python -m app``), for the start-up log line.
_STARTED = time.perf_counter()
#: glibc's ``mallopt`` parameter for the most arenas (malloc.h).
M_ARENA_MAX = -8


def _address_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app", description="GABIC vs Zou2022 exploration app",
                                     add_help=add_help)  # fmt: skip
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from .inputs import DEFAULT_MAX_SIDE, SAMPLES
    from .service import DEFAULT_CACHE_BYTES
    from .weights import FAMILY_CHOICES

    parser = _address_parser()
    parser.add_argument("--device", choices=["cpu", "cuda"], default=None,
                        help="where the models run (default: cuda when available, else cpu)")  # fmt: skip
    parser.add_argument("--checkpoints", default=None, metavar="DIR",
                        help="folder of the authors' checkpoints: DIR/gabic/q1-model.pth.tar ... DIR/zou2022/...")  # fmt: skip
    parser.add_argument("--family", choices=FAMILY_CHOICES, default="auto",
                        help="shipped models to show: variable-rate when both files exist (auto), or one kind")  # fmt: skip
    parser.add_argument("--max-side", type=int, default=None,
                        help=f"downscale inputs to this longest side (default {DEFAULT_MAX_SIDE} on CPU, "
                             "1024 on GPU)")  # fmt: skip
    parser.add_argument("--sample", default=SAMPLES[0], choices=SAMPLES,
                        help="sample photo analysed at startup")  # fmt: skip
    parser.add_argument("--no-prefetch", action="store_true",
                        help="do not analyse the other qualities of a new image in the background")  # fmt: skip
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    parser.add_argument("--cache-mb", type=int, default=DEFAULT_CACHE_BYTES // 2**20,
                        help="memory budget of the analysis cache in MB (default %(default)s)")  # fmt: skip
    return parser.parse_args(argv)


def _few_malloc_arenas(count: int = 2) -> None:
    """Let glibc's allocator keep at most ``count`` arenas (its default is 8 per core): every
    thread that serves a request otherwise gets an arena of its own, each keeping the memory an
    analysis freed, and the server's resident memory grows with the number of threads ever used.
    A no-op without glibc; must run before the threads start."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt(M_ARENA_MAX, count)


def main(argv: list[str] | None = None) -> None:
    _few_malloc_arenas()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # the address answers at once with a "warming up" page, while the heavy imports and the models load
    address, _ = _address_parser(add_help=False).parse_known_args(argv)
    warmup = WarmupPage(address.host, address.port)
    try:
        _start(argv, warmup)
    finally:
        warmup.stop()


def _start(argv: list[str] | None, warmup: WarmupPage) -> None:
    args = parse_args(argv)
    import gradio
    import torch

    from .handlers import App
    from .inputs import DEFAULT_MAX_SIDE, prepare_image, sample_image
    from .service import Explorer
    from .ui import MAX_FILE_SIZE, SLIDER_KEYS_JS, build_demo, launch_queue
    from .weights import DISPLAY_NAMES, WeightsSource

    log.info("imports done %.1f s after start", time.perf_counter() - _STARTED)
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: no CUDA device is available")
    if args.threads:
        torch.set_num_threads(args.threads)
    source = WeightsSource(args.checkpoints, args.device, args.family)
    max_side = args.max_side or (1024 if source.device.type == "cuda" else DEFAULT_MAX_SIDE)
    explorer = Explorer(source, cache_bytes=args.cache_mb * 2**20)
    app = App(explorer, max_side=max_side, prefetch=not args.no_prefetch)
    for arch, line in source.description().items():
        log.info("%s: %s (folder %s)", DISPLAY_NAMES[arch], line, source.folder(arch))
    initial = None
    problem = source.problem()
    if problem:
        log.warning(problem)
    else:
        initial = prepare_image(sample_image(args.sample), max_side)
        qualities = source.common_qualities()
        quality = qualities[min(1, len(qualities) - 1)]

        def analyse_sample() -> None:
            # while Gradio starts: a page opened meanwhile waits for this very analysis (the cache
            # computes each analysis once); if it fails, the page shows the problem
            start = time.perf_counter()
            try:
                explorer.pair(initial, quality)
            except Exception as error:
                log.error("could not analyse the sample photo: %s", error)
                return
            log.info("sample %s analysed at q%d in %.1f s", args.sample, quality,
                     time.perf_counter() - start)  # fmt: skip
            app.prefetcher.around(initial, quality, explorer.trained_k() or 0)

        threading.Thread(target=analyse_sample, name="sample-analysis", daemon=True).start()
    demo = launch_queue(build_demo(app, initial, args.sample if initial is not None else None))
    # the pictures' folder is served as it is: Gradio neither hashes nor copies a file of it (about
    # 4 ms per picture, seven per event), and a picture drawn before keeps its address
    gradio.set_static_paths([app.image_files.path])
    warmup.stop()
    demo.launch(server_name=args.host, server_port=args.port, show_error=False, css=_css(), js=SLIDER_KEYS_JS,
                allowed_paths=[str(app.export_dir)], max_file_size=MAX_FILE_SIZE)  # fmt: skip


def _css() -> str:
    from .ui import CSS

    return CSS


if __name__ == "__main__":
    main()
