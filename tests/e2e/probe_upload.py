"""Where an upload's time goes, in Debian's Chromium and in the server (a probe run by hand, not a
test; ``make bench-app`` measures the rows of the targets).

    .venv/bin/python tests/e2e/probe_upload.py [--uploads 5] [--js-profile] [--no-prefetch]

For each 481×321 photo set on the photo input, until the browser has painted its numbers and bit
maps (as ``bench_app.py`` times ``upload_s``):

- ``before_handler_s``: the photo set → the server starts its handler (the browser sends the file
  and the event; the handler's start is its log line's time less the time it reports);
- ``handler_s``: preparing the photo, both analyses and drawing the views (the app's log line
  ``new image …: views ready in … s``);
- ``after_handler_s``: the handler done → the page painted (Gradio sends the answer, the browser
  applies it, fetches and decodes the pictures, and paints);
- CPU seconds per upload, including what follows the paint until the next upload (the inspector's
  views, the prefetch): of each thread of the server (named when ``py-spy`` is installed; it only
  reads the names, once, after the uploads) and of each process and thread of Chromium;
- with ``--js-profile``: the JavaScript functions of the page by inclusive CPU time per upload
  (Chrome's sampling profiler; it adds its own cost to the renderer).

Writes ``results/bench/upload-probe-<cpu>-<time>.json``.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from app_server import ROOT, handler_times, running_app  # noqa: E402
from bench_app import HEIGHT, TIMEOUT_MS, WIDTH, cpu_flags, photo, upload_until_drawn, wait_text  # noqa: E402
from test_browser import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_s(stat_path: str) -> tuple[str, float]:
    """``(thread or process name, user + system CPU seconds)`` from a ``/proc/.../stat`` file."""
    text = Path(stat_path).read_text()
    fields = text[text.rindex(")") + 2 :].split()
    return text[text.index("(") + 1 : text.rindex(")")], (int(fields[11]) + int(fields[12])) / TICKS


def thread_cpu(pid: int) -> dict[str, tuple[str, float]]:
    """CPU seconds of every thread of ``pid``: ``{tid: (name, seconds)}``."""
    found = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError, ValueError):  # the thread ended meanwhile
            found[tid] = _cpu_s(f"/proc/{pid}/task/{tid}/stat")
    return found


def chromium_cpu() -> dict[str, tuple[str, float]]:
    """CPU seconds of each thread of each Chromium process: ``{pid/tid: (kind: thread, seconds)}``."""
    found = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            # Chromium's children rewrite their command line into one string: split at spaces too
            command = Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ").split()
        except OSError:
            continue
        kinds = [arg.removeprefix("--type=") for arg in command if arg.startswith("--type=")]
        if not command or (not kinds and Path(command[0]).name != "chromium"):
            continue
        kind = kinds[0] if kinds else "browser"
        for tid, (name, seconds) in thread_cpu(int(pid)).items():
            found[f"{pid}/{tid}"] = (f"{kind}: {name}", seconds)
    return found


def python_thread_names(pid: int) -> dict[str, str]:
    """``{tid: Python thread name}`` of the server, read once by ``py-spy dump`` (if installed)."""
    spy = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if spy is None:
        return {}
    dump = subprocess.run([spy, "dump", "-p", str(pid)], capture_output=True, text=True, timeout=60).stdout
    names = {}
    for line in dump.splitlines():  # Thread 0x7F.. (idle): "name"  or  Thread 12345 (active): "name"
        found = re.match(r'Thread (\S+) .*"(.*)"', line)
        if found:
            names[str(int(found.group(1), 0))] = found.group(2)
    return names


def spent(before: dict[str, tuple[str, float]], after: dict[str, tuple[str, float]], uploads: int,
          names: dict[str, str] | None = None) -> dict[str, float]:  # fmt: skip
    """CPU seconds per upload by name (threads of one name summed), largest first, ≥ 5 ms."""
    total: collections.Counter[str] = collections.Counter()
    for key, (name, seconds) in after.items():
        label = (names or {}).get(key, name)
        total[label] += seconds - before.get(key, (name, 0.0))[1]
    return {name: round(s / uploads, 3) for name, s in total.most_common() if s / uploads >= 0.005}


def js_functions(profile: dict, uploads: int, top: int = 20) -> dict[str, float]:
    """Inclusive CPU seconds per upload of the page's functions (a Chrome ``.cpuprofile``)."""
    nodes = {node["id"]: node for node in profile["nodes"]}
    parent = {child: node["id"] for node in profile["nodes"] for child in node.get("children", [])}
    inclusive: collections.Counter[str] = collections.Counter()
    for sample, delta in zip(profile["samples"], [*profile["timeDeltas"][1:], 0], strict=True):
        seen, node = set(), sample
        while node in nodes:
            frame = nodes[node]["callFrame"]
            name = f"{frame['functionName'] or '(anonymous)'} {frame['url'].rsplit('/', 1)[-1]}".strip()
            if name not in seen:
                inclusive[name] += delta
                seen.add(name)
            node = parent.get(node)
    return {name: round(us / 1e6 / uploads, 3) for name, us in inclusive.most_common(top)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=str(ROOT / "assets" / "weights"))
    parser.add_argument("--uploads", type=int, default=5)
    parser.add_argument("--pause", type=float, default=3.0, help="seconds between uploads")
    parser.add_argument("--js-profile", action="store_true", help="profile the page's JavaScript too")
    parser.add_argument("--no-prefetch", action="store_true", help="start the app with --no-prefetch")
    parser.add_argument("--out", default=str(ROOT / "results" / "bench"))
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    from gabic.records import machine_description

    work = Path(args.out) / "browser-work"
    work.mkdir(parents=True, exist_ok=True)
    log = work / "probe-server.log"
    report: dict[str, object] = {
        "what": "where an upload's time goes (tests/e2e/probe_upload.py)", "when": time.strftime("%Y-%m-%d"),
        "machine": {**machine_description(), "cpu_flags": cpu_flags()}, "photo": f"{WIDTH}x{HEIGHT}",
        "uploads": args.uploads, "pause_s": args.pause, "prefetch": not args.no_prefetch,
        "js_profile": args.js_profile,
    }  # fmt: skip
    marks: list[tuple[float, float]] = []
    with (
        running_app(Path(args.weights).resolve(), log, max_side=512, prefetch=not args.no_prefetch) as (url, server),
        sync_playwright() as p,
    ):  # fmt: skip
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1800})
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(url)
        wait_text(page, "#status", "Analysed")
        time.sleep(args.pause)
        cdp = page.context.new_cdp_session(page) if args.js_profile else None
        if cdp is not None:
            cdp.send("Profiler.enable")
            cdp.send("Profiler.setSamplingInterval", {"interval": 500})
            cdp.send("Profiler.start")
        server_before, browser_before = thread_cpu(server.pid), chromium_cpu()
        for i in range(args.uploads):
            path = work / f"probe-{i}.png"
            photo(40 + i).save(path)
            marks.append(upload_until_drawn(page, path))
            time.sleep(args.pause)
        server_after, browser_after = thread_cpu(server.pid), chromium_cpu()
        if cdp is not None:
            report["js_functions_cpu_s"] = js_functions(cdp.send("Profiler.stop")["profile"], args.uploads)
        names = python_thread_names(server.pid)
        browser.close()
    handlers = handler_times(log.read_text())[
        -args.uploads :
    ]  # the sample's analysis at start-up logs nothing
    report["each"] = [
        {"upload_s": end - start, "before_handler_s": h_start - start, "handler_s": h_end - h_start,
         "after_handler_s": end - h_end}
        for (start, end), (h_start, h_end) in zip(marks, handlers, strict=True)
    ]  # fmt: skip
    report["server_cpu_s"] = spent(server_before, server_after, args.uploads, names)
    report["chromium_cpu_s"] = spent(browser_before, browser_after, args.uploads)
    cpu = re.sub(r"[^a-z0-9]+", "-", str(report["machine"]["cpu"]).lower()).strip("-")[:40]
    out = Path(args.out) / f"upload-probe-{cpu}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({key: report[key] for key in ("each", "server_cpu_s", "chromium_cpu_s")}, indent=1),
          "->", out)  # fmt: skip
    return report


if __name__ == "__main__":
    main()
