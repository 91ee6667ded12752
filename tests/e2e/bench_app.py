"""Speed of the app as a visitor meets it, in Debian's Chromium and under 30 simultaneous API users
(a benchmark run by hand or by ``make bench-app``; not a test).

    .venv/bin/python tests/e2e/bench_app.py [--weights assets/weights] [--repeats 5] [--users 30]

Every row is timed from the visitor's action until the browser has painted its result (polled
every animation frame, then one more frame):

- ``page_answers_s``: ``python -m app`` started → the address answers (the warming-up page);
- ``sample_drawn_s``: started → the page shows the analysed sample photo (a browser waiting on
  the address from the start);
- ``upload_s``: a new 481×321 photo set on the photo input → the status, metrics and bit maps of
  both models drawn;
- ``quality_release_s`` / ``k_release_s``: the quality or k slider dragged to a value never shown
  before and let go → numbers drawn. Measured ``--look`` seconds after the upload (a visitor
  looks at the page first; meanwhile the app prefetches around the view) and, as ``*_at_once_s``,
  right after the upload;
- ``quality_cached_s`` / ``click_cached_s``: back to a computed quality / a click in the inspector
  (timed from the click itself, the point in the picture located before);
- ``users``: ``--users`` gradio_client clients each upload a distinct photo to ``/analyze`` at
  the same moment: seconds per request (p50, p95, max), failures, and the server's peak resident
  memory (VmHWM).

Writes ``results/bench/app-speed-<cpu>-<time>.json`` with the machine (CPU model and the vector
extensions PyTorch can use), every sample and the medians next to the targets.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from app_server import ROOT, free_port, running_app  # noqa: E402
from test_browser import CHROMIUM, CHROMIUM_ARGS, picture_point  # noqa: E402

TIMEOUT_MS = 300_000
PAINTED = "() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(() => done(true))))"
#: Targets on a 2-core CPU (seconds; memory in MiB).
TARGETS = {
    "page_answers_s": 6.0, "sample_drawn_s": 9.0, "upload_s": 1.0, "quality_release_s": 0.6,
    "k_release_s": 0.6, "quality_cached_s": 0.15, "click_cached_s": 0.15, "users_p95_s": 20.0,
    "users_failed": 0, "users_peak_rss_mib": 2560,
}  # fmt: skip
WIDTH, HEIGHT = 481, 321


def wait_text(page: object, selector: str, pattern: str) -> None:
    """Until the text of ``selector`` matches the regular expression ``pattern`` (checked every frame)."""
    page.wait_for_function(
        "([sel, pat]) => { const el = document.querySelector(sel); return el && new RegExp(pat).test(el.textContent); }",
        arg=[selector, pattern], polling="raf", timeout=TIMEOUT_MS,
    )  # fmt: skip
    page.evaluate(PAINTED)


def photo(index: int) -> object:
    """Distinct 481×321 photos: crops of the scikit-image samples at several scales."""
    from app.inputs import SAMPLES, sample_image

    base = sample_image(SAMPLES[index % len(SAMPLES)])
    scale = 1.0 + 0.07 * (index // len(SAMPLES))
    big = base.resize((round(base.width * scale), round(base.height * scale)))
    left, top = (index * 7) % (big.width - WIDTH), (index * 5) % (big.height - HEIGHT)
    return big.crop((left, top, left + WIDTH, top + HEIGHT))


def cpu_flags() -> list[str]:
    """The vector extensions of this CPU that PyTorch's kernels choose between."""
    try:
        flags = next(
            line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")
        )
    except (OSError, StopIteration):
        return []
    wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "avx512_vnni")
    return [flag for flag in wanted if f" {flag}" in flags]


def drag_to(page: object, slider: str, value: float) -> tuple[float, float]:
    """Drag the range of ``slider`` from its thumb to ``value`` and let go (pointer events as a
    mouse); returns the value the slider ended at and the moment it was let go (the clock of a
    "release → drawn" row starts there)."""
    rng = page.locator(f"{slider} input[type=range]")
    box = rng.bounding_box()
    low, high = float(rng.get_attribute("min")), float(rng.get_attribute("max"))
    now = float(rng.input_value())
    y = box["y"] + box["height"] / 2

    def x_of(v: float) -> float:  # the thumb's centre travels the width less one thumb
        thumb = 16
        return box["x"] + thumb / 2 + (box["width"] - thumb) * (v - low) / (high - low)

    page.mouse.move(x_of(now), y)
    page.mouse.down()
    page.mouse.move(x_of(value), y, steps=6)
    released = time.perf_counter()
    page.mouse.up()
    return float(rng.input_value()), released


