"""Browser benchmark of the app (run by hand; not a test): upload → all numbers drawn, a quality
scrub and an inspector click once the results are cached, measured in Debian's Chromium.

    .venv/bin/python tests/e2e/bench_browser.py [--weights assets/weights] [--side 512] [--repeats 5]

Starts ``python -m app`` on a free port (``--max-side`` = ``--side``; prefetching the other
qualities in the background as the app does by default, unless ``--no-prefetch``), uploads ``--repeats``
photos of ``side`` px on the long side (the scikit-image "chelsea" photo, each a pixel taller so
that none is cached), then scrubs the quality between two computed values and clicks the
inspector at new points. A step ends when the browser shows its result (polled every animation
frame, then one more frame so it is painted). Writes ``results/bench/browser-<time>.json`` with the
machine, every sample and medians.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from app_server import ROOT, running_app  # noqa: E402
from test_browser import CHROMIUM, CHROMIUM_ARGS, click_in_picture  # noqa: E402

TIMEOUT_MS = 300_000
PAINTED = "() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(() => done(true))))"


def wait_text(page: object, selector: str, pattern: str) -> None:
    """Until the text of ``selector`` matches the regular expression ``pattern`` (checked every frame)."""
    page.wait_for_function(
        "([sel, pat]) => { const el = document.querySelector(sel); return el && new RegExp(pat).test(el.textContent); }",
        arg=[selector, pattern], polling="raf", timeout=TIMEOUT_MS,
    )  # fmt: skip
    page.evaluate(PAINTED)


def photos(folder: Path, side: int, count: int) -> list[tuple[Path, int, int]]:
    from app.inputs import sample_image

    base = sample_image("chelsea")
    out = []
    for i in range(count):
        width, height = side, round(base.height * side / base.width) + i
        path = folder / f"photo-{i}.png"
        base.resize((width, height)).save(path)
        out.append((path, width, height))
    return out


def quality_step(page: object) -> float:
    return float(page.locator("#quality input[type=range]").get_attribute("step") or 1)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=str(ROOT / "assets" / "weights"))
    parser.add_argument("--side", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-prefetch", action="store_true", help="start the app with --no-prefetch")
    parser.add_argument("--out", default=str(ROOT / "results" / "bench"))
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    from gabic.records import machine_description

    work = Path(args.out) / "browser-work"
    work.mkdir(parents=True, exist_ok=True)
    samples: dict[str, list[float]] = {"upload_s": [], "scrub_cached_s": [], "click_cached_s": []}
    with running_app(Path(args.weights), work / "server.log", max_side=args.side,
                     prefetch=not args.no_prefetch) as (url, _), \
            sync_playwright() as p:  # fmt: skip
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1800})
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(url)
        wait_text(page, "#status", "Analysed")
        step = quality_step(page)
        for path, width, height in photos(work, args.side, args.repeats):
            start = time.perf_counter()
            page.locator("#upload input[type=file]").set_input_files(str(path))
            wait_text(page, "#status", f"Analysed {width}×{height} px at q2\\.")
            page.locator("#bits_diff img").wait_for(state="visible")
            samples["upload_s"].append(time.perf_counter() - start)
        slider = page.locator("#quality input[type=range]")
        slider.focus()
        up = "q3" if step >= 1 else "q2.05"
        slider.press("ArrowRight")  # computes the next quality once
        wait_text(page, "#status", f"at {up.replace('.', '[.]')}\\.\\s*$")
        for i in range(2 * args.repeats):  # back and forth between two cached qualities
            target = "q2" if i % 2 == 0 else up
            start = time.perf_counter()
            slider.press("ArrowLeft" if i % 2 == 0 else "ArrowRight")
            wait_text(page, "#status", f"at {target.replace('.', '[.]')}\\.\\s*$")
            samples["scrub_cached_s"].append(time.perf_counter() - start)
        inspector = page.locator("#inspector img")
        inspector.scroll_into_view_if_needed()
        for i in range(2 * args.repeats):
            fx, fy = 0.15 + 0.07 * i, 0.8 - 0.05 * i
            before = page.locator("#node_info").text_content()
            start = time.perf_counter()
            click_in_picture(page, inspector, fx, fy)
            page.wait_for_function(
                "([sel, old]) => { const el = document.querySelector(sel); return el && el.textContent !== old; }",
                arg=["#node_info", before], polling="raf", timeout=TIMEOUT_MS,
            )  # fmt: skip
            page.evaluate(PAINTED)
            samples["click_cached_s"].append(time.perf_counter() - start)
        browser.close()
    report = {
        "what": "browser benchmark of the app (tests/e2e/bench_browser.py)",
        "when": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "weights": args.weights, "side": args.side, "quality_step": step, "prefetch": not args.no_prefetch,
        "machine": machine_description(),
        "samples": samples,
        "median_s": {name: statistics.median(values) for name, values in samples.items()},
        "targets_s": {"upload_s": 1.5, "scrub_cached_s": 0.25, "click_cached_s": 0.25},
    }  # fmt: skip
    out = Path(args.out) / f"browser-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report["median_s"], indent=2), "->", out)
    return report


if __name__ == "__main__":
    main()