def label(quality: float) -> str:
    """The status's name of ``quality`` as a regular expression (``q2``, ``q2[.]75``)."""
    return f"q{quality:g}".replace(".", "[.]")


def wait_new(page: object, selector: str, old: str) -> None:
    """Until the text of ``selector`` differs from ``old``."""
    page.wait_for_function(
        "([sel, old]) => { const el = document.querySelector(sel); return el && el.textContent !== old; }",
        arg=[selector, old], polling="raf", timeout=TIMEOUT_MS,
    )  # fmt: skip


def upload_until_drawn(page: object, path: Path) -> tuple[float, float]:
    """Set the 481×321 photo ``path`` on the photo input and wait until the status, the metrics and
    the bit maps of both models are painted; returns the wall-clock times (``time.time()``, as the
    server's log has them) of the set and of the paint."""
    before = page.locator("#metrics").text_content()
    start = time.time()
    page.locator("#upload input[type=file]").set_input_files(str(path))
    wait_new(page, "#metrics", before)
    wait_text(page, "#status", f"Analysed {WIDTH}×{HEIGHT} px at q2[.]")
    page.locator("#bits_diff img").wait_for(state="visible")
    page.evaluate(PAINTED)
    return start, time.time()


def startup(weights: Path, work: Path, p: object) -> dict[str, float]:
    """Start the app with a browser already waiting on its address."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    env = {**os.environ, "GABIC_WEIGHTS_DIR": str(weights), "GRADIO_ANALYTICS_ENABLED": "False"}
    browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    page = browser.new_page(viewport={"width": 1400, "height": 1800})
    page.set_default_timeout(TIMEOUT_MS)
    start = time.perf_counter()
    with open(work / "startup.log", "w") as log:
        process = subprocess.Popen([sys.executable, "-m", "app", "--port", str(port)], cwd=ROOT, env=env,
                                   stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        answered = None
        while answered is None:
            try:
                urllib.request.urlopen(url, timeout=2)
                answered = time.perf_counter() - start
            except urllib.error.HTTPError:
                answered = time.perf_counter() - start  # the warming-up page (503)
            except OSError:
                time.sleep(0.02)
        page.goto(url)
        wait_text(page, "#status", "Analysed")
        drawn = time.perf_counter() - start
    finally:
        process.terminate()
        process.wait(timeout=30)
        browser.close()
    return {"page_answers_s": answered, "sample_drawn_s": drawn}


def server_peak_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def simultaneous_users(url: str, pid: int, work: Path, users: int) -> dict[str, object]:
    """``users`` clients upload distinct photos to ``/analyze`` at the same moment."""
    from gradio_client import Client, handle_file

    paths = []
    for i in range(users):
        path = work / f"user-{i}.png"
        photo(100 + i).save(path)
        paths.append(path)
    clients = [Client(url, verbose=False) for _ in range(users)]
    seconds: list[float] = []
    errors: list[str] = []
    barrier = threading.Barrier(users)
    lock = threading.Lock()

    def one(i: int) -> None:
        barrier.wait()
        start = time.perf_counter()
        try:
            clients[i].predict(handle_file(str(paths[i])), 2, 9, api_name="/analyze")
        except Exception as error:  # counted and reported
            with lock:
                errors.append(f"{type(error).__name__}: {error}"[:200])
            return
        with lock:
            seconds.append(time.perf_counter() - start)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(users)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ordered = sorted(seconds)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))] if ordered else float("nan")
    return {"users": users, "failed": len(errors), "errors": errors[:5], "seconds": seconds,
            "p50_s": statistics.median(ordered) if ordered else float("nan"), "p95_s": p95,
            "max_s": ordered[-1] if ordered else float("nan"), "peak_rss_mib": server_peak_mib(pid)}  # fmt: skip


def interactive(page: object, work: Path, repeats: int, look: float) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {name: [] for name in (
        "upload_s", "quality_release_at_once_s", "quality_release_s", "k_release_at_once_s", "k_release_s",
        "quality_cached_s", "click_cached_s")}  # fmt: skip
    targets = [(2.75, 10), (3.25, 8), (1.75, 10), (1.25, 8), (3.5, 10), (2.5, 8)]
    for i in range(repeats):
        for at_once in (True, False):
            path = work / f"photo-{i}-{int(at_once)}.png"
            photo(2 * i + int(at_once)).save(path)
            start, drawn = upload_until_drawn(page, path)
            samples["upload_s"].append(drawn - start)
            if not at_once:
                time.sleep(look)
            quality, k = targets[(2 * i + int(at_once)) % len(targets)]
            quality, start = drag_to(page, "#quality", quality)
            if quality == 2:
                raise RuntimeError("the quality slider did not move")
            wait_text(page, "#status", f"at {label(quality)}[.]\\s*$")
            samples["quality_release_at_once_s" if at_once else "quality_release_s"].append(
                time.perf_counter() - start
            )
            if not at_once:
                time.sleep(look)
            moved, start = drag_to(page, "#k", k)
            k = int(moved)
            if k == 9:
                raise RuntimeError("the k slider did not move")
            wait_text(page, "#status", f"at {label(quality)} — k={k} ")
            samples["k_release_at_once_s" if at_once else "k_release_s"].append(time.perf_counter() - start)
            if drag_to(page, "#k", 9)[0] != 9:
                raise RuntimeError("could not drag k back to 9")
            wait_text(page, "#status", f"at {label(quality)}[.]\\s*$")
            for target in (2, quality):  # computed qualities: back to 2 and forth again
                reached, start = drag_to(page, "#quality", target)
                wait_text(page, "#status", f"at {label(reached)}[.]\\s*$")
                samples["quality_cached_s"].append(time.perf_counter() - start)
            if drag_to(page, "#quality", 2)[0] != 2:
                raise RuntimeError("could not drag the quality back to 2")
            wait_text(page, "#status", "at q2[.]\\s*$")
    inspector = page.locator("#inspector img")
    inspector.scroll_into_view_if_needed()
    for i in range(2 * repeats):
        before = page.locator("#node_info").text_content()
        point = picture_point(page, inspector, 0.15 + 0.07 * i, 0.8 - 0.05 * i)
        start = time.perf_counter()  # the clock starts at the click, as at a slider's release
        page.mouse.click(*point)
        wait_new(page, "#node_info", before)
        page.evaluate(PAINTED)
        samples["click_cached_s"].append(time.perf_counter() - start)
    return samples


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=str(ROOT / "assets" / "weights"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--look", type=float, default=5.0, help="seconds a visitor looks before moving a slider"
    )
    parser.add_argument("--users", type=int, default=30)
    parser.add_argument("--skip", nargs="*", default=[], choices=["startup", "browser", "users"])
    parser.add_argument("--no-prefetch", action="store_true", help="start the app with --no-prefetch")
    parser.add_argument("--threads", type=int, default=None, help="the app's --threads (default: PyTorch's)")
    parser.add_argument("--out", default=str(ROOT / "results" / "bench"))
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    from gabic.records import machine_description

    work = Path(args.out) / "browser-work"
    work.mkdir(parents=True, exist_ok=True)
    weights = Path(args.weights).resolve()
    report: dict[str, object] = {
        "what": "the app's speed on this machine (tests/e2e/bench_app.py)",
        "when": time.strftime("%Y-%m-%d"),
        "machine": {**machine_description(), "cpu_flags": cpu_flags()},
        "weights": str(weights.relative_to(ROOT)) if weights.is_relative_to(ROOT) else weights.name,
        "photo": f"{WIDTH}x{HEIGHT}", "look_s": args.look, "prefetch": not args.no_prefetch,
        "app_threads": args.threads or 2, "targets": TARGETS,
    }  # fmt: skip
    medians: dict[str, float] = {}
    with sync_playwright() as p:
        if "startup" not in args.skip:
            report["startup"] = startup(weights, work, p)
            medians.update(report["startup"])
        threads = ("--threads", str(args.threads)) if args.threads else ()

        def serving(log: str) -> object:
            return running_app(
                weights, work / log, max_side=512, prefetch=not args.no_prefetch, extra=threads
            )

        if "browser" not in args.skip:
            with serving("server.log") as (url, _):
                browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1400, "height": 1800})
                page.set_default_timeout(TIMEOUT_MS)
                page.goto(url)
                wait_text(page, "#status", "Analysed")
                samples = interactive(page, work, args.repeats, args.look)
                browser.close()
            report["browser"] = samples
            medians.update({name: statistics.median(values) for name, values in samples.items()})
        if "users" not in args.skip:
            with serving("server-users.log") as (url, process):  # a fresh server: its peak is theirs
                users = simultaneous_users(url, process.pid, work, args.users)
            report["users"] = users
            medians.update({"users_p50_s": users["p50_s"], "users_p95_s": users["p95_s"],
                            "users_failed": users["failed"], "users_peak_rss_mib": users["peak_rss_mib"]})  # fmt: skip
    report["median"] = medians
    report["met"] = {name: medians[name] <= target for name, target in TARGETS.items() if name in medians}
    cpu = re.sub(r"[^a-z0-9]+", "-", str(report["machine"]["cpu"]).lower()).strip("-")[:40]
    out = Path(args.out) / f"app-speed-{cpu}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({"median": medians, "met": report["met"]}, indent=2), "->", out)
    return report


if __name__ == "__main__":
    main()
